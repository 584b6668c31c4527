"""Loaders for the GroupLens MovieLens releases (100K, latest-small, 1M).

Each release has its own separators, encodings and quirks (u.item is latin-1,
latest-small is CRLF, 1M uses `::`); all of them come out as a canonical
`Dataset`, with unparsable lines in `malformed` instead of silently dropped.
Titles lose their trailing "(1995)", which becomes `year`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mtrec.contracts import features as F
from mtrec.contracts.pipeline import EVAL_SPLIT, TRAIN_SPLIT
from mtrec.data.checks import fit_schema
from mtrec.data.parsing import read_csv_rows, read_lines, split_delimited, to_ratings
from mtrec.data.tables import (
    ITEMS,
    RATINGS,
    SPLIT,
    USERS,
    Dataset,
    concat_malformed,
    derive_users,
    make_items,
    make_users,
    malformed_frame,
    split_genres,
    split_title_year,
)
from mtrec.data.tags import make_tags
from mtrec.data.text_files import encoding_notes

ML100K_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
# ML-1M README: occupation codes of users.dat.
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
_RATING_NAMES = {0: F.USER_ID, 1: F.ITEM_ID, 2: F.RATING, 3: F.TIMESTAMP}


def _require(path: Path, *names: str) -> None:
    """Each of `names` is in `path`; else an error, which names the subfolder that holds
    them all when one does (`--path data` for data/ml-100k: the zip's parent folder)."""
    missing = [n for n in names if not (path / n).is_file()]
    if missing:
        nested = [sub for sub in sorted(path.iterdir()) if sub.is_dir()
                  and all((sub / n).is_file() for n in names)] if path.is_dir() else []
        hint = f"; give the folder that holds them, --path {nested[0]}" if nested else ""
        raise FileNotFoundError(f"{path}: missing MovieLens file(s) {missing}{hint}")


def _ratings_file(path: Path, sep: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame, bad = split_delimited(path, sep, 4)
    ratings = to_ratings(frame.rename(columns=_RATING_NAMES), path.name)
    return ratings, malformed_frame(bad, RATINGS)


# ------------------------------------------------------------------ ML-100K
def _ml100k_genres(path: Path) -> list[str]:
    """Genre names by flag index, from u.genre ("name|index" lines)."""
    lines, _, _ = read_lines(path / "u.genre", "latin-1")
    names: dict[int, str] = {}
    for _, text in lines:
        name, _, index = text.rpartition("|")
        names[int(index)] = name
    return [names[i] for i in range(len(names))]


def _ml100k_items(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    genre_names = _ml100k_genres(path)
    n_fields = 5 + len(genre_names)
    frame, bad = split_delimited(path / "u.item", "|", n_fields, "latin-1", user_field=None)
    flags = frame[list(range(5, n_fields))].to_numpy() == "1"
    # The "unknown" genre flag means "no genre information", like "(no genres listed)".
    genres = pd.Series(
        [[g for g, on in zip(genre_names, row, strict=True) if on and g != "unknown"]
         for row in flags],
        dtype=object,
    )
    title, year = split_title_year(frame[1])
    # A few titles have no "(yyyy)"; the release date ("01-Jan-1995") still gives the year.
    release = pd.to_numeric(frame[2].str[-4:], errors="coerce").fillna(0).astype("int64")
    year = year.where(year > 0, release.to_numpy())
    return make_items(frame[0], title, genres, None, year), malformed_frame(bad, ITEMS)


def load_ml100k(path: str | Path, split: str | None = None) -> Dataset:
    """Load MovieLens 100K from its extracted directory (u.data, u.item, u.user, u.genre).

    With `split` ("u1".."u5", "ua", "ub"), ratings come from `<split>.base`
    (train) and `<split>.test` (eval) with a `split` column; without, from u.data.
    """
    path = Path(path)
    _require(path, "u.item", "u.user", "u.genre")
    if split is None:
        _require(path, "u.data")
        ratings, bad_ratings = _ratings_file(path / "u.data", "\t")
    elif split in ML100K_SPLITS:
        _require(path, f"{split}.base", f"{split}.test")
        train, bad_train = _ratings_file(path / f"{split}.base", "\t")
        test, bad_test = _ratings_file(path / f"{split}.test", "\t")
        ratings = pd.concat(
            [train.assign(**{SPLIT: TRAIN_SPLIT}), test.assign(**{SPLIT: EVAL_SPLIT})],
            ignore_index=True,
        )
        bad_ratings = concat_malformed([bad_train, bad_test])
    else:
        raise ValueError(f"unknown ML-100K split {split!r}; expected one of {ML100K_SPLITS}")
    items, bad_items = _ml100k_items(path)
    user_frame, bad_users = split_delimited(path / "u.user", "|", 5)
    users = make_users(user_frame[0], user_frame[1], user_frame[2], user_frame[3])
    name = "ml-100k" if split is None else f"ml-100k/{split}"
    malformed = concat_malformed([bad_ratings, bad_items, malformed_frame(bad_users, USERS)])
    return fit_schema(Dataset(name, ratings, users, items, malformed))


# --------------------------------------------------------- ml-latest-small
def _tags(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """tags.csv's rows (data/tags.make_tags), the bad lines, and the encoding read."""
    frame, bad, encoding = read_csv_rows(path, ("userId", "movieId", "tag", "timestamp"),
                                         user_column="userId")
    tags = make_tags(frame["userId"], frame["movieId"], frame["tag"], frame["timestamp"])
    return tags, malformed_frame(bad, ITEMS), encoding


def load_ml_latest_small(path: str | Path) -> Dataset:
    """Load ml-latest-small (ratings.csv, movies.csv, tags.csv; CRLF, UTF-8, half stars).

    There is no user file, so users get unknown demographics. tags.csv's rows go
    to `Dataset.tags`: an item's description is made from them once the split is
    known, from the tags training could have seen (data/tags.py).
    """
    path = Path(path)
    _require(path, "ratings.csv", "movies.csv")
    names = {"userId": F.USER_ID, "movieId": F.ITEM_ID, "rating": F.RATING,
             "timestamp": F.TIMESTAMP}
    encodings: dict[str, str] = {}
    frame, bad_rows, encodings["ratings.csv"] = read_csv_rows(
        path / "ratings.csv", tuple(names), user_column="userId", multiline=False)
    ratings = to_ratings(frame.rename(columns=names), "ratings.csv")
    movies, bad_movies, encodings["movies.csv"] = read_csv_rows(
        path / "movies.csv", ("movieId", "title", "genres"))
    bad = [malformed_frame(bad_rows, RATINGS), malformed_frame(bad_movies, ITEMS)]
    tags = None
    if (path / "tags.csv").is_file():
        tags, bad_tags, encodings["tags.csv"] = _tags(path / "tags.csv")
        bad.append(bad_tags)
    title, year = split_title_year(movies["title"])
    ids = movies["movieId"].str.strip()
    items = make_items(ids, title, split_genres(movies["genres"], "|"), None, year)
    users = derive_users(ratings)
    return fit_schema(Dataset("ml-latest-small", ratings, users, items, concat_malformed(bad),
                              frozenset({USERS}), encoding_notes(encodings), tags))


# ------------------------------------------------------------------- ML-1M
def load_ml1m(path: str | Path) -> Dataset:
    """Load MovieLens 1M (ratings.dat, movies.dat in latin-1, users.dat; `::` separated).

    users.dat's occupation codes are mapped to the README's names; its age is
    the README's group code (1 = under 18, 18, 25, ... 56), which is kept as is.
    """
    path = Path(path)
    _require(path, "ratings.dat", "movies.dat", "users.dat")
    ratings, bad_ratings = _ratings_file(path / "ratings.dat", "::")
    movies, bad_movies = split_delimited(path / "movies.dat", "::", 3, "latin-1", user_field=None)
    title, year = split_title_year(movies[1])
    items = make_items(movies[0], title, split_genres(movies[2], "|"), None, year)
    user_frame, bad_users = split_delimited(path / "users.dat", "::", 5)
    codes = pd.to_numeric(user_frame[3], errors="coerce")
    occupation = codes.map(dict(enumerate(ML1M_OCCUPATIONS)))
    users = make_users(user_frame[0], user_frame[2], user_frame[1], occupation)
    malformed = concat_malformed(
        [bad_ratings, malformed_frame(bad_movies, ITEMS), malformed_frame(bad_users, USERS)]
    )
    return fit_schema(Dataset("ml-1m", ratings, users, items, malformed))


