"""Object-storage helpers: one place that turns URIs into fsspec file systems.

Every reader and writer in raydisc takes a URI (``/local/path``, ``file:///path``,
``s3://bucket/key``). Credentials and endpoints come from the standard AWS environment
variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``), so the
same code runs against AWS, MinIO or a loopback test server without changes.
"""
from __future__ import annotations

import os
import posixpath
import uuid
from contextlib import contextmanager
from typing import Iterator

import fsspec
from fsspec.core import url_to_fs


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return ``(filesystem, path_within_it)`` for ``uri``.

    For ``s3://`` URIs an endpoint set in ``AWS_ENDPOINT_URL`` is honoured even by
    s3fs versions that do not read it themselves. Directory listings are not cached:
    other processes (Ray workers) write the objects a driver reads next, and a cached
    listing would hide them (``FileNotFoundError`` for an object that exists).
    """
    options: dict = {}
    if uri.startswith("s3://"):
        options["use_listings_cache"] = False
        if os.environ.get("AWS_ENDPOINT_URL"):
            options["client_kwargs"] = {"endpoint_url": os.environ["AWS_ENDPOINT_URL"]}
    return url_to_fs(uri, **options)


def join(base: str, *parts: str) -> str:
    """Join URI parts with ``/`` (object stores use ``/`` whatever the OS)."""
    return posixpath.join(base.rstrip("/") if base != "/" else base, *parts)


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def absolute(uri: str) -> str:
    """``uri`` with a local path made absolute, so that Ray workers, whose working
    directory differs from the driver's, find the same file; URIs pass unchanged."""
    return uri if "://" in uri else os.path.abspath(uri)


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as f:
        return f.read()


def write_bytes_atomic(uri: str, data: bytes) -> None:
    """Write ``data`` to ``uri`` so that readers never see a partial file.

    Local files are written under a temporary name in the same folder and renamed
    (atomic on POSIX). An object-store PUT is already all-or-nothing, so remote
    URIs are written directly.
    """
    with open_atomic(uri) as f:
        f.write(data)


@contextmanager
def open_atomic(uri: str) -> Iterator:
    """Context manager yielding a binary file handle; the file appears at ``uri`` only
    when the block exits without an exception."""
    fs, path = filesystem(uri)
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    if is_remote(uri):
        # Closing an fsspec write handle commits what was written so far (its
        # ``__exit__`` closes even on an exception), so on failure the upload is
        # discarded instead: nothing, not a partial object, appears under the final name.
        f = fs.open(path, "wb")
        try:
            yield f
        except BaseException:
            f.discard()
            f.closed = True
            raise
        f.close()
        return
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with fs.open(tmp, "wb") as f:
            yield f
        fs.mv(tmp, path)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)


def makedirs(uri: str) -> None:
    fs, path = filesystem(uri)
    fs.makedirs(path, exist_ok=True)


def listdir(uri: str) -> list[str]:
    """Base names of the entries directly under ``uri`` (empty if it does not exist)."""
    fs, path = filesystem(uri)
    if not fs.exists(path):
        return []
    return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False))


def pyarrow_filesystem(uri: str):
    """Return ``(pyarrow.fs.FileSystem, path_within_it)`` for ``uri``, for the libraries
    that want a pyarrow file system rather than an fsspec one (Ray Train's
    ``RunConfig(storage_filesystem=...)``, Ray Data's ``read_parquet(filesystem=...)``).

    For ``s3://`` URIs the endpoint in ``AWS_ENDPOINT_URL`` is honoured, and credentials
    and region found in the environment are set explicitly: the file system object is
    pickled to Ray workers, which may have been started before those variables were set.
    Local paths are made absolute.

    Native pyarrow file systems on purpose, not ``PyFileSystem(FSSpecHandler(fs))`` over
    :func:`filesystem`: that wrapper does every read through Python (s3fs, under the
    GIL) in Ray Data's Parquet reads, and a pickled s3fs resolves credentials on the
    worker, where the variables may be missing.
    """
    import pyarrow.fs as pafs

    if uri.startswith("s3://"):
        options: dict = {}
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            options.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
        if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
            options.update(access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"])
            if os.environ.get("AWS_SESSION_TOKEN"):
                options["session_token"] = os.environ["AWS_SESSION_TOKEN"]
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            options["region"] = region
        return pafs.S3FileSystem(**options), uri[len("s3://"):].rstrip("/")
    if "://" in uri and not uri.startswith("file://"):
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, path
    path = uri[len("file://"):] if uri.startswith("file://") else uri
    return pafs.LocalFileSystem(), os.path.abspath(path)


def write_frame(uri: str, frame) -> None:
    """Write a pandas DataFrame atomically as Parquet (``.parquet``) or CSV (otherwise),
    without the index."""
    if uri.endswith(".parquet"):
        import io

        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        write_bytes_atomic(uri, buf.getvalue())
    else:
        write_bytes_atomic(uri, frame.to_csv(index=False).encode())


def read_frame(uri: str):
    """Read a pandas DataFrame written by :func:`write_frame` (Parquet for ``.parquet``,
    CSV otherwise)."""
    import io

    import pandas as pd

    data = io.BytesIO(read_bytes(uri))
    return pd.read_parquet(data) if uri.endswith(".parquet") else pd.read_csv(data)
