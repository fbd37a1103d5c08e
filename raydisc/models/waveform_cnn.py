"""1-D residual CNN on the normalised 3-component waveform.

Input: ``(batch, 3, n_samples)`` float32, the ``waveform`` column of a shard
(``PreprocessConfig.waveform_shape``; with the defaults ``(3, 3600)``: 90 s at 40 Hz,
ground velocity scaled to [-1, 1], dimensionless). Output: ``(batch, n_classes)`` logits.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ._common import check_common, classifier_head, keyword_defaults, with_presence_mask


class ResidualBlock1d(nn.Module):
    """Two convolutions with a skip connection; the first convolution downsamples by
    ``stride``, and a 1x1 strided projection matches the skip path's shape.

    ``(batch, c_in, n)`` -> ``(batch, c_out, ceil(n / stride))``. Public because the
    fused ensemble (:mod:`raydisc.ensemble.fused_networks`) recognises and groups these blocks.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel_size, stride=stride, padding=pad, bias=False),
            nn.BatchNorm1d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv1d(c_out, c_out, kernel_size, padding=pad, bias=False),
            nn.BatchNorm1d(c_out),
        )
        if stride != 1 or c_in != c_out:
            self.skip: nn.Module = nn.Sequential(
                nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out)
            )
        else:
            self.skip = nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class WaveformCNN(nn.Module):
    """Strided stem, residual 1-D blocks that each halve the time axis, global average
    pooling over time, dense head with dropout.

    With the defaults the 3600-sample input is reduced 32-fold (stem stride 2, then four
    stride-2 blocks) to 113 steps of 0.8 s before the global pooling; the global pooling
    makes the network independent of the window length.

    ``presence_mask``: the stem also reads one constant plane per component saying whether
    it was recorded (see :func:`~raydisc.models._common.with_presence_mask`).

    Trainable parameters with default hyper-parameters and 2 classes: 74,658.
    """

    input_kind = "waveform"
    #: The convolutional feature extractor (see :mod:`raydisc.models.freezing`).
    feature_modules = ("stem", "blocks")

    def __init__(
        self,
        input_shape: Sequence[int] = (3, 3600),
        n_classes: int = 2,
        *,
        stem_channels: int = 16,
        stem_kernel_size: int = 9,
        channels: Sequence[int] = (16, 32, 48, 64),
        kernel_size: int = 5,
        dense_units: int = 32,
        dropout: float = 0.3,
        presence_mask: bool = True,
    ) -> None:
        super().__init__()
        if len(input_shape) != 2:
            raise ValueError(f"WaveformCNN expects input_shape (components, n_samples), got {tuple(input_shape)}")
        check_common(channels, kernel_size, dense_units, dropout, n_classes)
        if stem_channels < 1 or stem_kernel_size < 1 or stem_kernel_size % 2 == 0:
            raise ValueError("stem_channels must be positive and stem_kernel_size a positive odd integer")
        self.input_shape = tuple(int(v) for v in input_shape)
        self.in_channels = self.input_shape[0]
        self.presence_mask = bool(presence_mask)
        # With the presence mask, the first convolution also reads one plane per component.
        first_in = 2 * self.in_channels if self.presence_mask else self.in_channels

        self.stem = nn.Sequential(
            nn.Conv1d(first_in, stem_channels, stem_kernel_size, stride=2,
                      padding=stem_kernel_size // 2, bias=False),
            nn.BatchNorm1d(stem_channels),
            nn.ReLU(inplace=True),
        )
        blocks = []
        c_in = stem_channels
        for c_out in channels:
            blocks.append(ResidualBlock1d(c_in, int(c_out), kernel_size, stride=2))
            c_in = int(c_out)
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.head = classifier_head(c_in, dense_units, dropout, n_classes)

    @classmethod
    def default_hparams(cls) -> dict[str, Any]:
        """Keyword-only constructor defaults (the single source of the defaults)."""
        return keyword_defaults(cls)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, components, n_samples)`` -> logits ``(batch, n_classes)``."""
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"WaveformCNN expects (batch, {self.in_channels}, n_samples), got {tuple(x.shape)}")
        if self.presence_mask:
            x = with_presence_mask(x)
        return self.head(self.pool(self.blocks(self.stem(x))))
