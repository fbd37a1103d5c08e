"""The endpoint against a hostile client, over real HTTP on loopback.

* the URI form's allowed roots: traversal (``..``, ``%2e%2e``, double encoding), a symlink
  out of the root, bucket-prefix confusion, ``file://`` forms, foreign and mixed-case
  schemes: each is a 403, and the tests prove nothing outside the roots was read (access
  times of sentinel files; the S3 server's request log);
* authentication on every path but the probes, checked before the body is read;
* limits (body size, stations) in the OpenAPI and enforced; token files; the bind policy;
* Schemathesis, generating requests from the served OpenAPI document, against the open
  and the locked application: no 5xx, every answer as documented, 401 without a token.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import socket
import time
from urllib.parse import urlsplit

import numpy as np
import obspy
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from raydisc import storage
from raydisc.data import layout
from raydisc.serving.app import openapi_schema
from raydisc.serving.locations import AllowedLocations, LocationRefused
from raydisc.serving.settings import ServeSettings, is_loopback, resolve_token
from serving_helpers import make_tiny_bundle, wait_until_ready

REGION = "basin"
TOKEN = "hostile-test-token"
ROOT_BUCKET, OTHER_BUCKET = "raydisc-uri-root", "raydisc-uri-root-other"
S3_ROOT = f"s3://{ROOT_BUCKET}/archive"
FILES = ("mseed", "stationxml", "quakeml")


# ----------------------------------------------------------------- allowed locations (no Ray)


@pytest.fixture
def roots(tmp_path):
    """A local root with an event file, a sibling folder outside it, and two symlinks in
    the root: one pointing out, one pointing to another place inside."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "event.mseed").write_bytes(b"x")
    (outside / "secret.mseed").write_bytes(b"x")
    (root / "link-out").symlink_to(outside, target_is_directory=True)
    (root / "link-in").symlink_to(root / "sub", target_is_directory=True)
    return AllowedLocations([str(root), S3_ROOT]), os.path.realpath(root), os.path.realpath(outside)


def test_allowed_locations_compare_normalised_components(roots):
    allowed, root, outside = roots
    accepted = {
        f"{root}/event.mseed": f"{root}/event.mseed",
        f"{root}/./sub/../event.mseed": f"{root}/event.mseed",
        f"{root}//sub//x.xml": f"{root}/sub/x.xml",
        f"file://{root}/event.mseed": f"{root}/event.mseed",
        f"file://localhost{root}/event.mseed": f"{root}/event.mseed",
        f"{root}/link-in/x.xml": f"{root}/sub/x.xml",
        f"{root}/ev%20ent.mseed": f"{root}/ev ent.mseed",
        f"{S3_ROOT}/basin/catalog.xml": f"{S3_ROOT}/basin/catalog.xml",
        f"S3://{ROOT_BUCKET}/archive//basin/./catalog.xml": f"{S3_ROOT}/basin/catalog.xml",
    }
    for uri, expected in accepted.items():
        assert allowed.check(uri) == expected, uri
    refused = [
        f"{root}/../outside/secret.mseed", f"{root}/%2e%2e/outside/secret.mseed",
        f"{root}/%2E%2E%2Foutside/secret.mseed", f"{root}/%252e%252e/outside/secret.mseed",
        f"{root}//..//outside/secret.mseed", f"file://{root}/../outside/secret.mseed",
        f"FILE://{outside}/secret.mseed", f"file://evil.example{root}/event.mseed",
        f"{root}/link-out/secret.mseed", f"{root}-sibling/event.mseed", f"{root}\x00/event.mseed",
        f"s3://{OTHER_BUCKET}/archive/basin/catalog.xml", f"s3://{ROOT_BUCKET}/archive-other/catalog.xml",
        f"s3://{ROOT_BUCKET}/archive/../private/catalog.xml", f"S3://{ROOT_BUCKET}/private/catalog.xml",
        f"s3://{ROOT_BUCKET.upper()}/archive/catalog.xml", f"s3a://{ROOT_BUCKET}/archive/catalog.xml",
        "http://127.0.0.1:9/archive/catalog.xml", "HTTPS://example.org/x", "ftp://example.org/x",
        "memory://raydisc-serving/x.xml", "relative/event.mseed", "",
    ]
    for uri in refused:
        with pytest.raises(LocationRefused) as err:
            allowed.check(uri)
        assert repr(uri) in str(err.value)
    with pytest.raises(LocationRefused, match="disabled"):
        AllowedLocations([]).check(f"{root}/event.mseed")
    with pytest.raises(ValueError, match="allowed URI root"):
        AllowedLocations(["http://example.org/archive"])


