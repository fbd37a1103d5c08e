"""Which training events a trial gets: a fraction of the target region's, by event,
stratified by class, nested across fractions and reproducible from the seed."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...config import ConfigError


def sample_fraction_events(events: pd.DataFrame, fraction: float, seed: int) -> list[str]:
    """The event ids of a ``fraction`` of the training events, drawn by event,
    stratified by class, nested and reproducible.

    ``events``: the output of :func:`raydisc.training.data.split_events` for the target
    region's ``train`` split (columns ``region``, ``event_id``, ``label``,
    ``n_recordings``; one row per event). For each class ``c`` with ``n_c`` events, the
    class's events (sorted by region and event id) are permuted with a generator seeded by
    ``(seed, c)`` only — not by ``fraction`` — and the first ``max(1, ceil(fraction *
    n_c))`` are taken. Hence:

    * by event: all recordings of a chosen event go to training together (the ids are
      events, training keeps every recording of them);
    * stratified: each class contributes its own share, at least one event, so a trial
      always sees every class that has training events;
    * nested: for one seed, a smaller fraction's events are a prefix of the same
      permutation as a larger fraction's, hence a subset;
    * reproducible: the same events, seed and fraction give the same ids, whatever the
      row order of ``events``.

    Returns the sorted event ids. ``ConfigError`` for a fraction outside (0, 1] and
    for an empty ``events``.
    """
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise ConfigError(f"fraction must lie in (0, 1], got {fraction!r}")
    if events.empty:
        raise ConfigError("no training events to draw from")
    if events["event_id"].duplicated().any():
        raise ConfigError("event ids are not unique across the given events")
    ordered = events.sort_values(["region", "event_id"], kind="stable")
    chosen: list[str] = []
    for label, group in ordered.groupby("label", sort=True):
        ids = group["event_id"].astype(str).to_numpy()
        rng = np.random.default_rng([int(seed), int(label)])
        take = max(1, math.ceil(fraction * len(ids) - 1e-9))
        chosen.extend(ids[rng.permutation(len(ids))[:take]].tolist())
    return sorted(chosen)
