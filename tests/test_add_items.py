"""mtrec/add_items.py's reading of the items given (the whole command runs in
tests/test_pipeline_e2e.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mtrec.add_items import latest_per_id, read_new_items


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
    path.write_text("item_id,title\nn9,Nine (2020)\nn9,Nine Again (2021)\n")
    assert read_new_items(str(path))["title"].tolist() == ["Nine Again (2021)"]


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_an_empty_items_file_is_refused_with_its_path(text: str, tmp_path: Path) -> None:
    """pandas' "No columns to parse from file" named no file."""
    path = tmp_path / "new_items.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"^{path}: empty file, need a header line"):
        read_new_items(str(path))


def test_an_item_id_header_in_other_case_is_named(tmp_path: Path) -> None:
    path = tmp_path / "new_items.csv"
    path.write_text("Item_ID,title\nn1,New\n")
    with pytest.raises(ValueError, match=r"at least one row \(column names are lower-case, as "
                       r"listed: 'Item_ID' -> 'item_id'\)$"):
        read_new_items(str(path))
