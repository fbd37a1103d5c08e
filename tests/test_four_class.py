"""The four-class scheme end to end on the embedded synthetic default: a generated
archive with noise windows and surface events (one region), preprocessed with the
four-class scheme, a tiny 2-member ensemble trained on it, then evaluated, re-labelled on
Ray, classified through the Python API and the Serve endpoint.

One training run (1 epoch) is shared by the module: what is checked is structure, class
names, counts and consistency between the paths (verdict = argmax of the probabilities,
rewritten QuakeML types in the scheme), never accuracy."""
from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path

import numpy as np
import obspy
import pyarrow.parquet as pq
import pytest

import raydisc
from raydisc import storage
from raydisc.config import PipelineConfig
from raydisc.data import layout
from raydisc.data.catalog import read_catalog
from raydisc.data.inventory import read_stations
from raydisc.data.pipeline import run_preprocessing
from raydisc.data.shards import read_label_scheme
from raydisc.ensemble import load_bundle, read_manifest
from raydisc.evaluation.evaluate import evaluate
from raydisc.labels import FOUR_CLASS, scheme_named
from raydisc.reprocess import reprocess_archives, sources_from_archive
from raydisc.reprocess.outputs import read_results
from raydisc.synthetic import FOUR_CLASS_MIX, NOT_EXISTING, SURFACE_EVENT_TYPES, generate_archive
from raydisc.training import TrainConfig, train_ensemble
from serving_helpers import wait_until_ready

REGION = "alpine"
N_EVENTS = 20
#: Alpine seed 1 with the four-class mix: 7 earthquakes, 5 blasts, 4 noise windows,
#: 4 surface events (checked in the archive fixture), so every split can hold every class.
SEED = 1
ARCH = "spectrogram_cnn"
TINY = {"channels": [4, 8], "dense_units": 8, "pooled_shape": [1, 2], "dropout": 0.1}
NAMES = list(FOUR_CLASS.class_names)
P_COLUMNS = [f"p_{n}" for n in NAMES]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("four-class-archive"))
    summary = generate_archive(root, [REGION], events_per_region=N_EVENTS, seed=SEED, mix=FOUR_CLASS_MIX)[REGION]
    catalog = read_catalog(layout.catalog_uri(root, REGION), REGION, FOUR_CLASS)
    classes = Counter(e.label for e in catalog)
    assert len(catalog) == N_EVENTS and set(classes) == {0, 1, 2, 3}, (summary, classes)
    assert summary[NOT_EXISTING] == classes[3] and sum(summary.get(t, 0) for t in SURFACE_EVENT_TYPES) == classes[2]
    return root, {e.event_id: e for e in catalog}


@pytest.fixture(scope="module")
def shards(ray_cluster, archive, tmp_path_factory):
    """Preprocessed as ``raydisc preprocess --label-scheme four-class`` does."""
    root, _ = archive
    out = str(tmp_path_factory.mktemp("four-class-shards"))
    summary = run_preprocessing(root, out, [REGION], pipeline_config=PipelineConfig(events_per_shard=10),
                                label_scheme=scheme_named("four-class"))
    return out, summary


@pytest.fixture(scope="module")
def bundle(shards, tmp_path_factory):
    out, _ = shards
    run_dir = str(tmp_path_factory.mktemp("four-class-run") / "run")
    config = TrainConfig(architecture=ARCH, hparams=TINY, members=2, epochs=1, base_seed=3, batch_size=32,
                         cpus_per_worker=0.5, shuffle_buffer_size=64)
    return train_ensemble(out, [REGION], config, run_dir, progress=None)


@pytest.fixture(scope="module")
def relabelled(ray_cluster, archive, bundle, tmp_path_factory):
    root, _ = archive
    out = str(tmp_path_factory.mktemp("four-class-relabelled"))
    summary = reprocess_archives(sources_from_archive(root, [REGION]), bundle, out)
    return out, summary


