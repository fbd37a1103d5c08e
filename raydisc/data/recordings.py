"""Cut station recordings of one event from an ObsPy stream, as real networks record them.

Per station of the inventory, :func:`cut_recordings_from_stream`

1. picks the channels: the first band of ``config.channel_priority`` (e.g. HH > BH >
   EH > SH) whose vertical has data and whose epoch covers the event, at the location
   code with the most components;
2. takes the horizontals that are there: N/E as they are, numbered ``1``/``2`` rotated
   to N/E with their inventory azimuths, a lone horizontal only when it points within
   :data:`ALIGNED_DEG` of north or east. A recording has 1 (Z), 2 or 3 components;
   :attr:`Recording.components` says which;
3. finds the window reference: the catalog's P pick, else the P arrival predicted from
   the origin with a 1-D model (:mod:`raydisc.data.traveltimes`);
   :attr:`Recording.pick_source` says which;
4. cuts and checks every component (gaps, coverage, NaN, clipping, rates).

Anything that fails becomes a :class:`~raydisc.data.records.Reject` naming the station,
channel and reason; an operating station without data is a ``not_recorded`` row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import obspy
from obspy.geodetics import gps2dist_azimuth

from ..config import COMPONENTS, PreprocessConfig
from ..features import cut_window_samples
from .catalog import EventInfo
from .inventory import ChannelInfo, StationInfo
from .records import Reject
from .traveltimes import SourceDepthError, first_p_travel_time

#: A lone horizontal within this many degrees of north (east) is used as N (E).
ALIGNED_DEG = 5.0
# Two sampling rates closer than this (relative) are the same rate.
_RATE_TOLERANCE = 1e-4
_HORIZONTAL = ("N", "E", "1", "2")
#: Weakest first: a recording's response kind is the weakest of its channels'.
_RESPONSE_ORDER = ("none", "sensitivity", "full")


@dataclass
class Recording:
    """One station's raw window of one event.

    ``counts``: float64 ``(3, n)`` in digitizer counts of the Z, N, E components
    (zeros where ``present`` is False), starting ``padding_s`` before the window start;
    horizontals from ``1``/``2`` channels are already rotated to N/E.
    ``present``: bool ``(3,)``. ``sensitivity``: counts per (m/s) per component ``(3,)``
    (1 where absent). ``channels``: per component the :class:`ChannelInfo` whose
    response applies, None where absent. ``response_kind``: the weakest of theirs
    (``full``, ``sensitivity`` or ``none``). ``pick_source``: ``catalog``, ``predicted``
    or ``origin`` (window relative to the origin time). ``distance_km``: epicentral, NaN
    when the station has no coordinates.
    """

    event: EventInfo
    station: StationInfo
    location: str
    distance_km: float
    counts: np.ndarray
    present: np.ndarray
    sensitivity: np.ndarray
    sampling_rate: float
    channels: tuple[ChannelInfo | None, ...]
    channel_codes: tuple[str, ...]
    response_kind: str
    pick_source: str

    @property
    def key(self) -> str:
        """``NET.STA.LOC``."""
        return f"{self.station.key}.{self.location}"

    @property
    def components(self) -> str:
        """The components present, e.g. ``"ZNE"`` or ``"Z"``."""
        return "".join(c for c, p in zip(COMPONENTS, self.present) if p)


class _RecordingProblem(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def station_distances_km(event: EventInfo, stations: dict[str, StationInfo]) -> dict[str, float]:
    """Epicentral distance (km) of each station; NaN without station coordinates."""
    out = {}
    for key, s in stations.items():
        if s.has_coordinates and math.isfinite(event.latitude) and math.isfinite(event.longitude):
            try:
                out[key] = gps2dist_azimuth(event.latitude, event.longitude, s.latitude, s.longitude)[0] / 1000.0
            except ZeroDivisionError:
                # ObsPy's Vincenty formulae divide by zero for two points that coincide
                # up to float precision without being equal (e.g. latitude 0 and 1e-200).
                out[key] = 0.0
        else:
            out[key] = math.nan
    return out


def catalog_pick(event: EventInfo, station: StationInfo, location: str) -> float | None:
    """The catalog's P pick (POSIX s) for the station at ``location``, else for any of
    its location codes (catalogs often give picks without one)."""
    exact = event.picks.get(f"{station.key}.{location}", {}).get("P")
    if exact is not None:
        return exact
    prefix = station.key + "."
    return next((p["P"] for k, p in sorted(event.picks.items()) if k.startswith(prefix) and "P" in p), None)


def window_references(event: EventInfo, stations: dict[str, StationInfo], distances: dict[str, float],
                      config: PreprocessConfig) -> dict[str, tuple[float, str] | _RecordingProblem]:
    """Per station key: ``(reference time, pick source)`` or the problem that leaves it
    without one. With several location codes the pick of the first one that has one is
    taken (the cut checks it against the chosen location again)."""
    refs: dict[str, tuple[float, str] | _RecordingProblem] = {}
    if config.window_reference == "origin":
        return {key: (event.origin_time, "origin") for key in stations}
    need_prediction = []
    for key, station in stations.items():
        pick = None if config.pick_source == "predicted" else catalog_pick(event, station, "")
        if pick is not None:
            refs[key] = (pick, "catalog")
        elif config.pick_source == "catalog":
            refs[key] = _RecordingProblem("no_p_pick", "catalog has no P pick for this station")
        elif not math.isfinite(event.origin_time):
            refs[key] = _RecordingProblem("no_p_pick", "no P pick, and no origin time to predict one from")
        elif not math.isfinite(distances[key]):
            refs[key] = _RecordingProblem(
                "no_station_coordinates",
                "the P arrival must be predicted, but the inventory gives no station coordinates")
        else:
            need_prediction.append(key)
    if need_prediction:
        depth = max(event.depth_km, 0.0)
        try:
            times = np.atleast_1d(first_p_travel_time(config.travel_time_model, depth,
                                                      np.array([distances[k] for k in need_prediction])))
        except SourceDepthError as exc:  # a catalog depth no model takes (e.g. below the planet)
            times = np.full(len(need_prediction), np.nan)
            why = str(exc)
        else:
            why = f"no P arrival from a {depth:g} km deep source at this distance in {config.travel_time_model}"
        for key, t in zip(need_prediction, times):
            # NaN: the model has no P-type arrival there (e.g. deep sources beyond the core shadow).
            refs[key] = ((event.origin_time + float(t), "predicted") if math.isfinite(t)
                         else _RecordingProblem("no_p_pick", f"cannot predict the P arrival: {why}"))
    return refs


def _choose_channels(station: StationInfo, time: float, have: set[str], config: PreprocessConfig
                     ) -> tuple[str, dict[str, ChannelInfo]] | None:
    """``(location, {orientation letter: channel})`` of the best channel group with a
    vertical trace in ``have`` (SEED ids), or None."""
    for band in config.channel_priority:
        groups: dict[str, dict[str, ChannelInfo]] = {}
        for ch in station.channels:
            if ch.band == band and ch.operating(time) and f"{station.key}.{ch.location}.{ch.code}" in have:
                groups.setdefault(ch.location, {}).setdefault(ch.orientation, ch)
        candidates = [(loc, chans) for loc, chans in sorted(groups.items()) if "Z" in chans or "3" in chans]
        if candidates:
            return max(candidates, key=lambda lc: (len(lc[1]), [-ord(c) for c in lc[0]]))
    return None


def _component_plan(chans: dict[str, ChannelInfo]) -> tuple[ChannelInfo, list[tuple[str, ChannelInfo]]]:
    """The vertical and the horizontals to read: ``[(how, channel)]`` with ``how`` in
    ``N``, ``E`` (as they are) or ``1``/``2`` (rotated with their azimuths)."""
    vertical = chans.get("Z") or chans["3"]
    if "N" in chans or "E" in chans:
        return vertical, [(c, chans[c]) for c in ("N", "E") if c in chans]
    if "1" in chans and "2" in chans and all(math.isfinite(chans[c].azimuth) for c in ("1", "2")):
        return vertical, [("1", chans["1"]), ("2", chans["2"])]
    lone = [chans[c] for c in ("1", "2") if c in chans and math.isfinite(chans[c].azimuth)]
    horizontals = []
    for ch in lone:  # one horizontal alone: only if it points north or east
        for name, azimuth in (("N", 0.0), ("E", 90.0)):
            if abs((ch.azimuth - azimuth + 180.0) % 360.0 - 180.0) <= ALIGNED_DEG:
                horizontals.append((name, ch))
    return vertical, horizontals


def _cut_trace(traces: list[obspy.Trace], channel: ChannelInfo, fs: float, start: float, n: int,
               config: PreprocessConfig) -> np.ndarray:
    """``n`` samples (float64 counts) of one channel from ``start`` (POSIX s), checked."""
    stream = obspy.Stream(traces)
    text = [tr.id for tr in stream if tr.data.dtype.kind not in "iuf"]
    if text:  # ASCII (encoding 0) records, e.g. a damaged encoding byte: no samples to cut
        raise _RecordingProblem("unreadable_waveform_file", f"{text[0]}: records hold text, not samples")
    if len(stream) > 1:
        stream = stream.copy()
        # ObsPy's merge raises TypeError for traces of one channel that differ in rate or
        # sample type; damaged files (or a digitizer switching encoding) have both.
        rates = sorted({tr.stats.sampling_rate for tr in stream})
        if len(rates) > 1:
            raise _RecordingProblem("sampling_rate_mismatch",
                                    f"{stream[0].id}: records at different sampling rates {rates} Hz")
        if len({tr.data.dtype for tr in stream}) > 1:
            for tr in stream:  # the window becomes float64 anyway
                tr.data = tr.data.astype(np.float64)
        stream.sort(["starttime"])
        gaps = stream.get_gaps()
        if gaps:
            longest = max(abs(g[6]) for g in gaps)
            raise _RecordingProblem("gap", f"{channel.code}: {len(gaps)} gap(s)/overlap(s), longest {longest:.3f} s")
        stream.merge(method=1)
    trace = stream[0]
    if abs(trace.stats.sampling_rate - fs) > _RATE_TOLERANCE * fs:
        raise _RecordingProblem("sampling_rate_mismatch",
                                f"{trace.id}: {trace.stats.sampling_rate} Hz, other components at {fs} Hz")
    first = int(round((start - trace.stats.starttime.timestamp) * fs))
    if first < 0 or first + n > trace.stats.npts:
        raise _RecordingProblem(
            "too_short",
            f"{trace.id}: data {trace.stats.starttime}..{trace.stats.endtime} does not cover the "
            f"{config.window_length_s + 2 * config.padding_s:.1f} s window from {obspy.UTCDateTime(start)}")
    window = np.asarray(trace.data[first : first + n], dtype=np.float64)
    if np.ma.isMaskedArray(trace.data) and np.ma.getmaskarray(trace.data)[first : first + n].any():
        raise _RecordingProblem("gap", f"{trace.id}: masked (missing) samples in the window")
    if not np.all(np.isfinite(window)):
        raise _RecordingProblem("nan", f"{trace.id}: {int(np.sum(~np.isfinite(window)))} non-finite samples in the window")
    peak = np.abs(window).max() if n else 0.0
    if peak >= config.clip_fraction * config.clip_counts:
        raise _RecordingProblem("clipped", f"{trace.id}: peak {peak:.0f} counts reaches the digitizer full scale")
    return window


def _gain(channel: ChannelInfo) -> float:
    """Counts per (m/s) to scale by before rotation (1 for a channel without any)."""
    return channel.sensitivity if channel.sensitivity else 1.0


def _cut_station(traces_by_id: dict[str, list[obspy.Trace]], event: EventInfo, station: StationInfo,
                 chosen: tuple[str, dict[str, ChannelInfo]], reference: tuple[float, str],
                 distance_km: float, config: PreprocessConfig) -> Recording:
    location, chans = chosen
    vertical, horizontals = _component_plan(chans)
    used = [vertical] + [ch for _, ch in horizontals]
    prefix = f"{station.key}.{location}."
    # The data's rate is authoritative: StationXML sample rates are descriptive and
    # sometimes wrong (ObsPy's own example inventory gives RJOB 200 Hz, its data 100 Hz).
    rates = [traces_by_id[prefix + ch.code][0].stats.sampling_rate for ch in used]
    fs = float(rates[0])
    for ch, rate in zip(used[1:], rates[1:]):
        if abs(rate - fs) > _RATE_TOLERANCE * fs:
            raise _RecordingProblem("sampling_rate_mismatch",
                                    f"{vertical.code} at {fs:g} Hz but {ch.code} at {rate:g} Hz in the data")
    if fs < config.min_sampling_rate_hz:
        raise _RecordingProblem(
            "sampling_rate_too_low",
            f"{vertical.code} at {fs:g} Hz; the {config.freqmin_hz:g}-{config.freqmax_hz:g} Hz band needs at least "
            f"{config.min_sampling_rate_hz:.1f} Hz")
    missing = [ch.code for ch in used if ch.response_kind == "none"]
    if missing and not config.allow_missing_response:
        raise _RecordingProblem("no_response", f"{', '.join(missing)}: no instrument response or sensitivity in the "
                                               "inventory (allow_missing_response uses counts)")
    time, pick_source = reference
    n = cut_window_samples(fs, config)
    start = time + config.window_start_s - config.padding_s

    def cut(ch: ChannelInfo) -> np.ndarray:
        return _cut_trace(traces_by_id[prefix + ch.code], ch, fs, start, n, config)

    counts = np.zeros((3, n))
    present = np.zeros(3, dtype=bool)
    sensitivity = np.ones(3)
    response_of: list[ChannelInfo | None] = [None, None, None]
    counts[0] = cut(vertical) * (-1.0 if vertical.dip > 0 else 1.0)  # dip +90: the sensor points down
    present[0], sensitivity[0], response_of[0] = True, _gain(vertical), vertical
    if horizontals and horizontals[0][0] in ("1", "2"):
        # Rotate in the counts of channel 1: the two horizontals of one sensor share its
        # response shape; a gain difference is scaled out first.
        (_, ch1), (_, ch2) = horizontals
        g1 = _gain(ch1)
        h1, h2 = cut(ch1), cut(ch2) * (g1 / _gain(ch2))
        a1, a2 = np.radians(ch1.azimuth), np.radians(ch2.azimuth)
        counts[1] = h1 * np.cos(a1) + h2 * np.cos(a2)
        counts[2] = h1 * np.sin(a1) + h2 * np.sin(a2)
        present[1:] = True
        sensitivity[1:] = g1
        response_of[1] = response_of[2] = ch1
    else:
        for name, ch in horizontals:
            i = COMPONENTS.index(name)
            counts[i], present[i], sensitivity[i], response_of[i] = cut(ch), True, _gain(ch), ch
    kinds = [ch.response_kind for ch in used]
    return Recording(
        event=event, station=station, location=location, distance_km=distance_km, counts=counts,
        present=present, sensitivity=sensitivity, sampling_rate=fs, channels=tuple(response_of),
        channel_codes=tuple(ch.code for ch in used), response_kind=min(kinds, key=_RESPONSE_ORDER.index),
        pick_source=pick_source,
    )


def cut_recordings_from_stream(
    stream: obspy.Stream,
    event: EventInfo,
    stations: dict[str, StationInfo],
    config: PreprocessConfig,
    source: str = "",
) -> tuple[list[Recording], list[Reject]]:
    """Cut each station's window of one event from an ObsPy stream (any source: a file,
    an upload, an SDS archive, an FDSN service). ``stations``: keyed ``NET.STA``
    (:func:`raydisc.data.inventory.read_stations`); ``source`` names the data in reject
    rows. Never raises for bad data: see the module docstring and
    :data:`~raydisc.data.records.REJECT_REASONS`.
    """
    def reject(key: str, reason: str, detail: str) -> Reject:
        return Reject(event.region, event.event_id, key, reason, detail, source)

    recordings: list[Recording] = []
    rejects: list[Reject] = []
    traces_by_id: dict[str, list[obspy.Trace]] = {}
    locations_by_station: dict[str, set[str]] = {}
    for trace in stream:
        traces_by_id.setdefault(trace.id, []).append(trace)
        locations_by_station.setdefault(f"{trace.stats.network}.{trace.stats.station}", set()).add(trace.stats.location)
    for key in sorted(set(locations_by_station) - set(stations)):
        for location in sorted(locations_by_station[key]):
            rejects.append(reject(f"{key}.{location}", "no_station_metadata", "station is not in the inventory"))

    time = event.origin_time
    recorded = {k: s for k, s in stations.items() if k in locations_by_station}
    distances = station_distances_km(event, recorded)
    references = window_references(event, recorded, distances, config)
    have = set(traces_by_id)
    for key in sorted(stations):
        station = stations[key]
        if key not in recorded:
            operating = [ch for ch in station.channels if ch.operating(time) and ch.band in config.channel_priority]
            if operating:
                rejects.append(reject(f"{key}.{operating[0].location}", "not_recorded", "no traces for this station"))
            continue
        chosen = _choose_channels(station, time, have, config)
        first_location = sorted(locations_by_station[key])[0]
        if chosen is None:
            codes = sorted({t.split(".")[-1] for t in have if t.startswith(key + ".")})
            if not any(ch.operating(time) for ch in station.channels):
                rejects.append(reject(f"{key}.{first_location}", "no_station_metadata",
                                      f"no channel epoch of the inventory covers the event time {obspy.UTCDateTime(time)}"))
            else:
                rejects.append(reject(f"{key}.{first_location}", "missing_component",
                                      f"no vertical channel of bands {','.join(config.channel_priority)} with data "
                                      f"(data: {','.join(codes)})"))
            continue
        location = chosen[0]
        reference = references[key]
        if isinstance(reference, tuple) and reference[1] == "catalog":
            pick = catalog_pick(event, station, location)
            reference = (pick, "catalog") if pick is not None else reference
        try:
            if isinstance(reference, _RecordingProblem):
                raise reference
            recordings.append(_cut_station(traces_by_id, event, station, chosen, reference, distances[key], config))
        except _RecordingProblem as problem:
            rejects.append(reject(f"{key}.{location}", problem.reason, str(problem)))
    return recordings, rejects


__all__ = ["ALIGNED_DEG", "Recording", "catalog_pick", "cut_recordings_from_stream", "station_distances_km",
           "window_references"]
