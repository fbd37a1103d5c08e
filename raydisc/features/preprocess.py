"""The one preprocessing function shared by training, evaluation, reprocessing and serving.

Everything here is vectorized over a batch of recordings that share a sampling rate:
no Python loop runs over traces or samples.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import signal

from ..config import PreprocessConfig

# Floor added to the STFT power before the logarithm, relative to the recording's
# largest power, so silent (zero-padded) frames do not produce -inf.
_LOG_FLOOR_RELATIVE = 1e-10


def cut_window_samples(sampling_rate: float, config: PreprocessConfig) -> int:
    """Number of raw samples to cut per component: the window plus padding on both sides."""
    return int(round((config.window_length_s + 2 * config.padding_s) * sampling_rate))


@lru_cache(maxsize=32)
def _bandpass_gain(n: int, sampling_rate: float, config: PreprocessConfig) -> np.ndarray:
    """|H(f)|^2 of the Butterworth band-pass at the rfft frequencies of an n-sample trace.

    Multiplying the spectrum by the squared magnitude is exactly what a forward-backward
    (zero-phase) filter does, at the cost of one FFT instead of two IIR passes.
    """
    freqs = np.fft.rfftfreq(n, d=1.0 / sampling_rate)
    high = min(config.freqmax_hz, 0.95 * sampling_rate / 2.0)
    sos = signal.butter(
        config.filter_corners, [config.freqmin_hz, high], btype="bandpass", fs=sampling_rate, output="sos"
    )
    _, response = signal.sosfreqz(sos, worN=freqs, fs=sampling_rate)
    return np.abs(response) ** 2


def _detrend_linear_inplace(x: np.ndarray) -> None:
    """Remove the least-squares straight line along the last axis (closed form, batched).

    In place, because the raw windows are the largest arrays of the whole pipeline.
    """
    t = np.arange(x.shape[-1], dtype=np.float64)
    t -= t.mean()
    slope = (x @ t) / (t @ t)
    x -= x.mean(axis=-1, keepdims=True)
    x -= slope[..., None] * t


@lru_cache(maxsize=32)
def _taper(n: int, fraction: float) -> np.ndarray:
    return signal.windows.tukey(n, alpha=2 * fraction) if fraction > 0 else np.ones(n)


def _bandpass_and_resample(x: np.ndarray, sampling_rate: float, config: PreprocessConfig) -> np.ndarray:
    """Zero-phase band-pass and resampling to ``config.target_rate_hz`` in one FFT round trip.

    The band-pass removes everything above ``freqmax_hz`` (< the target Nyquist), so
    truncating the spectrum at the target Nyquist frequency resamples without aliasing.
    The taper has brought both ends to zero, so the FFT's circular wrap-around only
    touches the padding that is cut off afterwards.
    """
    n = x.shape[-1]
    n_out = int(round(n * config.target_rate_hz / sampling_rate))
    spectrum = np.fft.rfft(x, axis=-1) * _bandpass_gain(n, float(sampling_rate), config)
    n_keep = min(spectrum.shape[-1], n_out // 2 + 1)
    return np.fft.irfft(spectrum[..., :n_keep], n=n_out, axis=-1) * (n_out / n)


def _log_spectrogram(x: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """(B, 3, n_samples) -> normalised log10 STFT power, (B, 3, n_freq, n_time)."""
    n_win, hop = config.stft_window_samples, config.stft_hop_samples
    frames = np.lib.stride_tricks.sliding_window_view(x, n_win, axis=-1)[..., ::hop, :]
    spectrum = np.fft.rfft(frames * signal.windows.hann(n_win, sym=False), axis=-1)
    power = np.abs(spectrum) ** 2  # (B, 3, n_time, n_freq)
    floor = _LOG_FLOOR_RELATIVE * power.max(axis=(1, 2, 3), keepdims=True) + np.finfo(float).tiny
    log_power = np.log10(power + floor)
    mean = log_power.mean(axis=(1, 2, 3), keepdims=True)
    std = log_power.std(axis=(1, 2, 3), keepdims=True)
    normalised = (log_power - mean) / np.maximum(std, 1e-6)
    return np.swapaxes(normalised, -1, -2)


def preprocess(
    counts: np.ndarray,
    sampling_rate: float,
    sensitivity: np.ndarray,
    config: PreprocessConfig,
) -> dict[str, np.ndarray]:
    """Turn raw 3-component recordings into the model inputs.

    Parameters
    ----------
    counts:
        Raw digitizer counts, shape ``(batch, 3, n)`` with components ordered as
        ``config.components`` and ``n == cut_window_samples(sampling_rate, config)``:
        the window from ``reference + window_start_s - padding_s`` on.
    sampling_rate:
        Sampling rate of ``counts`` in Hz (one rate per call; group by rate).
    sensitivity:
        Overall instrument sensitivity in counts per (m/s), shape ``(batch, 3)``.
    config:
        The preprocessing configuration (travels inside shards and bundles).

    Returns
    -------
    dict with ``"spectrogram"``: float32 ``(batch, *config.spectrogram_shape[...])`` and
    ``"waveform"``: float32 ``(batch, 3, config.n_samples)`` (see PreprocessConfig).
    """
    counts = np.asarray(counts)
    if counts.ndim != 3 or counts.shape[1] != 3:
        raise ValueError(f"counts must have shape (batch, 3, n), got {counts.shape}")
    expected = cut_window_samples(sampling_rate, config)
    if counts.shape[-1] != expected:
        raise ValueError(
            f"counts have {counts.shape[-1]} samples per component; {expected} expected for "
            f"{sampling_rate} Hz and a {config.window_length_s} s window with {config.padding_s} s padding"
        )
    sensitivity = np.asarray(sensitivity, dtype=np.float64).reshape(counts.shape[0], 3, 1)
    if np.any(~np.isfinite(sensitivity)) or np.any(sensitivity == 0):
        raise ValueError("sensitivity must be finite and non-zero")

    # Every step up to the resampling is linear, so the division by the sensitivity is
    # done on the short resampled output instead of the long raw window.
    raw = counts.astype(np.float64, copy=True)
    _detrend_linear_inplace(raw)
    raw *= _taper(raw.shape[-1], config.taper_fraction)
    velocity = _bandpass_and_resample(raw, float(sampling_rate), config) / sensitivity

    pad = int(round(config.padding_s * config.target_rate_hz))
    window = velocity[..., pad : pad + config.n_samples]
    if window.shape[-1] != config.n_samples:  # resampling rounding can leave one sample short
        window = np.pad(window, [(0, 0), (0, 0), (0, config.n_samples - window.shape[-1])])

    peak = np.abs(window).max(axis=(1, 2), keepdims=True)
    waveform = window / np.where(peak > 0, peak, 1.0)
    spectrogram = _log_spectrogram(window, config)
    return {"spectrogram": spectrogram.astype(np.float32), "waveform": waveform.astype(np.float32)}
