"""ItemText: the TextEncoder artifact's two tables, read as the Trainer and export read them."""

from __future__ import annotations

import numpy as np
import pytest

from mtrec.contracts.artifacts import DESCRIPTION_EMBEDDINGS_FILE, EMBEDDINGS_FILE, ITEM_IDS_FILE
from mtrec.models.item_text import ItemText

RAW = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)  # rows of items a, b, c


def _artifact(path, descriptions: np.ndarray | None) -> str:
    (path / ITEM_IDS_FILE).write_text("a\nb\nc\n")
    np.save(path / EMBEDDINGS_FILE, RAW)
    if descriptions is not None:
        np.save(path / DESCRIPTION_EMBEDDINGS_FILE, descriptions)
    return str(path)


def test_map_rows_put_each_items_description_beside_its_text(tmp_path):
    descriptions = np.array([[0.0, 0.0], [0.6, 0.8], [1.0, 0.0]], np.float32)  # a: none
    text = ItemText.load(_artifact(tmp_path, descriptions))
    assert text.has_descriptions
    # The text rows are centred on the mean (2/3, 2/3) and re-normalised; descriptions not.
    np.testing.assert_allclose(text.rows_for([b"c"]), [[np.sqrt(0.5), np.sqrt(0.5)]], atol=1e-6)
    got = text.map_rows_for([b"b", "a", "unknown"])
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got[:, :2], text.rows_for(["b", "a", "unknown"]))
    np.testing.assert_allclose(got[:, 2:], [[0.6, 0.8], [0.0, 0.0], [0.0, 0.0]])


@pytest.mark.parametrize("descriptions", [None, np.zeros((3, 2), np.float32)])
def test_without_descriptions_the_map_reads_the_text_alone(tmp_path, descriptions):
    """An artifact from before the table, or a catalogue without descriptions (ML-100K)."""
    text = ItemText.load(_artifact(tmp_path, descriptions))
    assert not text.has_descriptions
    np.testing.assert_array_equal(text.map_rows_for(["a", "c"]), text.rows_for(["a", "c"]))


def test_a_description_table_of_another_shape_is_refused(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        ItemText.load(_artifact(tmp_path, np.zeros((2, 2), np.float32)))
