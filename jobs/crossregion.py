"""The study's leave-one-region-out experiment, end to end, then its report.

    python jobs/crossregion.py                         # embedded default: ~45 min on 2 cores
    python jobs/crossregion.py --scale full --shards s3://bucket/shards --run-dir s3://bucket/runs/crossregion

For each architecture and each region as target: pretrain an ensemble on the other
regions, evaluate it on the target's test split, fine-tune it on the target, evaluate
again, and train an ensemble on the target alone for comparison (best single member and
ensemble, station and event level). Without ``--shards`` the built-in synthetic regions
are generated and preprocessed under ``--work-dir`` first. Re-running the same command
continues an interrupted run. The report (``{run_dir}/report.md``) is rewritten at the
end; ``raydisc report RUN_DIR`` regenerates it from the stored tables alone.
"""
import argparse
import dataclasses

from raydisc.cli_options import add_verbose_argument, comma_list
from raydisc.experiments.crossregion import SCALES, CrossRegionConfig, prepare_synthetic_shards, run_crossregion
from raydisc.experiments.report import write_report
from raydisc.models import FREEZE_STRATEGIES
from raydisc.runtime import init_ray

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--shards", help="shard folder or URI (default: generate and preprocess synthetic regions)")
parser.add_argument("--work-dir", default="data/crossregion", help="where synthetic data go (default: %(default)s)")
parser.add_argument("--run-dir", default="data/crossregion/run", help="experiment folder or URI (default: %(default)s)")
parser.add_argument("--scale", default="default", choices=sorted(SCALES),
                    help="sizes: " + "; ".join(f"{k}: {dataclasses.asdict(v)}" for k, v in SCALES.items()))
parser.add_argument("--architectures", help="comma-separated (default: spectrogram_cnn,waveform_cnn)")
parser.add_argument("--targets", help="comma-separated target regions (default: all three)")
parser.add_argument("--freeze", choices=FREEZE_STRATEGIES, help="fine-tuning strategy (default: feature_extractor)")
parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default: %(default)s)")
parser.add_argument("--prepare-only", action="store_true", help="generate and preprocess the synthetic data, then stop")
parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS or a new local cluster)")
add_verbose_argument(parser)
args = parser.parse_args()

scale = SCALES[args.scale]
config = CrossRegionConfig.at_scale(scale)
changes = {"architectures": comma_list(args.architectures), "targets": comma_list(args.targets)}
if args.freeze:
    changes["finetune"] = {**config.finetune, "freeze": args.freeze}
config = dataclasses.replace(config, **{k: tuple(v) if isinstance(v, list) else v
                                        for k, v in changes.items() if v is not None})
init_ray(args.address, verbose=args.verbose)

shards = args.shards or prepare_synthetic_shards(args.work_dir, scale.events_per_region, seed=args.seed)
if args.prepare_only:
    raise SystemExit(0)
run_crossregion(shards, args.run_dir, config)
print(f"report: {write_report(args.run_dir)}")
