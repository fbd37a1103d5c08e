"""The ``raydisc`` command line: a thin layer over the library.

Each subcommand is one step of the workflow::

    raydisc generate ARCHIVE         write the built-in synthetic regions (miniSEED, QuakeML, StationXML)
    raydisc fetch URL ARCHIVE --region R --start T --end T   build an archive region from FDSN web services
    raydisc import-folder MSEED_DIR LABELS.csv STATIONXML ARCHIVE --region R   ... from a miniSEED folder
    raydisc import-seisbench DATASET ARCHIVE   ... from a SeisBench-format dataset
    raydisc export-seisbench SHARDS|ARCHIVE OUT   write model inputs or raw traces as a SeisBench dataset
    raydisc preprocess ARCHIVE SHARDS   cut, clean and transform recordings into Parquet shards (Ray Data)
    raydisc summary SHARDS           counts per region/split/class and rejects per reason
    raydisc train SHARDS RUN_DIR     train a CNN ensemble on Ray Train -> RUN_DIR/bundle
    raydisc finetune BUNDLE SHARDS RUN_DIR --target REGION   fine-tune it on another region
    raydisc evaluate BUNDLE SHARDS   station- and event-level accuracy, best member vs ensemble
    raydisc sweep BUNDLE SHARDS --target REGION --out-dir DIR   accuracy vs amount of fine-tuning data (Ray Tune)
    raydisc report RUN_DIR           Markdown report of a cross-region experiment (jobs/crossregion.py)
    raydisc serve BUNDLE             HTTP endpoint (Ray Serve)
    raydisc reprocess BUNDLE OUT     classify whole archives (Ray Data)
    raydisc export BUNDLE OUT --format torchscript|onnx   the ensemble as one portable model

Real networks' data (vertical-only and 3-component stations, numbered horizontals,
mixed sampling rates, catalogs without picks, partial StationXML) go in as they are:
see `raydisc preprocess --help` and docs/real-data.md. `raydisc preprocess` also reads
a SeisBench dataset directly (ARCHIVE = the dataset folder).
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from .cli_options import add_verbose_argument
from .config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    """The ``raydisc`` parser: global options here, each package's subcommands from its
    own ``cli`` module's ``register`` (in the workflow order of ``--help``)."""
    from .data import cli as data_cli
    from .ensemble import cli as ensemble_cli
    from .evaluation import cli as evaluation_cli
    from .experiments import cli as experiments_cli
    from .reprocess import cli as reprocess_cli
    from .serving import cli as serving_cli
    from .synthetic import cli as synthetic_cli
    from .training import cli as training_cli

    parser = argparse.ArgumentParser(
        prog="raydisc",
        description="Earthquake vs. quarry-blast discrimination with CNN ensembles on Ray.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("::", 1)[1] if "::" in __doc__ else None,
    )
    add_verbose_argument(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for package in (synthetic_cli, data_cli, training_cli, evaluation_cli, experiments_cli, serving_cli,
                    reprocess_cli, ensemble_cli):
        package.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from .data.ingest import IngestError
    from .data.pipeline import PipelineError
    from .data.shards import ShardError
    from .ensemble.bundle import BundleError
    from .labels import LabelSchemeError
    from .training.ensemble import TrainingError

    try:
        return args.func(args)
    except (ConfigError, IngestError, PipelineError, ShardError, BundleError, TrainingError, LabelSchemeError,
            FileNotFoundError) as exc:
        print(f"raydisc {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
