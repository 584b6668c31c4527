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
import math
import os
import struct
import sys
from collections.abc import Callable
from typing import Any

from mtrec.contracts import signatures as S
from mtrec.pseudonyms import key_from_env
from mtrec.serving.server_args import ServerConfig, add_server_arguments, at_least, seconds
from mtrec.serving.versions import MAX_VERSION

# Exit status when the reader of stdout went away (`mtrec query ... | head -1`):
# 128 + SIGPIPE, what the shell reports for `cat` or `yes` ended the same way, so
# `set -o pipefail` scripts see the same status as for those. (json.tool exits
# 32, EPIPE's errno; 141 is the usual one for a pipeline's early reader exit.)
EXIT_BROKEN_PIPE = 141

DEFAULT_PORT = ServerConfig.port  # `mtrec serve`'s, so a host alone finds it
_TARGET_EXAMPLE = f"--target 127.0.0.1:{DEFAULT_PORT}"
# `mtrec query`'s subcommands (the signatures' names with hyphens, and shorter ones).
RECOMMEND, FROM_ITEMS, SCORE = "recommend", "recommend-from-items", "score"
INTEREST, EMBED_USER, EMBED_ITEM = "interest", "embed-user", "embed-item"
METADATA, STATUS = "metadata", "status"
TOP_K_QUERIES = (RECOMMEND, FROM_ITEMS)  # answers of up to k items, titles added
ITEM_QUERIES = (*TOP_K_QUERIES, SCORE)  # answers that list items
RAW_QUERIES = (METADATA, STATUS)  # printed as the server gives them (no float rounding)
QUERY_EXAMPLES = {
    RECOMMEND: f"mtrec query {RECOMMEND} --user u1 -k 10 {_TARGET_EXAMPLE}",
    FROM_ITEMS: f"mtrec query {FROM_ITEMS} --items i1 i2 i3 -k 5 {_TARGET_EXAMPLE}",
    SCORE: f"mtrec query {SCORE} --user u1 --items i1 i2 i3 {_TARGET_EXAMPLE}",
    INTEREST: f"mtrec query {INTEREST} --user u1 {_TARGET_EXAMPLE}",
    EMBED_USER: f"mtrec query {EMBED_USER} --user u1 {_TARGET_EXAMPLE}",
    EMBED_ITEM: f"mtrec query {EMBED_ITEM} --item i1 {_TARGET_EXAMPLE}",
    METADATA: f"mtrec query {METADATA} {_TARGET_EXAMPLE}",
    STATUS: f"mtrec query {STATUS} {_TARGET_EXAMPLE}",
}


def _serve(args: argparse.Namespace) -> int:
    from mtrec.serving.server import run_server

    try:
        return run_server(args)
    # A flag the server cannot honour (--cpus, TLS files, a missing
    # --model-config-file, a port already in use): one line, not a traceback.
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """`serve`: run the embedded TF Serving-compatible server."""
    parser = subparsers.add_parser(
        "serve",
        help="serve the pushed model over TF Serving's gRPC API",
        description="Serve the latest <version> folder of --model-base-path as --model-name, "
        "or every model\nof a TF Serving --model-config-file (hot swap on new versions).",
    )
    add_server_arguments(parser)
    parser.set_defaults(func=_serve)
    return parser


# argparse type for -k (a request with k < 1 only comes back as TF's assertion text)
# and for `mtrec run`'s worker counts and `mtrec prune --keep-runs`.
positive_int = at_least(1)


