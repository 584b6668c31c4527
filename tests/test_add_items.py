"""mtrec/add_items.py's reading of the items given (the whole command runs in
tests/test_pipeline_e2e.py)."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from ml_metadata.proto import metadata_store_pb2

import mtrec.add_items as adding
import mtrec.commands.add_items as command
import mtrec.items_file as items_file
from mtrec.add_items import holds_items, item_notes, items_digest
from mtrec.components.atomic_pusher.executor import mark_extension
from mtrec.contracts import pipeline as P
from mtrec.items_file import canonical, latest_per_id, read_given_items, read_new_items
from mtrec.pipeline.home_paths import LocalPaths
from mtrec.run_state import NodeRun


def test_an_id_given_twice_keeps_its_last_row() -> None:
    """A file that repeated an id pushed both rows ("catalogue now 801 items (2 added)")
    and kept both in added_items/; as across calls, the later row replaces the earlier."""
    items = pd.DataFrame({
        "item_id": ["d1", "d2", "d1"],
        "title": ["Dup One (2020)", "Two (2021)", "Dup One Again (2021)"],
        "year": ["2020", None, "2021"],
    })
    kept = latest_per_id(items)
    assert kept["item_id"].tolist() == ["d2", "d1"]
    assert kept["title"].tolist() == ["Two (2021)", "Dup One Again (2021)"]
    assert kept["year"].tolist() == ["", "2021"]  # a missing value reads as empty, as before


def test_an_empty_item_id_is_refused_with_its_line(tmp_path: Path) -> None:
    """A row with a blank id was pushed as a catalogue item "" that recommend could return."""
    path = tmp_path / "new_items.csv"
    path.write_text("item_id,title\nn9,Nine (2020)\n ,Blank\n")
    with pytest.raises(ValueError, match=r"empty item_id on line\(s\) 3$"):
        read_new_items(str(path))
    path.write_text("item_id,title\nn9,Nine (2020)\nNULL,Null\n")  # an export's missing id
    with pytest.raises(ValueError, match=r"empty item_id on line\(s\) 3$"):
        read_new_items(str(path))
    path.write_text("item_id,title\nn9,Nine (2020)\nn9,Nine Again (2021)\n")
    assert read_new_items(str(path))["title"].tolist() == ["Nine Again (2021)"]


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_an_empty_items_file_is_refused_with_its_path(text: str, tmp_path: Path) -> None:
    """pandas' "No columns to parse from file" named no file."""
    path = tmp_path / "new_items.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"^{path}: empty file, need a header line"):
        read_new_items(str(path))


def test_a_header_without_rows_says_so(tmp_path: Path) -> None:
    """It was told "'item_id' -> 'item_id'", a rename to the name it had."""
    path = tmp_path / "new_items.csv"
    path.write_text("item_id,title,genres\n")
    with pytest.raises(ValueError, match=r"at least one row \(it has a header and no rows\)$"):
        read_new_items(str(path))


def test_an_item_id_header_in_other_case_is_named(tmp_path: Path) -> None:
    path = tmp_path / "new_items.csv"
    path.write_text("Item_ID,title\nn1,New\n")
    with pytest.raises(ValueError, match=r"at least one row \(column names are lower-case, as "
                       r"listed: 'Item_ID' -> 'item_id'\)$"):
        read_new_items(str(path))


def test_a_semicolon_separated_file_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "new_items.csv"
    path.write_text("item_id;title\nn1;New\n")
    with pytest.raises(ValueError, match=r"it looks ';'-separated"):
        read_new_items(str(path))


