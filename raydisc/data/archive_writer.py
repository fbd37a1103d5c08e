"""Write a raydisc archive (:mod:`raydisc.data.layout`) from data found elsewhere.

The importers (a miniSEED folder with a label table, FDSN web services, SeisBench
datasets) all end here, so every later step (preprocess, train, evaluate, re-label)
reads what they made with the one archive reader. Every file is written atomically
(:func:`raydisc.storage.open_atomic`): a crashed import leaves no half file, and an
existing event file means that event is done.

What an importer could not use is recorded in ``{root}/{region}/import_rejects.csv``
(the columns of :class:`raydisc.data.records.Reject`), beside the archive it made.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, fields
from typing import Iterable, Sequence

import obspy
from obspy.core.event import Catalog, Event, Magnitude, Origin, Pick, ResourceIdentifier, WaveformStreamID
from obspy.core.event.header import EventType

from ..storage import exists, join, read_bytes, write_bytes_atomic
from . import layout
from .records import Reject

IMPORT_REJECTS_FILE = "import_rejects.csv"
#: miniSEED record length of written event files (bytes): ObsPy's default, a power of 2
#: as :func:`raydisc.data.ingest.read_mseed_bytes` expects.
MSEED_RECORD_LENGTH = 4096


def import_rejects_uri(root: str, region: str) -> str:
    return join(root, region, IMPORT_REJECTS_FILE)


def quakeml_event_type(text: str) -> str | None:
    """The QuakeML ``EventType`` spelling of ``text`` (case and ``_`` tolerated), or
    None when QuakeML has no such type (ObsPy cannot write it)."""
    key = " ".join(str(text or "").replace("_", " ").split()).lower()
    return next((str(t) for t in EventType if str(t) == key), None)


def make_event(region: str, event_id: str, origin_time: float, latitude: float, longitude: float,
               depth_km: float, magnitude: float, event_type: str,
               p_picks: dict[str, float] | None = None) -> Event:
    """An ObsPy QuakeML event with one origin (POSIX s, degrees, km), one magnitude
    (skipped when NaN), ``event_type`` (a QuakeML ``EventType``) and P picks
    (``{"NET.STA.LOC.CHA": POSIX s}``). Its resource id ends in ``event_id``, the name
    of its waveform file."""
    rid = layout.RESOURCE_ID_PREFIX + f"{region}/{event_id}"
    origin = Origin(resource_id=ResourceIdentifier(rid + "/origin"), time=obspy.UTCDateTime(origin_time),
                    latitude=latitude, longitude=longitude, depth=depth_km * 1000.0)
    magnitudes = []
    if math.isfinite(magnitude):
        magnitudes.append(Magnitude(resource_id=ResourceIdentifier(rid + "/magnitude"), mag=magnitude,
                                    origin_id=origin.resource_id))
    picks = []
    for seed_id, time in sorted((p_picks or {}).items()):
        net, sta, loc, cha = seed_id.split(".")
        picks.append(Pick(resource_id=ResourceIdentifier(f"{rid}/pick/{seed_id}/P"), time=obspy.UTCDateTime(time),
                          phase_hint="P", waveform_id=WaveformStreamID(net, sta, loc, cha)))
    return Event(resource_id=ResourceIdentifier(layout.RESOURCE_ID_PREFIX + event_id), event_type=event_type,
                 origins=[origin], magnitudes=magnitudes, picks=picks,
                 preferred_origin_id=origin.resource_id,
                 preferred_magnitude_id=magnitudes[0].resource_id if magnitudes else None)


def write_catalog(root: str, region: str, events: Sequence[Event]) -> str:
    """Write ``events`` as the region's QuakeML catalog; returns its URI."""
    buffer = io.BytesIO()
    Catalog(events=list(events)).write(buffer, format="QUAKEML")
    uri = layout.catalog_uri(root, region)
    write_bytes_atomic(uri, buffer.getvalue())
    return uri


def write_inventory(root: str, region: str, inventory: obspy.Inventory | bytes) -> str:
    """Write the region's StationXML (an ObsPy inventory, or StationXML bytes kept as
    they are, with whatever they lack); returns its URI."""
    if isinstance(inventory, obspy.Inventory):
        buffer = io.BytesIO()
        inventory.write(buffer, format="STATIONXML")
        inventory = buffer.getvalue()
    uri = layout.inventory_uri(root, region)
    write_bytes_atomic(uri, inventory)
    return uri


def event_done(root: str, region: str, event_id: str) -> bool:
    """Whether the event's waveform file exists (written atomically, so complete)."""
    return exists(layout.waveform_uri(root, region, event_id))


def write_event_waveforms(root: str, region: str, event_id: str, stream: obspy.Stream) -> str:
    """Write one event's traces as its miniSEED file; returns the URI."""
    buffer = io.BytesIO()
    stream.write(buffer, format="MSEED", reclen=MSEED_RECORD_LENGTH)
    uri = layout.waveform_uri(root, region, event_id)
    write_bytes_atomic(uri, buffer.getvalue())
    return uri


_REJECT_COLUMNS = [f.name for f in fields(Reject)]


def read_import_rejects(root: str, region: str) -> list[Reject]:
    """The rejects recorded by earlier imports of the region (empty if none)."""
    uri = import_rejects_uri(root, region)
    if not exists(uri):
        return []
    return [Reject(**row) for row in csv.DictReader(io.StringIO(read_bytes(uri).decode()))]


def write_import_rejects(root: str, region: str, rejects: Iterable[Reject]) -> str:
    """Write the region's import rejects (replacing the file); returns its URI."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_REJECT_COLUMNS)
    writer.writeheader()
    for reject in rejects:
        writer.writerow(asdict(reject))
    uri = import_rejects_uri(root, region)
    write_bytes_atomic(uri, out.getvalue().encode())
    return uri


__all__ = ["IMPORT_REJECTS_FILE", "event_done", "import_rejects_uri", "make_event", "quakeml_event_type",
           "read_import_rejects", "write_catalog", "write_event_waveforms", "write_import_rejects",
           "write_inventory"]
