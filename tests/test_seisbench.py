"""SeisBench-format datasets: an archive exported to the format and read back (chunked,
local and s3://, on Ray Data) gives the archive's model inputs; missing columns, corrupt
files and unknown types are named; shards export to the format."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from raydisc.config import ConfigError, PipelineConfig, PreprocessConfig
from raydisc.data import layout
from raydisc.data.records import IngestError
from raydisc.data.seisbench_export import export_archive, export_shards
from raydisc.data.seisbench_format import (list_chunks, metadata_uri, open_waveforms, parse_trace_name, read_data_format,
                                           read_metadata, read_trace, waveforms_uri)
from raydisc.data.seisbench_source import (SeisBenchConfig, plan_seisbench, process_seisbench_task,
                                           run_seisbench_preprocessing)
from raydisc.data.shards import read_dataset_info
from raydisc.config import SplitConfig

from source_helpers import inputs_of_shards, model_inputs

REGION = "basin"


@pytest.fixture(scope="module")
def exported(source_archive, tmp_path_factory):
    """The source archive's basin region as a chunked SeisBench dataset (2 events per chunk)."""
    out = str(tmp_path_factory.mktemp("seisbench") / "basin-sb")
    summary = export_archive(source_archive, REGION, out, events_per_chunk=2)
    return out, summary


@pytest.fixture(scope="module")
def reference(source_archive):
    return model_inputs(source_archive, REGION)


def _run_tasks(root: str, out: str, config: SeisBenchConfig, preprocess=PreprocessConfig()) -> list[dict]:
    """Plan and run every shard task in-process (no Ray): the tasks' own code path."""
    return [process_seisbench_task(t, preprocess) for t in plan_seisbench(root, out, config, SplitConfig())]


def _copy(root: str, dest) -> str:
    shutil.copytree(root, dest)
    return str(dest)


def test_export_writes_the_published_format(exported):
    root, summary = exported
    assert summary["chunks"] == 2 and summary["traces"] == 36 and list_chunks(root) == ["00000", "00001"]
    table = read_metadata(root, "00000")
    assert {"trace_name", "source_type", "trace_P_arrival_sample", "split", "trace_component_order"} <= set(table.columns)
    assert set(table["split"]) <= {"train", "dev", "test"}
    name = table["trace_name"].iloc[3]
    assert parse_trace_name(name) == ("bucket0", (3, slice(None, 3), slice(None, 18000)))
    with open_waveforms(waveforms_uri(root, "00000")) as h5:
        assert read_data_format(h5)["component_order"] == "ZNE"
        assert read_trace(h5, name).shape == (3, 18000)


def test_seisbench_gives_the_archive_model_inputs_on_ray(ray_cluster, exported, source_archive, reference, tmp_path):
    root, _ = exported
    config = SeisBenchConfig(region=REGION, inventory=layout.inventory_uri(source_archive, REGION), traces_per_task=10)
    summary = run_seisbench_preprocessing(root, str(tmp_path / "shards"), config,
                                          pipeline_config=PipelineConfig())
    assert summary["shards_written"] == 4  # 2 chunks x 18 traces, 10 traces per task
    got = inputs_of_shards(str(tmp_path / "shards"), REGION)
    assert len(reference) == 36 and sorted(got) == sorted(reference)
    for key, value in reference.items():
        np.testing.assert_array_equal(got[key]["waveform"], value["waveform"])
        np.testing.assert_array_equal(got[key]["spectrogram"], value["spectrogram"])
        assert (got[key]["label"], got[key]["split"]) == (value["label"], value["split"])
    assert read_dataset_info(str(tmp_path / "shards")).archive == root
    again = run_seisbench_preprocessing(root, str(tmp_path / "shards"), config)
    assert again["shards_written"] == 0 and again["shards_skipped"] == 4


def test_seisbench_reads_from_object_storage(ray_cluster, exported, source_archive, s3_bucket, tmp_path):
    import s3fs

    root, _ = exported
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": __import__("os").environ["AWS_ENDPOINT_URL"]})
    fs.put(root + "/", s3_bucket.removeprefix("s3://") + "/sb/", recursive=True)
    config = SeisBenchConfig(region=REGION, inventory=layout.inventory_uri(source_archive, REGION))
    summary = run_seisbench_preprocessing(f"{s3_bucket}/sb", str(tmp_path / "shards"), config)
    assert sum(summary["recordings"].values()) == 36


