"""Write synthetic regions as real files: QuakeML, StationXML, miniSEED, truth CSV.

Paths come from :mod:`raydisc.data.layout`; every file is written with
:func:`raydisc.storage.open_atomic` / :func:`raydisc.storage.write_bytes_atomic`, so the
root may be a local folder or an object-store URI (``s3://bucket/prefix``).
"""
from __future__ import annotations

import copy
import csv
import io
from typing import Mapping, Sequence

import numpy as np
from lxml import etree
from obspy import Inventory, Stream, Trace, UTCDateTime
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
from obspy.core.inventory import Channel, Network as InvNetwork, Site, Station
from obspy.core.inventory.response import CoefficientsTypeResponseStage, Response

from ..data import layout
from ..storage import open_atomic, write_bytes_atomic
from . import physics
from .events import EARTHQUAKE, QUARRY_BLAST, Network, SyntheticEvent, build_network, local_to_geographic, sample_event, waveform_rng
from .regions import REGIONS, RegionSpec
from .waveforms import RegionGrid, build_grid, synthesize_counts

#: Fixed creation time, so the written files depend only on the seed.
CREATED = UTCDateTime("2020-06-01T00:00:00")
AGENCY = "raydisc-synthetic"
#: Orientation (azimuth, dip) of the Z, N, E channels in StationXML conventions.
ORIENTATIONS = ((0.0, -90.0), (0.0, 0.0), (90.0, 0.0))
MSEED_RECORD_LENGTH = 4096
#: Events serialised to QuakeML per batch: ObsPy event objects are heavy (a few hundred
#: kB each with picks and arrivals), so large catalogs are streamed, not built whole.
CATALOG_CHUNK = 250
TRUTH_COLUMNS = (
    "event_id",
    "true_type",
    "catalog_type",
    "magnitude",
    "depth_km",
    "latitude",
    "longitude",
    "origin_time",
    "quarry",
)


# ------------------------------------------------------------------------ inventory
def channel_response(spec: RegionSpec) -> Response:
    """Seismometer poles/zeros (m/s -> V) plus digitizer gain (V -> counts)."""
    ins = spec.instrument
    f_norm = ins.normalization_hz
    response = Response.from_paz(
        zeros=list(ins.zeros),
        poles=list(ins.poles),
        stage_gain=ins.generator_v_per_m_s,
        stage_gain_frequency=f_norm,
        input_units="M/S",
        output_units="V",
        normalization_frequency=f_norm,
        normalization_factor=physics.paz_normalization(ins),
    )
    response.response_stages.append(
        CoefficientsTypeResponseStage(
            stage_sequence_number=2,
            stage_gain=ins.digitizer_counts_per_v,
            stage_gain_frequency=f_norm,
            input_units="V",
            output_units="COUNTS",
            cf_transfer_function_type="DIGITAL",
            numerator=[],
            denominator=[],
            decimation_input_sample_rate=spec.sampling_rate_hz,
            decimation_factor=1,
            decimation_offset=0,
            decimation_delay=0.0,
            decimation_correction=0.0,
        )
    )
    response.recalculate_overall_sensitivity(f_norm)
    # from_paz labelled the overall sensitivity with the sensor's units (m/s -> V);
    # the whole chain ends in counts.
    response.instrument_sensitivity.input_units = "M/S"
    response.instrument_sensitivity.output_units = "COUNTS"
    sensitivity = response.instrument_sensitivity.value
    if not np.isclose(sensitivity, ins.sensitivity_counts_per_m_s, rtol=1e-6):
        raise AssertionError(
            f"{spec.name}: response sensitivity {sensitivity} != applied gain {ins.sensitivity_counts_per_m_s}"
        )
    return response


