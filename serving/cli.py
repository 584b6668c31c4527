"""`mtrec serve` and `mtrec query ...` sub-commands.

`mtrec/cli.py` owns the top-level parser and calls `add_serve_parser` /
`add_query_parser` on its sub-parsers; each sets `func`, which returns an exit
code. Heavy imports (TensorFlow, gRPC stubs) happen inside the handlers so
that `mtrec --help` stays fast. `main()` here is a stand-alone entry for
`python -m mtrec.serving.cli`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _serve(args: argparse.Namespace) -> int:
    from mtrec.serving.server import run_server

    try:
        return run_server(args)
    except ValueError as err:  # a flag the server cannot honour (--cpus, TLS files)
        print(f"error: {err}", file=sys.stderr)
        return 2


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """`serve`: run the embedded TF Serving-compatible server."""
    from mtrec.serving.server_args import add_server_arguments

    parser = subparsers.add_parser(
        "serve",
        help="serve the pushed model over TF Serving's gRPC API",
        description="Serve the latest <version> folder of --model-base-path as --model-name, "
        "or every model of a TF Serving --model-config-file (hot swap on new versions).",
    )
    add_server_arguments(parser)
    parser.set_defaults(func=_serve)
    return parser


def _print(payload: Any) -> None:
    json.dump(payload, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _query(args: argparse.Namespace) -> int:
    from mtrec.serving.client import MtrecClient
    from mtrec.serving.errors import ServingError

    client = MtrecClient(
        args.target,
        model_name=args.model_name,
        timeout=args.timeout,
        root_cert=args.tls_root_cert,
        version=args.version,
    )
    try:
        if args.query == "recommend":
            _print(client.recommend(args.user, args.k))
        elif args.query == "recommend-from-items":
            _print(client.recommend_from_items(args.items, args.k))
        elif args.query == "score":
            _print(client.score(args.user, args.items))
        elif args.query == "interest":
            _print(client.user_interest(args.user))
        elif args.query == "embed-user":
            _print({"user_id": args.user, "embedding": client.embed_user(args.user).tolist()})
        elif args.query == "embed-item":
            _print({"item_id": args.item, "embedding": client.embed_item(args.item).tolist()})
        elif args.query == "metadata":
            _print(client.metadata())
        elif args.query == "status":
            _print(client.status())
        else:  # argparse keeps this unreachable
            raise ValueError(args.query)
    except ServingError as exc:
        _print({"error": {"code": exc.code.name, "message": exc.message}})  # for scripts
        if exc.code.name == "UNAVAILABLE":  # and for a person, the likely cause
            print(f"error: nothing answers at {args.target}: is `mtrec serve` running "
                  "there (its --port)?", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


def add_query_parser(subparsers: Any) -> argparse.ArgumentParser:
    """`query <recommend|recommend-from-items|score|interest|embed-user|embed-item|metadata|
    status>`; prints JSON."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--target", default="127.0.0.1:8500", help="host:port of the server")
    common.add_argument("--model-name", default="mtrec")
    common.add_argument("--version", type=int, default=None, help="pin a model version")
    common.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds")
    common.add_argument("--tls-root-cert", default=None, help="PEM CA to verify a TLS server")

    parser = subparsers.add_parser("query", help="query a running model server, print JSON")
    queries = parser.add_subparsers(dest="query", required=True)
    rec = queries.add_parser("recommend", parents=[common], help="top-k items for a user")
    rec.add_argument("--user", required=True)
    rec.add_argument("-k", type=int, default=10)
    new = queries.add_parser("recommend-from-items", parents=[common],
                             help="top-k for a new user known only by these items")
    new.add_argument("--items", nargs="+", required=True, help="the user's items, oldest first")
    new.add_argument("-k", type=int, default=10)
    score = queries.add_parser("score", parents=[common], help="score given items for a user")
    score.add_argument("--user", required=True)
    score.add_argument("--items", nargs="+", required=True)
    interest = queries.add_parser("interest", parents=[common], help="a user's genre interest")
    interest.add_argument("--user", required=True)
    eu = queries.add_parser("embed-user", parents=[common], help="a user's embedding")
    eu.add_argument("--user", required=True)
    ei = queries.add_parser("embed-item", parents=[common], help="an item's embedding")
    ei.add_argument("--item", required=True)
    queries.add_parser("metadata", parents=[common], help="signature defs")
    queries.add_parser("status", parents=[common], help="version states")
    parser.set_defaults(func=_query)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mtrec")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_serve_parser(subparsers)
    add_query_parser(subparsers)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
