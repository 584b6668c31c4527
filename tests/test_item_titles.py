"""describe_items' title table (models/item_titles.py) on hand-made catalogues.

The exported signature itself, saved and loaded in a fresh process, is checked in
tests/test_export.py; the real catalogue's titles, add-items' and `mtrec query`'s
in tests/test_pipeline_e2e.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts.features import display_title
from mtrec.models.item_titles import display_titles, title_table

CASES = [
    ("Fly, The", 1986, "Fly, The (1986)"),
    ("Heat (1995)", 1995, "Heat (1995)"),  # already ends with its year
    ("Heat (1995)", 1996, "Heat (1995) (1996)"),  # another year: a remake's
    ("Heat", 0, "Heat"),  # year unknown
    ("", 1999, ""),  # no title: nothing to show
    ("Amélie", 2001, "Amélie (2001)"),
]


@pytest.mark.parametrize(("title", "year", "shown"), CASES)
def test_display_title_by_hand(title: str, year: int, shown: str) -> None:
    """One rule (contracts.features.display_title) for the served titles, the run summary's
    and the report's."""
    assert display_title(title, year) == shown


def test_display_titles_of_raw_catalogue_columns() -> None:
    titles = np.array([t.encode() for t, _, _ in CASES], dtype=object)
    years = np.array([y for _, y, _ in CASES], dtype=np.int64)
    assert display_titles(titles, years).tolist() == [shown for _, _, shown in CASES]


def _lookup(titles: dict[bytes, str] | None, ids: list[list[str]]) -> list[list[str]]:
    found = title_table(titles).lookup(tf.constant(ids)).numpy().tolist()
    return [[title.decode() for title in row] for row in found]


def test_known_unknown_and_padding_ids() -> None:
    titles = {b"1": "Fly, The (1986)", "é".encode(): "Amélie (2001)", b"2": ""}
    ids = [["1", "nope", ""], ["é", "2", "1"]]  # [B, n], like score's item_ids
    assert _lookup(titles, ids) == [["Fly, The (1986)", "", ""],
                                    ["Amélie (2001)", "", "Fly, The (1986)"]]


@pytest.mark.parametrize("titles", [None, {}, {b"1": "", b"2": ""}])
def test_a_catalogue_without_titles_answers_empty_strings(titles) -> None:
    """No catalogue, an empty one, or one whose items have no title: "" for every id."""
    assert _lookup(titles, [["1", "2", ""]]) == [["", "", ""]]
