"""Triage by ensemble disagreement: which verdicts to trust automatically, which an
analyst should review. Pure numpy, generic in the number of classes.

Shapes: ``n_members`` ensemble members, ``n`` station recordings, ``n_classes`` classes;
probabilities are dimensionless (rows sum to 1), entropies and mutual information in
nats, temperatures dimensionless.

* **Temperature scaling** (Guo et al. 2017): member ``m``'s calibrated probabilities are
  ``softmax(z / T_m)`` of its logits ``z``. One temperature per member, fitted on the
  validation split by minimising the negative log-likelihood (:func:`fit_temperature`).
  The bundle stores softmax probabilities, not logits: ``log p`` is the logits minus a
  per-row constant, which softmax ignores, so ``softmax(log p / T)`` is exactly the
  scaled softmax (:func:`logits_of` floors ``p`` at the smallest normal float32 first).
* **Verdicts are unchanged**: the verdict stays the argmax of the uncalibrated soft vote
  (aggregated over an event's stations as everywhere else,
  :func:`~raydisc.ensemble.voting.aggregate_events`). Calibration feeds the confidence
  and the threshold only.
* **Confidence** of an event: the calibrated ensemble-mean probability of the verdict
  class, at event level (members calibrated, soft-voted, then aggregated like the verdict).
* **Disagreement** of an event: the mutual information between the members' event-level
  calibrated predictions and the class, ``H(mean_m p_m) - mean_m H(p_m)``: 0 when all
  members say the same, at most ``ln(n_classes)``.
* **Threshold rule** (:func:`threshold_for_accuracy`): sort events by confidence; the
  threshold is the lowest confidence ``t`` such that the events with confidence ``>= t``
  (labelled automatically) are correct with at least the target accuracy: the largest
  automatic share that reaches the target on the data it is fitted on. ``None`` when
  even the most confident events miss it ("never": everything goes to review).
* **Triage**: an event is ``"auto"`` when its confidence is ``>=`` the threshold, else
  ``"review"``. A policy without a threshold (bundles made before triage) labels every
  event ``auto``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from .voting import aggregate_events, soft_vote

AUTO, REVIEW = "auto", "review"
#: Default accuracy that the automatically labelled events must reach.
DEFAULT_TARGET_ACCURACY = 0.99
#: Stored threshold of a policy whose target accuracy was unreachable: every event is reviewed.
NEVER = "never"
#: Temperatures searched by :func:`fit_temperature` (dimensionless): from sharpening 20x
#: to flattening 20x covers any network that is not degenerate.
TEMPERATURE_BOUNDS = (0.05, 20.0)
#: Probabilities are floored here before the log: the smallest normal float32, so
#: members' float32 softmax outputs that underflowed to 0 stay finite.
_PROBABILITY_FLOOR = float(np.finfo(np.float32).tiny)
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def _probs(p, ndim: int, what: str) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != ndim or arr.shape[-1] < 2:
        shape = "(n_members, n, n_classes >= 2)" if ndim == 3 else "(n, n_classes >= 2)"
        raise ValueError(f"{what} must have shape {shape}, got {arr.shape}")
    return arr


def logits_of(probs) -> np.ndarray:
    """Logits up to a per-row constant: ``log(max(p, tiny))``, same shape as ``probs``."""
    return np.log(np.maximum(np.asarray(probs, dtype=np.float64), _PROBABILITY_FLOOR))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def calibrate(probs, temperature: float) -> np.ndarray:
    """Temperature-scaled probabilities ``softmax(log p / T)``, same shape as ``probs``
    (``(..., n_classes)``); ``T = 1`` returns ``probs`` (as float64)."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be finite and > 0, got {temperature}")
    p = np.asarray(probs, dtype=np.float64)
    if temperature == 1.0:
        return p
    return _softmax(logits_of(p) / temperature)


def calibrate_members(member_probs, temperatures: Sequence[float]) -> np.ndarray:
    """Each member scaled by its own temperature: ``(n_members, n, n_classes)`` in and out."""
    arr = _probs(member_probs, 3, "member_probs")
    temps = np.asarray(temperatures, dtype=np.float64).ravel()
    if temps.shape != (arr.shape[0],):
        raise ValueError(f"{arr.shape[0]} members but {temps.size} temperatures")
    return np.stack([calibrate(arr[m], float(t)) for m, t in enumerate(temps)])


def _nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float((log_norm - z[np.arange(len(y)), y]).mean())


