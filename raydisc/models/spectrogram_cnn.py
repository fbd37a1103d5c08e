"""2-D CNN on 3-component log spectrograms, in the style of Linville, Pankow & Draelos
(2019, GRL, "Deep learning models augment analyst decisions for event discrimination").

Input: ``(batch, 3, n_freq, n_time)`` float32, the ``spectrogram`` column of a shard
(``PreprocessConfig.spectrogram_shape``; with the defaults ``(3, 41, 89)``: 41 frequency
bins 0–20 Hz, 89 frames 1 s apart covering 90 s). Output: ``(batch, n_classes)`` logits.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ._common import check_common, classifier_head, keyword_defaults, with_presence_mask


class SpectrogramCNN(nn.Module):
    """Stacked conv–batchnorm–ReLU–max-pool blocks, adaptive average pooling, dense head.

    Each block halves both the frequency and the time extent (``ceil_mode`` so that an
    extent never shrinks to zero); the adaptive pooling then maps whatever is left to a
    fixed ``pooled_shape`` (frequency, time), so any window length or STFT setting works
    with the same head.

    ``presence_mask``: the first convolution also reads one constant plane per component
    saying whether it was recorded (see :func:`~raydisc.models._common.with_presence_mask`).

    Trainable parameters with default hyper-parameters and 2 classes: 57,090.
    """

    input_kind = "spectrogram"
    #: The convolutional feature extractor (see :mod:`raydisc.models.freezing`).
    feature_modules = ("features",)

    def __init__(
        self,
        input_shape: Sequence[int] = (3, 41, 89),
        n_classes: int = 2,
        *,
        channels: Sequence[int] = (16, 32, 64),
        kernel_size: int = 3,
        pooled_shape: Sequence[int] = (2, 4),
        dense_units: int = 64,
        dropout: float = 0.3,
        presence_mask: bool = True,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"SpectrogramCNN expects input_shape (components, n_freq, n_time), got {tuple(input_shape)}")
        check_common(channels, kernel_size, dense_units, dropout, n_classes)
        if len(pooled_shape) != 2 or min(pooled_shape) < 1:
            raise ValueError(f"pooled_shape must be two positive integers, got {tuple(pooled_shape)}")
        self.input_shape = tuple(int(v) for v in input_shape)
        self.in_channels = self.input_shape[0]
        self.presence_mask = bool(presence_mask)
        # With the presence mask, the first convolution also reads one plane per component.
        first_in = 2 * self.in_channels if self.presence_mask else self.in_channels

        blocks: list[nn.Module] = []
        c_in = first_in
        for c_out in channels:
            blocks += [
                # No conv bias: the batchnorm shift that follows makes it redundant.
                nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(tuple(int(v) for v in pooled_shape))
        n_flat = c_in * int(pooled_shape[0]) * int(pooled_shape[1])
        self.head = classifier_head(n_flat, dense_units, dropout, n_classes)

    @classmethod
    def default_hparams(cls) -> dict[str, Any]:
        """Keyword-only constructor defaults (the single source of the defaults)."""
        return keyword_defaults(cls)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, components, n_freq, n_time)`` -> logits ``(batch, n_classes)``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"SpectrogramCNN expects (batch, {self.in_channels}, n_freq, n_time), got {tuple(x.shape)}"
            )
        if self.presence_mask:
            x = with_presence_mask(x)
        return self.head(self.pool(self.features(x)))
