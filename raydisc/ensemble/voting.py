"""Combining class probabilities: across ensemble members (soft voting) and across the
station recordings of one event (event-level verdicts).

All functions are vectorized numpy; shapes are given as ``(axis, ...)`` with
``n_members`` ensemble members, ``n`` station recordings and ``n_classes`` classes.
Probabilities are dimensionless, each row summing to 1.
"""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np


def _member_array(member_probs) -> np.ndarray:
    arr = np.asarray(member_probs, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise ValueError(f"member_probs must have shape (n_members >= 1, n, n_classes), got {arr.shape}")
    return arr


def soft_vote(member_probs) -> np.ndarray:
    """Ensemble probabilities: the mean of the members' class probabilities.

    ``member_probs``: ``(n_members, n, n_classes)`` -> ``(n, n_classes)``.
    """
    return _member_array(member_probs).mean(axis=0)


def ensemble_spread(member_probs) -> np.ndarray:
    """Disagreement of the members about each recording, shape ``(n,)``.

    Defined as the population standard deviation (``ddof=0``) across members of the
    probability each member assigns to the class the *ensemble* predicts (argmax of
    :func:`soft_vote`). 0 means all members agree exactly; for two classes the maximum
    is 0.5 (half the members certain of each class). A single-member ensemble has spread 0.
    """
    arr = _member_array(member_probs)
    predicted = soft_vote(arr).argmax(axis=1)
    p_of_predicted = np.take_along_axis(arr, predicted[None, :, None], axis=2)[..., 0]
    return p_of_predicted.std(axis=0)


def best_member(validation_scores: Sequence[float], higher_is_better: bool = True) -> int:
    """Index of the best member by a validation score.

    NaN scores (a diverged member, a missing metric) never win; ties go to the lowest
    index. ``ValueError`` if there is no finite score at all.
    """
    scores = np.asarray(validation_scores, dtype=np.float64).ravel()
    finite = np.isfinite(scores)
    if not finite.any():
        raise ValueError(f"no finite validation score among {scores.tolist()}")
    # Replace non-finite scores by the worst possible value, then argmax/argmin's
    # first-occurrence rule gives the lowest index among ties.
    if higher_is_better:
        return int(np.argmax(np.where(finite, scores, -np.inf)))
    return int(np.argmin(np.where(finite, scores, np.inf)))


def aggregate_events(
    event_ids, probs, rule: Literal["mean", "majority"] = "mean"
) -> tuple[np.ndarray, np.ndarray]:
    """Combine station-level probabilities into one verdict per event.

    ``event_ids``: ``(n,)`` event id of each recording; ``probs``: ``(n, n_classes)``.
    Returns ``(unique_event_ids, event_probs)`` with the ids sorted (``np.unique`` order)
    and ``event_probs`` of shape ``(n_events, n_classes)``, rows summing to 1:

    * ``"mean"`` (default): mean of the stations' probabilities — every station counts
      with its confidence.
    * ``"majority"``: fraction of the stations whose argmax is each class. When the top
      vote count is tied, the tied classes' combined vote share is split among them in
      proportion to their mean station probabilities, so ``argmax(event_probs)`` breaks
      the tie by mean probability (for two classes a tied event gets exactly its mean
      probabilities); untied events are pure vote fractions. Ties in both votes and mean
      probability go to the lowest class index, as ``argmax`` does.
    """
    ids = np.asarray(event_ids)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must have shape (n, n_classes), got {p.shape}")
    if ids.shape != (p.shape[0],):
        raise ValueError(f"event_ids must have shape ({p.shape[0]},) to match probs, got {ids.shape}")
    if rule not in ("mean", "majority"):
        raise ValueError(f"rule must be 'mean' or 'majority', got {rule!r}")

    unique_ids, inverse = np.unique(ids, return_inverse=True)
    n_events, n_classes = len(unique_ids), p.shape[1]
    n_stations = np.bincount(inverse, minlength=n_events).astype(np.float64)[:, None]
    mean = np.zeros((n_events, n_classes))
    np.add.at(mean, inverse, p)
    mean /= np.maximum(n_stations, 1)
    if rule == "mean":
        return unique_ids, mean

    votes = np.zeros((n_events, n_classes), dtype=np.int64)
    np.add.at(votes, (inverse, p.argmax(axis=1)), 1)
    # Compare integer counts, not float fractions, to find exact ties.
    tied = votes == votes.max(axis=1, keepdims=True)
    fractions = votes / n_stations
    tied_share = np.where(tied, fractions, 0.0).sum(axis=1, keepdims=True)
    weights = np.where(tied, mean, 0.0)
    # A class with a vote was some station's argmax, so its mean probability is > 0.
    split = tied_share * weights / weights.sum(axis=1, keepdims=True)
    has_tie = tied.sum(axis=1, keepdims=True) > 1
    return unique_ids, np.where(has_tie & tied, split, fractions)


__all__ = ["soft_vote", "ensemble_spread", "best_member", "aggregate_events"]
