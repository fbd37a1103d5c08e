"""Evaluation of a bundle on a shard split: tables, figures, and metrics that agree with
a recomputation by hand from the written station predictions.

The bundle here holds untrained tiny members (random initialisations with different
seeds): evaluation must be right whatever the models predict, and this keeps the tests
fast. Training end to end is covered in test_training.py."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

from raydisc.config import PipelineConfig, PreprocessConfig
from raydisc.data.pipeline import run_preprocessing
from raydisc.data.shards import read_dataset_info
from raydisc.ensemble import BundleError, aggregate_events, save_bundle
from raydisc.evaluation.evaluate import default_out_dir, evaluate
from raydisc.labels import CLASS_NAMES
from raydisc.models import build_model, input_shape_of
from raydisc.training.data import label_counts

REGIONS = ["alpine", "basin"]
HPARAMS = {"channels": [4, 8], "dense_units": 8, "pooled_shape": [1, 2]}
N_MEMBERS = 3


@pytest.fixture(scope="module")
def shards(ray_cluster, tiny_archive, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("eval-shards"))
    run_preprocessing(tiny_archive, out, REGIONS, pipeline_config=PipelineConfig(events_per_shard=5))
    return out


def _random_bundle(uri: str, preprocess: PreprocessConfig) -> str:
    shape = input_shape_of("spectrogram_cnn", preprocess)
    states, metrics = [], []
    for seed in range(N_MEMBERS):
        torch.manual_seed(seed)
        model = build_model("spectrogram_cnn", shape, len(CLASS_NAMES), **HPARAMS)
        # Scale the head so that the members disagree visibly (untrained logits are tiny).
        with torch.no_grad():
            model.head[-1].weight.mul_(50.0)
        states.append(model.state_dict())
        # Member 1 has the lowest validation loss, so it is the best single member.
        metrics.append({"seed": seed, "validation_loss": [0.7, 0.5, 0.6][seed], "validation_accuracy": 0.5})
    save_bundle(uri, architecture="spectrogram_cnn", hparams=HPARAMS, input_shape=shape, preprocess_config=preprocess,
                member_state_dicts=states, member_metrics=metrics, provenance={"regions": REGIONS})
    return uri


@pytest.fixture(scope="module")
def evaluated(shards, tmp_path_factory):
    run = tmp_path_factory.mktemp("eval-run")
    bundle = _random_bundle(str(run / "bundle"), read_dataset_info(shards).preprocess)
    return bundle, evaluate(bundle, shards, REGIONS)


def test_default_out_dir_is_next_to_the_bundle():
    assert default_out_dir("/runs/a/bundle", "test") == "/runs/a/evaluation-test"
    assert default_out_dir("/runs/a/bundle/", "validation") == "/runs/a/evaluation-validation"
    assert default_out_dir("s3://bucket/runs/a/bundle", "test") == "s3://bucket/runs/a/evaluation-test"


def test_evaluation_writes_tables_and_figures(shards, evaluated):
    bundle, result = evaluated
    assert result.out_dir == default_out_dir(bundle, "test")
    for name in ("station_predictions.parquet", "event_predictions.parquet", "metrics.csv", "metrics.parquet",
                 "summary.csv", "member_accuracy.csv", "reliability.png", "spread.png", "triage.json",
                 "coverage_accuracy.csv", "coverage_accuracy.png", "calibration.png",
                 *(f"confusion_{m}_{level}.png" for m in ("best_member", "ensemble") for level in ("station", "event"))):
        path = os.path.join(result.out_dir, name)
        assert os.path.getsize(path) > 0, name
    with open(os.path.join(result.out_dir, "reliability.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    stations = pd.read_parquet(os.path.join(result.out_dir, "station_predictions.parquet"))
    assert len(stations) == label_counts(shards, REGIONS)["test"].sum()
    member_columns = [f"p_{c}_m{m:03d}" for m in range(N_MEMBERS) for c in CLASS_NAMES]
    assert set(member_columns) <= set(stations.columns)
    np.testing.assert_allclose(stations[[f"p_{c}_m000" for c in CLASS_NAMES]].sum(axis=1), 1.0, atol=1e-5)

    assert list(result.summary.index) == ["best single (member 1)", f"ensemble ({N_MEMBERS} members)"]
    assert list(result.summary.columns) == ["station acc", "event acc"]
    assert "station acc" in result.format()
    metrics = pd.read_csv(os.path.join(result.out_dir, "metrics.csv"))
    assert set(metrics["model"]) == {"best_member", "ensemble"} and set(metrics["level"]) == {"station", "event"}
    per_class = metrics[(metrics["metric"] == "f1") & (metrics["class"].isin(CLASS_NAMES))]
    assert len(per_class) == 2 * 2 * len(CLASS_NAMES)


def test_accuracies_match_a_recomputation_from_station_predictions(evaluated):
    """Soft vote = mean of the members' probabilities; event verdict = argmax of the mean
    over the event's stations (event_rule="mean"); events keyed by region and id."""
    _, result = evaluated
    stations = pd.read_parquet(os.path.join(result.out_dir, "station_predictions.parquet"))
    member_probs = np.stack([stations[[f"p_{c}_m{m:03d}" for c in CLASS_NAMES]].to_numpy() for m in range(N_MEMBERS)])
    ensemble = member_probs.mean(axis=0)
    y = stations["label"].to_numpy()

    station_acc = (ensemble.argmax(axis=1) == y).mean()
    by_event = pd.DataFrame(ensemble, columns=CLASS_NAMES).assign(
        region=stations["region"], event_id=stations["event_id"], label=y
    ).groupby(["region", "event_id"])
    event_probs = by_event[list(CLASS_NAMES)].mean().to_numpy()
    event_labels = by_event["label"].first().to_numpy()
    event_acc = (event_probs.argmax(axis=1) == event_labels).mean()
    assert result.summary.loc[f"ensemble ({N_MEMBERS} members)", "station acc"] == pytest.approx(station_acc)
    assert result.summary.loc[f"ensemble ({N_MEMBERS} members)", "event acc"] == pytest.approx(event_acc)

    best = member_probs[1]
    assert result.summary.loc["best single (member 1)", "station acc"] == pytest.approx((best.argmax(1) == y).mean())
    events = pd.read_parquet(os.path.join(result.out_dir, "event_predictions.parquet"))
    assert len(events) == len(event_labels) and events["n_stations"].sum() == len(stations)