def test_split_is_honoured_or_replaced(exported, source_archive, reference, tmp_path):
    root = _copy(exported[0], tmp_path / "sb")
    table = pd.read_csv(metadata_uri(root, "00000"))
    first = table["source_id"].iloc[0]
    wanted = "test" if reference[(first, "BS.BSN01")]["split"] != "test" else "train"
    table.loc[table["source_id"] == first, "split"] = wanted
    table.to_csv(metadata_uri(root, "00000"), index=False)
    inventory = layout.inventory_uri(source_archive, REGION)
    _run_tasks(root, str(tmp_path / "kept"), SeisBenchConfig(region=REGION, inventory=inventory))
    _run_tasks(root, str(tmp_path / "replaced"), SeisBenchConfig(region=REGION, inventory=inventory, split="raydisc"))
    kept, replaced = inputs_of_shards(str(tmp_path / "kept"), REGION), inputs_of_shards(str(tmp_path / "replaced"), REGION)
    assert kept[(first, "BS.BSN01")]["split"] == wanted
    assert replaced[(first, "BS.BSN01")]["split"] == reference[(first, "BS.BSN01")]["split"] != wanted


def test_counts_without_responses_are_rejected_unless_allowed(exported, tmp_path):
    root = exported[0]
    _run_tasks(root, str(tmp_path / "strict"), SeisBenchConfig(region=REGION))
    rejects = pd.read_parquet(tmp_path / "strict" / "_rejects" / REGION)
    assert set(rejects["reason"]) == {"no_response"} and len(rejects) == 36
    assert rejects["source"].str.contains(r"waveforms0000[01]\.hdf5:bucket0\$").all()
    _run_tasks(root, str(tmp_path / "counts"), SeisBenchConfig(region=REGION),
               PreprocessConfig(allow_missing_response=True))
    got = inputs_of_shards(str(tmp_path / "counts"), REGION)
    assert len(got) == 36


def test_missing_columns_corrupt_files_and_unknown_types_are_named(exported, source_archive, tmp_path):
    root = _copy(exported[0], tmp_path / "sb")
    inventory = layout.inventory_uri(source_archive, REGION)
    # Chunk 0 loses its picks and station coordinates, and one row its label; chunk 1's
    # waveform file is garbage.
    table = pd.read_csv(metadata_uri(root, "00000"))
    table = table.drop(columns=["trace_P_arrival_sample", "station_latitude_deg", "station_longitude_deg"])
    table.loc[0, "source_type"] = "surface event"
    table.to_csv(metadata_uri(root, "00000"), index=False)
    with open(waveforms_uri(root, "00001"), "wb") as f:
        f.write(b"not hdf5" * 100)
    rows = _run_tasks(root, str(tmp_path / "out"), SeisBenchConfig(region=REGION, inventory=inventory))
    assert all(r["error"] == "" for r in rows)
    rejects = pd.read_parquet(tmp_path / "out" / "_rejects" / REGION)
    by_reason = rejects.groupby("reason").size().to_dict()
    # Without metadata coordinates the inventory's are used: chunk 0 is read with predicted picks.
    assert by_reason == {"unknown_event_type": 1, "unreadable_waveform_file": 18}
    assert rejects[rejects.reason == "unreadable_waveform_file"]["detail"].str.contains("waveforms00001.hdf5").all()
    assert "surface event" in rejects[rejects.reason == "unknown_event_type"]["detail"].iloc[0]
    got = inputs_of_shards(str(tmp_path / "out"), REGION)
    assert len(got) == 17
    shards = pd.concat([pd.read_parquet(p, columns=["pick_source"]) for p in (tmp_path / "out" / REGION).glob("*.parquet")])
    assert set(shards["pick_source"]) == {"predicted"}

    # Without the inventory, the same rows lack coordinates to predict a P arrival from.
    _run_tasks(root, str(tmp_path / "bare"), SeisBenchConfig(region=REGION, chunks=("00000",)),
               PreprocessConfig(allow_missing_response=True))
    bare = pd.read_parquet(tmp_path / "bare" / "_rejects" / REGION)
    assert bare.groupby("reason").size().to_dict() == {"no_station_coordinates": 17, "unknown_event_type": 1}

    table.drop(columns=["source_type"]).to_csv(metadata_uri(root, "00000"), index=False)
    with pytest.raises(IngestError, match=r"metadata00000\.csv.*source_type"):
        plan_seisbench(root, str(tmp_path / "x"), SeisBenchConfig(region=REGION), SplitConfig())


