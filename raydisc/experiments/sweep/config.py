"""What a fine-tuning data sweep runs: :class:`SweepConfig`, its trial grid, how many
trials run at once, and the names of the trials' folders."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...config import ConfigBase, ConfigError

MODES = ("finetuned", "scratch")
SPLITS = ("validation", "test")
LEVELS = ("station", "event")
#: Strategy recorded for trials trained from scratch (nothing is frozen).
SCRATCH_STRATEGY = "none"
DEFAULT_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
#: Metrics of each (split, level) that a trial reports.
EVAL_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "n")


def _floats(values: Any, name: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a list of numbers, got {values!r}") from None
    if not out:
        raise ConfigError(f"{name} must not be empty")
    if len(set(out)) != len(out):
        raise ConfigError(f"{name} has duplicates: {list(out)}")
    return out


@dataclass(frozen=True)
class SweepConfig(ConfigBase):
    """What a fine-tuning data sweep runs.

    Axes (the grid is their product; scratch trials have no strategy axis)
        ``fractions``: shares of the target's training events, each in (0, 1].
        ``seeds``: each seed draws its own nested event samples and seeds training.
        ``modes``: ``"finetuned"`` (from the bundle's best member) and/or ``"scratch"``.
        ``strategies``: ``TrainConfig.freeze`` values tried for fine-tuned trials.
        ``learning_rates``: ``None`` — the defaults (fine-tuned:
        ``FINETUNE_DEFAULTS["learning_rate"]``, scratch: ``TrainConfig``'s) — or a list
        tried for both modes.

    Training of every trial
        ``epochs`` and ``patience`` (``None``: per-mode defaults, fine-tuned
        ``FINETUNE_DEFAULTS``, scratch ``TrainConfig``); ``batch_size``;
        ``train_options``: further :class:`~raydisc.training.TrainConfig` fields
        (``weight_decay``, ``shuffle_buffer_size``, ...).

    Resources
        ``cpus_per_trial`` / ``gpus_per_trial``: what the trial's training worker holds
        (fractions allowed: several trials share a GPU).
        ``max_concurrent_trials``: ``None`` = :func:`auto_concurrency`.
    """

    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    seeds: tuple[int, ...] = (0, 1)
    modes: tuple[str, ...] = MODES
    strategies: tuple[str, ...] = ("none",)
    learning_rates: tuple[float, ...] | None = None
    epochs: int | None = None
    patience: int | None = None
    batch_size: int = 64
    max_concurrent_trials: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    train_options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        from ...models import FREEZE_STRATEGIES

        fractions = _floats(self.fractions, "fractions")
        bad = [f for f in fractions if not 0 < f <= 1]
        if bad:
            raise ConfigError(f"fractions must lie in (0, 1], got {bad}")
        object.__setattr__(self, "fractions", tuple(sorted(fractions)))
        seeds = tuple(self.seeds) if not isinstance(self.seeds, int) else (self.seeds,)
        if not seeds or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seeds):
            raise ConfigError(f"seeds must be a non-empty list of integers, got {self.seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"seeds has duplicates: {list(seeds)}")
        object.__setattr__(self, "seeds", tuple(int(s) for s in seeds))
        modes = tuple(self.modes)
        if not modes or any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
            raise ConfigError(f"modes must be distinct values of {MODES}, got {list(modes)}")
        strategies = tuple(self.strategies)
        if not strategies or any(s not in FREEZE_STRATEGIES for s in strategies) or len(set(strategies)) != len(strategies):
            raise ConfigError(f"strategies must be distinct values of {FREEZE_STRATEGIES}, got {list(strategies)}")
        if self.learning_rates is not None:
            rates = _floats(self.learning_rates, "learning_rates")
            if not all(r > 0 and math.isfinite(r) for r in rates):
                raise ConfigError(f"learning_rates must be positive, got {list(rates)}")
            object.__setattr__(self, "learning_rates", rates)
        for name in ("epochs", "patience"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"{name} must be a positive integer or None, got {value!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if self.max_concurrent_trials is not None and (
                not isinstance(self.max_concurrent_trials, int) or self.max_concurrent_trials < 1):
            raise ConfigError(f"max_concurrent_trials must be a positive integer or None, got {self.max_concurrent_trials!r}")
        if not self.cpus_per_trial > 0:
            raise ConfigError(f"cpus_per_trial must be positive, got {self.cpus_per_trial}")
        if self.gpus_per_trial < 0:
            raise ConfigError(f"gpus_per_trial must be >= 0, got {self.gpus_per_trial}")
        if not isinstance(self.train_options, dict):
            raise ConfigError(f"train_options must be a dict, got {type(self.train_options).__name__}")
        owned = {"members", "base_seed", "learning_rate", "epochs", "patience", "batch_size", "freeze",
                 "architecture", "hparams", "cpus_per_worker", "use_gpu", "workers_per_member"}
        clash = sorted(owned & set(self.train_options))
        if clash:
            raise ConfigError(f"train_options may not set {clash}: the sweep sets them (use its own fields)")
        # Every trial's TrainConfig must be valid before any trial starts.
        from ...training.config import TrainConfig

        try:
            TrainConfig.from_dict({**self.train_options, **self.training_resources()})
        except TypeError as exc:
            raise ConfigError(f"train_options: {exc}") from None

    def training_resources(self) -> dict[str, Any]:
        """The :class:`~raydisc.training.TrainConfig` resource fields of every trial:
        one worker per member holding ``cpus_per_trial`` CPUs (and ``gpus_per_trial`` GPUs)."""
        fields: dict[str, Any] = {"cpus_per_worker": float(self.cpus_per_trial), "use_gpu": self.gpus_per_trial > 0,
                                  "workers_per_member": 1}
        if self.gpus_per_trial > 0:
            fields["gpus_per_worker"] = float(self.gpus_per_trial)
        return fields

    def trials(self) -> list[dict[str, Any]]:
        """Every trial's parameters (``fraction``, ``seed``, ``mode``, ``strategy``,
        ``learning_rate``: ``None`` = the mode's default), seed-major so that an
        interrupted sweep has complete curves for its first seeds."""
        rates = self.learning_rates or (None,)
        out = []
        for seed in self.seeds:
            for fraction in self.fractions:
                for mode in self.modes:
                    for strategy in (self.strategies if mode == "finetuned" else (SCRATCH_STRATEGY,)):
                        for rate in rates:
                            out.append({"fraction": fraction, "seed": seed, "mode": mode, "strategy": strategy,
                                        "learning_rate": rate})
        return out



def auto_concurrency(config: SweepConfig, cluster: dict[str, float]) -> int:
    """Trials run at once when ``max_concurrent_trials`` is ``None``: as many as fit
    side by side at their peaks (``max(cpus_per_trial + 1, 2)`` CPUs, ``gpus_per_trial``
    GPUs, see the module docstring), at least one."""
    if config.max_concurrent_trials is not None:
        return config.max_concurrent_trials
    cpus, gpus = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0))
    by_cpu = int((cpus + 1e-9) // max(config.cpus_per_trial + 1, 2))
    by_gpu = int((gpus + 1e-9) // config.gpus_per_trial) if config.gpus_per_trial > 0 else by_cpu
    return max(1, min(by_cpu, by_gpu))


def trial_name(params: dict[str, Any]) -> str:
    """Folder name of a trial, e.g. ``finetuned-f0.05-s1-none-lrdefault``."""
    rate = "default" if params["learning_rate"] is None else f"{params['learning_rate']:g}"
    return f"{params['mode']}-f{params['fraction']:g}-s{params['seed']}-{params['strategy']}-lr{rate}"

