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
import dataclasses
import json
import logging
import sys
from typing import Sequence

from .config import (ConfigError, PipelineConfig, PreprocessConfig, SplitConfig, add_raw_data_arguments,
                     raw_data_from_args)


def comma_list(text: str | None) -> list[str] | None:
    """``"alpine, basin"`` -> ``["alpine", "basin"]``; ``None`` for an empty option."""
    return [r.strip() for r in text.split(",") if r.strip()] if text else None


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


def run_generate(args: argparse.Namespace) -> int:
    import re

    from .synthetic import REGIONS, field_test_spec, generate_archive

    regions = comma_list(args.regions)
    unknown = sorted(set(regions or []) - set(REGIONS))
    if unknown:
        raise ConfigError(f"unknown region(s) {unknown}; built-in regions are {sorted(REGIONS)}")
    if args.events < 1:
        raise ConfigError("--events must be >= 1")
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
                               progress=sys.stderr.isatty(), specs=specs)
    for region, counts in summary.items():
        print(f"{region:<10} " + "  ".join(f"{k}={v}" for k, v in counts.items()))
    print(f"archive written to {args.archive}")
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
    add_raw_data_arguments(parser)
    from .data.cli import add_seisbench_arguments

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
    from .data.cli import seisbench_config_from_args
    from .data.pipeline import format_summary, run_preprocessing
    from .data.seisbench_format import is_seisbench_dataset
    from .data.seisbench_source import run_seisbench_preprocessing
    from .progress import Progress
    from .runtime import init_ray

    config = preprocess_config_from_args(args)
    init_ray(args.address, verbose=args.verbose)
    print(f"preprocessing {args.archive} into {args.shards}", flush=True)
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
                                                  split_config, pipeline_config, progress)
        else:
            summary = run_preprocessing(args.archive, args.shards, comma_list(args.regions), preprocess_config=config,
                                        split_config=split_config, pipeline_config=pipeline_config, progress=progress)
    print(format_summary(summary))
    print(f"shards in {args.shards} (`raydisc summary {args.shards}` shows these counts again)")
    return 0


def add_summary_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", help="shard folder or URI")


def run_summary(args: argparse.Namespace) -> int:
    from .data.pipeline import format_summary
    from .data.shards import read_dataset_info, summarize

    read_dataset_info(args.shards)
    print(format_summary(summarize(args.shards)))
    return 0


def add_train_options(parser: argparse.ArgumentParser, finetune: bool = False) -> None:
    """Options of ensemble training (everything but the shard folder and run directory),
    shared by ``raydisc train``/``finetune`` and ``jobs/pretrain.py``/``finetune.py``.
    Unset options take the values of ``--config`` or the
    :class:`~raydisc.training.TrainConfig` defaults (with ``finetune``: updated with
    :data:`~raydisc.training.finetune.FINETUNE_DEFAULTS`, plus ``--target`` and
    ``--freeze`` instead of ``--regions``)."""
    from .models.freezing import FREEZE_STRATEGIES
    from .training.config import TrainConfig
    from .training.finetune import FINETUNE_DEFAULTS

    # Field defaults, without instantiating (validation would import torch for --help).
    d = argparse.Namespace(**{**{f.name: f.default for f in dataclasses.fields(TrainConfig)},
                              **(FINETUNE_DEFAULTS if finetune else {})})
    parser.set_defaults(finetune=finetune)
    if finetune:
        parser.add_argument("--target", required=True, help="the region to fine-tune on, e.g. craton")
        parser.add_argument("--freeze", choices=FREEZE_STRATEGIES,
                            help="layers kept fixed: none, feature_extractor (the convolutional layers) or "
                                 f"all_but_head (everything but the output layer) (default: {d.freeze})")
    else:
        parser.add_argument("--regions", required=True, help="comma-separated regions to train on, e.g. alpine,basin")
    parser.add_argument("--config", dest="train_config_file", help="JSON file with TrainConfig fields (the flags below override it)")
    if finetune:
        parser.add_argument("--architecture", help="spectrogram_cnn or waveform_cnn (default: the bundle's; "
                                                   "another one is an error)")
    else:
        parser.add_argument("--architecture", help=f"spectrogram_cnn or waveform_cnn (default: {d.architecture})")
        parser.add_argument("--hparams", help='JSON object of model hyper-parameters, e.g. \'{"channels": [8, 16]}\'')
        parser.add_argument("--members", type=int, help=f"ensemble size (default: {d.members})")
    parser.add_argument("--seed", type=int, help=f"seed of member 0; member i uses seed+i (default: {d.base_seed})")
    parser.add_argument("--epochs", type=int, help=f"maximum epochs per member (default: {d.epochs})")
    parser.add_argument("--batch-size", type=int, help=f"recordings per mini-batch and worker (default: {d.batch_size})")
    parser.add_argument("--learning-rate", type=float, help=f"AdamW learning rate (default: {d.learning_rate})")
    parser.add_argument("--weight-decay", type=float, help=f"AdamW weight decay (default: {d.weight_decay})")
    parser.add_argument("--patience", type=int,
                        help=f"stop after this many epochs without a lower validation loss; 0: never (default: {d.patience})")
    parser.add_argument("--no-class-weights", action="store_true",
                        help="plain cross-entropy instead of weights inverse to the training class frequencies")
    parser.add_argument("--workers-per-member", type=int, help=f"Ray Train workers (DDP) per member (default: {d.workers_per_member})")
    parser.add_argument("--cpus-per-worker", type=float, help=f"CPUs per Ray Train worker (default: {d.cpus_per_worker})")
    parser.add_argument("--gpu", dest="use_gpu", action="store_const", const=True, help="train on GPUs (default: if the cluster has any)")
    parser.add_argument("--no-gpu", dest="use_gpu", action="store_const", const=False, help="train on CPUs even if GPUs exist")
    parser.add_argument("--max-failures", type=int, help=f"restarts per member after a worker failure (default: {d.max_failures})")
    parser.add_argument("--max-concurrent", type=int, help="members trained at the same time (default: as resources allow)")
    parser.add_argument("--drop-horizontals", type=float,
                        help="probability that a training recording is shown as vertical-only, so the ensemble "
                             f"serves Z-only and 3-component stations (default: {d.drop_horizontals})")
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS or a new local cluster)")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", help="shard folder or URI made by `raydisc preprocess`")
    parser.add_argument("run_dir", help="run directory or URI for checkpoints, metrics and the bundle")
    add_train_options(parser)