def build_inventory(spec: RegionSpec, network: Network) -> Inventory:
    response = channel_response(spec)
    start = UTCDateTime(spec.catalog.start) - 365 * 86400
    stations = []
    for i, code in enumerate(network.station_codes):
        lat, lon, elev = float(network.latitude[i]), float(network.longitude[i]), float(network.elevation_m[i])
        channels = [
            Channel(
                code=cha,
                location_code="",
                latitude=lat,
                longitude=lon,
                elevation=elev,
                depth=0.0,
                azimuth=az,
                dip=dip,
                sample_rate=spec.sampling_rate_hz,
                start_date=start,
                sensor=None,
                response=copy.deepcopy(response),
            )
            for cha, (az, dip) in zip(spec.channel_codes, ORIENTATIONS)
        ]
        stations.append(
            Station(
                code=code,
                latitude=lat,
                longitude=lon,
                elevation=elev,
                start_date=start,
                creation_date=start,
                site=Site(name=f"{spec.name} {code}"),
                channels=channels,
            )
        )
    net = InvNetwork(
        code=network.code,
        stations=stations,
        start_date=start,
        description=f"raydisc synthetic {spec.name} network ({spec.instrument.name})",
    )
    return Inventory(networks=[net], source=AGENCY, created=CREATED, module="raydisc.synthetic", module_uri=None)


# -------------------------------------------------------------------------- catalog
def _rid(*parts: str) -> ResourceIdentifier:
    return ResourceIdentifier(layout.RESOURCE_ID_PREFIX + "/".join(parts))


def build_event(spec: RegionSpec, network: Network, event: SyntheticEvent) -> Event:
    """QuakeML event: catalog origin (with location error), ML, P and S picks and arrivals."""
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
    z_channel = spec.channel_codes[0]
    picks, arrivals = [], []
    for i, sta in enumerate(network.station_codes):
        wid = WaveformStreamID(network_code=network.code, station_code=sta, location_code="", channel_code=z_channel)
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
            used_phase_count=len(arrivals),
            used_station_count=network.n_stations,
            minimum_distance=float(cat_dist.min() / physics.KM_PER_DEGREE),
            maximum_distance=float(cat_dist.max() / physics.KM_PER_DEGREE),
        ),
        evaluation_mode="manual",
        creation_info=creation,
    )
    magnitude = Magnitude(
        resource_id=_rid(eid, "magnitude"),
        mag=event.catalog_magnitude,
        magnitude_type="ML",
        origin_id=origin.resource_id,
        station_count=network.n_stations,
        creation_info=creation,
    )
    return Event(
        resource_id=ResourceIdentifier(layout.RESOURCE_ID_PREFIX + eid),
        event_type=event.catalog_type,
        event_type_certainty="known",
        origins=[origin],
        magnitudes=[magnitude],
        picks=picks,
        preferred_origin_id=origin.resource_id,
        preferred_magnitude_id=magnitude.resource_id,
        creation_info=creation,
    )


def truth_row(spec: RegionSpec, event: SyntheticEvent) -> dict:
    lat, lon = local_to_geographic(spec, event.east_km, event.north_km)
    return {
        "event_id": event.event_id,
        "true_type": event.true_type,
        "catalog_type": event.catalog_type,
        "magnitude": f"{event.magnitude:.2f}",
        "depth_km": f"{event.depth_km:.3f}",
        "latitude": f"{float(lat):.5f}",
        "longitude": f"{float(lon):.5f}",
        "origin_time": str(event.origin_time),
        "quarry": event.quarry,
    }


# ------------------------------------------------------------------------ waveforms
def waveform_stream(grid: RegionGrid, event: SyntheticEvent, counts: np.ndarray) -> Stream:
    """Traces of ``counts`` (int32 ``(n_sta, 3, n)``), starting ``pre_origin_s`` before
    the true origin."""
    spec, net = grid.spec, grid.network
    start = event.origin_time - spec.pre_origin_s
    traces = [
        Trace(
            data=counts[i, c],
            header={
                "network": net.code,
                "station": sta,
                "location": "",
                "channel": cha,
                "sampling_rate": spec.sampling_rate_hz,
                "starttime": start,
            },
        )
        for i, sta in enumerate(net.station_codes)
        for c, cha in enumerate(spec.channel_codes)
    ]
    return Stream(traces)


def mseed_bytes(stream: Stream) -> bytes:
    buffer = io.BytesIO()
    stream.write(buffer, format="MSEED", encoding="STEIM2", reclen=MSEED_RECORD_LENGTH)
    return buffer.getvalue()


