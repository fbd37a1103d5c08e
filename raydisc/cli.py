"""The ``raydisc`` command line: a thin layer over the library.

Each subcommand is one step of the workflow::

    raydisc generate ARCHIVE         write the built-in synthetic regions (miniSEED, QuakeML, StationXML)
    raydisc preprocess ARCHIVE SHARDS   cut, clean and transform recordings into Parquet shards (Ray Data)
    raydisc summary SHARDS           counts per region/split/class and rejects per reason
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Sequence

from .config import ConfigError, PipelineConfig, PreprocessConfig, SplitConfig


def _regions(text: str | None) -> list[str] | None:
    return [r.strip() for r in text.split(",") if r.strip()] if text else None


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", help="output folder or URI (e.g. ./data/archive or s3://bucket/archive)")
    parser.add_argument("--regions", help="comma-separated region names (default: all built-in regions)")
    parser.add_argument("--events", type=int, default=200, help="events per region (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")


def run_generate(args: argparse.Namespace) -> int:
    from .synthetic import REGIONS, generate_archive

    regions = _regions(args.regions)
    unknown = sorted(set(regions or []) - set(REGIONS))
    if unknown:
        raise ConfigError(f"unknown region(s) {unknown}; built-in regions are {sorted(REGIONS)}")
    if args.events < 1:
        raise ConfigError("--events must be >= 1")
    summary = generate_archive(args.archive, regions, events_per_region=args.events, seed=args.seed, progress=True)
    for region, counts in summary.items():
        print(f"{region:<10} " + "  ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


def add_preprocess_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = PreprocessConfig()
    parser.add_argument("archive", help="waveform archive folder or URI ({region}/catalog.xml, inventory.xml, waveforms/)")
    parser.add_argument("shards", help="output folder or URI for the Parquet shards")
    parser.add_argument("--regions", help="comma-separated regions (default: every region in the archive)")
    parser.add_argument("--config", help="JSON file with PreprocessConfig fields (the flags below override it)")
    parser.add_argument("--window-reference", choices=["p_arrival", "origin"],
                        help=f"cut the window around the station's P pick or the origin time (default: {defaults.window_reference})")
    parser.add_argument("--window-start", type=float, help=f"window start relative to the reference, s (default: {defaults.window_start_s})")
    parser.add_argument("--window-length", type=float, help=f"window length, s (default: {defaults.window_length_s})")
    parser.add_argument("--target-rate", type=float, help=f"common sampling rate, Hz (default: {defaults.target_rate_hz})")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the event-wise split (default: %(default)s)")
    parser.add_argument("--events-per-shard", type=int, default=PipelineConfig().events_per_shard,
                        help="events per Parquet shard (default: %(default)s)")
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS or a new local cluster)")


def preprocess_config_from_args(args: argparse.Namespace) -> PreprocessConfig:
    values = {}
    if args.config:
        with open(args.config) as f:
            values = json.load(f)
    overrides = {
        "window_reference": args.window_reference,
        "window_start_s": args.window_start,
        "window_length_s": args.window_length,
        "target_rate_hz": args.target_rate,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return PreprocessConfig.from_dict(values)


def run_preprocess(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .data.pipeline import format_summary, run_preprocessing
    from .runtime import init_ray

    config = preprocess_config_from_args(args)
    init_ray(args.address)
    with tqdm(desc="shards", unit="shard") as bar:
        def progress(row: dict, total: int) -> None:
            bar.total = total
            bar.update(1)
            bar.set_postfix(region=row["region"], recordings=row["recordings"], rejects=row["rejects"])

        summary = run_preprocessing(
            args.archive,
            args.shards,
            _regions(args.regions),
            preprocess_config=config,
            split_config=SplitConfig(seed=args.split_seed),
            pipeline_config=PipelineConfig(events_per_shard=args.events_per_shard),
            progress=progress,
        )
    print(format_summary(summary))
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from .data.pipeline import format_summary
    from .data.shards import read_dataset_info, summarize

    read_dataset_info(args.shards)
    print(format_summary(summarize(args.shards)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raydisc",
        description="Earthquake vs. quarry-blast discrimination with CNN ensembles on Ray.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("::", 1)[1] if "::" in __doc__ else None,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("generate", help="write the built-in synthetic multi-region archive",
                       description="Write synthetic regions as real miniSEED waveforms (counts), a QuakeML "
                                   "catalog and a StationXML inventory with responses per region.")
    add_generate_arguments(p)
    p.set_defaults(func=run_generate)

    p = sub.add_parser("preprocess", help="turn an archive into Parquet shards (Ray Data)",
                       description="Read catalog + inventory + miniSEED with ObsPy, cut each station's 3-component "
                                   "window, remove the sensitivity, band-pass, resample, and write spectrograms and "
                                   "normalised waveforms into Parquet shards per region, with an event-wise "
                                   "train/validation/test split. Unusable recordings go to a rejects table with "
                                   "the reason. Re-running skips complete shards.")
    add_preprocess_arguments(p)
    p.set_defaults(func=run_preprocess)

    p = sub.add_parser("summary", help="counts per region/split/class and rejects of a shard folder")
    p.add_argument("shards", help="shard folder or URI")
    p.set_defaults(func=run_summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from .data.ingest import IngestError
    from .data.shards import ShardError

    try:
        return args.func(args)
    except (ConfigError, IngestError, ShardError, FileNotFoundError) as exc:
        print(f"raydisc {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
