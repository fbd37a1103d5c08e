"""Benchmark: the cost of a re-labelled recording, stage by stage, against its floor.

    python bench/floor.py [--sizes 100,400] [--region alpine] [--members 3] [--num-cpus 2]

Every reader pays for decoding miniSEED; nothing downstream can be cheaper than that.
On one synthetic archive per size (the same events for every stage) it measures, in
one process on one core (torch with one thread), the CPU time per station recording of

    (a) decode     ``obspy.read`` of each event's miniSEED (bytes already in memory);
    (b) + cut      each station's window cut from the stream (``cut_recordings_from_stream``);
    (c) + prep     batched preprocessing of each event's recordings, full response removal
                   (the job's default :class:`~raydisc.config.PreprocessConfig`);
    (d) + hash     the recordings' input hash written to the tables (``recording_hash``);
    (e) + infer    the members' probabilities as the job computes them
                   (``member_probabilities``: the fused ensemble, in CPU-cache-sized batches);

then (f) the whole re-labelling job, ``reprocess_archives`` on a local Ray cluster with
``--num-cpus`` CPUs: CPU time of the whole process tree (driver, raylet, workers) per
recording, and wall time x CPUs per recording (the per-core cost if every core were busy
the whole run). Each row is printed in CPU-ms per recording and as a multiple of (a).
Ray's start and one warm-up job are not timed (a cluster starts its workers once).
The naive per-recording loop is measured by ``bench/reprocess.py``.
"""
from __future__ import annotations

import argparse
import io
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import obspy
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure  # noqa: E402
from reprocess import ARCH, make_bundle  # noqa: E402

from raydisc.config import PreprocessConfig  # noqa: E402
from raydisc.data import layout  # noqa: E402
from raydisc.data.ingest import cut_recordings_from_stream, read_catalog, read_stations  # noqa: E402
from raydisc.features.batch import preprocess_recordings  # noqa: E402
from raydisc.ensemble import load_bundle  # noqa: E402
from raydisc.reprocess import ReprocessConfig, reprocess_archives, sources_from_archive  # noqa: E402
from raydisc.reprocess.tables import recording_hash  # noqa: E402
from raydisc.runtime import reuse_freed_array_memory  # noqa: E402
from raydisc.storage import read_bytes  # noqa: E402
from raydisc.synthetic import generate_archive  # noqa: E402

STAGES = ("decode", "cut", "preprocess", "hash", "inference")


def single_core_stages(archive: str, region: str, bundle_uri: str, batch_size: int) -> dict:
    """CPU seconds of each stage (a)-(e) over the whole archive, and the recordings."""
    bundle = load_bundle(bundle_uri)
    config, kind = bundle.preprocess_config, bundle.input_kind
    stations = read_stations(layout.inventory_uri(archive, region))
    events = list(read_catalog(layout.catalog_uri(archive, region), region))
    blobs = [read_bytes(layout.waveform_uri(archive, region, e.event_id)) for e in events]
    cpu = dict.fromkeys(STAGES, 0.0)
    inputs = []
    count = 0
    for event, blob in zip(events, blobs):
        t0 = time.process_time()
        stream = obspy.read(io.BytesIO(blob))
        t1 = time.process_time()
        recordings, _ = cut_recordings_from_stream(stream, event, stations, config)
        t2 = time.process_time()
        if recordings:
            inputs.append(preprocess_recordings(recordings, config, (kind,))[kind])
        t3 = time.process_time()
        for r in recordings:
            recording_hash(r)
        t4 = time.process_time()
        for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            cpu[stage] += seconds
        count += len(recordings)
    x = np.concatenate(inputs)
    t0 = time.process_time()
    bundle.member_probabilities(x, batch_size=batch_size)
    cpu["inference"] = time.process_time() - t0
    return {"recordings": count, **cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,400", help="events per archive, comma-separated")
    parser.add_argument("--region", default="alpine")
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray cluster for (f)")
    parser.add_argument("--workdir", default="/tmp/raydisc-bench-floor")
    args = parser.parse_args()

    import ray
    torch.set_num_threads(1)
    reuse_freed_array_memory()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    bundle = str(work / "bundle")
    make_bundle(bundle, args.members, PreprocessConfig())
    job_config = ReprocessConfig()
    sizes = [int(s) for s in args.sizes.split(",")]
    archives = {n: str(work / f"archive-{n}") for n in sizes}
    for n, archive in archives.items():
        generate_archive(archive, regions=[args.region], events_per_region=n, seed=1)

    stages = {}
    for n in sizes:
        with measure(tree=False) as m:
            stages[n] = single_core_stages(archives[n], args.region, bundle, job_config.batch_size)
        stages[n]["peak_rss_mb"] = m["peak_rss_mb"]

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level="ERROR")
    jobs = {}
    try:
        warmup = str(work / "archive-warmup")
        generate_archive(warmup, regions=[args.region], events_per_region=4, seed=2)
        reprocess_archives(sources_from_archive(warmup, [args.region]), bundle, str(work / "warmup"),
                           ReprocessConfig(events_per_chunk=1))
        for n in sizes:
            with measure() as m:
                summary = reprocess_archives(sources_from_archive(archives[n], [args.region]), bundle,
                                             str(work / f"out-{n}"), job_config)
            assert summary["totals"]["processed"] == stages[n]["recordings"], (summary["totals"], stages[n])
            jobs[n] = m
    finally:
        ray.shutdown()

    print(f"\ncost per recording against the decode floor: region {args.region}, {args.members} members "
          f"({ARCH}, fused), default preprocessing (full response removal); (a)-(e) one process, one core; "
          f"(f) the re-labelling job on a local Ray cluster with {args.num_cpus} CPUs")
    header = f"{'stage':<34}" + "".join(f"{f'{n} ev ms':>11}{'x(a)':>7}" for n in sizes)
    print(header)
    labels = {"decode": "(a) decode miniSEED", "cut": "(b) + cut windows", "preprocess": "(c) + preprocess",
              "hash": "(d) + input hash (XXH3-128)", "inference": "(e) + fused inference"}
    rows: dict[str, dict[int, float]] = {}
    for n in sizes:
        s, cumulative = stages[n], 0.0
        for stage in STAGES:
            cumulative += s[stage]
            rows.setdefault(labels[stage], {})[n] = cumulative / s["recordings"] * 1e3
        rows.setdefault("(f) whole job, CPU of process tree", {})[n] = jobs[n]["cpu_seconds"] / s["recordings"] * 1e3
        rows.setdefault(f"(f) whole job, wall x {args.num_cpus} CPUs", {})[n] = (
            jobs[n]["seconds"] * args.num_cpus / s["recordings"] * 1e3)
    for label, per_size in rows.items():
        floor = {n: rows[labels["decode"]][n] for n in sizes}
        print(f"{label:<34}" + "".join(f"{per_size[n]:>11.2f}{per_size[n] / floor[n]:>7.2f}" for n in sizes))
    print("stage costs alone (ms/recording): " + "; ".join(
        f"{n} events: " + ", ".join(f"{stage} {stages[n][stage] / stages[n]['recordings'] * 1e3:.2f}" for stage in STAGES)
        for n in sizes))
    print("recordings: " + ", ".join(f"{n} events {stages[n]['recordings']}" for n in sizes))
    print("peak resident memory, MB (single process / Ray job tree): " + ", ".join(
        f"{n} events {stages[n]['peak_rss_mb']:.0f} / {jobs[n]['peak_rss_mb']:.0f}" for n in sizes))


if __name__ == "__main__":
    main()
