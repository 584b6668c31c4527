"""Cold items' text-neighbour blend (models/cold_items.py), against hand values."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.models.cold_items import blend_cold_rows, known_rows, neighbour_blend
from mtrec.models.config import ModelConfig, resolve_optimizer
from mtrec.models.item_text import ItemText
from mtrec.models.serving_module import ServingModule
from mtrec.models.serving_tables import build_serving_tables
from mtrec.models.towers import VocabSizes
from mtrec.models.trainer import build_model
from tests.transform_support import as_dataset

# Three warm items: text directions e1, e2, -e1; vectors (1, 0), (0, 2), (5, 5).
WARM_TEXT = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], np.float32)
WARM_VECTORS = np.array([[1.0, 0.0], [0.0, 2.0], [5.0, 5.0]], np.float32)


def blend(text, vectors, k, weight):
    return neighbour_blend(tf.constant(vectors, tf.float32), tf.constant(text, tf.float32),
                           tf.constant(WARM_VECTORS), tf.constant(WARM_TEXT), k, weight).numpy()


def test_two_neighbours_weighted_by_cosine_then_blended():
    # Text (0.6, 0.8): cosines 0.6, 0.8, -0.6; the best two are items 1 (0.8) and
    # 0 (0.6): mean = (0.8 * (0, 2) + 0.6 * (1, 0)) / 1.4 = (0.6, 1.6) / 1.4.
    # Weight 0.5 with own vector (2, 2): 0.5 * (2, 2) + 0.5 * (0.428571, 1.142857).
    got = blend([[0.6, 0.8]], [[2.0, 2.0]], k=2, weight=0.5)
    np.testing.assert_allclose(got, [[1.0 + 0.3 / 1.4, 1.0 + 0.8 / 1.4]], rtol=1e-6)


def test_negative_similarities_weigh_nothing_and_weight_one_replaces_the_vector():
    # k 3 reaches item 2 (cosine -0.6): clipped to 0, so it adds nothing.
    got = blend([[0.6, 0.8]], [[2.0, 2.0]], k=3, weight=1.0)
    np.testing.assert_allclose(got, [[0.6 / 1.4, 1.6 / 1.4]], rtol=1e-6)


def test_a_row_without_text_or_positive_neighbours_keeps_its_vector():
    # No text (zeros): every cosine 0. Text (-1, -1)/sqrt2 with k 1: the best is
    # item 2's cosine 0.707 (kept), so only the first row stays as it was.
    got = blend([[0.0, 0.0], [-0.7071068, -0.7071068]], [[3.0, 4.0], [3.0, 4.0]], k=1,
                weight=0.5)
    np.testing.assert_allclose(got, [[3.0, 4.0], [4.0, 4.5]], rtol=1e-6)


def test_k_above_the_warm_items_is_capped():
    got = blend([[1.0, 0.0]], [[0.0, 0.0]], k=10, weight=1.0)
    np.testing.assert_allclose(got, [[1.0, 0.0]], rtol=1e-6)  # only item 0 is positive


def test_catalogue_blend_changes_only_cold_rows_and_uses_warm_rows_as_neighbours():
    text = np.concatenate([WARM_TEXT, [[0.6, 0.8]]])
    vectors = np.concatenate([WARM_VECTORS, [[2.0, 2.0]]])
    cold = np.array([False, False, False, True])
    got = blend_cold_rows(vectors, text, cold, k=2, weight=0.5)
    np.testing.assert_allclose(got[:3], WARM_VECTORS)
    np.testing.assert_allclose(got[3], [1.0 + 0.3 / 1.4, 1.0 + 0.8 / 1.4], rtol=1e-6)
    np.testing.assert_array_equal(blend_cold_rows(vectors, text, cold, 0, 0.5), vectors)
    np.testing.assert_array_equal(blend_cold_rows(vectors, text, cold, 2, 0.0), vectors)


def test_known_rows_are_one_to_known_items():
    np.testing.assert_array_equal(known_rows(np.array([0, 1, 3, 4, 9]), 3),
                                  [False, True, True, False, False])
    assert known_rows(tf.constant([0, 2, 5]), 3).numpy().tolist() == [False, True, False]


def test_config_rejects_a_weight_outside_zero_one():
    with pytest.raises(ValueError, match="cold_item_neighbour_weight"):
        ModelConfig.from_dict({"cold_item_neighbour_weight": 1.5})


# ------------------------------------------------- the export (ServingModule)
def _unit_rows(n: int) -> np.ndarray:
    raw = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def _module(transformed, neighbours: int, weight: float, **config) -> ServingModule:
    """An untrained model over the synthetic catalogue plus two cold rows (copies of
    items 0 and 1's features under OOV item_idx), every item with a text vector."""
    tft_output, train, _ = transformed
    sizes = VocabSizes.from_transform_output(tft_output)
    config = resolve_optimizer(ModelConfig.from_dict({
        "embedding_dim": 16, "cold_item_neighbours": neighbours,
        "cold_item_neighbour_weight": weight, **config}), sizes)
    tables = build_serving_tables(as_dataset(train, 512), sizes)
    features = {k: np.concatenate([v, v[:2]]) for k, v in tables.item_features.items()}
    features[F.ITEM_IDX][-2:] = sizes.known_items + 1
    tables = dataclasses.replace(tables, item_features=features,
                                 item_ids=np.append(tables.item_ids, [b"cold-a", b"cold-b"]))
    ids = [i.decode() for i in tables.item_ids]
    text = ItemText({i: row for row, i in enumerate(ids)}, _unit_rows(tables.num_items),
                    np.zeros(8, np.float32), None)
    tf.keras.utils.set_random_seed(0)
    model = build_model(sizes, config, tft_output, tables, text)
    model(next(iter(as_dataset(train, 4))))  # builds the heads
    return ServingModule(model, tft_output, tables, text, cache_users=False)


def test_the_export_blends_the_cold_catalogue_rows_and_new_items_alike(transformed_synthetic):
    off, on = _module(transformed_synthetic, 0, 0.0), _module(transformed_synthetic, 3, 0.5)
    assert off.neighbours is None
    cold = ~known_rows(off.catalog_idx.numpy(), off._known_items)
    assert cold.tolist()[-2:] == [True, True] and cold.sum() == 2
    text = _unit_rows(len(cold))  # the catalogue's text vectors (centred on 0: themselves)
    np.testing.assert_allclose(on.neighbours.text.numpy(), text[~cold])
    expected = blend_cold_rows(off.item_vectors.numpy(), text, cold, 3, 0.5)
    np.testing.assert_allclose(on.item_vectors.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(on.item_vectors.numpy()[-2:], off.item_vectors.numpy()[-2:])
    # embed_new_item: an id Transform never saw is blended as the catalogue's cold
    # rows are ("dot": the embedding is the vector); a known id is not.
    warm_id = off.catalog_ids.numpy()[0]
    for item_id, blended in ((b"brand-new", True), (warm_id, False)):
        request = {"item_id": tf.constant([item_id]), "title": tf.constant(["a title"]),
                   "genres": tf.constant([["Drama"]]), "description": tf.constant([""]),
                   "year": tf.constant([1999], tf.int64),
                   "text_embedding": tf.constant(text[-1:])}
        own = off.embed_new_item(**request)["embedding"]
        want = neighbour_blend(own, tf.constant(text[-1:]), tf.constant(expected[~cold]),
                               tf.constant(text[~cold]), 3, 0.5) if blended else own
        np.testing.assert_allclose(on.embed_new_item(**request)["embedding"], want,
                                   rtol=1e-5, atol=1e-6, err_msg=str(item_id))


def test_without_an_item_item_term_cold_items_still_get_its_rule(transformed_synthetic):
    """item_item_weight 0 stands in for a catalogue above MAX_ITEMS: score's first
    stage gains weight x (similarity - its mean over the catalogue) on the cold
    items alone (item_item.cold_item_term)."""
    off = _module(transformed_synthetic, 0, 0.0, item_item_weight=0.0)
    on = _module(transformed_synthetic, 0, 0.0, item_item_weight=0.0, cold_item_term_weight=2.0)
    assert off.cold_columns is None and on.cold_columns.numpy().sum() == 2
    user = tf.constant([b"u1"])
    ids = on.catalog_ids.numpy()
    similarity = on.embed_user(user_id=user)["embedding"].numpy() @ on.embed_item(
        item_id=tf.constant(ids))["embedding"].numpy().T
    items = tf.constant([ids.tolist()])
    gained = (on.score(user_id=user, item_ids=items)["scores"]
              - off.score(user_id=user, item_ids=items)["scores"]).numpy()[0]
    expected = np.where(on.cold_columns.numpy(), 2.0 * (similarity[0] - similarity.mean()), 0.0)
    np.testing.assert_allclose(gained, expected, atol=1e-4)
