"""`mtrec add-items --home HOME --items FILE`: new items into the served catalogue.

What it does is in mtrec/add_items.py (TensorFlow); this module is the command line,
which refuses a bad file or home in a second, before TensorFlow loads.
"""

from __future__ import annotations

import argparse
import os
import sys

from mtrec.commands.options import EXAMPLE_HELP, SubParsers, run_home_problem
from mtrec.contracts import artifacts as A
from mtrec.contracts import features as F
from mtrec.items_file import read_given_items
from mtrec.pipeline.home_lock import HomeInUseError, home_lock
from mtrec.run_state import latest_pushed_run, nothing_pushed


def add_items_parser(sub: SubParsers) -> None:
    p = sub.add_parser("add-items", help="add new items to the served catalogue (no retraining)",
                       description="Embed new items with the served model's trained towers "
                       "and text encoder, and push\na new version whose catalogue holds them "
                       "(and those earlier add-items calls gave the\nsame model). Known items "
                       "are unchanged; an id the model was trained on is an error.",
                       epilog="example:\n  mtrec add-items --home outputs/sample "
                       "--items new_items.csv", formatter_class=EXAMPLE_HELP)
    p.add_argument("--home", default=os.path.join("outputs", "sample"),
                   help="the `mtrec run` output folder (default: outputs/sample)")
    p.add_argument("--items", required=True,
                   help="CSV, .parquet or .jsonl: item_id,title,genres (|-separated),"
                   "description,year")
    p.set_defaults(func=run_add_items)


def items_file_problem(path: str) -> str | None:
    """Why `path` cannot be an --items CSV, or None: checked before TensorFlow loads."""
    if os.path.isdir(path):
        return f"{path}: is a folder, not a CSV file"
    if not os.path.isfile(path):
        return f"{path}: no such file"
    if os.path.getsize(path) == 0:
        return f"{path}: empty file, need a header line such as {F.ITEM_ID},{F.TITLE}"
    return None


def run_add_items(args: argparse.Namespace) -> int:
    problem = items_file_problem(args.items)
    read = None
    if not problem:
        try:  # the file first: a bad one is refused in a second, before TensorFlow loads
            read = read_given_items(args.items)
        except ValueError as err:
            problem = str(err)
    problem = problem or run_home_problem(args.home)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        with home_lock(args.home):  # a run in the home refuses this in a second
            if not latest_pushed_run(os.path.join(args.home, A.MLMD_FILE)):
                raise FileNotFoundError(nothing_pushed(args.home))
            from mtrec.add_items import add_items  # TensorFlow: after the checks

            add_items(args.home, args.items, home_locked=True, read=read)
    except (FileNotFoundError, ValueError, HomeInUseError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
