"""Command line of ensemble training: ``raydisc train`` and ``finetune``; the options
are shared with ``jobs/pretrain.py`` and ``jobs/finetune.py``."""
from __future__ import annotations

import argparse
import dataclasses
import json

from ..cli_options import add_command, comma_list
from ..config import ConfigError
from ..ensemble.triage import DEFAULT_TARGET_ACCURACY


def add_train_options(parser: argparse.ArgumentParser, finetune: bool = False) -> None:
    """Options of ensemble training (everything but the shard folder and run directory),
    shared by ``raydisc train``/``finetune`` and ``jobs/pretrain.py``/``finetune.py``.
    Unset options take the values of ``--config`` or the
    :class:`~raydisc.training.TrainConfig` defaults (with ``finetune``: updated with
    :data:`~raydisc.training.finetune.FINETUNE_DEFAULTS`, plus ``--target`` and
    ``--freeze`` instead of ``--regions``)."""
    from ..models.freezing import FREEZE_STRATEGIES
    from ..training.config import TrainConfig
    from ..training.finetune import FINETUNE_DEFAULTS

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
    parser.add_argument("--target-accuracy", type=float, default=DEFAULT_TARGET_ACCURACY,
                        help="accuracy the automatically labelled events must reach on the validation split; "
                             "sets the bundle's triage threshold (default: %(default)s)")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", help="shard folder or URI made by `raydisc preprocess`")
    parser.add_argument("run_dir", help="run directory or URI for checkpoints, metrics and the bundle")
    add_train_options(parser)


def train_config_from_args(args: argparse.Namespace):
    """A :class:`~raydisc.training.TrainConfig` from ``--config`` and the flags."""
    from ..training.config import TrainConfig

    from ..training.finetune import FINETUNE_DEFAULTS

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
    from ..runtime import init_ray
    from ..training import train_ensemble

    config = train_config_from_args(args)
    regions = comma_list(args.regions)
    init_ray(args.address, verbose=args.verbose)
    # ends with lines naming the bundle and its triage threshold
    train_ensemble(args.shards, regions, config, args.run_dir, target_accuracy=args.target_accuracy)
    return 0


def add_finetune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="pretrained ensemble bundle folder or URI (only read)")
    parser.add_argument("shards", help="shard folder or URI holding the target region")
    parser.add_argument("run_dir", help="new run directory or URI for checkpoints, metrics and the fine-tuned bundle")
    add_train_options(parser, finetune=True)


def finetune_config_from_args(args: argparse.Namespace):
    """The fine-tuning :class:`~raydisc.training.TrainConfig` of ``args``: the
    architecture defaults to the pretrained bundle's."""
    from ..ensemble.bundle import read_manifest

    if not args.architecture:
        args.architecture = read_manifest(args.bundle)["architecture"]
    return train_config_from_args(args)


def run_finetune(args: argparse.Namespace) -> int:
    from ..runtime import init_ray
    from ..training.finetune import finetune_ensemble

    config = finetune_config_from_args(args)
    init_ray(args.address, verbose=args.verbose)
    finetune_ensemble(args.bundle, args.shards, args.target, config, args.run_dir,  # ends naming the bundle
                      target_accuracy=args.target_accuracy)
    return 0


def register(sub) -> None:
    """Add ``train`` and ``finetune`` to the subcommands ``sub`` of the ``raydisc`` parser."""
    add_command(sub, add_train_arguments, run_train, "train",
                help="train a CNN ensemble on Ray Train",
                description="Train an ensemble of one architecture on the train split of the given regions: "
                            "members with different seeds run as concurrent Ray Train runs, stream their "
                            "batches from the shards through Ray Data, checkpoint every epoch (restarts "
                            "resume), stop early on validation loss, and end in an ensemble bundle "
                            "RUN_DIR/bundle.")

    add_command(sub, add_finetune_arguments, run_finetune, "finetune",
                help="fine-tune a pretrained ensemble on a target region (Ray Train)",
                description="Fine-tune every member of a pretrained bundle on the train split of the "
                            "target region, concurrently on Ray Train, with the chosen layers frozen and "
                            "early stopping on the target's validation split; writes a new bundle "
                            "RUN_DIR/bundle (the pretrained bundle is only read).")
