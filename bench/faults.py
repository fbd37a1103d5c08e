"""Fault benchmark: how raydisc behaves when parts of it die or go away.

Four scenarios, run one after another on one local Ray cluster (2 CPUs) and a moto S3
server on loopback, all with tiny data (a synthetic archive, a randomly initialised
3-member ``spectrogram_cnn`` bundle of tiny models):

1. ``serve_replica_kill``: the bundle served with 2 ``EnsembleModel`` replicas; a bounded
   closed loop (``--requests`` at ``--concurrency``) posts one miniSEED event, and after a
   third of the requests one replica's worker process is SIGKILLed. Reported: failed
   requests, wrong answers (200 whose probabilities differ from the offline path by more
   than 1e-5), time from the kill until the per-second throughput is back to its
   pre-kill rate and until Serve reports 2 running replicas again.
2. ``s3_outage``: preprocessing (``run_preprocessing``) and re-labelling
   (``reprocess_archives``) from and to ``s3://`` while the S3 server is stopped for
   ``--outage-s`` seconds from the job's first finished shard (or chunk) on. Reported: whether the job completed
   (storage retries) or failed and with what message, whether a re-run completes and
   skips what was done, whether the tables equal those of a run without an outage, and
   whether every object under a final name is a complete, readable Parquet file.
3. ``train_driver_kill``: ``jobs/pretrain.py`` (3 members) as a subprocess, its process
   group SIGKILLed as soon as a first member has finished, then the same command again.
   Reported: members retrained by the re-run (must be only the unfinished ones) and the
   state of the bundle directory between kill and re-run (absent or refused).
4. ``serve_soak``: steady load (concurrency 4) for ``--soak-s`` seconds; errors,
   requests/s and the resident memory of the replica processes (start, end, slope).

Example::

    python bench/faults.py --out /tmp/faults.json          # about 5-6 minutes on 2 cores
    python bench/faults.py --quick                           # shorter soak and job

Every request goes to 127.0.0.1; everything started here is stopped at the end, also
after a failure. Figures are printed as a table and, with ``--out``, written as JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter

import numpy as np
import psutil
import requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# The serving tests' tiny untrained bundle: the benchmark measures faults, not accuracy.
sys.path.insert(0, os.path.join(REPO, "tests"))

from raydisc.serving.client import request_metadata  # noqa: E402
from serving_helpers import ARCH, N_MEMBERS, make_tiny_bundle  # noqa: E402

TRAIN_HPARAMS = '{"channels": [4, 8], "dense_units": 8, "pooled_shape": [1, 2]}'
REGION = "basin"
APP = "faults"
MODEL_CLASS = f"ServeReplica:{APP}:EnsembleModel"
TOLERANCE = 1e-5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- set-up


def event_request(archive: str, bundle_uri: str) -> dict:
    """One basin event as a miniSEED request and its offline answer: station ->
    (soft-vote probabilities, member probabilities), by cut + preprocess + members."""
    from raydisc import storage
    from raydisc.data import layout
    from raydisc.data.ingest import cut_recordings, read_catalog, read_stations
    from raydisc.features.batch import preprocess_recordings
    from raydisc.ensemble import load_bundle, soft_vote

    ev = read_catalog(layout.catalog_uri(archive, REGION), REGION)[0]
    stations = read_stations(layout.inventory_uri(archive, REGION))
    mseed_uri = layout.waveform_uri(archive, REGION, ev.event_id)
    bundle = load_bundle(bundle_uri)
    # The metadata form gives only sensitivities, so the server removes those.
    config = dataclasses.replace(bundle.preprocess_config, response_removal="sensitivity")
    recordings, rejects = cut_recordings(mseed_uri, ev, stations, config)
    assert recordings and not rejects, rejects
    member = bundle.member_probabilities(preprocess_recordings(recordings, config, (bundle.input_kind,))[bundle.input_kind])
    probs = soft_vote(member)
    expected = {r.key: (probs[i], member[:, i]) for i, r in enumerate(recordings)}
    return {"body": storage.read_bytes(mseed_uri), "params": {"metadata": json.dumps(request_metadata(ev, stations))},
            "expected": expected, "event_id": ev.event_id}


def answer_error(answer: dict, expected: dict) -> float:
    """Largest deviation of an answer's station and member probabilities from offline
    (inf when the stations differ)."""
    names = answer["class_names"]
    if {s["station"] for s in answer["stations"]} != set(expected):
        return float("inf")
    worst = 0.0
    for s in answer["stations"]:
        probs, member = expected[s["station"]]
        worst = max(worst, float(np.max(np.abs(np.array([s["probabilities"][c] for c in names]) - probs))),
                    float(np.max(np.abs(np.array(s["member_probabilities"]) - member))))
    return worst


class Load:
    """Closed-loop load: ``concurrency`` threads post the request until ``n_requests``
    were issued or ``duration_s`` passed; records completion times, failures and wrong
    answers."""

    def __init__(self, url: str, request: dict, n_requests: int, duration_s: float, concurrency: int):
        self.url, self.request = url, request
        self.n_requests, self.duration_s, self.concurrency = n_requests, duration_s, concurrency
        self.lock = threading.Lock()
        self.issued = 0
        self.done: list[float] = []  # completion times of good answers (perf_counter)
        self.failures: Counter = Counter()
        self.failure_examples: list[str] = []
        self.wrong = 0
        self.max_error = 0.0
        self.threads: list[threading.Thread] = []

    def _worker(self) -> None:
        session = requests.Session()
        headers = {"Content-Type": "application/vnd.fdsn.mseed"}
        while True:
            with self.lock:
                if self.issued >= self.n_requests or time.perf_counter() > self.deadline:
                    return
                self.issued += 1
            try:
                r = session.post(f"{self.url}/v1/classify/mseed", data=self.request["body"],
                                 params=self.request["params"], headers=headers, timeout=60)
            except requests.RequestException as exc:
                with self.lock:
                    self.failures[type(exc).__name__] += 1
                    if len(self.failure_examples) < 3:
                        self.failure_examples.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            now = time.perf_counter()
            if r.status_code != 200:
                with self.lock:
                    self.failures[f"HTTP {r.status_code}"] += 1
                    if len(self.failure_examples) < 3:
                        self.failure_examples.append(f"HTTP {r.status_code}: {r.text[:200]}")
                continue
            error = answer_error(r.json(), self.request["expected"])
            with self.lock:
                self.done.append(now)
                self.max_error = max(self.max_error, error)
                if error > TOLERANCE:
                    self.wrong += 1

    def start(self) -> "Load":
        self.started = time.perf_counter()
        self.deadline = self.started + self.duration_s
        self.threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.concurrency)]
        for t in self.threads:
            t.start()
        return self

    def join(self) -> None:
        for t in self.threads:
            t.join(timeout=self.duration_s + 120)
        self.ended = time.perf_counter()

    def summary(self) -> dict:
        wall = self.ended - self.started
        return {"requests_sent": self.issued, "ok": len(self.done), "failed": sum(self.failures.values()),
                "failures_by_kind": dict(self.failures), "failure_examples": self.failure_examples,
                "wrong_answers": self.wrong, "max_abs_deviation_from_offline": self.max_error,
                "wall_s": round(wall, 2), "throughput_rps": round(len(self.done) / wall, 2) if wall else None}


def replica_pids(cls: str = MODEL_CLASS) -> list[int]:
    """PIDs of the live actors of class ``cls`` (Ray's state API)."""
    from ray.util.state import list_actors

    actors = list_actors(filters=[("class_name", "=", cls), ("state", "=", "ALIVE")], limit=100)
    return sorted(int(a.pid) for a in actors if a.pid)


def running_replicas() -> int:
    from ray import serve

    app = serve.status().applications.get(APP)
    if app is None or "EnsembleModel" not in app.deployments:
        return 0
    return int(app.deployments["EnsembleModel"].replica_states.get("RUNNING", 0))


def serve_app(bundle_uri: str) -> str:
    from ray import serve

    from raydisc.serving.app import ServeSettings, build_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"enable_access_log": False})
    settings = ServeSettings(bundle=bundle_uri, num_replicas=2, model_num_cpus=0.5, ingress_num_cpus=0.5)
    serve.run(build_app(settings), name=APP, route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if requests.get(f"{url}/readyz", timeout=5).ok and running_replicas() == 2:
                return url
        except requests.RequestException:
            pass
        if time.time() > deadline:
            raise RuntimeError("the Serve app was not ready after 120 s")
        time.sleep(0.5)


# --------------------------------------------------------------------------- scenario 1


def scenario_replica_kill(url: str, request: dict, n_requests: int, concurrency: int) -> dict:
    say(f"1/4 serve replica kill: {n_requests} requests at concurrency {concurrency}")
    Load(url, request, 2 * concurrency, 60, concurrency).start().join()  # warm-up, untimed
    before = replica_pids()
    if len(before) != 2:
        raise RuntimeError(f"expected 2 EnsembleModel replicas, found pids {before}")
    load = Load(url, request, n_requests, 240, concurrency).start()
    while len(load.done) < n_requests // 3 and any(t.is_alive() for t in load.threads):
        time.sleep(0.01)
    victim = before[0]
    killed_at = time.perf_counter()
    os.kill(victim, signal.SIGKILL)
    say(f"  SIGKILLed EnsembleModel replica pid {victim} after {len(load.done)} answers")
    seen_down, healthy_at, replacement = False, None, None
    deadline = killed_at + 180
    while time.perf_counter() < deadline:
        running = running_replicas()
        pids = replica_pids()
        seen_down = seen_down or running < 2 or victim not in pids
        if running == 2 and len(pids) == 2 and victim not in pids:
            healthy_at, replacement = time.perf_counter(), sorted(set(pids) - set(before))
            break
        time.sleep(0.2)
    load.join()
    out = load.summary()
    # Per-second completions: pre-kill rate from the full seconds before the kill (the
    # first skipped: ramp-up); recovery = the first second after the kill that reaches 90 %.
    t0 = load.started
    counts = np.bincount(np.floor(np.array(load.done) - t0).astype(int)) if load.done else np.zeros(1, int)
    kill_s = killed_at - t0
    pre = counts[1:int(kill_s)] if int(kill_s) > 1 else counts[: max(int(kill_s), 1)]
    pre_rate = float(np.mean(pre)) if len(pre) else float("nan")
    recovered = None
    for second in range(int(np.ceil(kill_s)), len(counts)):
        if counts[second] >= 0.9 * pre_rate:
            recovered = round(second + 1 - kill_s, 2)  # end of the first full-rate second
            break
    out.update(killed_pid=victim, replacement_pids=replacement, killed_after_answers=None,
               kill_at_s=round(kill_s, 2), pre_kill_rps=round(pre_rate, 2),
               per_second_completions=counts.tolist(),
               throughput_recovered_after_s=recovered,
               replicas_healthy_again_after_s=round(healthy_at - killed_at, 2) if healthy_at else None,
               serve_saw_replica_down=seen_down)
    out["killed_after_answers"] = int(np.sum(np.array(load.done) <= killed_at))
    say(f"  {json.dumps({k: v for k, v in out.items() if k != 'per_second_completions'})}")
    return out


# --------------------------------------------------------------------------- scenario 4


def scenario_soak(url: str, request: dict, duration_s: float, concurrency: int, every_s: float) -> dict:
    say(f"4/4 soak: {duration_s:g} s at concurrency {concurrency}, RSS every {every_s:g} s")
    pids = {f"EnsembleModel-{i}": pid for i, pid in enumerate(replica_pids())}
    for i, pid in enumerate(replica_pids(f"ServeReplica:{APP}:Classifier")):
        pids[f"Classifier-{i}"] = pid
    procs = {name: psutil.Process(pid) for name, pid in pids.items()}
    Load(url, request, 50, 60, concurrency).start().join()  # warm-up (the replacement replica is new)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in procs}
    load = Load(url, request, 10**9, duration_s, concurrency).start()
    while any(t.is_alive() for t in load.threads):
        now = time.perf_counter() - load.started
        for name, p in procs.items():
            try:
                samples[name].append((now, p.memory_info().rss / 2**20))
            except psutil.Error:
                pass
        for t in load.threads:
            t.join(timeout=every_s / len(load.threads))
    load.join()
    out = load.summary()
    out.pop("requests_sent")
    replicas = {}
    for name, pts in samples.items():
        if len(pts) < 2:
            replicas[name] = {"pid": pids[name], "samples": len(pts)}
            continue
        t, rss = np.array(pts).T
        slope = float(np.polyfit(t / 60, rss, 1)[0])
        replicas[name] = {"pid": pids[name], "rss_start_mb": round(float(rss[0]), 1),
                          "rss_end_mb": round(float(rss[-1]), 1), "rss_max_mb": round(float(rss.max()), 1),
                          "slope_mb_per_min": round(slope, 2), "samples": len(pts)}
    out.update(duration_s=duration_s, concurrency=concurrency, replicas=replicas)
    say(f"  {json.dumps(out)}")
    return out


# --------------------------------------------------------------------------- scenario 2


class Outage:
    """Stops the moto server for ``outage_s`` seconds, then starts it again on the same
    port (moto keeps its buckets in the process). :meth:`trigger` (the job's progress
    callback: its first shard is done, the rest are under way) starts the outage."""

    def __init__(self, server, outage_s: float):
        self.server, self.outage_s = server, outage_s
        self.window: tuple[float, float] | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.go = threading.Event()
        self.cancel = threading.Event()

    def trigger(self, *_args) -> None:
        self.go.set()

    def _run(self) -> None:
        while not self.go.wait(0.05):
            if self.cancel.is_set():
                return
        down = time.perf_counter()
        self.server.stop()
        time.sleep(self.outage_s)
        self.server.start()
        self.window = (down, time.perf_counter())

    def __enter__(self) -> "Outage":
        self.started = time.perf_counter()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.cancel.set()
        self.thread.join()


def audit_objects(prefix: str) -> dict:
    """Every object under ``prefix``: Parquet files must open with pyarrow; names that are
    neither ``.parquet`` nor the known JSON/CSV/XML/text outputs are listed as suspicious."""
    import pyarrow.parquet as pq

    from raydisc import storage

    fs, path = storage.filesystem(prefix)
    fs.invalidate_cache()
    files = [p for p in fs.find(path)]
    unreadable, suspicious = [], []
    for p in files:
        name = p.rsplit("/", 1)[-1]
        if name.endswith(".parquet"):
            try:
                with fs.open(p, "rb") as f:
                    pq.read_table(f)
            except Exception as exc:  # noqa: BLE001 - reported
                unreadable.append(f"{p}: {type(exc).__name__}: {str(exc)[:120]}")
        elif not name.endswith((".json", ".csv", ".xml", ".txt")) or ".tmp" in name:
            suspicious.append(p)
    return {"objects": len(files), "parquet": sum(p.endswith(".parquet") for p in files),
            "unreadable_parquet": unreadable, "suspicious_names": suspicious}


def tables_of(prefix: str, pattern: str, sort_by: list[str], drop: tuple[str, ...] = ()) -> dict:
    """``{relative name: pandas frame}`` of the Parquet files under ``prefix``."""
    import pandas as pd

    from raydisc import storage

    fs, path = storage.filesystem(prefix)
    fs.invalidate_cache()
    out = {}
    for p in sorted(fs.find(path)):
        rel = p[len(path):].lstrip("/")
        if p.endswith(".parquet") and pattern in rel:
            with fs.open(p, "rb") as f:
                frame = pd.read_parquet(f)
            frame = frame.drop(columns=[c for c in drop if c in frame.columns])
            keys = [c for c in sort_by if c in frame.columns]
            out[rel] = frame.sort_values(keys).reset_index(drop=True) if keys else frame
    return out


def same_tables(a: dict, b: dict) -> tuple[bool, str]:
    if set(a) != set(b):
        return False, f"files differ: only in reference {sorted(set(a) - set(b))[:5]}, only here {sorted(set(b) - set(a))[:5]}"
    for name in a:
        fa, fb = a[name], b[name]
        if list(fa.columns) != list(fb.columns) or len(fa) != len(fb):
            return False, f"{name}: shape/columns differ"
        for col in fa.columns:
            va, vb = fa[col].tolist(), fb[col].tolist()
            if not all(_same(x, y) for x, y in zip(va, vb)):
                return False, f"{name}: column {col} differs"
    return True, f"{len(a)} files identical"


def _same(x, y) -> bool:
    return _norm(x) == _norm(y)


def _norm(x):
    """A comparable form of a cell: nested arrays/lists as lists, NaN as a string."""
    if isinstance(x, np.ndarray):
        x = x.tolist()
    if isinstance(x, (list, tuple)):
        return [_norm(v) for v in x]
    if isinstance(x, (float, np.floating)) and np.isnan(x):
        return "nan"
    return x


def run_with_outage(name: str, job, server, outage_s: float) -> dict:
    """Run ``job(progress)``; the outage starts at its first progress report."""
    started = time.perf_counter()
    with Outage(server, outage_s) as outage:
        try:
            result = job(outage.trigger)
            status, message = "completed", ""
        except Exception as exc:  # noqa: BLE001 - the point of the scenario
            result, status, message = None, "failed", f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - started
    window = outage.window
    row = {"status": status, "error": message[:600], "wall_s": round(wall, 2),
           "outage_from_s": round(window[0] - outage.started, 2) if window else None,
           "outage_s": round(window[1] - window[0], 2) if window else None,
           "outage_hit_the_job": bool(window and window[0] - outage.started < wall)}
    say(f"  {name} with outage: {status} in {wall:.1f} s {message[:300]}")
    return {"row": row, "result": result}


def scenario_s3_outage(server, archive_s3: str, bundle_uri: str, bucket: str, outage_s: float,
                       events_per_shard: int, long_outage_s: float = 0.0) -> dict:
    from raydisc.config import PipelineConfig
    from raydisc.data.pipeline import run_preprocessing
    from raydisc.reprocess import ReprocessConfig, reprocess_archives
    from raydisc.reprocess.sources import sources_from_archive

    say(f"2/4 S3 outage of {outage_s:g} s during preprocessing and re-labelling")
    regions = ["alpine", "basin"]
    pconf = PipelineConfig(events_per_shard=events_per_shard)
    out: dict = {}

    # Preprocessing: a reference run, then one with an outage, then a re-run.
    t = time.perf_counter()
    run_preprocessing(archive_s3, f"{bucket}/ref-shards", regions, pipeline_config=pconf)
    ref_s = time.perf_counter() - t
    say(f"  reference preprocessing: {ref_s:.1f} s")
    first = run_with_outage("preprocessing", lambda progress: run_preprocessing(
        archive_s3, f"{bucket}/shards", regions, pipeline_config=pconf, progress=progress), server, outage_s)
    rerun = run_preprocessing(archive_s3, f"{bucket}/shards", regions, pipeline_config=pconf)
    sort = ["event_id", "network", "station", "location", "reason", "detail"]
    ok, detail = same_tables(tables_of(f"{bucket}/ref-shards", "", sort), tables_of(f"{bucket}/shards", "", sort))
    out["preprocess"] = {**first["row"], "reference_wall_s": round(ref_s, 2),
                         "first_run_shards_written": first["result"]["shards_written"] if first["result"] else None,
                         "rerun_shards_written": rerun["shards_written"], "rerun_shards_skipped": rerun["shards_skipped"],
                         "tables_equal_reference": ok, "comparison": detail,
                         "audit": audit_objects(f"{bucket}/shards")}
    say(f"  preprocessing: {json.dumps(out['preprocess'])}")

    if long_outage_s:
        # An outage longer than the storage clients' retries (about 20 s): the job must
        # fail with a message naming what failed, and a re-run must finish the job.
        first = run_with_outage("preprocessing (long outage)", lambda progress: run_preprocessing(
            archive_s3, f"{bucket}/shards-long", regions, pipeline_config=pconf, progress=progress),
            server, long_outage_s)
        rerun = run_preprocessing(archive_s3, f"{bucket}/shards-long", regions, pipeline_config=pconf)
        ok, detail = same_tables(tables_of(f"{bucket}/ref-shards", "", sort),
                                 tables_of(f"{bucket}/shards-long", "", sort))
        out["preprocess_long_outage"] = {**first["row"], "rerun_shards_written": rerun["shards_written"],
                                         "rerun_shards_skipped": rerun["shards_skipped"],
                                         "tables_equal_reference": ok, "comparison": detail,
                                         "audit": audit_objects(f"{bucket}/shards-long")}
        say(f"  preprocessing, long outage: {json.dumps(out['preprocess_long_outage'])}")

    # Re-labelling the same regions with the bundle, the same three runs.
    rconf = ReprocessConfig(events_per_chunk=max(1, events_per_shard))
    sources = sources_from_archive(archive_s3, regions)
    t = time.perf_counter()
    reprocess_archives(sources, bundle_uri, f"{bucket}/ref-relabelled", rconf)
    ref_s = time.perf_counter() - t
    say(f"  reference re-labelling: {ref_s:.1f} s")
    first = run_with_outage("re-labelling", lambda progress: reprocess_archives(
        sources, bundle_uri, f"{bucket}/relabelled", rconf, progress=progress), server, outage_s)
    rerun = reprocess_archives(sources, bundle_uri, f"{bucket}/relabelled", rconf)
    totals = {k: sum(r.get(k, 0) for r in rerun["regions"].values()) for k in ("chunks_written", "chunks_skipped")}
    sort = ["event_id", "network", "station", "location", "reason", "detail"]
    ok, detail = same_tables(tables_of(f"{bucket}/ref-relabelled", "", sort),
                             tables_of(f"{bucket}/relabelled", "", sort))
    out["reprocess"] = {**first["row"], "reference_wall_s": round(ref_s, 2),
                        "rerun_chunks_written": totals["chunks_written"],
                        "rerun_chunks_skipped": totals["chunks_skipped"],
                        "tables_equal_reference": ok, "comparison": detail,
                        "audit": audit_objects(f"{bucket}/relabelled")}
    say(f"  re-labelling: {json.dumps(out['reprocess'])}")
    return out


# --------------------------------------------------------------------------- scenario 3


def _kill_session(proc: subprocess.Popen) -> list[int]:
    """SIGKILL the process group of ``proc`` (started in its own session), then any
    process of that session that survived (Ray's daemons); returns the pids killed."""
    killed = []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == proc.pid:
                p.kill()
                killed.append(p.pid)
        except (ProcessLookupError, psutil.Error, PermissionError):
            pass
    return killed


def scenario_train_kill(shards: str, work: str, epochs: int) -> dict:
    from raydisc.ensemble import BundleError, load_bundle
    from raydisc.training.ensemble import FINISHED_DIR

    say(f"3/4 training driver kill: jobs/pretrain.py, {N_MEMBERS} members, {epochs} epochs")
    run_dir = os.path.join(work, "train-run")
    cmd = [sys.executable, os.path.join(REPO, "jobs", "pretrain.py"), "--shards", shards, "--regions", "alpine,basin",
           "--run-dir", run_dir, "--architecture", ARCH, "--hparams", TRAIN_HPARAMS, "--members", str(N_MEMBERS),
           "--epochs", str(epochs), "--patience", str(epochs), "--batch-size", "32", "--cpus-per-worker", "0.5",
           "--no-evaluate"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS"] = "0"
    finished_dir = os.path.join(run_dir, FINISHED_DIR)

    def finished() -> list[int]:
        if not os.path.isdir(finished_dir):
            return []
        return sorted(int(n[len("member-"):-len(".json")]) for n in os.listdir(finished_dir) if n.endswith(".json"))

    log1 = open(os.path.join(work, "pretrain-1.log"), "w")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log1, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)
    stragglers: list[int] = []
    try:
        deadline = started + 400
        while not finished() and proc.poll() is None and time.perf_counter() < deadline:
            time.sleep(0.2)
        done_at_kill = finished()
        first_finished_s = time.perf_counter() - started
        if proc.poll() is not None:
            raise RuntimeError(f"pretrain exited (rc {proc.returncode}) before a member finished; see {log1.name}")
        stragglers = _kill_session(proc)
    finally:
        if proc.poll() is None:
            stragglers += _kill_session(proc)
        log1.close()
    say(f"  killed the driver's process group {first_finished_s:.1f} s after start; finished members: {done_at_kill}")
    # Give the kernel a moment to reap; then the bundle must be absent or refused.
    time.sleep(1)
    bundle_dir = os.path.join(run_dir, "bundle")
    if not os.path.exists(bundle_dir):
        bundle_state = "absent"
    else:
        try:
            load_bundle(bundle_dir)
            bundle_state = "LOADABLE (incomplete?)"
        except BundleError as exc:
            bundle_state = f"refused: {exc}"

    started = time.perf_counter()
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=500,
                           start_new_session=True)
    rerun_s = time.perf_counter() - started
    with open(os.path.join(work, "pretrain-2.log"), "w") as f:
        f.write(rerun.stdout + rerun.stderr)
    lines = (rerun.stdout + rerun.stderr).splitlines()
    retrained = sorted({int(line.split()[1]) for line in lines if line.startswith("member ") and " epoch " in line})
    reused_line = next((line for line in lines if "finished in an earlier run" in line), "")
    try:
        bundle = load_bundle(bundle_dir)
        after = {"bundle_members": len(bundle.members), "bundle_loads": True}
    except Exception as exc:  # noqa: BLE001 - reported
        after = {"bundle_members": None, "bundle_loads": False, "bundle_error": str(exc)[:300]}
    out = {"finished_at_kill": done_at_kill, "kill_after_s": round(first_finished_s, 2),
           "stray_processes_killed": len(stragglers), "bundle_between_kill_and_rerun": bundle_state,
           "rerun_rc": rerun.returncode, "rerun_wall_s": round(rerun_s, 2), "retrained_members": retrained,
           "expected_retrained": [m for m in range(N_MEMBERS) if m not in done_at_kill],
           "only_unfinished_retrained": retrained == [m for m in range(N_MEMBERS) if m not in done_at_kill],
           "reuse_message": reused_line, **after}
    if rerun.returncode != 0:
        out["rerun_tail"] = (rerun.stdout + rerun.stderr)[-1500:]
    say(f"  {json.dumps(out)}")
    return out


