"""The Python API (raydisc.Ensemble) and the portable export (raydisc export).

One event of the tiny synthetic archive goes through the API, the endpoint's offline
path (tests/test_serving.py proves the endpoint answers it) and the re-labelling job on
Ray: the probabilities must agree. The export must give the bundle's probabilities.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import obspy
import pytest
import torch

import raydisc
from raydisc.data import layout
from raydisc.data.ingest import read_catalog, read_stations
from raydisc.ensemble import load_bundle, save_bundle
from raydisc.ensemble.export import ExportError, check_export, export_ensemble
from raydisc.ensemble.results import classify_response
from raydisc.models import build_model, input_shape_of
from raydisc.reprocess import reprocess_archives, sources_from_archive
from raydisc.reprocess.outputs import read_results
from serving_helpers import N_MEMBERS, make_tiny_bundle
from test_serving import offline

REGION = "basin"


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    return make_tiny_bundle(str(tmp_path_factory.mktemp("api-bundle") / "tiny"))


@pytest.fixture(scope="module")
def ensemble(tiny_bundle):
    return raydisc.Ensemble.load(tiny_bundle)


@pytest.fixture(scope="module")
def basin(tiny_archive):
    """The basin region's files as ObsPy objects, and its first event."""
    catalog = obspy.read_events(layout.catalog_uri(tiny_archive, REGION))
    event_id = str(catalog[0].resource_id).rsplit("/", 1)[-1]
    return {"catalog": catalog, "event": catalog[0], "event_id": event_id,
            "inventory": obspy.read_inventory(layout.inventory_uri(tiny_archive, REGION)),
            "stream": obspy.read(layout.waveform_uri(tiny_archive, REGION, event_id)),
            "mseed_uri": layout.waveform_uri(tiny_archive, REGION, event_id)}


def test_five_lines_classify_an_event_from_obspy_objects(tiny_bundle, tiny_archive):
    folder = f"{tiny_archive}/basin"
    ensemble = raydisc.Ensemble.load(tiny_bundle)
    event = obspy.read_events(f"{folder}/catalog.xml")[0]
    result = ensemble.classify(obspy.read(f"{folder}/waveforms/basin-000000.mseed"),
                               obspy.read_inventory(f"{folder}/inventory.xml"), event)
    assert result.event.event_id == "basin-000000" and result.event.n_stations == 9
    assert result.event.predicted_label in ensemble.info.classes
    frame = result.to_pandas()
    assert len(frame) == 9 and set(frame["components"]) == {"ZNE"} and set(frame["pick_source"]) == {"catalog"}
    assert np.allclose(frame[["p_earthquake", "p_blast"]].sum(axis=1), 1.0)


def test_info_describes_the_bundle(ensemble):
    info = ensemble.info
    assert info.architecture == "spectrogram_cnn" and info.members == N_MEMBERS == len(info.metrics)
    assert info.classes == ("earthquake", "blast") and info.input_shape == (3, 41, 89)
    assert info.metrics[0]["seed"] == 0 and info.best_member == 2  # lowest validation loss
    assert info.preprocessing["window_length_s"] > 0 and info.label_map["quarry blast"] == 1


