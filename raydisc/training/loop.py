"""The per-worker training function of one ensemble member (Ray Train, TorchTrainer).

:func:`train_loop_per_worker` runs inside every Ray Train worker of a member. It streams
mini-batches from the ``"train"`` dataset shard, evaluates on the full ``"validation"``
dataset after every epoch, and reports one row of metrics per epoch together with a
checkpoint. The checkpoint is a single ``state.pt`` written with ``torch.save`` holding
only tensors and plain Python values (read back with ``weights_only=True``, so no
arbitrary object is unpickled)::

    model                 state_dict of the current weights (unwrapped from DDP)
    optimizer             AdamW state_dict
    epoch                 last completed epoch (1-based)
    best_model            state_dict of the best validation-loss epoch so far
    best_validation_loss  float
    best_validation_accuracy float
    best_epoch            int
    epochs_without_improvement  int
    stopped_early         bool

When Ray Train restarts a member after a failure it hands the last checkpoint to the new
workers (``ray.train.get_checkpoint()``), and training continues with the next epoch.
"""
from __future__ import annotations

import logging
import math
import os
import random
import signal
import tempfile
import threading
import time
from typing import Any

import numpy as np

CHECKPOINT_FILE = "state.pt"


def _unwrap(model):
    """The plain module inside a DistributedDataParallel wrapper (state-dict keys
    without the ``module.`` prefix, as the bundle expects)."""
    return getattr(model, "module", model)


def _cpu_state(model) -> dict:
    return {k: v.detach().cpu().clone() for k, v in _unwrap(model).state_dict().items()}


def _maybe_fail(config: dict[str, Any], epoch: int, rank: int) -> None:
    """Fault injection for tests of the restart path: with ``config["_fail_at_epoch"]``
    and ``config["_fail_marker"]`` set, worker rank 0 SIGKILLs its own process once that
    epoch is trained and validated, before reporting it — once: the marker file it
    creates first prevents a repeat after the restart. Not at the start of the epoch: a
    kill right after the previous report could beat that checkpoint's registration with
    the trainer, and the member then restarted from scratch (seen on a loaded machine)."""
    at, marker = config.get("_fail_at_epoch"), config.get("_fail_marker")
    if at is None or epoch != at or rank != 0 or marker is None or os.path.exists(marker):
        return
    with open(marker, "w") as f:
        f.write(f"killed pid {os.getpid()} at epoch {epoch}\n")
    os.kill(os.getpid(), signal.SIGKILL)