def utf8_id(text: str) -> str:
    """argparse type for ids: text a request can carry as UTF-8. A terminal in another
    encoding hands Python bytes it holds as surrogates, which failed in the request's
    encoder with a traceback."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not UTF-8 text (is the terminal set to another encoding?)") from None
    return text


def grpc_target(text: str) -> str:
    """argparse type for --target: a host alone gets `mtrec serve`'s port, 8500 (gRPC
    would dial 443, where nothing answers, and the error named the host alone)."""
    if "://" in text or text.startswith("unix:"):
        return text  # a gRPC URI names what it means
    if text.startswith("["):  # an IPv6 literal, [::1] or [::1]:8500
        return text if "]:" in text else f"{text}:{DEFAULT_PORT}"
    if ":" not in text:
        return f"{text}:{DEFAULT_PORT}"
    host, port = text.rsplit(":", 1)
    if text.count(":") == 1 and not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: the port after ':' must be a number")
    if port.isdigit() and not 1 <= int(port) <= 65535:  # gRPC dialled 99999 as 34463
        raise argparse.ArgumentTypeError(f"{text!r}: a port is from 1 to 65535")
    return text


def float32_short(value: float) -> float:
    """`value`, a float32 the model answered, as the shortest decimal that reads back as
    that float32: 10.38657 rather than its float64 expansion 10.38656997680664, whose
    last digits the model never computed."""
    try:
        single = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        single = math.inf
    if math.isinf(single) and not math.isinf(value):  # beyond float32: not a model output
        return value
    for digits in range(1, 10):  # 9 significant digits always round-trip a float32
        short = float(f"{single:.{digits}g}")
        if struct.unpack("f", struct.pack("f", short))[0] == single:
            return short
    return single  # nan


def _short_floats(payload: Any) -> Any:
    if isinstance(payload, float):
        return float32_short(payload)
    if isinstance(payload, dict):
        return {key: _short_floats(value) for key, value in payload.items()}
    if isinstance(payload, list):
        return [_short_floats(value) for value in payload]
    return payload


def _print(payload: Any) -> None:
    # Titles and ids as people write them ("Léon", CJK, emoji) on a UTF-8 console; \u
    # escapes (the same JSON) where the console could not show them.
    readable = "utf" in (getattr(sys.stdout, "encoding", None) or "").lower()
    json.dump(payload, sys.stdout, indent=2, ensure_ascii=not readable)
    sys.stdout.write("\n")
    sys.stdout.flush()  # a closed pipe fails here, inside _query's handler, not at exit


def _ask(client: Any, args: argparse.Namespace) -> Any:
    """The answer to the query `args` name, as JSON-able data."""
    return _ASK[args.query](client, args)


_ASK: dict[str, Callable[[Any, argparse.Namespace], Any]] = {
    RECOMMEND: lambda client, args: client.recommend(args.user, args.k),
    FROM_ITEMS: lambda client, args: client.recommend_from_items(args.items, args.k),
    SCORE: lambda client, args: client.score(args.user, args.items),
    INTEREST: lambda client, args: client.user_interest(args.user),
    EMBED_USER: lambda client, args: {
        "user_id": args.user, "embedding": client.embed_user(args.user).tolist()},
    EMBED_ITEM: lambda client, args: {
        "item_id": args.item, "embedding": client.embed_item(args.item).tolist()},
    METADATA: lambda client, args: client.metadata(),
    STATUS: lambda client, args: client.status(),
}


def with_titles(client: Any, args: argparse.Namespace, answer: Any) -> Any:
    """A top-k or score answer whose items carry a "title" after "item_id", so a person
    can read them (one more call, describe_items); unchanged when the model has no such
    signature (pushed before it) or the query returns no items."""
    if args.query not in ITEM_QUERIES:
        return answer
    from mtrec.serving.errors import ServingError  # gRPC: only when a query runs

    try:
        titles = client.describe([it["item_id"] for it in answer["items"]])
    except ServingError:  # an older model: ids alone, as before
        return answer
    answer["items"] = [{"item_id": it["item_id"], "title": titles.get(it["item_id"], ""), **it}
                       for it in answer["items"]]
    return answer


def short_list_note(args: argparse.Namespace, answer: Any) -> str | None:
    """Why a top-k answer has fewer than k items (the user has seen, or gave, the
    rest of the catalogue; the client drops those), or None."""
    if args.query not in TOP_K_QUERIES:
        return None
    n = len(answer["items"])
    if n >= args.k:
        return None
    who = (f"for user {args.user}" if args.query == RECOMMEND
           else f"besides the {len(set(args.items))} given")  # an item given twice is one
    return f"note: only {n} unseen items {who} (asked for -k {args.k})"


def unknown_note(client: Any, args: argparse.Namespace) -> str | None:
    """Which of the query's ids the model does not know (answered as its "unknown" user
    or item, never with an error, as TF Serving would), or None."""
    asked = [("user", [args.user])] if getattr(args, "user", None) is not None else []
    items = getattr(args, "items", None) or ([args.item] if getattr(args, "item", None) else [])
    if items:
        asked.append(("item", items))
    from mtrec.serving.errors import ServingError  # gRPC: only when a query runs

    parts = []
    for kind, ids in asked:
        try:
            unknown = client.unknown(kind, ids)
        except ServingError:  # a model without the embed signatures: no note
            continue
        if unknown:
            # Quoted where the bare id would mislead: empty, spaced, or holding a comma.
            shown = ", ".join(json.dumps(u, ensure_ascii=False)
                              if not u or u != u.strip() or "," in u or " " in u else u
                              for u in unknown)
            parts.append(f"{kind}{'s' if len(unknown) > 1 else ''} {shown}")
    if not parts:
        return None
    return f"note: not in the model, answered as unknown: {'; '.join(parts)}"


# gRPC's detail for a server that answered with HTTP/1 ("... Failed parsing HTTP/2
# (Expected SETTINGS frame as the first frame, got frame type 79)", grpcio 1.6x).
HTTP1_ANSWER = "Failed parsing HTTP/2"


def error_hint(target: str, code: str, message: str) -> str:
    """A failed query's likely cause, for a person. A server without a model yet says
    so in its NOT_FOUND's details (TF Serving's code for it); any other UNAVAILABLE
    is a failed connection."""
    from mtrec.serving.errors import NO_VERSION_LEFT, NO_VERSION_YET  # gRPC: only when a query runs

    if NO_VERSION_YET in message:
        return f"error: the server at {target} has no model loaded yet ({message})"
    if NO_VERSION_LEFT in message:
        return f"error: the server at {target} has no model loaded any more ({message})"
    if code != "UNAVAILABLE":
        return f"error: {code}: {message}"
    if "resolv" in message.lower() or "Domain name not found" in message:
        return f"error: cannot find the host of {target}: {message}"
    if HTTP1_ANSWER in message:  # it said "nothing answers" to `mtrec serve`'s REST port
        return (f"error: {target} answers, but over HTTP/1, not gRPC: `mtrec query` speaks "
                "gRPC, so give the server's --port, not its --rest-port")
    return f"error: nothing answers at {target}: is `mtrec serve` running there (its --port)?"


def _stdout_closed() -> int:
    """End quietly when stdout's reader has gone (`| head -1`): its choice, not an error.

    Python's recipe (the signal module docs, "Note on SIGPIPE"): point stdout at
    devnull, so the interpreter's last flush of what is still buffered cannot
    raise BrokenPipeError again ("Exception ignored ...") on the way out.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (a test's capture)
        pass
    return EXIT_BROKEN_PIPE


def _query(args: argparse.Namespace) -> int:
    from mtrec.serving.client import MtrecClient
    from mtrec.serving.errors import ServingError

    try:
        key = key_from_env(args.pseudonymize_key_env) if args.pseudonymize_key_env else None
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        client = MtrecClient(
            args.target,
            model_name=args.model_name,
            timeout=args.timeout,
            root_cert=args.tls_root_cert,
            version=args.version,
            pseudonymize_key=key,
        )
    except OSError as err:  # --tls-root-cert's file
        print(f"error: --tls-root-cert: {err}", file=sys.stderr)
        return 2
    try:
        try:
            answer = with_titles(client, args, _ask(client, args))
        except ServingError as exc:
            _print({"error": {"code": exc.code.name, "message": exc.message}})  # for scripts
            print(error_hint(args.target, exc.code.name, exc.message), file=sys.stderr)
            return 1
        # The model's numbers at the precision it computed them; metadata and status
        # answer with the server's own fields, as they are.
        _print(answer if args.query in RAW_QUERIES else _short_floats(answer))
        for note in (unknown_note(client, args), short_list_note(args, answer)):
            if note:
                print(note, file=sys.stderr)
        return 0
    except BrokenPipeError:
        return _stdout_closed()
    finally:
        client.close()


def add_query_parser(subparsers: Any) -> argparse.ArgumentParser:
    """`query <recommend|recommend-from-items|score|interest|embed-user|embed-item|metadata|
    status>`; prints JSON."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--target", type=grpc_target, default=f"127.0.0.1:{DEFAULT_PORT}",
                        help="host:port of the server; a host alone means port "
                        f"{DEFAULT_PORT} (default: %(default)s)")
    common.add_argument("--model-name", default=S.MODEL_NAME,
                        help="the served model to ask (default: %(default)s)")
    common.add_argument("--version", type=at_least(0, MAX_VERSION), default=None,
                        help="pin a model version (default: the served one)")
    common.add_argument("--timeout", type=seconds, default=10.0,
                        help="deadline in seconds (default: %(default)s)")
    common.add_argument("--tls-root-cert", default=None, help="PEM CA to verify a TLS server")
    common.add_argument("--pseudonymize-key-env", metavar="VAR",
                        help="the env variable holding the key of a run made with "
                        "--pseudonymize-key-env: user ids are sent as their pseudonyms")

    parser = subparsers.add_parser(
        "query", help="query a running model server, print JSON",
        description="Ask a running `mtrec serve` (or TF Serving) for recommendations, scores,\n"
        "interests or embeddings; the answer is printed as JSON.",
    )
    queries = parser.add_subparsers(dest="query", required=True)

    def query(name: str, help_text: str) -> argparse.ArgumentParser:
        # Each --help ends with an example, as every other mtrec command's does.
        return queries.add_parser(
            name, parents=[common], help=help_text, description=help_text,
            epilog=f"example:\n  {QUERY_EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    k_help = "how many items; fewer come back when fewer are left (default: %(default)s)"
    user: dict[str, Any] = {"type": utf8_id, "required": True,
                            "help": "the user id, as in the training data"}
    rec = query(RECOMMEND, "top-k unseen items for a user")
    rec.add_argument("--user", **user)
    rec.add_argument("-k", type=positive_int, default=10, help=k_help)
    new = query(FROM_ITEMS, "top-k for a new user known only by these items")
    new.add_argument("--items", type=utf8_id, nargs="+", required=True,
                     help="the user's items, oldest first")
    new.add_argument("-k", type=positive_int, default=10, help=k_help)
    score = query(SCORE, "score given items for a user")
    score.add_argument("--user", **user)
    score.add_argument("--items", type=utf8_id, nargs="+", required=True,
                       help="the item ids to score")
    query(INTEREST, "a user's genre interest").add_argument("--user", **user)
    query(EMBED_USER, "a user's embedding").add_argument("--user", **user)
    query(EMBED_ITEM, "an item's embedding").add_argument("--item", type=utf8_id, required=True,
                                                            help="the item id")
    query(METADATA, "the served model's signatures, with their inputs and outputs")
    query(STATUS, "the served model's versions and their states")
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
