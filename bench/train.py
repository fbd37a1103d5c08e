"""Benchmark: training throughput streamed from Parquet shards through Ray Data, against
the same training loop fed from in-memory tensors.

    python bench/train.py [--events 120] [--region alpine] [--epochs 4] [--cycles 3]
                          [--batch-size 64] [--prefetch 4] [--architectures spectrogram_cnn,waveform_cnn]

Generates one synthetic region (``generate_archive`` + ``run_preprocessing``, reused when
the work folder already has it), then per architecture (default hyper-parameters) runs
one-worker Ray Train runs (1 CPU, 1 torch thread, datasets split as raydisc's training
splits them) on the training split:

* a phased run in one worker, which first collects the whole split into tensors
  (untimed), then trains the same model with the same loop in phases of ``--epochs``
  epochs: ``--cycles`` pairs of ``in-memory`` (shuffled slices of the tensors: no input
  pipeline at all) and ``streamed`` (``get_dataset_shard("train").iter_torch_batches``:
  Parquet read + decode in Ray Data tasks on the other CPU, ``--prefetch`` batches ahead,
  files and rows shuffled as in training, each epoch's execution started during the
  previous epoch as raydisc's training loop does, an untimed validation-like pass between
  epochs), then a ``cold start`` phase (each epoch's execution starting with the epoch).
  Pairing each streamed phase with the in-memory phase just before it cancels drifts in
  machine load (this machine may be shared);
* ``library loop``: :func:`raydisc.training.loop.train_loop_per_worker` itself, streamed,
  its reported ``train_samples_per_s`` (validation excluded), a separate run.

Throughput is recordings per second over each phase's epochs but its first (warm-up).
Prints a table with the streamed / in-memory ratio (goal >= 0.9), overall and per cycle.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import pandas as pd

from raydisc.config import PipelineConfig
from raydisc.data.pipeline import run_preprocessing
from raydisc.data.shards import read_dataset_info
from raydisc.labels import CLASS_NAMES
from raydisc.models import build_model, count_parameters, input_kind_of, input_shape_of
from raydisc.synthetic import generate_archive
from raydisc.training.config import TrainConfig
from raydisc.training.data import label_counts, training_dataset
from raydisc.training.loop import EpochPrefetch, datasets_to_split, train_loop_per_worker

def bench_loop(config: dict) -> None:
    """One Ray Train worker: collect the training split into tensors (untimed), then
    train phases of ``config["epochs"]`` epochs and report, per phase and epoch,
    recordings, seconds and the wait for the first batch."""
    import ray.data
    import ray.train
    import torch
    import torch.nn.functional as F

    ray.data.DataContext.get_current().enable_progress_bars = False
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model(config["architecture"], config["input_shape"], len(CLASS_NAMES))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    shard = ray.train.get_dataset_shard("train")
    batch_size, prefetch, shuffle = config["batch_size"], config["prefetch"], config["shuffle"]
    dtypes = {"x": torch.float32, "y": torch.int64}

    parts = list(shard.iter_torch_batches(batch_size=1024, dtypes=dtypes))
    x_all, y_all = torch.cat([b["x"] for b in parts]), torch.cat([b["y"] for b in parts])
    x_val = x_all[: max(1, len(x_all) // 5)]

    def from_memory(epoch):
        order = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(epoch))
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            yield x_all[index], y_all[index]

    def from_stream(epoch):
        for b in shard.iter_torch_batches(batch_size=batch_size, dtypes=dtypes, prefetch_batches=prefetch,
                                          local_shuffle_buffer_size=max(shuffle, batch_size) if shuffle else None,
                                          local_shuffle_seed=epoch if shuffle else None):
            yield b["x"], b["y"]

    def validate() -> None:
        """Untimed stand-in for the validation pass (a fifth of the data, forward only)."""
        model.eval()
        with torch.inference_mode():
            for start in range(0, len(x_val), 256):
                model(x_val[start : start + 256])
        model.train()

    def run_epoch(batches, on_first_batch=None) -> dict:
        started, n, first = time.perf_counter(), 0, None
        for x, y in batches:
            if first is None:
                first = time.perf_counter() - started
                if on_first_batch:
                    on_first_batch()
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n += len(y)
        return {"samples": n, "seconds": time.perf_counter() - started, "first_batch_s": first}

    model.train()
    epochs, cycles = config["epochs"], config["cycles"]
    # Cycles of (in-memory, streamed) phases, then one cold-start phase: comparing each
    # streamed phase with the in-memory phase just before it cancels slow drifts in
    # machine load (this machine may be shared).
    phases = [(f"{name}", cycle) for cycle in range(cycles) for name in ("memory", "stream")] + [("cold", 0)]
    for phase, cycle in phases:
        upcoming = EpochPrefetch(from_stream, 1) if phase == "stream" else None
        for epoch in range(1, epochs + 1):
            if phase == "stream":
                # As in train_loop_per_worker with one worker: the next epoch's execution
                # starts once this epoch's first batch is in.
                batches, upcoming = upcoming, None

                def start_next(epoch=epoch):
                    nonlocal upcoming
                    if epoch < epochs:
                        upcoming = EpochPrefetch(from_stream, epoch + 1)

                row = run_epoch(batches, start_next)
                validate()
            elif phase == "cold":
                row = run_epoch(from_stream(epoch))
            else:
                row = run_epoch(from_memory(epoch))
            ray.train.report({"phase": phase, "cycle": cycle, "epoch": epoch, **row})


def _fit(loop, loop_config: dict, datasets: dict, storage: str, name: str) -> pd.DataFrame:
    """Train ``loop`` on one worker; its reported rows (Ray Train V2 keeps only those of
    checkpoints, and these reports have none, so a callback collects them)."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from raydisc.training.reporting import MemberReports

    rows: list[dict] = []
    with MemberReports(rows.append, print) as reports:
        TorchTrainer(
            loop, train_loop_config=loop_config, datasets=datasets,
            scaling_config=ray.train.ScalingConfig(num_workers=1, resources_per_worker={"CPU": 1}),
            dataset_config=ray.train.DataConfig(datasets_to_split=datasets_to_split(1)),
            run_config=ray.train.RunConfig(name=name, storage_path=storage, callbacks=[reports.callback(0)]),
        ).fit()
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=120)
    parser.add_argument("--region", default="alpine")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per phase (the first is excluded)")
    parser.add_argument("--cycles", type=int, default=3, help="(in-memory, streamed) phase pairs")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--prefetch", type=int, default=TrainConfig.__dataclass_fields__["prefetch_batches"].default)
    parser.add_argument("--shuffle", type=int, default=TrainConfig.__dataclass_fields__["shuffle_buffer_size"].default,
                        help="local shuffle buffer of the streamed runs, recordings (0: none)")
    parser.add_argument("--architectures", default="spectrogram_cnn,waveform_cnn")
    parser.add_argument("--workdir", default="/tmp/raydisc-bench-train")
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    work = Path(args.workdir)
    archive, shards = work / f"archive-{args.region}-{args.events}", work / f"shards-{args.region}-{args.events}"
    if not (shards / "_dataset.json").exists():
        shutil.rmtree(work, ignore_errors=True)
        generate_archive(str(archive), [args.region], events_per_region=args.events, seed=0)
        run_preprocessing(str(archive), str(shards), [args.region], pipeline_config=PipelineConfig())
    shards = str(shards)
    storage = str(work / "runs")
    preprocess = read_dataset_info(shards).preprocess
    n_train = int(label_counts(shards, [args.region])["train"].sum())
    print(f"{args.region}: {args.events} events, {n_train} training recordings; batch {args.batch_size}, "
          f"prefetch {args.prefetch}, shuffle buffer {args.shuffle}, {args.epochs} epochs per phase (first excluded), "
          f"1 worker x 1 CPU x 1 torch thread, {os.cpu_count()} CPUs")

    rows = []
    for arch in args.architectures.split(","):
        kind, shape = input_kind_of(arch), input_shape_of(arch, preprocess)
        frame = _fit(bench_loop,
                     {"architecture": arch, "input_shape": list(shape), "batch_size": args.batch_size,
                      "prefetch": args.prefetch, "shuffle": args.shuffle, "epochs": args.epochs,
                      "cycles": args.cycles},
                     {"train": training_dataset(shards, [args.region], "train", kind, shuffle_seed=0)},
                     storage, f"{arch}-phases")
        steady = frame[frame["epoch"] > 1]
        by_phase = steady.groupby("phase")
        rates = (by_phase["samples"].sum() / by_phase["seconds"].sum()).to_dict()
        first_batch = by_phase["first_batch_s"].median().to_dict()
        per_cycle = steady.groupby(["cycle", "phase"])[["samples", "seconds"]].sum()
        per_cycle = (per_cycle["samples"] / per_cycle["seconds"]).unstack("phase")
        ratios = (per_cycle["stream"] / per_cycle["memory"]).dropna()
        rates["ratio_median"], rates["ratio_min"], rates["ratio_max"] = ratios.median(), ratios.min(), ratios.max()

        config = TrainConfig(architecture=arch, members=1, epochs=args.epochs, patience=None,
                             batch_size=args.batch_size, prefetch_batches=args.prefetch,
                             shuffle_buffer_size=args.shuffle)
        library = _fit(train_loop_per_worker,
                       {"train_config": config.to_dict(), "member": 0, "input_shape": list(shape),
                        "class_weights": [1.0] * len(CLASS_NAMES), "torch_threads": 1},
                       {"train": training_dataset(shards, [args.region], "train", kind, shuffle_seed=0),
                        "validation": training_dataset(shards, [args.region], "validation", kind)},
                       storage, f"{arch}-library")
        lib = library[library["epoch"] > 1]
        rates["library"] = float(lib["train_samples"].sum() / (lib["train_samples"] / lib["train_samples_per_s"]).sum())
        params = count_parameters(build_model(arch, shape, len(CLASS_NAMES)))
        rows.append((arch, params, rates, first_batch))

    print()
    print(f"{'architecture':<16} {'params':>7} {'in-memory':>10} {'streamed':>9} {'ratio':>6} {'per cycle':>17} "
          f"{'cold start':>11} {'ratio':>6} {'first batch cold/ahead':>23} {'library loop':>13} {'ratio':>6}")
    for arch, params, r, fb in rows:
        print(f"{arch:<16} {params:>7,} {r['memory']:>8.0f}/s {r['stream']:>7.0f}/s {r['stream'] / r['memory']:>6.2f} "
              f"{r['ratio_median']:>5.2f} [{r['ratio_min']:.2f}-{r['ratio_max']:.2f}] "
              f"{r['cold']:>9.0f}/s {r['cold'] / r['memory']:>6.2f} {fb['cold']:>13.2f}s / {fb['stream']:.2f}s "
              f"{r['library']:>11.0f}/s {r['library'] / r['memory']:>6.2f}")
    print("\nTraining recordings per second (forward + backward + AdamW step), epochs after each phase's first.\n"
          "streamed = each epoch's Ray Data execution started during the previous epoch (as in training);\n"
          "ratio = streamed / in-memory over all cycles; per cycle = median [range] of the ratio of each streamed\n"
          "phase to the in-memory phase before it; cold start = execution started with the epoch; first batch =\n"
          "median wait for an epoch's first batch; library loop = a separate run of raydisc's training loop\n"
          "(streamed, validation excluded; not paired with in-memory epochs, so exposed to load drift).")
    ray.shutdown()


if __name__ == "__main__":
    main()
