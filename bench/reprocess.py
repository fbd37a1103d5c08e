"""Benchmark: batch reprocessing on Ray Data against a naive per-recording loop.

    python bench/reprocess.py [--sizes 300,1000] [--region alpine] [--members 3] [--workdir /tmp/raydisc-bench-reprocess]

For each archive size it generates one synthetic region and a bundle of randomly
initialised members (default hyper-parameters, default preprocessing config: the
cost of a trained bundle), then in the same run measures

1. the naive loop: read each event file with ObsPy, cut each station's window (ingest's
   ``cut_recordings_from_stream``), preprocess that one recording with
   ``raydisc.features.preprocess``, run each member (the trained modules as loaded) on
   it one by one. Its process gets the same malloc setting as the pipeline's workers
   (``raydisc.runtime.reuse_freed_array_memory``), so the ratio is not a malloc effect;
2. ``reprocess_archives`` on a local Ray cluster (``--num-cpus``, default 2) with the job's default
   settings: no GPU, so each chunk task reads its catalog entries, reads, cuts,
   preprocesses (blocks of 8 recordings), runs the fused ensemble (torch with one
   thread, batches of 8) on its recordings and writes its chunk's tables; then the
   annotated catalog and review list. ``--actor-pool`` measures the
   GPU-cluster layout instead: chunk tasks + one inference actor (0.5 CPU reserved,
   tasks 0.75, so two tasks run beside it).

It prints recordings/s of both, their ratio, and peak resident memory (naive: this
process, measured before Ray starts; pipeline: the whole process tree, driver + Ray's
own processes + workers), so memory growth with archive size shows. Pipeline times
exclude starting Ray and one untimed warm-up run on a separate 4-event archive, one
event per chunk (worker processes start and import torch once per cluster); they include everything a job
pays: planning, loading the bundle (once per worker process and job; with
``--actor-pool``, starting the actor process and loading it there), the driver
indexing catalogs and writing all outputs. Then it projects the cost of a year of a 100-station
network from the measured per-recording costs, with the assumptions printed.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import shutil
import sys
import time
from pathlib import Path

import obspy
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure  # noqa: E402

from raydisc.config import PreprocessConfig  # noqa: E402
from raydisc.data import layout  # noqa: E402
from raydisc.data.ingest import cut_recordings_from_stream, read_catalog, read_stations  # noqa: E402
from raydisc.ensemble import load_bundle, save_bundle  # noqa: E402
from raydisc.features.batch import preprocess_recordings  # noqa: E402
from raydisc.models import build_model, input_shape_of  # noqa: E402
from raydisc.reprocess import ReprocessConfig, reprocess_archives, sources_from_archive  # noqa: E402
from raydisc.runtime import reuse_freed_array_memory  # noqa: E402
from raydisc.storage import read_bytes  # noqa: E402
from raydisc.synthetic import generate_archive  # noqa: E402

ARCH = "spectrogram_cnn"


def make_bundle(uri: str, members: int, config: PreprocessConfig) -> None:
    shape = input_shape_of(ARCH, config)
    states = []
    for seed in range(members):
        torch.manual_seed(seed)
        states.append(build_model(ARCH, shape).state_dict())
    save_bundle(uri, architecture=ARCH, hparams={}, input_shape=shape, preprocess_config=config,
                member_state_dicts=states,
                member_metrics=[{"seed": s, "validation_loss": 0.5, "validation_accuracy": 0.5} for s in range(members)])


def naive_loop(archive: str, region: str, bundle_uri: str) -> dict:
    """One recording at a time; returns recordings and seconds spent per phase."""
    bundle = load_bundle(bundle_uri)
    config, kind = bundle.preprocess_config, bundle.input_kind
    stations = read_stations(layout.inventory_uri(archive, region))
    t = {"read_cut": 0.0, "preprocess": 0.0, "inference": 0.0}
    count = 0
    for event in read_catalog(layout.catalog_uri(archive, region), region):
        t0 = time.perf_counter()
        stream = obspy.read(io.BytesIO(read_bytes(layout.waveform_uri(archive, region, event.event_id))))
        recordings, _ = cut_recordings_from_stream(stream, event, stations, config)
        t["read_cut"] += time.perf_counter() - t0
        for r in recordings:
            t0 = time.perf_counter()
            x = preprocess_recordings([r], config, (kind,))[kind]
            t1 = time.perf_counter()
            with torch.inference_mode():
                xt = torch.as_tensor(x)
                [torch.softmax(m(xt), dim=1).numpy() for m in bundle.members]
            t["inference"] += time.perf_counter() - t1
            t["preprocess"] += t1 - t0
            count += 1
    return {"recordings": count, **t}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="300,1000", help="events per archive, comma-separated")
    parser.add_argument("--region", default="alpine")
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--events-per-chunk", type=int, default=ReprocessConfig.events_per_chunk)
    parser.add_argument("--actor-pool", action="store_true",
                        help="inference in an actor pool (as on GPU clusters) instead of in the chunk tasks")
    parser.add_argument("--num-cpus", type=int, default=2,
                        help="CPUs of the local Ray cluster (pin the whole run with taskset to compare per core)")
    parser.add_argument("--workdir", default="/tmp/raydisc-bench-reprocess")
    # Projection assumptions (not measured): printed with the result.
    parser.add_argument("--events-per-year", type=int, default=5000)
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--cpus-per-node", type=int, default=8)
    parser.add_argument("--gpu-speedup", type=float, default=20.0,
                        help="ASSUMED inference speed-up of one GPU over one CPU core")
    parser.add_argument("--nodes", default="1,4,16")
    args = parser.parse_args()

    import ray
    torch.set_num_threads(1)  # the naive loop is one process on one core, as written
    reuse_freed_array_memory()

    config = PreprocessConfig()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    bundle = str(work / "bundle")
    make_bundle(bundle, args.members, config)
    sizes = [int(s) for s in args.sizes.split(",")]
    archives = {}
    for n in sizes:
        archives[n] = str(work / f"archive-{n}")
        generate_archive(archives[n], regions=[args.region], events_per_region=n, seed=1)

    # All naive runs first, before Ray starts: their peak memory is this process alone.
    naive_runs = {}
    for n in sizes:
        with measure() as m:
            naive_runs[n] = naive_loop(archives[n], args.region, bundle)
        naive_runs[n].update(seconds=m["seconds"], peak_rss_mb=m["peak_rss_mb"])
    job_config = ReprocessConfig(events_per_chunk=args.events_per_chunk)
    if args.actor_pool:
        job_config = ReprocessConfig(events_per_chunk=args.events_per_chunk, fuse_inference=False,
                                     cpus_per_actor=0.5, cpus_per_task=0.75)
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level="ERROR")
    rows = []
    try:
        # Untimed warm-up on a small separate archive: a fresh cluster starts its worker
        # processes (and imports torch in them) once; that is not a per-job cost. Each
        # timed run still starts its own inference actor and loads the bundle.
        warmup = str(work / "archive-warmup")
        generate_archive(warmup, regions=[args.region], events_per_region=4, seed=2)
        # One event per chunk, so that both CPUs' worker processes run (and warm up).
        reprocess_archives(sources_from_archive(warmup, [args.region]), bundle, str(work / "warmup"),
                           dataclasses.replace(job_config, events_per_chunk=1))
        for n in sizes:
            naive = naive_runs[n]
            out = str(work / f"out-{n}")
            with measure() as pipe_m:
                summary = reprocess_archives(sources_from_archive(archives[n], [args.region]), bundle, out, job_config)
            processed = summary["totals"]["processed"]
            assert processed == naive["recordings"], (processed, naive["recordings"])
            rows.append({"events": n, "recordings": processed, "naive": naive, "naive_s": naive["seconds"],
                         "naive_mb": naive["peak_rss_mb"], "pipe_s": pipe_m["seconds"], "pipe_mb": pipe_m["peak_rss_mb"]})
    finally:
        ray.shutdown()

    print(f"\nreprocessing, region {args.region}, {args.members} members ({ARCH}, default hparams), "
          f"default preprocessing; pipeline on a local Ray cluster with {args.num_cpus} CPUs ({args.events_per_chunk} events/chunk, "
          f"{'inference in an actor pool' if args.actor_pool else 'inference in the chunk tasks'})")
    print(f"{'events':>7} {'recs':>6} {'naive rec/s':>12} {'ray rec/s':>10} {'ratio':>6} "
          f"{'naive peak MB':>14} {'ray peak MB':>12}")
    for r in rows:
        naive_rate, pipe_rate = r["recordings"] / r["naive_s"], r["recordings"] / r["pipe_s"]
        print(f"{r['events']:>7} {r['recordings']:>6} {naive_rate:>12.1f} {pipe_rate:>10.1f} "
              f"{pipe_rate / naive_rate:>6.2f} {r['naive_mb']:>14.0f} {r['pipe_mb']:>12.0f}")
    if len(rows) > 1:
        print(f"peak memory, largest / smallest archive ({rows[-1]['events']} / {rows[0]['events']} events): "
              f"naive {rows[-1]['naive_mb'] / rows[0]['naive_mb']:.2f}x, ray {rows[-1]['pipe_mb'] / rows[0]['pipe_mb']:.2f}x")

    # ---- projection from the largest run's per-recording costs (one CPU core each).
    big = rows[-1]
    per = {k: big["naive"][k] / big["recordings"] for k in ("read_cut", "preprocess", "inference")}
    recordings_year = args.events_per_year * args.stations
    cpu_s = per["read_cut"] + per["preprocess"]
    print("\nprojection: one year of a 100-station network")
    print(f"  measured per recording on one CPU core: read+cut {per['read_cut'] * 1e3:.1f} ms, "
          f"preprocess {per['preprocess'] * 1e3:.1f} ms, inference ({args.members} members) {per['inference'] * 1e3:.1f} ms")
    print(f"  ASSUMPTIONS: {args.events_per_year} catalog events/year, every one recorded by all {args.stations} "
          f"stations -> {recordings_year:,} recordings; {args.cpus_per_node} CPU cores + 1 GPU per node; "
          f"GPU inference {args.gpu_speedup:g}x one CPU core (assumed, not measured); I/O from object storage "
          f"not slower than the local disk measured here; perfect scaling over nodes")
    pipe_cpu_s = args.num_cpus * big["pipe_s"] / big["recordings"]  # all CPUs busy the whole run (upper bound)
    print(f"  measured end to end by the pipeline: {args.num_cpus} CPUs x {big['pipe_s']:.1f} s / {big['recordings']} recordings = "
          f"{pipe_cpu_s * 1e3:.1f} CPU-ms per recording (all stages, batched inference on CPU)")
    for nodes in (int(s) for s in args.nodes.split(",")):
        cpu_only_h = recordings_year * pipe_cpu_s / (args.cpus_per_node * nodes) / 3600
        print(f"  {nodes:>3} CPU-only node(s): {recordings_year:,} x {pipe_cpu_s * 1e3:.1f} ms / "
              f"({args.cpus_per_node} x {nodes} cores) = {cpu_only_h:.2f} h")
    for nodes in (int(s) for s in args.nodes.split(",")):
        # CPU work (read, cut, preprocess) spreads over the node's cores; inference over its GPU;
        # the two stages overlap in the stream, so the slower one sets the pace.
        cpu_h = recordings_year * cpu_s / (args.cpus_per_node * nodes) / 3600
        gpu_h = recordings_year * per["inference"] / args.gpu_speedup / nodes / 3600
        print(f"  {nodes:>3} node(s): CPU stages {recordings_year:,} x {cpu_s * 1e3:.1f} ms / "
              f"({args.cpus_per_node} x {nodes} cores) = {cpu_h:.2f} h; GPU stage {recordings_year:,} x "
              f"{per['inference'] * 1e3:.1f} ms / {args.gpu_speedup:g} / {nodes} = {gpu_h:.2f} h "
              f"-> about {max(cpu_h, gpu_h):.2f} h wall, {max(cpu_h, gpu_h) * nodes:.2f} node-hours")


if __name__ == "__main__":
    main()
