"""Parameters of the three synthetic regions.

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

import math
from dataclasses import dataclass, field

from .recording import CRATON_RECORDING, RecordingSpec


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
class InstrumentSpec:
    """Seismometer (poles/zeros, Laplace rad/s, input m/s) and digitizer.

    The sensor stage is normalised to ``|H(normalization_hz)| = generator_v_per_m_s``;
    the digitizer multiplies by ``digitizer_counts_per_v``. The overall sensitivity
    (counts per m/s at ``normalization_hz``) is their product.
    """

    name: str
    band_code: str  # SEED band code consistent with sampling rate and corner period
    zeros: tuple[complex, ...]
    poles: tuple[complex, ...]
    generator_v_per_m_s: float
    normalization_hz: float
    digitizer_counts_per_v: float
    #: Full scale of the 24-bit digitizer: samples are clipped to [-2**23, 2**23 - 1].
    clip_counts: int = 2**23

    @property
    def sensitivity_counts_per_m_s(self) -> float:
        return self.generator_v_per_m_s * self.digitizer_counts_per_v


def _geophone(f0_hz: float, damping: float) -> tuple[tuple[complex, ...], tuple[complex, ...]]:
    """Poles and zeros of a velocity transducer with natural frequency ``f0_hz``."""
    w0 = 2 * math.pi * f0_hz
    re, im = -damping * w0, w0 * math.sqrt(1 - damping**2)
    return (0j, 0j), (complex(re, im), complex(re, -im))


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

    @property
    def channel_codes(self) -> tuple[str, str, str]:
        """Nominal Z, N, E channel codes (SEED band + 'H' high-gain seismometer +
        orientation) at ``sampling_rate_hz``: the codes of every station under the
        default :class:`RecordingSpec`; with recording options the per-station codes
        come from :func:`raydisc.synthetic.stations.build_plan`."""
        return tuple(f"{self.instrument.band_code}H{c}" for c in "ZNE")  # type: ignore[return-value]


_GEOPHONE_1HZ = _geophone(1.0, 0.707)
_SHORT_PERIOD_2HZ = _geophone(2.0, 0.7)

#: The basin network's broadband sensor; also the second sensor of dual-sensor stations
#: in :func:`raydisc.synthetic.stations.field_test_spec`.
BROADBAND_120S = InstrumentSpec(
    name="120 s broadband (Trillium-120-like), 24-bit datalogger",
    band_code="H",  # >= 80 Hz, long period
    zeros=(0j, 0j, -90.0 + 0j, -160.7 + 0j, -3108.0 + 0j),
    poles=(
        -0.03852 + 0.03658j,
        -0.03852 - 0.03658j,
        -178.0 + 0j,
        -135.0 + 160.0j,
        -135.0 - 160.0j,
        -671.0 + 1154.0j,
        -671.0 - 1154.0j,
    ),
    generator_v_per_m_s=1201.0,
    normalization_hz=1.0,
    digitizer_counts_per_v=8.388608e5,
)
#: The craton network's sensor; also the sensor of :func:`~raydisc.synthetic.stations.field_test_spec`.
SHORT_PERIOD_2HZ = InstrumentSpec(
    name="2 Hz short-period (L-22-like) with preamplifier, 24-bit datalogger",
    band_code="E",  # at the craton's 100 Hz synthesis rate; per-station codes follow each rate
    zeros=_SHORT_PERIOD_2HZ[0],
    poles=_SHORT_PERIOD_2HZ[1],
    generator_v_per_m_s=88.0,
    normalization_hz=10.0,
    digitizer_counts_per_v=2.2e7,
)

ALPINE = RegionSpec(
    name="alpine",
    latitude=46.8,
    longitude=10.9,
    utc_offset_h=1.0,
    sampling_rate_hz=200.0,
    blast_fraction=0.60,
    crust=CrustModel(
        tops_km=(0.0, 1.5, 12.0, 25.0, 45.0),
        vp_km_s=(4.8, 5.9, 6.2, 6.7, 8.0),
        vs_km_s=(2.75, 3.4, 3.6, 3.85, 4.5),
        density_g_cm3=(2.45, 2.7, 2.8, 2.95, 3.3),
        turning_depth_per_km=0.22,
    ),
    attenuation=AttenuationSpec(qp0=180.0, qs0=120.0, eta=0.6, kappa_s=0.03),
    instrument=InstrumentSpec(
        name="1 Hz geophone (L-4C-like), 24-bit datalogger",
        band_code="E",  # >= 80 Hz, short period
        zeros=_GEOPHONE_1HZ[0],
        poles=_GEOPHONE_1HZ[1],
        generator_v_per_m_s=276.8,
        normalization_hz=10.0,
        digitizer_counts_per_v=3.6e6,
    ),
    noise=NoiseSpec(
        microseism_asd=2.0e-7,
        microseism_hz=0.2,
        microseism_width=0.45,
        microseism_event_sigma=0.5,
        background_asd=3.5e-9,
        background_slope=-0.5,
        cultural_asd_day=1.3e-8,
        cultural_corner_hz=3.0,
        cultural_night_factor=0.35,
        cultural_weekend_factor=0.6,
        rolloff_hz=45.0,
        station_sigma=0.5,
    ),
    network=NetworkSpec(
        code="AL",
        station_prefix="ALP",
        n_stations=10,
        min_radius_km=3.0,
        max_radius_km=55.0,
        min_spacing_km=9.0,
        elevation_m=(600.0, 2400.0),
    ),
    seismicity=SeismicitySpec(
        b_value=1.0,
        magnitude_range=(0.7, 3.8),
        epicentre_radius_km=45.0,
        depth_km=(1.5, 16.0),
        depth_mode_km=7.0,
        stress_drop_mpa=1.2,
        stress_drop_sigma=1.0,
    ),
    blasting=BlastingSpec(
        quarries=(
            QuarrySite("Kalkwerk Nord", east_km=-14.0, north_km=18.0, hole_delay_ms=17.0),
            QuarrySite("Steinbruch Au", east_km=22.0, north_km=6.0, hole_delay_ms=25.0),
            QuarrySite("Hartsteinwerk Tal", east_km=4.0, north_km=-21.0, hole_delay_ms=20.0),
            QuarrySite("Gipsbruch West", east_km=-30.0, north_km=-8.0, hole_delay_ms=33.0),
        ),
        location_sigma_km=0.4,
        depth_km=(0.02, 0.15),
        working_hours=(7.0, 17.0),
        magnitude_mean=1.4,
        magnitude_sigma=0.35,
        magnitude_range=(0.6, 2.6),
        holes=(2, 60),
        rows=(1, 3),
        row_delay_ms=65.0,
        delay_spread=0.1,
        jitter_ms=1.0,  # electronic detonators
    ),
    waves=WaveSpec(
        path_sigma=0.35,
        p_coda_decay_s=1.5,
        s_coda_decay_s=3.0,
        coda_distance_ref_km=40.0,
        p_coda_energy=2.0,
        s_coda_energy=4.0,
        coda_rise_s=0.3,
        rg_velocity_km_s=(2.9, 2.0),
        rg_q=30.0,
    ),
    catalog=CatalogSpec(location_sigma_km=0.8, depth_sigma_km=1.5, magnitude_sigma=0.1),
)

BASIN = RegionSpec(
    name="basin",
    latitude=39.3,
    longitude=-111.6,
    utc_offset_h=-7.0,
    sampling_rate_hz=100.0,
    blast_fraction=0.50,
    crust=CrustModel(
        tops_km=(0.0, 2.5, 10.0, 22.0, 38.0),
        vp_km_s=(3.4, 5.6, 6.1, 6.6, 7.9),
        vs_km_s=(1.9, 3.2, 3.5, 3.8, 4.45),
        density_g_cm3=(2.25, 2.6, 2.75, 2.9, 3.3),
        turning_depth_per_km=0.18,
    ),
    attenuation=AttenuationSpec(qp0=130.0, qs0=85.0, eta=0.7, kappa_s=0.045),
    instrument=BROADBAND_120S,
    noise=NoiseSpec(
        microseism_asd=6.0e-7,
        microseism_hz=0.17,
        microseism_width=0.5,
        microseism_event_sigma=0.6,
        background_asd=4.0e-9,
        background_slope=-0.5,
        cultural_asd_day=1.5e-8,
        cultural_corner_hz=2.0,
        cultural_night_factor=0.3,
        cultural_weekend_factor=0.5,
        rolloff_hz=40.0,
        station_sigma=0.6,
    ),
    network=NetworkSpec(
        code="BS",
        station_prefix="BSN",
        n_stations=9,
        min_radius_km=5.0,
        max_radius_km=110.0,
        min_spacing_km=20.0,
        elevation_m=(1300.0, 2100.0),
    ),
    seismicity=SeismicitySpec(
        b_value=0.95,
        magnitude_range=(1.3, 4.2),
        epicentre_radius_km=85.0,
        depth_km=(1.0, 20.0),
        depth_mode_km=8.0,
        stress_drop_mpa=0.8,
        stress_drop_sigma=1.0,
    ),
    blasting=BlastingSpec(
        quarries=(
            QuarrySite("Copper Pit", east_km=-35.0, north_km=20.0, hole_delay_ms=25.0),
            QuarrySite("Gravel Flats", east_km=15.0, north_km=-40.0, hole_delay_ms=42.0),
            QuarrySite("Limestone Ridge", east_km=50.0, north_km=30.0, hole_delay_ms=35.0),
            QuarrySite("Coal Bench", east_km=-10.0, north_km=-65.0, hole_delay_ms=50.0),
            QuarrySite("Basin Aggregate", east_km=5.0, north_km=8.0, hole_delay_ms=17.0),
        ),
        location_sigma_km=0.6,
        depth_km=(0.02, 0.25),
        working_hours=(8.0, 17.0),
        magnitude_mean=1.9,
        magnitude_sigma=0.4,
        magnitude_range=(1.0, 3.0),
        holes=(3, 120),
        rows=(1, 4),
        row_delay_ms=100.0,
        delay_spread=0.15,
        jitter_ms=3.0,
    ),
    waves=WaveSpec(
        path_sigma=0.4,
        p_coda_decay_s=2.0,
        s_coda_decay_s=4.0,
        coda_distance_ref_km=60.0,
        p_coda_energy=2.5,
        s_coda_energy=5.0,
        coda_rise_s=0.4,
        rg_velocity_km_s=(2.6, 1.6),
        rg_q=25.0,
        rg_to_p=40.0,
    ),
    catalog=CatalogSpec(location_sigma_km=1.5, depth_sigma_km=2.5, magnitude_sigma=0.12),
)

CRATON = RegionSpec(
    name="craton",
    latitude=62.4,
    longitude=26.1,
    utc_offset_h=2.0,
    # Synthesis rate; the stations digitise at 20-500 Hz (CRATON_RECORDING).
    sampling_rate_hz=100.0,
    blast_fraction=0.06,
    crust=CrustModel(
        tops_km=(0.0, 0.5, 12.0, 28.0, 48.0),
        vp_km_s=(5.8, 6.15, 6.45, 7.0, 8.1),
        vs_km_s=(3.35, 3.55, 3.72, 3.98, 4.55),
        density_g_cm3=(2.65, 2.7, 2.8, 3.0, 3.3),
        turning_depth_per_km=0.16,
    ),
    attenuation=AttenuationSpec(
        qp0=450.0, qs0=300.0, eta=0.45, kappa_s=0.015, spreading_crossover_km=100.0
    ),
    instrument=SHORT_PERIOD_2HZ,
    noise=NoiseSpec(
        microseism_asd=3.0e-7,
        microseism_hz=0.25,
        microseism_width=0.4,
        microseism_event_sigma=0.5,
        background_asd=1.2e-9,
        background_slope=-0.6,
        cultural_asd_day=2.5e-9,
        cultural_corner_hz=4.0,
        cultural_night_factor=0.4,
        cultural_weekend_factor=0.7,
        rolloff_hz=22.0,
        station_sigma=0.45,
    ),
    network=NetworkSpec(
        code="CR",
        station_prefix="CRT",
        # More than a 3-C network would need: field stations are lost to vertical-only
        # components, slow digitizers and missing metadata.
        n_stations=10,
        min_radius_km=20.0,
        max_radius_km=200.0,
        min_spacing_km=45.0,
        elevation_m=(80.0, 320.0),
    ),
    seismicity=SeismicitySpec(
        b_value=0.9,
        magnitude_range=(0.6, 3.8),
        epicentre_radius_km=120.0,
        depth_km=(2.0, 25.0),
        depth_mode_km=12.0,
        stress_drop_mpa=1.5,
        stress_drop_sigma=0.9,
    ),
    blasting=BlastingSpec(
        quarries=(
            QuarrySite("Kivilouhos", east_km=40.0, north_km=-25.0, hole_delay_ms=25.0),
            QuarrySite("Malmikaivos", east_km=-60.0, north_km=55.0, hole_delay_ms=50.0),
            QuarrySite("Kalkkitehdas", east_km=-15.0, north_km=-90.0, hole_delay_ms=42.0),
        ),
        location_sigma_km=0.5,
        depth_km=(0.02, 0.3),
        working_hours=(7.0, 16.0),
        magnitude_mean=1.6,
        magnitude_sigma=0.35,
        magnitude_range=(0.8, 2.8),
        holes=(2, 30),
        rows=(1, 2),
        row_delay_ms=100.0,
        delay_spread=0.1,
        jitter_ms=8.0,  # pyrotechnic caps
    ),
    waves=WaveSpec(
        path_sigma=0.35,
        p_coda_decay_s=2.5,
        s_coda_decay_s=5.0,
        coda_distance_ref_km=100.0,
        p_coda_energy=1.5,
        s_coda_energy=3.0,
        coda_rise_s=0.5,
        rg_velocity_km_s=(3.2, 2.6),
        rg_q=60.0,
        rg_to_p=20.0,
    ),
    catalog=CatalogSpec(location_sigma_km=2.0, depth_sigma_km=3.0, magnitude_sigma=0.1),
    recording=CRATON_RECORDING,
)

#: The three built-in regions, by name.
REGIONS: dict[str, RegionSpec] = {spec.name: spec for spec in (ALPINE, BASIN, CRATON)}
