"""Loader for the generic CSV/Parquet/JSON Lines directory format (also the embedded
sample's format).

Lets any interaction log feed the pipeline without writing a loader.

Directory layout (CSV: UTF-8 with or without a byte order mark, comma-separated,
a header row, standard double-quote quoting (a quoted field may hold line breaks,
except in ratings), LF or CRLF; Parquet, and JSON Lines (`.jsonl`, one object per
line: data/json_lines.py): the same column names):

* ``ratings.csv`` (or ``.csv.gz``) or ``ratings.parquet`` (required), one row per
  rating event:
  - ``user_id``   (required) any string/integer id
  - ``item_id``   (required) any string/integer id
  - ``rating``    (required) number, expected within [MIN_RATING, MAX_RATING] (0.5..5)
  - ``timestamp`` (optional) integer seconds since the Unix epoch (milliseconds and
    finer, or dates written 20240131 or 20240131093000, are read as such with a
    note), or ISO 8601 text;
    without it (or with one value for all rows) ratings have no time order, and the
    eval share of each user's ratings is drawn at random (data/splits.py)
  - ``split``     (optional) ``train`` or ``eval`` (``test`` reads as ``eval``, and so
    does ``val``/``validation`` in a file without test rows): an official split to keep;
    without it the examples writer splits each user's history by time
* ``users.csv`` / ``users.parquet`` (optional): ``user_id`` (required), ``age``
  (integer, or a group such as ``25-34`` or ``55+`` read as its lower bound; 0,
  empty or over F.MAX_AGE = unknown), ``gender``, ``occupation`` (empty = "unknown").
  Without it every rating user gets unknown demographics.
* ``items.csv`` / ``items.parquet`` (optional): ``item_id`` (required), ``title``,
  ``genres`` (``|``-separated, e.g. ``Action|Comedy``; a file that never uses ``|``
  may separate them with ``;`` or ``,``; a list column in Parquet),
  ``description`` (free text), ``year`` (integer, 0, empty or after F.MAX_YEAR =
  unknown; when the column is absent it is parsed from a trailing "(1995)" in the
  title). An item keeps its first F.MAX_GENRES genres (checks.fit_schema notes it).
  Without it every rated item is kept with empty attributes.

Other columns are ignored. Lines with the wrong number of fields, lines that
do not decode, and ratings whose split is not train/eval are reported in
``Dataset.malformed`` under their table; a rating row with a bad value stays a
row, for cleaning to reject with its reason (parsing.to_ratings).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from mtrec.contracts import features as F
from mtrec.contracts.pipeline import EVAL_SPLIT, TRAIN_SPLIT
from mtrec.data.checks import fit_schema
from mtrec.data.header_hints import column_hint
from mtrec.data.json_lines import SUFFIXES as JSON_LINES_SUFFIXES
from mtrec.data.json_lines import is_json_lines, read_json_lines
from mtrec.data.parsing import read_csv_rows, to_ratings
from mtrec.data.tables import (
    ITEMS,
    LINE,
    MAX_TIMESTAMP,
    RATINGS,
    RAW,
    SOURCE_COL,
    SPLIT,
    USERS,
    BadLine,
    Dataset,
    blank,
    concat_malformed,
    derive_items,
    derive_users,
    make_items,
    make_users,
    malformed_frame,
    split_genres,
    title_and_year,
)
from mtrec.data.text_files import encoding_notes

REQUIRED_RATING_COLUMNS = (F.USER_ID, F.ITEM_ID, F.RATING)  # a timestamp is optional
# .csv.gz: exports are often gzipped; JSON Lines: event logs (data/json_lines.py)
SUFFIXES = (".csv", ".csv.gz", ".parquet", *JSON_LINES_SUFFIXES)


def _find(path: Path, stem: str) -> Path | None:
    """`stem`'s file in `path`; an error when two formats of it are there, or when none
    is but a file under a name or format mtrec does not read is (`_unread_hint`): an
    `Items.csv` or `items.tsv` was ignored, and the run trained without item text."""
    found = [path / f"{stem}{s}" for s in SUFFIXES if (path / f"{stem}{s}").is_file()]
    if len(found) > 1:
        raise ValueError(f"{path}: both {found[0].name} and {found[1].name}; keep one")
    if found:
        return found[0]
    hint = _unread_hint(path, stem)
    if hint:
        raise FileNotFoundError(f"{_no_file(path, stem)}; {hint}")
    return None


def _require(path: Path, stem: str) -> Path:
    found = _find(path, stem)
    if found is None:
        raise FileNotFoundError(_no_file(path, stem))
    return found


def _no_file(path: Path, stem: str) -> str:
    return f"{path}: no {stem} file ({', '.join(stem + s for s in SUFFIXES)})"


# Formats a table is saved in that mtrec does not read, with what to do instead.
_OTHER_FORMATS = (((".tsv", ".tsv.gz", ".tab", ".txt", ".dat"),
                   "a text file mtrec does not read: save it as comma-separated {want}.csv"),
                  ((".xlsx", ".xls", ".ods", ".numbers"),
                   "a spreadsheet: save it as CSV ({want}.csv)"),
                  ((".json", ".ndjson"),
                   "JSON: one object per line reads as JSON Lines, named {want}.jsonl"),
                  ((".zip", ".csv.zip", ".gz", ".bz2", ".xz", ".pq", ".csv.bz2"),
                   "unpack or rename it to one of the names above"))


def _format_advice(name: str, want: str) -> str:
    """What to do with a file called `name` that is in a format mtrec does not read
    (`want` names the file to write instead); "" for any other name."""
    for suffixes, advice in _OTHER_FORMATS:
        if name.lower().endswith(suffixes):
            return advice.format(want=want)
    return ""


def _unread_hint(path: Path, stem: str) -> str:
    """What `path` holds for `stem` that mtrec does not read, and what to do: a name in
    another case (`Ratings.CSV`), another format (`ratings.tsv`, `ratings.xlsx`), or the
    right file one folder down. "" when there is none."""
    entries = sorted(path.iterdir()) if path.is_dir() else []
    for entry in entries:
        name = entry.name.lower()
        if not entry.is_file() or name.split(".")[0] != stem or "." not in name:
            continue
        suffix = name[len(stem):]
        if suffix in SUFFIXES:  # the right name in another case
            return (f"found {entry.name}: names are lower-case, so rename it "
                    f"{stem}{suffix}")
        advice = _format_advice(name, stem)
        if advice:
            return f"found {entry.name}, {advice}"
    nested = [entry / f"{stem}{s}" for entry in entries if entry.is_dir() for s in SUFFIXES
              if (entry / f"{stem}{s}").is_file()]
    if nested:
        return f"found {nested[0].relative_to(path)}: give its folder, --path {nested[0].parent}"
    return ""


def _read(
    file: Path, required: tuple[str, ...], encodings: dict[str, str], multiline: bool = True
) -> tuple[pd.DataFrame, list[BadLine]]:
    """A table with LINE (1-based; the header is line 1 for CSV) and RAW, and its bad lines.

    Parquet rows have no text: their RAW is the row's values. A CSV file's encoding
    as read (text_files.decode) goes into `encodings`, for the notes.
    """
    if is_json_lines(file):
        frame, bad, encodings[file.name] = read_json_lines(file, required)
        return _nested_ids(frame, bad, file.name)
    if file.suffix != ".parquet":  # .csv, .csv.gz
        frame, bad, encodings[file.name] = read_csv_rows(file, required, user_column=F.USER_ID,
                                                         multiline=multiline)
        return frame, bad
    try:
        frame = pd.read_parquet(file)
    except (OSError, ValueError) as err:  # pyarrow's errors subclass these; they name no file
        raise ValueError(f"{file}: not a readable Parquet file ({err})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{file}: lacks required column(s) {missing}"
                         + column_hint(frame.columns, missing))
    frame = frame.reset_index(drop=True)
    frame[RAW] = row_texts(frame)
    frame[LINE] = np.arange(1, len(frame) + 1, dtype="int64")
    if F.TIMESTAMP in frame.columns:
        frame[F.TIMESTAMP] = epoch_seconds(frame[F.TIMESTAMP])
    return _nested_ids(frame, [], file.name)


def _nested_ids(frame: pd.DataFrame, bad: list[BadLine], source: str
                ) -> tuple[pd.DataFrame, list[BadLine]]:
    """Rows whose user or item id is a list or an object (a Parquet list column, a JSON
    array) as bad lines: they were kept, with the id "[22]"."""
    nested = pd.Series(False, index=frame.index)
    for column in (F.USER_ID, F.ITEM_ID):
        if column in frame.columns and frame[column].dtype == object:
            nested |= frame[column].map(lambda v: isinstance(v, list | tuple | dict | np.ndarray))
    if not nested.any():
        return frame, bad
    bad = bad + [(source, int(line), str(raw), "a user_id or item_id holds a list or an "
                  "object, not one id") for line, raw in zip(
                      frame.loc[nested, LINE], frame.loc[nested, RAW], strict=True)]
    return frame.loc[~nested].reset_index(drop=True), bad


def row_texts(frame: pd.DataFrame) -> list[str]:
    """Each row as repr(row dict) writes it, built column by column: with
    to_dict("records"), reading 2M Parquet ratings took 10.3 s; this way, 4.4 s (BUILD.md)."""
    parts = [[f"{name!r}: {value!r}" for value in frame[name].tolist()]
             for name in frame.columns]
    return ["{" + ", ".join(row) + "}" for row in zip(*parts, strict=True)]


def epoch_seconds(column: pd.Series) -> pd.Series:
    """A Parquet timestamp-typed column as whole seconds since the epoch; others unchanged.

    pandas and Spark write datetimes as Parquet timestamps: their meaning is
    unambiguous, so they are converted instead of rejected. Naive times are
    read as UTC; sub-second parts are dropped; a missing time stays missing.
    """
    if not pd.api.types.is_datetime64_any_dtype(column):
        return column
    utc = column.dt.tz_localize("UTC") if column.dt.tz is None else column.dt.tz_convert("UTC")
    return (utc - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)


# Other names of the held-out split: "test" always; a validation name when the file holds
# no test or eval rows (train/validation). Beside them, validation rows are ambiguous (the
# pipeline holds out one split), and are rejected with a reason that says so.
_TEST_NAMES = frozenset({"test"})
_VALIDATION_NAMES = frozenset({"val", "valid", "validation", "dev"})


def _split_column(ratings: pd.DataFrame, source: str
                  ) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """Keep only rows whose split is train/eval (or a name of the held-out split, read
    as eval, with a note); the others are malformed."""
    if SPLIT not in ratings.columns:
        return ratings, malformed_frame([], RATINGS), None
    split = ratings[SPLIT].astype(str).str.strip().str.lower()
    present = set(split.unique())
    held_out = _TEST_NAMES | (frozenset() if present & (_TEST_NAMES | {EVAL_SPLIT})
                              else _VALIDATION_NAMES)
    renamed = sorted(present & held_out)
    split = split.where(~split.isin(held_out), EVAL_SPLIT)
    ok = split.isin([TRAIN_SPLIT, EVAL_SPLIT])
    failed = ratings.loc[~ok]

    def reason(value: str) -> str:
        if value.strip().lower() in _VALIDATION_NAMES:
            return (f"split {value!r} beside a test or eval split: the pipeline holds out "
                    "one, so label these rows 'train' or 'eval'")
        return f"split {value!r} is not 'train' or 'eval'"

    bad = [
        (source, int(line), str(raw), reason(str(value)), str(user).strip())
        for line, raw, value, user in zip(
            failed[LINE], failed[RAW], failed[SPLIT], failed[F.USER_ID], strict=True
        )
    ]
    note = (f"{source}'s split {', '.join(map(repr, renamed))} read as {EVAL_SPLIT!r}"
            if renamed else None)
    return ratings.loc[ok].assign(**{SPLIT: split[ok]}), malformed_frame(bad, RATINGS), note


def _items(file: Path, encodings: dict[str, str]) -> tuple[pd.DataFrame, list[BadLine]]:
    frame, bad = _read(file, (F.ITEM_ID,), encodings)
    title, year = title_and_year(frame.get(F.TITLE), frame.get(F.YEAR))
    genres = frame.get(F.GENRES)
    if genres is not None:  # '|'-separated text (CSV; see split_genres) or lists (Parquet)
        genres = split_genres(genres)
    items = make_items(frame[F.ITEM_ID], title, genres, frame.get(F.DESCRIPTION), year)
    return with_lines(items, frame, file.name), bad


def with_lines(table: pd.DataFrame, read: pd.DataFrame, source: str) -> pd.DataFrame:
    """A users/items table with the file, line and raw text of each row (as ratings
    carry them), so cleaning can show a duplicate id's row in rejects.csv."""
    return table.assign(**{SOURCE_COL: source, LINE: read[LINE].to_numpy(),
                           RAW: read[RAW].to_numpy()})


