"""Triage by ensemble disagreement: temperature scaling, mutual information, the
coverage-accuracy curve and threshold, the policy in bundles, and the triage fields of the
re-labelling tables, the review list and the one-event answer (endpoint schema)."""
from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from raydisc.ensemble import BundleError, aggregate_events, load_bundle, read_manifest, soft_vote, write_triage_policy
from raydisc.ensemble.triage import (NEVER, TriagePolicy, calibrate, coverage_accuracy_curve, coverage_at,
                                     event_triage, fit_temperature, mark, mutual_information, threshold_for_accuracy)
from raydisc.reprocess.outputs import write_review
from raydisc.reprocess.tables import result_tables
from raydisc.storage import read_bytes
from serving_helpers import N_MEMBERS, make_tiny_bundle


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sample(p, rng):
    return (rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)


# ----------------------------------------------------------------- the numpy core


@pytest.mark.parametrize("n_classes, true_t", [(2, 2.5), (4, 0.5)])
def test_temperature_fit_recovers_a_known_temperature(n_classes, true_t):
    rng = np.random.default_rng(n_classes)
    z = 2.0 * rng.normal(size=(20_000, n_classes))
    y = _sample(_softmax(z), rng)  # labels drawn from softmax(z): calibrated at T = 1 on z
    # A member whose logits are z / true_t: calibrated by T, they become z / (true_t T),
    # right at T = 1 / true_t.
    member = _softmax(z / true_t)
    fitted = fit_temperature(member, y)
    assert fitted == pytest.approx(1 / true_t, rel=0.05)
    # Calibrating with it lowers the NLL below both T = 1 and a temperature 20 % off.
    nll = {t: -np.log(calibrate(member, t)[np.arange(len(y)), y]).mean() for t in (1.0, fitted, 1.2 * fitted)}
    assert nll[fitted] < nll[1.0] and nll[fitted] < nll[1.2 * fitted]


def test_calibration_keeps_the_argmax_and_temperature_one_is_identity():
    p = _softmax(np.random.default_rng(0).normal(size=(50, 4)))
    np.testing.assert_allclose(calibrate(p, 1.0), p)
    assert (calibrate(p, 3.0).argmax(axis=1) == p.argmax(axis=1)).all()
    assert (calibrate(p, 3.0).max(axis=1) < p.max(axis=1)).all()  # flatter


def test_mutual_information_is_zero_for_identical_members_and_positive_for_disagreeing_ones():
    p = _softmax(np.random.default_rng(1).normal(size=(30, 4)))
    np.testing.assert_allclose(mutual_information(np.stack([p, p, p])), 0.0, atol=1e-12)
    # Two certain members of opposite classes: MI = ln 2 (mean is 50/50, members have entropy 0).
    certain = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    np.testing.assert_allclose(mutual_information(certain), [math.log(2)])
    disagreeing = np.stack([p, p[::-1]])
    mi = mutual_information(disagreeing)
    assert (mi >= 0).all() and mi.mean() > 0.01


def test_coverage_accuracy_curve_and_threshold_by_hand():
    # Sorted by confidence: 0.99 ok, 0.95 ok, 0.9 wrong, 0.9 ok (tie), 0.8 ok, 0.6 wrong.
    confidence = np.array([0.9, 0.99, 0.6, 0.95, 0.8, 0.9])
    correct = np.array([False, True, False, True, True, True])
    curve = coverage_accuracy_curve(confidence, correct)
    np.testing.assert_allclose(curve["threshold"], [0.99, 0.95, 0.9, 0.8, 0.6])
    assert curve["auto"].tolist() == [1, 2, 4, 5, 6]  # the tie enters together
    np.testing.assert_allclose(curve["accuracy"], [1, 1, 3 / 4, 4 / 5, 4 / 6])
    np.testing.assert_allclose(curve["coverage"], np.array([1, 2, 4, 5, 6]) / 6)
    assert threshold_for_accuracy(confidence, correct, 0.99) == 0.95
    assert threshold_for_accuracy(confidence, correct, 0.8) == 0.8  # largest coverage reaching 80 %
    assert threshold_for_accuracy(confidence, correct, 0.6) == 0.6
    # Unreachable: even the most confident event is wrong.
    assert threshold_for_accuracy(confidence, ~correct, 0.99) is None
    at = coverage_at(confidence, correct, 0.95)
    assert at["auto"] == 2 and at["coverage"] == pytest.approx(2 / 6) and at["accuracy"] == 1.0
    assert coverage_at(confidence, correct, NEVER)["auto"] == 0
    assert mark(confidence, 0.9).tolist() == ["auto", "auto", "review", "auto", "review", "auto"]
    assert set(mark(confidence, None)) == {"auto"} and set(mark(confidence, NEVER)) == {"review"}


