"""Connecting to Ray: a local cluster by default, or the one named by ``--address`` /
``RAY_ADDRESS`` (as set by ``ray job submit``)."""
from __future__ import annotations

import os


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    import ray

    if ray.is_initialized():
        return
    # Ray 2.49 warns on every trainer start about Train V2 migrations that do not apply
    # to this code; a local cluster's workers inherit the switch from here.
    os.environ.setdefault("RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS", "0")
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs = {"address": address} if address else {"num_cpus": num_cpus}
    # Ray Data's per-operator progress bars stay on; the log deduplication keeps the
    # console readable when many tasks report the same warning.
    ray.init(ignore_reinit_error=True, logging_level="WARNING", **kwargs)


# glibc mallopt parameters (malloc.h) and the values set for array-heavy processes.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Allocations up to this size come from the heap (glibc's largest allowed threshold).
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
#: Free memory kept at the top of the heap before glibc hands it back to the kernel.
_TRIM_THRESHOLD_BYTES = 512 * 1024 * 1024
_MALLOC_TUNED = False


def reuse_freed_array_memory() -> bool:
    """Let this process reuse freed multi-megabyte arrays instead of returning them to
    the kernel; returns whether the setting applies (glibc only, once per process).

    By default glibc serves allocations above a threshold (128 kB, raised dynamically
    up to 32 MB) with fresh ``mmap`` pages and unmaps them on free, so every multi-MB
    NumPy temporary of preprocessing (a block of 200 Hz recordings is 3.8 MB per step)
    pays page faults and zero-filling on first touch: measured, more than half of the
    preprocessing time at 200 Hz. Fixed thresholds keep such blocks in the heap; the
    process keeps up to ``_TRIM_THRESHOLD_BYTES`` of freed memory for reuse, so its
    resident memory stays at the peak of its working set.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        mallopt = None
    if mallopt is None:
        return False
    _MALLOC_TUNED = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES))
    return _MALLOC_TUNED
