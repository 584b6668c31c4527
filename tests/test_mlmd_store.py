"""A home's metadata.sqlite that ML Metadata cannot open is one clear error.

It was a RuntimeError naming MLMD's failed SQL query, not the file: `mtrec run`
ingested, failed in the pipeline and printed a traceback; `mtrec report` and
`mtrec add-items` printed only the traceback. The store is the record of the
home's runs, so every command leaves it as it was.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mtrec.cli import main
from mtrec.pipeline.mlmd_store import StoreError, open_store, store_problem
from mtrec.run_state import latest_pushed_run


def _garbage(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    store = home / "metadata.sqlite"
    store.write_bytes(b"not a database, a copy cut short" * 40)
    return store


def test_open_store_names_the_file_and_why(tmp_path: Path):
    store = _garbage(tmp_path)
    with pytest.raises(StoreError) as err:
        open_store(str(store))
    assert str(err.value).startswith(f"{store}: ML Metadata cannot read it (file is not a "
                                      "database)")
    assert "CREATE TABLE" not in str(err.value)


def test_store_problem_tells_apart_mlmd_empty_and_foreign_files(tmp_path: Path):
    mlmd = tmp_path / "mlmd.sqlite"
    mlmd.touch()
    open_store(str(mlmd), writable=True)  # a new, empty MLMD store in it
    assert store_problem(str(mlmd)) is None
    assert latest_pushed_run(str(mlmd)) == {}
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    assert store_problem(str(empty)) == (
        f"{empty}: empty: no run has recorded anything in this home yet")
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE notes (text)")
    problem = store_problem(str(foreign))
    assert problem is not None and "(a database without ML Metadata's tables)" in problem


@pytest.mark.parametrize("argv", [["run", "--home", "{home}"], ["report", "{home}"],
                                  ["add-items", "--home", "{home}", "--items", "{items}"]])
def test_commands_refuse_an_unreadable_store_and_keep_it(argv, tmp_path: Path, capsys):
    home = tmp_path / "home"
    store = _garbage(home)
    before = store.read_bytes()
    items = tmp_path / "new.csv"
    items.write_text("item_id,title\nx1,A New Film\n")
    assert main([a.format(home=home, items=items) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {store}: ML Metadata cannot read it (file is not a database)")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert store.read_bytes() == before
    assert sorted(p.name for p in home.iterdir()) == ["metadata.sqlite"]  # nothing ingested


def test_add_items_on_a_home_that_pushed_nothing_says_so(tmp_path: Path, capsys):
    """Said from MLMD before TensorFlow loads: 0.5 s where it was 9.8 s."""
    (tmp_path / "metadata.sqlite").touch()
    open_store(str(tmp_path / "metadata.sqlite"), writable=True)
    items = tmp_path / "new.csv"
    items.write_text("item_id,title\nx1,A New Film\n")
    assert main(["add-items", "--home", str(tmp_path), "--items", str(items)]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path}: no run pushed a model yet, so there is no served catalogue "
        "to add items to\n")
