"""Table files as exports write them: gzipped, Parquet, other names and formats."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from mtrec.contracts import features as F
from mtrec.data.generic import load_generic
from mtrec.data.tables import SOURCE_COL, title_and_year
from tests.test_parsing import HEADER, write


def test_parquet_ids_stored_as_whole_floats_read_as_ints(tmp_path: Path) -> None:
    """pandas stores an int id column with a missing value as float64: item 7.0 matched no
    item 7, and a user 3.0 no user 3. A float that is not whole stays as written."""
    pd.DataFrame({F.USER_ID: [3.0, 3.0, None], F.ITEM_ID: [7.0, 8.5, 7.0],
                  F.RATING: [4.0, 3.0, 5.0], F.TIMESTAMP: [1, 2, 3]}
                 ).to_parquet(tmp_path / "ratings.parquet")
    pd.DataFrame({F.USER_ID: [3]}).to_parquet(tmp_path / "users.parquet")
    pd.DataFrame({F.ITEM_ID: [7.0, 8.5, None]}).to_parquet(tmp_path / "items.parquet")
    ds = load_generic(tmp_path)
    assert ds.ratings[F.USER_ID].tolist() == ["3", "3", ""]  # "" is a missing_field reject
    assert ds.ratings[F.ITEM_ID].tolist() == ["7", "8.5", "7"]
    assert ds.items[F.ITEM_ID].tolist()[:2] == ["7", "8.5"] and ds.users[F.USER_ID][0] == "3"


def test_gzipped_csv_files_read_as_their_csv(tmp_path: Path) -> None:
    """Exports are often gzipped: ratings.csv.gz was "no ratings.csv or ratings.parquet"."""
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    plain.mkdir(), packed.mkdir()
    write(plain / "ratings.csv", HEADER + "u1,x,4,1\nu1,y,oops,2\nu2,x,5,3\n")
    write(plain / "items.csv", 'item_id,title,genres\nx,"Long\nTitle",Drama\ny,Y,\n')
    for name in ("ratings.csv", "items.csv"):
        (packed / f"{name}.gz").write_bytes(gzip.compress((plain / name).read_bytes()))
    want, got = load_generic(plain), load_generic(packed)
    assert got.items.drop(columns=SOURCE_COL).equals(want.items.drop(columns=SOURCE_COL))
    assert got.ratings.drop(columns=SOURCE_COL).equals(want.ratings.drop(columns=SOURCE_COL))
    assert got.ratings[SOURCE_COL].unique().tolist() == ["ratings.csv.gz"]  # rejects name it
    (packed / "items.csv.gz").write_bytes(b"item_id\nx\n")
    with pytest.raises(ValueError, match=r"items.csv.gz: not a readable gzip file"):
        load_generic(packed)
    write(packed / "ratings.csv", HEADER)
    with pytest.raises(ValueError, match=r"both ratings.csv and ratings.csv.gz; keep one"):
        load_generic(packed)


@pytest.mark.parametrize(("name", "match"), [
    ("Ratings.CSV", r"no ratings file \(.*\); found Ratings.CSV: names are lower-case, so "
     r"rename it ratings.csv"),
    ("ratings.tsv", r"found ratings.tsv, a text file mtrec does not read: save it as "
     r"comma-separated ratings.csv"),
    ("ratings.xlsx", r"found ratings.xlsx, a spreadsheet: save it as CSV \(ratings.csv\)"),
    ("ratings.json", r"found ratings.json, JSON: one object per line reads as JSON Lines, "
     r"named ratings.jsonl"),
    ("export/ratings.csv", r"found export/ratings.csv: give its folder, --path .*/export$"),
])
def test_a_ratings_file_mtrec_does_not_read_is_named(tmp_path: Path, name: str,
                                                     match: str) -> None:
    """A ratings file under another case or format, or one folder down, was only "no
    ratings file"; now the message names it and what to do."""
    (tmp_path / name).parent.mkdir(exist_ok=True)
    write(tmp_path / name, HEADER + "u1,x,4,1\n")
    with pytest.raises(FileNotFoundError, match=match):
        load_generic(tmp_path)


