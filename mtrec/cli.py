"""`mtrec` command line: run the pipeline, fetch data, serve and query models."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

import mtrec  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from mtrec.pipeline import configs


def _add_run_parser(sub) -> None:
    p = sub.add_parser("run", help="ingest data and run the TFX pipeline locally (Beam)")
    p.add_argument("--source", default="sample",
                   help="sample | synthetic | ml-100k | ml-latest-small | ml-1m | generic")
    p.add_argument("--path", help="data directory (MovieLens folder or generic CSV/Parquet)")
    p.add_argument("--split", help="official split to use, e.g. u1 for ml-100k")
    p.add_argument("--home", help="output folder (default: outputs/<source>[-<split>])")
    p.add_argument("--epochs", type=int, help="training epochs")
    p.add_argument("--model-config", default="{}", help="JSON overrides of ModelConfig")
    p.add_argument("--workers", type=int, default=2, help="Beam DirectRunner workers")
    p.add_argument("--beam-mode", default="auto", choices=configs.BEAM_MODES,
                   help="auto: in-process Beam below "
                   f"{configs.IN_PROCESS_MAX_ROWS:,} ratings, multi-processing above")
    p.add_argument("--eval-fraction", type=float, default=0.2,
                   help="per-user time split when the source has no official split")
    p.add_argument("--max-reject-fraction", type=float, default=0.5)
    p.add_argument("--pseudonymize-key-env", metavar="VAR",
                   help="keyed-hash user ids with the key in env VAR (also in rejects.csv)")
    p.add_argument("--rejects-keep-raw-ids", action="store_true",
                   help="with --pseudonymize-key-env: keep raw user ids in rejects.csv (warns)")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="stream library output (TF, Beam, warnings) instead of only logging it")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mtrec.data import DataQualityError
    from mtrec.ingest import ingest

    default_home = os.path.join("outputs", args.source + (f"-{args.split}" if args.split else ""))
    home = args.home or default_home
    key = None
    if args.pseudonymize_key_env:
        key = os.environ.get(args.pseudonymize_key_env, "").encode()
        if not key:
            print(f"error: env {args.pseudonymize_key_env} is empty", file=sys.stderr)
            return 2
    try:
        data = ingest(
            args.source, args.path, home, split=args.split, eval_fraction=args.eval_fraction,
            max_reject_fraction=args.max_reject_fraction, pseudonymize_key=key,
            rejects_keep_raw_ids=args.rejects_keep_raw_ids,
        )
    except (DataQualityError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # After ingestion, so bad input fails fast without loading TFX.
    from mtrec.console import RunConsole
    from mtrec.pipeline import local_runner
    from mtrec.run_state import latest_run
    from mtrec.summary import collect, example_recommendation, render

    paths = local_runner.LocalPaths(os.path.abspath(home))
    error = None
    # Progress on the terminal, library output in <home>/logs/run.log.
    with RunConsole(home, verbose=args.verbose) as console:
        model_config = run_model_config(data.report, args.model_config, args.epochs)
        try:
            local_runner.run(
                paths, examples_root=data.examples_root, model_config=model_config,
                workers=args.workers, enable_cache=not args.no_cache,
                beam_mode=args.beam_mode, rows=data.counts["kept"],
            )
        except Exception as err:  # a component failed: LocalDagRunner re-raises it
            error = console.failure(err)
        summary = collect(latest_run(paths.metadata_path))
        summary["data"] = {"counts": data.counts, "rejects_path": data.rejects_path,
                           "report": data.report, "tables": data.tables}
        model_dir = summary["pushed_to"]
        if model_dir:
            user = data.report.get("example_user") or _first_eval_user(data.examples_root)
            summary["example"] = {"user_id": user,
                                  "items": example_recommendation(model_dir, user)}
            _add_titles(summary["example"]["items"], data.examples_root)
        with open(os.path.join(home, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2, default=str)
    print(render(summary))
    if error:
        print(f"\npipeline failed: {error}", file=sys.stderr)
        return 1
    return 0


def run_model_config(report: dict, model_config_json: str, epochs: int | None) -> dict:
    """The Trainer's ModelConfig overrides: the split protocol's settings, then the user's.

    `report` is write_examples' (its split_protocol), so `mtrec run` trains
    what benchmarks/quality.py measures on the same split.
    """
    from mtrec.models.model import protocol_overrides  # TensorFlow: after ingestion

    config = {**protocol_overrides(report.get("split_protocol")), **json.loads(model_config_json)}
    if epochs:
        config["epochs"] = epochs
    return config


def _examples(examples_root: str, split: str):
    import glob

    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(examples_root, split, "*")))
    return tf.data.TFRecordDataset(files, compression_type="GZIP")


def _first_eval_user(examples_root: str) -> str:
    import tensorflow as tf

    for record in _examples(examples_root, "eval").take(1):
        example = tf.train.Example.FromString(record.numpy())
        return example.features.feature["user_id"].bytes_list.value[0].decode()
    return "unknown-user"


def _add_titles(items: list[dict], examples_root: str) -> None:
    import tensorflow as tf

    wanted = {r["item_id"] for r in items}
    titles = {}
    for record in _examples(examples_root, "catalog"):
        f = tf.train.Example.FromString(record.numpy()).features.feature
        item = f["item_id"].bytes_list.value[0].decode()
        if item in wanted:
            titles[item] = f["title"].bytes_list.value[0].decode()
    for r in items:
        r["title"] = titles.get(r["item_id"], "")


def _add_download_parser(sub) -> None:
    p = sub.add_parser("download", help="fetch a MovieLens set from GroupLens, sha256-checked")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=lambda a: __import__("mtrec.data.download", fromlist=["main"]).main(a.args))


def _add_items_parser(sub) -> None:
    p = sub.add_parser("add-items", help="add new items to the served catalogue (no retraining)")
    p.add_argument("--home", default=os.path.join("outputs", "sample"),
                   help="the `mtrec run` output folder")
    p.add_argument("--items", required=True,
                   help="CSV: item_id,title,genres (|-separated),description,year")
    p.set_defaults(func=_add_items)


def _add_items(args) -> int:
    from mtrec.add_items import add_items

    add_items(args.home, args.items)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtrec", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="INFO logging")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(sub)
    _add_download_parser(sub)
    _add_items_parser(sub)
    from mtrec.serving.cli import add_query_parser, add_serve_parser

    add_serve_parser(sub)
    add_query_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # TensorFlow's C++ start-up chatter (repeated by every Beam worker) buries
    # the summary; Python exceptions still carry every real error.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1" if args.verbose else "3"
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
