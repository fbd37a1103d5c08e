"""Ensemble training on Ray Train: config, streamed inputs, end-to-end training into a
bundle, resume after a killed worker, a run directory on S3, and clear errors.

Models are tiny (a few hundred parameters) and runs are 1-3 epochs, so the whole file
takes a couple of minutes on 2 CPUs; what is tested is the machinery, not accuracy."""
from __future__ import annotations

import io
import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raydisc import storage
from raydisc.cli import main
from raydisc.config import ConfigError
from raydisc.data.shards import DATASET_FILE, ShardError, read_dataset_info, shard_files
from raydisc.ensemble import load_bundle
from raydisc.labels import CLASS_NAMES
from raydisc.training import TrainConfig, train_ensemble
from raydisc.training.data import class_weights, label_counts, training_dataset
from raydisc.training.ensemble import resolve_resources

REGIONS = ["alpine", "basin"]
TINY_SPECTROGRAM = {"channels": [4, 8], "dense_units": 8, "pooled_shape": [1, 2], "dropout": 0.1}
TINY_WAVEFORM = {"stem_channels": 4, "channels": [4, 8], "kernel_size": 3, "dense_units": 8, "dropout": 0.1}
# Half a CPU per worker: two members train at once on the 2-CPU test cluster and one CPU
# stays free for Ray Data's read tasks.
FAST = dict(batch_size=32, cpus_per_worker=0.5, shuffle_buffer_size=64)


@pytest.fixture(scope="module")
def shards(tiny_shards):
    return tiny_shards


@pytest.fixture(scope="module")
def trained(shards, tmp_path_factory):
    """A 2-member spectrogram ensemble trained for 2 epochs; (run_dir, bundle, lines)."""
    run_dir = str(tmp_path_factory.mktemp("run") / "spectrogram")
    config = TrainConfig(architecture="spectrogram_cnn", hparams=TINY_SPECTROGRAM, members=2, epochs=2,
                         base_seed=11, **FAST)
    lines: list[str] = []
    bundle = train_ensemble(shards, REGIONS, config, run_dir, progress=lines.append)
    return run_dir, bundle, lines


# ----------------------------------------------------------------- config and inputs (fast)


def test_train_config_round_trips_through_json():
    config = TrainConfig(architecture="waveform_cnn", hparams={"channels": [4, 8]}, members=3, patience=None)
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again.to_dict() == json.loads(json.dumps(config.to_dict()))
    assert again.seed_of(2) == config.base_seed + 2
    assert config.replace(members=5).members == 5


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"architecture": "resnet9000"}, "unknown architecture 'resnet9000'"),
        ({"hparams": {"nonsense": 1}}, "no hyper-parameter"),
        ({"members": 0}, "members must be a positive integer"),
        ({"patience": 0}, "patience"),
        ({"class_weighting": "focal"}, "class_weighting"),
        ({"cpus_per_worker": 0}, "cpus_per_worker"),
    ],
)
def test_train_config_rejects_bad_values(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)


def test_class_weights_are_inverse_to_frequencies():
    weights = class_weights([30, 10])
    np.testing.assert_allclose(weights, [40 / (2 * 30), 40 / (2 * 10)], rtol=1e-6)
    # Weighted class totals are equal: each class contributes the same to the loss.
    np.testing.assert_allclose(weights * [30, 10], [20, 20], rtol=1e-6)
    np.testing.assert_array_equal(class_weights([5, 0]), [5 / (2 * 5), 0.0])


def test_resources_leave_a_cpu_for_ray_data_and_use_gpus_when_present():
    config = TrainConfig(members=10, cpus_per_worker=1.0)
    assert resolve_resources(config, {"CPU": 2.0}) == (False, 1)
    assert resolve_resources(config, {"CPU": 16.0}) == (False, 10)
    assert resolve_resources(config.replace(cpus_per_worker=0.5), {"CPU": 2.0}) == (False, 2)
    assert resolve_resources(config.replace(max_concurrent_members=3), {"CPU": 64.0}) == (False, 3)
    # Auto GPU: one member per GPU.
    assert resolve_resources(config, {"CPU": 16.0, "GPU": 4.0}) == (True, 4)
    assert resolve_resources(config.replace(use_gpu=False), {"CPU": 16.0, "GPU": 4.0}) == (False, 10)
    # Fractional GPUs: small members share a GPU.
    assert resolve_resources(config.replace(gpus_per_worker=0.25), {"CPU": 16.0, "GPU": 1.0}) == (True, 4)
    with pytest.raises(ConfigError, match="gpus_per_worker"):
        config.replace(gpus_per_worker=1.5)
    with pytest.raises(ConfigError, match="GPU"):
        resolve_resources(config.replace(use_gpu=True), {"CPU": 16.0})


