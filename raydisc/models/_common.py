"""Helpers shared by the architectures: defaults from signatures, argument checks."""
from __future__ import annotations

import inspect
from typing import Any, Sequence

import torch
from torch import nn


def keyword_defaults(cls: type) -> dict[str, Any]:
    """The keyword-only arguments of ``cls.__init__`` with their defaults: both
    architectures derive ``default_hparams`` from their signatures so the defaults are
    written once."""
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def check_common(channels: Sequence[int], kernel_size: int, dense_units: int, dropout: float, n_classes: int) -> None:
    """Validation shared by both architectures."""
    if len(channels) == 0 or min(channels) < 1:
        raise ValueError(f"channels must be a non-empty sequence of positive integers, got {tuple(channels)}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        # Odd kernels keep 'same' padding symmetric, so the time axis is not shifted.
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
    if dense_units < 1:
        raise ValueError(f"dense_units must be positive, got {dense_units}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")


def classifier_head(n_features: int, dense_units: int, dropout: float, n_classes: int) -> nn.Sequential:
    """The dense head both architectures end in: flatten, dense + ReLU, dropout, logits."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(n_features, dense_units),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(dense_units, n_classes),
    )


def with_presence_mask(x: torch.Tensor) -> torch.Tensor:
    """``(b, C, ...)`` -> ``(b, 2C, ...)``: the input, then per component a constant
    plane that is 1 where the component was recorded and 0 where it is absent.

    Preprocessing zeroes the components a station did not record (a vertical-only
    station's N and E), so "absent" is "all zero"; the planes tell the network so
    explicitly, and one model serves vertical-only and 3-component stations.
    """
    present = x.flatten(2).abs().amax(dim=2) > 0  # (b, C)
    planes = present.to(x.dtype).reshape(*present.shape, *[1] * (x.ndim - 2)).expand_as(x)
    return torch.cat([x, planes], dim=1)
