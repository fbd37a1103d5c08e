"""Batch reprocessing end to end on the session Ray cluster: two regions (one local, one on
the loopback S3 server), crash and resume, corrupt inputs, SDS input."""
from __future__ import annotations

import argparse
import dataclasses
import io
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import obspy
import pyarrow as pa
import pytest
import torch

from raydisc.config import PreprocessConfig
from raydisc.data import layout
from raydisc.data.ingest import cut_recordings, read_catalog, read_stations
from raydisc.data.pipeline import PipelineError
from raydisc.features.batch import preprocess_recordings
from raydisc.data.sds import convert_to_sds
from raydisc.ensemble import load_bundle, save_bundle, soft_vote
from raydisc.models import build_model, input_shape_of
from raydisc.reprocess import ReprocessConfig, RegionSource, reprocess_archives, sources_from_archive
from raydisc.reprocess.cli import add_reprocess_arguments, sources_from_args
from raydisc.reprocess.outputs import COMMENT_PREFIX, read_results
from raydisc.storage import filesystem, join, read_bytes

CFG = PreprocessConfig(window_length_s=20.0)  # small inputs keep the tests fast
ARCH = "spectrogram_cnn"
HPARAMS = {"channels": [4, 8], "dense_units": 8, "dropout": 0.0}
CHUNKS = ReprocessConfig(events_per_chunk=3, batch_size=16)
KEY = ["event_id", "network", "station", "location"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A 3-member bundle of randomly initialised tiny models (no training needed)."""
    shape = input_shape_of(ARCH, CFG)
    states = []
    for seed in range(3):
        torch.manual_seed(seed)
        states.append(build_model(ARCH, shape, **HPARAMS).state_dict())
    uri = str(tmp_path_factory.mktemp("bundle") / "b")
    save_bundle(uri, architecture=ARCH, hparams=HPARAMS, input_shape=shape, preprocess_config=CFG,
                member_state_dicts=states,
                member_metrics=[{"seed": s, "validation_loss": 0.5, "validation_accuracy": 0.5} for s in range(3)])
    return uri


@pytest.fixture(scope="module")
def bucket(s3_server):
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    name = f"raydisc-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server}).mkdir(name)
    return f"s3://{name}"


@pytest.fixture(scope="module")
def main_run(ray_cluster, tiny_archive, bundle, bucket, tmp_path_factory):
    """alpine from the local archive, craton from a copy on S3; output local."""
    fs, _ = filesystem(bucket)
    fs.put(str(Path(tiny_archive) / "craton"), f"{bucket[5:]}/archive/craton", recursive=True)
    sources = sources_from_archive(tiny_archive, ["alpine"]) + sources_from_archive(f"{bucket}/archive", ["craton"])
    out = str(tmp_path_factory.mktemp("reprocess") / "out")
    rows = []
    summary = reprocess_archives(sources, bundle, out, CHUNKS, progress=rows.append)
    return out, summary, rows


def _sorted(table: pa.Table, keys=KEY) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in keys])


def _offline(archive: str, region: str, bundle_uri: str) -> dict:
    """Station probabilities computed without Ray: ingest's cut, the one preprocessing
    function, the bundle's member probabilities, soft vote."""
    b = load_bundle(bundle_uri)
    stations = read_stations(layout.inventory_uri(archive, region))
    recordings = []
    for event in read_catalog(layout.catalog_uri(archive, region), region):
        recordings += cut_recordings(layout.waveform_uri(archive, region, event.event_id), event, stations,
                                     b.preprocess_config)[0]
    x = preprocess_recordings(recordings, b.preprocess_config)[b.input_kind]
    member = b.member_probabilities(x)
    probs = soft_vote(member)
    return {(r.event.event_id, r.station.network, r.station.station, r.location): (probs[i], member[:, i])
            for i, r in enumerate(recordings)}


def test_end_to_end_matches_offline_member_probabilities(main_run, tiny_archive, bundle):
    out, summary, progress_rows = main_run
    stations = read_results(out, "stations")
    assert set(stations.column("region").to_pylist()) == {"alpine", "craton"}
    b = load_bundle(bundle)
    for region in ("alpine", "craton"):
        expected = _offline(tiny_archive, region, bundle)
        rows = [r for r in stations.to_pylist() if r["region"] == region]
        assert len(rows) == len(expected) > 0
        for r in rows:
            probs, member = expected[(r["event_id"], r["network"], r["station"], r["location"])]
            np.testing.assert_allclose([r["p_earthquake"], r["p_blast"]], probs, atol=1e-5)
            np.testing.assert_allclose(np.array(r["member_probabilities"]), member, atol=1e-5)
            assert r["verdict"] == b.class_names[int(np.argmax(probs))]
            assert r["bundle_id"] == b.bundle_id and r["input_hash"].startswith("xxh3_128:") and len(r["input_hash"]) == 9 + 32
        assert summary["regions"][region]["processed"] == len(expected)
        assert summary["regions"][region]["skipped"] == 0
    assert sum(r["recordings"] for r in progress_rows) == stations.num_rows


def test_event_table_is_the_station_mean(main_run):
    out, summary, _ = main_run
    stations, events = read_results(out, "stations"), read_results(out, "events")
    by_event: dict = {}
    for r in stations.to_pylist():
        by_event.setdefault(r["event_id"], []).append(r["p_blast"])
    assert events.num_rows == len(by_event) == summary["totals"]["events_classified"]
    for e in events.to_pylist():
        assert e["p_blast"] == pytest.approx(np.mean(by_event[e["event_id"]]), abs=1e-12)
        assert e["n_stations"] == len(by_event[e["event_id"]])
        assert e["contradicts_catalog"] == (e["catalog_class"] != e["verdict_class"])


def test_annotated_catalog_and_review_list(main_run, tiny_archive):
    out, summary, _ = main_run
    events = {e["event_id"]: e for e in read_results(out, "events", ["alpine"]).to_pylist()}
    original = {layout.event_id_from_resource_id(e.resource_id): str(e.event_type)
                for e in obspy.read_events(layout.catalog_uri(tiny_archive, "alpine"))}
    annotated = obspy.read_events(join(out, "catalogs", "alpine.xml"))
    assert len(annotated) == len(original)
    for event in annotated:
        eid = layout.event_id_from_resource_id(event.resource_id)
        row = events[eid]
        text = [c.text for c in event.comments if c.text.startswith(COMMENT_PREFIX)][0]
        assert f"verdict {row['verdict']}" in text and row["bundle_id"] in text
        assert f"original event_type {original[eid]}" in text
        assert {"earthquake": 0, "quarry blast": 1}[str(event.event_type)] == row["verdict_class"]
    review = (Path(out) / "review" / "alpine.csv").read_text().splitlines()
    contradicting = {e for e, r in events.items() if r["contradicts_catalog"]}
    assert {line.split(",")[0] for line in review[1:]} == contradicting
    assert summary["regions"]["alpine"]["contradictions"] == len(contradicting)
    assert "contradict the catalog type" in (Path(out) / "review" / "alpine.txt").read_text()


def _assert_same_tables(out: str, out_ref: str, region: str) -> None:
    for table, keys in (("stations", KEY), ("events", ["event_id"])):
        got = _sorted(read_results(out, table, [region]), keys).to_pydict()
        ref = _sorted(read_results(out_ref, table, [region]), keys).to_pydict()
        assert got.keys() == ref.keys()
        for column in got:
            if column in ("p_earthquake", "p_blast", "probability", "spread", "member_probabilities", "confidence",
                          "disagreement"):
                np.testing.assert_allclose(np.array(got[column], dtype=float), np.array(ref[column], dtype=float), atol=1e-6)
            else:
                assert got[column] == ref[column], column


def test_killed_driver_then_resume_gives_the_same_tables(ray_cluster, main_run, tiny_archive, bundle, tmp_path):
    """The driver, a separate process on the session's cluster, is killed with SIGKILL
    when the first chunk is reported (one event per chunk, one chunk task at a time, so
    most chunks are still to do); the re-run does only the rest."""
    out = str(tmp_path / "out")
    config = ReprocessConfig(events_per_chunk=1, batch_size=16, preprocess_concurrency=1)
    script = textwrap.dedent(f"""
        import os, signal
        import ray
        from raydisc.reprocess import ReprocessConfig, reprocess_archives, sources_from_archive
        ray.init(address={ray_cluster.get_runtime_context().gcs_address!r}, logging_level="ERROR")
        reprocess_archives(sources_from_archive({tiny_archive!r}, ["alpine"]), {bundle!r}, {out!r},
                           ReprocessConfig(**{dataclasses.asdict(config)!r}),
                           progress=lambda row: os.kill(os.getpid(), signal.SIGKILL))
    """)
    driver = subprocess.run([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            timeout=300)
    assert driver.returncode == -signal.SIGKILL, driver.stderr.decode()[-2000:]
    written = sorted(p.name for p in (Path(out) / "stations" / "alpine").glob("*.parquet"))
    assert 1 <= len(written) < 10  # 10 events, one per chunk
    assert not (Path(out) / "summary.json").exists()

    sources = sources_from_archive(tiny_archive, ["alpine"])
    summary = reprocess_archives(sources, bundle, out, config)
    row = summary["regions"]["alpine"]
    assert row["chunks_skipped"] == len(written) and row["chunks_written"] == 10 - len(written)
    assert row["skipped"] > 0 and row["processed"] > 0
    assert row["processed"] + row["skipped"] == main_run[1]["regions"]["alpine"]["processed"]
    # Chunking differs from the reference run's; the tables hold the same rows.
    _assert_same_tables(out, main_run[0], "alpine")
    # A third run finds everything done.
    again = reprocess_archives(sources, bundle, out, config)
    assert again["regions"]["alpine"]["processed"] == 0 and again["regions"]["alpine"]["chunks_written"] == 0


def test_a_shrunk_catalog_redoes_only_the_changed_chunks(main_run, bundle, tiny_archive, tmp_path):
    out = str(tmp_path / "out")
    shutil.copytree(main_run[0], out)
    sources = sources_from_archive(tiny_archive, ["alpine"])
    # The catalog shrinks to 5 events: chunk 0 (events 0-2) stays, chunk 1 (now 3-4) is
    # redone, chunks 2-3 are removed; no event is left over from the old catalog.
    catalog = obspy.read_events(sources[0].catalog)
    keep = sorted(layout.event_id_from_resource_id(e.resource_id) for e in catalog)[:5]
    catalog.events = [e for e in catalog if layout.event_id_from_resource_id(e.resource_id) in keep]
    catalog.write(str(tmp_path / "catalog.xml"), format="QUAKEML")
    shrunk = RegionSource("alpine", str(tmp_path / "catalog.xml"), sources[0].inventory, sources[0].waveforms)
    third = reprocess_archives([shrunk], bundle, out, CHUNKS)["regions"]["alpine"]
    assert (third["chunks_skipped"], third["chunks_written"]) == (1, 1)
    assert sorted(read_results(out, "events", ["alpine"]).column("event_id").to_pylist()) == keep
    ref_stations = [r for r in read_results(main_run[0], "stations", ["alpine"]).to_pylist() if r["event_id"] in keep]
    assert read_results(out, "stations", ["alpine"]).num_rows == len(ref_stations)


def test_corrupt_inputs_go_to_the_failures_table(ray_cluster, tiny_archive, bundle, bucket, tmp_path):
    """Also writes its outputs to object storage."""
    root = tmp_path / "archive"
    shutil.copytree(Path(tiny_archive) / "basin", root / "basin")
    files = sorted((root / "basin" / "waveforms").glob("*.mseed"))
    files[0].write_bytes(files[0].read_bytes()[:700])  # cuts the first record in the middle
    files[1].unlink()
    files[2].unlink()  # chunk 0 (events 0-2) has no usable recording at all
    # An event without origin: ObsPy reads it, but it cannot be classified. The chunk
    # task that parses it records a failure; its chunk's other events are classified.
    from lxml import etree

    catalog = etree.parse(str(root / "basin" / "catalog.xml"))
    no_origin = files[4].stem
    event = [e for e in catalog.iter("{*}event") if layout.event_id_from_resource_id(e.get("publicID")) == no_origin][0]
    for origin in event.findall("{*}origin"):
        event.remove(origin)
    catalog.write(str(root / "basin" / "catalog.xml"), xml_declaration=True, encoding="utf-8")
    (root / "broken").mkdir()
    shutil.copy(root / "basin" / "catalog.xml", root / "broken" / "catalog.xml")
    (root / "broken" / "inventory.xml").write_text("<not station xml")
    sources = sources_from_archive(str(root), ["basin", "broken"])
    out = f"{bucket}/out-corrupt"
    summary = reprocess_archives(sources, bundle, out, CHUNKS)

    failures = read_results(out, "failures").to_pylist()
    reasons = {(f["region"], f["event_id"], f["reason"]) for f in failures}
    assert ("basin", files[0].stem, "unreadable_waveform_file") in reasons
    assert ("basin", files[1].stem, "missing_waveform_file") in reasons
    assert ("broken", "*", "unreadable_inventory") in reasons
    assert ("basin", no_origin, "bad_catalog_entry") in reasons
    assert all(f["detail"] and f["source"] for f in failures)
    events = {e["event_id"] for e in read_results(out, "events", ["basin"]).to_pylist()}
    assert not events & {f.stem for f in files[:3]} and no_origin not in events
    assert len(events) == len(files) - 4 and {files[3].stem, files[5].stem} <= events  # chunk 1's others
    assert summary["regions"]["basin"]["failed"] == 4
    assert summary["regions"]["basin"]["chunks_written"] == 4  # the empty chunk is complete too
    assert summary["regions"]["broken"]["error"] == "unreadable_inventory"
    annotated = obspy.read_events(io.BytesIO(read_bytes(join(out, "catalogs", "basin.xml"))))
    lost = [e for e in annotated if layout.event_id_from_resource_id(e.resource_id) == files[1].stem][0]
    assert "not classified" in lost.comments[-1].text


@pytest.mark.parametrize("fuse", [True, False], ids=["chunk-tasks", "actor-pool"])
def test_a_chunk_that_cannot_be_written_is_named_in_one_line_and_a_rerun_completes(
        ray_cluster, tiny_archive, bundle, tmp_path, fuse):
    """Lost storage or a full disk (here: a file where the failures folder must go) is
    not bad data: the job says in one short line which chunk failed and why, and the
    re-run writes what is missing."""
    out = tmp_path / "out"
    blocker = out / "failures" / "alpine"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    config = dataclasses.replace(CHUNKS, fuse_inference=fuse, cpus_per_actor=0.5, cpus_per_task=0.75)
    sources = sources_from_archive(tiny_archive, ["alpine"])
    with pytest.raises(PipelineError) as err:
        reprocess_archives(sources, bundle, str(out), config)
    message = str(err.value)
    expected = "chunk(s) failed and were not written" if fuse else "re-labelling stopped after 0 of"
    assert expected in message and "Error: " in message and len(message) < 1200, message
    if fuse:
        assert "alpine/chunk-00000" in message
    blocker.unlink()
    summary = reprocess_archives(sources, bundle, str(out), config)
    assert summary["regions"]["alpine"]["chunks_written"] > 0
    assert read_results(str(out), "stations").num_rows > 0


def test_actor_pool_layout_gives_the_same_tables(main_run, tiny_archive, bundle, tmp_path):
    """Inference in an actor pool (the GPU-cluster layout) instead of in the chunk tasks."""
    out = str(tmp_path / "out")
    config = ReprocessConfig(events_per_chunk=3, batch_size=16, fuse_inference=False, cpus_per_actor=0.5,
                             cpus_per_task=0.75)
    reprocess_archives(sources_from_archive(tiny_archive, ["alpine"]), bundle, out, config)
    for table, keys in (("stations", KEY), ("events", ["event_id"])):
        got = _sorted(read_results(out, table), keys).to_pydict()
        ref = _sorted(read_results(main_run[0], table, ["alpine"]), keys).to_pydict()
        assert got.keys() == ref.keys()
        for column, values in got.items():
            if column in ("member_probabilities", "probability", "spread") or column.startswith("p_"):
                np.testing.assert_allclose(np.array(values, dtype=float), np.array(ref[column], dtype=float), atol=1e-6)
            else:
                assert values == ref[column], column


def test_sds_archive_gives_the_same_station_results(main_run, tiny_archive, bundle, tmp_path):
    sds_root = str(tmp_path / "sds")
    info = convert_to_sds(tiny_archive, "craton", sds_root)
    assert info["events"] == 10 and info["skipped"] == 0
    day_files = list(Path(sds_root).rglob("*.D.*"))
    assert day_files and all(p.parent.name.endswith(".D") for p in day_files)
    craton = sources_from_archive(tiny_archive, ["craton"])[0]
    source = RegionSource("craton", craton.catalog, craton.inventory, sds_root, "sds")
    out = str(tmp_path / "out")
    reprocess_archives([source], bundle, out, CHUNKS)
    got = _sorted(read_results(out, "stations")).to_pydict()
    ref = _sorted(read_results(main_run[0], "stations", ["craton"])).to_pydict()
    assert got["event_id"] == ref["event_id"] and got["station"] == ref["station"]
    assert got["input_hash"] == ref["input_hash"]  # the very same raw windows
    np.testing.assert_allclose(got["p_blast"], ref["p_blast"], atol=1e-5)


def test_output_of_another_bundle_is_refused(main_run, bundle, tmp_path):
    other = str(tmp_path / "other")
    shape = input_shape_of(ARCH, CFG)
    torch.manual_seed(99)
    save_bundle(other, architecture=ARCH, hparams=HPARAMS, input_shape=shape, preprocess_config=CFG,
                member_state_dicts=[build_model(ARCH, shape, **HPARAMS).state_dict()],
                member_metrics=[{"seed": 99, "validation_loss": 0.5, "validation_accuracy": 0.5}])
    with pytest.raises(ValueError, match="use a new output folder"):
        reprocess_archives([], other, main_run[0])


def test_cli_sources(tiny_archive):
    parser = argparse.ArgumentParser()
    add_reprocess_arguments(parser)
    args = parser.parse_args(["b", "o", "--archive", tiny_archive, "--regions", "alpine",
                              "--region", "x", "--catalog", "c.xml", "--inventory", "i.xml", "--waveforms", "/sds",
                              "--waveform-format", "sds"])
    sources = sources_from_args(args)
    assert [s.region for s in sources] == ["alpine", "x"]
    assert sources[1].format == "sds" and sources[0].format == "events"
    with pytest.raises(ValueError, match="one --catalog"):
        sources_from_args(parser.parse_args(["b", "o", "--region", "x", "--catalog", "c.xml"]))
    with pytest.raises(ValueError, match="local folder"):
        RegionSource("x", "c", "i", "s3://bucket/sds", "sds")


def test_one_bad_recording_costs_only_itself(tiny_archive):
    """A recording that breaks the vectorized preprocessing call, or gives non-finite
    inputs, is rejected alone; the others of its batch are kept."""
    from raydisc.data.chunks import preprocess_isolating

    source = sources_from_archive(tiny_archive, ["craton"])[0]
    stations = read_stations(source.inventory)
    event = read_catalog(source.catalog, "craton")[0]
    recordings = cut_recordings(source.waveform_uri(event.event_id), event, stations, CFG)[0]
    recordings[1].counts = recordings[1].counts.copy()
    recordings[1].counts[0, 5] = np.inf
    recordings[3].counts = recordings[3].counts[:, :100]  # wrong length: the batched call raises
    with np.errstate(all="ignore"):
        kept, inputs, rejects = preprocess_isolating(recordings, CFG, source.waveform_uri, ("spectrogram",))
    inputs = inputs["spectrogram"]
    assert len(kept) == len(inputs) == len(recordings) - 2
    assert {r.station for r in rejects} == {recordings[1].key, recordings[3].key}
    assert all(r.reason == "preprocessing_error" and r.source.endswith(".mseed") for r in rejects)
