"""Batch normalisation folded into the convolution before it, for inference.

In eval mode a batch norm is a per-channel affine map,
``y = (z - mean) * gamma / sqrt(var + eps) + beta``; scaling the convolution's output
channels by ``gamma / sqrt(var + eps)`` and adding the rest as a bias makes the batch
norm disappear. :mod:`raydisc.ensemble.fused_networks` builds its fused layers from
:func:`fold_batchnorm`; :class:`~raydisc.ensemble.fused_networks.MemberLoop` runs
:func:`fold_member` copies.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

#: torch's batch norms (the public classes behind its private ``_BatchNorm`` base).
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
               nn.LazyBatchNorm1d, nn.LazyBatchNorm2d, nn.LazyBatchNorm3d)
#: torch's non-transposed convolutions (the lazy ones subclass these).
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class NotFusableError(ValueError):
    """The members cannot be fused into one grouped network (unknown architecture or
    unexpected layer configuration); :func:`fuse_ensemble` then loops over them."""



def fold_batchnorm(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.Module
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of one convolution equal to a convolution followed by eval-mode ``bn``.

    ``weight``: ``(C_out, C_in / groups, *kernel)``; ``bias``: ``(C_out,)`` or None;
    ``bn`` normalises the ``C_out`` channels with its running statistics. Returns the
    folded ``(weight, bias)`` in ``weight``'s dtype and memory layout, computed in
    float64 so that the only difference from the unfolded pair is the final rounding.
    """
    if bn.running_mean is None or bn.running_var is None:
        # Without running statistics batch norm normalises with the batch's own, even in eval.
        raise NotFusableError("batch norm without running statistics (track_running_stats=False) cannot be folded")
    if bn.num_features != weight.shape[0]:
        raise NotFusableError(f"batch norm over {bn.num_features} channels after a convolution with {weight.shape[0]}")
    var = bn.running_var.double()
    scale = torch.rsqrt(var + bn.eps)
    shift = -bn.running_mean.double() * scale
    if bn.affine:
        scale = scale * bn.weight.double()
        shift = shift * bn.weight.double() + bn.bias.double()
    if bias is not None:
        shift = shift + bias.double() * scale
    folded = weight.double() * scale.reshape(-1, *[1] * (weight.ndim - 1))
    # empty_like keeps the layout of the trained weight (channels-last after load_bundle).
    return torch.empty_like(weight).copy_(folded), shift.to(weight.dtype)


def fold_member(member: nn.Module) -> nn.Module:
    """An eval-mode copy of ``member`` with every batch norm that directly follows a
    convolution in an ``nn.Sequential`` folded into it (and replaced by ``nn.Identity``).

    Works on any module built of ``nn.Sequential`` containers; other batch norms are left
    as they are. ``member`` itself is not changed. The copy's parameters do not require
    gradients: it is for inference only.
    """
    if any(module.training for module in member.modules()):
        raise ValueError("batch norm can only be folded in eval mode (call member.eval() first)")
    folded = copy.deepcopy(member)
    for seq in folded.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        layers = list(seq)
        for i in range(len(layers) - 1):
            conv, bn = layers[i], layers[i + 1]
            if isinstance(conv, CONVOLUTIONS) and isinstance(bn, BATCH_NORMS):
                try:
                    weight, bias = fold_batchnorm(conv.weight.detach(), detached(conv.bias), bn)
                except NotFusableError:
                    continue
                conv.weight = nn.Parameter(weight, requires_grad=False)
                conv.bias = nn.Parameter(bias, requires_grad=False)
                seq[i + 1] = nn.Identity()
    return folded.requires_grad_(False).eval()


def detached(t: torch.Tensor | None) -> torch.Tensor | None:
    """``t`` detached from autograd; None stays None (a convolution without bias)."""
    return None if t is None else t.detach()



__all__ = ["BATCH_NORMS", "CONVOLUTIONS", "NotFusableError", "detached", "fold_batchnorm", "fold_member"]