def test_triage_of_a_bundle_with_a_policy_matches_a_recomputation(shards, evaluated, tmp_path):
    """With the bundle's temperatures and threshold: confidence = calibrated ensemble
    mean probability of the verdict at event level, the share of events labelled
    automatically at the bundle's threshold, and the target threshold of this split."""
    import json

    from raydisc.ensemble import TriagePolicy, write_triage_policy
    from raydisc.ensemble.triage import calibrate, threshold_for_accuracy

    bundle, _ = evaluated
    copy = tmp_path / "bundle"
    import shutil

    shutil.copytree(bundle, copy)
    temps = (2.0, 0.7, 1.3)
    write_triage_policy(str(copy), TriagePolicy(temperatures=temps, confidence_threshold=0.8,
                                                fitted_on={"split": "validation"}))
    result = evaluate(str(copy), shards, REGIONS, out_dir=str(tmp_path / "out"), plots=False, target_accuracy=0.9)
    stations = result.stations
    member = [calibrate(stations[[f"p_{c}_m{m:03d}" for c in CLASS_NAMES]].to_numpy(), temps[m])
              for m in range(N_MEMBERS)]
    keys = (stations["region"] + "/" + stations["event_id"]).to_numpy()
    calibrated = np.mean([aggregate_events(keys, p)[1] for p in member], axis=0)
    events = result.events
    verdict = events["predicted_ensemble"].to_numpy()
    confidence = calibrated[np.arange(len(events)), verdict]
    np.testing.assert_allclose(events["confidence_ensemble"], confidence, atol=1e-6)
    assert events["triage_ensemble"].tolist() == np.where(confidence >= 0.8, "auto", "review").tolist()
    correct = verdict == events["label"].to_numpy()
    summary = json.loads((tmp_path / "out" / "triage.json").read_text())
    at_bundle = summary["ensemble"]["at_bundle_threshold"]
    assert at_bundle["coverage"] == pytest.approx((confidence >= 0.8).mean())
    expected = threshold_for_accuracy(confidence, correct, 0.9)
    at_target = summary["ensemble"]["at_target"]
    assert at_target["threshold"] == ("never" if expected is None else pytest.approx(expected))
    assert summary["policy"]["temperatures"] == list(temps) and summary["target_accuracy"] == 0.9
    assert "triage at 90.0% target accuracy" in result.format()
    # The verdicts and accuracies are those of the uncalibrated soft vote, unchanged.
    assert result.summary.equals(evaluated[1].summary)


def test_majority_rule_uses_station_votes(shards, evaluated, tmp_path):
    bundle, _ = evaluated
    result = evaluate(bundle, shards, REGIONS, out_dir=str(tmp_path / "majority"), event_rule="majority", plots=False)
    stations = result.stations
    keys = (stations["region"] + "/" + stations["event_id"]).to_numpy()
    probs = stations[[f"p_{c}_ensemble" for c in CLASS_NAMES]].to_numpy()
    _, expected = aggregate_events(keys, probs, rule="majority")
    np.testing.assert_allclose(result.events[[f"p_{c}_ensemble" for c in CLASS_NAMES]].to_numpy(), expected)
    assert not os.path.exists(tmp_path / "majority" / "spread.png")


def test_bundle_made_with_other_preprocessing_is_refused(shards, tmp_path):
    other = PreprocessConfig(window_length_s=60.0)
    bundle = _random_bundle(str(tmp_path / "bundle"), other)
    with pytest.raises(BundleError, match="model input differs"):
        evaluate(bundle, shards, REGIONS)
