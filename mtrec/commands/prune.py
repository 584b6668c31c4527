"""`mtrec prune HOME`: remove older runs' artifacts, keeping what runs and serving need.

What stays and why is in mtrec/prune.py; this module is the command line.
"""

from __future__ import annotations

import argparse
import sys

from mtrec.commands.options import EXAMPLE_HELP, SubParsers, run_home_problem
from mtrec.pipeline.home_lock import HomeInUseError
from mtrec.prune import prune
from mtrec.serving.cli import positive_int

EXAMPLE = """examples:
  mtrec prune outputs/sample --dry-run     # what it would remove, and how much
  mtrec prune outputs/sample               # keep the latest run and the served model's
  mtrec prune outputs/ml-100k-u1 --keep-runs 3"""


def add_prune_parser(sub: SubParsers) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "prune", help="free the disk older runs' artifacts hold (keeps what is served)",
        description="Remove the artifacts of a home's older runs, and their served versions,\n"
        "as TFX's local runner never does. Kept: the newest runs (--keep-runs), the run\n"
        "that pushed the served model, the newest served version, and whatever the kept\n"
        "runs read (cached outputs, the baseline model). Removed artifacts are marked\n"
        "DELETED in ML Metadata, so a later run recomputes them rather than reusing them.",
        epilog=EXAMPLE, formatter_class=EXAMPLE_HELP)
    p.add_argument("home", help="the `mtrec run` output folder (holds metadata.sqlite)")
    p.add_argument("--keep-runs", type=positive_int, default=1, metavar="N",
                   help="keep the newest N runs' artifacts (default: 1)")
    p.add_argument("--dry-run", action="store_true",
                   help="say what would be removed, and remove nothing")
    p.set_defaults(func=run_prune)
    return p


def run_prune(args: argparse.Namespace) -> int:
    problem = run_home_problem(args.home)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        found = prune(args.home, args.keep_runs, dry_run=args.dry_run)
    except HomeInUseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(found.describe(dry_run=args.dry_run))
    return 0
