"""Helpers shared by the benchmarks: timing, CPU time and peak memory of a process tree."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import psutil


def _tree(root_pid: int, recursive: bool = True) -> list[psutil.Process]:
    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)] if recursive else [root]
    except psutil.NoSuchProcess:
        return []


def tree_rss_bytes(root_pid: int, recursive: bool = True) -> int:
    """Resident memory of a process and all its descendants (Ray workers included)."""
    total = 0
    for p in _tree(root_pid, recursive):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def tree_cpu_seconds(root_pid: int, recursive: bool = True) -> dict[int, float]:
    """User + system CPU seconds per process of the tree, keyed by pid."""
    times = {}
    for p in _tree(root_pid, recursive):
        try:
            t = p.cpu_times()
            times[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return times


@contextmanager
def measure(pid: int | None = None, interval_s: float = 0.2, tree: bool = True):
    """Yield a dict that gets ``seconds`` (wall), ``cpu_seconds`` and ``peak_rss_mb`` on
    exit, of the process and (``tree``) its descendants. CPU time is less disturbed than
    wall time by other work on a shared machine; it counts processes alive at the end
    (Ray's workers live as long as the cluster)."""
    pid = pid or psutil.Process().pid
    result = {"peak_rss_mb": 0.0}
    cpu_before = tree_cpu_seconds(pid, tree)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            result["peak_rss_mb"] = max(result["peak_rss_mb"], tree_rss_bytes(pid, tree) / 2**20)
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
        cpu_after = tree_cpu_seconds(pid, tree)
        result["cpu_seconds"] = sum(t - cpu_before.get(p, 0.0) for p, t in cpu_after.items())
