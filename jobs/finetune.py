"""Fine-tune a pretrained ensemble on a target region, then compare before and after.

    python jobs/finetune.py --bundle R/bundle --shards S --target craton --run-dir R2
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/finetune.py \\
        --bundle s3://bucket/runs/pretrain/bundle --shards s3://bucket/shards --target craton \\
        --run-dir s3://bucket/runs/finetune-craton --freeze feature_extractor

Every member of the pretrained bundle is fine-tuned on the target region's training
split, concurrently on Ray Train (frozen layers per ``--freeze``, a lower learning rate
than pretraining, early stopping on the target's validation split). The new bundle goes
to ``{run_dir}/bundle``; the pretrained one is only read. Then both are evaluated on the
target's test split (tables and figures in ``{run_dir}/evaluation-pretrained-test`` and
``{run_dir}/evaluation-test``; the pretrained one only when its label scheme is the
shards': a bundle of other classes starts with a fresh output layer and cannot be
evaluated on them). Strategy options: ``raydisc finetune --help``.
"""
import argparse
import sys

from raydisc import storage
from raydisc.cli_options import add_verbose_argument
from raydisc.data.shards import read_label_scheme
from raydisc.ensemble.bundle import read_manifest, scheme_of_manifest
from raydisc.training.cli import add_train_options, finetune_config_from_args
from raydisc.evaluation.evaluate import evaluate
from raydisc.runtime import init_ray
from raydisc.training.finetune import finetune_ensemble

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--bundle", required=True, help="pretrained ensemble bundle folder or URI (only read)")
parser.add_argument("--shards", required=True, help="shard folder or URI holding the target region")
parser.add_argument("--run-dir", required=True, help="new run directory or URI (checkpoints, metrics, bundle)")
parser.add_argument("--event-rule", default="mean", choices=["mean", "majority"], help="event aggregation (default: mean)")
parser.add_argument("--no-evaluate", action="store_true", help="stop after writing the bundle")
add_train_options(parser, finetune=True)
add_verbose_argument(parser)
args = parser.parse_args()

config = finetune_config_from_args(args)
init_ray(args.address, verbose=args.verbose)

bundle = finetune_ensemble(args.bundle, args.shards, args.target, config, args.run_dir)
if args.no_evaluate:
    sys.exit(0)
runs = [("fine-tuned", bundle, storage.join(args.run_dir, "evaluation-test"))]
if scheme_of_manifest(args.bundle, read_manifest(args.bundle)) == read_label_scheme(args.shards):
    # A pretrained bundle of another label scheme cannot be evaluated on these shards.
    runs.insert(0, ("pretrained", args.bundle, storage.join(args.run_dir, "evaluation-pretrained-test")))
for name, uri, out in runs:
    result = evaluate(uri, args.shards, [args.target], split="test", out_dir=out, event_rule=args.event_rule)
    print(f"{name} ensemble on the test split of {args.target} (event rule: {args.event_rule}):")
    print(result.format())
    print(f"tables and figures: {result.out_dir}")
