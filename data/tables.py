"""The canonical in-memory tables every loader produces and every consumer reads.

Loaders differ wildly (tab, pipe, `::`, quoted CSV, latin-1, CRLF); normalising
them into one shape here means cleaning, the examples writer and the tests only
ever deal with one layout and one set of dtypes.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mtrec.contracts import features as F

RATING_COLUMNS = (F.USER_ID, F.ITEM_ID, F.RATING, F.TIMESTAMP)
USER_COLUMNS = (F.USER_ID, F.AGE, F.GENDER, F.OCCUPATION)
ITEM_COLUMNS = (F.ITEM_ID, F.TITLE, F.GENRES, F.DESCRIPTION, F.YEAR)
RATINGS, USERS, ITEMS = "ratings", "users", "items"  # the tables a bad line can belong to
TABLES = (RATINGS, USERS, ITEMS)
TABLE, SOURCE, LINE_NO, RAW_TEXT, REASON = "table", "source", "line", "raw", "reason"
DETAIL = "detail"  # rejects: what a malformed line got wrong
MALFORMED = "malformed"  # the reject reason of a line that could not be parsed
# user_id: the field in the user id's position of a bad line, "" when none (it lets
# pseudonymisation reach ids that only occur in lines that could not be parsed).
MALFORMED_COLUMNS = (TABLE, SOURCE, LINE_NO, RAW_TEXT, REASON, F.USER_ID)
SPLIT = "split"  # optional ratings column: official train/eval split
# Optional bookkeeping columns of a parsed ratings table: the file, 1-based line
# number and raw text each row came from, so a row rejected later still shows them.
SOURCE_COL, LINE, RAW = "_source", "_line", "_raw"

_TRAILING_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")


@dataclass(frozen=True, eq=False)
class Dataset:
    """One data source in canonical form.

    ratings:   user_id (str), item_id (str), rating (float), timestamp (int64 s),
               optionally `split` ("train"/"eval") for sources with an official split,
               and the bookkeeping columns SOURCE_COL, LINE, RAW of parsed files.
    users:     user_id, age (int, 0 = unknown), gender, occupation ("unknown" if absent);
               read from a file, also its SOURCE_COL, LINE and RAW (cleaning drops them).
    items:     item_id, title, genres (list[str]), description (str), year (int, 0 = unknown);
               SOURCE_COL, LINE and RAW as users.
    malformed: lines the parser could not split/convert (MALFORMED_COLUMNS): the table they
               belong to, source file, line (1-based), raw text, reason, user_id field.
    derived:   the tables (USERS, ITEMS) the source has no file for, so one row per rated
               id was made up: counts for them are not rows "read".
    notes:     what was read otherwise than the format says, in words (a file read as
               Windows-1252, not UTF-8), for the reports to show.
    tags:      user tags (data/tags.TAG_COLUMNS) the items' descriptions are made of once
               the split is known (write_examples), or None: the source has none.
    """

    name: str
    ratings: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    malformed: pd.DataFrame
    derived: frozenset[str] = frozenset()
    notes: tuple[str, ...] = ()
    tags: pd.DataFrame | None = None

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: {len(self.ratings)} ratings, {len(self.users)} users, "
            f"{len(self.items)} items, {len(self.malformed)} malformed)"
        )


# (source, line, raw, reason, user_id) of one bad line; user_id may be left out.
BadLine = tuple[str, int, str, str] | tuple[str, int, str, str, str]


def empty_malformed() -> pd.DataFrame:
    """A malformed table with no rows but the right columns."""
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == LINE_NO else object)
                         for c in MALFORMED_COLUMNS})


def malformed_frame(rows: Sequence[BadLine], table: str) -> pd.DataFrame:
    """Build the malformed table of one of TABLES from (source, line, raw, reason[, user_id])."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; expected one of {TABLES}")
    if not rows:
        return empty_malformed()
    full = [(table, *row) if len(row) == 5 else (table, *row, "") for row in rows]
    frame = pd.DataFrame(full, columns=list(MALFORMED_COLUMNS))
    frame[LINE_NO] = frame[LINE_NO].astype("int64")
    return frame


