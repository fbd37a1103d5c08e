"""Typed configurations with defaults, validated where they enter the system.

Configs are frozen dataclasses so that they can be hashed, compared, written to JSON
(``to_dict``) and read back (``from_dict``) — the preprocessing config travels inside
every shard folder and every ensemble bundle.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal


class ConfigError(ValueError):
    """A configuration value is out of range or inconsistent."""


class ConfigBase:
    """Base of every raydisc config (a frozen dataclass): JSON round trip and fingerprint.

    Subclasses are ``@dataclass(frozen=True)``; :meth:`from_dict` refuses unknown keys
    and turns JSON lists back into tuples, so a config read back compares equal.
    """

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
        return fingerprint_of(self.to_dict())


def fingerprint_of(values: dict[str, Any]) -> str:
    """The :meth:`ConfigBase.fingerprint` of a config's stored dict (as written to JSON)."""
    text = json.dumps(values, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: Model input channels, in order: vertical, north, east. A recording may have any of
#: them (the vertical always); absent ones are zero in the input (see ``preprocess``).
COMPONENTS: tuple[str, ...] = ("Z", "N", "E")
PICK_SOURCES = ("catalog_or_predicted", "catalog", "predicted")
RESPONSE_REMOVAL = ("full", "sensitivity")


@dataclass(frozen=True)
class PreprocessConfig(ConfigBase):
    """How one station recording becomes model input.

    **The model input** (the fields of :data:`MODEL_FIELDS`; a bundle only takes data
    preprocessed with the same values). The window is cut relative to
    ``window_reference`` (the station's P arrival, or the origin time) with
    ``padding_s`` extra on both sides, then each component is detrended, tapered (the
    taper lies in the padding), corrected for the instrument (counts -> m/s),
    band-passed with a zero-phase Butterworth filter and resampled to
    ``target_rate_hz`` in one FFT round trip, and the padding is cut off — so filter
    and taper edge effects never reach the model input.

    Outputs per recording (float32), channels always Z, N, E (:data:`COMPONENTS`):

    * ``spectrogram``: shape ``(3, n_freq, n_time)`` — log10 power of the short-time
      Fourier transform of each component, normalised to zero mean and unit standard
      deviation over the components present. ``n_freq = stft_window_samples // 2 + 1``
      (0 .. target_rate/2 Hz), ``n_time`` frames ``stft_hop_samples`` apart.
    * ``waveform``: shape ``(3, n_samples)`` — ground velocity divided by the largest
      absolute value over the components present (dimensionless, in [-1, 1]).

    A component the station did not record (a vertical-only station's N and E) is
    zero in both.

    **Reading the raw data** (the other fields: they say how a network's recordings
    are found and corrected, not what the model sees, so a bundle classifies data read
    with other values). ``channel_priority``: SEED band + instrument codes, best first;
    per station the first one with a vertical trace is used: broadband (HH, BH, CH: 80-250,
    10-80, 250-1000 Hz) before short period (EH, SH, DH); ``HN``, strong motion, only if
    listed. ``pick_source``: where the P arrival comes from —
    ``"catalog_or_predicted"`` (the catalog's pick, else predicted from the origin with
    ``travel_time_model``, a TauP model name such as ``iasp91`` or a ``.tvel``/``.nd``
    file), ``"catalog"`` (no pick: rejected ``no_p_pick``) or ``"predicted"`` (ignore
    catalog picks). ``response_removal``: ``"full"`` divides by the channel's complete
    response (poles and zeros, all gain stages) with a ``water_level_db`` (as ObsPy's
    ``remove_response``), ``"sensitivity"`` by the overall sensitivity only; a channel
    with only a sensitivity uses it either way. ``allow_missing_response``: a channel
    without any response is normally rejected (``no_response``); with this it is used
    in counts (the inputs are normalised per recording, so only the relative scale of
    its components is lost). A recording counts as clipped when any sample reaches
    ``clip_fraction`` of ``clip_counts`` (the digitizer's full scale; 2**23 - 1 for
    24-bit digitizers).
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
    components: tuple[str, ...] = COMPONENTS
    channel_priority: tuple[str, ...] = ("HH", "BH", "CH", "EH", "SH", "DH")
    pick_source: Literal["catalog_or_predicted", "catalog", "predicted"] = "catalog_or_predicted"
    travel_time_model: str = "iasp91"
    response_removal: Literal["full", "sensitivity"] = "full"
    water_level_db: float | None = 60.0
    allow_missing_response: bool = False

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
        if tuple(self.components) != COMPONENTS:
            raise ConfigError(f"components must be {COMPONENTS} (the model's input channels), got {self.components}")
        if not self.channel_priority or any(len(c) != 2 or not c.isalpha() for c in self.channel_priority):
            raise ConfigError(f"channel_priority must list two-letter SEED band+instrument codes such as 'HH', "
                              f"got {self.channel_priority}")
        if self.pick_source not in PICK_SOURCES:
            raise ConfigError(f"pick_source must be one of {PICK_SOURCES}, got {self.pick_source!r}")
        if not self.travel_time_model:
            raise ConfigError("travel_time_model must name a TauP model or a velocity model file")
        if self.response_removal not in RESPONSE_REMOVAL:
            raise ConfigError(f"response_removal must be one of {RESPONSE_REMOVAL}, got {self.response_removal!r}")
        if self.water_level_db is not None and not self.water_level_db > 0:
            raise ConfigError(f"water_level_db must be positive or None, got {self.water_level_db}")

    @property
    def n_samples(self) -> int:
        """Samples per component after resampling."""
        return int(round(self.window_length_s * self.target_rate_hz))

    @property
    def min_sampling_rate_hz(self) -> float:
        """Lowest raw sampling rate whose band covers the pass band: the band-pass's upper
        corner ``freqmax_hz`` must lie below 95 % of the Nyquist frequency."""
        return 2.0 * self.freqmax_hz / 0.95

    @property
    def spectrogram_shape(self) -> tuple[int, int, int]:
        n_freq = self.stft_window_samples // 2 + 1
        n_time = 1 + (self.n_samples - self.stft_window_samples) // self.stft_hop_samples
        return (3, n_freq, n_time)

    @property
    def waveform_shape(self) -> tuple[int, int]:
        return (3, self.n_samples)

    def model_differences(self, other: "PreprocessConfig") -> list[tuple[str, Any, Any]]:
        """``(field, mine, theirs)`` for each field of :data:`MODEL_FIELDS` that differs
        (empty: both make the same model input from the same window)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [(k, mine[k], theirs[k]) for k in MODEL_FIELDS if mine[k] != theirs[k]]


#: The fields of :class:`PreprocessConfig` that define the model input; the others say
#: how raw data is read (channels, picks, response) and may differ between the data a
#: bundle was trained on and the data it classifies.
MODEL_FIELDS: tuple[str, ...] = (
    "window_reference", "window_start_s", "window_length_s", "padding_s", "taper_fraction", "freqmin_hz",
    "freqmax_hz", "filter_corners", "target_rate_hz", "stft_window_samples", "stft_hop_samples", "components",
)


@dataclass(frozen=True)
class SplitConfig(ConfigBase):
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
class PipelineConfig(ConfigBase):
    """Execution settings of the preprocessing job (they do not change its output)."""

    events_per_shard: int = 32
    concurrency: int | None = None

    def __post_init__(self) -> None:
        if self.events_per_shard < 1:
            raise ConfigError("events_per_shard must be >= 1")


# ------------------------------------------------------------ command-line options


def add_raw_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Options for how a network's raw data is read (channels, picks, response): for
    ``preprocess``, and for ``reprocess`` where they override the bundle's."""
    d = PreprocessConfig()
    group = parser.add_argument_group("reading the raw data")
    group.add_argument("--channel-priority",
                       help="SEED band+instrument codes to use, best first; per station the first with a vertical "
                            f"trace is read (default: {','.join(d.channel_priority)}; add HN for strong motion)")
    group.add_argument("--pick-source", choices=["catalog_or_predicted", "catalog", "predicted"],
                       help="P arrival from the catalog's pick, else predicted from the origin; catalog picks only; "
                            f"or always predicted (default: {d.pick_source})")
    group.add_argument("--travel-time-model",
                       help="1-D model for predicted P arrivals: a TauP model name (iasp91, ak135, ...) or a .tvel/.nd "
                            f"file (default: {d.travel_time_model})")
    group.add_argument("--response-removal", choices=["full", "sensitivity"],
                       help="remove the full instrument response (poles, zeros, gain stages) or divide by the overall "
                            f"sensitivity (default: {d.response_removal})")
    group.add_argument("--water-level", type=float, help=f"water level of the response removal, dB (default: {d.water_level_db})")
    group.add_argument("--allow-missing-response", action="store_true", default=None,
                       help="use channels without any response in counts instead of rejecting them (no_response)")


def raw_data_from_args(args: argparse.Namespace) -> dict:
    """The :class:`PreprocessConfig` raw-data fields set by
    :func:`add_raw_data_arguments`."""
    values = {
        "channel_priority": tuple(c.strip() for c in args.channel_priority.split(",") if c.strip()) if args.channel_priority else None,
        "pick_source": args.pick_source, "travel_time_model": args.travel_time_model,
        "response_removal": args.response_removal, "water_level_db": args.water_level,
        "allow_missing_response": args.allow_missing_response,
    }
    return {k: v for k, v in values.items() if v is not None}



def with_raw_data(config: PreprocessConfig, values: dict[str, Any]) -> PreprocessConfig:
    """``config`` with raw-data fields replaced (e.g. a bundle's config for another
    network's data); ``ConfigError`` for a field that would change the model input."""
    model = sorted(set(values) & set(MODEL_FIELDS))
    if model:
        raise ConfigError(f"{model} define the model input and cannot be changed for a trained bundle")
    return PreprocessConfig.from_dict({**config.to_dict(), **values})


__all__ = ["COMPONENTS", "MODEL_FIELDS", "add_raw_data_arguments", "raw_data_from_args", "with_raw_data", "ConfigError", "PreprocessConfig", "fingerprint_of", "SplitConfig", "PipelineConfig", "field"]
