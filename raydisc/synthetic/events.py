"""Sampling of networks and events (no waveforms).

Randomness is keyed, never sequential: the network comes from ``(seed, region)``, each
event from ``(seed, region, index)``, so event 17 is the same whether 20 or 20 000
events are generated, and any event can be regenerated alone.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
from obspy import UTCDateTime

from ..data.layout import RESOURCE_ID_PREFIX
from .physics import KM_PER_DEGREE, brune_corner_hz, moment_from_magnitude
from .specs import SURFACE_EVENT_TYPES, RegionSpec

EARTHQUAKE = "earthquake"
QUARRY_BLAST = "quarry blast"
#: Catalog event type of a noise window (see :mod:`raydisc.synthetic.classes`).
NOT_EXISTING = "not existing"

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
#: Within this many leading indices each region has at least one event of each class.
CLASS_ANCHOR_SPAN = 6

# Stream tags keep the keyed random streams of one (seed, region) apart.
_STREAM_EVENT, _STREAM_NETWORK, _STREAM_CLASSES, _STREAM_WAVEFORM, _STREAM_RECORDING = 1, 2, 3, 4, 5
#: Tags of the streams of noise windows and surface events (:mod:`.classes`): which
#: indices they take, their draws and their waveforms; apart from the streams above, so
#: archives without them are unchanged.
STREAM_EXTRA_CLASSES, STREAM_EXTRA_EVENT, STREAM_EXTRA_WAVEFORM = 6, 7, 8


def _entropy(seed: int, region: str, stream: int, *extra: int) -> list[int]:
    return [int(seed), zlib.crc32(region.encode()), stream, *map(int, extra)]


def keyed_rng(seed: int, region: str, stream: int, *extra: int) -> np.random.Generator:
    """Generator for one named random stream of a region (and event index)."""
    return np.random.default_rng(np.random.SeedSequence(_entropy(seed, region, stream, *extra)))


def event_id(region: str, index: int) -> str:
    return f"{region}-{index:06d}"


def resource_id(region: str, index: int) -> str:
    return RESOURCE_ID_PREFIX + event_id(region, index)


def local_to_geographic(spec: RegionSpec, east_km: np.ndarray, north_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(latitude, longitude) of local east/north offsets from the region centre
    (equirectangular projection, adequate over a few hundred km)."""
    lat = spec.latitude + np.asarray(north_km) / KM_PER_DEGREE
    lon = spec.longitude + np.asarray(east_km) / (KM_PER_DEGREE * math.cos(math.radians(spec.latitude)))
    return lat, lon


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class Network:
    """Stations of one region; arrays have shape ``(n_stations,)``."""

    code: str
    station_codes: tuple[str, ...]
    east_km: np.ndarray
    north_km: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray
    elevation_m: np.ndarray
    noise_factor: np.ndarray  # multiplies the ambient noise spectrum
    site_amplification: np.ndarray  # multiplies every seismic phase
    kappa_s: np.ndarray  # near-site high-frequency decay (s)

    @property
    def n_stations(self) -> int:
        return len(self.station_codes)


