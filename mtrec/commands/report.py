"""`mtrec report HOME`: rebuild `<HOME>/report.html` from ML Metadata and artifacts.

No retraining: everything comes from what the run recorded (mtrec/report/).
"""

from __future__ import annotations

import argparse
import logging
import sys

from mtrec.commands.options import EXAMPLE_HELP, SubParsers, run_home_problem
from mtrec.pipeline.output_paths import unwritable
from mtrec.report import cannot_write, write_report

EXAMPLE = """examples:
  mtrec report outputs/sample              # writes outputs/sample/report.html
  mtrec report outputs/ml-100k-u1 --output /tmp/u1.html"""


def add_report_parser(sub: SubParsers) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="rebuild a run's report.html (no retraining)",
                       description="Rebuild HOME/report.html from what `mtrec run` recorded "
                       "(ML Metadata and\nartifacts), without retraining.",
                       epilog=EXAMPLE, formatter_class=EXAMPLE_HELP)
    p.add_argument("home", help="the `mtrec run` output folder (holds metadata.sqlite)")
    p.add_argument("--output", help="where to write the page, creating missing folders; "
                   "into a folder (an existing one, or a path ending in /) as report.html "
                   "(default: HOME/report.html)")
    p.set_defaults(func=run_report)
    return p


def run_report(args: argparse.Namespace) -> int:
    problem = (run_home_problem(args.home) or unwritable("--output", args.output)
               or cannot_write(args.home, args.output))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    # TFMA's reader logs a TensorFlow deprecation notice on every run: not the user's news.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        path = write_report(args.home, args.output)  # TensorFlow, TFMA: loaded here
    except OSError as err:  # a missing artifact, a folder it may not write to
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
