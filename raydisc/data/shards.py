"""Parquet shards of preprocessed recordings: schema, atomic writing, reading, summary.

Folder layout under a shard root (local path or object storage)::

    {root}/_dataset.json                     schema version, preprocessing + split config
    {root}/_label_scheme.json                the label scheme of the ``label`` column (absent: binary)
    {root}/{region}/shard-00000.parquet      one row per usable station recording
    {root}/_rejects/{region}/shard-00000.parquet   recordings that could not be used, with why

A shard file appears only once it is complete (written under a temporary name, then
renamed), and its rejects file is written before it, so an existing shard file means
the shard is done.
"""
from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import PreprocessConfig, SplitConfig
from ..features.preprocess import INPUT_KINDS
from ..labels import BINARY, LabelScheme, LabelSchemeError
from ..storage import exists, filesystem, join, listdir, open_atomic, read_bytes, write_bytes_atomic

SCHEMA_VERSION = 2
DATASET_FILE = "_dataset.json"
LABEL_SCHEME_FILE = "_label_scheme.json"
REJECTS_DIR = "_rejects"


class ShardError(ValueError):
    """A shard folder is missing, of another schema version, or made with another config."""


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.parquet"


def shard_uri(root: str, region: str, index: int) -> str:
    return join(root, region, shard_name(index))


def rejects_uri(root: str, region: str, index: int) -> str:
    return join(root, REJECTS_DIR, region, shard_name(index))


def shard_schema(config: PreprocessConfig) -> pa.Schema:
    """Schema of a shard; input arrays are flattened fixed-size float32 lists whose shape
    is given per row in ``{kind}_shape`` (and by the preprocessing config)."""
    spectrogram_size = int(np.prod(config.spectrogram_shape))
    waveform_size = int(np.prod(config.waveform_shape))
    fields = [
        pa.field("event_id", pa.string()),
        pa.field("region", pa.string()),
        pa.field("network", pa.string()),
        pa.field("station", pa.string()),
        pa.field("location", pa.string()),
        pa.field("channels", pa.string()),
        pa.field("components", pa.string()),
        pa.field("pick_source", pa.string()),
        pa.field("response", pa.string()),
        pa.field("event_type", pa.string()),
        pa.field("label", pa.int8()),
        pa.field("split", pa.string()),
        pa.field("origin_time", pa.timestamp("ms", tz="UTC")),
        pa.field("magnitude", pa.float32()),
        pa.field("depth_km", pa.float32()),
        pa.field("distance_km", pa.float32()),
        pa.field("sampling_rate", pa.float32()),
        pa.field("spectrogram_shape", pa.list_(pa.int32(), 3)),
        pa.field("spectrogram", pa.list_(pa.float32(), spectrogram_size)),
        pa.field("waveform_shape", pa.list_(pa.int32(), 2)),
        pa.field("waveform", pa.list_(pa.float32(), waveform_size)),
    ]
    metadata = {
        b"raydisc.schema_version": str(SCHEMA_VERSION).encode(),
        b"raydisc.preprocess_config": json.dumps(config.to_dict(), sort_keys=True).encode(),
    }
    return pa.schema(fields, metadata=metadata)


REJECT_SCHEMA = pa.schema(
    [
        pa.field("region", pa.string()),
        pa.field("event_id", pa.string()),
        pa.field("station", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("source", pa.string()),
    ]
)


def _fixed_list(values: np.ndarray, size: int) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, size)


