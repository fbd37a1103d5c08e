"""Fine-tuning a pretrained ensemble on a target region: freezing, the pretrained bundle
left untouched, event subsets, clear errors, the CLI and ``ray job submit`` of
``jobs/finetune.py`` against a cluster started by ``ray start --head``.

Tiny models (a few hundred parameters), 1-2 epochs: the machinery is tested, not accuracy."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from raydisc.cli import main
from raydisc.config import ConfigError, PipelineConfig, PreprocessConfig
from raydisc.data.pipeline import run_preprocessing
from raydisc.data.shards import ShardError
from raydisc.ensemble import BundleError, load_bundle
from raydisc.models import build_model, freeze
from raydisc.models.freezing import FREEZE_STRATEGIES, frozen_modules, keep_frozen_in_eval
from raydisc.training import TrainConfig, train_ensemble
from raydisc.training.data import label_counts, split_events
from raydisc.training.finetune import finetune_config, finetune_ensemble, finetuned_from

REPO = Path(__file__).resolve().parents[1]
TINY = {"spectrogram_cnn": {"channels": [4, 8], "dense_units": 8, "pooled_shape": [1, 2], "dropout": 0.1},
        "waveform_cnn": {"stem_channels": 4, "channels": [4, 8], "kernel_size": 3, "dense_units": 8, "dropout": 0.1}}
FAST = dict(batch_size=32, cpus_per_worker=0.5)


@pytest.fixture(scope="module")
def pretrained(tiny_shards, tmp_path_factory):
    """A 2-member spectrogram ensemble pretrained on alpine for 1 epoch: its bundle URI."""
    run_dir = str(tmp_path_factory.mktemp("pretrain") / "alpine")
    config = TrainConfig(architecture="spectrogram_cnn", hparams=TINY["spectrogram_cnn"], members=2, epochs=1, **FAST)
    return train_ensemble(tiny_shards, ["alpine"], config, run_dir, progress=None)


def _digest(folder: str) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


# ----------------------------------------------------------------- freezing (no Ray)


@pytest.mark.parametrize("architecture", sorted(TINY))
@pytest.mark.parametrize("strategy", FREEZE_STRATEGIES)
def test_freezing_really_freezes(architecture, strategy):
    """A few optimizer steps in training mode change trainable layers and leave frozen
    ones — weights and batch-norm statistics — bit-identical."""
    torch.manual_seed(0)
    shape = (3, 41, 89) if architecture == "spectrogram_cnn" else (3, 3600)
    model = build_model(architecture, shape, **TINY[architecture])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frozen = freeze(model, strategy)
    frozen_names = {f"{name}." for name, module in model.named_modules() if any(module is m for m in frozen)}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        model.train()
        keep_frozen_in_eval(frozen)
        loss = torch.nn.functional.cross_entropy(model(torch.randn(8, *shape)), torch.randint(0, 2, (8,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = model.state_dict()
    is_frozen = {k: any(k.startswith(prefix) for prefix in frozen_names) for k in after}
    for key, value in after.items():
        if is_frozen[key]:
            assert torch.equal(value, before[key]), f"{strategy}: frozen {key} changed"
    changed = [k for k, v in after.items() if not is_frozen[k] and v.is_floating_point() and not torch.equal(v, before[k])]
    assert changed, f"{strategy}: nothing trained"
    assert "head.4.weight" in changed  # the output layer always trains
    if strategy == "none":
        assert not any(is_frozen.values())
    elif strategy == "all_but_head":
        assert all(is_frozen[k] for k in after if not k.startswith("head.4."))


def test_unknown_strategy_is_refused():
    model = build_model("waveform_cnn", (3, 3600), **TINY["waveform_cnn"])
    with pytest.raises(ValueError, match="unknown freeze strategy 'everything'"):
        frozen_modules(model, "everything")
    with pytest.raises(ConfigError, match="freeze must be one of"):
        TrainConfig(freeze="everything")


# ----------------------------------------------------------------- end to end


def test_finetune_starts_from_the_bundle_and_leaves_it_untouched(tiny_shards, pretrained, tmp_path):
    before = _digest(os.path.dirname(pretrained))
    config = finetune_config(architecture="spectrogram_cnn", freeze="all_but_head", epochs=2, **FAST)
    lines: list[str] = []
    bundle_uri = finetune_ensemble(pretrained, tiny_shards, "basin", config, str(tmp_path / "ft"), progress=lines.append)
    assert _digest(os.path.dirname(pretrained)) == before, "the pretrained run was modified"

    source, tuned = load_bundle(pretrained), load_bundle(bundle_uri)
    assert len(tuned.members) == len(source.members) == 2
    assert tuned.provenance["regions"] == ["basin"]
    assert finetuned_from(bundle_uri)["bundle_id"] == source.bundle_id
    assert tuned.provenance["train_config"]["learning_rate"] == 1e-4  # the fine-tuning default
    assert any(line.startswith("fine-tuning from") for line in lines)
    for m in range(2):
        old, new = source.members[m].state_dict(), tuned.members[m].state_dict()
        # Everything but the output layer was frozen: identical to the pretrained member
        # (so training started from it), and the output layer moved.
        for key in old:
            if key.startswith("head.4."):
                assert not torch.equal(old[key], new[key]), f"member {m}: {key} did not train"
            else:
                assert torch.equal(old[key], new[key]), f"member {m}: frozen {key} changed"


def test_finetune_on_a_subset_of_events(tiny_shards, pretrained, tmp_path):
    events = split_events(tiny_shards, ["basin"], "train")
    assert {"region", "event_id", "label", "n_recordings"} <= set(events.columns)
    chosen = events.groupby("label").head(1)["event_id"].tolist()  # one event per class
    config = finetune_config(architecture="spectrogram_cnn", epochs=1, **FAST)
    bundle_uri = finetune_ensemble(pretrained, tiny_shards, "basin", config, str(tmp_path / "ft"), progress=None,
                                   train_events=chosen, init_members=[1])
    tuned = load_bundle(bundle_uri)
    assert len(tuned.members) == 1 and tuned.provenance["init_bundle"]["members"] == [1]
    assert tuned.provenance["train_events"] == sorted(chosen)
    history = pd.read_csv(tmp_path / "ft" / "history.csv")
    expected = int(events.set_index("event_id").loc[chosen, "n_recordings"].sum())
    assert history["train_samples"].tolist() == [expected]
    assert label_counts(tiny_shards, ["basin"], events=chosen)["train"].sum() == expected


# ----------------------------------------------------------------- errors


def test_target_region_without_training_data(tiny_shards, pretrained, tmp_path):
    config = finetune_config(architecture="spectrogram_cnn", epochs=1, **FAST)
    with pytest.raises(ShardError, match="no shards for region craton"):
        finetune_ensemble(pretrained, tiny_shards, "craton", config, str(tmp_path / "a"))
    with pytest.raises(ShardError, match="no recordings in the 'train' split among the 1 chosen events"):
        finetune_ensemble(pretrained, tiny_shards, "basin", config, str(tmp_path / "b"), train_events=["no-such-event"])


def test_bundle_of_another_architecture(tiny_shards, pretrained, tmp_path, capsys):
    config = finetune_config(architecture="waveform_cnn", epochs=1, **FAST)
    with pytest.raises(BundleError, match="holds spectrogram_cnn members, but the fine-tuning config asks for waveform_cnn"):
        finetune_ensemble(pretrained, tiny_shards, "basin", config, str(tmp_path / "a"))
    assert main(["finetune", pretrained, tiny_shards, str(tmp_path / "b"), "--target", "basin",
                 "--architecture", "waveform_cnn"]) == 2
    assert "holds spectrogram_cnn members" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_bundle_made_with_other_preprocessing(tiny_archive, pretrained, tmp_path):
    other = str(tmp_path / "shards-10hz")
    run_preprocessing(tiny_archive, other, ["basin"], preprocess_config=PreprocessConfig(freqmax_hz=10.0),
                      pipeline_config=PipelineConfig(events_per_shard=10))
    config = finetune_config(architecture="spectrogram_cnn", epochs=1, **FAST)
    with pytest.raises(BundleError, match=r"model input differs .*freqmax_hz: bundle 18.0 != expected 10.0"):
        finetune_ensemble(pretrained, other, "basin", config, str(tmp_path / "run"))


def test_the_pretrained_run_directory_is_refused(tiny_shards, pretrained):
    config = finetune_config(architecture="spectrogram_cnn", epochs=1, **FAST)
    with pytest.raises(ConfigError, match="holds the pretrained bundle"):
        finetune_ensemble(pretrained, tiny_shards, "basin", config, os.path.dirname(pretrained))


# ----------------------------------------------------------------- ray job submit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_dashboard(port: int, head: subprocess.Popen, timeout_s: float = 120) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise AssertionError(f"ray start exited with {head.returncode}: {head.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/version", timeout=2) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as error:
            # Ray enables token authentication for a new local cluster (the token in
            # ~/.ray/auth_token, which `ray job submit` sends); a 401 is a dashboard that is up.
            if error.code == 401:
                return
            time.sleep(1)
        except OSError:
            time.sleep(1)
    raise AssertionError(f"the dashboard on port {port} did not come up within {timeout_s} s")


def test_finetune_job_through_ray_job_submit(tiny_shards, pretrained, tmp_path):
    """``ray start --head`` (a cluster of its own, stopped at the end), then
    ``ray job submit --working-dir . -- python jobs/finetune.py ...``.

    The head runs with ``--block`` in a process group of its own, and is stopped by
    signalling that group: ``ray stop`` would stop every Ray cluster on the machine,
    including the test session's."""
    bindir = os.path.dirname(sys.executable)
    ray_cli = os.path.join(bindir, "ray")
    dashboard = _free_port()
    # A short temp dir: Ray's socket paths must fit in 107 characters.
    temp_dir = tempfile.mkdtemp(prefix="rdjob", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    # Every port of its own: the defaults (e.g. the dashboard agent's 52365) are taken
    # by the test session's cluster, and a second agent on them never comes up.
    ports = [f"--{name}={_free_port()}" for name in (
        "port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
        "runtime-env-agent-port", "ray-client-server-port")]
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", *ports, "--num-cpus=2", "--include-dashboard=true",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", f"--temp-dir={temp_dir}",
         "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    run_dir = tmp_path / "job-run"
    try:
        _wait_for_dashboard(dashboard, head)
        for _ in range(30):
            job = subprocess.run(
                [ray_cli, "job", "submit", f"--address=http://127.0.0.1:{dashboard}", f"--working-dir={REPO}", "--",
                 "python", "jobs/finetune.py", "--bundle", pretrained, "--shards", tiny_shards, "--target", "basin",
                 "--run-dir", str(run_dir), "--epochs", "1", "--cpus-per-worker", "0.5", "--freeze",
                 "feature_extractor"],
                env=env, capture_output=True, text=True, timeout=420, cwd=REPO)
            # The dashboard answers before the node's job agent is up; a fresh cluster
            # refuses submissions for a few seconds.
            if "No available agent" not in job.stdout + job.stderr:
                break
            time.sleep(2)
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert job.returncode == 0, (job.stdout + job.stderr)[-4000:]
    assert "succeeded" in job.stdout
    assert "fine-tuned ensemble on the test split of basin" in job.stdout
    assert "pretrained ensemble on the test split of basin" in job.stdout
    tuned = load_bundle(str(run_dir / "bundle"))
    assert tuned.provenance["train_config"]["freeze"] == "feature_extractor"
    summary = pd.read_csv(run_dir / "evaluation-test" / "summary.csv")
    assert summary["event acc"].between(0, 1).all()
    assert (run_dir / "evaluation-pretrained-test" / "summary.csv").exists()