def test_training_dataset_streams_decoded_batches(shards):
    counts = label_counts(shards, REGIONS)
    assert set(counts) == {"train", "validation", "test"}
    shape = read_dataset_info(shards).preprocess.spectrogram_shape
    n, labels = 0, []
    for batch in training_dataset(shards, REGIONS, "validation", "spectrogram").iter_torch_batches(batch_size=16):
        assert batch["x"].dtype.is_floating_point and tuple(batch["x"].shape[1:]) == shape
        n += len(batch["y"])
        labels += batch["y"].tolist()
    assert n == counts["validation"].sum()
    np.testing.assert_array_equal(np.bincount(labels, minlength=len(CLASS_NAMES)), counts["validation"])


# ----------------------------------------------------------------- end to end


def test_ensemble_trains_into_a_loadable_bundle(shards, trained):
    run_dir, bundle_uri, lines = trained
    assert bundle_uri == os.path.join(run_dir, "bundle")
    bundle = load_bundle(bundle_uri, expected_preprocess=read_dataset_info(shards).preprocess)
    assert bundle.architecture == "spectrogram_cnn" and len(bundle.members) == 2
    assert [m["seed"] for m in bundle.member_metrics] == [11, 12]
    assert bundle.provenance["regions"] == REGIONS
    assert bundle.provenance["train_config"]["members"] == 2
    losses = [m["validation_loss"] for m in bundle.member_metrics]
    assert bundle.best_member == int(np.argmin(losses))

    members = pd.read_csv(os.path.join(run_dir, "members.csv"))
    assert members["member"].tolist() == [0, 1]
    assert members["best_epoch"].between(1, 2).all()
    history = pd.read_csv(os.path.join(run_dir, "history.csv"))
    assert sorted(zip(history["member"], history["epoch"])) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert np.isfinite(history[["train_loss", "validation_loss", "validation_accuracy"]].to_numpy()).all()
    # One readable line per member and epoch, and Ray Train checkpoints under the run dir.
    assert sum("epoch   2/2" in line for line in lines) == 2
    assert any(name.startswith("checkpoint_") for _, dirs, _ in os.walk(os.path.join(run_dir, "members")) for name in dirs)

    # Triage fitted on the validation split: a temperature per member, a threshold
    # (a number or "never"), logged.
    policy = bundle.triage_policy
    assert len(policy.temperatures) == 2 and policy.fitted_on["split"] == "validation"
    assert policy.target_accuracy == 0.99 and policy.confidence_threshold is not None
    assert policy.fitted_on["recordings"] == label_counts(shards, REGIONS)["validation"].sum()
    assert any(line.startswith("triage fitted on the validation split") for line in lines)

    # The bundle predicts; its weights are the best-validation-loss epoch's.
    x = np.zeros((2, *bundle.input_shape), np.float32)
    assert bundle.predict(x)["member_probabilities"].shape == (2, 2, len(CLASS_NAMES))