_TIME_WORDS = {"date", "time", "datetime", "timestamp", "ts"}  # words of a column name


def _untimed_as_zero(ratings: pd.DataFrame, file: Path) -> pd.DataFrame:
    """Ratings without a timestamp column (a log exported without times) get time 0 for
    every row: data.splits then splits each user's ratings at random, not by file order.
    A column named so in other case, or one that looks like times under another name,
    is an error that says so."""
    if F.TIMESTAMP in ratings.columns:
        if len(ratings) and blank(ratings[F.TIMESTAMP]).all():  # a column without times
            return ratings.assign(**{F.TIMESTAMP: "0"})
        return ratings
    hint = column_hint(ratings.columns, [F.TIMESTAMP])
    if hint:
        raise ValueError(f"{file}: lacks column(s) {[F.TIMESTAMP]}{hint}")
    # "date", "rated_at", "time": times under another name would be ignored, and the
    # split would draw at random where the user has a time order.
    timed = [c for c in map(str, ratings.columns) if c.lower().endswith("_at")
             or _TIME_WORDS & set(re.split(r"[^a-z0-9]+", c.lower()))]
    if timed:
        raise ValueError(f"{file}: no {F.TIMESTAMP!r} column, but {timed}: name the column "
                         f"of rating times {F.TIMESTAMP!r} (seconds since the epoch or ISO "
                         f"8601), or leave it out to read the ratings without time order")
    return ratings.assign(**{F.TIMESTAMP: "0"})


