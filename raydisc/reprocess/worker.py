"""Re-labelling per chunk: the shared chunk worker (:func:`raydisc.data.chunks.cut_and_preprocess`)
with the bundle's preprocessing config, then the ensemble (an actor pool, or fused into
the chunk task on CPUs), then the chunk's result tables (events file, then stations file).
"""
from __future__ import annotations

import logging
import pickle

import numpy as np

from ..data.chunks import cut_and_preprocess, write_rejects
from ..data.records import cap
from ..data.shards import write_table_atomic
from ..ensemble import load_bundle
from ..runtime import reuse_freed_array_memory
from . import outputs
from .sources import cut_event
from .tables import RECORDING_COLUMNS, recording_columns, result_tables
from .tasks import ChunkTask, chunk_fingerprint

log = logging.getLogger(__name__)


def prepare_chunk(batch: dict) -> dict:
    """Ray Data batch function over pickled chunk tasks (``batch_size=1``):
    :func:`prepare_task` of the batch's task."""
    return prepare_task(pickle.loads(batch["task"][0]))


def prepare_task(task: ChunkTask) -> dict:
    """Read the chunk's catalog entries, read, cut and preprocess every recording of its
    events with the bundle's preprocessing config (vectorized over blocks of
    recordings); write the chunk's failures file. Returns one row per usable recording
    with its metadata, ``chunk_key``, ``chunk_rows`` and ``inputs`` (float32
    ``(n, *input_shape)``).

    A chunk without a usable recording is complete here: its (empty) events and stations
    files are written too.
    """
    reuse_freed_array_memory()
    config, kind = task.bundle.preprocess, task.bundle.input_kind
    region = task.source.region
    chunk = cut_and_preprocess(task.entries, region, lambda event: cut_event(task.source, event, task.stations, config),
                               config, task.source.waveform_uri, kinds=(kind,))
    recordings = chunk.recordings
    by_id = {e.event_id: e for e in chunk.events}
    write_rejects(outputs.table_uri(task.output, "failures", region, task.index), chunk.rejects)
    if not recordings:
        finish_chunk(task, {k: np.array([], dtype=object) for k in RECORDING_COLUMNS},
                     np.zeros((0, task.bundle.n_members, len(task.bundle.class_names)), np.float32))
    n = len(recordings)
    columns = recording_columns(recordings, region, [by_id[r.event.event_id] for r in recordings],
                                task.source.waveform_uri, task.bundle.label_map)
    return {
        "chunk_key": np.array([task.key] * n, dtype=object),
        "chunk_rows": np.full(n, n, dtype=np.int64),
        **columns,
        "inputs": chunk.inputs[kind] if n else np.zeros((0, *task.bundle.input_shape), np.float32),
    }


class EnsemblePredictor:
    """Ray Data callable class: holds the loaded bundle (once per actor) and adds
    ``member_probabilities`` float32 ``(rows, n_members, n_classes)`` to each batch,
    dropping the ``inputs`` column."""

    def __init__(self, bundle_uri: str, threads: int | None = None):
        import torch

        if threads:
            # One actor per reserved CPU: more torch threads than that only contend.
            torch.set_num_threads(threads)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.bundle = load_bundle(bundle_uri, map_location=device)

    def __call__(self, batch: dict, batch_size: int | None = None) -> dict:
        x = np.asarray(batch.pop("inputs"), dtype=np.float32)
        member = self.bundle.member_probabilities(x, batch_size=batch_size or max(1, len(x)))  # (M, n, C)
        batch["member_probabilities"] = np.ascontiguousarray(member.transpose(1, 0, 2))
        return batch


#: Per worker process: the predictor of the current job (fused inference), keyed by
#: ``(bundle uri, bundle id, job token)``; a new job loads its bundle afresh.
_FUSED_PREDICTOR: dict[tuple[str, str, str], EnsemblePredictor] = {}


def prepare_predict_finish(batch: dict, job: str, threads: int, batch_size: int) -> dict:
    """The whole chunk in one task: :func:`prepare_task`, the ensemble on the chunk's
    recordings (``batch_size`` recordings per inference batch), then
    :func:`finish_chunk`. Returns one row: ``chunk_key``, ``recordings`` (station rows
    written) and ``error`` ("" when the chunk was written). The bundle is loaded once
    per worker process and job (``job``: a token of the run); nothing but that row
    leaves the worker.

    Bad data never raises here (it becomes failure rows); anything else (lost storage,
    a full disk, a bug) is returned as ``error``, one short line, so that the other
    chunks finish and no task payload ends up in a message.
    """
    task: ChunkTask = pickle.loads(batch["task"][0])
    try:
        out = prepare_task(task)
        n = len(out["inputs"])
        if n:
            key = (task.bundle.uri, task.bundle.bundle_id, job)
            predictor = _FUSED_PREDICTOR.get(key)
            if predictor is None:
                _FUSED_PREDICTOR.clear()
                predictor = _FUSED_PREDICTOR[key] = EnsemblePredictor(task.bundle.uri, threads)
            out = predictor(out, batch_size=batch_size)
            finish_chunk(task, {k: out[k] for k in RECORDING_COLUMNS}, out["member_probabilities"])
        error = ""
    except Exception as exc:
        log.exception("chunk %s failed", task.key)
        n, error = 0, cap(f"{type(exc).__name__}: {exc}")
    return {"chunk_key": np.array([task.key], dtype=object), "recordings": np.array([n], dtype=np.int64),
            "error": np.array([error], dtype=object)}


def finish_chunk(task: ChunkTask, columns: dict, member: np.ndarray) -> int:
    """Vote, aggregate and write one complete chunk: events file, then stations file.

    ``columns``: the :data:`~raydisc.reprocess.tables.RECORDING_COLUMNS` of the chunk's recordings (any order; the
    event columns repeat per recording);
    ``member``: float32 ``(n, n_members, n_classes)``. Rows are sorted by event and
    station, so the files do not depend on the order rows arrived in. Returns the
    number of station rows.
    """
    bundle, region = task.bundle, task.source.region
    table, event_table = result_tables(columns, member, bundle.class_names, bundle.bundle_id, region,
                                       bundle.triage, bundle.review_below)
    write_table_atomic(outputs.table_uri(task.output, "events", region, task.index), event_table)
    # The stations file last: its existence marks the chunk complete; its footer names
    # the chunk's events, so a re-run against a changed catalog redoes the chunk.
    table = table.replace_schema_metadata({outputs.CHUNK_EVENTS_KEY: chunk_fingerprint(task).encode()})
    write_table_atomic(outputs.table_uri(task.output, "stations", region, task.index), table)
    return table.num_rows


__all__ = ["EnsemblePredictor", "finish_chunk", "prepare_chunk", "prepare_predict_finish", "prepare_task"]
