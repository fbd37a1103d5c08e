"""A loopback FDSN web service over an archive region, for tests (no internet here).

It speaks the query protocol of fdsnws-event (``starttime``, ``endtime``,
``eventtype`` list, box), fdsnws-station (network/station/channel patterns; the whole
StationXML at every level) and fdsnws-dataselect (GET and POST bulk requests, miniSEED
out), answers ``/version``, and 204 when nothing matches, so ObsPy's real FDSN client
talks to it. ``fail_events`` makes dataselect answer 500 for requests whose window
contains those events' origin times (a failing service); ``requests`` logs every
request path.
"""
from __future__ import annotations

import fnmatch
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import obspy

from raydisc.data import layout
from raydisc.data.catalog import read_catalog


class LoopbackFDSN:
    def __init__(self, archive: str, region: str):
        self.catalog = obspy.read_events(layout.catalog_uri(archive, region))
        self.inventory = obspy.read_inventory(layout.inventory_uri(archive, region))
        self.origins = {e.event_id: e.origin_time for e in read_catalog(layout.catalog_uri(archive, region), region)}
        self.stream = obspy.Stream()
        for event_id in self.origins:
            self.stream += obspy.read(layout.waveform_uri(archive, region, event_id))
        self.fail_events: set[str] = set()
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "LoopbackFDSN":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ services
    def events(self, q: dict) -> bytes | None:
        t0, t1 = obspy.UTCDateTime(q["starttime"]), obspy.UTCDateTime(q["endtime"])
        types = {t.strip() for t in q.get("eventtype", "").split(",") if t.strip()}
        chosen = [e for e in self.catalog if t0 <= e.preferred_origin().time <= t1
                  and (not types or str(e.event_type) in types)]
        if not chosen:
            return None
        # Publish ids as an FDSN service does, as query URLs.
        out = obspy.Catalog(events=[e.copy() for e in chosen])
        for e in out:
            e.resource_id = obspy.core.event.ResourceIdentifier(
                f"smi:loopback/fdsnws/event/1/query?eventid={layout.event_id_from_resource_id(e.resource_id.id)}")
        return _write(out, "QUAKEML")

    def stations(self, q: dict) -> bytes | None:
        inv = self.inventory.select(network=q.get("network", "*"), station=q.get("station", "*"))
        return _write(inv, "STATIONXML") if len(inv.networks) else None

    def dataselect(self, lines: list[tuple[str, ...]]) -> bytes | int | None:
        out = obspy.Stream()
        for net, sta, loc, cha, start, end in lines:
            t0, t1 = obspy.UTCDateTime(start), obspy.UTCDateTime(end)
            if any(t0 <= self.origins[e] <= t1 for e in self.fail_events):
                return 500
            loc = "" if loc == "--" else loc
            for tr in self.stream:
                s = tr.stats
                if (fnmatch.fnmatch(s.network, net) and fnmatch.fnmatch(s.station, sta)
                        and fnmatch.fnmatch(s.location, loc) and fnmatch.fnmatch(s.channel, cha)
                        and s.starttime <= t1 and s.endtime >= t0):
                    out += tr.slice(t0, t1)
        return _write(out, "MSEED") if len(out) else None

    def _handler(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def _answer(self, body, content_type: str) -> None:
                if isinstance(body, int):
                    self.send_response(body)
                    self.end_headers()
                    self.wfile.write(b"Error 500: internal error of the loopback service\n")
                    return
                if body is None:
                    self.send_response(204)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                service.requests.append(url.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path.endswith("/version"):
                    return self._answer(b"1.2.0", "text/plain")
                if url.path == "/fdsnws/event/1/query":
                    return self._answer(service.events(q), "application/xml")
                if url.path == "/fdsnws/station/1/query":
                    return self._answer(service.stations(q), "application/xml")
                if url.path == "/fdsnws/dataselect/1/query":
                    line = (q["network"], q["station"], q.get("location", "*"), q["channel"], q["starttime"], q["endtime"])
                    return self._answer(service.dataselect([line]), "application/vnd.fdsn.mseed")
                self.send_response(404)
                self.end_headers()

            def do_POST(self) -> None:
                url = urlparse(self.path)
                service.requests.append(url.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                if url.path != "/fdsnws/dataselect/1/query":
                    self.send_response(404)
                    self.end_headers()
                    return
                lines = [tuple(line.split()) for line in body.splitlines() if line.strip() and "=" not in line]
                self._answer(service.dataselect(lines), "application/vnd.fdsn.mseed")

        return Handler


def _write(obj, fmt: str) -> bytes:
    buffer = io.BytesIO()
    obj.write(buffer, format=fmt)
    return buffer.getvalue()
