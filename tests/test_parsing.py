"""CSV parsing: byte order marks, quoted line breaks, csv's line numbers, per-table bad lines,
and rejects that keep the line number and raw text for every reason (issue 17)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtrec.contracts import features as F
from mtrec.data.cleaning import REASONS, clean
from mtrec.data.generic import load_generic, row_texts
from mtrec.data.movielens import load_ml1m
from mtrec.data.tables import ITEMS, RATINGS, USERS

BOM = "\ufeff"
HEADER = "user_id,item_id,rating,timestamp\n"


def write(path: Path, text: str, encoding: str = "utf-8", newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


def test_bom_at_the_start_of_a_csv(tmp_path: Path) -> None:
    write(tmp_path / "ratings.csv", BOM + HEADER + "a,x,4,1\na,y,3,2\n", newline="\r\n")
    write(tmp_path / "items.csv", BOM + "item_id,title\nx,X\ny,Y\n")
    ds = load_generic(tmp_path)
    assert ds.ratings[F.USER_ID].tolist() == ["a", "a"] and ds.malformed.empty
    assert sorted(ds.items[F.ITEM_ID]) == ["x", "y"]


def test_bom_at_the_start_of_a_dat_file(tmp_path: Path) -> None:
    write(tmp_path / "ratings.dat", BOM + "1::10::5::978300760\n1::20::3::978300761\n",
          newline="\r\n")
    write(tmp_path / "movies.dat", "10::A (1995)::Drama\n20::B (1996)::Comedy\n", "latin-1")
    write(tmp_path / "users.dat", BOM + "1::F::1::10::48067\n")
    ds = load_ml1m(tmp_path)
    assert ds.ratings[F.USER_ID].tolist() == ["1", "1"]
    assert ds.users[F.USER_ID].tolist() == ["1"] and ds.malformed.empty


def test_newline_inside_a_quoted_title_is_kept(tmp_path: Path) -> None:
    write(tmp_path / "ratings.csv", HEADER + "a,10,4,1\na,11,3,2\n")
    write(
        tmp_path / "items.csv",
        'item_id,title,genres\n10,"Foo, ""The""\nSecond line",Drama\n11,Plain,Comedy\n12,x\n',
        newline="\r\n",
    )
    ds = load_generic(tmp_path)
    items = ds.items.set_index(F.ITEM_ID)
    assert items.loc["10", F.TITLE] == 'Foo, "The"\r\nSecond line'
    assert items.loc["11", F.TITLE] == "Plain"
    # csv's own line numbers: the record after the two-line title starts on line 4.
    bad = ds.malformed
    assert bad[["table", "source", "line", "raw"]].values.tolist() == [
        [ITEMS, "items.csv", 5, "12,x"]]


def test_unbalanced_quote_in_ratings_costs_one_line(tmp_path: Path) -> None:
    write(tmp_path / "ratings.csv", HEADER + 'a,"10,4,1\nb,11,3,2\nc,12,5,3\n')
    ds = load_generic(tmp_path)
    assert ds.ratings[F.USER_ID].tolist() == ["b", "c"]
    assert ds.ratings["_line"].tolist() == [3, 4]
    bad = ds.malformed.iloc[0]
    assert (bad["table"], bad["line"], bad["raw"]) == (RATINGS, 2, 'a,"10,4,1')
    assert "unbalanced quote" in bad["reason"] and bad[F.USER_ID] == "a"


def test_undecodable_line_is_reported_and_the_rest_loads(tmp_path: Path) -> None:
    """A UTF-8 file (José is UTF-8) with a broken line: that line is rejected."""
    (tmp_path / "ratings.csv").write_bytes(
        HEADER.encode() + "José,x,4,1\n".encode() + b"b,\xff\xfe,3,2\nc,y,5,3\n")
    ds = load_generic(tmp_path)
    assert ds.ratings[F.USER_ID].tolist() == ["José", "c"] and ds.notes == ()
    bad = ds.malformed.iloc[0]
    assert bad["line"] == 3 and "not valid utf-8" in bad["reason"]
    assert bad["raw"] == "b,\ufffd\ufffd,3,2" and bad[F.USER_ID] == "b"


def test_a_windows_1252_items_file_is_read_and_the_note_says_so(tmp_path: Path) -> None:
    """Excel on Windows saves "CSV" as Windows-1252: read as UTF-8, every title with an
    accent was a malformed line (293 of ml-latest-small's titles), and its ratings
    unknown items. Only the file that is not UTF-8 is read otherwise."""
    write(tmp_path / "ratings.csv", HEADER + "a,x,4,1\na,y,3,2\n")
    write(tmp_path / "items.csv", "item_id,title\nx,Cité des enfants perdus (1995)\n"
          "y,\u201cQuoted\u201d (1996)\n", encoding="cp1252")
    write(tmp_path / "users.csv", "user_id,occupation\na,José's\n")
    result = clean(load_generic(tmp_path))
    items = result.dataset.items.set_index(F.ITEM_ID)[F.TITLE]
    assert items.to_dict() == {"x": "Cité des enfants perdus", "y": "\u201cQuoted\u201d"}
    assert result.counts["kept"] == 2 and result.rejects.empty
    assert result.dataset.notes == ("items.csv is not UTF-8: read as Windows-1252 (if its "
                                    "text reads wrong, it was written in another encoding: "
                                    "save it as UTF-8)",)


def test_bad_lines_belong_to_their_table(tmp_path: Path) -> None:
    write(tmp_path / "ratings.csv", HEADER + "a,x,4,1\na,y,3,2\n")
    write(tmp_path / "users.csv", "user_id,age\na,30\nb,40,extra\n")
    write(tmp_path / "items.csv", "item_id,title\nx,X\ny,Y\nz,Z,extra\n")
    ds = load_generic(tmp_path)
    assert sorted(ds.malformed["table"]) == [ITEMS, USERS]
    result = clean(ds)
    assert result.counts["total"] == 2 and result.counts["rejected"] == 0
    assert result.tables[USERS]["rejected"] == 1 and result.tables[ITEMS]["rejected"] == 1
    assert result.tables[RATINGS] == {"rows": 2, "kept": 2, "rejected": 0, "duplicate": 0}


LINES = {  # ratings line -> the reason it is rejected for
    "a,x,4,1,extra": "malformed",
    "a,x,4,noon": "bad_timestamp",  # not an integer: kept as text for cleaning
    ",x,4,2": "missing_field",
    "a,x,abc,3": "bad_rating",
    "a,x,9,4": "rating_out_of_range",
    "a,x,4,-5": "bad_timestamp",
    "zz,x,4,6": "unknown_user",
    "a,nope,4,7": "unknown_item",
    "a,y,2,8": "duplicate",
}


def test_every_reject_keeps_reason_line_and_raw_text(tmp_path: Path) -> None:
    good = ["a,y,4,100", "b,x,4,101", "b,y,4,102", "a,z,3,103", "b,z,5,104", "c,x,1,105",
            "c,y,2,106", "c,z,3,107", "d,x,4,108", "d,y,5,109"]
    body = [*LINES, *good]
    write(tmp_path / "ratings.csv", HEADER + "\n".join(body) + "\n", newline="\r\n")
    write(tmp_path / "users.csv", "user_id\na\nb\nc\nd\n")
    write(tmp_path / "items.csv", "item_id\nx\ny\nz\n")
    result = clean(load_generic(tmp_path))
    rejects = result.rejects.set_index("raw")
    assert set(rejects["reason"]) == set(REASONS)
    for number, text in enumerate(LINES, start=2):
        assert rejects.loc[text, "reason"] == LINES[text], text
        assert rejects.loc[text, "line"] == number and rejects.loc[text, "source"] == "ratings.csv"
    assert rejects.loc["a,x,abc,3", F.USER_ID] == "a"  # value-level: the fields, too
    assert result.counts["kept"] == len(good) and result.counts["total"] == len(body)


def test_parquet_rejects_show_row_values(tmp_path: Path) -> None:
    pd.DataFrame({F.USER_ID: ["a", "a"], F.ITEM_ID: ["x", "y"], F.RATING: ["4", "abc"],
                  F.TIMESTAMP: [1, 2]}).to_parquet(tmp_path / "ratings.parquet")
    result = clean(load_generic(tmp_path), max_reject_fraction=1.0)
    reject = result.rejects.iloc[0]
    assert reject["line"] == 2 and "'abc'" in reject["raw"] and reject["reason"] == "bad_rating"


def test_parquet_row_texts_are_the_row_dicts_repr() -> None:
    """Built column by column for speed, the text is what repr(row dict) writes, for
    every kind of Parquet value."""
    frame = pd.DataFrame({
        "user_id": ["a", None], "item_id": [1, 2], "rating": [4.0, float("nan")],
        "timestamp": pd.to_datetime(["2020-01-01", "2021-01-01"]),
        "genres": [["x"], np.array(["y"])], "n": pd.array([1, None], dtype="Int64")})
    assert row_texts(frame) == [repr(row) for row in frame.to_dict("records")]


def test_a_header_in_another_separator_or_encoding_says_so(tmp_path: Path) -> None:
    semicolons = tmp_path / "semi"
    semicolons.mkdir()
    (semicolons / "ratings.csv").write_text("user_id;item_id;rating;timestamp\nu1;i1;4;1\n")
    with pytest.raises(ValueError, match="looks ';'-separated: the CSV files must be comma"):
        load_generic(semicolons)
    utf16 = tmp_path / "utf16"
    utf16.mkdir()
    (utf16 / "ratings.csv").write_bytes(  # no byte order mark: only the NULs say UTF-16
        "user_id,item_id,rating,timestamp\nu1,i1,4,1\n".encode("utf-16-le"))
    with pytest.raises(ValueError, match=r"UTF-16\? save the file as UTF-8"):
        load_generic(utf16)
    # With one (PowerShell 5's `>` writes UTF-16 so), it is read, and the note says so.
    for codec in ("utf-16-le", "utf-16-be"):
        (utf16 / "ratings.csv").write_bytes(
            (BOM + "user_id,item_id,rating,timestamp\nJosé,i1,4,1\n").encode(codec))
        ds = load_generic(utf16)
        assert ds.ratings[F.USER_ID].tolist() == ["José"] and ds.malformed.empty
        assert ds.notes == ("ratings.csv is UTF-16, as its byte order mark says: read as such",)


def test_a_header_in_other_case_names_the_columns_it_meant(tmp_path: Path) -> None:
    csv_dir, parquet_dir = tmp_path / "csv", tmp_path / "parquet"
    csv_dir.mkdir(), parquet_dir.mkdir()
    (csv_dir / "ratings.csv").write_text("User_ID, Item ID,rating,timestamp\nu1,i1,4,1\n")
    with pytest.raises(ValueError, match=r"lower-case, as listed: 'User_ID' -> 'user_id', "
                       r"'Item ID' -> 'item_id'\)$"):
        load_generic(csv_dir)
    (csv_dir / "ratings.csv").write_text("userId,itemId,rating,timestamp\nu1,i1,4,1\n")
    with pytest.raises(ValueError, match=r"as listed: 'userId' -> 'user_id', 'itemId' -> "
                       r"'item_id'\)$"):  # camelCase, as JSON and JavaScript exports write
        load_generic(csv_dir)
    pd.DataFrame({"user_id": ["a"], "ITEM_ID": ["x"], "rating": [4.0], "timestamp": [1]}
                 ).to_parquet(parquet_dir / "ratings.parquet")
    with pytest.raises(ValueError, match=r"'ITEM_ID' -> 'item_id'\)$"):
        load_generic(parquet_dir)
    # A header that is simply wrong gets no such hint.
    (csv_dir / "ratings.csv").write_text("who,what,rating,timestamp\nu1,i1,4,1\n")
    with pytest.raises(ValueError, match=r"lacks required column\(s\) \['user_id', 'item_id'\]$"):
        load_generic(csv_dir)


def test_null_as_database_exports_write_it_is_a_missing_value(tmp_path: Path) -> None:
    """SQL Server and DBeaver write NULL, MySQL \\N, Excel #N/A: as text, a title "NULL"
    was encoded, "NULL" was a genre, and ratings without a user were one user "NULL"."""
    (tmp_path / "ratings.csv").write_text(
        HEADER + "a,x,4,1\na,y,3,2\nNULL,x,4,3\n\\N,y,4,4\nb,x,NULL,5\nb,y,4,NULL\nb,x,5,6\n"
        "b,y,2,7\n")
    (tmp_path / "items.csv").write_text(
        "item_id,title,genres,description,year\nx,NULL,NULL,\\N,NULL\n"
        "y,Why,Drama|NULL,#N/A,1999\n")
    (tmp_path / "users.csv").write_text(
        "user_id,age,gender,occupation\na,NULL,NULL,NULL\nb,30,F,x\n")
    result = clean(load_generic(tmp_path), max_reject_fraction=1.0)
    items = result.dataset.items.set_index(F.ITEM_ID)
    assert items.loc["x"].tolist() == ["", [], "", 0]
    assert items.loc["y"].tolist() == ["Why", ["Drama"], "", 1999]
    users = result.dataset.users.set_index(F.USER_ID)
    assert users.loc["a"].tolist() == [0, F.UNKNOWN, F.UNKNOWN]
    assert sorted(result.dataset.ratings[F.USER_ID].unique()) == ["a", "b"]
    assert result.rejects["reason"].tolist() == ["missing_field"] * 4
    assert result.rejects["detail"].tolist() == [
        "missing user_id", "missing user_id", "missing rating", "missing timestamp"]


def test_a_row_ending_in_a_comma_reads_as_the_row(tmp_path: Path) -> None:
    """Some exporters end every data row with a comma (not the header): each row was
    malformed, "expected 4 comma-separated fields, got 5". Only one empty field goes."""
    (tmp_path / "ratings.csv").write_text(
        HEADER + "a,x,4,1,\na,y,3,2, \na,z,5,3,,\nb,x,4,4,5\nb,y,4,5\n")
    ds = load_generic(tmp_path)
    assert ds.ratings[F.ITEM_ID].tolist() == ["x", "y", "y"]
    assert ds.malformed["line"].tolist() == [4, 5]
    assert ds.malformed["reason"].str.startswith("expected 4 comma-separated fields").all()


@pytest.mark.parametrize("text, says", [
    # Exports name the columns otherwise (Amazon reviews: reviewerID, asin, overall).
    ("reviewerID,asin,overall,unixReviewTime\nu,i,4,1\n", r"\(if these are them, rename: "
     r"'reviewerID' -> 'user_id', 'asin' -> 'item_id', 'overall' -> 'rating'\)$"),
    ("customer,product_id,rating\nu,i,4\n",
     r"rename: 'customer' -> 'user_id', 'product_id' -> 'item_id'\)$"),
    # One column in other case, one under an export name (ml-latest-small's header): each
    # gets its hint; the second was left for the next try.
    ("userId,movieId,rating,timestamp\nu,i,4,1\n", r"\(column names are lower-case, as "
     r"listed: 'userId' -> 'user_id'; if these are them, rename: 'movieId' -> 'item_id'\)$"),
    # u.data converted to CSV has no header.
    ("196,242,3,881250949\n186,302,3,891717742\n", r"\(the first line looks like data: the "
     r"file needs a header row, such as user_id,item_id,rating\)$"),
])
def test_a_header_of_export_names_or_of_data_says_what_it_needs(
        text: str, says: str, tmp_path: Path) -> None:
    """Both got the required names only."""
    (tmp_path / "ratings.csv").write_text(text)
    with pytest.raises(ValueError, match=says):
        load_generic(tmp_path)


def test_a_quote_left_open_at_the_end_of_the_file_costs_one_line(tmp_path: Path) -> None:
    """csv returns an open quote at the end of the input as one field holding the rest of
    the file: that would merge u2 into u1's occupation and lose u2 without a trace."""
    write(tmp_path / "ratings.csv", HEADER + "u1,x,4,1\nu2,x,3,2\n")
    write(tmp_path / "users.csv", 'user_id,age,gender,occupation\nu1,30,F,"writer\n'
          "u2,40,M,artist\n")
    write(tmp_path / "items.csv", 'item_id,title\nx,X\ny,"Y\n')
    ds = load_generic(tmp_path)
    assert ds.users[[F.USER_ID, F.OCCUPATION]].values.tolist() == [["u2", "artist"]]
    assert ds.items[F.ITEM_ID].tolist() == ["x"]
    assert ds.malformed[["table", "line", "raw"]].values.tolist() == [
        [USERS, 2, 'u1,30,F,"writer'], [ITEMS, 3, 'y,"Y']]
    assert ds.malformed["reason"].str.startswith("unbalanced quote: one opened on this line").all()


def test_a_field_longer_than_csvs_default_limit_is_read_whole(tmp_path: Path) -> None:
    """csv stops at 128 KiB per field; resuming inside the description turned its
    second line into an item of its own. The limit is raised for the read, then restored."""
    long = "z" * 140_000
    write(tmp_path / "ratings.csv", HEADER + "a,big,4,1\na,x,3,2\n")
    write(tmp_path / "items.csv", f'item_id,title,description\nbig,Big,"{long}\n'
          'chapter 2,more,text"\nx,X,short\n')
    limit = csv.field_size_limit()
    ds = load_generic(tmp_path)
    assert csv.field_size_limit() == limit
    assert ds.items[F.ITEM_ID].tolist() == ["big", "x"] and ds.malformed.empty
    assert ds.items[F.DESCRIPTION].iat[0] == f"{long}\nchapter 2,more,text"


def test_an_empty_rating_or_timestamp_is_a_missing_field(tmp_path: Path) -> None:
    write(tmp_path / "ratings.csv", HEADER + "a,x,4,1\na,y,3,2\nb,x,5,3\nb,y,,4\nb,z,4,\n"
          "b,w,4,soon\n")
    write(tmp_path / "items.csv", "item_id\nx\ny\nz\nw\n")
    result = clean(load_generic(tmp_path), max_reject_fraction=1.0)
    rejects = result.rejects.set_index("line")
    assert rejects.loc[5, ["reason", "detail"]].tolist() == ["missing_field", "missing rating"]
    assert rejects.loc[6, ["reason", "detail"]].tolist() == ["missing_field", "missing timestamp"]
    assert rejects.loc[5, F.TIMESTAMP] == 4 and isinstance(rejects.loc[5, F.TIMESTAMP], int)
    assert rejects.loc[7, ["reason", F.TIMESTAMP]].tolist() == ["bad_timestamp", "soon"]
    assert result.dataset.ratings[F.TIMESTAMP].dtype == "int64"
    assert result.dataset.ratings[F.RATING].dtype == "float64"


def test_an_age_or_year_that_is_not_a_whole_number_is_unknown(tmp_path: Path) -> None:
    write(tmp_path / "ratings.csv", HEADER + "".join(f"u{i},x,4,{i}\n" for i in range(6)))
    write(tmp_path / "users.csv", "user_id,age\nu0,abc\nu1,-7\nu2,37.9\nu3,37.0\nu4,\nu5,41\n")
    write(tmp_path / "items.csv", "item_id,year\nx,1999.0\n")
    ds = load_generic(tmp_path)
    assert ds.users[F.AGE].tolist() == [0, 0, 0, 37, 0, 41] and len(ds.users) == 6
    assert ds.items[F.YEAR].tolist() == [1999]


def test_an_age_group_is_its_lower_bound(tmp_path: Path) -> None:
    """Exports write age groups; each was unknown (0). MovieLens-1M codes its groups by
    their lower bound (25 = 25-34), and F.AGE_BOUNDARIES bucket them so."""
    write(tmp_path / "ratings.csv", HEADER + "".join(f"u{i},x,4,{i}\n" for i in range(5)))
    write(tmp_path / "users.csv", "user_id,age\nu0,25-34\nu1,55+\nu2,18 - 24\nu3,25-\nu4,30\n")
    assert load_generic(tmp_path).users[F.AGE].tolist() == [25, 55, 18, 0, 30]


def test_genres_separated_by_commas_or_semicolons_when_no_value_uses_a_bar(
        tmp_path: Path) -> None:
    """'Action, Comedy' was one genre: most combinations then shared the unknown bucket."""
    write(tmp_path / "ratings.csv", HEADER + "u0,x,4,1\nu0,y,4,2\nu0,z,4,3\n")
    for text, lists in (
        ('x,"Action, Comedy"\ny,Drama\nz,\n', [["Action", "Comedy"], ["Drama"], []]),
        ("x,Action;Comedy\ny,Drama\nz,Sci-Fi\n", [["Action", "Comedy"], ["Drama"], ["Sci-Fi"]]),
        ('x,Action|Comedy\ny,"Drama, Crime"\nz,\n', [["Action", "Comedy"], ["Drama, Crime"], []]),
    ):
        write(tmp_path / "items.csv", "item_id,genres\n" + text)
        assert load_generic(tmp_path).items[F.GENRES].tolist() == lists, text


def test_genres_written_as_a_list_read_as_that_list(tmp_path: Path) -> None:
    """pandas' to_csv writes a list cell as "['Action', 'Comedy']": split on ",", its
    genres were "['Action'" and "'Comedy']" (ml-latest-small so: its 19 genres became 69)."""
    write(tmp_path / "ratings.csv", HEADER + "u0,x,4,1\nu0,y,4,2\nu0,z,4,3\n")
    for text, lists in (
        ('x,"[\'Action\', \'Comedy\']"\ny,[\'Drama\']\nz,[]\n',
         [["Action", "Comedy"], ["Drama"], []]),
        ('x,"[""Action"", ""Comedy""]"\ny,Drama\nz,"[""(no genres listed)""]"\n',
         [["Action", "Comedy"], ["Drama"], []]),
        ('x,"[\'Action\', \'Comedy\']"\ny,Drama;Crime\nz,[not a list\n',  # lists no say
         [["Action", "Comedy"], ["Drama", "Crime"], ["[not a list"]]),
        ('x,[__import__("os")]\ny,Drama\nz,\n', [['[__import__("os")]'], ["Drama"], []]),
    ):
        write(tmp_path / "items.csv", "item_id,genres\n" + text)
        assert load_generic(tmp_path).items[F.GENRES].tolist() == lists, text


def test_fields_separated_by_a_comma_and_a_space_read_as_their_values(tmp_path: Path) -> None:
    """Hand-written files separate fields with ", ": a quoted field then began with a
    space, so csv kept its quotes ('"Movie 0"'), and a comma inside it split the row."""
    write(tmp_path / "ratings.csv", "user_id, item_id, rating, timestamp\nu1, x, 4, 1\n")
    write(tmp_path / "items.csv", 'item_id, title, genres\nx, "Heat, The (1995)", "Crime"\n')
    data = load_generic(tmp_path)
    assert data.malformed.empty
    assert data.items[[F.TITLE, F.YEAR]].values.tolist() == [["Heat, The", 1995]]
    assert data.items[F.GENRES].tolist() == [["Crime"]]
    assert data.ratings[[F.USER_ID, F.ITEM_ID]].values.tolist() == [["u1", "x"]]