def train_config_from_args(args: argparse.Namespace):
    """A :class:`~raydisc.training.TrainConfig` from ``--config`` and the flags."""
    from .training.config import TrainConfig

    from .training.finetune import FINETUNE_DEFAULTS

    values: dict = dict(FINETUNE_DEFAULTS) if args.finetune else {}
    if args.train_config_file:
        with open(args.train_config_file) as f:
            values.update(json.load(f))
    hparams = None
    if getattr(args, "hparams", None):
        try:
            hparams = json.loads(args.hparams)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--hparams is not valid JSON: {exc}") from None
    overrides = {
        "architecture": args.architecture, "hparams": hparams, "members": getattr(args, "members", None),
        "freeze": getattr(args, "freeze", None), "base_seed": args.seed,
        "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
        "weight_decay": args.weight_decay, "workers_per_member": args.workers_per_member,
        "cpus_per_worker": args.cpus_per_worker, "use_gpu": args.use_gpu, "max_failures": args.max_failures,
        "max_concurrent_members": args.max_concurrent, "drop_horizontals": args.drop_horizontals,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    if args.patience is not None:
        values["patience"] = args.patience or None
    if args.no_class_weights:
        values["class_weighting"] = "none"
    return TrainConfig.from_dict(values)


def run_train(args: argparse.Namespace) -> int:
    from .runtime import init_ray
    from .training import train_ensemble

    config = train_config_from_args(args)
    regions = comma_list(args.regions)
    init_ray(args.address, verbose=args.verbose)
    train_ensemble(args.shards, regions, config, args.run_dir)  # ends with a line naming the bundle
    return 0


def add_finetune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="pretrained ensemble bundle folder or URI (only read)")
    parser.add_argument("shards", help="shard folder or URI holding the target region")
    parser.add_argument("run_dir", help="new run directory or URI for checkpoints, metrics and the fine-tuned bundle")
    add_train_options(parser, finetune=True)


def finetune_config_from_args(args: argparse.Namespace):
    """The fine-tuning :class:`~raydisc.training.TrainConfig` of ``args``: the
    architecture defaults to the pretrained bundle's."""
    from .ensemble.bundle import read_manifest

    if not args.architecture:
        args.architecture = read_manifest(args.bundle)["architecture"]
    return train_config_from_args(args)


