"""Ensemble bundles: everything needed to predict, in one directory.

Layout (a local path or an object-store URI such as ``s3://bucket/bundles/alpine``)::

    bundle.json                       manifest (format below), written last
    members/member-000.safetensors    state_dict of member 0 (safetensors)
    members/member-001.safetensors    ...

``bundle.json`` holds ``format_version``, ``bundle_id``, ``architecture``, ``hparams``
(all of them, defaults resolved, so later changes of defaults cannot alter a loaded
model), ``input_shape``, ``n_classes``, ``class_names``, ``label_map``,
``preprocess_config`` with its ``preprocess_fingerprint``, ``members`` (``file``,
``sha256`` of the file, and the member's metrics: ``seed``, ``validation_loss``,
``validation_accuracy``, ...), ``best_member`` with ``best_member_criterion``,
``created_at`` (UTC, ISO 8601) and a free ``provenance`` dict.

Only safe formats are read: JSON and safetensors (no pickle). :func:`load_bundle` is the
one loader that evaluation, batch reprocessing and serving use.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import posixpath
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save
from torch import nn

from .. import storage
from ..config import ConfigError, PreprocessConfig, fingerprint_of
from ..labels import CLASS_NAMES, EVENT_TYPE_TO_CLASS
from ..models import MODELS, build_model, input_kind_of, input_shape_of, resolve_hparams
from .fused import FusedEnsemble, fuse_ensemble
from .voting import best_member as _best_member
from .voting import ensemble_spread, soft_vote

#: Format 2: models read presence planes of the components (vertical-only stations),
#: and the preprocessing config holds the raw-data fields (channels, picks, response).
#: Format 1 bundles load as they were made (no presence planes; sensitivity only).
FORMAT_VERSION = 2
SUPPORTED_FORMAT_VERSIONS = (1, 2)
MANIFEST_FILE = "bundle.json"
MEMBER_DIR = "members"
REQUIRED_MEMBER_METRICS = ("seed", "validation_loss", "validation_accuracy")


class BundleError(ValueError):
    """A bundle is missing, incomplete, corrupted or incompatible; the message names the
    bundle URI and the problem."""


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
    def n_classes(self) -> int:
        return len(self.class_names)

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
        memory_format = _memory_format(self.input_shape)
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


# --------------------------------------------------------------------------- writing


def save_bundle(
    uri: str,
    *,
    architecture: str,
    hparams: Mapping[str, Any],
    input_shape: Sequence[int],
    preprocess_config: PreprocessConfig,
    member_state_dicts: Sequence[Mapping[str, torch.Tensor]],
    member_metrics: Sequence[Mapping[str, Any]],
    provenance: Mapping[str, Any] | None = None,
    select_by: str = "validation_loss",
    higher_is_better: bool = False,
    overwrite: bool = False,
) -> str:
    """Write an ensemble bundle to ``uri`` and return its ``bundle_id``.

    Every state dict is checked against the architecture (by loading it into a fresh
    model) before anything is written. Member files go first, ``bundle.json`` last, each
    atomically, so a readable ``bundle.json`` always means a complete bundle. The
    ``bundle_id`` is a hash of the manifest content (which includes each member file's
    SHA-256) without ``created_at``: identical content gives an identical id.

    ``member_metrics[i]`` must hold ``seed``, ``validation_loss`` and
    ``validation_accuracy`` (NaN allowed, stored as null); extra JSON-serialisable keys
    are kept. ``best_member`` is chosen by ``select_by`` (lower is better unless
    ``higher_is_better``). An existing bundle at ``uri`` is only replaced with
    ``overwrite=True``; its ``bundle.json`` is removed before new members are written.
    """
    if architecture not in MODELS:
        raise BundleError(f"bundle {uri}: unknown architecture {architecture!r}; known models: {sorted(MODELS)}")
    input_shape = tuple(int(v) for v in input_shape)
    expected_shape = input_shape_of(architecture, preprocess_config)
    if input_shape != expected_shape:
        raise BundleError(
            f"bundle {uri}: input_shape {input_shape} does not match the {input_kind_of(architecture)} "
            f"shape {expected_shape} of the preprocessing config"
        )
    if len(member_state_dicts) == 0:
        raise BundleError(f"bundle {uri}: an ensemble needs at least one member")
    if len(member_state_dicts) != len(member_metrics):
        raise BundleError(
            f"bundle {uri}: {len(member_state_dicts)} state dicts but {len(member_metrics)} member metric dicts"
        )
    try:
        resolved = resolve_hparams(architecture, **dict(hparams))
    except ValueError as exc:
        raise BundleError(f"bundle {uri}: {exc}") from None
    try:
        metrics = [_jsonable(dict(m)) for m in member_metrics]
        provenance_json = _jsonable(dict(provenance or {}))
    except TypeError as exc:
        raise BundleError(f"bundle {uri}: {exc}") from None
    for i, m in enumerate(metrics):
        missing = [k for k in (*REQUIRED_MEMBER_METRICS, select_by) if k not in m]
        if missing:
            raise BundleError(f"bundle {uri}: member {i} metrics lack {missing}")
        reserved = sorted({"file", "sha256"} & set(m))
        if reserved:
            raise BundleError(f"bundle {uri}: member {i} metrics use reserved key(s) {reserved}")
    scores = [np.nan if m[select_by] is None else m[select_by] for m in metrics]
    try:
        best = _best_member(scores, higher_is_better=higher_is_better)
    except (ValueError, TypeError) as exc:
        raise BundleError(f"bundle {uri}: cannot choose the best member by {select_by!r}: {exc}") from None

    for i, state in enumerate(member_state_dicts):
        _load_member(uri, f"member {i}", architecture, input_shape, len(CLASS_NAMES), resolved, state)

    manifest_uri = storage.join(uri, MANIFEST_FILE)
    if storage.exists(manifest_uri):
        if not overwrite:
            raise BundleError(f"bundle {uri}: a bundle already exists there (pass overwrite=True to replace it)")
        # Drop the old manifest first: while members are rewritten the folder must not
        # look like a complete bundle.
        fs, path = storage.filesystem(manifest_uri)
        fs.rm(path)

    members = []
    for i, (state, m) in enumerate(zip(member_state_dicts, metrics)):
        data = _st_save({k: v.detach().cpu().contiguous().clone() for k, v in state.items()})
        rel = posixpath.join(MEMBER_DIR, f"member-{i:03d}.safetensors")
        storage.write_bytes_atomic(storage.join(uri, rel), data)
        members.append({"file": rel, "sha256": hashlib.sha256(data).hexdigest(), **m})

    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "hparams": _jsonable(resolved),
        "input_shape": list(input_shape),
        "n_classes": len(CLASS_NAMES),
        "class_names": list(CLASS_NAMES),
        "label_map": dict(EVENT_TYPE_TO_CLASS),
        "preprocess_config": _jsonable(preprocess_config.to_dict()),
        "preprocess_fingerprint": preprocess_config.fingerprint(),
        "members": members,
        "best_member": best,
        "best_member_criterion": {"metric": select_by, "higher_is_better": bool(higher_is_better)},
        "provenance": provenance_json,
    }
    bundle_id = _content_hash(manifest)
    manifest = {
        "format_version": FORMAT_VERSION,
        "bundle_id": bundle_id,
        **{k: v for k, v in manifest.items() if k != "format_version"},
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    storage.write_bytes_atomic(manifest_uri, json.dumps(manifest, indent=2, allow_nan=False).encode())
    return bundle_id


def _content_hash(manifest: Mapping[str, Any]) -> str:
    text = json.dumps(manifest, sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays and tuples become Python values and lists,
    non-finite floats become None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic) or (isinstance(value, torch.Tensor) and value.numel() == 1):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"value {value!r} of type {type(value).__name__} cannot be stored in bundle.json")


# --------------------------------------------------------------------------- reading


def read_manifest(uri: str) -> dict[str, Any]:
    """Parse and check ``bundle.json`` of the bundle at ``uri`` without loading weights."""
    manifest_uri = storage.join(uri, MANIFEST_FILE)
    try:
        raw = storage.read_bytes(manifest_uri)
    except FileNotFoundError:
        raise BundleError(
            f"bundle {uri}: no {MANIFEST_FILE} (not a bundle, or one whose save did not finish)"
        ) from None
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"bundle {uri}: {MANIFEST_FILE} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"bundle {uri}: {MANIFEST_FILE} is not a JSON object")
    version = manifest.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise BundleError(
            f"bundle {uri}: unsupported format_version {version!r} (this raydisc reads {list(SUPPORTED_FORMAT_VERSIONS)})"
        )
    required = ("bundle_id", "architecture", "hparams", "input_shape", "n_classes", "class_names",
                "label_map", "preprocess_config", "preprocess_fingerprint", "members", "best_member")
    missing = [k for k in required if k not in manifest]
    if missing:
        raise BundleError(f"bundle {uri}: {MANIFEST_FILE} lacks field(s) {missing}")
    if version == 1:
        # Made before component sets: its models read no presence planes, and its
        # preprocessing divided by the overall sensitivity alone.
        manifest["hparams"] = {"presence_mask": False, **manifest["hparams"]}
        manifest["preprocess_config"] = {"response_removal": "sensitivity", **manifest["preprocess_config"]}
    if manifest["architecture"] not in MODELS:
        raise BundleError(
            f"bundle {uri}: unknown architecture {manifest['architecture']!r}; known models: {sorted(MODELS)}"
        )
    if len(manifest["class_names"]) != manifest["n_classes"]:
        raise BundleError(f"bundle {uri}: n_classes={manifest['n_classes']} but class_names={manifest['class_names']}")
    if not manifest["members"]:
        raise BundleError(f"bundle {uri}: no members listed")
    if not 0 <= manifest["best_member"] < len(manifest["members"]):
        raise BundleError(f"bundle {uri}: best_member {manifest['best_member']} out of range")
    return manifest


def load_bundle(
    uri: str, map_location: str | torch.device = "cpu", expected_preprocess: PreprocessConfig | None = None
) -> EnsembleBundle:
    """Load the bundle at ``uri`` (local path or object-store URI).

    Members are rebuilt from the manifest's architecture and hyper-parameters, their
    weights read from safetensors (checked against the SHA-256 recorded at save time),
    moved to ``map_location`` and put in eval mode. If ``expected_preprocess`` is given
    (the data's), the bundle's preprocessing config must make the same model input
    (:data:`raydisc.config.MODEL_FIELDS`; how raw data is read may differ). Any problem raises
    :class:`BundleError` naming the bundle and what is wrong.
    """
    manifest = read_manifest(uri)
    try:
        config = PreprocessConfig.from_dict(manifest["preprocess_config"])
    except (ConfigError, TypeError) as exc:
        raise BundleError(f"bundle {uri}: invalid preprocess_config ({exc})") from None
    stored = {k: v for k, v in manifest["preprocess_config"].items()
              if manifest["format_version"] != 1 or k != "response_removal"}
    if fingerprint_of(stored) != manifest["preprocess_fingerprint"]:
        raise BundleError(
            f"bundle {uri}: preprocess_config does not match its preprocess_fingerprint "
            f"{manifest['preprocess_fingerprint']} (edited by hand, or written by another raydisc version)"
        )
    diffs = config.model_differences(expected_preprocess) if expected_preprocess is not None else []
    if diffs:
        raise BundleError(
            f"bundle {uri}: its model input differs from the expected preprocessing in {len(diffs)} field(s): "
            + "; ".join(f"{k}: bundle {mine!r} != expected {theirs!r}" for k, mine, theirs in diffs)
        )

    architecture = manifest["architecture"]
    input_shape = tuple(int(v) for v in manifest["input_shape"])
    if input_shape != input_shape_of(architecture, config):
        raise BundleError(
            f"bundle {uri}: input_shape {input_shape} does not match the {input_kind_of(architecture)} "
            f"shape {input_shape_of(architecture, config)} of its preprocess_config"
        )
    try:
        hparams = resolve_hparams(architecture, **manifest["hparams"])
    except ValueError as exc:
        raise BundleError(f"bundle {uri}: {exc}") from None
    members, metrics = [], []
    for i, entry in enumerate(manifest["members"]):
        state = read_member_state(uri, manifest, i)
        model = _load_member(uri, f"member {i} ({entry['file']})", architecture, input_shape,
                             manifest["n_classes"], hparams, state)
        members.append(model.to(map_location, memory_format=_memory_format(input_shape)).eval())
        metrics.append({k: v for k, v in entry.items() if k not in ("file", "sha256")})

    return EnsembleBundle(
        uri=uri,
        bundle_id=manifest["bundle_id"],
        architecture=architecture,
        hparams=hparams,
        input_shape=input_shape,
        class_names=tuple(manifest["class_names"]),
        label_map=dict(manifest["label_map"]),
        preprocess_config=config,
        members=members,
        member_metrics=metrics,
        best_member=int(manifest["best_member"]),
        created_at=manifest.get("created_at", ""),
        provenance=dict(manifest.get("provenance") or {}),
        manifest=manifest,
    )


def _memory_format(input_shape: tuple[int, ...]) -> torch.memory_format:
    """Memory layout for inference: channels-last for 2-D convolutions (spectrogram
    inputs ``(C, H, W)``), whose CPU kernels run it about 1.6 times faster (measured with
    ``bench/reprocess.py``'s bundle); the default layout otherwise."""
    return torch.channels_last if len(input_shape) == 3 else torch.contiguous_format


def read_member_state(uri: str, manifest: Mapping[str, Any], member: int) -> dict[str, torch.Tensor]:
    """The state dict of member ``member`` of the bundle at ``uri`` (CPU tensors), its
    file checked against the SHA-256 in ``manifest`` (:func:`read_manifest`)."""
    entry = manifest["members"][member]
    try:
        data = storage.read_bytes(storage.join(uri, entry["file"]))
    except FileNotFoundError:
        raise BundleError(f"bundle {uri}: member {member} file {entry['file']} is missing") from None
    if "sha256" in entry and hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise BundleError(
            f"bundle {uri}: member {member} file {entry['file']} is corrupted (SHA-256 differs from bundle.json)"
        )
    try:
        return _st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise BundleError(
            f"bundle {uri}: member {member} file {entry['file']} is not readable safetensors ({exc})"
        ) from None


def _load_member(
    uri: str, what: str, architecture: str, input_shape: tuple[int, ...], n_classes: int,
    hparams: Mapping[str, Any], state: Mapping[str, torch.Tensor],
) -> nn.Module:
    """Fresh model with ``state`` loaded strictly; BundleError explaining a mismatch."""
    model = build_model(architecture, input_shape, n_classes, **hparams)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        hint = ""
        prefixes = {k.split(".", 1)[0] for k in state}
        if prefixes & {"module", "_orig_mod"}:
            hint = (" (keys carry a 'module.'/'_orig_mod.' prefix: save the unwrapped model's state_dict, "
                    "e.g. model.module.state_dict() under DistributedDataParallel)")
        first_line = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first_line[:4])
        raise BundleError(
            f"bundle {uri}: {what} state dict does not match architecture {architecture!r} "
            f"with hparams {dict(hparams)}{hint}: {detail}"
        ) from None
    return model


__all__ = [
    "BundleError",
    "EnsembleBundle",
    "FORMAT_VERSION",
    "load_bundle",
    "read_manifest",
    "read_member_state",
    "save_bundle",
]
