"""Reject bad ratings before ExampleGen, with exactly one recorded reason per rejected row.

Why here and not in TFDV: schema validation catches distribution drift, but a
duplicate rating or a rating of an unknown item is valid per-feature and would
slip through. Rejected rows are kept (write_rejects) so data problems can be
inspected, and a batch that is mostly rejects fails loudly instead of training
on scraps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mtrec.data.tables import RATING_COLUMNS, SPLIT, Dataset, empty_malformed
from mtrec.models import features as F

# Reasons, in the order they are checked: a row gets the first that applies.
MALFORMED = "malformed"
MISSING_FIELD = "missing_field"
BAD_RATING = "bad_rating"  # not a number, or NaN
RATING_OUT_OF_RANGE = "rating_out_of_range"
BAD_TIMESTAMP = "bad_timestamp"  # not an integer, negative, or after MAX_TIMESTAMP
UNKNOWN_USER = "unknown_user"
UNKNOWN_ITEM = "unknown_item"
DUPLICATE = "duplicate"  # same (user, item) as a later valid rating, which is kept
REASONS = (MALFORMED, MISSING_FIELD, BAD_RATING, RATING_OUT_OF_RANGE, BAD_TIMESTAMP,
           UNKNOWN_USER, UNKNOWN_ITEM, DUPLICATE)
MAX_TIMESTAMP = 4_102_444_800  # 2100-01-01: later "seconds" are milliseconds or garbage
REJECT_COLUMNS = ("source", "line", F.USER_ID, F.ITEM_ID, F.RATING, F.TIMESTAMP, "reason",
                  "detail")


class DataQualityError(ValueError):
    """Too large a share of the input was rejected to trust the rest."""


@dataclass(frozen=True, eq=False)
class CleanResult:
    """The cleaned dataset, the rejected rows (REJECT_COLUMNS) and counts per reason.

    counts has one entry per reason in REASONS plus "total", "kept" and "rejected".
    """

    dataset: Dataset
    rejects: pd.DataFrame
    counts: dict[str, int]


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


def clean(dataset: Dataset, *, max_reject_fraction: float = 0.5) -> CleanResult:
    """Split `dataset.ratings` into kept rows and rejects; fail if too many are rejected.

    Also drops duplicate user/item ids from the users/items tables (first row wins).
    Raises DataQualityError when rejects / (ratings + malformed lines) > max_reject_fraction.
    """
    ratings = dataset.ratings.reset_index(drop=True)
    reason = _reasons(ratings, dataset.users, dataset.items)
    rejected = reason != ""
    row_rejects = ratings.loc[rejected, list(RATING_COLUMNS)].assign(
        source=dataset.name,
        line=pd.NA,
        reason=reason[rejected],
        detail="",
    )
    bad_lines = dataset.malformed
    line_rejects = pd.DataFrame(
        {
            "source": bad_lines["source"],
            "line": bad_lines["line"],
            "reason": MALFORMED,
            "detail": bad_lines["reason"].astype(str) + ": " + bad_lines["raw"].astype(str),
        }
    )
    rejects = pd.concat([line_rejects, row_rejects], ignore_index=True)
    rejects = rejects.reindex(columns=list(REJECT_COLUMNS))
    rejects["line"] = rejects["line"].astype("Int64")

    counts = {r: int((rejects["reason"] == r).sum()) for r in REASONS}
    total = len(ratings) + len(bad_lines)
    counts.update(total=total, kept=int((~rejected).sum()), rejected=len(rejects))
    if total and len(rejects) / total > max_reject_fraction:
        detail = ", ".join(f"{r}={counts[r]}" for r in REASONS if counts[r])
        raise DataQualityError(
            f"{dataset.name}: rejected {len(rejects)} of {total} rows "
            f"({len(rejects) / total:.1%} > max_reject_fraction={max_reject_fraction:.0%}): "
            f"{detail}"
        )

    kept = ratings.loc[~rejected].reset_index(drop=True)
    kept = kept.astype({F.USER_ID: str, F.ITEM_ID: str, F.RATING: "float64"})
    kept[F.TIMESTAMP] = pd.to_numeric(kept[F.TIMESTAMP]).astype("int64")
    columns = list(RATING_COLUMNS) + ([SPLIT] if SPLIT in kept.columns else [])
    cleaned = Dataset(
        dataset.name,
        kept[columns],
        dataset.users.drop_duplicates(F.USER_ID).reset_index(drop=True),
        dataset.items.drop_duplicates(F.ITEM_ID).reset_index(drop=True),
        empty_malformed(),
    )
    return CleanResult(cleaned, rejects, counts)


def write_rejects(result: CleanResult, path: str | Path) -> Path:
    """Write the rejects as CSV (columns REJECT_COLUMNS); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    result.rejects.to_csv(path, index=False, lineterminator="\n")
    return path


def pseudonymize_users(dataset: Dataset, key: bytes) -> Dataset:
    """Replace user ids by HMAC-SHA256(key, id) (first 16 hex chars) in ratings and users.

    Keyed, so ids cannot be reversed by hashing a guessed id without the key;
    deterministic, so the same user maps to the same pseudonym across runs.
    """
    if not key:
        raise ValueError("pseudonymize_users needs a non-empty key")
    cache: dict[str, str] = {}

    def pseudo(user: object) -> str:
        text = str(user)
        if text not in cache:
            cache[text] = hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:16]
        return cache[text]

    ratings = dataset.ratings.assign(**{F.USER_ID: dataset.ratings[F.USER_ID].map(pseudo)})
    users = dataset.users.assign(**{F.USER_ID: dataset.users[F.USER_ID].map(pseudo)})
    return dataclasses.replace(dataset, ratings=ratings, users=users)
