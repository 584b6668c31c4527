"""The content-to-latent map for items without training ratings (models/cold_item_map.py),
against values worked out by hand on three warm items with 2-d text."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mtrec.models.cold_item_map import corrected, fit_cold_item_map, fit_ridge
from mtrec.models.config import ModelConfig

# Three warm items' text and a 1-d target.
X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
Y = np.array([[1.0], [2.0], [4.0]], np.float32)


def test_ridge_is_the_hand_solution():
    """l2 1, weights 1. Centred: mean x (2/3, 2/3), mean y 7/3; Xc'Xc + I =
    [[5/3, -1/3], [-1/3, 5/3]], Xc'yc = (1/3, 4/3), so W = (3/8, 7/8) and
    b = 7/3 - 2/3 * (3/8 + 7/8) = 3/2 (the intercept unpenalised)."""
    coef, bias = fit_ridge(X, Y, 1.0)
    np.testing.assert_allclose(coef, [[0.375], [0.875]], atol=1e-6)
    np.testing.assert_allclose(bias, [1.5], atol=1e-6)
    # l2 -> 0: three points, three parameters, the exact fit y = -1 + 2 x1 + 3 x2.
    coef, bias = fit_ridge(X, Y, 1e-9)
    np.testing.assert_allclose(coef, [[2.0], [3.0]], atol=1e-5)
    np.testing.assert_allclose(bias, [-1.0], atol=1e-5)


def test_a_weight_counts_as_that_many_copies():
    """Weight 2 on the third item is the third item twice (weights 1)."""
    weighted = fit_ridge(X, Y, 0.5, np.array([1.0, 1.0, 2.0]))
    copied = fit_ridge(np.vstack([X, X[2:]]), np.vstack([Y, Y[2:]]), 0.5)
    for a, b in zip(weighted, copied, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_the_map_fits_the_warm_difference_and_corrects_by_text():
    """Target = trained - unknown-id vector (here Y and 0 in a second column). Equal
    counts: weights 1, the hand solution above; centre = mean text (2/3, 2/3). A
    cold item with text (1, 0) is corrected by (1/3, -2/3) @ W = 1/8 - 7/12 = -11/24."""
    trained = np.hstack([Y, np.zeros_like(Y)]) + 5.0
    as_cold = np.full_like(trained, 5.0)
    fitted = fit_cold_item_map(X, trained, as_cold, np.array([4, 4, 4]), 1.0)
    np.testing.assert_allclose(fitted.coef, [[0.375, 0.0], [0.875, 0.0]], atol=1e-6)
    np.testing.assert_allclose(fitted.centre, [2 / 3, 2 / 3], atol=1e-6)
    np.testing.assert_allclose(fitted.correction(np.array([[1.0, 0.0]])), [[-11 / 24, 0.0]],
                               atol=1e-6)
    # The mean difference is left out: the warm items' own corrections average 0.
    np.testing.assert_allclose(fitted.correction(X).mean(axis=0), [0.0, 0.0], atol=1e-6)


def test_items_are_weighted_by_the_square_root_of_their_ratings():
    """Counts (1, 1, 4): weights sqrt = (1, 1, 2), normalised to mean 1 = (3/4, 3/4,
    3/2), i.e. weights (1, 1, 2) at l2 * 4/3; the centre is their weighted mean
    text ((1, 0) + (0, 1) + 2 (1, 1)) / 4 = (3/4, 3/4)."""
    fitted = fit_cold_item_map(X, Y, np.zeros_like(Y), np.array([1, 1, 4]), 1.0)
    coef, _ = fit_ridge(X, Y, 4 / 3, np.array([1.0, 1.0, 2.0]))
    np.testing.assert_allclose(fitted.coef, coef, atol=1e-6)
    np.testing.assert_allclose(fitted.centre, [0.75, 0.75], atol=1e-6)


def test_the_graph_correction_is_the_maps_on_cold_rows_with_text_only():
    fitted = fit_cold_item_map(X, Y, np.zeros_like(Y), np.array([4, 4, 4]), 1.0)
    vectors = tf.constant([[1.0], [1.0], [1.0]])
    text = tf.constant([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    out = corrected(vectors, text, tf.constant([True, False, True]),
                    tf.constant(fitted.coef), tf.constant(fitted.centre), 2.0)
    # Row 0: cold with text, 1 + 2 * (-11/24); row 1: warm; row 2: no text.
    np.testing.assert_allclose(out.numpy(), [[1.0 - 22 / 24], [1.0], [1.0]], atol=1e-6)


@pytest.mark.parametrize("values", [{"cold_item_map_weight": -0.1},
                                    {"cold_item_map_weight": 4.5},
                                    {"cold_item_map_l2": 0.0}])
def test_out_of_range_map_settings_are_refused(values):
    with pytest.raises(ValueError, match="cold_item_map"):
        ModelConfig.from_dict(values)
