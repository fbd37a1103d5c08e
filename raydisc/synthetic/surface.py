"""Seismograms of surface events: landslides, rockslides and snow avalanches.

A mass movement is modelled as a long, emergent surface source (depth 0; parameters
and units in :class:`~raydisc.synthetic.specs.SurfaceSpec`):

* source time function: Gaussian white noise under an envelope (:func:`emergent_envelope`)
  that rises as ``sin^2`` over the event's rise time and decays exponentially over its
  duration: no impulsive onset, tens of seconds up to about two minutes of signal;
* source spectrum: a log-normal band around the event's ``peak_hz`` (energy mostly at
  1-5 Hz, :func:`source_band`), scaled so that its mean level over the magnitude band
  equals that of a point source of moment M0(ML) (energy-equivalent magnitude);
* radiation: strong Rg (surface waves, with the region's Rg excitation band,
  dispersion and Q), weaker S and weak P, each the source time function delayed to
  the phase's arrival (independent draws per station and phase: path scattering
  decorrelates 1-5 Hz waves between stations). Since the source lasts far longer than
  the P-S and S-Rg delays, the phases merge: no clear, separate P and S.

Amplitudes spread geometrically and attenuate with distance exactly as the body waves
and Rg of the other event types (:mod:`raydisc.synthetic.physics`, :mod:`.grid`).
"""
from __future__ import annotations

import math

import numpy as np

from . import physics
from .events import SyntheticEvent
from .grid import FFT_PAD_S, Phase, RegionGrid, rg_level, rg_path, rotate_zrt

#: The envelope energy of a source time function is summed over this many durations
#: (the exponential tail beyond is below 1e-6 of the energy for duration_level <= 0.1).
ENVELOPE_SPAN_DURATIONS = 4.0


def emergent_envelope(lag_s: np.ndarray, rise_s: float, duration_s: float, level: float) -> np.ndarray:
    """Envelope (peak 1) of an emergent source, shape and dtype of ``lag_s`` (s after
    the onset): 0 before the onset, ``sin^2(pi/2 * lag / rise)`` up to the peak at
    ``rise_s``, then ``exp(-(lag - rise) / tau)`` with ``tau`` such that it has fallen
    to ``level`` at ``duration_s``."""
    lag = np.asarray(lag_s)
    tau = (duration_s - rise_s) / math.log(1.0 / level)
    ramp = np.sin(np.clip(lag, 0.0, rise_s) * (math.pi / (2.0 * rise_s))) ** 2
    decay = np.exp(-np.maximum(lag - rise_s, 0.0) / tau)
    return (ramp * decay).astype(lag.dtype, copy=False)


def source_band(freqs: np.ndarray, peak_hz: float, width: float) -> np.ndarray:
    """Log-normal source band ``exp(-0.5 (ln(f / peak_hz) / width)^2)`` (real, peak 1),
    shape of ``freqs``; 0 at 0 Hz."""
    f = np.asarray(freqs, dtype=float)
    out = np.zeros_like(f)
    positive = f > 0
    out[positive] = np.exp(-0.5 * (np.log(f[positive] / peak_hz) / width) ** 2)
    return out