def test_shards_hold_the_four_classes_labelled_by_the_scheme(archive, shards):
    _, events = archive
    out, summary = shards
    assert read_label_scheme(out) == FOUR_CLASS
    table = pq.read_table(Path(out) / REGION, columns=["event_id", "event_type", "label", "split",
                                                       "pick_source"]).to_pandas()
    # Every recording's label is its catalog type's class in the scheme.
    assert (table["label"] == [FOUR_CLASS.label_of(t) for t in table["event_type"]]).all()
    assert (table["label"] == [events[e].label for e in table["event_id"]]).all()
    assert set(table.loc[table["split"] == "train", "label"]) == {0, 1, 2, 3}
    # Noise windows and surface events have no picks: cut at the predicted P arrival.
    assert set(table.loc[table["label"] >= 2, "pick_source"]) == {"predicted"}
    assert {cls for (_, cls) in summary["events"]} == set(NAMES)


def test_bundle_is_four_class(bundle):
    loaded = load_bundle(bundle)
    assert loaded.label_scheme == FOUR_CLASS and loaded.class_names == FOUR_CLASS.class_names
    assert read_manifest(bundle)["label_scheme"] == FOUR_CLASS.to_dict()
    assert loaded.label_map == FOUR_CLASS.label_map and len(loaded.members) == 2
    x = np.zeros((3, *loaded.input_shape), dtype=np.float32)
    assert loaded.member_probabilities(x).shape == (2, 3, 4)
    policy = loaded.triage_policy
    assert len(policy.temperatures) == 2 and all(t > 0 for t in policy.temperatures)
    assert policy.fitted_on["split"] == "validation" and policy.fitted_on["events"] > 0


