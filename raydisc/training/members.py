"""One ensemble member's Ray Train run and its saved result.

A member's best weights go to ``{run_dir}/finished/member-NNN.safetensors``, then (last,
as the marker) its metrics and history to ``member-NNN.json`` with the run's
fingerprint, so a re-run with the same settings takes it from there.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import threading
import time
from typing import Any, Callable

import numpy as np

from .. import storage
from ..progress import last_line
from .config import TrainConfig
from .reporting import HISTORY_COLUMNS, MemberReports, format_epoch

log = logging.getLogger(__name__)

MEMBERS_DIR = "members"
FINISHED_DIR = "finished"


class TrainingError(RuntimeError):
    """One or more ensemble members failed (after their allowed restarts)."""


def member_name(member: int) -> str:
    return f"member-{member:03d}"


@dataclasses.dataclass(frozen=True)
class MemberRun:
    """What every member's run shares: ``datasets`` (member -> Ray Data datasets by split),
    ``trainer(member, callback)`` (-> ``TorchTrainer``), the run directory, config and
    fingerprint, and the history rows (appended by the members' threads under ``lock``)."""

    run_dir: str
    train_config: TrainConfig
    fingerprint: str
    trainer: Callable[[int, Any], Any]
    say: Callable[[str], None]
    history: list[dict[str, Any]]
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def fit(self, member: int) -> dict[str, Any]:
        """Train ``member``, save its result (:func:`save_finished`) and return it:
        ``{"state": best state dict, "metrics": {...}}``; TrainingError if it failed."""
        from .loop import load_checkpoint_state

        config = self.train_config

        def on_row(result: dict[str, Any]) -> None:
            row = {k: result[k] for k in HISTORY_COLUMNS if k in result}
            with self.lock:
                self.history.append(row)
            self.say(format_epoch(row, config.epochs))

        started = time.perf_counter()
        with MemberReports(on_row, lambda text: self.say(f"member {member:>3}: {text}")) as reports:
            trainer = self.trainer(member, reports.callback(config.max_failures))
            try:
                result = trainer.fit()
            except Exception as exc:  # ray.train.TrainingFailedError: restarts used up, or the controller failed
                raise TrainingError(f"member {member} (seed {config.seed_of(member)}) failed: "
                                    f"{last_line(exc) or type(exc).__name__}") from exc
        if result.error is not None or result.checkpoint is None:
            raise TrainingError(f"member {member} failed: {result.error or 'no checkpoint was reported'}")
        with result.checkpoint.as_directory() as d:
            state = load_checkpoint_state(d)
        best = state["best_model"] if state["best_model"] is not None else state["model"]
        metrics = {
            "member": member, "seed": config.seed_of(member),
            "validation_loss": _finite(state["best_validation_loss"]),
            "validation_accuracy": _finite(state["best_validation_accuracy"]),
            "best_epoch": int(state["best_epoch"]), "epochs_trained": int(state["epoch"]),
            "stopped_early": bool(state["stopped_early"]), "train_seconds": round(time.perf_counter() - started, 2),
            "run_path": storage.join(self.run_dir, MEMBERS_DIR, member_name(member)),
        }
        outcome = {"state": best, "metrics": metrics}
        with self.lock:
            rows = [row for row in self.history if row.get("member") == member]
        save_finished(self.run_dir, member, self.fingerprint, outcome, rows)
        return outcome


def run_fingerprint(provenance: dict[str, Any]) -> str:
    """What a finished member's result depends on: the provenance of its run (config,
    shards, regions, initial bundle, ...) without the run directory and the ensemble
    size (member ``i`` trains the same way whatever the number of members: a run can be
    continued with more members). Hex SHA-256."""
    key = {k: v for k, v in provenance.items() if k != "run_dir"}
    key["train_config"] = {k: v for k, v in key["train_config"].items() if k != "members"}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def save_finished(run_dir: str, member: int, fingerprint: str, outcome: dict[str, Any],
                  history: list[dict[str, Any]]) -> None:
    """Write a trained member's weights, then (last, as the marker) its metrics."""
    from safetensors.torch import save

    base = storage.join(run_dir, FINISHED_DIR, member_name(member))
    data = save({k: v.detach().cpu().contiguous().clone() for k, v in outcome["state"].items()})
    storage.write_bytes_atomic(base + ".safetensors", data)
    record = {"fingerprint": fingerprint, "sha256": hashlib.sha256(data).hexdigest(),
              "metrics": outcome["metrics"], "history": history}
    storage.write_bytes_atomic(base + ".json", json.dumps(record, default=_jsonable_scalar).encode())


def load_finished(run_dir: str, member: int, fingerprint: str) -> dict[str, Any] | None:
    """The result of ``member`` finished by an earlier run with the same settings
    (``{"state", "metrics", "history"}``), or None (not finished, other settings, or
    unreadable: then it is trained again)."""
    from safetensors.torch import load

    base = storage.join(run_dir, FINISHED_DIR, member_name(member))
    try:
        record = json.loads(storage.read_bytes(base + ".json"))
    except FileNotFoundError:
        return None
    if record.get("fingerprint") != fingerprint:
        log.warning("member %d: %s holds a result of other settings; training it again", member, base)
        return None
    data = storage.read_bytes(base + ".safetensors")
    if hashlib.sha256(data).hexdigest() != record.get("sha256"):
        log.warning("member %d: %s.safetensors does not match its checksum; training it again", member, base)
        return None
    return {"state": load(data), "metrics": record["metrics"], "history": record.get("history", [])}


def _jsonable_scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else str(value)


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


__all__ = ["FINISHED_DIR", "MEMBERS_DIR", "MemberRun", "TrainingError", "load_finished", "member_name",
           "run_fingerprint", "save_finished"]