def build_shard_table(columns: dict[str, np.ndarray | list], config: PreprocessConfig) -> pa.Table:
    """Assemble a shard table from per-row metadata columns and stacked input arrays.

    ``columns["spectrogram"]`` has shape ``(rows, *config.spectrogram_shape)`` and
    ``columns["waveform"]`` shape ``(rows, *config.waveform_shape)``.
    """
    schema = shard_schema(config)
    n = len(columns["event_id"])
    arrays = []
    for f in schema:
        if f.name in INPUT_KINDS:
            values = np.asarray(columns[f.name], dtype=np.float32).reshape(n, f.type.list_size)
            arrays.append(_fixed_list(values, f.type.list_size))
        elif f.name.endswith("_shape"):
            shape = getattr(config, f.name)
            arrays.append(pa.array([list(shape)] * n, type=f.type))
        else:
            arrays.append(pa.array(columns[f.name], type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_table_atomic(uri: str, table: pa.Table) -> None:
    # Normalised float inputs are close to incompressible: compressing them costs more
    # CPU than it saves bytes, so only the metadata columns are compressed.
    compression = {name: ("none" if name in INPUT_KINDS else "zstd") for name in table.column_names}
    with open_atomic(uri) as f:
        pq.write_table(table, f, compression=compression)


def decode_inputs(batch, kind: str) -> np.ndarray:
    """Stack the flattened ``kind`` column of a batch into ``(rows, *shape)`` float32.

    ``batch`` is a ``pyarrow.Table`` or a dict of numpy arrays (Ray Data's "numpy"
    batch format, where a fixed-size list column is a 2-D array or an object array).
    """
    if kind not in INPUT_KINDS:
        raise ValueError(f"unknown input kind {kind!r}; expected one of {INPUT_KINDS}")
    if isinstance(batch, pa.Table):
        column = batch.column(kind).combine_chunks()
        shape = tuple(batch.column(f"{kind}_shape")[0].as_py()) if batch.num_rows else ()
        flat = column.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(batch.num_rows, *shape).astype(np.float32, copy=False)
    values = batch[kind]
    shapes = np.asarray(batch[f"{kind}_shape"])
    if len(values) == 0:
        return np.zeros((0,), dtype=np.float32)
    shape = tuple(int(s) for s in np.stack(list(shapes))[0]) if shapes.dtype == object else tuple(shapes[0])
    stacked = np.stack(list(values)) if values.dtype == object else np.asarray(values)
    return stacked.reshape(len(values), *shape).astype(np.float32, copy=False)


@dataclass(frozen=True)
class DatasetInfo:
    """What ``_dataset.json`` records about a shard folder."""

    schema_version: int
    preprocess: PreprocessConfig
    split: SplitConfig
    archive: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema_version": self.schema_version,
                "preprocess": self.preprocess.to_dict(),
                "split": self.split.to_dict(),
                "archive": self.archive,
            },
            indent=2,
            sort_keys=True,
        )


def read_dataset_info(root: str) -> DatasetInfo:
    uri = join(root, DATASET_FILE)
    if not exists(uri):
        raise ShardError(f"{root}: not a shard folder ({DATASET_FILE} missing); run `raydisc preprocess` first")
    data = json.loads(read_bytes(uri))
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ShardError(f"{root}: shard schema version {data.get('schema_version')}, this raydisc reads {SCHEMA_VERSION} "
                         "(version 2 added component sets, pick sources and response kinds): preprocess the archive "
                         "again into a new folder")
    return DatasetInfo(
        schema_version=data["schema_version"],
        preprocess=PreprocessConfig.from_dict(data["preprocess"]),
        split=SplitConfig.from_dict(data["split"]),
        archive=data.get("archive", ""),
    )


def claim_dataset(root: str, info: DatasetInfo) -> None:
    """Record ``info`` in a new shard folder, or check that an existing one matches.

    Re-running into a folder made with other preprocessing or split settings would mix
    incompatible shards, so that is refused with the differing fields named.
    """
    uri = join(root, DATASET_FILE)
    if exists(uri):
        existing = read_dataset_info(root)
        differing = [
            f"{section}.{key}"
            for section, old, new in (("preprocess", existing.preprocess, info.preprocess), ("split", existing.split, info.split))
            for key, value in new.to_dict().items()
            if old.to_dict().get(key) != value
        ]
        if differing:
            raise ShardError(
                f"{root} was made with other settings ({', '.join(differing)} differ); "
                "use a new output folder or the original settings"
            )
        return
    write_bytes_atomic(uri, info.to_json().encode())


