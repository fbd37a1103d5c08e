"""Shared fixtures: one local Ray cluster per test session, a real S3-compatible server on
loopback (moto's server mode), and a tiny synthetic archive written once per session."""
from __future__ import annotations

import os
import socket
import tempfile
import uuid

import pytest

# moto's request recorder (the serving tests read the S3 server's request log) writes to
# this file; set before moto is imported, so that it is not left in the working tree.
os.environ.setdefault("MOTO_RECORDER_FILEPATH",
                      os.path.join(tempfile.gettempdir(), f"raydisc-moto-recording-{os.getpid()}.jsonl"))


@pytest.fixture(scope="session")
def ray_cluster(s3_server):
    """A real local Ray cluster, shared by every test that needs Ray.

    Started after the S3 server so that its workers inherit the AWS variables, as
    workers on a real cluster get them from the node's environment.
    """
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", ignore_reinit_error=True)
    yield ray
    ray.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3-compatible HTTP server on 127.0.0.1; yields its endpoint URL.

    The AWS variables are set for the whole session (and so inherited by Ray workers
    started afterwards), which is exactly how users point raydisc at an endpoint.
    """
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint)
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket on the loopback S3 server; yields ``s3://name``."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    name = f"raydisc-{uuid.uuid4().hex[:12]}"
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server})
    fs.mkdir(name)
    yield f"s3://{name}"


TINY_EVENTS = 10


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory):
    """A small synthetic archive of all three regions (real miniSEED/QuakeML/StationXML)."""
    from raydisc.synthetic import generate_archive

    root = tmp_path_factory.mktemp("archive")
    generate_archive(str(root), events_per_region=TINY_EVENTS, seed=7)
    return str(root)


TINY_SHARD_REGIONS = ["alpine", "basin"]


@pytest.fixture(scope="session")
def tiny_shards(ray_cluster, tiny_archive, tmp_path_factory):
    """Shards of the tiny archive's alpine and basin regions (5 events per shard file),
    shared by the training, fine-tuning and experiment tests."""
    from raydisc.config import PipelineConfig
    from raydisc.data.pipeline import run_preprocessing

    out = str(tmp_path_factory.mktemp("tiny-shards"))
    run_preprocessing(tiny_archive, out, TINY_SHARD_REGIONS, pipeline_config=PipelineConfig(events_per_shard=5))
    return out


SOURCE_EVENTS = 4


@pytest.fixture(scope="session")
def source_archive(tmp_path_factory):
    """A 4-event basin region (9 three-component stations with full responses and P
    picks): the reference that the data-source tests import, export and fetch."""
    from raydisc.synthetic import generate_archive

    root = tmp_path_factory.mktemp("source-archive")
    generate_archive(str(root), ["basin"], events_per_region=SOURCE_EVENTS, seed=7)
    return str(root)
