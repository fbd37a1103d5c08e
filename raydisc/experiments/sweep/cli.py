"""Command line of the sweep: ``raydisc sweep`` and ``jobs/sweep_fractions.py``."""
from __future__ import annotations

import argparse
import json
from typing import Any

from ...config import ConfigError
from .config import DEFAULT_FRACTIONS, MODES, SweepConfig


def _list(text: str | None, convert, name: str):
    if text is None:
        return None
    try:
        return tuple(convert(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--{name}: cannot parse {text!r}") from None


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``raydisc sweep`` and ``jobs/sweep_fractions.py``."""
    d = SweepConfig.__dataclass_fields__
    parser.add_argument("bundle", help="pretrained ensemble bundle folder or URI (only read)")
    parser.add_argument("shards", help="shard folder or URI holding the target region")
    parser.add_argument("--target", required=True, help="region to fine-tune on, e.g. craton")
    parser.add_argument("--out-dir", required=True, help="sweep directory or URI (Tune state, trials, results); "
                                                         "an existing sweep there is resumed")
    parser.add_argument("--fractions", help="comma-separated fractions of the target's training events "
                                            f"(default: {','.join(f'{f:g}' for f in DEFAULT_FRACTIONS)})")
    parser.add_argument("--seeds", help="number of seeds N (seeds 0..N-1) or a comma-separated list "
                                        f"(default: {len(d['seeds'].default)})")
    parser.add_argument("--modes", help=f"comma-separated subset of {','.join(MODES)} (default: both)")
    parser.add_argument("--strategies", help="comma-separated freeze strategies for fine-tuned trials: none, "
                                             "feature_extractor, all_but_head (default: none)")
    parser.add_argument("--learning-rates", help="comma-separated learning rates tried in both modes "
                                                 "(default: 1e-4 fine-tuned, 1e-3 from scratch)")
    parser.add_argument("--epochs", type=int, help="maximum epochs per trial (default: 10 fine-tuned, 30 scratch)")
    parser.add_argument("--patience", type=int, help="early-stopping patience (default: 3 fine-tuned, 5 scratch)")
    parser.add_argument("--batch-size", type=int, help=f"mini-batch size (default: {d['batch_size'].default})")
    parser.add_argument("--cpus-per-trial", type=float, help=f"CPUs of a trial's training worker (default: {d['cpus_per_trial'].default})")
    parser.add_argument("--gpus-per-trial", type=float, help="GPUs of a trial's training worker (default: 0)")
    parser.add_argument("--max-concurrent", type=int, help="trials at once (default: as the cluster's resources allow)")
    parser.add_argument("--config", dest="sweep_config_file", help="JSON file with SweepConfig fields (flags override it)")
    parser.add_argument("--retry-failed", action="store_true", help="when resuming, rerun trials that failed")
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS or a new local cluster)")


def sweep_config_from_args(args: argparse.Namespace) -> SweepConfig:
    values: dict[str, Any] = {}
    if args.sweep_config_file:
        with open(args.sweep_config_file) as f:
            values = json.load(f)
    seeds = None
    if args.seeds is not None:
        text = args.seeds.strip()
        if text.isdigit() and "," not in text:
            if int(text) < 1:
                raise ConfigError("--seeds must be >= 1")
            seeds = tuple(range(int(text)))
        else:
            seeds = _list(text, int, "seeds")
    overrides = {
        "fractions": _list(args.fractions, float, "fractions"), "seeds": seeds,
        "modes": _list(args.modes, str, "modes"), "strategies": _list(args.strategies, str, "strategies"),
        "learning_rates": _list(args.learning_rates, float, "learning-rates"), "epochs": args.epochs,
        "patience": args.patience, "batch_size": args.batch_size, "cpus_per_trial": args.cpus_per_trial,
        "gpus_per_trial": args.gpus_per_trial, "max_concurrent_trials": args.max_concurrent,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SweepConfig.from_dict(values)


def run_sweep_command(args: argparse.Namespace) -> int:
    """``raydisc sweep``: run or resume the sweep; 0 when every trial finished, 1 when
    some failed (their results are written all the same)."""
    from ...runtime import init_ray
    from .driver import run_sweep
    from .results import read_failures

    config = sweep_config_from_args(args)
    init_ray(args.address)
    run_sweep(args.bundle, args.shards, args.target, args.out_dir, config, retry_failed=args.retry_failed)
    return 0 if read_failures(args.out_dir).empty else 1

