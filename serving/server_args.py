"""The `serve` flags, kept free of heavy imports so CLI parsing stays fast."""

from __future__ import annotations

import argparse

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The `serve` flags (shared by `mtrec serve` and `python -m mtrec.serving.server`)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--model-base-path",
        help="the folder that holds the numeric version folders, as TF Serving's "
        "--model_base_path: the Pusher's destination, e.g. outputs/sample/serving_model/mtrec",
    )
    source.add_argument(
        "--model-config-file",
        help="serve several models: a TF Serving models.config "
        "(model_config_list { config { name base_path model_platform } })",
    )
    parser.add_argument(
        "--model-name", default="mtrec", help="the name --model-base-path is served under"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="bind address; loopback by default, 0.0.0.0 to expose"
    )
    parser.add_argument("--port", type=int, default=8500, help="gRPC port")
    parser.add_argument(
        "--rest-port", type=int, default=None, help="also serve TF Serving's REST API on this port"
    )
    parser.add_argument("--tls-cert", help="PEM server certificate (enables TLS)")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument("--tls-client-ca", help="PEM CA bundle; require client certs (mTLS)")
    parser.add_argument(
        "--poll-seconds", type=float, default=1.0, help="how often to look for new versions"
    )
    parser.add_argument(
        "--max-request-bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        help="larger requests get RESOURCE_EXHAUSTED",
    )
    parser.add_argument("--threads", type=int, default=8, help="RPC worker threads")
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip replaying assets.extra/tf_serving_warmup_requests",
    )
    parser.add_argument(
        "--tf-inter-op-threads",
        type=int,
        default=1,
        help="TF inter-op pool size (0 = TF default); 1 avoids thread hand-offs per request",
    )
    parser.add_argument(
        "--tf-intra-op-threads", type=int, default=0, help="TF intra-op pool size (0 = TF default)"
    )
    parser.add_argument(
        "--enable-batching",
        action="store_true",
        help="merge concurrent requests to the same signature into one model call "
        "(no timeout: a request only waits while a call for it is already running; "
        "at most --threads requests can merge)",
    )
    parser.add_argument(
        "--max-batch-size", type=int, default=32, help="rows per merged call (--enable-batching)"
    )
    parser.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="do not gc.freeze() the heap after each version change (then Python's periodic "
        "full collections walk the whole model heap: ~0.2 s stalls under traffic)",
    )
