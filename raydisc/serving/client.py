"""A tiny Python client for the classification API (uses ``requests``).

>>> c = Client("http://127.0.0.1:8000", token=None)          # doctest: +SKIP
>>> c.info()["bundle_id"]                                     # doctest: +SKIP
>>> c.classify_mseed(open("ev.mseed", "rb").read(), metadata={...})  # doctest: +SKIP
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
import requests

from .schemas import MAX_QUERY_METADATA_CHARS




def request_metadata(event, stations) -> dict:
    """``MseedMetadata`` (a dict, for :meth:`Client.classify_mseed`) of an event from the
    project's catalog and inventory records: ``event`` a
    :class:`raydisc.data.catalog.EventInfo` (origin, hypocentre, P picks), ``stations``
    ``{"NET.STA": StationInfo}``. Each station operating at the origin time gets its
    channels, with their overall sensitivities (counts per m/s), and its P pick where the
    catalog has one (``p_time`` None otherwise: the server predicts the P arrival, as the
    preprocessing job does for a catalog without picks)."""
    meta_stations = []
    for key, s in stations.items():
        channels = [c for c in s.channels if c.operating(event.origin_time)]
        if not channels:
            continue
        pick = event.picks.get(f"{key}.{channels[0].location}", {}).get("P")
        meta_stations.append({
            "network": s.network, "station": s.station, "location": channels[0].location, "latitude": s.latitude,
            "longitude": s.longitude, "elevation_m": s.elevation_m,
            "channels": {c.orientation: c.code for c in channels},
            "sampling_rate_hz": channels[0].sampling_rate,
            "sensitivity": {c.orientation: c.sensitivity for c in channels}, "p_time": pick})
    return {"event": {"event_id": event.event_id, "origin_time": event.origin_time, "latitude": event.latitude,
                      "longitude": event.longitude, "depth_km": event.depth_km},
            "stations": meta_stations}


class ClientError(RuntimeError):
    """The server answered with an error; ``status`` and ``detail`` (its message)."""

    def __init__(self, status: int, detail: str, body: Any = None):
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail, self.body = status, detail, body


class Client:
    """Client of one server at ``url`` (e.g. ``http://127.0.0.1:8000``), with an optional
    bearer ``token``. Methods return the decoded JSON response (see the OpenAPI schema at
    ``{url}/v1/openapi.json``) and raise :class:`ClientError` for 4xx/5xx answers."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 60.0):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _check(self, response: requests.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            detail = body.get("detail", body) if isinstance(body, dict) else body
            raise ClientError(response.status_code, str(detail), body)
        return body

    def health(self) -> bool:
        return self.session.get(f"{self.url}/healthz", timeout=self.timeout_s).status_code == 200

    def ready(self) -> bool:
        return self.session.get(f"{self.url}/readyz", timeout=self.timeout_s).status_code == 200

    def info(self) -> dict:
        """Bundle id, architecture, members and their metrics, label map, config."""
        return self._check(self.session.get(f"{self.url}/v1/info", timeout=self.timeout_s))

    def classify_mseed(self, mseed: bytes, metadata: Mapping[str, Any] | None = None,
                       stationxml: bytes | None = None, on_reject: str = "fail") -> dict:
        """Classify one event from miniSEED bytes.

        ``metadata``: ``MseedMetadata`` as a dict (``event``, and ``stations`` or — with
        ``stationxml`` bytes — ``picks``). Without StationXML and with short metadata the
        miniSEED goes as the raw body (metadata in the query); otherwise as
        ``multipart/form-data`` (URLs over a few kB are refused by many servers and proxies).
        """
        params = {"on_reject": on_reject}
        meta = json.dumps(metadata or {}, default=str)
        if stationxml is None and len(meta) <= MAX_QUERY_METADATA_CHARS:
            response = self.session.post(f"{self.url}/v1/classify/mseed", params={**params, "metadata": meta},
                                         data=mseed, headers={"Content-Type": "application/vnd.fdsn.mseed"},
                                         timeout=self.timeout_s)
        else:
            files = {"mseed": ("event.mseed", mseed, "application/vnd.fdsn.mseed"),
                     "metadata": (None, meta, "application/json")}
            if stationxml is not None:
                files["stationxml"] = ("inventory.xml", stationxml, "application/xml")
            response = self.session.post(f"{self.url}/v1/classify/mseed", params=params, files=files,
                                         timeout=self.timeout_s)
        return self._check(response)

    def classify_arrays(self, stations: Sequence[Mapping[str, Any]], event: Mapping[str, Any] | None = None,
                        on_reject: str = "fail", review_below: float | None = None) -> dict:
        """Classify one event from arrays: each station a dict with ``network``, ``station``,
        ``location``, ``counts`` (3 x n, numpy or lists), ``sampling_rate_hz``,
        ``sensitivity`` (3 values, counts per m/s) and ``start_s`` (s relative to the reference).
        ``review_below``: the event's triage threshold for this request (default: the server's)."""
        payload = {"stations": [{k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v)
                                 for k, v in s.items()} for s in stations],
                   "on_reject": on_reject}
        if review_below is not None:
            payload["review_below"] = review_below
        if event is not None:
            payload["event"] = dict(event)
        body = json.dumps(payload, default=str)
        return self._check(self.session.post(f"{self.url}/v1/classify/arrays", data=body,
                                             headers={"Content-Type": "application/json"}, timeout=self.timeout_s))

    def classify_uris(self, mseed_uri: str, stationxml_uri: str, quakeml_uri: str,
                      event_id: str | None = None, on_reject: str = "fail") -> dict:
        """Classify one event the server reads from object storage."""
        payload = {"mseed_uri": mseed_uri, "stationxml_uri": stationxml_uri, "quakeml_uri": quakeml_uri,
                   "event_id": event_id, "on_reject": on_reject}
        return self._check(self.session.post(f"{self.url}/v1/classify/uris", json=payload, timeout=self.timeout_s))


__all__ = ["Client", "ClientError"]
