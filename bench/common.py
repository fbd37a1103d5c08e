"""Helpers shared by the benchmarks: timing and peak memory of a process tree."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import psutil


def tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of a process and all its descendants (Ray workers included)."""
    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


@contextmanager
def measure(pid: int | None = None, interval_s: float = 0.2):
    """Yield a dict that gets ``seconds`` and ``peak_rss_mb`` (process tree) on exit."""
    pid = pid or psutil.Process().pid
    result = {"peak_rss_mb": 0.0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            result["peak_rss_mb"] = max(result["peak_rss_mb"], tree_rss_bytes(pid) / 2**20)
            stop.wait(interval_s)

    thread = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result["seconds"] = time.perf_counter() - start
