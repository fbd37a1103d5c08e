"""What the synthesis of one region shares: its frequency grid, and phases as arrays.

:class:`RegionGrid` holds the per-network quantities of every event (FFT length,
frequencies, instrument response, Rg dispersion); a :class:`Phase` is one seismic phase
at every station, which :func:`phase_series` turns into a time series (its direct
arrival, a spike or a given wavetrain, plus its coda) before the frequency-domain
filtering of :mod:`raydisc.synthetic.waveforms`. Body waves of earthquakes and blasts
are built in :mod:`.waveforms`, those of surface events in :mod:`.surface`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from . import physics
from .events import Network
from .specs import RegionSpec

#: Extra samples (s) beyond the kept window so that filter tails and the coda of
#: late arrivals do not wrap around the circular FFT into the window.
FFT_PAD_S = 20.0


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
    possible source-station pair (earthquakes, quarries and slope sites)."""
    quarry_reach = max(
        math.hypot(q.east_km, q.north_km) + 4 * spec.blasting.location_sigma_km for q in spec.blasting.quarries
    )
    slope_reach = max(
        (math.hypot(s.east_km, s.north_km) + 4 * spec.surface.location_sigma_km for s in spec.surface.sites),
        default=0.0,
    )
    source_reach = max(spec.seismicity.epicentre_radius_km, quarry_reach, slope_reach)
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
class Phase:
    """One phase at every station: arrival (s after window start), direct amplitudes
    ``(n_sta, 3)`` (m s: displacement spectral level x polarisation), coda decay (s,
    ``(n_sta,)``), coda energy ratio, coda component weights, and the wavelet's
    station-dependent log-amplitude and phase (float32 ``(n_sta, n_freq)``) plus the
    event source spectrum ``(n_freq,)``.

    ``wavetrain`` (float32 ``(n_sta, n_fft)``, unit energy in squared-sample units, like
    a unit spike): the direct arrival's time function per station, already placed at
    its arrival, for long emergent sources; None: a unit spike at ``arrival_s``."""

    arrival_s: np.ndarray
    direct: np.ndarray
    coda_decay_s: np.ndarray
    coda_energy: float
    coda_weights: tuple[float, float, float]
    log_amp: np.ndarray
    phase: np.ndarray
    source: np.ndarray
    horizontal_quadrature: bool = False  # Rg: horizontals lead by 90 degrees (ellipse)
    wavetrain: np.ndarray | None = None


def rotate_zrt(z: np.ndarray, r: np.ndarray, t: np.ndarray, azimuth_deg: np.ndarray) -> np.ndarray:
    """Stack (Z, N, E) from vertical, radial (away from the source) and transverse."""
    a = np.radians(azimuth_deg)
    north = r * np.cos(a) - t * np.sin(a)
    east = r * np.sin(a) + t * np.cos(a)
    return np.stack([z, north, east], axis=-1)


def phase_series(grid: RegionGrid, phase: Phase, white: np.ndarray | None) -> np.ndarray:
    """Direct arrival (spike or wavetrain) + coda as a float32 time series ``(n_sta, 3, n_fft)``.

    ``white`` is unit-variance white noise of the same shape (None: the phase has no
    coda, ``coda_energy == 0``). The coda of a unit spike has energy ``coda_energy`` (in
    squared-sample units, i.e. the spike's energy is 1) when the noise is scaled by
    ``sqrt(2 dt E / tau)``.
    """
    if phase.wavetrain is not None:
        # Linearly polarised: every component carries the same time function.
        series = phase.direct[:, :, None].astype(np.float32) * phase.wavetrain[:, None, :]
        if phase.coda_energy > 0:
            raise ValueError("a phase with a wavetrain has no separate coda (its envelope is its coda)")
        return series
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


def rg_level(spec: RegionSpec, moment_nm: float, radiation: float, distance_km: np.ndarray) -> np.ndarray:
    """Rg displacement spectral level (m s) at ``distance_km`` (``(n_sta,)``, >= 1 km):
    ``rg_to_p`` times the P wave of an isotropic surface source of the same moment at
    ``rg_reference_km``, times the excitation ``radiation``, spreading as ``1/sqrt(r)``."""
    w, crust = spec.waves, spec.crust
    rho0 = crust.density_g_cm3[0] * 1e3
    alpha0 = crust.vp_km_s[0] * 1e3
    return (
        w.rg_to_p * radiation * moment_nm / (4 * math.pi * rho0 * alpha0**3 * w.rg_reference_km * 1e3)
        * np.sqrt(w.rg_reference_km / distance_km)
    )


def rg_path(grid: RegionGrid, distance_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-amplitude and phase (float32 ``(n_sta, n_freq)``) of the Rg path to each
    station at ``distance_km`` (``(n_sta,)``, >= 1 km): attenuation ``exp(-pi f r / (Q U))``,
    site kappa, and the dispersion relative to the reference group velocity."""
    w, kappa = grid.spec.waves, grid.network.kappa_s
    u = grid.rg_velocity
    r32 = distance_km.astype(np.float32)[:, None]
    log_amp = (r32 * (1.0 / (w.rg_q * u)).astype(np.float32)[None, :] + kappa.astype(np.float32)[:, None]) * (
        np.float32(-math.pi) * grid.freqs32
    )[None, :]
    phase = r32 * (-grid.rg_phase_per_km).astype(np.float32)[None, :]
    return log_amp, phase
