"""Command-line interface of the data sources: ``raydisc fetch``, ``import-folder``,
``import-seisbench`` and ``export-seisbench``; ``raydisc preprocess`` and ``summary``.

Every importer writes a normal archive region (QuakeML + StationXML + per-event
miniSEED, see :mod:`raydisc.data.archive_writer`), so ``preprocess``, ``train``,
``evaluate`` and ``reprocess`` read what it made unchanged. A SeisBench dataset can
also go straight into ``raydisc preprocess`` (see :func:`add_seisbench_arguments`).
"""
from __future__ import annotations

import argparse
import json

from ..cli_options import add_command, comma_list
from ..config import (ConfigError, PipelineConfig, PreprocessConfig, SplitConfig, add_raw_data_arguments,
                      raw_data_from_args)
from ..labels import DEFAULT_SCHEME, scheme_named


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
    parser.add_argument("--label-scheme", default=DEFAULT_SCHEME.name, metavar="binary|four-class|PATH.json",
                        help="classes the catalog's event types map to: a built-in scheme or a JSON file "
                             '{"name", "version", "classes": [...], "event_types": {type: class}}; unmapped types '
                             "are rejected unknown_event_type (default: %(default)s)")
    parser.add_argument("--events-per-shard", type=int, default=PipelineConfig().events_per_shard,
                        help="events per Parquet shard (default: %(default)s)")
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS or a new local cluster)")
    add_raw_data_arguments(parser)
    add_seisbench_arguments(parser)


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
    values.update(raw_data_from_args(args))
    return PreprocessConfig.from_dict(values)


def run_preprocess(args: argparse.Namespace) -> int:
    from .pipeline import format_summary, run_preprocessing
    from .seisbench_format import is_seisbench_dataset
    from .seisbench_source import run_seisbench_preprocessing
    from ..progress import Progress
    from ..runtime import init_ray

    config = preprocess_config_from_args(args)
    scheme = scheme_named(args.label_scheme)
    init_ray(args.address, verbose=args.verbose)
    print(f"preprocessing {args.archive} into {args.shards} (label scheme {scheme.describe()})", flush=True)
    with Progress("preprocessing", unit="shards") as bar:
        def progress(row: dict, total: int) -> None:
            bar.total = total
            bar.update(note=f"last: {row['region']} {row['recordings']} recordings, {row['rejects']} rejects")

        split_config = SplitConfig(seed=args.split_seed)
        pipeline_config = PipelineConfig(events_per_shard=args.events_per_shard)
        if is_seisbench_dataset(args.archive):
            if args.regions:
                raise ConfigError("--regions selects regions of an archive; a SeisBench dataset is one region "
                                  "(name it with --seisbench-region)")
            summary = run_seisbench_preprocessing(args.archive, args.shards, seisbench_config_from_args(args), config,
                                                  split_config, pipeline_config, progress, label_scheme=scheme)
        else:
            summary = run_preprocessing(args.archive, args.shards, comma_list(args.regions), preprocess_config=config,
                                        split_config=split_config, pipeline_config=pipeline_config, progress=progress,
                                        label_scheme=scheme)
    print(format_summary(summary))
    print(f"shards in {args.shards} (`raydisc summary {args.shards}` shows these counts again)")
    return 0


def add_summary_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", help="shard folder or URI")


def run_summary(args: argparse.Namespace) -> int:
    from .pipeline import format_summary
    from .shards import read_dataset_info, summarize

    read_dataset_info(args.shards)
    print(format_summary(summarize(args.shards)))
    return 0


def register(sub) -> None:
    """Add ``fetch``, ``import-folder``, ``import-seisbench``, ``export-seisbench``,
    ``preprocess`` and ``summary`` to the subcommands ``sub`` of the ``raydisc`` parser."""
    add_command(sub, add_fetch_arguments, run_fetch, "fetch",
                help="build an archive region from FDSN web services (event, station, dataselect)",
                description="Ask fdsnws-event for the events of a time span (by event type, magnitude, box), "
                            "fdsnws-station for the stations at response level, and fdsnws-dataselect (bulk "
                            "requests) for each event's waveforms at the stations within --max-distance; write "
                            "them as an archive region. Requests are rate-limited and retried; what failed is "
                            "recorded in REGION/import_rejects.csv; a re-run asks only for what is missing.")
    add_command(sub, add_import_folder_arguments, run_import_folder, "import-folder",
                help="build an archive region from a miniSEED folder and a label CSV",
                description="Write a catalog from the label table, copy the StationXML, and gather each "
                            "event's miniSEED by file name pattern or by time window; rows and files that "
                            "cannot be used are recorded in REGION/import_rejects.csv.")
    add_command(sub, add_import_seisbench_arguments, run_import_seisbench, "import-seisbench",
                help="write a SeisBench-format dataset as an archive region (for re-labelling)",
                description="Write a SeisBench dataset's events (QuakeML, with its P picks), stations "
                            "(StationXML: --seisbench-inventory, or one from the metadata columns) and traces "
                            "(per-event miniSEED) as an archive region. `raydisc preprocess` reads datasets "
                            "directly; this is for the tools that want a catalog (reprocess, serve URIs).")
    add_command(sub, add_export_seisbench_arguments, run_export_seisbench, "export-seisbench",
                help="write shards (model inputs) or an archive (raw traces) as a SeisBench dataset",
                description="A shard folder: its model inputs (Z, N, E at the target rate) with labels and "
                            "splits, one chunk per region. An archive: each usable station recording's raw "
                            "traces in counts with the catalog's picks and raydisc's split; read back with "
                            "the region's StationXML, it gives the archive's model inputs.")

    add_command(sub, add_preprocess_arguments, run_preprocess, "preprocess",
                help="turn an archive into Parquet shards (Ray Data)",
                description="Read catalog + inventory + miniSEED with ObsPy, cut each station's window (1, 2 or 3 "
                            "components: Z-only stations, 1/2 horizontals rotated to N/E; the best band by "
                            "--channel-priority; around the catalog's P pick or, without one, the P arrival "
                            "predicted from the origin), remove the full instrument response, band-pass, "
                            "resample (any rate >= 38 Hz), and write spectrograms and normalised waveforms into "
                            "Parquet shards per region, with an event-wise train/validation/test split. "
                            "Unusable recordings go to a rejects table with the reason; stations without data "
                            "are counted apart. Re-running skips complete shards. ARCHIVE holds "
                            "{region}/catalog.xml (QuakeML), {region}/inventory.xml (StationXML, complete or "
                            "partial) and {region}/waveforms/{event_id}.mseed; see docs/real-data.md.")

    add_command(sub, add_summary_arguments, run_summary, "summary",
                help="counts per region/split/class and rejects of a shard folder")


__all__ = [
    "add_export_seisbench_arguments",
    "add_fetch_arguments",
    "add_import_folder_arguments",
    "add_import_seisbench_arguments",
    "add_preprocess_arguments",
    "add_seisbench_arguments",
    "add_summary_arguments",
    "preprocess_config_from_args",
    "register",
    "run_export_seisbench",
    "run_fetch",
    "run_import_folder",
    "run_import_seisbench",
    "run_preprocess",
    "run_summary",
    "seisbench_config_from_args",
]
