"""Ensemble training: N members, each a Ray Train run, trained concurrently on one cluster.

Layout of a run directory (a local path or an object-store URI)::

    {run_dir}/train_config.json          TrainConfig + shards + regions of the run
    {run_dir}/members/member-000/...     Ray Train run of member 0: checkpoints, progress.csv, result.json
    {run_dir}/finished/member-000.*      member 0's best weights (.safetensors), then its metrics (.json)
    {run_dir}/history.csv                one row per member and epoch (every reported row, restarts included)
    {run_dir}/members.csv                one row per member: seed, best epoch, validation metrics
    {run_dir}/bundle/                    the ensemble bundle (raydisc.ensemble.bundle), written last,
                                         with its triage policy fitted on the validation split

Each member's ``TorchTrainer.fit()`` runs in a thread of the driver; the threads only
wait on the cluster, so several members train at the same time, bounded by the CPUs
(and GPUs) of the cluster. A member's workers stream their batches from the shards
through Ray Data (:mod:`raydisc.training.data`).

A member's result is written to ``{run_dir}/finished`` as soon as it has trained, so a
run that was stopped (a killed driver, a failed member) is continued by running it
again with the same run directory and settings: finished members are taken from there
and only the others are trained.
"""
from __future__ import annotations

import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from .. import storage
from ..config import ConfigError
from ..data.shards import ShardError, read_dataset_info, read_label_scheme
from ..ensemble.triage import DEFAULT_TARGET_ACCURACY
from ..labels import LabelScheme
from .config import TrainConfig
from .data import class_weights, label_counts, training_dataset
from .members import FINISHED_DIR, MEMBERS_DIR, MemberRun, TrainingError, load_finished, member_name, run_fingerprint
from .reporting import percent, rounded
from .triage import fit_triage_policy

log = logging.getLogger(__name__)

BUNDLE_DIR = "bundle"


