"""Command line of the synthetic data: ``raydisc generate``."""
from __future__ import annotations

import argparse
import sys

from ..cli_options import add_command, comma_list
from ..config import ConfigError


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", help="output folder or URI (e.g. ./data/archive or s3://bucket/archive)")
    parser.add_argument("--regions", help="comma-separated region names (default: all built-in regions)")
    parser.add_argument("--events", type=int, default=200, help="events per region (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--field-test", metavar="NAME",
                        help="also write a field-test region NAME: basin's physics recorded like a messy field "
                             "network (mostly vertical-only short-period stations at 20-500 Hz, no picks, "
                             "incomplete StationXML, a dual-sensor station, one garbled miniSEED file); "
                             "ground truth in NAME/stations.csv and NAME/truth.csv")
    parser.add_argument("--noise-fraction", type=float, default=None, metavar="F",
                        help="share (0-0.5) of each region's events that are noise windows: catalog type "
                             "'not existing', an origin without magnitude or picks, recordings of ambient "
                             "noise only (default: 0)")
    parser.add_argument("--surface-fraction", type=float, default=None, metavar="F",
                        help="share (0-0.5) of each region's events that are surface events (landslide, "
                             "rockslide, snow avalanche as the region has them; emergent, long, 1-5 Hz, "
                             "no picks) (default: 0)")
    parser.add_argument("--four-class", action="store_true",
                        help="data for a four-class scheme: noise and surface shares of 0.2 each unless "
                             "--noise-fraction/--surface-fraction say otherwise")


def run_generate(args: argparse.Namespace) -> int:
    import re

    from ..synthetic import FOUR_CLASS_MIX, REGIONS, ClassMix, field_test_spec, generate_archive

    regions = comma_list(args.regions)
    unknown = sorted(set(regions or []) - set(REGIONS))
    if unknown:
        raise ConfigError(f"unknown region(s) {unknown}; built-in regions are {sorted(REGIONS)}")
    if args.events < 1:
        raise ConfigError("--events must be >= 1")
    base = FOUR_CLASS_MIX if args.four_class else ClassMix()
    try:
        mix = ClassMix(
            noise_fraction=base.noise_fraction if args.noise_fraction is None else args.noise_fraction,
            surface_fraction=base.surface_fraction if args.surface_fraction is None else args.surface_fraction,
        )
    except ValueError as exc:
        raise ConfigError(f"--noise-fraction/--surface-fraction: {exc}") from None
    specs = {}
    if args.field_test is not None:
        name = args.field_test
        if name in REGIONS or not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise ConfigError(f"--field-test: {name!r} must be a new name of letters, digits and '_'")
        specs[name] = field_test_spec(REGIONS["basin"], name=name)
        regions = (regions or list(REGIONS)) + [name]
    print(f"writing {args.events} synthetic events per region to {args.archive}", flush=True)
    # A bar per region in a terminal; in a log the summary lines below say it all.
    summary = generate_archive(args.archive, regions, events_per_region=args.events, seed=args.seed,
                               progress=sys.stderr.isatty(), specs=specs, mix=mix)
    for region, counts in summary.items():
        print(f"{region:<10} " + "  ".join(f"{k}={v}" for k, v in counts.items()))
    print(f"archive written to {args.archive}")
    return 0


def register(sub) -> None:
    """Add ``generate`` to the subcommands ``sub`` of the ``raydisc`` parser."""
    add_command(sub, add_generate_arguments, run_generate, "generate",
                help="write the built-in synthetic multi-region archive",
                description="Write synthetic regions as real miniSEED waveforms (counts), a QuakeML "
                            "catalog and a StationXML inventory with responses per region.")
