"""The whole workflow against object storage, as a cluster would run it: every stage
reads its input from and writes its output to ``s3://`` on the loopback S3 server
(moto), driven through the ``raydisc`` CLI and the Serve HTTP API:

generate -> preprocess -> pretrain (alpine) -> fine-tune (basin) -> serve -> reprocess.

Tiny sizes (6 events per region, tiny models, one epoch): the plumbing is tested."""
from __future__ import annotations

import json
import socket
import time

import numpy as np
import requests

from raydisc import storage
from raydisc.cli import main
from raydisc.data import layout
from raydisc.data.ingest import read_catalog
from raydisc.ensemble import load_bundle
from raydisc.reprocess.outputs import read_results

TINY_HPARAMS = json.dumps({"channels": [4, 8], "dense_units": 8, "pooled_shape": [1, 2]})
TRAINING = ["--members", "2", "--epochs", "1", "--batch-size", "32", "--cpus-per-worker", "0.5"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(bundle: str, bucket: str):
    """The Serve app for ``bundle`` on the session cluster; yields its URL."""
    from ray import serve

    from raydisc.serving.app import ServeSettings, build_app

    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(ServeSettings(bundle=bundle, model_num_cpus=0, ingress_num_cpus=0, uri_roots=[bucket])),
              name="chain", route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/readyz", timeout=5).ok:
                return url
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError("the Serve app did not become ready")


def test_generate_preprocess_pretrain_finetune_serve_reprocess_on_s3(ray_cluster, s3_bucket):
    from ray import serve

    archive, shards = f"{s3_bucket}/archive", f"{s3_bucket}/shards"
    pretrain, finetune = f"{s3_bucket}/runs/pretrain-alpine", f"{s3_bucket}/runs/finetune-basin"

    assert main(["generate", archive, "--regions", "alpine,basin", "--events", "6", "--seed", "3"]) == 0
    assert main(["preprocess", archive, shards, "--events-per-shard", "3"]) == 0
    assert main(["train", shards, pretrain, "--regions", "alpine", "--hparams", TINY_HPARAMS, *TRAINING]) == 0
    assert main(["finetune", f"{pretrain}/bundle", shards, finetune, "--target", "basin", "--freeze",
                 "feature_extractor", *TRAINING[2:]]) == 0

    bundle_uri = f"{finetune}/bundle"
    bundle = load_bundle(bundle_uri)
    assert bundle.provenance["init_bundle"]["uri"] == f"{pretrain}/bundle"
    assert storage.exists(f"{finetune}/history.csv") and storage.exists(f"{pretrain}/members.csv")

    event = read_catalog(layout.catalog_uri(archive, "basin"), "basin")[0]
    try:
        url = _serve(bundle_uri, s3_bucket)
        response = requests.post(f"{url}/v1/classify/uris", timeout=120, json={
            "mseed_uri": layout.waveform_uri(archive, "basin", event.event_id),
            "stationxml_uri": layout.inventory_uri(archive, "basin"),
            "quakeml_uri": layout.catalog_uri(archive, "basin"), "event_id": event.event_id})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["event"]["event_id"] == event.event_id and answer["stations"]
        assert answer["bundle_id"] == bundle.bundle_id
    finally:
        # Shut Serve down, not just the app: a later serve.start() with other HTTP
        # options (another test module's port) would otherwise keep this one's.
        serve.shutdown()

    out = f"{s3_bucket}/relabelled"
    assert main(["reprocess", bundle_uri, out, "--archive", archive, "--regions", "basin"]) == 0
    stations = read_results(out, "stations", ["basin"]).to_pandas()
    served = {s["station"]: s for s in answer["stations"]}
    same_event = stations[stations["event_id"] == event.event_id]
    # The endpoint names a station by its key NET.STA.LOC.
    same_event = same_event.set_index(same_event["network"] + "." + same_event["station"] + "."
                                      + same_event["location"].fillna(""))
    assert set(served) <= set(same_event.index)
    names = answer["class_names"]
    for station, s in served.items():
        # The endpoint and the batch job give the same probabilities for the same recording.
        batch = [same_event.loc[station, f"p_{name}"] for name in names]
        np.testing.assert_allclose([s["probabilities"][n] for n in names], batch, atol=1e-5)
    assert set(stations["bundle_id"]) == {bundle.bundle_id}
