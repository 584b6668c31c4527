"""Reading the items file of `mtrec add-items`: pandas only, so a bad file is refused in
a second, before TensorFlow loads (it took 11 s to refuse a header).

The file is read as `mtrec run` reads an items table (README, "Your data"), in
CSV, Parquet or JSON Lines; MovieLens' own movies.csv header (`movieId`) is read
as `item_id`, as the MovieLens sources read it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

from mtrec.contracts import features as F
from mtrec.data.header_hints import column_hint, separator_hint
from mtrec.data.json_lines import is_json_lines, read_json_lines
from mtrec.data.parsing import Dialect
from mtrec.data.tables import (
    LINE,
    RAW,
    first_genres,
    id_column,
    in_range,
    make_items,
    split_genres,
    title_and_year,
)
from mtrec.data.text_files import decode, encoding_notes, file_bytes

MOVIELENS_ITEM_ID = "movieId"  # movies.csv's id column (ml-latest-small, ml-25m, ...)
ITEM_COLUMNS = (F.ITEM_ID, F.TITLE, F.GENRES, F.DESCRIPTION, F.YEAR)  # what is read


def canonical(items: pd.DataFrame) -> pd.DataFrame:
    """The items as ingestion reads an items table (README, "Your data"): ids and text
    stripped, genres split on "|", a title's trailing "(1995)" its year where the year
    column gives none (tables.title_and_year), another year unknown (0)."""
    return fit_items(items)[0]


def fit_items(items: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """`canonical`, and notes on what fitting it to the curated schema's bounds changed,
    as ingestion fits a table (data/checks.fit_schema)."""
    genres = split_genres(items[F.GENRES]) if F.GENRES in items.columns else None
    title, year = title_and_year(items.get(F.TITLE), items.get(F.YEAR))
    table = make_items(items[F.ITEM_ID], title, genres, items.get(F.DESCRIPTION), year)
    years, late = in_range(table[F.YEAR], F.MAX_YEAR)
    genres, cut = first_genres(table[F.GENRES])
    notes = ([f"{int(late.sum())} year(s) after {F.MAX_YEAR}: read as unknown"]
             if late.any() else []) + ([
                 f"{int(cut.sum())} item(s) with more than {F.MAX_GENRES} genres: each keeps "
                 f"its first {F.MAX_GENRES}"] if cut.any() else [])
    return table.assign(**{F.YEAR: years, F.GENRES: genres}), notes


def by_id(items: pd.DataFrame) -> pd.DataFrame:
    """The canonical table in id order: what two calls' items are compared by."""
    return canonical(items).sort_values(F.ITEM_ID, kind="stable").reset_index(drop=True)


def latest_per_id(items: pd.DataFrame) -> pd.DataFrame:
    """One row per item id, the last one given: an id given again, in the same file or a
    later call, replaces its earlier row (README)."""
    return items.fillna("").drop_duplicates(F.ITEM_ID, keep="last").reset_index(drop=True)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A Parquet or JSON Lines table as the CSV reader gives it: text columns ("" for a
    missing value), ids as ingestion reads them (7.0 is the id 7), genre lists kept."""
    genres = frame.pop(F.GENRES) if F.GENRES in frame.columns else None
    # Each cell as an id is read: stripped text, whole floats as ints (a year 2021.0 in a
    # column with a missing value), "" for a missing one.
    frame = pd.DataFrame({column: id_column(frame[column]) for column in frame.columns})
    return frame if genres is None else frame.assign(**{F.GENRES: genres})


def _read_table(items_path: str) -> tuple[pd.DataFrame, list[str]]:
    """The file as text columns: CSV, Parquet or JSON Lines (as `mtrec run` reads
    items); and a note when a text file was read in another encoding than UTF-8."""
    if items_path.endswith(".parquet"):
        try:
            frame = pd.read_parquet(items_path)
        except (OSError, ValueError) as err:  # pyarrow's errors subclass these
            raise ValueError(f"{items_path}: not a readable Parquet file ({err})") from None
        return _as_text(frame), []
    name = os.path.basename(items_path)
    if is_json_lines(Path(items_path)):
        frame, bad, encoding = read_json_lines(Path(items_path), (F.ITEM_ID,))
        if bad:  # add-items takes a file whole (README)
            raise ValueError(f"{items_path}: line {bad[0][1]}: {bad[0][3]}")
        return (_as_text(frame.drop(columns=[LINE, RAW])),
                list(encoding_notes({name: encoding})))
    text, dirty, encoding = decode(file_bytes(Path(items_path)), "utf-8")
    if dirty:
        raise ValueError(f"{items_path}: not valid {encoding} text; save it as UTF-8")
    notes = list(encoding_notes({name: encoding}))
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                           dialect=Dialect), notes
    except pd.errors.EmptyDataError:  # pandas' own words name no file
        raise ValueError(f"{items_path}: empty file, need a header line such as "
                         f"{F.ITEM_ID},{F.TITLE}") from None
    except pd.errors.ParserError as err:
        raise ValueError(f"{items_path}: not a readable CSV file "
                         f"({str(err).strip()})") from None


def read_given_items(items_path: str) -> tuple[pd.DataFrame, list[str]]:
    """The file's rows as given, ids stripped, and notes on how it was read;
    ValueError for an empty or unreadable file, a file without an item_id column or
    rows, or with a row whose id is empty (it was served as item "")."""
    items, notes = _read_table(items_path)
    if F.ITEM_ID not in items.columns and MOVIELENS_ITEM_ID in items.columns:
        items = items.rename(columns={MOVIELENS_ITEM_ID: F.ITEM_ID})
        notes.append(f"read {MOVIELENS_ITEM_ID} as {F.ITEM_ID} (MovieLens' movies.csv)")
    if F.ITEM_ID not in items.columns or items.empty:
        header = list(items.columns)
        hint = ((column_hint(header, [F.ITEM_ID]) or separator_hint(header))
                if F.ITEM_ID not in header else " (it has a header and no rows)")
        raise ValueError(f"{items_path}: need an {F.ITEM_ID} column and at least one row{hint}")
    unread = [str(c) for c in items.columns if c not in ITEM_COLUMNS]
    if unread:  # "Title" was dropped without a word: the items served with no title
        missing = [c for c in ITEM_COLUMNS if c not in items.columns]
        notes.append(f"column(s) not read: {', '.join(unread)} (an items file's columns are "
                     f"{', '.join(ITEM_COLUMNS)}){column_hint(unread, missing)}")
    items[F.ITEM_ID] = id_column(items[F.ITEM_ID])  # as ingestion reads ids (NULL: none)
    if F.GENRES in items.columns:  # "|"-joined, however the file separates or lists them
        items[F.GENRES] = ["|".join(g) for g in split_genres(items[F.GENRES])]
    blank = [i + 2 for i in items.index[items[F.ITEM_ID] == ""]]  # file lines: header is 1
    if blank:
        raise ValueError(f"{items_path}: empty {F.ITEM_ID} on line(s) "
                         f"{', '.join(map(str, blank[:5]))}{', ...' if len(blank) > 5 else ''}")
    return items, notes


def read_new_items(items_path: str) -> pd.DataFrame:
    """The items file, one row per id (`latest_per_id`; see read_given_items)."""
    return latest_per_id(read_given_items(items_path)[0])  # a repeated id was pushed twice
