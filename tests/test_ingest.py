"""ingest() and `mtrec run` on bad input: private rejects, fail-fast exit code 2, rejects kept
when the run stops (issue 17)."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from mtrec import cli
from mtrec.contracts import features as F
from mtrec.data.checks import InsufficientDataError
from mtrec.data.cleaning import DataQualityError
from mtrec.data.privacy import pseudonymizer
from mtrec.ingest import REJECTS_FILE, IngestOptions, check, ingest
from mtrec.summary import render

KEY = b"k3y"
HEADER = "user_id,item_id,rating,timestamp\n"
GOOD = "".join(f"{u},{i},4,{t}\n" for t, (u, i) in enumerate(
    [(u, i) for u in ("alice", "bob") for i in ("x", "y", "z")], start=1))


def write_dir(path: Path, ratings: str, users: str | None = None, items: str | None = None) -> str:
    path.mkdir(parents=True, exist_ok=True)
    (path / "ratings.csv").write_text(ratings)
    if users is not None:
        (path / "users.csv").write_text(users)
    if items is not None:
        (path / "items.csv").write_text(items)
    return str(path)


def all_text(home: Path) -> str:
    """Every file under home, gunzipped where needed, as one string."""
    out = []
    for file in sorted(p for p in home.rglob("*") if p.is_file()):
        data = file.read_bytes()
        out.append((gzip.decompress(data) if file.suffix == ".gz" else data).decode("latin-1"))
    return "\n".join(out)


def private_input(tmp_path: Path) -> str:
    ratings = (HEADER + GOOD + "carol,x,abc,9\n"  # value-level reject
               + "dave,x,4\n"  # malformed; dave occurs nowhere else
               + "alice,nope,4,10\n")  # unknown item
    users = "user_id,age\nalice,30\nbob,40\ncarol,50\nerin,20,extra\n"
    return write_dir(tmp_path / "data", ratings, users, "item_id\nx\ny\nz\n")


def test_rejects_carry_pseudonyms_not_raw_ids(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = ingest("generic", private_input(tmp_path), str(home),
                    IngestOptions(pseudonymize_key=KEY))
    rejects = pd.read_csv(home / REJECTS_FILE, dtype=str, keep_default_na=False)
    pseudo = pseudonymizer(KEY)
    assert set(rejects[F.USER_ID]) == {pseudo(u) for u in ("carol", "dave", "alice", "erin")}
    bad_rating = rejects.loc[rejects["reason"] == "bad_rating", "raw"].item()
    assert bad_rating == f"{pseudo('carol')},x,abc,9"
    text = all_text(home)
    for raw_id in ("alice", "bob", "carol", "dave", "erin"):
        assert raw_id not in text, raw_id
    assert result.counts["rejected"] == 3 and result.tables["users"]["rejected"] == 1


def test_rejects_keep_raw_ids_only_when_asked_with_a_warning(tmp_path, caplog) -> None:
    home = tmp_path / "home"
    with caplog.at_level(logging.WARNING):
        ingest("generic", private_input(tmp_path), str(home),
               IngestOptions(pseudonymize_key=KEY, rejects_keep_raw_ids=True))
    assert "raw user ids" in caplog.text
    rejects = (home / REJECTS_FILE).read_text()
    assert "carol,x,abc,9" in rejects and "dave" in rejects


def test_empty_key_is_an_error_not_raw_ids(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(ValueError, match="empty"):
        ingest("generic", private_input(tmp_path), str(home), IngestOptions(pseudonymize_key=b""))
    assert not home.exists()


@pytest.mark.parametrize(
    "ratings,users,items,match",
    [
        (HEADER, None, None, "no ratings left"),  # header only
        (HEADER + "a,x,4,1\nb,y,4,2\n", None, None, "no eval rows"),  # 1 rating per user
        (HEADER + "a,x,4,1,train\n", None, None, "no eval rows"),
        (HEADER + GOOD, "user_id\n", None, "users table"),  # header-only users
        (HEADER + GOOD, "user_id\nzed\n", None, "users table"),  # matches nothing
        (HEADER + GOOD, None, "item_id\nq\n", "items table"),
    ],
)
def test_too_little_data_fails_at_ingestion(
    tmp_path: Path, ratings: str, users: str | None, items: str | None, match: str
) -> None:
    if ratings.endswith(",train\n"):
        ratings = ratings.replace(HEADER.strip(), HEADER.strip() + ",split", 1)
    path = write_dir(tmp_path / "data", ratings, users, items)
    with pytest.raises(InsufficientDataError, match=match):
        ingest("generic", path, str(tmp_path / "home"))
    assert not (tmp_path / "home" / "examples").exists()


def test_ids_written_as_floats_are_named(tmp_path: Path) -> None:
    """pandas writes an id column with a missing value as 7.0: every rating was an
    unknown item, and the message said only "from another data set?"."""
    ratings = HEADER + "a,7.0,4,1\na,8.0,4,2\nb,7.0,3,3\nb,8.0,5,4\n"
    path = write_dir(tmp_path / "data", ratings, None, "item_id\n7\n8\n")
    with pytest.raises(InsufficientDataError, match=r"matches none of the 4 ratings' item_ids; "
                       r".* such as '7.0', '8.0'; the items table such as '7', '8'. They differ "
                       r"by a '.0'"):
        ingest("generic", path, str(tmp_path / "home"))
    path = write_dir(tmp_path / "users", HEADER + "1.0,x,4,1\n", "user_id\n1\n", None)
    with pytest.raises(InsufficientDataError, match=r"user_ids; is it empty or from another "
                       r"data set\? They differ by a '.0'") as err:  # no user ids shown
        ingest("generic", path, str(tmp_path / "home"))
    assert "'1'" not in str(err.value)


def test_ids_that_lost_their_leading_zeros_are_named(tmp_path: Path) -> None:
    """An items file that went through a spreadsheet holds 7 where the ratings hold
    '007': every rating was an unknown item, and the message did not say why."""
    ratings = HEADER + "a,007,4,1\na,008,4,2\nb,007,3,3\nb,008,5,4\n"
    path = write_dir(tmp_path / "data", ratings, None, "item_id\n7\n8\n")
    with pytest.raises(InsufficientDataError, match=r"such as '007', '008'; the items table "
                       r"such as '7', '8'. They differ by leading zeros"):
        ingest("generic", path, str(tmp_path / "home"))
    path = write_dir(tmp_path / "other", ratings, None, "item_id\n70\n80\n")
    with pytest.raises(InsufficientDataError, match=r"such as '70', '80'.$"):  # no hint
        ingest("generic", path, str(tmp_path / "home"))


def test_eval_users_without_training_ratings_are_noted(tmp_path: Path) -> None:
    """A split that holds out whole users: recommend serves them by popularity, so the
    gate (a lift over popularity) cannot see one there; the run refused its model
    without saying why it could not."""
    ratings = (HEADER.strip() + ",split\na,x,4,1,train\na,y,4,2,eval\nb,x,4,3,train\n"
               "c,y,5,4,eval\nd,x,2,5,eval\n")
    checked = check("generic", write_dir(tmp_path / "data", ratings), str(tmp_path / "r.csv"))
    assert checked.clean.dataset.notes == (
        "2 of the eval split's 3 users have no training ratings: `recommend` serves such a "
        "user the most popular items, so on them the served NDCG@10 is popularity's, and "
        "the gate asks for a lift over popularity",)
    time_split = write_dir(tmp_path / "timed", HEADER + "a,x,4,1\na,y,4,2\nb,x,4,3\n")
    assert check("generic", time_split, str(tmp_path / "r.csv")).clean.dataset.notes == ()


def test_no_eval_rows_names_the_rejected_rows(tmp_path: Path) -> None:
    # split "holdout" is not a split: those rows are rejects, and the message says where
    # they went.
    path = write_dir(tmp_path / "data", HEADER.strip() + ",split\na,x,4,1,train\na,y,4,2,holdout\n"
                     "b,x,4,3,train\n")
    home = tmp_path / "home"
    with pytest.raises(InsufficientDataError, match=rf"no eval rows among 2 ratings \(split: "
                       rf"official, 1 more rejected: see {home / REJECTS_FILE}\)"):
        ingest("generic", path, str(home), IngestOptions(max_reject_fraction=1.0))
    rejects = pd.read_csv(home / REJECTS_FILE, dtype=str, keep_default_na=False)
    assert rejects["line"].tolist() == ["3"] and "'holdout'" in rejects["detail"][0]


def test_cli_exits_2_on_a_header_only_ratings_file(tmp_path: Path, capsys) -> None:
    path = write_dir(tmp_path / "data", HEADER)
    code = cli.main(["run", "--source", "generic", "--path", path,
                     "--home", str(tmp_path / "home")])
    assert code == 2
    assert "no ratings left to train on" in capsys.readouterr().err


def test_too_many_rejects_still_writes_rejects(tmp_path: Path) -> None:
    path = write_dir(tmp_path / "data", HEADER + "alice,x,4,1\nbob,x,9,2\nbob,y,4,bob\n"
                     "bob,z,4\n")
    home = tmp_path / "home"
    with pytest.raises(DataQualityError, match=REJECTS_FILE) as err:
        ingest("generic", path, str(home), IngestOptions(pseudonymize_key=KEY))
    assert str(home / REJECTS_FILE) in str(err.value)
    # The limit is named by the flag that sets it.
    assert "(75.0%, above the 50% limit of --max-reject-fraction)" in str(err.value)
    # The first reject as written (unreadable lines first, then rows), pseudonymised.
    assert "the first: ratings.csv line 5: malformed: expected 4" in str(err.value)
    assert "bob" not in str(err.value)
    rejects = pd.read_csv(home / REJECTS_FILE, dtype=str, keep_default_na=False)
    assert rejects["line"].tolist() == ["5", "3", "4"]
    assert rejects["reason"].tolist() == ["malformed", "rating_out_of_range", "bad_timestamp"]
    # A timestamp that is text is kept as such: the user id in it is pseudonymised too.
    assert rejects["timestamp"].tolist() == ["", "2", pseudonymizer(KEY)("bob")]
    assert "bob" not in (home / REJECTS_FILE).read_text()


def test_summary_shows_counts_per_table() -> None:
    tables = {"ratings": {"rows": 5, "kept": 4, "rejected": 1, "duplicate": 0},
              "users": {"rows": 13, "kept": 3, "rejected": 10, "duplicate": 0},
              "items": {"rows": 4, "kept": 2, "rejected": 1, "duplicate": 1}}
    data = {"counts": {"kept": 4, "rejected": 1, "total": 5, "bad_rating": 1},
            "rejects_path": "r.csv", "report": {"rows": {}}, "tables": tables}
    text = render({"data": data, "components": {}, "pushed_to": None})
    assert "users 13 read, 3 kept, 10 rejected" in text
    assert "items 4 read, 2 kept, 1 rejected, 1 duplicate" in text
    assert "data note" not in text
    noted = {**data, "notes": ["items.csv is not UTF-8: read as Windows-1252"]}
    text = render({"data": noted, "components": {}, "pushed_to": None})
    assert "\ndata note: items.csv is not UTF-8: read as Windows-1252\n" in text


def test_ids_with_a_quote_or_a_nul_are_pseudonymised_in_raw_text(tmp_path: Path) -> None:
    """csv doubles a quote inside an id ("x""y" in the raw line), and a NUL byte in a
    line makes it malformed with the id read around it: both forms were left in `raw`."""
    home = tmp_path / "home"
    ratings = HEADER + GOOD + '"x""y",x,4,-1\n' + "bob\0,y,4,100\n"
    ingest("generic", write_dir(tmp_path / "data", ratings, 'user_id\nalice\nbob\n"x""y"\n',
                                "item_id\nx\ny\nz\n"),
           str(home), IngestOptions(pseudonymize_key=KEY))
    rejects = pd.read_csv(home / REJECTS_FILE, dtype=str, keep_default_na=False)
    pseudo = pseudonymizer(KEY)
    assert rejects["raw"].tolist() == [f"{pseudo('bob')}\\x00,y,4,100",
                                       f'"{pseudo(chr(34).join("xy"))}",x,4,-1']
    assert 'x""y' not in all_text(home) and 'x"y' not in all_text(home)


def test_a_missing_header_row_does_not_print_the_first_rating(tmp_path: Path) -> None:
    data = write_dir(tmp_path / "data", "alice,x,4,1\nbob,y,3,2\n")
    with pytest.raises(ValueError, match=r"line 1, 4 fields; values withheld") as raised:
        ingest("generic", data, str(tmp_path / "home"), IngestOptions(pseudonymize_key=KEY))
    assert "alice" not in str(raised.value) and raised.value.__cause__ is None
    with pytest.raises(ValueError, match=r"header \['alice', 'x', '4', '1'\] lacks"):
        ingest("generic", data, str(tmp_path / "home"))  # no key: the header is shown


def test_examples_are_written_again_when_the_code_that_writes_them_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The examples folder is content-addressed by the data and by the code that writes
    it (data/, contracts/): an upgrade that changes a split or a feature must not
    reuse a folder written the old way (the pipeline would retrain on it)."""
    data = write_dir(tmp_path / "data", HEADER + GOOD)
    home = str(tmp_path / "home")
    first = ingest("generic", data, home, IngestOptions()).examples_root
    assert ingest("generic", data, home, IngestOptions()).examples_root == first  # reused
    monkeypatch.setattr("mtrec.ingest.examples_code", lambda: "other code")
    second = ingest("generic", data, home, IngestOptions()).examples_root
    assert second != first and Path(second, "train").is_dir()


