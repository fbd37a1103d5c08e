"""The on-disk bundle format: layout, manifest, member files and their checks.

Layout (a local path or an object-store URI such as ``s3://bucket/bundles/alpine``)::

    bundle.json                       manifest (format below), written last
    members/member-000.safetensors    state_dict of member 0 (safetensors)
    members/member-001.safetensors    ...

``bundle.json`` holds ``format_version``, ``bundle_id``, ``architecture``, ``hparams``
(all of them, defaults resolved, so later changes of defaults cannot alter a loaded
model), ``input_shape``, ``n_classes``, ``class_names``, ``label_map``, ``label_scheme``
(:meth:`raydisc.labels.LabelScheme.to_dict`; absent in bundles made before schemes,
which load as the scheme their class names and label map equal: binary),
``preprocess_config`` with its ``preprocess_fingerprint``, ``members`` (``file``,
``sha256`` of the file, and the member's metrics: ``seed``, ``validation_loss``,
``validation_accuracy``, ...), ``best_member`` with ``best_member_criterion``,
``created_at`` (UTC, ISO 8601), a free ``provenance`` dict and, optionally, ``triage``:
the :class:`~raydisc.ensemble.triage.TriagePolicy` (per-member temperatures, confidence
threshold, target accuracy, what it was fitted on). A bundle without ``triage`` loads
with temperatures 1 and no threshold (every event ``auto``).

Only safe formats are read: JSON and safetensors (no pickle). :func:`load_bundle` is the
one loader that evaluation, batch reprocessing and serving use.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Mapping

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as _st_load
from torch import nn

from .. import storage
from ..labels import LabelScheme, LabelSchemeError
from ..models import MODELS, build_model
from .triage import TriagePolicy

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


def content_hash(manifest: Mapping[str, Any]) -> str:
    text = json.dumps(manifest, sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays and tuples become Python values and lists,
    non-finite floats become None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
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
    scheme = scheme_of_manifest(uri, manifest)
    if scheme.class_names != tuple(manifest["class_names"]) or scheme.event_types != manifest["label_map"]:
        raise BundleError(f"bundle {uri}: label_scheme {scheme.describe()} disagrees with class_names "
                          f"{manifest['class_names']} / label_map")
    if not manifest["members"]:
        raise BundleError(f"bundle {uri}: no members listed")
    if not 0 <= manifest["best_member"] < len(manifest["members"]):
        raise BundleError(f"bundle {uri}: best_member {manifest['best_member']} out of range")
    triage_policy_of(uri, manifest)  # a bad policy fails here, naming the bundle
    return manifest


def triage_policy_of(uri: str, manifest: Mapping[str, Any]) -> TriagePolicy:
    """The bundle's triage policy (``manifest["triage"]``), or the identity policy
    (temperatures 1, no threshold) for a bundle without one; BundleError when it is
    malformed or its temperatures do not match the members."""
    n_members = len(manifest["members"])
    if manifest.get("triage") is None:
        return TriagePolicy.identity(n_members)
    try:
        policy = TriagePolicy.from_dict(manifest["triage"])
    except (ValueError, TypeError, AttributeError) as exc:
        raise BundleError(f"bundle {uri}: invalid triage policy ({exc})") from None
    if len(policy.temperatures) != n_members:
        raise BundleError(f"bundle {uri}: triage policy has {len(policy.temperatures)} temperatures for "
                          f"{n_members} members")
    return policy



def scheme_of_manifest(uri: str, manifest: Mapping[str, Any]) -> LabelScheme:
    """The label scheme of a bundle's manifest: its ``label_scheme``, or for a bundle made
    before schemes were stored the one its ``class_names`` and ``label_map`` give
    (:meth:`~raydisc.labels.LabelScheme.from_label_map`). BundleError if invalid."""
    try:
        if "label_scheme" in manifest:
            return LabelScheme.from_dict(manifest["label_scheme"], source="label_scheme")
        return LabelScheme.from_label_map(manifest["class_names"], manifest["label_map"])
    except LabelSchemeError as exc:
        raise BundleError(f"bundle {uri}: invalid label scheme ({exc})") from None


def check_label_scheme(uri: str, manifest: Mapping[str, Any], expected: LabelScheme, data: str) -> None:
    """BundleError unless the bundle at ``uri`` was trained with label scheme ``expected``
    (the scheme of ``data``, e.g. a shard folder): its probabilities would name other classes."""
    scheme = scheme_of_manifest(uri, manifest)
    if scheme != expected:
        raise BundleError(f"bundle {uri} was trained with label scheme {scheme.describe()}, but {data} is labelled "
                          f"with {expected.describe()}: use a bundle of that scheme (or fine-tune one on it)")


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


def load_member(
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
    "BundleError", "FORMAT_VERSION", "MANIFEST_FILE", "MEMBER_DIR", "REQUIRED_MEMBER_METRICS",
    "SUPPORTED_FORMAT_VERSIONS", "check_label_scheme", "content_hash", "jsonable", "load_member", "read_manifest",
    "read_member_state", "scheme_of_manifest", "triage_policy_of",
]