class EpochPrefetch:
    """The batches of one epoch, with the iteration started at construction in a
    background thread that waits for the first batch; iterating yields that batch, then
    the rest from the same iterator (in the calling thread).

    ``make_batches(epoch)`` returns the epoch's iterable (e.g. a Ray Data
    ``iter_torch_batches``). An exception raised while starting surfaces on iteration.
    """

    _END = object()

    def __init__(self, make_batches, epoch: int) -> None:
        self._iterator = None
        self._first: Any = self._END
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, args=(make_batches, epoch), daemon=True,
                                        name=f"epoch-{epoch}-prefetch")
        self._thread.start()

    def _start(self, make_batches, epoch: int) -> None:
        try:
            self._iterator = iter(make_batches(epoch))
            self._first = next(self._iterator, self._END)
        except BaseException as exc:  # re-raised in the consuming thread
            self._error = exc

    def __iter__(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._first is self._END:
            return
        yield self._first
        self._first = None
        yield from self._iterator


def datasets_to_split(workers: int) -> list[str]:
    """The datasets Ray Train splits between a member's ``workers`` (``DataConfig``).

    Validation is never split: every worker reads all of it. Training data is split only
    between several workers; a single worker iterates the dataset itself, without a split
    coordinator, so :func:`train_loop_per_worker` may run two epochs' executions at once
    (it relies on this rule: one worker means an unsplit training dataset).
    """
    return ["train"] if workers > 1 else []


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Train one ensemble member on the current Ray Train worker.

    ``config`` (the TorchTrainer's ``train_loop_config``):

    * ``train_config``: :meth:`TrainConfig.to_dict` of the ensemble;
    * ``member``: member index (its seed is ``train_config.seed_of(member)``);
    * ``input_shape``: per-recording model input shape, e.g. ``[3, 41, 89]``;
    * ``class_weights``: ``(n_classes,)`` cross-entropy weights (all 1 for no weighting); their
      length is the number of classes of the shards' label scheme;
    * ``torch_threads``: intra-op threads of this worker;
    * ``init_bundle`` / ``init_member`` (optional, fine-tuning): start from the weights
      of member ``init_member`` of the bundle at ``init_bundle`` instead of a random
      initialisation, with the layers of ``train_config.freeze`` frozen
      (:mod:`raydisc.models.freezing`); ``init_n_classes`` (set when the bundle's label
      scheme has other classes): the bundle's class count, whose output layer is then
      replaced by a fresh one of ``n_classes`` (:func:`raydisc.models.replace_output_layer`).

    Datasets: ``"train"`` (split across workers when there are several) and
    ``"validation"`` (read whole by every worker, so each computes the same exact
    validation metrics without a reduction), rows ``{"x": float32 input_shape, "y":
    int64}``, split as :func:`datasets_to_split` says.

    Reported per epoch: ``epoch`` (1-based), ``train_loss`` and ``validation_loss``
    (class-weighted cross-entropy, nats per recording), ``validation_accuracy`` and
    ``validation_balanced_accuracy`` (fractions), ``best_validation_loss``,
    ``best_epoch``, ``stopped_early``, ``resumed_from_epoch`` (epoch of the checkpoint this
    attempt started from; 0 for a fresh start), ``train_samples`` and
    ``train_samples_per_s`` (training recordings of the epoch, all workers together, and
    their rate over the training part of the epoch), ``epoch_s`` (the whole epoch, s).
    """
    import ray.data
    import ray.train
    import ray.train.torch
    import torch
    import torch.nn.functional as F

    from ..models import build_model, freeze, replace_output_layer
    from ..models.freezing import keep_frozen_in_eval
    from .config import TrainConfig

    # Progress bars and INFO lines of the per-epoch dataset executions of every member
    # would flood the driver's console, where the per-epoch lines should be readable.
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    cfg = TrainConfig.from_dict(config["train_config"])
    member = int(config["member"])
    seed = cfg.seed_of(member)
    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(int(config.get("torch_threads", 1)))
    # The same seed on every worker gives every worker the same initial weights (DDP
    # would broadcast rank 0's anyway). After a restart the generators start again from
    # the seed, so a resumed member is not bit-identical to an uninterrupted one.
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

    # One weight per class of the shards' label scheme (see training.ensemble).
    n_classes = len(config["class_weights"])
    model = build_model(cfg.architecture, tuple(config["input_shape"]), n_classes, **cfg.hparams)

    state: dict[str, Any] = {
        "epoch": 0, "best_model": None, "best_validation_loss": math.inf, "best_validation_accuracy": math.nan,
        "best_epoch": 0, "epochs_without_improvement": 0, "stopped_early": False,
    }
    optimizer_state = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            saved = load_checkpoint_state(d)
        model.load_state_dict(saved.pop("model"))
        optimizer_state = saved.pop("optimizer")
        state.update(saved)
    elif config.get("init_bundle"):
        from ..ensemble.bundle import read_manifest, read_member_state

        uri = config["init_bundle"]
        init_state = read_member_state(uri, read_manifest(uri), int(config["init_member"]))
        if config.get("init_n_classes"):
            # A bundle of other classes: load it as it was made, then give it a fresh
            # output layer of this run's classes (seeded above, so the same on every worker).
            model = build_model(cfg.architecture, tuple(config["input_shape"]), int(config["init_n_classes"]),
                                **cfg.hparams)
            model.load_state_dict(init_state)
            replace_output_layer(model, n_classes)
        else:
            model.load_state_dict(init_state)
    resumed_from = int(state["epoch"])
    frozen = freeze(model, cfg.freeze)

    # Load weights before prepare_model (which moves to the device and wraps in DDP), and
    # create the optimizer after it, so its state lands on the parameters' device.
    model = ray.train.torch.prepare_model(model)
    device = ray.train.torch.get_device()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate,
                                  weight_decay=cfg.weight_decay)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    weights = torch.as_tensor(config["class_weights"], dtype=torch.float32, device=device)

    train_shard = ray.train.get_dataset_shard("train")
    validation_shard = ray.train.get_dataset_shard("validation")
    shuffle = max(cfg.shuffle_buffer_size, cfg.batch_size) if cfg.shuffle_buffer_size else None
    dtypes = {"x": torch.float32, "y": torch.int64}

    def weighted_loss_terms(logits, y):
        """(sum of w_y * CE, sum of w_y): the batch's weighted-mean loss is their ratio."""
        w = weights[y]
        return (w * F.cross_entropy(logits, y, reduction="none")).sum(), w.sum()

    def train_batches(epoch: int):
        return train_shard.iter_torch_batches(
            batch_size=cfg.batch_size, dtypes=dtypes, device=device, prefetch_batches=cfg.prefetch_batches,
            local_shuffle_buffer_size=shuffle, local_shuffle_seed=seed * 100_003 + epoch if shuffle else None,
        )

    if state["stopped_early"] or state["epoch"] >= cfg.epochs:
        # A restart after the final checkpoint: nothing is left to train.
        return

    # Every epoch is a new Ray Data execution, whose start-up (tasks launched, first shard
    # file read and decoded: ~0.3 s) would stall the epoch's first step. So the next
    # epoch's execution is started ahead: with one worker, whose training data is not
    # split (see datasets_to_split), as soon as the current epoch's first batch is in,
    # the two executions being independent; with several workers, whose split
    # coordinator runs one epoch at a time, once the current epoch is consumed, so that
    # the start-up overlaps validation and checkpointing.
    overlap_epochs = world_size == 1
    upcoming = EpochPrefetch(train_batches, state["epoch"] + 1)
    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        started = time.perf_counter()
        model.train()
        keep_frozen_in_eval(frozen)
        loss_num = torch.zeros((), device=device)
        loss_den = torch.zeros((), device=device)
        n_train = 0
        batches, upcoming = upcoming, None
        for batch in batches:
            if upcoming is None and overlap_epochs and epoch < cfg.epochs:
                upcoming = EpochPrefetch(train_batches, epoch + 1)
            x, y = batch["x"], batch["y"]
            num, den = weighted_loss_terms(model(x), y)
            loss = num / den.clamp_min(1e-12)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_num += num.detach()
            loss_den += den.detach()
            n_train += len(y)
        train_seconds = time.perf_counter() - started
        if upcoming is None and epoch < cfg.epochs:
            upcoming = EpochPrefetch(train_batches, epoch + 1)

        model.eval()
        v_num = torch.zeros((), device=device)
        v_den = torch.zeros((), device=device)
        correct = torch.zeros(n_classes, device=device)
        support = torch.zeros(n_classes, device=device)
        with torch.inference_mode():
            for batch in validation_shard.iter_torch_batches(
                batch_size=max(cfg.batch_size, 256), dtypes=dtypes, device=device, prefetch_batches=cfg.prefetch_batches
            ):
                x, y = batch["x"], batch["y"]
                logits = model(x)
                num, den = weighted_loss_terms(logits, y)
                v_num += num
                v_den += den
                hit = (logits.argmax(dim=1) == y).float()
                correct.index_add_(0, y, hit)
                support.index_add_(0, y, torch.ones_like(hit))

        if world_size > 1:
            # Training loss over all workers' recordings; validation is identical everywhere.
            import torch.distributed as dist

            totals = torch.stack([loss_num, loss_den, torch.tensor(float(n_train), device=device)])
            dist.all_reduce(totals)
            loss_num, loss_den, n_all = totals[0], totals[1], int(totals[2].item())
        else:
            n_all = n_train
        if int(support.sum().item()) == 0:
            raise RuntimeError("the validation split yielded no recordings")
        train_loss = float(loss_num / loss_den.clamp_min(1e-12))
        validation_loss = float(v_num / v_den.clamp_min(1e-12))
        validation_accuracy = float(correct.sum() / support.sum())
        present = support > 0
        balanced = float((correct[present] / support[present]).mean())

        if validation_loss < state["best_validation_loss"]:
            state.update(best_model=_cpu_state(model), best_validation_loss=validation_loss,
                         best_validation_accuracy=validation_accuracy, best_epoch=epoch, epochs_without_improvement=0)
        else:
            state["epochs_without_improvement"] += 1
        state["epoch"] = epoch
        state["stopped_early"] = cfg.patience is not None and state["epochs_without_improvement"] >= cfg.patience

        metrics = {
            "member": member, "seed": seed, "epoch": epoch, "train_loss": train_loss,
            "validation_loss": validation_loss, "validation_accuracy": validation_accuracy,
            "validation_balanced_accuracy": balanced,
            "best_validation_loss": state["best_validation_loss"], "best_epoch": state["best_epoch"],
            "stopped_early": bool(state["stopped_early"]), "resumed_from_epoch": resumed_from,
            "train_samples": n_all, "train_samples_per_s": n_all / max(train_seconds, 1e-9),
            "epoch_s": time.perf_counter() - started,
        }
        _maybe_fail(config, epoch, rank)
        # Every worker reports (a report is a barrier); rank 0's carries the checkpoint,
        # named by its epoch so that a run's folder reads in order.
        name = checkpoint_dir_name(epoch)
        if rank == 0:
            with tempfile.TemporaryDirectory() as d:
                saved = {**state, "model": _cpu_state(model), "optimizer": optimizer.state_dict()}
                torch.save(saved, os.path.join(d, CHECKPOINT_FILE))
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d), checkpoint_dir_name=name)
        else:
            ray.train.report(metrics, checkpoint_dir_name=name)
        if state["stopped_early"]:
            break


def checkpoint_dir_name(epoch: int) -> str:
    """``checkpoint_000003``: the folder of the checkpoint taken after ``epoch`` (1-based)."""
    return f"checkpoint_{epoch:06d}"


def load_checkpoint_state(directory: str) -> dict[str, Any]:
    """Read a member checkpoint written by :func:`train_loop_per_worker` (CPU tensors,
    ``weights_only=True``)."""
    import torch

    return torch.load(os.path.join(directory, CHECKPOINT_FILE), map_location="cpu", weights_only=True)


__all__ = ["CHECKPOINT_FILE", "EpochPrefetch", "checkpoint_dir_name", "datasets_to_split", "load_checkpoint_state", "train_loop_per_worker"]
