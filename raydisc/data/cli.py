"""Command-line interface of the data sources: ``raydisc fetch``, ``import-folder``,
``import-seisbench`` and ``export-seisbench``.

Every importer writes a normal archive region (QuakeML + StationXML + per-event
miniSEED, see :mod:`raydisc.data.archive_writer`), so ``preprocess``, ``train``,
``evaluate`` and ``reprocess`` read what it made unchanged. A SeisBench dataset can
also go straight into ``raydisc preprocess`` (see :func:`add_seisbench_arguments`).
"""
from __future__ import annotations

import argparse
import json

from ..config import ConfigError


def _print_import(summary: dict, archive: str, region: str) -> None:
    rejects = ", ".join(f"{k} {v}" for k, v in sorted(summary["rejects"].items())) or "none"
    print(f"{region}: {summary['events']} events, {summary['written']} written, {summary['skipped']} already there; "
          f"rejects: {rejects}")
    if summary["rejects"]:
        print(f"what could not be used, and why: {summary.get('rejects_file') or archive}")
    print(f"archive: {archive} (next: raydisc preprocess {archive} SHARDS --regions {region})")


def add_fetch_arguments(parser: argparse.ArgumentParser) -> None:
    from .fdsn import DEFAULT_EVENT_TYPES, FetchConfig

    d = FetchConfig(region="x", starttime="2000-01-01", endtime="2000-01-02")
    parser.add_argument("service", help="FDSN web service base URL, e.g. https://service.iris.edu or http://localhost:8080")
    parser.add_argument("archive", help="archive folder or URI to write into (an existing region is continued)")
    parser.add_argument("--region", required=True, help="region name of the fetched data in the archive")
    parser.add_argument("--start", required=True, help="first origin time (ISO 8601, UTC)")
    parser.add_argument("--end", required=True, help="last origin time (ISO 8601, UTC)")
    parser.add_argument("--event-types", default=",".join(DEFAULT_EVENT_TYPES),
                        help="QuakeML event types to ask for, comma-separated (default: %(default)s)")
    parser.add_argument("--min-magnitude", type=float, help="smallest magnitude (default: any)")
    parser.add_argument("--box", metavar="LAT0,LAT1,LON0,LON1", help="epicentres within this box, degrees")
    parser.add_argument("--network", default=d.network, help="SEED network pattern (default: %(default)s)")
    parser.add_argument("--station", default=d.station, help="SEED station pattern (default: %(default)s)")
    parser.add_argument("--channel", default=d.channel, help="SEED channel patterns, comma-separated (default: %(default)s)")
    parser.add_argument("--max-distance", type=float, default=d.max_distance_km,
                        help="stations up to this epicentral distance, km (default: %(default)s)")
    parser.add_argument("--before", type=float, default=d.window_before_s,
                        help="seconds of data before the origin (default: %(default)s)")
    parser.add_argument("--after", type=float, default=d.window_after_s,
                        help="seconds of data after the origin (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=d.requests_per_second,
                        help="requests per second at most (default: %(default)s)")
    parser.add_argument("--retries", type=int, default=d.retries, help="retries of a failed request (default: %(default)s)")


def run_fetch(args: argparse.Namespace) -> int:
    from .fdsn import FetchConfig, fetch_archive

    box = {}
    if args.box:
        try:
            lat0, lat1, lon0, lon1 = (float(v) for v in args.box.split(","))
        except ValueError:
            raise ConfigError(f"--box: want LAT0,LAT1,LON0,LON1 in degrees, got {args.box!r}") from None
        box = dict(min_latitude=lat0, max_latitude=lat1, min_longitude=lon0, max_longitude=lon1)
    config = FetchConfig(
        region=args.region, starttime=args.start, endtime=args.end,
        event_types=tuple(t.strip() for t in args.event_types.split(",") if t.strip()),
        min_magnitude=args.min_magnitude, network=args.network, station=args.station, channel=args.channel,
        max_distance_km=args.max_distance, window_before_s=args.before, window_after_s=args.after,
        requests_per_second=args.rate, retries=args.retries, **box)
    summary = fetch_archive(args.service, args.archive, config)
    print(f"{summary['requests']} requests to {args.service}")
    _print_import(summary, args.archive, args.region)
    return 0


def add_import_folder_arguments(parser: argparse.ArgumentParser) -> None:
    from .folder import FolderImportConfig

    d = FolderImportConfig(region="x")
    parser.add_argument("waveforms", help="folder (or URI) of miniSEED files")
    parser.add_argument("labels", help="CSV with one row per event: id, origin time, latitude, longitude, depth, "
                                       "magnitude, type (column names: the options below)")
    parser.add_argument("stationxml", help="StationXML file or folder of StationXML files")
    parser.add_argument("archive", help="archive folder or URI to write into")
    parser.add_argument("--region", required=True, help="region name of the imported data")
    parser.add_argument("--match", choices=["pattern", "time"], default=d.match,
                        help="find an event's files by FILENAME pattern, or by the time span of every file "
                             "(default: %(default)s)")
    parser.add_argument("--pattern", default=d.filename_pattern,
                        help="file name glob with {event_id}, relative to the folder (default: %(default)s)")
    parser.add_argument("--glob", default=d.file_glob, help="files indexed with --match time (default: %(default)s)")
    parser.add_argument("--before", type=float, default=d.window_before_s,
                        help="--match time: seconds kept before the origin (default: %(default)s)")
    parser.add_argument("--after", type=float, default=d.window_after_s,
                        help="--match time: seconds kept after the origin (default: %(default)s)")
    parser.add_argument("--columns", metavar="JSON",
                        help='the table\'s column names where they differ from the defaults, e.g. '
                             '\'{"event_id": "evid", "type": "etype", "origin_time": "time"}\' (keys: event_id, '
                             'origin_time, latitude, longitude, depth (km), magnitude, type; defaults: '
                             f'{d.event_id_column}, {d.origin_time_column}, {d.latitude_column}, '
                             f'{d.longitude_column}, {d.depth_column}, {d.magnitude_column}, {d.type_column})')


