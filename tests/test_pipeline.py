"""The preprocessing job end to end on a real local Ray cluster and real files."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import obspy
import pyarrow.parquet as pq
import pytest

from raydisc.config import PipelineConfig, PreprocessConfig, SplitConfig
from raydisc.data import layout
from raydisc.data.pipeline import run_preprocessing
from raydisc.data.shards import SCHEMA_VERSION, ShardError, decode_inputs, read_dataset_info, shard_files, summarize

SMALL_SHARDS = PipelineConfig(events_per_shard=4)


def _read_all(root: str):
    import pyarrow as pa

    return pa.concat_tables([pq.read_table(f) for f in shard_files(root)])


@pytest.fixture(scope="module")
def shards(ray_cluster, tiny_archive, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("shards"))
    summary = run_preprocessing(tiny_archive, out, pipeline_config=SMALL_SHARDS)
    return out, summary


def test_every_region_is_preprocessed_with_the_schema(shards, tiny_archive):
    out, summary = shards
    table = _read_all(out)
    assert set(table.column("region").to_pylist()) == set(layout.list_regions(tiny_archive))
    config = read_dataset_info(out).preprocess
    spectrograms = decode_inputs(table, "spectrogram")
    waveforms = decode_inputs(table, "waveform")
    assert spectrograms.shape == (table.num_rows, *config.spectrogram_shape)
    assert waveforms.shape == (table.num_rows, *config.waveform_shape)
    assert np.isfinite(spectrograms).all() and np.isfinite(waveforms).all()
    assert np.allclose(np.abs(waveforms).max(axis=(1, 2)), 1.0)
    assert set(table.column("label").to_pylist()) <= {0, 1}
    assert (np.asarray(table.column("distance_km")) > 0).all()
    assert pq.read_schema(shard_files(out)[0]).metadata[b"raydisc.schema_version"] == str(SCHEMA_VERSION).encode()
    assert summary["shards_written"] > 0 and summary["shards_skipped"] == 0


def test_recordings_match_the_catalog_and_inventory(shards, tiny_archive):
    out, _ = shards
    table = _read_all(out).to_pydict()
    catalog = obspy.read_events(layout.catalog_uri(tiny_archive, "basin"))
    types = {layout.event_id_from_resource_id(e.resource_id): str(e.event_type) for e in catalog}
    for event_id, event_type in zip(table["event_id"], table["event_type"]):
        if event_id in types:
            assert types[event_id] == event_type


def test_split_is_by_event(shards):
    out, _ = shards
    table = _read_all(out).to_pydict()
    split_of: dict[str, set] = {}
    for event_id, split in zip(table["event_id"], table["split"]):
        split_of.setdefault(event_id, set()).add(split)
    assert all(len(s) == 1 for s in split_of.values())
    assert {s for v in split_of.values() for s in v} == {"train", "validation", "test"}


def test_rerun_skips_complete_shards_and_keeps_content(shards, tiny_archive):
    out, first = shards
    before = {f: Path(f).read_bytes() for f in shard_files(out)}
    again = run_preprocessing(tiny_archive, out, pipeline_config=SMALL_SHARDS)
    assert again["shards_written"] == 0 and again["shards_skipped"] == first["shards_written"]
    assert {f: Path(f).read_bytes() for f in shard_files(out)} == before
    # A deleted (or never finished) shard is the only one written again.
    victim = sorted(before)[0]
    Path(victim).unlink()
    third = run_preprocessing(tiny_archive, out, pipeline_config=SMALL_SHARDS)
    assert third["shards_written"] == 1
    assert summarize(out)["recordings"] == first["recordings"]


def test_other_settings_into_the_same_folder_are_refused(shards, tiny_archive):
    out, _ = shards
    with pytest.raises(ShardError, match="window_length_s"):
        run_preprocessing(tiny_archive, out, preprocess_config=PreprocessConfig(window_length_s=60.0))
    with pytest.raises(ShardError, match="split.seed"):
        run_preprocessing(tiny_archive, out, split_config=SplitConfig(seed=99))


# ---- bad input: each kind gets a reject with its reason, nothing else is lost ----------


def _station_ids(stream: obspy.Stream) -> list[str]:
    return sorted({f"{tr.stats.network}.{tr.stats.station}" for tr in stream})


@pytest.fixture(scope="module")
def damaged_archive(tiny_archive, tmp_path_factory):
    """A copy of one region with one kind of damage per event; returns (root, expected)."""
    root = tmp_path_factory.mktemp("damaged")
    region = "basin"
    shutil.copytree(Path(tiny_archive) / region, root / region)
    wave_dir = root / region / "waveforms"
    files = sorted(wave_dir.glob("*.mseed"))
    expected: dict[str, tuple[str, str]] = {}  # reason -> (event id, station or "*")

    def damage(index: int, reason: str, edit) -> None:
        path = files[index]
        stream = obspy.read(str(path))
        station = _station_ids(stream)[0]
        net, sta = station.split(".")
        edit(path, stream, stream.select(network=net, station=sta))
        expected[reason] = (path.stem, f"{station}.")

    def truncate(path, stream, _):
        data = path.read_bytes()
        path.write_bytes(data[: 700])  # cuts the first record in the middle
    damage(0, "unreadable_waveform_file", truncate)
    expected["unreadable_waveform_file"] = (files[0].stem, "*")

    def drop_vertical(path, stream, station):
        # Without horizontals a recording is still usable; without the vertical it is not.
        stream.remove([tr for tr in station if tr.stats.channel.endswith("Z")][0])
        stream.write(str(path), format="MSEED")
    damage(1, "missing_component", drop_vertical)

    def gap(path, stream, station):
        tr = station[0]
        mid = tr.stats.starttime + (tr.stats.endtime - tr.stats.starttime) / 2
        first, second = tr.slice(endtime=mid - 2), tr.slice(starttime=mid + 2)
        stream.remove(tr)
        stream += obspy.Stream([first, second])
        stream.write(str(path), format="MSEED")
    damage(2, "gap", gap)

    def nan(path, stream, station):
        for tr in station:
            tr.data = tr.data.astype(np.float32)
        station[0].data[len(station[0].data) // 2] = np.nan
        stream.write(str(path), format="MSEED")
    damage(3, "nan", nan)

    def wrong_rate(path, stream, station):
        for tr in station.select(channel="*N"):
            tr.stats.sampling_rate = tr.stats.sampling_rate / 2
        stream.write(str(path), format="MSEED")
    damage(4, "sampling_rate_mismatch", wrong_rate)

    def clipped(path, stream, station):
        tr = station[0]
        tr.data[len(tr.data) // 2] = 2**23 - 1
        stream.write(str(path), format="MSEED")
    damage(5, "clipped", clipped)

    def missing_file(path, stream, station):
        path.unlink()
    damage(6, "missing_waveform_file", missing_file)
    expected["missing_waveform_file"] = (files[6].stem, "*")

    catalog_path = root / region / layout.CATALOG_FILE
    catalog = obspy.read_events(str(catalog_path))
    unknown = [e for e in catalog if layout.event_id_from_resource_id(e.resource_id) == files[7].stem][0]
    unknown.event_type = "landslide"
    expected["unknown_event_type"] = (files[7].stem, "*")
    no_origin = [e for e in catalog if layout.event_id_from_resource_id(e.resource_id) == files[8].stem][0]
    no_origin.origins = []
    no_origin.preferred_origin_id = None
    expected["bad_catalog_entry"] = (files[8].stem, "*")
    catalog.write(str(catalog_path), format="QUAKEML")
    return str(root), expected


def test_each_kind_of_bad_input_is_rejected_with_its_reason(ray_cluster, damaged_archive, tiny_archive, tmp_path):
    root, expected = damaged_archive
    out = str(tmp_path / "shards")
    run_preprocessing(root, out, pipeline_config=SMALL_SHARDS)
    rejects = pq.read_table(str(Path(out) / "_rejects" / "basin")).to_pylist()
    by_reason = {}
    for r in rejects:
        by_reason.setdefault(r["reason"], []).append(r)
    for reason, (event_id, station) in expected.items():
        rows = by_reason.get(reason, [])
        assert any(r["event_id"] == event_id and r["station"].startswith(station) for r in rows), (reason, rejects)
        assert all(r["detail"] and r["source"] for r in rows)
    # Everything not damaged is still there: the clean archive minus the rejected recordings.
    clean = str(tmp_path / "clean")
    run_preprocessing(tiny_archive, clean, regions=["basin"], pipeline_config=SMALL_SHARDS)
    clean_rows = {(r["event_id"], r["station"]) for r in _read_all(clean).select(["event_id", "station"]).to_pylist()}
    damaged_rows = {(r["event_id"], r["station"]) for r in _read_all(out).select(["event_id", "station"]).to_pylist()}
    lost = clean_rows - damaged_rows
    rejected_events = {r["event_id"] for r in rejects if r["station"] == "*"}
    rejected_stations = {(r["event_id"], r["station"].split(".")[1]) for r in rejects if r["station"] != "*"}
    assert all(e in rejected_events or (e, s) in rejected_stations for e, s in lost)
    assert damaged_rows <= clean_rows


def test_missing_archive_is_a_clear_error(ray_cluster, tmp_path):
    with pytest.raises(FileNotFoundError, match="no regions"):
        run_preprocessing(str(tmp_path / "nothing"), str(tmp_path / "out"))


def test_preprocess_through_s3(ray_cluster, s3_bucket, tiny_archive):
    """Archive in and shards out on the loopback S3 server, same results as local files."""
    from raydisc.storage import filesystem

    fs, _ = filesystem(s3_bucket)
    fs.put(str(Path(tiny_archive) / "craton"), f"{s3_bucket[5:]}/archive/craton", recursive=True)
    out = f"{s3_bucket}/shards"
    summary = run_preprocessing(f"{s3_bucket}/archive", out, pipeline_config=SMALL_SHARDS)
    assert summary["shards_written"] > 0
    remote = [f for f in shard_files(out)]
    assert remote and all(f.startswith("s3://") for f in remote)
    assert read_dataset_info(out).preprocess == PreprocessConfig()
    with fs.open(remote[0], "rb") as f:
        table = pq.read_table(io.BytesIO(f.read()))
    assert table.num_rows > 0 and set(table.column("region").to_pylist()) == {"craton"}


def test_shard_files_names_a_missing_region(shards):
    out, _ = shards
    with pytest.raises(ShardError, match="no shards for region atlantis"):
        shard_files(out, ["alpine", "atlantis"])