def fit_temperature(probs, y_true, bounds: tuple[float, float] = TEMPERATURE_BOUNDS, tol: float = 1e-4) -> float:
    """The temperature minimising the mean negative log-likelihood of ``y_true`` under
    ``softmax(log probs / T)``.

    ``probs``: ``(n, n_classes)`` one member's probabilities (or ``softmax`` of its
    logits), ``y_true``: ``(n,)`` class indices. A golden-section search over ``log T``
    within ``bounds``, to ``tol`` in ``log T``: the NLL is convex in ``1/T`` (a
    log-sum-exp of functions linear in ``1/T`` minus a linear one), hence unimodal in
    ``log T``, so the search finds the minimum within the bounds (a bound when the
    minimum lies beyond it, e.g. ``T -> 0`` for a member that is right on every recording).
    """
    p = _probs(probs, 2, "probs")
    y = np.asarray(y_true)
    if y.shape != (p.shape[0],) or p.shape[0] == 0:
        raise ValueError(f"y_true must have shape ({p.shape[0]},) with n >= 1, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"y_true must hold class indices in [0, {p.shape[1]})")
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    if not lo < hi:
        raise ValueError(f"bounds must be 0 < low < high, got {bounds}")
    logits = logits_of(p)
    y = y.astype(np.int64)
    a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    fa, fb = _nll(logits, y, math.exp(a)), _nll(logits, y, math.exp(b))
    while hi - lo > tol:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - _GOLDEN * (hi - lo)
            fa = _nll(logits, y, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + _GOLDEN * (hi - lo)
            fb = _nll(logits, y, math.exp(b))
    return float(math.exp(0.5 * (lo + hi)))


def fit_temperatures(member_probs, y_true, **options) -> np.ndarray:
    """:func:`fit_temperature` of every member: ``(n_members, n, n_classes)`` -> ``(n_members,)``."""
    arr = _probs(member_probs, 3, "member_probs")
    return np.array([fit_temperature(arr[m], y_true, **options) for m in range(arr.shape[0])])


def entropy(probs) -> np.ndarray:
    """Shannon entropy (nats) along the last axis; ``0 log 0 = 0``."""
    p = np.asarray(probs, dtype=np.float64)
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=-1)


def mutual_information(member_probs) -> np.ndarray:
    """Disagreement of the members, ``(n,)`` nats: entropy of the mean prediction minus
    the mean of the members' entropies (the BALD mutual information). 0 for identical
    members (a single member included), ``>= 0`` always (floored at 0 against rounding)."""
    arr = _probs(member_probs, 3, "member_probs")
    return np.maximum(entropy(arr.mean(axis=0)) - entropy(arr).mean(axis=0), 0.0)


@dataclass(frozen=True)
class EventTriage:
    """Per event (ids sorted as :func:`~raydisc.ensemble.voting.aggregate_events` sorts
    them): ``event_ids`` ``(n_events,)``; ``probabilities`` ``(n_events, n_classes)``
    the uncalibrated event probabilities (what the tables report); ``verdict``
    ``(n_events,)`` their argmax; ``calibrated`` ``(n_events, n_classes)``;
    ``confidence`` ``(n_events,)`` calibrated probability of the verdict;
    ``disagreement`` ``(n_events,)`` nats."""

    event_ids: np.ndarray
    probabilities: np.ndarray
    verdict: np.ndarray
    calibrated: np.ndarray
    confidence: np.ndarray
    disagreement: np.ndarray


def event_triage(event_ids, member_probs, temperatures: Sequence[float] | None = None,
                 rule: Literal["mean", "majority"] = "mean") -> EventTriage:
    """Verdict, confidence and disagreement of each event.

    ``event_ids``: ``(n,)`` event of each recording; ``member_probs``: ``(n_members, n,
    n_classes)`` softmax probabilities; ``temperatures``: ``(n_members,)`` (default all
    1: no calibration). Every member's calibrated station probabilities are aggregated
    into event probabilities by ``rule``; their mean is the calibrated ensemble, their
    mutual information the disagreement. The verdict is the argmax of the uncalibrated
    soft vote aggregated by the same ``rule``.
    """
    arr = _probs(member_probs, 3, "member_probs")
    temps = np.ones(arr.shape[0]) if temperatures is None else temperatures
    ids, probs = aggregate_events(event_ids, soft_vote(arr), rule=rule)
    calibrated_members = calibrate_members(arr, temps)
    per_member = np.stack([aggregate_events(event_ids, calibrated_members[m], rule=rule)[1]
                           for m in range(arr.shape[0])])
    calibrated = per_member.mean(axis=0)
    verdict = probs.argmax(axis=1)
    return EventTriage(event_ids=ids, probabilities=probs, verdict=verdict, calibrated=calibrated,
                       confidence=calibrated[np.arange(len(ids)), verdict],
                       disagreement=mutual_information(per_member))


def coverage_accuracy_curve(confidence, correct) -> dict[str, np.ndarray]:
    """Accuracy of the automatically labelled events against their share, for every
    threshold: the events sorted by confidence, most confident first.

    ``confidence``: ``(n,)``, ``correct``: ``(n,)`` booleans (verdict right). Returns
    arrays of one entry per distinct confidence value, from high to low:
    ``threshold`` (label automatically when confidence ``>=`` it), ``auto`` (events
    labelled automatically), ``coverage`` (their share of all ``n``) and ``accuracy``
    (the share of them that is correct). Events of equal confidence enter together: a
    threshold cannot split them.
    """
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    hit = np.asarray(correct, dtype=bool).ravel()
    if conf.shape != hit.shape:
        raise ValueError(f"confidence and correct must have equal length, got {conf.shape} and {hit.shape}")
    if conf.size == 0:
        raise ValueError("no events")
    if not np.isfinite(conf).all():
        raise ValueError("confidence must be finite")
    order = np.argsort(-conf, kind="stable")
    conf, hit = conf[order], hit[order]
    n_auto = np.arange(1, conf.size + 1)
    n_right = np.cumsum(hit)
    # The last position of every run of equal confidence values.
    last = np.append(conf[1:] != conf[:-1], True)
    return {"threshold": conf[last], "auto": n_auto[last], "coverage": n_auto[last] / conf.size,
            "accuracy": n_right[last] / n_auto[last]}


def threshold_for_accuracy(confidence, correct, target: float = DEFAULT_TARGET_ACCURACY) -> float | None:
    """The lowest threshold whose automatically labelled events reach ``target``
    accuracy (the largest coverage that does; module docstring), or None when none does."""
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target accuracy must be in (0, 1], got {target}")
    curve = coverage_accuracy_curve(confidence, correct)
    # A small tolerance: 99 of 100 right reaches 0.99 although 99/100 rounds below it.
    reached = np.flatnonzero(curve["accuracy"] >= target - 1e-12)
    return float(curve["threshold"][reached[-1]]) if reached.size else None


def coverage_at(confidence, correct, threshold: float | None) -> dict[str, float]:
    """What a threshold does to ``n`` events: ``coverage`` (share labelled
    automatically), ``accuracy`` on them (NaN if none) and ``auto`` (how many)."""
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    hit = np.asarray(correct, dtype=bool).ravel()
    auto = conf >= review_threshold(threshold)
    n_auto = int(auto.sum())
    return {"auto": n_auto, "coverage": n_auto / max(conf.size, 1),
            "accuracy": float(hit[auto].mean()) if n_auto else float("nan")}


def review_threshold(threshold: float | str | None) -> float:
    """The confidence below which an event is reviewed: a stored threshold as a number
    (``None``: no threshold, 0, every event auto; ``"never"``: infinity, every event
    reviewed)."""
    if threshold is None:
        return 0.0
    if threshold == NEVER:
        return math.inf
    value = float(threshold)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"a confidence threshold must be in [0, 1], got {value}")
    return value


