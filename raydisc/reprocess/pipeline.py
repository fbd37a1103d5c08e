"""Batch classification of whole archives: a Ray Data pipeline from catalog events to
station- and event-level verdicts.

The driver indexes each region's catalog (event ids and XML fragments, with lxml: fast)
and reads its inventory once, and cuts the events into chunks of ``events_per_chunk``
(in event-id order, so chunk membership is the same in every run). Chunks whose
stations file exists and names the same events are skipped. The rest stream through::

    chunk tasks ──map_batches(prepare_chunk)──▶ one row per usable recording (model input)
      (CPU tasks: read the chunk's catalog entries, read waveforms, cut, the one
       vectorized preprocessing function over blocks of recordings; unusable inputs and
       unparsable catalog entries are written to the chunk's failures file)
    ──map_batches(EnsemblePredictor, actor pool)──▶ member probabilities per recording
      (bundle loaded once per actor; GPUs when the cluster has them)
    ──driver──▶ regroups the rows of each chunk; when a chunk is complete, soft vote,
      spread and event aggregation, then events file, then stations file (atomic)

On a cluster without GPUs (``ReprocessConfig.fuse_inference`` None, the default) the
three stages are one: each chunk task runs the ensemble on its own recordings (bundle
loaded once per worker process and job) and writes its chunk's files itself, returning
one row per chunk to the driver. An inference actor on CPUs would take a new process,
torch import and all (seconds), hold a CPU that idles while preprocessing is the slower
stage, and copy every model input through the object store; fused, every CPU does all
of it and nothing but a count leaves its process.

After the stream, each region's annotated QuakeML catalog and review list are written
from the tables on disk, so a resumed run ends with the same files as an uninterrupted one.
"""
from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..data.chunks import task_dataset

from ..data.pipeline import PipelineError
from ..data.records import NOT_LOSSES, cap
from ..ensemble import EnsembleBundle, read_manifest
from ..storage import join
from . import outputs
from .sources import RegionSource
from .tables import RECORDING_COLUMNS, recording_hash
from .tasks import BundleInfo, ChunkTask, RegionPlan, chunk_fingerprint, plan_chunks
from .worker import EnsemblePredictor, finish_chunk, prepare_chunk, prepare_predict_finish, prepare_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReprocessConfig:
    """Execution settings (they do not change the results).

    ``events_per_chunk``: events per output partition (the unit of atomic writing and of
    resuming). ``batch_size``: recordings per inference batch. ``actors``: size of the
    inference actor pool. ``cpus_per_actor``: CPUs reserved per actor (also its torch
    threads, at least 1). ``gpus_per_actor``: None = 1 when the cluster has GPUs, else 0.
    ``cpus_per_task``: CPUs reserved per chunk task (also its torch threads when fused).
    ``preprocess_concurrency``: at most this many chunk tasks at once (None: Ray Data
    decides). ``fuse_inference``: run the ensemble inside the chunk tasks instead of an
    actor pool; None = fused when the actors would get no GPU (fused, ``actors`` and
    ``cpus_per_actor`` do not apply; ``batch_size`` sizes the tasks' inference batches).
    """

    events_per_chunk: int = 32
    batch_size: int = 128
    actors: int = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float | None = None
    cpus_per_task: float = 1.0
    preprocess_concurrency: int | None = None
    fuse_inference: bool | None = None

    def __post_init__(self) -> None:
        if self.events_per_chunk < 1 or self.batch_size < 1 or self.actors < 1:
            raise ValueError("events_per_chunk, batch_size and actors must be >= 1")


