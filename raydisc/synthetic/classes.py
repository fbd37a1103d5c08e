"""Noise windows and surface events: which events of a region they are, and their draws.

Off by default: with :class:`ClassMix` ``()`` every event is an earthquake or a quarry
blast and the archive is byte for byte what it was without this module. With shares
``noise_fraction`` and ``surface_fraction`` (0 .. 0.5 each), event ``index`` becomes a
noise window or a surface event by its own low-discrepancy sequence (step
``sqrt(2) - 1``, independent of the golden-ratio class sequence of
:func:`~raydisc.synthetic.events.true_type_of`), so every prefix of the archive holds
close to the requested shares, and the earthquakes and blasts at the other indices are
exactly those of the default archive. Every draw of these events comes from streams of
their own (:data:`~raydisc.synthetic.events.STREAM_EXTRA_EVENT` and the like), never
from the earthquakes' and blasts' streams.

Catalog conventions:

* **Noise window** -- QuakeML event type ``not existing``: an origin (time uniform over
  the catalog period, location uniform in the region's epicentre disc, depth 0) with no
  magnitude and no picks; its recordings hold only the region's ambient noise model
  (station site factors, microseism storms, day/night cultural noise), no signal.
  Preprocessing cuts its windows at the P arrival predicted from that origin, as for
  any event without picks.
* **Surface event** -- ``landslide``, ``rockslide`` or ``snow avalanche`` (the region's
  :attr:`~raydisc.synthetic.specs.RegionSpec.surface` says which occur and where):
  origin at the onset, at a steep-slope site, depth 0, an ML magnitude, no picks
  (emergent signals without a clear P or S onset); waveforms of :mod:`.surface`.

Neither gets label noise: the catalog type is the true type.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from obspy import UTCDateTime

from .events import (NOT_EXISTING, STREAM_EXTRA_CLASSES, STREAM_EXTRA_EVENT, STREAM_EXTRA_WAVEFORM, SyntheticEvent,
                     keyed_rng, sample_event, waveform_rng)
from .specs import SURFACE_EVENT_TYPES, RegionSpec

#: Largest share of a region's events each new kind may take.
MAX_FRACTION = 0.5
_SILVER = math.sqrt(2.0) - 1.0
SNOW_AVALANCHE = "snow avalanche"
#: Kind of event drawn at an index: ``NOISE``, ``SURFACE`` or, for earthquakes and
#: blasts, None.
NOISE, SURFACE = "noise", "surface"


@dataclass(frozen=True)
class ClassMix:
    """Shares of a region's events that are noise windows and surface events (0 .. 0.5
    each); the rest are earthquakes and blasts. Validated on construction."""

    noise_fraction: float = 0.0
    surface_fraction: float = 0.0

    def __post_init__(self) -> None:
        for name in ("noise_fraction", "surface_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= MAX_FRACTION:
                raise ValueError(f"{name} must be a number in [0, {MAX_FRACTION}], got {value!r}")

    @property
    def enabled(self) -> bool:
        return self.noise_fraction > 0 or self.surface_fraction > 0

    def event_types(self, spec: RegionSpec) -> tuple[str, ...]:
        """Catalog event types these shares can add to region ``spec``."""
        return ((NOT_EXISTING,) if self.noise_fraction > 0 else ()) + (
            spec.surface.event_types if self.surface_fraction > 0 else ())


#: The shares of ``raydisc generate --four-class``: a fifth each of noise windows and
#: surface events, so every class of a four-class scheme is well represented.
FOUR_CLASS_MIX = ClassMix(noise_fraction=0.2, surface_fraction=0.2)


def kind_of(spec: RegionSpec, seed: int, index: int, mix: ClassMix) -> str | None:
    """``NOISE``, ``SURFACE`` or None (earthquake or blast) for event ``index``."""
    if not mix.enabled:
        return None
    offset = keyed_rng(seed, spec.name, STREAM_EXTRA_CLASSES).uniform()
    x = (offset + index * _SILVER) % 1.0
    if x < mix.noise_fraction:
        return NOISE
    return SURFACE if x < mix.noise_fraction + mix.surface_fraction else None


def _any_time(rng: np.random.Generator, spec: RegionSpec) -> UTCDateTime:
    """Uniform over the catalog period (local calendar, returned in UTC)."""
    duration_s = spec.catalog.duration_days * 86400.0
    return UTCDateTime(spec.catalog.start) - spec.utc_offset_h * 3600.0 + rng.uniform(0.0, duration_s)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def sample_noise_window(spec: RegionSpec, seed: int, index: int) -> SyntheticEvent:
    """Noise window ``index`` of ``spec`` (see the module docstring)."""
    rng = keyed_rng(seed, spec.name, STREAM_EXTRA_EVENT, index)
    r = spec.seismicity.epicentre_radius_km * math.sqrt(rng.uniform())
    theta = rng.uniform(0.0, 2.0 * math.pi)
    east, north = r * math.sin(theta), r * math.cos(theta)
    none = np.zeros(spec.network.n_stations)
    return SyntheticEvent(
        region=spec.name, index=index, true_type=NOT_EXISTING, catalog_type=NOT_EXISTING,
        origin_time=_any_time(rng, spec), east_km=east, north_km=north, depth_km=0.0, magnitude=float("nan"),
        quarry="", catalog_east_km=east, catalog_north_km=north, catalog_depth_km=0.0,
        catalog_magnitude=float("nan"), p_pick_error_s=none, s_pick_error_s=none,
    )


def sample_surface_event(spec: RegionSpec, seed: int, index: int) -> SyntheticEvent:
    """Surface event ``index`` of ``spec``: type, slope site, magnitude, envelope and band."""
    s = spec.surface
    if not s.sites:
        raise ValueError(f"region {spec.name}: surface events need slope sites (RegionSpec.surface.sites is empty)")
    rng = keyed_rng(seed, spec.name, STREAM_EXTRA_EVENT, index)
    event_type = s.event_types[int(rng.integers(0, len(s.event_types)))]
    site = s.sites[int(rng.integers(0, len(s.sites)))]
    while True:
        magnitude = rng.normal(s.magnitude_mean, s.magnitude_sigma)
        if s.magnitude_range[0] <= magnitude <= s.magnitude_range[1]:
            break
    east = site.east_km + rng.normal(0.0, s.location_sigma_km)
    north = site.north_km + rng.normal(0.0, s.location_sigma_km)
    origin = _any_time(rng, spec)
    while event_type == SNOW_AVALANCHE and (origin + spec.utc_offset_h * 3600.0).month not in s.snow_months:
        origin = _any_time(rng, spec)
    duration = _log_uniform(rng, *s.duration_s)
    rise = _log_uniform(rng, s.rise_s[0], max(s.rise_s[0], min(s.rise_s[1], duration / 2.0)))
    cat = spec.catalog
    none = np.zeros(spec.network.n_stations)
    return SyntheticEvent(
        region=spec.name, index=index, true_type=event_type, catalog_type=event_type, origin_time=origin,
        east_km=float(east), north_km=float(north), depth_km=0.0, magnitude=round(float(magnitude), 2), quarry="",
        catalog_east_km=float(east + rng.normal(0.0, cat.location_sigma_km)),
        catalog_north_km=float(north + rng.normal(0.0, cat.location_sigma_km)), catalog_depth_km=0.0,
        catalog_magnitude=round(float(magnitude + rng.normal(0.0, cat.magnitude_sigma)), 1),
        p_pick_error_s=none, s_pick_error_s=none, slope=site.name, rise_s=round(rise, 2),
        duration_s=round(duration, 1), peak_hz=round(float(rng.uniform(*s.peak_hz)), 2),
    )


def sample_any(spec: RegionSpec, seed: int, index: int, mix: ClassMix) -> SyntheticEvent:
    """Event ``index`` of ``spec`` under ``mix``: a noise window, a surface event, or the
    earthquake or blast of :func:`~raydisc.synthetic.events.sample_event`."""
    kind = kind_of(spec, seed, index, mix)
    if kind == NOISE:
        return sample_noise_window(spec, seed, index)
    if kind == SURFACE:
        return sample_surface_event(spec, seed, index)
    return sample_event(spec, seed, index)


def event_waveform_rng(spec: RegionSpec, seed: int, event: SyntheticEvent) -> np.random.Generator:
    """The waveform stream of ``event``: :func:`~raydisc.synthetic.events.waveform_rng`
    for earthquakes and blasts, a stream of their own for the other types."""
    if event.is_noise or event.is_surface:
        return keyed_rng(seed, spec.name, STREAM_EXTRA_WAVEFORM, event.index)
    return waveform_rng(spec, seed, event.index)


__all__ = ["FOUR_CLASS_MIX", "MAX_FRACTION", "NOISE", "NOT_EXISTING", "SURFACE", "SURFACE_EVENT_TYPES", "ClassMix",
           "event_waveform_rng", "kind_of", "sample_any", "sample_noise_window", "sample_surface_event"]
