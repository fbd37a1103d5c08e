"""Which storage locations the endpoint may read when a client names them.

The ``/v1/classify/uris`` form reads files the *client* names, so every URI is parsed,
normalised and compared with the server's configured roots by path components (not by
string prefix): ``/srv/archive/../etc/passwd`` and ``s3://bucket-other/x`` under the
roots ``/srv/archive`` and ``s3://bucket`` are refused. The server then reads the
normalised form it checked, never the client's spelling.

Rules
-----
* Schemes: local paths (``/abs/path`` or ``file:///abs/path``, ``file://localhost/...``)
  and ``s3://bucket/key``, compared case-insensitively; anything else (``http(s)://``,
  ``ftp://``, ``memory://``, ``s3a://``, ...) is refused: the server never fetches a URL
  a client names.
* Percent-encoding is decoded once (``%2e%2e`` is ``..``); a URI that still contains
  ``%`` after that (double encoding), a NUL byte, a relative local path or a
  ``file://`` URI of another host is refused.
* ``.``, ``..`` and duplicate slashes are resolved; local paths are resolved with their
  symlinks followed (a link inside a root pointing outside is outside).
* Buckets compare exactly; keys and paths by whole components under the root.
"""
from __future__ import annotations

import dataclasses
import os
import posixpath
from urllib.parse import unquote

LOCAL = "file"
S3 = "s3"


class LocationRefused(ValueError):
    """A URI outside every allowed root, or one that cannot be read safely."""


@dataclasses.dataclass(frozen=True)
class Location:
    """A normalised storage location: ``scheme`` ("file" or "s3"), ``bucket`` ("" for
    local files) and the path's components."""

    scheme: str
    bucket: str
    parts: tuple[str, ...]

    @property
    def uri(self) -> str:
        """The form that is read: an absolute local path, or ``s3://bucket/key``."""
        path = "/".join(self.parts)
        return f"/{path}" if self.scheme == LOCAL else f"s3://{self.bucket}/{path}".rstrip("/")

    def is_under(self, root: "Location") -> bool:
        return (self.scheme, self.bucket) == (root.scheme, root.bucket) and \
            self.parts[: len(root.parts)] == root.parts


def parse_location(uri: str) -> Location:
    """Parse and normalise ``uri``; :class:`LocationRefused` if it cannot be read safely."""
    if not isinstance(uri, str) or not uri:
        raise LocationRefused("empty URI")
    if "\x00" in uri:
        raise LocationRefused("URI contains a NUL byte")
    scheme, sep, rest = uri.partition("://")
    if not sep:
        scheme, rest = LOCAL, uri
    scheme = scheme.lower()
    if scheme not in (LOCAL, S3):
        raise LocationRefused(f"scheme {scheme!r} is not readable (local paths and s3:// only)")
    decoded = unquote(rest)
    if "%" in decoded:
        raise LocationRefused("URI is percent-encoded more than once")
    if "\x00" in decoded:
        raise LocationRefused("URI contains a NUL byte")
    if scheme == S3:
        bucket, _, key = decoded.partition("/")
        if not bucket:
            raise LocationRefused("s3 URI without a bucket")
        key = posixpath.normpath("/" + key)  # the leading "/" keeps ".." from climbing above the bucket
        return Location(S3, bucket, tuple(p for p in key.split("/") if p))
    if sep:  # file://host/path: only the local host
        host, slash, path = decoded.partition("/")
        if host not in ("", "localhost"):
            raise LocationRefused(f"file URI of host {host!r}: only local files are readable")
        decoded = slash + path
    if not decoded.startswith("/"):
        raise LocationRefused("relative local path: give an absolute path")
    resolved = os.path.realpath(decoded)  # resolves "..", "//" and symlinks
    return Location(LOCAL, "", tuple(p for p in resolved.split("/") if p))


class AllowedLocations:
    """The roots that the URI form may read (empty: the form is disabled).

    ``roots``: local folders or ``s3://bucket[/prefix]`` URIs; local roots are resolved
    (symlinks followed) when the server starts. A root naming a scheme that is never
    readable is a configuration error (ValueError).
    """

    def __init__(self, roots: list[str] | tuple[str, ...]):
        self.roots = tuple(self._root(r) for r in roots)

    @staticmethod
    def _root(root: str) -> Location:
        if "://" not in root and not root.startswith("/"):
            root = os.path.abspath(root)
        try:
            return parse_location(root)
        except LocationRefused as exc:
            raise ValueError(f"allowed URI root {root!r}: {exc}") from None

    def __bool__(self) -> bool:
        return bool(self.roots)

    def describe(self) -> str:
        return ", ".join(r.uri for r in self.roots) or "none: the URI form is disabled"

    def check(self, uri: str) -> str:
        """The normalised URI to read, if ``uri`` lies under an allowed root; else
        :class:`LocationRefused` naming the URI."""
        if not self.roots:
            raise LocationRefused(f"URI {uri!r} refused: the URI form is disabled on this server")
        try:
            location = parse_location(uri)
        except LocationRefused as exc:
            raise LocationRefused(f"URI {uri!r} refused: {exc}") from None
        if not any(location.is_under(root) for root in self.roots):
            raise LocationRefused(f"URI {uri!r} refused: not under an allowed root ({self.describe()})")
        return location.uri


__all__ = ["AllowedLocations", "Location", "LocationRefused", "parse_location"]
