"""Command line of the ensemble bundle: ``raydisc export`` (the command itself is in
:mod:`.export`)."""
from __future__ import annotations

from ..cli_options import add_command
from .export import add_export_arguments, run_export


def register(sub) -> None:
    """Add ``export`` to the subcommands ``sub`` of the ``raydisc`` parser."""
    add_command(sub, add_export_arguments, run_export, "export",
                help="write the soft-voted ensemble as TorchScript or ONNX (model input -> probabilities)",
                description="Export the fused members of BUNDLE with the soft vote as one model, float32 "
                            "(batch, *input_shape) preprocessed input -> (batch, n_classes) probabilities, for "
                            "use outside Python and Ray; OUT.json beside it names the input, classes and "
                            "preprocessing. Checked against the bundle unless --no-check.")
