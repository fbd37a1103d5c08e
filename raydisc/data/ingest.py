"""Read catalogs, inventories and waveforms, and cut station recordings.

The driver reads a region's QuakeML catalog and StationXML inventory once and turns them
into small plain records (:class:`EventInfo`, :class:`StationInfo`) that travel to the
workers; each worker reads one event's miniSEED file and cuts one
:class:`Recording` per station, or a :class:`Reject` that says why it could not.

QuakeML catalogs are read with lxml, not ObsPy: :func:`index_catalog` lists a file's
events (id, type, XML element) and :func:`parse_catalog_entries` reads from each event's
element just the fields of :class:`EventInfo` (preferred origin and magnitude, P and S
picks), following the QuakeML 1.2 BED semantics that ObsPy's reader applies, with
times parsed by :class:`obspy.UTCDateTime`. That is for speed: building ObsPy's whole
event object model (arrivals, comments, creation info, ...) took ~8 ms per event and
dominated the per-recording cost of ingest and batch reprocessing. StationXML
inventories and miniSEED waveforms are read with ObsPy.
"""
from __future__ import annotations

import io
import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import obspy
from lxml import etree
from obspy.core.event.header import EventType
from obspy.geodetics import gps2dist_azimuth

from ..config import PreprocessConfig
from ..features import cut_window_samples
from ..labels import UnknownLabelError, label_of
from ..storage import read_bytes
from .layout import event_id_from_resource_id

# Component letters accepted for each model component: orientation codes Z/N/E and the
# numbered equivalents 1/2 used for non-north-aligned horizontals.
_COMPONENT_ALIASES = {"Z": ("Z", "3"), "N": ("N", "1"), "E": ("E", "2")}
# Two sampling rates closer than this (relative) are the same rate.
_RATE_TOLERANCE = 1e-4


class IngestError(RuntimeError):
    """A whole file (catalog, inventory or waveform file) cannot be read."""


@dataclass(frozen=True)
class StationInfo:
    """A station's coordinates and, per component, channel code, rate (Hz) and sensitivity (counts per m/s)."""

    network: str
    station: str
    location: str
    latitude: float
    longitude: float
    elevation_m: float
    channels: dict[str, str]
    sampling_rate: float
    sensitivity: dict[str, float]

    @property
    def key(self) -> str:
        return f"{self.network}.{self.station}.{self.location}"


@dataclass(frozen=True)
class EventInfo:
    """One catalog event: origin (POSIX seconds, degrees, km), magnitude, type and picks.

    ``picks`` maps ``"NET.STA.LOC"`` to ``{"P": t, "S": t}`` (POSIX seconds).
    ``label`` is None when the event type is not in the label map.
    """

    event_id: str
    region: str
    event_type: str
    label: int | None
    origin_time: float
    latitude: float
    longitude: float
    depth_km: float
    magnitude: float
    picks: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Recording:
    """One station's raw 3-component window of one event.

    ``counts``: float64 array ``(3, n)`` in digitizer counts, components in
    ``config.components`` order, starting ``padding_s`` before the window start.
    """

    event: EventInfo
    station: StationInfo
    distance_km: float
    counts: np.ndarray
    sensitivity: np.ndarray

    @property
    def sampling_rate(self) -> float:
        return self.station.sampling_rate


@dataclass(frozen=True)
class Reject:
    """A recording (or a whole event when ``station == "*"``) that could not be used."""

    region: str
    event_id: str
    station: str
    reason: str
    detail: str
    source: str


@dataclass(frozen=True)
class CatalogEntry:
    """One event of a QuakeML catalog before parsing: its id, type and XML element.

    Indexing a catalog (:func:`index_catalog`) only lists the events; reading their
    origins, magnitudes and picks (:func:`parse_catalog_entries`) is the larger part, so
    a pipeline can index in the driver and parse in its workers.
    """

    event_id: str
    event_type: str
    xml: bytes
    source: str


_BED = "{http://quakeml.org/xmlns/bed/1.2}"
# Each entry's XML is read inside this wrapper, as when the entries were one QuakeML
# document for ObsPy: an element without a namespace of its own is in the BED namespace.
_FRAGMENT_HEAD = (b'<eventParameters xmlns="http://quakeml.org/xmlns/bed/1.2" '
                  b'xmlns:q="http://quakeml.org/xmlns/quakeml/1.2">')
