"""JSON Lines input (data/json_lines.py): event logs read as the CSV files are, each bad
line rejected with its number and text, and no raw user id in a pseudonymised home."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from mtrec.contracts import features as F
from mtrec.data.cleaning import clean
from mtrec.data.generic import load_generic
from mtrec.ingest import REJECTS_FILE, IngestOptions, ingest

RATINGS = [{"user_id": u, "item_id": i, "rating": 1 + (u + i) % 5, "timestamp": 100 * u + i,
            "event": "rate"} for u in range(4) for i in range(5)]


def _lines(objects: list[dict]) -> str:
    return "".join(json.dumps(o) + "\n" for o in objects)


def test_objects_read_as_rows_and_bad_lines_are_rejected_with_their_number(
        tmp_path: Path) -> None:
    (tmp_path / "ratings.jsonl").write_text(
        _lines(RATINGS) + "\nnot json\n[1, 2]\n"
        + json.dumps({"user_id": 9, "item_id": 1, "rating": None, "timestamp": 5}) + "\n")
    (tmp_path / "items.jsonl").write_text(_lines(
        [{"item_id": i, "title": f"Film {i} (2001)", "genres": ["Drama", "Comedy"][: i % 3]}
         for i in range(5)]))
    result = clean(load_generic(tmp_path), max_reject_fraction=1.0)
    ratings = result.dataset.ratings
    assert len(ratings) == 20 and ratings[F.USER_ID].iloc[0] == "0"  # a number id: "0"
    assert ratings[F.RATING].tolist()[:3] == [1.0, 2.0, 3.0]
    items = result.dataset.items.set_index(F.ITEM_ID)
    assert items.loc["2", F.GENRES] == ["Drama", "Comedy"] and items.loc["2", F.YEAR] == 2001
    rejects = result.rejects.set_index("line")
    assert rejects["reason"].to_dict() == {22: "malformed", 23: "malformed",
                                           24: "missing_field"}
    assert rejects.loc[22, "detail"] == "not JSON: Expecting value (column 1)"
    assert rejects.loc[23, "detail"] == "not a JSON object: a list"
    assert rejects.loc[22, "raw"] == "not json" and rejects.loc[24, "detail"] == "missing rating"


def test_gzipped_json_lines_read_as_their_text(tmp_path: Path) -> None:
    (tmp_path / "ratings.jsonl.gz").write_bytes(gzip.compress(_lines(RATINGS).encode()))
    assert len(load_generic(tmp_path).ratings) == 20


def test_a_key_no_object_has_is_an_error_with_the_name_it_should_have(tmp_path: Path) -> None:
    (tmp_path / "ratings.jsonl").write_text(_lines(
        [{"userId": 1, "item_id": 2, "rating": 4}]))
    with pytest.raises(ValueError, match=r"no object has the key\(s\) \['user_id'\] \(column "
                       r"names are lower-case, as listed: 'userId' -> 'user_id'\)$"):
        load_generic(tmp_path)
    (tmp_path / "ratings.jsonl").write_text("\n[]\n")
    with pytest.raises(ValueError, match=r"no JSON object in it \(expected one per line"):
        load_generic(tmp_path)


def test_no_raw_user_id_in_a_pseudonymised_home(tmp_path: Path) -> None:
    """A line cut off mid-object has no user id to replace: its text is withheld."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "ratings.jsonl").write_text(
        _lines([{**r, "user_id": f"secret{r['user_id']}"} for r in RATINGS])
        + '{"user_id": "secret-cut", "item_id": 1, "rat\n')
    home = tmp_path / "home"
    ingest("generic", str(data), str(home), IngestOptions(pseudonymize_key=b"k3y"))
    rejects = pd.read_csv(home / REJECTS_FILE, dtype=str, keep_default_na=False)
    assert rejects["line"].tolist() == ["21"] and rejects["reason"].tolist() == ["malformed"]
    text = "\n".join(p.read_text(errors="ignore") for p in home.rglob("*") if p.is_file()
                     and p.suffix in (".csv", ".json"))
    assert "secret" not in text
