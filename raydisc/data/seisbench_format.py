"""The SeisBench dataset format, read and written with h5py (local folders or ``s3://``).

A SeisBench dataset (Woollam et al. 2022, SRL 93(3); the format of
``seisbench.data.WaveformDataset``) is a folder with, per chunk ``c`` (``""`` when the
dataset is not chunked)::

    {root}/metadata{c}.csv     one row per trace: trace_*, station_*, source_*, split
    {root}/waveforms{c}.hdf5   /data/{name}: the traces; /data_format: how to read them
    {root}/chunks              (chunked datasets) the chunk names, one per line

``trace_name`` is either a dataset of ``/data`` holding one trace, or
``bucket$i,:C,:W`` -- row ``i`` of the 3-D "bucket" array ``/data/bucket``, cut to ``C``
components and ``W`` samples (how ``WaveformDataWriter`` packs many traces into one
array). ``/data_format`` gives ``component_order`` (e.g. ``ZNE``; a
``trace_component_order`` column overrides it per trace), ``dimension_order`` (``CW``:
components x samples, or ``WC``), and ``measurement``/``unit``/``instrument_response``
(raw counts, or physical units such as ``m/s``). The sampling rate is the
``trace_sampling_rate_hz`` column, else ``1 / trace_dt_s``, else
``/data_format/sampling_rate``.

Why h5py and not the ``seisbench`` package: its reader loads a dataset's whole metadata
and opens files by local path only, fetches from its repository when a dataset is not
in its cache, and brings PyTorch-dataset machinery (augmentations, generators, model
zoo) that raydisc does not use; reading the published format with h5py directly lets
each Ray task open just its chunk, local or in object storage (through fsspec), and
read just its trace range, and keeps the dependency small. Files written here read
back with ``seisbench.data.WaveformDataset(path)``.
"""
from __future__ import annotations

import io
import os
import tempfile
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pandas as pd

from ..storage import exists, filesystem, join, listdir, read_bytes, write_bytes_atomic
from .records import IngestError

CHUNKS_FILE = "chunks"
#: Traces per bucket array when writing (SeisBench's writer uses buckets of this order).
BUCKET_SIZE = 1024
#: Split names of SeisBench (``dev`` is raydisc's ``validation``).
SPLIT_NAMES = {"train": "train", "dev": "validation", "test": "test"}


def metadata_uri(root: str, chunk: str = "") -> str:
    return join(root, f"metadata{chunk}.csv")


def waveforms_uri(root: str, chunk: str = "") -> str:
    return join(root, f"waveforms{chunk}.hdf5")


def list_chunks(root: str) -> list[str]:
    """The chunks of a dataset: the ``chunks`` file, else ``[""]`` for an unchunked
    one, else the names ``c`` that have both ``metadata{c}.csv`` and
    ``waveforms{c}.hdf5``. Raises :class:`IngestError` when there are none."""
    if exists(join(root, CHUNKS_FILE)):
        chunks = [c.strip() for c in read_bytes(join(root, CHUNKS_FILE)).decode().splitlines() if c.strip()]
        if chunks:
            return sorted(chunks)
    names = listdir(root)
    if "waveforms.hdf5" in names:
        return [""]
    metadata = {n[len("metadata"):-len(".csv")] for n in names if n.startswith("metadata") and n.endswith(".csv")}
    waveforms = {n[len("waveforms"):-len(".hdf5")] for n in names if n.startswith("waveforms") and n.endswith(".hdf5")}
    if not metadata & waveforms:
        raise IngestError(f"{root}: not a SeisBench dataset (no metadata*.csv with a matching waveforms*.hdf5)")
    return sorted(metadata & waveforms)


def is_seisbench_dataset(root: str) -> bool:
    """Whether ``root`` looks like a SeisBench dataset rather than a raydisc archive."""
    try:
        list_chunks(root)
    except (IngestError, FileNotFoundError, NotADirectoryError):
        return False
    return True


def read_metadata(root: str, chunk: str = "") -> pd.DataFrame:
    """The metadata table of one chunk, with a ``trace_chunk`` column added."""
    uri = metadata_uri(root, chunk)
    try:
        table = pd.read_csv(io.BytesIO(read_bytes(uri)), low_memory=False)
    except FileNotFoundError:
        raise IngestError(f"{uri}: metadata file not found") from None
    except Exception as exc:
        raise IngestError(f"{uri}: cannot read the metadata table: {type(exc).__name__}: {exc}"[:300]) from None
    table["trace_chunk"] = chunk
    return table


@contextmanager
def open_waveforms(uri: str) -> Iterator:
    """An open ``h5py.File`` of a waveform file (local or object storage: h5py reads
    the fsspec file object, fetching only the byte ranges it needs)."""
    import h5py

    fs, path = filesystem(uri)
    try:
        handle = fs.open(path, "rb")
    except FileNotFoundError:
        raise IngestError(f"{uri}: waveform file not found") from None
    with handle:
        try:
            h5 = h5py.File(handle, "r")
        except OSError as exc:
            raise IngestError(f"{uri}: not an HDF5 file: {exc}"[:300]) from None
        with h5:
            yield h5


