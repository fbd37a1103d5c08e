"""The endpoint's front door: bearer-token check and request-body limit, as ASGI middleware.

Both run before any route reads a byte of the body, so an unauthenticated or oversized
upload costs the server a header parse, not a 20 MiB read and a miniSEED decode:

* when a token is configured, every path except the probes ``/healthz`` and ``/readyz``
  (the API, its OpenAPI document and docs included) needs ``Authorization: Bearer
  <token>``, else 401. Tokens are compared as SHA-256 digests with
  :func:`hmac.compare_digest`: constant time, and no length oracle either.
* bodies over the limit get 413, whether announced in ``Content-Length`` or only found
  while streaming (chunked uploads).
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Callable

#: Paths that stay open when a token is set: liveness and readiness probes.
OPEN_PATHS = frozenset({"/healthz", "/readyz"})


def token_digest(token: str | None) -> bytes | None:
    return hashlib.sha256(token.encode("utf-8")).digest() if token else None


def _json_response(status: int, detail: str, extra_headers: list[tuple[bytes, bytes]] = ()):
    body = json.dumps({"detail": detail, "rejected": []}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                         *extra_headers]}
    return start, {"type": "http.response.body", "body": body}


class _TooLarge(Exception):
    pass


class RequestGuard:
    """ASGI middleware: auth, then the body limit, then the app.

    ``limits()`` returns ``(token_digest or None, max_body_bytes)`` at request time: the
    ingress replica sets them after the app is built.
    """

    def __init__(self, app, limits: Callable[[], tuple[bytes | None, int]]):
        self.app = app
        self.limits = limits

    @staticmethod
    def _route_path(scope) -> str:
        # Behind a Serve route prefix the path may carry it (root_path): strip it.
        path, root = scope.get("path", ""), scope.get("root_path", "")
        if root and path.startswith(root):
            return path[len(root):] or "/"
        return path

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        digest, limit = self.limits()
        headers = dict(scope.get("headers") or [])
        if digest is not None and self._route_path(scope) not in OPEN_PATHS:
            scheme, _, given = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
            if not (scheme.lower() == "bearer"
                    and hmac.compare_digest(hashlib.sha256(given.strip().encode("utf-8")).digest(), digest)):
                for message in _json_response(401, "missing or invalid bearer token",
                                              [(b"www-authenticate", b"Bearer")]):
                    await send(message)
                return
        too_big = _json_response(413, f"request body exceeds the limit of {limit} bytes")
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            for message in too_big:
                await send(message)
            return
        seen, exceeded, started = 0, False, False

        async def limited_receive():
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _TooLarge()
            return message

        async def guarded_send(message):
            # FastAPI turns an exception while reading the body into its own 400: once
            # the limit was crossed, whatever the app answers is replaced by the 413.
            nonlocal started
            if exceeded:
                if not started:
                    started = True
                    for m in too_big:
                        await send(m)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLarge:
            if not started:
                for message in too_big:
                    await send(message)


__all__ = ["OPEN_PATHS", "RequestGuard", "token_digest"]
