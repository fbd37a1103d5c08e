"""Ensemble bundles: everything needed to predict, in one directory (a local path or an
object-store URI such as ``s3://bucket/bundles/alpine``).

:func:`save_bundle` writes one, :func:`load_bundle` reads it back: the one loader that
evaluation, batch reprocessing and serving use. The layout, the manifest and their checks
are :mod:`raydisc.ensemble.bundle_format`, the loaded bundle
:mod:`raydisc.ensemble.loaded_bundle`. Only safe formats are read: JSON and safetensors
(no pickle).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import posixpath
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from safetensors.torch import save as _st_save

from .. import storage
from ..config import ConfigError, PreprocessConfig, fingerprint_of
from ..labels import DEFAULT_SCHEME, LabelScheme
from ..models import MODELS, input_kind_of, input_shape_of, resolve_hparams
from .bundle_format import (FORMAT_VERSION, MANIFEST_FILE, MEMBER_DIR, REQUIRED_MEMBER_METRICS, BundleError,
                            check_label_scheme, content_hash, jsonable, load_member, read_manifest, read_member_state,
                            scheme_of_manifest, triage_policy_of)
from .loaded_bundle import EnsembleBundle, inference_memory_format
from .triage import TriagePolicy
from .voting import best_member as _best_member


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
    triage_policy: TriagePolicy | None = None,
    label_scheme: LabelScheme = DEFAULT_SCHEME,
) -> str:
    """Write an ensemble bundle to ``uri`` and return its ``bundle_id``. The members
    output one logit per class of ``label_scheme`` (stored with the bundle).

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
    ``triage_policy``: stored as the manifest's ``triage`` (none: the bundle loads with
    the identity policy; :func:`write_triage_policy` adds one later).
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
        metrics = [jsonable(dict(m)) for m in member_metrics]
        provenance_json = jsonable(dict(provenance or {}))
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

    if triage_policy is not None and len(triage_policy.temperatures) != len(member_state_dicts):
        raise BundleError(f"bundle {uri}: triage policy has {len(triage_policy.temperatures)} temperatures for "
                          f"{len(member_state_dicts)} members")
    for i, state in enumerate(member_state_dicts):
        load_member(uri, f"member {i}", architecture, input_shape, label_scheme.n_classes, resolved, state)

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
        "hparams": jsonable(resolved),
        "input_shape": list(input_shape),
        "n_classes": label_scheme.n_classes,
        "class_names": list(label_scheme.class_names),
        "label_map": label_scheme.label_map,
        "label_scheme": label_scheme.to_dict(),
        "preprocess_config": jsonable(preprocess_config.to_dict()),
        "preprocess_fingerprint": preprocess_config.fingerprint(),
        "members": members,
        "best_member": best,
        "best_member_criterion": {"metric": select_by, "higher_is_better": bool(higher_is_better)},
        "provenance": provenance_json,
    }
    if triage_policy is not None:
        manifest["triage"] = jsonable(triage_policy.to_dict())
    return _write_manifest(uri, manifest, _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))


def _write_manifest(uri: str, manifest: Mapping[str, Any], created_at: str) -> str:
    """Write ``bundle.json`` (atomically) with the ``bundle_id`` of ``manifest``'s content
    (without ``bundle_id`` and ``created_at``); returns the id."""
    content = {k: v for k, v in manifest.items() if k not in ("bundle_id", "created_at")}
    bundle_id = content_hash(content)
    manifest = {
        "format_version": content["format_version"],
        "bundle_id": bundle_id,
        **{k: v for k, v in content.items() if k != "format_version"},
        "created_at": created_at,
    }
    storage.write_bytes_atomic(storage.join(uri, MANIFEST_FILE), json.dumps(manifest, indent=2, allow_nan=False).encode())
    return bundle_id


def write_triage_policy(uri: str, policy: TriagePolicy) -> str:
    """Store ``policy`` in the bundle at ``uri`` (replacing any) and return the new
    ``bundle_id``: the policy is part of the content, so the id changes with it. Only
    ``bundle.json`` is rewritten (atomically); member files stay."""
    manifest = read_manifest(uri)
    if len(policy.temperatures) != len(manifest["members"]):
        raise BundleError(f"bundle {uri}: triage policy has {len(policy.temperatures)} temperatures for "
                          f"{len(manifest['members'])} members")
    manifest["triage"] = jsonable(policy.to_dict())
    return _write_manifest(uri, manifest, manifest.get("created_at", ""))


def load_bundle(
    uri: str, map_location: str | torch.device = "cpu", expected_preprocess: PreprocessConfig | None = None,
    expected_label_scheme: LabelScheme | None = None, data: str = "the data",
) -> EnsembleBundle:
    """Load the bundle at ``uri`` (local path or object-store URI).

    Members are rebuilt from the manifest's architecture and hyper-parameters, their
    weights read from safetensors (checked against the SHA-256 recorded at save time),
    moved to ``map_location`` and put in eval mode. If ``expected_preprocess`` is given
    (the data's), the bundle's preprocessing config must make the same model input
    (:data:`raydisc.config.MODEL_FIELDS`; how raw data is read may differ); if
    ``expected_label_scheme`` is given (that of ``data``, e.g. a shard folder), the bundle
    must have been trained with it. Any problem raises
    :class:`BundleError` naming the bundle and what is wrong.
    """
    manifest = read_manifest(uri)
    if expected_label_scheme is not None:
        check_label_scheme(uri, manifest, expected_label_scheme, data)
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
        model = load_member(uri, f"member {i} ({entry['file']})", architecture, input_shape,
                             manifest["n_classes"], hparams, state)
        members.append(model.to(map_location, memory_format=inference_memory_format(input_shape)).eval())
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
        triage=triage_policy_of(uri, manifest),
    )


__all__ = [
    "BundleError",
    "EnsembleBundle",
    "check_label_scheme",
    "FORMAT_VERSION",
    "load_bundle",
    "read_manifest",
    "read_member_state",
    "save_bundle",
    "scheme_of_manifest",
    "write_triage_policy",
]
