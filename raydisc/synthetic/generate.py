"""Write synthetic regions as real files: QuakeML, StationXML, miniSEED, truth CSVs.

Paths come from :mod:`raydisc.data.layout`; every file is written with
:func:`raydisc.storage.open_atomic` / :func:`raydisc.storage.write_bytes_atomic`, so the
root may be a local folder or an object-store URI (``s3://bucket/prefix``). Besides
``truth.csv`` (per event) each region gets ``stations.csv`` (per sensor: channels,
rate, orientation, metadata defects; see :data:`STATION_COLUMNS`); both tables are
built in :mod:`.tables`. Noise windows and surface events (:mod:`.classes`) are added
only when a :class:`~raydisc.synthetic.classes.ClassMix` asks for them.
"""
from __future__ import annotations

import io
import math
from typing import Mapping, Sequence

import numpy as np
from lxml import etree
from obspy.core.event import (
    Arrival,
    Catalog,
    CreationInfo,
    Event,
    Magnitude,
    Origin,
    OriginQuality,
    Pick,
    QuantityError,
    ResourceIdentifier,
    WaveformStreamID,
)

from ..data import layout
from ..storage import open_atomic, write_bytes_atomic
from . import physics
from .classes import ClassMix, event_waveform_rng, sample_any
from .events import EARTHQUAKE, QUARRY_BLAST, Network, SyntheticEvent, build_network, local_to_geographic
from .inventory import AGENCY, CREATED, inventory_bytes
from .regions import REGIONS
from .specs import RegionSpec
from .stations import StationPlan, build_plan, corrupt_events
from .streams import corrupt, event_stream, mseed_bytes
from .grid import build_grid
from .tables import (STATION_COLUMNS, STATIONS_FILE, SURFACE_COLUMNS, TRUTH_COLUMNS, WAVEFORM_FILE_COLUMN, csv_bytes,
                     station_rows, stations_uri, truth_row)

#: Events serialised to QuakeML per batch: ObsPy event objects are heavy (a few hundred
#: kB each with picks and arrivals), so large catalogs are streamed, not built whole.
CATALOG_CHUNK = 250


# -------------------------------------------------------------------------- catalog
def _rid(*parts: str) -> ResourceIdentifier:
    return ResourceIdentifier(layout.RESOURCE_ID_PREFIX + "/".join(parts))


def build_event(spec: RegionSpec, network: Network, event: SyntheticEvent, plan: Sequence[StationPlan] | None = None) -> Event:
    """QuakeML event: catalog origin (with location error), ML (none for a noise
    window) and, unless the region's recording has ``picks=False`` or the event has no
    clear onsets (``event.has_picks``), P and S picks and arrivals at every station, on the
    Z channel (or first channel) of its primary sensor in ``plan`` (default: the
    region's nominal Z channel, location ``""``)."""
    eid = event.event_id
    creation = CreationInfo(agency_id=AGENCY, creation_time=CREATED)
    # True arrival times (from the true hypocentre) plus pick errors.
    de, dn = network.east_km - event.east_km, network.north_km - event.north_km
    dist = np.hypot(de, dn)
    t_p = physics.travel_times(spec.crust, dist, event.depth_km, "P")[0] + event.p_pick_error_s
    t_s = physics.travel_times(spec.crust, dist, event.depth_km, "S")[0] + event.s_pick_error_s
    # Geometry and residuals as the catalog's (mislocated) origin predicts them.
    ce, cn = network.east_km - event.catalog_east_km, network.north_km - event.catalog_north_km
    cat_dist = np.hypot(ce, cn)
    cat_az = np.degrees(np.arctan2(ce, cn)) % 360.0
    cat_depth = event.catalog_depth_km
    pred = {w: physics.travel_times(spec.crust, cat_dist, cat_depth, w) for w in ("P", "S")}
    lat, lon = local_to_geographic(spec, event.catalog_east_km, event.catalog_north_km)
    pick_channels = [("", spec.channel_codes[0])] * network.n_stations
    if plan is not None:
        pick_channels = [(s.primary.location, s.primary.channel_codes[0]) for s in plan]
    picks, arrivals = [], []
    for i, sta in enumerate(network.station_codes):
        if not (spec.recording.picks and event.has_picks):
            break
        location, channel = pick_channels[i]
        wid = WaveformStreamID(network_code=network.code, station_code=sta, location_code=location, channel_code=channel)
        for phase, t_obs, sigma in (("P", t_p[i], spec.waves.p_pick_sigma_s), ("S", t_s[i], spec.waves.s_pick_sigma_s)):
            pick = Pick(
                resource_id=_rid(eid, "pick", sta, phase),
                time=event.origin_time + float(t_obs),
                time_errors=QuantityError(uncertainty=sigma),
                waveform_id=wid,
                phase_hint=phase,
                evaluation_mode="manual",
            )
            picks.append(pick)
            t_pred, _, takeoff, _ = pred[phase]
            arrivals.append(
                Arrival(
                    resource_id=_rid(eid, "arrival", sta, phase),
                    pick_id=pick.resource_id,
                    phase=phase,
                    distance=float(cat_dist[i] / physics.KM_PER_DEGREE),
                    azimuth=float(cat_az[i]),
                    takeoff_angle=float(takeoff[i]),
                    time_residual=float(t_obs - t_pred[i]),
                )
            )
    origin = Origin(
        resource_id=_rid(eid, "origin"),
        time=event.origin_time,
        latitude=float(lat),
        longitude=float(lon),
        depth=round(cat_depth * 1e3, 1),
        depth_errors=QuantityError(uncertainty=spec.catalog.depth_sigma_km * 1e3),
        arrivals=arrivals,
        quality=OriginQuality(
            used_phase_count=len(arrivals) if arrivals else None,
            used_station_count=None if event.is_noise else network.n_stations,
            minimum_distance=float(cat_dist.min() / physics.KM_PER_DEGREE),
            maximum_distance=float(cat_dist.max() / physics.KM_PER_DEGREE),
        ),
        evaluation_mode="manual",
        creation_info=creation,
    )
    magnitudes = [] if math.isnan(event.catalog_magnitude) else [Magnitude(
        resource_id=_rid(eid, "magnitude"),
        mag=event.catalog_magnitude,
        magnitude_type="ML",
        origin_id=origin.resource_id,
        station_count=network.n_stations,
        creation_info=creation,
    )]
    return Event(
        resource_id=ResourceIdentifier(layout.RESOURCE_ID_PREFIX + eid),
        event_type=event.catalog_type,
        event_type_certainty="known",
        origins=[origin],
        magnitudes=magnitudes,
        picks=picks,
        preferred_origin_id=origin.resource_id,
        preferred_magnitude_id=magnitudes[0].resource_id if magnitudes else None,
        creation_info=creation,
    )


