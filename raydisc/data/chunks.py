"""The one chunk worker of the preprocessing job and of re-labelling.

Both jobs cut a region's catalog into chunks of events and, per chunk, parse the
entries, cut every station's recording and preprocess them (:func:`cut_and_preprocess`);
what differs is only what follows (shards vs inference and result tables). Failures are
isolated in one place (:func:`preprocess_isolating`, also used by the Python API and
Serve), and rejects are written by one function (:func:`write_rejects`).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa

from ..config import PreprocessConfig
from ..labels import DEFAULT_SCHEME, LabelScheme
from ..features.batch import preprocess_recordings
from ..features.preprocess import INPUT_KINDS
from .catalog import CatalogEntry, EventInfo, index_catalog, parse_catalog_entries_isolating
from .inventory import StationInfo, read_stations
from .records import Reject
from .recordings import Recording
from .shards import REJECT_SCHEMA, write_table_atomic

#: ``event_id -> source`` (file or service) named in reject rows, or one fixed name.
SourceOf = Callable[[str], str] | str


def index_region(catalog_uri: str, inventory_uri: str) -> tuple[list[CatalogEntry], dict[str, StationInfo]]:
    """A region's catalog index (event ids and unparsed entries) and its stations keyed
    ``NET.STA``; raises :class:`~raydisc.data.records.IngestError` naming the file."""
    return index_catalog(catalog_uri), read_stations(inventory_uri)


def chunked(entries: Sequence[CatalogEntry], size: int) -> list[tuple[CatalogEntry, ...]]:
    """``entries`` in consecutive chunks of ``size`` (catalog order, so chunk membership
    is the same in every run)."""
    return [tuple(entries[start:start + size]) for start in range(0, len(entries), size)]


def _source(source: SourceOf, event_id: str) -> str:
    return source if isinstance(source, str) else source(event_id)


def preprocess_isolating(recordings: Sequence[Recording], config: PreprocessConfig, source: SourceOf = "",
                         kinds: Sequence[str] = INPUT_KINDS
                         ) -> tuple[list[Recording], dict[str, np.ndarray], list[Reject]]:
    """Model inputs of the recordings that preprocess to finite values, those recordings,
    and ``preprocessing_error`` rejects for the others.

    Returns ``(kept, inputs, rejects)``: ``inputs[kind]`` float32 ``(len(kept), *shape)``
    for each of ``kinds`` (a recording is kept only if all are finite, whatever their
    rank). One vectorized call normally; only if it raises is each recording retried
    alone, so one bad recording costs only itself. ``source`` names the data in rejects.
    """
    recordings = list(recordings)
    try:
        batches = [(recordings, preprocess_recordings(recordings, config, kinds))] if recordings else []
    except Exception:
        batches = []
        for r in recordings:
            try:
                batches.append(([r], preprocess_recordings([r], config, kinds)))
            except Exception as exc:
                batches.append(([r], exc))
    kept: list[Recording] = []
    parts: dict[str, list[np.ndarray]] = {k: [] for k in kinds}
    rejects: list[Reject] = []
    for recs, values in batches:
        if isinstance(values, Exception):
            detail = f"{type(values).__name__}: {values}"
            ok = np.zeros(len(recs), dtype=bool)
        else:
            detail = "preprocessing produced non-finite values"
            ok = np.ones(len(recs), dtype=bool)
            for kind in kinds:
                ok &= np.isfinite(values[kind]).reshape(len(recs), -1).all(axis=1)
                parts[kind].append(values[kind][ok])
        for r, good in zip(recs, ok):
            if good:
                kept.append(r)
            else:
                rejects.append(Reject(r.event.region, r.event.event_id, r.key, "preprocessing_error", detail,
                                      _source(source, r.event.event_id)))
    shapes = {"spectrogram": config.spectrogram_shape, "waveform": config.waveform_shape}
    inputs = {k: np.concatenate(v).astype(np.float32, copy=False) if v else np.zeros((0, *shapes[k]), np.float32)
              for k, v in parts.items()}
    return kept, inputs, rejects


@dataclass
class PreparedChunk:
    """One chunk after :func:`cut_and_preprocess`: its parsed ``events``, the usable
    ``recordings`` with their ``inputs`` (kind -> float32 ``(n, *shape)``, row i of
    recording i) and the ``rejects`` (unparsable entries, cut and preprocessing failures)."""

    events: list[EventInfo]
    recordings: list[Recording]
    inputs: dict[str, np.ndarray]
    rejects: list[Reject]


def cut_and_preprocess(entries: Sequence[CatalogEntry], region: str,
                       cut: Callable[[EventInfo], tuple[list[Recording], list[Reject]]],
                       config: PreprocessConfig, source: SourceOf = "",
                       kinds: Sequence[str] = INPUT_KINDS, scheme: LabelScheme = DEFAULT_SCHEME) -> PreparedChunk:
    """Parse a chunk's catalog entries (labelled by ``scheme``), cut each event's recordings (``cut(event)``,
    which never raises for bad data) and preprocess them (:func:`preprocess_isolating`).
    Bad data becomes reject rows, never an exception."""
    events, rejects = parse_catalog_entries_isolating(list(entries), region, scheme)
    recordings: list[Recording] = []
    for event in events:
        found, rejected = cut(event)
        recordings += found
        rejects += rejected
    recordings, inputs, failed = preprocess_isolating(recordings, config, source, kinds)
    return PreparedChunk(events, recordings, inputs, rejects + failed)


def task_dataset(tasks: Sequence):
    """A Ray Data dataset of one row ``{"task": pickled task}`` per task, one block each.

    Tasks travel pickled (our own objects, made in the driver): a bytes column is native
    to Arrow, whereas a dataclass column makes Ray Data warn and fall back to objects."""
    import ray

    items = [{"task": pickle.dumps(t)} for t in tasks]
    return ray.data.from_items(items, override_num_blocks=len(items))


def write_rejects(uri: str, rejects: Sequence[Reject]) -> None:
    """Write reject rows (:data:`~raydisc.data.shards.REJECT_SCHEMA`) atomically."""
    write_table_atomic(uri, pa.Table.from_pylist([r.__dict__ for r in rejects], schema=REJECT_SCHEMA))


__all__ = ["INPUT_KINDS", "PreparedChunk", "chunked", "cut_and_preprocess", "index_region", "preprocess_isolating",
           "task_dataset", "write_rejects"]
