"""One failure isolation: the same bad recording is rejected with the same reason and
detail by the preprocessing job, by re-labelling and by the Python API.

The bad recording is real data: the basin region of the tiny synthetic archive with one
station's vertical channel given a full response in pascal (StationXML written by
ObsPy). It passes cutting (the data are fine), and removing its response fails inside
preprocessing, which must reject that recording alone.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import obspy
import pyarrow.parquet as pq
import pytest

import raydisc
from raydisc.data import layout
from raydisc.data.pipeline import run_preprocessing
from raydisc.data.shards import rejects_uri
from raydisc.reprocess import reprocess_archives, sources_from_archive
from raydisc.reprocess.outputs import read_results
from serving_helpers import make_tiny_bundle

REGION = "basin"


@pytest.fixture(scope="module")
def bad_archive(tiny_archive, tmp_path_factory):
    """A copy of the basin region whose first station's Z channel responds in PA;
    returns ``(archive, station key NET.STA.LOC)``."""
    root = tmp_path_factory.mktemp("bad-archive")
    shutil.copytree(Path(tiny_archive) / REGION, root / REGION)
    uri = layout.inventory_uri(str(root), REGION)
    inventory = obspy.read_inventory(uri)
    station = inventory[0][0]
    channel = next(c for c in station.channels if c.code.endswith("Z"))
    assert channel.response.response_stages, "the fixture needs a full response"
    channel.response.response_stages[0].input_units = "PA"
    inventory.write(uri, format="STATIONXML")
    return str(root), f"{inventory[0].code}.{station.code}.{channel.location_code}"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_tiny_bundle(str(tmp_path_factory.mktemp("chunks-bundle") / "tiny"))


def _bad_rows(rows: list[dict], key: str) -> dict[str, tuple[str, str]]:
    """event id -> (reason, detail) of the rows of station ``key``."""
    return {r["event_id"]: (r["reason"], r["detail"]) for r in rows if r["station"] == key}


def test_same_bad_recording_same_reject_everywhere(ray_cluster, bad_archive, bundle, tmp_path):
    archive, key = bad_archive
    # The preprocessing job (Ray Data shard tasks).
    shards = str(tmp_path / "shards")
    run_preprocessing(archive, shards, [REGION])
    rows = []
    for index in range(len(list((Path(shards) / REGION).glob("*.parquet")))):
        rows += pq.read_table(rejects_uri(shards, REGION, index)).to_pylist()
    job = _bad_rows(rows, key)
    # Re-labelling (Ray Data chunk tasks).
    out = str(tmp_path / "relabel")
    reprocess_archives(sources_from_archive(archive, [REGION]), bundle, out)
    relabel = _bad_rows(read_results(out, "failures", [REGION]).to_pylist(), key)
    # The Python API, event by event.
    ensemble = raydisc.Ensemble.load(bundle)
    inventory = obspy.read_inventory(layout.inventory_uri(archive, REGION))
    api = {}
    for event in obspy.read_events(layout.catalog_uri(archive, REGION)):
        event_id = str(event.resource_id).rsplit("/", 1)[-1]
        result = ensemble.classify(obspy.read(layout.waveform_uri(archive, REGION, event_id)), inventory, event)
        api.update({r.event_id: (r.reason, r.detail) for r in result.rejects if r.station == key})
        assert key not in {r.key for r in result.recordings}

    assert job and set(job) == set(relabel) == set(api)
    assert {reason for reason, _ in job.values()} == {"preprocessing_error"}
    assert all("'PA'" in detail for _, detail in job.values())
    assert job == relabel == api


def test_a_corrected_inventory_is_not_served_from_the_response_cache(tiny_archive, bad_archive, bundle):
    """One long-lived process (an API session, a Serve replica) classifies an event with
    the original inventory, then with one whose response changed: the evaluated response
    of the first must not be reused for the second."""
    archive, key = bad_archive
    ensemble = raydisc.Ensemble.load(bundle)
    event = obspy.read_events(layout.catalog_uri(archive, REGION))[0]
    event_id = str(event.resource_id).rsplit("/", 1)[-1]
    stream = obspy.read(layout.waveform_uri(archive, REGION, event_id))
    good = ensemble.classify(stream, obspy.read_inventory(layout.inventory_uri(tiny_archive, REGION)), event)
    assert key in {r.key for r in good.recordings}
    bad = ensemble.classify(stream, obspy.read_inventory(layout.inventory_uri(archive, REGION)), event)
    assert key not in {r.key for r in bad.recordings}
    assert [r.reason for r in bad.rejects if r.station == key] == ["preprocessing_error"]
