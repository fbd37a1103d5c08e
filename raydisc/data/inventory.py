"""StationXML inventories read with ObsPy into small plain records that travel to workers.

Real inventories are incomplete: channels with only an overall sensitivity, or with no
response at all; stations without coordinates; epochs with gaps; several sensors
(location codes, bands) at one station. :func:`read_stations` keeps every channel epoch
of every station with what it has, and says per channel what is missing
(:attr:`ChannelInfo.response_kind`); what a station's recordings can do without is
decided where they are cut (:mod:`raydisc.data.recordings`), so one bad channel never
fails the inventory.
"""
from __future__ import annotations

import hashlib
import io
import math
import pickle
from dataclasses import dataclass
from functools import cached_property

import obspy

from ..features.response import response_kind
from ..storage import read_bytes
from .records import IngestError

#: Input units of an overall sensitivity that can convert counts to ground velocity.
_VELOCITY_UNITS = ("M/S", "M/SEC", "M/S**1")


@dataclass(frozen=True)
class ChannelInfo:
    """One channel epoch.

    ``azimuth``/``dip``: degrees (SEED conventions: azimuth clockwise from north, dip
    down from horizontal, so a vertical pointing up has dip -90); NaN when not given.
    ``start``/``end``: POSIX seconds of the epoch (``end`` inf when open).
    ``sensitivity``: overall sensitivity in counts per (m/s), None when the channel has
    none usable for velocity. ``response``: the ObsPy response when it has stages to
    evaluate (``response_kind == "full"``), else None.
    """

    code: str
    location: str
    azimuth: float
    dip: float
    sampling_rate: float
    start: float
    end: float
    response_kind: str  # "full", "sensitivity" or "none"
    sensitivity: float | None
    response: object | None = None

    @property
    def band(self) -> str:
        """SEED band + instrument code, e.g. ``"HH"`` of ``"HHZ"``."""
        return self.code[:2]

    @property
    def orientation(self) -> str:
        """Last letter of the code: ``Z``, ``N``, ``E``, ``1``, ``2``, ``3``, ..."""
        return self.code[-1:]

    def operating(self, time: float) -> bool:
        """Whether the epoch covers ``time`` (POSIX s); every epoch covers an unknown (NaN) time."""
        return math.isnan(time) or self.start <= time <= self.end

    @cached_property
    def _response_digest(self) -> str:
        # The response's content, not only its channel and epoch: a corrected StationXML
        # read into the same long-lived process (Serve replica, API session) must not
        # get the evaluation of the old one from the response cache.
        return hashlib.blake2b(pickle.dumps(self.response), digest_size=16).hexdigest() if self.response else ""

    def response_key(self, network: str, station: str) -> tuple[str, float, str]:
        """Identifies this channel epoch's response (for caching its evaluation):
        ``(NET.STA.LOC.CHA, epoch start POSIX s, digest of the response's content)``."""
        return (f"{network}.{station}.{self.location}.{self.code}", self.start, self._response_digest)


@dataclass(frozen=True)
class StationInfo:
    """A station: coordinates (degrees, m; NaN when the inventory has none) and all its
    channel epochs (every location code and band)."""

    network: str
    station: str
    latitude: float
    longitude: float
    elevation_m: float
    channels: tuple[ChannelInfo, ...]

    @property
    def key(self) -> str:
        """``NET.STA`` (a recording adds the location code it was cut from)."""
        return f"{self.network}.{self.station}"

    @property
    def has_coordinates(self) -> bool:
        return math.isfinite(self.latitude) and math.isfinite(self.longitude)


def _float(value, default: float = math.nan) -> float:
    try:
        return default if value is None else float(value)
    except (TypeError, ValueError):
        return default


def channel_info(channel: obspy.core.inventory.Channel) -> ChannelInfo:
    """A :class:`ChannelInfo` of one ObsPy channel epoch."""
    response = channel.response
    kind = response_kind(response)
    sensitivity = None
    if kind != "none":
        overall = response.instrument_sensitivity
        units = (getattr(overall, "input_units", None) or "").upper()
        value = _float(getattr(overall, "value", None))
        if kind == "full" or units in _VELOCITY_UNITS:
            # With stages, evalresp converts any input units to velocity; the overall
            # value is then only used by response_removal="sensitivity".
            sensitivity = value if math.isfinite(value) and value != 0 else None
        if kind == "sensitivity" and sensitivity is None:
            kind = "none"  # an acceleration or displacement gain alone cannot give velocity
    return ChannelInfo(
        code=channel.code,
        location=channel.location_code or "",
        azimuth=_float(channel.azimuth),
        dip=_float(channel.dip),
        sampling_rate=_float(channel.sample_rate, 0.0),
        start=channel.start_date.timestamp if channel.start_date is not None else -math.inf,
        end=channel.end_date.timestamp if channel.end_date is not None else math.inf,
        response_kind=kind,
        sensitivity=sensitivity,
        response=response if kind == "full" else None,
    )


