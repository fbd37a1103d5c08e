"""Turn the three request forms into station recordings, then into model inputs.

All three forms end in :func:`raydisc.data.ingest.cut_recordings_from_stream` (the
arrays form is wrapped into an ObsPy stream first) and then
:func:`raydisc.features.batch.preprocess_recordings` with the bundle's config: the same
cutting rules, reject reasons and preprocessing as training. Nothing here touches Ray.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import obspy

from .. import storage
from ..config import PreprocessConfig
from ..data.ingest import (
    ChannelInfo,
    EventInfo,
    IngestError,
    Recording,
    Reject,
    StationInfo,
    cut_recordings_from_stream,
    read_catalog,
    read_mseed_bytes,
    read_stations,
)
from ..data.chunks import preprocess_isolating
from ..data.inventory import parse_stationxml
from ..features.batch import preprocess_recordings
from .locations import AllowedLocations, LocationRefused
from .schemas import MAX_STATIONS, ArraysRequest, MseedMetadata, UriRequest, posix_seconds

#: Reference time (POSIX s) that arrays-form windows are placed around: any fixed time
#: works, because the arrays form gives times relative to the reference.
_ARRAYS_REFERENCE = 1.0e9


class InputError(ValueError):
    """A request the server cannot classify; ``status`` is the HTTP status to answer with
    and ``rejects`` lists the stations (with reasons) that caused it."""

    def __init__(self, detail: str, status: int = 422, rejects: list[Reject] | None = None):
        super().__init__(detail)
        self.status = status
        self.rejects = list(rejects or [])


#: Azimuth and dip (degrees) of a request's Z, N and E channels.
_ORIENTATION = {"Z": (0.0, -90.0), "N": (0.0, 0.0), "E": (90.0, 0.0)}


def _station_info(key_parts: tuple[str, str, str], lat: float, lon: float, elev: float,
                  channels: dict[str, str], rate: float, sensitivity: dict[str, float]) -> StationInfo:
    """A station from request metadata: one channel per component given, each with its
    overall sensitivity (counts per m/s), operating at all times."""
    network, station, location = key_parts
    infos = tuple(
        ChannelInfo(code=code, location=location, azimuth=_ORIENTATION[c][0], dip=_ORIENTATION[c][1],
                    sampling_rate=float(rate), start=-np.inf, end=np.inf, response_kind="sensitivity",
                    sensitivity=float(sensitivity[c]))
        for c, code in channels.items())
    return StationInfo(network, station, lat, lon, elev, infos)


def read_mseed(data: bytes, name: str = "uploaded miniSEED") -> obspy.Stream:
    """Parse miniSEED bytes with the project's reader; InputError (422) if they are
    empty, truncated or unreadable."""
    try:
        return read_mseed_bytes(data, name)
    except IngestError as exc:
        raise InputError(str(exc)) from None


def stations_from_stationxml(data: bytes) -> dict[str, StationInfo]:
    """Parse uploaded StationXML with the project's reader
    (:func:`raydisc.data.inventory.parse_stationxml`); InputError (422) if it is not StationXML."""
    try:
        return parse_stationxml(data, "uploaded StationXML")
    except IngestError as exc:
        raise InputError(str(exc)) from None


def recordings_from_mseed(
    data: bytes, metadata: MseedMetadata, config: PreprocessConfig, stationxml: bytes | None = None
) -> tuple[list[Recording], list[Reject]]:
    """Cut recordings from an uploaded miniSEED file.

    Station metadata comes from ``stationxml`` when given (then ``metadata.picks`` give
    the P picks), else from ``metadata.stations`` (each with its own ``p_time``).
    """
    stream = read_mseed(data)
    n_stations = len({(tr.stats.network, tr.stats.station, tr.stats.location) for tr in stream})
    if n_stations > MAX_STATIONS:
        raise InputError(f"the miniSEED holds {n_stations} stations; at most {MAX_STATIONS} per request")
    event = metadata.event
    picks: dict[str, dict[str, float]] = {k: {"P": posix_seconds(t)} for k, t in metadata.picks.items()}
    if stationxml is not None:
        stations = stations_from_stationxml(stationxml)
    else:
        if not metadata.stations:
            raise InputError("metadata.stations is empty and no StationXML was uploaded: "
                             "station coordinates, channels, sampling rate and sensitivity are needed")
        stations = {}
        for s in metadata.stations:
            if "Z" not in s.channels:
                raise InputError(f"station {s.key}: channels must include the vertical (Z)")
            missing = [c for c in s.channels if c not in s.sensitivity]
            if missing:
                raise InputError(f"station {s.key}: sensitivity lacks component(s) {missing} of channels")
            stations[f"{s.network}.{s.station}"] = _station_info(
                (s.network, s.station, s.location), s.latitude, s.longitude, s.elevation_m, s.channels,
                s.sampling_rate_hz, s.sensitivity)
            if s.p_time is not None:
                picks.setdefault(s.key, {})["P"] = posix_seconds(s.p_time)
    origin = posix_seconds(event.origin_time) if event.origin_time is not None else None
    if config.window_reference == "origin" and origin is None:
        raise InputError("this bundle cuts windows relative to the origin time: metadata.event.origin_time is required")
    info = EventInfo(event.event_id, "request", "", None, origin if origin is not None else float("nan"),
                     event.latitude, event.longitude, event.depth_km, float("nan"), picks)
    return cut_recordings_from_stream(stream, info, stations, config, source="upload")


def recordings_from_arrays(request: ArraysRequest, config: PreprocessConfig) -> tuple[list[Recording], list[Reject]]:
    """Wrap each station's arrays into ObsPy traces placed ``start_s`` after a fixed
    reference time, and cut them like a file (same checks: too short, NaN, clipping...)."""
    traces, stations, rejects = [], {}, []
    for s in request.stations:
        rows = s.counts
        if len(rows) not in (1, 3) or len({len(r) for r in rows}) != 1 or len(s.sensitivity) != len(rows):
            shape = f"{len(rows)} rows of lengths {[len(r) for r in rows]}, {len(s.sensitivity)} sensitivities"
            rejects.append(Reject("request", request.event.event_id, s.key, "missing_component",
                                  "counts must be 3 rows (Z, N, E) or 1 row (Z) of equal length, with one "
                                  f"sensitivity per row; got {shape}", "arrays"))
            continue
        components = config.components[: len(rows)]
        # The first band of the bundle's channel priority, so that these channels are chosen.
        channels = {c: f"{config.channel_priority[0]}{c}" for c in components}
        stations[f"{s.network}.{s.station}"] = _station_info(
            (s.network, s.station, s.location), s.latitude, s.longitude, 0.0, channels, s.sampling_rate_hz,
            dict(zip(components, s.sensitivity)))
        start = obspy.UTCDateTime(_ARRAYS_REFERENCE + s.start_s)
        for component, row in zip(components, rows):
            header = {"network": s.network, "station": s.station, "location": s.location,
                      "channel": channels[component], "sampling_rate": s.sampling_rate_hz, "starttime": start}
            traces.append(obspy.Trace(np.asarray(row, dtype=np.float64), header))
    ev = request.event
    picks = {f"{s.network}.{s.station}.{s.location}": {"P": _ARRAYS_REFERENCE} for s in request.stations}
    # The arrays' times are relative to the window reference itself: nothing to predict.
    config = dataclasses.replace(config, pick_source="catalog") if config.window_reference == "p_arrival" else config
    info = EventInfo(ev.event_id, "request", "", None, _ARRAYS_REFERENCE, ev.latitude, ev.longitude,
                     ev.depth_km, float("nan"), picks)
    found, cut_rejects = cut_recordings_from_stream(obspy.Stream(traces), info, stations, config, source="arrays")
    return found, rejects + cut_rejects


def recordings_from_uris(
    request: UriRequest, config: PreprocessConfig, allowed: AllowedLocations
) -> tuple[list[Recording], list[Reject], str]:
    """Read miniSEED, StationXML and QuakeML from storage with the project's readers and
    cut the event's recordings; returns ``(recordings, rejects, event_id)``.

    Each URI is checked against ``allowed`` first (403 unless all three lie under an
    allowed root) and the normalised form that was checked is what is read.
    """
    try:
        mseed_uri, stationxml_uri, quakeml_uri = (
            allowed.check(u) for u in (request.mseed_uri, request.stationxml_uri, request.quakeml_uri))
    except LocationRefused as exc:
        raise InputError(str(exc), status=403) from None
    try:
        events = read_catalog(quakeml_uri, "request")
        stations = read_stations(stationxml_uri)
        data = storage.read_bytes(mseed_uri)
    except FileNotFoundError:
        raise InputError(f"{request.mseed_uri}: miniSEED file not found", status=404) from None
    except IngestError as exc:
        raise InputError(str(exc), status=404 if "not found" in str(exc) else 422) from None
    if request.event_id is not None:
        events = [e for e in events if e.event_id == request.event_id]
        if not events:
            raise InputError(f"{request.quakeml_uri}: no event {request.event_id!r}", status=404)
    if len(events) != 1:
        raise InputError(f"{request.quakeml_uri}: {len(events)} events; name one with event_id")
    found, rejects = cut_recordings_from_stream(read_mseed(data, request.mseed_uri), events[0], stations, config,
                                                source=request.mseed_uri)
    return found, rejects, events[0].event_id


def model_inputs(recordings: list[Recording], config: PreprocessConfig, kind: str) -> np.ndarray:
    """``(n, *input_shape)`` float32 inputs of ``kind`` ("spectrogram"/"waveform") through
    the one preprocessing entry point."""
    return preprocess_recordings(recordings, config, (kind,))[kind]


def isolated_inputs(recordings: list[Recording], config: PreprocessConfig, kind: str, source: str = "request"
                    ) -> tuple[list[Recording], np.ndarray, list[Reject]]:
    """The usable recordings, their ``(n, *input_shape)`` float32 inputs of ``kind`` and
    ``preprocessing_error`` rejects for the others (:func:`raydisc.data.chunks.preprocess_isolating`,
    the jobs' and the Python API's failure isolation)."""
    kept, inputs, rejects = preprocess_isolating(recordings, config, source, (kind,))
    return kept, inputs[kind], rejects


__all__ = ["InputError", "isolated_inputs", "model_inputs", "read_mseed",
           "recordings_from_arrays", "recordings_from_mseed", "recordings_from_uris",
           "stations_from_stationxml"]
