"""Build an archive region from FDSN web services (fdsnws-event, -station, -dataselect).

:func:`fetch_archive` asks, with ObsPy's FDSN client (:class:`obspy.clients.fdsn.Client`):

1. **fdsnws-event** for the events of a time span (optionally a box and a magnitude
   floor) of the given event types (``eventtype`` is a comma-separated list, FDSN
   1.2); the catalog is written with the service's own origins, magnitudes and picks,
   event ids made file-name safe (the last ``/`` or ``=`` segment of the publicID);
2. **fdsnws-station** for the stations and channels at ``level=response`` (full
   responses, removed in preprocessing);
3. **fdsnws-dataselect**, per event, one bulk request for the channels of every station
   within ``min_distance_km``..``max_distance_km`` of the epicentre, from
   ``window_before_s`` before to ``window_after_s`` after the origin time.

It is resumable: a catalog or inventory already in the archive is not asked for again,
nor is an event whose waveform file exists (files are written atomically). Requests are
spaced to at most ``requests_per_second``; a request that fails is retried ``retries``
times and then recorded in ``import_rejects.csv`` (:mod:`raydisc.data.archive_writer`)
with the service's answer, and asked again by the next run. "No data" answers (HTTP
204/404) are recorded as ``missing_waveform_file`` and not retried within a run.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import obspy
from obspy.clients.fdsn.header import FDSNNoDataException
from obspy.geodetics import gps2dist_azimuth

from ..config import ConfigBase, ConfigError
from ..storage import exists
from . import layout
from .archive_writer import event_done, write_catalog, write_event_waveforms, write_import_rejects, write_inventory
from .catalog import read_catalog
from .inventory import read_stations
from .records import IngestError, Reject, cap

#: Event types asked for by default: those of the label map's two classes.
DEFAULT_EVENT_TYPES = ("earthquake", "quarry blast", "explosion", "mining explosion", "chemical explosion")


@dataclass(frozen=True)
class FetchConfig(ConfigBase):
    """What to ask the services for (times: anything :class:`obspy.UTCDateTime` reads;
    degrees; km; seconds). ``channel``: SEED channel patterns, comma-separated, as
    fdsnws takes them. ``window_before_s``/``window_after_s`` around the origin time:
    the default covers the preprocessing window to ~600 km."""

    region: str
    starttime: str
    endtime: str
    event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES
    min_magnitude: float | None = None
    min_latitude: float | None = None
    max_latitude: float | None = None
    min_longitude: float | None = None
    max_longitude: float | None = None
    network: str = "*"
    station: str = "*"
    location: str = "*"
    channel: str = "HH?,BH?,EH?,SH?"
    min_distance_km: float = 0.0
    max_distance_km: float = 150.0
    window_before_s: float = 30.0
    window_after_s: float = 150.0
    requests_per_second: float = 2.0
    retries: int = 2
    retry_wait_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.region or "/" in self.region:
            raise ConfigError(f"invalid region name {self.region!r}")
        try:
            if obspy.UTCDateTime(self.starttime) >= obspy.UTCDateTime(self.endtime):
                raise ConfigError("starttime must be before endtime")
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"unreadable starttime/endtime: {exc}") from None
        if not 0 <= self.min_distance_km < self.max_distance_km:
            raise ConfigError("need 0 <= min_distance_km < max_distance_km")
        if not self.requests_per_second > 0:
            raise ConfigError("requests_per_second must be positive")
        if self.retries < 0 or self.retry_wait_s < 0:
            raise ConfigError("retries and retry_wait_s must be >= 0")
        if not (self.window_before_s >= 0 and self.window_after_s > 0):
            raise ConfigError("need window_before_s >= 0 and window_after_s > 0")


class _Throttle:
    """Spaces calls at least ``1 / rate`` seconds apart (monotonic clock)."""

    def __init__(self, rate: float):
        self.interval, self.last = 1.0 / rate, -math.inf

    def wait(self) -> None:
        pause = self.last + self.interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self.last = time.monotonic()


def safe_event_id(public_id: str) -> str:
    """A file-name safe event id from a QuakeML publicID: its last ``/`` or ``=``
    segment (``smi:org/fdsnws/event/1/query?eventid=123`` -> ``123``), other
    characters than letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``."""
    last = re.split(r"[/=]", str(public_id).rstrip("/"))[-1]
    return re.sub(r"[^A-Za-z0-9._-]", "_", last) or "event"


class _Requests:
    """Throttled, retried calls of one client; failures become rejects."""

    def __init__(self, client, config: FetchConfig, region: str, base: str):
        self.client, self.config, self.region, self.base = client, config, region, base
        self.throttle = _Throttle(config.requests_per_second)
        self.rejects: list[Reject] = []
        self.count = 0

    def call(self, service: str, event_id: str, method: str, **kwargs):
        """The client's answer, or None after recording why there is none."""
        for attempt in range(self.config.retries + 1):
            self.throttle.wait()
            self.count += 1
            try:
                return getattr(self.client, method)(**kwargs)
            except FDSNNoDataException:
                self._reject(service, event_id, "no data", final=True)
                return None
            except Exception as exc:  # the client raises many types: HTTP errors, timeouts, parse errors
                if attempt == self.config.retries:
                    self._reject(service, event_id, f"{type(exc).__name__}: {exc}", final=False)
                    return None
                time.sleep(self.config.retry_wait_s)
        return None

    def _reject(self, service: str, event_id: str, why: str, final: bool) -> None:
        reason = "missing_waveform_file" if service == "dataselect" else (
            "unreadable_catalog" if service == "event" else "unreadable_inventory")
        tries = "" if final else f" after {self.config.retries + 1} tries"
        self.rejects.append(Reject(self.region, event_id, "*", reason, cap(f"fdsnws-{service}{tries}: {why}"),
                                   f"{self.base} fdsnws-{service}"))


