"""Fused ensembles (raydisc.ensemble.fused): same probabilities as the members run one by
one, members untouched, and the bundle's member_probabilities going through them."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from raydisc.config import PreprocessConfig
from raydisc.ensemble import fold_batchnorm, fuse_ensemble, load_bundle, save_bundle
from raydisc.ensemble.fused import GroupedSpectrogramCNN, GroupedWaveformCNN, MemberLoop
from raydisc.ensemble.fused_networks import _max_pool_2x2
from raydisc.models import build_model, freeze, input_shape_of

ATOL = 1e-5  # float32 rounding of a few layers; the differences seen are ~1e-7

SMALL = {
    "spectrogram_cnn": ((3, 41, 19), {"channels": [8, 16], "dense_units": 16, "pooled_shape": [3, 2]}),
    "waveform_cnn": ((3, 300), {"stem_channels": 8, "channels": [8, 12, 12], "dense_units": 8}),
}
DEFAULT_SHAPES = {"spectrogram_cnn": (3, 41, 89), "waveform_cnn": (3, 3600)}
GROUPED = {"spectrogram_cnn": GroupedSpectrogramCNN, "waveform_cnn": GroupedWaveformCNN}


def _randomise_batchnorm(model: nn.Module, gen: torch.Generator) -> None:
    """Running statistics and affine parameters far from the identity, so that a
    missing or wrong fold shows in the output."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                module.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=gen))
                module.weight.copy_(0.5 + torch.rand(n, generator=gen))
                module.bias.copy_(0.6 * torch.rand(n, generator=gen) - 0.3)


def _members(arch, shape, hparams, n=3):
    gen = torch.Generator().manual_seed(123)
    members = []
    for seed in range(n):
        torch.manual_seed(seed)
        model = build_model(arch, shape, **hparams)
        _randomise_batchnorm(model, gen)
        members.append(model.eval())
    return members


def _inputs(shape, n, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32))


def _reference(members, x):
    """Member by member, whole batch, the unfused modules: (M, n, n_classes)."""
    with torch.no_grad():
        return torch.stack([torch.softmax(m(x), dim=1) for m in members]).numpy()


def _fused_probs(fused, x, batch_size):
    with torch.inference_mode():
        parts = []
        for start in range(0, len(x), batch_size):
            batch = x[start : start + batch_size]
            if batch.ndim == 4:
                batch = batch.contiguous(memory_format=torch.channels_last)
            parts.append(torch.softmax(fused(batch), dim=2))
        return torch.cat(parts, dim=1).numpy()


def _snapshot(members):
    return [
        {
            "object": m,
            "training": [mod.training for mod in m.modules()],
            "requires_grad": [p.requires_grad for p in m.parameters()],
            "state": {k: v.clone() for k, v in m.state_dict().items()},
        }
        for m in members
    ]


def _assert_unchanged(members, snapshot):
    assert len(members) == len(snapshot)
    for m, before in zip(members, snapshot):
        assert m is before["object"]
        assert [mod.training for mod in m.modules()] == before["training"]
        assert [p.requires_grad for p in m.parameters()] == before["requires_grad"]
        state = m.state_dict()
        assert state.keys() == before["state"].keys()
        for key, value in before["state"].items():
            assert torch.equal(state[key], value), key


def _check_members_differ(reference):
    # Sanity of the test itself: members (and so a mix-up of their weights) must show.
    assert np.abs(reference[0] - reference[1]).max() > 1e-3
    assert np.abs(reference[1] - reference[2]).max() > 1e-3


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_fused_equals_members_small(arch):
    shape, hparams = SMALL[arch]
    members = _members(arch, shape, hparams)
    # One member with a frozen feature extractor: requires_grad must stay mixed as it was.
    freeze(members[1], "feature_extractor")
    members[1].eval()
    snapshot = _snapshot(members)
    x = _inputs(shape, 11)
    reference = _reference(members, x)
    _check_members_differ(reference)

    fused = fuse_ensemble(members)
    assert type(fused) is GROUPED[arch]
    assert fused.n_members == 3
    assert not any(t.requires_grad for t in [*fused.parameters(), *fused.buffers()])
    for batch_size in (1, 4, 11):  # 4 does not divide 11: a short last batch
        got = _fused_probs(fused, x, batch_size)
        assert got.shape == reference.shape
        np.testing.assert_allclose(got, reference, rtol=0, atol=ATOL)
    # The per-member fallback (BN-folded copies) too.
    np.testing.assert_allclose(_fused_probs(MemberLoop(members), x, 4), reference, rtol=0, atol=ATOL)
    _assert_unchanged(members, snapshot)


@pytest.mark.parametrize("arch", sorted(DEFAULT_SHAPES))
def test_fused_equals_members_default_hparams(arch):
    shape = DEFAULT_SHAPES[arch]
    members = _members(arch, shape, {})
    snapshot = _snapshot(members)
    x = _inputs(shape, 5)
    reference = _reference(members, x)
    _check_members_differ(reference)
    fused = fuse_ensemble(members)
    assert type(fused) is GROUPED[arch]
    for batch_size in (1, 3):
        np.testing.assert_allclose(_fused_probs(fused, x, batch_size), reference, rtol=0, atol=ATOL)
    _assert_unchanged(members, snapshot)


def test_fused_works_under_no_grad_and_in_grad_mode():
    shape, hparams = SMALL["waveform_cnn"]
    members = _members("waveform_cnn", shape, hparams)
    x = _inputs(shape, 3)
    reference = _reference(members, x)
    with torch.inference_mode():
        fused = fuse_ensemble(members)  # built under inference_mode, used outside it
    with torch.no_grad():
        got = torch.softmax(fused(x), dim=2).numpy()
    np.testing.assert_allclose(got, reference, rtol=0, atol=ATOL)
    logits = fused(x)  # grad mode: nothing requires gradients, so no graph either
    assert not logits.requires_grad