_FRAGMENT_TAIL = b"</eventParameters>"
(_EVENT, _TYPE, _PREFERRED_ORIGIN_ID, _PREFERRED_MAGNITUDE_ID, _ORIGIN, _MAGNITUDE, _PICK,
 _TIME, _LATITUDE, _LONGITUDE, _DEPTH, _MAG, _VALUE, _WAVEFORM_ID, _PHASE_HINT) = (
    _BED + name for name in ("event", "type", "preferredOriginID", "preferredMagnitudeID", "origin", "magnitude",
                             "pick", "time", "latitude", "longitude", "depth", "mag", "value", "waveformID",
                             "phaseHint"))


def index_catalog(uri: str) -> list[CatalogEntry]:
    """List the events of a QuakeML file (id, type, XML), sorted by event id."""
    try:
        data = read_bytes(uri)
    except FileNotFoundError:
        raise IngestError(f"{uri}: catalog not found") from None
    entries = []
    try:
        for _, element in etree.iterparse(io.BytesIO(data), events=("end",), tag="{*}event"):
            event_type = element.findtext("{*}type") or ""
            public_id = element.get("publicID") or ""
            entries.append(CatalogEntry(event_id_from_resource_id(public_id), event_type.strip(),
                                        etree.tostring(element), uri))
            element.clear()
    except etree.XMLSyntaxError as exc:
        raise IngestError(f"{uri}: cannot read QuakeML catalog: {exc}") from exc
    return sorted(entries, key=lambda e: e.event_id)


def parse_catalog_entries(entries: list[CatalogEntry], region: str) -> list[EventInfo]:
    """Read indexed catalog entries into :class:`EventInfo` records, in entry order.

    Raises :class:`IngestError` (naming the catalog file and the event) for the first
    entry that cannot be used. An entry whose element is not a QuakeML BED 1.2 ``event``
    gives no record: ObsPy ignores such elements too.
    """
    events: list[EventInfo] = []
    for entry in entries:
        events += _parse_entry(entry, region)
    return events


def parse_catalog_entries_isolating(entries: list[CatalogEntry], region: str) -> tuple[list[EventInfo], list[Reject]]:
    """Read indexed catalog entries; an entry that cannot be used becomes a
    ``bad_catalog_entry`` :class:`Reject` (station ``"*"``) instead of failing the others.
    """
    events: list[EventInfo] = []
    rejects: list[Reject] = []
    for entry in entries:
        try:
            events += _parse_entry(entry, region)
        except IngestError as exc:
            rejects.append(Reject(region, entry.event_id, "*", "bad_catalog_entry", str(exc), entry.source))
    return events, rejects


def read_catalog(uri: str, region: str) -> list[EventInfo]:
    """Parse a QuakeML catalog into :class:`EventInfo` records, sorted by event id."""
    return parse_catalog_entries(index_catalog(uri), region)


def _parse_entry(entry: CatalogEntry, region: str) -> list[EventInfo]:
    """The :class:`EventInfo` of one entry: one record, or none when its element is not
    a BED ``event``."""
    try:
        wrapper = etree.fromstring(_FRAGMENT_HEAD + entry.xml + _FRAGMENT_TAIL)
    except etree.XMLSyntaxError as exc:
        raise IngestError(f"{entry.source}: event {entry.event_id}: cannot read QuakeML event: {exc}") from exc
    return [_event_info(element, region, entry.source) for element in wrapper.iterchildren(_EVENT)]