def test_event_triage_keeps_the_soft_vote_verdict_and_aggregates_like_voting():
    rng = np.random.default_rng(3)
    member = _softmax(rng.normal(size=(3, 12, 4)) * 2)
    ids = np.repeat(["b", "a", "c"], 4)
    _, expected = aggregate_events(ids, soft_vote(member))
    t = event_triage(ids, member, [2.0, 0.5, 1.0])
    assert t.event_ids.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(t.probabilities, expected)
    assert (t.verdict == expected.argmax(axis=1)).all()
    np.testing.assert_allclose(t.calibrated.sum(axis=1), 1.0)
    assert (t.disagreement > 0).all()
    # Without calibration the confidence is the soft vote's probability of the verdict.
    plain = event_triage(ids, member)
    np.testing.assert_allclose(plain.confidence, expected.max(axis=1))


def test_policy_fit_round_trip_and_validation():
    rng = np.random.default_rng(4)
    member = _softmax(rng.normal(size=(2, 40, 2)) * 3)
    ids = np.repeat(np.arange(10), 4)
    y = np.repeat(rng.integers(0, 2, 10), 4)
    policy = TriagePolicy.fit(ids, member, y, target_accuracy=0.9, fitted_on={"split": "validation"})
    assert len(policy.temperatures) == 2 and policy.fitted_on["events"] == 10
    assert policy.fitted_on["split"] == "validation" and policy.target_accuracy == 0.9
    assert TriagePolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy
    with pytest.raises(ValueError, match="temperatures"):
        TriagePolicy(temperatures=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        TriagePolicy(temperatures=(1.0,), confidence_threshold=1.5)
    with pytest.raises(ValueError, match="unknown field"):
        TriagePolicy.from_dict({"temperatures": [1.0], "treshold": 0.5})


# ----------------------------------------------------------------- bundles


def test_policy_round_trips_through_a_bundle_and_an_old_bundle_loads(tmp_path):
    uri = make_tiny_bundle(str(tmp_path / "b"))
    old = read_manifest(uri)
    assert "triage" not in old  # a bundle made without a policy, as before triage
    bundle = load_bundle(uri)
    assert bundle.triage_policy == TriagePolicy.identity(N_MEMBERS)
    assert bundle.triage_policy.confidence_threshold is None  # every event auto

    policy = TriagePolicy(temperatures=(1.5, 0.8, 2.0), confidence_threshold=0.75, target_accuracy=0.99,
                          fitted_on={"split": "validation", "events": 12})
    new_id = write_triage_policy(uri, policy)
    assert new_id != old["bundle_id"]  # the policy is part of the content
    again = load_bundle(uri)
    assert again.bundle_id == new_id and again.triage_policy == policy
    assert read_manifest(uri)["created_at"] == old["created_at"]

    with pytest.raises(BundleError, match="2 temperatures for 3 members"):
        write_triage_policy(uri, TriagePolicy(temperatures=(1.0, 1.0)))
    manifest = json.loads(read_bytes(f"{uri}/bundle.json"))
    manifest["triage"]["temperatures"] = [1.0, -1.0, 1.0]
    (tmp_path / "b" / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=f"bundle {uri}: invalid triage policy"):
        load_bundle(uri)


# ----------------------------------------------------------------- re-labelling and the one-event answer


def _columns(event_ids, catalog_class):
    n = len(event_ids)
    return {"event_id": np.array(event_ids, dtype=object), "region": np.array(["r"] * n, dtype=object),
            "network": np.array(["XX"] * n, dtype=object), "station": np.array([f"S{i}" for i in range(n)], dtype=object),
            "location": np.array([""] * n, dtype=object), "components": np.array(["ZNE"] * n, dtype=object),
            "pick_source": np.array(["catalog"] * n, dtype=object), "response": np.array(["full"] * n, dtype=object),
            "distance_km": np.full(n, 10.0), "sampling_rate": np.full(n, 100.0),
            "input_hash": np.array(["h"] * n, dtype=object), "source": np.array(["s"] * n, dtype=object),
            "origin_time": np.full(n, 1.6e9), "magnitude": np.full(n, 2.0),
            "catalog_type": np.array(["earthquake"] * n, dtype=object), "catalog_class": np.array(catalog_class)}


def test_relabelling_marks_events_by_an_overridden_threshold_and_lists_them_for_review(tmp_path):
    # Event e1: both members sure of class 0 (catalog class 0); e2: members disagree
    # (catalog class 0); e3: both sure of class 1 (catalog says 0: a contradiction).
    member = np.array([
        [[0.99, 0.01], [0.98, 0.02]], [[0.97, 0.03], [0.99, 0.01]],
        [[0.9, 0.1], [0.2, 0.8]],
        [[0.02, 0.98], [0.03, 0.97]],
    ], dtype=np.float32)  # (n, n_members, n_classes)
    columns = _columns(["e1", "e1", "e2", "e3"], [0, 0, 0, 0])
    policy = TriagePolicy(temperatures=(1.0, 1.0), confidence_threshold=0.6)
    _, by_policy = result_tables(columns, member, ["earthquake", "blast"], "bid", "r", policy)
    events = by_policy.to_pandas().set_index("event_id")
    assert events["triage"].tolist() == ["auto", "review", "auto"]  # e2's confidence is 0.55
    assert events.loc["e2", "confidence"] == pytest.approx(0.55)
    assert events.loc["e2", "disagreement"] > events.loc["e1", "disagreement"] >= 0
    # Confidences: e1 0.9825, e2 0.55, e3 0.975.
    _, overridden = result_tables(columns, member, ["earthquake", "blast"], "bid", "r", policy, review_below=0.978)
    assert overridden.to_pandas()["triage"].tolist() == ["auto", "review", "review"]
    # Verdicts and probabilities do not depend on triage.
    assert overridden.drop_columns(["triage"]).equals(by_policy.drop_columns(["triage"]))
    _, no_policy = result_tables(columns, member, ["earthquake", "blast"], "bid", "r")
    assert set(no_policy.to_pandas()["triage"]) == {"auto"}

    def review_list(table, name):
        n = write_review(table, "r", "bid", str(tmp_path / f"{name}.csv"), str(tmp_path / f"{name}.txt"))
        rows = csv.DictReader(io.StringIO((tmp_path / f"{name}.csv").read_text()))
        return n, {r["event_id"]: r["reason"] for r in rows}, (tmp_path / f"{name}.txt").read_text()

    n, reasons, _ = review_list(by_policy, "policy")
    assert n == 1 and reasons == {"e2": "low_confidence", "e3": "contradicts_catalog"}
    n, reasons, text = review_list(overridden, "overridden")
    assert n == 1 and reasons == {"e2": "low_confidence", "e3": "both"}
    assert "1 of 3 classified events contradict the catalog type, 2 have a low confidence" in text
    _, reasons, _ = review_list(no_policy, "none")
    assert reasons == {"e3": "contradicts_catalog"}  # as before triage


def test_one_event_answer_and_api_carry_the_triage_fields(tmp_path, tiny_archive):
    import raydisc
    from raydisc.data import layout
    import obspy

    uri = make_tiny_bundle(str(tmp_path / "b"))
    write_triage_policy(uri, TriagePolicy(temperatures=(1.0, 2.0, 0.5), confidence_threshold=0.0))
    ensemble = raydisc.Ensemble.load(uri)
    catalog = obspy.read_events(layout.catalog_uri(tiny_archive, "basin"))
    event_id = str(catalog[0].resource_id).rsplit("/", 1)[-1]
    stream = obspy.read(layout.waveform_uri(tiny_archive, "basin", event_id))
    inventory = layout.inventory_uri(tiny_archive, "basin")
    result = ensemble.classify(stream, inventory, catalog[0])
    ev = result.event
    t = event_triage(np.zeros(len(result.stations)), result.member_probabilities, (1.0, 2.0, 0.5))
    assert ev.confidence == pytest.approx(float(t.confidence[0]))
    assert ev.disagreement == pytest.approx(float(t.disagreement[0]))
    assert ev.triage == "auto"  # threshold 0
    assert ensemble.classify(stream, inventory, catalog[0], review_below=1.0).event.triage == "review"
    table = result.to_pandas("events")
    assert table["confidence"].iloc[0] == pytest.approx(ev.confidence) and table["triage"].iloc[0] == "auto"
    assert ensemble.info.triage["temperatures"] == [1.0, 2.0, 0.5]
    # The endpoint's answer schema carries them.
    from raydisc.serving.routes import openapi_schema

    event_schema = openapi_schema()["components"]["schemas"]["EventResult"]
    assert {"confidence", "disagreement", "triage"} <= set(event_schema["required"])