def test_unknown_architecture_falls_back_to_folded_members():
    def make(seed):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Conv1d(3, 4, 3, padding=1), nn.BatchNorm1d(4), nn.ReLU(),
                              nn.Flatten(), nn.Linear(4 * 10, 2))
        _randomise_batchnorm(model, torch.Generator().manual_seed(seed))
        return model.eval()

    members = [make(s) for s in range(3)]
    x = _inputs((3, 10), 6)
    fused = fuse_ensemble(members)
    assert type(fused) is MemberLoop
    assert not any(isinstance(m, nn.BatchNorm1d) for m in fused.modules())
    np.testing.assert_allclose(_fused_probs(fused, x, 4), _reference(members, x), rtol=0, atol=ATOL)


def test_members_that_differ_fall_back_to_folded_members():
    shape, hparams = SMALL["spectrogram_cnn"]
    members = _members("spectrogram_cnn", shape, hparams, n=2)
    members.append(_members("spectrogram_cnn", shape, {**hparams, "channels": [8, 8]}, n=1)[0])
    x = _inputs(shape, 3)
    fused = fuse_ensemble(members)
    assert type(fused) is MemberLoop
    np.testing.assert_allclose(_fused_probs(fused, x, 3), _reference(members, x), rtol=0, atol=ATOL)


def test_training_mode_members_are_refused():
    shape, hparams = SMALL["waveform_cnn"]
    members = _members("waveform_cnn", shape, hparams)
    members[2].train()
    with pytest.raises(ValueError, match="eval mode"):
        fuse_ensemble(members)


def test_fold_batchnorm_matches_conv_then_batchnorm():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=True)
    bn = nn.BatchNorm2d(5)
    _randomise_batchnorm(bn, torch.Generator().manual_seed(1))
    bn.eval()
    weight, bias = fold_batchnorm(conv.weight.detach(), conv.bias.detach(), bn)
    x = torch.randn(2, 3, 7, 9)
    with torch.no_grad():
        expected = bn(conv(x))
        got = torch.nn.functional.conv2d(x, weight, bias, padding=1)
    assert torch.allclose(got, expected, rtol=0, atol=1e-5)
    assert not torch.allclose(got, conv(x), atol=1e-2)  # the batch norm did something


@pytest.mark.parametrize(("hw", "ceil_mode"), [((41, 89), True), ((41, 89), False), ((6, 8), True), ((1, 3), True)])
def test_max_pool_2x2_equals_max_pool2d(hw, ceil_mode):
    x = torch.randn(2, 5, *hw).contiguous(memory_format=torch.channels_last)
    expected = torch.nn.functional.max_pool2d(x, 2, ceil_mode=ceil_mode)
    assert torch.equal(_max_pool_2x2(x, ceil_mode), expected)  # max is exact


# ----------------------------------------------------------------- through a bundle

CFG = PreprocessConfig(window_length_s=20.0)  # small inputs keep the tests fast
METRICS = [{"seed": s, "validation_loss": 0.5 - 0.1 * s, "validation_accuracy": 0.8} for s in range(3)]


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_bundle_member_probabilities_are_fused(tmp_path, arch):
    shape = input_shape_of(arch, CFG)
    hparams = SMALL[arch][1]
    members = _members(arch, shape, hparams)
    uri = str(tmp_path / "bundle")
    save_bundle(uri, architecture=arch, hparams=hparams, input_shape=shape, preprocess_config=CFG,
                member_state_dicts=[m.state_dict() for m in members], member_metrics=METRICS)
    bundle = load_bundle(uri, expected_preprocess=CFG)
    snapshot = _snapshot(bundle.members)
    x = _inputs(shape, 7).numpy()
    reference = _reference(members, torch.from_numpy(x))  # the original modules, before saving
    _check_members_differ(reference)

    for batch_size in (1, 3, 256):
        got = bundle.member_probabilities(x, batch_size=batch_size)
        assert got.dtype == np.float32 and got.shape == (3, 7, 2)
        np.testing.assert_allclose(got, reference, rtol=0, atol=ATOL)
    assert type(bundle.fused_members()) is GROUPED[arch]
    assert bundle.fused_members() is bundle.fused_members()  # built once
    with torch.no_grad():
        np.testing.assert_allclose(bundle.member_probabilities(x), reference, rtol=0, atol=ATOL)
    with torch.inference_mode():
        np.testing.assert_allclose(bundle.member_probabilities(x), reference, rtol=0, atol=ATOL)
    # The unfused path still exists and agrees.
    np.testing.assert_allclose(bundle.member_probabilities(x, fused=False), reference, rtol=0, atol=1e-6)
    out = bundle.predict(x)
    np.testing.assert_allclose(out["probabilities"], reference.mean(axis=0), rtol=0, atol=ATOL)
    _assert_unchanged(bundle.members, snapshot)

    # A bundle of a subset of the members (as serving builds one) fuses its own members.
    subset = dataclasses.replace(bundle, members=[bundle.members[2], bundle.members[0]])
    assert subset.fused_members().n_members == 2
    np.testing.assert_allclose(subset.member_probabilities(x, batch_size=2), reference[[2, 0]], rtol=0, atol=ATOL)
    assert bundle.fused_members().n_members == 3

    # New weights in place are picked up after rebuild=True.
    with torch.no_grad():
        for p in bundle.members[0].parameters():
            p.mul_(-1.0)
    rebuilt = bundle.fused_members(rebuild=True)
    x = torch.from_numpy(x)
    np.testing.assert_allclose(_fused_probs(rebuilt, x, 7)[0], _reference(bundle.members[:1], x)[0], rtol=0, atol=ATOL)
