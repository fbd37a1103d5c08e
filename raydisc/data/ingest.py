"""Ingestion: read catalogs, inventories and waveform files, and cut station recordings.

The driver reads a region's QuakeML catalog (:mod:`raydisc.data.catalog`) and
StationXML inventory (:mod:`raydisc.data.inventory`) once and turns them into small
plain records (:class:`EventInfo`, :class:`StationInfo`) that travel to the workers;
each worker reads one event's miniSEED file (:func:`cut_recordings`) and cuts one
:class:`Recording` per station (:mod:`raydisc.data.recordings`), or a :class:`Reject`
that says why it could not. Every input source (per-event files, SDS archives,
uploads) ends in :func:`cut_recordings_from_stream`.
"""
from __future__ import annotations

import io

import obspy

from ..config import PreprocessConfig
from ..labels import DEFAULT_SCHEME, LabelScheme
from ..storage import read_bytes
from .catalog import (CatalogEntry, EventInfo, index_catalog, parse_catalog_entries, parse_catalog_entries_isolating,
                      read_catalog)
from .inventory import ChannelInfo, StationInfo, read_stations, stations_from_inventory
from .records import REJECT_REASONS, IngestError, Reject
from .recordings import Recording, cut_recordings_from_stream


#: miniSEED 2 records are 2**n bytes, at least this many: a file whose size is not a
#: multiple of it ends in a cut record.
MIN_RECORD_BYTES = 128


def read_mseed_bytes(data: bytes, name: str) -> obspy.Stream:
    """Parse miniSEED bytes (any record length and encoding, records of many channels).

    ObsPy reads a truncated file silently up to its last complete record, which would
    turn the stations after the cut into stations that did not record; a size that is
    not a whole number of records is refused instead. Raises :class:`IngestError`
    naming ``name`` (a file, or an upload).
    """
    if not data:
        raise IngestError(f"{name}: empty miniSEED")
    if len(data) % MIN_RECORD_BYTES:
        raise IngestError(f"{name}: truncated miniSEED ({len(data)} bytes is not a whole number of records)")
    try:
        return obspy.read(io.BytesIO(data), format="MSEED")
    except Exception as exc:  # libmseed/ObsPy raise many types for damaged records
        raise IngestError(f"{name}: unreadable miniSEED: {type(exc).__name__}: {exc}"[:300]) from None


def read_waveform_file(uri: str) -> obspy.Stream:
    """Read a miniSEED file (:func:`read_mseed_bytes`).

    Raises ``FileNotFoundError`` or :class:`IngestError` naming the file.
    """
    return read_mseed_bytes(read_bytes(uri), uri)


def cut_recordings(
    waveform_uri: str,
    event: EventInfo,
    stations: dict[str, StationInfo],
    config: PreprocessConfig,
    scheme: LabelScheme = DEFAULT_SCHEME,
) -> tuple[list[Recording], list[Reject]]:
    """Read one event's miniSEED file and cut each station's window. ``scheme``: the
    label scheme ``event`` was labelled by (named when its type is unknown).

    Never raises for bad data: every station that cannot be used becomes a
    :class:`Reject` with a reason code (``unknown_event_type``, ``missing_waveform_file``,
    ``unreadable_waveform_file``, plus those of :func:`cut_recordings_from_stream`).
    """
    def reject(reason: str, detail: str) -> list[Reject]:
        return [Reject(event.region, event.event_id, "*", reason, detail, waveform_uri)]

    if event.label is None:
        return [], reject("unknown_event_type",
                          f"event type {event.event_type!r} is not in label scheme {scheme.name!r}")
    try:
        stream = read_waveform_file(waveform_uri)
    except FileNotFoundError:
        return [], reject("missing_waveform_file", "file not found")
    except IngestError as exc:
        return [], reject("unreadable_waveform_file", str(exc).removeprefix(f"{waveform_uri}: "))
    return cut_recordings_from_stream(stream, event, stations, config, source=waveform_uri)


__all__ = ["CatalogEntry", "ChannelInfo", "EventInfo", "IngestError", "REJECT_REASONS", "Recording", "Reject",
           "StationInfo", "cut_recordings", "cut_recordings_from_stream", "index_catalog", "parse_catalog_entries",
           "parse_catalog_entries_isolating", "read_catalog", "read_mseed_bytes", "read_stations", "read_waveform_file",
           "stations_from_inventory"]