def test_a_parquet_or_comma_genres_file_reads_as_mtrec_run_would(tmp_path: Path) -> None:
    """`mtrec run` reads items.parquet; add-items read only CSV (a UnicodeDecodeError)."""
    frame = pd.DataFrame({"item_id": ["p1", "p2"], "title": ["One", None],
                          "genres": [["Drama", "War"], []], "year": [1999, 2001]})
    frame.to_parquet(tmp_path / "new.parquet")
    items = read_new_items(str(tmp_path / "new.parquet"))
    assert items.to_dict("list") == {"item_id": ["p1", "p2"], "title": ["One", ""],
                                     "genres": ["Drama|War", ""], "year": ["1999", "2001"]}
    pd.DataFrame({"item_id": [7.0, 8.0]}).to_parquet(tmp_path / "floats.parquet")
    assert read_new_items(str(tmp_path / "floats.parquet"))["item_id"].tolist() == ["7", "8"]
    (tmp_path / "commas.csv").write_text('item_id,genres\nc1,"Drama, War"\nc2,Comedy\n')
    assert read_new_items(str(tmp_path / "commas.csv"))["genres"].tolist() == [
        "Drama|War", "Comedy"]  # as mtrec run reads an items file that never uses "|"
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match=r"bad.parquet: not a readable Parquet file"):
        read_new_items(str(tmp_path / "bad.parquet"))
    (tmp_path / "spaced.csv").write_text('item_id, title\ns1, "Heat, The"\n')  # as run reads it
    assert read_new_items(str(tmp_path / "spaced.csv"))["title"].tolist() == ["Heat, The"]
    (tmp_path / "new.xlsx").write_bytes(b"PK\x03\x04\x14\x00")  # was "need an item_id column"
    with pytest.raises(ValueError, match=r"new.xlsx: a ZIP archive \(an .xlsx or .ods "
                       r"spreadsheet is one\): save the sheet as CSV"):
        read_new_items(str(tmp_path / "new.xlsx"))


def test_notes_say_what_the_file_loses_or_replaces(tmp_path: Path) -> None:
    """Each was silent: a repeated id's first row, a genre outside the model's vocabulary
    (one shared unknown bucket), a year like "1990s" (unknown), an earlier call's row."""
    path = tmp_path / "new_items.csv"
    path.write_text("item_id,title,genres,year\n"
                    "a1,First,Drama|Cyberpunk,1990s\n"
                    "a1,First again,drama|Cyberpunk,1990s\n"
                    "a2,Two,Comedy,\n"
                    "a3,Three,,2000\n")
    given, read_notes = read_given_items(str(path))
    assert read_notes == []
    earlier = pd.DataFrame({"item_id": ["a2", "a3"], "title": ["Two", "Old three"],
                            "genres": ["Comedy", ""], "year": ["", "2000"]})
    assert item_notes(given, earlier, {"drama", "comedy"}) == [
        "1 item id(s) given more than once (a1): the last row of each is used",
        "1 item id(s) added by an earlier add-items call (a3): this file's row replaces theirs",
        "1 genre(s) the model was not trained on (Cyberpunk): they count as one unknown "
        "genre; known: comedy, drama",
        "1 year(s) that are not whole numbers (1990s): read from the title's trailing "
        '"(1995)" where it has one, else as unknown',
    ]
    replaced = given.assign(genres=["Noir", "Drama", "Comedy", ""], year=["x", "1", "", "2000"])
    assert item_notes(replaced, None, {"drama", "comedy"}) == [  # a1's first row is unused
        "1 item id(s) given more than once (a1): the last row of each is used"]
    assert item_notes(given.iloc[[2]], None, set()) == [
        "1 genre(s) the model was not trained on (Comedy): they count as one unknown genre; "
        "the model was trained without genres"]
    clean = given.iloc[[2]]  # a2 as the earlier call gave it: no note
    assert item_notes(clean, earlier, {"drama", "comedy"}) == []


