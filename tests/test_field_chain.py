"""The whole workflow on an archive that looks like a real short-period network: mostly
vertical-only stations at 20-500 Hz, numbered horizontals, a catalog without picks,
partial StationXML (a station without response, one without coordinates, one with a
sensitivity only, one missing, an epoch gap), a second sensor at one station, and a
corrupt file (the synthetic generator's field-test preset), beside a 3-component region.

preprocess -> train (alpine, 3-C) -> evaluate on the field network -> fine-tune on it ->
serve a vertical-only upload -> re-label it: no crash, and every station recording of
the field network is either in a shard or in the rejects with a meaningful reason."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import obspy
import pyarrow.parquet as pq
import pytest

from raydisc import storage
from raydisc.cli import main
from raydisc.config import PipelineConfig
from raydisc.data import layout
from raydisc.data.ingest import read_catalog
from raydisc.data.pipeline import format_summary, run_preprocessing
from raydisc.data.records import REJECT_REASONS
from raydisc.ensemble import load_bundle
from raydisc.reprocess.outputs import read_results
from raydisc.synthetic import REGIONS, field_test_spec, generate_archive

from test_chain_s3 import TRAINING, _serve

FIELD = "field"
TINY = json.dumps({"channels": [4, 8], "dense_units": 8, "pooled_shape": [1, 2]})


@pytest.fixture(scope="module")
def field_archive(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("field-archive"))
    generate_archive(root, regions=["alpine", FIELD], events_per_region={"alpine": 10, FIELD: 16}, seed=11,
                     specs={FIELD: field_test_spec(REGIONS["basin"])})
    return root


@pytest.fixture(scope="module")
def field_shards(ray_cluster, field_archive, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("field-shards"))
    summary = run_preprocessing(field_archive, out, pipeline_config=PipelineConfig(events_per_shard=4))
    return out, summary


def _recorded_stations(archive: str) -> dict[str, set[str] | None]:
    """Per event file of the field region: the ``NET.STA`` it holds data of (None: unreadable)."""
    out = {}
    for path in sorted((Path(archive) / FIELD / layout.WAVEFORM_DIR).glob("*.mseed")):
        try:
            stream = obspy.read(str(path))
        except Exception:
            out[path.stem] = None
            continue
        out[path.stem] = {f"{tr.stats.network}.{tr.stats.station}" for tr in stream}
    return out


def test_every_field_recording_is_in_a_shard_or_rejected_with_its_reason(field_archive, field_shards):
    out, summary = field_shards
    shards = pq.read_table(str(Path(out) / FIELD)).to_pylist()
    rejects = pq.read_table(str(Path(out) / "_rejects" / FIELD)).to_pylist()
    assert shards, "the field network gave no usable recording"
    kept = {(r["event_id"], f"{r['network']}.{r['station']}") for r in shards}
    rejected = {(r["event_id"], r["station"].rsplit(".", 1)[0]) for r in rejects if r["station"] != "*"}
    whole_events = {r["event_id"]: r["reason"] for r in rejects if r["station"] == "*"}
    for event_id, stations in _recorded_stations(field_archive).items():
        if stations is None:  # the corrupt file: one event-level reject, naming it
            assert whole_events[event_id] == "unreadable_waveform_file"
            continue
        for station in stations:
            assert (event_id, station) in kept or (event_id, station) in rejected, (event_id, station)
    assert not kept & rejected
    # What the preset built in is named by reason, once per recording it costs.
    reasons = {r["reason"] for r in rejects}
    assert reasons <= set(REJECT_REASONS)
    for reason in ("unreadable_waveform_file", "no_station_metadata", "no_response", "no_station_coordinates",
                   "sampling_rate_too_low"):
        assert reason in reasons, (reason, reasons)
    for r in rejects:
        assert r["detail"] and len(r["detail"]) <= 300
    # One station per station key (the dual-sensor station's broadband sensor is read),
    # vertical-only and 3-component recordings, every window from a predicted P arrival.
    with open(Path(field_archive) / FIELD / "stations.csv") as f:
        truth = list(csv.DictReader(f))
    dual = {row["station"] for row in truth if row["primary"] == "0"}
    assert {r["components"] for r in shards} >= {"Z", "ZNE"}
    assert {r["pick_source"] for r in shards} == {"predicted"}
    assert {r["response"] for r in shards} >= {"full", "sensitivity"}
    assert {r["channels"][:2] for r in shards if r["station"] in dual} == {"HH"}
    assert len(kept) == len(shards)
    assert len({r["sampling_rate"] for r in shards}) >= 3  # mixed rates in one network
    text = format_summary(summary)
    assert "no_response" in text and "unusable" in text


def test_train_evaluate_finetune_serve_and_relabel_the_field_network(field_archive, field_shards, tmp_path):
    from ray import serve

    shards, _ = field_shards
    pretrain, finetune = str(tmp_path / "pretrain"), str(tmp_path / "finetune")
    assert main(["train", shards, pretrain, "--regions", "alpine", "--hparams", TINY, *TRAINING]) == 0
    bundle = f"{pretrain}/bundle"
    evaluation = str(tmp_path / "evaluation")
    # Trained on 3-component data with picks, evaluated on vertical-only data without.
    assert main(["evaluate", bundle, shards, "--regions", FIELD, "--split", "train", "--out-dir", evaluation,
                 "--no-plots"]) == 0
    groups = storage.read_frame(f"{evaluation}/accuracy_by_group.csv")
    assert {"Z", "ZNE"} <= set(groups[groups["group"] == "components"]["value"])
    assert set(groups[groups["group"] == "pick_source"]["value"]) == {"predicted"}
    assert main(["finetune", bundle, shards, finetune, "--target", FIELD, *TRAINING[2:]]) == 0
    tuned = f"{finetune}/bundle"
    assert load_bundle(tuned).hparams["presence_mask"] is True

    # A vertical-only upload with the (partial) StationXML: a verdict, saying what it used.
    catalog = read_catalog(layout.catalog_uri(field_archive, FIELD), FIELD)
    with open(Path(field_archive) / FIELD / "stations.csv") as f:
        z_only = {row["station"] for row in csv.DictReader(f) if row["components"] == "Z" and row["defects"] == ""
                  and row["in_inventory"] == "1" and float(row["sampling_rate_hz"]) >= 50}
    answer = None
    try:
        url = _serve(tuned, str(field_archive))
        from raydisc.serving import Client

        client = Client(url)
        for event in catalog:
            path = Path(layout.waveform_uri(field_archive, FIELD, event.event_id))
            try:
                stream = obspy.read(str(path))
            except Exception:
                continue  # the corrupt file
            upload = obspy.Stream([tr for tr in stream if tr.stats.station in z_only])
            buffer = io.BytesIO()
            upload.write(buffer, format="MSEED")
            meta = {"event": {"event_id": event.event_id, "origin_time": event.origin_time,
                              "latitude": event.latitude, "longitude": event.longitude, "depth_km": event.depth_km}}
            answer = client.classify_mseed(buffer.getvalue(), meta, on_reject="skip",
                                           stationxml=storage.read_bytes(layout.inventory_uri(field_archive, FIELD)))
            break
    finally:
        serve.shutdown()
    assert answer is not None and answer["stations"]
    assert {s["components"] for s in answer["stations"]} == {"Z"}
    assert {s["pick_source"] for s in answer["stations"]} == {"predicted"}
    assert answer["event"]["predicted_label"] in answer["class_names"]

    out = str(tmp_path / "relabelled")
    assert main(["reprocess", tuned, out, "--archive", field_archive, "--regions", FIELD]) == 0
    stations = read_results(out, "stations", [FIELD]).to_pandas()
    failures = read_results(out, "failures", [FIELD]).to_pandas()
    assert {"Z", "ZNE"} <= set(stations["components"])
    assert "unreadable_waveform_file" in set(failures["reason"])
    assert set(stations["event_id"]) | set(failures[failures["station"] == "*"]["event_id"]) >= {
        e.event_id for e in catalog}
