"""The preprocessing job: waveform archive -> Parquet shards, as a Ray Data pipeline.

The driver reads each region's catalog and inventory once, assigns event-wise splits,
and cuts the event list into shards of ``events_per_shard`` events. Shards whose file
already exists are skipped (they were written atomically, so they are complete). The
rest fan out as Ray Data tasks: each reads its events' miniSEED files with ObsPy, runs
the one vectorized preprocessing function over blocks of recordings of one sampling
rate, and writes its shard and rejects files. Results stream back as one summary row
per shard, which drives the progress bar.
"""
from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..config import PipelineConfig, PreprocessConfig, SplitConfig
from ..runtime import reuse_freed_array_memory
from ..storage import exists
from . import layout
from ..labels import DEFAULT_SCHEME, LabelScheme
from .chunks import chunked, cut_and_preprocess, index_region, task_dataset, write_rejects
from .ingest import CatalogEntry, Recording, StationInfo, cut_recordings
from .shards import (
    SCHEMA_VERSION,
    DatasetInfo,
    build_shard_table,
    claim_dataset,
    claim_label_scheme,
    rejects_uri,
    shard_name,
    shard_uri,
    summarize,
    write_table_atomic,
)
from .records import NOT_LOSSES, cap
from .splits import assign_splits

log = logging.getLogger(__name__)


class PipelineError(RuntimeError):
    """Shards failed for other reasons than bad data (which becomes reject rows)."""


@dataclass(frozen=True)
class ShardTask:
    """Everything one worker needs to build one shard (plain data, cheap to ship)."""

    archive: str
    output: str
    region: str
    index: int
    entries: tuple[CatalogEntry, ...]
    splits: dict[str, str]
    stations: dict[str, StationInfo]
    scheme: LabelScheme = DEFAULT_SCHEME


def plan_shards(
    archive: str,
    output: str,
    regions: Sequence[str],
    split_config: SplitConfig,
    pipeline_config: PipelineConfig,
    scheme: LabelScheme = DEFAULT_SCHEME,
) -> list[ShardTask]:
    """Index catalogs, read inventories and cut each region's events into shard tasks,
    labelled by ``scheme`` (the split is stratified by its classes).

    The driver only indexes each catalog (event ids and types, enough for the split);
    reading each event's origin, magnitude and picks happens in the shard tasks.
    """
    tasks = []
    for region in regions:
        entries, stations = index_region(layout.catalog_uri(archive, region), layout.inventory_uri(archive, region))
        splits = assign_splits(_labelled(entries, scheme), split_config)
        for index, chunk in enumerate(chunked(entries, pipeline_config.events_per_shard)):
            tasks.append(
                ShardTask(archive, output, region, index, chunk,
                          {e.event_id: splits.get(e.event_id, "") for e in chunk}, stations, scheme)
            )
    return tasks


def _labelled(entries: Sequence[CatalogEntry], scheme: LabelScheme):
    for entry in entries:
        label = scheme.class_in(entry.event_type)
        if label is not None:  # the others are rejected with their reason when the shard is built
            yield entry.event_id, label


def _metadata_columns(recordings: list[Recording], splits: dict[str, str]) -> dict[str, list]:
    return {
        "event_id": [r.event.event_id for r in recordings],
        "region": [r.event.region for r in recordings],
        "network": [r.station.network for r in recordings],
        "station": [r.station.station for r in recordings],
        "location": [r.location for r in recordings],
        "channels": [",".join(r.channel_codes) for r in recordings],
        "components": [r.components for r in recordings],
        "pick_source": [r.pick_source for r in recordings],
        "response": [r.response_kind for r in recordings],
        "event_type": [r.event.event_type for r in recordings],
        "label": [r.event.label for r in recordings],
        "split": [splits[r.event.event_id] for r in recordings],
        "origin_time": [int(round(r.event.origin_time * 1000)) for r in recordings],
        "magnitude": [r.event.magnitude for r in recordings],
        "depth_km": [r.event.depth_km for r in recordings],
        "distance_km": [r.distance_km for r in recordings],
        "sampling_rate": [r.sampling_rate for r in recordings],
    }


def process_shard(task: ShardTask, config: PreprocessConfig) -> dict:
    """Build one shard with the shared chunk worker (:func:`raydisc.data.chunks.cut_and_preprocess`:
    parse, cut, preprocess, isolate failures), then write rejects and shard. Returns a summary."""
    reuse_freed_array_memory()

    def source(event_id: str) -> str:
        return layout.waveform_uri(task.archive, task.region, event_id)

    def cut(event):
        return cut_recordings(source(event.event_id), event, task.stations, config, task.scheme)

    chunk = cut_and_preprocess(task.entries, task.region, cut, config, source, scheme=task.scheme)
    write_shard(task.output, task.region, task.index, chunk.recordings, chunk.inputs, chunk.rejects, task.splits,
                config)
    return {"region": task.region, "shard": task.index, "events": len(task.entries),
            "recordings": len(chunk.recordings), "rejects": len(chunk.rejects), "error": ""}


def write_shard(output: str, region: str, index: int, recordings: list[Recording], inputs: dict[str, np.ndarray],
                rejects: list, splits: dict[str, str], config: PreprocessConfig) -> None:
    """Write shard ``index`` of ``region``: its rejects table first, then the shard (both
    atomically, so an existing shard is complete). ``inputs``: kind -> float32
    ``(len(recordings), *shape)`` (:func:`raydisc.data.chunks.preprocess_isolating`);
    ``splits``: event id -> split of every recording's event."""
    columns = _metadata_columns(recordings, splits)
    columns.update(inputs)
    write_rejects(rejects_uri(output, region, index), rejects)
    write_table_atomic(shard_uri(output, region, index), build_shard_table(columns, config))


