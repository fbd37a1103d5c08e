"""Vectorized physics of the synthetic seismograms: sources, travel times, propagation,
noise and instrument responses.

Conventions: the Fourier transform is numpy's (``X(f) = sum x(t) exp(-2 pi i f t)``), so
a delay ``tau`` multiplies a spectrum by ``exp(-2 pi i f tau)`` and a causal Laplace
transfer function is evaluated at ``s = 2 pi i f``. Distances are km, velocities km/s,
densities g/cm^3, frequencies Hz, times s, moments N m. Functions broadcast over numpy
arrays; shapes are given where they matter.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.fft

from .instruments import InstrumentSpec
from .specs import CrustModel, NoiseSpec

KM_PER_DEGREE = 111.195  # mean Earth radius 6371 km


# --------------------------------------------------------------------------- sources
def moment_from_magnitude(mw: np.ndarray | float) -> np.ndarray | float:
    """Seismic moment (N m) from moment magnitude (Hanks & Kanamori 1979, IASPEI)."""
    return 10.0 ** (1.5 * np.asarray(mw) + 9.1)


def brune_corner_hz(moment_nm: float, stress_drop_mpa: float, vs_km_s: float) -> float:
    """Brune (1970) S-wave corner frequency: source radius ``r = (7 M0 / (16 dsigma))^(1/3)``
    and ``fc = 2.34 beta / (2 pi r)``."""
    radius_m = (7.0 * moment_nm / (16.0 * stress_drop_mpa * 1e6)) ** (1.0 / 3.0)
    return 2.34 * vs_km_s * 1e3 / (2.0 * math.pi * radius_m)


def omega_square_spectrum(freqs: np.ndarray, corner_hz: float) -> np.ndarray:
    """Causal omega-square source spectrum ``1 / (1 + i f / fc)^2`` (unit low-frequency
    level): the Fourier transform of Brune's pulse ``t exp(-2 pi fc t)``, whose modulus
    is ``1 / (1 + (f / fc)^2)``. Shape of ``freqs``, complex."""
    return 1.0 / (1.0 + 1j * freqs / corner_hz) ** 2


def radiation_double_couple(
    strike_deg: float, dip_deg: float, rake_deg: float, azimuth_deg: np.ndarray, takeoff_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Far-field P, SV and SH radiation coefficients of a double couple
    (Aki & Richards 2002, eq. 4.89).

    ``takeoff_deg`` is measured from the downward vertical (>90 deg: up-going ray),
    ``azimuth_deg`` clockwise from north, from source to station. Returns three arrays
    shaped like the broadcast of ``azimuth_deg`` and ``takeoff_deg``; mean squares over
    the focal sphere are 4/15 (P) and 1/5 (SV and SH each).
    """
    lam = math.radians(rake_deg)
    dlt = math.radians(dip_deg)
    phi = np.radians(np.asarray(azimuth_deg) - strike_deg)
    i = np.radians(takeoff_deg)
    sl, cl = math.sin(lam), math.cos(lam)
    sd, cd = math.sin(dlt), math.cos(dlt)
    s2d, c2d = math.sin(2 * dlt), math.cos(2 * dlt)
    si, ci = np.sin(i), np.cos(i)
    s2i, c2i = np.sin(2 * i), np.cos(2 * i)
    sp, cp = np.sin(phi), np.cos(phi)
    s2p, c2p = np.sin(2 * phi), np.cos(2 * phi)
    f_p = (
        cl * sd * si**2 * s2p
        - cl * cd * s2i * cp
        + sl * s2d * (ci**2 - si**2 * sp**2)
        + sl * c2d * s2i * sp
    )
    f_sv = (
        sl * c2d * c2i * sp
        - cl * cd * c2i * cp
        + 0.5 * cl * sd * s2i * s2p
        - 0.5 * sl * s2d * s2i * (1 + sp**2)
    )
    f_sh = cl * cd * ci * sp + cl * sd * si * c2p + sl * c2d * ci * cp - 0.5 * sl * s2d * si * s2p
    return f_p, f_sv, f_sh


RMS_RADIATION_P = math.sqrt(4.0 / 15.0)
RMS_RADIATION_S_COMPONENT = math.sqrt(1.0 / 5.0)


def isotropise(coefficient: np.ndarray, rms: float, isotropy: float) -> np.ndarray:
    """Blend a radiation coefficient with its focal-sphere rms, keeping its sign.

    Scattering near the source fills the nodal planes at the frequencies of local
    recordings; ``isotropy`` is the share of mean-square energy that is isotropised.
    """
    coefficient = np.asarray(coefficient)
    sign = np.where(coefficient < 0, -1.0, 1.0)
    return sign * np.sqrt((1 - isotropy) * coefficient**2 + isotropy * rms**2)


