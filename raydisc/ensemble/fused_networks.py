"""The fused networks: every member of an ensemble as one inference-only module.

:class:`GroupedSpectrogramCNN` and :class:`GroupedWaveformCNN` run all members of their
architecture as one grouped network (why and how fast: :mod:`raydisc.ensemble.fused`);
:class:`MemberLoop` runs BN-folded copies one after another for anything else. All give
logits ``(n_members, b, n_classes)`` for inputs ``(b, *input_shape)``.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# The residual block's forward (act(body(x) + skip(x))) is what GroupedWaveformCNN redoes.
from ..models import ResidualBlock1d, SpectrogramCNN, WaveformCNN, with_presence_mask
from .folding import NotFusableError, detached, fold_batchnorm, fold_member


# Recordings per forward pass on CPU: the fused networks' ms per recording through
# EnsembleBundle.member_probabilities (3 members, default hyper-parameters, the machine
# of the module docstring). For comparison, the members one by one took 0.54-0.60 ms
# (spectrogram) and 0.82-0.97 ms (waveform) at batches of 8-64 on 1 thread, 0.28-0.33
# and 0.44-0.72 ms on 2 threads. Larger batches push the (n_members times wider)
# activations out of the caches.
#
#   spectrogram_cnn (3, 41, 89)   batch    4      8      16     32     64
#       1 thread                        0.39   0.38   0.42   0.44   0.78
#       2 threads                       0.22   0.19   0.19   0.23   0.55
#   waveform_cnn (3, 3600)        batch    4      8      16     32     64
#       1 thread                        0.59   0.53   0.51   0.53   0.61
#       2 threads                       0.38   0.32   0.30   0.28   0.29
#: CPU batch size of :class:`GroupedSpectrogramCNN`.
SPECTROGRAM_CPU_BATCH_SIZE = 8
#: CPU batch size of :class:`GroupedWaveformCNN`.
WAVEFORM_CPU_BATCH_SIZE = 16
#: CPU batch size of :class:`MemberLoop` (BN-folded members one by one were fastest at
#: 16-64 recordings for both architectures, within 5 %).
MEMBER_LOOP_CPU_BATCH_SIZE = 16


class FusedEnsemble(nn.Module):
    """An inference-only stand-in for all members of an ensemble.

    ``forward(x)``: ``x`` ``(b, *input_shape)`` float32, as one member reads it ->
    logits ``(n_members, b, n_classes)``, member ``m``'s logits in row ``m``.
    ``cpu_batch_size``: recordings per forward pass that run fastest on CPU.
    """

    n_members: int
    cpu_batch_size: int


class MemberLoop(FusedEnsemble):
    """Fallback: BN-folded copies of the members (:func:`fold_member`), one after another."""

    cpu_batch_size = MEMBER_LOOP_CPU_BATCH_SIZE

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList([fold_member(m) for m in members])
        self.n_members = len(self.members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members])


def _conv_key(conv: nn.Module) -> tuple:
    """What must agree between members for their convolutions to be run as one."""
    return (type(conv), conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
            conv.dilation, conv.groups, conv.padding_mode, conv.bias is None)


class _FoldedConv(nn.Module):
    """One layer of every member as one 2-D convolution, batch norm folded in.

    ``shared_input``: the members read the same input channels (first layer): their
    output channels are concatenated, ``(b, C_in, h, w) -> (b, M * C_out, h', w')``.
    Otherwise member ``m`` reads channels ``[m * C_in, (m + 1) * C_in)`` and writes
    ``[m * C_out, (m + 1) * C_out)``: a grouped convolution with ``groups=M``. 1-D
    members' convolutions become 2-D ones over ``(b, C, 1, n)`` (kernel ``(1, k)``).
    Weights are buffers, not parameters: nothing here trains.
    """

    def __init__(self, convs: Sequence[nn.Module], bns: Sequence[nn.Module], shared_input: bool) -> None:
        super().__init__()
        first = convs[0]
        if any(_conv_key(c) != _conv_key(first) for c in convs) or first.groups != 1 or first.padding_mode != "zeros" \
                or isinstance(first.padding, str) or not isinstance(first, (nn.Conv1d, nn.Conv2d)):
            raise NotFusableError(
                f"convolutions {_conv_key(first)} differ between members or are not plain convolutions"
            )
        folded = [fold_batchnorm(c.weight.detach(), detached(c.bias), bn) for c, bn in zip(convs, bns)]
        weight = torch.cat([w for w, _ in folded])
        one_d = isinstance(first, nn.Conv1d)
        if one_d:
            weight = weight.unsqueeze(2)  # (C_out, C_in, k) -> (C_out, C_in, 1, k)
        self.register_buffer("weight", weight.contiguous(memory_format=torch.channels_last), persistent=False)
        self.register_buffer("bias", torch.cat([b for _, b in folded]), persistent=False)
        # A 1-D kernel is a 2-D one of height 1: no stride, padding or dilation along it.
        self.stride = (1, *first.stride) if one_d else tuple(first.stride)
        self.padding = (0, *first.padding) if one_d else tuple(first.padding)
        self.dilation = (1, *first.dilation) if one_d else tuple(first.dilation)
        self.groups = 1 if shared_input else len(convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class _GroupedHead(nn.Module):
    """The members' dense heads (``classifier_head``: flatten, then linear, ReLU and
    dropout layers) as batched matrix products: features ``(b, M, F)``, member ``m``'s
    flattened features in ``[:, m]`` -> logits ``(M, b, n_classes)``. Dropout is the
    identity in eval mode and dropped."""

    def __init__(self, heads: Sequence[nn.Module]) -> None:
        super().__init__()
        layer_lists = [list(h) if isinstance(h, nn.Sequential) else None for h in heads]
        if any(layers is None for layers in layer_lists):
            raise NotFusableError("heads are not nn.Sequential")
        kinds = [[type(layer) for layer in layers] for layers in layer_lists]
        first = layer_lists[0]
        if any(k != kinds[0] for k in kinds) or not first or type(first[0]) is not nn.Flatten \
                or (first[0].start_dim, first[0].end_dim) != (1, -1) \
                or any(type(layer) not in (nn.Linear, nn.ReLU, nn.Dropout) for layer in first[1:]):
            raise NotFusableError(f"heads {kinds[0]} differ between members or are not flatten + linear/ReLU/dropout")
        #: ("linear", index into the buffers) or ("relu", None), in order.
        self.ops: list[tuple[str, int | None]] = []
        n_linear = 0
        for i, layer in enumerate(first[1:], start=1):
            if isinstance(layer, nn.Linear):
                linears = [layers[i] for layers in layer_lists]
                if any(lin.weight.shape != layer.weight.shape or (lin.bias is None) != (layer.bias is None)
                       for lin in linears):
                    raise NotFusableError("dense layers differ between members")
                # (M, in, out), so that baddbmm computes x @ W^T + b for every member at once.
                weight = torch.stack([lin.weight.detach().t() for lin in linears]).contiguous()
                bias = (torch.zeros(len(linears), 1, weight.shape[2], dtype=weight.dtype, device=weight.device)
                        if layer.bias is None else torch.stack([lin.bias.detach() for lin in linears]).unsqueeze(1))
                self.register_buffer(f"weight{n_linear}", weight, persistent=False)
                self.register_buffer(f"bias{n_linear}", bias.contiguous(), persistent=False)
                self.ops.append(("linear", n_linear))
                n_linear += 1
            elif isinstance(layer, nn.ReLU):
                self.ops.append(("relu", None))
        if n_linear == 0:
            raise NotFusableError("heads have no dense layer")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(0, 1)  # (b, M, F) -> (M, b, F)
        for op, i in self.ops:
            if op == "linear":
                x = torch.baddbmm(getattr(self, f"bias{i}"), x, getattr(self, f"weight{i}"))
            else:
                x = torch.relu(x)
        return x


def _max_pool_relu(x: torch.Tensor, pool: nn.MaxPool2d) -> torch.Tensor:
    """``relu(pool(x))``, which equals ``pool(relu(x))`` (ReLU is monotonic) at a quarter
    of the ReLU's work. ``x``: ``(b, C, h, w)``."""
    kernel, stride = _pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size)
    if x.device.type == "cpu" and kernel == stride == (2, 2) and _pair(pool.padding) == (0, 0) \
            and _pair(pool.dilation) == (1, 1):
        return _max_pool_2x2(x, pool.ceil_mode).relu_()
    return F.max_pool2d(x, kernel, stride, pool.padding, pool.dilation, pool.ceil_mode).relu_()


