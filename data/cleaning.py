"""Reject bad ratings before ExampleGen, with exactly one recorded reason per rejected row.

Why here and not in TFDV: schema validation catches distribution drift, but a
duplicate rating or a rating of an unknown item is valid per-feature and would
slip through. Rejected rows are kept (write_rejects) so data problems can be
inspected, and a batch that is mostly rejects fails loudly instead of training
on scraps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtrec.contracts import features as F
from mtrec.data.privacy import pseudonymize_users
from mtrec.data.rating_scale import other_scale_message
from mtrec.data.tables import (
    DETAIL,
    ITEMS,
    LINE,
    LINE_NO,
    MALFORMED,
    MAX_TIMESTAMP,
    RATING_COLUMNS,
    RATINGS,
    RAW,
    RAW_TEXT,
    REASON,
    SOURCE,
    SOURCE_COL,
    SPLIT,
    TABLE,
    USERS,
    Dataset,
    empty_malformed,
)

# Reasons, in the order they are checked: a row gets the first that applies.
MISSING_FIELD = "missing_field"
BAD_RATING = "bad_rating"  # not a number, or NaN
RATING_OUT_OF_RANGE = "rating_out_of_range"
BAD_TIMESTAMP = "bad_timestamp"  # not an integer, before 1970, or from MAX_TIMESTAMP on
UNKNOWN_USER = "unknown_user"
UNKNOWN_ITEM = "unknown_item"
# Same (user, item) as a later valid rating, or same id as a later users/items row: the
# later one is kept (as `mtrec add-items` keeps an item's last row).
DUPLICATE = "duplicate"
REASONS = (MALFORMED, MISSING_FIELD, BAD_RATING, RATING_OUT_OF_RANGE, BAD_TIMESTAMP,
           UNKNOWN_USER, UNKNOWN_ITEM, DUPLICATE)
# The reasons whose `detail` is mtrec's own words, with no input value in it (column
# names, line numbers): pseudonymisation leaves it readable (data/privacy.py).
DATA_FREE_DETAILS = frozenset({MISSING_FIELD, BAD_RATING, BAD_TIMESTAMP, UNKNOWN_USER,
                               UNKNOWN_ITEM, DUPLICATE})
# CleanResult's counts (the ratings': REASONS plus these three) and table counts (these
# four): summary.json, the report and `mtrec data check` read them.
TOTAL, KEPT, REJECTED = "total", "kept", "rejected"
ROWS_READ = "rows"
DERIVED = "derived"  # the source has no file for the table: one row per rated id
# table: ratings, users or items; line: 1-based line (row for Parquet and generated
# data) in `source`; raw: the record as read; detail: what a malformed line got wrong.
REJECT_COLUMNS = (TABLE, SOURCE, LINE_NO, F.USER_ID, F.ITEM_ID, F.RATING, F.TIMESTAMP, REASON,
                  DETAIL, RAW_TEXT)

__all__ = ["CleanResult", "DataQualityError", "clean", "pseudonymize_users", "write_rejects"]


class DataQualityError(ValueError):
    """Too large a share of the ratings was rejected to trust the rest.

    `rejects` holds every rejected row (REJECT_COLUMNS), so they can still be written.
    """

    def __init__(self, message: str, rejects: pd.DataFrame | None = None) -> None:
        super().__init__(message)
        self.rejects = rejects


@dataclass(frozen=True, eq=False)
class CleanResult:
    """The cleaned dataset, the rejected rows (REJECT_COLUMNS) and counts.

    counts, for the ratings only: one entry per reason in REASONS plus TOTAL,
    KEPT and REJECTED (total = kept + rejected).
    tables: per table (TABLES), counts: ROWS_READ = KEPT + REJECTED, of which
    DUPLICATE (merged into the latest rating, or an id's last users/items row),
    and DERIVED.
    """

    dataset: Dataset
    rejects: pd.DataFrame
    counts: dict[str, int]
    tables: dict[str, dict[str, int]]


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(str).str.strip() == "")


def _missing_rating(values: pd.Series) -> pd.Series:
    """Absent rating text; a float NaN is a bad (non-numeric) rating, not a missing one."""
    if values.dtype != object:
        return pd.Series(False, index=values.index)
    return values.map(lambda v: v is None or (isinstance(v, str) and not v.strip()))


def _reasons(ratings: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame) -> pd.Series:
    """One reason per rating row ("" = keep), checked in REASONS order."""
    reason = pd.Series("", index=ratings.index, dtype=object)

    def mark(mask: pd.Series, why: str) -> None:
        reason[(reason == "") & mask] = why

    mark(_blank(ratings[F.USER_ID]) | _blank(ratings[F.ITEM_ID]) | _blank(ratings[F.TIMESTAMP])
         | _missing_rating(ratings[F.RATING]), MISSING_FIELD)
    rating = pd.to_numeric(ratings[F.RATING], errors="coerce")
    mark(rating.isna() | ~np.isfinite(rating), BAD_RATING)
    mark((rating < F.MIN_RATING) | (rating > F.MAX_RATING), RATING_OUT_OF_RANGE)
    ts = pd.to_numeric(ratings[F.TIMESTAMP], errors="coerce")
    mark(ts.isna() | (ts != np.floor(ts)) | (ts < 0) | (ts >= MAX_TIMESTAMP), BAD_TIMESTAMP)
    user, item = ratings[F.USER_ID].astype(str), ratings[F.ITEM_ID].astype(str)
    if len(users):
        mark(~user.isin(set(users[F.USER_ID].astype(str))), UNKNOWN_USER)
    mark(~item.isin(set(items[F.ITEM_ID].astype(str))), UNKNOWN_ITEM)
    # Among rows still valid, keep the latest rating per (user, item); ties: the later row.
    valid = reason == ""
    order = pd.DataFrame({"u": user[valid], "i": item[valid], "t": ts[valid]})
    order = order.sort_values("t", kind="stable")
    duplicate = order.duplicated(["u", "i"], keep="last")
    mark(duplicate.reindex(ratings.index, fill_value=False), DUPLICATE)
    return reason


def _row_rejects(ratings: pd.DataFrame, reason: pd.Series, name: str) -> pd.DataFrame:
    """Rejected rating rows with their source, line and raw text (made up for generated data)."""
    rejected = reason != ""
    rows = ratings.loc[rejected]
    numbers = np.flatnonzero(rejected.to_numpy()) + 1
    raw = rows[RAW] if RAW in rows.columns else pd.Series(
        [repr(r) for r in rows[list(RATING_COLUMNS)].to_dict("records")], index=rows.index,
        dtype=object)
    out = rows[list(RATING_COLUMNS)].assign(**{
        TABLE: RATINGS,
        SOURCE: rows[SOURCE_COL] if SOURCE_COL in rows.columns else name,
        LINE_NO: rows[LINE] if LINE in rows.columns else numbers,
        REASON: reason[rejected],
        DETAIL: _row_details(rows, reason[rejected]),
        RAW_TEXT: raw,
    })
    # Whole seconds as integers (a float column would write 881250960.0).
    out[F.TIMESTAMP] = pd.Series(  # a list: Series.map would infer float back from [300, None]
        [int(v) if isinstance(v, float) and v.is_integer() else v for v in out[F.TIMESTAMP]],
        index=out.index, dtype=object)
    return out


_DETAILS = {  # rejects.csv's `detail` per reason (no ids: they may be pseudonymised)
    BAD_RATING: "the rating is not a number (the raw text shows it)",
    BAD_TIMESTAMP: ("a timestamp must be seconds since 1970-01-01 UTC, from 0 to before "
                    "2100, or an ISO 8601 time"),
    UNKNOWN_USER: "the user_id is not in the users table",
    UNKNOWN_ITEM: "the item_id is not in the items table",
    DUPLICATE: "a later rating of the same user_id and item_id is kept",
}
# A timestamp that is a time, but out of range (-5, 1960-01-01T00:00:00Z, 2150-01-01).
_BEFORE_1970 = ("a time before 1970-01-01 UTC is not accepted, whether written as seconds "
                "(a negative number) or ISO 8601")
_FROM_2100 = ("a time from 2100-01-01 UTC on is not accepted, whether written as seconds "
              "since 1970-01-01 UTC or ISO 8601")


# 10000-01-01 UTC: an ISO 8601 time (a 4-digit year) is before it, so a later number is
# in a finer unit than seconds, or garbage; an earlier one past 2100 may be either.
_ISO_END = 253_402_300_800


def _timestamp_details(stamps: pd.Series) -> pd.Series:
    """Per bad timestamp, what is wrong with it: a time before 1970 or from 2100 on (in
    seconds or ISO 8601: parsing.iso_seconds read the ISO ones as seconds), else _DETAILS,
    and why it may have been written so: milliseconds (a number past any ISO 8601 time)
    or a date as text that is not ISO 8601 (non-numeric, with digits)."""
    number = pd.to_numeric(stamps, errors="coerce")
    finite = np.isfinite(number.astype("float64"))
    dated = number.isna() & stamps.map(lambda v: isinstance(v, str)
                                       and any(c.isdigit() for c in v))
    details = pd.Series(_DETAILS[BAD_TIMESTAMP], index=stamps.index, dtype=object)
    details[finite & (number < 0)] = _BEFORE_1970
    details[finite & (number >= MAX_TIMESTAMP)] = _FROM_2100
    details[finite & (number >= _ISO_END)] += " (milliseconds?)"
    details[dated] += " (a date as text must be ISO 8601, such as 2020-09-13T12:26:40Z)"
    return details


def _row_details(rows: pd.DataFrame, reason: pd.Series) -> pd.Series:
    """What each rejected rating row got wrong: _DETAILS, with the missing fields
    named and an out-of-range rating's value (column-wise, as _reasons checks them)."""
    detail = reason.map(_DETAILS).fillna("").astype(object)
    missing = rows.loc[reason == MISSING_FIELD]
    blank = {c: _missing_rating(missing[c]) if c == F.RATING else _blank(missing[c])
             for c in RATING_COLUMNS}
    detail[missing.index] = [
        "missing " + ", ".join(c for c in RATING_COLUMNS if blank[c][i]) for i in missing.index]
    stamps = rows.loc[reason == BAD_TIMESTAMP, F.TIMESTAMP]
    detail[stamps.index] = _timestamp_details(stamps)
    high = rows.loc[reason == RATING_OUT_OF_RANGE, F.RATING]
    detail[high.index] = [f"rating {float(v):g} is outside [{F.MIN_RATING:g}, "
                          f"{F.MAX_RATING:g}]" for v in high]
    return detail


def _line_rejects(malformed: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        TABLE: malformed[TABLE],
        SOURCE: malformed[SOURCE],
        LINE_NO: malformed[LINE_NO],
        F.USER_ID: malformed[F.USER_ID],
        REASON: MALFORMED,
        DETAIL: malformed[REASON].astype(str),
        RAW_TEXT: malformed[RAW_TEXT].astype(str),
    })


