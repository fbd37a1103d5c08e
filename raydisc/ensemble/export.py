"""Portable export of an ensemble: ``raydisc export BUNDLE OUT --format torchscript|onnx``.

The exported model is the fused ensemble (:func:`~raydisc.ensemble.fused.fuse_ensemble`)
followed by the soft vote, :class:`SoftVotedEnsemble`: float32 model input
``(b, *input_shape)`` made by the bundle's preprocessing (``(b, 3, 41, 89)`` log10
spectrogram power or ``(b, 3, 3600)`` normalised waveforms, components Z, N, E, an
absent component all zero) -> float32 ``(b, n_classes)`` class probabilities (the mean
of the members' softmax outputs), any batch size ``b``. It runs without Python or Ray:
TorchScript in libtorch (C++), ONNX in any ONNX runtime. Preprocessing is not part of
it: raw counts become model input through :mod:`raydisc.features` (the sidecar file
``OUT.json`` holds the bundle's preprocessing config, input shape and class names).

TorchScript needs torch alone. ONNX goes through ``torch.onnx.export``'s
``torch.export``-based exporter, which needs the ``onnx`` and ``onnxscript`` packages;
checking an ONNX export needs ``onnxruntime``. (The older TorchScript-based ONNX
exporter cannot export the fused networks: their pooling loses the static shapes it needs.)

Wire into the main CLI with::

    p = subparsers.add_parser("export", help="...")
    add_export_arguments(p); p.set_defaults(func=run_export)
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import io
import json
import os
import sys
import tempfile
import warnings

import numpy as np
import torch
from torch import nn

from .. import storage
from .bundle import EnsembleBundle, load_bundle

EXPORT_FORMATS = ("torchscript", "onnx")
#: Recordings in the example batch the export traces; the batch axis stays free.
EXAMPLE_BATCH = 4
INPUT_NAME, OUTPUT_NAME = "inputs", "probabilities"


class ExportError(RuntimeError):
    """An export that cannot be made here (a missing package, an unknown format)."""


class SoftVotedEnsemble(nn.Module):
    """The fused members and the soft vote as one module: ``(b, *input_shape)`` model
    input -> ``(b, n_classes)`` probabilities, the mean over members of their softmax."""

    def __init__(self, bundle: EnsembleBundle):
        super().__init__()
        self.fused = bundle.fused_members()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.fused(x), dim=2).mean(dim=0)


def example_inputs(bundle: EnsembleBundle, n: int, seed: int = 0) -> np.ndarray:
    """``(n, *input_shape)`` float32 inputs for tracing and checking: standard normal,
    with the horizontals zeroed in every other row (vertical-only stations), so that both
    states of the presence planes are exercised."""
    x = np.random.default_rng(seed).standard_normal((n, *bundle.input_shape)).astype(np.float32)
    x[::2, 1:] = 0.0
    return x


def _require(*packages: str) -> None:
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise ExportError(f"ONNX export needs the package(s) {', '.join(missing)}, which are not installed: "
                          f"pip install {' '.join(missing)}")


@contextlib.contextmanager
def _quiet_logger(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def export_ensemble(bundle: EnsembleBundle | str, out: str, format: str = "torchscript") -> str:
    """Write the bundle's :class:`SoftVotedEnsemble` to ``out`` (a path or URI) in
    ``format`` (``"torchscript"`` or ``"onnx"``), and ``out + ".json"`` beside it (bundle
    id, class names, input name, kind and shape, preprocessing config). ``bundle``: a
    loaded bundle or its URI. Returns ``out``. Raises :class:`ExportError` for an
    unknown format or, for ONNX, a missing ``onnx``/``onnxscript`` package.
    """
    if format not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose one of {EXPORT_FORMATS}")
    if format == "onnx":
        _require("onnx", "onnxscript")
    if isinstance(bundle, str):
        bundle = load_bundle(bundle)
    if bundle.device.type != "cpu":
        bundle = load_bundle(bundle.uri)  # exported weights are CPU tensors, usable anywhere
    model = SoftVotedEnsemble(bundle).eval()
    example = torch.from_numpy(example_inputs(bundle, EXAMPLE_BATCH))
    with warnings.catch_warnings():
        # Deprecation notices, and "tensor to Python boolean" for the static shape checks
        # of the fused pooling (the shapes are fixed by input_shape, so the trace holds).
        warnings.simplefilter("ignore")
        if format == "torchscript":
            with torch.no_grad():
                traced = torch.jit.trace(model, example, check_trace=False)
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer)
            data = buffer.getvalue()
        else:
            # The exporter reports its steps on stdout and warns, through logging, of
            # torchvision operators it skips (none is used here).
            with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), \
                    _quiet_logger("torch.onnx"):
                target = os.path.join(tmp, "model.onnx")
                torch.onnx.export(model, (example,), target, dynamo=True, input_names=[INPUT_NAME],
                                  output_names=[OUTPUT_NAME], dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                                  external_data=False, verbose=False)
                with open(target, "rb") as f:
                    data = f.read()
    storage.write_bytes_atomic(out, data)
    sidecar = {"bundle_id": bundle.bundle_id, "format": format, "class_names": list(bundle.class_names),
               "input_name": INPUT_NAME, "output_name": OUTPUT_NAME, "input_kind": bundle.input_kind,
               "input_shape": ["batch", *bundle.input_shape], "output_shape": ["batch", bundle.n_classes],
               "members": len(bundle.members), "preprocess_config": bundle.manifest["preprocess_config"]}
    storage.write_bytes_atomic(out + ".json", json.dumps(sidecar, indent=2).encode())
    return out


def exported_probabilities(path: str, format: str, x: np.ndarray) -> np.ndarray:
    """Run an exported model (``path``: a path or URI) on float32 ``x`` ``(n, *input_shape)``:
    TorchScript with ``torch.jit.load``, ONNX with onnxruntime. Returns ``(n, n_classes)``."""
    data = storage.read_bytes(path)
    if format == "torchscript":
        model = torch.jit.load(io.BytesIO(data))
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
    if importlib.util.find_spec("onnxruntime") is None:
        raise ExportError("checking an ONNX export needs the package onnxruntime: pip install onnxruntime")
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]


def check_export(bundle: EnsembleBundle, path: str, format: str, n: int = 13) -> float:
    """Largest absolute difference between the exported model's probabilities and the
    bundle's soft vote (:meth:`EnsembleBundle.member_probabilities`, averaged) on ``n``
    :func:`example_inputs` (another batch size than the traced one)."""
    x = example_inputs(bundle, n, seed=1)
    expected = bundle.member_probabilities(x).astype(np.float64).mean(axis=0)
    return float(np.abs(exported_probabilities(path, format, x) - expected).max())


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``raydisc export``."""
    parser.add_argument("bundle", help="ensemble bundle URI (local path or s3://...)")
    parser.add_argument("out", help="file to write (e.g. ensemble.pt or ensemble.onnx); OUT.json is written beside it")
    parser.add_argument("--format", choices=EXPORT_FORMATS, default="torchscript",
                        help="torchscript (torch alone) or onnx (needs onnx and onnxscript)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip running the export against the bundle (ONNX checks need onnxruntime)")


def run_export(args: argparse.Namespace) -> int:
    """Export, then (unless ``--no-check``) print the largest difference from the bundle."""
    try:
        bundle = load_bundle(args.bundle)
        out = export_ensemble(bundle, args.out, args.format)
        report = {"out": out, "format": args.format, "bundle_id": bundle.bundle_id}
        if not args.no_check:
            report["max_abs_diff"] = check_export(bundle, out, args.format)
    except ExportError as exc:
        print(f"raydisc export: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


__all__ = ["EXPORT_FORMATS", "ExportError", "SoftVotedEnsemble", "add_export_arguments", "check_export",
           "example_inputs", "export_ensemble", "exported_probabilities", "run_export"]
