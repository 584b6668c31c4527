"""`mtrec` command line: everything a user does, one flag style.

run        ingest data and run the TFX pipeline locally; writes <home>/report.html
compile    the Kubeflow Pipelines v2 / Vertex AI spec of the same pipeline
data check ingestion and cleaning only: the rejects report in seconds
report     rebuild <home>/report.html from ML Metadata and artifacts (no retraining)
serve      serve the pushed model over TF Serving's gRPC API
query      query a running model server
download   fetch a MovieLens set, sha256-checked
add-items  add new items to the served catalogue (no retraining)

Each subcommand imports what it runs inside its handler: `mtrec --help` and a
usage error answer in 0.5 s, where TensorFlow, TFMA and TFX take ~11 s to import.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from typing import TYPE_CHECKING

import mtrec  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from mtrec import stop_signals
from mtrec.commands.add_items import add_items_parser
from mtrec.commands.compile import add_compile_parser, split_beam_args
from mtrec.commands.data_check import add_data_parser
from mtrec.commands.options import (
    EXAMPLE_HELP,
    SubParsers,
    add_pipeline_options,
    check_flags,
    fraction,
    home_problem,
    open_fraction,
    pipeline_fields,
    pipeline_notes,
)
from mtrec.commands.prune import add_prune_parser
from mtrec.commands.report import add_report_parser
from mtrec.contracts import artifacts as A
from mtrec.contracts.pipeline import CATALOG_SPLIT, EVAL_SPLIT
from mtrec.data import SOURCES, DataQualityError
from mtrec.data.cleaning import KEPT
from mtrec.data.labels import single_like_class
from mtrec.ingest import IngestOptions, IngestResult, ingest
from mtrec.models.config import without_interest
from mtrec.pipeline import configs
from mtrec.pipeline.home_lock import HomeInUseError, home_lock
from mtrec.pipeline.home_paths import LocalPaths
from mtrec.prune import after_run
from mtrec.pseudonyms import key_from_env
from mtrec.run_state import latest_run
from mtrec.serving.cli import (
    QUERY_EXAMPLES,
    RECOMMEND,
    add_query_parser,
    add_serve_parser,
    positive_int,
)
from mtrec.tfma_results import RELEVANCE_AUC

if TYPE_CHECKING:  # loads TFX and TensorFlow, which `mtrec --help` must not wait for

    from mtrec.summary import RecommendedItem, RunSummary

SOURCES_HELP = " | ".join(SOURCES)
DESCRIPTION = """\
Train, check and serve a multi-task recommender (retrieval, ranking, ratings, genre
interest) built as a TFX pipeline: run it locally, compile it for Kubeflow / Vertex AI,
serve the pushed model over TF Serving's API and query it."""
DOWNLOAD_EXAMPLE = "example:\n  mtrec download ml-100k --dest ../shared/data"
RUN_EXAMPLE = """examples:
  mtrec run                                    # the embedded sample, outputs/sample/
  mtrec run --source ml-100k --path ../shared/data/ml-100k --split u1 --epochs 4
  mtrec run --relevance-auc-min 0.6 --text-encoder '{"mode": "pretrained_mlm"}'
then open <home>/report.html"""


