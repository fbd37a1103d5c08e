"""Multipart uploads to ``POST /v1/classify/mseed``, parsed by FastAPI (File parameters):
what is refused, with which status and message, and that the body limit holds while a
multipart body streams in.

The real HTTP app (:func:`raydisc.serving.app.build_fastapi`) with its request guard and
a real ingress (the :class:`~raydisc.serving.app.Classifier` of a tiny bundle) runs under
uvicorn on loopback; every request here is answered before the ingress would call a model
deployment, so no Ray is needed (the accepted uploads are in tests/test_serving.py).
"""
from __future__ import annotations

import io
import json
import socket
import threading
import time

import obspy
import pytest
import requests
import uvicorn

from raydisc.serving import app as serving_app

from serving_helpers import make_tiny_bundle

MAX_BODY = 256 * 1024  # above the example miniSEED (72 kB)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    bundle = make_tiny_bundle(str(tmp_path_factory.mktemp("multipart-bundle") / "tiny"))
    # The class of the deployment, without the ASGI wrapper @serve.ingress makes of it
    # (whose construction starts the app in a Serve replica).
    [ingress_class] = [c for c in serving_app.Classifier.func_or_class.__bases__ if c.__name__ == "Classifier"]
    ingress = ingress_class({"bundle": bundle, "max_body_bytes": MAX_BODY}, models=[])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(serving_app.build_fastapi(ingress), host="127.0.0.1", port=port,
                                           log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1/classify/mseed"
    server.should_exit = True
    thread.join(10)


def mseed_bytes() -> bytes:
    """ObsPy's example stream (BW.RJOB, 3 components) as miniSEED."""
    buffer = io.BytesIO()
    obspy.read().write(buffer, format="MSEED")
    return buffer.getvalue()


def test_multipart_refusals_keep_their_status_and_message(url):
    meta = json.dumps({"event": {"event_id": "e1"}})
    cases = {
        "no_mseed": (requests.post(url, files={"metadata": (None, meta)}, timeout=30),
                     422, "multipart body lacks the 'mseed' part"),
        "unknown_part": (requests.post(url, files={"mseed": ("a.mseed", b"x"), "colour": (None, "red")}, timeout=30),
                         422, "unknown multipart part(s) ['colour']"),
        "no_boundary": (requests.post(url, data=b"garbage", headers={"Content-Type": "multipart/form-data"},
                                      timeout=30),
                        400, "malformed multipart/form-data body"),
        "empty_mseed": (requests.post(url, files={"mseed": ("a.mseed", b""), "metadata": (None, meta)}, timeout=30),
                        422, "uploaded miniSEED: empty miniSEED"),
        # metadata read from a file part as from a text part
        "metadata_file": (requests.post(url, files={"mseed": ("a.mseed", b"x" * 512),
                                                    "metadata": ("m.json", json.dumps({"colour": "red"}))},
                                        timeout=30),
                          422, "invalid metadata"),
        "stationxml_not_xml": (requests.post(url, files={"mseed": ("a.mseed", mseed_bytes()), "metadata": (None, meta),
                                                         "stationxml": ("s.xml", b"<nope")}, timeout=30),
                               422, "uploaded StationXML: cannot read StationXML inventory"),
        "urlencoded": (requests.post(url, data={"mseed": "x"}, timeout=30), 415, "content type"),
    }
    for name, (response, status, message) in cases.items():
        assert response.status_code == status, (name, response.status_code, response.text[:300])
        body = response.json()
        assert body["detail"].startswith(message), (name, body)
        assert body["rejected"] == [], (name, body)
    assert "colour" in cases["metadata_file"][0].json()["detail"]


def test_body_limit_holds_for_streamed_multipart_uploads(url):
    # announced in Content-Length: refused from the head
    big = requests.post(url, files={"mseed": ("a.mseed", b"\x00" * (MAX_BODY + 1))}, timeout=30)
    assert big.status_code == 413 and str(MAX_BODY) in big.json()["detail"]

    # chunked, no Content-Length: refused while the parser streams it, not after buffering
    def chunks():
        yield b'--b\r\nContent-Disposition: form-data; name="mseed"; filename="a.mseed"\r\n\r\n'
        for _ in range(2 * MAX_BODY // 4096):
            yield b"\x00" * 4096

    streamed = requests.post(url, data=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"},
                             timeout=30)
    assert streamed.status_code == 413, streamed.text[:300]
    # and a good-sized form still gets through to the miniSEED reader
    small = requests.post(url, files={"mseed": ("a.mseed", b"\x00" * 1000)}, timeout=30)
    assert small.status_code == 422 and "truncated miniSEED" in small.json()["detail"]
