"""Ensemble training on Ray Train: configuration (:class:`TrainConfig`), the streamed
Ray Data inputs (:mod:`.data`), the per-worker loop (:mod:`.loop`) and the driver that
trains N members concurrently and writes the bundle (:func:`train_ensemble`).

``train_ensemble`` and ``TrainingError`` are imported on first use, so that reading a
``TrainConfig`` (e.g. for ``raydisc --help``) does not import Ray Train and Tune."""
from .config import TrainConfig

__all__ = ["TrainConfig", "TrainingError", "train_ensemble"]


def __getattr__(name: str):
    if name in ("train_ensemble", "TrainingError"):
        from . import ensemble

        return getattr(ensemble, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
