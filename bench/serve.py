"""Load benchmark of the Serve endpoint on loopback: throughput and p50/p99 latency.

A 10-member ensemble of default-size models (random weights: timing only) is served in
several configurations, one after another on the same local Ray cluster, and each gets
the same closed-loop load: ``--concurrency`` client threads posting the same one-event
miniSEED request (``--stations`` stations, raw-body form) until ``--requests`` answers or
``--duration-s`` seconds, after ``--warmup`` untimed requests.

Configurations (name: composition, max_batch_size, model replicas):

* ``batched-1``:    one deployment with all members, batch 16, 1 replica (the default)
* ``unbatched-1``:  same, max_batch_size 1
* ``batched-2``:    same as batched-1 with 2 replicas
* ``members-1``:    one deployment per member (10), batch 16, 1 replica each

Example::

    python bench/serve.py --requests 300 --duration-s 25 --concurrency 8 --out /tmp/serve_bench.json

Each configuration then gets a second, model-level load: the same closed loop through
DeploymentHandles straight to the model deployment(s) with preprocessed inputs, which
shows the effect of batching and replicas on inference alone (the HTTP load on a small
machine is bound by the ingress: miniSEED parsing, cutting, preprocessing).

Latencies in ms, throughput in requests/s (each request = one event of ``--stations``
recordings). Ratios relative to ``batched-1`` are printed with the table.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import socket
import sys
import tempfile
import threading
import time

import numpy as np
import obspy
import requests
import torch

from raydisc.config import PreprocessConfig
from raydisc.ensemble import save_bundle
from raydisc.models import build_model, input_shape_of

CONFIGS = {
    "batched-1": {"composition": "ensemble", "max_batch_size": 16, "num_replicas": 1},
    "unbatched-1": {"composition": "ensemble", "max_batch_size": 1, "num_replicas": 1},
    "batched-2": {"composition": "ensemble", "max_batch_size": 16, "num_replicas": 2},
    "members-1": {"composition": "members", "max_batch_size": 16, "num_replicas": 1},
}


def make_bundle(path: str, architecture: str, members: int) -> str:
    config = PreprocessConfig()
    shape = input_shape_of(architecture, config)
    states = []
    for seed in range(members):
        torch.manual_seed(seed)
        states.append(build_model(architecture, shape).state_dict())
    metrics = [{"seed": i, "validation_loss": 1.0, "validation_accuracy": 0.5} for i in range(members)]
    save_bundle(path, architecture=architecture, hparams={}, input_shape=shape, preprocess_config=config,
                member_state_dicts=states, member_metrics=metrics, overwrite=True)
    return path


def make_request(stations: int, rate_hz: float = 100.0, seed: int = 0) -> tuple[bytes, dict]:
    """One event: ``stations`` stations of 3-component noise, 150 s at ``rate_hz``,
    P pick 40 s after the start; returns ``(miniSEED bytes, metadata dict)``."""
    rng = np.random.default_rng(seed)
    t0 = obspy.UTCDateTime("2024-01-01T00:00:00")
    traces, meta_stations = [], []
    for i in range(stations):
        code = f"S{i:03d}"
        for comp in "ZNE":
            data = rng.normal(0, 1000, int(150 * rate_hz)).astype(np.int32)
            traces.append(obspy.Trace(data, {"network": "BN", "station": code, "location": "",
                                             "channel": f"HH{comp}", "sampling_rate": rate_hz, "starttime": t0}))
        meta_stations.append({"network": "BN", "station": code, "location": "", "channels":
                              {c: f"HH{c}" for c in "ZNE"}, "sampling_rate_hz": rate_hz,
                              "sensitivity": {c: 1e9 for c in "ZNE"}, "p_time": (t0 + 40).isoformat() + "Z"})
    buf = io.BytesIO()
    obspy.Stream(traces).write(buf, format="MSEED", encoding="STEIM2")
    return buf.getvalue(), {"event": {"event_id": "bench", "origin_time": (t0 + 30).isoformat() + "Z"},
                            "stations": meta_stations}


def load(url: str, body: bytes, meta: dict, n_requests: int, duration_s: float, concurrency: int) -> dict:
    """Closed-loop load; returns throughput (req/s) and latency percentiles (ms)."""
    params = {"metadata": json.dumps(meta)}
    headers = {"Content-Type": "application/vnd.fdsn.mseed"}
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    issued = [0]
    deadline = time.perf_counter() + duration_s

    def worker():
        session = requests.Session()
        while True:
            with lock:
                if issued[0] >= n_requests or time.perf_counter() > deadline:
                    return
                issued[0] += 1
            start = time.perf_counter()
            response = session.post(f"{url}/v1/classify/mseed", data=body, params=params, headers=headers, timeout=120)
            elapsed = time.perf_counter() - start
            with lock:
                if response.status_code == 200:
                    latencies.append(elapsed)
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {"requests": len(latencies), "errors": errors[0], "wall_s": round(wall, 2),
            "throughput_rps": round(len(latencies) / wall, 2),
            "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None}


def model_load(app_name: str, composition: str, members: int, x: np.ndarray, n_requests: int,
               duration_s: float, concurrency: int) -> dict:
    """Closed-loop load on the model deployment(s) alone, through DeploymentHandles with
    already preprocessed inputs ``x`` ``(n, *input_shape)``: isolates what batching and
    replicas do for inference from the ingress (parsing, cutting, preprocessing)."""
    import asyncio

    from ray import serve

    names = ["EnsembleModel"] if composition == "ensemble" else [f"Member{i:03d}" for i in range(members)]
    handles = [serve.get_deployment_handle(n, app_name=app_name) for n in names]

    async def run():
        latencies: list[float] = []
        issued = 0
        deadline = time.perf_counter() + duration_s

        async def worker():
            nonlocal issued
            while issued < n_requests and time.perf_counter() < deadline:
                issued += 1
                start = time.perf_counter()
                parts = await asyncio.gather(*[h.remote(x) for h in handles])
                assert sum(p.shape[0] for p in parts) == members
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        return latencies, time.perf_counter() - start

    latencies, wall = asyncio.run(run())
    lat = np.array(latencies) * 1000
    return {"model_requests": len(lat), "model_throughput_rps": round(len(lat) / wall, 2),
            "model_p50_ms": round(float(np.percentile(lat, 50)), 1),
            "model_p99_ms": round(float(np.percentile(lat, 99)), 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--architecture", default="waveform_cnn", choices=("waveform_cnn", "spectrogram_cnn"))
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--stations", type=int, default=3, help="recordings per request (one event)")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per configuration (max)")
    parser.add_argument("--duration-s", type=float, default=25.0, help="time limit per configuration")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"subset of {list(CONFIGS)}")
    parser.add_argument("--cpus", type=int, default=None, help="logical CPUs of the local Ray cluster")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--no-model-level", dest="model_level", action="store_false",
                        help="skip the second load that calls the model deployments directly")
    args = parser.parse_args(argv)

    import ray
    from ray import serve

    from raydisc.serving.app import ServeSettings, build_app

    ray.init(num_cpus=args.cpus or max(4, os.cpu_count() or 1), include_dashboard=False, logging_level="ERROR")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"enable_access_log": False})
    url = f"http://127.0.0.1:{port}"
    body, meta = make_request(args.stations)
    # The model-level load sends what the ingress would: this request's model inputs.
    x = np.random.default_rng(0).standard_normal(
        (args.stations, *input_shape_of(args.architecture, PreprocessConfig()))).astype(np.float32)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        bundle = make_bundle(os.path.join(tmp, "bundle"), args.architecture, args.members)
        for name in args.configs.split(","):
            cfg = CONFIGS[name]
            # Logical CPUs are only a scheduling token here: model replicas ask for a quarter
            # so that even the 10 per-member deployments + ingress fit a 4-CPU cluster; each
            # replica runs torch with one thread (Ray sets OMP_NUM_THREADS=1 for them).
            settings = ServeSettings(bundle=bundle, model_num_cpus=0.25, ingress_num_cpus=0.5, **cfg)
            serve.run(build_app(settings), name=name, route_prefix="/")
            deadline = time.time() + 120
            while not requests.get(f"{url}/readyz", timeout=10).ok:
                if time.time() > deadline:
                    raise RuntimeError(f"{name}: not ready after 120 s")
                time.sleep(0.5)
            load(url, body, meta, args.warmup, 60, min(args.concurrency, args.warmup))
            results[name] = {**cfg, **load(url, body, meta, args.requests, args.duration_s, args.concurrency)}
            if args.model_level:
                results[name].update(model_load(name, cfg["composition"], args.members, x, args.requests,
                                                args.duration_s, args.concurrency))
            print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
            serve.delete(name)
    serve.shutdown()
    ray.shutdown()

    base = results.get("batched-1")
    print(f"\n{args.members} x {args.architecture} (default size), {args.stations} stations/request, "
          f"concurrency {args.concurrency}, {os.cpu_count()} cores")
    print("HTTP end to end (ingress + models)" + (" | model deployments only (handles)" if args.model_level else ""))
    print(f"{'config':<12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'n':>5} {'err':>4} {'x thr':>6}"
          + (f" | {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'x thr':>6}" if args.model_level else ""))
    for name, r in results.items():
        ratio = r["throughput_rps"] / base["throughput_rps"] if base and base["throughput_rps"] else float("nan")
        r["throughput_vs_batched_1"] = round(ratio, 2)
        line = (f"{name:<12} {r['throughput_rps']:>8.2f} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['requests']:>5} "
                f"{r['errors']:>4} {ratio:>6.2f}")
        if args.model_level:
            mratio = r["model_throughput_rps"] / base["model_throughput_rps"] if base else float("nan")
            r["model_throughput_vs_batched_1"] = round(mratio, 2)
            line += (f" | {r['model_throughput_rps']:>8.2f} {r['model_p50_ms']:>8} {r['model_p99_ms']:>8} "
                     f"{mratio:>6.2f}")
        print(line)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
