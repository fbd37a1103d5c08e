"""Parameter dataclasses of a synthetic region (the values are in :mod:`.regions`).

Every number that shapes the synthetic data lives here, in frozen dataclasses, so the
physics code (:mod:`raydisc.synthetic.physics`) and the sampler
(:mod:`raydisc.synthetic.events`) hold no magic constants. The three regions differ
as real networks do: crust and attenuation, station count and aperture, sampling rate,
instrument, noise, magnitude ranges, blasting practice and class balance.

How each network records and reports (component sets, sampling rates, picks, metadata
defects) is its :class:`~raydisc.synthetic.recording.RecordingSpec`.

Units are in the field names or docstrings: km, km/s, g/cm^3, Hz, s, MPa, m/s/sqrt(Hz)
(noise amplitude spectral densities of ground velocity), V/(m/s), counts/V.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .instruments import InstrumentSpec
from .recording import RecordingSpec


@dataclass(frozen=True)
class CrustModel:
    """1-D layered crust: layer ``i`` spans ``tops_km[i]`` down to ``tops_km[i+1]``
    (the last one is a half-space).

    Attributes are tuples of equal length; ``tops_km[0]`` must be 0.
    """

    tops_km: tuple[float, ...]
    vp_km_s: tuple[float, ...]
    vs_km_s: tuple[float, ...]
    density_g_cm3: tuple[float, ...]
    #: Depth the straight "diving" ray reaches per km of epicentral distance. A
    #: turning-ray heuristic: at larger distances the first arrival samples deeper,
    #: faster layers (Pg/Sg-like), so apparent velocity grows with distance.
    turning_depth_per_km: float = 0.2

    def __post_init__(self) -> None:
        n = len(self.tops_km)
        if not (n == len(self.vp_km_s) == len(self.vs_km_s) == len(self.density_g_cm3)):
            raise ValueError("CrustModel: all layer tuples must have the same length")
        if self.tops_km[0] != 0 or any(b <= a for a, b in zip(self.tops_km, self.tops_km[1:])):
            raise ValueError("CrustModel: tops_km must start at 0 and increase")


@dataclass(frozen=True)
class AttenuationSpec:
    """Anelastic attenuation ``Q(f) = q0 * (f / 1 Hz) ** eta`` for P and S, plus the
    near-site high-frequency decay ``exp(-pi * kappa * f)``."""

    qp0: float
    qs0: float
    eta: float
    kappa_s: float
    #: Distance (km) beyond which body-wave spreading turns from 1/R to 1/sqrt(R)
    #: (trapped crustal phases, Lg-like).
    spreading_crossover_km: float = 80.0
    #: Log-normal sigma of the path attenuation t* = t/Q of each source-station path
    #: (lateral heterogeneity), drawn per event, station and phase.
    path_q_sigma: float = 0.4


@dataclass(frozen=True)
class NoiseSpec:
    """Ambient ground-velocity noise: amplitude spectral density (m/s/sqrt(Hz)) as the
    root-sum-square of three parts.

    * secondary microseism: log-normal bump of peak ``microseism_asd`` at
      ``microseism_hz`` (natural-log width ``microseism_width``), varying from event to
      event (storms) by a log-normal factor of sigma ``microseism_event_sigma``;
    * background: ``background_asd * (f / 1 Hz) ** background_slope``;
    * cultural (traffic, industry): rises above ``cultural_corner_hz`` to a plateau of
      ``cultural_asd_day`` on weekday working hours, ``cultural_night_factor`` of that at
      night and ``cultural_weekend_factor`` on weekends.

    Everything is rolled off above ``rolloff_hz``. Each station has a fixed site factor
    (log-normal, sigma ``station_sigma``) multiplying the whole spectrum.
    """

    microseism_asd: float
    microseism_hz: float
    microseism_width: float
    microseism_event_sigma: float
    background_asd: float
    background_slope: float
    cultural_asd_day: float
    cultural_corner_hz: float
    cultural_night_factor: float
    cultural_weekend_factor: float
    rolloff_hz: float
    station_sigma: float
    #: Local hours (start, end) of the daytime cultural noise plateau.
    day_hours: tuple[float, float] = (6.0, 20.0)


@dataclass(frozen=True)
class NetworkSpec:
    """Station geometry: ``n_stations`` placed at random (fixed per seed) in an annulus
    around the region centre, at least ``min_spacing_km`` apart."""

    code: str  # 2-letter FDSN network code
    station_prefix: str
    n_stations: int
    min_radius_km: float
    max_radius_km: float
    min_spacing_km: float
    elevation_m: tuple[float, float]
    #: Log-normal sigma of a fixed per-station amplification of all seismic phases
    #: (site geology), separate from the noise site factor.
    site_amp_sigma: float = 0.3
    #: Log-normal sigma of each station's kappa around the region's value.
    site_kappa_sigma: float = 0.6


@dataclass(frozen=True)
class QuarrySite:
    """A working quarry: position relative to the region centre and its usual delay."""

    name: str
    east_km: float
    north_km: float
    #: Nominal hole-to-hole delay (ms) of this quarry's firing plans.
    hole_delay_ms: float


@dataclass(frozen=True)
class BlastingSpec:
    """Blasting practice: where, when, how big and how the shots are sequenced.

    Ripple-fired blasts: the holes are split into rows; hole ``k`` of row ``r`` fires at
    ``k * hole_delay + r * row_delay_ms`` with Gaussian timing scatter ``jitter_ms``
    (pyrotechnic caps scatter more than electronic detonators). ``hole_delay`` is the
    quarry's nominal delay varied by ``delay_spread`` from blast to blast.
    """

    quarries: tuple[QuarrySite, ...]
    location_sigma_km: float
    depth_km: tuple[float, float]
    working_hours: tuple[float, float]  # local time, weekdays only
    magnitude_mean: float
    magnitude_sigma: float
    magnitude_range: tuple[float, float]
    holes: tuple[int, int]  # log-uniform range of the number of holes
    rows: tuple[int, int]
    row_delay_ms: float
    delay_spread: float  # relative spread of the hole delay between blasts of a quarry
    jitter_ms: float
    #: Log-normal sigma of the charge (and coupling) of individual holes.
    hole_charge_sigma: float = 0.4
    #: ML = charge_ml_offset + charge_ml_slope * log10(total charge in tonnes).
    charge_ml_offset: float = 1.3
    charge_ml_slope: float = 0.75
    #: Local magnitudes are measured at short periods: a blast's moment is scaled so that
    #: its mean source spectrum over this band equals that of a point source of moment
    #: M0(ML). Ripple firing adds up coherently only below ~1/duration, so blasts end
    #: up richer at low frequencies than earthquakes of the same ML.
    magnitude_band_hz: tuple[float, float] = (2.0, 6.0)
    #: Corner frequency (Hz) of a single 100 kg charge; scales as charge**(-1/3).
    shot_corner_hz_100kg: float = 45.0
    shot_corner_sigma: float = 0.3  # log-normal blast-to-blast scatter (rock, coupling)
    #: S excitation relative to P (in moment units, before the 1/(rho v^3) factor):
    #: ``s_high + (s_low - s_high) / (1 + (f / s_transition_hz)**2)``: conversions and
    #: Rg-to-S scattering feed low-frequency S; high-frequency S stays weak.
    s_low: float = 0.6
    s_high: float = 0.22
    s_transition_hz: float = 3.0
    s_sigma: float = 0.6  # log-normal event-to-event scatter of the S factor


@dataclass(frozen=True)
class SeismicitySpec:
    """Natural earthquakes: truncated Gutenberg-Richter magnitudes, depths and sources."""

    b_value: float
    magnitude_range: tuple[float, float]
    epicentre_radius_km: float
    depth_km: tuple[float, float]
    depth_mode_km: float  # most likely depth (triangular distribution)
    stress_drop_mpa: float  # median Brune stress drop
    stress_drop_sigma: float  # natural-log sigma
    #: Share of the mean-square radiation pattern that is isotropised by scattering,
    #: so nodal planes do not give zero amplitudes at high frequency.
    radiation_isotropy: float = 0.15
    #: fc(P) / fc(S) (Madariaga 1976: about 1.5).
    p_corner_ratio: float = 1.5
    #: Rg excitation of a double couple relative to an isotropic source of equal moment.
    rg_radiation: float = 0.5


@dataclass(frozen=True)
class WaveSpec:
    """Path and coda effects shared by both source types."""

    path_sigma: float  # log-normal per-station, per-phase amplitude scatter
    p_coda_decay_s: float
    s_coda_decay_s: float
    coda_distance_ref_km: float  # coda decay times grow as (1 + distance / this)
    p_coda_energy: float  # coda energy / direct-wave energy
    s_coda_energy: float
    coda_rise_s: float
    #: Rg: group velocity falls from ``rg_velocity_km_s[0]`` at ``rg_band_hz[0]`` to
    #: ``rg_velocity_km_s[1]`` at ``rg_band_hz[1]`` (normal dispersion).
    rg_band_hz: tuple[float, float] = (0.5, 3.0)
    rg_velocity_km_s: tuple[float, float] = (3.0, 2.0)
    rg_peak_hz: float = 1.2
    rg_width: float = 0.6  # natural-log half-width of the Rg excitation band
    #: Rg spectral level relative to P from the same (surface, isotropic) source at
    #: ``rg_reference_km``.
    rg_to_p: float = 30.0
    rg_reference_km: float = 10.0
    rg_q: float = 35.0
    #: Rg excitation decays with source depth h as exp(-rg_depth_decay * 2 pi f h / c).
    rg_depth_decay: float = 1.0
    rg_horizontal_ratio: float = 0.7  # H/V of the retrograde ellipse
    rg_coda_decay_s: float = 2.5
    rg_coda_energy: float = 0.6
    #: Relative coda amplitude on (Z, N, E): P coda is strongest on the vertical,
    #: S coda on the horizontals; normalised to unit sum of squares when used.
    p_coda_weights: tuple[float, float, float] = (1.0, 0.6, 0.6)
    s_coda_weights: tuple[float, float, float] = (0.6, 1.0, 1.0)
    rg_coda_weights: tuple[float, float, float] = (1.0, 0.8, 0.8)
    #: Receiver free-surface amplification of body waves.
    free_surface: float = 2.0
    #: Pick errors (Gaussian sigma, s).
    p_pick_sigma_s: float = 0.06
    s_pick_sigma_s: float = 0.15


@dataclass(frozen=True)
class CatalogSpec:
    """How the catalog departs from the truth."""

    location_sigma_km: float
    depth_sigma_km: float
    magnitude_sigma: float
    label_noise_rate: float = 0.01
    start: str = "2021-01-01T00:00:00"
    duration_days: int = 730


#: QuakeML event types of surface events (mass movements) that the generator can draw.
SURFACE_EVENT_TYPES: tuple[str, ...] = ("landslide", "rockslide", "snow avalanche")


@dataclass(frozen=True)
class SlopeSite:
    """A steep slope that sheds mass movements: position relative to the region centre (km)."""

    name: str
    east_km: float
    north_km: float


@dataclass(frozen=True)
class SurfaceSpec:
    """Surface events: landslides, rockslides and snow avalanches on steep slopes.

    A mass movement is a long, emergent surface source (depth 0) without a clear P or
    S onset. Its source time function is random (Gaussian) under an envelope that rises
    as ``sin^2`` over ``rise_s`` (onset to peak) and then decays exponentially to
    ``duration_level`` of the peak at ``duration_s`` after the onset. The source spectrum
    is a log-normal band of centre ``peak_hz`` (natural-log half-width ``band_width``),
    so the energy lies mostly in 1-5 Hz, and is scaled like the blasts': its mean level
    over ``magnitude_band_hz`` equals that of a point source of moment M0(ML), i.e. the
    magnitude is energy-equivalent (a long source of a given ML has a lower peak
    amplitude than an earthquake of that ML). A single-force-like radiation sends most
    energy into Rg (surface waves, the region's Rg dispersion and Q), less into S and
    little into P: ``*_radiation`` are the levels relative to an isotropic point source
    of equal moment (P and S) or to the region's Rg excitation of one (Rg).

    Units: km, s, Hz; ranges ``(lo, hi)``; ``rise_s`` and ``duration_s`` are drawn
    log-uniformly, ``peak_hz`` uniformly, ML from a normal truncated to
    ``magnitude_range``. Snow avalanches only occur in ``snow_months`` (1 = January).
    """

    event_types: tuple[str, ...] = ("landslide",)
    sites: tuple[SlopeSite, ...] = ()
    location_sigma_km: float = 0.5
    magnitude_mean: float = 1.3
    magnitude_sigma: float = 0.35
    magnitude_range: tuple[float, float] = (0.6, 2.4)
    rise_s: tuple[float, float] = (3.0, 15.0)
    duration_s: tuple[float, float] = (20.0, 120.0)
    duration_level: float = 0.05
    peak_hz: tuple[float, float] = (1.5, 3.5)
    band_width: float = 0.45
    magnitude_band_hz: tuple[float, float] = (2.0, 6.0)
    p_radiation: float = 0.1
    s_radiation: float = 0.5
    rg_radiation: float = 1.0
    snow_months: tuple[int, ...] = (12, 1, 2, 3, 4)

    def __post_init__(self) -> None:
        unknown = [t for t in self.event_types if t not in SURFACE_EVENT_TYPES]
        if not self.event_types or unknown:
            raise ValueError(f"SurfaceSpec.event_types {self.event_types!r}: each must be one of {SURFACE_EVENT_TYPES}")
        for name in ("magnitude_range", "rise_s", "duration_s", "peak_hz", "magnitude_band_hz"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"SurfaceSpec.{name} {(lo, hi)!r} must be an increasing range >= 0")
        if self.rise_s[0] <= 0 or 2 * self.rise_s[0] > self.duration_s[0]:
            raise ValueError("SurfaceSpec: rise_s must be > 0 and at most half of the shortest duration_s")
        if not 0 < self.duration_level < 1:
            raise ValueError(f"SurfaceSpec.duration_level must be in (0, 1), got {self.duration_level}")


@dataclass(frozen=True)
class RegionSpec:
    """Everything that defines one synthetic region.

    ``sampling_rate_hz`` is the rate the waveforms are synthesised at, and the rate of
    every station unless ``recording.sampling_rates_hz`` gives station rates.
    """

    name: str
    latitude: float  # region centre, degrees
    longitude: float
    utc_offset_h: float  # local standard time = UTC + offset
    sampling_rate_hz: float
    blast_fraction: float
    crust: CrustModel
    attenuation: AttenuationSpec
    instrument: InstrumentSpec
    noise: NoiseSpec
    network: NetworkSpec
    seismicity: SeismicitySpec
    blasting: BlastingSpec
    waves: WaveSpec
    catalog: CatalogSpec
    #: Waveforms span origin - pre_origin_s .. origin + post_origin_s, extended so
    #: that P - p_window_before_s .. P + p_window_after_s fits at every station.
    pre_origin_s: float = 30.0
    post_origin_s: float = 150.0
    p_window_before_s: float = 10.0
    p_window_after_s: float = 80.0
    #: How the network records and reports; the default is complete 3-component data.
    recording: RecordingSpec = field(default_factory=RecordingSpec)
    #: Mass movements (drawn only when a generation asks for surface events).
    surface: SurfaceSpec = field(default_factory=SurfaceSpec)

    @property
    def channel_codes(self) -> tuple[str, str, str]:
        """Nominal Z, N, E channel codes (SEED band + 'H' high-gain seismometer +
        orientation) at ``sampling_rate_hz``: the codes of every station under the
        default :class:`RecordingSpec`; with recording options the per-station codes
        come from :func:`raydisc.synthetic.stations.build_plan`."""
        return tuple(f"{self.instrument.band_code}H{c}" for c in "ZNE")  # type: ignore[return-value]