def run_finetune(args: argparse.Namespace) -> int:
    from .runtime import init_ray
    from .training.finetune import finetune_ensemble

    config = finetune_config_from_args(args)
    init_ray(args.address, verbose=args.verbose)
    finetune_ensemble(args.bundle, args.shards, args.target, config, args.run_dir)  # ends naming the bundle
    return 0


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
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS or a new local cluster)")


def run_evaluate(args: argparse.Namespace) -> int:
    from .ensemble.bundle import read_manifest
    from .evaluation.evaluate import evaluate
    from .runtime import init_ray

    regions = comma_list(args.regions) or read_manifest(args.bundle).get("provenance", {}).get("regions")
    if not regions:
        raise ConfigError("--regions is required: the bundle does not record the regions it was trained on")
    init_ray(args.address, verbose=args.verbose)
    result = evaluate(args.bundle, args.shards, regions, split=args.split, out_dir=args.out_dir,
                      event_rule=args.event_rule, batch_size=args.batch_size, concurrency=args.concurrency,
                      plots=not args.no_plots, vertical_only=args.vertical_only)
    print(f"{args.split} split of {', '.join(regions)} (event rule: {args.event_rule}):")
    print(result.format())
    print(f"tables and figures: {result.out_dir}")
    return 0


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="experiment folder or URI")
    parser.add_argument("--out", help="report file (default: RUN_DIR/report.md; figures in a folder beside it)")


def run_report(args: argparse.Namespace) -> int:
    from .experiments.report import write_report

    print(write_report(args.run_dir, args.out))
    return 0


def _command(sub, add_arguments, run, name: str, **texts: str) -> None:
    """One subcommand: its parser (``help``, ``description``), arguments and function."""
    parser = sub.add_parser(name, **texts)
    add_arguments(parser)
    add_verbose_argument(parser, subcommand=True)
    parser.set_defaults(func=run)


