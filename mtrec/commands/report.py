"""`mtrec report HOME`: rebuild `<HOME>/report.html` from ML Metadata and artifacts.

No retraining: everything comes from what the run recorded (mtrec/report/).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from mtrec.commands.options import EXAMPLE_HELP, SubParsers, run_home_problem
from mtrec.pipeline.home_lock import in_use
from mtrec.pipeline.output_paths import unwritable
from mtrec.report import REPORT_FILE, cannot_write, write_report

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
    running = not problem and in_use(args.home)
    if running and not args.output:
        # The page would show the run's finished components as the latest run's and
        # "nothing pushed: the run stopped before the Pusher", and the run overwrites
        # HOME/report.html when it ends.
        problem = (f"a run is in progress in {args.home}: it writes "
                   f"{os.path.join(args.home, REPORT_FILE)} when it ends (`--output FILE` "
                   "writes a page now, with that run unfinished)")
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
    print(f"wrote {path}" + (" (a run is in progress: the page shows it unfinished)"
                             if running else ""))
    return 0
