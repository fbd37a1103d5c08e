"""Benchmark: the Ray Data preprocessing pipeline against a naive per-trace ObsPy loop.

    python bench/preprocess.py [--sizes 100,400] [--region alpine] [--workdir /tmp/raydisc-bench]

For each archive size it generates one synthetic region, then in the same run measures
(1) the naive baseline: read each event file with ObsPy and, per trace, slice, then
ObsPy's chain of :func:`raydisc.features.reference.obspy_chain` (detrend, taper, remove
the full instrument response with ``remove_response``, water level 60 dB, band-pass,
resample), then a SciPy spectrogram — one recording after another; and (2)
``run_preprocessing`` on a local Ray cluster (2 CPUs), which removes the same full
responses inside its one vectorized FFT pass.
It prints recordings/s for both and their ratio, CPU-ms per recording (of the process
for the naive loop, of the whole process tree, driver and Ray workers, for the pipeline)
and their ratio, which other work on a shared machine disturbs less than wall time, and
peak resident memory (process, process tree), so that memory growth with archive size is
visible. Pipeline times include the driver
reading the catalogs and the final summary; they exclude starting Ray and its
workers (a warm-up job runs first).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import obspy
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure  # noqa: E402

from raydisc.config import PipelineConfig, PreprocessConfig  # noqa: E402
from raydisc.data import layout  # noqa: E402
from raydisc.data.ingest import read_catalog, read_stations  # noqa: E402
from raydisc.data.pipeline import run_preprocessing  # noqa: E402
from raydisc.features.reference import obspy_chain  # noqa: E402
from raydisc.synthetic import generate_archive  # noqa: E402


def naive_preprocess(archive: str, region: str, config: PreprocessConfig) -> int:
    """The textbook per-trace ObsPy chain (:func:`raydisc.features.reference.obspy_chain`,
    which tests validate the pipeline against) and a SciPy spectrogram; returns the
    number of recordings processed."""
    inventory = obspy.read_inventory(layout.inventory_uri(archive, region))
    stations = read_stations(layout.inventory_uri(archive, region))
    count = 0
    for event in read_catalog(layout.catalog_uri(archive, region), region):
        stream = obspy.read(layout.waveform_uri(archive, region, event.event_id))
        for key, station in stations.items():
            p_time = event.picks.get(f"{key}.", {}).get("P")
            if p_time is None:
                continue
            start = obspy.UTCDateTime(p_time + config.window_start_s - config.padding_s)
            end = start + config.window_length_s + 2 * config.padding_s
            traces = stream.select(network=station.network, station=station.station).slice(start, end)
            if len(traces) != 3:
                continue
            spectrograms = []
            for trace in sorted(traces, key=lambda t: "ZNE".index(t.stats.channel[-1])):
                velocity = obspy_chain(trace, config, inventory=inventory)
                _, _, sxx = signal.spectrogram(velocity, fs=config.target_rate_hz,
                                               nperseg=config.stft_window_samples,
                                               noverlap=config.stft_window_samples - config.stft_hop_samples)
                spectrograms.append(np.log10(sxx + 1e-30))
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,400", help="events per archive, comma-separated")
    parser.add_argument("--region", default="alpine")
    parser.add_argument("--workdir", default="/tmp/raydisc-bench-preprocess")
    args = parser.parse_args()

    import ray

    config = PreprocessConfig()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    sizes = [int(s) for s in args.sizes.split(",")]

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    # Warm-up: Ray starts and imports its worker processes once per cluster, not per job.
    warmup = str(work / "archive-warmup")
    generate_archive(warmup, [args.region], events_per_region=4, seed=2)
    run_preprocessing(warmup, str(work / "shards-warmup"), [args.region], pipeline_config=PipelineConfig(events_per_shard=2))
    rows = []
    # Naive loop and pipeline back to back per size, so that a change in the machine's
    # load between sizes hits both sides of the ratio.
    for size in sizes:
        archive = str(work / f"archive-{size}")
        generate_archive(archive, [args.region], events_per_region=size, seed=1)
        with measure(tree=False) as naive:
            n_naive = naive_preprocess(archive, args.region, config)
        with measure() as pipe:
            summary = run_preprocessing(archive, str(work / f"shards-{size}"), [args.region],
                                        pipeline_config=PipelineConfig(events_per_shard=8))
        n_pipe = sum(summary["recordings"].values())
        if n_pipe != n_naive:
            raise SystemExit(f"the pipeline kept {n_pipe} recordings, the naive loop {n_naive}: not the same work")
        rows.append((size, n_pipe, naive, pipe))
    print(f"\nregion {args.region}, {config.window_length_s:.0f} s windows, full response removal, 2 CPUs")
    print("| events | recordings | naive rec/s | naive CPU-ms/rec | naive peak MB "
          "| pipeline rec/s | pipeline CPU-ms/rec | pipeline peak MB | speed-up (wall) | CPU ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, n, naive, pipe in rows:
        naive_rate, pipe_rate = n / naive["seconds"], n / pipe["seconds"]
        naive_cpu, pipe_cpu = 1e3 * naive["cpu_seconds"] / n, 1e3 * pipe["cpu_seconds"] / n
        print(f"| {size} | {n} | {naive_rate:.1f} | {naive_cpu:.2f} | {naive['peak_rss_mb']:.0f} "
              f"| {pipe_rate:.1f} | {pipe_cpu:.2f} | {pipe['peak_rss_mb']:.0f} "
              f"| {pipe_rate / naive_rate:.1f}x | {naive_cpu / pipe_cpu:.1f}x |")
    ray.shutdown()


if __name__ == "__main__":
    main()
