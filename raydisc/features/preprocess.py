"""The one preprocessing function shared by training, evaluation, reprocessing and serving.

Everything here is vectorized over a batch of recordings that share a sampling rate:
no Python loop runs over traces or samples. Recordings may lack components (a
vertical-only station): ``present`` says which are there, and absent ones are zero in
the output and left out of its normalisation, so a Z-only recording gives the same
vertical channel as the same station's 3-component recording with the horizontals
dropped (:func:`drop_components` does that to training inputs).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Collection

import numpy as np
from scipy import signal

from ..config import PreprocessConfig

#: The model input kinds :func:`preprocess` can return.
INPUT_KINDS: tuple[str, ...] = ("spectrogram", "waveform")

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


@lru_cache(maxsize=32)
def _taper(n: int, fraction: float) -> np.ndarray:
    return signal.windows.tukey(n, alpha=2 * fraction) if fraction > 0 else np.ones(n)


@lru_cache(maxsize=32)
def _tapered_trend_basis(n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """For a linear detrend and taper of ``n``-sample windows: the centred sample index
    ``t`` scaled by ``1 / (t @ t)``, ``(n,)`` (so ``x @ it`` is the least-squares slope
    per sample), and the tapered basis of the line, ``(2, n)``: ``[w, t*w]``."""
    t = np.arange(n, dtype=np.float64)
    t -= t.mean()
    taper = _taper(n, fraction)
    return t / (t @ t), np.stack([taper, t * taper])


def _detrend_and_taper(counts: np.ndarray, fraction: float) -> np.ndarray:
    """float64 ``(batch, 3, n)`` windows with the least-squares line removed and the
    taper applied: ``x*w - (m*w + s*t*w)`` for mean ``m`` and slope ``s``.

    The tapered line comes from one matrix product with a cached basis, so the raw
    window, the largest array of the pipeline, is passed over three times instead of
    seven; the subtraction stays in the time domain, before the FFT, so a digitizer
    offset of 10^6 counts over a signal of a few counts costs no precision.
    """
    n = counts.shape[-1]
    t_scaled, basis = _tapered_trend_basis(n, fraction)
    coefficients = np.stack([counts.mean(axis=-1), counts @ t_scaled], axis=-1)  # (batch, 3, 2)
    x = counts * basis[0]
    x -= coefficients @ basis
    return x


def output_bins(n: int, sampling_rate: float, config: PreprocessConfig) -> int:
    """rfft bins of an ``n``-sample raw window that survive resampling to the target
    rate (0 .. target Nyquist): the bins an inverse response is needed for."""
    n_out = int(round(n * config.target_rate_hz / sampling_rate))
    return min(n // 2 + 1, n_out // 2 + 1)


def _bandpass_and_resample(counts: np.ndarray, sampling_rate: float, config: PreprocessConfig,
                           inverse_response: np.ndarray | None = None) -> np.ndarray:
    """Detrend, taper, zero-phase band-pass, instrument correction and resampling to
    ``config.target_rate_hz`` in one FFT round trip.

    The band-pass removes everything above ``freqmax_hz`` (< the target Nyquist), so
    truncating the spectrum at the target Nyquist frequency resamples without aliasing;
    the inverse response (``(batch, 3, output_bins)`` complex, m/s per count) is applied
    to the kept bins only. The taper has brought both ends to zero, so the FFT's
    circular wrap-around only touches the padding that is cut off afterwards.
    """
    n = counts.shape[-1]
    n_out = int(round(n * config.target_rate_hz / sampling_rate))
    n_keep = output_bins(n, sampling_rate, config)
    spectrum = np.fft.rfft(_detrend_and_taper(counts, config.taper_fraction), axis=-1)[..., :n_keep]
    spectrum *= _bandpass_gain(n, float(sampling_rate), config)[:n_keep]
    if inverse_response is not None:
        spectrum *= inverse_response
    return np.fft.irfft(spectrum, n=n_out, axis=-1) * (n_out / n)


def _log_spectrogram(x: np.ndarray, present: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """(B, 3, n_samples) float64 -> log10 STFT power normalised over the present
    components (``present``: bool (B, 3)), absent components zero: (B, 3, n_freq, n_time).

    Stays in float64: the log floor sits 100 dB below the loudest frame, where a
    float32 window or FFT (rounding ~1e-7 of the peak amplitude) would already move the
    output by ~1e-3.
    """
    n_win, hop = config.stft_window_samples, config.stft_hop_samples
    frames = np.lib.stride_tricks.sliding_window_view(x, n_win, axis=-1)[..., ::hop, :]
    spectrum = np.fft.rfft(frames * _hann(n_win), axis=-1)
    power = spectrum.real ** 2 + spectrum.imag ** 2  # (B, 3, n_time, n_freq)
    floor = _LOG_FLOOR_RELATIVE * power.max(axis=(1, 2, 3), keepdims=True) + np.finfo(float).tiny
    log_power = np.log10(power + floor)
    return np.swapaxes(_standardize(log_power, present), -1, -2)


@lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    return signal.windows.hann(n, sym=False)


def _standardize(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation over the present components of each recording
    (``values`` (B, 3, ...), ``present`` bool (B, 3)); absent components become 0."""
    weight = present.reshape(*present.shape, *[1] * (values.ndim - 2)).astype(values.dtype)
    count = np.maximum(weight.sum(axis=1, keepdims=True) * np.prod(values.shape[2:]), 1)
    axes = tuple(range(1, values.ndim))
    mean = (values * weight).sum(axis=axes, keepdims=True) / count
    var = (((values - mean) * weight) ** 2).sum(axis=axes, keepdims=True) / count
    return (values - mean) / np.maximum(np.sqrt(var), 1e-6) * weight


