"""The fine-tuning data sweep (Ray Tune over fraction x seed x mode): fraction sampling,
config validation, a tiny sweep end to end on the session's local cluster (with one
injected failing trial), and resuming after the driver was killed.

Models are tiny and trials run 1 epoch; what is tested is the machinery, not accuracy."""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from raydisc.config import ConfigError, PipelineConfig
from raydisc.experiments.sweep import (RESULT_COLUMNS, SweepConfig, add_sweep_arguments, auto_concurrency,
                                       format_curve, read_failures, run_sweep, sample_fraction_events,
                                       sweep_config_from_args, trial_name)

PRETRAIN = ["alpine"]
TARGET = "basin"
TINY_SPECTROGRAM = {"channels": [4, 8], "dense_units": 8, "pooled_shape": [1, 2], "dropout": 0.1}
TINY_SWEEP = dict(seeds=(0,), epochs=1, patience=None, batch_size=32, cpus_per_trial=0.5,
                  train_options={"shuffle_buffer_size": 0})


def _events(n_quakes: int, n_blasts: int, region: str = "r") -> pd.DataFrame:
    ids = [f"q{i:03d}" for i in range(n_quakes)] + [f"b{i:03d}" for i in range(n_blasts)]
    return pd.DataFrame({"region": region, "event_id": ids, "label": [0] * n_quakes + [1] * n_blasts,
                         "n_recordings": np.arange(len(ids)) % 5 + 1})


# ----------------------------------------------------------------------------- sampling (fast)


def test_fraction_sampling_is_stratified_nested_and_reproducible():
    events = _events(130, 10)
    labels = events.set_index("event_id")["label"]
    previous: set[str] = set()
    for fraction in (0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0):
        chosen = sample_fraction_events(events, fraction, seed=3)
        assert len(chosen) == len(set(chosen)) and set(chosen) <= set(events["event_id"])
        per_class = labels[chosen].value_counts()
        # Stratified: each class its own share, at least one event.
        assert per_class[0] == max(1, int(np.ceil(fraction * 130 - 1e-9)))
        assert per_class[1] == max(1, int(np.ceil(fraction * 10 - 1e-9)))
        # Nested: a smaller fraction's events are among a larger one's (same seed).
        assert previous <= set(chosen)
        previous = set(chosen)
    assert previous == set(events["event_id"])
    # Reproducible, whatever the row order; another seed draws other events.
    shuffled = events.sample(frac=1.0, random_state=1)
    assert sample_fraction_events(shuffled, 0.1, seed=3) == sample_fraction_events(events, 0.1, seed=3)
    assert sample_fraction_events(events, 0.1, seed=4) != sample_fraction_events(events, 0.1, seed=3)


def test_fraction_sampling_is_by_event_and_needs_a_valid_fraction():
    # Returned ids are event ids, so every recording of a chosen event goes to training.
    events = _events(6, 4)
    chosen = sample_fraction_events(events, 0.5, seed=0)
    assert len(chosen) == 3 + 2
    assert sample_fraction_events(_events(5, 0), 0.01, seed=0) == sample_fraction_events(_events(5, 0), 0.01, 0)
    assert len(sample_fraction_events(_events(5, 0), 0.01, seed=0)) == 1  # a class without events is no error
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ConfigError, match="fraction"):
            sample_fraction_events(events, bad, seed=0)
    with pytest.raises(ConfigError, match="no training events"):
        sample_fraction_events(events.iloc[:0], 0.5, seed=0)