def _wavetrains(grid: RegionGrid, event: SyntheticEvent, arrival_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit-energy source time functions placed at ``arrival_s`` (s after the window
    start, ``(n_sta,)``): float32 ``(n_sta, n_fft)``.

    Normalised by the energy of the whole envelope, so a wavetrain that the window cuts
    off keeps its true level. Beyond the kept window the series is tapered to zero over
    half the FFT padding, so the tail of a long source does not wrap around the
    circular FFT into the pre-event noise.
    """
    spec = grid.spec
    fs = grid.sampling_rate
    s = spec.surface
    span = np.arange(int(ENVELOPE_SPAN_DURATIONS * event.duration_s * fs)) / fs
    energy = float(np.sum(emergent_envelope(span, event.rise_s, event.duration_s, s.duration_level) ** 2))
    t = np.arange(grid.n_fft, dtype=np.float32) / np.float32(fs)
    lag = t[None, :] - arrival_s[:, None].astype(np.float32)
    env = emergent_envelope(lag, event.rise_s, event.duration_s, s.duration_level)
    taper_n = int(FFT_PAD_S * fs / 2)
    end = np.zeros(grid.n_fft, dtype=np.float32)
    end[: grid.n_samples] = 1.0
    stop = min(grid.n_fft, grid.n_samples + taper_n)
    end[grid.n_samples : stop] = np.cos(np.linspace(0.0, math.pi / 2, stop - grid.n_samples)) ** 2
    white = rng.standard_normal(env.shape, dtype=np.float32)
    white *= env
    white *= end[None, :] / np.float32(math.sqrt(energy))
    return white


def surface_phases(grid: RegionGrid, event: SyntheticEvent, rng: np.random.Generator) -> list[Phase]:
    """P, S and Rg of surface event ``event`` at every station (see the module docstring).

    Levels are the point-source ones of the earthquakes' and blasts' phases
    (:mod:`raydisc.synthetic.waveforms`) for a source at the surface (P and S: ``M0 / (4 pi rho v^3) * G(R)``, Rg:
    :func:`~raydisc.synthetic.grid.rg_level`) times the radiation of
    :class:`~raydisc.synthetic.specs.SurfaceSpec`, site and path scatter; the direct
    arrivals are the source time function, not spikes, and carry no separate coda.
    """
    spec, net, f = grid.spec, grid.network, grid.freqs
    crust, att, w, s = spec.crust, spec.attenuation, spec.waves, spec.surface
    nyq = spec.sampling_rate_hz / 2.0
    n_sta = net.n_stations
    de, dn = net.east_km - event.east_km, net.north_km - event.north_km
    dist = np.hypot(de, dn)
    azimuth = np.degrees(np.arctan2(de, dn)) % 360.0
    r_eff = np.maximum(dist, 1.0)
    spreading = physics.geometric_spreading(r_eff, att.spreading_crossover_km) / 1e3  # 1/m
    t_p, _, _, inc_p = physics.travel_times(crust, dist, 0.0, "P")
    t_s, _, _, inc_s = physics.travel_times(crust, dist, 0.0, "S")
    rho = crust.density_g_cm3[0] * 1e3
    alpha, beta = crust.vp_km_s[0] * 1e3, crust.vs_km_s[0] * 1e3
    moment = event.moment_nm
    band = source_band(f, event.peak_hz, s.band_width)
    in_band = (f >= s.magnitude_band_hz[0]) & (f <= s.magnitude_band_hz[1])
    band /= band[in_band].mean()
    site = net.site_amplification
    scatter = rng.lognormal(0.0, w.path_sigma, size=(3, n_sta))
    q_path = rng.lognormal(0.0, att.path_q_sigma, size=(2, n_sta))
    fsurf = w.free_surface
    amp_p = s.p_radiation * moment * spreading / (4 * math.pi * rho * alpha**3) * site * scatter[0] * fsurf
    amp_s = s.s_radiation * moment * spreading / (4 * math.pi * rho * beta**3) * site * scatter[1] * fsurf
    # A surface force: S split at random between SV and SH, as for the blasts' S.
    psi = rng.uniform(0.0, math.pi / 2, size=n_sta)
    amp_sv, amp_sh = amp_s * np.cos(psi), amp_s * np.sin(psi)
    amp_rg = rg_level(spec, moment, s.rg_radiation, r_eff) * site * scatter[2]
    ip, js = np.radians(inc_p), np.radians(inc_s)
    zero = np.zeros(n_sta)
    kappa = net.kappa_s
    att_p = physics.attenuation_exponent(grid.freqs32, t_p * q_path[0], att.qp0, att.eta, kappa, nyq)
    att_s = physics.attenuation_exponent(grid.freqs32, t_s * q_path[1], att.qs0, att.eta, kappa, nyq)
    rg_log_amp, rg_phase = rg_path(grid, r_eff)
    arrivals = (spec.pre_origin_s + t_p, spec.pre_origin_s + t_s, spec.pre_origin_s + r_eff / grid.rg_reference_km_s)
    no_coda = dict(coda_decay_s=np.ones(n_sta), coda_energy=0.0, coda_weights=(1.0, 1.0, 1.0))
    return [
        Phase(arrival_s=arrivals[0], direct=rotate_zrt(amp_p * np.cos(ip), amp_p * np.sin(ip), zero, azimuth),
              log_amp=att_p[0], phase=att_p[1], source=band.astype(complex),
              wavetrain=_wavetrains(grid, event, arrivals[0], rng), **no_coda),
        Phase(arrival_s=arrivals[1], direct=rotate_zrt(amp_sv * np.sin(js), amp_sv * np.cos(js), amp_sh, azimuth),
              log_amp=att_s[0], phase=att_s[1], source=band.astype(complex),
              wavetrain=_wavetrains(grid, event, arrivals[1], rng), **no_coda),
        Phase(arrival_s=arrivals[2], direct=rotate_zrt(amp_rg, amp_rg * w.rg_horizontal_ratio, zero, azimuth),
              log_amp=rg_log_amp, phase=rg_phase, source=band * grid.rg_band,
              horizontal_quadrature=True, wavetrain=_wavetrains(grid, event, arrivals[2], rng), **no_coda),
    ]