def test_api_endpoint_and_relabelling_give_the_same_probabilities(ray_cluster, ensemble, tiny_bundle, tiny_archive,
                                                                  basin, tmp_path):
    result = ensemble.classify(basin["stream"], basin["inventory"], basin["event"])
    api = {s.station: np.array([s.probabilities[c] for c in result.class_names]) for s in result.stations}

    # The endpoint: its offline path, and its answer built from it (the one result schema).
    ev = read_catalog(layout.catalog_uri(tiny_archive, REGION), REGION)[0]
    stations = read_stations(layout.inventory_uri(tiny_archive, REGION))
    recordings, expected = offline(tiny_bundle, ev, stations, basin["mseed_uri"])
    assert set(api) == set(expected)
    for key, (probs, member) in expected.items():
        np.testing.assert_allclose(api[key], probs, rtol=0, atol=1e-6)
    member = np.stack([expected[r.key][1] for r in recordings], axis=1)
    endpoint = classify_response(ensemble.bundle.bundle_id, ensemble.info.classes, recordings, [], member, ev.event_id)
    assert endpoint.model_dump()["event"]["predicted_label"] == result.response.model_dump()["event"]["predicted_label"]
    np.testing.assert_allclose(list(endpoint.event.probabilities.values()),
                               list(result.event.probabilities.values()), rtol=0, atol=1e-6)

    # Re-labelling on Ray, and the same job in process (classify_catalog).
    out = str(tmp_path / "relabelled")
    reprocess_archives(sources_from_archive(tiny_archive, [REGION]), tiny_bundle, out)
    ray_stations = read_results(out, "stations").to_pandas()
    ray_stations = ray_stations[ray_stations["event_id"] == basin["event_id"]]
    ray_probs = {f"{r.network}.{r.station}.{r.location}": np.array([r.p_earthquake, r.p_blast])
                 for r in ray_stations.itertuples()}
    assert set(ray_probs) == set(api)
    for key in api:
        np.testing.assert_allclose(ray_probs[key], api[key], rtol=0, atol=1e-6)
    mine = result.to_pandas()
    np.testing.assert_allclose(mine["p_blast"], ray_stations["p_blast"], rtol=0, atol=1e-6)
    assert list(mine.columns) == list(ray_stations.columns)
    assert (mine["input_hash"].values == ray_stations["input_hash"].values).all()

    catalog_run = ensemble.classify_catalog(basin["catalog"], f"{tiny_archive}/{REGION}/waveforms", basin["inventory"],
                                            region=REGION)
    ray_events = read_results(out, "events").to_pandas().sort_values("event_id").reset_index(drop=True)
    events = catalog_run.events.sort_values("event_id").reset_index(drop=True)
    assert list(events["event_id"]) == list(ray_events["event_id"]) and len(events) == len(basin["catalog"])
    np.testing.assert_allclose(events["p_blast"], ray_events["p_blast"], rtol=0, atol=1e-6)
    assert list(events["contradicts_catalog"]) == list(ray_events["contradicts_catalog"])
    first = catalog_run.events.set_index("event_id").loc[basin["event_id"]]
    assert first["p_blast"] == pytest.approx(result.event.probabilities["blast"], abs=1e-6)
    # Annotated as re-labelling annotates: same comments but for their ids, same types.
    written = obspy.read_events(f"{out}/catalogs/{REGION}.xml")
    for a, b in zip(catalog_run.catalog, written):
        assert a.comments[-1].text == b.comments[-1].text and a.event_type == b.event_type
    assert len(catalog_run.review) == int(ray_events["contradicts_catalog"].sum())


def test_vertical_only_origin_only_and_given_picks(ensemble, basin):
    origin = basin["event"].preferred_origin()
    z_only = basin["stream"].select(component="Z")
    predicted = ensemble.classify(z_only, basin["inventory"], origin)
    assert {s.components for s in predicted.stations} == {"Z"}
    assert {s.pick_source for s in predicted.stations} == {"predicted"}
    # The catalog's P picks given by hand give the same windows as reading them from the event.
    picks = [p for p in basin["event"].picks if p.phase_hint == "P"]
    by_hand = ensemble.classify(z_only, basin["inventory"], origin, picks=picks)
    from_event = ensemble.classify(z_only, basin["inventory"], basin["event"])
    assert {s.pick_source for s in by_hand.stations} == {"catalog"}
    np.testing.assert_array_equal(by_hand.probabilities, from_event.probabilities)
    # A mapping of station keys to times works the same way.
    mapping = {f"{p.waveform_id.network_code}.{p.waveform_id.station_code}": p.time for p in picks}
    np.testing.assert_array_equal(ensemble.classify(z_only, basin["inventory"], origin, picks=mapping).probabilities,
                                  from_event.probabilities)
    # Z-only recordings of 3-C stations are other inputs than their 3-C recordings.
    assert not np.allclose(from_event.probabilities, ensemble.classify(basin["stream"], basin["inventory"],
                                                                      basin["event"]).probabilities, atol=1e-9)


def test_one_station_and_no_usable_station(ensemble, basin):
    one = basin["stream"].select(station=basin["stream"][0].stats.station)
    result = ensemble.classify(one, basin["inventory"], basin["event"])
    assert result.event.n_stations == 1 and result.stations[0].station.startswith(one[0].stats.network)
    with pytest.raises(raydisc.NoUsableRecordingError, match="no usable station recording") as info:
        ensemble.classify(obspy.Stream([t.slice(t.stats.starttime, t.stats.starttime + 5) for t in one]),
                          basin["inventory"], basin["event"])
    assert info.value.rejects and info.value.rejects[0].reason == "too_short"


