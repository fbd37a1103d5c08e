"""The HTTP API of the ingress: routes, error responses and the OpenAPI schema.

:func:`build_fastapi` builds the FastAPI app bound to one ingress (the
:class:`~raydisc.serving.app.Classifier` replica of this process); every route delegates
to it. Errors are JSON ``{"detail": str, "rejected": [station rejects]}``
(:class:`~raydisc.serving.schemas.ErrorResponse`), raised as :class:`HTTPError`.

Routes (OpenAPI at ``/v1/openapi.json``): ``GET /healthz``, ``GET /readyz``,
``GET /v1/info``, ``POST /v1/classify/mseed``, ``POST /v1/classify/arrays``,
``POST /v1/classify/uris``.
"""
from __future__ import annotations

import sys
from typing import Annotated, Any, Literal, Protocol

from fastapi import FastAPI, File, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .guard import RequestGuard, token_digest
from .schemas import (
    API_VERSION,
    ArraysRequest,
    ClassifyResponse,
    ErrorResponse,
    MAX_QUERY_METADATA_CHARS,
    MAX_STATIONS,
    InfoResponse,
    RejectOut,
    UriRequest,
)
from .settings import DEFAULT_MAX_BODY_BYTES, ServeSettings


class HTTPError(Exception):
    """An error answer: HTTP ``status``, ``detail`` text, the station rejects behind it
    (records with ``station``, ``reason``, ``detail``) and extra response ``headers``."""

    def __init__(self, status: int, detail: str, rejects=(), headers=None):
        self.status, self.detail, self.rejects, self.headers = status, detail, list(rejects), headers


def problems(errors) -> str:
    """Pydantic ``errors()`` as one readable text."""
    # One readable item per problem, with its JSON path (e.g. body.stations.0.sensitivity).
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)


class Ingress(Protocol):
    """What the routes delegate to (implemented by :class:`raydisc.serving.app.Classifier`)."""

    settings: ServeSettings
    token: str | None

    async def readiness(self) -> dict: ...

    def info(self) -> InfoResponse: ...

    async def classify_mseed(self, request: Request, metadata: str | None, on_reject: str,
                             parts: dict[str, bytes]) -> ClassifyResponse: ...

    async def classify_arrays(self, request: ArraysRequest) -> ClassifyResponse: ...

    async def classify_uris(self, request: UriRequest) -> ClassifyResponse: ...


_ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 413, 415, 422)}
# FastAPI documents the multipart form from the File parameters of the route; the raw-body
# form is read from the request itself, so its content type is added here.
_RAW_MSEED_BODY = {"requestBody": {"required": True, "content": {
    "application/vnd.fdsn.mseed": {"schema": {"type": "string", "format": "binary"}}}}}
# A text part's size is bounded by the request guard's body limit (max_body_bytes), as
# that of a file part is, rather than by Starlette's default of 1 MiB per text part.
_MSEED_FORM_LIMITS = {"max_part_size": sys.maxsize}