def _xml_bytes(obj, fmt: str) -> bytes:
    buffer = io.BytesIO()
    obj.write(buffer, format=fmt)
    return buffer.getvalue()


def write_catalog(
    uri: str, spec: RegionSpec, network: Network, events: Sequence[SyntheticEvent], seed: int, chunk: int = CATALOG_CHUNK
) -> None:
    """Write the region's QuakeML catalog, serialising ``chunk`` events at a time.

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
            batch = Catalog(events=[build_event(spec, network, e) for e in events[start : start + chunk]])
            parameters = etree.fromstring(_xml_bytes(batch, "QUAKEML")).find("{*}eventParameters")
            for element in parameters.findall("{*}event"):
                element.tail = "\n  "
                f.write(etree.tostring(element))
        f.write(shell[cut:])


# ----------------------------------------------------------------------------- API
def generate_region(root: str, spec: RegionSpec, n_events: int, seed: int = 0, progress: bool = False) -> dict:
    """Write one region under ``root`` and return its summary (see :func:`generate_archive`)."""
    network = build_network(spec, seed)
    grid = build_grid(spec, network)
    write_bytes_atomic(layout.inventory_uri(root, spec.name), _xml_bytes(build_inventory(spec, network), "STATIONXML"))
    events: list[SyntheticEvent] = []
    indices = range(n_events)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=spec.name, unit="event")
    for index in indices:
        event = sample_event(spec, seed, index)
        counts = synthesize_counts(grid, event, waveform_rng(spec, seed, index))
        write_bytes_atomic(
            layout.waveform_uri(root, spec.name, event.event_id), mseed_bytes(waveform_stream(grid, event, counts))
        )
        events.append(event)
    rows = [truth_row(spec, event) for event in events]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=TRUTH_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(layout.truth_uri(root, spec.name), text.getvalue().encode())
    # The catalog goes last: layout.list_regions treats a folder with a catalog as a
    # complete region.
    write_catalog(layout.catalog_uri(root, spec.name), spec, network, events, seed)
    return {
        "events": n_events,
        EARTHQUAKE: sum(r["catalog_type"] == EARTHQUAKE for r in rows),
        QUARRY_BLAST: sum(r["catalog_type"] == QUARRY_BLAST for r in rows),
        "stations": network.n_stations,
        "recordings": n_events * network.n_stations,
    }


def generate_archive(
    root: str,
    regions: Sequence[str] | None = None,
    events_per_region: int | Mapping[str, int] = 200,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, dict]:
    """Write a synthetic multi-region archive under ``root`` (local path or fsspec URI).

    Parameters
    ----------
    root:
        Archive root; each region goes to ``{root}/{region}/`` as laid out in
        :mod:`raydisc.data.layout`.
    regions:
        Region names from :data:`REGIONS` (default: the keys of ``events_per_region``
        when it is a mapping, else all three).
    events_per_region:
        Events per region, one number for all or a mapping region -> number.
    seed:
        Master seed. Event ``i`` of a region depends only on ``(seed, region, i)``.
    progress:
        Show a progress bar per region.

    Returns
    -------
    ``{region: {"events", "earthquake", "quarry blast", "stations", "recordings"}}``;
    class counts are by *catalog* event type (the labels a pipeline sees, including
    the ~1 % label noise; ``truth.csv`` has the true types).
    """
    per_region = isinstance(events_per_region, Mapping)
    if regions is None:
        names = list(events_per_region) if per_region else list(REGIONS)
    else:
        names = [regions] if isinstance(regions, str) else list(regions)
    unknown = [r for r in names if r not in REGIONS]
    if unknown:
        raise ValueError(f"unknown region(s) {unknown}; known: {sorted(REGIONS)}")
    counts = {}
    for name in names:
        if per_region and name not in events_per_region:
            raise ValueError(f"events_per_region has no entry for region {name!r}")
        n = int(events_per_region[name] if per_region else events_per_region)
        if n < 0:
            raise ValueError(f"events_per_region for {name} must be >= 0, got {n}")
        counts[name] = n
    return {name: generate_region(root, REGIONS[name], n, seed=seed, progress=progress) for name, n in counts.items()}