_FINER_UNITS = ((3, "milliseconds"), (6, "microseconds"), (9, "nanoseconds"))
# Dates written as one number (SQL exports, data warehouses' date keys): as seconds they
# fall in 1970-1973 (8 digits), or read as microseconds they do (14 digits), so a log of
# them was taken for a few weeks of 1970 and its sessions merged into one.
_COMPACT_DATES = ((8, "%Y%m%d", "YYYYMMDD"), (14, "%Y%m%d%H%M%S", "YYYYMMDDhhmmss"))


def _compact_dates(numbers: pd.Series) -> tuple[pd.Series, str] | None:
    """Epoch seconds (UTC) of whole numbers that are all dates written one of the
    _COMPACT_DATES ways, between 1900 and 2100, and that way's name; None otherwise."""
    if not (np.isfinite(numbers) & (numbers == np.floor(numbers))).all():
        return None  # "inf" is a number to pandas, and a bad_timestamp to cleaning
    digits = numbers.astype("int64").astype(str)
    for width, form, name in _COMPACT_DATES:
        if (digits.str.len() == width).all():
            when = pd.to_datetime(digits, format=form, utc=True, errors="coerce")
            if when.notna().all() and when.dt.year.between(1900, 2099).all():
                return epoch_seconds(when), name
    return None