def mark(confidence, threshold: float | str | None) -> np.ndarray:
    """``"auto"`` / ``"review"`` per event (object array), by :func:`review_threshold`."""
    return np.where(np.asarray(confidence, dtype=np.float64) >= review_threshold(threshold), AUTO, REVIEW).astype(object)


@dataclass(frozen=True)
class TriagePolicy:
    """How a bundle's events are triaged; stored in the bundle manifest (``triage``).

    ``temperatures``: one per member (dimensionless, > 0). ``confidence_threshold``: an
    event whose confidence is below it goes to review; ``None`` = no threshold (every
    event auto: bundles made before triage); ``"never"`` = the target was unreachable
    (every event reviewed). ``target_accuracy``: what the threshold was chosen for
    (None without a threshold). ``fitted_on``: where it was fitted (split, regions,
    events, recordings, event rule; free JSON).
    """

    temperatures: tuple[float, ...]
    confidence_threshold: float | str | None = None
    target_accuracy: float | None = None
    fitted_on: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        temps = tuple(float(t) for t in self.temperatures)
        if not temps or not all(math.isfinite(t) and t > 0 for t in temps):
            raise ValueError(f"triage temperatures must be finite and > 0 (one per member), got {list(temps)}")
        object.__setattr__(self, "temperatures", temps)
        if self.confidence_threshold is not None and self.confidence_threshold != NEVER:
            object.__setattr__(self, "confidence_threshold", float(self.confidence_threshold))
        review_threshold(self.confidence_threshold)  # validates the range
        if self.target_accuracy is not None and not 0.0 < self.target_accuracy <= 1.0:
            raise ValueError(f"target_accuracy must be in (0, 1], got {self.target_accuracy}")

    @classmethod
    def identity(cls, n_members: int) -> "TriagePolicy":
        """No calibration and no threshold: what a bundle without a policy gets."""
        return cls(temperatures=(1.0,) * n_members)

    @classmethod
    def fit(cls, event_ids, member_probs, y_station, *,
            target_accuracy: float = DEFAULT_TARGET_ACCURACY, rule: Literal["mean", "majority"] = "mean",
            fitted_on: Mapping[str, Any] | None = None) -> "TriagePolicy":
        """Fit temperatures on station recordings and the threshold on their events.

        ``event_ids`` ``(n,)``, ``member_probs`` ``(n_members, n, n_classes)``,
        ``y_station`` ``(n,)`` true class of each recording (an event's recordings share
        it). Temperatures: :func:`fit_temperatures` per member at station level; the
        threshold: :func:`threshold_for_accuracy` of the events' calibrated confidence
        (:func:`event_triage` with ``rule``).
        """
        y = np.asarray(y_station, dtype=np.int64)
        temps = fit_temperatures(member_probs, y)
        triaged = event_triage(event_ids, member_probs, temps, rule=rule)
        ids, first = np.unique(np.asarray(event_ids), return_index=True)
        y_event = y[first]
        threshold = threshold_for_accuracy(triaged.confidence, triaged.verdict == y_event, target_accuracy)
        return cls(temperatures=tuple(temps.tolist()), confidence_threshold=NEVER if threshold is None else threshold,
                   target_accuracy=target_accuracy,
                   fitted_on={"events": int(len(ids)), "recordings": int(len(y)), "event_rule": rule,
                              **dict(fitted_on or {})})

    def to_dict(self) -> dict[str, Any]:
        return {"temperatures": list(self.temperatures), "confidence_threshold": self.confidence_threshold,
                "target_accuracy": self.target_accuracy, "fitted_on": dict(self.fitted_on)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TriagePolicy":
        """The policy of :meth:`to_dict`; ``ValueError`` naming an unknown or bad field."""
        unknown = sorted(set(data) - {"temperatures", "confidence_threshold", "target_accuracy", "fitted_on"})
        if unknown:
            raise ValueError(f"triage policy has unknown field(s) {unknown}")
        if "temperatures" not in data:
            raise ValueError("triage policy lacks 'temperatures'")
        return cls(temperatures=tuple(data["temperatures"]), confidence_threshold=data.get("confidence_threshold"),
                   target_accuracy=data.get("target_accuracy"), fitted_on=dict(data.get("fitted_on") or {}))

    def triage(self, event_ids, member_probs, review_below: float | None = None,
               rule: Literal["mean", "majority"] = "mean") -> tuple[EventTriage, np.ndarray]:
        """:func:`event_triage` with this policy's temperatures, and each event's
        ``"auto"``/``"review"`` mark by ``review_below`` when given (an override in
        [0, 1]), else by the policy's threshold."""
        triaged = event_triage(event_ids, member_probs, self.temperatures, rule=rule)
        threshold = self.confidence_threshold if review_below is None else review_below
        return triaged, mark(triaged.confidence, threshold)


__all__ = [
    "AUTO", "DEFAULT_TARGET_ACCURACY", "EventTriage", "NEVER", "REVIEW", "TEMPERATURE_BOUNDS", "TriagePolicy",
    "calibrate", "calibrate_members", "coverage_accuracy_curve", "coverage_at", "entropy", "event_triage",
    "fit_temperature", "fit_temperatures", "logits_of", "mark", "mutual_information", "review_threshold",
    "threshold_for_accuracy",
]