def _add_run_parser(sub: SubParsers) -> None:
    p = sub.add_parser("run", help="ingest data and run the TFX pipeline locally (Beam)",
                       description="Read and clean the data, then train, evaluate and (when "
                       "the model passes its thresholds)\npush it with the TFX pipeline, run "
                       "locally on Beam. Prints a summary and writes\n<home>/report.html.",
                       epilog=RUN_EXAMPLE, formatter_class=EXAMPLE_HELP)
    p.add_argument("--source", default="sample", help=SOURCES_HELP)
    p.add_argument("--path", help="data directory (MovieLens folder or generic CSV/Parquet)")
    p.add_argument("--split", help="official split to use, e.g. u1 for ml-100k")
    p.add_argument("--home", help="output folder (default: outputs/<source>[-<split>])")
    p.add_argument("--workers", type=positive_int,
                   help=f"direct runner: Beam worker processes (default {configs.DIRECT_WORKERS})")
    p.add_argument("--beam-mode", choices=configs.BEAM_MODES,
                   help="direct runner: auto (default): in-process Beam below "
                   f"{configs.IN_PROCESS_MAX_ROWS:,} ratings, multi-processing above")
    p.add_argument("--beam-runner", choices=("direct", "portable"), default="direct",
                   help="direct: Beam's local FnApiRunner; portable: Beam's job service plus "
                   "an external SDK worker pool, one SDK worker per job "
                   "(how Flink/Spark/Dataflow run the Beam stages; docs/scale.md)")
    p.add_argument("--eval-fraction", type=open_fraction, default=0.2,
                   help="per-user time split when the source has no official split")
    p.add_argument("--max-reject-fraction", type=fraction, default=0.5,
                   help="stop when more than this share of the ratings is rejected")
    p.add_argument("--pseudonymize-key-env", metavar="VAR",
                   help="keyed-hash user ids with the key in env VAR (also in rejects.csv)")
    p.add_argument("--rejects-keep-raw-ids", action="store_true",
                   help="with --pseudonymize-key-env: keep raw user ids in rejects.csv (warns)")
    p.add_argument("--keep-runs", type=positive_int, metavar="N",
                   help="after the run, free older runs' artifacts as `mtrec prune --keep-runs N`"
                   " does (default: keep all; the summary suggests a prune past 500 MB)")
    add_pipeline_options(p)
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="stream library output (TF, Beam, warnings) instead of only logging it")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.beam_runner == "portable" and (args.workers or args.beam_mode):
        print("error: --workers and --beam-mode set the direct runner's processes; "
              "--beam-runner portable runs each Beam job on one SDK worker of its pool",
              file=sys.stderr)
        return 2
    default_home = os.path.join("outputs", args.source + (f"-{args.split}" if args.split else ""))
    home = args.home or default_home
    try:
        check_flags(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    problem = home_problem(home)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    for note in pipeline_notes(args):  # flags this combination leaves without effect
        print(f"note: {note}", file=sys.stderr)
    key = None
    if args.pseudonymize_key_env:
        try:
            key = key_from_env(args.pseudonymize_key_env)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    elif args.rejects_keep_raw_ids:
        print("error: --rejects-keep-raw-ids only applies with --pseudonymize-key-env",
              file=sys.stderr)
        return 2
    try:  # from before ingestion: it writes rejects.csv and the examples into the home
        with home_lock(home):
            return _run_in_home(args, home, key)
    except HomeInUseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run_in_home(args: argparse.Namespace, home: str, key: bytes | None) -> int:
    """Ingest, run the pipeline, summarise and report, holding `home`'s lock."""
    try:
        data = ingest(args.source, args.path, home, IngestOptions(
            split=args.split, eval_fraction=args.eval_fraction,
            max_reject_fraction=args.max_reject_fraction, pseudonymize_key=key,
            rejects_keep_raw_ids=args.rejects_keep_raw_ids,
        ))
    except (DataQualityError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # After ingestion, so bad input fails fast without loading TFX.
    from mtrec.console import RunConsole
    from mtrec.pipeline import beam_portable, local_runner
    from mtrec.summary import render, shown_path

    paths = LocalPaths(os.path.abspath(home))
    fields = pipeline_fields(args, dict(args.model_config))
    # One rating value (implicit feedback) leaves TFMA no labels to bound, and an eval
    # split of only likes (or none) no AUC: the pipeline decides it from the data, as
    # the Trainer decides the split protocol's settings.
    fields["thresholds"] = fields["thresholds"].for_ingest_report(data.report)
    if data.report.get(A.INGEST_ITEMS_WITH_TEXT) == 0:  # an encoder would read only " | "
        fields["text_encoder"] = None
    # No genre, or one on every item: no interest labels to learn (or none to rank).
    if data.report.get(A.INGEST_ITEMS_WITH_GENRES) == 0 or data.report.get(A.INGEST_GENRES) == 1:
        fields["model"] = without_interest(fields["model"])
    error = report_error = report_path = None
    portable = args.beam_runner == "portable"
    # Progress on the terminal, library output in <home>/logs/run.log. A stop (Ctrl-C,
    # SIGTERM) leaves no earlier run's summary.json and a report showing this run stopped.
    with stop_signals.on_stop(lambda: _show_stopped_run(home), "the stopped run's report"), \
            RunConsole(home, verbose=args.verbose) as console:
        with (beam_portable.worker_pools(1) if portable else contextlib.nullcontext()) as ports:
            settings = local_runner.settings(
                paths, examples_root=data.examples_root,
                workers=args.workers or configs.DIRECT_WORKERS, beam_mode=args.beam_mode or "auto",
                rows=data.counts[KEPT],
                runner_args=beam_portable.beam_args(ports[0])
                if ports else None,
                **fields,
            )
            try:
                local_runner.run(paths, settings, home_locked=True)
            except Exception as err:  # a component failed: LocalDagRunner re-raises it
                stop_signals.reraise_if_stopped(err)  # unless a stop signal ended it (Beam)
                error = console.failure(err)
        summary = summary_error = None
        if not error or os.path.exists(paths.metadata_path):  # else no component ran
            console.line("writing the summary and the report")
            try:
                summary = _summarise(home, paths, data,
                                     local_runner.describe_beam(settings.beam_pipeline_args))
            except Exception as err:  # the pipeline's result stands; only the summary is lost
                summary_error = f"{type(err).__name__}: {err}"
                logging.getLogger(__name__).exception("the run summary failed")
            report_path, report_error = _write_report(home)
    if summary_error:
        print(f"summary not written ({summary_error}; logs/run.log has the traceback)",
              file=sys.stderr)
    if summary is not None:
        print(render(summary))
        if report_path:
            print(f"report: {shown_path(report_path)}")
        else:
            print(f"report not written ({report_error}); rebuild it with: mtrec report {home}",
                  file=sys.stderr)
        disk = after_run(home, None if error else args.keep_runs)
        if disk:
            print(disk)
    if error:
        print(f"\npipeline failed: {error}", file=sys.stderr)
        return 1
    return 0


def _summarise(home: str, paths: LocalPaths, data: IngestResult, beam: str) -> RunSummary:
    """The run's summary (also written to <home>/summary.json), with an example
    recommendation from the pushed model. The last run's summary.json goes first, so
    that a failure here leaves no stale one for `mtrec report` to read."""
    from mtrec.summary import SUMMARY_FILE, collect, example_recommendation

    _drop_summary(home)
    summary = collect(latest_run(paths.metadata_path))
    summary["beam"] = beam
    summary["data"] = {"counts": data.counts, "rejects_path": data.rejects_path,
                       "report": data.report, "tables": data.tables, "notes": list(data.notes)}
    if single_like_class(data.report) and RELEVANCE_AUC in (summary.get("tfma") or {}):
        summary["tfma"][RELEVANCE_AUC] = None  # undefined: TFMA's 0 read as an AUC of 0
    model_dir = summary["pushed_to"]
    if model_dir:
        user = _first_eval_user(data.examples_root)
        summary["example"] = {"user_id": user, "items": example_recommendation(model_dir, user)}
        catalogue = _add_titles(summary["example"]["items"], data.examples_root)
        if not summary.get("already_served"):
            from mtrec.add_items import left_out_by_retrain  # TensorFlow: after the run

            summary["added_items_left_out"] = left_out_by_retrain(home, catalogue)
    with open(os.path.join(home, SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2, default=str)
    return summary


def _drop_summary(home: str) -> None:
    """Remove the home's summary.json (from an earlier run), if any."""
    from mtrec.summary import SUMMARY_FILE

    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(home, SUMMARY_FILE))


def _show_stopped_run(home: str) -> None:
    """After a stop: no summary.json of an earlier run for a scheduler (or `mtrec report`)
    to take for this one's, and a report that shows this run as stopped."""
    from mtrec.summary import shown_path

    _drop_summary(home)
    if not os.path.exists(LocalPaths(home).metadata_path):
        return  # stopped before the pipeline recorded anything: no run to show
    report_path, report_error = _write_report(home)
    if report_path:
        print(f"report: {shown_path(report_path)}")
    else:
        print(f"report not written ({report_error}); rebuild it with: mtrec report {home}",
              file=sys.stderr)


def _write_report(home: str) -> tuple[str | None, str | None]:
    """(report path, None), or (None, why not): the run's result stands without it."""
    from mtrec.report import write_report  # TFX: after ingestion

    try:
        return write_report(home), None
    except Exception as err:  # the report can be rebuilt with `mtrec report`
        return None, f"{type(err).__name__}: {err}"


def _split_files(examples_root: str, split: str) -> list[str]:
    from mtrec.data.artifact_io import split_files  # TensorFlow: after ingestion

    return split_files(os.path.join(examples_root, split), required=False)


def _first_eval_user(examples_root: str) -> str:
    from mtrec.data.example_records import first_users

    # No eval split: an id no one has, so the example shows what a new user gets.
    return (first_users(_split_files(examples_root, EVAL_SPLIT), 1) or ["unknown-user"])[0]


def _add_titles(items: list[RecommendedItem], examples_root: str) -> set[str]:
    """Give `items` their titles; returns every catalogue item id (one pass)."""
    from mtrec.data.example_records import catalogue

    known = catalogue(_split_files(examples_root, CATALOG_SPLIT))
    for r in items:
        r["title"] = known[r["item_id"]]["title"] if r["item_id"] in known else ""
    return set(known)


def _add_download_parser(sub: SubParsers) -> None:
    # main() hands `mtrec download ...` to data/download.py's parser, --help included.
    p = sub.add_parser("download", help="fetch a MovieLens set from GroupLens, sha256-checked",
                       description="Fetch and verify a MovieLens data set.",
                       epilog=DOWNLOAD_EXAMPLE, formatter_class=EXAMPLE_HELP)
    p.add_argument("args", nargs=argparse.REMAINDER, help="see `mtrec download --help`")
    p.set_defaults(func=_download)


def _download(args: argparse.Namespace) -> int:
    from mtrec.data.download import main

    return main(args.args, prog="mtrec download", epilog=DOWNLOAD_EXAMPLE)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtrec", description=DESCRIPTION,
                                     formatter_class=EXAMPLE_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help="INFO logging")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(sub)
    add_compile_parser(sub)
    add_data_parser(sub, SOURCES_HELP)
    add_report_parser(sub)
    add_serve_parser(sub).epilog = SERVE_EXAMPLE
    add_query_parser(sub).epilog = QUERY_EXAMPLE
    _add_download_parser(sub)
    add_items_parser(sub)
    add_prune_parser(sub)
    for command in sub.choices.values():
        command.formatter_class = EXAMPLE_HELP
    return parser


SERVE_EXAMPLE = """example:
  mtrec serve --model-base-path outputs/sample/serving_model/mtrec --port 8500"""
# The sample's ids (u1), as each query's own --help: "42" is no user of the sample.
QUERY_EXAMPLE = f"example:\n  {QUERY_EXAMPLES[RECOMMEND]}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["download"]:  # its own parser reads the rest, --help included
        return _download(argparse.Namespace(args=argv[1:]))
    beam_args = None
    if "compile" in argv[: argv.index("--") if "--" in argv else None]:
        # `mtrec compile ... -- BEAM ARGS`: Beam's own flags, passed on unparsed.
        argv, beam_args = split_beam_args(argv)
    args = build_parser().parse_args(argv)
    if beam_args is not None:
        args.beam_args = beam_args
    # TensorFlow's C++ start-up chatter (repeated by every Beam worker) buries
    # the summary; Python exceptions still carry every real error.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1" if args.verbose else "3"
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # `run`, `add-items`: SIGTERM (a scheduler's cancel) stops them as Ctrl-C does
    # (stop_signals.py), so what they clean up on the way out goes (add-items' work folder).
    stoppable = args.command in ("run", "add-items")
    try:
        with stop_signals.handled() if stoppable else contextlib.nullcontext():
            return int(args.func(args) or 0)
    except KeyboardInterrupt as stop:  # one line, not the traceback of wherever it landed
        # Not after a change to the pipeline's code: that run's re-run goes without the
        # cache until one finishes (pipeline/code_version.py), and says so.
        again = (" (run it again to resume: finished components come from the cache, "
                 "unless mtrec's code changed since the last finished run)"
                 if args.command == "run" else "")
        print(f"\n{stop_signals.stop_line(stop)}{again}", file=sys.stderr)
        return stop_signals.exit_code(stop)



if __name__ == "__main__":
    sys.exit(main())