def resolve_resources(config: TrainConfig, cluster: dict[str, float]) -> tuple[bool, int]:
    """``(use_gpu, concurrent_members)`` for a cluster with ``cluster`` resources
    (``ray.cluster_resources()``).

    ``use_gpu=None`` means "if the cluster has GPUs". Concurrency: how many members'
    workers fit at once, keeping one CPU free so that Ray Data's read/decode tasks can
    always be scheduled (training workers that hold every CPU while waiting for data
    would wait forever), capped by ``max_concurrent_members`` and ``members``.
    """
    cpus, gpus = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0))
    use_gpu = gpus > 0 if config.use_gpu is None else config.use_gpu
    gpus_per_member = config.workers_per_member * config.gpus_per_worker
    if use_gpu and gpus < gpus_per_member - 1e-9:
        raise ConfigError(f"use_gpu needs {gpus_per_member:g} GPU(s) per member; the cluster has {gpus:g}")
    per_member = config.workers_per_member * config.cpus_per_worker
    if per_member > max(cpus - 1, 0) + 1e-9:
        log.warning("a member needs %.3g CPUs and the cluster has %.3g: Ray Data may have no CPU left; "
                    "lower cpus_per_worker or workers_per_member", per_member, cpus)
    by_cpu = max(1, int((cpus - 1 + 1e-9) // per_member)) if per_member > 0 else config.members
    by_gpu = max(1, int((gpus + 1e-9) // gpus_per_member)) if use_gpu else config.members
    concurrent = min(by_cpu, by_gpu, config.members, config.max_concurrent_members or config.members)
    return use_gpu, concurrent


def _check_splits(shards: str, regions: Sequence[str], n_classes: int,
                  train_events: Sequence[str] | None = None) -> np.ndarray:
    """Training class counts ``(n_classes,)`` (of ``train_events`` only, if given);
    ShardError for an empty train or validation split."""
    counts = label_counts(shards, regions)
    if train_events is not None:
        counts["train"] = label_counts(shards, regions, events=train_events).get(
            "train", np.zeros(n_classes, np.int64))
    for split in ("train", "validation"):
        if split not in counts or counts[split].sum() == 0:
            chosen = f" among the {len(train_events)} chosen events" if split == "train" and train_events is not None else ""
            raise ShardError(
                f"{shards}: region(s) {', '.join(regions)} have no recordings in the {split!r} split{chosen} "
                f"(per split: {({k: int(v.sum()) for k, v in counts.items()})})"
            )
    return counts["train"]


def _fit_to_init_bundle(init_bundle: str, init_members: Sequence[int], train_config: TrainConfig,
                        preprocess) -> tuple[TrainConfig, dict]:
    """``(train_config, manifest)`` for fine-tuning from the bundle at ``init_bundle``:
    the config takes the bundle's hyper-parameters when it sets none, after checking that
    the bundle fits (same architecture and hyper-parameters, the shards' preprocessing,
    intact member files). ``BundleError`` / ``ConfigError`` otherwise. The bundle's label
    scheme may differ from the shards' (see :func:`_replaces_head`)."""
    from ..ensemble.bundle import BundleError, load_bundle
    from ..models import resolve_hparams

    bundle = load_bundle(init_bundle, expected_preprocess=preprocess)  # checks files and preprocessing
    if bundle.architecture != train_config.architecture:
        raise BundleError(f"bundle {init_bundle}: holds {bundle.architecture} members, but the fine-tuning config "
                          f"asks for {train_config.architecture}")
    if not train_config.hparams:
        train_config = train_config.replace(hparams=bundle.manifest["hparams"])
    wanted = resolve_hparams(train_config.architecture, **train_config.hparams)
    if wanted != bundle.hparams:
        raise ConfigError(f"hparams {wanted} differ from those of bundle {init_bundle} ({bundle.hparams}); "
                          "fine-tuning keeps the pretrained architecture")
    if len(init_members) != train_config.members:
        raise ConfigError(f"{train_config.members} member(s) to train but {len(init_members)} initial member(s) given")
    bad = [m for m in init_members if not 0 <= m < len(bundle.members)]
    if bad:
        raise ConfigError(f"bundle {init_bundle} has {len(bundle.members)} members; no member(s) {bad}")
    return train_config, bundle.manifest


def _replaces_head(init_scheme: LabelScheme, scheme: LabelScheme) -> bool:
    """Whether fine-tuning from a bundle of ``init_scheme`` on shards of ``scheme`` starts
    with a fresh output layer: when their classes differ (names or order), the pretrained
    output weights belong to other classes. Same classes keep the whole pretrained model."""
    return init_scheme.class_names != scheme.class_names


def train_ensemble(
    shards: str,
    regions: Sequence[str],
    train_config: TrainConfig,
    run_dir: str,
    *,
    progress: Callable[[str], None] | None = print,
    init_bundle: str | None = None,
    init_members: Sequence[int] | None = None,
    train_events: Sequence[str] | None = None,
    target_accuracy: float = DEFAULT_TARGET_ACCURACY,
    _failure: dict[str, Any] | None = None,
) -> str:
    """Train ``train_config.members`` members on the ``train`` split of ``regions`` and
    write the ensemble bundle; returns the bundle URI ``{run_dir}/bundle``.

    Needs a running Ray cluster (``ray.init()``). ``shards`` is the shard folder of
    ``raydisc preprocess`` (local path or URI); its ``_dataset.json`` provides the
    preprocessing config stored in the bundle. Member ``i`` uses seed
    ``train_config.seed_of(i)``. Each member's best-validation-loss weights go into the
    bundle; the bundle's best member is the one with the lowest validation loss.
    ``progress`` receives one line per member and epoch (``None``: silent).

    Fine-tuning: with ``init_bundle``, member ``i`` starts from the weights of member
    ``init_members[i]`` (default: member ``i``) of that bundle, which must have the
    architecture, hyper-parameters (empty ``hparams``: the bundle's) and preprocessing of
    this run; the layers named by
    ``train_config.freeze`` stay fixed. A bundle of another label scheme (other classes)
    is fine-tuned with a freshly initialised output layer of the shards' classes (logged;
    recorded as ``replaced_output_layer`` in the provenance's ``init_bundle``); the
    classes of the run are always those of the shards' label scheme. ``train_events``: train on the recordings of
    these event ids only (validation uses the whole validation split). The bundle
    fine-tuning starts from is only read.

    Triage: once the members are in the bundle, their validation-split probabilities
    give the bundle's :class:`~raydisc.ensemble.triage.TriagePolicy` (a temperature per
    member, and the event confidence threshold reaching ``target_accuracy``), stored in
    its manifest.

    Raises ``ConfigError`` (bad configuration), ``ShardError`` (no shards for a region,
    empty train or validation split), ``TrainingError`` (a member failed after
    ``max_failures`` restarts) and ``BundleError`` (``run_dir`` already holds a bundle).
    ``_failure`` (tests only) is merged into the workers' loop config, see
    :func:`raydisc.training.loop._maybe_fail`.
    """
    import ray

    from ..ensemble.bundle import BundleError, scheme_of_manifest
    from ..models import input_kind_of, input_shape_of

    regions = list(regions)
    if not regions:
        raise ConfigError("no regions given")
    info = read_dataset_info(shards)
    scheme = read_label_scheme(shards)
    kind = input_kind_of(train_config.architecture)
    input_shape = input_shape_of(train_config.architecture, info.preprocess)
    train_counts = _check_splits(shards, regions, scheme.n_classes, train_events)
    init_manifest, init_n_classes = None, None
    if init_bundle is not None:
        init_bundle = storage.absolute(init_bundle)
        init_members = list(range(train_config.members)) if init_members is None else [int(m) for m in init_members]
        train_config, init_manifest = _fit_to_init_bundle(init_bundle, init_members, train_config, info.preprocess)
        init_scheme = scheme_of_manifest(init_bundle, init_manifest)
        if _replaces_head(init_scheme, scheme):
            init_n_classes = init_scheme.n_classes
            log.warning("bundle %s has label scheme %s, the shards %s: the output layer starts afresh",
                        init_bundle, init_scheme.describe(), scheme.describe())
    weights = (class_weights(train_counts) if train_config.class_weighting == "inverse_frequency"
               else np.ones(scheme.n_classes, np.float32))
    bundle_uri = storage.join(run_dir, BUNDLE_DIR)
    if storage.exists(storage.join(bundle_uri, "bundle.json")):
        raise BundleError(f"bundle {bundle_uri}: {run_dir} already holds a finished ensemble; use a new run directory")

    if not ray.is_initialized():
        raise RuntimeError("train_ensemble needs a running Ray cluster: call ray.init() (or raydisc.runtime.init_ray)")
    use_gpu, concurrent = resolve_resources(train_config, ray.cluster_resources())
    say = progress or (lambda line: None)
    say(_start_line(train_config, regions, scheme, train_counts, weights, init_bundle, concurrent, use_gpu))
    if init_n_classes is not None:
        say(f"the bundle's classes ({', '.join(scheme_of_manifest(init_bundle, init_manifest).class_names)}) are not "
            f"the shards' ({', '.join(scheme.class_names)}): each member's output layer is replaced by a freshly "
            f"initialised one of {scheme.n_classes} classes; every other layer starts from the bundle")

    provenance = _provenance(shards, regions, train_config, scheme, train_counts, weights, run_dir, train_events,
                             init_bundle, init_members, init_manifest, init_n_classes is not None)
    storage.write_bytes_atomic(storage.join(run_dir, "train_config.json"),
                               json.dumps(provenance, indent=2, sort_keys=True).encode())

    fingerprint = run_fingerprint(provenance)
    finished = {m: r for m in range(train_config.members)
                if (r := load_finished(run_dir, m, fingerprint)) is not None}
    todo = [m for m in range(train_config.members) if m not in finished]
    if finished:
        say(f"member(s) {', '.join(map(str, sorted(finished)))} finished in an earlier run of {run_dir}: "
            f"taken from {storage.join(run_dir, FINISHED_DIR)}; "
            + (f"training member(s) {', '.join(map(str, todo))}" if todo else "nothing left to train"))

    member_datasets = _member_datasets(shards, regions, kind, train_config, train_events, todo)
    trainer_config = {"input_shape": list(input_shape), "class_weights": weights.tolist(),
                      **({"init_bundle": init_bundle, "init_members": init_members,
                          "init_n_classes": init_n_classes} if init_bundle else {}),
                      "_failure": _failure}
    run = MemberRun(
        run_dir=run_dir, train_config=train_config, fingerprint=fingerprint,
        trainer=lambda member, callback: _member_trainer(member, callback, train_config, run_dir, use_gpu,
                                                         member_datasets[member], **trainer_config),
        say=say, history=[row for m in sorted(finished) for row in finished[m]["history"]],
    )
    outcomes = _train_members(run, finished, todo, concurrent)
    _write_bundle(bundle_uri, run_dir, train_config, input_shape, info.preprocess, scheme, outcomes, provenance, say)
    fit_triage_policy(bundle_uri, shards, regions, target_accuracy, say)
    return bundle_uri


def _start_line(train_config: TrainConfig, regions: list[str], scheme: LabelScheme, train_counts: np.ndarray,
                weights: np.ndarray, init_bundle: str | None, concurrent: int, use_gpu: bool) -> str:
    """The first progress line: what is trained on what, with which resources."""
    start = (f"fine-tuning from {init_bundle} (freeze: {train_config.freeze})" if init_bundle
             else "training from scratch")
    return (f"{start}: {train_config.members} {train_config.architecture} member(s) on {', '.join(regions)}: "
            f"{int(train_counts.sum())} training recordings "
            f"({', '.join(f'{n} {c}' for c, n in zip(scheme.class_names, train_counts))}), class weights "
            f"{[round(float(w), 3) for w in weights]}; {concurrent} member(s) at a time, "
            f"{train_config.workers_per_member} worker(s) each{' on GPU' if use_gpu else ''}")


def _provenance(shards: str, regions: list[str], train_config: TrainConfig, scheme: LabelScheme,
                train_counts: np.ndarray, weights: np.ndarray, run_dir: str, train_events: Sequence[str] | None,
                init_bundle: str | None, init_members: list[int] | None, init_manifest: dict | None,
                replaced_output_layer: bool = False) -> dict[str, Any]:
    """What the run was trained from (``train_config.json``, the bundle's provenance).
    The label scheme is in the bundle itself; here only its class names key the counts."""
    provenance = {
        "regions": regions, "shards": shards, "train_config": train_config.to_dict(),
        "train_class_counts": dict(zip(scheme.class_names, train_counts.tolist())),
        "class_weights": dict(zip(scheme.class_names, weights.tolist())), "run_dir": run_dir,
        "train_events": None if train_events is None else sorted(map(str, train_events)),
    }
    if init_bundle is not None:
        provenance["init_bundle"] = {"uri": init_bundle, "bundle_id": init_manifest["bundle_id"],
                                     "members": init_members, "regions": init_manifest["provenance"].get("regions")}
        if replaced_output_layer:  # only then, so a same-scheme run's provenance is as before
            provenance["init_bundle"]["replaced_output_layer"] = True
    return provenance


def _member_datasets(shards: str, regions: list[str], kind: str, train_config: TrainConfig,
                     train_events: Sequence[str] | None, todo: list[int]) -> dict[int, dict[str, Any]]:
    """member -> ``{"train", "validation"}`` Ray Data datasets, for the members in ``todo``."""
    import ray.data

    def datasets(member: int):
        return {"train": training_dataset(shards, regions, "train", kind, shuffle_seed=train_config.seed_of(member),
                                          drop_horizontals=train_config.drop_horizontals,
                                          events=train_events),
                "validation": training_dataset(shards, regions, "validation", kind)}

    # Built here, in the calling thread, before any member starts. A dataset keeps the
    # DataContext current at its creation: with progress bars off there, neither the
    # Parquet metadata sampling now nor the per-epoch executions of every member later
    # draw bars that would drown the per-epoch lines.
    data_context = ray.data.DataContext.get_current()
    bars = data_context.enable_progress_bars
    data_context.enable_progress_bars = False
    try:
        return {m: datasets(m) for m in todo}
    finally:
        data_context.enable_progress_bars = bars


def _member_trainer(member: int, callback, train_config: TrainConfig, run_dir: str, use_gpu: bool,
                    datasets: dict[str, Any], *, input_shape: list[int], class_weights: list[float],
                    init_bundle: str | None = None, init_members: list[int] | None = None,
                    init_n_classes: int | None = None, _failure: dict[str, Any] | None = None):
    """The ``TorchTrainer`` of ``member``, reporting its epochs to ``callback``."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from .loop import datasets_to_split, train_loop_per_worker

    storage_fs, storage_path = storage.pyarrow_filesystem(storage.join(run_dir, MEMBERS_DIR))
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "train_config": train_config.to_dict(), "member": member, "input_shape": input_shape,
            "class_weights": class_weights, "torch_threads": max(1, int(train_config.cpus_per_worker)),
            **({"init_bundle": init_bundle, "init_member": init_members[member],
                "init_n_classes": init_n_classes} if init_bundle else {}),
            **(_failure or {}),
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=train_config.workers_per_member, use_gpu=use_gpu,
            resources_per_worker={"CPU": train_config.cpus_per_worker, **({"GPU": train_config.gpus_per_worker} if use_gpu else {})},
        ),
        datasets=datasets,
        # Every worker reads the whole validation split, so validation metrics are
        # exact without a reduction (streaming_split(equal=True) would drop rows to
        # balance the workers); training data is split only between several workers.
        dataset_config=ray.train.DataConfig(datasets_to_split=datasets_to_split(train_config.workers_per_member)),
        run_config=ray.train.RunConfig(
            name=member_name(member),
            storage_path=storage_path,
            storage_filesystem=storage_fs,
            failure_config=ray.train.FailureConfig(max_failures=train_config.max_failures),
            # The latest checkpoint carries the best weights too, so one suffices;
            # the second survives a crash while the next is being written.
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=[callback],
        ),
    )


def _train_members(run: MemberRun, finished: dict[int, dict[str, Any]], todo: list[int],
                   concurrent: int) -> list[dict[str, Any]]:
    """Every member's outcome in member order: ``finished`` ones as given, those in
    ``todo`` trained, ``concurrent`` at a time; writes ``history.csv``, then raises
    TrainingError naming every member that failed."""
    by_member: dict[int, dict[str, Any]] = dict(finished)
    errors = []
    with ThreadPoolExecutor(max_workers=concurrent, thread_name_prefix="member") as pool:
        futures = {m: pool.submit(run.fit, m) for m in todo}
        for member, future in futures.items():
            try:
                by_member[member] = future.result()
            except TrainingError as exc:
                errors.append(str(exc))
    if run.history:
        storage.write_frame(storage.join(run.run_dir, "history.csv"),
                            pd.DataFrame(run.history).sort_values(["member", "epoch"], kind="stable"))
    if errors:
        raise TrainingError("; ".join(errors) + f" (checkpoints and logs under {storage.join(run.run_dir, MEMBERS_DIR)}; "
                            "a re-run with the same run directory trains only the members that did not finish)")
    return [by_member[m] for m in range(run.train_config.members)]


def _write_bundle(bundle_uri: str, run_dir: str, train_config: TrainConfig, input_shape, preprocess,
                  scheme: LabelScheme, outcomes: list[dict[str, Any]], provenance: dict[str, Any], say: Callable[[str], None]) -> None:
    """Write ``members.csv`` and the bundle of the members' ``outcomes``; say which is best."""
    from ..ensemble.bundle import save_bundle

    member_metrics = [o["metrics"] for o in outcomes]
    storage.write_frame(storage.join(run_dir, "members.csv"), pd.DataFrame(member_metrics))
    save_bundle(
        bundle_uri,
        architecture=train_config.architecture,
        hparams=train_config.hparams,
        input_shape=input_shape,
        preprocess_config=preprocess,
        member_state_dicts=[o["state"] for o in outcomes],
        member_metrics=member_metrics,
        provenance=provenance,
        label_scheme=scheme,
    )
    best = min(member_metrics, key=lambda m: m["validation_loss"] if m["validation_loss"] is not None else math.inf)
    say(f"bundle written to {bundle_uri} (best member {best['member']}: validation loss "
        f"{rounded(best['validation_loss'])}, accuracy {percent(best['validation_accuracy'])}; "
        f"per-epoch history in {storage.join(run_dir, 'history.csv')})")


__all__ = ["BUNDLE_DIR", "FINISHED_DIR", "MEMBERS_DIR", "TrainingError", "member_name", "resolve_resources",
           "train_ensemble"]