def test_token_sources_and_bind_policy(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    base = ServeSettings(bundle="b")
    assert resolve_token(base, {}) is None
    assert resolve_token(base.model_copy(update={"token": "given"}), {"RAYDISC_SERVE_TOKEN": "env"}) == "given"
    assert resolve_token(base.model_copy(update={"token_file": str(secret)}), {}) == "from-file"
    assert resolve_token(base, {"RAYDISC_SERVE_TOKEN": "env"}) == "env"
    assert resolve_token(base, {"RAYDISC_SERVE_TOKEN_FILE": str(secret)}) == "from-file"
    for bad, message in ((tmp_path / "missing", "No such file"), (tmp_path / "empty", "is empty")):
        if "empty" in bad.name:
            bad.write_text("  \n")
        with pytest.raises(ValueError, match=message):
            resolve_token(base.model_copy(update={"token_file": str(bad)}), {})
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.8.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("server.example")


def test_cli_refuses_an_open_non_loopback_server(tmp_path, capsys, monkeypatch):
    from raydisc.cli import main

    for name in ("RAYDISC_SERVE_TOKEN", "RAYDISC_SERVE_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    # Both refusals happen before Ray or Serve start.
    assert main(["serve", str(tmp_path / "bundle"), "--host", "0.0.0.0"]) == 2
    assert "refusing to serve on 0.0.0.0 without authentication" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "bundle"), "--token-file", str(tmp_path / "nope")]) == 2
    assert f"token file {tmp_path / 'nope'}" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "bundle"), "--uri-root", "ftp://archive"]) == 2
    assert "allowed URI root 'ftp://archive'" in capsys.readouterr().err


def test_station_limit_of_miniseed_uploads():
    from raydisc.config import PreprocessConfig
    from raydisc.serving.inputs import InputError, recordings_from_mseed
    from raydisc.serving.schemas import MAX_STATIONS, MseedMetadata

    traces = [obspy.Trace(np.zeros(10, dtype=np.int32),
                          {"network": "XX", "station": f"S{i:04d}", "channel": "HHZ", "sampling_rate": 100.0})
              for i in range(MAX_STATIONS + 1)]
    buf = io.BytesIO()
    obspy.Stream(traces).write(buf, format="MSEED")
    with pytest.raises(InputError, match=f"{MAX_STATIONS + 1} stations; at most {MAX_STATIONS}"):
        recordings_from_mseed(buf.getvalue(), MseedMetadata(), PreprocessConfig())


# ----------------------------------------------------------------- against a running server


def _copy_event(archive: str, event_id: str, dest: str) -> dict[str, str]:
    """The event's miniSEED, StationXML and QuakeML copied under ``dest``; name -> URI."""
    sources = {"mseed": layout.waveform_uri(archive, REGION, event_id),
               "stationxml": layout.inventory_uri(archive, REGION), "quakeml": layout.catalog_uri(archive, REGION)}
    uris = {}
    for name, src in sources.items():
        uris[name] = storage.join(dest, src.rsplit("/", 1)[-1])
        storage.write_bytes_atomic(uris[name], storage.read_bytes(src))
    return uris


