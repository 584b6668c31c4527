"""The `serve` flags and the ServerConfig they make, kept free of heavy imports so CLI
parsing stays fast."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, fields

from mtrec.contracts import signatures as S
from mtrec.serving.affinity import parse_cpus

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
# RequestLimits' defaults too (serving/signature.py imports them from here: no TF import).
DEFAULT_MAX_REQUEST_ROWS = 8192
DEFAULT_MAX_REQUEST_ELEMENTS = 1 << 20
# (user, item) pairs one request may have the pair heads score (serving/request_checks.py):
# recommend's and recommend_from_items' rows x max(100, 4k) candidates (at most the
# catalogue), score's rows x item ids. Peak RSS growth of one call on the sample model
# (800 items; 2026-12-07, one inter-op thread as served): recommend 1000 rows x k = 10
# (100,000 pairs) +298 MB, k = 50 +607 MB, k = 100 +1,254 MB, k = 200 +2,525 MB; at this
# budget: 2,621 rows x k = 25 +776 MB, 655 x k = 100 +783 MB, 327 x k = 800 +964 MB,
# recommend_from_items 655 x k = 100 +689 MB, score 262 x 1,000 items +882 MB and
# 2,621 x 100 +825 MB; unbounded, 8,192 rows at k = 800 took 21.8 GB. It passes what the
# repo sends (the RetrievalEvaluator's 1,024 users at k = 10: 102,400 pairs; served
# metrics' 512 at k = 50: 102,400; quality.py's score batches of 32,768 pairs).
DEFAULT_MAX_REQUEST_PAIRS = 1 << 18


@dataclass
class ServerConfig:
    """Everything `mtrec serve` can set; defaults are the safe ones (loopback, no TLS)."""

    # Exactly one: the folder of the version folders (served as `model_name`),
    # or a TF Serving models.config naming several models.
    model_base_path: str | None = None
    model_name: str = S.MODEL_NAME
    model_config_file: str | None = None
    host: str = "127.0.0.1"
    port: int = 8500  # 0 picks a free port (tests)
    rest_port: int | None = None  # None disables REST; 0 picks a free port
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None  # set to require client certificates (mTLS)
    poll_seconds: float = 1.0
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    # Per request, checked on the declared shapes (serving/signature.py RequestLimits).
    max_request_rows: int = DEFAULT_MAX_REQUEST_ROWS
    max_request_elements: int = DEFAULT_MAX_REQUEST_ELEMENTS
    max_request_pairs: int = DEFAULT_MAX_REQUEST_PAIRS
    threads: int = 8
    warmup: bool = True
    batching: bool = False  # merge concurrent requests per signature (see batching.py)
    max_batch_size: int = 32
    # Small signatures run fastest with ops executed by a single inter-op thread
    # (no hand-offs); request concurrency comes from the RPC threads. 0 = TF default.
    tf_inter_op_threads: int = 1
    tf_intra_op_threads: int = 0
    # Full GC once per version change, then gc.freeze() (see ModelManager).
    freeze_gc: bool = True
    # CPU ids every server thread is pinned to (serving/affinity.py); None = all.
    cpus: tuple[int, ...] | None = None


_DEFAULTS = ServerConfig()  # the flags' defaults: one set, the dataclass's


def _cpu_list(text: str) -> tuple[int, ...]:
    try:
        return parse_cpus(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _port(text: str) -> int:
    """argparse type for a TCP port: gRPC took 99999 as 99999 % 65536 (34463) and served there."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value}: a port is 0..65535 (0 picks a free one)")
    return value


