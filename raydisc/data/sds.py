"""SDS (SeisComP Data Structure) continuous archives: write one from a raydisc archive,
read event windows back out of one.

Layout (ObsPy's :mod:`obspy.clients.filesystem.sds`), one miniSEED file per channel and
UTC day::

    {root}/{YEAR}/{NET}/{STA}/{CHAN}.D/{NET}.{STA}.{LOC}.{CHAN}.D.{YEAR}.{DOY:03d}

Reading uses ObsPy's SDS client, which reads local folders only; an SDS archive in
object storage must be synced to a local disk (or a mount) first.
"""
from __future__ import annotations

import io
import os

import obspy
from obspy.clients.filesystem.sds import Client

from ..config import PreprocessConfig
from ..storage import is_remote, open_atomic, read_bytes
from . import layout
from .catalog import EventInfo, read_catalog
from .inventory import StationInfo
from .recordings import station_distances_km, window_references

SDS_FORMAT = "{year}/{net}/{sta}/{cha}.D/{net}.{sta}.{loc}.{cha}.D.{year}.{doy:03d}"
#: Extra seconds fetched on each side of a station's window, so that rounding of the
#: window start to a sample never falls outside the fetched data.
FETCH_MARGIN_S = 2.0
_DAY_S = 86400.0


def local_root(root: str) -> str:
    """The local folder of an SDS root (``/path`` or ``file:///path``); ``ValueError`` for
    object-store URIs, which ObsPy's SDS client cannot read."""
    if is_remote(root):
        raise ValueError(
            f"{root}: SDS archives are read with ObsPy's SDS client, which needs a local folder; "
            "sync or mount the archive locally"
        )
    return root[len("file://"):] if root.startswith("file://") else root


def sds_relative_path(network: str, station: str, location: str, channel: str, time: obspy.UTCDateTime) -> str:
    """Path (relative to the SDS root) of the day file holding ``time``."""
    return SDS_FORMAT.format(year=time.year, net=network, sta=station, loc=location, cha=channel, doy=time.julday)


def _split_at_midnight(trace: obspy.Trace) -> list[obspy.Trace]:
    """The pieces of ``trace`` that fall on each UTC day (most traces: one piece)."""
    pieces = []
    start = trace.stats.starttime
    while start <= trace.stats.endtime:
        day = obspy.UTCDateTime(start.year, start.month, start.day)
        next_day = day + _DAY_S
        # nearest_sample=False keeps samples with t <= end; half a sample before
        # midnight puts the midnight sample into the next day only.
        piece = trace.slice(start, next_day - trace.stats.delta / 2, nearest_sample=False)
        if piece.stats.npts:
            pieces.append(piece)
        start = next_day
    return pieces


def convert_to_sds(archive: str, region: str, sds_root: str) -> dict:
    """Write the per-event miniSEED files of ``region`` in ``archive`` (raydisc layout)
    as an SDS archive under the local folder ``sds_root``.

    Each event's traces go into the day files of their channels; traces of different
    events stay separate traces of the day file (continuous archives have gaps between
    events here), and identical overlaps are merged. Missing or unreadable event files
    are skipped and counted. Returns ``{"events", "skipped", "day_files", "traces"}``.
    """
    root = local_root(sds_root)
    day_traces: dict[str, list[obspy.Trace]] = {}
    converted = skipped = 0
    for event in read_catalog(layout.catalog_uri(archive, region), region):
        try:
            stream = obspy.read(io.BytesIO(read_bytes(layout.waveform_uri(archive, region, event.event_id))), format="MSEED")
        except Exception:  # a damaged archive is converted as far as it goes
            skipped += 1
            continue
        converted += 1
        for trace in stream:
            for piece in _split_at_midnight(trace):
                s = piece.stats
                path = sds_relative_path(s.network, s.station, s.location, s.channel, s.starttime)
                day_traces.setdefault(path, []).append(piece)
    n_traces = 0
    for path, traces in sorted(day_traces.items()):
        stream = obspy.Stream(traces)
        stream.merge(method=-1)  # joins only contiguous or identical-overlap traces
        stream.sort(["starttime"])
        n_traces += len(stream)
        with open_atomic(os.path.join(root, path)) as f:
            stream.write(f, format="MSEED", reclen=4096)
    return {"events": converted, "skipped": skipped, "day_files": len(day_traces), "traces": n_traces}


def read_event_stream(
    sds_root: str,
    event: EventInfo,
    stations: dict[str, StationInfo],
    config: PreprocessConfig,
    client: Client | None = None,
) -> tuple[obspy.Stream, dict[str, str]]:
    """Fetch from an SDS archive the traces that cover each station's window of ``event``.

    The window is the one :func:`raydisc.data.recordings.cut_recordings_from_stream`
    cuts (around the station's catalog or predicted P arrival, or the origin time, per
    the config: :func:`~raydisc.data.recordings.window_references`), plus
    :data:`FETCH_MARGIN_S` on each side, for every channel of the allowed bands
    operating at the event time. Returns the stream (to be cut by
    ``cut_recordings_from_stream``) and ``{station key: error}`` for stations whose day
    files could not be read. A station without a reference (no pick and no coordinates)
    is not fetched; the cut rejects it with its reason.
    """
    client = client or Client(local_root(sds_root))
    stream = obspy.Stream()
    errors: dict[str, str] = {}
    span = config.window_length_s + 2 * config.padding_s
    references = window_references(event, stations, station_distances_km(event, stations), config)
    for key, station in sorted(stations.items()):
        reference = references[key]
        if not isinstance(reference, tuple):
            continue
        start = obspy.UTCDateTime(reference[0] + config.window_start_s - config.padding_s - FETCH_MARGIN_S)
        end = start + span + 2 * FETCH_MARGIN_S
        for channel in station.channels:
            if channel.band not in config.channel_priority or not channel.operating(event.origin_time):
                continue
            try:
                stream += client.get_waveforms(station.network, station.station, channel.location, channel.code,
                                               start, end)
            except Exception as exc:  # a corrupt day file loses this station, not the event
                errors[key] = f"{type(exc).__name__}: {exc}"
    return stream, errors


__all__ = ["SDS_FORMAT", "convert_to_sds", "read_event_stream", "sds_relative_path", "local_root"]