# --------------------------------------------------------------------------- main


def print_table(results: dict) -> None:
    def row(label, value):
        print(f"  {label:<52} {value}")

    print("\nraydisc under faults (2 shared CPU cores, loopback only)")
    r = results.get("serve_replica_kill", {"error": "not run"})
    print("1. Serve: one of 2 EnsembleModel replicas SIGKILLed under load")
    if "error" in r:
        row("ERROR", r["error"][:200])
    else:
        row("requests sent / ok / failed", f"{r['requests_sent']} / {r['ok']} / {r['failed']} {r['failures_by_kind'] or ''}")
        row("wrong answers (|p - offline| > 1e-5)", f"{r['wrong_answers']} (max deviation {r['max_abs_deviation_from_offline']:.2e})")
        row("throughput before kill (req/s) / overall", f"{r['pre_kill_rps']} / {r['throughput_rps']}")
        row("kill -> throughput back to pre-kill rate (s)", r["throughput_recovered_after_s"])
        row("kill -> Serve reports 2 running replicas (s)", r["replicas_healthy_again_after_s"])
    r = results.get("s3_outage", {"error": "not run"})
    print("2. Object storage outage (moto S3 stopped, same port restarted)")
    if "error" in r:
        row("ERROR", r["error"][:200])
    for job in ("preprocess", "preprocess_long_outage", "reprocess"):
        if job not in r:
            continue
        j = r[job]
        row(f"{job}: outage at / length (s)", f"{j['outage_from_s']} / {j['outage_s']} (job {j['wall_s']} s"
                                              + (f", reference {j['reference_wall_s']} s)" if 'reference_wall_s' in j else ")"))
        row(f"{job}: first run", j["status"] + (f": {j['error'][:400]}" if j["error"] else ""))
        if job.startswith("preprocess"):
            row(f"{job}: re-run written / skipped shards", f"{j['rerun_shards_written']} / {j['rerun_shards_skipped']}")
        else:
            row(f"{job}: re-run written / skipped chunks", f"{j['rerun_chunks_written']} / {j['rerun_chunks_skipped']}")
        row(f"{job}: tables equal to the no-outage run", f"{j['tables_equal_reference']} ({j['comparison']})")
        a = j["audit"]
        row(f"{job}: objects / parquet / unreadable / odd names",
            f"{a['objects']} / {a['parquet']} / {len(a['unreadable_parquet'])} / {len(a['suspicious_names'])}")
    r = results.get("train_driver_kill", {"error": "not run"})
    print("3. Training: pretrain driver's process group SIGKILLed after the first finished member")
    if "error" in r:
        row("ERROR", r["error"][:200])
    else:
        row("members finished at the kill", r["finished_at_kill"])
        row("bundle directory between kill and re-run", r["bundle_between_kill_and_rerun"][:80])
        row("members retrained by the re-run (expected)", f"{r['retrained_members']} ({r['expected_retrained']})")
        row("re-run rc / wall (s) / bundle members", f"{r['rerun_rc']} / {r['rerun_wall_s']} / {r['bundle_members']}")
    r = results.get("serve_soak", {"error": "not run"})
    print("4. Serve soak")
    if "error" in r:
        row("ERROR", r["error"][:200])
    else:
        row("duration (s) / concurrency / ok / failed", f"{r['duration_s']} / {r['concurrency']} / {r['ok']} / {r['failed']}")
        row("throughput (req/s) / wrong answers", f"{r['throughput_rps']} / {r['wrong_answers']}")
        for name, rep in r["replicas"].items():
            if "rss_start_mb" in rep:
                row(f"RSS {name} start -> end MB (slope MB/min)",
                    f"{rep['rss_start_mb']} -> {rep['rss_end_mb']} ({rep['slope_mb_per_min']:+.2f})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter soak (20 s) and smaller jobs")
    parser.add_argument("--requests", type=int, default=300, help="requests of the replica-kill load")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads of the replica-kill load")
    parser.add_argument("--soak-s", type=float, default=None, help="soak duration (default 120 s, --quick 20 s)")
    parser.add_argument("--soak-concurrency", type=int, default=4)
    parser.add_argument("--outage-s", type=float, default=4.0, help="how long the S3 server stays down")
    parser.add_argument("--long-outage-s", type=float, default=30.0,
                        help="a second preprocessing run with an outage longer than the retries (0: skip)")
    parser.add_argument("--events", type=int, default=None, help="events per region (default 16, --quick 8)")
    parser.add_argument("--scenarios", default="outage,serve,soak,train",
                        help="comma-separated subset of outage, serve, soak, train")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, archive, run dirs)")
    args = parser.parse_args(argv)
    soak_s = args.soak_s if args.soak_s is not None else (20.0 if args.quick else 120.0)
    events = args.events or (8 if args.quick else 16)
    wanted = set(args.scenarios.split(","))

    from moto.server import ThreadedMotoServer

    import ray
    from ray import serve

    from raydisc import storage
    from raydisc.synthetic import generate_archive

    work = tempfile.mkdtemp(prefix="raydisc-faults-")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    results: dict = {}
    started = time.perf_counter()
    serving = False
    try:
        server.start()
        # Before ray.init: the workers inherit these, as on a real cluster.
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                          AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
        archive = os.path.join(work, "archive")
        generate_archive(archive, ["alpine", "basin"], events_per_region=events, seed=7)
        bundle_uri = make_tiny_bundle(os.path.join(work, "bundle"))
        say(f"archive of {events} events per region and a {N_MEMBERS}-member bundle under {work}")
        ray.init(num_cpus=2, logging_level="ERROR")

        if "outage" in wanted:
            bucket = "s3://raydisc-faults"
            fs, _ = storage.filesystem(bucket)
            fs.mkdir("raydisc-faults")
            fs.put(archive, "raydisc-faults/archive", recursive=True)
            try:
                results["s3_outage"] = scenario_s3_outage(server, f"{bucket}/archive", bundle_uri, bucket,
                                                          args.outage_s, events_per_shard=1,
                                                          long_outage_s=args.long_outage_s)
            except Exception as exc:  # noqa: BLE001 - reported, the other scenarios still run
                traceback.print_exc()
                results["s3_outage"] = {"error": f"{type(exc).__name__}: {exc}"}

        shards = os.path.join(work, "shards")
        if "train" in wanted:
            from raydisc.config import PipelineConfig
            from raydisc.data.pipeline import run_preprocessing

            run_preprocessing(archive, shards, ["alpine", "basin"], pipeline_config=PipelineConfig(events_per_shard=4))

        if wanted & {"serve", "soak"}:
            request = event_request(archive, bundle_uri)
            serving = True
            try:
                url = serve_app(bundle_uri)
            except Exception as exc:  # noqa: BLE001 - reported, the training scenario still runs
                traceback.print_exc()
                for key in ("serve_replica_kill", "serve_soak"):
                    results[key] = {"error": f"serving did not start: {type(exc).__name__}: {str(exc)[:300]}"}
                wanted -= {"serve", "soak"}
                url = None
            if url:
                say(f"serving {APP} at {url} (2 EnsembleModel replicas)")
            if "serve" in wanted:
                try:
                    results["serve_replica_kill"] = scenario_replica_kill(url, request, args.requests, args.concurrency)
                except Exception as exc:  # noqa: BLE001
                    traceback.print_exc()
                    results["serve_replica_kill"] = {"error": f"{type(exc).__name__}: {exc}"}
            if "soak" in wanted:
                try:
                    results["serve_soak"] = scenario_soak(url, request, soak_s, args.soak_concurrency, every_s=5.0)
                except Exception as exc:  # noqa: BLE001
                    traceback.print_exc()
                    results["serve_soak"] = {"error": f"{type(exc).__name__}: {exc}"}
            serve.shutdown()
            serving = False
        ray.shutdown()  # the training job starts its own cluster

        if "train" in wanted:
            try:
                results["train_driver_kill"] = scenario_train_kill(shards, work, epochs=2)
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                results["train_driver_kill"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        if serving:
            try:
                serve.shutdown()
            except Exception:  # noqa: BLE001
                pass
        if ray.is_initialized():
            ray.shutdown()
        try:
            server.stop()
        except Exception:  # noqa: BLE001
            pass
        if args.keep:
            say(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    results["wall_s"] = round(time.perf_counter() - started, 1)
    print_table(results)
    print(f"\ntotal {results['wall_s']} s")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"args": {**vars(args), "soak_s": soak_s, "events": events}, "results": results}, f,
                      indent=2, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