def preprocess_shard(row: dict, config: PreprocessConfig) -> dict:
    """Ray Data row function: build the shard of the pickled ``row["task"]`` (see
    :func:`process_shard`). Bad data never raises there; anything else (a bug, a full
    disk, lost storage) is returned as the row's ``error``, one short line naming the
    shard, so the other shards finish and no task payload ends up in a message."""
    task = pickle.loads(row["task"])
    try:
        return process_shard(task, config)
    except Exception as exc:
        log.exception("shard %s/%05d failed", task.region, task.index)
        return {"region": task.region, "shard": task.index, "events": len(task.entries), "recordings": 0,
                "rejects": 0, "error": cap(f"{type(exc).__name__}: {exc}")}


def run_preprocessing(
    archive: str,
    output: str,
    regions: Sequence[str] | None = None,
    preprocess_config: PreprocessConfig = PreprocessConfig(),
    split_config: SplitConfig = SplitConfig(),
    pipeline_config: PipelineConfig = PipelineConfig(),
    progress: Callable[[dict, int], None] | None = None,
    label_scheme: LabelScheme = DEFAULT_SCHEME,
) -> dict:
    """Preprocess ``regions`` of ``archive`` into shards under ``output``, labelled by
    ``label_scheme`` (recorded in the folder; a folder of another scheme is refused); returns
    :func:`raydisc.data.shards.summarize` of the output plus ``shards_written`` /
    ``shards_skipped``. Needs a running Ray (``ray.init()``).

    ``progress(row, total)`` is called as each shard completes, with that shard's
    summary row and the number of shards this run writes."""
    regions = list(regions) if regions else layout.list_regions(archive)
    if not regions:
        raise FileNotFoundError(f"{archive}: no regions found (expected {{region}}/{layout.CATALOG_FILE})")
    # The scheme lives beside _dataset.json, not in it: the preprocessing config and its
    # fingerprint describe the model input alone, which labels do not change.
    claim_label_scheme(output, label_scheme)
    claim_dataset(output, DatasetInfo(SCHEMA_VERSION, preprocess_config, split_config, archive))
    tasks = plan_shards(archive, output, regions, split_config, pipeline_config, label_scheme)
    todo = [t for t in tasks if not exists(shard_uri(output, t.region, t.index))]
    log.info("%d shards planned, %d already complete, %d to write", len(tasks), len(tasks) - len(todo), len(todo))

    run_shard_tasks(todo, preprocess_shard, preprocess_config, pipeline_config, progress)
    summary = summarize(output)
    summary.update(shards_written=len(todo), shards_skipped=len(tasks) - len(todo))
    return summary


def run_shard_tasks(todo: list, row_fn: Callable[[dict, PreprocessConfig], dict], preprocess_config: PreprocessConfig,
                    pipeline_config: PipelineConfig, progress: Callable[[dict, int], None] | None = None) -> None:
    """Run ``row_fn`` over the shard tasks ``todo`` as Ray Data tasks, one per shard.
    ``row_fn({"task": pickled task}, config)`` returns the shard's summary row (with an
    ``error`` for a shard that failed); raises :class:`PipelineError` naming the first
    failed shard after all others have finished."""

    if not todo:
        return
    dataset = task_dataset(todo)  # one row per shard
    map_kwargs = {"concurrency": pipeline_config.concurrency} if pipeline_config.concurrency else {}
    results = dataset.map(row_fn, fn_kwargs={"config": preprocess_config}, **map_kwargs)
    failed = []
    for row in results.iter_rows():
        if row.get("error"):
            failed.append(f"{row['region']}/{shard_name(row['shard'])}: {row['error']}")
        if progress is not None:
            progress(row, len(todo))
    if failed:
        raise PipelineError(f"{len(failed)} of {len(todo)} shard(s) failed and were not written (a re-run "
                            f"retries them); first: {failed[0]}")


def format_summary(summary: dict) -> str:
    """Human-readable tables of a :func:`run_preprocessing` / :func:`summarize` result."""
    lines = ["recordings per region / split / class:"]
    for (region, split, cls), n in sorted(summary["recordings"].items()):
        lines.append(f"  {region:<10} {split:<10} {cls:<11} {n:>7}")
    lines.append("events per region / class:")
    for (region, cls), n in sorted(summary["events"].items()):
        lines.append(f"  {region:<10} {cls:<11} {n:>7}")
    if summary.get("components"):
        lines.append("recordings per region / components / pick source:")
        for (region, components, pick), n in sorted(summary["components"].items()):
            lines.append(f"  {region:<10} {components:<10} {pick:<11} {n:>7}")
    losses = {k: n for k, n in summary["rejects"].items() if k[1] not in NOT_LOSSES}
    lines.append("rejected (recorded or catalogued, but unusable) per region / reason:")
    if not losses:
        lines.append("  none")
    for (region, reason), n in sorted(losses.items()):
        lines.append(f"  {region:<10} {reason:<24} {n:>7}")
    not_recorded = {k[0]: n for k, n in summary["rejects"].items() if k[1] in NOT_LOSSES}
    if not_recorded:
        lines.append("operating stations without data for an event (not a loss): "
                     + ", ".join(f"{region} {n}" for region, n in sorted(not_recorded.items())))
    if "shards_written" in summary:
        lines.append(f"shards written: {summary['shards_written']}, already complete (skipped): {summary['shards_skipped']}")
    return "\n".join(lines)


__all__ = ["PipelineError", "run_preprocessing", "run_shard_tasks", "plan_shards", "process_shard",
           "format_summary", "write_shard"]
