"""Guarantees under faults that are cheap to check: object-storage writes that fail or
meet an outage leave nothing partial under the final name, and a training run stopped
after some members finished trains only the others when run again.

The S3 server is the session's (``s3_server``); a test that stops it starts it again on
the same port before it ends (moto keeps its buckets in the process, across restarts).
Bigger fault scenarios (a killed Serve replica, a killed training driver, an outage in
the middle of preprocessing) are measured by ``bench/faults.py``.
"""
from __future__ import annotations

import gc
import json
import os
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raydisc import storage
from raydisc.data.shards import write_table_atomic


def _session_server(endpoint: str):
    """The ThreadedMotoServer object behind the ``s3_server`` fixture's endpoint (the
    fixture yields only the URL)."""
    from moto.server import ThreadedMotoServer

    port = int(endpoint.rsplit(":", 1)[1])
    (server,) = [o for o in gc.get_objects() if isinstance(o, ThreadedMotoServer) and o._port == port]
    return server


def _up(endpoint: str) -> bool:
    import requests

    try:
        requests.get(endpoint, timeout=2)
        return True
    except requests.RequestException:
        return False


def test_failed_write_to_s3_leaves_no_object_under_the_final_name(s3_bucket):
    uri = f"{s3_bucket}/shards/basin/shard-00000.parquet"
    with pytest.raises(RuntimeError, match="writer failed"):
        with storage.open_atomic(uri) as f:
            f.write(b"PAR1 half of a parquet file")
            raise RuntimeError("writer failed")
    assert not storage.exists(uri)
    assert storage.listdir(f"{s3_bucket}/shards/basin") == []
    # A table written in full, then a failure before the block ends: still nothing.
    table = pa.table({"a": pa.array([1, 2, 3])})
    with pytest.raises(OSError, match="disk full"):
        with storage.open_atomic(uri) as f:
            pq.write_table(table, f)
            raise OSError("disk full while finishing")
    assert not storage.exists(uri)
    # and a write that succeeds is complete and readable
    write_table_atomic(uri, table)
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as f:
        assert pq.read_table(f).equals(table)


def test_objects_written_by_another_process_are_seen_after_a_listing(s3_server, s3_bucket):
    """A driver lists a folder, a worker (another process: here another client) writes
    into it, and the driver reads the new object: no stale listing hides it (a resumed
    re-labelling run on S3 failed with FileNotFoundError for a chunk a worker had written)."""
    import s3fs

    folder = f"{s3_bucket}/stations/alpine"
    storage.write_bytes_atomic(f"{folder}/chunk-00000.parquet", b"first")
    assert storage.listdir(folder) == ["chunk-00000.parquet"]
    assert not storage.exists(f"{folder}/chunk-00001.parquet")
    worker = s3fs.S3FileSystem(skip_instance_cache=True, client_kwargs={"endpoint_url": s3_server})
    worker.pipe_file(f"{folder[len('s3://'):]}/chunk-00001.parquet", b"second")
    assert storage.read_bytes(f"{folder}/chunk-00001.parquet") == b"second"
    assert storage.exists(f"{folder}/chunk-00001.parquet")
    assert storage.listdir(folder) == ["chunk-00000.parquet", "chunk-00001.parquet"]


def test_short_s3_outage_during_write_and_read_is_retried(s3_server, s3_bucket):
    """The server goes away for 2 s while a write and then a read are under way: the
    storage helpers' retries carry them through, and the object is complete."""
    server = _session_server(s3_server)
    uri = f"{s3_bucket}/outage/object.bin"
    data = os.urandom(200_000)
    server.stop()
    try:
        assert not _up(s3_server)
        restart = threading.Timer(2.0, server.start)
        restart.start()
        started = time.perf_counter()
        storage.write_bytes_atomic(uri, data)
        restart.join()
        assert time.perf_counter() - started >= 1.5  # it really waited for the server
        server.stop()
        threading.Timer(2.0, server.start).start()
        assert storage.read_bytes(uri) == data
    finally:
        deadline = time.time() + 10
        while not _up(s3_server) and time.time() < deadline:
            time.sleep(0.2)
        if not _up(s3_server):
            server.start()
    assert _up(s3_server)
    assert storage.listdir(f"{s3_bucket}/outage") == ["object.bin"]


def test_killed_run_trains_only_unfinished_members(tiny_shards, tmp_path):
    """A 2-member run whose driver died after member 0 finished (simulated: a 1-member
    run with the same settings, its bundle removed as if never written) trains only
    member 1 when run again, and the bundle takes member 0's weights from the first run."""
    import shutil

    import pandas as pd
    from safetensors.torch import load

    from raydisc.ensemble import load_bundle
    from raydisc.training import TrainConfig, train_ensemble
    from raydisc.training.ensemble import BUNDLE_DIR
    from raydisc.training.members import FINISHED_DIR, load_finished, run_fingerprint

    config = TrainConfig(architecture="spectrogram_cnn", members=2, epochs=1, base_seed=3, batch_size=32,
                         cpus_per_worker=0.5, shuffle_buffer_size=64,
                         hparams={"channels": [4, 8], "dense_units": 8, "pooled_shape": [1, 2]})
    run_dir = str(tmp_path / "run")
    train_ensemble(tiny_shards, ["basin"], config.replace(members=1), run_dir, progress=None)
    finished = tmp_path / "run" / FINISHED_DIR
    assert sorted(os.listdir(finished)) == ["member-000.json", "member-000.safetensors"]
    member0 = load((finished / "member-000.safetensors").read_bytes())
    shutil.rmtree(tmp_path / "run" / BUNDLE_DIR)

    lines: list[str] = []
    bundle = load_bundle(train_ensemble(tiny_shards, ["basin"], config, run_dir, progress=lines.append))
    assert any("member(s) 0 finished in an earlier run" in line and "training member(s) 1" in line for line in lines)
    trained = {int(line.split()[1]) for line in lines if line.startswith("member ") and " epoch " in line}
    assert trained == {1}
    assert len(bundle.members) == 2
    state = bundle.members[0].state_dict()
    assert all((state[k] == v).all() for k, v in member0.items())
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert sorted(history["member"].tolist()) == [0, 1]  # member 0's rows kept from the first run

    # Other settings in the same run directory: earlier members are not reused; a
    # corrupted weights file is not either.
    record = json.loads((finished / "member-000.json").read_text())
    assert load_finished(run_dir, 0, record["fingerprint"]) is not None
    other = json.loads((tmp_path / "run" / "train_config.json").read_text())
    other["train_config"]["base_seed"] = 4
    assert load_finished(run_dir, 0, run_fingerprint(other)) is None
    data = (finished / "member-000.safetensors").read_bytes()
    (finished / "member-000.safetensors").write_bytes(data[: len(data) // 2])
    assert load_finished(run_dir, 0, record["fingerprint"]) is None