@pytest.mark.parametrize("name", ["Items.csv", "items.tsv", "items.xlsx"])
def test_an_items_file_mtrec_does_not_read_is_an_error(tmp_path: Path, name: str) -> None:
    """Items.csv or items.tsv beside ratings.csv was ignored: the run went on with one
    empty item per rated id, and trained without the titles and genres."""
    write(tmp_path / "ratings.csv", HEADER + "u1,x,4,1\n")
    write(tmp_path / name, "item_id,title\nx,X\n")
    with pytest.raises(FileNotFoundError, match=rf"no items file \(.*\); found {name}"):
        load_generic(tmp_path)
    (tmp_path / name).rename(tmp_path / "items_old.csv")  # another table: not ours
    assert load_generic(tmp_path).items[F.ITEM_ID].tolist() == ["x"]


def test_a_table_in_another_format_under_its_name_says_which(tmp_path: Path) -> None:
    """A spreadsheet renamed ratings.csv was "line contains NUL (NUL bytes: UTF-16?)", and
    CSV text named ratings.parquet pyarrow's error without the file's name; a gzipped
    file under a .csv name reads as its CSV."""
    write(tmp_path / "ratings.csv", HEADER + "u1,x,4,1\n")
    want = load_generic(tmp_path).ratings
    (tmp_path / "ratings.csv").write_bytes(gzip.compress((HEADER + "u1,x,4,1\n").encode()))
    assert load_generic(tmp_path).ratings.equals(want)
    for magic, match in ((b"PK\x03\x04", r"ratings.csv: a ZIP archive \(an .xlsx or .ods "
                          r"spreadsheet is one\): save the sheet as CSV"),
                         (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", r"an Excel .xls spreadsheet"),
                         (b"PAR1", r"ratings.csv: a Parquet file: name it .parquet")):
        (tmp_path / "ratings.csv").write_bytes(magic + b"\x00\x01user_id,item_id\n")
        with pytest.raises(ValueError, match=match):
            load_generic(tmp_path)
    (tmp_path / "ratings.csv").rename(tmp_path / "ratings.parquet")
    write(tmp_path / "ratings.parquet", HEADER + "u1,x,4,1\n")
    with pytest.raises(ValueError, match=r"ratings.parquet: not a readable Parquet file \("):
        load_generic(tmp_path)


def test_a_year_column_and_the_titles_year_read_as_without_the_column(tmp_path: Path) -> None:
    """With a `year` column, titles kept their "(1994)" (text the encoder reads, unlike
    a file without the column) and a row whose year cell is empty read year 0; now the
    title loses it either way and the cell, where it holds a year, wins. add-items reads
    a file with the same function."""
    write(tmp_path / "ratings.csv", HEADER + "u1,a,4,1\nu1,b,3,2\nu2,c,5,3\n")
    write(tmp_path / "items.csv", "item_id,title,year\na,Heavyweights (1994),\n"
          "b,Remake (1960),2001\nc,No Year,oops\n")
    items = load_generic(tmp_path).items
    assert items[F.TITLE].tolist() == ["Heavyweights", "Remake", "No Year"]
    assert items[F.YEAR].tolist() == [1994, 2001, 0]
    title, year = title_and_year(pd.Series(["Heat (1995)"]), None)
    assert (title.tolist(), year.tolist()) == (["Heat"], [1995])
    assert title_and_year(None, pd.Series(["1999"]))[0] is None


def test_an_id_that_is_a_list_is_a_bad_line_not_the_text_of_one(tmp_path: Path) -> None:
    """A Parquet list column or a JSON array as the id was kept as the id "['u1']"."""
    (tmp_path / "ratings.jsonl").write_text(
        '{"user_id": "u2", "item_id": "x", "rating": 4, "timestamp": 1}\n'
        '{"user_id": ["u1"], "item_id": "x", "rating": 4, "timestamp": 2}\n'
        '{"user_id": "u2", "item_id": {"id": "y"}, "rating": 4, "timestamp": 3}\n')
    pd.DataFrame({F.USER_ID: [["u2"]]}).to_parquet(tmp_path / "users.parquet")
    ds = load_generic(tmp_path)
    assert ds.ratings[F.USER_ID].tolist() == ["u2"] and ds.users.empty
    assert ds.malformed[["table", "line"]].values.tolist() == [
        ["ratings", 2], ["ratings", 3], ["users", 1]]
    assert (ds.malformed["reason"] == "a user_id or item_id holds a list or an object, not "
            "one id").all()
