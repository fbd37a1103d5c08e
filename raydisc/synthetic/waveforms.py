"""FFT-based synthesis of 3-component station recordings in raw counts.

Per event, all stations and components are built at once as arrays of shape
``(n_stations, 3, n)`` (components Z, N, E). Each phase (P, S and, for shallow sources,
Rg) is a time series of a direct spike at the arrival time plus envelope-modulated
white noise (the coda), filtered in the frequency domain by the phase's wavelet:
source spectrum x attenuation x ground-velocity derivative x instrument response.
Ambient noise is added as coloured Gaussian-like noise in the frequency domain; one
inverse FFT, rounding and 24-bit clipping give the counts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from . import physics
from .events import Network, SyntheticEvent
from .specs import RegionSpec

#: Extra samples (s) beyond the kept window so that filter tails and the coda of
#: late arrivals do not wrap around the circular FFT into the window.
FFT_PAD_S = 20.0
#: Ripple-fire sums are evaluated on a time grid at least this fine (Hz).
RIPPLE_RATE_HZ = 2000.0
#: Rg is skipped when its depth excitation factor at the lowest Rg frequency is below this.
RG_NEGLIGIBLE = 1e-3
#: The codas of successive phases read one uniform draw at offsets this far apart (s):
#: more than a wavelet length, so they are independent where they overlap.
CODA_STREAM_SHIFT_S = 3.7


@dataclass(frozen=True)
class RegionGrid:
    """Per-region, per-network quantities shared by all events.

    ``freqs`` has shape ``(n_freq,)`` with ``n_freq = n_fft // 2 + 1``; ``response``
    is the instrument response (counts per m/s) on it.
    """

    spec: RegionSpec
    network: Network
    n_samples: int
    n_fft: int
    freqs: np.ndarray
    freqs32: np.ndarray
    response: np.ndarray
    rg_velocity: np.ndarray
    rg_reference_km_s: float
    rg_phase_per_km: np.ndarray
    rg_band: np.ndarray

    @property
    def sampling_rate(self) -> float:
        return self.spec.sampling_rate_hz

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.spec.sampling_rate_hz


def window_duration_s(spec: RegionSpec, network: Network) -> float:
    """Recording length after the window start (origin - ``pre_origin_s``): at least
    ``pre + post`` s, extended until ``P + p_window_after_s`` fits at the farthest
    possible source-station pair."""
    quarry_reach = max(
        math.hypot(q.east_km, q.north_km) + 4 * spec.blasting.location_sigma_km for q in spec.blasting.quarries
    )
    source_reach = max(spec.seismicity.epicentre_radius_km, quarry_reach)
    station_reach = float(np.hypot(network.east_km, network.north_km).max())
    farthest = np.array([source_reach + station_reach])
    t_p = max(
        float(physics.travel_times(spec.crust, farthest, depth, "P")[0][0])
        for depth in (0.0, spec.seismicity.depth_km[1])
    )
    return spec.pre_origin_s + max(spec.post_origin_s, t_p + spec.p_window_after_s + 1.0)


def build_grid(spec: RegionSpec, network: Network) -> RegionGrid:
    fs = spec.sampling_rate_hz
    n = int(round(window_duration_s(spec, network) * fs))
    n_fft = sfft.next_fast_len(n + int(FFT_PAD_S * fs), real=True)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / fs)
    w = spec.waves
    rg_u = physics.rg_group_velocity(freqs, w.rg_band_hz, w.rg_velocity_km_s)
    rg_ref = float(physics.rg_group_velocity(np.array([w.rg_peak_hz]), w.rg_band_hz, w.rg_velocity_km_s)[0])
    f_safe = np.maximum(freqs, freqs[1])
    return RegionGrid(
        spec=spec,
        network=network,
        n_samples=n,
        n_fft=n_fft,
        freqs=freqs,
        freqs32=freqs.astype(np.float32),
        response=physics.instrument_response(freqs, spec.instrument),
        rg_velocity=rg_u,
        rg_reference_km_s=rg_ref,
        rg_phase_per_km=physics.rg_dispersion_phase(freqs, rg_u, rg_ref),
        rg_band=np.exp(-0.5 * (np.log(f_safe / w.rg_peak_hz) / w.rg_width) ** 2),
    )


@dataclass
class _Phase:
    """One phase at every station: arrival (s after window start), direct amplitudes
    ``(n_sta, 3)`` (m s: displacement spectral level x polarisation), coda decay (s,
    ``(n_sta,)``), coda energy ratio, coda component weights, and the wavelet's
    station-dependent log-amplitude and phase (float32 ``(n_sta, n_freq)``) plus the
    event source spectrum ``(n_freq,)``."""

    arrival_s: np.ndarray
    direct: np.ndarray
    coda_decay_s: np.ndarray
    coda_energy: float
    coda_weights: tuple[float, float, float]
    log_amp: np.ndarray
    phase: np.ndarray
    source: np.ndarray
    horizontal_quadrature: bool = False  # Rg: horizontals lead by 90 degrees (ellipse)


def _rotate_zrt(z: np.ndarray, r: np.ndarray, t: np.ndarray, azimuth_deg: np.ndarray) -> np.ndarray:
    """Stack (Z, N, E) from vertical, radial (away from the source) and transverse."""
    a = np.radians(azimuth_deg)
    north = r * np.cos(a) - t * np.sin(a)
    east = r * np.sin(a) + t * np.cos(a)
    return np.stack([z, north, east], axis=-1)


def _phases(grid: RegionGrid, event: SyntheticEvent, rng: np.random.Generator) -> list[_Phase]:
    """P, S and (for sources shallower than a few km) Rg at every station.

    Displacement spectral levels follow the far-field point-source formula
    ``M0 * F / (4 pi rho v^3) * G(R)`` (radiation coefficient ``F``, source-side density
    and velocity, geometric spreading ``G``), times free-surface, site and path-scatter
    factors. Earthquakes: double couple with isotropised radiation, Brune spectra.
    Blasts: isotropic P, frequency-dependent converted S, ripple-fired source spectrum
    normalised to the earthquake-equivalent level in the magnitude band.
    """
    spec, net, f = grid.spec, grid.network, grid.freqs
    crust, att, w = spec.crust, spec.attenuation, spec.waves
    nyq = spec.sampling_rate_hz / 2.0
    n_sta = net.n_stations
    de, dn = net.east_km - event.east_km, net.north_km - event.north_km
    dist = np.hypot(de, dn)
    azimuth = np.degrees(np.arctan2(de, dn)) % 360.0
    h = event.depth_km
    hypo = np.hypot(dist, h)
    spreading = physics.geometric_spreading(hypo, att.spreading_crossover_km) / 1e3  # 1/m
    t_p, _, takeoff_p, inc_p = physics.travel_times(crust, dist, h, "P")
    t_s, _, takeoff_s, inc_s = physics.travel_times(crust, dist, h, "S")
    rho = float(physics.layer_property(crust, h, "density_g_cm3")) * 1e3
    alpha = float(physics.layer_property(crust, h, "vp_km_s")) * 1e3
    beta = float(physics.layer_property(crust, h, "vs_km_s")) * 1e3
    moment = event.moment_nm
    # Far-field displacement spectral level per unit radiation coefficient (m s).
    level_p = moment * spreading / (4 * math.pi * rho * alpha**3)
    level_s = moment * spreading / (4 * math.pi * rho * beta**3)
    site = net.site_amplification
    scatter = rng.lognormal(0.0, w.path_sigma, size=(3, n_sta))
    fsurf = w.free_surface

    if event.is_blast:
        b = spec.blasting
        fc = event.shot_corner_hz
        oversample = max(1, math.ceil(RIPPLE_RATE_HZ / spec.sampling_rate_hz))
        source = physics.omega_square_spectrum(f, fc) * physics.ripple_fire_spectrum(
            event.shot_times_s, event.shot_weights, grid.n_fft, spec.sampling_rate_hz, oversample
        )
        in_band = (f >= b.magnitude_band_hz[0]) & (f <= b.magnitude_band_hz[1])
        source /= np.abs(source[in_band]).mean()
        s_excitation = event.s_factor_scale * (b.s_high + (b.s_low - b.s_high) / (1.0 + (f / b.s_transition_hz) ** 2))
        source_p, source_s = source, source * s_excitation
        # Isotropic source: S only by conversion/scattering, split randomly SV/SH.
        f_p = np.ones(n_sta)
        psi = rng.uniform(0.0, math.pi / 2, size=n_sta)
        signs = rng.choice([-1.0, 1.0], size=(2, n_sta))
        f_sv, f_sh = signs[0] * np.cos(psi), signs[1] * np.sin(psi)
        rg_radiation = 1.0
    else:
        seis = spec.seismicity
        fc_s = event.s_corner_hz(beta / 1e3)
        source_p = physics.omega_square_spectrum(f, seis.p_corner_ratio * fc_s)
        source_s = physics.omega_square_spectrum(f, fc_s)
        iso = seis.radiation_isotropy
        rp, _, _ = physics.radiation_double_couple(event.strike, event.dip, event.rake, azimuth, takeoff_p)
        _, rsv, rsh = physics.radiation_double_couple(event.strike, event.dip, event.rake, azimuth, takeoff_s)
        f_p = physics.isotropise(rp, physics.RMS_RADIATION_P, iso)
        f_sv = physics.isotropise(rsv, physics.RMS_RADIATION_S_COMPONENT, iso)
        f_sh = physics.isotropise(rsh, physics.RMS_RADIATION_S_COMPONENT, iso)
        rg_radiation = seis.rg_radiation

    amp_p = level_p * f_p * site * scatter[0] * fsurf
    amp_sv = level_s * f_sv * site * scatter[1] * fsurf
    amp_sh = level_s * f_sh * site * scatter[1] * fsurf
    ip, js = np.radians(inc_p), np.radians(inc_s)
    zero = np.zeros(n_sta)
    coda_scale = 1.0 + dist / w.coda_distance_ref_km
    kappa = net.kappa_s
    q_path = rng.lognormal(0.0, att.path_q_sigma, size=(2, n_sta))  # t* scatter of each path
    att_p = physics.attenuation_exponent(grid.freqs32, t_p * q_path[0], att.qp0, att.eta, kappa, nyq)
    att_s = physics.attenuation_exponent(grid.freqs32, t_s * q_path[1], att.qs0, att.eta, kappa, nyq)
    phases = [
        _Phase(
            arrival_s=spec.pre_origin_s + t_p,
            direct=_rotate_zrt(amp_p * np.cos(ip), amp_p * np.sin(ip), zero, azimuth),
            coda_decay_s=w.p_coda_decay_s * coda_scale,
            coda_energy=w.p_coda_energy,
            coda_weights=w.p_coda_weights,
            log_amp=att_p[0],
            phase=att_p[1],
            source=source_p,
        ),
        _Phase(
            arrival_s=spec.pre_origin_s + t_s,
            direct=_rotate_zrt(amp_sv * np.sin(js), amp_sv * np.cos(js), amp_sh, azimuth),
            coda_decay_s=w.s_coda_decay_s * coda_scale,
            coda_energy=w.s_coda_energy,
            coda_weights=w.s_coda_weights,
            log_amp=att_s[0],
            phase=att_s[1],
            source=source_s,
        ),
    ]

    u_low = w.rg_velocity_km_s[0]
    depth_factor_low = math.exp(-w.rg_depth_decay * 2 * math.pi * w.rg_band_hz[0] * h / u_low)
    if depth_factor_low > RG_NEGLIGIBLE:
        # Level relative to the P wave of an isotropic surface source at rg_reference_km.
        rho0 = crust.density_g_cm3[0] * 1e3
        alpha0 = crust.vp_km_s[0] * 1e3
        r_eff = np.maximum(dist, 1.0)
        level_rg = (
            w.rg_to_p * rg_radiation * moment / (4 * math.pi * rho0 * alpha0**3 * w.rg_reference_km * 1e3)
            * np.sqrt(w.rg_reference_km / r_eff)
        )
        amp_rg = level_rg * site * scatter[2]
        u = grid.rg_velocity
        excitation = grid.rg_band * np.exp(-w.rg_depth_decay * 2 * math.pi * f * h / u)
        r32 = r_eff.astype(np.float32)[:, None]
        log_amp = (r32 * (1.0 / (w.rg_q * u)).astype(np.float32)[None, :] + kappa.astype(np.float32)[:, None]) * (
            np.float32(-math.pi) * grid.freqs32
        )[None, :]
        phase = r32 * (-grid.rg_phase_per_km).astype(np.float32)[None, :]
        phases.append(
            _Phase(
                arrival_s=spec.pre_origin_s + r_eff / grid.rg_reference_km_s,
                direct=_rotate_zrt(amp_rg, amp_rg * w.rg_horizontal_ratio, zero, azimuth),
                coda_decay_s=np.full(n_sta, w.rg_coda_decay_s) * coda_scale,
                coda_energy=w.rg_coda_energy,
                coda_weights=w.rg_coda_weights,
                log_amp=log_amp,
                phase=phase,
                source=(source_p if event.is_blast else physics.omega_square_spectrum(f, fc_s)) * excitation,
                horizontal_quadrature=True,
            )
        )
    return phases


def _phase_series(grid: RegionGrid, phase: _Phase, white: np.ndarray) -> np.ndarray:
    """Direct spike + coda as a float32 time series ``(n_sta, 3, n_fft)``.

    ``white`` is unit-variance white noise of the same shape. The coda of a unit spike
    has energy ``coda_energy`` (in squared-sample units, i.e. the spike's energy is 1)
    when the noise is scaled by ``sqrt(2 dt E / tau)``.
    """
    fs = grid.sampling_rate
    t = np.arange(grid.n_fft, dtype=np.float32) / np.float32(fs)
    lag = t[None, :] - phase.arrival_s[:, None].astype(np.float32)
    lag = np.maximum(lag, 0.0)  # envelope is zero before the arrival via the rise term
    rise = np.float32(grid.spec.waves.coda_rise_s)
    env = (-np.expm1(-lag / rise)) * np.exp(-lag / phase.coda_decay_s[:, None].astype(np.float32))
    weights = np.asarray(phase.coda_weights, dtype=float)
    weights /= np.linalg.norm(weights)
    norm = np.linalg.norm(phase.direct, axis=1)  # (n_sta,)
    coda_amp = norm[:, None] * weights[None, :] * np.sqrt(2.0 * phase.coda_energy / (fs * phase.coda_decay_s))[:, None]
    series = white * coda_amp[:, :, None].astype(np.float32)
    series *= env[:, None, :]
    # Fractional-sample spike: linear split between the two neighbouring samples.
    pos = phase.arrival_s * fs
    k = np.floor(pos).astype(np.int64)
    frac = (pos - k)[:, None]
    inside = (k >= 0) & (k + 1 < grid.n_fft)
    rows = np.nonzero(inside)[0]
    series[rows, :, k[rows]] += (phase.direct[rows] * (1.0 - frac[rows])).astype(np.float32)
    series[rows, :, k[rows] + 1] += (phase.direct[rows] * frac[rows]).astype(np.float32)
    return series


def _cexp64(log_amp: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """``exp(log_amp + i phase)`` as complex64 via real exp/cos/sin (numpy's complex exp
    is about ten times slower)."""
    magnitude = np.exp(log_amp)
    out = np.empty(log_amp.shape, dtype=np.complex64)
    out.real = magnitude * np.cos(phase)
    out.imag = magnitude * np.sin(phase)
    return out


def synthesize_series(
    grid: RegionGrid,
    event: SyntheticEvent,
    rng: np.random.Generator,
    second_sensors: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Counts of every station and component before rounding: float32
    ``(n_stations, 3, n_fft)`` (components Z, N, E), the whole circular FFT buffer,
    starting ``spec.pre_origin_s`` before the true origin time; samples from
    ``grid.n_samples`` on are the padding, which continues the series circularly.

    ``second_sensors = (rows, response)``: the stations ``rows`` (int ``(k,)``) also
    have a co-located sensor of complex response ``response`` (counts per m/s on
    ``grid.freqs``); the second array returned, float32 ``(k, 3, n_fft)``, is the same
    ground motion (signal and noise) recorded through it (``None`` without).
    """
    spec, f = grid.spec, grid.freqs
    fs = grid.sampling_rate
    n_sta = grid.network.n_stations
    n_fft = grid.n_fft
    n_freq = len(f)
    phases = _phases(grid, event, rng)
    # One uniform draw serves every phase's coda, each phase reading it at its own
    # offset (uniform noise becomes Gaussian after the band-limiting wavelet).
    shift = int(CODA_STREAM_SHIFT_S * fs)
    uniform = rng.random((n_sta, 3, n_fft + shift * (len(phases) - 1)), dtype=np.float32)
    uniform -= np.float32(0.5)
    uniform *= np.float32(math.sqrt(12.0))
    # Ambient noise, coloured in the frequency domain: E|X_k|^2 = ASD^2 fs n / 2.
    local = event.origin_time + spec.utc_offset_h * 3600.0
    cultural = physics.cultural_noise_factor(local.hour + local.minute / 60.0, local.weekday, spec.noise)
    microseism = rng.lognormal(0.0, spec.noise.microseism_event_sigma)
    asd = physics.noise_asd(f, spec.noise, microseism, cultural)
    parts = rng.random((n_sta, 3, n_freq, 2), dtype=np.float32)
    parts -= np.float32(0.5)
    noise_factor = grid.network.noise_factor.astype(np.float32)
    second = None
    if second_sensors is not None:
        # The second sensor sees the same noise draw (the same ground) through its own
        # response; copied before the primary's scaling below works in place.
        rows, response2 = second_sensors
        second = parts[rows].view(np.complex64)[..., 0].copy()
        second *= (asd * response2 * math.sqrt(fs * n_fft / 2.0) * math.sqrt(6.0)).astype(np.complex64)[None, None, :]
        second *= noise_factor[rows][:, None, None]
        common2 = fs * 2j * math.pi * f * response2
    noise_scale = (asd * grid.response * math.sqrt(fs * n_fft / 2.0)).astype(np.complex64)
    total = parts.view(np.complex64)[..., 0]  # real and imaginary parts, no copy
    # Uniform parts of variance 1/2 each: sqrt(6) * (u - 1/2).
    total *= (noise_scale * np.float32(math.sqrt(6.0)))[None, None, :]
    total *= noise_factor[:, None, None]
    # Velocity (2 pi i f) in counts (response), fs for the discrete spike convention.
    common = fs * 2j * math.pi * f * grid.response
    for j, phase in enumerate(phases):
        series = _phase_series(grid, phase, uniform[:, :, j * shift : j * shift + n_fft])
        spectrum = sfft.rfft(series, axis=-1)
        if phase.horizontal_quadrature:
            spectrum[:, 1:] *= np.complex64(1j)
        if second is not None:
            wavelet2 = _cexp64(phase.log_amp[rows], phase.phase[rows])
            wavelet2 *= (phase.source * common2).astype(np.complex64)[None, :]
            second += spectrum[rows] * wavelet2[:, None, :]
        wavelet = _cexp64(phase.log_amp, phase.phase)
        wavelet *= (phase.source * common).astype(np.complex64)[None, :]
        spectrum *= wavelet[:, None, :]
        total += spectrum
    series = sfft.irfft(total, n=n_fft, axis=-1)
    return series, (None if second is None else sfft.irfft(second, n=n_fft, axis=-1))


def to_counts(series: np.ndarray, clip: int) -> np.ndarray:
    """Round to integer counts and clip to the digitizer's full scale ``[-clip, clip - 1]``
    (int32, same shape; ``series`` is float and is overwritten)."""
    np.rint(series, out=series)
    np.clip(series, -clip, clip - 1, out=series)
    return series.astype(np.int32)


def synthesize_counts(grid: RegionGrid, event: SyntheticEvent, rng: np.random.Generator) -> np.ndarray:
    """Raw counts of every station and component, int32 ``(n_stations, 3, n_samples)``,
    starting ``spec.pre_origin_s`` before the true origin time, components Z, N, E, at
    the region's (synthesis) sampling rate."""
    series, _ = synthesize_series(grid, event, rng)
    return to_counts(series[..., : grid.n_samples], grid.spec.instrument.clip_counts)
