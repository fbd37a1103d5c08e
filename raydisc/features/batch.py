"""Batched preprocessing of station recordings: :func:`preprocess` over recordings of
any mix of sampling rates, with each channel's full response removed where it has one.

Recordings are duck-typed (:class:`BatchRecording`, which
:class:`raydisc.data.recordings.Recording` satisfies) so that features/ does not import
data/ (data/ imports features/).
"""
from __future__ import annotations

from typing import Any, Collection, Protocol, Sequence

import numpy as np

from ..config import PreprocessConfig
from .preprocess import INPUT_KINDS, output_bins, preprocess
from .response import default_cache


class BatchRecording(Protocol):
    """What :func:`preprocess_recordings` reads of a recording: float64 ``counts``
    ``(3, n)``, bool ``present`` ``(3,)``, ``sensitivity`` counts per (m/s) ``(3,)``,
    ``sampling_rate`` Hz, per component its channel (``response_kind``, ``response``,
    ``response_key(network, station)``) or None, and ``station.network/station``."""

    counts: np.ndarray
    present: np.ndarray
    sensitivity: np.ndarray
    sampling_rate: float
    channels: tuple[Any, ...]
    station: Any


#: Recordings per vectorized :func:`preprocess` call. Small blocks keep the float64
#: intermediates (3 x 20,000 samples = 480 kB per step for a 200 Hz recording) in the
#: CPU caches: at 200 Hz, blocks of 4-8 took 0.33-0.37 ms per recording, blocks of 32
#: 0.45-0.52 and single recordings 0.47 (with reuse_freed_array_memory; 2-core EPYC).
PREPROCESS_BLOCK = 8


def _inverse_of(recording: BatchRecording, component: int, n: int, n_keep: int, config: PreprocessConfig) -> np.ndarray | float:
    """m/s per count of one component at the first ``n_keep`` rfft bins of its
    ``n``-sample window: the channel's full response inverted with the water level
    (evaluated once per channel epoch, window length and process), else 1 / sensitivity."""
    channel = recording.channels[component]
    if channel is None or channel.response_kind != "full" or config.response_removal != "full":
        return 1.0 / recording.sensitivity[component]
    key = channel.response_key(recording.station.network, recording.station.station)
    return default_cache.inverse(key, channel.response, recording.sampling_rate, n, config.water_level_db, n_keep,
                                 channel=key[0])


def _inverse_responses(recordings: Sequence[BatchRecording], n: int, rate: float, config: PreprocessConfig) -> np.ndarray | None:
    """complex ``(len(recordings), 3, output_bins)`` for :func:`preprocess`, or None
    when no recording has a full response to remove (then the sensitivity suffices)."""
    if config.response_removal != "full" or not any(
            ch is not None and ch.response_kind == "full" for r in recordings for ch in r.channels):
        return None
    n_keep = output_bins(n, rate, config)
    out = np.empty((len(recordings), 3, n_keep), dtype=np.complex128)
    for i, r in enumerate(recordings):
        for c in range(3):
            out[i, c] = _inverse_of(r, c, n, n_keep, config)
    return out


def preprocess_recordings(recordings: Sequence[BatchRecording], config: PreprocessConfig,
                          kinds: Collection[str] = INPUT_KINDS) -> dict[str, np.ndarray]:
    """Run :func:`raydisc.features.preprocess` over recordings of any mix of sampling
    rates and component sets, vectorized over blocks of :data:`PREPROCESS_BLOCK`
    recordings of one rate, with each channel's full response removed where it has one
    (``config.response_removal``), and return inputs of ``kinds``
    ``(len(recordings), *shape)`` float32 in the original order."""
    shapes = {"spectrogram": config.spectrogram_shape, "waveform": config.waveform_shape}
    out = {kind: np.empty((len(recordings), *shapes[kind]), np.float32) for kind in kinds}
    rates = np.array([r.sampling_rate for r in recordings])
    for rate in np.unique(rates):
        same_rate = np.flatnonzero(rates == rate)
        for start in range(0, len(same_rate), PREPROCESS_BLOCK):
            rows = same_rate[start : start + PREPROCESS_BLOCK]
            block = [recordings[i] for i in rows]
            counts = np.stack([r.counts for r in block])
            inputs = preprocess(
                counts,
                float(rate),
                np.stack([r.sensitivity for r in block]),
                config,
                present=np.stack([r.present for r in block]),
                inverse_response=_inverse_responses(block, counts.shape[-1], float(rate), config),
                kinds=kinds,
            )
            for kind, values in inputs.items():
                out[kind][rows] = values
    return out


__all__ = ["BatchRecording", "PREPROCESS_BLOCK", "preprocess_recordings"]