def build_network(spec: RegionSpec, seed: int) -> Network:
    """Place the region's stations (fixed for a given ``seed``)."""
    net = spec.network
    rng = keyed_rng(seed, spec.name, _STREAM_NETWORK)
    points: list[tuple[float, float]] = []
    spacing = net.min_spacing_km
    attempts = 0
    while len(points) < net.n_stations:
        # Area-uniform in the annulus.
        r = math.sqrt(rng.uniform(net.min_radius_km**2, net.max_radius_km**2))
        theta = rng.uniform(0.0, 2.0 * math.pi)
        x, y = r * math.sin(theta), r * math.cos(theta)
        if all(math.hypot(x - px, y - py) >= spacing for px, py in points):
            points.append((x, y))
        attempts += 1
        if attempts % 1000 == 0:  # geometry too tight: relax rather than loop forever
            spacing *= 0.9
    east = np.array([p[0] for p in points])
    north = np.array([p[1] for p in points])
    lat, lon = local_to_geographic(spec, east, north)
    n = net.n_stations
    return Network(
        code=net.code,
        station_codes=tuple(f"{net.station_prefix}{i + 1:02d}" for i in range(n)),
        east_km=east,
        north_km=north,
        latitude=lat,
        longitude=lon,
        elevation_m=rng.uniform(*net.elevation_m, size=n).round(0),
        noise_factor=rng.lognormal(0.0, spec.noise.station_sigma, size=n),
        site_amplification=rng.lognormal(0.0, net.site_amp_sigma, size=n),
        kappa_s=spec.attenuation.kappa_s * rng.lognormal(0.0, net.site_kappa_sigma, size=n),
    )


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class SyntheticEvent:
    """One sampled event: the truth, what the catalog says, and its source description.

    Station arrays (pick errors) have shape ``(n_stations,)``. Locations are local
    east/north km from the region centre; depths km below the surface.
    """

    region: str
    index: int
    true_type: str
    catalog_type: str
    origin_time: UTCDateTime
    east_km: float
    north_km: float
    depth_km: float
    magnitude: float  # true ML (= Mw here)
    quarry: str
    catalog_east_km: float
    catalog_north_km: float
    catalog_depth_km: float
    catalog_magnitude: float
    p_pick_error_s: np.ndarray
    s_pick_error_s: np.ndarray
    # Earthquakes: focal mechanism (deg) and Brune stress drop (MPa).
    strike: float = 0.0
    dip: float = 0.0
    rake: float = 0.0
    stress_drop_mpa: float = 0.0
    # Blasts: shot times (s after the first shot), charge (t), corner frequency of one
    # shot (Hz) and S excitation scatter.
    shot_times_s: np.ndarray = field(default_factory=lambda: np.zeros(1))
    shot_weights: np.ndarray = field(default_factory=lambda: np.ones(1))
    charge_t: float = 0.0
    shot_corner_hz: float = 0.0
    s_factor_scale: float = 1.0
    # Surface events: slope site, envelope rise (onset to peak, s) and duration (s), and
    # centre of the source band (Hz); see :class:`~raydisc.synthetic.specs.SurfaceSpec`.
    slope: str = ""
    rise_s: float = 0.0
    duration_s: float = 0.0
    peak_hz: float = 0.0

    @property
    def event_id(self) -> str:
        return event_id(self.region, self.index)

    @property
    def is_blast(self) -> bool:
        return self.true_type == QUARRY_BLAST

    @property
    def is_noise(self) -> bool:
        """A noise window: an origin without a source (magnitude NaN, no picks)."""
        return self.true_type == NOT_EXISTING

    @property
    def is_surface(self) -> bool:
        return self.true_type in SURFACE_EVENT_TYPES

    @property
    def has_picks(self) -> bool:
        """Whether the catalog gives P and S picks: not for noise windows (nothing to
        pick) nor surface events (emergent, no clear P or S onset)."""
        return not (self.is_noise or self.is_surface)

    @property
    def label_flipped(self) -> bool:
        return self.true_type != self.catalog_type

    @property
    def moment_nm(self) -> float:
        return float(moment_from_magnitude(self.magnitude))

    def s_corner_hz(self, vs_km_s: float) -> float:
        return brune_corner_hz(self.moment_nm, self.stress_drop_mpa, vs_km_s)


def _class_offset(spec: RegionSpec, seed: int) -> float:
    """Phase of the region's class sequence, chosen so one anchor index inside the
    first ``CLASS_ANCHOR_SPAN`` events is a blast."""
    rng = keyed_rng(seed, spec.name, _STREAM_CLASSES)
    anchor = int(rng.integers(0, CLASS_ANCHOR_SPAN))
    return (rng.uniform() * spec.blast_fraction - anchor * _GOLDEN) % 1.0


def true_type_of(spec: RegionSpec, seed: int, index: int) -> str:
    """Source type of event ``index``.

    Classes follow a golden-ratio (Weyl) low-discrepancy sequence rather than
    independent coin flips: every prefix of the archive has close to the configured
    blast fraction, so even tiny test archives hold both classes (one anchored blast and,
    by the three-gap theorem, at least one earthquake for blast fractions <= 0.76 among
    the first six events), while each event's class still depends only on its index.
    """
    x = (_class_offset(spec, seed) + index * _GOLDEN) % 1.0
    return QUARRY_BLAST if x < spec.blast_fraction else EARTHQUAKE


def _truncated_normal(rng: np.random.Generator, mean: float, sigma: float, lo: float, hi: float) -> float:
    while True:
        x = rng.normal(mean, sigma)
        if lo <= x <= hi:
            return float(x)


def _gutenberg_richter(rng: np.random.Generator, b: float, lo: float, hi: float) -> float:
    """Inverse-CDF draw from a doubly truncated Gutenberg-Richter distribution."""
    u = rng.uniform()
    return float(lo - math.log10(1.0 - u * (1.0 - 10.0 ** (-b * (hi - lo)))) / b)


def _blast_time(rng: np.random.Generator, spec: RegionSpec) -> UTCDateTime:
    """Weekday, working-hours origin time (local time of the region), returned in UTC."""
    day0 = UTCDateTime(spec.catalog.start)
    while True:
        day = day0 + int(rng.integers(0, spec.catalog.duration_days)) * 86400
        if day.weekday < 5:
            break
    hour = rng.uniform(*spec.blasting.working_hours)
    return day + hour * 3600.0 - spec.utc_offset_h * 3600.0


