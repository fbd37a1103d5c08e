"""Running (or resuming) a sweep on Ray Tune from the driver, and collecting its results.

Layout of a sweep directory (a local path or an object-store URI)::

    {out_dir}/sweep_config.json     SweepConfig + bundle, shards, target (checked on resume)
    {out_dir}/tune/sweep/           the Tune experiment (state for Tuner.restore)
    {out_dir}/trials/<trial>/       each trial's training run and metrics (:mod:`.trial`)
    {out_dir}/results.parquet|csv, failures.csv, learning_curve.png   (:mod:`.results`)
"""
from __future__ import annotations

import json
import uuid
from typing import Any, Callable, Sequence

import pandas as pd

from ... import storage
from ...config import ConfigError
from ...progress import last_line
from .config import SweepConfig, auto_concurrency, trial_name
from .results import (CURVE_PNG, FAILURE_COLUMNS, FAILURES_CSV, RESULTS_CSV, RESULTS_PARQUET, format_curve,
                      plot_learning_curve, tidy_results)
from .trial import sweep_trial

#: What a trial's own (coordinating) actor asks Tune for: no CPU — even a small share
#: would leave less than the one whole CPU a Ray Data read task needs on a 2-CPU
#: machine (a deadlock) — but Tune refuses an empty request, hence a little memory.
TRIAL_RESOURCES = {"cpu": 0, "memory": 64 * 1024**2}
EXPERIMENT_NAME = "sweep"
TUNE_DIR = "tune"
CONFIG_FILE = "sweep_config.json"


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

    from ...ensemble.bundle import read_manifest
    from .progress import SINKS, SweepProgress

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
    from ...training.data import split_events

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
    SINKS[token] = say
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
                    callbacks=[SweepProgress(token)], verbose=0,
                ),
            )
        grid = tuner.fit()
    finally:
        SINKS.pop(token, None)

    finished, failures = [], []
    for result in grid:
        params = _result_params(result)
        if result.error is not None:
            text = str(result.error)
            failures.append({**params, "trial": trial_name(params), "error": last_line(text), "traceback": text})
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


def _context_json(bundle: str, shards: str, target: str, config: SweepConfig) -> dict[str, Any]:
    return {"bundle": bundle, "shards": shards, "target": target, "config": config.to_dict()}