def at_least(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """argparse type for a count from `minimum` up (to `maximum`): `--threads 0` failed in
    gRPC as "max_workers must be greater than 0", and a negative limit or TF pool size was
    taken as given; also `mtrec query -k` and the run's worker counts (positive_int), and
    `mtrec query --version` (an int64: a larger one was a traceback from protobuf)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value}: must be {minimum} or more")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{value}: must be {maximum} or less")
        return value
    return parse


def seconds(text: str) -> float:
    """argparse type for --poll-seconds and `mtrec query --timeout`: above 0 (a negative
    one was taken as given, and a query's ended in DEADLINE_EXCEEDED)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value}: must be above 0")
    return value


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
        "--model-name", default=_DEFAULTS.model_name,
        help="the name --model-base-path is served under",
    )
    parser.add_argument(
        "--host", default=_DEFAULTS.host,
        help="bind address; loopback by default, 0.0.0.0 to expose",
    )
    parser.add_argument("--port", type=_port, default=_DEFAULTS.port, help="gRPC port")
    parser.add_argument(
        "--rest-port", type=_port, default=_DEFAULTS.rest_port,
        help="also serve TF Serving's REST API on this port",
    )
    parser.add_argument("--tls-cert", help="PEM server certificate (enables TLS)")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument("--tls-client-ca", help="PEM CA bundle; require client certs (mTLS)")
    parser.add_argument(
        "--poll-seconds", type=seconds, default=_DEFAULTS.poll_seconds,
        help="how often to look for new versions",
    )
    parser.add_argument(
        "--max-request-bytes",
        type=at_least(1),
        default=_DEFAULTS.max_request_bytes,
        help="larger requests get RESOURCE_EXHAUSTED",
    )
    parser.add_argument(
        "--max-request-rows",
        type=at_least(0),
        default=_DEFAULTS.max_request_rows,
        help="larger batches (dim 0 of an input) get INVALID_ARGUMENT before the model runs: "
        "a few MB of user ids can ask for tens of GB of model memory (0 = no limit; "
        "default: %(default)s)",
    )
    parser.add_argument(
        "--max-request-elements",
        type=at_least(0),
        default=_DEFAULTS.max_request_elements,
        help="most elements one input tensor may declare (0 = no limit; default: %(default)s)",
    )
    parser.add_argument(
        "--max-request-pairs",
        type=at_least(0),
        default=_DEFAULTS.max_request_pairs,
        help="most (user, item) pairs one request may have the model score: recommend's and "
        "recommend_from_items' rows x max(100, 4k) candidates (at most the catalogue), score's "
        "rows x item ids; about 3 KB each on the sample model; retrieve's rows x catalogue "
        "similarity scores count 768 to a pair (0 = no limit; default: %(default)s, under 1 "
        "GB)",
    )
    parser.add_argument("--threads", type=at_least(1), default=_DEFAULTS.threads,
                        help="RPC worker threads")
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip replaying assets.extra/tf_serving_warmup_requests",
    )
    parser.add_argument(
        "--tf-inter-op-threads",
        type=at_least(0),
        default=_DEFAULTS.tf_inter_op_threads,
        help="TF inter-op pool size (0 = TF default); 1 avoids thread hand-offs per request",
    )
    parser.add_argument(
        "--tf-intra-op-threads", type=at_least(0), default=_DEFAULTS.tf_intra_op_threads,
        help="TF intra-op pool size (0 = TF default)"
    )
    parser.add_argument(
        "--enable-batching",
        action="store_true",
        help="merge concurrent requests to the same signature into one model call "
        "(no timeout: a request only waits while a call for it is already running; "
        "at most --threads requests can merge)",
    )
    parser.add_argument(
        "--max-batch-size", type=at_least(1), default=_DEFAULTS.max_batch_size,
        help="rows per merged call (--enable-batching)"
    )
    parser.add_argument(
        "--cpus",
        type=_cpu_list,
        default=_DEFAULTS.cpus,
        help="pin every server thread to these CPU ids, e.g. 0 or 0-3 (Linux); on a shared "
        "host, cores of the server's own keep its request path on warm caches",
    )
    parser.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="do not gc.freeze() the heap after each version change (then Python's periodic "
        "full collections walk the whole model heap: ~0.2 s stalls under traffic)",
    )


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The flags as a ServerConfig: each field from the flag of its name, except the
    three that are spelled as negations or differently on the command line."""
    renamed = {"warmup": not args.no_warmup, "batching": args.enable_batching,
               "freeze_gc": not args.no_gc_freeze}
    same = {f.name: getattr(args, f.name) for f in fields(ServerConfig)
            if f.name not in renamed}
    return ServerConfig(**same, **renamed)