def test_classify_catalog_from_sds_and_fdsn_client(ensemble, basin, tiny_archive, tmp_path):
    from raydisc.data.sds import convert_to_sds

    per_event = ensemble.classify_catalog(basin["catalog"], f"{tiny_archive}/{REGION}/waveforms",
                                          layout.inventory_uri(tiny_archive, REGION))
    sds_root = str(tmp_path / "sds")
    convert_to_sds(tiny_archive, REGION, sds_root)
    from_sds = ensemble.classify_catalog(layout.catalog_uri(tiny_archive, REGION), sds_root, basin["inventory"])

    class ArchiveClient:
        """Answers bulk requests from the archive's files, as an FDSN dataselect would."""

        def get_waveforms_bulk(self, bulk):
            t0, t1 = bulk[0][4], bulk[0][5]
            event = next(e for e in basin["catalog"] if abs(e.preferred_origin().time - t0) < 600)
            name = str(event.resource_id).rsplit("/", 1)[-1]
            return obspy.read(layout.waveform_uri(tiny_archive, REGION, name)).trim(t0, t1)

    from_fdsn = ensemble.classify_catalog(basin["catalog"], ArchiveClient(), basin["inventory"])
    for other in (from_sds, from_fdsn):
        np.testing.assert_allclose(other.events["p_blast"], per_event.events["p_blast"], rtol=0, atol=1e-6)
        assert other.summary["totals"]["events_classified"] == len(basin["catalog"])


def _waveform_bundle(uri: str) -> str:
    from raydisc.config import PreprocessConfig

    config = PreprocessConfig()
    shape = input_shape_of("waveform_cnn", config)
    hparams = {"stem_channels": 4, "channels": (4, 8), "dense_units": 8}
    states = []
    for seed in range(2):
        torch.manual_seed(seed)
        model = build_model("waveform_cnn", shape, **hparams)
        for m in model.modules():  # non-trivial batch-norm statistics, so folding is tested
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        states.append(model.state_dict())
    save_bundle(uri, architecture="waveform_cnn", hparams=hparams, input_shape=shape, preprocess_config=config,
                member_state_dicts=states,
                member_metrics=[{"seed": s, "validation_loss": 1.0, "validation_accuracy": 0.5} for s in range(2)])
    return uri


@pytest.mark.parametrize("architecture", ["spectrogram_cnn", "waveform_cnn"])
def test_torchscript_export_gives_the_bundle_probabilities(architecture, tiny_bundle, tmp_path):
    uri = tiny_bundle if architecture == "spectrogram_cnn" else _waveform_bundle(str(tmp_path / "wave"))
    bundle = load_bundle(uri)
    out = export_ensemble(bundle, str(tmp_path / "ensemble.pt"), "torchscript")
    diff = check_export(bundle, out, "torchscript")
    print(f"{architecture} torchscript max abs diff {diff:.3g}")
    assert diff < 1e-5
    # Loadable by torch alone (no raydisc), batch axis free.
    model = torch.jit.load(out)
    assert model(torch.zeros(1, *bundle.input_shape)).shape == (1, 2)
    sidecar = json.loads(open(out + ".json").read())
    assert sidecar["input_shape"] == ["batch", *bundle.input_shape] and sidecar["class_names"] == ["earthquake", "blast"]


def test_onnx_export_gives_the_bundle_probabilities(tiny_bundle, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    from raydisc.cli import main

    out = str(tmp_path / "ensemble.onnx")
    assert main(["export", tiny_bundle, out, "--format", "onnx"]) == 0
    diff = check_export(load_bundle(tiny_bundle), out, "onnx")
    print(f"onnx max abs diff {diff:.3g}")
    assert diff < 1e-5


def test_onnx_export_without_its_packages_names_them(tiny_bundle, tmp_path, monkeypatch, capsys):
    import importlib.util

    from raydisc.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(ExportError, match="onnx"):
        export_ensemble(tiny_bundle, str(tmp_path / "m.onnx"), "onnx")
    assert main(["export", tiny_bundle, str(tmp_path / "m.onnx"), "--format", "onnx"]) == 2
    assert "pip install onnx" in capsys.readouterr().err


def test_package_root_lists_the_api_and_imports_it_lazily():
    code = "import sys, raydisc; assert 'torch' not in sys.modules; print(sorted(raydisc.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for name in ("Ensemble", "Classification", "CatalogClassification", "export_ensemble", "SeisBenchDiscriminator"):
        assert name in out and name in raydisc.__doc__
    for name in ("Ensemble", "Classification", "CatalogClassification", "export_ensemble"):
        assert getattr(raydisc, name).__doc__
    import pydoc

    assert "Ensemble" in pydoc.render_doc(raydisc)