def _in_seconds(ratings: pd.DataFrame, source: str) -> tuple[pd.DataFrame, str | None]:
    """Times in milliseconds (JavaScript's Date.now(), Java's currentTimeMillis()),
    micro- or nanoseconds read as seconds, with a note, when every number in the column
    is past 2100 as seconds and before it in the unit: each row was a bad_timestamp
    ("milliseconds?"). A column that mixes units is left to cleaning's hint. Dates
    written as numbers (20240131, 20240131093000) are read as the dates they are."""
    stamps = ratings[F.TIMESTAMP]
    numbers = pd.to_numeric(stamps, errors="coerce")  # ISO times are numbers already
    known = numbers.notna()
    dates = _compact_dates(numbers[known]) if known.any() else None
    if dates is not None:
        seconds, form = dates
        column = stamps.astype(object).where(~known, seconds)
        return (ratings.assign(**{F.TIMESTAMP: column.astype("int64") if known.all()
                                  else column}),
                f"{source}'s timestamps are dates written {form}: read as seconds since "
                "the epoch (UTC)")
    if not known.any() or numbers[known].min() < MAX_TIMESTAMP:
        return ratings, None
    for power, unit in _FINER_UNITS:
        if numbers[known].max() < MAX_TIMESTAMP * 10**power:
            seconds = stamps.astype(object).where(
                ~known, numbers[known].astype("int64") // 10**power)
            if known.all():
                seconds = seconds.astype("int64")
            return (ratings.assign(**{F.TIMESTAMP: seconds}),
                    f"{source}'s timestamps are {unit} since the epoch: read as seconds")
    return ratings, None


def load_generic(path: str | Path, name: str = "generic") -> Dataset:
    """Load a directory in the generic format described in this module's docstring."""
    path = Path(path)
    ratings_file = _require(path, RATINGS)
    # Ids, ratings and timestamps never hold a line break: in ratings, a quoted
    # field running over lines is an unbalanced quote, not data.
    encodings: dict[str, str] = {}
    frame, bad_rows = _read(ratings_file, REQUIRED_RATING_COLUMNS, encodings, multiline=False)
    frame = _untimed_as_zero(frame, ratings_file)
    frame, bad_split, split_note = _split_column(frame, ratings_file.name)
    ratings, unit = _in_seconds(to_ratings(frame, ratings_file.name), ratings_file.name)
    bad = [malformed_frame(bad_rows, RATINGS), bad_split]

    derived = set()
    users_file = _find(path, USERS)
    if users_file is None:
        users = derive_users(ratings)
        derived.add(USERS)
    else:
        frame, bad_users = _read(users_file, (F.USER_ID,), encodings)
        users = with_lines(make_users(frame[F.USER_ID], frame.get(F.AGE), frame.get(F.GENDER),
                                      frame.get(F.OCCUPATION)), frame, users_file.name)
        bad.append(malformed_frame(bad_users, USERS))

    items_file = _find(path, ITEMS)
    if items_file is None:
        items = derive_items(ratings)
        derived.add(ITEMS)
    else:
        items, bad_items = _items(items_file, encodings)
        bad.append(malformed_frame(bad_items, ITEMS))
    return fit_schema(Dataset(name, ratings, users, items, concat_malformed(bad),
                              frozenset(derived), encoding_notes(encodings)
                              + tuple(n for n in (split_note, unit) if n)))
