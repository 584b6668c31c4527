"""Loaders: canonical tables, malformed lines reported (never dropped), source quirks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from mtrec.contracts import features as F
from mtrec.data.generic import load_generic
from mtrec.data.loaders import SOURCES, load_dataset
from mtrec.data.movielens import load_ml1m, load_ml100k, load_ml_latest_small
from mtrec.data.tables import (
    ITEM_COLUMNS,
    LINE,
    MALFORMED_COLUMNS,
    RATING_COLUMNS,
    RAW,
    SOURCE_COL,
    SPLIT,
    USER_COLUMNS,
    Dataset,
)
from mtrec.data.tags import descriptions

BOOKKEEPING = [SOURCE_COL, LINE, RAW]


def assert_canonical(ds: Dataset) -> None:
    assert list(ds.ratings.columns[:4]) == list(RATING_COLUMNS)
    assert ds.ratings[F.RATING].dtype == "float64"
    assert ds.ratings[F.TIMESTAMP].dtype == "int64"
    assert ds.ratings[F.USER_ID].map(type).eq(str).all()
    assert ds.ratings[F.ITEM_ID].map(type).eq(str).all()
    # A table read from a file carries its bookkeeping columns, as ratings do.
    assert list(ds.users.columns) in (list(USER_COLUMNS), [*USER_COLUMNS, *BOOKKEEPING])
    assert ds.users[F.AGE].dtype == "int64"
    assert list(ds.items.columns) in (list(ITEM_COLUMNS), [*ITEM_COLUMNS, *BOOKKEEPING])
    assert ds.items[F.GENRES].map(lambda g: isinstance(g, list)).all()
    assert ds.items[F.DESCRIPTION].map(type).eq(str).all()
    assert ds.items[F.YEAR].dtype == "int64"
    assert list(ds.malformed.columns) == list(MALFORMED_COLUMNS)


def write(path: Path, text: str, encoding: str = "utf-8", newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


# ------------------------------------------------------------------ generic
def test_generic_csv_reports_bad_lines(tmp_path: Path) -> None:
    write(
        tmp_path / "ratings.csv",
        (
            "user_id,item_id,rating,timestamp\n"
            "1,10,4.5,100\n"
            "1,11,3,200,extra\n"  # line 3: too many fields
            "2,10,abc,300\n"  # non-numeric rating: kept as NaN for cleaning
            "2,11,2,yesterday\n"  # line 5: timestamp not an integer
            "\n"
            "3,12,5,400\n"
        ),
        newline="\r\n",
    )
    write(tmp_path / "users.csv", "user_id,age,gender,occupation\n1,30,F,writer\n2,,,\n")
    write(
        tmp_path / "items.csv",
        (
            "item_id,title,genres,description\n"
            '10,"Heat, The (1995)",Action|Crime,a heist\n'
            "11,Untitled,,\n"
            "12,Solo (2018),(no genres listed),space\n"
        ),
    )
    ds = load_generic(tmp_path)
    # The bad timestamp stays a row, as its text, for cleaning to reject (bad_timestamp).
    assert ds.ratings[F.TIMESTAMP].tolist() == [100, 300, "yesterday", 400]
    ds = dataclasses.replace(ds, ratings=ds.ratings.drop(index=2).astype({F.TIMESTAMP: "int64"}))
    assert_canonical(ds)
    assert ds.ratings[F.USER_ID].tolist() == ["1", "2", "3"]
    assert pd.isna(ds.ratings[F.RATING].iloc[1])
    bad = ds.malformed.set_index("line")
    assert sorted(bad.index) == [3]
    assert (bad["source"] == "ratings.csv").all()
    assert bad.loc[3, "raw"] == "1,11,3,200,extra"  # CR stripped from CRLF
    assert "fields" in bad.loc[3, "reason"]
    users = ds.users.set_index(F.USER_ID)
    assert users.loc["2", F.AGE] == 0 and users.loc["2", F.GENDER] == F.UNKNOWN
    items = ds.items.set_index(F.ITEM_ID)
    assert items.loc["10", F.TITLE] == "Heat, The" and items.loc["10", F.YEAR] == 1995
    assert items.loc["10", F.GENRES] == ["Action", "Crime"]
    assert items.loc["11", F.GENRES] == [] and items.loc["11", F.YEAR] == 0
    assert items.loc["12", F.GENRES] == []


@pytest.mark.parametrize("names, read, rejected", [
    (("train", "test"), ["train", "eval"], []),
    (("train", "Validation"), ["train", "eval"], []),  # train/validation: held out
    (("train", "eval", "test"), ["train", "eval", "eval"], []),
    (("train", "val", "test"), ["train", "eval"], ["val"]),  # which one is held out?
])
def test_other_names_of_the_held_out_split_read_as_eval(tmp_path: Path, names, read,
                                                        rejected) -> None:
    """A train/test file had every test row rejected ("no eval rows"); train/val/test
    is ambiguous with one held-out split, so its validation rows say so."""
    write(tmp_path / "ratings.csv", "user_id,item_id,rating,timestamp,split\n" + "".join(
        f"a,{i},4,{i},{name}\n" for i, name in enumerate(names)))
    ds = load_generic(tmp_path)
    assert ds.ratings[SPLIT].tolist() == read
    reasons = ds.malformed["reason"].tolist()
    assert len(reasons) == len(rejected)
    assert all(f"split {r!r} beside a test or eval split" in why
               for r, why in zip(rejected, reasons, strict=True))
    renamed = sorted({n.lower() for n in names} - {"train", "eval"} - set(rejected))
    assert ds.notes == ((f"ratings.csv's split {', '.join(map(repr, renamed))} read as "
                         "'eval'",) if renamed else ())


def test_generic_derives_tables_and_keeps_split(tmp_path: Path) -> None:
    write(
        tmp_path / "ratings.csv",
        ("user_id,item_id,rating,timestamp,split\na,x,4,1,train\na,y,5,2,EVAL\nb,x,3,3,tset\n"),
    )
    ds = load_generic(tmp_path)
    assert_canonical(ds)
    assert ds.ratings[SPLIT].tolist() == ["train", "eval"]
    assert ds.malformed["reason"].str.contains("split").all() and len(ds.malformed) == 1
    assert ds.users[F.USER_ID].tolist() == ["a"]  # derived from the loaded ratings
    assert (ds.users[F.GENDER] == F.UNKNOWN).all()
    assert sorted(ds.items[F.ITEM_ID]) == ["x", "y"]


def test_generic_parquet(tmp_path: Path) -> None:
    pd.DataFrame(
        {F.USER_ID: [1, 2], F.ITEM_ID: [7, 8], F.RATING: [4.0, 2.5], F.TIMESTAMP: [10, 20]}
    ).to_parquet(tmp_path / "ratings.parquet")
    pd.DataFrame(
        {
            F.ITEM_ID: ["7", "8"],
            F.TITLE: ["A", "B"],
            F.GENRES: [["Drama"], []],
            F.YEAR: [2001, None],
        }
    ).to_parquet(tmp_path / "items.parquet")
    ds = load_generic(tmp_path)
    assert_canonical(ds)
    assert ds.ratings[F.USER_ID].tolist() == ["1", "2"]
    assert ds.items[F.GENRES].tolist() == [["Drama"], []]
    assert ds.items[F.YEAR].tolist() == [2001, 0]


def test_generic_requires_columns(tmp_path: Path) -> None:
    write(tmp_path / "ratings.csv", "user_id,item_id,timestamp\n1,2,3\n")
    with pytest.raises(ValueError, match=r"lacks required column\(s\) \['rating'\]"):
        load_generic(tmp_path)  # a timestamp is optional (test_parsing)
    with pytest.raises(FileNotFoundError):
        load_generic(tmp_path / "nowhere")


# ---------------------------------------------------------- ML-1M fixtures
def test_ml1m_from_fixture_files(tmp_path: Path) -> None:
    write(tmp_path / "ratings.dat", "1::10::5::978300760\n1::20::3\n2::20::4::978302109\n")
    write(
        tmp_path / "movies.dat",
        "10::Misérables, Les (1995)::Drama|Musical\n20::Heat (1995)::Action|Crime|Thriller\n",
        encoding="latin-1",
    )
    write(tmp_path / "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    ds = load_ml1m(tmp_path)
    assert_canonical(ds)
    assert len(ds.ratings) == 2
    assert ds.malformed[["source", "line"]].values.tolist() == [["ratings.dat", 2]]
    items = ds.items.set_index(F.ITEM_ID)
    assert items.loc["10", F.TITLE] == "Misérables, Les"
    assert items.loc["20", F.GENRES] == ["Action", "Crime", "Thriller"]
    users = ds.users.set_index(F.USER_ID)
    assert users.loc["1", F.OCCUPATION] == "K-12 student" and users.loc["1", F.AGE] == 1
    assert users.loc["2", F.OCCUPATION] == "self-employed" and users.loc["2", F.GENDER] == "M"


def test_ml100k_format_on_made_up_files(tmp_path: Path) -> None:
    """The ML-100K parser on tiny invented files (the real ones may not be copied)."""
    genres = ["unknown", "Action", "Comedy"]
    write(tmp_path / "u.genre", "".join(f"{g}|{i}\n" for i, g in enumerate(genres)) + "\n")
    write(
        tmp_path / "u.item",
        "1|Café Noir (1990)|01-Jan-1990||url|0|1|1\n2|Nameless|05-May-1987||url|1|0|0\n",
        encoding="latin-1",
    )
    write(tmp_path / "u.user", "1|24|M|technician|85711\n2|53|F|other\n")
    write(tmp_path / "u.data", "1\t1\t3\t881250949\n2\t2\t4\n1\t2\t5\t881250950\n")
    write(tmp_path / "u1.base", "1\t1\t3\t881250949\n")
    write(tmp_path / "u1.test", "1\t2\t5\t881250950\n")
    ds = load_ml100k(tmp_path)
    assert_canonical(ds)
    assert sorted(ds.malformed["source"]) == ["u.data", "u.user"]
    items = ds.items.set_index(F.ITEM_ID)
    assert items.loc["1", F.TITLE] == "Café Noir" and items.loc["1", F.GENRES] == [
        "Action",
        "Comedy",
    ]
    assert items.loc["2", F.GENRES] == [] and items.loc["2", F.YEAR] == 1987
    split = load_ml100k(tmp_path, split="u1")
    assert split.ratings[SPLIT].tolist() == ["train", "eval"]
    with pytest.raises(ValueError, match="split"):
        load_ml100k(tmp_path, split="u9")


# -------------------------------------------------------------- entry point
def test_load_dataset_sample() -> None:
    ds = load_dataset("sample")
    assert_canonical(ds)
    assert len(ds.ratings) == 40_000 and len(ds.users) == 600 and len(ds.items) == 800
    assert ds.malformed.empty


def test_load_dataset_errors(tmp_path: Path) -> None:
    assert set(SOURCES) == {"sample", "synthetic", "ml-100k", "ml-latest-small", "ml-1m", "generic"}
    with pytest.raises(ValueError, match="unknown data source"):
        load_dataset("netflix", None, None)
    with pytest.raises(ValueError, match="official split"):
        load_dataset("ml-1m", str(tmp_path), "u1")
    with pytest.raises(ValueError, match="`mtrec download ml-100k --dest DIR`"):
        load_dataset("ml-100k", None, None)
    with pytest.raises(ValueError, match="needs --path DIR: a folder with ratings.csv"):
        load_dataset("generic", None, None)
    with pytest.raises(FileNotFoundError, match=r"generic: .*/missing does not exist$"):
        load_dataset("generic", str(tmp_path / "missing"), None)
    # `--path data/ratings.csv` is a first try: the message gives the folder instead
    (tmp_path / "ratings.csv").write_text("user_id,item_id,rating\n")
    with pytest.raises(FileNotFoundError, match=rf"ratings.csv is a file: --path is the folder "
                       rf"that holds it, {tmp_path}$"):
        load_dataset("generic", str(tmp_path / "ratings.csv"), None)


# ------------------------------------------------- real files (../shared/data)
@pytest.mark.movielens
def test_real_ml100k(shared_data: Path) -> None:
    ds = load_dataset("ml-100k", str(shared_data / "ml-100k"), None)
    assert_canonical(ds)
    assert ds.malformed.empty
    assert (len(ds.ratings), len(ds.users), len(ds.items)) == (100_000, 943, 1682)
    assert ds.ratings[F.RATING].mean() == pytest.approx(3.52986)
    titles = set(ds.items[F.TITLE])
    assert "Misérables, Les" in titles and "Toy Story" in titles  # latin-1 decoded
    toy = ds.items.set_index(F.ITEM_ID).loc["1"]
    assert toy[F.GENRES] == ["Animation", "Children's", "Comedy"] and toy[F.YEAR] == 1995
    assert (ds.items[F.YEAR] > 0).sum() == 1681  # only item 267 "unknown" has no date


@pytest.mark.movielens
@pytest.mark.parametrize("split,n_eval", [("u1", 20_000), ("ua", 9430)])
def test_real_ml100k_splits(shared_data: Path, split: str, n_eval: int) -> None:
    ds = load_dataset("ml-100k", str(shared_data / "ml-100k"), split)
    assert len(ds.ratings) == 100_000
    assert (ds.ratings[SPLIT] == "eval").sum() == n_eval


@pytest.mark.movielens
def test_real_ml_latest_small(shared_data: Path) -> None:
    ds = load_ml_latest_small(shared_data / "ml-latest-small")
    assert_canonical(ds)
    assert ds.malformed.empty
    assert (len(ds.ratings), len(ds.users), len(ds.items)) == (100_836, 610, 9742)
    assert set(ds.ratings[F.RATING] * 2) == set(range(1, 11))  # half stars
    assert not ds.items[F.GENRES].map(lambda g: any("\r" in x for x in g)).any()
    items = ds.items.set_index(F.ITEM_ID)
    assert (items[F.DESCRIPTION] == "").all()  # made from ds.tags once split (data/tags.py)
    assert len(ds.tags) == 3683
    assert descriptions(ds.tags)["1"].split(", ")[:2] == ["pixar", "fun"]
    assert items.loc["143410", F.GENRES] == []  # "(no genres listed)"
    assert (ds.users[F.OCCUPATION] == F.UNKNOWN).all()
    assert ds.notes == ()  # UTF-8, as GroupLens writes it


def test_ml_latest_small_movies_resaved_as_windows_1252_read_and_noted(tmp_path: Path) -> None:
    write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,29,4.0,1\n")
    write(tmp_path / "movies.csv", 'movieId,title,genres\n29,"Cité, La (1995)",Drama\n',
          encoding="cp1252", newline="\r\n")
    ds = load_ml_latest_small(tmp_path)
    assert ds.items[F.TITLE].tolist() == ["Cité, La"] and ds.malformed.empty
    assert ds.notes[0].startswith("movies.csv is not UTF-8: read as Windows-1252 (")
    assert len(ds.notes) == 1


def test_a_folder_of_another_source_names_the_source_it_is(tmp_path: Path) -> None:
    """A MovieLens folder read as generic failed on its userId/movieId header, and
    ml-100k on an ml-latest-small folder on a missing u.item: both now name the source."""
    write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,10,4.0,5\n")
    write(tmp_path / "movies.csv", "movieId,title,genres\n10,Heat (1995),Crime\n")
    with pytest.raises(ValueError, match=r"lacks required column\(s\) \['user_id', 'item_id'\] "
                       r"\(column names .* 'userId' -> 'user_id'; .* 'movieId' -> 'item_id'\) "
                       r"\(this folder is laid out "
                       r"as ml-latest-small: --source ml-latest-small\)$"):
        load_dataset("generic", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"missing MovieLens file\(s\) \['u.item', "
                       r"'u.user', 'u.genre'\] \(this folder is laid out as ml-latest-small"):
        load_dataset("ml-100k", str(tmp_path))
    (tmp_path / "movies.csv").unlink()  # ratings.csv alone: generic
    with pytest.raises(FileNotFoundError, match=r"laid out as generic: --source generic\)$"):
        load_dataset("ml-1m", str(tmp_path))
    with pytest.raises(ValueError, match=r"'movieId' -> 'item_id'\)$"):  # generic: no source hint
        load_dataset("generic", str(tmp_path))


def test_the_parent_of_a_movielens_folder_names_the_folder(tmp_path: Path) -> None:
    """`--path data` for data/ml-latest-small (the folder the zip unpacked into) was only
    "missing MovieLens file(s)"; the message now gives the path to pass."""
    (tmp_path / "ml-latest-small").mkdir()
    write(tmp_path / "ml-latest-small" / "ratings.csv", "userId,movieId,rating,timestamp\n")
    write(tmp_path / "ml-latest-small" / "movies.csv", "movieId,title,genres\n")
    with pytest.raises(FileNotFoundError, match=r"missing MovieLens file\(s\) \['ratings.csv', "
                       rf"'movies.csv'\]; give the folder that holds them, --path "
                       rf"{tmp_path / 'ml-latest-small'}$"):
        load_dataset("ml-latest-small", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"\['u.item', 'u.user', 'u.genre'\]$"):
        load_dataset("ml-100k", str(tmp_path))  # no folder holds them: no hint