@pytest.fixture(scope="module")
def hostile(ray_cluster, s3_server, tiny_archive, tmp_path_factory):
    """``open`` (URI roots: a local folder and ``s3://raydisc-uri-root/archive``) and
    ``locked`` (token from a file) applications, plus copies of one event inside the
    roots and outside them (same files: a read of the outside copy would succeed)."""
    import s3fs
    from ray import serve

    from raydisc.data.ingest import read_catalog
    from raydisc.serving.app import build_app

    base = tmp_path_factory.mktemp("hostile")
    event_id = read_catalog(layout.catalog_uri(tiny_archive, REGION), REGION)[0].event_id
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server})
    for bucket in (ROOT_BUCKET, OTHER_BUCKET):
        fs.mkdir(bucket)
    files = {"local": _copy_event(tiny_archive, event_id, str(base / "root")),
             "outside": _copy_event(tiny_archive, event_id, str(base / "outside")),
             "s3": _copy_event(tiny_archive, event_id, S3_ROOT),
             "s3_other_bucket": _copy_event(tiny_archive, event_id, f"s3://{OTHER_BUCKET}/archive"),
             "s3_private": _copy_event(tiny_archive, event_id, f"s3://{ROOT_BUCKET}/private")}
    os.symlink(base / "outside", base / "root" / "link-out", target_is_directory=True)
    token_file = base / "token"
    token_file.write_text(TOKEN + "\n")
    bundle = make_tiny_bundle(str(base / "bundle"))

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    common = dict(bundle=bundle, model_num_cpus=0, ingress_num_cpus=0, max_body_bytes=2**20,
                  uri_roots=[str(base / "root"), S3_ROOT])
    serve.run(build_app(common), name="open", route_prefix="/")
    serve.run(build_app({**common, "token_file": str(token_file)}), name="locked", route_prefix="/locked")
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(url, f"{url}/locked")
    yield {"url": url, "locked": f"{url}/locked", "base": str(base), "event_id": event_id, "files": files,
           "s3": s3_server}
    serve.shutdown()


def _classify_uris(url: str, uris: dict[str, str], event_id: str, **headers) -> requests.Response:
    payload = {f"{name}_uri": uris[name] for name in FILES}
    return requests.post(f"{url}/v1/classify/uris", json={**payload, "event_id": event_id}, headers=headers,
                         timeout=60)


def _s3_request_log(endpoint: str, action: str) -> list[dict]:
    """moto's request recorder (``action``: reset/start/stop/download) on the loopback server."""
    response = requests.request("GET" if action == "download" else "POST",
                                f"{endpoint}/moto-api/recorder/{action}-recording", timeout=10)
    response.raise_for_status()
    return [json.loads(line) for line in response.text.splitlines() if line.strip()] if action == "download" else []


def test_uri_attacks_are_refused_and_read_nothing(hostile):
    url, base, event_id, files = hostile["url"], hostile["base"], hostile["event_id"], hostile["files"]
    root = os.path.realpath(os.path.join(base, "root"))
    assert _classify_uris(url, files["local"], event_id).status_code == 200  # the roots do work
    assert _classify_uris(url, files["s3"], event_id).status_code == 200

    # Sentinels: the outside copies get an access time in the past; any read moves it
    # forward (relatime updates atime when it is older than mtime).
    outside = [os.path.join(base, "outside", os.path.basename(p)) for p in files["outside"].values()]
    control = os.path.join(base, "control")
    shutil.copy(outside[0], control)
    for path in [*outside, control]:
        stat = os.stat(path)
        os.utime(path, (stat.st_mtime - 3600, stat.st_mtime))
    before = {p: os.stat(p).st_atime for p in outside}
    with open(control, "rb") as f:
        f.read()
    atime_works = os.stat(control).st_atime > os.stat(control).st_mtime - 3600

    name = os.path.basename(files["outside"]["mseed"])
    attacks = [
        f"{root}/../outside/{name}", f"{root}/%2e%2e/outside/{name}", f"{root}/%252e%252e/outside/{name}",
        f"{root}//..//outside/{name}", f"file://{root}/../outside/{name}", f"FILE://{base}/outside/{name}",
        f"file://attacker.example{base}/outside/{name}", f"{root}/link-out/{name}", f"{base}/outside/{name}",
        files["s3_other_bucket"]["mseed"], files["s3_private"]["mseed"],
        f"s3://{ROOT_BUCKET}/archive/../private/{name}", f"S3://{OTHER_BUCKET}/archive/{name}",
        f"s3a://{ROOT_BUCKET}/archive/{name}", f"HTTP://127.0.0.1:9/{name}", f"memory://raydisc-serving/{name}",
    ]
    _s3_request_log(hostile["s3"], "reset")
    _s3_request_log(hostile["s3"], "start")
    try:
        for attack in attacks:
            for field in FILES:  # the hostile URI in each of the three fields
                uris = {**files["local"], field: attack}
                response = _classify_uris(url, uris, event_id)
                assert response.status_code == 403, (field, attack, response.text)
                assert "refused" in response.json()["detail"] and repr(attack)[1:-1][:40] in response.json()["detail"]
    finally:
        _s3_request_log(hostile["s3"], "stop")
    logged = _s3_request_log(hostile["s3"], "download")
    assert not [r["url"] for r in logged if OTHER_BUCKET in r["url"] or "/private" in r["url"]]
    if atime_works:
        assert {p: os.stat(p).st_atime for p in outside} == before
    # and the URI form still serves good requests
    assert _classify_uris(url, files["local"], event_id).status_code == 200


