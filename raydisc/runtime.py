"""Connecting to Ray: a local cluster by default, or the one named by ``--address`` /
``RAY_ADDRESS`` (as set by ``ray job submit``)."""
from __future__ import annotations

import logging
import os


def init_ray(address: str | None = None, num_cpus: int | None = None, verbose: bool = False) -> None:
    """Start a local Ray (or connect to ``address``). The console then gets raydisc's
    own lines only: Ray's logs (driver, workers, Ray Data) go to the session's log
    folder (``/tmp/ray/session_latest/logs``; the driver's in ``raydisc-driver-PID.log``),
    and only errors reach the console; ``verbose`` keeps Ray's console output as Ray
    prints it by default."""
    import ray

    if ray.is_initialized():
        return
    if not verbose:
        # Tune's console reporter (the sweep) prints a results path and a TensorBoard
        # hint per trial even at RunConfig(verbose=0); the legacy reporter at verbose 0
        # prints nothing (the sweep prints one line per trial itself).
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs = {"address": address} if address else {"num_cpus": num_cpus}
    if not verbose:
        # A new local cluster gets Ray's token authentication (the token is kept in
        # ~/.ray/auth_token), and Ray announces that at WARNING on every start. The
        # notice is for people who start clusters by hand; the README says it once.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    # Without verbose, workers' output (checkpoint notices, process-group set-up, Ray
    # Data warnings) stays in their log files instead of being forwarded here.
    context = ray.init(ignore_reinit_error=True, logging_level="INFO" if verbose else "WARNING",
                       log_to_driver=verbose, **kwargs)
    session_dir = getattr(context, "address_info", {}).get("session_dir")  # none for a ray:// client
    _route_driver_logs(verbose, os.path.join(session_dir, "logs") if session_dir else None)


def _route_driver_logs(verbose: bool, logs: str | None) -> None:
    """Ray's driver-side loggers to a file in the session's log folder ``logs``; the
    console keeps only errors (everything with ``verbose``). Ray Data's progress bars are
    off: each raydisc stage draws its own (:mod:`raydisc.progress`)."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = verbose
    context.print_on_execution_start = verbose
    if verbose:
        return
    ray_logger = logging.getLogger("ray")
    if logs is not None and os.path.isdir(logs):
        handler = logging.FileHandler(os.path.join(logs, f"raydisc-driver-{os.getpid()}.log"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        ray_logger.addHandler(handler)
        ray_logger.setLevel(logging.INFO)
    # "ray" (Ray Core, Train, Tune) and Ray Data's own logger, which does not propagate
    # and already writes ray-data.log in the session folder: only their console
    # handlers (stream handlers that are not file handlers) are turned down.
    for logger in (ray_logger, logging.getLogger("ray.data")):
        for h in logger.handlers:
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                h.setLevel(logging.ERROR)


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