def test_repeated_user_and_item_rows_are_rejects_and_the_last_is_kept(tmp_path: Path) -> None:
    """A users/items row whose id a later row holds was dropped with only a count, and
    the first row won (add-items and ratings keep the last); now each is a `duplicate`
    reject naming the line kept, its raw id pseudonymised, and read = kept + rejected."""
    users = "user_id,age\nalice,30\nbob,40\nalice,31\n"
    items = "item_id,title\nx,Old X\ny,Y\nz,Z\nx,New X\n"
    rejects_path = tmp_path / "rejects.csv"
    result = check("generic", write_dir(tmp_path / "data", HEADER + GOOD, users, items),
                   str(rejects_path), IngestOptions(pseudonymize_key=KEY)).clean
    kept = result.dataset
    assert kept.users.set_index(F.USER_ID)[F.AGE].to_dict() == {"bob": 40, "alice": 31}
    assert kept.items.set_index(F.ITEM_ID)[F.TITLE].to_dict() == {
        "y": "Y", "z": "Z", "x": "New X"}
    assert list(kept.users.columns) == [F.USER_ID, F.AGE, F.GENDER, F.OCCUPATION]
    assert result.tables["users"] == {"rows": 3, "kept": 2, "rejected": 1, "duplicate": 1,
                                      "derived": False}
    assert result.tables["items"]["rejected"] == result.tables["items"]["duplicate"] == 1
    rejects = pd.read_csv(rejects_path, dtype=str, keep_default_na=False)
    assert rejects[["table", "source", "line", "item_id", "reason"]].values.tolist() == [
        ["users", "users.csv", "2", "", "duplicate"], ["items", "items.csv", "2", "x",
                                                       "duplicate"]]
    assert rejects["detail"].tolist() == ["line 4, later, has the same user_id and is kept",
                                          "line 5, later, has the same item_id and is kept"]
    assert rejects["user_id"][0] == pseudonymizer(KEY)("alice")
    assert rejects["raw"].tolist() == [f"{pseudonymizer(KEY)('alice')},30", "x,Old X"]


