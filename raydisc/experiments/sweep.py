"""How much target-region data does fine-tuning need? A Ray Tune sweep over the fraction
of the target region's training events, fine-tuned from a pretrained bundle against
trained from scratch, with learning curves.

One Tune trial is one combination of (fraction, seed, mode, strategy, learning rate):

* it draws its training events with :func:`sample_fraction_events` (by event, stratified
  by class, nested across fractions, reproducible from the seed);
* ``mode="finetuned"``: a one-member fine-tune of the pretrained bundle's best member
  (:func:`~raydisc.training.finetune.finetune_ensemble`, ``init_members=[best]``, layers
  frozen per ``strategy``); ``mode="scratch"``: one member of the bundle's architecture
  and hyper-parameters trained from random weights on the same events
  (:func:`~raydisc.training.ensemble.train_ensemble`; strategy ``"none"``);
* both train on Ray Train (a ``TorchTrainer`` run nested inside the Tune trial), stop
  early on the target's *whole* validation split, and are evaluated
  (:func:`~raydisc.evaluation.evaluate.evaluate`) on the target's validation and test
  splits at station and event level; the trial reports those metrics to Tune once.

Layout of a sweep directory (a local path or an object-store URI)::

    {out_dir}/sweep_config.json     SweepConfig + bundle, shards, target (checked on resume)
    {out_dir}/tune/sweep/           the Tune experiment (state for Tuner.restore)
    {out_dir}/trials/<trial>/attempt-N/   the trial's training run (bundle, history, evaluations)
    {out_dir}/trials/<trial>/metrics.json the trial's reported metrics (written last)
    {out_dir}/results.parquet|csv   tidy table: fraction, seed, mode, strategy, learning_rate,
                                    split, level, metric, value
    {out_dir}/failures.csv          failed trials: parameters, error, traceback (always written)
    {out_dir}/learning_curve.png    test accuracy vs fraction (log x), station and event level

Table rows: for ``split`` in (validation, test) and ``level`` in (station, event), the
metrics ``accuracy``, ``balanced_accuracy``, ``macro_f1`` and ``n`` (recordings or events
evaluated); with ``split="train"``: ``n_train_events`` / ``n_train_recordings`` (levels
event / station) and, with ``level="run"``, ``epochs_trained``, ``best_epoch``,
``train_seconds``. The model of a trial has one member, so its best member is its
ensemble.

Resources. The trial itself only coordinates (its training worker is a Ray Train actor
in a placement group of its own, its evaluation runs in Ray Data tasks and actors), so it
asks Tune for no CPU, only a token of memory (:data:`TRIAL_RESOURCES`; Tune refuses an
empty request, and any CPU share would break the CPU arithmetic below). A
trial needs, at its peak, its training worker (``cpus_per_trial`` CPUs,
``gpus_per_trial`` GPUs) plus one CPU for Ray Data's read tasks, or two CPUs while it
evaluates (a read task and a predictor actor). ``max_concurrent_trials=None`` runs as
many trials at once as fit those peaks side by side (:func:`auto_concurrency`: on a
2-CPU machine, one), because trials whose training workers hold the CPUs that each
other's Ray Data tasks wait for would deadlock.

Scheduler: none (Tune's FIFO). Early stopping of "hopeless" trials (ASHA, median
stopping, PBT) is not sound here: (1) trials report once, at the end, and their epochs are
not comparable — an epoch at fraction 0.01 is a few mini-batches, at 1.0 hundreds — so a
rung comparison at equal "time" would compare different amounts of training rather than
promise; (2) the sweep is a measurement, not a search: the trials a scheduler would stop
(small fractions, from scratch) are exactly the low end of the learning curve the sweep
exists to measure, and stopping them would bias the curve; (3) every trial already stops
itself early when its validation loss stops improving (``patience``), which is where
compute is saved without biasing anything.

Resume and failures: if ``{out_dir}/tune/sweep`` holds an experiment, :func:`run_sweep`
restores it (``Tuner.restore(resume_unfinished=True, resume_errored=False,
restart_errored=retry_failed)``): finished trials are not run again, trials that were
running when the driver died start over (in a fresh ``attempt-N`` folder, or, if they had
already written ``metrics.json``, just report it again), and errored trials stay errored
(their errors are usually deterministic: bad data or configuration) unless
``retry_failed``. Trials are not retried by Tune (``max_failures=0``); a training worker
that dies is restarted by Ray Train from its checkpoint (``TrainConfig.max_failures``).
A failed trial is listed in ``failures.csv`` and in the progress output and does not
stop the other trials.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from .. import storage
from ..config import ConfigBase, ConfigError

MODES = ("finetuned", "scratch")
SPLITS = ("validation", "test")
LEVELS = ("station", "event")
#: Columns of ``results.parquet`` / ``results.csv``, in this order.
RESULT_COLUMNS = ("fraction", "seed", "mode", "strategy", "learning_rate", "split", "level", "metric", "value")
FAILURE_COLUMNS = ("fraction", "seed", "mode", "strategy", "learning_rate", "trial", "error", "traceback")
#: Strategy recorded for trials trained from scratch (nothing is frozen).
SCRATCH_STRATEGY = "none"
DEFAULT_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
EVAL_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "n")
#: What a trial's own (coordinating) actor asks Tune for: no CPU — even a small share
#: would leave less than the one whole CPU a Ray Data read task needs on a 2-CPU
#: machine (a deadlock) — but Tune refuses an empty request, hence a little memory.
TRIAL_RESOURCES = {"cpu": 0, "memory": 64 * 1024**2}
EXPERIMENT_NAME = "sweep"
TUNE_DIR = "tune"
TRIALS_DIR = "trials"
CONFIG_FILE = "sweep_config.json"
RESULTS_PARQUET = "results.parquet"
RESULTS_CSV = "results.csv"
FAILURES_CSV = "failures.csv"
CURVE_PNG = "learning_curve.png"
METRICS_FILE = "metrics.json"


# ----------------------------------------------------------------------------- sampling

def sample_fraction_events(events: pd.DataFrame, fraction: float, seed: int) -> list[str]:
    """The event ids of a ``fraction`` of the training events, drawn by event,
    stratified by class, nested and reproducible.

    ``events``: the output of :func:`raydisc.training.data.split_events` for the target
    region's ``train`` split (columns ``region``, ``event_id``, ``label``,
    ``n_recordings``; one row per event). For each class ``c`` with ``n_c`` events, the
    class's events (sorted by region and event id) are permuted with a generator seeded by
    ``(seed, c)`` only — not by ``fraction`` — and the first ``max(1, ceil(fraction *
    n_c))`` are taken. Hence:

    * by event: all recordings of a chosen event go to training together (the ids are
      events, training keeps every recording of them);
    * stratified: each class contributes its own share, at least one event, so a trial
      always sees every class that has training events;
    * nested: for one seed, a smaller fraction's events are a prefix of the same
      permutation as a larger fraction's, hence a subset;
    * reproducible: the same events, seed and fraction give the same ids, whatever the
      row order of ``events``.

    Returns the sorted event ids. ``ConfigError`` for a fraction outside (0, 1] and
    for an empty ``events``.
    """
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise ConfigError(f"fraction must lie in (0, 1], got {fraction!r}")
    if events.empty:
        raise ConfigError("no training events to draw from")
    if events["event_id"].duplicated().any():
        raise ConfigError("event ids are not unique across the given events")
    ordered = events.sort_values(["region", "event_id"], kind="stable")
    chosen: list[str] = []
    for label, group in ordered.groupby("label", sort=True):
        ids = group["event_id"].astype(str).to_numpy()
        rng = np.random.default_rng([int(seed), int(label)])
        take = max(1, math.ceil(fraction * len(ids) - 1e-9))
        chosen.extend(ids[rng.permutation(len(ids))[:take]].tolist())
    return sorted(chosen)


# ----------------------------------------------------------------------------- config

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
        from ..models import FREEZE_STRATEGIES

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
        from ..training.config import TrainConfig

        try:
            TrainConfig.from_dict({**self.train_options, **self._resource_fields()})
        except TypeError as exc:
            raise ConfigError(f"train_options: {exc}") from None

    def _resource_fields(self) -> dict[str, Any]:
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


def trial_train_config(params: dict[str, Any], config: SweepConfig, manifest: dict[str, Any]):
    """The one-member :class:`~raydisc.training.TrainConfig` of a trial."""
    from ..training.config import TrainConfig
    from ..training.finetune import FINETUNE_DEFAULTS

    base = dict(FINETUNE_DEFAULTS) if params["mode"] == "finetuned" else {}
    values = {**base, **config.train_options, **config._resource_fields(),
              "architecture": manifest["architecture"], "hparams": dict(manifest["hparams"]),
              "members": 1, "base_seed": int(params["seed"]), "batch_size": config.batch_size,
              "freeze": params["strategy"] if params["mode"] == "finetuned" else "none"}
    if params["learning_rate"] is not None:
        values["learning_rate"] = float(params["learning_rate"])
    if config.epochs is not None:
        values["epochs"] = config.epochs
    if config.patience is not None:
        values["patience"] = config.patience
    return TrainConfig.from_dict(values)


# ----------------------------------------------------------------------------- the trial

def _attempts(trial_dir: str) -> list[str]:
    return sorted((n for n in storage.listdir(trial_dir) if n.startswith("attempt-")),
                  key=lambda n: int(n.split("-", 1)[1]) if n.split("-", 1)[1].isdigit() else -1)


def _run_trial(params: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one trial; returns its flat metrics (keys ``split.level.metric``)."""
    from ..ensemble.bundle import read_manifest
    from ..evaluation.evaluate import evaluate
    from ..training.data import split_events
    from ..training.ensemble import train_ensemble
    from ..training.finetune import finetune_ensemble

    fail = context.get("fail") or []
    if any(all(params.get(k) == v for k, v in f.items()) for f in fail):
        raise RuntimeError(f"injected failure for trial {trial_name(params)}")
    config = SweepConfig.from_dict(context["config"])
    bundle, shards, target = context["bundle"], context["shards"], context["target"]
    trial_dir = storage.join(context["out_dir"], TRIALS_DIR, trial_name(params))
    metrics_uri = storage.join(trial_dir, METRICS_FILE)
    if storage.exists(metrics_uri):  # finished before the driver died, but not recorded by Tune
        return json.loads(storage.read_bytes(metrics_uri))

    started = time.perf_counter()
    manifest = read_manifest(bundle)
    train_config = trial_train_config(params, config, manifest)
    events = sample_fraction_events(split_events(shards, [target], "train"), params["fraction"], params["seed"])

    # A finished training run of an earlier attempt is reused; otherwise a fresh folder
    # (train_ensemble refuses a run directory that already holds a bundle).
    attempts = _attempts(trial_dir)
    done = [a for a in attempts if storage.exists(storage.join(trial_dir, a, "bundle", "bundle.json"))]
    run_dir = storage.join(trial_dir, done[-1] if done else f"attempt-{len(attempts) + 1}")
    bundle_uri = storage.join(run_dir, "bundle")
    if not done:
        if params["mode"] == "finetuned":
            best = int(manifest["best_member"])
            finetune_ensemble(bundle, shards, target, train_config, run_dir, progress=None, train_events=events,
                              init_members=[best])
        else:
            train_ensemble(shards, [target], train_config, run_dir, progress=None, train_events=events)

    flat: dict[str, Any] = {}
    member = storage.read_frame(storage.join(run_dir, "members.csv")).iloc[0]
    flat["train.event.n_train_events"] = len(events)
    recordings = split_events(shards, [target], "train")
    flat["train.station.n_train_recordings"] = int(
        recordings.loc[recordings["event_id"].astype(str).isin(events), "n_recordings"].sum())
    flat["train.run.epochs_trained"] = int(member["epochs_trained"])
    flat["train.run.best_epoch"] = int(member["best_epoch"])
    flat["train.run.train_seconds"] = float(member["train_seconds"])
    for split in SPLITS:
        result = evaluate(bundle_uri, shards, [target], split=split, out_dir=storage.join(run_dir, f"evaluation-{split}"),
                          plots=False)
        for level in LEVELS:
            report = result.reports[("ensemble", level)]
            for metric in EVAL_METRICS:
                flat[f"{split}.{level}.{metric}"] = float(report[metric])
    flat["train.run.trial_seconds"] = round(time.perf_counter() - started, 2)
    flat["learning_rate_used"] = float(train_config.learning_rate)
    flat["run_dir"] = run_dir
    storage.write_bytes_atomic(metrics_uri, json.dumps(flat, indent=2, sort_keys=True).encode())
    return flat


