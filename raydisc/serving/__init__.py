"""Ray Serve endpoint for the soft-voting ensemble.

Modules
-------
* :mod:`.app` — deployments and the FastAPI ingress; :func:`.app.build_app` builds the
  Serve application (also the ``import_path`` of ``serve_config.yaml``).
* :mod:`.routes` — the HTTP routes, error responses and OpenAPI schema of the ingress.
* :mod:`.inputs` — request forms -> recordings -> model inputs, through the project's
  ingest (:func:`~raydisc.data.ingest.cut_recordings_from_stream`) and preprocessing
  (:func:`~raydisc.features.batch.preprocess_recordings`) with the bundle's config.
* :mod:`.schemas` — request/response models (OpenAPI); :mod:`.client` — Python client;
  :mod:`.cli` — ``raydisc serve BUNDLE``.
* :mod:`.settings` — :class:`~.settings.ServeSettings` and the token sources;
  :mod:`.guard` — auth and body limit (ASGI middleware); :mod:`.locations` — which
  storage locations the URI form may read.

Running
-------
``raydisc serve BUNDLE [--port 8000] [--token T]``, or ``serve run serve_config.yaml``
(set ``args.bundle``), or from Python::

    from ray import serve
    from raydisc.serving.app import ServeSettings, build_app
    serve.start(http_options={"host": "127.0.0.1", "port": 8000})
    serve.run(build_app(ServeSettings(bundle="s3://bucket/bundles/alpine")), route_prefix="/")

Routes
------
* ``GET /healthz`` — liveness; ``GET /readyz`` — readiness (model replicas answer), 503 if not.
* ``GET /v1/info`` — bundle id, architecture, hyper-parameters, members and their
  metrics, best member, label map, class names, preprocessing config.
* ``POST /v1/classify/mseed`` — miniSEED of one event, either

  - raw body, ``Content-Type: application/vnd.fdsn.mseed``, with the query field
    ``metadata`` = JSON ``{"event": {...}, "stations": [{"network", "station", "location",
    "latitude", "longitude", "channels": {"Z": "HHZ", ...}, "sampling_rate_hz",
    "sensitivity": {"Z": counts per m/s, ...}, "p_time"}]}``; or
  - ``multipart/form-data`` with parts ``mseed``, ``metadata`` and optionally
    ``stationxml`` (then ``metadata`` needs only ``event`` and ``picks``:
    ``{"NET.STA.LOC": P time}``).
* ``POST /v1/classify/arrays`` — JSON ``{"event": {...}, "stations": [{"network",
  "station", "location", "counts": 3 x n raw counts (Z, N, E), "sampling_rate_hz",
  "sensitivity": [3 values], "start_s": time of the first sample relative to the P pick
  (or the origin, per the bundle's ``window_reference``)}]}``.
* ``POST /v1/classify/uris`` — JSON ``{"mseed_uri", "stationxml_uri", "quakeml_uri",
  "event_id"}``, read with :mod:`raydisc.storage`; only URIs under the server's
  ``uri_roots`` are read, compared by normalised path components (``..``, encodings,
  symlinks resolved; other schemes refused; see :mod:`.locations`), else 403 and nothing
  is read, so clients cannot read server files.

Every classify route answers, per station, the ensemble probabilities, the predicted
label, the spread (std across members of the predicted class probability), every
member's vote and probabilities; and the event verdict (mean of station probabilities).
A station that cannot be used (``missing_component``, ``gap``, ``sampling_rate_mismatch``,
``sampling_rate_too_low``, ``too_short``, ``nan``, ``clipped``, ``no_p_pick``, ...) makes
the request a 422 naming it, unless ``on_reject=skip`` (then it is listed in
``rejected``). Unknown JSON fields are 422, bodies over ``max_body_bytes`` (default
20 MiB) 413. Times are ISO 8601 or POSIX seconds, UTC.

Authentication
--------------
Off unless a token is set (``ServeSettings.token`` or ``token_file``, ``raydisc serve
--token/--token-file``, or the ``RAYDISC_SERVE_TOKEN`` / ``RAYDISC_SERVE_TOKEN_FILE``
environment variables of the replicas). Then every path but ``/healthz`` and ``/readyz``
(probes) needs ``Authorization: Bearer <token>``: 401 otherwise, before the body is read
(:mod:`.guard`). ``raydisc serve`` refuses a non-loopback host without a token unless
``--insecure``. Use TLS in front of a non-loopback endpoint. Requests never carry
code: JSON and miniSEED/StationXML/QuakeML only; bundles load from safetensors.

Import :mod:`.app` lazily: it imports Ray Serve.
"""
from .client import Client, ClientError

__all__ = ["Client", "ClientError"]
