"""Typed configurations with defaults, validated where they enter the system.

Configs are frozen dataclasses so that they can be hashed, compared, written to JSON
(``to_dict``) and read back (``from_dict``) — the preprocessing config travels inside
every shard folder and every ensemble bundle.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal


class ConfigError(ValueError):
    """A configuration value is out of range or inconsistent."""


class _Config:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    def fingerprint(self) -> str:
        """Short stable hash of the config, used to refuse mixing incompatible data."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PreprocessConfig(_Config):
    """How one 3-component station recording becomes model input.

    The window is cut relative to ``window_reference`` (the catalog's P pick for the
    station, or the origin time) with ``padding_s`` extra on both sides, then each
    component is divided by the channel's overall sensitivity (counts -> m/s),
    detrended, tapered (the taper lies in the padding), band-passed with a zero-phase
    Butterworth filter, resampled to ``target_rate_hz``, and the padding is cut off —
    so filter and taper edge effects never reach the model input.

    Outputs per recording (float32):

    * ``spectrogram``: shape ``(3, n_freq, n_time)`` — log10 power of the short-time
      Fourier transform of each component (Z, N, E), normalised to zero mean and unit
      standard deviation over the whole recording. ``n_freq = stft_window_samples // 2 + 1``
      (0 .. target_rate/2 Hz), ``n_time`` frames ``stft_hop_samples`` apart.
    * ``waveform``: shape ``(3, n_samples)`` — ground velocity divided by the largest
      absolute value over the three components (dimensionless, in [-1, 1]).

    A recording counts as clipped when any sample reaches ``clip_fraction`` of
    ``clip_counts`` (the digitizer's full scale; 2**23 - 1 for 24-bit digitizers).
    """

    window_reference: Literal["p_arrival", "origin"] = "p_arrival"
    window_start_s: float = -10.0
    window_length_s: float = 90.0
    padding_s: float = 5.0
    taper_fraction: float = 0.05
    freqmin_hz: float = 0.5
    freqmax_hz: float = 18.0
    filter_corners: int = 4
    target_rate_hz: float = 40.0
    stft_window_samples: int = 80
    stft_hop_samples: int = 40
    clip_counts: float = 2**23 - 1
    clip_fraction: float = 0.999
    components: tuple[str, ...] = ("Z", "N", "E")

    def __post_init__(self) -> None:
        if self.window_reference not in ("p_arrival", "origin"):
            raise ConfigError(f"window_reference must be 'p_arrival' or 'origin', got {self.window_reference!r}")
        if self.window_length_s <= 0:
            raise ConfigError("window_length_s must be positive")
        if self.padding_s < 0:
            raise ConfigError("padding_s must be >= 0")
        if not 0 <= self.taper_fraction < 0.5:
            raise ConfigError("taper_fraction must be in [0, 0.5)")
        if not 0 < self.freqmin_hz < self.freqmax_hz:
            raise ConfigError("need 0 < freqmin_hz < freqmax_hz")
        if self.freqmax_hz >= self.target_rate_hz / 2:
            raise ConfigError(
                f"freqmax_hz={self.freqmax_hz} must be below the Nyquist frequency "
                f"of target_rate_hz={self.target_rate_hz}"
            )
        if self.stft_hop_samples <= 0 or self.stft_window_samples < self.stft_hop_samples:
            raise ConfigError("need 0 < stft_hop_samples <= stft_window_samples")
        if self.n_samples < self.stft_window_samples:
            raise ConfigError("window too short for one STFT frame")
        if len(self.components) != 3:
            raise ConfigError("exactly three components are required")

    @property
    def n_samples(self) -> int:
        """Samples per component after resampling."""
        return int(round(self.window_length_s * self.target_rate_hz))

    @property
    def spectrogram_shape(self) -> tuple[int, int, int]:
        n_freq = self.stft_window_samples // 2 + 1
        n_time = 1 + (self.n_samples - self.stft_window_samples) // self.stft_hop_samples
        return (3, n_freq, n_time)

    @property
    def waveform_shape(self) -> tuple[int, int]:
        return (3, self.n_samples)


@dataclass(frozen=True)
class SplitConfig(_Config):
    """Event-wise train/validation/test assignment, stratified by label within a region."""

    seed: int = 0
    train_fraction: float = 0.7
    validation_fraction: float = 0.15

    def __post_init__(self) -> None:
        if not (0 < self.train_fraction < 1 and 0 <= self.validation_fraction < 1):
            raise ConfigError("fractions must lie in (0, 1)")
        if self.train_fraction + self.validation_fraction >= 1:
            raise ConfigError("train_fraction + validation_fraction must leave room for a test split")

    @property
    def test_fraction(self) -> float:
        return 1.0 - self.train_fraction - self.validation_fraction


@dataclass(frozen=True)
class PipelineConfig(_Config):
    """Execution settings of the preprocessing job (they do not change its output)."""

    events_per_shard: int = 32
    concurrency: int | None = None

    def __post_init__(self) -> None:
        if self.events_per_shard < 1:
            raise ConfigError("events_per_shard must be >= 1")


__all__ = ["ConfigError", "PreprocessConfig", "SplitConfig", "PipelineConfig", "field"]