def test_config_is_checked():
    with pytest.raises(ConfigError):
        SeisBenchConfig(split="random")
    with pytest.raises(ConfigError):
        SeisBenchConfig(traces_per_task=0)


def test_shards_export_to_seisbench(tiny_shards, tmp_path):
    out = str(tmp_path / "sb")
    summary = export_shards(tiny_shards, out, regions=["alpine"])
    assert summary["chunks"] == ["alpine"] and list_chunks(out) == ["alpine"]
    table = read_metadata(out, "alpine")
    assert len(table) == summary["traces"] > 0
    assert set(table["raydisc_label"]) <= {0, 1} and set(table["split"]) <= {"train", "dev", "test"}
    reference = inputs_of_shards(tiny_shards, "alpine")
    with open_waveforms(waveforms_uri(out, "alpine")) as h5:
        assert read_data_format(h5)["sampling_rate"] == 40.0
        for _, row in table.head(5).iterrows():
            data = read_trace(h5, row["trace_name"])
            key = (row["source_id"], f"{row['station_network_code']}.{row['station_code']}")
            np.testing.assert_array_equal(data, reference[key]["waveform"])


def test_import_to_archive_gives_the_archive_model_inputs(exported, source_archive, reference, tmp_path):
    """The dataset written back out as an archive region (for re-labelling and every
    catalog-based tool) reads into the model inputs it came from; a re-run skips it all."""
    from raydisc.data.seisbench_import import import_seisbench

    root, archive = exported[0], str(tmp_path / "archive")
    config = SeisBenchConfig(region=REGION, inventory=layout.inventory_uri(source_archive, REGION))
    summary = import_seisbench(root, archive, config)
    assert (summary["events"], summary["written"], summary["traces"], summary["rejects"]) == (4, 4, 36, {})
    got = model_inputs(archive, REGION)
    assert sorted(got) == sorted(reference)
    for key, value in reference.items():
        np.testing.assert_array_equal(got[key]["waveform"], value["waveform"])
        assert (got[key]["label"], got[key]["split"]) == (value["label"], value["split"])
    assert import_seisbench(root, archive, config)["skipped"] == 4


def test_import_without_inventory_writes_stationxml_from_the_metadata(exported, tmp_path):
    from raydisc.data.inventory import read_stations
    from raydisc.data.seisbench_import import import_seisbench

    root = _copy(exported[0], tmp_path / "sb")
    table = pd.read_csv(metadata_uri(root, "00000"))
    table.loc[table["station_code"] == "BSN01", "station_latitude_deg"] = np.nan
    table.to_csv(metadata_uri(root, "00000"), index=False)
    with open(waveforms_uri(root, "00001"), "wb") as f:
        f.write(b"not hdf5" * 100)
    archive = str(tmp_path / "archive")
    summary = import_seisbench(root, archive, SeisBenchConfig(region=REGION))
    # Chunk 1 (2 events x 9 stations) is garbage: named, not fatal; BSN01 has no position.
    assert summary["rejects"] == {"unreadable_waveform_file": 18, "no_station_metadata": 1}
    assert summary["written"] == 2 and summary["traces"] == 18
    stations = read_stations(layout.inventory_uri(archive, REGION))
    assert len(stations) == 8 and "BS.BSN01" not in stations
    assert all(c.response_kind == "none" for s in stations.values() for c in s.channels)  # counts, no response
    model = model_inputs(archive, REGION, PreprocessConfig(allow_missing_response=True))
    assert len(model) == 16 and {k[0] for k in model} <= set(table["source_id"])