@pytest.mark.parametrize("changes, message", [
    ({"fractions": (0.0, 0.5)}, "fractions must lie in"),
    ({"fractions": ()}, "fractions must not be empty"),
    ({"seeds": ()}, "seeds"),
    ({"modes": ("finetuned", "distilled")}, "modes"),
    ({"strategies": ("everything",)}, "strategies"),
    ({"learning_rates": (-1e-3,)}, "learning_rates must be positive"),
    ({"epochs": 0}, "epochs"),
    ({"cpus_per_trial": 0}, "cpus_per_trial"),
    ({"max_concurrent_trials": 0}, "max_concurrent_trials"),
    ({"train_options": {"members": 3}}, "train_options may not set"),
    ({"train_options": {"weight_decay": -1}}, "weight_decay"),
])
def test_sweep_config_rejects_bad_values(changes, message):
    with pytest.raises(ConfigError, match=message):
        SweepConfig(**changes)


def test_sweep_config_grid_concurrency_and_cli_arguments():
    import argparse

    config = SweepConfig(fractions=(0.5, 0.1), seeds=(0, 1), strategies=("none", "feature_extractor"))
    assert config.fractions == (0.1, 0.5)
    trials = config.trials()
    # Fine-tuned: fraction x seed x 2 strategies; scratch: fraction x seed, strategy "none".
    assert len(trials) == 2 * 2 * 2 + 2 * 2
    assert {t["strategy"] for t in trials if t["mode"] == "scratch"} == {"none"}
    assert len({trial_name(t) for t in trials}) == len(trials)
    assert SweepConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    # One trial at a time on 2 CPUs (its worker plus Ray Data's CPU), more on bigger nodes.
    assert auto_concurrency(SweepConfig(), {"CPU": 2.0}) == 1
    assert auto_concurrency(SweepConfig(cpus_per_trial=0.5), {"CPU": 2.0}) == 1
    assert auto_concurrency(SweepConfig(), {"CPU": 16.0}) == 8
    assert auto_concurrency(SweepConfig(gpus_per_trial=1.0), {"CPU": 16.0, "GPU": 2.0}) == 2
    assert auto_concurrency(SweepConfig(max_concurrent_trials=3), {"CPU": 2.0}) == 3

    parser = argparse.ArgumentParser()
    add_sweep_arguments(parser)
    args = parser.parse_args(["b", "s", "--target", "craton", "--out-dir", "o", "--fractions", "0.1,1",
                              "--seeds", "3", "--modes", "finetuned", "--learning-rates", "1e-4,3e-4"])
    parsed = sweep_config_from_args(args)
    assert parsed.fractions == (0.1, 1.0) and parsed.seeds == (0, 1, 2) and parsed.modes == ("finetuned",)
    assert parsed.learning_rates == (1e-4, 3e-4)
    assert sweep_config_from_args(parser.parse_args(["b", "s", "--target", "t", "--out-dir", "o",
                                                     "--seeds", "4,7"])).seeds == (4, 7)


# ----------------------------------------------------------------------------- on the cluster


@pytest.fixture(scope="module")
def sweep_inputs(ray_cluster, tiny_archive, tmp_path_factory):
    """Shards of alpine and basin, and a tiny 1-member bundle pretrained on alpine."""
    from raydisc.data.pipeline import run_preprocessing
    from raydisc.training import TrainConfig, train_ensemble

    root = tmp_path_factory.mktemp("sweep-inputs")
    shards = str(root / "shards")
    run_preprocessing(tiny_archive, shards, [*PRETRAIN, TARGET], pipeline_config=PipelineConfig(events_per_shard=5))
    config = TrainConfig(architecture="spectrogram_cnn", hparams=TINY_SPECTROGRAM, members=1, epochs=1,
                         batch_size=32, cpus_per_worker=0.5)
    bundle = train_ensemble(shards, PRETRAIN, config, str(root / "pretrain"), progress=None)
    return bundle, shards


