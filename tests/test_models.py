"""CNN architectures and the model registry."""
from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from raydisc.config import PreprocessConfig
from raydisc.models import (
    MODELS,
    build_model,
    count_parameters,
    input_kind_of,
    input_shape_of,
    resolve_hparams,
)

ARCHITECTURES = sorted(MODELS)

CONFIGS = {
    "default-90s": PreprocessConfig(),
    "30s": PreprocessConfig(window_length_s=30.0),
    # 2 s is one STFT frame: every pooling stage must cope with an extent of 1.
    "2s-one-frame": PreprocessConfig(window_length_s=2.0),
    "long-stft": PreprocessConfig(window_length_s=120.0, stft_window_samples=128, stft_hop_samples=64),
}


def test_registry_names_and_input_kinds():
    assert ARCHITECTURES == ["spectrogram_cnn", "waveform_cnn"]
    assert input_kind_of("spectrogram_cnn") == "spectrogram"
    assert input_kind_of("waveform_cnn") == "waveform"
    cfg = PreprocessConfig()
    assert input_shape_of("spectrogram_cnn", cfg) == (3, 41, 89)
    assert input_shape_of("waveform_cnn", cfg) == (3, 3600)


@pytest.mark.parametrize("name", ARCHITECTURES)
@pytest.mark.parametrize("cfg_name", sorted(CONFIGS))
def test_forward_output_shape(name, cfg_name):
    shape = input_shape_of(name, CONFIGS[cfg_name])
    model = build_model(name, shape, n_classes=2).eval()
    with torch.no_grad():
        out = model(torch.randn(5, *shape))
    assert out.shape == (5, 2)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_n_classes_and_hparams_are_honoured(name):
    shape = input_shape_of(name, PreprocessConfig())
    model = build_model(name, shape, n_classes=3, channels=[8, 8], dropout=0.0, dense_units=16)
    assert model(torch.randn(2, *shape)).shape == (2, 3)
    assert count_parameters(model) < count_parameters(build_model(name, shape))
    # Lists (as read back from JSON) are accepted and normalised to tuples.
    assert resolve_hparams(name, channels=[8, 8])["channels"] == (8, 8)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_docstring_states_the_real_parameter_count(name):
    cls = MODELS[name]
    match = re.search(r"Trainable parameters with default hyper-parameters and 2 classes: ([\d,]+)\.", cls.__doc__)
    assert match, f"{cls.__name__} docstring does not state its parameter count"
    stated = int(match.group(1).replace(",", ""))
    real = count_parameters(build_model(name, input_shape_of(name, PreprocessConfig())))
    assert stated == real
    assert 10_000 <= real <= 100_000


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_a_few_optimiser_steps_lower_the_loss(name):
    torch.manual_seed(0)
    shape = input_shape_of(name, PreprocessConfig(window_length_s=30.0))
    x = torch.randn(8, *shape)
    y = torch.tensor([0, 1] * 4)
    # Make the classes separable so that learning has something to find.
    x[y == 1] += 0.5
    model = build_model(name, shape)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_unknown_model_name_names_the_known_models():
    with pytest.raises(ValueError, match=r"unknown model 'resnet'.*spectrogram_cnn.*waveform_cnn"):
        build_model("resnet", (3, 41, 89))
    with pytest.raises(ValueError, match="unknown model"):
        input_kind_of("resnet")


def test_unknown_hyper_parameter_is_rejected():
    with pytest.raises(ValueError, match=r"no hyper-parameter\(s\) \['width'\]"):
        build_model("waveform_cnn", (3, 3600), width=3)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_wrong_input_rank_or_channels_is_rejected(name):
    shape = input_shape_of(name, PreprocessConfig())
    model = build_model(name, shape)
    with pytest.raises(ValueError, match="expects"):
        model(torch.randn(2, 2, *shape[1:]))
    with pytest.raises(ValueError, match="expects"):
        build_model(name, shape[1:])


def test_default_hparams_are_the_constructor_defaults():
    # default_hparams is derived from the signature; a hyper-parameter missing there
    # would silently drop out of bundles.
    assert set(MODELS["spectrogram_cnn"].default_hparams()) == {
        "channels", "kernel_size", "pooled_shape", "dense_units", "dropout", "presence_mask"}
    assert set(MODELS["waveform_cnn"].default_hparams()) == {
        "stem_channels", "stem_kernel_size", "channels", "kernel_size", "dense_units", "dropout", "presence_mask"}


@pytest.mark.parametrize("name", ["spectrogram_cnn", "waveform_cnn"])
def test_presence_mask_tells_vertical_only_from_three_components(name):
    # The same vertical, once with horizontals and once without: the presence planes
    # make the first layer see the difference, and a model without them sees none
    # where the horizontals are zero.
    shape = {"spectrogram_cnn": (3, 41, 89), "waveform_cnn": (3, 3600)}[name]
    torch.manual_seed(0)
    x = torch.randn(2, *shape)
    x[1, 1:] = 0
    model = build_model(name, shape).eval()
    assert model.presence_mask
    first = next(m for m in model.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d)))
    assert first.in_channels == 6
    from raydisc.models._common import with_presence_mask

    planes = with_presence_mask(x)[:, 3:].flatten(2).amax(dim=2)
    assert planes.tolist() == [[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]
    plain = build_model(name, shape, presence_mask=False)
    assert next(m for m in plain.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))).in_channels == 3