def test_evaluation_reports_per_class_recall_and_a_4x4_confusion_matrix(shards, bundle, tmp_path):
    out, _ = shards
    result = evaluate(bundle, out, [REGION], split="test", out_dir=str(tmp_path / "eval"), plots=True)
    split = pq.read_table(Path(out) / REGION, columns=["event_id", "label", "split"]).to_pandas()
    split = split[split["split"] == "test"]
    counts = {"station": np.bincount(split["label"], minlength=4),
              "event": np.bincount(split.drop_duplicates("event_id")["label"], minlength=4)}
    assert set(result.reports) == {(m, lvl) for m in ("best_member", "ensemble") for lvl in ("station", "event")}
    for (model, level), report in result.reports.items():
        assert list(report["class_names"]) == NAMES and list(report["per_class"]) == NAMES
        cm = np.array(report["confusion_matrix"])
        assert cm.shape == (4, 4)
        assert cm.sum(axis=1).tolist() == counts[level].tolist(), (model, level)  # rows: true classes
        for c, name in enumerate(NAMES):
            recall = report["per_class"][name]["recall"]
            if counts[level][c]:
                assert recall == pytest.approx(cm[c, c] / counts[level][c])
            else:
                assert np.isnan(recall)
        assert report["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
        assert (Path(result.out_dir) / f"confusion_{model}_{level}.png").read_bytes()[:4] == b"\x89PNG"
    # Predictions are the argmax of the class probability columns, named by the scheme.
    for table in (result.stations, result.events):
        for model in ("best_member", "ensemble"):
            probs = table[[f"p_{n}_{model}" for n in NAMES]].to_numpy()
            np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
            assert (table[f"predicted_{model}"].to_numpy() == probs.argmax(axis=1)).all()
    recall_rows = result.metrics.query("metric == 'recall'")
    assert set(recall_rows["class"]) == set(NAMES) and len(recall_rows) == 4 * 4
    text = result.format()
    assert all(name in text for name in NAMES) and "macro F1" in text
    events = result.events
    assert len(events) == counts["event"].sum()
    assert {"confidence_ensemble", "confidence_best_member", "disagreement_ensemble",
            "triage_ensemble"} <= set(events.columns)
    assert events["confidence_ensemble"].between(0, 1).all() and set(events["triage_ensemble"]) <= {"auto", "review"}


def test_relabelling_gives_four_class_verdicts_triage_and_rewritten_types(archive, bundle, relabelled):
    root, catalog = archive
    out, summary = relabelled
    events = read_results(out, "events").to_pandas().set_index("event_id")
    stations = read_results(out, "stations").to_pandas()
    assert summary["totals"]["events_classified"] == len(events) == N_EVENTS
    for table in (events, stations):
        probs = table[P_COLUMNS].to_numpy()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        assert (table["verdict_class"].to_numpy() == probs.argmax(axis=1)).all()
        assert (table["verdict"] == [NAMES[c] for c in table["verdict_class"]]).all()
        np.testing.assert_allclose(table["probability"], probs.max(axis=1))
    member = np.stack([np.stack(m) for m in stations["member_probabilities"]])
    assert member.shape == (len(stations), 2, 4)
    np.testing.assert_allclose(member.mean(axis=1), stations[P_COLUMNS].to_numpy(), atol=1e-6)
    # The event verdict is the mean of its stations' probabilities.
    mean = stations.groupby("event_id")[P_COLUMNS].mean().loc[events.index]
    np.testing.assert_allclose(mean.to_numpy(), events[P_COLUMNS].to_numpy(), atol=1e-6)
    # The catalog class is the scheme's class of the catalog type, noise windows included.
    assert (events["catalog_class"] == [catalog[e].label for e in events.index]).all()
    assert set(events.loc[events["catalog_type"] == NOT_EXISTING, "catalog_class"]) == {3}
    assert (events["contradicts_catalog"] == (events["verdict_class"] != events["catalog_class"])).all()
    # Triage columns, by the bundle's policy.
    threshold = load_bundle(bundle).triage_policy.confidence_threshold
    assert events["confidence"].between(0, 1).all() and (events["disagreement"] >= -1e-9).all()
    assert set(events["triage"]) <= {"auto", "review"}
    if threshold is None:
        assert set(events["triage"]) == {"auto"}
    elif threshold != "never":
        assert ((events["confidence"] < threshold) == (events["triage"] == "review")).all()

    # The annotated QuakeML: each classified event carries the verdict's type in the scheme;
    # a contradicted type becomes the scheme's type of the verdict (noise: not existing).
    written = {layout.event_id_from_resource_id(e.resource_id): e for e in
               obspy.read_events(f"{out}/catalogs/{REGION}.xml")}
    assert set(written) == set(events.index)
    for event_id, row in events.iterrows():
        new_type = str(written[event_id].event_type)
        assert FOUR_CLASS.class_in(new_type) == row["verdict_class"], (event_id, new_type, row["verdict"])
        if row["contradicts_catalog"]:
            assert new_type == FOUR_CLASS.event_type_of(row["verdict_class"])
        else:
            assert new_type == catalog[event_id].event_type
        if row["verdict"] == "noise":
            assert new_type == NOT_EXISTING
        assert f"verdict {row['verdict']} " in written[event_id].comments[-1].text
    # The review list holds exactly the contradicted and low-confidence events.
    review = (Path(out) / "review" / f"{REGION}.csv").read_text().splitlines()
    expected = events["contradicts_catalog"] | (events["triage"] == "review")
    assert len(review) - 1 == int(expected.sum())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(ray_cluster, bundle):
    """The four-class bundle served on the session cluster (zero CPUs per replica, as
    tests/test_serving.py does: the cluster has 2 CPUs)."""
    from ray import serve

    from raydisc.serving.app import ServeSettings, build_app

    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(ServeSettings(bundle=bundle, model_num_cpus=0, ingress_num_cpus=0)), name="four-class",
              route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(url)
    yield url
    serve.shutdown()


def _pickless(catalog, kind: str) -> str:
    """The first noise window (``kind="noise"``) or surface event: no picks, so every
    window is cut at the predicted P arrival."""
    wanted = {"noise": {NOT_EXISTING}, "surface": set(SURFACE_EVENT_TYPES)}[kind]
    return next(e for e, info in sorted(catalog.items()) if info.event_type in wanted and not info.picks)


@pytest.mark.parametrize("kind", ["noise", "surface"])
def test_api_and_endpoint_answer_four_named_probabilities_and_triage(archive, bundle, relabelled, server, kind):
    from raydisc.serving import Client
    from raydisc.serving.client import request_metadata

    root, catalog = archive
    event_id = _pickless(catalog, kind)
    ensemble = raydisc.Ensemble.load(bundle)
    assert list(ensemble.info.classes) == NAMES
    quakeml = obspy.read_events(layout.catalog_uri(root, REGION))
    event = next(e for e in quakeml if layout.event_id_from_resource_id(e.resource_id) == event_id)
    mseed_uri = layout.waveform_uri(root, REGION, event_id)
    result = ensemble.classify(obspy.read(mseed_uri), layout.inventory_uri(root, REGION), event)
    ev = result.event
    assert result.class_names == NAMES and list(ev.probabilities) == NAMES
    assert sum(ev.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert ev.predicted_label == max(ev.probabilities, key=ev.probabilities.get)
    assert 0 <= ev.confidence <= 1 and ev.disagreement >= -1e-9 and ev.triage in ("auto", "review")
    assert {s.pick_source for s in result.stations} == {"predicted"}
    for s in result.stations:
        assert list(s.probabilities) == NAMES and len(s.member_probabilities) == 2
        assert all(len(p) == 4 for p in s.member_probabilities) and set(s.member_votes) <= set(NAMES)
    # The API's event row is the re-labelling job's.
    row = read_results(relabelled[0], "events").to_pandas().set_index("event_id").loc[event_id]
    np.testing.assert_allclose([ev.probabilities[n] for n in NAMES], row[P_COLUMNS].to_numpy(float), atol=1e-6)
    assert (ev.predicted_label, ev.triage) == (row["verdict"], row["triage"])
    assert ev.confidence == pytest.approx(row["confidence"], abs=1e-6)
    table = result.to_pandas("events")
    assert table["catalog_class"].iloc[0] == FOUR_CLASS.class_in(catalog[event_id].event_type)

    # The endpoint: the event's miniSEED and StationXML, no picks (predicted P arrivals).
    client = Client(server)
    info = client.info()
    assert info["class_names"] == NAMES and info["label_map"] == FOUR_CLASS.label_map
    meta = {"event": {"event_id": event_id, "origin_time": catalog[event_id].origin_time,
                      "latitude": catalog[event_id].latitude, "longitude": catalog[event_id].longitude,
                      "depth_km": catalog[event_id].depth_km}, "picks": {}}
    answer = client.classify_mseed(storage.read_bytes(mseed_uri), meta,
                                   stationxml=storage.read_bytes(layout.inventory_uri(root, REGION)))
    assert answer["class_names"] == NAMES and list(answer["event"]["probabilities"]) == NAMES
    assert {"confidence", "disagreement", "triage"} <= set(answer["event"])
    np.testing.assert_allclose([answer["event"]["probabilities"][n] for n in NAMES],
                               [ev.probabilities[n] for n in NAMES], atol=1e-5)
    assert answer["event"]["predicted_label"] == ev.predicted_label and answer["event"]["triage"] == ev.triage
    assert answer["event"]["confidence"] == pytest.approx(ev.confidence, abs=1e-5)
    assert answer["event"]["n_stations"] == ev.n_stations
    assert {s["pick_source"] for s in answer["stations"]} == {"predicted"}
    # The metadata-only form as the client makes it from a pick-less catalog: every
    # operating station, its P arrival predicted by the server (sensitivity only, so the
    # probabilities differ from the StationXML form's full response removal).
    stations = read_stations(layout.inventory_uri(root, REGION))
    by_metadata = client.classify_mseed(storage.read_bytes(mseed_uri), request_metadata(catalog[event_id], stations))
    assert by_metadata["event"]["n_stations"] == ev.n_stations
    assert {s["pick_source"] for s in by_metadata["stations"]} == {"predicted"}
    assert list(by_metadata["event"]["probabilities"]) == NAMES
