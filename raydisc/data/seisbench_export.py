"""Write raydisc data back into the SeisBench ecosystem (:mod:`raydisc.data.seisbench_format`).

* :func:`export_archive`: an archive region (its catalog types, or a re-labelled
  catalog's) as a SeisBench dataset of raw traces: per usable station recording the
  channels the archive reader chooses (:func:`raydisc.data.recordings.cut_recordings_from_stream`
  decides; ``1``/``2`` horizontals stay as recorded), over the event file's whole span,
  in counts, with the catalog's P and S picks as ``trace_*_arrival_sample``, the
  event's ``source_*`` columns and raydisc's event-wise split (``dev`` = validation).
  Read back with :func:`raydisc.data.seisbench_source.run_seisbench_preprocessing` and
  the region's StationXML as ``inventory``, it gives the archive's model inputs.
* :func:`export_shards`: a shard folder's model inputs (the ``waveform``
  representation: ``(3, n)`` Z, N, E ground velocity over its peak at the target rate)
  with their labels and splits, for training SeisBench-style models on exactly what
  raydisc's models saw.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import obspy
import pyarrow.parquet as pq

from ..config import PreprocessConfig, SplitConfig
from ..labels import DEFAULT_SCHEME, LabelScheme
from . import layout
from .catalog import index_catalog, parse_catalog_entries_isolating
from .ingest import IngestError, read_stations, read_waveform_file
from .recordings import catalog_pick, cut_recordings_from_stream
from .records import Reject
from .seisbench_format import SPLIT_NAMES, SeisBenchWriter, write_chunks_file
from .shards import decode_inputs, read_dataset_info, read_label_scheme, shard_files
from .splits import assign_splits

RAW_DATA_FORMAT = {"component_order": "ZNE", "dimension_order": "CW", "measurement": "velocity",
                   "unit": "counts", "instrument_response": "not restituted"}
_SEISBENCH_SPLIT = {v: k for k, v in SPLIT_NAMES.items()}


def _station_traces(stream: obspy.Stream, net: str, sta: str, loc: str, codes: Sequence[str]) -> tuple[str, np.ndarray, obspy.UTCDateTime, float]:
    """``(component order, (C, W) counts, start, rate)`` of one station's chosen
    channels over their common span. Raises ``ValueError`` when they cannot share one
    array (gaps, different rates)."""
    traces = []
    for code in codes:
        selected = stream.select(network=net, station=sta, location=loc, channel=code)
        if len(selected) != 1:
            raise ValueError(f"{net}.{sta}.{loc}.{code}: {len(selected)} traces (gaps or overlaps)")
        traces.append(selected[0])
    rate = traces[0].stats.sampling_rate
    if any(abs(t.stats.sampling_rate - rate) > 1e-4 * rate for t in traces):
        raise ValueError(f"{net}.{sta}.{loc}: components at different sampling rates")
    start = max(t.stats.starttime for t in traces)
    firsts = [int(round((start - t.stats.starttime) * rate)) for t in traces]
    n = min(t.stats.npts - f for t, f in zip(traces, firsts))
    data = np.stack([np.asarray(t.data[f : f + n]) for t, f in zip(traces, firsts)])
    start = traces[0].stats.starttime + firsts[0] / rate
    return "".join(c[-1] for c in codes), data, start, rate


def export_archive(archive: str, region: str, out: str, config: PreprocessConfig = PreprocessConfig(),
                   split_config: SplitConfig = SplitConfig(), events_per_chunk: int | None = None,
                   catalog: str | None = None, scheme: LabelScheme = DEFAULT_SCHEME) -> dict:
    """Write ``region`` of ``archive`` as a SeisBench dataset under ``out`` (chunks of
    ``events_per_chunk`` events, or one unchunked file pair). ``catalog``: the QuakeML
    whose events and types are exported (default: the region's own; e.g. the annotated
    catalog of a re-labelling run, ``OUTPUT/catalogs/{region}.xml``, to export its
    verdicts). Every event is exported with its catalog type; ``scheme`` labels them for
    the class-stratified split only. Returns counts and the rejects (recordings the archive reader could not
    use are not exported)."""
    entries = index_catalog(catalog or layout.catalog_uri(archive, region))
    events, rejects = parse_catalog_entries_isolating(entries, region)
    stations = read_stations(layout.inventory_uri(archive, region))
    labelled = [(e.event_id, label) for e in events if (label := scheme.class_in(e.event_type)) is not None]
    splits = assign_splits(labelled, split_config)
    size = events_per_chunk or max(len(events), 1)
    chunks, traces = [], 0
    for number, first in enumerate(range(0, max(len(events), 1), size)):
        chunk = f"{number:05d}" if events_per_chunk else ""
        with SeisBenchWriter(out, RAW_DATA_FORMAT, chunk) as writer:
            for event in events[first : first + size]:
                uri = layout.waveform_uri(archive, region, event.event_id)
                try:
                    stream = read_waveform_file(uri)
                except (FileNotFoundError, IngestError) as exc:
                    rejects.append(Reject(region, event.event_id, "*", "unreadable_waveform_file", str(exc), uri))
                    continue
                recordings, rejected = cut_recordings_from_stream(stream, event, stations, config, source=uri)
                rejects += rejected
                for r in recordings:
                    s = r.station
                    try:
                        order, data, start, rate = _station_traces(stream, s.network, s.station, r.location, r.channel_codes)
                    except ValueError as exc:
                        rejects.append(Reject(region, event.event_id, r.key, "gap", str(exc), uri))
                        continue
                    picks = {}
                    for phase in ("P", "S"):
                        time = catalog_pick(event, s, r.location) if phase == "P" else \
                            event.picks.get(r.key, {}).get("S")
                        picks[f"trace_{phase}_arrival_sample"] = (time - start.timestamp) * rate if time else math.nan
                    writer.add({
                        "source_id": event.event_id, "source_origin_time": str(obspy.UTCDateTime(event.origin_time)),
                        "source_latitude_deg": event.latitude, "source_longitude_deg": event.longitude,
                        "source_depth_km": event.depth_km, "source_magnitude": event.magnitude,
                        "source_type": event.event_type, "station_network_code": s.network, "station_code": s.station,
                        "station_location_code": r.location, "station_latitude_deg": s.latitude,
                        "station_longitude_deg": s.longitude, "station_elevation_m": s.elevation_m,
                        "trace_channel": r.channel_codes[0][:2], "trace_component_order": order,
                        "trace_sampling_rate_hz": rate, "trace_start_time": str(start), "trace_npts": data.shape[1],
                        **picks, "split": _SEISBENCH_SPLIT.get(splits.get(event.event_id, ""), ""),
                    }, data)
                    traces += 1
        chunks.append(chunk)
    if events_per_chunk:
        write_chunks_file(out, chunks)
    return {"events": len(events), "traces": traces, "chunks": len(chunks), "rejects": rejects}


def export_shards(shards: str, out: str, regions: Sequence[str] | None = None) -> dict:
    """Write the model inputs of a shard folder as a SeisBench dataset (one chunk per
    region), with the label's class name (``raydisc_class``, the folder's label scheme).
    Returns ``{"traces": n, "chunks": [...]}``."""
    info = read_dataset_info(shards)
    names = read_label_scheme(shards).class_names
    config = info.preprocess
    data_format = {"component_order": "ZNE", "dimension_order": "CW", "measurement": "velocity",
                   "unit": "normalized", "instrument_response": "restituted", "sampling_rate": config.target_rate_hz}
    files = shard_files(shards, list(regions) if regions else None)
    by_region: dict[str, list[str]] = {}
    for uri in files:
        by_region.setdefault(uri.rstrip("/").split("/")[-2], []).append(uri)
    traces = 0
    for region, uris in sorted(by_region.items()):
        with SeisBenchWriter(out, data_format, region) as writer:
            for uri in sorted(uris):
                table = pq.read_table(uri)
                waveforms = decode_inputs(table, "waveform")
                meta = table.drop_columns(["spectrogram", "waveform", "spectrogram_shape", "waveform_shape"]).to_pylist()
                for row, data in zip(meta, waveforms):
                    writer.add({
                        "source_id": row["event_id"], "source_origin_time": row["origin_time"].isoformat(),
                        "source_type": row["event_type"], "source_magnitude": row["magnitude"],
                        "source_depth_km": row["depth_km"], "station_network_code": row["network"],
                        "station_code": row["station"], "station_location_code": row["location"],
                        "trace_channel": row["channels"].split(",")[0][:2], "trace_sampling_rate_hz": config.target_rate_hz,
                        "path_ep_distance_km": row["distance_km"], "split": _SEISBENCH_SPLIT.get(row["split"], ""),
                        "raydisc_label": row["label"], "raydisc_class": names[row["label"]],
                        "raydisc_components": row["components"],
                        "raydisc_pick_source": row["pick_source"], "raydisc_region": region,
                    }, data)
                    traces += 1
    write_chunks_file(out, sorted(by_region))
    return {"traces": traces, "chunks": sorted(by_region)}


__all__ = ["RAW_DATA_FORMAT", "export_archive", "export_shards"]