def test_tiny_sweep_end_to_end_resumes_after_a_killed_driver_and_reports_a_failing_trial(
        ray_cluster, sweep_inputs, tmp_path):
    """One tiny sweep (2 fractions x fine-tuned/scratch, the scratch trial at 1.0 fails on
    purpose): its driver, a separate process on the session's cluster, is killed with
    SIGKILL once a trial has finished; run again, it resumes and completes."""
    bundle, shards = sweep_inputs
    out = str(tmp_path / "sweep")
    config = SweepConfig(fractions=(0.5, 1.0), **TINY_SWEEP)
    fail = [{"fraction": 1.0, "mode": "scratch"}]
    script = textwrap.dedent(f"""
        import ray
        from raydisc.experiments.sweep import SweepConfig, run_sweep
        ray.init(address={ray_cluster.get_runtime_context().gcs_address!r}, logging_level="ERROR")
        run_sweep({bundle!r}, {shards!r}, {TARGET!r}, {out!r}, SweepConfig.from_dict({config.to_dict()!r}),
                  _fail_trials={fail!r})
    """)
    driver = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not glob.glob(os.path.join(out, "trials", "*", "metrics.json")):
            assert driver.poll() is None, "the sweep driver ended before a trial finished"
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.5)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
    assert not os.path.exists(os.path.join(out, "results.parquet"))
    finished = glob.glob(os.path.join(out, "trials", "*", "metrics.json"))
    stamps = {path: os.stat(path).st_mtime_ns for path in finished}

    lines: list[str] = []
    table = run_sweep(bundle, shards, TARGET, out, config, progress=lines.append, _fail_trials=fail)
    assert any(line.startswith("resuming") for line in lines)
    # Trials finished before the kill were not trained or evaluated again.
    for path, stamp in stamps.items():
        assert os.stat(path).st_mtime_ns == stamp
        assert sorted(os.listdir(os.path.dirname(path))) == ["attempt-1", "metrics.json"]

    # The table: schema, every finished trial, values in range.
    assert list(table.columns) == list(RESULT_COLUMNS)
    assert pd.read_parquet(os.path.join(out, "results.parquet")).equals(table)
    assert len(pd.read_csv(os.path.join(out, "results.csv"))) == len(table)
    assert set(zip(table["fraction"], table["mode"])) == {(0.5, "finetuned"), (0.5, "scratch"), (1.0, "finetuned")}
    assert set(table["strategy"]) == {"none"} and set(table["seed"]) == {0}
    # Default learning rates: 1e-4 fine-tuned, 1e-3 from scratch.
    assert set(zip(table["mode"], table["learning_rate"])) == {("finetuned", 1e-4), ("scratch", 1e-3)}
    acc = table[table["metric"].isin(["accuracy", "balanced_accuracy"])]
    assert set(zip(acc["split"], acc["level"])) == {(s, lv) for s in ("validation", "test") for lv in ("station", "event")}
    assert len(acc) == 3 * 2 * 2 * 2 and acc["value"].between(0, 1).all()
    n_events = table[table["metric"] == "n_train_events"].set_index(["fraction", "mode"])["value"]
    assert n_events[(0.5, "finetuned")] == n_events[(0.5, "scratch")] < n_events[(1.0, "finetuned")]

    # The failing trial is reported with its error and did not stop the others.
    failures = read_failures(out)
    assert len(failures) == 1
    row = failures.iloc[0]
    assert (row["fraction"], row["mode"]) == (1.0, "scratch") and "injected failure" in row["error"]
    assert any("1 failed" in line for line in lines)
    assert any("failed: scratch-f1-s0-none-lrdefault: " in line and "injected failure" in line for line in lines)

    with open(os.path.join(out, "learning_curve.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    text = format_curve(table)
    assert "finetuned/none station" in text and "scratch event" in text
    assert any("test accuracy (%)" in line for line in lines)

    # Resuming a finished sweep runs nothing; other arguments for it are refused.
    again = run_sweep(bundle, shards, TARGET, out, config, progress=None, _fail_trials=fail)
    pd.testing.assert_frame_equal(again, table)
    assert all(os.stat(p).st_mtime_ns == s for p, s in stamps.items())
    with pytest.raises(ConfigError, match="other arguments"):
        run_sweep(bundle, shards, TARGET, out, SweepConfig.from_dict({**config.to_dict(), "fractions": (0.25,)}),
                  progress=None)
