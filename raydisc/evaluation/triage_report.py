"""Triage on an evaluated split: how many events each model can label automatically at a
target accuracy, and how well calibration works.

For the ensemble (the bundle's :class:`~raydisc.ensemble.triage.TriagePolicy`) and the
best single member (its own temperature), per event: the calibrated confidence of the
verdict, the coverage-accuracy curve, the threshold that reaches the target accuracy on
this split and the share of events labelled automatically at it; for the ensemble also
what the bundle's own threshold (fitted on the validation split) does here. Calibration:
expected calibration errors (top label, 10 bins) before and after temperature scaling,
at station and event level.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..ensemble.triage import (NEVER, TriagePolicy, calibrate_members, coverage_accuracy_curve, coverage_at,
                               event_triage, mark, threshold_for_accuracy)
from ..ensemble.voting import soft_vote
from .metrics import reliability_curve

MODELS = ("ensemble", "best_member")


@dataclass
class TriageReport:
    """``summary``: JSON-ready dict (``triage.json``); ``curves``: the coverage-accuracy
    rows ``(model, threshold, auto, coverage, accuracy)``; ``events``: per event (in
    :func:`~raydisc.ensemble.voting.aggregate_events` order) ``confidence_{model}``,
    ``disagreement_ensemble`` (nats) and ``triage_ensemble`` by the bundle's threshold;
    ``reliability``: station-level reliability curves before/after calibration."""

    summary: dict[str, Any]
    curves: pd.DataFrame
    events: pd.DataFrame
    reliability: dict[str, dict[str, Any]]

    def format(self) -> str:
        """A few lines: threshold and automatic share per model, ECE before/after."""
        s = self.summary
        lines = [f"triage at {100 * s['target_accuracy']:.1f}% target accuracy ({s['events']} events):"]
        for model in MODELS:
            m = s[model]
            at = m["at_target"]
            reach = ("unreachable" if at["threshold"] == NEVER else
                     f"threshold {at['threshold']:.4f}: {100 * at['coverage']:.1f}% of events automatic "
                     f"({at['auto']}), accuracy {100 * at['accuracy']:.1f}%")
            lines.append(f"  {model:<12} {reach}; ECE station {m['ece_station_uncalibrated']:.3f} -> "
                         f"{m['ece_station_calibrated']:.3f}, event {m['ece_event_uncalibrated']:.3f} -> "
                         f"{m['ece_event_calibrated']:.3f}")
        b = s["ensemble"]["at_bundle_threshold"]
        if b["threshold"] is not None:
            shown = b["threshold"] if b["threshold"] == NEVER else f"{b['threshold']:.4f}"
            accuracy = "n/a" if not np.isfinite(b["accuracy"]) else f"{100 * b['accuracy']:.1f}%"
            lines.append(f"  bundle threshold {shown} (fitted on {s['policy']['fitted_on'].get('split', '?')}): "
                         f"{100 * b['coverage']:.1f}% automatic, accuracy {accuracy}")
        return "\n".join(lines)


def _at(confidence: np.ndarray, correct: np.ndarray, threshold) -> dict[str, Any]:
    return {"threshold": threshold, **coverage_at(confidence, correct, threshold)}


def triage_report(keys: np.ndarray, member_probs: np.ndarray, y_station: np.ndarray, y_event: np.ndarray,
                  policy: TriagePolicy, best: int, target_accuracy: float,
                  rule: Literal["mean", "majority"] = "mean") -> TriageReport:
    """Triage of the evaluated recordings.

    ``keys`` ``(n,)`` event key of each recording, ``member_probs`` ``(n_members, n,
    n_classes)``, ``y_station`` ``(n,)`` and ``y_event`` ``(n_events,)`` true classes
    (events in sorted key order), ``policy`` the bundle's, ``best`` the best member.
    """
    temps = np.asarray(policy.temperatures)
    triaged = {"ensemble": event_triage(keys, member_probs, temps, rule=rule),
               "best_member": event_triage(keys, member_probs[best:best + 1], temps[best:best + 1], rule=rule)}
    station = {"ensemble": (soft_vote(member_probs), soft_vote(calibrate_members(member_probs, temps))),
               "best_member": (member_probs[best].astype(np.float64),
                               calibrate_members(member_probs[best:best + 1], temps[best:best + 1])[0])}
    summary: dict[str, Any] = {"target_accuracy": target_accuracy, "best_member_index": int(best),
                               "events": int(len(y_event)),
                               "recordings": int(len(y_station)), "event_rule": rule, "policy": policy.to_dict()}
    rows, reliability = [], {}
    events = pd.DataFrame(index=np.arange(len(y_event)))
    for model in MODELS:
        t = triaged[model]
        correct = t.verdict == y_event
        threshold = threshold_for_accuracy(t.confidence, correct, target_accuracy)
        curve = coverage_accuracy_curve(t.confidence, correct)
        rows.append(pd.DataFrame({"model": model, **curve}))
        before, after = station[model]
        reliability[f"{model}, uncalibrated"] = reliability_curve(y_station, before)
        reliability[f"{model}, calibrated"] = reliability_curve(y_station, after)
        summary[model] = {
            "temperatures": temps.tolist() if model == "ensemble" else [float(temps[best])],
            "event_accuracy": float(correct.mean()),
            "at_target": _at(t.confidence, correct, NEVER if threshold is None else threshold),
            "ece_station_uncalibrated": reliability[f"{model}, uncalibrated"]["ece"],
            "ece_station_calibrated": reliability[f"{model}, calibrated"]["ece"],
            "ece_event_uncalibrated": reliability_curve(y_event, t.probabilities)["ece"],
            "ece_event_calibrated": reliability_curve(y_event, t.calibrated)["ece"],
        }
        events[f"confidence_{model}"] = t.confidence
        if model == "ensemble":
            summary[model]["at_bundle_threshold"] = _at(t.confidence, correct, policy.confidence_threshold)
            events["disagreement_ensemble"] = t.disagreement
            events["triage_ensemble"] = mark(t.confidence, policy.confidence_threshold)
    return TriageReport(summary=summary, curves=pd.concat(rows, ignore_index=True), events=events,
                        reliability=reliability)


__all__ = ["TriageReport", "triage_report"]
