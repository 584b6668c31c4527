"""Items without training ratings: the first stage's rule where no item-item term is
served (item_item.cold_item_term) and id dropout that keeps the text."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts.signatures import SIGNATURES
from mtrec.models.cold_item_map import fit_cold_item_map
from mtrec.models.config import ModelConfig, resolve_optimizer
from mtrec.models.item_item import known_rows
from mtrec.models.item_text import ItemText
from mtrec.models.serving_module import ServingModule
from mtrec.models.serving_tables import build_serving_tables
from mtrec.models.towers import VocabSizes
from mtrec.models.trainer import build_model
from tests.test_export import _replay
from tests.transform_support import as_dataset


def test_known_rows_are_one_to_known_items():
    np.testing.assert_array_equal(known_rows(np.array([0, 1, 3, 4, 9]), 3),
                                  [False, True, True, False, False])
    assert known_rows(tf.constant([0, 2, 5]), 3).numpy().tolist() == [False, True, False]


def _unit_rows(n: int) -> np.ndarray:
    raw = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def _descriptions(n: int) -> np.ndarray:
    """Unit rows unlike _unit_rows', every third one zero (an item without a description)."""
    rows = _unit_rows(n + 1)[1:][::-1].copy()
    rows[::3] = 0.0
    return rows


def _parts(transformed, descriptions: bool = False, **config):
    """(model, tft_output, tables, text): an untrained model over the synthetic catalogue
    plus two cold rows (copies of items 0 and 1's features under OOV item_idx), every
    item with a text vector (and, with `descriptions`, most with a description vector)."""
    tft_output, train, _ = transformed
    sizes = VocabSizes.from_transform_output(tft_output)
    config = resolve_optimizer(ModelConfig.from_dict({"embedding_dim": 16, **config}), sizes)
    tables = build_serving_tables(as_dataset(train, 512), sizes)
    features = {k: np.concatenate([v, v[:2]]) for k, v in tables.item_features.items()}
    features[F.ITEM_IDX][-2:] = sizes.known_items + 1
    tables = dataclasses.replace(tables, item_features=features,
                                 item_ids=np.append(tables.item_ids, [b"cold-a", b"cold-b"]))
    ids = [i.decode() for i in tables.item_ids]
    text = ItemText({i: row for row, i in enumerate(ids)}, _unit_rows(tables.num_items),
                    np.zeros(8, np.float32), None,
                    _descriptions(tables.num_items) if descriptions else None)
    tf.keras.utils.set_random_seed(0)
    model = build_model(sizes, config, tft_output, tables, text)
    model(next(iter(as_dataset(train, 4))))  # builds the heads
    return model, tft_output, tables, text


def _module(transformed, cache_users: bool = False, descriptions: bool = False,
            **config) -> ServingModule:
    model, tft_output, tables, text = _parts(transformed, descriptions, **config)
    return ServingModule(model, tft_output, tables, text, cache_users=cache_users)


def _score_gain(base: ServingModule, other: ServingModule) -> tuple[np.ndarray, np.ndarray]:
    """(other's minus base's `score` of user u1 over the whole catalogue, u1's
    similarity minus its catalogue mean), both [N]."""
    user = tf.constant([b"u1"])
    ids = base.catalog_ids.numpy()
    similarity = (base.embed_user(user_id=user)["embedding"].numpy()
                  @ base.embed_item(item_id=tf.constant(ids))["embedding"].numpy().T)[0]
    items = tf.constant([ids.tolist()])
    gained = (other.score(user_id=user, item_ids=items)["scores"]
              - base.score(user_id=user, item_ids=items)["scores"]).numpy()[0]
    return gained, similarity - similarity.mean()


def test_without_an_item_item_term_cold_items_still_get_its_rule(transformed_synthetic):
    """item_item_weight 0 stands in for a catalogue above MAX_ITEMS: score's first
    stage gains weight x (similarity - its mean over the catalogue) on the cold
    items alone (item_item.cold_item_term)."""
    off = _module(transformed_synthetic, item_item_weight=0.0, cold_item_term_weight=0.0)
    on = _module(transformed_synthetic, item_item_weight=0.0, cold_item_term_weight=2.0)
    assert off.cold_columns is None and on.cold_columns.numpy().sum() == 2
    gained, deviation = _score_gain(off, on)
    np.testing.assert_allclose(gained, np.where(on.cold_columns.numpy(), 2.0 * deviation, 0.0),
                               atol=1e-4)
    # The export's answer cache (models/answer_cache.py) answers as recommend does.
    cached = _module(transformed_synthetic, True, item_item_weight=0.0,
                     cold_item_term_weight=2.0)
    users = tf.constant([b"u1", b"u2", b"u3"])
    for k in (5, 30):  # 5: from the cache; 30: computed
        a = cached.recommend(user_id=users, k=tf.constant(k))
        b = on.recommend(user_id=users, k=tf.constant(k))
        assert a["item_ids"].numpy().tolist() == b["item_ids"].numpy().tolist()
        assert set(a["item_ids"].numpy().ravel()) & {b"cold-a", b"cold-b"} or k == 5


