"""recommend_from_items' onboarding term (models/onboarding.py), against hand-computed values."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from mtrec.models.config import ModelConfig
from mtrec.models.onboarding import (
    Onboarding,
    OnboardingTerm,
    first_and_later,
    fit_onboarding,
    onboarding_term,
)
from tests.test_cold_popularity import module_with, serving_tables


def test_first_and_later_orders_by_time_and_drops_what_is_not_in_the_catalogue():
    splits = np.array([0, 4, 6, 9])
    positions = np.array([3, 1, -1, 2, 5, 6, 7, 8, 9])
    times = np.array([40, 10, 20, 30, 1, 2, 9, 8, 7])
    first, later = first_and_later(splits, positions, times, given=2)
    # User 0 by time: 1, -1, 2, 3: first two are 1 and (dropped) -1. User 1 has only
    # two ratings: nothing later, left out. User 2 by time: 9, 8, 7.
    assert [f.tolist() for f in first] == [[1], [9, 8]]
    assert [g.tolist() for g in later] == [[2, 3], [7]]


def test_the_ridge_matches_the_closed_form_by_hand():
    # x = [[1,0,0],[1,0,0],[0,1,0]], y = [[0,1,0],[0,0,1],[0,0,1]], l2 1:
    # bias = [0, 1/3, 2/3]; active items 0, 1; xa'xa + I = diag(3, 2);
    # xa'(y - bias) = [[0, 1/3, -1/3], [0, -1/3, 1/3]], so
    # W = [[0, 1/9, -1/9], [0, -1/6, 1/6]]; item 2 opens no history: no row.
    fitted = fit_onboarding([np.array([0]), np.array([0]), np.array([1]), np.array([2])],
                            [np.array([1]), np.array([2]), np.array([2]), np.array([])],
                            num_items=3, l2=1.0)
    # Only items 1 and 2 are rated later: the table's columns.
    assert fitted.columns.tolist() == [1, 2]
    np.testing.assert_allclose(fitted.bias, [1 / 3, 2 / 3], atol=1e-7)
    np.testing.assert_allclose(fitted.weights, [[1 / 9, -1 / 9], [-1 / 6, 1 / 6]], atol=1e-7)
    np.testing.assert_allclose(fitted.dense()[1], [0, 1 / 3, 2 / 3], atol=1e-7)
    assert fitted.rows.tolist() == [0, 1, -1]
    # In the graph: bias plus the given items' rows; padding (-1) and row-less items add 0.
    term = OnboardingTerm(fitted)
    scores = term(tf.constant([[0, -1], [2, 1], [0, 1]], tf.int64)).numpy()
    np.testing.assert_allclose(scores, [[0, 4 / 9, 5 / 9], [0, 1 / 6, 5 / 6],
                                        [0, 1 / 3 - 1 / 18, 2 / 3 + 1 / 18]], atol=1e-6)


def test_the_counting_fit_equals_the_dense_ridge_on_random_users():
    """fit_onboarding never forms X or Y; the dense formula is the reference."""
    rng = np.random.default_rng(0)
    n, users = 60, 300
    first = [rng.choice(n, rng.integers(0, 6), replace=False) for _ in range(users)]
    later = [rng.choice(n, rng.integers(0, 20), replace=False) for _ in range(users)]
    kept = [(f, g) for f, g in zip(first, later, strict=True) if len(g)]
    x, y = np.zeros((len(kept), n)), np.zeros((len(kept), n))
    for row, (f, g) in enumerate(kept):
        x[row, f], y[row, g] = 1.0, 1.0
    active = np.flatnonzero(x.sum(axis=0))
    xa = x[:, active]
    dense = np.linalg.solve(xa.T @ xa + 3.0 * np.eye(len(active)), xa.T @ (y - y.mean(axis=0)))
    fitted = fit_onboarding(first, later, n, l2=3.0)
    assert np.flatnonzero(fitted.rows >= 0).tolist() == active.tolist()
    weights, bias = fitted.dense()
    np.testing.assert_allclose(weights, dense, atol=1e-6)
    np.testing.assert_allclose(bias, y.mean(axis=0), atol=1e-7)
    assert fitted.columns.tolist() == np.flatnonzero(y.sum(axis=0)).tolist()


def test_catalogue_items_nobody_rated_cost_no_cells_and_score_zero():
    """One `mtrec add-items` item past the size limit switched the prior to popularity:
    items nobody rated later are no columns, so they move neither the fit nor the limit."""
    first, later = [np.array([0]), np.array([1])], [np.array([1]), np.array([0, 2])]
    small = fit_onboarding(first, later, num_items=3, l2=1.0)
    wide = fit_onboarding(first, later, num_items=1000, l2=1.0, max_cells=2 * 3)
    assert wide is not None and wide.columns.tolist() == small.columns.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(wide.weights, small.weights)
    scores = OnboardingTerm(wide)(tf.constant([[0], [1]], tf.int64)).numpy()
    assert scores.shape == (2, 1000) and not scores[:, 3:].any()
    np.testing.assert_allclose(scores[:, :3], OnboardingTerm(small)(
        tf.constant([[0], [1]], tf.int64)).numpy())
    assert fit_onboarding(first, later, num_items=1000, l2=1.0, max_cells=2 * 3 - 1) is None


def test_a_heavy_term_serves_what_users_rated_after_the_given_items(transformed_synthetic):
    module = module_with(transformed_synthetic, {"onboarding_weight": 1e4})
    assert module.onboarding is not None and not hasattr(module, "log_popularity")
    catalog = [i.decode() for i in module.catalog_ids.numpy()]
    opener = int(np.flatnonzero(module.onboarding.rows.numpy() >= 0)[0])
    out = module.recommend_from_items(item_ids=tf.constant([[catalog[opener]]]),
                                      k=tf.constant(5))
    expected = module.onboarding(tf.constant([[opener]], tf.int64)).numpy()[0]
    expected[opener] = -np.inf  # the given item is never returned
    best = [catalog[i] for i in np.argsort(-expected, kind="stable")[:5]]
    got = [i.decode() for i in out["item_ids"].numpy()[0]]
    # Near-ties may swap: compare the onboarding scores, best first.
    score = dict(zip(catalog, expected, strict=True))
    np.testing.assert_allclose([score[i] for i in got], [score[i] for i in best], atol=1e-6)


def test_the_term_is_off_at_weight_zero_without_times_and_above_its_size_limit(
        transformed_synthetic):
    module = module_with(transformed_synthetic, {})
    assert module.onboarding is not None  # on by default
    tables, catalog_idx = serving_tables(transformed_synthetic), module.catalog_idx.numpy()
    on = ModelConfig()
    term = onboarding_term(tables, catalog_idx, on)
    assert term is not None
    cells = term.zeros_row * term.width  # its rows and columns, without the zeros
    assert onboarding_term(tables, catalog_idx, on, max_cells=cells) is not None
    assert onboarding_term(tables, catalog_idx, on, max_cells=cells - 1) is None
    assert onboarding_term(dataclasses.replace(tables, rated_times=None), catalog_idx,
                           on) is None
    assert onboarding_term(tables, catalog_idx, ModelConfig(onboarding_weight=0.0)) is None
    assert onboarding_term(tables, catalog_idx, ModelConfig(onboarding_items=0)) is None


def test_save_and_reload_serve_the_same_answers(transformed_synthetic, tmp_path):
    module = module_with(transformed_synthetic, {})
    assert module.onboarding is not None
    catalog = [i.decode() for i in module.catalog_ids.numpy()]
    request = {"item_ids": tf.constant([catalog[:3], [catalog[5], "no such item", ""]]),
               "k": tf.constant(10)}
    before = module.recommend_from_items(**request)
    tf.saved_model.save(module, str(tmp_path / "m"),
                        signatures={"recommend_from_items": module.recommend_from_items})
    after = tf.saved_model.load(str(tmp_path / "m")).signatures["recommend_from_items"](**request)
    assert after["item_ids"].numpy().tolist() == before["item_ids"].numpy().tolist()
    np.testing.assert_allclose(after["scores"], before["scores"], rtol=1e-5, atol=1e-5)


def test_the_term_sums_each_rows_given_items_by_hand():
    """Rows summed as they are read (no [B, G, N] intermediate) equal numpy's sums:
    padding (-1), items without a row and a row with no items add nothing."""
    rows = np.array([1, -1, 0, -1], np.int64)  # positions 0 and 2 open some history
    weights = np.array([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]], np.float32)
    bias = np.array([0.5, 0.5, 0.5, 0.5], np.float32)
    term = OnboardingTerm(Onboarding(rows, weights, bias, np.arange(4)))
    positions = tf.constant([[0, 2, 0], [1, 3, -1], [2, -1, -1]], tf.int64)
    np.testing.assert_allclose(term(positions).numpy(), [
        [0.5 + 10 + 1 + 10, 0.5 + 20 + 2 + 20, 0.5 + 30 + 3 + 30, 0.5 + 40 + 4 + 40],
        [0.5, 0.5, 0.5, 0.5],
        [1.5, 2.5, 3.5, 4.5],
    ])
    assert term(tf.zeros((0, 3), tf.int64)).shape == (0, 4)