def sweep_trial(config: dict[str, Any], context: dict[str, Any]) -> None:
    """The Tune function trainable: ``config["trial"]`` holds the trial's parameters."""
    import ray.data
    from ray import tune

    # This process is the trial's own: its Ray Data runs (evaluation) draw no bars.
    ray.data.DataContext.get_current().enable_progress_bars = False
    tune.report(_run_trial(dict(config["trial"]), context))


# ----------------------------------------------------------------------------- driver side

@dataclass
class _Sink:
    on_line: Callable[[str], None]


# Progress sinks by token (the Tune callback is pickled with the run config, so it
# holds a token rather than the driver's function, as in raydisc.training.ensemble).
_SINKS: dict[str, _Sink] = {}


def _define_progress_callback() -> type:
    """The Tune callback class (driver side): one line when a trial starts, finishes or
    fails. Created on first use so that importing this module (``raydisc --help``) does
    not import Ray Tune; it is module attribute ``_SweepProgress`` (see ``__getattr__``),
    so it pickles by reference with the run config and holds only a token."""
    if "_SweepProgress" in globals():
        return globals()["_SweepProgress"]
    from ray.tune import Callback

    class _SweepProgress(Callback):
        def __init__(self, token: str) -> None:
            self.token = token

        def _say(self, text: str) -> None:
            sink = _SINKS.get(self.token)
            if sink:
                sink.on_line(text)

        def on_trial_start(self, iteration, trials, trial, **info):
            self._say(f"started  {trial_name(trial.config['trial'])}")

        def on_trial_complete(self, iteration, trials, trial, **info):
            r = trial.last_result or {}
            if "test.station.accuracy" in r:
                self._say(f"finished {trial_name(trial.config['trial'])}: {r['train.event.n_train_events']} events, "
                          f"test accuracy station {r['test.station.accuracy']:.3f} event "
                          f"{r['test.event.accuracy']:.3f} ({r.get('train.run.trial_seconds', float('nan')):.0f}s)")

        def on_trial_error(self, iteration, trials, trial, **info):
            self._say(f"FAILED   {trial_name(trial.config['trial'])}: {_short_error(trial)}")

    _SweepProgress.__module__ = __name__
    _SweepProgress.__qualname__ = "_SweepProgress"
    globals()["_SweepProgress"] = _SweepProgress
    return _SweepProgress


