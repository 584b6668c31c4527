"""recommend for known users with few training ratings (models/light_users.py)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.models.config import ModelConfig
from mtrec.models.light_users import light_user_items
from tests.test_cold_popularity import module_with

# Four users' rated catalogue positions and times: user 3 rated nothing, and user 1
# rated an item outside the catalogue (-1).
SPLITS = np.array([0, 2, 5, 6, 6])
POSITIONS = np.array([7, 3, 1, -1, 4, 9])
TIMES = np.array([20, 10, 5, 6, 1, 3])


def test_light_users_items_oldest_first_and_only_theirs_have_rows():
    light = light_user_items(SPLITS, POSITIONS, TIMES, max_items=2)
    # Oldest first: user 0 rated 3 (t 10) before 7 (t 20); user 1 4 (t 1) before 1 (t 5).
    assert light.items.tolist() == [[3, 7], [4, 1], [9, -1], [-1, -1]]
    assert light.rows.tolist() == [0, 1, 2, 3]  # user 3 (no ratings) reads the -1 row
    assert light.routed.tolist() == [True, True, True, True]
    one = light_user_items(SPLITS, POSITIONS, TIMES, max_items=1)
    assert one.items.tolist() == [[9], [-1]]
    assert light_user_items(SPLITS, POSITIONS, TIMES, max_items=50).items.shape == (4, 2)
    assert one.rows.tolist() == [1, 1, 0, 1]
    assert one.routed.tolist() == [False, False, True, True]  # 2, 2, 1 and 0 items
    assert light_user_items(SPLITS, POSITIONS, None, max_items=2).items[0].tolist() == [7, 3]


def test_off_routes_only_the_users_without_ratings():
    off = light_user_items(SPLITS, POSITIONS, TIMES, max_items=0)
    assert off.items.tolist() == [[-1]] and off.rows.tolist() == [0, 0, 0, 0]
    assert off.routed.tolist() == [False, False, False, True]
    none = light_user_items(np.array([0, 3]), np.array([1, 2, 3]), None, max_items=2)
    assert none.items.tolist() == [[-1]] and not none.routed.any()


def test_a_negative_limit_is_refused():
    with pytest.raises(ValueError, match="light_user_items"):
        ModelConfig.from_dict({"light_user_items": -1})


def _given_ids(module, user_idx: int) -> list[str]:
    row = module.light_users(tf.constant([user_idx], tf.int64))[1].numpy()[0]
    catalog = module.catalog_ids.numpy()
    return [catalog[p].decode() for p in row if p >= 0]


def _user_ids(transformed, count: int) -> list[tuple[str, int]]:
    """(raw id, F.USER_IDX) of the first `count` users of the vocabulary (row + 1)."""
    vocab = transformed[0].vocabulary_by_name(F.USER_VOCAB)[:count]
    return [(v.decode() if isinstance(v, bytes) else v, row + 1) for row, v in enumerate(vocab)]


@pytest.mark.parametrize("cache_users", [False, True])
def test_a_light_user_is_answered_as_recommend_from_items_answers_their_items(
        transformed_synthetic, cache_users):
    module = module_with(transformed_synthetic, {"light_user_items": 1000}, cache_users=True)
    if not cache_users:  # the computed path: drop the export's answers
        module.answers = None
    for user_id, user_idx in _user_ids(transformed_synthetic, 4):
        given = _given_ids(module, user_idx)
        assert given  # every user is light at this limit
        got = module.recommend(user_id=tf.constant([user_id]), k=tf.constant(5))
        want = module.recommend_from_items(item_ids=tf.constant([given]), k=tf.constant(5))
        assert got["item_ids"].numpy().tolist() == want["item_ids"].numpy().tolist()
        np.testing.assert_allclose(got["scores"], want["scores"], rtol=1e-5, atol=1e-5)
        # Ranked from their items, rated as `score` rates them for this user (the
        # unknown row's ratings were up to 0.35 apart from score's).
        own = module.score(user_id=tf.constant([user_id]), item_ids=got["item_ids"])
        np.testing.assert_allclose(got["ratings"], own["ratings"], rtol=1e-5, atol=1e-5)


def test_users_above_the_limit_keep_their_answers(transformed_synthetic):
    off = module_with(transformed_synthetic, {"light_user_items": 0}, cache_users=True)
    counts = np.diff(off.rated_splits.numpy())
    limit = int(np.percentile(counts[counts > 0], 25))  # a quarter of the users light
    on = module_with(transformed_synthetic, {"light_user_items": limit}, cache_users=True)
    users = _user_ids(transformed_synthetic, 1000)
    heavy = [(u, i) for u, i in users if counts[i] > limit]
    light = [(u, i) for u, i in users if 0 < counts[i] <= limit]
    assert heavy and light
    for module in (on, off):
        module.answers = None  # compare the computed path, batched as the cache builds it
    ids = tf.constant([u for u, _ in heavy + light])
    a, b = (m.recommend(user_id=ids, k=tf.constant(5))["item_ids"].numpy() for m in (on, off))
    assert a[:len(heavy)].tolist() == b[:len(heavy)].tolist()
    assert a[len(heavy):].tolist() != b[len(heavy):].tolist()


def test_save_and_reload_answer_a_light_user_the_same(transformed_synthetic, tmp_path):
    module = module_with(transformed_synthetic, {"light_user_items": 1000}, cache_users=True)
    user_id, _ = _user_ids(transformed_synthetic, 1)[0]
    request = {"user_id": tf.constant([user_id]), "k": tf.constant(5)}
    before = module.recommend(**request)
    tf.saved_model.save(module, str(tmp_path / "m"), signatures={"recommend": module.recommend})
    after = tf.saved_model.load(str(tmp_path / "m")).signatures["recommend"](**request)
    assert after["item_ids"].numpy().tolist() == before["item_ids"].numpy().tolist()
    np.testing.assert_allclose(after["scores"], before["scores"], rtol=1e-5, atol=1e-5)


def _top(module, **request) -> tuple[list, np.ndarray, np.ndarray]:
    out = module(**request)
    return out["item_ids"].numpy().tolist(), out["scores"].numpy(), out["ratings"].numpy()


@pytest.mark.parametrize("cache_users", [False, True])
def test_a_user_known_by_nothing_gets_the_most_popular_items(transformed_synthetic,
                                                             cache_users):
    """An unknown id's own list (the unknown row's query) ranked below popularity; so it is
    answered as recommend_from_items with no items: the most popular first, log P(item)
    as scores, and the ratings `score` gives the unknown user."""
    module = module_with(transformed_synthetic, {}, cache_users=cache_users)
    probability = np.exp(module.popular.scores.numpy())
    catalog = module.catalog_ids.numpy()
    order = module.popular.positions.numpy()
    assert (np.diff(probability) <= 0).all()  # most popular first
    k = tf.constant(5)
    unknown = _top(module.recommend, user_id=tf.constant(["nobody", "nobody else"]), k=k)
    empty = _top(module.recommend_from_items, item_ids=tf.constant([[""], ["not an id"]]), k=k)
    assert unknown[0] == empty[0] == [catalog[order[:5]].tolist()] * 2
    np.testing.assert_allclose(unknown[1], np.log(probability[:5])[np.newaxis].repeat(2, 0))
    rated = module.score(user_id=tf.constant(["nobody", "nobody else"]),
                         item_ids=tf.constant(unknown[0]))["ratings"].numpy()
    np.testing.assert_allclose(unknown[2], rated, rtol=1e-5, atol=1e-5)
    assert ((unknown[2] >= 0.5) & (unknown[2] <= 5)).all()
    # A batch mixing a known user and an unknown one: each keeps its own answer.
    known_id, _ = _user_ids(transformed_synthetic, 1)[0]
    alone = _top(module.recommend, user_id=tf.constant([known_id]), k=k)
    mixed = _top(module.recommend, user_id=tf.constant([known_id, "nobody"]), k=k)
    assert mixed[0] == [alone[0][0], unknown[0][0]]
