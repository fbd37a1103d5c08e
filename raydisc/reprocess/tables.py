"""The re-labelling tables' rows: station recordings and their verdicts, and events.

:func:`recording_columns` gives a recording's metadata columns (:data:`RECORDING_COLUMNS`)
and :func:`result_tables` adds the soft vote, verdicts and spread and aggregates the
events, in the schemas of :mod:`raydisc.reprocess.outputs`. The reprocessing job builds
its chunk files with them, and the Python API (:meth:`raydisc.api.Classification.to_pandas`)
its tables, so both have one definition of every column.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import xxhash

from ..data.ingest import EventInfo, Recording
from ..ensemble import aggregate_events, ensemble_spread, soft_vote
from ..ensemble.triage import TriagePolicy
from ..labels import class_in
from . import outputs

#: Metadata columns carried with every recording: the station's, then its event's
#: (``catalog_class`` -1 = type not in the label map).
RECORDING_COLUMNS = ("event_id", "region", "network", "station", "location", "components", "pick_source", "response",
                     "distance_km", "sampling_rate", "input_hash", "source", "origin_time", "magnitude",
                     "catalog_type", "catalog_class")


#: The definition of the ``input_hash`` column, written as the prefix of every value so
#: that tables made with another definition are never compared by mistake.
INPUT_HASH = "xxh3_128"


def recording_hash(recording: Recording) -> str:
    """``"xxh3_128:<32 hex digits>"``: XXH3 (128 bit) of the raw window (float64 counts
    ``(3, n)``, C order, little-endian) and its rate in Hz (``repr`` of the float):
    the same data gives the same hash whichever archive format it was read from.

    An identity check, not a signature: a non-cryptographic hash at ~50 GB/s instead of
    SHA-256 at ~1.5 GB/s, which was a tenth of the job's CPU time per recording.
    """
    digest = xxhash.xxh3_128(np.ascontiguousarray(recording.counts, dtype="<f8"))
    digest.update(repr(float(recording.sampling_rate)).encode())
    return f"{INPUT_HASH}:{digest.hexdigest()}"


def _event_columns(events: Sequence[EventInfo], label_map: Mapping[str, int]) -> dict:
    """The event columns of :data:`RECORDING_COLUMNS` for one row per event in ``events``;
    ``catalog_class`` per ``label_map`` (the bundle's)."""
    return {
        "origin_time": np.array([e.origin_time for e in events], dtype=np.float64),
        "magnitude": np.array([e.magnitude for e in events], dtype=np.float64),
        "catalog_type": np.array([e.event_type for e in events], dtype=object),
        "catalog_class": np.array([_class_or_missing(e.event_type, label_map) for e in events], dtype=np.int64),
    }


def _class_or_missing(event_type: str, label_map: Mapping[str, int]) -> int:
    label = class_in(event_type, label_map)
    return -1 if label is None else label


def recording_columns(recordings: Sequence[Recording], region: str, events: Sequence[EventInfo],
                      source_of: Callable[[str], str], label_map: Mapping[str, int]) -> dict[str, np.ndarray]:
    """:data:`RECORDING_COLUMNS` of ``recordings`` (one row each): ``events[i]`` is the
    catalog event of recording ``i``, ``source_of(event_id)`` names where its data came
    from, ``label_map`` (the bundle's) gives ``catalog_class``; ``distance_km`` is epicentral (km), ``sampling_rate`` in Hz, ``origin_time``
    POSIX s."""
    return {
        "event_id": np.array([r.event.event_id for r in recordings], dtype=object),
        "region": np.array([region] * len(recordings), dtype=object),
        "network": np.array([r.station.network for r in recordings], dtype=object),
        "station": np.array([r.station.station for r in recordings], dtype=object),
        "location": np.array([r.location for r in recordings], dtype=object),
        "components": np.array([r.components for r in recordings], dtype=object),
        "pick_source": np.array([r.pick_source for r in recordings], dtype=object),
        "response": np.array([r.response_kind for r in recordings], dtype=object),
        "distance_km": np.array([r.distance_km for r in recordings], dtype=np.float64),
        "sampling_rate": np.array([r.sampling_rate for r in recordings], dtype=np.float64),
        "input_hash": np.array([recording_hash(r) for r in recordings], dtype=object),
        "source": np.array([source_of(r.event.event_id) for r in recordings], dtype=object),
        **_event_columns(events, label_map),
    }


def result_tables(columns: dict, member: np.ndarray, class_names: Sequence[str], bundle_id: str,
                  region: str, triage: TriagePolicy | None = None,
                  review_below: float | None = None) -> tuple[pa.Table, pa.Table]:
    """Station and event tables (:func:`~raydisc.reprocess.outputs.station_schema`,
    :func:`~raydisc.reprocess.outputs.event_schema`) of recordings and their members' votes.

    ``columns``: the :data:`RECORDING_COLUMNS` of ``n`` recordings (any order; the event
    columns repeat per recording); ``member``: float32 ``(n, n_members, n_classes)``
    softmax probabilities. Rows are sorted by event and station, so the tables do not
    depend on the order rows arrived in. Each event gets ``confidence``,
    ``disagreement`` and ``triage`` by the bundle's policy ``triage`` (None: the
    identity policy, every event ``auto``), its threshold replaced by ``review_below``
    when given (:meth:`~raydisc.ensemble.triage.TriagePolicy.triage`).
    """
    member = np.asarray(member, dtype=np.float32)
    n = len(columns["event_id"])
    order = np.lexsort((np.asarray(columns["location"], dtype=str), np.asarray(columns["station"], dtype=str),
                        np.asarray(columns["network"], dtype=str), np.asarray(columns["event_id"], dtype=str))) if n else np.arange(0)
    cols = {k: np.asarray(columns[k])[order] for k in RECORDING_COLUMNS}
    member = member[order]
    by_member = member.transpose(1, 0, 2)  # (M, n, C), as the voting functions take it
    names = list(class_names)
    station = {k: cols[k].tolist() for k in RECORDING_COLUMNS}
    # catalog_class -1: the catalog type is not in the label map (missing in the tables).
    station["catalog_class"] = [None if c < 0 else c for c in station["catalog_class"]]
    # Per event: origin time, magnitude, type and class, from its first row.
    events = {}
    for i, e in enumerate(station["event_id"]):
        if e not in events:
            events[e] = (station["origin_time"][i], station["magnitude"][i], station["catalog_type"][i],
                         station["catalog_class"][i])
    if n:
        probs = soft_vote(by_member)
        spread = ensemble_spread(by_member)
    else:
        probs, spread = np.zeros((0, len(names))), np.zeros(0)
    verdict = probs.argmax(axis=1)
    station.update(
        verdict=[names[c] for c in verdict], verdict_class=verdict.tolist(),
        probability=probs[np.arange(n), verdict].tolist(), spread=spread.tolist(),
        member_probabilities=member, bundle_id=[bundle_id] * n,
        **{c: probs[:, i].tolist() for i, c in enumerate(outputs.prob_columns(names))},
    )

    ids = np.asarray(cols["event_id"], dtype=str)
    if n:
        event_ids, event_probs = aggregate_events(ids, probs)
        # Spread of the event verdict: the same statistic as for stations, over the
        # members' own event-level (station-mean) probabilities.
        event_member = np.stack([aggregate_events(ids, by_member[m])[1] for m in range(len(by_member))])
        event_spread = ensemble_spread(event_member)
        n_stations = np.unique(ids, return_counts=True)[1]
        policy = triage if triage is not None else TriagePolicy.identity(by_member.shape[0])
        triaged, marks = policy.triage(ids, by_member, review_below=review_below)
        confidence, disagreement, marks = triaged.confidence.tolist(), triaged.disagreement.tolist(), marks.tolist()
    else:
        event_ids, event_probs = np.array([], dtype=str), np.zeros((0, len(names)))
        event_spread, n_stations = np.zeros(0), np.zeros(0, dtype=int)
        confidence, disagreement, marks = [], [], []
    event_verdict = event_probs.argmax(axis=1)
    infos = [events[e] for e in event_ids.tolist()]  # (origin_time, magnitude, type, class)
    event_table = {
        "event_id": event_ids.tolist(), "region": [region] * len(infos),
        "origin_time": [e[0] for e in infos], "magnitude": [e[1] for e in infos],
        "catalog_type": [e[2] for e in infos], "catalog_class": [e[3] for e in infos],
        "verdict": [names[c] for c in event_verdict], "verdict_class": event_verdict.tolist(),
        "probability": event_probs[np.arange(len(infos)), event_verdict].tolist(),
        "n_stations": n_stations.tolist(), "spread": event_spread.tolist(),
        "contradicts_catalog": [e[3] is not None and e[3] != int(v) for e, v in zip(infos, event_verdict)],
        "confidence": confidence, "disagreement": disagreement, "triage": marks,
        "bundle_id": [bundle_id] * len(infos),
        **{c: event_probs[:, i].tolist() for i, c in enumerate(outputs.prob_columns(names))},
    }
    return (outputs.build_table(station, outputs.station_schema(names, member.shape[1])),
            outputs.build_table(event_table, outputs.event_schema(names)))


__all__ = ["INPUT_HASH", "RECORDING_COLUMNS", "recording_columns", "recording_hash", "result_tables"]
