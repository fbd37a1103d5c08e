"""Which layers stay fixed while a pretrained model is fine-tuned.

Both architectures are a convolutional *feature extractor* followed by the dense *head*
of :func:`raydisc.models._common.classifier_head` (flatten, dense + ReLU, dropout, output
layer). Fine-tuning strategies, from most to least adapted:

``"none"``
    every layer trains (the pretrained weights are only the starting point);
``"feature_extractor"``
    the convolutional feature extractor is frozen, the whole dense head trains;
``"all_but_head"``
    everything but the output layer (the last linear layer of the head) is frozen: the
    fine-tuning fits a logistic regression on the pretrained features.

Frozen means: ``requires_grad=False`` on the parameters (the optimizer never sees them)
*and* the modules kept in eval mode, so batch-normalisation running statistics are not
updated by the target region's batches either. A frozen layer's state is bit-identical
before and after fine-tuning.

Fine-tuning on a label scheme with other classes than the pretrained bundle's starts from
a fresh output layer (:func:`replace_output_layer`); the strategies apply as above.
"""
from __future__ import annotations

from torch import nn

FREEZE_STRATEGIES = ("none", "feature_extractor", "all_but_head")


def frozen_modules(model: nn.Module, strategy: str) -> list[nn.Module]:
    """The submodules of ``model`` that ``strategy`` freezes (see the module docstring).

    ``model`` must declare ``feature_modules`` (names of its feature-extractor
    submodules) and have a ``head`` ending in the output layer, as both architectures do.
    """
    if strategy not in FREEZE_STRATEGIES:
        raise ValueError(f"unknown freeze strategy {strategy!r}; expected one of {FREEZE_STRATEGIES}")
    features = [getattr(model, name) for name in model.feature_modules]
    if strategy == "none":
        return []
    if strategy == "feature_extractor":
        return features
    return features + list(model.head)[:-1]


def freeze(model: nn.Module, strategy: str) -> list[nn.Module]:
    """Freeze the layers ``strategy`` names (parameters and batch-norm statistics) and
    return them; call :func:`keep_frozen_in_eval` after every ``model.train()``."""
    modules = frozen_modules(model, strategy)
    for module in modules:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
    keep_frozen_in_eval(modules)
    return modules


def replace_output_layer(model: nn.Module, n_classes: int) -> nn.Linear:
    """Replace the output layer (the last linear layer of ``model.head``) with a freshly
    initialised one of ``n_classes`` logits, for fine-tuning on another label scheme
    (its classes are not the pretrained ones, so their weights cannot be kept). Every
    other layer keeps its weights. Returns the new layer (on the old one's device)."""
    old = model.head[-1]
    if not isinstance(old, nn.Linear):
        raise ValueError(f"{type(model).__name__}.head ends in {type(old).__name__}, not the output nn.Linear")
    new = nn.Linear(old.in_features, n_classes).to(old.weight.device, old.weight.dtype)
    model.head[-1] = new
    return new


def keep_frozen_in_eval(modules: list[nn.Module]) -> None:
    """Put frozen modules back in eval mode (``model.train()`` switches every submodule
    to training mode, which would let batch norm update its running statistics)."""
    for module in modules:
        module.eval()


__all__ = ["FREEZE_STRATEGIES", "freeze", "frozen_modules", "keep_frozen_in_eval"]
