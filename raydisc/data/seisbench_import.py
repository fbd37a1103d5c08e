"""A SeisBench-format dataset written out as a raydisc archive region.

:func:`raydisc.data.seisbench_source.run_seisbench_preprocessing` reads a dataset
straight into shards, which is all training and evaluation need. Re-labelling, the
Serve endpoint's URI form and every tool that wants a catalog read archives
(QuakeML + StationXML + per-event miniSEED); :func:`import_seisbench` makes one, with
the same conversion of metadata rows to traces, events and stations as the direct
reader (:func:`~raydisc.data.seisbench_source.stream_of_row`,
:func:`~raydisc.data.seisbench_source.event_of_row`,
:func:`~raydisc.data.seisbench_source.station_of_row`), so both routes give the same
recordings.

* **Catalog**: one QuakeML event per ``source_id`` (origin, depth, magnitude,
  ``source_type`` as its QuakeML type when QuakeML has it, else no type; the rows'
  ``trace_P_arrival_sample`` as P picks).
* **StationXML**: ``config.inventory`` copied as it is, else one written from the
  ``station_*`` columns (channels per component, a unit sensitivity when the dataset
  is in m/s, else no response: counts without a response are then rejected
  ``no_response`` by preprocessing unless ``--allow-no-response``).
* Rows that cannot be used (no origin, unreadable trace, station without coordinates
  and no inventory) are recorded in ``import_rejects.csv``; events already written are
  skipped on a re-run.
"""
from __future__ import annotations

import math
from collections import defaultdict

import obspy
from obspy.core.inventory import Channel, Inventory, Network, Response, Station
from obspy.core.inventory.response import InstrumentSensitivity

from ..storage import read_bytes
from .archive_writer import event_done, make_event, quakeml_event_type, write_catalog, write_event_waveforms, \
    write_import_rejects, write_inventory
from .fdsn import safe_event_id
from .inventory import StationInfo
from .records import IngestError, Reject
from .seisbench_format import open_waveforms, read_data_format, waveforms_uri
from .seisbench_source import SeisBenchConfig, band_of, event_id_of, event_of_row, read_rows, region_of, sampling_rate_of, \
    station_of_row, stream_of_row


def _station_xml(stations: dict[str, StationInfo]) -> Inventory:
    """StationXML of the stations the metadata describes (one epoch, open-ended)."""
    networks: dict[str, Network] = {}
    for info in stations.values():
        channels = []
        for c in info.channels:
            response = None
            if c.sensitivity is not None:
                response = Response(instrument_sensitivity=InstrumentSensitivity(
                    value=c.sensitivity, frequency=1.0, input_units="M/S", output_units="COUNTS"))
            channels.append(Channel(c.code, c.location, info.latitude, info.longitude, info.elevation_m, 0.0,
                                    azimuth=c.azimuth, dip=c.dip, sample_rate=c.sampling_rate, response=response))
        station = Station(info.station, info.latitude, info.longitude, info.elevation_m, channels=channels)
        networks.setdefault(info.network, Network(info.network)).stations.append(station)
    return Inventory(networks=list(networks.values()), source="raydisc (SeisBench metadata)")


