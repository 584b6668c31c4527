"""Fail fast on input too small to train on, before any TFX component runs, and fit
the attributes to the curated schema's bounds (fit_schema).

A header-only ratings file, a split with no eval rows or a users/items table
that matches none of the ratings would otherwise pass ingestion and the
AnomalyGate and die minutes later in the Trainer or Evaluator with a traceback.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd

from mtrec.contracts import features as F
from mtrec.contracts.pipeline import EVAL_SPLIT, TRAIN_SPLIT
from mtrec.data.splits import eval_mask
from mtrec.data.tables import (
    ITEMS,
    LINE,
    SOURCE_COL,
    SPLIT,
    USERS,
    Dataset,
    first_genres,
    in_range,
)

BIRTH_YEARS = (1900, 2030)  # an "age" in these looks like a birth year


class InsufficientDataError(ValueError):
    """The input leaves nothing (or no eval set) to train and evaluate on."""


def _matches(ratings: pd.DataFrame, table: pd.DataFrame, key: str) -> bool:
    return bool(ratings[key].astype(str).isin(set(table[key].astype(str))).any())


def check_tables(dataset: Dataset) -> None:
    """Raise when the users or items table matches none of the ratings (e.g. header only)."""
    if dataset.ratings.empty:
        return  # check_split reports it, after the rejects are written
    for name, table, key in ((USERS, dataset.users, F.USER_ID),
                             (ITEMS, dataset.items, F.ITEM_ID)):
        if not _matches(dataset.ratings, table, key):
            raise InsufficientDataError(
                f"{dataset.name}: the {name} table ({len(table)} rows) matches none of the "
                f"{len(dataset.ratings)} ratings' {key}s; is it empty or from another data set?"
                + _id_hint(dataset.ratings[key], table[key], name)
            )


def check_split(cleaned: Dataset, eval_fraction: float, rejects_path: str,
                rejected: int = 0) -> tuple[dict[str, int], str, str | None]:
    """Rows per split (train, eval) of the cleaned ratings, the split rule (in words) and
    the eval users' note (_eval_users_note); raise when either split would be empty.

    `rejected` (ratings rejected while cleaning) is named in the message: a
    split value such as "test" is a reject, so the rows a user meant as eval
    rows are in rejects.csv, not silently gone.
    """
    ratings = cleaned.ratings
    if ratings.empty:
        raise InsufficientDataError(
            f"{cleaned.name}: no ratings left to train on (none read, or all rejected: "
            f"see {rejects_path})"
        )
    is_eval, rule = eval_mask(ratings, eval_fraction)
    rows = {TRAIN_SPLIT: int((~is_eval).sum()), EVAL_SPLIT: int(is_eval.sum())}
    empty = [name for name, n in rows.items() if not n]
    if empty:
        hint = (f"give some rows {SPLIT}={empty[0]}" if SPLIT in ratings.columns else
                "the time split holds out only ratings of users with 2 or more, and only "
                "with --eval-fraction > 0")
        dropped = f", {rejected} more rejected: see {rejects_path}" if rejected else ""
        raise InsufficientDataError(
            f"{cleaned.name}: no {empty[0]} rows among {len(ratings)} ratings "
            f"(split: {rule}{dropped}); {hint}"
        )
    return rows, rule, _eval_users_note(ratings, is_eval)


def _eval_users_note(ratings: pd.DataFrame, is_eval: np.ndarray) -> str | None:
    """A note when some eval users have no training ratings (an official split that holds
    out whole users): `recommend` serves such an id by popularity, so on those users
    the served metrics equal popularity's, and the gate, which asks for a lift over
    popularity, sees none there (the sample split so: 0.335 -> 0.404 NDCG@10, popularity
    0.404, and the model was not pushed)."""
    trained = set(ratings.loc[~is_eval, F.USER_ID])
    users = ratings.loc[is_eval, F.USER_ID].unique()
    new = int((~pd.Series(users).isin(trained)).sum())
    if not new:
        return None
    return (f"{new} of the eval split's {len(users)} users have no training ratings: "
            "`recommend` serves such a user the most popular items, so on them the served "
            "NDCG@10 is popularity's, and the gate asks for a lift over popularity")


def _id_hint(rated: pd.Series, listed: pd.Series, name: str) -> str:
    """Examples of both sides' item ids (user ids may be private: no examples), and when
    they differ only by a ".0" (an id column with a missing value, which pandas writes
    as floats) or by leading zeros (a spreadsheet drops them), that."""
    rated, listed = rated.astype(str), listed.astype(str)
    if listed.empty:
        return ""
    hint = "" if name != ITEMS else (
        f" The ratings hold ids such as {', '.join(map(repr, rated.unique()[:3]))}; "
        f"the {name} table such as {', '.join(map(repr, listed.unique()[:3]))}.")
    floats = re.compile(r"^(-?\d+)\.0+$")
    if rated.str.replace(floats, r"\1", regex=True).isin(
            set(listed.str.replace(floats, r"\1", regex=True))).any():
        hint += (" They differ by a '.0': one file wrote whole-number ids as floats (as "
                 "pandas does for a column with a missing value); write them as integers.")
    elif rated.str.lstrip("0").isin(set(listed.str.lstrip("0"))).any():
        hint += (" They differ by leading zeros ('007' against '7'): one file's ids went "
                 "through a spreadsheet or a number column, which drops them; write the ids "
                 "as the other file does.")
    return hint


def fit_schema(dataset: Dataset) -> Dataset:
    """`dataset` with every user and item attribute within the curated schema's bounds
    (contracts/features.py MAX_AGE, MAX_YEAR, MAX_GENRES), each change counted in a note:
    an age past MAX_AGE (a birth year, a typo 999) or a year past MAX_YEAR is unknown
    (0), and an item keeps its first MAX_GENRES genres. ExampleValidator stopped the
    whole run on one such value, which ingestion had accepted without a word. The other
    bounds hold already: ratings and timestamps out of range are rejects (cleaning.py),
    and write_examples keeps F.HISTORY_LEN items of history."""
    users, items, notes = dataset.users, dataset.items, []
    if len(users):
        ages, over = in_range(users[F.AGE], F.MAX_AGE)
        if over.any():
            users = users.assign(**{F.AGE: ages})
            notes.append(_age_note(dataset.users, over, _where(dataset, USERS, over)))
    if len(items):
        years, late = in_range(items[F.YEAR], F.MAX_YEAR)
        genres, cut = first_genres(items[F.GENRES])
        if late.any():
            notes.append(f"{_where(dataset, ITEMS, late)}: {_count(late, 'release year')} "
                         f"after {F.MAX_YEAR} read as unknown (0)")
        if cut.any():
            most = max(len(g) for g in items.loc[cut, F.GENRES])
            notes.append(f"{_where(dataset, ITEMS, cut)}: {_count(cut, 'item')} with more than "
                         f"{F.MAX_GENRES} genres (up to {most}): each keeps its first "
                         f"{F.MAX_GENRES}")
        if late.any() or cut.any():
            items = items.assign(**{F.YEAR: years, F.GENRES: genres})
    if not notes:
        return dataset
    return dataclasses.replace(dataset, users=users, items=items,
                               notes=(*dataset.notes, *notes))


def _count(mask: pd.Series, noun: str) -> str:
    n = int(mask.sum())
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _where(dataset: Dataset, name: str, mask: pd.Series) -> str:
    """The file the `name` table (USERS, ITEMS) was read from, with the first masked row's
    line ("users.csv (the first on line 2)"), or "ml-1m's users" when it kept no lines."""
    table = dataset.users if name == USERS else dataset.items
    if SOURCE_COL not in table.columns or LINE not in table.columns:
        return f"{dataset.name}'s {name}"
    first = table.loc[mask].iloc[0]
    return f"{first[SOURCE_COL]} (the first on line {int(first[LINE])})"


def _age_note(users: pd.DataFrame, over: pd.Series, where: str) -> str:
    """How many ages were past F.MAX_AGE, and how many of them look like birth years."""
    ages = users.loc[over, F.AGE]
    born = int(ages.between(*BIRTH_YEARS).sum())
    note = f"{where}: {_count(over, 'age')} over {F.MAX_AGE} read as unknown (0)"
    if born:
        which = ("it looks like a birth year" if len(ages) == 1 else
                 "1 of them looks like a birth year" if born == 1 else
                 f"{'all' if born == len(ages) else born} of them look like birth years")
        note += (f"; {which} ({BIRTH_YEARS[0]}-{BIRTH_YEARS[1]}), but the age column "
                 f"holds ages in years")
    return note
