"""recommend_from_items (models/given_items.py) given catalogue items without training
ratings: they are ignored, so given only such items it answers as given none."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.test_cold_items import _module

K = tf.constant(5)


def _answer(module, rows: list[list[str]]) -> dict[str, np.ndarray]:
    out = module.recommend_from_items(item_ids=tf.constant(rows), k=K)
    return {key: value.numpy() for key, value in out.items()}


@pytest.fixture(scope="module")
def module(transformed_synthetic):
    """The synthetic catalogue plus two items never rated (cold-a, cold-b)."""
    return _module(transformed_synthetic)


def test_only_unrated_items_answer_as_no_items_and_unknown_ones(module):
    """The most popular items, log P(item) as scores, as for "" or an unknown id."""
    none = _answer(module, [["", ""], ["no-such", ""]])
    unrated = _answer(module, [["cold-a", ""], ["cold-a", "cold-b"]])
    popular = module.catalog_ids.numpy()[module.popular.positions.numpy()[:5]].tolist()
    assert none["item_ids"].tolist() == [popular] * 2
    assert unrated["item_ids"].tolist() == none["item_ids"].tolist()
    np.testing.assert_allclose(unrated["scores"], none["scores"], rtol=1e-6)
    np.testing.assert_allclose(unrated["ratings"], none["ratings"], rtol=1e-6)
    np.testing.assert_allclose(none["scores"][0], module.popular.scores.numpy()[:5], rtol=1e-6)


def test_a_rated_item_among_unrated_ones_is_answered_from(module):
    """A row with a rated item is ranked from it (not the popular list), and its answer
    is the same alone and beside a row of unrated items only."""
    rated = module.catalog_ids.numpy()[0].decode()
    mixed = [rated, "cold-a"]
    alone = _answer(module, [mixed])
    batch = _answer(module, [["cold-b", "cold-a"], mixed])
    popular = _answer(module, [["", ""]])
    assert alone["item_ids"][0].tolist() != popular["item_ids"][0].tolist()
    assert not {rated.encode(), b"cold-a"} & set(alone["item_ids"][0].tolist())
    assert batch["item_ids"].tolist() == [popular["item_ids"][0].tolist(),
                                          alone["item_ids"][0].tolist()]
    np.testing.assert_allclose(batch["scores"][1], alone["scores"][0], rtol=1e-5, atol=1e-5)
