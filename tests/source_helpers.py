"""Helpers of the data-source tests: the model inputs an archive region gives, computed
with the same code as the preprocessing job (one shard task per region, in-process)."""
from __future__ import annotations

import csv
from pathlib import Path

import obspy
import pyarrow.parquet as pq

from raydisc.config import PipelineConfig, PreprocessConfig, SplitConfig
from raydisc.data import layout
from raydisc.data.catalog import read_catalog
from raydisc.data.pipeline import plan_shards, process_shard
from raydisc.data.shards import decode_inputs, shard_files


def inputs_of_shards(shards: str, region: str) -> dict[tuple[str, str], dict]:
    """``{(event_id, "NET.STA"): {"waveform", "spectrogram", "label", "split"}}`` of a shard folder."""
    out = {}
    for uri in shard_files(shards, [region]):
        table = pq.read_table(uri)
        waveform, spectrogram = decode_inputs(table, "waveform"), decode_inputs(table, "spectrogram")
        rows = table.select(["event_id", "network", "station", "label", "split"]).to_pylist()
        for i, row in enumerate(rows):
            out[(row["event_id"], f"{row['network']}.{row['station']}")] = {
                "waveform": waveform[i], "spectrogram": spectrogram[i], "label": row["label"], "split": row["split"]}
    return out


def model_inputs(archive: str, region: str, config: PreprocessConfig = PreprocessConfig(),
                 output: str | None = None) -> dict[tuple[str, str], dict]:
    """Model inputs of every usable recording of ``region`` (no Ray: one shard task)."""
    import tempfile

    output = output or tempfile.mkdtemp(prefix="inputs-")
    for task in plan_shards(archive, output, [region], SplitConfig(), PipelineConfig(events_per_shard=10_000)):
        process_shard(task, config)
    return inputs_of_shards(output, region)


#: The label table's own column names (as a study's CSV might have them) and the
#: ``FolderImportConfig`` fields that name them.
STUDY_COLUMNS = dict(event_id_column="evid", origin_time_column="time", latitude_column="lat",
                     longitude_column="lon", depth_column="depth", magnitude_column="mag", type_column="etype")


def write_study_folder(archive: str, region: str, root: Path) -> list[str]:
    """An archive region as a study folder would hold it: ``root/waveforms`` with one
    miniSEED file per event and station (``{event_id}_{NET.STA}.mseed``),
    ``root/labels.csv`` (columns :data:`STUDY_COLUMNS`, ANSS type codes ``eq``/``qb``)
    and ``root/stationxml`` with one file per station. Returns the event ids."""
    wave, xml = root / "waveforms", root / "stationxml"
    wave.mkdir(parents=True)
    xml.mkdir()
    events = read_catalog(layout.catalog_uri(archive, region), region)
    for event in events:
        stream = obspy.read(layout.waveform_uri(archive, region, event.event_id))
        for key in sorted({f"{t.stats.network}.{t.stats.station}" for t in stream}):
            net, sta = key.split(".")
            stream.select(network=net, station=sta).write(str(wave / f"{event.event_id}_{key}.mseed"), format="MSEED")
    codes = {"earthquake": "eq", "quarry blast": "qb"}
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["evid", "time", "lat", "lon", "depth", "mag", "etype"])
        for e in events:
            writer.writerow([e.event_id, obspy.UTCDateTime(e.origin_time).isoformat(), e.latitude, e.longitude,
                             e.depth_km, e.magnitude, codes[e.event_type]])
    inventory = obspy.read_inventory(layout.inventory_uri(archive, region))
    for network in inventory:
        for station in network:
            part = inventory.select(network=network.code, station=station.code)
            part.write(str(xml / f"{network.code}.{station.code}.xml"), format="STATIONXML")
    return [e.event_id for e in events]
