"""The Ray Serve endpoint on the session Ray cluster, over real HTTP on loopback.

Two applications run side by side: ``open`` (no auth) and ``locked`` (bearer token),
each with a tiny randomly initialised 3-member bundle. Answers are checked against the
offline path (ingest cut + preprocess_recordings + member_probabilities + soft vote).
"""
from __future__ import annotations

import dataclasses
import io
import json
import socket

import numpy as np
import obspy
import pytest
import requests

from raydisc import storage
from raydisc.config import PreprocessConfig
from raydisc.data import layout
from raydisc.data.ingest import cut_recordings, read_catalog, read_stations
from raydisc.features.batch import preprocess_recordings
from raydisc.ensemble import load_bundle, soft_vote
from raydisc.serving import Client, ClientError
from raydisc.serving.client import request_metadata
from serving_helpers import ARCH, N_MEMBERS, make_tiny_bundle, wait_until_ready

REGION = "basin"
TOKEN = "s3cret-token"
MAX_BODY = 4 * 2**20
#: The one bucket the servers' URI form may read.
URI_BUCKET = "s3://raydisc-serving-uris"


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    return make_tiny_bundle(str(tmp_path_factory.mktemp("bundle") / "tiny"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(ray_cluster, tiny_bundle):
    """Serve on the session cluster: ``open`` at ``/``, ``locked`` (token) at ``/locked``."""
    from ray import serve

    from raydisc.serving.app import ServeSettings, build_app

    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    # Zero CPUs per replica: the session cluster has 2 CPUs and other tests use them.
    common = dict(bundle=tiny_bundle, model_num_cpus=0, ingress_num_cpus=0, max_body_bytes=MAX_BODY,
                  uri_roots=[URI_BUCKET])
    serve.run(build_app(ServeSettings(**common)), name="open", route_prefix="/")
    serve.run(build_app(ServeSettings(**common, token=TOKEN, composition="members")),
              name="locked", route_prefix="/locked")
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(url, f"{url}/locked")
    yield url
    serve.shutdown()


@pytest.fixture(scope="module")
def event(tiny_archive):
    """One basin event: its files, catalog record, stations, and the offline answer."""
    events = read_catalog(layout.catalog_uri(tiny_archive, REGION), REGION)
    stations = read_stations(layout.inventory_uri(tiny_archive, REGION))
    ev = events[0]
    mseed_uri = layout.waveform_uri(tiny_archive, REGION, ev.event_id)
    return {"event": ev, "stations": stations, "mseed_uri": mseed_uri,
            "mseed": storage.read_bytes(mseed_uri),
            "stationxml": storage.read_bytes(layout.inventory_uri(tiny_archive, REGION))}


def offline(bundle_uri, ev, stations, mseed_uri, response_removal="full"):
    """station key -> (soft-vote probabilities, member probabilities) by the offline path.

    ``response_removal="sensitivity"``: as for requests whose metadata give only overall
    sensitivities (the metadata and arrays forms); StationXML uploads remove the full response.
    """
    bundle = load_bundle(bundle_uri)
    config = dataclasses.replace(bundle.preprocess_config, response_removal=response_removal)
    recordings, rejects = cut_recordings(mseed_uri, ev, stations, config)
    assert recordings and not rejects
    x = preprocess_recordings(recordings, config)[bundle.input_kind]
    member = bundle.member_probabilities(x)
    probs = soft_vote(member)
    return recordings, {r.key: (probs[i], member[:, i]) for i, r in enumerate(recordings)}


def assert_matches(answer, expected, event_id):
    assert answer["event"]["event_id"] == event_id
    assert {s["station"] for s in answer["stations"]} == set(expected)
    names = answer["class_names"]
    for s in answer["stations"]:
        probs, member = expected[s["station"]]
        np.testing.assert_allclose([s["probabilities"][c] for c in names], probs, atol=1e-5)
        np.testing.assert_allclose(s["member_probabilities"], member, atol=1e-5)
        assert s["member_votes"] == [names[k] for k in member.argmax(axis=1)]
        assert s["predicted_label"] == names[int(np.argmax(probs))]
    mean = np.mean([expected[k][0] for k in expected], axis=0)
    np.testing.assert_allclose([answer["event"]["probabilities"][c] for c in names], mean, atol=1e-5)
    assert answer["event"]["n_stations"] == len(expected)


# ----------------------------------------------------------------- good requests


def test_health_ready_info_schema(server, tiny_bundle):
    client = Client(server)
    assert client.health() and client.ready()
    info = client.info()
    bundle = load_bundle(tiny_bundle)
    assert info["bundle_id"] == bundle.bundle_id
    assert info["architecture"] == ARCH and len(info["members"]) == N_MEMBERS
    assert info["label_map"] == bundle.label_map and info["class_names"] == list(bundle.class_names)
    assert info["auth_required"] is False and info["composition"] == "ensemble"
    assert info["triage"]["temperatures"] == [1.0] * N_MEMBERS and info["triage"]["confidence_threshold"] is None
    schema = requests.get(f"{server}/v1/openapi.json", timeout=10).json()
    assert schema["info"]["version"].startswith("1.")
    assert {"/v1/info", "/v1/classify/mseed", "/v1/classify/arrays", "/v1/classify/uris"} <= set(schema["paths"])


def test_mseed_raw_and_multipart_match_offline(server, tiny_bundle, event):
    ev, stations = event["event"], event["stations"]
    _, expected = offline(tiny_bundle, ev, stations, event["mseed_uri"], "sensitivity")
    _, expected_full = offline(tiny_bundle, ev, stations, event["mseed_uri"])
    client = Client(server)
    answer = client.classify_mseed(event["mseed"], request_metadata(ev, stations))
    assert_matches(answer, expected, ev.event_id)
    assert {s["response"] for s in answer["stations"]} == {"sensitivity"}
    # StationXML uploaded alongside: metadata only needs the event and the P picks, and
    # the full responses are removed.
    picks = {k: v["P"] for k, v in ev.picks.items() if "P" in v}
    meta = {"event": {"event_id": ev.event_id, "origin_time": ev.origin_time}, "picks": picks}
    answer = client.classify_mseed(event["mseed"], meta, stationxml=event["stationxml"])
    assert_matches(answer, expected_full, ev.event_id)
    assert {s["response"] for s in answer["stations"]} == {"full"}
    assert {s["components"] for s in answer["stations"]} == {"ZNE"}
    # Metadata too long for a query string (a large network) goes multipart, no StationXML.
    from raydisc.serving import client as client_module

    saved, client_module.MAX_QUERY_METADATA_CHARS = client_module.MAX_QUERY_METADATA_CHARS, 10
    try:
        assert_matches(client.classify_mseed(event["mseed"], request_metadata(ev, stations)), expected, ev.event_id)
    finally:
        client_module.MAX_QUERY_METADATA_CHARS = saved


def test_arrays_match_offline(server, tiny_bundle, event):
    ev, stations = event["event"], event["stations"]
    recordings, expected = offline(tiny_bundle, ev, stations, event["mseed_uri"], "sensitivity")
    config = PreprocessConfig()
    payload = [{"network": r.station.network, "station": r.station.station, "location": r.location,
                "counts": r.counts, "sampling_rate_hz": r.sampling_rate, "sensitivity": r.sensitivity.tolist(),
                "start_s": config.window_start_s - config.padding_s} for r in recordings]
    answer = Client(server).classify_arrays(payload, event={"event_id": ev.event_id})
    assert_matches(answer, expected, ev.event_id)
    # Triage: the bundle has no policy (temperatures 1, no threshold): the confidence is
    # the event probability of the verdict and every event is auto, unless the request
    # sets a threshold above its confidence.
    event_answer = answer["event"]
    assert event_answer["confidence"] == pytest.approx(event_answer["probabilities"][event_answer["predicted_label"]])
    assert event_answer["disagreement"] >= 0 and event_answer["triage"] == "auto"
    strict = Client(server).classify_arrays(payload, event={"event_id": ev.event_id}, review_below=1.0)
    assert strict["event"]["triage"] == "review" and strict["event"]["confidence"] == event_answer["confidence"]


def test_uris_match_offline_and_roots_are_enforced(server, tiny_bundle, event, tiny_archive, s3_server):
    import s3fs

    s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server}).mkdir(URI_BUCKET[len("s3://"):])
    ev, stations = event["event"], event["stations"]
    _, expected = offline(tiny_bundle, ev, stations, event["mseed_uri"])
    uris = {}
    for name, src in (("mseed_uri", event["mseed_uri"]),
                      ("stationxml_uri", layout.inventory_uri(tiny_archive, REGION)),
                      ("quakeml_uri", layout.catalog_uri(tiny_archive, REGION))):
        uris[name] = storage.join(URI_BUCKET, REGION, src.rsplit("/", 1)[-1])
        storage.write_bytes_atomic(uris[name], storage.read_bytes(src))
    client = Client(server)
    assert_matches(client.classify_uris(**uris, event_id=ev.event_id), expected, ev.event_id)
    with pytest.raises(ClientError) as err:  # a server-side path outside the allowed roots
        client.classify_uris(event["mseed_uri"], uris["stationxml_uri"], uris["quakeml_uri"], event_id=ev.event_id)
    assert err.value.status == 403