def drop_components(x: np.ndarray, kind: str, keep: np.ndarray) -> np.ndarray:
    """Model inputs as if only the ``keep`` components (bool ``(B, 3)``) had been
    recorded: the others zeroed, the rest normalised again over what is kept (a
    spectrogram re-standardised, a waveform divided by its new peak). Since both
    normalisations are affine per recording this equals preprocessing the kept
    components alone, up to the spectrogram's log floor. ``x``: ``(B, 3, ...)`` float32
    inputs of ``kind`` (``"spectrogram"`` or ``"waveform"``); returns a new array."""
    keep = np.asarray(keep, dtype=bool)
    if kind == "spectrogram":
        present = keep & (np.abs(x).reshape(*x.shape[:2], -1).max(axis=-1) > 0)
        return _standardize(x.astype(np.float64), present).astype(np.float32)
    if kind != "waveform":
        raise ValueError(f"unknown input kind {kind!r}")
    kept = x * keep.reshape(*keep.shape, *[1] * (x.ndim - 2))
    peak = np.abs(kept).max(axis=tuple(range(1, x.ndim)), keepdims=True)
    return (kept / np.where(peak > 0, peak, 1.0)).astype(np.float32)


def preprocess(
    counts: np.ndarray,
    sampling_rate: float,
    sensitivity: np.ndarray,
    config: PreprocessConfig,
    *,
    present: np.ndarray | None = None,
    inverse_response: np.ndarray | None = None,
    kinds: Collection[str] = INPUT_KINDS,
) -> dict[str, np.ndarray]:
    """Turn raw station recordings into the model inputs.

    Parameters
    ----------
    counts:
        Raw digitizer counts, shape ``(batch, 3, n)`` with components Z, N, E
        (``config.components``; zeros where absent) and
        ``n == cut_window_samples(sampling_rate, config)``: the window from
        ``reference + window_start_s - padding_s`` on.
    sampling_rate:
        Sampling rate of ``counts`` in Hz (one rate per call; group by rate).
    sensitivity:
        Overall instrument sensitivity in counts per (m/s), shape ``(batch, 3)``; used
        for the components that ``inverse_response`` does not cover.
    config:
        The preprocessing configuration (travels inside shards and bundles).
    present:
        bool ``(batch, 3)``: the components recorded (default: all).
    inverse_response:
        complex ``(batch, 3, output_bins(n, sampling_rate, config))``: the inverse
        velocity response (m/s per count, water level applied) at the first rfft bins
        of the raw window, or None to divide by ``sensitivity`` alone. Rows of
        components without a full response hold ``1 / sensitivity``.
    kinds:
        The inputs wanted (of :data:`INPUT_KINDS`); a job that feeds one model asks for
        its kind only and skips the other's cost.

    Returns
    -------
    dict with, of ``kinds``, ``"spectrogram"``: float32 ``(batch, *config.spectrogram_shape)``
    and ``"waveform"``: float32 ``(batch, 3, config.n_samples)`` (see PreprocessConfig).
    """
    unknown = set(kinds) - set(INPUT_KINDS)
    if unknown:
        raise ValueError(f"unknown input kinds {sorted(unknown)}; known: {list(INPUT_KINDS)}")
    counts = np.asarray(counts)
    present = np.ones(counts.shape[:2], dtype=bool) if present is None else np.asarray(present, dtype=bool)
    if counts.ndim != 3 or counts.shape[1] != 3:
        raise ValueError(f"counts must have shape (batch, 3, n), got {counts.shape}")
    expected = cut_window_samples(sampling_rate, config)
    if counts.shape[-1] != expected:
        raise ValueError(
            f"counts have {counts.shape[-1]} samples per component; {expected} expected for "
            f"{sampling_rate} Hz and a {config.window_length_s} s window with {config.padding_s} s padding"
        )
    if present.shape != counts.shape[:2] or not present[:, 0].all():
        raise ValueError(f"present must be bool (batch, 3) with the vertical present, got shape {present.shape}")
    sensitivity = np.asarray(sensitivity, dtype=np.float64).reshape(counts.shape[0], 3, 1)
    if np.any(~np.isfinite(sensitivity)) or np.any(sensitivity == 0):
        raise ValueError("sensitivity must be finite and non-zero")

    if inverse_response is None:
        # Every step up to the resampling is linear, so the division by the sensitivity
        # is done on the short resampled output instead of the long raw window.
        velocity = _bandpass_and_resample(counts, float(sampling_rate), config) / sensitivity
    else:
        velocity = _bandpass_and_resample(counts, float(sampling_rate), config, inverse_response)
    velocity *= present[..., None]

    pad = int(round(config.padding_s * config.target_rate_hz))
    window = velocity[..., pad : pad + config.n_samples]
    if window.shape[-1] != config.n_samples:  # resampling rounding can leave one sample short
        window = np.pad(window, [(0, 0), (0, 0), (0, config.n_samples - window.shape[-1])])

    out = {}
    if "waveform" in kinds:
        peak = np.abs(window).max(axis=(1, 2), keepdims=True)
        out["waveform"] = (window / np.where(peak > 0, peak, 1.0)).astype(np.float32)
    if "spectrogram" in kinds:
        out["spectrogram"] = _log_spectrogram(window, present, config).astype(np.float32)
    return out
