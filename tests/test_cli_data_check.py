"""`mtrec data check`: ingestion and cleaning only, the rejects report in seconds."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from mtrec.cli import main


def test_data_check_prints_the_rejects_report(tmp_path: Path, capsys, monkeypatch):
    data = tmp_path / "in"
    data.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # no --rejects: kept, not in /tmp
    rows = ["user_id,item_id,rating,timestamp"]
    rows += [f"u{u},i{i},{1 + (u + i) % 5},{1000 + 10 * i}" for u in range(6) for i in range(5)]
    rows += ["u1,i1,9,1", "u2,i2,x,2"]  # out of range, not a number
    (data / "ratings.csv").write_text("\n".join(rows) + "\n")
    rejects = tmp_path / "bad.csv"
    code = main(["data", "check", "--source", "generic", "--path", str(data),
                 "--rejects", str(rejects)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ratings: 32 read, 30 kept, 2 rejected" in out
    assert "rejected rating_out_of_range: 1" in out and "rejected bad_rating: 1" in out
    assert "split: train" in out and "(per-user time, latest 0.2 to eval)" in out
    assert str(rejects) in out
    assert len(rejects.read_text().splitlines()) == 3  # header + the 2 rejected rows
    # No users or items file: their rows were made up from the ratings, not read.
    assert "users: 6 (no users file: one per rated id)" in out
    assert "items: 5 (no items file: one per rated id)" in out
    assert "note: no item has a title, genres, a year or a description, so `mtrec run` " \
        "will leave the text encoder out" in out
    assert "note: no item has genres, so `mtrec run` will leave the interest task out" in out
    (data / "users.csv").write_text("user_id\n" + "".join(f"u{u}\n" for u in range(6)))
    assert main(["data", "check", "--source", "generic", "--path", str(data)]) == 0
    out = capsys.readouterr().out
    assert "users: 6 read, 6 kept, 0 rejected" in out and "items: 5 (no items file" in out
    assert "implicit feedback" not in out
    # One rating value: the report says what `mtrec run` will make of it.
    (data / "ratings.csv").write_text("\n".join(
        ["user_id,item_id,rating,timestamp"]
        + [f"u{u},i{i},1,{1000 + 10 * i}" for u in range(6) for i in range(5)]) + "\n")
    assert main(["data", "check", "--source", "generic", "--path", str(data)]) == 0
    assert "note: every rating is 1 (implicit feedback)" in capsys.readouterr().out
    # An items file saved by Excel on Windows: read, and the report says how.
    (data / "items.csv").write_bytes(("item_id,title\n" + "".join(
        f"i{i},Cité {i}\n" for i in range(5))).encode("cp1252"))
    assert main(["data", "check", "--source", "generic", "--path", str(data)]) == 0
    out = capsys.readouterr().out
    assert "items: 5 read, 5 kept, 0 rejected" in out
    assert "note: items.csv is not UTF-8: read as Windows-1252" in out
    # A users or items reject says why, as the ratings' do, with the first one's detail.
    (data / "items.csv").write_bytes(("item_id,title\n" + "".join(
        f"i{i},Amélie {i}\n" for i in range(5))).encode() + b"i5,Cit\xe9\n")
    assert main(["data", "check", "--source", "generic", "--path", str(data)]) == 0
    out = capsys.readouterr().out
    assert "items: 6 read, 5 kept, 1 rejected\n  rejected malformed: 1 (the first: items.csv " \
        "line 7: not valid utf-8: unexpected end of data)\n" in out
    assert "Windows-1252" not in out


def test_data_check_fails_clearly_when_most_rows_are_bad(tmp_path: Path, capsys, monkeypatch):
    data = tmp_path / "in"
    data.mkdir()
    (data / "ratings.csv").write_text("user_id,item_id,rating,timestamp\nu1,i1,x,1\nu1,i2,7,2\n")
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    code = main(["data", "check", "--source", "generic", "--path", str(data)])
    err = capsys.readouterr().err
    assert code == 2 and "error:" in err
    (kept,) = temp.glob("mtrec-data-check-*/rejects.csv")  # the rows the error names
    assert str(kept) in err and len(kept.read_text().splitlines()) == 3

    rejects = tmp_path / "bad.csv"
    code = main(["data", "check", "--source", "generic", "--path", str(data),
                 "--rejects", str(rejects)])
    err = capsys.readouterr().err
    assert code == 2 and f"the rejected rows are in {rejects}" in err
    assert len(rejects.read_text().splitlines()) == 3
    assert len(list(temp.iterdir())) == 1  # the first check's folder; none left by this one


@pytest.mark.parametrize("where", ["a_folder", "new_folder/"])
def test_data_check_writes_rejects_csv_into_a_folder(where: str, tmp_path: Path, capsys):
    """A --rejects folder was a traceback (an existing one) or became a file named as
    the folder (a new one with a trailing slash: pathlib drops the slash)."""
    (tmp_path / "a_folder").mkdir()
    assert main(["data", "check", "--rejects", f"{tmp_path}/{where}"]) == 0
    written = tmp_path / where.rstrip("/") / "rejects.csv"
    assert written.read_text().startswith("table,source,line,")
    assert f"rejected rows: {tmp_path}/{where.rstrip('/')}/rejects.csv" in capsys.readouterr().out


def test_data_check_refuses_a_rejects_path_under_a_file_before_reading(tmp_path: Path, capsys):
    """It was "error: [Errno 17] File exists", naming only the file, after ingestion."""
    (tmp_path / "a_file").write_text("x")
    target = tmp_path / "a_file" / "rejects.csv"
    assert main(["data", "check", "--rejects", str(target)]) == 2
    assert capsys.readouterr().err == (
        f"error: --rejects {target}: {tmp_path / 'a_file'} is a file, so no folder can be "
        "made under it\n")


def test_data_check_leaves_no_temporary_folder(tmp_path: Path, capsys, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    rejects = tmp_path / "bad.csv"
    assert main(["data", "check", "--rejects", str(rejects)]) == 0  # the sample data
    assert rejects.exists() and str(rejects) in capsys.readouterr().out
    missing = tmp_path / "nowhere"
    assert main(["data", "check", "--source", "generic", "--path", str(missing)]) == 2
    assert "error:" in capsys.readouterr().err
    assert not list(temp.iterdir())


def test_data_check_pseudonymises_rejects_as_run_does(tmp_path: Path, capsys, monkeypatch):
    """A pseudonymised `mtrec run` writes no raw user id to rejects.csv, but `data check`,
    its preview, had no such flag: the preview wrote them."""
    data = tmp_path / "in"
    data.mkdir()
    rows = [f"carol{u},i{i},4,{10 * i}" for u in range(4) for i in range(4)]
    (data / "ratings.csv").write_text("user_id,item_id,rating,timestamp\n"
                                      + "\n".join([*rows, "carol1,i1,abc,99"]) + "\n")
    (data / "users.csv").write_text("user_id\n" + "".join(f"carol{u}\n" for u in (0, 1, 2, 3, 2)))
    monkeypatch.setenv("MTREC_TEST_KEY", "k3y")
    rejects = tmp_path / "out" / "rejects.csv"
    assert main(["data", "check", "--source", "generic", "--path", str(data), "--rejects",
                 str(rejects), "--pseudonymize-key-env", "MTREC_TEST_KEY"]) == 0
    out = capsys.readouterr().out
    assert "rejected bad_rating: 1" in out and "users: 5 read, 4 kept, 1 rejected" in out
    assert "carol" not in rejects.read_text() and "carol" not in out
    monkeypatch.delenv("MTREC_TEST_KEY")
    assert main(["data", "check", "--source", "generic", "--path", str(data),
                 "--pseudonymize-key-env", "MTREC_TEST_KEY"]) == 2
    assert "--pseudonymize-key-env: env MTREC_TEST_KEY is not set" in capsys.readouterr().err


def test_one_genre_on_every_item_is_noted_as_no_interest_task(tmp_path: Path, capsys):
    """Every item "Drama": the interest AUC had no negatives to rank (Keras reads 0.0;
    over the 32-column multi-hot it read 0.998)."""
    data = tmp_path / "in"
    data.mkdir()
    rows = [f"u{u},i{i},{1 + (u + i) % 5},{1000 + 10 * i}" for u in range(6) for i in range(5)]
    (data / "ratings.csv").write_text("user_id,item_id,rating,timestamp\n" + "\n".join(rows))
    (data / "items.csv").write_text("item_id,genres\n" + "".join(
        f"i{i},Drama\n" for i in range(5)))
    assert main(["data", "check", "--source", "generic", "--path", str(data),
                 "--rejects", str(tmp_path / "r.csv")]) == 0
    out = capsys.readouterr().out
    assert "note: the items have one genre, so `mtrec run` will leave the interest task out" \
        in out


@pytest.mark.parametrize("ratings, says", [((4, 5, 4), "only likes (6)"), ((1, 4, 5), None)])
def test_data_check_names_an_eval_split_of_one_like_class(ratings, says, tmp_path: Path, capsys):
    """What `mtrec run` will do with it: the relevance AUC reported, not bounded."""
    data = tmp_path / "in"
    data.mkdir()
    rows = [f"u{u},i{i},{ratings[(u + i) % 3]},{100 * u + i}" for u in range(6) for i in range(5)]
    (data / "ratings.csv").write_text("user_id,item_id,rating,timestamp\n" + "\n".join(rows))
    assert main(["data", "check", "--source", "generic", "--path", str(data),
                 "--rejects", str(tmp_path / "r.csv")]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "AUC" in line]
    assert notes == ([f"note: the eval split has {says}, so the relevance AUC is undefined: "
                      "`mtrec run` will report it without bounding it, leaving the ranking's "
                      "decision to the served-path gate"] if says else [])