def _max_pool_2x2(x: torch.Tensor, ceil_mode: bool) -> torch.Tensor:
    """2x2 max-pooling with stride 2 as two element-wise maxima of strided views
    (without the argmax indices PyTorch's CPU kernel also computes), written into
    channels-last outputs. With ``ceil_mode`` an odd last row (column) is a window of one row and
    is copied as it is, as ``max_pool2d`` does; without, it is dropped.
    ``(b, C, h, w) -> (b, C, ceil or floor(h / 2), ceil or floor(w / 2))``."""
    b, c, h, w = x.shape
    h2, w2 = h // 2, w // 2
    h_out, w_out = ((h + 1) // 2, (w + 1) // 2) if ceil_mode else (h2, w2)
    rows = torch.empty((b, c, h_out, w), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    torch.maximum(x[:, :, 0 : 2 * h2 : 2], x[:, :, 1 : 2 * h2 : 2], out=rows[:, :, :h2])
    if h_out > h2:
        rows[:, :, h2:] = x[:, :, h - 1 :]
    out = torch.empty((b, c, h_out, w_out), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    torch.maximum(rows[:, :, :, 0 : 2 * w2 : 2], rows[:, :, :, 1 : 2 * w2 : 2], out=out[:, :, :, :w2])
    if w_out > w2:
        out[:, :, :, w2:] = rows[:, :, :, w - 1 :]
    return out


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _same(values: Sequence[object], what: str) -> None:
    if any(v != values[0] for v in values):
        raise NotFusableError(f"{what} differ between members: {values}")


# --------------------------------------------------------------------------- architectures


def _presence_mask(members: Sequence[nn.Module]) -> bool:
    """Whether the members read presence planes (:func:`~raydisc.models.with_presence_mask`)."""
    flags = [bool(getattr(m, "presence_mask", False)) for m in members]
    _same(flags, "presence masks")
    return flags[0]


class GroupedSpectrogramCNN(FusedEnsemble):
    """All members of a :class:`~raydisc.models.SpectrogramCNN` ensemble as one network.

    Per block: one (first block: shared-input, later: grouped) convolution with the
    batch norm folded in, then max-pooling and ReLU; adaptive average pooling; grouped
    dense head. Channels-last throughout (the layout the CPU kernels run fastest).
    ``forward``: ``(b, C, n_freq, n_time)`` -> logits ``(M, b, n_classes)``.
    """

    cpu_batch_size = SPECTROGRAM_CPU_BATCH_SIZE

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if any(type(m) is not SpectrogramCNN for m in members):
            raise NotFusableError("not all members are SpectrogramCNN")
        features = [list(m.features) for m in members]
        _same([[type(layer) for layer in f] for f in features], "feature layers")
        kinds = [type(layer) for layer in features[0]]
        block = [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]
        if len(kinds) % 4 or any(kinds[i : i + 4] != block for i in range(0, len(kinds), 4)):
            raise NotFusableError(f"feature layers {kinds} are not conv-batchnorm-ReLU-max-pool blocks")
        convs, pools = [], []
        for i in range(0, len(kinds), 4):
            convs.append(_FoldedConv([f[i] for f in features], [f[i + 1] for f in features], shared_input=i == 0))
            pool_settings = [(p.kernel_size, p.stride, p.padding, p.dilation, p.ceil_mode, p.return_indices)
                             for p in (f[i + 3] for f in features)]
            _same(pool_settings, "max-pool settings")
            if pool_settings[0][-1]:
                raise NotFusableError("max-pooling returns indices")
            pools.append(copy.deepcopy(features[0][i + 3]))
        self.convs = nn.ModuleList(convs)
        self.pools = nn.ModuleList(pools)
        _same([(type(m.pool), getattr(m.pool, "output_size", None)) for m in members], "pooling layers")
        if type(members[0].pool) is not nn.AdaptiveAvgPool2d:
            raise NotFusableError("the pooling layer is not AdaptiveAvgPool2d")
        self.pooled_shape = members[0].pool.output_size
        self.head = _GroupedHead([m.head for m in members])
        self.n_members = len(members)
        self.presence_mask = _presence_mask(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.presence_mask:
            x = with_presence_mask(x).contiguous(memory_format=torch.channels_last)
        for conv, pool in zip(self.convs, self.pools):
            x = _max_pool_relu(conv(x), pool)
        x = F.adaptive_avg_pool2d(x, self.pooled_shape)  # (b, M * C, ph, pw)
        # Member m's channels are [m * C, (m + 1) * C): (b, M, C * ph * pw) is each member's
        # own flatten order (channel, frequency, time).
        return self.head(x.reshape(x.shape[0], self.n_members, -1))


class GroupedWaveformCNN(FusedEnsemble):
    """All members of a :class:`~raydisc.models.WaveformCNN` ensemble as one network.

    Stem: shared-input convolution (batch norm folded) and ReLU; each residual block:
    grouped convolutions of the body and of the 1x1 projection skip (batch norms
    folded), channel-wise add, ReLU; mean over time; grouped dense head. The 1-D
    convolutions run as 2-D ones over ``(b, C, 1, n_samples)`` in channels-last.
    ``forward``: ``(b, C, n_samples)`` -> logits ``(M, b, n_classes)``.
    """

    cpu_batch_size = WAVEFORM_CPU_BATCH_SIZE

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if any(type(m) is not WaveformCNN for m in members):
            raise NotFusableError("not all members are WaveformCNN")
        stems = [list(m.stem) for m in members]
        _same([[type(layer) for layer in s] for s in stems], "stem layers")
        if [type(layer) for layer in stems[0]] != [nn.Conv1d, nn.BatchNorm1d, nn.ReLU]:
            raise NotFusableError("the stem is not conv-batchnorm-ReLU")
        self.stem = _FoldedConv([s[0] for s in stems], [s[1] for s in stems], shared_input=True)
        _same([len(m.blocks) for m in members], "numbers of residual blocks")
        body_kinds = [nn.Conv1d, nn.BatchNorm1d, nn.ReLU, nn.Conv1d, nn.BatchNorm1d]
        convs1, convs2, skips = [], [], []
        for j in range(len(members[0].blocks)):
            blocks = [m.blocks[j] for m in members]
            if any(type(b) is not ResidualBlock1d or [type(layer) for layer in b.body] != body_kinds
                   or type(b.act) is not nn.ReLU for b in blocks):
                raise NotFusableError(f"residual block {j} has an unexpected structure")
            bodies = [list(b.body) for b in blocks]
            convs1.append(_FoldedConv([b[0] for b in bodies], [b[1] for b in bodies], shared_input=False))
            convs2.append(_FoldedConv([b[3] for b in bodies], [b[4] for b in bodies], shared_input=False))
            skip_kinds = [[type(layer) for layer in b.skip] if isinstance(b.skip, nn.Sequential) else type(b.skip)
                          for b in blocks]
            _same(skip_kinds, f"skip paths of block {j}")
            if skip_kinds[0] == [nn.Conv1d, nn.BatchNorm1d]:
                skips.append(_FoldedConv([b.skip[0] for b in blocks], [b.skip[1] for b in blocks], shared_input=False))
            elif skip_kinds[0] is nn.Identity:
                skips.append(nn.Identity())
            else:
                raise NotFusableError(f"the skip path of block {j} is neither a projection nor the identity")
        self.convs1, self.convs2, self.skips = nn.ModuleList(convs1), nn.ModuleList(convs2), nn.ModuleList(skips)
        _same([(type(m.pool), getattr(m.pool, "output_size", None)) for m in members], "pooling layers")
        if type(members[0].pool) is not nn.AdaptiveAvgPool1d or members[0].pool.output_size not in (1, (1,)):
            raise NotFusableError("the pooling layer is not a global AdaptiveAvgPool1d(1)")
        self.head = _GroupedHead([m.head for m in members])
        self.n_members = len(members)
        self.presence_mask = _presence_mask(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.presence_mask:
            x = with_presence_mask(x)
        # (b, C, n) -> (b, C, 1, n) channels-last, the layout the 2-D kernels run fastest.
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        x = self.stem(x).relu_()
        for conv1, conv2, skip in zip(self.convs1, self.convs2, self.skips):
            y = conv2(conv1(x).relu_())
            x = y.add_(skip(x)).relu_()
        x = x.mean(dim=(2, 3))  # global average over time: (b, M * C)
        return self.head(x.reshape(x.shape[0], self.n_members, -1))


__all__ = [
    "FusedEnsemble",
    "GroupedSpectrogramCNN",
    "GroupedWaveformCNN",
    "MEMBER_LOOP_CPU_BATCH_SIZE",
    "MemberLoop",
    "SPECTROGRAM_CPU_BATCH_SIZE",
    "WAVEFORM_CPU_BATCH_SIZE",
]