def test_cli_evaluates_the_trained_bundle(shards, trained, capsys):
    run_dir, bundle_uri, _ = trained
    # Regions default to the ones the bundle was trained on.
    assert main(["evaluate", bundle_uri, shards, "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "best single (member" in out and "ensemble (2 members)" in out
    assert "triage at 99.0% target accuracy" in out
    stations = pd.read_parquet(os.path.join(run_dir, "evaluation-test", "station_predictions.parquet"))
    assert len(stations) == label_counts(shards, REGIONS)["test"].sum()


def test_second_run_into_a_finished_run_dir_is_refused(shards, trained):
    from raydisc.ensemble import BundleError

    run_dir, _, _ = trained
    with pytest.raises(BundleError, match="already holds a finished ensemble"):
        train_ensemble(shards, REGIONS, TrainConfig(hparams=TINY_SPECTROGRAM, members=1, epochs=1, **FAST), run_dir)


def test_training_resumes_from_checkpoint_after_a_killed_worker(shards, tmp_path):
    """The worker SIGKILLs itself after training epoch 2, before reporting it (once); Ray
    Train restarts the member (max_failures=1), which continues from the epoch-1
    checkpoint and trains epoch 2 again."""
    marker = tmp_path / "killed-once"
    run_dir = str(tmp_path / "run")
    config = TrainConfig(architecture="waveform_cnn", hparams=TINY_WAVEFORM, members=1, epochs=3, patience=None,
                         max_failures=1, **FAST)
    lines: list[str] = []
    bundle = train_ensemble(shards, ["alpine"], config, run_dir, progress=lines.append,
                            _failure={"_fail_at_epoch": 2, "_fail_marker": str(marker)})
    assert marker.exists(), "the worker was never killed"
    assert any("restarting from the last checkpoint" in line for line in lines)
    history = pd.read_csv(os.path.join(run_dir, "history.csv"))
    # Every epoch reported exactly once: epoch 1 before the kill, 2 and 3 after it,
    # continuing from the checkpoint of epoch 1 rather than starting again at epoch 1.
    assert history["epoch"].tolist() == [1, 2, 3]
    assert history["resumed_from_epoch"].tolist() == [0, 1, 1]
    assert load_bundle(bundle).member_metrics[0]["epochs_trained"] == 3


def test_member_with_two_ddp_workers(shards, tmp_path):
    """Two workers per member (DistributedDataParallel over gloo): the training data is
    split between them, the loss is reduced over both, and the bundle gets the unwrapped
    model's weights."""
    config = TrainConfig(architecture="waveform_cnn", hparams=TINY_WAVEFORM, members=1, epochs=1,
                         workers_per_member=2, batch_size=32, cpus_per_worker=0.5)
    bundle = load_bundle(train_ensemble(shards, ["basin"], config, str(tmp_path / "run"), progress=None))
    assert len(bundle.members) == 1
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    n_train = label_counts(shards, ["basin"])["train"].sum()
    # streaming_split(equal=True) may drop up to one row per worker to balance them.
    assert n_train - 2 <= history["train_samples"].iloc[0] <= n_train


def test_run_dir_on_s3(shards, s3_bucket):
    run_dir = f"{s3_bucket}/runs/tiny"
    config = TrainConfig(architecture="spectrogram_cnn", hparams=TINY_SPECTROGRAM, members=1, epochs=1, **FAST)
    bundle_uri = train_ensemble(shards, ["basin"], config, run_dir, progress=None)
    assert bundle_uri == f"{run_dir}/bundle"
    bundle = load_bundle(bundle_uri)
    assert len(bundle.members) == 1 and bundle.provenance["regions"] == ["basin"]
    assert storage.exists(f"{run_dir}/members.csv") and storage.exists(f"{run_dir}/train_config.json")
    fs, path = storage.filesystem(f"{run_dir}/members/member-000")
    assert any("checkpoint_000001" in p for p in fs.find(path, withdirs=True))  # epoch 1


# ----------------------------------------------------------------- errors


def test_missing_region_is_a_clear_error(shards, tmp_path):
    config = TrainConfig(hparams=TINY_SPECTROGRAM, members=1, epochs=1, **FAST)
    with pytest.raises(ShardError, match=r"no shards for region craton"):
        train_ensemble(shards, ["alpine", "craton"], config, str(tmp_path / "run"))


def test_empty_validation_split_is_a_clear_error(shards, tmp_path):
    """A shard folder whose recordings are all in the train split."""
    root = tmp_path / "all-train"
    (root / "alpine").mkdir(parents=True)
    (root / DATASET_FILE).write_bytes(storage.read_bytes(os.path.join(shards, DATASET_FILE)))
    for uri in shard_files(shards, ["alpine"]):
        table = pq.read_table(io.BytesIO(storage.read_bytes(uri)))
        index = table.schema.get_field_index("split")
        table = table.set_column(index, "split", pa.array(["train"] * table.num_rows, type=pa.string()))
        pq.write_table(table, root / "alpine" / os.path.basename(uri))
    config = TrainConfig(hparams=TINY_SPECTROGRAM, members=1, epochs=1, **FAST)
    with pytest.raises(ShardError, match="no recordings in the 'validation' split"):
        train_ensemble(str(root), ["alpine"], config, str(tmp_path / "run"))


def test_cli_reports_unknown_architecture_and_missing_region(shards, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    assert main(["train", shards, run_dir, "--regions", "alpine", "--architecture", "transformer"]) == 2
    assert "unknown architecture 'transformer'" in capsys.readouterr().err
    assert main(["train", shards, run_dir, "--regions", "craton", "--members", "1", "--epochs", "1"]) == 2
    assert "no shards for region craton" in capsys.readouterr().err
    assert main(["train", shards, run_dir, "--regions", "alpine", "--hparams", "{not json"]) == 2
    assert "--hparams is not valid JSON" in capsys.readouterr().err
