"""Inference-only fused ensembles: every member of a bundle run as one network.

:meth:`EnsembleBundle.member_probabilities <raydisc.ensemble.loaded_bundle.EnsembleBundle.member_probabilities>`
runs the network :func:`fuse_ensemble` builds from the bundle's members instead of the
members one by one. The fused network gives the members' logits up to float32
rounding (the tests check 1e-5 on probabilities; the differences seen are ~1e-7) and is
built from copies: the trained members are left untouched.

What is fused, and why (measured on one core of a 2-core AMD EPYC with AVX-512, 3
members, default hyper-parameters; per-recording times at the constants below):

* **Batch normalisation folded into the convolution before it.** In eval mode a batch
  norm is a per-channel affine map, ``y = (z - mean) * gamma / sqrt(var + eps) + beta``;
  scaling the convolution's output channels by ``gamma / sqrt(var + eps)`` and adding
  the rest as a bias makes the batch norm disappear (10-20 % of the time saved).
* **All members as one network.** The first convolution reads the shared input once
  and computes every member's output channels (member-major: channels
  ``[m * C, (m + 1) * C)`` belong to member ``m``); later convolutions are grouped
  (``groups=n_members``) so each member only sees its own channels. ReLU, pooling and
  the residual add are per channel and need no change; the dense heads run as batched
  matrix products, one matrix per member. Per convolution, the grouped oneDNN kernel
  is as fast as the members' separate ones at 8-32 recordings per batch (both near the
  core's peak FLOP rate), the wide first layer (3 input channels) is ~1.4 times faster,
  and at small batches one call instead of ``n_members`` saves most of the per-call
  overhead (1.3-2.3 times faster than BN-folded members one by one at 1-4 recordings).
  Above ~32 recordings the ``n_members`` times wider activations fall out of the caches
  and the grouped network gets slower than the loop: hence the small CPU batch sizes.
* **ReLU after max-pooling**, 2x2 pooling as two element-wise maxima of strided
  views: ReLU is monotonic, so ``relu(max(a, b)) == max(relu(a), relu(b))`` exactly,
  and the ReLU then touches a quarter of the values. PyTorch's CPU max-pooling also
  computes argmax indices (for backward) that inference throws away; the two maxima
  take 30-90 % of its time on these shapes.
* **1-D convolutions as 2-D ones over ``(b, C, 1, n)`` in channels-last layout**: the
  oneDNN kernels run that layout 20-35 % faster than ``conv1d`` on ``(b, C, n)``.

Batch-norm folding lives in :mod:`raydisc.ensemble.folding`, the networks in
:mod:`raydisc.ensemble.fused_networks` (their CPU batch sizes and timings there).
:func:`fuse_ensemble` recognises :class:`~raydisc.models.SpectrogramCNN` and
:class:`~raydisc.models.WaveformCNN`; for other modules (or unexpected layer
configurations) it returns :class:`MemberLoop`, BN-folded copies run one after another.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..models import SpectrogramCNN, WaveformCNN
from .folding import NotFusableError, fold_batchnorm, fold_member
from .fused_networks import FusedEnsemble, GroupedSpectrogramCNN, GroupedWaveformCNN, MemberLoop


#: Grouped implementations by member class, tried in :func:`fuse_ensemble`.
GROUPED_ARCHITECTURES: dict[type[nn.Module], type[FusedEnsemble]] = {
    SpectrogramCNN: GroupedSpectrogramCNN,
    WaveformCNN: GroupedWaveformCNN,
}


def fuse_ensemble(members: Sequence[nn.Module]) -> FusedEnsemble:
    """Inference-only network computing the logits of all ``members`` at once.

    ``members``: eval-mode modules of one architecture and hyper-parameters, on one
    device. Returns a :class:`FusedEnsemble` on that device, in eval mode, nothing in
    it requiring gradients: ``forward(x)``, ``x`` ``(b, *input_shape)`` -> logits
    ``(n_members, b, n_classes)``, equal to ``torch.stack([m(x) for m in members])`` up
    to float32 rounding. The grouped network of the architecture where there is one and
    the members fit it, else :class:`MemberLoop`. Built from copies of the weights:
    ``members`` are not changed, and later changes to them are not seen (fuse again).
    ``ValueError`` if a member is in training mode (folding needs the running statistics).
    """
    members = list(members)
    if not members:
        raise ValueError("an ensemble needs at least one member")
    if any(module.training for m in members for module in m.modules()):
        raise ValueError("members must be in eval mode to be fused (batch norm folds its running statistics)")
    # Normal tensors even when called under inference_mode, so the result can be used
    # both inside and outside it.
    with torch.inference_mode(False), torch.no_grad():
        grouped = GROUPED_ARCHITECTURES.get(type(members[0]))
        if grouped is not None:
            try:
                return grouped(members).eval()
            except NotFusableError:
                pass
        return MemberLoop(members).eval()


__all__ = [
    "FusedEnsemble",
    "GroupedSpectrogramCNN",
    "GroupedWaveformCNN",
    "MemberLoop",
    "NotFusableError",
    "fold_batchnorm",
    "fold_member",
    "fuse_ensemble",
]