def test_a_catalogue_without_years_exports(transformed_synthetic):
    """No item has a year (a generic log without an items file): the export built no
    year range, and its cold rows' years stay as they are (it crashed the Trainer)."""
    model, tft_output, tables, text = _parts(transformed_synthetic)
    features = dict(tables.item_features)
    features[F.YEAR_Z] = np.zeros_like(features[F.YEAR_Z])
    features[F.YEAR_KNOWN] = np.zeros_like(features[F.YEAR_KNOWN])
    module = ServingModule(model, tft_output, dataclasses.replace(tables, item_features=features),
                           text, cache_users=False)
    out = module.recommend(user_id=tf.constant([b"u1"]), k=tf.constant(5))
    assert out["item_ids"].shape == (1, 5) and np.isfinite(out["scores"].numpy()).all()


def test_with_the_item_item_term_cold_items_take_their_own_weight(transformed_synthetic):
    """item_item_cold_weight scales the term's rule for items without training
    ratings alone: 3 against 1 adds 2 x (similarity - its catalogue mean) to the
    cold items' scores and nothing to the others'."""
    one = _module(transformed_synthetic, item_item_cold_weight=1.0)
    three = _module(transformed_synthetic, item_item_cold_weight=3.0)
    assert one.item_item is not None
    cold = ~one.item_item_rated.numpy()[:-1]
    assert cold.sum() == 2
    gained, deviation = _score_gain(one, three)
    np.testing.assert_allclose(gained, np.where(cold, 2.0 * deviation, 0.0), atol=1e-4)


@pytest.mark.parametrize("keeps_text", [True, False])
def test_a_dropped_item_id_keeps_its_text_in_training(transformed_synthetic, keeps_text):
    """Id dropout 1: every item id becomes 0 (unknown). With id_dropout_keeps_text
    the batch carries each item's own text row, what a cold item is served with;
    without, the tower reads row 0 of the text table: zeros."""
    tft_output, train, _ = transformed_synthetic
    sizes = VocabSizes.from_transform_output(tft_output)
    config = resolve_optimizer(ModelConfig.from_dict({
        "embedding_dim": 16, "id_dropout": 1.0, "id_dropout_keeps_text": keeps_text}), sizes)
    tables = build_serving_tables(as_dataset(train, 512), sizes)
    ids = [i.decode() for i in tables.item_ids]
    text = ItemText({i: row for row, i in enumerate(ids)}, _unit_rows(len(ids)),
                    np.zeros(8, np.float32), None)
    model = build_model(sizes, config, tft_output, tables, text)
    batch = next(iter(as_dataset(train, 4)))
    dropped = model._drop_ids(dict(batch), training=True)
    assert not dropped[F.ITEM_IDX].numpy().any()
    if keeps_text:  # the rows of the batch's own items, by raw id
        rows = [ids.index(i.decode()) for i in batch[F.ITEM_ID_XF].numpy().tolist()]
        np.testing.assert_allclose(dropped[F.ITEM_TEXT_VECTOR], _unit_rows(len(ids))[rows])
    else:
        assert F.ITEM_TEXT_VECTOR not in dropped
    assert F.ITEM_TEXT_VECTOR not in model._drop_ids(dict(batch), training=False)


NEW_ITEM = {"title": ["Space Heist"], "genres": [["Sci-Fi", "Action"]],
            "description": ["a crew robs a station"], "year": [2030]}


def _embed_new(module: ServingModule, item_id: str, text: np.ndarray,
               description_vector: np.ndarray | None = None,
               description: str = NEW_ITEM["description"][0]) -> np.ndarray:
    if description_vector is None:
        description_vector = np.zeros_like(text)
    return module.embed_new_item(
        item_id=tf.constant([item_id]), title=tf.constant(NEW_ITEM["title"]),
        genres=tf.constant(NEW_ITEM["genres"]), description=tf.constant([description]),
        year=tf.constant(NEW_ITEM["year"], tf.int64), text_embedding=tf.constant(text[None]),
        description_embedding=tf.constant(description_vector[None]),
    )["embedding"].numpy()[0]


