"""Full instrument response in the frequency domain, for removal inside preprocess's FFT.

``velocity_response`` evaluates a channel's response to ground velocity with ObsPy's
evalresp, ``inverse_response`` inverts it with ObsPy's water-level rule, and
``ResponseCache`` keeps the inverses as preprocessing applies them, because one channel
epoch is used by thousands of recordings of the same length and evalresp costs up to
~1 s for channels with long FIR cascades.

ObsPy behaviour this module relies on (ObsPy 1.5):

* ``Trace.remove_response`` calls ``Response.get_evalresp_response(delta, nfft)``,
  a thin wrapper that evaluates ``get_evalresp_response_for_frequencies`` at
  ``np.linspace(0, fs / 2, nfft // 2 + 1)``. That grid equals ``np.fft.rfftfreq``
  only for even ``nfft`` (ObsPy always pads to an even length); for odd ``n`` it is
  wrong, so we call ``get_evalresp_response_for_frequencies`` with ``rfftfreq``.
* A StationXML channel with only ``<InstrumentSensitivity>`` reads as a ``Response``
  with no stages: evalresp raises ``ObsPyException`` and ``remove_response`` an
  ``IndexError``. A channel without ``<Response>`` has ``channel.response is None``.
* ``output="VEL"`` converts displacement (M, CM, ...) and acceleration (M/S**2, ...)
  input units, but silently returns the unconverted response for other units
  (PA, V, COUNTS, strain), so those are refused here.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np
from obspy.core.inventory.response import PolynomialResponseStage, Response

# Input units evalresp converts to velocity: length, length/time, length/time**2 in the
# spellings ObsPy maps (Response._call_eval_resp_for_frequencies).
_GROUND_MOTION_UNITS = frozenset(
    {f"{p}{s}" for p in ("M", "NM", "CM", "MM")
     for s in ("", "/S", "/SEC", "/S**2", "/(S**2)", "/SEC**2", "/(SEC**2)")} | {"M/S/S"}
)


def response_kind(response: Response | None) -> str:
    """``"full"``, ``"sensitivity"`` or ``"none"``: what can be removed for a channel.

    ``"full"``: stages evalresp can evaluate (poles/zeros, coefficients, FIR, gains).
    ``"sensitivity"``: only a usable (finite, non-zero) overall sensitivity, e.g. a
    StationXML ``<Response>`` holding just ``<InstrumentSensitivity>``.
    ``"none"``: ``None`` (no ``<Response>`` element) or nothing usable. Polynomial
    stages are not linear, so they are never ``"full"``; ObsPy does not use evalresp
    for them either.
    """
    if response is None:
        return "none"
    stages = response.response_stages or []
    if stages and not any(isinstance(s, PolynomialResponseStage) for s in stages):
        return "full"
    sens = response.instrument_sensitivity
    value = getattr(sens, "value", None)
    if value is not None and np.isfinite(value) and value != 0:
        return "sensitivity"
    return "none"


def has_full_response(response: Response | None) -> bool:
    """True if the response has stages to evaluate (see ``response_kind``)."""
    return response_kind(response) == "full"


def _input_units(response: Response) -> str | None:
    # evalresp takes the units from stage 1, falling back to the overall sensitivity's
    # when stage 1 has none (as ObsPy's own fix-up does).
    units = response.response_stages[0].input_units
    if not units and response.instrument_sensitivity is not None:
        units = response.instrument_sensitivity.input_units
    return units.strip().upper() if units else None


def velocity_response(
    response: Response | None, sampling_rate: float, n: int, channel: str | None = None
) -> np.ndarray:
    """Response to ground velocity, counts per (m/s), at ``np.fft.rfftfreq(n, 1/sampling_rate)``.

    Parameters: ``response`` of one channel epoch, ``sampling_rate`` in Hz, ``n`` the
    length (samples) of the FFT it will be applied to; ``channel`` only names the
    channel in error messages. Returns complex128, shape ``(n // 2 + 1,)``, with the
    same sign convention as ``np.fft.rfft`` (it is what ``remove_response`` divides by).

    Raises ``ValueError`` for sensitivity-only or missing responses, input units that
    are not ground motion, and non-finite evalresp output.
    """
    name = channel or "channel"
    if sampling_rate <= 0 or n < 2:
        raise ValueError(f"{name}: need sampling_rate > 0 and n >= 2, got {sampling_rate}, {n}")
    kind = response_kind(response)
    if kind != "full":
        detail = "only an overall sensitivity" if kind == "sensitivity" else "no instrument response"
        raise ValueError(f"{name}: response has no stages to evaluate ({detail})")
    units = _input_units(response)
    if units not in _GROUND_MOTION_UNITS:
        raise ValueError(f"{name}: input units {units!r} are not displacement, velocity or acceleration")
    freqs = np.fft.rfftfreq(n, d=1.0 / sampling_rate)
    h = np.asarray(response.get_evalresp_response_for_frequencies(freqs, output="VEL"), dtype=np.complex128)
    if h.shape != freqs.shape or not np.all(np.isfinite(h)):
        raise ValueError(f"{name}: evalresp returned a non-finite or misshaped response")
    return h


def inverse_response(spectrum: np.ndarray, water_level_db: float | None) -> np.ndarray:
    """1 / H with the water level of ``Trace.remove_response``, over the last axis.

    ``spectrum``: complex, ``(..., n_freq)``, rfft frequencies along the last axis
    (DC first). ``water_level_db``: as ``obspy.signal.invsim.invert_spectrum``: the
    level is ``max|H| * 10**(-db/20)`` per row (ObsPy's whole 1-D spectrum); values with
    ``0 < |H| < level`` are raised to the level keeping their phase, then inverted.
    ``None``: plain 1/H, and the DC value is set to 0 as ``remove_response`` does.
    Exact zeros invert to 0 in both cases (ObsPy: also with a water level; without one
    it would give inf away from DC). Returns complex128 of the same shape; the input
    is not modified (ObsPy's version works in place).
    """
    h = np.asarray(spectrum, dtype=np.complex128)
    amp = np.abs(h)
    if water_level_db is not None:
        level = amp.max(axis=-1, keepdims=True) * 10.0 ** (-water_level_db / 20.0)
        low = (amp < level) & (amp > 0.0)
        # Same arithmetic as invert_spectrum (h * (level / |h|)) so results agree bit for bit.
        h = np.where(low, h * (level / np.where(low, amp, 1.0)), h)
        amp = np.where(low, level, amp)
    out = np.zeros_like(h)
    np.divide(1.0, h, out=out, where=amp > 0.0)
    if water_level_db is None:
        out[..., 0] = 0.0
    return out


class ResponseCache:
    """Per-process LRU cache of inverse responses, as preprocessing applies them.

    ``inverse(key, response, sampling_rate, n, water_level_db, n_bins)`` is
    ``inverse_response(velocity_response(response, sampling_rate, n), water_level_db)``
    cut to its first ``n_bins`` bins (the ones that survive resampling), evaluated once
    per channel epoch ``key`` (e.g. ``("NET.STA.LOC.CHA", epoch_start_posix)``),
    sampling rate, window length, water level and bins: one epoch serves thousands of
    recordings, and evalresp plus the inversion cost ~15 ms. Memory: ``n_bins``
    complex128 values per entry, 32 kB for the default 40 Hz output of a 100 s window;
    the default 512 entries ~16 MB. Each worker process holds its own (a pickled cache
    arrives empty).

    Returned arrays are read-only. Evaluation runs under the lock, so concurrent
    threads evaluate one key once (and evalresp, which keeps C globals, never runs
    twice at a time from here). Failures are not cached.
    """

    def __init__(self, maxsize: int = 512):
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __getstate__(self) -> dict:
        return {"maxsize": self.maxsize}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["maxsize"])

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def inverse(
        self, key: Hashable, response: Response | None, sampling_rate: float, n: int,
        water_level_db: float | None, n_bins: int | None = None, channel: str | None = None,
    ) -> np.ndarray:
        """m/s per count at the first ``n_bins`` (default all) rfft bins of an
        ``n``-sample window: complex128 ``(n_bins,)``. ``channel`` (for error messages)
        defaults to ``str(key)``."""
        n_bins = n // 2 + 1 if n_bins is None else int(n_bins)
        full_key = (key, float(sampling_rate), int(n), water_level_db, n_bins)
        with self._lock:
            entry = self._entries.get(full_key)
            if entry is not None:
                self._entries.move_to_end(full_key)
                self.hits += 1
                return entry
            h = velocity_response(response, sampling_rate, n, channel or str(key))
            entry = np.ascontiguousarray(inverse_response(h, water_level_db)[:n_bins])
            entry.setflags(write=False)
            self.misses += 1
            self._entries[full_key] = entry
            if len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
            return entry


#: The process-wide cache preprocessing uses.
default_cache = ResponseCache()