# ----------------------------------------------------------------- bad input and abuse


def _post_mseed(url, data, meta, **params):
    return requests.post(f"{url}/v1/classify/mseed", data=data, timeout=60,
                         params={"metadata": json.dumps(meta), **params},
                         headers={"Content-Type": "application/vnd.fdsn.mseed"})


def _mseed_bytes(stream) -> bytes:
    buf = io.BytesIO()
    stream.write(buf, format="MSEED")
    return buf.getvalue()


def test_bad_inputs_are_4xx_naming_the_station_and_the_server_keeps_serving(server, event):
    ev, stations = event["event"], event["stations"]
    meta = request_metadata(ev, stations)
    stream = obspy.read(io.BytesIO(event["mseed"]))
    first = meta["stations"][0]
    net, sta, loc = first["network"], first["station"], first["location"]
    victim = f"{net}.{sta}.{loc}"
    cases = {}
    cases["malformed"] = _post_mseed(server, b"\x00garbage" * 100, meta)
    cases["empty"] = _post_mseed(server, b"", meta)
    cases["truncated"] = _post_mseed(server, event["mseed"][: len(event["mseed"]) // 2 + 123], meta)
    # Without a horizontal a station is still usable; without its vertical it is not.
    no_z = stream.copy()
    for tr in no_z.select(network=net, station=sta, location=loc, component="Z"):
        no_z.remove(tr)
    cases["missing_component"] = _post_mseed(server, _mseed_bytes(no_z), meta)
    mixed_rates = stream.copy()
    for tr in mixed_rates.select(network=net, station=sta, location=loc, component="N"):
        tr.stats.sampling_rate = tr.stats.sampling_rate / 2
    cases["sampling_rate_mismatch"] = _post_mseed(server, _mseed_bytes(mixed_rates), meta)
    unknown = json.loads(json.dumps(meta))
    unknown["stations"][0]["colour"] = "red"
    cases["unknown_field"] = _post_mseed(server, event["mseed"], unknown)
    cases["bad_content_type"] = requests.post(f"{server}/v1/classify/mseed", data=b"x", timeout=30,
                                              headers={"Content-Type": "text/plain"})

    def arrays(n=4000, rate=100.0, start=-15.0, counts=None, **extra):
        counts = counts if counts is not None else np.ones((3, n)).tolist()
        station = {"network": "XX", "station": "BAD", "counts": counts, "sampling_rate_hz": rate,
                   "sensitivity": [1e9] * 3, "start_s": start, **extra}
        return requests.post(f"{server}/v1/classify/arrays", timeout=30,
                             data=json.dumps({"stations": [station]}), headers={"Content-Type": "application/json"})

    cases["too_short"] = arrays(n=2000)
    cases["too_low_rate"] = arrays(n=4000, rate=20.0)
    nan_counts = np.ones((3, 11000))
    nan_counts[1, 5000] = np.nan
    cases["nan"] = arrays(counts=nan_counts.tolist())  # json.dumps writes NaN, which the server parses
    cases["two_components"] = arrays(counts=np.ones((2, 11000)).tolist())
    cases["arrays_unknown_field"] = arrays(n=11000, gain=3)
    cases["oversize"] = requests.post(f"{server}/v1/classify/mseed", data=b"\x00" * (MAX_BODY + 1), timeout=30,
                                      headers={"Content-Type": "application/vnd.fdsn.mseed"})

    # no Content-Length (chunked): the limit is enforced while the body streams in
    cases["oversize_chunked"] = requests.post(f"{server}/v1/classify/arrays", timeout=30,
                                              data=(b"x" * 2**20 for _ in range(MAX_BODY // 2**20 + 1)),
                                              headers={"Content-Type": "application/json"})

    for name, response in cases.items():
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:300])
        assert response.json()["detail"], name
    assert cases["oversize"].status_code == 413 and cases["oversize_chunked"].status_code == 413
    assert cases["bad_content_type"].status_code == 415
    for name in ("missing_component", "sampling_rate_mismatch"):
        body = cases[name].json()
        assert victim in body["detail"], body
        assert any(r["reason"] == name for r in body["rejected"]), body
    assert "colour" in cases["unknown_field"].json()["detail"]
    assert "gain" in cases["arrays_unknown_field"].json()["detail"]
    for name, reason in (("too_short", "too_short"), ("too_low_rate", "sampling_rate_too_low"), ("nan", "nan"),
                         ("two_components", "missing_component")):
        body = cases[name].json()
        assert "XX.BAD." in body["detail"] and body["rejected"][0]["reason"] == reason, (name, body)
    # on_reject=skip classifies the stations that are fine and lists the rejected one
    skipped = _post_mseed(server, _mseed_bytes(no_z), meta, on_reject="skip")
    assert skipped.status_code == 200 and skipped.json()["rejected"][0]["station"] == victim
    # and the server still serves good requests
    assert Client(server).classify_mseed(event["mseed"], meta)["event"]["n_stations"] == len(meta["stations"])
    # A vertical-only upload gets a verdict and says which components it used.
    z_only = Client(server).classify_mseed(_mseed_bytes(stream.select(component="Z")), meta)
    assert {s["components"] for s in z_only["stations"]} == {"Z"}
    assert {s["channels"][0][-1] for s in z_only["stations"]} == {"Z"}


def test_auth(server, event):
    locked = f"{server}/locked"
    assert Client(locked).health()  # liveness is never behind auth
    for client in (Client(locked), Client(locked, token="wrong")):
        with pytest.raises(ClientError) as err:
            client.info()
        assert err.value.status == 401
    good = Client(locked, token=TOKEN)
    assert good.info()["auth_required"] is True and good.info()["composition"] == "members"
    answer = good.classify_mseed(event["mseed"], request_metadata(event["event"], event["stations"]))
    assert answer["event"]["n_stations"] > 0
    assert Client(server).info()["auth_required"] is False  # the open app needs no token


# ----------------------------------------------------------------- config file and CLI (no Ray)


def test_serve_config_yaml_is_valid_for_serve_and_settings():
    import pathlib

    import yaml
    from ray.serve.schema import ServeDeploySchema

    from raydisc.serving.app import ServeSettings

    config = yaml.safe_load((pathlib.Path(__file__).parents[1] / "serve_config.yaml").read_text())
    ServeDeploySchema(**config)
    (app,) = config["applications"]
    assert app["import_path"] == "raydisc.serving.app:build_app"
    ServeSettings(**app["args"])


def test_cli_arguments_become_settings():
    import argparse

    from raydisc.serving.cli import add_serve_arguments, settings_from_args

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args(["s3://b/bundle", "--replicas", "auto", "--max-replicas", "3", "--max-batch-size", "1",
                              "--token", "t", "--max-body-mb", "2", "--uri-root", "s3://archive/"])
    settings = settings_from_args(args)
    assert settings.bundle == "s3://b/bundle" and settings.num_replicas == "auto"
    assert settings.autoscaling_config["max_replicas"] == 3 and settings.max_batch_size == 1
    assert settings.token == "t" and settings.max_body_bytes == 2 * 2**20 and settings.uri_roots == ["s3://archive/"]
    with pytest.raises(Exception, match="unknown_option|Extra inputs"):
        from raydisc.serving.app import ServeSettings

        ServeSettings(bundle="x", unknown_option=1)