def _event_info(event: etree._Element, region: str, source: str) -> EventInfo:
    """Read one QuakeML ``event`` element the way ObsPy's QuakeML reader would.

    As in ObsPy, only elements of the BED namespace count, and where one is expected the
    first is read (extra ``type`` or ``value`` elements are ignored). The origin
    (magnitude) is the one whose ``publicID`` is the ``preferredOriginID``
    (``preferredMagnitudeID``) -- the last one when several share it, as ObsPy resolves
    it -- else the first. Origin time, latitude and longitude are
    required; depth defaults to 0 and magnitude to NaN. Only P and S picks (``phaseHint``,
    any case) are kept, a later pick of a station and phase replacing an earlier one.
    Raises :class:`IngestError` for values that ObsPy refuses or that leave a required
    value unusable.
    """
    event_id = event_id_from_resource_id(event.get("publicID") or "")
    where = f"{source}: event {event_id}"
    origins, magnitudes, picks = [], [], []
    first: dict[str, str | None] = {}  # text of the first type / preferred*ID child
    for child in event:
        tag = child.tag
        if tag == _PICK:
            picks.append(child)
        elif tag == _ORIGIN:
            origins.append(child)
        elif tag == _MAGNITUDE:
            magnitudes.append(child)
        elif tag in (_TYPE, _PREFERRED_ORIGIN_ID, _PREFERRED_MAGNITUDE_ID) and tag not in first:
            first[tag] = child.text or None

    origin = _preferred(origins, first.get(_PREFERRED_ORIGIN_ID))
    if origin is None:
        raise IngestError(f"{where} has no origin")
    magnitude = _preferred(magnitudes, first.get(_PREFERRED_MAGNITUDE_ID))
    event_type = _event_type(first.get(_TYPE))
    try:
        label = label_of(event_type, event_id=event_id)
    except UnknownLabelError:
        label = None

    event_picks: dict[str, dict[str, float]] = {}
    for pick in picks:
        phase = (_text(pick, _PHASE_HINT) or "").upper()
        if phase not in ("P", "S"):
            continue
        wid = pick.find(_WAVEFORM_ID)
        if wid is None:
            raise IngestError(f"{where}: a {phase} pick has no waveformID")
        key = f"{wid.get('networkCode') or ''}.{wid.get('stationCode') or ''}.{wid.get('locationCode') or ''}"
        time = _timestamp(_quantity(pick, _TIME), f"{phase} pick time of {key}", where)
        event_picks.setdefault(key, {})[phase] = time

    return EventInfo(
        event_id=event_id,
        region=region,
        event_type=event_type,
        label=label,
        origin_time=_timestamp(_quantity(origin, _TIME), "origin time", where),
        latitude=_number(_quantity(origin, _LATITUDE), "origin latitude", where),
        longitude=_number(_quantity(origin, _LONGITUDE), "origin longitude", where),
        depth_km=_number(_quantity(origin, _DEPTH), "origin depth", where, missing=0.0) / 1000.0,
        magnitude=(_number(_quantity(magnitude, _MAG), "magnitude", where, missing=float("nan"))
                   if magnitude is not None else float("nan")),
        picks=event_picks,
    )


def _preferred(elements: list[etree._Element], preferred_id: str | None) -> etree._Element | None:
    if preferred_id is not None:
        for element in reversed(elements):
            if element.get("publicID") == preferred_id:
                return element
    return elements[0] if elements else None


def _text(parent: etree._Element, tag: str) -> str | None:
    """Text of the first ``tag`` child; None when there is none or it is empty (as ObsPy)."""
    child = parent.find(tag)
    return None if child is None else (child.text or None)


def _quantity(parent: etree._Element, tag: str) -> str | None:
    """Text of a QuakeML quantity's ``value`` (``<tag><value>...</value></tag>``)."""
    quantity = parent.find(tag)
    return None if quantity is None else _text(quantity, _VALUE)


def _event_type(text: str | None) -> str:
    """ObsPy's reading of an event ``type``: ``null`` is ``not reported``, ``_`` a space,
    and a QuakeML ``EventType`` takes its canonical spelling. Unlike ObsPy, which drops
    the whole event, an unknown type is kept (it gets no label); surrounding whitespace is
    ignored, as in :func:`index_catalog`."""
    text = (text or "").strip()
    if text == "null":
        text = "not reported"
    text = text.replace("_", " ")
    return EventType(text) or text


def _timestamp(text: str | None, what: str, where: str) -> float:
    """POSIX seconds of a required QuakeML time, parsed by ObsPy's :class:`~obspy.UTCDateTime`."""
    if text is None:
        raise IngestError(f"{where}: no {what}")
    try:
        return obspy.UTCDateTime(text).timestamp
    except Exception as exc:  # UTCDateTime raises several types
        raise IngestError(f"{where}: {what} {text!r} is not a time: {exc}") from None


