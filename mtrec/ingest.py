"""Load -> check -> clean -> (pseudonymise) -> write examples, before ExampleGen runs.

Examples land in a content-addressed folder (`examples/<digest>/`): the same
cleaned data and options always give the same folder, so ExampleGen and
everything after it come from the TFX cache on a re-run, and a change of data
gives a new folder instead of overwriting files an earlier run used.

`home/rejects.csv` is written on every run that gets as far as reading the
data, also when it then stops for too many rejects or too little data. Under
pseudonymisation it carries pseudonyms, raw user ids only when asked for.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from mtrec.contracts.artifacts import EXAMPLES_DIR, INGEST_REPORT_FILE
from mtrec.data import DataQualityError, clean, load_dataset, pseudonymize_users, write_rejects
from mtrec.data.checks import check_split, check_tables
from mtrec.data.cleaning import DATA_FREE_DETAILS, REJECTED, CleanResult, first_rating_reject
from mtrec.data.digest import dataset_digest, examples_code
from mtrec.data.header_hints import HeaderError
from mtrec.data.privacy import pseudonymize_rejects, raw_user_ids

REJECTS_FILE = "rejects.csv"
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class IngestResult:
    examples_root: str
    rejects_path: str
    counts: dict  # ratings: per-reason reject counts, TOTAL, KEPT, REJECTED (data.cleaning)
    report: dict  # rows per split, users, items (from write_examples)
    tables: dict = dataclasses.field(default_factory=dict)  # per table: rows, kept, rejected...
    notes: tuple[str, ...] = ()  # what was read otherwise than the format says (Dataset)


def _write_rejects(
    rejects: pd.DataFrame, path: str, key: bytes | None, raw_ids: set[str], keep_raw: bool
) -> pd.DataFrame:
    """Writes the rejects (pseudonymised when asked); returns what was written."""
    if key and not keep_raw:
        rejects = pseudonymize_rejects(rejects, key, raw_ids, DATA_FREE_DETAILS)
    write_rejects(rejects, path)
    return rejects


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """What `check` found: the cleaned data, its counts and the rows per split."""

    clean: CleanResult
    rejects_path: str
    rows: dict[str, int]  # TRAIN, EVAL: ratings per split
    split_rule: str  # how the eval rows were chosen (data/splits.py eval_mask)


@dataclasses.dataclass(frozen=True)
class IngestOptions:
    """How `check` and `ingest` read, clean and split: one list for both."""

    split: str | None = None  # a named split of the source (ML-100K u1..u5)
    eval_fraction: float = 0.2
    max_reject_fraction: float = 0.5
    pseudonymize_key: bytes | None = None
    rejects_keep_raw_ids: bool = False


def check(
    source: str, path: str | None, rejects_path: str,
    options: IngestOptions = IngestOptions(),
) -> CheckResult:
    """Load, check and clean; write the rejected rows to `rejects_path`. No TensorFlow,
    seconds.

    `mtrec data check` stops here; `ingest` goes on to write examples. Raises
    as `ingest` does.
    """
    key, keep_raw = options.pseudonymize_key, options.rejects_keep_raw_ids
    try:
        loaded = load_dataset(source, path, options.split)
    except HeaderError as err:  # a file without a header row shows a user's data there
        if key and not keep_raw:
            raise ValueError(err.withheld()) from None
        raise
    check_tables(loaded)
    raw_ids = raw_user_ids(loaded) if key else set()
    try:
        result = clean(loaded, max_reject_fraction=options.max_reject_fraction)
    except DataQualityError as err:
        if err.rejects is None:
            raise
        written = _write_rejects(err.rejects, rejects_path, key, raw_ids, keep_raw)
        first = first_rating_reject(written)  # as written: pseudonymised when asked
        raise DataQualityError(f"{err}; the first: {first}; the rejected rows are in "
                               f"{rejects_path}") from err
    # As written: `mtrec data check` prints the first of each kind.
    written = _write_rejects(result.rejects, rejects_path, key, raw_ids, keep_raw)
    result = dataclasses.replace(result, rejects=written)
    rows, rule, note = check_split(result.dataset, options.eval_fraction, rejects_path,
                                   result.counts[REJECTED])
    if note:  # said where the data notes are (data check, summary, report)
        dataset = dataclasses.replace(result.dataset, notes=(*result.dataset.notes, note))
        result = dataclasses.replace(result, dataset=dataset)
    return CheckResult(result, rejects_path, rows, rule)


def ingest(
    source: str, path: str | None, home: str, options: IngestOptions = IngestOptions()
) -> IngestResult:
    """Prepare `home/examples/<digest>/{train,eval,catalog}` and `home/rejects.csv`.

    Raises ValueError subclasses, after writing rejects.csv where there are
    rows to show: DataQualityError for too many rejected ratings,
    checks.InsufficientDataError for no train or eval rows or a users/items
    table matching no rating, and ValueError for an empty pseudonymisation key.
    """
    from mtrec.data.examples import write_examples  # needs TensorFlow

    key, eval_fraction = options.pseudonymize_key, options.eval_fraction
    if key is not None and not key:
        raise ValueError("pseudonymize_key is empty; pass None to keep raw user ids")
    if options.rejects_keep_raw_ids and key:
        log.warning("rejects.csv keeps raw user ids (rejects_keep_raw_ids): it holds "
                    "personal data the pipeline artifacts do not")
    checked = check(source, path, os.path.join(home, REJECTS_FILE), options)
    result, rejects_path = checked.clean, checked.rejects_path
    dataset = result.dataset
    if key:
        dataset = pseudonymize_users(dataset, key)
    # "report": bump when write_examples' report gains a key, so cached folders are
    # rewritten, or when the pipeline starts reading one: at 3 its ExampleGens record
    # split_protocol, and a new folder makes a home's cached ExampleGen outputs, which
    # lack it, run again instead of training without the protocol's settings. At 4 it
    # counts the items with genres and the rating values (the TFMA bounds read it); at 5
    # the items with text (none: the run leaves the text encoder out).
    # "code": the code that writes the examples (splits, features, encoding), so a
    # change to it writes a new folder rather than reusing one written the old way.
    digest_options = {"eval_fraction": eval_fraction, "pseudonymized": bool(key), "report": 5,
                      "code": examples_code()}
    target = Path(home, EXAMPLES_DIR, dataset_digest(dataset, digest_options))
    if not (target / INGEST_REPORT_FILE).exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=target.parent))
        try:
            write_examples(dataset, staging, eval_fraction=eval_fraction)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    report = json.loads((target / INGEST_REPORT_FILE).read_text())
    return IngestResult(str(target), rejects_path, dict(result.counts), report,
                        dict(result.tables), dataset.notes)
