"""The leave-one-region-out experiment on tiny data: every stage runs, the results table
has the study's shape, the report renders from it, and a re-run resumes instead of
retraining. Tiny models, one epoch: the orchestration is tested, not accuracy."""
from __future__ import annotations

import os

import pytest

from raydisc import storage
from raydisc.cli import main
from raydisc.config import ConfigError
from raydisc.experiments.crossregion import CrossRegionConfig, run_crossregion

TINY = {"hparams": {"channels": [4, 8], "dense_units": 8, "pooled_shape": [1, 2], "dropout": 0.1},
        "members": 2, "epochs": 1, "batch_size": 32, "cpus_per_worker": 0.5}


def _config(**changes) -> CrossRegionConfig:
    values = dict(architectures=("spectrogram_cnn",), regions=("alpine", "basin"), targets=("basin",),
                  pretrain=TINY, finetune={**TINY, "freeze": "all_but_head"}, target_only=TINY)
    return CrossRegionConfig(**{**values, **changes})


@pytest.fixture(scope="module")
def experiment(tiny_shards, tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("crossregion") / "run")
    lines: list[str] = []
    table = run_crossregion(tiny_shards, run_dir, _config(), progress=lines.append)
    return run_dir, table, lines


def test_every_stage_is_trained_and_evaluated(experiment):
    run_dir, table, lines = experiment
    assert set(table["stage"]) == {"pretrained", "finetuned", "target_only"}
    assert set(table["target"]) == {"basin"} and set(table["architecture"]) == {"spectrogram_cnn"}
    accuracy = table[(table["metric"] == "accuracy") & (table["class"] == "all")]
    # 3 stages x {best member, ensemble} x {station, event}, each a fraction.
    assert len(accuracy) == 12 and accuracy["value"].between(0, 1).all()
    assert set(accuracy["regions"]) == {"basin"} and set(accuracy["split"]) == {"test"}
    for folder in ("spectrogram_cnn/pretrain-alpine/bundle", "spectrogram_cnn/basin/finetuned/bundle",
                   "spectrogram_cnn/basin/target_only/bundle"):
        assert os.path.exists(os.path.join(run_dir, folder, "bundle.json")), folder
    stored = storage.read_frame(os.path.join(run_dir, "results", "metrics.parquet"))
    assert len(stored) == len(table)
    # The fine-tuned bundle started from the pretrained one.
    pretrained_ids = set(table.loc[table["stage"] == "pretrained", "bundle_id"])
    from raydisc.training.finetune import finetuned_from

    assert finetuned_from(os.path.join(run_dir, "spectrogram_cnn/basin/finetuned/bundle"))["bundle_id"] in pretrained_ids


def test_rerun_resumes_without_training(experiment, tiny_shards):
    run_dir, table, _ = experiment
    lines: list[str] = []
    again = run_crossregion(tiny_shards, run_dir, _config(), progress=lines.append)
    assert sum("done before" in line for line in lines) == 3
    assert not any("epoch" in line for line in lines)
    assert again.sort_values(list(again.columns)).reset_index(drop=True).equals(
        table.sort_values(list(table.columns)).reset_index(drop=True))


def test_other_settings_in_the_same_run_dir_are_refused(experiment, tiny_shards):
    run_dir, _, _ = experiment
    with pytest.raises(ConfigError, match="holds an experiment with other settings"):
        run_crossregion(tiny_shards, run_dir, _config(finetune={**TINY, "freeze": "none"}))


def test_report_renders_from_the_stored_tables(experiment, capsys):
    run_dir, table, _ = experiment
    assert main(["report", run_dir]) == 0
    report_path = capsys.readouterr().out.strip()
    text = open(report_path).read()
    accuracy = table[(table["metric"] == "accuracy") & (table["class"] == "all") & (table["level"] == "event")
                     & (table["stage"] == "finetuned") & (table["model"] == "ensemble")]["value"].item()
    assert f"{100 * accuracy:.1f}" in text
    assert "basin" in text and "spectrogram_cnn" in text
    # Station accuracy per component set: the tiny basin is 3-component with catalog picks.
    groups = storage.read_frame(os.path.join(run_dir, "results", "groups.parquet"))
    assert set(groups["stage"]) == {"pretrained", "finetuned", "target_only"}
    assert set(groups[groups["group"] == "components"]["value"]) == {"ZNE"}
    section = text.split("## Station accuracy by component set and pick source", 1)[1].split("\n## ", 1)[0]
    assert "components = ZNE" in section and "pick_source = catalog" in section


@pytest.mark.parametrize("changes, message", [
    ({"architectures": ("transformer",)}, "architectures must be among"),
    ({"targets": ("atlantis",)}, "must be among the regions"),
    ({"finetune": {"freeze": "everything"}}, "finetune config: freeze must be one of"),
])
def test_bad_configs_fail_before_any_training(changes, message):
    with pytest.raises(ConfigError, match=message):
        _config(**changes)
