"""The loaded bundle: members in memory, their probabilities and the ensemble's verdicts."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import PreprocessConfig
from ..labels import LabelScheme
from ..models import input_kind_of
from .bundle_format import scheme_of_manifest
from .fused import FusedEnsemble, fuse_ensemble
from .triage import TriagePolicy
from .voting import ensemble_spread, soft_vote


@dataclasses.dataclass
class EnsembleBundle:
    """A loaded bundle: members are ``nn.Module`` in eval mode on one device.

    ``members`` are the trained modules as loaded (fine-tuning and freezing use them);
    inference runs :meth:`fused_members`, an inference-only copy of all members as one
    network.
    """

    uri: str
    bundle_id: str
    architecture: str
    hparams: dict[str, Any]
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    label_map: dict[str, int]
    preprocess_config: PreprocessConfig
    members: list[nn.Module]
    member_metrics: list[dict[str, Any]]
    best_member: int
    created_at: str
    provenance: dict[str, Any]
    manifest: dict[str, Any]
    #: Calibration and confidence threshold of the triage (None: the identity policy,
    #: see :attr:`triage_policy`).
    triage: TriagePolicy | None = None
    # (members it was built from, their device, the fused network): see fused_members.
    # Not an __init__ argument, so dataclasses.replace (e.g. serving a subset of the
    # members) starts without it.
    _fused: tuple[tuple[nn.Module, ...], torch.device, FusedEnsemble] | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def input_kind(self) -> str:
        """Shard column the members read: ``"spectrogram"`` or ``"waveform"``."""
        return input_kind_of(self.architecture)

    @property
    def triage_policy(self) -> TriagePolicy:
        """The bundle's triage policy; temperatures 1 and no threshold when it has none."""
        return self.triage if self.triage is not None else TriagePolicy.identity(len(self.members))

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def label_scheme(self) -> LabelScheme:
        """The label scheme the members were trained with (binary for bundles made
        before schemes were stored)."""
        return scheme_of_manifest(self.uri, self.manifest)

    @property
    def device(self) -> torch.device:
        return next(self.members[0].parameters()).device

    def fused_members(self, rebuild: bool = False) -> FusedEnsemble:
        """All members as one inference-only network (:func:`~raydisc.ensemble.fused.fuse_ensemble`):
        ``(b, *input_shape)`` -> logits ``(n_members, b, n_classes)``.

        Built on first use and kept; built again when ``members`` holds other modules or
        they moved to another device. It holds copies of the weights: after changing
        members' weights in place, pass ``rebuild=True``.
        """
        device = self.device
        cached = self._fused
        if rebuild or cached is None or cached[1] != device or len(cached[0]) != len(self.members) \
                or any(a is not b for a, b in zip(cached[0], self.members)):
            # Holding the member objects (not their ids) in the key: an id could be reused.
            cached = (tuple(self.members), device, fuse_ensemble(self.members))
            self._fused = cached
        return cached[2]

    def member_probabilities(
        self, x: np.ndarray | torch.Tensor, batch_size: int = 256, *, fused: bool = True
    ) -> np.ndarray:
        """Softmax class probabilities of every member.

        ``x``: ``(n, *input_shape)`` model inputs made by the bundle's preprocessing
        config. Returns float32 ``(n_members, n, n_classes)``.

        ``batch_size``: most recordings per forward pass. With ``fused`` (the default),
        the members run as :meth:`fused_members`, which gives their probabilities up to
        float32 rounding (~1e-7) in less time, and on CPU at most the fused network's
        ``cpu_batch_size`` recordings go at a time (larger batches are slower there:
        their activations fall out of the CPU caches). ``fused=False``, or members in
        training mode, runs the members themselves one by one.
        """
        x = torch.as_tensor(x, dtype=torch.float32)
        if tuple(x.shape[1:]) != self.input_shape or x.ndim != len(self.input_shape) + 1:
            raise ValueError(
                f"bundle {self.uri} expects {self.input_kind} inputs of shape (n, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}"
            )
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        out = np.empty((len(self.members), x.shape[0], self.n_classes), dtype=np.float32)
        device = self.device
        memory_format = inference_memory_format(self.input_shape)
        if fused and not any(m.training for m in self.members):
            model = self.fused_members()
            step = min(batch_size, model.cpu_batch_size) if device.type == "cpu" else batch_size
            with torch.inference_mode():
                for start in range(0, x.shape[0], step):
                    batch = x[start : start + step].to(device).contiguous(memory_format=memory_format)
                    out[:, start : start + batch.shape[0]] = torch.softmax(model(batch), dim=2).cpu().numpy()
            return out
        with torch.inference_mode():
            for start in range(0, x.shape[0], batch_size):
                batch = x[start : start + batch_size].to(device).contiguous(memory_format=memory_format)
                for m, model in enumerate(self.members):
                    out[m, start : start + batch.shape[0]] = torch.softmax(model(batch), dim=1).cpu().numpy()
        return out

    def predict(self, x: np.ndarray | torch.Tensor, batch_size: int = 256) -> dict[str, np.ndarray]:
        """Ensemble verdicts for ``n`` recordings.

        Returns a dict of numpy arrays:

        * ``probabilities`` ``(n, n_classes)``: soft vote (mean of member probabilities);
        * ``predicted_class`` ``(n,)``: argmax of ``probabilities``;
        * ``predicted_label`` ``(n,)``: the class name of ``predicted_class``;
        * ``spread`` ``(n,)``: :func:`~raydisc.ensemble.voting.ensemble_spread`;
        * ``best_member_probabilities`` ``(n, n_classes)``: the best single member's;
        * ``member_votes`` ``(n, n_classes)``: how many members' argmax is each class;
        * ``member_probabilities`` ``(n_members, n, n_classes)``.
        """
        member_probs = self.member_probabilities(x, batch_size=batch_size)
        probs = soft_vote(member_probs)
        predicted = probs.argmax(axis=1)
        member_pred = member_probs.argmax(axis=2)  # (n_members, n)
        votes = (member_pred[..., None] == np.arange(self.n_classes)).sum(axis=0)
        return {
            "probabilities": probs,
            "predicted_class": predicted,
            "predicted_label": np.asarray(self.class_names, dtype=object)[predicted],
            "spread": ensemble_spread(member_probs),
            "best_member_probabilities": member_probs[self.best_member].astype(np.float64),
            "member_votes": votes,
            "member_probabilities": member_probs,
        }


def inference_memory_format(input_shape: tuple[int, ...]) -> torch.memory_format:
    """Memory layout for inference: channels-last for 2-D convolutions (spectrogram
    inputs ``(C, H, W)``), whose CPU kernels run it about 1.6 times faster (measured with
    ``bench/reprocess.py``'s bundle); the default layout otherwise."""
    return torch.channels_last if len(input_shape) == 3 else torch.contiguous_format



__all__ = ["EnsembleBundle", "inference_memory_format"]
