"""How much target-region data does fine-tuning need? A Ray Tune sweep over the fraction of
the target's training events, fine-tuned from a pretrained bundle against from scratch.

    python jobs/sweep_fractions.py R/bundle S --target craton --out-dir R/sweep
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/sweep_fractions.py \\
        s3://bucket/runs/pretrain/bundle s3://bucket/shards --target craton \\
        --out-dir s3://bucket/runs/sweep-craton --seeds 3 --strategies none,feature_extractor

Every trial (fraction x seed x mode [x strategy x learning rate]) draws its training
events (by event, stratified by class, nested across fractions), trains one member on
Ray Train — fine-tuned from the bundle's best member, or from scratch — and is evaluated
on the target's validation and test splits at station and event level. Written to the
out dir: ``results.parquet``/``results.csv`` (tidy), ``failures.csv`` and
``learning_curve.png``. Run it again with the same arguments to resume a sweep whose
driver died (finished trials are kept). Options: ``raydisc sweep --help``.
"""
import argparse
import sys

from raydisc.experiments.sweep import add_sweep_arguments, read_failures, run_sweep, sweep_config_from_args
from raydisc.cli_options import add_verbose_argument
from raydisc.runtime import init_ray

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
add_sweep_arguments(parser)
add_verbose_argument(parser)
args = parser.parse_args()

config = sweep_config_from_args(args)
init_ray(args.address, verbose=args.verbose)

run_sweep(args.bundle, args.shards, args.target, args.out_dir, config, retry_failed=args.retry_failed)
sys.exit(0 if read_failures(args.out_dir).empty else 1)
