"""Event-wise train/validation/test assignment.

Every recording of an event goes to the same split. Within each region and class, events
are ordered by a keyed hash of (seed, event id) and cut at the configured fractions, so
the assignment is stratified, reproducible from the seed, and does not depend on the
order in which events are listed.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Iterable

from ..config import SplitConfig

SPLITS: tuple[str, ...] = ("train", "validation", "test")


def _rank_key(seed: int, event_id: str) -> str:
    return hashlib.sha256(f"{seed}:{event_id}".encode()).hexdigest()


def assign_splits(events: Iterable[tuple[str, int]], config: SplitConfig) -> dict[str, str]:
    """Map event id -> split name for ``(event_id, label)`` pairs of one region."""
    by_label: dict[int, list[str]] = defaultdict(list)
    for event_id, label in events:
        by_label[label].append(event_id)
    assignment: dict[str, str] = {}
    for ids in by_label.values():
        ordered = sorted(ids, key=lambda e: _rank_key(config.seed, e))
        n = len(ordered)
        n_train = round(n * config.train_fraction)
        n_validation = round(n * config.validation_fraction)
        # With few events of a class, keep at least one in test and validation when possible.
        if n >= 3:
            n_train = min(n_train, n - 2)
            n_validation = max(1, min(n_validation, n - n_train - 1))
        for i, event_id in enumerate(ordered):
            if i < n_train:
                assignment[event_id] = "train"
            elif i < n_train + n_validation:
                assignment[event_id] = "validation"
            else:
                assignment[event_id] = "test"
    return assignment
