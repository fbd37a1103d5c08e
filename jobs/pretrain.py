"""Pretrain a CNN ensemble on some regions, then evaluate it on their test split.

    python jobs/pretrain.py --shards S --regions alpine,basin --run-dir R --architecture waveform_cnn
    ray job submit --working-dir . -- python jobs/pretrain.py --shards s3://bucket/shards \\
        --regions alpine,basin --run-dir s3://bucket/runs/pretrain-waveform --architecture waveform_cnn

Trains ``--members`` models with different seeds as concurrent Ray Train runs (batches
streamed from the Parquet shards by Ray Data, a checkpoint per epoch under the run
directory, early stopping on validation loss), writes the ensemble bundle to
``{run_dir}/bundle``, and prints best single member vs. ensemble accuracy at station and
event level on the same regions' test split (tables and figures in
``{run_dir}/evaluation-test``). Training options: ``raydisc train --help``.
"""
import argparse
import sys

from raydisc.cli_options import add_verbose_argument, comma_list
from raydisc.training.cli import add_train_options, train_config_from_args
from raydisc.evaluation.evaluate import evaluate
from raydisc.runtime import init_ray
from raydisc.training import train_ensemble

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--shards", required=True, help="shard folder or URI made by `raydisc preprocess`")
parser.add_argument("--run-dir", required=True, help="run directory or URI (checkpoints, metrics, bundle)")
parser.add_argument("--event-rule", default="mean", choices=["mean", "majority"], help="event aggregation (default: mean)")
parser.add_argument("--no-evaluate", action="store_true", help="stop after writing the bundle")
add_train_options(parser)
add_verbose_argument(parser)
args = parser.parse_args()

config = train_config_from_args(args)
regions = comma_list(args.regions)
init_ray(args.address, verbose=args.verbose)

bundle = train_ensemble(args.shards, regions, config, args.run_dir)
if args.no_evaluate:
    sys.exit(0)
print(f"evaluating on the test split of {', '.join(regions)} (event rule: {args.event_rule})", flush=True)
result = evaluate(bundle, args.shards, regions, split="test", event_rule=args.event_rule)
print(result.format())
print(f"tables and figures: {result.out_dir}")
