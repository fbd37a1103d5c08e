"""``raydisc serve BUNDLE``: run the classification endpoint on a Ray cluster.

:func:`register` adds it to the ``raydisc`` parser; a job's own parser can take
:func:`add_serve_arguments` and :func:`run_serve`.

Authentication is off unless a token is given (``--token``, ``--token-file``,
``$RAYDISC_SERVE_TOKEN`` or ``$RAYDISC_SERVE_TOKEN_FILE``); clients then send
``Authorization: Bearer <token>``. Serving on a non-loopback host without a token is
refused unless ``--insecure`` says that is meant.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from ..cli_options import add_command


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``raydisc serve`` (mirror :class:`raydisc.serving.app.ServeSettings`)."""
    parser.add_argument("bundle", help="ensemble bundle URI (local path or s3://...)")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP host (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--address", default=None, help="Ray cluster address (default: start a local one)")
    parser.add_argument("--composition", choices=("ensemble", "members"), default="ensemble",
                        help="one deployment with all members (default, faster on CPU) or one per member")
    parser.add_argument("--replicas", default="1", help="model replicas, or 'auto' for autoscaling")
    parser.add_argument("--min-replicas", type=int, default=1)
    parser.add_argument("--max-replicas", type=int, default=4)
    parser.add_argument("--max-batch-size", type=int, default=16, help="1 disables batching")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--model-cpus", type=float, default=1.0, help="CPUs per model replica")
    parser.add_argument("--gpu-fraction", type=float, default=None,
                        help="GPUs per model replica (default 0.5 when the cluster has GPUs)")
    parser.add_argument("--max-body-mb", type=float, default=20.0, help="larger requests get 413")
    parser.add_argument("--token", default=None, help="bearer token (default: $RAYDISC_SERVE_TOKEN; none = no auth)")
    parser.add_argument("--token-file", default=None,
                        help="file holding the bearer token, e.g. a mounted secret (default: $RAYDISC_SERVE_TOKEN_FILE)")
    parser.add_argument("--insecure", action="store_true",
                        help="allow serving on a non-loopback host without a token")
    parser.add_argument("--review-below", type=float, default=None, metavar="P",
                        help="events whose confidence is below P get triage 'review' (default: the bundle's "
                             "threshold; a request's review_below overrides it)")
    parser.add_argument("--uri-root", action="append", default=[],
                        help="folder or s3://bucket[/prefix] that the /v1/classify/uris form may read "
                             "(repeatable; none = form disabled)")


def settings_from_args(args: argparse.Namespace):
    from .app import ServeSettings

    autoscaling = None
    if args.replicas == "auto":
        autoscaling = {"min_replicas": args.min_replicas, "max_replicas": args.max_replicas,
                       "target_ongoing_requests": 4}
    return ServeSettings(
        bundle=args.bundle, composition=args.composition,
        num_replicas="auto" if args.replicas == "auto" else int(args.replicas),
        autoscaling_config=autoscaling, max_batch_size=args.max_batch_size,
        batch_wait_timeout_s=args.batch_wait_ms / 1000.0, model_num_cpus=args.model_cpus,
        gpu_fraction=args.gpu_fraction, max_body_bytes=int(args.max_body_mb * 2**20),
        token=args.token, token_file=args.token_file, uri_roots=list(args.uri_root),
        review_below=args.review_below,
    )


def run_serve(args: argparse.Namespace) -> int:
    """Start Ray (or connect), deploy the app, print the URL and block until Ctrl-C."""
    from ray import serve

    from ..runtime import init_ray
    from .app import build_app
    from .locations import AllowedLocations
    from .settings import TOKEN_ENV, TOKEN_FILE_ENV, is_loopback, resolve_token

    settings = settings_from_args(args)
    try:
        token = resolve_token(settings)
        AllowedLocations(settings.uri_roots)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not token and not is_loopback(args.host):
        if not args.insecure:
            print(f"error: refusing to serve on {args.host} without authentication: set --token, --token-file, "
                  f"${TOKEN_ENV} or ${TOKEN_FILE_ENV} (or pass --insecure if an open endpoint is meant)",
                  file=sys.stderr)
            return 2
        print(f"warning: serving on {args.host} without authentication (--insecure)", file=sys.stderr)
    init_ray(args.address)
    serve.start(http_options={"host": args.host, "port": args.port})
    serve.run(build_app(settings), name="raydisc", route_prefix="/")
    url = f"http://{args.host}:{args.port}"
    print(json.dumps({"url": url, "openapi": f"{url}/v1/openapi.json", "bundle": args.bundle}))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()
    return 0


def register(sub) -> None:
    """Add ``serve`` to the subcommands ``sub`` of the ``raydisc`` parser."""
    add_command(sub, add_serve_arguments, run_serve, "serve",
                help="HTTP classification endpoint for a bundle (Ray Serve)",
                description="Deploy the soft-voting ensemble of BUNDLE behind an HTTP API (OpenAPI at "
                            "/v1/openapi.json): miniSEED, JSON arrays or object-storage URIs of one event "
                            "in, per-station probabilities, member votes, spread and the event verdict out.")


__all__ = ["register", "add_serve_arguments", "run_serve", "settings_from_args"]