def _number(text: str | None, what: str, where: str, missing: float | None = None) -> float:
    """A QuakeML float. Absent: ``missing``, or IngestError when required (``missing`` None).
    Unreadable: IngestError when required, else a warning and ``missing`` (ObsPy reads it
    as absent). Not finite: IngestError (ObsPy refuses it)."""
    if text is None:
        if missing is None:
            raise IngestError(f"{where}: no {what}")
        return missing
    try:
        value = float(text)
    except ValueError:
        if missing is None:
            raise IngestError(f"{where}: {what} {text!r} is not a number") from None
        warnings.warn(f"{where}: {what} {text!r} is not a number; read as missing", stacklevel=2)
        return missing
    if not math.isfinite(value):
        raise IngestError(f"{where}: {what} {text!r} is not a finite number")
    return value


def read_stations(uri: str, components: tuple[str, ...] = ("Z", "N", "E")) -> dict[str, StationInfo]:
    """Parse a StationXML inventory into :class:`StationInfo` records keyed ``NET.STA.LOC``.

    A station is listed when it has a channel for each of ``components``; for each
    component the first matching channel is taken.
    """
    try:
        inventory = obspy.read_inventory(io.BytesIO(read_bytes(uri)), format="STATIONXML")
    except FileNotFoundError:
        raise IngestError(f"{uri}: inventory not found") from None
    except Exception as exc:
        raise IngestError(f"{uri}: cannot read StationXML inventory: {exc}") from exc
    stations: dict[str, StationInfo] = {}
    for network in inventory:
        for station in network:
            by_location: dict[str, dict[str, obspy.core.inventory.Channel]] = {}
            for channel in station:
                for component, aliases in _COMPONENT_ALIASES.items():
                    if channel.code[-1:] in aliases:
                        by_location.setdefault(channel.location_code or "", {}).setdefault(component, channel)
            for location, channels in by_location.items():
                if not all(c in channels for c in components):
                    continue
                rates = {float(channels[c].sample_rate) for c in components}
                sensitivity = {}
                for c in components:
                    response = channels[c].response
                    if response is None or response.instrument_sensitivity is None:
                        raise IngestError(
                            f"{uri}: {network.code}.{station.code}.{location}.{channels[c].code} "
                            "has no instrument sensitivity"
                        )
                    sensitivity[c] = float(response.instrument_sensitivity.value)
                info = StationInfo(
                    network=network.code,
                    station=station.code,
                    location=location,
                    latitude=float(station.latitude),
                    longitude=float(station.longitude),
                    elevation_m=float(station.elevation),
                    channels={c: channels[c].code for c in components},
                    sampling_rate=max(rates),
                    sensitivity=sensitivity,
                )
                stations[info.key] = info
    return stations


def _reject(event: EventInfo, station: str, reason: str, detail: str, source: str) -> Reject:
    return Reject(event.region, event.event_id, station, reason, detail, source)


def cut_recordings(
    waveform_uri: str,
    event: EventInfo,
    stations: dict[str, StationInfo],
    config: PreprocessConfig,
) -> tuple[list[Recording], list[Reject]]:
    """Read one event's miniSEED file and cut each station's window.

    Never raises for bad data: every station that cannot be used becomes a
    :class:`Reject` with a reason code (``unknown_event_type``, ``missing_waveform_file``,
    ``unreadable_waveform_file``, plus those of :func:`cut_recordings_from_stream`).
    """
    if event.label is None:
        return [], [_reject(event, "*", "unknown_event_type",
                            f"event type {event.event_type!r} is not in the label map", waveform_uri)]
    try:
        stream = obspy.read(io.BytesIO(read_bytes(waveform_uri)), format="MSEED")
    except FileNotFoundError:
        return [], [_reject(event, "*", "missing_waveform_file", "file not found", waveform_uri)]
    except Exception as exc:
        return [], [_reject(event, "*", "unreadable_waveform_file", f"{type(exc).__name__}: {exc}", waveform_uri)]
    return cut_recordings_from_stream(stream, event, stations, config, source=waveform_uri)