def test_token_guards_every_path_but_the_probes(hostile):
    locked = hostile["locked"]
    schema = requests.get(f"{locked}/v1/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert schema.status_code == 200
    paths = [*schema.json()["paths"], "/v1/openapi.json", "/v1/docs", "/no-such-path"]
    for path in paths:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"Bearer {TOKEN[:-1]}"}):
            for method in ("GET", "POST"):
                response = requests.request(method, f"{locked}{path}", headers=headers, timeout=10)
                if path in ("/healthz", "/readyz"):
                    assert response.status_code in (200, 405), (method, path, headers)
                else:
                    assert response.status_code == 401, (method, path, headers, response.status_code)
                    assert response.headers["www-authenticate"] == "Bearer"
    good = requests.get(f"{locked}/v1/info", headers={"Authorization": f"bearer {TOKEN}"}, timeout=10)
    assert good.status_code == 200 and good.json()["auth_required"] is True


def _raw_request_head(url: str, path: str, headers: dict[str, str]) -> tuple[int, float]:
    """Send only a request's head (no body, although Content-Length announces one) and
    return the status answered and the seconds it took: a server that waited for the
    body would not answer at all."""
    parts = urlsplit(url)
    host, prefix = parts.hostname, parts.path.rstrip("/")
    with socket.create_connection((host, parts.port), timeout=10) as s:
        start = time.perf_counter()
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        s.sendall(f"POST {prefix}{path} HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode())
        status_line = s.recv(4096).split(b"\r\n", 1)[0]
        return int(status_line.split()[1]), time.perf_counter() - start


def test_refusals_come_before_the_body_is_read(hostile):
    big = {"Content-Type": "application/vnd.fdsn.mseed", "Content-Length": str(10 * 2**20)}
    status, seconds = _raw_request_head(hostile["locked"], "/v1/classify/mseed", big)
    assert status == 401 and seconds < 5
    status, seconds = _raw_request_head(hostile["url"], "/v1/classify/mseed", big)
    assert status == 413 and seconds < 5
    schema = requests.get(f"{hostile['url']}/v1/openapi.json", timeout=10).json()
    assert "413" in schema["info"]["description"] and "stations per request" in schema["info"]["description"]
    from raydisc.serving.schemas import MAX_STATIONS

    assert schema["components"]["schemas"]["ArraysRequest"]["properties"]["stations"]["maxItems"] == MAX_STATIONS


# ----------------------------------------------------------------- Schemathesis


# Raw miniSEED bodies are fuzzed as the binary strings that the schema declares.
schemathesis.serializer.alias("application/vnd.fdsn.mseed", "application/octet-stream")

# Schema-valid is not always usable: random miniSEED bytes, a metadata string that is not
# MseedMetadata JSON, a recording too short for the window: those get a 422 naming the
# problem, which the API documents. Schemathesis' "schema-valid data is accepted" check
# is therefore off; every other check (no 5xx, documented status codes, content types,
# headers and response schemas) applies.
CHECKS = {"excluded_checks": [schemathesis.checks.positive_data_acceptance]}
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


# The document the app serves at /v1/openapi.json (checked to be the same below), loaded
# at collection time: Schemathesis makes one test per operation from it.
API = schemathesis.openapi.from_dict(openapi_schema())


def test_the_served_schema_is_the_one_fuzzed(hostile):
    served = requests.get(f"{hostile['url']}/v1/openapi.json", timeout=10).json()
    assert served == openapi_schema()


@API.parametrize()
@FUZZ
def test_schemathesis_open_application(case, hostile):
    case.call_and_validate(base_url=hostile["url"], timeout=60, **CHECKS)


@API.parametrize()
@FUZZ
def test_schemathesis_locked_application(case, hostile):
    if case.path not in ("/healthz", "/readyz"):
        assert case.call(base_url=hostile["locked"], timeout=60).status_code == 401
    case.call_and_validate(base_url=hostile["locked"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60,
                           **CHECKS)