def import_seisbench(root: str, archive: str, config: SeisBenchConfig = SeisBenchConfig()) -> dict:
    """Write a SeisBench dataset (local or ``s3://``) as region ``config.region``
    (default: the dataset folder's name) of ``archive``; see the module docstring.

    Returns ``{"region", "events", "written", "skipped", "traces", "rejects": {reason: n},
    "rejects_file"}``.
    """
    region = region_of(root, config)
    rejects: list[Reject] = []
    by_event: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for chunk, rows in read_rows(root, config):
        for row in rows:
            by_event[event_id_of(row)].append((chunk, row))

    # Events, picks and stations from the metadata alone (each chunk's data format from
    # its file's header), so a re-run that skips written events still describes them all.
    events, stations, picks = {}, {}, defaultdict(dict)
    formats = {}
    for chunk in sorted({c for rows in by_event.values() for c, _ in rows}):
        try:
            with open_waveforms(waveforms_uri(root, chunk)) as h5:
                formats[chunk] = read_data_format(h5)
        except IngestError as exc:  # missing or corrupt file: its rows are lost, with why
            rejects += [Reject(region, e, str(r["station_code"]), "unreadable_waveform_file", str(exc),
                               waveforms_uri(root, chunk))
                        for e, rows in by_event.items() for c, r in rows if c == chunk]
    for event_id, rows in by_event.items():
        for chunk, row in rows:
            if chunk not in formats:
                continue
            key = f"{row.get('station_network_code') or ''}.{row['station_code']}.{row.get('station_location_code') or ''}"
            rate = sampling_rate_of(row, formats[chunk])
            if not (math.isfinite(rate) and rate > 0):
                rejects.append(Reject(region, event_id, key, "unreadable_waveform_file",
                                      "no sampling rate (trace_sampling_rate_hz, trace_dt_s or data_format)",
                                      f"{root}:{row['trace_name']}"))
                continue
            info = event_of_row(row, region, rate, key)
            if not math.isfinite(info.origin_time) or not (math.isfinite(info.latitude) and math.isfinite(info.longitude)):
                rejects.append(Reject(region, event_id, key, "bad_catalog_entry",
                                      "no source_origin_time/latitude/longitude", f"{root}:{row['trace_name']}"))
                continue
            events.setdefault(event_id, info)
            band = band_of(row, rate)
            if info.picks.get(key):
                picks[event_id][f"{key}.{band}Z"] = info.picks[key]["P"]
            order = str(row.get("trace_component_order") or formats[chunk].get("component_order", ""))
            station = station_of_row(row, band, order, rate, formats[chunk])
            stations.setdefault(f"{station.network}.{station.station}", station)
    catalog = [make_event(region, safe_event_id(e), info.origin_time, info.latitude, info.longitude, info.depth_km,
                          info.magnitude, quakeml_event_type(info.event_type), picks[e])
               for e, info in events.items()]
    write_catalog(archive, region, catalog)

    written = skipped = traces = 0
    for event_id in events:
        name = safe_event_id(event_id)
        if event_done(archive, region, name):
            skipped += 1
            continue
        stream = obspy.Stream()
        for chunk in sorted({c for c, _ in by_event[event_id] if c in formats}):
            uri = waveforms_uri(root, chunk)
            with open_waveforms(uri) as h5:
                data_format = formats[chunk]
                for row_chunk, row in by_event[event_id]:
                    if row_chunk != chunk:
                        continue
                    rate = sampling_rate_of(row, data_format)
                    if not (math.isfinite(rate) and rate > 0):
                        continue  # rejected above
                    try:
                        part = stream_of_row(h5, row, data_format, rate)
                    except ValueError as exc:
                        rejects.append(Reject(region, event_id, str(row["station_code"]), "unreadable_waveform_file",
                                              str(exc), f"{uri}:{row['trace_name']}"))
                        continue
                    stream += part
                    traces += 1
        if len(stream):
            write_event_waveforms(archive, region, name, stream)
            written += 1

    if config.inventory:
        write_inventory(archive, region, read_bytes(config.inventory))
    else:
        placed = {k: s for k, s in stations.items() if math.isfinite(s.latitude) and math.isfinite(s.longitude)}
        rejects += [Reject(region, "*", k, "no_station_metadata", "no station_latitude_deg/longitude_deg", root)
                    for k in sorted(set(stations) - set(placed))]
        write_inventory(archive, region, _station_xml(placed))
    uri = write_import_rejects(archive, region, rejects)
    counts: dict[str, int] = {}
    for r in rejects:
        counts[r.reason] = counts.get(r.reason, 0) + 1
    return {"region": region, "events": len(events), "written": written, "skipped": skipped, "traces": traces,
            "rejects": counts, "rejects_file": uri}


__all__ = ["import_seisbench"]