def run_import_folder(args: argparse.Namespace) -> int:
    from .folder import FolderImportConfig, import_folder

    columns = {}
    if args.columns:
        try:
            columns = {f"{k}_column": v for k, v in json.loads(args.columns).items()}
        except (json.JSONDecodeError, AttributeError) as exc:
            raise ConfigError(f"--columns must be a JSON object: {exc}") from None
    config = FolderImportConfig.from_dict(dict(region=args.region, match=args.match, filename_pattern=args.pattern,
                                               file_glob=args.glob, window_before_s=args.before,
                                               window_after_s=args.after, **columns))
    summary = import_folder(args.waveforms, args.labels, args.stationxml, args.archive, config)
    _print_import(summary, args.archive, args.region)
    return 0


def add_seisbench_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of reading a SeisBench dataset (``preprocess`` and ``import-seisbench``)."""
    group = parser.add_argument_group("SeisBench datasets (metadata*.csv + waveforms*.hdf5)")
    group.add_argument("--seisbench-region", help="region name of the dataset (default: its folder's name)")
    group.add_argument("--seisbench-inventory", help="StationXML with the responses of the dataset's stations "
                                                     "(default: m/s traces as they are; counts need one or "
                                                     "--allow-missing-response)")
    group.add_argument("--seisbench-split", choices=["dataset", "raydisc"], default="dataset",
                       help="keep the dataset's split column (train/dev/test), or replace it by raydisc's "
                            "event-wise split (default: %(default)s)")
    group.add_argument("--seisbench-chunks", help="comma-separated chunks to read (default: all)")


def seisbench_config_from_args(args: argparse.Namespace):
    from .seisbench_source import SeisBenchConfig

    chunks = tuple(c.strip() for c in (args.seisbench_chunks or "").split(",") if c.strip())
    return SeisBenchConfig(region=args.seisbench_region or "", inventory=args.seisbench_inventory or "",
                           split=args.seisbench_split, chunks=chunks)


def add_import_seisbench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="SeisBench dataset folder or URI")
    parser.add_argument("archive", help="archive folder or URI to write into")
    add_seisbench_arguments(parser)


def run_import_seisbench(args: argparse.Namespace) -> int:
    from .seisbench_import import import_seisbench

    summary = import_seisbench(args.dataset, args.archive, seisbench_config_from_args(args))
    print(f"{summary['traces']} traces read")
    _print_import(summary, args.archive, summary["region"])
    return 0


def add_export_seisbench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a shard folder (its model inputs are exported) or an archive (raw traces)")
    parser.add_argument("out", help="output folder or URI of the SeisBench dataset")
    parser.add_argument("--regions", help="comma-separated regions (default: all)")
    parser.add_argument("--events-per-chunk", type=int, help="archives: chunk the dataset by this many events")
    parser.add_argument("--catalog", help="archives, one region: QuakeML to take the events and types from, e.g. "
                                          "a re-labelling run's OUTPUT/catalogs/REGION.xml (default: the region's)")


def run_export_seisbench(args: argparse.Namespace) -> int:
    from ..storage import exists, join
    from . import layout
    from .seisbench_export import export_archive, export_shards
    from .shards import DATASET_FILE

    regions = [r.strip() for r in (args.regions or "").split(",") if r.strip()] or None
    if exists(join(args.source, DATASET_FILE)):
        summary = export_shards(args.source, args.out, regions)
        print(f"{summary['traces']} model inputs of {', '.join(summary['chunks'])} -> {args.out}")
        return 0
    names = regions or layout.list_regions(args.source)
    if not names:
        raise FileNotFoundError(f"{args.source}: neither a shard folder nor an archive")
    # One dataset per region (OUT/REGION) keeps each region's chunks and splits apart.
    outs = {r: join(args.out, r) for r in names} if len(names) > 1 else {names[0]: args.out}
    if args.catalog and len(names) > 1:
        raise ConfigError("--catalog belongs to one region: name it with --regions")
    for region, out in outs.items():
        summary = export_archive(args.source, region, out, events_per_chunk=args.events_per_chunk,
                                 catalog=args.catalog)
        print(f"{region}: {summary['traces']} traces of {summary['events']} events in {summary['chunks']} chunk(s), "
              f"{len(summary['rejects'])} recordings not exported -> {out}")
    return 0


__all__ = ["add_export_seisbench_arguments", "add_fetch_arguments", "add_import_folder_arguments",
           "add_import_seisbench_arguments", "add_seisbench_arguments", "run_export_seisbench", "run_fetch",
           "run_import_folder", "run_import_seisbench", "seisbench_config_from_args"]