def _events(requests: _Requests, config: FetchConfig) -> list[obspy.core.event.Event] | None:
    box = {k: v for k, v in dict(minlatitude=config.min_latitude, maxlatitude=config.max_latitude,
                                  minlongitude=config.min_longitude, maxlongitude=config.max_longitude,
                                  minmagnitude=config.min_magnitude).items() if v is not None}
    catalog = requests.call("event", "*", "get_events", starttime=obspy.UTCDateTime(config.starttime),
                            endtime=obspy.UTCDateTime(config.endtime), eventtype=",".join(config.event_types), **box)
    if catalog is None:
        return None
    for event in catalog:
        event.resource_id = obspy.core.event.ResourceIdentifier(
            layout.RESOURCE_ID_PREFIX + safe_event_id(event.resource_id.id))
    return list(catalog)


def fetch_archive(client, archive: str, config: FetchConfig) -> dict:
    """Fetch region ``config.region`` into ``archive`` (see the module docstring).

    ``client``: an :class:`obspy.clients.fdsn.Client` or a base URL for one. Returns
    ``{"events", "written", "skipped", "requests", "rejects": {reason: n}}``. Raises
    :class:`IngestError` when the catalog or the inventory cannot be had at all.
    """
    from obspy.clients.fdsn import Client

    if isinstance(client, str):
        # No WADL discovery: three fewer requests, and a service that lacks one of the
        # three endpoints fails at its first request, which is recorded like any other.
        client = Client(client, _discover_services=False)
    region = config.region
    requests = _Requests(client, config, region, getattr(client, "base_url", str(client)))
    catalog_uri, inventory_uri = layout.catalog_uri(archive, region), layout.inventory_uri(archive, region)
    if not exists(catalog_uri):
        events = _events(requests, config)
        if events is None:
            write_import_rejects(archive, region, requests.rejects)
            raise IngestError(f"fdsnws-event: no catalog: {requests.rejects[-1].detail}")
        write_catalog(archive, region, events)
    if not exists(inventory_uri):
        inventory = requests.call("station", "*", "get_stations", network=config.network, station=config.station,
                                  location=config.location, channel=config.channel,
                                  starttime=obspy.UTCDateTime(config.starttime),
                                  endtime=obspy.UTCDateTime(config.endtime), level="response")
        if inventory is None:
            write_import_rejects(archive, region, requests.rejects)
            raise IngestError(f"fdsnws-station: no inventory: {requests.rejects[-1].detail}")
        write_inventory(archive, region, inventory)
    events = read_catalog(catalog_uri, region)
    stations = read_stations(inventory_uri)
    written = skipped = 0
    for event in events:
        if event_done(archive, region, event.event_id):
            skipped += 1
            continue
        t0 = obspy.UTCDateTime(event.origin_time - config.window_before_s)
        t1 = obspy.UTCDateTime(event.origin_time + config.window_after_s)
        bulk = []
        for station in stations.values():
            if not station.has_coordinates:
                continue
            km = gps2dist_azimuth(event.latitude, event.longitude, station.latitude, station.longitude)[0] / 1000.0
            if config.min_distance_km <= km <= config.max_distance_km:
                # One line per channel pattern: fdsnws-dataselect takes wildcards, not lists, in POST lines.
                bulk += [(station.network, station.station, config.location, pattern.strip(), t0, t1)
                         for pattern in config.channel.split(",") if pattern.strip()]
        if not bulk:
            requests.rejects.append(Reject(region, event.event_id, "*", "missing_waveform_file",
                                           f"no station within {config.min_distance_km:g}-{config.max_distance_km:g} km",
                                           inventory_uri))
            continue
        stream = requests.call("dataselect", event.event_id, "get_waveforms_bulk", bulk=bulk)
        if stream is None or not len(stream):
            continue
        write_event_waveforms(archive, region, event.event_id, stream)
        written += 1
    write_import_rejects(archive, region, requests.rejects)
    counts: dict[str, int] = {}
    for r in requests.rejects:
        counts[r.reason] = counts.get(r.reason, 0) + 1
    return {"events": len(events), "written": written, "skipped": skipped, "requests": requests.count,
            "rejects": counts}


__all__ = ["DEFAULT_EVENT_TYPES", "FetchConfig", "fetch_archive", "safe_event_id"]
