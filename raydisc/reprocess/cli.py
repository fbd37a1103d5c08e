"""Command-line interface of ``raydisc reprocess`` / ``jobs/reprocess.py``.

Two ways to name the inputs (they can be combined)::

    --archive ROOT [--regions a,b]          archive in raydisc layout (local or s3://)
    --region R --catalog URI --inventory URI --waveforms URI [--waveform-format sds]
                                            explicit triple; repeat the group per region
"""
from __future__ import annotations

import argparse

from ..cli_options import add_command
from ..config import add_raw_data_arguments, raw_data_from_args
from .pipeline import ReprocessConfig, format_summary, reprocess_archives
from .sources import WAVEFORM_FORMATS, RegionSource, sources_from_archive


def add_reprocess_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the reprocess options to ``parser`` (a sub-command parser or a job's own)."""
    parser.add_argument("bundle", help="ensemble bundle URI (local path or s3://...)")
    parser.add_argument("output", help="output URI: tables, annotated catalogs, review lists")
    parser.add_argument("--archive", help="archive root in raydisc layout ({region}/catalog.xml ...)")
    parser.add_argument("--regions", help="comma-separated regions of --archive (default: all)")
    parser.add_argument("--region", action="append", default=[], help="explicit region name (repeatable)")
    parser.add_argument("--catalog", action="append", default=[], help="QuakeML URI, one per --region")
    parser.add_argument("--inventory", action="append", default=[], help="StationXML URI, one per --region")
    parser.add_argument("--waveforms", action="append", default=[],
                        help="per-event miniSEED folder ({event_id}.mseed) or SDS root, one per --region")
    parser.add_argument("--waveform-format", action="append", default=[], choices=WAVEFORM_FORMATS,
                        help="'events' (default) or 'sds'; once for all regions or once per --region")
    parser.add_argument("--events-per-chunk", type=int, default=ReprocessConfig.events_per_chunk,
                        help="events per output partition (unit of atomic writing and resuming)")
    parser.add_argument("--batch-size", type=int, default=ReprocessConfig.batch_size,
                        help="recordings per inference batch")
    parser.add_argument("--actors", type=int, default=ReprocessConfig.actors, help="inference actors")
    parser.add_argument("--cpus-per-actor", type=float, default=ReprocessConfig.cpus_per_actor)
    parser.add_argument("--gpus-per-actor", type=float, default=None,
                        help="default: 1 when the cluster has GPUs, else 0")
    parser.add_argument("--review-below", type=float, default=None, metavar="P",
                        help="events whose confidence (calibrated probability of the verdict) is below P in [0, 1] "
                             "get triage 'review' and go to the review list (default: the bundle's threshold)")
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or a local cluster)")
    # How this archive's raw data is read; unset options keep the bundle's settings.
    add_raw_data_arguments(parser)


def sources_from_args(args: argparse.Namespace) -> list[RegionSource]:
    """The region sources named on the command line; ``ValueError`` if inconsistent."""
    sources = []
    if args.archive:
        regions = [r for r in (args.regions or "").split(",") if r]
        sources += sources_from_archive(args.archive, regions or None)
    elif args.regions:
        raise ValueError("--regions selects regions of --archive; give --archive too")
    n = len(args.region)
    if any(len(v) != n for v in (args.catalog, args.inventory, args.waveforms)):
        raise ValueError("give one --catalog, --inventory and --waveforms per --region")
    formats = args.waveform_format
    if len(formats) not in (0, 1, n) or (formats and n == 0):
        raise ValueError("give --waveform-format once for all --region groups or once per --region")
    for i in range(n):
        fmt = formats[i] if len(formats) == n else (formats[0] if formats else "events")
        sources.append(RegionSource(args.region[i], args.catalog[i], args.inventory[i], args.waveforms[i], fmt))
    if not sources:
        raise ValueError("no inputs: give --archive ROOT or --region/--catalog/--inventory/--waveforms")
    return sources


def run_reprocess(args: argparse.Namespace) -> int:
    """Run the reprocessing job for parsed ``args``; prints the summary; exit status."""
    from ..progress import Progress
    from ..runtime import init_ray

    sources = sources_from_args(args)
    config = ReprocessConfig(events_per_chunk=args.events_per_chunk, batch_size=args.batch_size, actors=args.actors,
                             cpus_per_actor=args.cpus_per_actor, gpus_per_actor=args.gpus_per_actor)
    init_ray(args.address, verbose=getattr(args, "verbose", False))
    print(f"re-labelling {', '.join(s.region for s in sources)} with {args.bundle}", flush=True)
    with Progress("re-labelling", unit="chunks") as bar:
        summary = reprocess_archives(sources, args.bundle, args.output, config, reading=raw_data_from_args(args),
                                     review_below=args.review_below,
                                     progress=lambda row: bar.update(
                                         note=f"last: {row['region']} {row['recordings']} recordings"))
    print(format_summary(summary))
    print(f"tables, annotated catalogs and review lists in {args.output}")
    return 0


def register(sub) -> None:
    """Add ``reprocess`` to the subcommands ``sub`` of the ``raydisc`` parser."""
    add_command(sub, add_reprocess_arguments, run_reprocess, "reprocess",
                help="classify whole archives with a bundle (Ray Data batch inference)",
                description="Classify every station recording of every catalog event of one or more "
                            "regions; write station and event tables (Parquet), annotated QuakeML, and the "
                            "events whose verdict contradicts the catalog. Re-runs finish what is missing.")


__all__ = ["register", "add_reprocess_arguments", "run_reprocess", "sources_from_args"]