def test_ids_only_rejected_ratings_hold_are_not_made_up_users_or_items(tmp_path: Path) -> None:
    """Without users/items files, a table is one row per rated id: ids of rejected ratings
    only (a rating "abc", an empty user id) were users, and catalogue items to serve."""
    ratings = HEADER + GOOD + "ghost,phantom,abc,7\n,x,4,8\n"
    result = check("generic", write_dir(tmp_path / "data", ratings),
                   str(tmp_path / "rejects.csv")).clean
    assert sorted(result.dataset.users[F.USER_ID]) == ["alice", "bob"]
    assert sorted(result.dataset.items[F.ITEM_ID]) == ["x", "y", "z"]
    assert result.tables["items"]["kept"] == 3 and result.tables["items"]["derived"]


def test_user_ids_as_json_and_floats_write_them_are_pseudonymised_in_rejects(
        tmp_path: Path) -> None:
    """json.dumps writes "tedé05" as "ted\\u00e905", a float column 3003 as 3003.0, and a
    user id in the item_id column (swapped columns) was kept there: all three stayed
    readable in a pseudonymised run's rejects.csv."""
    rows = [{"user_id": u, "item_id": i, "rating": r, "timestamp": t} for t, (u, i, r) in
            enumerate([("tedé05", "x", 4), ("tedé05", "y", "bad"), (3003.0, "x", "x"),
                       (3003, "y", 4), ("alice", "3003", 4), ("alice", "x", 4),
                       ("alice", "y", 4), ("bob", "x", 4), ("bob", "y", 5)], start=1)]
    data = tmp_path / "data"
    data.mkdir()
    (data / "ratings.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "items.csv").write_text("item_id\nx\ny\n")
    rejects_path = tmp_path / "rejects.csv"
    check("generic", str(data), str(rejects_path), IngestOptions(pseudonymize_key=KEY))
    text = rejects_path.read_text()
    rejects = pd.read_csv(rejects_path, dtype=str, keep_default_na=False)
    assert rejects["reason"].tolist() == ["bad_rating", "bad_rating", "unknown_item"]
    assert "ted" not in text and "3003" not in text, text
    assert rejects["item_id"].tolist()[-1] == pseudonymizer(KEY)("3003")



def test_a_detail_in_mtrecs_own_words_stays_readable_under_numeric_user_ids(
        tmp_path: Path) -> None:
    """With user ids 1..N (MovieLens), every number in a detail was a user id: "line 3,
    later, ..." read "line <pseudonym>". A detail with an input value in it (a parser's
    words, an out-of-range rating) is still redacted: that value could be a user id."""
    ratings = HEADER + "".join(f"{u},{i},4,{t}\n" for t, (u, i) in enumerate(
        [(u, i) for u in ("1", "2", "3", "7") for i in ("x", "y")], start=1)) + "2,x,7,20\n"
    users = "user_id,age\n2,40\n2,41\n1,30\n3,50\n7,60\n"
    rejects_path = tmp_path / "rejects.csv"
    check("generic", write_dir(tmp_path / "data", ratings, users, "item_id\nx\ny\n"),
          str(rejects_path), IngestOptions(pseudonymize_key=KEY, max_reject_fraction=1))
    rejects = pd.read_csv(rejects_path, dtype=str, keep_default_na=False).set_index("reason")
    assert rejects.loc["duplicate", "detail"] == "line 3, later, has the same user_id and is kept"
    assert rejects.loc["rating_out_of_range", "detail"] == (
        f"rating {pseudonymizer(KEY)('7')} is outside [0.5, 5]")
