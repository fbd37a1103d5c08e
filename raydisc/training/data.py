"""Training inputs: Parquet shards -> decoded Ray Data datasets, streamed.

:func:`training_dataset` decodes the recordings that
:func:`raydisc.data.split_reader.read_split` (the one reader of shard inputs, shared
with evaluation) streams; Ray Data executes read and decoding in tasks while a
consumer iterates.

Label counts (for the class weights and for checking that splits are not empty) read
only the ``label`` and ``split`` columns, in the driver.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from ..data.shards import ShardError, decode_inputs, read_dataset_info, read_label_scheme
from ..data.split_reader import event_filter, pyarrow_shard_files, read_split
from ..data.splits import SPLITS
from ..features import drop_components


def label_counts(shards: str, regions: Sequence[str], events: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Recordings per split and class: ``{split: int64 (n_classes,)}`` for every split
    present (classes of the folder's label scheme), read from the ``label`` and ``split``
    columns only; with ``events``, only the recordings of those event ids."""
    n_classes = read_label_scheme(shards).n_classes
    fs, paths = pyarrow_shard_files(shards, regions)
    table = pq.ParquetDataset(paths, filesystem=fs, filters=event_filter(events)).read(columns=["label", "split"])
    labels = table.column("label").to_numpy().astype(np.int64)
    splits = np.asarray(table.column("split").to_pylist(), dtype=object)
    return {
        str(s): np.bincount(labels[splits == s], minlength=n_classes).astype(np.int64)
        for s in np.unique(splits)
    }


def split_events(shards: str, regions: Sequence[str], split: str) -> pd.DataFrame:
    """The events of one split: a DataFrame with columns ``region``, ``event_id``,
    ``label`` (class index) and ``n_recordings``, one row per event, sorted by region and
    event id. Read from four small columns only."""
    fs, paths = pyarrow_shard_files(shards, regions)
    table = pq.ParquetDataset(paths, filesystem=fs, filters=pads.field("split") == split).read(
        columns=["region", "event_id", "label"])
    frame = table.to_pandas()
    if frame.empty:
        return pd.DataFrame({"region": [], "event_id": [], "label": [], "n_recordings": []})
    grouped = frame.groupby(["region", "event_id"], sort=True)
    if (grouped["label"].nunique() > 1).any():
        raise ShardError(f"{shards}: recordings of one event carry different labels")
    events = grouped["label"].first().reset_index()
    events["n_recordings"] = grouped.size().to_numpy()
    return events


def class_weights(counts: Sequence[int]) -> np.ndarray:
    """Inverse-frequency class weights ``w_c = N / (C * n_c)``, float32 ``(C,)``; a class
    with no recordings gets weight 0 (it never occurs in the loss anyway)."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = counts.sum() / (len(counts) * counts[present])
    return weights.astype(np.float32)


class _Decode:
    """Batch function: shard rows -> ``{"x": float32 (B, *shape), "y": int64 (B,)}``.

    A small class rather than a closure so that the Ray Data plan shows a readable name.
    ``shape`` is only used for empty batches (a shard file without recordings of the
    split), which must still have the tensor schema of the others. With ``permute`` the
    rows of each batch come out in a random order, different at every epoch. With
    ``drop_horizontals`` > 0, each recording that has horizontals loses them with that
    probability (anew every epoch), normalised again as a vertical-only recording
    (:func:`raydisc.features.drop_components`), so the members learn both kinds.
    """

    def __init__(self, kind: str, shape: tuple[int, ...], permute: bool = False, drop_horizontals: float = 0.0) -> None:
        self.kind = kind
        self.shape = tuple(shape)
        self.permute = permute
        self.drop_horizontals = drop_horizontals

    def __call__(self, batch):
        if batch.num_rows == 0:
            return {"x": np.zeros((0, *self.shape), np.float32), "y": np.zeros((0,), np.int64)}
        # Fresh entropy: a seed fixed here would repeat the same order every epoch.
        rng = np.random.default_rng()
        if self.permute:
            batch = batch.take(rng.permutation(batch.num_rows))
        x = decode_inputs(batch, self.kind)
        if self.drop_horizontals > 0:
            drop = rng.random(len(x)) < self.drop_horizontals
            if drop.any():
                x = x.copy() if not x.flags.writeable else x  # a zero-copy view of the Arrow buffer
                keep = np.ones((int(drop.sum()), 3), dtype=bool)
                keep[:, 1:] = False
                x[drop] = drop_components(x[drop], self.kind, keep)
        return {"x": x, "y": batch.column("label").to_numpy().astype(np.int64)}


def training_dataset(shards: str, regions: Sequence[str], split: str, kind: str, *,
                     shuffle_seed: int | None = None, batch_size: int | None = None,
                     events: Sequence[str] | None = None, drop_horizontals: float = 0.0):
    """Lazy dataset of decoded model inputs of one split (with ``events``: of those
    event ids only), rows ``{"x", "y"}``.

    ``x``: float32 ``(*shape)`` of the ``kind`` column (``"spectrogram"`` or
    ``"waveform"``), ``y``: int64 class index. Decoding runs in Ray Data tasks (fused with
    the Parquet read), in batches of ``batch_size`` rows (default: whole shard files).

    ``shuffle_seed`` (for training) shuffles without delaying the first batch of an
    epoch: the shard files are read in a new order every epoch (seeded), and the rows of
    each file are permuted in the decode task (unseeded, so epochs differ; the stream is
    not bit-reproducible anyway, since tasks finish in varying order). ``drop_horizontals``:
    the probability that a recording's horizontals are dropped (training augmentation). Shard files hold
    the recordings of one event next to each other, so without the permutation a batch
    would hold few events. A local shuffle buffer in ``iter_torch_batches`` can mix
    across files on top of this.
    """
    shape = getattr(read_dataset_info(shards).preprocess, f"{kind}_shape")
    return read_split(shards, regions, split, ["label", kind, f"{kind}_shape"], shuffle_seed=shuffle_seed,
                      events=events).map_batches(
        _Decode(kind, shape, permute=shuffle_seed is not None, drop_horizontals=drop_horizontals), batch_format="pyarrow", batch_size=batch_size,
        zero_copy_batch=True,
    )


__all__ = ["SPLITS", "class_weights", "label_counts", "split_events", "training_dataset"]