@pytest.mark.parametrize("descriptions", [False, True])
def test_the_cold_item_map_moves_cold_items_alone(transformed_synthetic, descriptions):
    """cold_item_map_weight 2: the map is fitted on the warm rows (trained vector minus
    the unknown-id one, sqrt-count weights) from their text vectors, and their
    description vectors beside them where the catalogue has any; a cold row, and a
    new item given to embed_new_item, gain 2 x (map input - centre) @ coef; warm rows,
    and embed_new_item of a known id, are unchanged. A new item whose description is
    blank has a zero description block, whatever description vector it is sent."""
    off = _module(transformed_synthetic, item_item_weight=0.0, cold_item_map_weight=0.0)
    model, tft_output, tables, text = _parts(transformed_synthetic, descriptions,
                                             item_item_weight=0.0, cold_item_map_weight=2.0)
    on = ServingModule(model, tft_output, tables, text, cache_users=False)
    assert off.cold_map_coef is None
    # The fit, redone from the model's own warm vectors.
    warm = np.arange(tables.num_items - 2)
    inputs = {k: tf.constant(v[warm]) for k, v in tables.item_features.items()}
    inputs[F.ITEM_TEXT_VECTOR] = tf.constant(text.vectors[warm])
    trained = model.candidate_embedding(inputs).numpy()
    as_cold = model.candidate_embedding({**inputs, F.ITEM_IDX: tf.zeros_like(
        inputs[F.ITEM_IDX])}).numpy()
    counts = model.item_sampling_prob.numpy()[tables.item_features[F.ITEM_IDX][warm]]
    map_in = np.hstack([text.vectors, text.descriptions]) if descriptions else text.vectors
    fitted = fit_cold_item_map(map_in[warm], trained, as_cold, counts,
                               model.config.cold_item_map_l2)
    assert fitted.coef.shape == (16 if descriptions else 8, 16)
    np.testing.assert_allclose(on.cold_map_coef.numpy(), fitted.coef, atol=1e-5)
    np.testing.assert_allclose(on.cold_map_centre.numpy(), fitted.centre, atol=1e-6)

    ids = tf.constant(on.catalog_ids.numpy())
    gained = (on.embed_item(item_id=ids)["embedding"]
              - off.embed_item(item_id=ids)["embedding"]).numpy()
    np.testing.assert_allclose(gained[warm], 0.0, atol=1e-6)
    np.testing.assert_allclose(gained[-2:], 2.0 * fitted.correction(map_in[-2:]), atol=1e-5)
    assert np.abs(gained[-2:]).max() > 1e-3  # the map moved them
    vector, description = _unit_rows(4)[2], 3.0 * _unit_rows(4)[3]  # sent unnormalised
    unit = description / 3.0
    expected = np.concatenate([vector, unit]) if descriptions else vector
    np.testing.assert_allclose(
        _embed_new(on, "brand-new", vector, description)
        - _embed_new(off, "brand-new", vector, description),
        2.0 * fitted.correction(expected[None])[0], atol=1e-5)
    if descriptions:  # a blank description: the block is zero
        np.testing.assert_allclose(
            _embed_new(on, "brand-new", vector, description, " \t")
            - _embed_new(off, "brand-new", vector, description, " \t"),
            2.0 * fitted.correction(np.concatenate([vector, 0 * unit])[None])[0], atol=1e-5)
    known = tables.item_ids[0].decode()
    np.testing.assert_allclose(_embed_new(on, known, vector), _embed_new(off, known, vector),
                               atol=1e-6)


def test_the_cold_item_map_survives_save_and_a_fresh_process(transformed_synthetic, tmp_path):
    on = _module(transformed_synthetic, descriptions=True, item_item_weight=0.0,
                 cold_item_map_weight=2.0)
    assert on.cold_map_coef.shape[0] == 16  # [text ; description] blocks
    tf.saved_model.save(on, str(tmp_path), signatures={n: getattr(on, n) for n in SIGNATURES})
    ids = on.catalog_ids.numpy().astype(str).tolist()
    new_item = {"item_id": ["brand-new"], **NEW_ITEM,
                "text_embedding": _unit_rows(3)[2:].tolist(),
                "description_embedding": _unit_rows(3)[1:2].tolist()}
    calls = [("embed_item", {"item_id": ids}), ("embed_new_item", new_item),
             ("recommend", {"user_id": ["u1", "u2"], "k": 10})]
    fresh = _replay([str(tmp_path)], calls)[str(tmp_path)]
    for (name, kwargs), answer in zip(calls, fresh, strict=True):
        fn = getattr(on, name)
        args = {k: tf.constant(v, tf.int64 if k == "year" else None) for k, v in kwargs.items()}
        if name == "recommend":
            args["k"] = tf.constant(10)
        for key, value in fn(**args).items():
            if value.dtype == tf.string:
                assert value.numpy().astype(str).tolist() == answer[key], (name, key)
            else:
                np.testing.assert_allclose(value.numpy(), answer[key], rtol=1e-5, atol=1e-6)