def _shot_times(rng: np.random.Generator, spec: RegionSpec, hole_delay_ms: float) -> np.ndarray:
    """Ripple-firing sequence (s): holes in rows, nominal delays with timing scatter."""
    b = spec.blasting
    # Log-uniform: small secondary blasts are as common as large production blasts.
    holes = int(round(math.exp(rng.uniform(math.log(b.holes[0]), math.log(b.holes[1])))))
    rows = int(rng.integers(b.rows[0], b.rows[1] + 1))
    per_row = math.ceil(holes / rows)
    delay = hole_delay_ms * max(0.3, 1.0 + b.delay_spread * rng.normal())
    k = np.arange(holes)
    nominal = (k % per_row) * delay + (k // per_row) * b.row_delay_ms
    t = (nominal + rng.normal(0.0, b.jitter_ms, size=holes)) / 1000.0
    return np.sort(t - t.min())


def sample_event(spec: RegionSpec, seed: int, index: int) -> SyntheticEvent:
    """Draw event ``index`` of region ``spec`` (deterministic in ``(seed, region, index)``)."""
    rng = keyed_rng(seed, spec.name, _STREAM_EVENT, index)
    true_type = true_type_of(spec, seed, index)
    flipped = rng.uniform() < spec.catalog.label_noise_rate
    catalog_type = (EARTHQUAKE if true_type == QUARRY_BLAST else QUARRY_BLAST) if flipped else true_type
    n_sta = spec.network.n_stations
    extra: dict = {}
    if true_type == EARTHQUAKE:
        seis = spec.seismicity
        magnitude = _gutenberg_richter(rng, seis.b_value, *seis.magnitude_range)
        r = seis.epicentre_radius_km * math.sqrt(rng.uniform())
        theta = rng.uniform(0.0, 2.0 * math.pi)
        east, north = r * math.sin(theta), r * math.cos(theta)
        depth = float(rng.triangular(seis.depth_km[0], seis.depth_mode_km, seis.depth_km[1]))
        duration_s = spec.catalog.duration_days * 86400.0
        origin = UTCDateTime(spec.catalog.start) - spec.utc_offset_h * 3600.0 + rng.uniform(0.0, duration_s)
        quarry = ""
        extra = dict(
            strike=float(rng.uniform(0.0, 360.0)),
            dip=float(np.degrees(np.arccos(rng.uniform(0.0, math.cos(math.radians(15.0)))))),
            rake=float(rng.uniform(-180.0, 180.0)),
            stress_drop_mpa=float(seis.stress_drop_mpa * rng.lognormal(0.0, seis.stress_drop_sigma)),
        )
    else:
        b = spec.blasting
        site = b.quarries[int(rng.integers(0, len(b.quarries)))]
        magnitude = _truncated_normal(rng, b.magnitude_mean, b.magnitude_sigma, *b.magnitude_range)
        east = site.east_km + rng.normal(0.0, b.location_sigma_km)
        north = site.north_km + rng.normal(0.0, b.location_sigma_km)
        depth = float(rng.uniform(*b.depth_km))
        origin = _blast_time(rng, spec)
        quarry = site.name
        shots = _shot_times(rng, spec, site.hole_delay_ms)
        charge_t = float(10.0 ** ((magnitude - b.charge_ml_offset) / b.charge_ml_slope))
        # Corner frequency scales with the cube root of the charge per hole.
        per_hole_100kg = 10.0 * charge_t / len(shots)
        extra = dict(
            shot_times_s=shots,
            shot_weights=rng.lognormal(0.0, b.hole_charge_sigma, size=len(shots)),
            charge_t=charge_t,
            shot_corner_hz=float(
                b.shot_corner_hz_100kg * per_hole_100kg ** (-1.0 / 3.0) * rng.lognormal(0.0, b.shot_corner_sigma)
            ),
            s_factor_scale=float(rng.lognormal(0.0, b.s_sigma)),
        )
    cat = spec.catalog
    waves = spec.waves
    return SyntheticEvent(
        region=spec.name,
        index=index,
        true_type=true_type,
        catalog_type=catalog_type,
        origin_time=origin,
        east_km=float(east),
        north_km=float(north),
        depth_km=depth,
        magnitude=round(magnitude, 2),
        quarry=quarry,
        catalog_east_km=float(east + rng.normal(0.0, cat.location_sigma_km)),
        catalog_north_km=float(north + rng.normal(0.0, cat.location_sigma_km)),
        catalog_depth_km=float(max(0.0, depth + rng.normal(0.0, cat.depth_sigma_km))),
        catalog_magnitude=round(float(magnitude + rng.normal(0.0, cat.magnitude_sigma)), 1),
        p_pick_error_s=rng.normal(0.0, waves.p_pick_sigma_s, size=n_sta),
        s_pick_error_s=rng.normal(0.0, waves.s_pick_sigma_s, size=n_sta),
        **extra,
    )


def waveform_rng(spec: RegionSpec, seed: int, index: int) -> np.random.Generator:
    """Independent stream for the noise, coda and path scatter of event ``index``."""
    return keyed_rng(seed, spec.name, _STREAM_WAVEFORM, index)


def recording_rng(spec: RegionSpec, seed: int, *extra: int) -> np.random.Generator:
    """Stream of the recording plan (component sets, rates, azimuths, defect stations;
    ``extra`` = ``(1,)``: corrupt files), separate from the network and the events."""
    return keyed_rng(seed, spec.name, _STREAM_RECORDING, *extra)
