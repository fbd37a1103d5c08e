"""The one reader of shard *inputs* for training and evaluation: :func:`read_split`.

A lazy ``ray.data.read_parquet`` over the chosen regions' shard files that reads only
the columns asked for, with the ``split`` (and event) filter pushed down into the
Parquet scan. Nothing is materialised in the driver; Ray Data executes the read in
tasks while a consumer iterates. :func:`pyarrow_shard_files` and :func:`event_filter`
are the pieces it shares with the driver-side readers of small columns
(:func:`raydisc.training.data.label_counts`, :func:`~raydisc.training.data.split_events`).
"""
from __future__ import annotations

from typing import Sequence

import pyarrow.dataset as pads

from ..storage import pyarrow_filesystem
from .shards import ShardError, shard_files
from .splits import SPLITS


def pyarrow_shard_files(shards: str, regions: Sequence[str]) -> tuple[object, list[str]]:
    """``(pyarrow file system, paths within it)`` of the regions' complete shard files;
    ``ShardError`` for no regions or a region without shards."""
    if not regions:
        raise ShardError(f"{shards}: no regions given")
    uris = shard_files(shards, list(regions))  # raises for any region without shards
    fs, _ = pyarrow_filesystem(shards)
    return fs, [pyarrow_filesystem(u)[1] for u in uris]


def event_filter(events: Sequence[str] | None):
    """Parquet filter expression keeping the recordings of ``events`` (``None``: all)."""
    return None if events is None else pads.field("event_id").isin(list(events))


def read_split(
    shards: str,
    regions: Sequence[str],
    split: str,
    columns: Sequence[str],
    *,
    shuffle_seed: int | None = None,
    override_num_blocks: int | None = None,
    events: Sequence[str] | None = None,
):
    """Lazy Ray Data dataset of the ``columns`` of the ``split`` recordings of ``regions``
    (with ``events``: only of those event ids, e.g. a fraction of the training events).

    The filters on ``split`` and ``events`` are pushed into the Parquet scan (row groups
    of other splits are skipped), and only ``columns`` are read; by default each shard file becomes one
    read task (``override_num_blocks``). With ``shuffle_seed`` the order of the shard
    files is permuted anew at every execution (every epoch), from a generator seeded
    once. ``ShardError`` if a region has no shards.
    """
    import ray
    from ray.data import FileShuffleConfig
    from ray.data.expressions import col

    if split not in SPLITS:
        raise ShardError(f"unknown split {split!r}; expected one of {SPLITS}")
    fs, paths = pyarrow_shard_files(shards, regions)
    keep = col("split") == split
    if events is not None:
        keep = keep & col("event_id").is_in(list(events))
    dataset = ray.data.read_parquet(
        paths,
        filesystem=fs,
        shuffle=FileShuffleConfig(seed=shuffle_seed) if shuffle_seed is not None else None,
        # One read task per shard file: Ray's default would cut these few files into
        # blocks of a handful of rows, and per-block overhead would dominate.
        override_num_blocks=override_num_blocks or len(paths),
    )
    # Ray Data pushes both into the Parquet scan: row groups of other splits are
    # skipped, and only the selected columns (and the filter's) are read.
    return dataset.filter(expr=keep).select_columns(list(columns))

__all__ = ["event_filter", "pyarrow_shard_files", "read_split"]
