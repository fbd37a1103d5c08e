"""Soft voting, event aggregation and ensemble bundles (local and S3)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from raydisc import storage
from raydisc.config import PreprocessConfig
from raydisc.ensemble import (
    BundleError,
    aggregate_events,
    best_member,
    ensemble_spread,
    load_bundle,
    save_bundle,
    soft_vote,
)
from raydisc.labels import CLASS_NAMES, EVENT_TYPE_TO_CLASS
from raydisc.models import build_model, input_shape_of


# ----------------------------------------------------------------- voting


MEMBER_PROBS = np.array(
    [
        [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]],  # member 0
        [[0.7, 0.3], [0.5, 0.5], [0.3, 0.7]],  # member 1
    ]
)


def test_soft_vote_is_the_member_mean():
    np.testing.assert_allclose(soft_vote(MEMBER_PROBS), [[0.8, 0.2], [0.35, 0.65], [0.45, 0.55]])


def test_spread_is_std_of_the_ensemble_predicted_class_probability():
    # rec 0: ensemble predicts 0, members give 0.9, 0.7 -> std 0.1
    # rec 1: ensemble predicts 1, members give 0.8, 0.5 -> std 0.15
    # rec 2: ensemble predicts 1 although member 0 votes 0: 0.4, 0.7 -> std 0.15
    np.testing.assert_allclose(ensemble_spread(MEMBER_PROBS), [0.1, 0.15, 0.15])
    np.testing.assert_allclose(ensemble_spread(MEMBER_PROBS[:1]), [0.0, 0.0, 0.0])


def test_voting_rejects_wrong_rank():
    with pytest.raises(ValueError, match="n_members"):
        soft_vote(MEMBER_PROBS[0])


def test_best_member():
    assert best_member([0.5, 0.9, 0.9]) == 1  # tie -> lowest index
    assert best_member([0.5, float("nan"), 0.2], higher_is_better=False) == 2
    assert best_member([float("nan"), 0.1], higher_is_better=True) == 1
    with pytest.raises(ValueError, match="no finite"):
        best_member([float("nan"), float("nan")])


def test_aggregate_events_mean():
    ids = np.array(["b", "a", "b", "a", "c"])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6], [0.5, 0.5]])
    events, event_probs = aggregate_events(ids, probs)
    assert events.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(event_probs, [[0.3, 0.7], [0.75, 0.25], [0.5, 0.5]])


def test_aggregate_events_majority_and_ties():
    ids = np.array(["y", "y", "y", "z", "z", "w", "w"])
    probs = np.array(
        [
            # y: two weak votes for 0, one strong for 1; mean [0.36, 0.64] would say 1.
            [0.51, 0.49], [0.52, 0.48], [0.05, 0.95],
            # z: tie 1-1, mean [0.6, 0.4] -> 0
            [0.9, 0.1], [0.3, 0.7],
            # w: tie 1-1, mean [0.325, 0.675] -> 1 (naive argmax of [0.5, 0.5] would say 0)
            [0.55, 0.45], [0.1, 0.9],
        ]
    )
    events, event_probs = aggregate_events(ids, probs, rule="majority")
    assert events.tolist() == ["w", "y", "z"]
    np.testing.assert_allclose(event_probs, [[0.325, 0.675], [2 / 3, 1 / 3], [0.6, 0.4]])
    assert event_probs.argmax(axis=1).tolist() == [1, 0, 0]
    _, mean_probs = aggregate_events(ids, probs, rule="mean")
    np.testing.assert_allclose(mean_probs[1], [0.36, 0.64])


def test_aggregate_events_majority_three_classes_partial_tie():
    probs = np.array(
        [[0.6, 0.3, 0.1], [0.5, 0.1, 0.4], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.2, 0.2, 0.6]]
    )
    # votes [2, 2, 1] -> fractions [0.4, 0.4, 0.2]; classes 0 and 1 tie and share 0.8
    # in proportion to their mean probabilities 0.32 and 0.42.
    _, event_probs = aggregate_events(np.zeros(5, dtype=int), probs, rule="majority")
    np.testing.assert_allclose(event_probs, [[0.8 * 0.32 / 0.74, 0.8 * 0.42 / 0.74, 0.2]])


def test_aggregate_events_validates_inputs():
    with pytest.raises(ValueError, match="rule"):
        aggregate_events(np.array([1]), np.array([[0.5, 0.5]]), rule="median")
    with pytest.raises(ValueError, match="event_ids"):
        aggregate_events(np.array([1, 2]), np.array([[0.5, 0.5]]))


# ----------------------------------------------------------------- bundles

CFG = PreprocessConfig(window_length_s=20.0)  # small inputs keep the tests fast
ARCH = "spectrogram_cnn"
HPARAMS = {"channels": [8, 16], "dense_units": 16, "dropout": 0.1}


def _members(n=3, arch=ARCH, hparams=HPARAMS):
    shape = input_shape_of(arch, CFG)
    models = []
    for seed in range(n):
        torch.manual_seed(seed)
        model = build_model(arch, shape, **hparams)
        # Non-trivial batchnorm statistics, so that buffers must survive the round trip.
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        models.append(model.eval())
    return models


METRICS = [
    {"seed": 0, "validation_loss": 0.40, "validation_accuracy": 0.81, "epochs": 7},
    {"seed": 1, "validation_loss": 0.30, "validation_accuracy": 0.84, "epochs": 9},
    {"seed": 2, "validation_loss": float("nan"), "validation_accuracy": 0.50, "epochs": 3},
]


def _save(uri, models, metrics=METRICS, **kwargs):
    return save_bundle(
        uri,
        architecture=kwargs.pop("architecture", ARCH),
        hparams=kwargs.pop("hparams", HPARAMS),
        input_shape=input_shape_of(ARCH, CFG),
        preprocess_config=CFG,
        member_state_dicts=[m.state_dict() for m in models],
        member_metrics=metrics,
        provenance={"run": "unit-test", "regions": ["alpine", "basin"]},
        **kwargs,
    )


def _inputs(n=7):
    return np.random.default_rng(1).standard_normal((n, *input_shape_of(ARCH, CFG))).astype(np.float32)


def _check_round_trip(uri, models, bundle_id):
    x = _inputs()
    with torch.no_grad():
        expected = np.stack([torch.softmax(m(torch.from_numpy(x)), dim=1).numpy() for m in models])
    bundle = load_bundle(uri, expected_preprocess=CFG)
    assert bundle.bundle_id == bundle_id
    assert bundle.architecture == ARCH
    assert bundle.input_kind == "spectrogram"
    assert bundle.preprocess_config == CFG
    assert bundle.class_names == CLASS_NAMES
    assert bundle.label_map == EVENT_TYPE_TO_CLASS
    assert bundle.hparams["channels"] == (8, 16)
    assert bundle.best_member == 1  # lowest validation loss; the NaN member never wins
    assert [m["seed"] for m in bundle.member_metrics] == [0, 1, 2]
    assert bundle.member_metrics[2]["validation_loss"] is None
    assert bundle.provenance["regions"] == ["alpine", "basin"]
    assert all(not m.training for m in bundle.members)

    # The members themselves: same weights, same batch -> bit-identical probabilities.
    np.testing.assert_array_equal(bundle.member_probabilities(x, fused=False), expected)
    # The fused network (batch norm folded) and smaller batches: equal up to float32 rounding.
    np.testing.assert_allclose(bundle.member_probabilities(x), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(bundle.member_probabilities(x, batch_size=3), expected, rtol=0, atol=1e-6)
    out = bundle.predict(torch.from_numpy(x))
    np.testing.assert_allclose(out["probabilities"], expected.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(out["best_member_probabilities"], expected[1], rtol=1e-6)
    np.testing.assert_allclose(out["spread"], ensemble_spread(expected), rtol=1e-5)
    assert out["member_votes"].sum(axis=1).tolist() == [3] * len(x)
    assert out["member_votes"].tolist() == [
        np.bincount(expected[:, i].argmax(axis=1), minlength=2).tolist() for i in range(len(x))
    ]
    assert out["predicted_label"].tolist() == [CLASS_NAMES[c] for c in out["predicted_class"]]


def test_bundle_round_trip_local(tmp_path):
    models = _members()
    uri = str(tmp_path / "bundle")
    bundle_id = _save(uri, models)
    manifest = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert manifest["format_version"] == 2
    assert manifest["members"][0]["file"] == "members/member-000.safetensors"
    assert manifest["preprocess_fingerprint"] == CFG.fingerprint()
    assert sorted(os.listdir(tmp_path / "bundle" / "members")) == [
        f"member-00{i}.safetensors" for i in range(3)
    ]
    _check_round_trip(uri, models, bundle_id)
    # The id is a content hash: same content -> same id, other weights -> other id.
    assert _save(str(tmp_path / "again"), models) == bundle_id
    assert _save(str(tmp_path / "other"), _members(3)[::-1]) != bundle_id


def test_bundle_rejects_wrong_input_shape(tmp_path):
    bundle_uri = str(tmp_path / "b")
    _save(bundle_uri, _members())
    bundle = load_bundle(bundle_uri)
    with pytest.raises(ValueError, match=r"expects spectrogram inputs of shape \(n, 3, 41, 19\)"):
        bundle.member_probabilities(np.zeros((2, 3, 41, 20), dtype=np.float32))


def test_existing_bundle_is_not_overwritten_silently(tmp_path):
    uri = str(tmp_path / "b")
    _save(uri, _members())
    with pytest.raises(BundleError, match="already exists"):
        _save(uri, _members())
    new_id = _save(uri, _members(3)[::-1], overwrite=True)
    assert load_bundle(uri).bundle_id == new_id


def test_missing_bundle_json(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"empty: no bundle.json"):
        load_bundle(str(tmp_path / "empty"))


def test_missing_member_file(tmp_path):
    uri = str(tmp_path / "b")
    _save(uri, _members())
    os.remove(tmp_path / "b" / "members" / "member-001.safetensors")
    with pytest.raises(BundleError, match=r"b: member 1 file members/member-001.safetensors is missing"):
        load_bundle(uri)


def test_corrupted_member_file(tmp_path):
    uri = str(tmp_path / "b")
    _save(uri, _members())
    path = tmp_path / "b" / "members" / "member-002.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(BundleError, match=r"member 2 .* is corrupted"):
        load_bundle(uri)
    # Without the recorded checksum the safetensors parser still refuses the truncated file.
    manifest = json.loads((tmp_path / "b" / "bundle.json").read_text())
    del manifest["members"][2]["sha256"]
    (tmp_path / "b" / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"member 2 .* not readable safetensors"):
        load_bundle(uri)


def test_preprocess_mismatch_names_the_differing_fields(tmp_path):
    uri = str(tmp_path / "b")
    _save(uri, _members(1), metrics=METRICS[:1])
    expected = PreprocessConfig(window_length_s=20.0, freqmin_hz=1.0)
    with pytest.raises(BundleError, match=r"freqmin_hz: bundle 0.5 != expected 1.0") as info:
        load_bundle(uri, expected_preprocess=expected)
    assert "window_length_s" not in str(info.value)


def test_raw_data_settings_do_not_make_a_bundle_incompatible(tmp_path):
    # Channels, pick source and response removal say how raw data is read, not what the
    # model sees: a bundle trained on catalog picks classifies predicted-pick data.
    uri = str(tmp_path / "b")
    _save(uri, _members(1), metrics=METRICS[:1])
    data = PreprocessConfig(**{**CFG.to_dict(), "pick_source": "predicted", "channel_priority": ("EH",),
                               "response_removal": "sensitivity"})
    assert load_bundle(uri, expected_preprocess=data).preprocess_config == CFG


def test_format_1_bundle_loads_without_presence_planes(tmp_path):
    # A bundle written before component sets: 3 input channels, no presence_mask
    # hyper-parameter, a preprocessing config without the raw-data fields.
    models = [build_model(ARCH, input_shape_of(ARCH, CFG), **HPARAMS, presence_mask=False).eval() for _ in range(2)]
    uri = str(tmp_path / "b")
    _save(uri, models, metrics=METRICS[:2], hparams={**HPARAMS, "presence_mask": False})
    path = tmp_path / "b" / "bundle.json"
    manifest = json.loads(path.read_text())
    old_fields = ("window_reference", "window_start_s", "window_length_s", "padding_s", "taper_fraction", "freqmin_hz",
                  "freqmax_hz", "filter_corners", "target_rate_hz", "stft_window_samples", "stft_hop_samples",
                  "clip_counts", "clip_fraction", "components")
    manifest["preprocess_config"] = {k: manifest["preprocess_config"][k] for k in old_fields}
    from raydisc.config import fingerprint_of

    manifest["preprocess_fingerprint"] = fingerprint_of(manifest["preprocess_config"])
    del manifest["hparams"]["presence_mask"]
    manifest["format_version"] = 1
    path.write_text(json.dumps(manifest))
    bundle = load_bundle(uri)
    assert bundle.hparams["presence_mask"] is False
    assert bundle.preprocess_config.response_removal == "sensitivity"
    x = _inputs(3)
    with torch.no_grad():
        expected = np.stack([torch.softmax(m(torch.from_numpy(x)), dim=1).numpy() for m in models])
    np.testing.assert_allclose(bundle.member_probabilities(x), expected, atol=1e-6)


def _edit_manifest(tmp_path, **changes):
    path = tmp_path / "b" / "bundle.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_unsupported_format_version(tmp_path):
    _save(str(tmp_path / "b"), _members(1), metrics=METRICS[:1])
    _edit_manifest(tmp_path, format_version=99)
    with pytest.raises(BundleError, match="unsupported format_version 99"):
        load_bundle(str(tmp_path / "b"))


def test_unknown_architecture(tmp_path):
    _save(str(tmp_path / "b"), _members(1), metrics=METRICS[:1])
    _edit_manifest(tmp_path, architecture="transformer")
    with pytest.raises(BundleError, match=r"unknown architecture 'transformer'.*spectrogram_cnn"):
        load_bundle(str(tmp_path / "b"))


def test_state_dict_not_matching_architecture(tmp_path):
    _save(str(tmp_path / "b"), _members(1), metrics=METRICS[:1])
    _edit_manifest(tmp_path, hparams={**HPARAMS, "channels": [8, 32]})
    with pytest.raises(BundleError, match=r"member 0 .* state dict does not match architecture 'spectrogram_cnn'"):
        load_bundle(str(tmp_path / "b"))
    # save_bundle checks before writing anything.
    with pytest.raises(BundleError, match="does not match architecture"):
        _save(str(tmp_path / "c"), _members(1), metrics=METRICS[:1], hparams={})
    assert not (tmp_path / "c").exists()


def test_wrapped_state_dict_gets_a_hint(tmp_path):
    wrapped = torch.nn.DataParallel(_members(1)[0])
    with pytest.raises(BundleError, match="module.state_dict"):
        save_bundle(str(tmp_path / "b"), architecture=ARCH, hparams=HPARAMS, input_shape=input_shape_of(ARCH, CFG),
                    preprocess_config=CFG, member_state_dicts=[wrapped.state_dict()], member_metrics=METRICS[:1])


def test_save_validates_metrics_and_shape(tmp_path):
    with pytest.raises(BundleError, match=r"member 0 metrics lack \['validation_accuracy'\]"):
        _save(str(tmp_path / "b"), _members(1), metrics=[{"seed": 0, "validation_loss": 0.1}])
    with pytest.raises(BundleError, match="cannot be stored in bundle.json"):
        _save(str(tmp_path / "b"), _members(1), metrics=[{**METRICS[0], "history": object()}])
    # Scalar tensors and numpy scalars (what training loops produce) are stored as numbers.
    _save(str(tmp_path / "ok"), _members(1),
          metrics=[{**METRICS[0], "validation_loss": torch.tensor(0.25), "validation_accuracy": np.float32(0.5)}])
    assert load_bundle(str(tmp_path / "ok")).member_metrics[0]["validation_loss"] == 0.25
    with pytest.raises(BundleError, match="does not match the spectrogram shape"):
        save_bundle(str(tmp_path / "b"), architecture=ARCH, hparams=HPARAMS, input_shape=(3, 41, 89),
                    preprocess_config=CFG, member_state_dicts=[m.state_dict() for m in _members(1)],
                    member_metrics=METRICS[:1])


def test_best_member_criterion(tmp_path):
    metrics = [{**METRICS[0], "validation_accuracy": 0.9}, METRICS[1], METRICS[2]]
    _save(str(tmp_path / "acc"), _members(), metrics=metrics, select_by="validation_accuracy", higher_is_better=True)
    bundle = load_bundle(str(tmp_path / "acc"))
    assert bundle.best_member == 0
    assert bundle.manifest["best_member_criterion"] == {"metric": "validation_accuracy", "higher_is_better": True}
    all_nan = [{**m, "validation_loss": float("nan")} for m in METRICS]
    with pytest.raises(BundleError, match="cannot choose the best member by 'validation_loss'"):
        _save(str(tmp_path / "nan"), _members(), metrics=all_nan)
    assert not (tmp_path / "nan").exists()


# ----------------------------------------------------------------- S3 (moto server on loopback)


def test_bundle_round_trip_s3(s3_bucket):
    models = _members()
    uri = f"{s3_bucket}/bundles/alpine"
    bundle_id = _save(uri, models)
    assert storage.listdir(storage.join(uri, "members")) == [f"member-00{i}.safetensors" for i in range(3)]
    _check_round_trip(uri, models, bundle_id)


def test_bundle_errors_s3(s3_bucket):
    with pytest.raises(BundleError, match=rf"{s3_bucket}/nothing: no bundle.json"):
        load_bundle(f"{s3_bucket}/nothing")
    uri = f"{s3_bucket}/bundles/b"
    _save(uri, _members(1), metrics=METRICS[:1])
    fs, path = storage.filesystem(storage.join(uri, "members/member-000.safetensors"))
    fs.rm(path)
    with pytest.raises(BundleError, match="member 0 file members/member-000.safetensors is missing"):
        load_bundle(uri)
