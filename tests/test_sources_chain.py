"""Each data source through the whole workflow on the command line: a SeisBench dataset,
an FDSN service (the loopback one, ObsPy's real client) and a labelled miniSEED folder
are made from one archive region; each goes through preprocess -> train -> evaluate ->
re-label with no code change, and gives the archive's own model inputs."""
from __future__ import annotations

import json
import re

import numpy as np
import obspy
import pytest

from raydisc import storage
from raydisc.cli import main
from raydisc.config import PreprocessConfig
from raydisc.data import layout
from raydisc.data.catalog import read_catalog
from raydisc.data.seisbench_format import read_metadata
from raydisc.labels import label_of
from raydisc.reprocess.outputs import read_results

from fdsn_server import LoopbackFDSN
from source_helpers import STUDY_COLUMNS, inputs_of_shards, model_inputs, write_study_folder

REGION = "basin"
TINY = json.dumps({"channels": [4, 8], "dense_units": 8, "pooled_shape": [1, 2]})
TRAINING = ["--members", "1", "--epochs", "1", "--batch-size", "32", "--cpus-per-worker", "0.5", "--hparams", TINY]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A 12-event basin region: enough events for every split to hold both classes."""
    from raydisc.synthetic import generate_archive

    root = str(tmp_path_factory.mktemp("chain-archive"))
    generate_archive(root, [REGION], events_per_region=12, seed=3)
    return root


def _seisbench(archive: str, work) -> tuple[str, list[str], str]:
    """The region exported as a chunked SeisBench dataset; re-labelled via its import."""
    dataset, relabel = str(work / "dataset"), str(work / "relabel-archive")
    inventory = layout.inventory_uri(archive, REGION)
    assert main(["export-seisbench", archive, dataset, "--regions", REGION, "--events-per-chunk", "5"]) == 0
    reading = ["--seisbench-region", REGION, "--seisbench-inventory", inventory]
    assert main(["import-seisbench", dataset, relabel, *reading]) == 0
    return dataset, reading, relabel


def _fdsn(archive: str, work) -> tuple[str, list[str], str]:
    out = str(work / "fetched")
    times = [e.origin_time for e in read_catalog(layout.catalog_uri(archive, REGION), REGION)]
    with LoopbackFDSN(archive, REGION) as service:
        assert main(["fetch", service.url, out, "--region", REGION, "--start", str(obspy.UTCDateTime(min(times) - 60)),
                     "--end", str(obspy.UTCDateTime(max(times) + 60)), "--max-distance", "500", "--rate", "50"]) == 0
    return out, ["--regions", REGION], out


def _folder(archive: str, work) -> tuple[str, list[str], str]:
    study, out = work / "study", str(work / "imported")
    write_study_folder(archive, REGION, study)
    columns = {k.removesuffix("_column"): v for k, v in STUDY_COLUMNS.items()}
    assert main(["import-folder", str(study / "waveforms"), str(study / "labels.csv"), str(study / "stationxml"), out,
                 "--region", REGION, "--pattern", "{event_id}_*.mseed", "--columns", json.dumps(columns)]) == 0
    return out, ["--regions", REGION], out


SOURCES = {"seisbench": _seisbench, "fdsn": _fdsn, "folder": _folder}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_source_goes_through_the_workflow_with_the_archive_inputs(ray_cluster, archive, source, tmp_path, capsys):
    data, reading, relabel_archive = SOURCES[source](archive, tmp_path)
    # The label table has no picks: both sides predict the P arrival from the origin.
    picks = ["--pick-source", "predicted"] if source == "folder" else []
    shards, run = str(tmp_path / "shards"), str(tmp_path / "run")
    assert main(["preprocess", data, shards, *reading, *picks]) == 0
    got = inputs_of_shards(shards, REGION)
    reference = model_inputs(archive, REGION, PreprocessConfig(pick_source="predicted") if picks else PreprocessConfig())
    assert len(reference) > 50 and sorted(got) == sorted(reference)
    for key, value in reference.items():
        np.testing.assert_array_equal(got[key]["waveform"], value["waveform"], err_msg=str(key))
        np.testing.assert_array_equal(got[key]["spectrogram"], value["spectrogram"], err_msg=str(key))
        assert (got[key]["label"], got[key]["split"]) == (value["label"], value["split"]), key

    assert main(["train", shards, run, "--regions", REGION, *TRAINING]) == 0
    bundle, evaluation = f"{run}/bundle", str(tmp_path / "evaluation")
    assert main(["evaluate", bundle, shards, "--regions", REGION, "--out-dir", evaluation, "--no-plots"]) == 0
    predicted = storage.read_frame(f"{evaluation}/station_predictions.parquet")
    assert len(predicted) == sum(v["split"] == "test" for v in reference.values()) > 0
    assert storage.read_frame(f"{evaluation}/summary.csv")["event acc"].between(0, 1).all()

    relabelled = str(tmp_path / "relabelled")
    assert main(["reprocess", bundle, relabelled, "--archive", relabel_archive, "--regions", REGION, *picks]) == 0
    stations = read_results(relabelled, "stations", [REGION]).to_pandas()
    assert {(e, f"{n}.{s}") for e, n, s in zip(stations["event_id"], stations["network"], stations["station"])} \
        == set(reference)
    if source == "seisbench":  # the verdicts go back into the SeisBench ecosystem
        back = str(tmp_path / "relabelled-dataset")
        assert main(["export-seisbench", relabel_archive, back, "--regions", REGION,
                     "--catalog", f"{relabelled}/catalogs/{REGION}.xml"]) == 0
        verdicts = read_results(relabelled, "events", [REGION]).to_pandas().set_index("event_id")["verdict_class"]
        exported = read_metadata(back).drop_duplicates("source_id").set_index("source_id")["source_type"]
        assert {e: label_of(t) for e, t in exported.items()} == verdicts.to_dict()
    assert not re.search(r"^raydisc \S+: error:", capsys.readouterr().err, re.M)