def __getattr__(name: str):
    if name == "_SweepProgress":
        return _define_progress_callback()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _short_error(trial) -> str:
    try:
        text = trial.get_pickled_error() or trial.get_error()
    except Exception:  # noqa: BLE001 - best effort for a progress line
        text = None
    return _last_line(str(text)) if text else "see failures.csv"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else str(text)


def _context_json(bundle: str, shards: str, target: str, config: SweepConfig) -> dict[str, Any]:
    return {"bundle": bundle, "shards": shards, "target": target, "config": config.to_dict()}


def tidy_results(trials: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> pd.DataFrame:
    """The tidy table of (params, flat metrics) pairs, columns :data:`RESULT_COLUMNS`."""
    rows = []
    for params, metrics in trials:
        rate = metrics.get("learning_rate_used", params["learning_rate"])
        for key, value in metrics.items():
            parts = key.split(".")
            if len(parts) != 3 or not isinstance(value, (int, float)):
                continue
            split, level, metric = parts
            rows.append({"fraction": float(params["fraction"]), "seed": int(params["seed"]), "mode": params["mode"],
                         "strategy": params["strategy"], "learning_rate": float(rate), "split": split,
                         "level": level, "metric": metric, "value": float(value)})
    table = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    if not table.empty:
        table = table.sort_values(["mode", "strategy", "learning_rate", "fraction", "seed", "split", "level", "metric"],
                                  kind="stable").reset_index(drop=True)
    return table


def format_curve(table: pd.DataFrame, split: str = "test") -> str:
    """Text summary: mean (± std over seeds) ``split`` accuracy per fraction, for every
    mode/strategy/learning rate and level, in percent."""
    rows = table[(table["split"] == split) & (table["metric"] == "accuracy")]
    if rows.empty:
        return f"no {split} accuracy in the table"
    several_rates = rows.groupby("mode")["learning_rate"].transform("nunique") > 1
    curve = rows["mode"] + np.where(rows["mode"] == "finetuned", "/" + rows["strategy"], "")
    curve = curve + np.where(several_rates, "/lr" + rows["learning_rate"].map(lambda v: f"{v:g}"), "")
    rows = rows.assign(curve=curve)
    stats = rows.groupby(["fraction", "curve", "level"])["value"].agg(["mean", "std", "count"])
    curves = sorted(rows["curve"].unique(), key=lambda c: (not c.startswith("finetuned"), c))
    columns = [(c, lv) for c in curves for lv in LEVELS]
    width = max(20, *(len(f"{c} {lv}") for c, lv in columns))
    head = [f"{'fraction':>8}"] + [f"{f'{c} {lv}':>{width}}" for c, lv in columns]
    lines = [f"{split} accuracy (%), mean ± std over seeds", "  ".join(head)]
    for fraction in sorted(rows["fraction"].unique()):
        cells = [f"{fraction:>8g}"]
        for c, lv in columns:
            if (fraction, c, lv) not in stats.index:
                cells.append(f"{'-':>{width}}")
                continue
            mean, std, count = stats.loc[(fraction, c, lv)]
            text = f"{100 * mean:.1f}" + (f" ± {100 * std:.1f}" if count > 1 else "") + f" (n={int(count)})"
            cells.append(f"{text:>{width}}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


def plot_learning_curve(table: pd.DataFrame, uri: str, split: str = "test") -> str | None:
    """Accuracy vs fraction (log x) for each mode (and strategy / learning rate), mean line
    with the min–max band over seeds; one panel per level. Returns ``uri`` (``None`` when
    the table holds no such rows)."""
    from matplotlib.figure import Figure

    from ..evaluation.plots import write_png

    rows = table[(table["split"] == split) & (table["metric"] == "accuracy")]
    if rows.empty:
        return None
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, len(LEVELS), sharey=True)
    groups = list(rows.groupby(["mode", "strategy", "learning_rate"], sort=True))
    multi = len(groups) > len(rows["mode"].unique())
    colours = {"finetuned": "tab:blue", "scratch": "tab:orange"}
    styles = ["-", "--", ":", "-."]
    for ax, level in zip(axes, LEVELS):
        for k, ((mode, strategy, rate), g) in enumerate(groups):
            g = g[g["level"] == level]
            if g.empty:
                continue
            s = g.groupby("fraction")["value"].agg(["mean", "min", "max", "count"]).sort_index()
            label = "fine-tuned" if mode == "finetuned" else "from scratch"
            if multi:
                label += (f" ({strategy}, lr {rate:g})" if mode == "finetuned" else f" (lr {rate:g})")
            colour = colours.get(mode, "gray")
            ax.plot(s.index, s["mean"], styles[k % len(styles)] if multi else "-", marker="o", color=colour,
                    label=label)
            ax.fill_between(s.index, s["min"], s["max"], color=colour, alpha=0.15, linewidth=0)
        ax.set_xscale("log")
        ax.set_xlabel("fraction of the target region's training events")
        ax.set_title(f"{level.capitalize()} level")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(f"{split} accuracy")
    n_seeds = rows["seed"].nunique()
    axes[0].legend(loc="best", fontsize="small",
                   title=f"mean, band: min–max over {n_seeds} seed(s)", title_fontsize="small")
    fig.suptitle(f"Learning curve: {split} accuracy vs amount of target data")
    return write_png(fig, uri)


def run_sweep(
    bundle: str,
    shards: str,
    target: str,
    out_dir: str,
    config: SweepConfig | None = None,
    progress: Callable[[str], None] | None = print,
    *,
    retry_failed: bool = False,
    _fail_trials: Sequence[dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """Run (or resume) the sweep and write its results next to it; returns the tidy table.

    ``bundle``: the pretrained bundle (only read); ``shards``: shard folder holding
    region ``target``; ``out_dir``: the sweep directory (layout in the module
    docstring). Needs a running Ray cluster. An existing experiment in ``out_dir`` is
    resumed (``ConfigError`` if it was started with other arguments); ``retry_failed``
    reruns its errored trials. Failed trials go to ``failures.csv`` and ``progress``; they
    do not raise. ``_fail_trials`` (tests only): parameter subsets of trials that raise.
    """
    import ray
    from ray import tune

    from ..ensemble.bundle import read_manifest

    config = config or SweepConfig()
    if progress is print:  # flushed, so that `ray job logs` and redirected output show lines as they come
        say: Callable[[str], None] = lambda line: print(line, flush=True)
    else:
        say = progress or (lambda line: None)
    if not ray.is_initialized():
        raise RuntimeError("run_sweep needs a running Ray cluster: call ray.init() (or raydisc.runtime.init_ray)")
    bundle, shards = storage.absolute(bundle), storage.absolute(shards)
    out_dir = storage.absolute(out_dir)
    manifest = read_manifest(bundle)  # fails early for a missing bundle
    from ..training.data import split_events

    if split_events(shards, [target], "train").empty:
        raise ConfigError(f"{shards}: region {target!r} has no training events")

    context = _context_json(bundle, shards, target, config)
    config_uri = storage.join(out_dir, CONFIG_FILE)
    tune_fs, tune_path = storage.pyarrow_filesystem(storage.join(out_dir, TUNE_DIR))
    experiment_path = f"{tune_path}/{EXPERIMENT_NAME}"
    restoring = tune.Tuner.can_restore(experiment_path, storage_filesystem=tune_fs)
    if restoring and storage.exists(config_uri):
        stored = json.loads(storage.read_bytes(config_uri))
        if stored != json.loads(json.dumps(context)):
            raise ConfigError(f"{out_dir} holds a sweep started with other arguments ({stored}); "
                              "resume it with those, or use a new out_dir")
    storage.write_bytes_atomic(config_uri, json.dumps(context, indent=2, sort_keys=True).encode())

    trainable = tune.with_resources(
        tune.with_parameters(sweep_trial, context={**context, "out_dir": out_dir, "fail": list(_fail_trials or [])}),
        TRIAL_RESOURCES,
    )
    concurrent = auto_concurrency(config, ray.cluster_resources())
    combos = config.trials()
    token = uuid.uuid4().hex
    _SINKS[token] = _Sink(say)
    try:
        if restoring:
            say(f"resuming the sweep in {out_dir} (finished trials are kept"
                f"{', failed ones rerun' if retry_failed else ', failed ones stay failed'})")
            tuner = tune.Tuner.restore(experiment_path, trainable, resume_unfinished=True, resume_errored=False,
                                       restart_errored=retry_failed, storage_filesystem=tune_fs)
        else:
            say(f"sweep on {target}: {len(combos)} trials ({len(config.fractions)} fractions x "
                f"{len(config.seeds)} seeds x {', '.join(config.modes)}), {concurrent} at a time, "
                f"pretrained bundle {bundle} ({manifest['architecture']})")
            tuner = tune.Tuner(
                trainable,
                param_space={"trial": tune.grid_search(combos)},
                tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=False),
                run_config=tune.RunConfig(
                    name=EXPERIMENT_NAME, storage_path=tune_path, storage_filesystem=tune_fs,
                    failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                    callbacks=[__getattr__("_SweepProgress")(token)], verbose=0,
                ),
            )
        grid = tuner.fit()
    finally:
        _SINKS.pop(token, None)

    finished, failures = [], []
    for result in grid:
        params = _result_params(result)
        if result.error is not None:
            text = str(result.error)
            failures.append({**params, "trial": trial_name(params), "error": _last_line(text), "traceback": text})
        elif result.metrics and "test.station.accuracy" in result.metrics:
            finished.append((params, result.metrics))
        else:
            failures.append({**params, "trial": trial_name(params), "error": "trial ended without metrics",
                             "traceback": ""})
    table = tidy_results(finished)
    storage.write_frame(storage.join(out_dir, RESULTS_PARQUET), table)
    storage.write_frame(storage.join(out_dir, RESULTS_CSV), table)
    storage.write_frame(storage.join(out_dir, FAILURES_CSV), pd.DataFrame(failures, columns=list(FAILURE_COLUMNS)))
    plot = plot_learning_curve(table, storage.join(out_dir, CURVE_PNG))
    say(f"{len(finished)} of {len(combos)} trial(s) finished, {len(failures)} failed")
    for f in failures:
        say(f"  failed: {f['trial']}: {f['error']}")
    if not table.empty:
        say(format_curve(table))
    say(f"results: {storage.join(out_dir, RESULTS_PARQUET)}" + (f", plot: {plot}" if plot else ""))
    return table


def _result_params(result) -> dict[str, Any]:
    """The trial parameters of a Tune result. ``result.config`` comes from the reported
    metrics, so a trial that failed before reporting (and was restored) has none; Tune's
    ``params.json`` in the trial folder has them."""
    if result.config and "trial" in result.config:
        return dict(result.config["trial"])
    with result.filesystem.open_input_stream(f"{result.path}/params.json") as f:
        return dict(json.loads(f.read())["trial"])


def read_failures(out_dir: str) -> pd.DataFrame:
    """``failures.csv`` of a sweep directory (empty table when there is none)."""
    uri = storage.join(out_dir, FAILURES_CSV)
    if not storage.exists(uri):
        return pd.DataFrame(columns=list(FAILURE_COLUMNS))
    return storage.read_frame(uri)


# ----------------------------------------------------------------------------- command line

def _list(text: str | None, convert, name: str):
    if text is None:
        return None
    try:
        return tuple(convert(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--{name}: cannot parse {text!r}") from None


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``raydisc sweep`` and ``jobs/sweep_fractions.py``."""
    d = SweepConfig.__dataclass_fields__
    parser.add_argument("bundle", help="pretrained ensemble bundle folder or URI (only read)")
    parser.add_argument("shards", help="shard folder or URI holding the target region")
    parser.add_argument("--target", required=True, help="region to fine-tune on, e.g. craton")
    parser.add_argument("--out-dir", required=True, help="sweep directory or URI (Tune state, trials, results); "
                                                         "an existing sweep there is resumed")
    parser.add_argument("--fractions", help="comma-separated fractions of the target's training events "
                                            f"(default: {','.join(f'{f:g}' for f in DEFAULT_FRACTIONS)})")
    parser.add_argument("--seeds", help="number of seeds N (seeds 0..N-1) or a comma-separated list "
                                        f"(default: {len(d['seeds'].default)})")
    parser.add_argument("--modes", help=f"comma-separated subset of {','.join(MODES)} (default: both)")
    parser.add_argument("--strategies", help="comma-separated freeze strategies for fine-tuned trials: none, "
                                             "feature_extractor, all_but_head (default: none)")
    parser.add_argument("--learning-rates", help="comma-separated learning rates tried in both modes "
                                                 "(default: 1e-4 fine-tuned, 1e-3 from scratch)")
    parser.add_argument("--epochs", type=int, help="maximum epochs per trial (default: 10 fine-tuned, 30 scratch)")
    parser.add_argument("--patience", type=int, help="early-stopping patience (default: 3 fine-tuned, 5 scratch)")
    parser.add_argument("--batch-size", type=int, help=f"mini-batch size (default: {d['batch_size'].default})")
    parser.add_argument("--cpus-per-trial", type=float, help=f"CPUs of a trial's training worker (default: {d['cpus_per_trial'].default})")
    parser.add_argument("--gpus-per-trial", type=float, help="GPUs of a trial's training worker (default: 0)")
    parser.add_argument("--max-concurrent", type=int, help="trials at once (default: as the cluster's resources allow)")
    parser.add_argument("--config", dest="sweep_config_file", help="JSON file with SweepConfig fields (flags override it)")
    parser.add_argument("--retry-failed", action="store_true", help="when resuming, rerun trials that failed")
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS or a new local cluster)")


def sweep_config_from_args(args: argparse.Namespace) -> SweepConfig:
    values: dict[str, Any] = {}
    if args.sweep_config_file:
        with open(args.sweep_config_file) as f:
            values = json.load(f)
    seeds = None
    if args.seeds is not None:
        text = args.seeds.strip()
        if text.isdigit() and "," not in text:
            if int(text) < 1:
                raise ConfigError("--seeds must be >= 1")
            seeds = tuple(range(int(text)))
        else:
            seeds = _list(text, int, "seeds")
    overrides = {
        "fractions": _list(args.fractions, float, "fractions"), "seeds": seeds,
        "modes": _list(args.modes, str, "modes"), "strategies": _list(args.strategies, str, "strategies"),
        "learning_rates": _list(args.learning_rates, float, "learning-rates"), "epochs": args.epochs,
        "patience": args.patience, "batch_size": args.batch_size, "cpus_per_trial": args.cpus_per_trial,
        "gpus_per_trial": args.gpus_per_trial, "max_concurrent_trials": args.max_concurrent,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SweepConfig.from_dict(values)


def run_sweep_command(args: argparse.Namespace) -> int:
    """``raydisc sweep``: run or resume the sweep; 0 when every trial finished, 1 when
    some failed (their results are written all the same)."""
    from ..runtime import init_ray

    config = sweep_config_from_args(args)
    init_ray(args.address)
    run_sweep(args.bundle, args.shards, args.target, args.out_dir, config, retry_failed=args.retry_failed)
    return 0 if read_failures(args.out_dir).empty else 1


__all__ = ["DEFAULT_FRACTIONS", "MODES", "RESULT_COLUMNS", "SweepConfig", "add_sweep_arguments", "auto_concurrency",
           "format_curve", "plot_learning_curve", "read_failures", "run_sweep", "run_sweep_command",
           "sample_fraction_events", "sweep_config_from_args", "sweep_trial", "tidy_results", "trial_name",
           "trial_train_config"]
