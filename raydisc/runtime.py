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
