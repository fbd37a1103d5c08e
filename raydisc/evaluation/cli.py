"""Command line of the evaluation: ``raydisc evaluate``."""
from __future__ import annotations

import argparse

from ..cli_options import add_command, comma_list
from ..config import ConfigError
from ..ensemble.triage import DEFAULT_TARGET_ACCURACY


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="ensemble bundle folder or URI (e.g. RUN_DIR/bundle)")
    parser.add_argument("shards", help="shard folder or URI made with the bundle's preprocessing config")
    parser.add_argument("--regions", help="comma-separated regions (default: the regions the bundle was trained on)")
    parser.add_argument("--split", default="test", choices=["train", "validation", "test"],
                        help="split to evaluate (default: %(default)s)")
    parser.add_argument("--event-rule", default="mean", choices=["mean", "majority"],
                        help="combine an event's stations by mean probability or majority vote (default: %(default)s)")
    parser.add_argument("--out-dir", help="output folder or URI (default: BUNDLE/../evaluation-SPLIT)")
    parser.add_argument("--batch-size", type=int, default=256, help="recordings per prediction batch (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=1, help="predictor actors (default: %(default)s)")
    parser.add_argument("--no-plots", action="store_true", help="write tables only")
    parser.add_argument("--vertical-only", action="store_true",
                        help="classify every recording with its horizontals dropped, as a vertical-only station "
                             "would have recorded it (the accuracy cost of Z-only stations on the same data)")
    parser.add_argument("--target-accuracy", type=float, default=DEFAULT_TARGET_ACCURACY,
                        help="accuracy the automatically labelled events must reach: the triage threshold and the "
                             "share of events labelled automatically at it, ensemble vs best member "
                             "(default: %(default)s)")
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS or a new local cluster)")


def run_evaluate(args: argparse.Namespace) -> int:
    from ..ensemble.bundle import read_manifest
    from ..evaluation.evaluate import evaluate
    from ..runtime import init_ray

    regions = comma_list(args.regions) or read_manifest(args.bundle).get("provenance", {}).get("regions")
    if not regions:
        raise ConfigError("--regions is required: the bundle does not record the regions it was trained on")
    init_ray(args.address, verbose=args.verbose)
    result = evaluate(args.bundle, args.shards, regions, split=args.split, out_dir=args.out_dir,
                      event_rule=args.event_rule, batch_size=args.batch_size, concurrency=args.concurrency,
                      plots=not args.no_plots, vertical_only=args.vertical_only,
                      target_accuracy=args.target_accuracy)
    print(f"{args.split} split of {', '.join(regions)} (event rule: {args.event_rule}):")
    print(result.format())
    print(f"tables and figures: {result.out_dir}")
    return 0


def register(sub) -> None:
    """Add ``evaluate`` to the subcommands ``sub`` of the ``raydisc`` parser."""
    add_command(sub, add_evaluate_arguments, run_evaluate, "evaluate",
                help="station- and event-level metrics of a bundle on a split",
                description="Predict every member on a split's recordings (Ray Data), and compare the best "
                            "single member with the soft-voting ensemble at station and event level; "
                            "writes tables (CSV/Parquet) and figures (PNG).")
