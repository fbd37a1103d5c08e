"""QuakeML catalogs read with lxml, or ObsPy event objects: origins, magnitudes, types and picks.

:func:`index_catalog` lists a file's events (id, type, XML element) and
:func:`parse_catalog_entries` reads from each event's element just the fields of
:class:`EventInfo` (preferred origin and magnitude, P and S picks), following the
QuakeML 1.2 BED semantics that ObsPy's reader applies, with times parsed by
:class:`obspy.UTCDateTime`. That is for speed: building ObsPy's whole event object
model (arrivals, comments, creation info, ...) took ~8 ms per event and dominated the
per-recording cost of ingest and batch reprocessing. A driver can index a catalog and
leave the parsing to its workers. Catalogs without picks are normal (the P arrival is
then predicted, see :mod:`raydisc.data.recordings`).

An ``obspy.Catalog`` or ``Event`` already in memory is read straight from its objects
(:func:`read_catalog`), with the same rules as its QuakeML file would be read by.
"""
from __future__ import annotations

import io
import math
import warnings
from dataclasses import asdict, dataclass, field

import obspy
from lxml import etree
from obspy.core.event.header import EventType

from ..labels import DEFAULT_SCHEME, LabelScheme
from ..storage import read_bytes
from .layout import event_id_from_resource_id
from .records import IngestError, Reject