def _xml_bytes(obj, fmt: str) -> bytes:
    buffer = io.BytesIO()
    obj.write(buffer, format=fmt)
    return buffer.getvalue()


def write_catalog(
    uri: str,
    spec: RegionSpec,
    network: Network,
    events: Sequence[SyntheticEvent],
    seed: int,
    chunk: int = CATALOG_CHUNK,
    plan: Sequence[StationPlan] | None = None,
) -> None:
    """Write the region's QuakeML catalog, serialising ``chunk`` events at a time
    (``plan``: see :func:`build_event`).

    ObsPy writes the document shell (catalog id, description, creation info); the
    ``<event>`` elements of each batch, serialised by ObsPy too, are streamed into it.
    """
    shell = _xml_bytes(
        Catalog(
            events=[],
            resource_id=ResourceIdentifier(layout.RESOURCE_ID_PREFIX + f"{spec.name}/catalog"),
            description=f"raydisc synthetic {spec.name} catalog (seed {seed})",
            creation_info=CreationInfo(agency_id=AGENCY, creation_time=CREATED),
        ),
        "QUAKEML",
    )
    cut = shell.rindex(b"</eventParameters>")
    with open_atomic(uri) as f:
        f.write(shell[:cut])
        for start in range(0, len(events), chunk):
            batch = Catalog(events=[build_event(spec, network, e, plan) for e in events[start : start + chunk]])
            parameters = etree.fromstring(_xml_bytes(batch, "QUAKEML")).find("{*}eventParameters")
            for element in parameters.findall("{*}event"):
                element.tail = "\n  "
                f.write(etree.tostring(element))
        f.write(shell[cut:])


