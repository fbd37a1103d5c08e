"""The Ray Serve application: an HTTP ingress (FastAPI) in front of batched model replicas.

Deployments
-----------
``Classifier`` (ingress, FastAPI): parses a request (miniSEED, arrays or object-storage
URIs), cuts and preprocesses the recordings with the project's own functions and the
bundle's config (:mod:`raydisc.serving.inputs`), sends the ``(n, *input_shape)`` model
inputs to the model deployment(s), soft-votes and aggregates per event.

``EnsembleModel``: holds members of the bundle (loaded by :func:`load_bundle`) and runs
them on coalesced requests with ``@serve.batch``. Two compositions:

* ``"ensemble"`` (default): one deployment holding all members;
* ``"members"``: one deployment per member, composed by the ingress through handles.

The default was chosen with ``bench/serve.py`` (10 default-size waveform_cnn members,
3 stations per request, 8 concurrent clients, 2 shared CPU cores): one deployment
holding all members gave 2.5x the HTTP throughput of one deployment per member
(19.5 vs 7.0 requests/s; model level 23.7 vs 9.4), because the fan-out costs a handle
round trip, a copy of the inputs and a replica process per member. Batching (max 16)
gave 1.15x over unbatched at the model level, 2 replicas 1.7x (HTTP: 1.2x, bound by the
ingress' miniSEED parsing and preprocessing on 2 cores).

Routes (:mod:`raydisc.serving.routes`; OpenAPI at ``/v1/openapi.json``): ``GET /healthz`` (process alive),
``GET /readyz`` (model replicas answer), ``GET /v1/info``, ``POST /v1/classify/mseed``,
``POST /v1/classify/arrays``, ``POST /v1/classify/uris``.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import numpy as np
from fastapi import Request
from pydantic import ValidationError
from ray import serve
from starlette.concurrency import run_in_threadpool

from ..data.records import NOT_LOSSES
from ..ensemble import load_bundle
from ..ensemble.results import classify_response
from ..runtime import reuse_freed_array_memory
from . import inputs as _inputs
from .locations import AllowedLocations
from .routes import HTTPError, build_fastapi, openapi_schema, problems
from .schemas import API_VERSION, ArraysRequest, ClassifyResponse, InfoResponse, MseedMetadata, UriRequest
from .settings import TOKEN_ENV, ServeSettings, resolve_token

log = logging.getLogger(__name__)

MSEED_TYPES = ("application/vnd.fdsn.mseed", "application/octet-stream")
#: The parts a multipart miniSEED upload may have.
MSEED_PARTS = ("mseed", "metadata", "stationxml")


# --------------------------------------------------------------------------- model replicas


@serve.deployment
class EnsembleModel:
    """Members of a bundle, run on batches of coalesced requests.

    ``__call__(x)``: ``x`` float32 ``(n, *input_shape)`` -> float32
    ``(n_members_here, n, n_classes)`` softmax probabilities.
    """

    def __init__(self, bundle_uri: str, members: list[int] | None = None,
                 max_batch_size: int = 16, batch_wait_timeout_s: float = 0.005):
        import torch

        bundle = load_bundle(bundle_uri, map_location="cuda" if torch.cuda.is_available() else "cpu")
        if members is not None:
            bundle = dataclasses.replace(bundle, members=[bundle.members[i] for i in members])
        self.bundle = bundle
        self.predict_batch.set_max_batch_size(max_batch_size)
        self.predict_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def predict_batch(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        sizes = np.cumsum([len(x) for x in xs])[:-1]
        # Inference in a thread: the replica's event loop keeps queueing the next batch.
        probs = await asyncio.to_thread(self.bundle.member_probabilities, np.concatenate(xs))
        return np.split(probs, sizes, axis=1)

    async def __call__(self, x: np.ndarray) -> np.ndarray:
        return await self.predict_batch(x)

    async def ping(self) -> bool:
        return True


# --------------------------------------------------------------------------- ingress


# The FastAPI app is built in the replica, after the constructor, by
# __serve_build_asgi_app__: FastAPI >= 0.16x apps hold locks and cannot be pickled, and
# the routes get this replica itself rather than process-global state.
@serve.deployment
@serve.ingress()
class Classifier:
    """HTTP ingress; ``models`` are handles to :class:`EnsembleModel` deployments whose
    member probabilities concatenate (in order) to the whole ensemble's. Implements
    :class:`~raydisc.serving.routes.Ingress`."""

    def __init__(self, settings: dict, models: list):
        self.settings = ServeSettings(**settings)
        reuse_freed_array_memory()  # this replica preprocesses the uploads
        self.token = resolve_token(self.settings)
        self.allowed = AllowedLocations(self.settings.uri_roots)
        # The same loader as the model replicas: config, label map and metadata of the
        # bundle; the weights loaded here are not used for inference.
        self.bundle = load_bundle(self.settings.bundle)
        self.config = self.bundle.preprocess_config
        self.models = models

    def __serve_build_asgi_app__(self):
        return build_fastapi(self)

    async def readiness(self) -> dict:
        try:
            await asyncio.wait_for(asyncio.gather(*[m.ping.remote() for m in self.models]), 5.0)
        except Exception as exc:  # timeout or a dead replica: not ready, say why
            raise HTTPError(503, f"model deployments not ready: {type(exc).__name__}: {exc}"[:500]) from None
        return {"status": "ready"}

    def info(self) -> InfoResponse:
        b = self.bundle
        return InfoResponse(
            api_version=API_VERSION, bundle_id=b.bundle_id, architecture=b.architecture,
            hparams=b.manifest["hparams"], input_kind=b.input_kind,
            input_shape=list(b.input_shape), class_names=list(b.class_names), label_map=b.label_map,
            triage={**b.triage_policy.to_dict(), "review_below": self.settings.review_below},
            members=b.member_metrics, best_member=b.best_member, preprocess_config=b.manifest["preprocess_config"],
            created_at=b.created_at, composition=self.settings.composition,
            max_body_bytes=self.settings.max_body_bytes, auth_required=bool(self.token),
        )

    async def _classify(self, recordings, rejects, on_reject: str, event_id: str,
                        review_below: float | None = None) -> ClassifyResponse:
        losses = [r for r in rejects if r.reason not in NOT_LOSSES]
        if losses and on_reject == "fail":
            names = ", ".join(f"{r.station} ({r.reason}: {r.detail})" for r in losses)
            raise HTTPError(422, f"unusable station recording(s): {names}", rejects)
        if not recordings:
            raise HTTPError(422, "no usable station recording in the request", rejects)
        # Failed or non-finite inputs become preprocessing_error rejects, as in the jobs.
        recordings, x, failed = await run_in_threadpool(_inputs.isolated_inputs, recordings, self.config,
                                                        self.bundle.input_kind)
        rejects = rejects + failed
        if failed and (on_reject == "fail" or not recordings):
            names = ", ".join(f"{r.station} ({r.reason}: {r.detail})" for r in failed)
            raise HTTPError(422, f"preprocessing failed for station recording(s): {names}", rejects)
        parts = await asyncio.gather(*[m.remote(x) for m in self.models])
        member_probs = np.concatenate(parts, axis=0)  # (n_members, n, n_classes)
        return self._response(recordings, rejects, member_probs, event_id, review_below)

    def _response(self, recordings, rejects, member_probs, event_id, review_below=None) -> ClassifyResponse:
        # The request's threshold, else the server's, else the bundle's.
        if review_below is None:
            review_below = self.settings.review_below
        return classify_response(self.bundle.bundle_id, self.bundle.class_names, recordings, rejects, member_probs,
                                 event_id, self.bundle.triage_policy, review_below)

    async def classify_mseed(self, request: Request, metadata: str | None, on_reject: str,
                             parts: dict[str, bytes]) -> ClassifyResponse:
        """``parts``: the multipart form's ``mseed``, ``stationxml`` and ``metadata`` (empty
        when absent, and for a raw body, which is read here)."""
        content_type = request.headers.get("content-type", "")
        media = content_type.split(";")[0].strip().lower()
        stationxml = None
        if media == "multipart/form-data":
            # FastAPI parsed the form for the File parameters; this is that form, cached.
            names = set((await request.form()).keys())
            if "mseed" not in names:
                raise HTTPError(422, "multipart body lacks the 'mseed' part")
            unknown = names - set(MSEED_PARTS)
            if unknown:
                raise HTTPError(422, f"unknown multipart part(s) {sorted(unknown)}")
            body = parts["mseed"]
            stationxml = parts["stationxml"] if "stationxml" in names else None
            if "metadata" in names:
                metadata = parts["metadata"].decode("utf-8", errors="replace")
        elif media in MSEED_TYPES:
            body = await request.body()
        else:
            raise HTTPError(415, f"content type {content_type!r}: send {MSEED_TYPES[0]} or multipart/form-data")
        try:
            meta = MseedMetadata.model_validate_json(metadata or "{}")
        except ValidationError as exc:
            raise HTTPError(422, f"invalid metadata: {problems(exc.errors())}") from None
        try:
            recordings, rejects = await run_in_threadpool(
                _inputs.recordings_from_mseed, body, meta, self.config, stationxml)
        except _inputs.InputError as exc:
            raise HTTPError(exc.status, str(exc), exc.rejects) from None
        return await self._classify(recordings, rejects, on_reject, meta.event.event_id, meta.review_below)

    async def classify_arrays(self, request: ArraysRequest) -> ClassifyResponse:
        recordings, rejects = await run_in_threadpool(_inputs.recordings_from_arrays, request, self.config)
        return await self._classify(recordings, rejects, request.on_reject, request.event.event_id,
                                    request.review_below)

    async def classify_uris(self, request: UriRequest) -> ClassifyResponse:
        try:
            recordings, rejects, event_id = await run_in_threadpool(
                _inputs.recordings_from_uris, request, self.config, self.allowed)
        except _inputs.InputError as exc:
            raise HTTPError(exc.status, str(exc), exc.rejects) from None
        return await self._classify(recordings, rejects, request.on_reject, event_id, request.review_below)


# --------------------------------------------------------------------------- application


def _cluster_has_gpus() -> bool:
    import ray

    return ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0


def build_app(args: dict | ServeSettings) -> serve.Application:
    """Serve application builder (``import_path: raydisc.serving.app:build_app``).

    ``args``: :class:`ServeSettings` fields. The bundle's manifest is read here so a
    bad bundle fails at deploy time with the loader's message, not in a replica.
    """
    from ..ensemble import read_manifest

    settings = args if isinstance(args, ServeSettings) else ServeSettings(**args)
    AllowedLocations(settings.uri_roots)  # a bad root fails the deploy here, with its name
    n_members = len(read_manifest(settings.bundle)["members"])
    gpus = settings.gpu_fraction if settings.gpu_fraction is not None else (0.5 if _cluster_has_gpus() else 0.0)
    actor_options: dict[str, Any] = {"num_cpus": settings.model_num_cpus}
    if gpus > 0:
        actor_options["num_gpus"] = gpus
    scale: dict[str, Any]
    if settings.num_replicas == "auto" or settings.autoscaling_config:
        scale = {"autoscaling_config": settings.autoscaling_config
                 or {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 4}}
    else:
        scale = {"num_replicas": settings.num_replicas}
    batch = {"max_batch_size": settings.max_batch_size, "batch_wait_timeout_s": settings.batch_wait_timeout_s}
    if settings.composition == "ensemble":
        models = [EnsembleModel.options(ray_actor_options=actor_options, **scale).bind(settings.bundle, None, **batch)]
    else:
        models = [
            EnsembleModel.options(name=f"Member{i:03d}", ray_actor_options=actor_options, **scale)
            .bind(settings.bundle, [i], **batch)
            for i in range(n_members)
        ]
    ingress = Classifier.options(num_replicas=settings.ingress_replicas,
                                 ray_actor_options={"num_cpus": settings.ingress_num_cpus})
    return ingress.bind(settings.model_dump(), models)


__all__ = ["Classifier", "EnsembleModel", "ServeSettings", "TOKEN_ENV", "build_app", "build_fastapi", "openapi_schema"]
