"""`mtrec data check`: ingestion and cleaning only, in seconds, before a run of minutes.

Reads and cleans the data exactly as `mtrec run` does (mtrec/ingest.py
`check`), writes the rejected rows to `--rejects` and prints what was kept and
rejected and why; no TensorFlow, no examples written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import pandas as pd

from mtrec.commands.options import EXAMPLE_HELP, SubParsers, fraction, open_fraction
from mtrec.contracts import features as F
from mtrec.data import DataQualityError
from mtrec.data.cleaning import (
    KEPT,
    REJECTED,
    TOTAL,
    is_implicit_feedback,
    rejected_by_reason,
    table_counts,
)
from mtrec.data.labels import like_counts, single_like_class
from mtrec.data.splits import eval_mask
from mtrec.data.tables import (
    DETAIL,
    LINE_NO,
    RATINGS,
    REASON,
    SOURCE,
    TABLE,
    distinct_genres,
    items_with_genres,
    items_with_text,
)
from mtrec.ingest import REJECTS_FILE, IngestOptions, check
from mtrec.pipeline.output_paths import file_in, unwritable
from mtrec.pseudonyms import key_from_env

DESCRIPTION = """\
Read and clean the data exactly as `mtrec run` does, in seconds and without training:
prints how many ratings were kept and rejected and why, and writes the rejected rows
to --rejects."""
EXAMPLE = """examples:
  mtrec data check --source generic --path my_ratings/
  mtrec data check --source ml-100k --path ../shared/data/ml-100k --split u1"""


def add_data_parser(sub: SubParsers, source_help: str) -> argparse.ArgumentParser:
    data = sub.add_parser("data", help="check input data without running the pipeline",
                          description="Check input data without running the pipeline.",
                          epilog=EXAMPLE)
    actions = data.add_subparsers(dest="data_command", required=True)
    p = actions.add_parser("check", help="ingest and clean only; print the rejects report",
                           description=DESCRIPTION, epilog=EXAMPLE,
                           formatter_class=EXAMPLE_HELP)
    p.add_argument("--source", default="sample", help=source_help)
    p.add_argument("--path", help="data directory (MovieLens folder or generic CSV/Parquet)")
    p.add_argument("--split", help="official split to use, e.g. u1 for ml-100k")
    p.add_argument("--eval-fraction", type=open_fraction, default=0.2,
                   help="per-user time split when the source has no official split")
    p.add_argument("--max-reject-fraction", type=fraction, default=0.5,
                   help="stop when more than this share of the ratings is rejected")
    p.add_argument("--pseudonymize-key-env", metavar="VAR",
                   help="write rejects.csv with keyed-hash user ids, as `mtrec run "
                   "--pseudonymize-key-env VAR` does, the key in env VAR")
    p.add_argument("--rejects", help=f"where to write the rejected rows; into a folder (an "
                   f"existing one, or a path ending in /) as {REJECTS_FILE} (default: a "
                   f"temporary {REJECTS_FILE}, printed)")
    p.set_defaults(func=run_check)
    return p


def report_lines(counts: dict[str, int], tables: dict[str, dict[str, int]],
                 rows: dict[str, int], split_rule: str, rejects_path: str,
                 rejects: pd.DataFrame | None = None) -> list[str]:
    """The rejects report: kept/rejected ratings by reason, per table (the users' and
    items' rejects by reason, with the first one's detail), per split."""
    reasons = rejected_by_reason(counts, nonzero=True)
    lines = [f"ratings: {counts[TOTAL]} read, {counts[KEPT]} kept, {counts[REJECTED]} rejected"]
    lines += [f"  rejected {reason}: {n}" for reason, n in sorted(reasons.items())]
    for name, c in tables.items():
        if name == RATINGS:  # the lines above, by reason
            continue
        lines.append(f"{name}: {table_counts(name, c)}")
        # "items: 9742 read, 9449 kept, 293 rejected" left the why to rejects.csv.
        if rejects is None:
            continue
        for reason, group in rejects[rejects[TABLE] == name].groupby(REASON, sort=True):
            first = group.iloc[0]
            lines.append(f"  rejected {reason}: {len(group)} (the first: {first[SOURCE]} "
                         f"line {first[LINE_NO]}: {first[DETAIL]})")
    lines.append("split: " + ", ".join(f"{name} {n}" for name, n in rows.items())
                 + f" ({split_rule})")
    lines.append(f"rejected rows: {rejects_path}")
    return lines


def run_check(args: argparse.Namespace) -> int:
    """The report, or `error: ...` and exit code 2. The rejected rows go to `--rejects`,
    or to a temporary folder that the output names; no empty folder is left."""
    problem = unwritable("--rejects", args.rejects)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    home = None if args.rejects else tempfile.mkdtemp(prefix="mtrec-data-check-")
    rejects_path = (file_in(args.rejects, REJECTS_FILE) if home is None
                    else os.path.join(home, REJECTS_FILE))
    try:
        key = key_from_env(args.pseudonymize_key_env) if args.pseudonymize_key_env else None
        checked = check(args.source, args.path, rejects_path, IngestOptions(
            split=args.split, eval_fraction=args.eval_fraction,
            max_reject_fraction=args.max_reject_fraction, pseudonymize_key=key))
    # OSError: a missing input, or a --rejects that cannot be written (permissions),
    # which was a traceback.
    except (DataQualityError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)  # it names the rejects file when there is one
        return 2
    finally:
        if home and not os.listdir(home):
            os.rmdir(home)
    if home and checked.clean.rejects.empty:  # a header-only file in /tmp, run after run
        shutil.rmtree(home, ignore_errors=True)
        rejects_path = "none (nothing was rejected)"
    lines = report_lines(checked.clean.counts, checked.clean.tables, checked.rows,
                         checked.split_rule, rejects_path, checked.clean.rejects)
    values = checked.clean.dataset.ratings[F.RATING].unique()
    if is_implicit_feedback(len(values)):  # what `mtrec run` will do with it
        lines.append(f"note: every rating is {values[0]:g} (implicit feedback): each "
                     "interaction counts as a like, and TFMA will bound only the example "
                     "count, leaving the decision to the served-path gate")
    ratings = checked.clean.dataset.ratings
    one_class = single_like_class(like_counts(
        ratings[F.RATING].to_numpy(), eval_mask(ratings, args.eval_fraction)[0]))
    if one_class and not is_implicit_feedback(len(values)):
        lines.append(f"note: the eval split has {one_class}, so the relevance AUC is "
                     "undefined: `mtrec run` will report it without bounding it, leaving "
                     "the ranking's decision to the served-path gate")
    lines += [f"note: {note}" for note in checked.clean.dataset.notes]
    tags = checked.clean.dataset.tags
    if tags is not None:
        lines.append(f"note: item descriptions are made of {len(tags)} tags, but for those "
                     "on a (user, item) pair whose rating is held out (data/tags.py)")
    items = checked.clean.dataset.items
    if not items_with_genres(items):
        lines.append("note: no item has genres, so `mtrec run` will leave the interest "
                     "task out")
    elif distinct_genres(items) == 1:
        lines.append("note: the items have one genre, so `mtrec run` will leave the "
                     "interest task out")
    if not items_with_text(items):
        lines.append("note: no item has a title, genres, a year or a description, so "
                     "`mtrec run` will leave the text encoder out")
    print("\n".join(lines))
    return 0