def concat_malformed(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate malformed tables, keeping the canonical columns when all are empty."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_malformed()
    return pd.concat(frames, ignore_index=True)[list(MALFORMED_COLUMNS)]


def split_title_year(titles: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Split "Toy Story (1995)" into ("Toy Story", 1995); no trailing year gives 0.

    The year becomes its own feature, so it is removed from the title text to
    keep "(1995)" tokens out of the text vocabulary.
    """
    titles = titles.fillna("").astype(str).str.strip()
    years = titles.str.extract(_TRAILING_YEAR, expand=False)
    year = pd.to_numeric(years, errors="coerce").fillna(0).astype("int64")
    stripped = titles.str.replace(_TRAILING_YEAR, "", regex=True).str.strip()
    return stripped, year


def title_and_year(titles: pd.Series | None, years: pd.Series | None
                   ) -> tuple[pd.Series | None, pd.Series | None]:
    """An items file's TITLE and YEAR as every reader takes them: the title without a
    trailing "(1995)", and the year column's whole number where it holds one, else the
    title's. With a year column, titles kept their "(1995)" (text the encoder read)
    and a row with an empty year lost it (0)."""
    if titles is None:
        return None, years
    stripped, parsed = split_title_year(titles.reset_index(drop=True))
    if years is None:
        return stripped, parsed
    given = int_column(years, len(stripped))
    return stripped, given.where(given > 0, parsed)


MAX_TIMESTAMP = 4_102_444_800  # 2100-01-01: later "seconds" are milliseconds or garbage

# What database and spreadsheet exports write for a missing value (SQL Server's and
# DBeaver's NULL, MySQL's \N, Excel's #N/A, pandas' NaN). As text, a title "NULL" was
# encoded, "NULL" became a genre, and ratings without a user id were one user "NULL".
NULL_MARKERS = frozenset({"NULL", "null", "Null", "\\N", "NaN", "nan", "#N/A", "N/A", "n/a",
                          "<NA>"})


def _stripped_text(values: pd.Series) -> pd.Series:
    """Stripped strings, index kept; missing values and NULL_MARKERS become ""."""
    out = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    return out.where(~out.isin(NULL_MARKERS), "")


def blank(values: pd.Series) -> pd.Series:
    """Where `values` is missing, blank or a NULL_MARKERS value (as id_column reads it)."""
    if values.dtype != object:
        return values.isna()
    return _stripped_text(values) == ""


def id_column(values: pd.Series) -> pd.Series:
    """Ids as stripped strings, index kept; missing ones (and NULL_MARKERS) become ""
    (cleaning rejects a rating's). A float column's whole values (an int id column with
    a missing value, as pandas writes it to Parquet) read as ints, so 7.0 is the id 7;
    text ("7.0" in a CSV) is not touched."""
    if pd.api.types.is_integer_dtype(values) and not values.hasnans:  # Parquet ints
        return values.astype(str)
    if pd.api.types.is_float_dtype(values):
        whole = np.isfinite(values) & (values == np.floor(values)) & (values.abs() < 2**63)
        values = values.astype(object).where(~whole, values[whole].astype("int64").astype(object))
    return _stripped_text(values)


def text_column(values: pd.Series | None, n: int, default: str = "") -> pd.Series:
    """Strings with missing/blank values (and NULL_MARKERS) replaced by `default`."""
    if values is None:
        return pd.Series([default] * n, dtype=object)
    out = _stripped_text(values)
    return out.where(out != "", default).reset_index(drop=True)


_INT64_MAX = np.iinfo("int64").max


def int_column(values: pd.Series | None, n: int) -> pd.Series:
    """Whole, non-negative int64 values (1999.0 is 1999); missing, negative, fractional or
    unparsable ones become 0 (= unknown), as the README says. A number past int64 (1e30)
    reads as int64's largest, for in_range to note: it wrapped round to -2**63, and near
    2**63 TFDV's int_domain check let every other out-of-range value through too."""
    if values is None:
        return pd.Series(np.zeros(n, dtype="int64"))
    if values.dtype == object:  # a JSON int past float64 raised OverflowError in to_numeric
        values = pd.Series([float(max(min(v, 10**300), -(10**300))) if isinstance(v, int)
                            else v for v in values], index=values.index, dtype=object)
    num = pd.to_numeric(values, errors="coerce").reset_index(drop=True).astype("float64")
    num = num.where((num >= 0) & np.isfinite(num) & (num == np.floor(num)), 0)
    huge = num >= 2.0**63
    out = num.where(~huge, 0).fillna(0).astype("int64")
    out[huge] = _INT64_MAX
    return out


def in_range(values: pd.Series, maximum: int) -> tuple[pd.Series, pd.Series]:
    """int_column's values with those above `maximum` (the curated schema's int_domain
    max, contracts/features.py) as 0 (= unknown), and where they were: the schema's
    ExampleValidator stopped the run on one age 999 or a birth year 1982 as an age."""
    over = values > maximum
    return values.where(~over, 0), over


def _listed_values(value: object) -> list:
    return list(value) if isinstance(value, (list, tuple, np.ndarray)) else []


def first_genres(genres: pd.Series, maximum: int = F.MAX_GENRES
                 ) -> tuple[pd.Series, pd.Series]:
    """Genre lists cut to their first `maximum` (the curated schema's value_count max),
    and which were cut: an item with more stopped the run at the AnomalyGate."""
    lists = [_listed_values(g) for g in genres]
    over = pd.Series([len(g) > maximum for g in lists], index=genres.index, dtype=bool)
    return pd.Series([g[:maximum] for g in lists], index=genres.index, dtype=object), over


# An age group as text ("25-34", "55+"): its lower bound, as MovieLens-1M codes its
# groups (25 = 25-34), which F.AGE_BOUNDARIES bucket alike.
_AGE_GROUP = re.compile(r"\s*(\d+)\s*(?:[-\u2013]\s*\d+|\+)\s*")


def age_column(values: pd.Series | None, n: int) -> pd.Series:
    """int_column, where an age group ("25-34", "55+") is its lower bound: surveys and
    CRMs export ages so, and they were all unknown (0)."""
    if values is None:
        return int_column(None, n)
    text = values.reset_index(drop=True).astype(object)
    group = text.map(lambda v: _AGE_GROUP.fullmatch(v) if isinstance(v, str) else None)
    lower = group.map(lambda m: m.group(1) if m else None)
    return int_column(text.where(lower.isna(), lower), n)


GENRE_SEPARATORS = ("|", ";", ",")  # "|" as documented (MovieLens), then the others


def _listed(text: str) -> list[str] | None:
    """The strings of a list written out whole, as JSON (`["Action", "Comedy"]`) or as
    pandas' to_csv writes a list cell (Python's repr: `['Action', 'Comedy']`); None for
    other text. Split on "," such a cell gave genres like "['Action'" and "'Comedy']"."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    for read in (json.loads, ast.literal_eval):  # literal_eval evaluates no code
        try:
            value = read(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            return [str(v) for v in value]
    return None


def genre_separator(texts: Iterable[str]) -> str:
    """A text genres column's separator: "|", or when no value holds one, the first of
    ";" and "," that some value holds. Exports write "Action, Comedy" (IMDb style):
    with "|" only, each combination was one genre, most of them in the unknown bucket.
    A list written out whole (see _listed) is read as one: split_genres leaves it out."""
    texts = list(texts)
    return next((sep for sep in GENRE_SEPARATORS if any(sep in t for t in texts)), "|")


def _genres(parts: Iterable[object]) -> list[str]:
    """Stripped genre names; empty ones, '(no genres listed)' and NULL_MARKERS left out."""
    names = [str(p).strip() for p in parts]
    return [n for n in names if n and n != "(no genres listed)" and n not in NULL_MARKERS]


def genre_list(value: object, sep: str = "|") -> list[str]:
    """'A|B', '["A", "B"]' or ['A', 'B'] -> ['A', 'B']; empty, missing and
    '(no genres listed)' -> []."""
    if isinstance(value, str):
        listed = _listed(value)
        return _genres(value.split(sep) if listed is None else listed)
    if isinstance(value, (list, tuple, np.ndarray)):
        return _genres(value)
    return []


def split_genres(values: pd.Series, sep: str | None = None) -> pd.Series:
    """A column of genre lists (see genre_list), split on `sep` or genre_separator's;
    each cell's written-out list (_listed) is parsed once."""
    listed = [_listed(v) if isinstance(v, str) else None for v in values]
    if sep is None:
        sep = genre_separator(v for v, parsed in zip(values, listed, strict=True)
                              if isinstance(v, str) and parsed is None)
    out = []
    for value, parsed in zip(values, listed, strict=True):
        if parsed is None and isinstance(value, str):
            parsed = value.split(sep)
        out.append(genre_list(value) if parsed is None else _genres(parsed))
    return pd.Series(out, dtype=object)


def make_users(
    user_id: pd.Series,
    age: pd.Series | None = None,
    gender: pd.Series | None = None,
    occupation: pd.Series | None = None,
) -> pd.DataFrame:
    """A canonical users table; absent attributes are filled with the unknown value."""
    ids = id_column(user_id).reset_index(drop=True)
    n = len(ids)
    return pd.DataFrame(
        {
            F.USER_ID: ids,
            F.AGE: age_column(age, n),
            F.GENDER: text_column(gender, n, F.UNKNOWN),
            F.OCCUPATION: text_column(occupation, n, F.UNKNOWN),
        }
    )


def make_items(
    item_id: pd.Series,
    title: pd.Series | None = None,
    genres: pd.Series | None = None,
    description: pd.Series | None = None,
    year: pd.Series | None = None,
) -> pd.DataFrame:
    """A canonical items table; `genres` must already be lists (see split_genres)."""
    ids = id_column(item_id).reset_index(drop=True)
    n = len(ids)
    if genres is None:
        genre_lists = pd.Series([[] for _ in range(n)], dtype=object)
    else:
        genre_lists = pd.Series(
            [list(g) if isinstance(g, (list, tuple, np.ndarray)) else [] for g in genres],
            dtype=object,
        )
    return pd.DataFrame(
        {
            F.ITEM_ID: ids,
            F.TITLE: text_column(title, n),
            F.GENRES: genre_lists,
            F.DESCRIPTION: text_column(description, n),
            F.YEAR: int_column(year, n),
        }
    )


def _has_genres(items: pd.DataFrame) -> pd.Series:
    return items[F.GENRES].map(lambda g: isinstance(g, (list, tuple, np.ndarray)) and len(g) > 0)


def items_with_genres(items: pd.DataFrame) -> int:
    """How many items have a genre: with none, the interest task has no labels (the run
    leaves it out)."""
    return int(_has_genres(items).sum())


def distinct_genres(items: pd.DataFrame) -> int:
    """How many different genres the items have: with one, every item has it, and the
    interest task's AUC has no negatives to rank (Keras reads 0.0; over the 32-column
    multi-hot, before its phantom columns were masked, it read 0.998)."""
    lists = items[F.GENRES][_has_genres(items)]
    return len({genre for genres in lists for genre in genres})


def items_with_text(items: pd.DataFrame) -> int:
    """How many items have a title, genres, a year or a description, the parts of the
    text encoder's input (components/text_encoder/corpus.py item_text): with none, it
    would read only separators (the run leaves it out)."""
    def filled(column: str) -> pd.Series:
        return items[column].astype(str).str.strip() != ""
    return int((filled(F.TITLE) | filled(F.DESCRIPTION) | _has_genres(items)
                | (items[F.YEAR] > 0)).sum())


def derive_users(ratings: pd.DataFrame) -> pd.DataFrame:
    """All-unknown users for sources without a user file (one row per rating user)."""
    ids = pd.Series(pd.unique(ratings[F.USER_ID].astype(str)), dtype=object)
    return make_users(ids)


def derive_items(ratings: pd.DataFrame) -> pd.DataFrame:
    """Attribute-less items for sources without an item file (one row per rated item)."""
    ids = pd.Series(pd.unique(ratings[F.ITEM_ID].astype(str)), dtype=object)
    return make_items(ids)