@dataclass(frozen=True)
class EventInfo:
    """One catalog event: origin (POSIX seconds, degrees, km), magnitude, type and picks.

    ``picks`` maps ``"NET.STA.LOC"`` to ``{"P": t, "S": t}`` (POSIX seconds).
    ``label`` is None when the event type is not in the label scheme it was read with.
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


def parse_catalog_entries(entries: list[CatalogEntry], region: str,
                          scheme: LabelScheme = DEFAULT_SCHEME) -> list[EventInfo]:
    """Read indexed catalog entries into :class:`EventInfo` records, in entry order,
    labelled by ``scheme``.

    Raises :class:`IngestError` (naming the catalog file and the event) for the first
    entry that cannot be used. An entry whose element is not a QuakeML BED 1.2 ``event``
    gives no record: ObsPy ignores such elements too.
    """
    events: list[EventInfo] = []
    for entry in entries:
        events += _parse_entry(entry, region, scheme)
    return events


def parse_catalog_entries_isolating(entries: list[CatalogEntry], region: str, scheme: LabelScheme = DEFAULT_SCHEME
                                    ) -> tuple[list[EventInfo], list[Reject]]:
    """Read indexed catalog entries, labelled by ``scheme``; an entry that cannot be used becomes a
    ``bad_catalog_entry`` :class:`Reject` (station ``"*"``) instead of failing the others.
    """
    events: list[EventInfo] = []
    rejects: list[Reject] = []
    for entry in entries:
        try:
            events += _parse_entry(entry, region, scheme)
        except IngestError as exc:
            rejects.append(Reject(region, entry.event_id, "*", "bad_catalog_entry", str(exc), entry.source))
    return events, rejects


def read_catalog(source: str | obspy.Catalog | obspy.core.event.Event, region: str,
                 scheme: LabelScheme = DEFAULT_SCHEME) -> list[EventInfo]:
    """:class:`EventInfo` records, sorted by event id, of a QuakeML file (``source`` a
    path/URI, parsed with lxml) or of ObsPy objects (an ``obspy.Catalog`` or one
    ``Event``, read from the objects without writing QuakeML): the same records either way,
    labelled by ``scheme``.
    """
    if isinstance(source, obspy.core.event.Event):
        source = obspy.Catalog([source])
    if isinstance(source, obspy.Catalog):
        events = [_event_info_of_object(event, region, "catalog object", scheme) for event in source]
        return sorted(events, key=lambda e: e.event_id)
    return parse_catalog_entries(index_catalog(source), region, scheme)


def _parse_entry(entry: CatalogEntry, region: str, scheme: LabelScheme) -> list[EventInfo]:
    """The :class:`EventInfo` of one entry: one record, or none when its element is not
    a BED ``event``."""
    try:
        wrapper = etree.fromstring(_FRAGMENT_HEAD + entry.xml + _FRAGMENT_TAIL)
    except etree.XMLSyntaxError as exc:
        raise IngestError(f"{entry.source}: event {entry.event_id}: cannot read QuakeML event: {exc}") from exc
    return [_event_info(element, region, entry.source, scheme) for element in wrapper.iterchildren(_EVENT)]


def _event_info(event: etree._Element, region: str, source: str, scheme: LabelScheme) -> EventInfo:
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

    origin = _preferred(origins, first.get(_PREFERRED_ORIGIN_ID), _public_id)
    if origin is None:
        raise IngestError(f"{where} has no origin")
    magnitude = _preferred(magnitudes, first.get(_PREFERRED_MAGNITUDE_ID), _public_id)
    event_type = _event_type(first.get(_TYPE))

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

    latitude = _latitude(_number(_quantity(origin, _LATITUDE), "origin latitude", where), where)
    return EventInfo(
        event_id=event_id,
        region=region,
        event_type=event_type,
        label=_label(event_type, scheme),
        origin_time=_timestamp(_quantity(origin, _TIME), "origin time", where),
        latitude=latitude,
        longitude=_number(_quantity(origin, _LONGITUDE), "origin longitude", where),
        depth_km=_number(_quantity(origin, _DEPTH), "origin depth", where, missing=0.0) / 1000.0,
        magnitude=(_number(_quantity(magnitude, _MAG), "magnitude", where, missing=float("nan"))
                   if magnitude is not None else float("nan")),
        picks=event_picks,
    )


def _event_info_of_object(event: obspy.core.event.Event, region: str, source: str, scheme: LabelScheme) -> EventInfo:
    """Read one ObsPy ``Event`` by the rules of :func:`_event_info` (which its QuakeML
    file would be read by): the same choice of origin and magnitude, the same required
    and default values, the same P and S picks. Its fields are typed already, so only
    what is missing or not finite is left to refuse."""
    event_id = event_id_from_resource_id(str(event.resource_id or ""))
    where = f"{source}: event {event_id}"
    origin = _preferred(event.origins, event.preferred_origin_id, _resource_id)
    if origin is None:
        raise IngestError(f"{where} has no origin")
    magnitude = _preferred(event.magnitudes, event.preferred_magnitude_id, _resource_id)
    event_type = _event_type(str(event.event_type) if event.event_type is not None else None)

    event_picks: dict[str, dict[str, float]] = {}
    for pick in event.picks:
        phase = (pick.phase_hint or "").upper()
        if phase not in ("P", "S"):
            continue
        wid = pick.waveform_id
        if wid is None:
            raise IngestError(f"{where}: a {phase} pick has no waveformID")
        key = f"{wid.network_code or ''}.{wid.station_code or ''}.{wid.location_code or ''}"
        if pick.time is None:
            raise IngestError(f"{where}: no {phase} pick time of {key}")
        event_picks.setdefault(key, {})[phase] = pick.time.timestamp

    latitude = _latitude(_finite(origin.latitude, "origin latitude", where), where)
    if origin.time is None:
        raise IngestError(f"{where}: no origin time")
    return EventInfo(
        event_id=event_id,
        region=region,
        event_type=event_type,
        label=_label(event_type, scheme),
        origin_time=origin.time.timestamp,
        latitude=latitude,
        longitude=_finite(origin.longitude, "origin longitude", where),
        depth_km=_finite(origin.depth, "origin depth", where, missing=0.0) / 1000.0,
        magnitude=(_finite(magnitude.mag, "magnitude", where, missing=float("nan"))
                   if magnitude is not None else float("nan")),
        picks=event_picks,
    )


def _public_id(element: etree._Element) -> str | None:
    return element.get("publicID")


def _resource_id(item) -> str | None:
    """The id of an ObsPy origin or magnitude, spelt as its QuakeML ``publicID``."""
    return None if item.resource_id is None else str(item.resource_id)


def _preferred(items: list, preferred_id, id_of):
    """The item whose id (``id_of(item)``) is ``preferred_id``, the last one when several
    share it (as ObsPy resolves a reference), else the first item; None when there are none."""
    if preferred_id is not None:
        preferred_id = str(preferred_id)
        for item in reversed(items):
            if id_of(item) == preferred_id:
                return item
    return items[0] if items else None


def _label(event_type: str, scheme: LabelScheme) -> int | None:
    """The class of an event type in ``scheme``; None when the scheme does not know it."""
    return scheme.class_in(event_type)


def _latitude(latitude: float, where: str) -> float:
    if not -90.0 <= latitude <= 90.0:
        # ObsPy's event reader takes any float, but no distance can be computed from it.
        raise IngestError(f"{where}: origin latitude {latitude!r} is not in [-90, 90]")
    return latitude


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


def _finite(value: float | None, what: str, where: str, missing: float | None = None) -> float:
    """A float of an ObsPy object, as :func:`_number` reads its QuakeML text: None is
    ``missing`` (IngestError when required), a value that is not finite an IngestError."""
    if value is None:
        if missing is None:
            raise IngestError(f"{where}: no {what}")
        return missing
    value = float(value)
    if not math.isfinite(value):
        raise IngestError(f"{where}: {what} {value!r} is not a finite number")
    return value


__all__ = ["CatalogEntry", "EventInfo", "index_catalog", "parse_catalog_entries", "parse_catalog_entries_isolating", "read_catalog"]