def test_a_windows_1252_file_is_read_as_ingestion_reads_it(tmp_path: Path) -> None:
    """pandas' UnicodeDecodeError refused the whole file; `mtrec run` reads it, so does
    add-items, and says so. Broken UTF-8 (a UTF-8 accent and a stray byte) is refused."""
    path = tmp_path / "new_items.csv"
    path.write_bytes("item_id,title\nn1,Cité (2021)\n".encode("cp1252"))
    items, notes = read_given_items(str(path))
    assert items["title"].tolist() == ["Cité (2021)"]
    assert len(notes) == 1
    assert notes[0].startswith("new_items.csv is not UTF-8: read as Windows-1252 (")
    path.write_bytes("item_id,title\nn1,Amélie\n".encode() + b"n2,Cit\xe9\n")
    with pytest.raises(ValueError, match=r"new_items.csv: not valid utf-8 text; save it as"):
        read_given_items(str(path))


def test_a_json_lines_file_reads_as_ingestion_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "new_items.jsonl"
    path.write_text('{"item_id": 7.0, "title": "Seven", "genres": ["Drama", "Noir"]}\n'
                    '{"item_id": "n8", "title": null, "year": 2021}\n')
    items, notes = read_given_items(str(path))
    assert notes == [] and items["item_id"].tolist() == ["7", "n8"]
    assert items["title"].tolist() == ["Seven", ""] and items["year"].tolist() == ["", "2021"]
    assert items["genres"].tolist() == ["Drama|Noir", ""]
    path.write_text('{"item_id": "n9"}\n{"item_id": \n')
    with pytest.raises(ValueError, match=r"new_items.jsonl: line 2: not JSON: Expecting value"):
        read_given_items(str(path))


def test_movielens_movies_csv_reads_its_movie_id_as_the_item_id(tmp_path: Path) -> None:
    """A user of --source ml-latest-small adding films in its own movies.csv format was
    told to rename movieId, a column their run had read."""
    path = tmp_path / "movies.csv"
    path.write_text("movieId,title,genres\n200001,New Film (2021),Drama|Comedy\n")
    items, notes = read_given_items(str(path))
    assert items["item_id"].tolist() == ["200001"]
    assert notes == ["read movieId as item_id (MovieLens' movies.csv)"]