# ----------------------------------------------------------------------------- API
def generate_region(root: str, spec: RegionSpec, n_events: int, seed: int = 0, progress: bool = False,
                    mix: ClassMix = ClassMix()) -> dict:
    """Write one region under ``root`` and return its summary (see :func:`generate_archive`)."""
    network = build_network(spec, seed)
    plan = build_plan(spec, network, seed)
    grid = build_grid(spec, network)
    write_bytes_atomic(layout.inventory_uri(root, spec.name), inventory_bytes(spec, network, plan))
    spoiled = corrupt_events(spec, seed, n_events)
    events: list[SyntheticEvent] = []
    indices = range(n_events)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=spec.name, unit="event")
    for index in indices:
        event = sample_any(spec, seed, index, mix)
        data = mseed_bytes(event_stream(grid, plan, event, event_waveform_rng(spec, seed, event)))
        if index in spoiled:
            data = corrupt(data, spoiled[index], spec, seed, index)
        write_bytes_atomic(layout.waveform_uri(root, spec.name, event.event_id), data)
        events.append(event)
    rows = [truth_row(spec, event) for event in events]
    columns = TRUTH_COLUMNS + (SURFACE_COLUMNS if mix.surface_fraction > 0 else ())
    if spec.recording.corrupt_files:
        columns = columns + (WAVEFORM_FILE_COLUMN,)
        for i, row in enumerate(rows):
            row[WAVEFORM_FILE_COLUMN] = spoiled.get(i, "ok")
    write_bytes_atomic(layout.truth_uri(root, spec.name), csv_bytes(columns, rows))
    write_bytes_atomic(stations_uri(root, spec.name), csv_bytes(STATION_COLUMNS, station_rows(network, plan)))
    # The catalog goes last: layout.list_regions treats a folder with a catalog as a
    # complete region.
    write_catalog(layout.catalog_uri(root, spec.name), spec, network, events, seed, plan=plan)
    return {
        "events": n_events,
        EARTHQUAKE: sum(r["catalog_type"] == EARTHQUAKE for r in rows),
        QUARRY_BLAST: sum(r["catalog_type"] == QUARRY_BLAST for r in rows),
        **{t: sum(r["catalog_type"] == t for r in rows) for t in mix.event_types(spec)},
        "stations": network.n_stations,
        "recordings": n_events * network.n_stations,
    }


def generate_archive(
    root: str,
    regions: Sequence[str] | str | None = None,
    events_per_region: int | Mapping[str, int] = 200,
    seed: int = 0,
    progress: bool = False,
    specs: Mapping[str, RegionSpec] | None = None,
    mix: ClassMix = ClassMix(),
) -> dict[str, dict]:
    """Write a synthetic multi-region archive under ``root`` (local path or fsspec URI).

    Parameters
    ----------
    root:
        Archive root; each region goes to ``{root}/{region}/`` as laid out in
        :mod:`raydisc.data.layout`.
    regions:
        Region names from :data:`REGIONS` or ``specs`` (default: the keys of
        ``events_per_region`` when it is a mapping, else those of ``specs`` when given,
        else the three built-in regions).
    events_per_region:
        Events per region, one number for all or a mapping region -> number.
    seed:
        Master seed. Event ``i`` of a region depends only on ``(seed, region, i)``.
    progress:
        Show a progress bar per region.
    specs:
        Extra or replacement regions by name, e.g.
        ``{"field": field_test_spec(REGIONS["basin"])}`` or
        ``{"b2": dataclasses.replace(REGIONS["basin"], name="b2", recording=...)}``;
        each spec's ``name`` must equal its key.
    mix:
        Shares of noise windows (``not existing``) and surface events (the region's
        ``landslide`` / ``rockslide`` / ``snow avalanche``) among each region's events;
        the default (none) writes exactly the archive without them. See
        :mod:`raydisc.synthetic.classes`.

    Returns
    -------
    ``{region: {"events", "earthquake", "quarry blast", "stations", "recordings"}}``,
    plus a count per event type that ``mix`` adds to the region (``"not existing"``,
    ``"rockslide"``...); class counts are by *catalog* event type (the labels a
    pipeline sees, including the ~1 % label noise of earthquakes and blasts;
    ``truth.csv`` has the true types). ``recordings`` counts station recordings
    written, corrupt files included.
    """
    known = dict(REGIONS)
    for name, spec in (specs or {}).items():
        if spec.name != name:
            raise ValueError(f"specs[{name!r}] is named {spec.name!r}: the key must be the spec's name")
        known[name] = spec
    per_region = isinstance(events_per_region, Mapping)
    if regions is None:
        names = list(events_per_region) if per_region else list(specs) if specs else list(REGIONS)
    else:
        names = [regions] if isinstance(regions, str) else list(regions)
    unknown = [r for r in names if r not in known]
    if unknown:
        raise ValueError(f"unknown region(s) {unknown}; known: {sorted(known)}")
    counts = {}
    for name in names:
        if per_region and name not in events_per_region:
            raise ValueError(f"events_per_region has no entry for region {name!r}")
        n = int(events_per_region[name] if per_region else events_per_region)
        if n < 0:
            raise ValueError(f"events_per_region for {name} must be >= 0, got {n}")
        counts[name] = n
    return {name: generate_region(root, known[name], n, seed=seed, progress=progress, mix=mix)
            for name, n in counts.items()}



# The table names stay importable from here, where the files are written.
__all__ = ["CATALOG_CHUNK", "STATION_COLUMNS", "STATIONS_FILE", "SURFACE_COLUMNS", "TRUTH_COLUMNS",
           "WAVEFORM_FILE_COLUMN", "build_event", "generate_archive", "generate_region", "station_rows",
           "stations_uri", "truth_row", "write_catalog"]
