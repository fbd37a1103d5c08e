"""The study's leave-one-region-out experiment, as one resumable run.

For each architecture and each region as the *target*:

1. ``pretrained``: an ensemble trained on the other regions (shared by the targets that
   leave out the same region), evaluated on the target's test split as it is;
2. ``finetuned``: that ensemble fine-tuned on the target's training split
   (:func:`raydisc.training.finetune.finetune_ensemble`), evaluated again;
3. ``target_only``: an ensemble trained from scratch on the target region alone.

Every evaluation gives best single member and ensemble, station and event level
(:func:`raydisc.evaluation.evaluate.evaluate`). Layout of the run directory::

    experiment.json                              the configs of the run
    {arch}/pretrain-{a}+{b}/bundle               ensemble pretrained on regions a and b
    {arch}/{target}/finetuned/bundle             ... fine-tuned on target
    {arch}/{target}/target_only/bundle           ensemble trained on target only
    {arch}/{target}/evaluation-{stage}/          tables of each stage on the target's test split
    results/metrics.parquet (.csv)               all evaluations, tidy, with columns
                                                 architecture, target, stage added
    results/groups.parquet (.csv)                station accuracy per component set, pick
                                                 source and response kind, the same columns added

Re-running the same command skips every ensemble whose bundle exists and every
evaluation whose tables exist, so an interrupted experiment continues where it stopped.
``raydisc report RUN_DIR`` turns the results table into the Markdown report.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from .. import storage
from ..config import ConfigBase, ConfigError

STAGES = ("pretrained", "finetuned", "target_only")
RESULTS_DIR = "results"
EXPERIMENT_FILE = "experiment.json"
METRICS_FILE = "metrics.parquet"
GROUPS_FILE = "accuracy_by_group.csv"


@dataclass(frozen=True)
class ExperimentScale(ConfigBase):
    """The sizes of one experiment: synthetic events per region (when the experiment
    generates its own data), members per ensemble, epochs of pretraining (also used for
    training on the target only) and of fine-tuning, the fine-tuning learning rate, and
    CPUs per training worker (below 1, several members share a core: on a small machine
    this hides each member's start-up and data-loading pauses)."""

    events_per_region: int
    members: int
    pretrain_epochs: int
    finetune_epochs: int
    patience: int
    finetune_learning_rate: float
    cpus_per_worker: float


#: ``default`` runs the whole matrix (2 architectures x 3 targets x 3 stages) in under an
#: hour on a 2-core machine; ``full`` is the study's size (10 members, long training).
SCALES: dict[str, ExperimentScale] = {
    "default": ExperimentScale(events_per_region=200, members=4, pretrain_epochs=8, finetune_epochs=8, patience=3,
                               finetune_learning_rate=5e-4, cpus_per_worker=0.5),
    "full": ExperimentScale(events_per_region=1000, members=10, pretrain_epochs=30, finetune_epochs=15, patience=5,
                            finetune_learning_rate=5e-4, cpus_per_worker=1.0),
}


@dataclass(frozen=True)
class CrossRegionConfig(ConfigBase):
    """What the experiment runs.

    ``architectures`` and ``targets`` span the matrix; every region of ``regions`` that
    is not the target is a pretraining region. ``pretrain``, ``finetune`` and
    ``target_only`` are :class:`~raydisc.training.TrainConfig` fields of the three kinds
    of training (``finetune`` on top of
    :data:`~raydisc.training.finetune.FINETUNE_DEFAULTS`); the architecture is set per
    cell. ``event_rule``: how an event's station verdicts are combined.
    """

    architectures: tuple[str, ...] = ("spectrogram_cnn", "waveform_cnn")
    regions: tuple[str, ...] = ("alpine", "basin", "craton")
    targets: tuple[str, ...] = ("alpine", "basin", "craton")
    pretrain: dict[str, Any] = field(default_factory=dict)
    finetune: dict[str, Any] = field(default_factory=lambda: {"freeze": "feature_extractor"})
    target_only: dict[str, Any] = field(default_factory=dict)
    event_rule: str = "mean"

    @classmethod
    def at_scale(cls, scale: ExperimentScale, **changes: Any) -> "CrossRegionConfig":
        """The config of ``scale`` (members, epochs and patience of every training)."""
        common = {"members": scale.members, "patience": scale.patience, "cpus_per_worker": scale.cpus_per_worker}
        # The convolutional layers stay frozen: the dense head alone is fitted to the
        # target, which tolerates a learning rate higher than a full fine-tune would.
        return cls(pretrain={**common, "epochs": scale.pretrain_epochs},
                   finetune={**common, "epochs": scale.finetune_epochs, "freeze": "feature_extractor",
                             "learning_rate": scale.finetune_learning_rate},
                   target_only={**common, "epochs": scale.pretrain_epochs}, **changes)

    def __post_init__(self) -> None:
        from ..models import MODELS

        unknown = [a for a in self.architectures if a not in MODELS]
        if unknown or not self.architectures:
            raise ConfigError(f"architectures must be among {sorted(MODELS)}, got {list(self.architectures)}")
        outside = [t for t in self.targets if t not in self.regions]
        if outside or not self.targets:
            raise ConfigError(f"targets {list(self.targets)} must be among the regions {list(self.regions)}")
        if len(self.regions) < 2:
            raise ConfigError("a leave-one-region-out experiment needs at least two regions")
        if self.event_rule not in ("mean", "majority"):
            raise ConfigError(f"event_rule must be 'mean' or 'majority', got {self.event_rule!r}")
        for arch in self.architectures:  # validate the three training configs now, not an hour in
            for kind in ("pretrain", "finetune", "target_only"):
                self.train_config(kind, arch)

    def train_config(self, kind: str, architecture: str):
        """The :class:`~raydisc.training.TrainConfig` of ``kind`` ("pretrain",
        "finetune", "target_only") for ``architecture``."""
        from ..training import TrainConfig
        from ..training.finetune import FINETUNE_DEFAULTS

        base = FINETUNE_DEFAULTS if kind == "finetune" else {}
        try:
            return TrainConfig.from_dict({**base, **getattr(self, kind), "architecture": architecture})
        except ConfigError as exc:
            raise ConfigError(f"{kind} config: {exc}") from None

    def sources(self, target: str) -> list[str]:
        """The pretraining regions of ``target``: all the others."""
        return [r for r in self.regions if r != target]


def pretrain_dir(run_dir: str, architecture: str, sources: list[str]) -> str:
    return storage.join(run_dir, architecture, "pretrain-" + "+".join(sorted(sources)))


def cell_dir(run_dir: str, architecture: str, target: str) -> str:
    return storage.join(run_dir, architecture, target)


def _bundle_of(run: str) -> str:
    return storage.join(run, "bundle")


def _trained(run: str) -> bool:
    return storage.exists(storage.join(_bundle_of(run), "bundle.json"))


def run_crossregion(
    shards: str,
    run_dir: str,
    config: CrossRegionConfig = CrossRegionConfig(),
    *,
    progress: Callable[[str], None] | None = print,
) -> pd.DataFrame:
    """Run (or continue) the experiment on the shard folder ``shards``; returns the
    results table (also written to ``{run_dir}/results/``). Needs a running Ray cluster.

    A run directory is bound to its config: a different config for an existing
    ``experiment.json`` is refused (``ConfigError``), since its finished ensembles would
    silently mix settings.
    """
    from ..evaluation.evaluate import evaluate
    from ..training import train_ensemble
    from ..training.finetune import finetune_ensemble

    say = progress or (lambda line: None)
    record = {"shards": shards, "config": config.to_dict()}
    record_uri = storage.join(run_dir, EXPERIMENT_FILE)
    if storage.exists(record_uri):
        stored = json.loads(storage.read_bytes(record_uri))
        if stored != json.loads(json.dumps(record)):
            raise ConfigError(f"{run_dir} holds an experiment with other settings ({record_uri}); "
                              "use a new run directory")
    else:
        storage.write_bytes_atomic(record_uri, json.dumps(record, indent=2, sort_keys=True).encode())

    tables: list[pd.DataFrame] = []
    groups: list[pd.DataFrame] = []

    def evaluated(bundle: str, architecture: str, target: str, stage: str) -> None:
        out = storage.join(cell_dir(run_dir, architecture, target), f"evaluation-{stage}")
        tables_uri, groups_uri = storage.join(out, METRICS_FILE), storage.join(out, GROUPS_FILE)
        if storage.exists(tables_uri):
            metrics = storage.read_frame(tables_uri)
            by_group = storage.read_frame(groups_uri) if storage.exists(groups_uri) else None
        else:
            result = evaluate(bundle, shards, [target], split="test", out_dir=out, event_rule=config.event_rule,
                              plots=False)
            metrics, by_group = result.metrics, result.groups
            say(f"[{architecture} / {target} / {stage}] test split:\n{result.format()}")
        tables.append(metrics.assign(target=target, stage=stage))
        if by_group is not None:
            groups.append(by_group.assign(architecture=architecture, target=target, stage=stage))
        _write_results(run_dir, tables, groups)

    def trained(run: str, what: str, train: Callable[[], str]) -> str:
        if _trained(run):
            say(f"{what}: done before ({_bundle_of(run)})")
            return _bundle_of(run)
        say(f"{what} -> {run}")
        return train()

    for architecture in config.architectures:
        for target in config.targets:
            sources = config.sources(target)
            pre_run = pretrain_dir(run_dir, architecture, sources)
            pretrained = trained(pre_run, f"[{architecture}] pretraining on {'+'.join(sources)}",
                                 lambda: train_ensemble(shards, sources, config.train_config("pretrain", architecture),
                                                        pre_run, progress=progress))
            evaluated(pretrained, architecture, target, "pretrained")

            ft_run = storage.join(cell_dir(run_dir, architecture, target), "finetuned")
            finetuned = trained(ft_run, f"[{architecture} / {target}] fine-tuning",
                                lambda: finetune_ensemble(pretrained, shards, target,
                                                          config.train_config("finetune", architecture), ft_run,
                                                          progress=progress))
            evaluated(finetuned, architecture, target, "finetuned")

            own_run = storage.join(cell_dir(run_dir, architecture, target), "target_only")
            own = trained(own_run, f"[{architecture} / {target}] training on the target only",
                          lambda: train_ensemble(shards, [target], config.train_config("target_only", architecture),
                                                 own_run, progress=progress))
            evaluated(own, architecture, target, "target_only")
    return pd.concat(tables, ignore_index=True)


def _write_results(run_dir: str, tables: list[pd.DataFrame], groups: list[pd.DataFrame]) -> None:
    frame = pd.concat(tables, ignore_index=True)
    storage.write_frame(storage.join(run_dir, RESULTS_DIR, METRICS_FILE), frame)
    storage.write_frame(storage.join(run_dir, RESULTS_DIR, "metrics.csv"), frame)
    if groups:
        by_group = pd.concat(groups, ignore_index=True)
        storage.write_frame(storage.join(run_dir, RESULTS_DIR, "groups.parquet"), by_group)
        storage.write_frame(storage.join(run_dir, RESULTS_DIR, "groups.csv"), by_group)


def prepare_synthetic_shards(work_dir: str, events_per_region: int, seed: int = 0,
                             progress: Callable[[str], None] | None = print) -> str:
    """The embedded default's data: generate the built-in synthetic regions under
    ``{work_dir}/archive`` and preprocess them into ``{work_dir}/shards`` (each step
    skipped when done before with the same settings); returns the shard folder."""
    from ..data.pipeline import format_summary, run_preprocessing
    from ..synthetic import generate_archive

    say = progress or (lambda line: None)
    archive, shards = storage.join(work_dir, "archive"), storage.join(work_dir, "shards")
    marker = storage.join(archive, "_generated.json")
    wanted = {"events_per_region": events_per_region, "seed": seed}
    if storage.exists(marker):
        if json.loads(storage.read_bytes(marker)) != wanted:
            raise ConfigError(f"{archive} was generated with {storage.read_bytes(marker).decode()}, not {wanted}; "
                              "use another work directory")
    else:
        say(f"generating {events_per_region} synthetic events per region -> {archive}")
        generate_archive(archive, events_per_region=events_per_region, seed=seed, progress=True)
        storage.write_bytes_atomic(marker, json.dumps(wanted).encode())
    say(f"preprocessing -> {shards}")
    say(format_summary(run_preprocessing(archive, shards)))
    return shards


__all__ = ["CrossRegionConfig", "ExperimentScale", "SCALES", "STAGES", "cell_dir", "prepare_synthetic_shards",
           "pretrain_dir", "run_crossregion"]