def test_a_bad_items_file_is_refused_before_tensorflow_loads(tmp_path: Path) -> None:
    """It took 11 s (TensorFlow's import) to refuse a header; the file comes first now."""
    path = tmp_path / "new.csv"
    path.write_text("id,name\nn1,New\n")
    code = ("import sys; from mtrec.cli import main; "
            f"rc = main(['add-items', '--home', {str(tmp_path / 'nowhere')!r}, '--items', "
            f"{str(path)!r}]); print(rc, 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.split() == ["2", "False"]
    assert "new.csv: need an item_id column and at least one row" in done.stderr


def test_add_items_reads_the_file_once(tmp_path: Path, monkeypatch) -> None:
    """The command checked the file before TensorFlow loaded, then add_items read it
    again: twice the work, and a file changed in between was added unchecked."""
    reads: list[str] = []
    read_table = items_file._read_table
    monkeypatch.setattr(items_file, "_read_table",
                        lambda path: reads.append(path) or read_table(path))
    given: list[tuple[pd.DataFrame, list[str]]] = []
    monkeypatch.setattr(adding, "_add_items", lambda home, read: given.append(read) or "v1")
    monkeypatch.setattr(command, "run_home_problem", lambda home: None)
    monkeypatch.setattr(command, "latest_pushed_run", lambda store: {"run": 1})
    monkeypatch.setattr(command, "home_lock", lambda home: contextlib.nullcontext())
    path = tmp_path / "new.csv"
    path.write_text("item_id,title\nn1,New (2021)\n")
    args = argparse.Namespace(home=str(tmp_path), items=str(path))
    assert command.run_add_items(args) == 0
    assert reads == [str(path)]
    assert given[0][0]["item_id"].tolist() == ["n1"]


def test_columns_add_items_does_not_read_are_named(tmp_path: Path) -> None:
    """`Title` and `Genres` were dropped without a word: the item served with no text."""
    path = tmp_path / "new_items.csv"
    path.write_text("item_id,Title,Genres,desc\nc1,Capital Title,Drama,some words\n")
    assert read_given_items(str(path))[1] == [
        "column(s) not read: Title, Genres, desc (an items file's columns are item_id, title, "
        "genres, description, year) (column names are lower-case, as listed: 'Title' -> "
        "'title', 'Genres' -> 'genres')"]


def test_a_repeat_is_nothing_new_only_while_its_version_is_the_newest(tmp_path: Path) -> None:
    """The record alone said "nothing new" of items that a re-run's plain copy of the
    model, or a rollback, had taken out of service; add-items then refused to re-add."""
    items = pd.DataFrame({"item_id": ["n1"], "title": ["New"]})
    base = tmp_path / "serving"
    for version, extends, digest in ((1, "", ""), (2, "model-a", items_digest(items)),
                                     (3, "", "")):
        folder = base / str(version)
        folder.mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(b"")
        if extends:
            mark_extension(str(folder), extends, digest)
    assert holds_items(str(base), "model-a", items_digest(items)) is None  # 3: a plain copy
    shutil.rmtree(base / "3")  # rolled back to the extension
    assert holds_items(str(base), "model-a", items_digest(items)) == str(base / "2")
    more = pd.concat([items, pd.DataFrame({"item_id": ["n2"], "title": ["Newer"]})])
    assert holds_items(str(base), "model-a", items_digest(more)) is None
    assert holds_items(str(base), "model-b", items_digest(items)) is None



def test_added_items_fit_the_schema_as_ingested_items_do() -> None:
    """40 genres or a year after 2100 passed add-items unchanged (ingestion fits them)."""
    many = "|".join(f"g{i}" for i in range(40))
    given = pd.DataFrame({"item_id": ["n1", "n2"], "genres": [many, "Drama"],
                          "year": ["2200", "1999"]})
    table = canonical(given)
    assert [len(g) for g in table["genres"]] == [32, 1]
    assert list(table["year"]) == [0, 1999]
    notes = item_notes(given, None, {"drama"})
    assert "1 year(s) after 2100: read as unknown" in notes
    assert "1 item(s) with more than 32 genres: each keeps its first 32" in notes


def _pushed(tmp_path: Path, name: str, fingerprint: bytes) -> dict[str, NodeRun]:
    """A pushed run as MLMD gives it, its PushedModel archive holding `fingerprint`."""
    archive = tmp_path / "archives" / name
    archive.mkdir(parents=True)
    (archive / "fingerprint.pb").write_bytes(fingerprint)
    pushed = metadata_store_pb2.Artifact(uri=str(archive))
    return {P.PUSHER: NodeRun(P.PUSHER, "COMPLETE", {P.PUSHED_MODEL: [pushed]})}


def test_add_items_extends_the_served_model_after_a_rollback(tmp_path: Path, monkeypatch):
    """Model A re-pushed above model B, then rolled back by hand to B: add-items took the
    latest pushed run's model (A) and served it again in B's place."""
    paths = LocalPaths(str(tmp_path / "home"))
    for version, fingerprint in (("1", b"B"), ("2", b"A")):
        folder = Path(paths.serving_model_dir) / version
        folder.mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(b"")
        (folder / "fingerprint.pb").write_bytes(fingerprint)
    run_a, run_b = _pushed(tmp_path, "a", b"A"), _pushed(tmp_path, "b", b"B")
    monkeypatch.setattr(adding, "pushed_runs", lambda _path: iter([run_a, run_b]))
    assert adding.served_run(paths) is run_a
    shutil.rmtree(Path(paths.serving_model_dir) / "2")  # the rollback
    assert adding.served_run(paths) is run_b
    (Path(paths.serving_model_dir) / "3").mkdir()  # a version put there by hand
    (Path(paths.serving_model_dir) / "3" / "fingerprint.pb").write_bytes(b"C")
    (Path(paths.serving_model_dir) / "3" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match=r"holds no model that a run in .* pushed"):
        adding.served_run(paths)
