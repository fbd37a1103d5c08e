"""One Tune trial: draw its events, fine-tune or train one member on Ray Train, evaluate
it on the target's validation and test splits, report the flat metrics once.

Folder of a trial: ``{out_dir}/trials/<trial>/attempt-N/`` (the training run) and
``{out_dir}/trials/<trial>/metrics.json`` (its reported metrics, written last, so a
trial that finished before the driver died reports them again instead of retraining).
"""
from __future__ import annotations

import json
import time
from typing import Any

from ... import storage
from .config import EVAL_METRICS, LEVELS, SPLITS, SweepConfig, trial_name
from .sampling import sample_fraction_events

TRIALS_DIR = "trials"
METRICS_FILE = "metrics.json"


def trial_train_config(params: dict[str, Any], config: SweepConfig, manifest: dict[str, Any]):
    """The one-member :class:`~raydisc.training.TrainConfig` of a trial."""
    from ...training.config import TrainConfig
    from ...training.finetune import FINETUNE_DEFAULTS

    base = dict(FINETUNE_DEFAULTS) if params["mode"] == "finetuned" else {}
    values = {**base, **config.train_options, **config.training_resources(),
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


def _attempts(trial_dir: str) -> list[str]:
    return sorted((n for n in storage.listdir(trial_dir) if n.startswith("attempt-")),
                  key=lambda n: int(n.split("-", 1)[1]) if n.split("-", 1)[1].isdigit() else -1)


def _run_trial(params: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one trial; returns its flat metrics (keys ``split.level.metric``)."""
    from ...ensemble.bundle import read_manifest
    from ...evaluation.evaluate import evaluate
    from ...training.data import split_events
    from ...training.ensemble import train_ensemble
    from ...training.finetune import finetune_ensemble

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