def stations_from_inventory(inventory: obspy.Inventory, no_coordinates: set[str] = frozenset()) -> dict[str, StationInfo]:
    """:class:`StationInfo` records of an ObsPy inventory, keyed ``NET.STA``.

    Several epochs of one station are merged into one record with all their channel
    epochs; coordinates come from the station, else from its first channel with some.
    ``no_coordinates``: keys of stations whose coordinates are placeholders (NaN then).
    """
    stations: dict[str, StationInfo] = {}
    for network in inventory:
        for station in network:
            channels = tuple(channel_info(c) for c in station)
            key = f"{network.code}.{station.code}"
            coordinates = [] if key in no_coordinates else [(station.latitude, station.longitude, station.elevation)]
            lat, lon, elev = next(((_float(a), _float(b), _float(c, 0.0)) for a, b, c in coordinates
                                   if math.isfinite(_float(a)) and math.isfinite(_float(b))),
                                  (math.nan, math.nan, math.nan))
            if key in stations:  # another epoch of a station already seen
                known = stations[key]
                channels = known.channels + channels
                lat, lon, elev = ((known.latitude, known.longitude, known.elevation_m)
                                  if known.has_coordinates else (lat, lon, elev))
            stations[key] = StationInfo(network.code, station.code, lat, lon, elev, channels)
    return stations


#: Position elements StationXML requires of stations and channels, and that ObsPy cannot
#: read an inventory without (it fails on the first one missing).
_POSITION = ("Latitude", "Longitude", "Elevation")
_CHANNEL_POSITION = (*_POSITION, "Depth")


def _fill_missing_positions(data: bytes) -> tuple[bytes, set[str]]:
    """StationXML with placeholder positions where stations or channels lack them, and the
    ``NET.STA`` keys whose coordinates were missing; the data unchanged when none are."""
    from lxml import etree

    root = etree.fromstring(data)
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    missing: set[str] = set()
    changed = False
    for network in root.iter(f"{ns}Network"):
        for station in network.iter(f"{ns}Station"):
            key = f"{network.get('code')}.{station.get('code')}"
            for element, names in [(station, _POSITION), *[(c, _CHANNEL_POSITION) for c in station.iter(f"{ns}Channel")]]:
                for name in names:
                    child = element.find(f"{ns}{name}")
                    if child is None or not (child.text or "").strip():
                        if child is None:
                            child = etree.SubElement(element, f"{ns}{name}")
                        child.text = "0"
                        changed = True
                        if name in ("Latitude", "Longitude") and element is station:
                            missing.add(key)
    return (etree.tostring(root) if changed else data), missing


def parse_stationxml(data: bytes, source: str = "StationXML") -> dict[str, StationInfo]:
    """Parse StationXML bytes into :class:`StationInfo` records keyed ``NET.STA``.

    A station whose StationXML lacks its coordinates keeps NaN coordinates (ObsPy would
    refuse the whole file; its channels' coordinates are used when they have some).
    Raises :class:`IngestError`, naming ``source``, when the bytes are not StationXML.
    """
    try:
        data, no_coordinates = _fill_missing_positions(data)
        inventory = obspy.read_inventory(io.BytesIO(data), format="STATIONXML")
    except Exception as exc:
        raise IngestError(f"{source}: cannot read StationXML inventory: {type(exc).__name__}: {exc}"[:400]) from exc
    return stations_from_inventory(inventory, no_coordinates)


def read_stations(source: str | obspy.Inventory) -> dict[str, StationInfo]:
    """:class:`StationInfo` records keyed ``NET.STA`` of a StationXML file (``source`` a
    path/URI, see :func:`parse_stationxml`) or of an ``obspy.Inventory`` in memory (read
    from its objects by :func:`stations_from_inventory`, no StationXML written).

    Raises :class:`IngestError` only when the file is missing or not StationXML at all.
    """
    if isinstance(source, obspy.Inventory):
        return stations_from_inventory(source)
    try:
        data = read_bytes(source)
    except FileNotFoundError:
        raise IngestError(f"{source}: inventory not found") from None
    return parse_stationxml(data, source)


__all__ = ["ChannelInfo", "StationInfo", "channel_info", "parse_stationxml", "read_stations", "stations_from_inventory"]