def ripple_fire_spectrum(
    shot_times_s: np.ndarray, weights: np.ndarray, n_fft: int, sampling_rate_hz: float, oversample: int
) -> np.ndarray:
    """``sum_k w_k exp(-2 pi i f t_k) / sum_k w_k`` on the rfft grid of length ``n_fft``
    at ``sampling_rate_hz``: the spectral scalloping of a ripple-fired blast whose shots
    have relative sizes ``w_k``.

    Evaluated exactly for shot times rounded to ``1 / (oversample * sampling_rate_hz)``
    with one FFT of an oversampled spike train (a direct sum costs
    ``N_shots * n_freq`` complex exponentials). Returns ``n_fft // 2 + 1`` complex
    values; the value at 0 Hz is 1.
    """
    fine_rate = sampling_rate_hz * oversample
    n_fine = n_fft * oversample
    idx = np.rint(np.asarray(shot_times_s) * fine_rate).astype(np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    train = np.bincount(idx, weights=weights, minlength=n_fine)[:n_fine].astype(np.float32)
    spectrum = scipy.fft.rfft(train)[: n_fft // 2 + 1]
    return spectrum / np.float32(weights.sum())


# ---------------------------------------------------------------- crust, travel times
def _layer_index(crust: CrustModel, depth_km: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(crust.tops_km), depth_km, side="right") - 1


def layer_property(crust: CrustModel, depth_km: np.ndarray | float, name: str) -> np.ndarray:
    """Value of ``vp_km_s``, ``vs_km_s`` or ``density_g_cm3`` at ``depth_km``."""
    values = np.asarray(getattr(crust, name))
    return values[_layer_index(crust, np.clip(depth_km, 0.0, None))]


def mean_slowness(crust: CrustModel, depth_km: np.ndarray, wave: str) -> np.ndarray:
    """Vertical average slowness (s/km) from the surface down to ``depth_km``: a straight
    ray spends the same fraction of its length in a layer as of its depth range."""
    tops = np.asarray(crust.tops_km)
    slow = 1.0 / np.asarray(crust.vp_km_s if wave == "P" else crust.vs_km_s)
    z = np.maximum(np.asarray(depth_km, dtype=float), 1e-6)
    bottoms = np.append(tops[1:], np.inf)
    thickness = np.clip(z[..., None], tops, bottoms) - tops  # km of each layer above z
    return (thickness * slow).sum(axis=-1) / z


def travel_times(
    crust: CrustModel, epicentral_km: np.ndarray, depth_km: float, wave: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Average-slowness straight-ray travel times of the first P or S arrival.

    The ray samples the crust down to ``z = max(depth, turning_depth_per_km * distance)``
    (direct up-going ray near the source, diving Pg/Sg-like ray farther out), and
    ``t = hypocentral_distance * mean_slowness(0..z)``. For a diving ray
    ``dt/d(distance)`` equals the slowness at the turning depth, as for a real turning
    ray.

    Returns ``(time_s, ray_parameter_s_per_km, takeoff_deg, incidence_deg)`` shaped like
    ``epicentral_km``; take-off from the downward vertical at the source, incidence from
    the vertical at the (free-surface) receiver.
    """
    dist = np.asarray(epicentral_km, dtype=float)
    z_turn = crust.turning_depth_per_km * dist
    diving = z_turn > depth_km
    z = np.where(diving, z_turn, depth_km)
    hypo = np.hypot(dist, depth_km)
    s_mean = mean_slowness(crust, z, wave)
    time = hypo * s_mean
    vname = "vp_km_s" if wave == "P" else "vs_km_s"
    v_turn = layer_property(crust, z, vname)
    p = np.where(diving, 1.0 / v_turn, dist / np.maximum(hypo, 1e-6) * s_mean)
    v_src = layer_property(crust, depth_km, vname)
    sin_src = np.clip(p * v_src, 0.0, 1.0)
    angle = np.degrees(np.arcsin(sin_src))
    takeoff = np.where(diving, angle, 180.0 - angle)
    v_surface = getattr(crust, vname)[0]
    incidence = np.degrees(np.arcsin(np.clip(p * v_surface, 0.0, 0.95)))
    return time, p, takeoff, incidence


def geometric_spreading(hypocentral_km: np.ndarray, crossover_km: float) -> np.ndarray:
    """Body-wave spreading (1/km): ``1/R`` up to ``crossover_km``, then ``1/sqrt(R)``
    (crustal trapping), continuous at the crossover."""
    r = np.maximum(np.asarray(hypocentral_km, dtype=float), 1.0)
    return np.where(r <= crossover_km, 1.0 / r, 1.0 / np.sqrt(crossover_km * r))


def attenuation_exponent(
    freqs: np.ndarray,
    travel_time_s: np.ndarray,
    q0: float,
    eta: float,
    kappa_s: np.ndarray | float,
    nyquist_hz: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Log-amplitude and phase (rad) of the causal attenuation operator, each of shape
    ``(len(travel_time_s), len(freqs))`` and the dtype of ``freqs``; ``kappa_s`` is a
    scalar or one value per travel time (station).

    Amplitude ``exp(-pi f t / Q(f) - pi kappa f)`` with ``Q(f) = q0 f^eta``; phase of a
    constant-Q (Futterman-like) operator referenced to the Nyquist frequency, which
    delays low frequencies by ``(t*/pi) ln(f_nyq / f)`` so the pulse stays causal.
    """
    dtype = freqs.dtype
    f = np.maximum(freqs, freqs[1] if len(freqs) > 1 else 1.0)
    inv_q = (1.0 / (q0 * f**eta)).astype(dtype)
    tstar = np.asarray(travel_time_s, dtype=dtype)[:, None] * inv_q[None, :]
    kappa = np.broadcast_to(np.asarray(kappa_s, dtype=dtype), tstar.shape[:1])[:, None]
    log_amp = (tstar + kappa) * (dtype.type(-math.pi) * freqs)[None, :]
    phase = tstar * (2.0 * freqs * np.log(f / nyquist_hz)).astype(dtype)[None, :]
    return log_amp, phase


# ----------------------------------------------------------------------- Rg waves
def rg_group_velocity(freqs: np.ndarray, band_hz: tuple[float, float], velocity_km_s: tuple[float, float]) -> np.ndarray:
    """Rg group velocity (km/s): linear in frequency across ``band_hz``, constant outside."""
    return np.interp(freqs, band_hz, velocity_km_s)


def rg_dispersion_phase(freqs: np.ndarray, group_velocity_km_s: np.ndarray, reference_km_s: float) -> np.ndarray:
    """Phase per km of path (rad/km), relative to a pulse travelling at ``reference_km_s``:
    ``Phi(f) = 2 pi int_0^f (1/U(f') - 1/U_ref) df'``; the spectrum of a station at
    distance ``r`` is multiplied by ``exp(-i r Phi(f))``, which gives frequency ``f`` the
    group delay ``r / U(f)``."""
    excess = 1.0 / group_velocity_km_s - 1.0 / reference_km_s
    df = np.diff(freqs, prepend=freqs[0])
    return 2.0 * math.pi * np.cumsum(excess * df)


# -------------------------------------------------------------------------- noise
def noise_asd(
    freqs: np.ndarray, spec: NoiseSpec, microseism_factor: float, cultural_factor: float
) -> np.ndarray:
    """Ground-velocity noise amplitude spectral density (m/s/sqrt(Hz)), shape of ``freqs``."""
    f = np.maximum(freqs, freqs[1] if len(freqs) > 1 else 1.0)
    micro = spec.microseism_asd * microseism_factor * np.exp(
        -0.5 * (np.log(f / spec.microseism_hz) / spec.microseism_width) ** 2
    )
    background = spec.background_asd * f**spec.background_slope
    x = (f / spec.cultural_corner_hz) ** 2
    cultural = spec.cultural_asd_day * cultural_factor * x / (1.0 + x)
    rolloff = 1.0 / np.sqrt(1.0 + (f / spec.rolloff_hz) ** 8)
    return np.sqrt(micro**2 + background**2 + cultural**2) * rolloff


def cultural_noise_factor(local_hour: float, weekday: int, spec: NoiseSpec) -> float:
    """Cultural-noise level relative to a weekday daytime (1), with one-hour ramps at
    the start and end of ``spec.day_hours``; ``weekday`` is 0 (Monday) .. 6."""
    start, end = spec.day_hours
    day = float(np.clip(min(local_hour - start + 0.5, end + 0.5 - local_hour), 0.0, 1.0))
    level = spec.cultural_weekend_factor if weekday >= 5 else 1.0
    return spec.cultural_night_factor + (level - spec.cultural_night_factor) * day


# ---------------------------------------------------------------------- instrument
def paz_normalization(instrument: InstrumentSpec) -> float:
    """A0 such that the poles/zeros part has modulus 1 at ``normalization_hz``."""
    s = 2j * math.pi * instrument.normalization_hz
    value = np.prod([s - z for z in instrument.zeros]) / np.prod([s - p for p in instrument.poles])
    return float(1.0 / abs(value))


def instrument_response(freqs: np.ndarray, instrument: InstrumentSpec) -> np.ndarray:
    """Complex response, counts per m/s of ground velocity, shape of ``freqs``: the same
    transfer function as the StationXML written for the channel."""
    s = 2j * math.pi * np.asarray(freqs, dtype=float)
    h = np.ones_like(s)
    for z in instrument.zeros:
        h = h * (s - z)
    for p in instrument.poles:
        h = h / (s - p)
    return h * paz_normalization(instrument) * instrument.sensitivity_counts_per_m_s