def add_verbose_argument(parser: argparse.ArgumentParser, subcommand: bool = False) -> None:
    """``-v/--verbose``: raydisc's progress details, and Ray's own console output (logs
    of the driver and workers, Ray Data's bars), which otherwise stay in Ray's session
    logs (/tmp/ray/session_latest/logs). Accepted before and after the subcommand."""
    # A subcommand's default must not overwrite a -v given before the subcommand.
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS if subcommand else False,
                        help="progress details, and Ray's logs on the console instead of only in "
                             "/tmp/ray/session_latest/logs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raydisc",
        description="Earthquake vs. quarry-blast discrimination with CNN ensembles on Ray.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("::", 1)[1] if "::" in __doc__ else None,
    )
    add_verbose_argument(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _command(sub, add_generate_arguments, run_generate, "generate",
             help="write the built-in synthetic multi-region archive",
             description="Write synthetic regions as real miniSEED waveforms (counts), a QuakeML "
                         "catalog and a StationXML inventory with responses per region.")

    from .data import cli as sources

    _command(sub, sources.add_fetch_arguments, sources.run_fetch, "fetch",
             help="build an archive region from FDSN web services (event, station, dataselect)",
             description="Ask fdsnws-event for the events of a time span (by event type, magnitude, box), "
                         "fdsnws-station for the stations at response level, and fdsnws-dataselect (bulk "
                         "requests) for each event's waveforms at the stations within --max-distance; write "
                         "them as an archive region. Requests are rate-limited and retried; what failed is "
                         "recorded in REGION/import_rejects.csv; a re-run asks only for what is missing.")
    _command(sub, sources.add_import_folder_arguments, sources.run_import_folder, "import-folder",
             help="build an archive region from a miniSEED folder and a label CSV",
             description="Write a catalog from the label table, copy the StationXML, and gather each "
                         "event's miniSEED by file name pattern or by time window; rows and files that "
                         "cannot be used are recorded in REGION/import_rejects.csv.")
    _command(sub, sources.add_import_seisbench_arguments, sources.run_import_seisbench, "import-seisbench",
             help="write a SeisBench-format dataset as an archive region (for re-labelling)",
             description="Write a SeisBench dataset's events (QuakeML, with its P picks), stations "
                         "(StationXML: --seisbench-inventory, or one from the metadata columns) and traces "
                         "(per-event miniSEED) as an archive region. `raydisc preprocess` reads datasets "
                         "directly; this is for the tools that want a catalog (reprocess, serve URIs).")
    _command(sub, sources.add_export_seisbench_arguments, sources.run_export_seisbench, "export-seisbench",
             help="write shards (model inputs) or an archive (raw traces) as a SeisBench dataset",
             description="A shard folder: its model inputs (Z, N, E at the target rate) with labels and "
                         "splits, one chunk per region. An archive: each usable station recording's raw "
                         "traces in counts with the catalog's picks and raydisc's split; read back with "
                         "the region's StationXML, it gives the archive's model inputs.")

    _command(sub, add_preprocess_arguments, run_preprocess, "preprocess",
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

    _command(sub, add_summary_arguments, run_summary, "summary",
             help="counts per region/split/class and rejects of a shard folder")

    _command(sub, add_train_arguments, run_train, "train",
             help="train a CNN ensemble on Ray Train",
             description="Train an ensemble of one architecture on the train split of the given regions: "
                         "members with different seeds run as concurrent Ray Train runs, stream their "
                         "batches from the shards through Ray Data, checkpoint every epoch (restarts "
                         "resume), stop early on validation loss, and end in an ensemble bundle "
                         "RUN_DIR/bundle.")

    _command(sub, add_finetune_arguments, run_finetune, "finetune",
             help="fine-tune a pretrained ensemble on a target region (Ray Train)",
             description="Fine-tune every member of a pretrained bundle on the train split of the "
                         "target region, concurrently on Ray Train, with the chosen layers frozen and "
                         "early stopping on the target's validation split; writes a new bundle "
                         "RUN_DIR/bundle (the pretrained bundle is only read).")

    _command(sub, add_evaluate_arguments, run_evaluate, "evaluate",
             help="station- and event-level metrics of a bundle on a split",
             description="Predict every member on a split's recordings (Ray Data), and compare the best "
                         "single member with the soft-voting ensemble at station and event level; "
                         "writes tables (CSV/Parquet) and figures (PNG).")

    from .experiments.sweep import add_sweep_arguments, run_sweep_command

    _command(sub, add_sweep_arguments, run_sweep_command, "sweep",
             help="Ray Tune sweep over the fraction of target data given to fine-tuning",
             description="Fine-tune a pretrained bundle's best member on nested, class-stratified "
                         "fractions of the target region's training events (and train from scratch on "
                         "the same events), several seeds each, as Ray Tune trials; writes a tidy "
                         "results table, failed trials and the learning curve. Re-running resumes.")

    _command(sub, add_report_arguments, run_report, "report",
             help="Markdown report of a cross-region experiment, from its stored tables",
             description="Rebuild the report of a leave-one-region-out experiment (jobs/crossregion.py) "
                         "from RUN_DIR/results and RUN_DIR/sweep, without retraining: accuracy tables "
                         "(architecture x target x stage x model x level), minority-class recall, the "
                         "headline check, bar charts, confusion matrices, the fine-tuning data sweep.")

    from .ensemble.export import add_export_arguments, run_export
    from .reprocess.cli import add_reprocess_arguments, run_reprocess
    from .serving.cli import add_serve_arguments, run_serve

    _command(sub, add_serve_arguments, run_serve, "serve",
             help="HTTP classification endpoint for a bundle (Ray Serve)",
             description="Deploy the soft-voting ensemble of BUNDLE behind an HTTP API (OpenAPI at "
                         "/v1/openapi.json): miniSEED, JSON arrays or object-storage URIs of one event "
                         "in, per-station probabilities, member votes, spread and the event verdict out.")

    _command(sub, add_reprocess_arguments, run_reprocess, "reprocess",
             help="classify whole archives with a bundle (Ray Data batch inference)",
             description="Classify every station recording of every catalog event of one or more "
                         "regions; write station and event tables (Parquet), annotated QuakeML, and the "
                         "events whose verdict contradicts the catalog. Re-runs finish what is missing.")

    _command(sub, add_export_arguments, run_export, "export",
             help="write the soft-voted ensemble as TorchScript or ONNX (model input -> probabilities)",
             description="Export the fused members of BUNDLE with the soft vote as one model, float32 "
                         "(batch, *input_shape) preprocessed input -> (batch, n_classes) probabilities, for "
                         "use outside Python and Ray; OUT.json beside it names the input, classes and "
                         "preprocessing. Checked against the bundle unless --no-check.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from .data.ingest import IngestError
    from .data.pipeline import PipelineError
    from .data.shards import ShardError
    from .ensemble.bundle import BundleError
    from .training.ensemble import TrainingError

    try:
        return args.func(args)
    except (ConfigError, IngestError, PipelineError, ShardError, BundleError, TrainingError, FileNotFoundError) as exc:
        print(f"raydisc {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
