"""Per-epoch progress of the ensemble members, from their Ray Train runs to the driver.

Ray Train (V2) runs each member under a controller actor; the callbacks of a run are
called there, not in the driver. :class:`EpochReporter` is such a callback: after every
report of the member's workers (one per epoch, once its checkpoint is registered) it
puts rank 0's metrics row into a Ray queue, and after a worker failure a message saying
whether the member restarts. :class:`MemberReports` owns that queue in the driver and
drains it in a thread while the member trains, so that every epoch is announced as it
ends; leaving it delivers what is still queued (the member's last rows are in hand when
``fit()`` returns).
"""
from __future__ import annotations

import math
import threading
from typing import Any, Callable

from ray.train import UserCallback

from ..progress import last_line

#: How long the driver's drain thread waits for the next item before checking whether
#: the member has finished (s).
_POLL_S = 0.5

#: The columns of a reported row kept in ``history.csv`` (and in a finished member's record).
HISTORY_COLUMNS = ("member", "seed", "epoch", "train_loss", "validation_loss", "validation_accuracy",
                   "validation_balanced_accuracy", "best_validation_loss", "best_epoch", "stopped_early",
                   "resumed_from_epoch", "train_samples", "train_samples_per_s", "epoch_s")


def format_epoch(row: dict[str, Any], epochs: int) -> str:
    """One readable progress line for a reported epoch of a member."""
    flag = "*" if row.get("best_epoch") == row.get("epoch") else " "
    return (
        f"member {int(row['member']):>3} (seed {int(row['seed'])}) epoch {int(row['epoch']):>3}/{epochs}  "
        f"train loss {row['train_loss']:.3f}  validation loss {row['validation_loss']:.3f}{flag} "
        f"accuracy {percent(row['validation_accuracy'])}  {row['train_samples_per_s']:.0f} rec/s  "
        f"{row['epoch_s']:.1f} s" + ("  (early stop)" if row.get("stopped_early") else "")
    )


def percent(fraction: float | None) -> str:
    """``0.9684`` -> ``"96.8 %"`` (``"n/a"`` when there is none)."""
    return "n/a" if fraction is None or not math.isfinite(fraction) else f"{100 * fraction:.1f} %"


def rounded(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


class EpochReporter(UserCallback):
    """Ray Train callback of one member (runs in its Train controller): forwards every
    report's rank-0 metrics row, and every worker failure, to the driver's queue.
    Module-level, so that it pickles by reference into the controller."""

    def __init__(self, queue, max_failures: int) -> None:
        self.queue = queue
        self.max_failures = max_failures
        self.failures = 0

    def after_report(self, run_context, metrics, checkpoint) -> None:
        if metrics:
            self.queue.put(("row", dict(metrics[0])))

    def after_exception(self, run_context, worker_exceptions) -> None:
        self.failures += 1
        ranks = ", ".join(str(rank) for rank in sorted(worker_exceptions))
        reason = next(iter(worker_exceptions.values()), None)
        summary = (last_line(reason) if reason is not None else "") or "no reason given"
        then = ("restarting from the last checkpoint" if self.failures <= self.max_failures
                else f"no restarts left (max_failures={self.max_failures})")
        self.queue.put(("message", f"worker {ranks} failed ({summary[:200]}); {then}"))


class MemberReports:
    """The driver's end of one member's :class:`EpochReporter`: a Ray queue (an actor
    holding no CPU) and a thread that passes its rows to ``on_row`` and its messages to
    ``on_message`` while the member trains. Use as a context manager around building the
    trainer and ``fit()``: the queue actor exists only inside the ``with`` block, so a
    trainer that fails to build leaves no actor behind."""

    def __init__(self, on_row: Callable[[dict[str, Any]], None], on_message: Callable[[str], None]) -> None:
        self.on_row, self.on_message = on_row, on_message
        self.queue = None
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="member-reports", daemon=True)

    def callback(self, max_failures: int) -> EpochReporter:
        if self.queue is None:
            raise RuntimeError("MemberReports.callback() is for inside its `with` block")
        return EpochReporter(self.queue, max_failures)

    def __enter__(self) -> "MemberReports":
        from ray.util.queue import Queue

        self.queue = Queue(actor_options={"num_cpus": 0})
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._finished.set()
        self._thread.join()
        self.queue.shutdown()

    def _drain(self) -> None:
        from ray.util.queue import Empty

        while True:
            try:
                kind, payload = self.queue.get(timeout=_POLL_S)
            except Empty:
                if self._finished.is_set():  # fit() has returned: everything reported is queued
                    return
                continue
            if kind == "row":
                self.on_row(payload)
            else:
                self.on_message(payload)


__all__ = ["EpochReporter", "HISTORY_COLUMNS", "MemberReports", "format_epoch", "percent", "rounded"]