def _table_counts(dataset: Dataset, ratings: dict[str, int],
                  cleaned: dict[str, pd.DataFrame]) -> dict[str, dict[str, int]]:
    bad = dataset.malformed[TABLE].value_counts()
    out = {RATINGS: {ROWS_READ: ratings[TOTAL], KEPT: ratings[KEPT],
                     REJECTED: ratings[REJECTED], DUPLICATE: ratings[DUPLICATE]}}
    for table in (USERS, ITEMS):
        rows, kept = len(getattr(dataset, table)), len(cleaned[table])
        duplicate = 0 if table in dataset.derived else rows - kept
        rejected = int(bad.get(table, 0)) + duplicate
        out[table] = {ROWS_READ: rows + int(bad.get(table, 0)), KEPT: kept, REJECTED: rejected,
                      DUPLICATE: duplicate, DERIVED: table in dataset.derived}
    return out


_BOOKKEEPING = (SOURCE_COL, LINE, RAW)


def _attribute_tables(dataset: Dataset, kept: pd.DataFrame
                      ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The users and items tables as cleaned, and their rejects (REJECT_COLUMNS).

    A row whose id a later row of its table holds is a DUPLICATE reject: the last
    row wins, as the latest rating does and as `mtrec add-items` reads a file (it
    was the first, and the others were dropped with only a count). A table the
    source has no file for (derived) keeps the ids of kept ratings only: an id
    seen only in rejected ratings is no user, nor an item to recommend.
    """
    tables, rejects = {}, []
    for table, key in ((USERS, F.USER_ID), (ITEMS, F.ITEM_ID)):
        frame = getattr(dataset, table).reset_index(drop=True)
        ids = frame[key].astype(str)
        derived = table in dataset.derived
        again = ~ids.isin(set(kept[key])) if derived else ids.duplicated(keep="last")
        if not derived and again.any():
            lines = (frame[LINE] if LINE in frame.columns
                     else pd.Series(np.arange(1, len(frame) + 1), index=frame.index))
            last = lines.groupby(ids).transform("last")[again]
            rows = frame.loc[again]
            raw = (rows[RAW] if RAW in rows.columns else
                   [repr(r) for r in rows.drop(columns=list(_BOOKKEEPING), errors="ignore")
                    .to_dict("records")])
            rejects.append(pd.DataFrame({
                TABLE: table, SOURCE: rows.get(SOURCE_COL, dataset.name),
                LINE_NO: lines[again], key: ids[again], REASON: DUPLICATE,
                DETAIL: [f"line {n}, later, has the same {key} and is kept" for n in last],
                RAW_TEXT: raw}))
        tables[table] = (frame.loc[~again].drop(columns=list(_BOOKKEEPING), errors="ignore")
                         .reset_index(drop=True))
    return tables, pd.concat(rejects, ignore_index=True) if rejects else pd.DataFrame()


def table_counts(name: str, counts: Mapping[str, Any]) -> str:
    """One table's ingestion counts: read/kept/rejected, or for a table the source has
    no file for, that its rows were made up from the ratings (not "read")."""
    if counts.get(DERIVED):
        return f"{counts[KEPT]} (no {name} file: one per rated id)"
    return (f"{counts[ROWS_READ]} read, {counts[KEPT]} kept, {counts[REJECTED]} rejected"
            + (f", {counts[DUPLICATE]} duplicate" if counts.get(DUPLICATE) else ""))


def rejected_by_reason(counts: Mapping[str, int], nonzero: bool = False) -> dict[str, int]:
    """The ratings' reject counts per reason (REASONS' order), from CleanResult.counts."""
    return {r: counts[r] for r in REASONS if r in counts and (counts[r] or not nonzero)}


def is_implicit_feedback(rating_values: int | None) -> bool:
    """Whether a log with `rating_values` distinct ratings is implicit feedback (clicks,
    views: one value): it has no rating or like labels for TFMA to bound. Read by the
    pipeline's thresholds, the run summary and `mtrec data check`."""
    return rating_values == 1