def _original_error(exc: BaseException) -> str:
    """The line of the exception a chunk task raised, from a Ray Data error: its message
    embeds the failing batch (a pickled chunk task, tens of kB) after the traceback."""
    for line in str(exc).splitlines():
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b.*:", line) and "UserCodeException" not in line:
            return cap(line.strip())
    return cap(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _run_stream(todo: list[ChunkTask], bundle: BundleInfo, config: ReprocessConfig,
                on_chunk: Callable[[ChunkTask, int], None]) -> None:
    import ray

    gpus = config.gpus_per_actor
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    dataset = task_dataset(todo)
    prep_kwargs = {"num_cpus": config.cpus_per_task}
    if config.preprocess_concurrency:
        prep_kwargs["concurrency"] = config.preprocess_concurrency
    fuse = config.fuse_inference if config.fuse_inference is not None else gpus == 0
    # A worker lost mid-chunk (OOM, node loss) redoes its chunk: Ray Data retries tasks
    # after system failures by default, and the chunk outputs are idempotent.
    if fuse:
        predicted = dataset.map_batches(
            prepare_predict_finish, batch_size=1, batch_format="numpy",
            fn_kwargs={"job": uuid.uuid4().hex, "threads": max(1, int(config.cpus_per_task)),
                       "batch_size": config.batch_size},
            **prep_kwargs)
    else:
        # Differing remote args keep Ray Data from fusing this CPU stage into the actor
        # pool, which would run all preprocessing on the actors only.
        recordings = dataset.map_batches(prepare_chunk, batch_size=1, batch_format="numpy",
                                         **prep_kwargs)
        predicted = recordings.map_batches(
            EnsemblePredictor,
            fn_constructor_kwargs={"bundle_uri": bundle.uri, "threads": max(1, int(config.cpus_per_actor))},
            batch_size=config.batch_size,
            batch_format="numpy",
            concurrency=config.actors,
            num_cpus=config.cpus_per_actor,
            num_gpus=gpus,
        )
    by_key = {t.key: t for t in todo}
    pending: dict[str, list[dict]] = {}
    failed: list[str] = []
    written = 0
    iterator = predicted.iter_batches(batch_size=None, batch_format="numpy")
    try:
        for batch in iterator:
            if fuse:  # the tasks wrote their chunks; each row reports one
                for key, n, error in zip(batch["chunk_key"], batch["recordings"], batch["error"]):
                    task = by_key[key]
                    if error:
                        failed.append(f"{task.source.region}/{outputs.chunk_name(task.index)}: {error}")
                    else:
                        written += 1
                        on_chunk(task, int(n))
                continue
            keys = np.asarray(batch["chunk_key"])
            for key in np.unique(keys):
                rows = keys == key
                pending.setdefault(key, []).append({k: np.asarray(v)[rows] for k, v in batch.items()})
                parts = pending[key]
                if sum(len(p["chunk_key"]) for p in parts) == int(parts[0]["chunk_rows"][0]):
                    del pending[key]
                    columns = {k: np.concatenate([p[k] for p in parts]) for k in RECORDING_COLUMNS}
                    member = np.concatenate([p["member_probabilities"] for p in parts])
                    n = finish_chunk(by_key[key], columns, member)
                    written += 1
                    on_chunk(by_key[key], n)
    except Exception as exc:
        # A stage task that raised (the actor-pool layout): the chunks written so far
        # stay written; say what went wrong in one line, not Ray's dump of the batch.
        log.debug("re-labelling stream failed", exc_info=True)
        raise PipelineError(f"re-labelling stopped after {written} of {len(todo)} chunk(s) (a re-run continues "
                            f"from there): {_original_error(exc)}") from None
    finally:
        # Stops the streaming executor (and its actors) if we leave early, e.g. on a crash.
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    if pending:
        raise RuntimeError(f"incomplete chunks after the stream ended: {sorted(pending)}")
    if failed:
        raise PipelineError(f"{len(failed)} of {len(todo)} chunk(s) failed and were not written (a re-run "
                            f"retries them); first: {failed[0]}")


def _run_in_process(todo: list[ChunkTask], bundle: EnsembleBundle, batch_size: int,
                    on_chunk: Callable[[ChunkTask, int], None]) -> None:
    """The chunks one after another in this process, the ensemble already loaded: the
    same steps as a fused chunk task (:func:`prepare_predict_finish`) without Ray."""
    for task in todo:
        out = prepare_task(task)
        n = len(out["inputs"])
        if n:
            member = bundle.member_probabilities(out["inputs"], batch_size=batch_size)  # (M, n, C)
            finish_chunk(task, {k: out[k] for k in RECORDING_COLUMNS}, member.transpose(1, 0, 2))
        on_chunk(task, n)


def reprocess_archives(
    sources: Sequence[RegionSource],
    bundle_uri: str,
    output: str,
    config: ReprocessConfig = ReprocessConfig(),
    progress: Callable[[dict], None] | None = None,
    reading: dict | None = None,
    loaded_bundle: EnsembleBundle | None = None,
    review_below: float | None = None,
) -> dict:
    """Classify every event and station recording of ``sources`` with the bundle at
    ``bundle_uri``; write the tables, annotated catalogs and review lists under
    ``output`` (layout in :mod:`raydisc.reprocess.outputs`). Needs a running Ray.

    Chunks already complete in ``output`` are skipped, so a re-run after a crash does
    only the rest. ``progress(row)`` is called in the driver as each chunk is written
    (``row``: region, chunk, events, recordings). Returns a summary:
    ``{"regions": {region: {...}}, "totals": {...}}`` with per region the events in the
    catalog, chunks written / skipped, recordings ``processed`` (this run), ``skipped``
    (already done), ``failed`` (failure rows), events classified and contradictions.
    ``reading``: how this archive's raw data is read, where it differs from the bundle's
    training data (:func:`raydisc.config.with_raw_data`). ``loaded_bundle``: the bundle
    at ``bundle_uri``, already loaded (:func:`~raydisc.ensemble.load_bundle`): every
    chunk then runs in this process, one after another, and Ray is not needed (small
    jobs: :meth:`raydisc.api.Ensemble.classify_catalog`). ``review_below``: events whose
    confidence is below it get ``triage = "review"`` (default: the bundle's triage
    threshold; a bundle without one reviews none).
    """
    regions = [s.region for s in sources]
    if len(set(regions)) != len(regions):
        raise ValueError(f"region names must be unique, got {regions}")
    bundle = BundleInfo.read(bundle_uri, reading, review_below)
    if loaded_bundle is not None and loaded_bundle.bundle_id != bundle.bundle_id:
        raise ValueError(f"loaded_bundle is bundle {loaded_bundle.bundle_id}, not {bundle.bundle_id} of {bundle_uri}")
    outputs.claim_output(output, read_manifest(bundle_uri))
    plans = plan_chunks(sources, bundle, output, config.events_per_chunk)
    todo, done_before = [], set()
    for plan in plans:
        if plan.error is not None:
            outputs.write_failures(outputs.table_uri(output, "failures", plan.source.region), [plan.error])
        region = plan.source.region
        for task in plan.tasks:
            if outputs.chunk_fingerprint_on_disk(output, region, task.index) == chunk_fingerprint(task):
                done_before.add(task.key)
            else:
                todo.append(task)
        if plan.error is None:
            # A catalog that shrank since the last run leaves chunks beyond the plan.
            stale = outputs.remove_chunks_from(output, region, len(plan.tasks))
            if stale:
                log.warning("%s: removed %d chunk file(s) beyond the current catalog", region, stale)
    log.info("%d chunks planned, %d already complete, %d to do",
             sum(len(p.tasks) for p in plans), len(done_before), len(todo))

    def on_chunk(task: ChunkTask, n: int) -> None:
        if progress is not None:
            progress({"region": task.source.region, "chunk": task.index, "events": len(task.entries), "recordings": n})

    if todo and loaded_bundle is not None:
        _run_in_process(todo, loaded_bundle, config.batch_size, on_chunk)
    elif todo:
        _run_stream(todo, bundle, config, on_chunk)
    return finish_regions(plans, bundle, output, done_before)


def finish_regions(plans: list[RegionPlan], bundle: BundleInfo, output: str, done_before: set[str]) -> dict:
    """Annotated catalog and review list per region, from the tables on disk; summary."""
    summary: dict = {"bundle_id": bundle.bundle_id, "regions": {}}
    for plan in plans:
        region = plan.source.region
        failures = outputs.read_results(output, "failures", [region])
        reasons = failures.column("reason").to_pylist() if failures is not None else []
        not_recorded = sum(r in NOT_LOSSES for r in reasons)
        row = {"events": sum(len(t.entries) for t in plan.tasks), "chunks_written": 0, "chunks_skipped": 0,
               "processed": 0, "skipped": 0, "failed": len(reasons) - not_recorded, "not_recorded": not_recorded,
               "events_classified": 0, "contradictions": 0, "low_confidence": 0}
        if plan.error is not None:
            row["error"] = plan.error.reason
        for task in plan.tasks:
            n = outputs.chunk_rows(output, "stations", region, task.index)
            was_done = task.key in done_before
            row["chunks_skipped" if was_done else "chunks_written"] += 1
            row["skipped" if was_done else "processed"] += n
        if plan.error is None:
            events = outputs.read_results(output, "events", [region])
            row["events_classified"] = events.num_rows if events is not None else 0
            if events is not None and "triage" in events.column_names:
                row["low_confidence"] = events.column("triage").to_pylist().count("review")
            outputs.annotate_catalog(plan.source.catalog, events, bundle.bundle_id, bundle.label_map,
                                     join(output, "catalogs", f"{region}.xml"))
            row["contradictions"] = outputs.write_review(events, region, bundle.bundle_id,
                                                         join(output, "review", f"{region}.csv"),
                                                         join(output, "review", f"{region}.txt"))
        summary["regions"][region] = row
        log.info("%s", format_region_line(region, row))
    keys = ("events", "processed", "skipped", "failed", "not_recorded", "events_classified", "contradictions",
            "low_confidence")
    summary["totals"] = {k: sum(r[k] for r in summary["regions"].values()) for k in keys}
    outputs.write_json(join(output, "summary.json"), summary)
    return summary


def format_region_line(region: str, row: dict) -> str:
    """One line per region: what was done, skipped and failed."""
    if row.get("error"):
        return f"{region}: not processed ({row['error']}); see failures/{region}/region.parquet"
    return (f"{region}: {row['events_classified']}/{row['events']} events classified, recordings processed "
            f"{row['processed']}, skipped (already done) {row['skipped']}, failed {row['failed']} (plus "
            f"{row['not_recorded']} operating stations without data); chunks written "
            f"{row['chunks_written']}, skipped {row['chunks_skipped']}; {row['contradictions']} contradict the catalog, "
            f"{row['low_confidence']} low confidence (triage: review)")


def format_summary(summary: dict) -> str:
    lines = [format_region_line(r, row) for r, row in summary["regions"].items()]
    t = summary["totals"]
    lines.append(f"total: processed {t['processed']}, skipped {t['skipped']}, failed {t['failed']} recordings; "
                 f"{t['events_classified']} events classified, {t['contradictions']} contradict the catalog, "
                 f"{t['low_confidence']} low confidence (bundle {summary['bundle_id']})")
    return "\n".join(lines)


__all__ = ["ReprocessConfig", "BundleInfo", "ChunkTask", "RegionPlan", "finish_regions",
           "plan_chunks", "reprocess_archives", "format_summary", "recording_hash"]