def _new_app() -> FastAPI:
    return FastAPI(
        title="raydisc classification API",
        version=API_VERSION,
        description=(
            "Earthquake vs. quarry-blast discrimination of one event's station recordings by a "
            "soft-voting CNN ensemble.\n\n"
            "Authentication (when the server has a token): `Authorization: Bearer <token>` on every "
            "path except `/healthz` and `/readyz`, else 401 before the body is read.\n\n"
            f"Limits: request bodies over the server's `max_body_bytes` ({DEFAULT_MAX_BODY_BYTES} bytes by "
            "default; this server's value is in `GET /v1/info`) get 413 before they are read; at most "
            f"{MAX_STATIONS} stations per request (422 above)."
        ),
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
    )


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, exc: HTTPError):
        body = ErrorResponse(detail=exc.detail, rejected=[
            RejectOut(station=r.station, reason=r.reason, detail=r.detail) for r in exc.rejects])
        return JSONResponse(body.model_dump(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def _body_error(request: Request, exc: HTTPException):
        # The one 400 the framework raises is a body it could not parse: say which.
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if exc.status_code == 400 and media == "multipart/form-data":
            return JSONResponse({"detail": f"malformed multipart/form-data body: {exc.detail}", "rejected": []},
                                status_code=400)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": f"invalid request: {problems(exc.errors())}", "rejected": []},
                            status_code=422)


def build_fastapi(ingress: Ingress | None = None) -> FastAPI:
    """The HTTP API (routes, OpenAPI schema at ``/v1/openapi.json``), its routes delegating
    to ``ingress``; its request guard takes the token and body limit of the ingress'
    settings. Without an ingress (to read the schema) routes other than ``/healthz``
    answer 503 and the guard has no token and the default body limit."""
    app = _new_app()
    limits: tuple[Any, int] = ((token_digest(ingress.token), ingress.settings.max_body_bytes) if ingress is not None
                               else (None, DEFAULT_MAX_BODY_BYTES))
    app.add_middleware(RequestGuard, limits=lambda: limits)
    _add_error_handlers(app)

    def bound() -> Ingress:
        if ingress is None:
            raise HTTPError(503, "ingress not initialised")
        return ingress

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict:
        """Liveness: the ingress process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"model": ErrorResponse}})
    async def readyz():
        """Readiness: every model deployment answers a ping within 5 s."""
        return await bound().readiness()

    @app.get("/v1/info", response_model=InfoResponse, responses=_ERRORS, tags=["model"])
    async def info() -> InfoResponse:
        """The bundle being served: id, architecture, members with metrics, label map, config."""
        return bound().info()

    @app.post("/v1/classify/mseed", response_model=ClassifyResponse, responses=_ERRORS,
              tags=["classify"], openapi_extra=_RAW_MSEED_BODY, form_limits=_MSEED_FORM_LIMITS)
    async def classify_mseed(
        request: Request,
        metadata: str | None = Query(None, max_length=MAX_QUERY_METADATA_CHARS,
                                     description="MseedMetadata as JSON (raw-body form; longer metadata: multipart)"),
        on_reject: Literal["fail", "skip"] = Query("fail"),
        mseed: Annotated[bytes, File(description="miniSEED records of the event (required in the form)")] = b"",
        stationxml: Annotated[bytes, File(description="StationXML of its stations")] = b"",
        metadata_part: Annotated[bytes, File(alias="metadata",
                                             description="MseedMetadata as JSON (a text or a file part)")] = b"",
    ) -> ClassifyResponse:
        """Classify one event from miniSEED: raw body (``application/vnd.fdsn.mseed``, metadata
        in the ``metadata`` query field) or ``multipart/form-data`` with parts ``mseed``,
        ``metadata`` (JSON) and optionally ``stationxml`` (then metadata needs only ``event`` and
        ``picks``). Metadata schema: ``MseedMetadata``."""
        parts = {"mseed": mseed, "stationxml": stationxml, "metadata": metadata_part}
        return await bound().classify_mseed(request, metadata, on_reject, parts)

    @app.post("/v1/classify/arrays", response_model=ClassifyResponse, responses=_ERRORS,
              tags=["classify"])
    async def classify_arrays(request: ArraysRequest) -> ClassifyResponse:
        """Classify one event from per-station JSON arrays of raw counts (see ``ArraysRequest``)."""
        return await bound().classify_arrays(request)

    @app.post("/v1/classify/uris", response_model=ClassifyResponse, responses=_ERRORS,
              tags=["classify"])
    async def classify_uris(request: UriRequest) -> ClassifyResponse:
        """Classify one event read from object storage: miniSEED + StationXML + QuakeML URIs,
        each under one of the server's ``uri_roots`` (403 otherwise, nothing read)."""
        return await bound().classify_uris(request)

    return app


def openapi_schema() -> dict:
    """The API's OpenAPI document (what ``GET /v1/openapi.json`` serves)."""
    return build_fastapi().openapi()


__all__ = ["HTTPError", "Ingress", "build_fastapi", "openapi_schema", "problems"]