def read_label_scheme(root: str) -> LabelScheme:
    """The label scheme of the shard folder ``root``: its ``_label_scheme.json``, or the
    binary scheme for a folder made before schemes were stored. ShardError if ``root`` is
    not a shard folder or the file is unreadable."""
    uri = join(root, LABEL_SCHEME_FILE)
    if not exists(uri):
        if not exists(join(root, DATASET_FILE)):
            raise ShardError(f"{root}: not a shard folder ({DATASET_FILE} missing); run `raydisc preprocess` first")
        return BINARY
    try:
        return LabelScheme.from_dict(json.loads(read_bytes(uri)), source=uri)
    except (json.JSONDecodeError, UnicodeDecodeError, LabelSchemeError) as exc:
        raise ShardError(f"{uri}: unreadable label scheme ({exc})") from None


def claim_label_scheme(root: str, scheme: LabelScheme) -> None:
    """Record ``scheme`` in a shard folder (``_label_scheme.json``, atomically), or check
    that the folder's shards were labelled with it. Call before :func:`claim_dataset`: a
    folder claimed without a scheme file holds binary labels."""
    uri = join(root, LABEL_SCHEME_FILE)
    if exists(uri) or exists(join(root, DATASET_FILE)):
        existing = read_label_scheme(root)
        if existing != scheme:
            raise ShardError(f"{root} holds shards labelled with label scheme {existing.describe()}, not "
                             f"{scheme.describe()}; use a new output folder or --label-scheme {existing.name}")
        if exists(uri):
            return
    write_bytes_atomic(uri, json.dumps(scheme.to_dict(), indent=2).encode())


def shard_regions(root: str) -> list[str]:
    return [name for name in listdir(root) if not name.startswith("_") and not name.endswith(".json")]


def shard_files(root: str, regions: list[str] | None = None) -> list[str]:
    """URIs of the complete shard files for ``regions`` (all regions by default)."""
    files = []
    for region in regions or shard_regions(root):
        found = [join(root, region, n) for n in listdir(join(root, region)) if n.endswith(".parquet")]
        if regions and not found:
            raise ShardError(f"{root}: no shards for region {region} (have: {', '.join(shard_regions(root)) or 'none'})")
        files += found
    return files


def _read_columns(uri: str, columns: list[str]) -> pa.Table:
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as f:
        return pq.read_table(io.BytesIO(f.read()), columns=columns)


def summarize(root: str) -> dict:
    """Counts per region, split and class (named by the folder's label scheme), per
    region, component set and pick source, and rejects per region and reason, read from disk."""
    names = read_label_scheme(root).class_names
    recordings: Counter = Counter()
    components: Counter = Counter()
    events: dict[tuple[str, str], set] = {}
    for uri in shard_files(root):
        table = _read_columns(uri, ["region", "event_id", "label", "split", "components", "pick_source"]).to_pydict()
        for region, event_id, label, split, comps, pick in zip(table["region"], table["event_id"], table["label"],
                                                               table["split"], table["components"], table["pick_source"]):
            recordings[(region, split, names[label])] += 1
            components[(region, comps, pick)] += 1
            events.setdefault((region, names[label]), set()).add(event_id)
    rejects: Counter = Counter()
    for region in listdir(join(root, REJECTS_DIR)):
        for name in listdir(join(root, REJECTS_DIR, region)):
            if name.endswith(".parquet"):
                table = _read_columns(join(root, REJECTS_DIR, region, name), ["reason"])
                rejects.update((region, r) for r in table.column("reason").to_pylist())
    return {
        "recordings": dict(recordings),
        "components": dict(components),
        "events": {k: len(v) for k, v in events.items()},
        "rejects": dict(rejects),
    }
