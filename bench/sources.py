"""Benchmark: reading recordings from a SeisBench dataset against the per-event miniSEED archive.

    python bench/sources.py [--events 100] [--region alpine] [--no-pipeline] [--workdir /tmp/raydisc-bench-sources]

Generates one synthetic region, exports it as a SeisBench dataset (HDF5 + metadata CSV,
chunks of 25 events; raw counts, as the archive holds them), and in the same run measures

1. the readers alone, in this process: the archive reader (each event's miniSEED file
   decoded by ObsPy, every station's window cut: :func:`raydisc.data.ingest.cut_recordings`)
   against the SeisBench reader (each chunk's traces read from HDF5 into the same cut:
   :func:`raydisc.data.seisbench_source.recordings_of_rows`); both give the same
   :class:`~raydisc.data.recordings.Recording` objects, counted and checked equal;
2. unless ``--no-pipeline``, the whole preprocessing into shards on a local Ray cluster
   (``run_preprocessing`` against ``run_seisbench_preprocessing``: reading, response
   removal, spectrograms, Parquet), after a warm-up job.

It prints recordings/s of each and the SeisBench/archive ratio (above 1: SeisBench faster).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure  # noqa: E402

from raydisc.config import PipelineConfig, PreprocessConfig  # noqa: E402
from raydisc.data import layout  # noqa: E402
from raydisc.data.ingest import cut_recordings, read_catalog, read_stations  # noqa: E402
from raydisc.data.pipeline import run_preprocessing  # noqa: E402
from raydisc.data.seisbench_export import export_archive  # noqa: E402
from raydisc.data.seisbench_format import open_waveforms, waveforms_uri  # noqa: E402
from raydisc.data.seisbench_source import (SeisBenchConfig, read_rows, recordings_of_rows,  # noqa: E402
                                           run_seisbench_preprocessing)
from raydisc.synthetic import generate_archive  # noqa: E402

EVENTS_PER_CHUNK = 25


def read_archive(archive: str, region: str, config: PreprocessConfig) -> set[tuple[str, str]]:
    """Every recording of the region through the archive reader; their (event, station) keys."""
    stations = read_stations(layout.inventory_uri(archive, region))
    keys = set()
    for event in read_catalog(layout.catalog_uri(archive, region), region):
        recordings, _ = cut_recordings(layout.waveform_uri(archive, region, event.event_id), event, stations, config)
        keys |= {(r.event.event_id, f"{r.station.network}.{r.station.station}") for r in recordings}
    return keys


def read_seisbench(dataset: str, region: str, inventory: str, config: PreprocessConfig) -> set[tuple[str, str]]:
    """Every recording of the dataset through the SeisBench reader, chunk by chunk."""
    stations = read_stations(inventory)
    keys = set()
    for chunk, rows in read_rows(dataset, SeisBenchConfig(region=region)):
        uri = waveforms_uri(dataset, chunk)
        with open_waveforms(uri) as h5:
            recordings, _ = recordings_of_rows(h5, uri, rows, region, config, stations)
        keys |= {(r.event.event_id, f"{r.station.network}.{r.station.station}") for r in recordings}
    return keys


def _timed(label: str, run, tree: bool = False) -> tuple[object, float]:
    """Run ``run()``; print and return its wall time (s), with the CPU time of this
    process (``tree``: and of its descendants, the Ray workers)."""
    with measure(tree=tree) as m:
        result = run()
    print(f"  {label:<22} {m['seconds']:7.2f} s wall, {m['cpu_seconds']:7.2f} s CPU")
    return result, m["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--region", default="alpine")
    parser.add_argument("--no-pipeline", action="store_true", help="measure the readers only")
    parser.add_argument("--workdir", default="/tmp/raydisc-bench-sources")
    args = parser.parse_args()

    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    archive, dataset = str(work / "archive"), str(work / "dataset")
    print(f"generating {args.events} events of {args.region} ...")
    generate_archive(archive, [args.region], events_per_region=args.events, seed=0)
    started = time.perf_counter()
    export = export_archive(archive, args.region, dataset, events_per_chunk=EVENTS_PER_CHUNK)
    print(f"exported {export['traces']} traces in {export['chunks']} chunks ({time.perf_counter() - started:.1f} s)")
    inventory = layout.inventory_uri(archive, args.region)
    config = PreprocessConfig()

    print("readers (one process):")
    a_keys, a_s = _timed("archive (miniSEED)", lambda: read_archive(archive, args.region, config))
    s_keys, s_s = _timed("SeisBench (HDF5)", lambda: read_seisbench(dataset, args.region, inventory, config))
    if a_keys != s_keys:
        raise SystemExit(f"the readers disagree: {len(a_keys)} vs {len(s_keys)} recordings")
    n = len(a_keys)
    print(f"  {n} recordings: archive {n / a_s:.0f} rec/s, SeisBench {n / s_s:.0f} rec/s, "
          f"ratio {a_s / s_s:.2f}x")

    if args.no_pipeline:
        return
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    warm = str(work / "warm")
    run_preprocessing(archive, warm, [args.region], pipeline_config=PipelineConfig(events_per_shard=args.events))
    print("preprocessing into shards (Ray Data, 2 CPUs):")
    _, a_s = _timed("archive (miniSEED)", lambda: run_preprocessing(archive, str(work / "shards-archive"),
                                                                   [args.region], preprocess_config=config), tree=True)
    _, s_s = _timed("SeisBench (HDF5)", lambda: run_seisbench_preprocessing(
        dataset, str(work / "shards-seisbench"), SeisBenchConfig(region=args.region, inventory=inventory),
        preprocess_config=config), tree=True)
    print(f"  {n} recordings: archive {n / a_s:.0f} rec/s, SeisBench {n / s_s:.0f} rec/s, "
          f"ratio {a_s / s_s:.2f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()