def clean(dataset: Dataset, *, max_reject_fraction: float = 0.5) -> CleanResult:
    """Split `dataset.ratings` into kept rows and rejects; fail if too many are rejected.

    Rejects also hold the malformed lines of every table and the users/items
    tables' duplicate ids (_attribute_tables). Raises
    DataQualityError (with the rejects) when rejected ratings / (ratings +
    malformed ratings lines) > max_reject_fraction, duplicates (merged into the
    latest) left out of both; users' and items' bad lines do not count towards
    it. Ratings that look like another scale (out of range in over
    OTHER_SCALE_FRACTION of the rows, data/rating_scale.py) raise it too, at any limit below 1 (1
    never stops).
    """
    ratings = dataset.ratings.reset_index(drop=True)
    reason = _reasons(ratings, dataset.users, dataset.items)
    kept = ratings.loc[reason == ""].reset_index(drop=True)
    kept = kept.astype({F.USER_ID: str, F.ITEM_ID: str, F.RATING: "float64"})
    tables, table_rejects = _attribute_tables(dataset, kept)
    parts = [_line_rejects(dataset.malformed), table_rejects,
             _row_rejects(ratings, reason, dataset.name)]
    rejects = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True
                        ).reindex(columns=list(REJECT_COLUMNS))
    rejects[LINE_NO] = rejects[LINE_NO].astype("int64")
    rejects[F.USER_ID] = rejects[F.USER_ID].fillna("")

    of_ratings = rejects.loc[rejects[TABLE] == RATINGS, REASON]
    counts = {r: int((of_ratings == r).sum()) for r in REASONS}
    total = len(ratings) + int((dataset.malformed[TABLE] == RATINGS).sum())
    counts.update({TOTAL: total, KEPT: len(kept), REJECTED: len(of_ratings)})
    other_scale = other_scale_message(ratings, reason == RATING_OUT_OF_RANGE,
                                      dataset.name)
    if other_scale and max_reject_fraction < 1:
        raise DataQualityError(other_scale, rejects)
    # Duplicates are merged into the latest rating, not bad input: a click log that
    # repeats interactions (54% of its rows) stopped here, and a file read twice would.
    merged = counts[DUPLICATE]
    bad, distinct = len(of_ratings) - merged, total - merged
    if distinct and bad / distinct > max_reject_fraction:
        detail = ", ".join(f"{r}={counts[r]}" for r in REASONS if counts[r] and r != DUPLICATE)
        also = f"; {merged} duplicates merged, not counted" if merged else ""
        raise DataQualityError(
            f"{dataset.name}: rejected {bad} of {distinct} ratings "
            f"({bad / distinct:.1%}, above the {max_reject_fraction:.0%} limit of "
            f"--max-reject-fraction): {detail}{also}",
            rejects,
        )

    kept[F.TIMESTAMP] = pd.to_numeric(kept[F.TIMESTAMP]).astype("int64")
    columns = list(RATING_COLUMNS) + ([SPLIT] if SPLIT in kept.columns else [])
    cleaned = Dataset(
        dataset.name,
        kept[columns],
        tables[USERS],
        tables[ITEMS],
        empty_malformed(),
        dataset.derived,
        dataset.notes,
        dataset.tags,
    )
    return CleanResult(cleaned, rejects, counts, _table_counts(dataset, counts, tables))


def first_rating_reject(rejects: pd.DataFrame) -> str:
    """The first rejected rating as one line ("ratings.csv line 2: bad_rating"), with
    its detail when it has one: what a message about many rejects shows first."""
    rows = rejects.loc[rejects[TABLE] == RATINGS]
    if rows.empty:
        return ""
    first = rows.iloc[0]
    detail = f": {first[DETAIL]}" if isinstance(first[DETAIL], str) and first[DETAIL] else ""
    return f"{first[SOURCE]} line {first[LINE_NO]}: {first[REASON]}{detail}"


def write_rejects(rejects: CleanResult | pd.DataFrame, path: str | Path) -> Path:
    """Write the rejects (a CleanResult's, or a REJECT_COLUMNS frame) as CSV; returns the path."""
    frame = rejects.rejects if isinstance(rejects, CleanResult) else rejects
    # The csv writer cannot write a NUL character: show it as the text "\x00".
    text = [c for c in frame.columns
            if frame[c].dtype == object and frame[c].astype(str).str.contains("\0").any()]
    frame = frame.assign(**{c: frame[c].astype(str).str.replace("\0", "\\x00") for c in text})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")
    return path
