"""Label schemes: built-in and user schemes, labelling and rejecting catalog types by
name, the scheme stored in shard folders and bundles, bundles refusing shards of another
scheme, fine-tuning across schemes (fresh output layer) and per-class metrics.

Four-class data is made by re-typing events of a small generated archive's QuakeML."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import obspy
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from lxml import etree
from obspy.core.event import Catalog, Event, Origin, ResourceIdentifier

from raydisc.config import PipelineConfig, PreprocessConfig
from raydisc.data import layout
from raydisc.data.catalog import read_catalog
from raydisc.data.ingest import cut_recordings
from raydisc.data.pipeline import run_preprocessing
from raydisc.data.shards import LABEL_SCHEME_FILE, ShardError, read_dataset_info, read_label_scheme
from raydisc.ensemble import BundleError, load_bundle
from raydisc.ensemble.bundle import save_bundle
from raydisc.evaluation.evaluate import evaluate
from raydisc.evaluation.metrics import classification_report
from raydisc.evaluation.plots import plot_confusion_matrix
from raydisc.labels import (BINARY, CLASS_NAMES, EVENT_TYPE_TO_CLASS, FOUR_CLASS, QUAKEML_EVENT_TYPES, LabelScheme,
                            LabelSchemeError, UnknownLabelError, scheme_named)
from raydisc.models import build_model, input_shape_of
from raydisc.reprocess.outputs import annotate_catalog
from raydisc.synthetic import generate_archive
from raydisc.training import TrainConfig
from raydisc.training.finetune import finetune_ensemble

ARCH = "spectrogram_cnn"
TINY = {"channels": [4, 8], "dense_units": 8, "pooled_shape": [1, 2], "dropout": 0.1}
REGION = "basin"


# ------------------------------------------------------------------ schemes (no Ray)


def test_binary_is_the_map_of_before_and_four_class_decides_every_type():
    assert BINARY.class_names == CLASS_NAMES == ("earthquake", "blast")
    assert dict(EVENT_TYPE_TO_CLASS) == BINARY.event_types and len(BINARY.event_types) == 10
    assert FOUR_CLASS.class_names == ("earthquake", "explosion", "surface event", "noise")
    assert FOUR_CLASS.label_of("Landslide") == 2 and FOUR_CLASS.label_of("not existing") == 3
    assert FOUR_CLASS.label_of("nuclear explosion") == 1 and FOUR_CLASS.label_of("rock burst") == 0
    assert [FOUR_CLASS.event_type_of(c) for c in range(4)] == ["earthquake", "quarry blast", "landslide", "not existing"]
    assert set(FOUR_CLASS.event_types) <= set(QUAKEML_EVENT_TYPES)
    for rejected in ("sonic boom", "collapse", "not reported", "volcanic eruption"):
        with pytest.raises(UnknownLabelError, match=f"{rejected!r} is not in label scheme 'four-class'"):
            FOUR_CLASS.label_of(rejected, event_id="e1")
    assert scheme_named("binary") is BINARY and scheme_named("four-class") is FOUR_CLASS
    assert LabelScheme.from_dict(json.loads(json.dumps(FOUR_CLASS.to_dict()))) == FOUR_CLASS


def _write(tmp_path: Path, data) -> str:
    path = tmp_path / "scheme.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_user_scheme_file_and_its_validation(tmp_path):
    good = {"name": "quakes-vs-rest", "version": 2, "classes": ["quake", "other"],
            "event_types": {"earthquake": "quake", "Quarry Blast": "other", "landslide": "other"}}
    scheme = scheme_named(_write(tmp_path, good))
    assert scheme.class_names == ("quake", "other") and scheme.label_of("quarry blast") == 1
    assert scheme.to_dict()["event_types"]["quarry blast"] == "other" and scheme.version == 2

    cases = [
        ({**good, "event_types": {**good["event_types"], "tectonic quake": "quake", "blasty": "other"}},
         r"\['tectonic quake', 'blasty'\] are not QuakeML 1.2 event types"),
        ({**good, "classes": ["quake"], "event_types": {"earthquake": "quake"}}, "at least 2 classes"),
        ({**good, "classes": ["quake", "other", "noise"]}, r"class\(es\) \['noise'\] have no event type"),
        ({**good, "event_types": {"earthquake": "quake", "quarry blast": "blast"}}, r"class\(es\) \['blast'\] not in"),
        ({**good, "name": "binary"}, "the built-in scheme's"),
        ({k: v for k, v in good.items() if k != "version"}, r"missing \['version'\]"),
        ({**good, "version": 0}, "version must be an integer >= 1"),
    ]
    for data, message in cases:
        with pytest.raises(LabelSchemeError, match=message):
            scheme_named(_write(tmp_path, data))
    with pytest.raises(LabelSchemeError, match="not found"):
        scheme_named(str(tmp_path / "absent.json"))
    with pytest.raises(LabelSchemeError, match="unknown label scheme 'three-class'"):
        scheme_named("three-class")


def test_a_four_class_catalog_labelled_and_rejected_by_name(tmp_path):
    """A QuakeML written with ObsPy: each type labelled by the scheme, or rejected
    ``unknown_event_type`` naming the type and the scheme."""
    types = {"ev-eq": "earthquake", "ev-qb": "quarry blast", "ev-ls": "landslide", "ev-noise": "not existing",
             "ev-boom": "sonic boom"}
    catalog = Catalog([Event(resource_id=ResourceIdentifier(f"smi:local/{eid}"), event_type=t,
                             origins=[Origin(time=obspy.UTCDateTime(2020, 1, 1), latitude=47.0, longitude=11.0)])
                       for eid, t in types.items()])
    path = tmp_path / "catalog.xml"
    catalog.write(str(path), format="QUAKEML")
    expected = {BINARY: {"ev-eq": 0, "ev-qb": 1, "ev-ls": None, "ev-noise": None, "ev-boom": None},
                FOUR_CLASS: {"ev-eq": 0, "ev-qb": 1, "ev-ls": 2, "ev-noise": 3, "ev-boom": None}}
    for scheme, labels in expected.items():
        for source in (str(path), catalog):  # the file and the ObsPy objects read alike
            events = {e.event_id: e for e in read_catalog(source, "r", scheme)}
            assert {k: e.label for k, e in events.items()} == labels
        for event in events.values():
            if event.label is None:
                recordings, rejects = cut_recordings(str(tmp_path / "none.mseed"), event, {}, PreprocessConfig(), scheme)
                assert not recordings and [r.reason for r in rejects] == ["unknown_event_type"]
                assert repr(event.event_type) in rejects[0].detail and repr(scheme.name) in rejects[0].detail


def test_per_class_metrics_of_a_four_class_example(tmp_path):
    """Recall, macro F1 and the confusion matrix of a hand-made example, counted by hand."""
    names = list(FOUR_CLASS.class_names)
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 3])
    predicted = np.array([0, 0, 1, 3, 1, 1, 2, 0, 2, 3])
    probs = np.full((len(y), 4), 0.1)
    probs[np.arange(len(y)), predicted] = 0.7
    report = classification_report(y, probs, names)
    assert report["confusion_matrix"] == [[2, 1, 0, 1], [0, 2, 0, 0], [1, 0, 2, 0], [0, 0, 0, 1]]
    recall = {n: report["per_class"][n]["recall"] for n in names}
    assert recall == pytest.approx({"earthquake": 2 / 4, "explosion": 1.0, "surface event": 2 / 3, "noise": 1.0})
    # F1 = 2TP / (2TP + FP + FN) per class.
    f1 = [4 / (4 + 1 + 2), 4 / (4 + 1 + 0), 4 / (4 + 0 + 1), 2 / (2 + 1 + 0)]
    assert report["macro_f1"] == pytest.approx(np.mean(f1))
    assert plot_confusion_matrix(report["confusion_matrix"], names, str(tmp_path / "cm.png")).endswith("cm.png")
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_four_class_verdicts_write_their_event_types(tmp_path):
    catalog = Catalog([Event(resource_id=ResourceIdentifier(f"smi:local/{eid}"), event_type="earthquake",
                             origins=[Origin(time=obspy.UTCDateTime(2020, 1, 1), latitude=47.0, longitude=11.0)])
                       for eid in ("a", "b")])
    catalog.write(str(tmp_path / "in.xml"), format="QUAKEML")
    events = pa.Table.from_pylist([
        {"event_id": e, "verdict": FOUR_CLASS.class_names[c], "verdict_class": c, "probability": 0.9,
         "n_stations": 2, "spread": 0.01} for e, c in (("a", 3), ("b", 2))])
    annotate_catalog(str(tmp_path / "in.xml"), events, "b4", FOUR_CLASS.label_map, str(tmp_path / "out.xml"))
    types = {str(e.resource_id).rsplit("/", 1)[-1]: str(e.event_type) for e in obspy.read_events(str(tmp_path / "out.xml"))}
    assert types == {"a": "not existing", "b": "landslide"}


# ---------------------------------------------------------- shards and bundles (Ray)


@pytest.fixture(scope="module")
def four_class_archive(tmp_path_factory):
    """A 16-event basin region whose earthquakes are partly re-typed: landslide, not
    existing, and one sonic boom (rejected by both schemes)."""
    root = tmp_path_factory.mktemp("four-class-archive")
    generate_archive(str(root), [REGION], events_per_region=16, seed=3)
    uri = layout.catalog_uri(str(root), REGION)
    tree = etree.parse(uri)
    quakes = [t for t in tree.iter("{*}type") if t.getparent().tag.endswith("event") and t.text == "earthquake"]
    assert len(quakes) >= 7, "the generator made too few earthquakes to re-type"
    for element, new in zip(quakes, ["landslide"] * 3 + ["not existing"] * 3 + ["sonic boom"]):
        element.text = new
    tree.write(uri, xml_declaration=True, encoding="utf-8")
    return str(root)


@pytest.fixture(scope="module")
def four_class_shards(ray_cluster, four_class_archive, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("four-class-shards"))
    summary = run_preprocessing(four_class_archive, out, [REGION], pipeline_config=PipelineConfig(events_per_shard=8),
                                label_scheme=FOUR_CLASS)
    return out, summary


def _rejects(folder: str):
    return pq.read_table(Path(folder) / "_rejects").to_pandas()


def test_scheme_is_stored_in_the_shards_and_a_rerun_with_another_is_refused(four_class_archive, four_class_shards,
                                                                            tmp_path):
    out, summary = four_class_shards
    assert read_label_scheme(out) == FOUR_CLASS
    assert json.loads((Path(out) / LABEL_SCHEME_FILE).read_text()) == FOUR_CLASS.to_dict()
    assert {cls for (_, cls) in summary["events"]} == set(FOUR_CLASS.class_names)
    labels = set(pq.read_table(Path(out) / REGION, columns=["label"]).column("label").to_pylist())
    assert labels == {0, 1, 2, 3}
    unknown = _rejects(out).query("reason == 'unknown_event_type'")
    assert len(unknown) == 1 and "'sonic boom'" in unknown.detail.iloc[0] and "'four-class'" in unknown.detail.iloc[0]
    with pytest.raises(ShardError, match="labelled with label scheme four-class"):
        run_preprocessing(four_class_archive, out, [REGION], label_scheme=BINARY)

    # The binary scheme rejects the surface events and noise windows by name; its
    # folder's _dataset.json is what it was before schemes (the scheme sits beside it).
    binary = str(tmp_path / "binary")
    run_preprocessing(four_class_archive, binary, [REGION], pipeline_config=PipelineConfig(events_per_shard=8))
    assert read_label_scheme(binary) == BINARY
    assert set(json.loads((Path(binary) / "_dataset.json").read_text())) == {"schema_version", "preprocess", "split",
                                                                             "archive"}
    unknown = _rejects(binary).query("reason == 'unknown_event_type'")
    assert sorted(d.split("'")[1] for d in unknown.detail) == ["landslide"] * 3 + ["not existing"] * 3 + ["sonic boom"]
    assert all("label scheme 'binary'" in d for d in unknown.detail)
    # A folder made before schemes were stored (no scheme file) holds binary labels.
    (Path(binary) / LABEL_SCHEME_FILE).unlink()
    assert read_label_scheme(binary) == BINARY
    with pytest.raises(ShardError, match="labelled with label scheme binary"):
        run_preprocessing(four_class_archive, binary, [REGION], label_scheme=FOUR_CLASS)


def _binary_bundle(uri: str, preprocess) -> str:
    """An untrained 1-member binary bundle (the weights do not matter here)."""
    torch.manual_seed(0)
    shape = input_shape_of(ARCH, preprocess)
    model = build_model(ARCH, shape, BINARY.n_classes, **TINY)
    save_bundle(uri, architecture=ARCH, hparams=TINY, input_shape=shape, preprocess_config=preprocess,
                member_state_dicts=[model.state_dict()], member_metrics=[{"seed": 0, "validation_loss": 0.7,
                                                                          "validation_accuracy": 0.5}],
                provenance={"regions": [REGION]})
    return uri


def test_bundle_refuses_shards_of_another_scheme_and_finetuning_replaces_the_head(four_class_shards, tmp_path):
    shards, _ = four_class_shards
    binary = _binary_bundle(str(tmp_path / "binary-bundle"), read_dataset_info(shards).preprocess)
    manifest = json.loads((Path(binary) / "bundle.json").read_text())
    assert manifest["label_scheme"] == BINARY.to_dict() and load_bundle(binary).label_scheme == BINARY
    with pytest.raises(BundleError, match="trained with label scheme binary .* labelled with four-class"):
        evaluate(binary, shards, [REGION], split="train", plots=False)

    # A bundle made before schemes were stored (no label_scheme) loads as binary.
    legacy = tmp_path / "legacy-bundle"
    shutil.copytree(binary, legacy)
    del manifest["label_scheme"]
    (legacy / "bundle.json").write_text(json.dumps(manifest))
    assert load_bundle(str(legacy)).label_scheme == BINARY

    config = TrainConfig(architecture=ARCH, members=1, epochs=1, batch_size=32, cpus_per_worker=0.5,
                         freeze="all_but_head")
    lines = []
    tuned = finetune_ensemble(binary, shards, REGION, config, str(tmp_path / "tuned"), progress=lines.append)
    assert any("output layer is replaced" in line for line in lines)
    before, after = load_bundle(binary), load_bundle(tuned)
    assert after.label_scheme == FOUR_CLASS and after.class_names == FOUR_CLASS.class_names
    assert after.manifest["provenance"]["init_bundle"]["replaced_output_layer"] is True
    old, new = before.members[0].state_dict(), after.members[0].state_dict()
    out_layer = {k for k in new if k.startswith(f"head.{len(after.members[0].head) - 1}.")}
    assert new["head.4.weight"].shape == (4, TINY["dense_units"]) and out_layer == {"head.4.weight", "head.4.bias"}
    for key in set(new) - out_layer:  # frozen with all_but_head: kept from the binary bundle, bit for bit
        assert torch.equal(new[key], old[key]), key

    result = evaluate(tuned, shards, [REGION], split="train", plots=False)
    assert set(result.reports[("ensemble", "station")]["per_class"]) == set(FOUR_CLASS.class_names)
    assert "surface event" in result.format() and "macro F1" in result.format()
