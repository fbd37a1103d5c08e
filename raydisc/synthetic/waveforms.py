"""FFT-based synthesis of 3-component station recordings in raw counts.

Per event, all stations and components are built at once as arrays of shape
``(n_stations, 3, n)`` (components Z, N, E). Each phase (P, S and, for shallow sources,
Rg) is a time series of a direct spike at the arrival time plus envelope-modulated
white noise (the coda), filtered in the frequency domain by the phase's wavelet:
source spectrum x attenuation x ground-velocity derivative x instrument response.
Ambient noise is added as coloured Gaussian-like noise in the frequency domain; one
inverse FFT, rounding and 24-bit clipping give the counts. Surface events take their
phases from :mod:`.surface`; noise windows have none (ambient noise only).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft

from . import physics
from .events import SyntheticEvent
from .grid import FFT_PAD_S, Phase, RegionGrid, build_grid, phase_series, rg_level, rg_path, rotate_zrt, window_duration_s
from .surface import surface_phases

#: Ripple-fire sums are evaluated on a time grid at least this fine (Hz).
RIPPLE_RATE_HZ = 2000.0
#: Rg is skipped when its depth excitation factor at the lowest Rg frequency is below this.
RG_NEGLIGIBLE = 1e-3
#: The codas of successive phases read one uniform draw at offsets this far apart (s):
#: more than a wavelet length, so they are independent where they overlap.
CODA_STREAM_SHIFT_S = 3.7


def _phases(grid: RegionGrid, event: SyntheticEvent, rng: np.random.Generator) -> list[Phase]:
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
        Phase(
            arrival_s=spec.pre_origin_s + t_p,
            direct=rotate_zrt(amp_p * np.cos(ip), amp_p * np.sin(ip), zero, azimuth),
            coda_decay_s=w.p_coda_decay_s * coda_scale,
            coda_energy=w.p_coda_energy,
            coda_weights=w.p_coda_weights,
            log_amp=att_p[0],
            phase=att_p[1],
            source=source_p,
        ),
        Phase(
            arrival_s=spec.pre_origin_s + t_s,
            direct=rotate_zrt(amp_sv * np.sin(js), amp_sv * np.cos(js), amp_sh, azimuth),
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
        r_eff = np.maximum(dist, 1.0)
        amp_rg = rg_level(spec, moment, rg_radiation, r_eff) * site * scatter[2]
        excitation = grid.rg_band * np.exp(-w.rg_depth_decay * 2 * math.pi * f * h / grid.rg_velocity)
        log_amp, phase = rg_path(grid, r_eff)
        phases.append(
            Phase(
                arrival_s=spec.pre_origin_s + r_eff / grid.rg_reference_km_s,
                direct=rotate_zrt(amp_rg, amp_rg * w.rg_horizontal_ratio, zero, azimuth),
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
    if event.is_noise:
        phases = []  # a noise window: the region's ambient noise alone
    elif event.is_surface:
        phases = surface_phases(grid, event, rng)
    else:
        phases = _phases(grid, event, rng)
    # One uniform draw serves every phase's coda, each phase reading it at its own
    # offset (uniform noise becomes Gaussian after the band-limiting wavelet).
    shift = int(CODA_STREAM_SHIFT_S * fs)
    uniform = None
    if any(phase.coda_energy > 0 for phase in phases):
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
        white = None if phase.coda_energy <= 0 else uniform[:, :, j * shift : j * shift + n_fft]
        series = phase_series(grid, phase, white)
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


__all__ = ["FFT_PAD_S", "RegionGrid", "build_grid", "synthesize_counts", "synthesize_series", "to_counts",
           "window_duration_s"]
