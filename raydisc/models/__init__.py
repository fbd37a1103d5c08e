"""CNN architectures and the registry that builds them by name.

Two architectures, as in Kasburg et al. (2024):

* ``"spectrogram_cnn"`` (:class:`SpectrogramCNN`) reads the shard's ``spectrogram``
  column, ``(3, n_freq, n_time)``;
* ``"waveform_cnn"`` (:class:`WaveformCNN`) reads the shard's ``waveform`` column,
  ``(3, n_samples)``.

Everything that needs a model (training, bundles, serving) goes through
:func:`build_model`, with hyper-parameters resolved by :func:`resolve_hparams`, so a model
rebuilt from a bundle's JSON is the model that was trained.
"""
from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from ..config import PreprocessConfig
from ._common import with_presence_mask
from .freezing import FREEZE_STRATEGIES, freeze, replace_output_layer
from .spectrogram_cnn import SpectrogramCNN
from .waveform_cnn import ResidualBlock1d, WaveformCNN

MODELS: dict[str, type[nn.Module]] = {
    "spectrogram_cnn": SpectrogramCNN,
    "waveform_cnn": WaveformCNN,
}


def model_class(name: str) -> type[nn.Module]:
    """The class registered as ``name``; ``ValueError`` naming the known models otherwise."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}") from None


def input_kind_of(name: str) -> str:
    """Shard column the model reads: ``"spectrogram"`` or ``"waveform"``."""
    return model_class(name).input_kind


def input_shape_of(name: str, preprocess_config: PreprocessConfig) -> tuple[int, ...]:
    """Per-recording input shape (no batch axis) that ``preprocess_config`` produces for
    model ``name``."""
    kind = input_kind_of(name)
    return tuple(getattr(preprocess_config, f"{kind}_shape"))


def resolve_hparams(name: str, **overrides: Any) -> dict[str, Any]:
    """Defaults of model ``name`` updated with ``overrides``; sequences become tuples (so
    values read back from JSON lists compare equal). ``ValueError`` for a name the model
    does not take."""
    defaults = model_class(name).default_hparams()
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise ValueError(f"model {name!r} has no hyper-parameter(s) {sorted(unknown)}; known: {sorted(defaults)}")
    merged = {**defaults, **overrides}
    return {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in merged.items()}


def build_model(name: str, input_shape: Sequence[int], n_classes: int = 2, **hparams: Any) -> nn.Module:
    """Instantiate model ``name`` for per-recording inputs of ``input_shape`` (no batch
    axis) and ``n_classes`` output logits; unspecified hyper-parameters take defaults."""
    return model_class(name)(tuple(input_shape), n_classes, **resolve_hparams(name, **hparams))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (batchnorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "FREEZE_STRATEGIES",
    "MODELS",
    "ResidualBlock1d",
    "SpectrogramCNN",
    "WaveformCNN",
    "build_model",
    "count_parameters",
    "freeze",
    "input_kind_of",
    "input_shape_of",
    "model_class",
    "replace_output_layer",
    "resolve_hparams",
    "with_presence_mask",
]
