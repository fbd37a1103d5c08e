"""The training configuration of an ensemble: one frozen, validated, JSON-round-trippable
dataclass that travels into every Ray Train worker and into the bundle's provenance."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import ConfigBase, ConfigError

CLASS_WEIGHTINGS = ("inverse_frequency", "none")


@dataclass(frozen=True)
class TrainConfig(ConfigBase):
    """How an ensemble of one architecture is trained.

    Model
        ``architecture``: a name in :data:`raydisc.models.MODELS` (``"spectrogram_cnn"``
        reads the shard's ``spectrogram`` column, ``"waveform_cnn"`` its ``waveform``
        column). ``hparams``: overrides of the architecture's default hyper-parameters
        (checked against them here).

    Ensemble
        ``members`` models, member ``i`` seeded with ``base_seed + i`` (weight
        initialisation, dropout, shuffling order).

    Optimisation
        AdamW with ``learning_rate`` (1/step) and decoupled ``weight_decay``; mini-batches
        of ``batch_size`` recordings *per worker*; at most ``epochs`` passes over the
        training split. Early stopping: training stops once the validation loss has not
        improved for ``patience`` consecutive epochs (``None``: never stop early), and the
        member keeps the weights of its best validation-loss epoch.

    Fine-tuning
        ``freeze``: which layers stay fixed when members start from a pretrained bundle
        (:func:`raydisc.training.finetune.finetune_ensemble`): ``"none"``,
        ``"feature_extractor"`` or ``"all_but_head"`` (see
        :mod:`raydisc.models.freezing`). Usually with a ``learning_rate`` below
        pretraining's, so that the pretrained features are adjusted rather than
        overwritten.

    Class imbalance
        ``class_weighting="inverse_frequency"`` (default): the loss is class-weighted
        cross-entropy with weight ``w_c = N / (C * n_c)`` for class ``c``, where ``n_c``
        is the number of training recordings of class ``c``, ``N`` their total and ``C``
        the number of classes — inverse to the training class frequencies, so every class
        contributes equally in expectation (a class absent from training gets weight 0).
        The validation loss uses the same weights, so early stopping and best-member
        selection judge the balanced loss. ``"none"``: plain cross-entropy.

    Component sets
        ``drop_horizontals``: probability that a training recording with horizontals is
        given to the model as vertical-only (horizontals zeroed, normalised again; anew
        every epoch), so that one ensemble classifies vertical-only and 3-component
        stations alike. 0 turns it off.

    Input pipeline
        Batches stream from the Parquet shards through Ray Data; ``prefetch_batches``
        batches are prepared ahead of the training step. Every epoch reads the shard
        files in a new order (seeded by the member's seed) and permutes the recordings of
        each file (see :func:`raydisc.training.data.training_dataset`); a local shuffle
        buffer of ``shuffle_buffer_size`` recordings (0: none) additionally mixes
        recordings across files, at the cost of waiting for it to fill at the start of
        every epoch.

    Resources
        Each member is one Ray Train run with ``workers_per_member`` workers
        (DistributedDataParallel when > 1), each holding ``cpus_per_worker`` CPUs and,
        with ``use_gpu``, ``gpus_per_worker`` GPUs (``None``: use GPUs when the cluster has
        any; a fraction below 1 lets several small members share one GPU). Members
        run concurrently, at most ``max_concurrent_members`` at a time (``None``: as many
        as the cluster's CPUs/GPUs allow while one CPU stays free for Ray Data). A member
        whose worker dies is restarted up to ``max_failures`` times from its last
        checkpoint.
    """

    architecture: str = "spectrogram_cnn"
    hparams: dict[str, Any] = field(default_factory=dict)
    members: int = 10
    base_seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    patience: int | None = 5
    class_weighting: Literal["inverse_frequency", "none"] = "inverse_frequency"
    prefetch_batches: int = 4
    shuffle_buffer_size: int = 0
    workers_per_member: int = 1
    use_gpu: bool | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 1.0
    max_failures: int = 1
    max_concurrent_members: int | None = None
    freeze: str = "none"
    drop_horizontals: float = 0.25

    def __post_init__(self) -> None:
        from ..models import FREEZE_STRATEGIES, MODELS, resolve_hparams

        if self.architecture not in MODELS:
            raise ConfigError(f"unknown architecture {self.architecture!r}; known architectures: {sorted(MODELS)}")
        if not isinstance(self.hparams, dict):
            raise ConfigError(f"hparams must be a dict, got {type(self.hparams).__name__}")
        try:
            resolve_hparams(self.architecture, **self.hparams)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        positive = {"members": self.members, "epochs": self.epochs, "batch_size": self.batch_size,
                    "workers_per_member": self.workers_per_member, "prefetch_batches": self.prefetch_batches}
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise ConfigError(f"patience must be a positive integer or None, got {self.patience!r}")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ConfigError(f"class_weighting must be one of {CLASS_WEIGHTINGS}, got {self.class_weighting!r}")
        if self.shuffle_buffer_size < 0:
            raise ConfigError("shuffle_buffer_size must be >= 0")
        if not self.cpus_per_worker > 0:
            raise ConfigError(f"cpus_per_worker must be positive, got {self.cpus_per_worker}")
        g = self.gpus_per_worker
        if not (0 < g <= 1 or (g > 1 and g == int(g))):
            raise ConfigError(f"gpus_per_worker must be a fraction in (0, 1] or a whole number, got {self.gpus_per_worker}")
        if self.max_failures < 0:
            raise ConfigError("max_failures must be >= 0")
        if self.max_concurrent_members is not None and self.max_concurrent_members < 1:
            raise ConfigError("max_concurrent_members must be >= 1 or None")
        if self.freeze not in FREEZE_STRATEGIES:
            raise ConfigError(f"freeze must be one of {FREEZE_STRATEGIES}, got {self.freeze!r}")
        if not 0.0 <= self.drop_horizontals < 1.0:
            raise ConfigError(f"drop_horizontals must be in [0, 1), got {self.drop_horizontals}")
        if self.use_gpu not in (None, True, False):
            raise ConfigError(f"use_gpu must be true, false or null (auto), got {self.use_gpu!r}")

    def seed_of(self, member: int) -> int:
        """Random seed of ensemble member ``member`` (0-based)."""
        return self.base_seed + member

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes`` applied (validated again)."""
        return type(self).from_dict({**self.to_dict(), **changes})


__all__ = ["TrainConfig", "CLASS_WEIGHTINGS"]