def read_data_format(h5) -> dict[str, object]:
    """``/data_format`` of an open waveform file as a dict (strings decoded); the
    dimension order defaults to ``CW`` as in SeisBench."""
    values = {}
    if "data_format" in h5:
        for key, item in h5["data_format"].items():
            value = item[()]
            values[key] = value.decode() if isinstance(value, bytes) else value
        for key, value in h5["data_format"].attrs.items():  # some writers use attributes
            values.setdefault(key, value.decode() if isinstance(value, bytes) else value)
    values.setdefault("dimension_order", "CW")
    return values


def parse_trace_name(name: str) -> tuple[str, tuple]:
    """``"bucket3$17,:3,:6000"`` -> ``("bucket3", (17, slice(None, 3), slice(None, 6000)))``;
    a plain name -> ``(name, ())``. Raises ``ValueError`` for an unreadable index."""
    if "$" not in name:
        return name, ()
    dataset, _, index = name.partition("$")
    parts = []
    for text in index.split(","):
        text = text.strip()
        if ":" in text:
            bounds = [int(b) if b.strip() else None for b in text.split(":")]
            parts.append(slice(*bounds))
        else:
            parts.append(int(text))
    return dataset, tuple(parts)


def read_trace(h5, name: str, dimension_order: str = "CW") -> np.ndarray:
    """One trace as ``(components, samples)``. Raises ``KeyError``/``ValueError`` when
    the name is not in the file or cannot be read."""
    dataset, index = parse_trace_name(name)
    data = np.asarray(h5["data"][dataset][index] if index else h5["data"][dataset][()])
    if data.ndim == 1:
        data = data[None, :]
    order = dimension_order[-2:] if len(dimension_order) > 2 else dimension_order
    return data.T if order == "WC" else data


class SeisBenchWriter:
    """Write one chunk of a SeisBench dataset: ``add(metadata, data)`` per trace, the
    files appear on ``close`` (the waveform file first, then the metadata table, each
    atomically; the HDF5 file is built in a local temporary file and then copied, as
    h5py cannot write to object storage).

    ``data``: ``(components, samples)``; traces of equal shape share bucket arrays of
    :data:`BUCKET_SIZE` rows and get ``trace_name = "bucketK$i,:C,:W"``.
    """

    def __init__(self, root: str, data_format: dict[str, object], chunk: str = ""):
        self.root, self.chunk, self.data_format = root, chunk, dict(data_format)
        self.rows: list[dict] = []
        self._buckets: dict[tuple, list[tuple[int, np.ndarray]]] = {}

    def add(self, metadata: dict, data: np.ndarray) -> None:
        data = np.asarray(data)
        self._buckets.setdefault((data.shape, data.dtype.str), []).append((len(self.rows), data))
        self.rows.append(dict(metadata))

    def close(self) -> None:
        import h5py

        fd, tmp = tempfile.mkstemp(suffix=".hdf5")
        os.close(fd)
        try:
            with h5py.File(tmp, "w") as h5:
                group = h5.create_group("data_format")
                for key, value in self.data_format.items():
                    group.create_dataset(key, data=value)
                data, number = h5.create_group("data"), 0
                for (shape, _), items in sorted(self._buckets.items(), key=lambda kv: kv[1][0][0]):
                    for start in range(0, len(items), BUCKET_SIZE):
                        part = items[start : start + BUCKET_SIZE]
                        data.create_dataset(f"bucket{number}", data=np.stack([d for _, d in part]))
                        for i, (row, _) in enumerate(part):
                            self.rows[row]["trace_name"] = f"bucket{number}${i},:{shape[0]},:{shape[1]}"
                        number += 1
            with open(tmp, "rb") as f:
                write_bytes_atomic(waveforms_uri(self.root, self.chunk), f.read())
        finally:
            os.remove(tmp)
        table = pd.DataFrame(self.rows)
        write_bytes_atomic(metadata_uri(self.root, self.chunk), table.to_csv(index=False).encode())

    def __enter__(self) -> "SeisBenchWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()


def write_chunks_file(root: str, chunks: list[str]) -> None:
    write_bytes_atomic(join(root, CHUNKS_FILE), ("\n".join(chunks) + "\n").encode())


__all__ = ["BUCKET_SIZE", "CHUNKS_FILE", "SPLIT_NAMES", "SeisBenchWriter", "is_seisbench_dataset", "list_chunks", "metadata_uri",
           "open_waveforms", "parse_trace_name", "read_data_format", "read_metadata", "read_trace",
           "waveforms_uri", "write_chunks_file"]
