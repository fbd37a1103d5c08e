"""Settings of the classification endpoint, and where its bearer token comes from.

:class:`ServeSettings` are the arguments of :func:`raydisc.serving.app.build_app` (and the
``args:`` of a Serve config YAML); the CLI's options mirror them. Nothing here imports Ray.
"""
from __future__ import annotations

import ipaddress
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Environment variables holding the bearer token, or the path of a file holding it
#: (e.g. a mounted Kubernetes secret), when the settings give neither.
TOKEN_ENV = "RAYDISC_SERVE_TOKEN"
TOKEN_FILE_ENV = "RAYDISC_SERVE_TOKEN_FILE"

#: Default request-body limit (bytes): a few hundred three-component stations of
#: miniSEED, far more than one event needs.
DEFAULT_MAX_BODY_BYTES = 20 * 2**20


class ServeSettings(BaseModel):
    """Arguments of :func:`~raydisc.serving.app.build_app` (also the ``args:`` of a Serve config YAML)."""

    model_config = ConfigDict(extra="forbid")

    bundle: str = Field(..., description="bundle URI (local path or s3://...)")
    composition: Literal["ensemble", "members"] = "ensemble"
    max_batch_size: int = Field(16, ge=1, description="requests coalesced per model call; 1 = unbatched")
    batch_wait_timeout_s: float = Field(0.005, ge=0)
    num_replicas: int | Literal["auto"] = Field(1, description="model replicas; 'auto' uses autoscaling_config")
    autoscaling_config: dict[str, Any] | None = Field(
        None, description="Serve autoscaling_config of the model deployment(s), e.g. "
                          "{'min_replicas': 1, 'max_replicas': 4, 'target_ongoing_requests': 4}")
    model_num_cpus: float = Field(1.0, ge=0)
    ingress_num_cpus: float = Field(0.5, ge=0)
    ingress_replicas: int = Field(1, ge=1)
    gpu_fraction: float | None = Field(None, ge=0, le=1,
                                       description="GPUs per model replica; default 0.5 when the cluster has GPUs, else 0")
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024,
                                description="requests larger than this get 413 before they are read")
    token: str | None = Field(None, description=f"bearer token; default: token_file, ${TOKEN_ENV}, ${TOKEN_FILE_ENV}")
    token_file: str | None = Field(None, description="file holding the bearer token (e.g. a mounted secret)")
    review_below: float | None = Field(None, ge=0, le=1,
                                       description="events whose confidence is below this get triage 'review' "
                                                   "(default: the bundle's triage threshold); a request may override it")
    uri_roots: list[str] = Field(default_factory=list,
                                 description="folders / s3://bucket[/prefix] that the /v1/classify/uris form may "
                                             "read (empty: form disabled); see raydisc.serving.locations")


def resolve_token(settings: ServeSettings, environ: dict[str, str] | None = None) -> str | None:
    """The bearer token in force, or None (no authentication).

    First of: ``settings.token``, ``settings.token_file``, ``$RAYDISC_SERVE_TOKEN``,
    ``$RAYDISC_SERVE_TOKEN_FILE``. A token file that is missing or empty is a
    ValueError naming it: a server that was meant to be locked must not start open.
    """
    environ = os.environ if environ is None else environ
    if settings.token:
        return settings.token
    path = settings.token_file or None
    if path is None and environ.get(TOKEN_ENV):
        return environ[TOKEN_ENV]
    path = path or environ.get(TOKEN_FILE_ENV) or None
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as exc:
        raise ValueError(f"token file {path}: {exc.strerror or exc}") from None
    if not token:
        raise ValueError(f"token file {path} is empty")
    return token


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


__all__ = ["DEFAULT_MAX_BODY_BYTES", "ServeSettings", "TOKEN_ENV", "TOKEN_FILE_ENV", "is_loopback", "resolve_token"]
