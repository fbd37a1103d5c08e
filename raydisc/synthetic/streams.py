"""From synthesised ground motion to the miniSEED of one event, as the plan records it.

The synthesis (:mod:`.waveforms`) gives every station Z, N, E counts at the region's
rate. Per sensor of the :mod:`.stations` plan, the recorded channels are projected onto
their orientations (numbered horizontals at azimuth theta and theta + 90), resampled
band-limited to the sensor's rate, rounded to int32 counts, clipped, and written as
Steim2 miniSEED. Corrupt files are spoiled here too.
"""
from __future__ import annotations

import io
import math

import numpy as np
from obspy import Stream, Trace
from scipy import signal

from . import physics
from .events import SyntheticEvent, recording_rng
from .specs import RegionSpec
from .stations import StationPlan, resample_factors
from .waveforms import RegionGrid, synthesize_series, to_counts

MSEED_RECORD_LENGTH = 4096
#: Half-length of scipy's default resample_poly filter, in samples of the up-sampled
#: rate per max(up, down).
_POLY_HALF_LENGTH = 10
#: Bytes at the start of each record overwritten by garbling (fixed header + blockettes).
GARBLE_BYTES = 64


def _project(series: np.ndarray, channels) -> np.ndarray:
    """Ground motion ``(3, n)`` (Z, N, E) seen by each channel: ``(n_channels, n)``.

    Channels along Z, N or E take that component as it is (bit for bit); numbered
    horizontals take ``N cos(az) + E sin(az)``.
    """
    rows = []
    for ch in channels:
        p = np.asarray(ch.projection)
        axis = np.flatnonzero(p)
        if len(axis) == 1 and p[axis[0]] == 1.0:
            rows.append(series[axis[0]])
        else:
            rows.append((p[:, None] * series.astype(np.float64)).sum(axis=0).astype(np.float32))
    return np.stack(rows)


def resample(series: np.ndarray, n_samples: int, up: int, down: int) -> np.ndarray:
    """Band-limited resampling of the first ``n_samples`` of the circular series
    ``series`` (``(..., n_fft)``) by ``up / down`` (polyphase FIR with a Kaiser
    window, anti-aliasing when down-sampling); returns ``(..., n_samples * up // down)``
    with sample 0 at the same time as the input's sample 0.

    The series is extended circularly on both sides before filtering (the FFT synthesis
    is periodic), so the window has no filter transients at its ends.
    """
    if up == down == 1:
        return series[..., :n_samples]
    need = math.ceil(_POLY_HALF_LENGTH * max(up, down) / up) + 1
    pad = down * math.ceil(need / down)  # a multiple of down: output stays on the grid
    index = np.arange(-pad, n_samples + pad)
    extended = np.take(series, index, axis=-1, mode="wrap")
    out = signal.resample_poly(extended, up, down, axis=-1)
    start = pad * up // down
    return out[..., start : start + n_samples * up // down]


def sensor_rows(plan: tuple[StationPlan, ...]) -> np.ndarray:
    """Station indices with a second sensor, int ``(k,)``."""
    return np.array([s.index for s in plan if len(s.sensors) > 1], dtype=np.int64)


def event_stream(
    grid: RegionGrid, plan: tuple[StationPlan, ...], event: SyntheticEvent, rng: np.random.Generator
) -> Stream:
    """Synthesise ``event`` and return the traces every sensor of ``plan`` records,
    station by station, sensor by sensor, in channel order; int32 counts starting
    ``pre_origin_s`` before the true origin."""
    spec = grid.spec
    rows = sensor_rows(plan)
    second_response = None
    if len(rows):
        instrument2 = next(s.sensors[1].instrument for s in plan if len(s.sensors) > 1)
        second_response = (rows, physics.instrument_response(grid.freqs, instrument2))
    primary, second = synthesize_series(grid, event, rng, second_response)
    second_of = {int(k): j for j, k in enumerate(rows)}
    start = event.origin_time - spec.pre_origin_s
    traces = []
    for station in plan:
        for sensor in station.sensors:
            series = primary[station.index] if sensor.primary else second[second_of[station.index]]
            up, down = resample_factors(sensor.sampling_rate_hz, spec.sampling_rate_hz)
            if up == down == 1:  # only the window: no filter, no circular padding needed
                data = _project(series[:, : grid.n_samples], sensor.channels)
            else:
                data = resample(_project(series, sensor.channels), grid.n_samples, up, down)
            counts = to_counts(data, sensor.instrument.clip_counts)  # data is a fresh array
            for channel, values in zip(sensor.channels, counts):
                traces.append(
                    Trace(
                        data=values,
                        header={
                            "network": grid.network.code,
                            "station": station.code,
                            "location": sensor.location,
                            "channel": channel.code,
                            "sampling_rate": sensor.sampling_rate_hz,
                            "starttime": start,
                        },
                    )
                )
    return Stream(traces)


def mseed_bytes(stream: Stream) -> bytes:
    buffer = io.BytesIO()
    stream.write(buffer, format="MSEED", encoding="STEIM2", reclen=MSEED_RECORD_LENGTH)
    return buffer.getvalue()


def corrupt(data: bytes, mode: str, spec: RegionSpec, seed: int, index: int) -> bytes:
    """Spoil the miniSEED ``data`` of event ``index`` (seeded, reproducible).

    ``garbled``: the first :data:`GARBLE_BYTES` of every record are random bytes, so no
    record header parses and ObsPy cannot read the file (``obspy.read`` raises).
    ``truncated``: cut 100 bytes or more into a record between 30 % and 70 % of the file;
    ObsPy reads the complete records before the cut and drops the incomplete one
    (sometimes with an ``InternalMSEEDWarning``), without raising.
    """
    rng = recording_rng(spec, seed, 2, index)
    if mode == "garbled":
        out = bytearray(data)
        for offset in range(0, len(out), MSEED_RECORD_LENGTH):
            out[offset : offset + GARBLE_BYTES] = rng.integers(0, 256, GARBLE_BYTES, dtype=np.uint8).tobytes()
        return bytes(out)
    if mode == "truncated":
        n_records = len(data) // MSEED_RECORD_LENGTH
        record = int(rng.integers(int(0.3 * n_records), max(int(0.7 * n_records), int(0.3 * n_records) + 1)))
        return data[: record * MSEED_RECORD_LENGTH + int(rng.integers(100, MSEED_RECORD_LENGTH - 100))]
    raise ValueError(f"unknown corrupt mode {mode!r}")