def cut_recordings_from_stream(
    stream: obspy.Stream,
    event: EventInfo,
    stations: dict[str, StationInfo],
    config: PreprocessConfig,
    source: str = "",
) -> tuple[list[Recording], list[Reject]]:
    """Cut each station's window of one event from an ObsPy stream (any source:
    a file, an upload, an SDS archive). ``source`` names it in reject rows.

    Reject reasons: ``no_station_metadata``, ``missing_recording``,
    ``missing_component``, ``gap``, ``sampling_rate_mismatch``, ``no_p_pick``,
    ``too_short``, ``nan``, ``clipped``.
    """
    recordings: list[Recording] = []
    rejects: list[Reject] = []
    traces_by_id: dict[str, list[obspy.Trace]] = {}
    for trace in stream:
        traces_by_id.setdefault(trace.id, []).append(trace)
    seen = {f"{tr.stats.network}.{tr.stats.station}.{tr.stats.location}" for tr in stream}
    for key in sorted(seen - set(stations)):
        rejects.append(_reject(event, key, "no_station_metadata", "station is not in the inventory", source))

    for key in sorted(set(stations) & seen):
        station = stations[key]
        try:
            counts = _station_window(traces_by_id, event, station, config)
        except _RecordingProblem as problem:
            rejects.append(_reject(event, key, problem.reason, str(problem), source))
            continue
        distance_m, _, _ = gps2dist_azimuth(event.latitude, event.longitude, station.latitude, station.longitude)
        sensitivity = np.array([station.sensitivity[c] for c in config.components])
        recordings.append(Recording(event, station, distance_m / 1000.0, counts, sensitivity))
    for key in sorted(set(stations) - seen):
        rejects.append(_reject(event, key, "missing_recording", "no traces for this station", source))
    return recordings, rejects


class _RecordingProblem(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def _station_window(
    traces_by_id: dict[str, list[obspy.Trace]], event: EventInfo, station: StationInfo, config: PreprocessConfig
) -> np.ndarray:
    """Cut ``(3, n)`` counts for one station or raise :class:`_RecordingProblem`.

    ``traces_by_id`` maps SEED ids (``NET.STA.LOC.CHA``) to that channel's traces.
    """
    if config.window_reference == "p_arrival":
        reference = event.picks.get(station.key, {}).get("P")
        if reference is None:
            raise _RecordingProblem("no_p_pick", "catalog has no P pick for this station")
    else:
        reference = event.origin_time
    fs = station.sampling_rate
    n = cut_window_samples(fs, config)
    start = reference + config.window_start_s - config.padding_s

    components = []
    for component in config.components:
        traces = obspy.Stream(traces_by_id.get(f"{station.key}.{station.channels[component]}", []))
        if len(traces) == 0:
            raise _RecordingProblem("missing_component", f"no {station.channels[component]} trace")
        if len(traces) > 1:
            traces = traces.copy()
            traces.sort(["starttime"])
            gaps = traces.get_gaps()
            if gaps:
                longest = max(abs(g[6]) for g in gaps)
                raise _RecordingProblem("gap", f"{station.channels[component]}: {len(gaps)} gap(s)/overlap(s), longest {longest:.3f} s")
            traces.merge(method=1)
        trace = traces[0]
        if abs(trace.stats.sampling_rate - fs) > _RATE_TOLERANCE * fs:
            raise _RecordingProblem(
                "sampling_rate_mismatch",
                f"{trace.id}: {trace.stats.sampling_rate} Hz in the data, {fs} Hz in the inventory",
            )
        first = int(round((start - trace.stats.starttime.timestamp) * fs))
        if first < 0 or first + n > trace.stats.npts:
            raise _RecordingProblem(
                "too_short",
                f"{trace.id}: data {trace.stats.starttime}..{trace.stats.endtime} does not cover the "
                f"{config.window_length_s + 2 * config.padding_s:.1f} s window from {obspy.UTCDateTime(start)}",
            )
        window = np.asarray(trace.data[first : first + n], dtype=np.float64)
        if np.ma.isMaskedArray(trace.data) and np.ma.getmaskarray(trace.data)[first : first + n].any():
            raise _RecordingProblem("gap", f"{trace.id}: masked (missing) samples in the window")
        if not np.all(np.isfinite(window)):
            raise _RecordingProblem("nan", f"{trace.id}: {int(np.sum(~np.isfinite(window)))} non-finite samples in the window")
        peak = np.abs(window).max()
        if peak >= config.clip_fraction * config.clip_counts:
            raise _RecordingProblem("clipped", f"{trace.id}: peak {peak:.0f} counts reaches the digitizer full scale")
        components.append(window)
    return np.stack(components)
