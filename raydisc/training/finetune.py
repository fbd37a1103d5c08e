"""Fine-tuning a pretrained ensemble on a target region (transfer learning).

Every member of the pretrained bundle is fine-tuned on the target region's training
split, concurrently on Ray Train, by the same training code as pretraining
(:func:`raydisc.training.ensemble.train_ensemble` started from the bundle's weights):
the layers named by ``TrainConfig.freeze`` stay fixed, early stopping watches the
target region's validation split, and a new bundle is written under the new run
directory. The pretrained bundle is only read.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ..config import ConfigError
from ..ensemble.triage import DEFAULT_TARGET_ACCURACY
from .config import TrainConfig

#: How fine-tuning differs from pretraining by default: a learning rate ten times lower,
#: so that the pretrained features are adjusted rather than overwritten, and fewer epochs
#: (a pretrained member converges within a few).
FINETUNE_DEFAULTS: dict[str, Any] = {"learning_rate": 1e-4, "epochs": 10, "patience": 3}


def finetune_config(**overrides: Any) -> TrainConfig:
    """A TrainConfig with the fine-tuning defaults, updated with ``overrides``."""
    return TrainConfig.from_dict({**FINETUNE_DEFAULTS, **overrides})


def _inside(uri: str, folder: str) -> bool:
    uri, folder = uri.rstrip("/"), folder.rstrip("/")
    return uri == folder or uri.startswith(folder + "/")


def finetune_ensemble(
    bundle_uri: str,
    shards: str,
    target: str,
    train_config: TrainConfig,
    run_dir: str,
    *,
    progress: Callable[[str], None] | None = print,
    train_events: Sequence[str] | None = None,
    init_members: Sequence[int] | None = None,
    target_accuracy: float = DEFAULT_TARGET_ACCURACY,
) -> str:
    """Fine-tune the members of the bundle at ``bundle_uri`` on the ``train`` split of
    region ``target`` (or of ``train_events`` only) and write a new bundle to
    ``{run_dir}/bundle``; returns its URI.

    ``train_config.architecture`` must be the bundle's; the hyper-parameters come from
    the bundle (when ``train_config.hparams`` is empty); ``train_config`` gives
    the strategy (``freeze``, ``learning_rate``, ``epochs``, ``patience``, ...). By default
    every member is fine-tuned (member ``i`` from pretrained member ``i``, seed
    ``train_config.seed_of(i)``); ``init_members`` picks the pretrained members instead.
    Needs a running Ray cluster.

    Raises ``ConfigError`` when ``run_dir`` holds the pretrained bundle,
    ``BundleError`` for a bundle that cannot be used (missing, other preprocessing than
    the shards, corrupt members; another architecture), ``ShardError`` when the target
    region has no shards or no training/validation recordings, ``TrainingError`` when a
    member fails.
    """
    from ..ensemble.bundle import read_manifest
    from .ensemble import train_ensemble

    if _inside(bundle_uri, run_dir):
        raise ConfigError(f"run directory {run_dir} holds the pretrained bundle {bundle_uri}: fine-tuning "
                          "writes a new run directory and never touches the pretrained run")
    if init_members is None:
        init_members = range(len(read_manifest(bundle_uri)["members"]))
    members = [int(m) for m in init_members]
    # train_ensemble checks the bundle against the config and fills in its hparams.
    return train_ensemble(shards, [target], train_config.replace(members=len(members)), run_dir, progress=progress,
                          init_bundle=bundle_uri, init_members=members, train_events=train_events,
                          target_accuracy=target_accuracy)


def finetuned_from(bundle_uri: str) -> dict[str, Any] | None:
    """Where a fine-tuned bundle started from (``uri``, ``bundle_id``, ``members``,
    ``regions``), or ``None`` for a bundle trained from scratch."""
    from ..ensemble.bundle import read_manifest

    return read_manifest(bundle_uri).get("provenance", {}).get("init_bundle")


__all__ = ["FINETUNE_DEFAULTS", "finetune_config", "finetune_ensemble", "finetuned_from"]
