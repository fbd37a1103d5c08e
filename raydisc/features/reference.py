"""ObsPy's own per-trace processing chain: the reference that the fast path is validated against.

:func:`preprocess <raydisc.features.preprocess.preprocess>` does detrending, tapering,
instrument correction, band-pass and resampling of a whole batch in one FFT round trip.
:func:`obspy_chain` does the same steps the textbook way, one trace at a time with
ObsPy's methods and the parameters of a :class:`~raydisc.config.PreprocessConfig`, so
that tests can measure how far the two are apart (tests/test_preprocess_obspy_chain.py)
and the benchmark can time the naive loop (bench/preprocess.py). Model inputs never
come from here.
"""
from __future__ import annotations

import numpy as np
import obspy
from obspy.core.inventory import Inventory, Response

from ..config import PreprocessConfig


def obspy_chain(
    trace: obspy.Trace,
    config: PreprocessConfig,
    *,
    response: Response | None = None,
    inventory: Inventory | None = None,
    sensitivity: float | None = None,
) -> np.ndarray:
    """Ground velocity (m/s) of one component's raw window, float64 ``(config.n_samples,)``
    at ``config.target_rate_hz``, by ObsPy's chain: ``detrend("linear")``,
    ``taper(taper_fraction)``, instrument correction, zero-phase Butterworth
    ``filter("bandpass")``, ``resample`` and the padding cut off.

    ``trace``: raw counts from ``padding_s`` before the window start to ``padding_s``
    after its end (as :func:`~raydisc.features.preprocess.cut_window_samples` cuts);
    it is not changed. The instrument correction is ``remove_response(output="VEL",
    water_level=config.water_level_db)`` with the channel's ``response`` or the
    ``inventory`` holding it, else a division by the overall ``sensitivity`` (counts
    per m/s), which is what ``remove_sensitivity`` does. The resampling keeps ObsPy's
    FFT method but without its default Hann window in the frequency domain: the fast
    path truncates the spectrum, and the band-pass has already removed what the
    window would attenuate above ``freqmax_hz``.
    """
    if (response is None) + (inventory is None) + (sensitivity is None) != 2:
        raise ValueError("give exactly one of response, inventory and sensitivity")
    trace = trace.copy()
    trace.data = trace.data.astype(np.float64)
    trace.detrend("linear")
    trace.taper(config.taper_fraction)
    if sensitivity is not None:
        trace.data /= sensitivity
    else:
        if response is not None:
            trace.stats.response = response
        trace.remove_response(inventory=inventory, output="VEL", water_level=config.water_level_db)
    trace.filter("bandpass", freqmin=config.freqmin_hz, freqmax=config.freqmax_hz,
                 corners=config.filter_corners, zerophase=True)
    trace.resample(config.target_rate_hz, window=None)
    pad = int(round(config.padding_s * config.target_rate_hz))
    window = trace.data[pad : pad + config.n_samples]
    return np.pad(window, (0, config.n_samples - len(window)))


__all__ = ["obspy_chain"]
