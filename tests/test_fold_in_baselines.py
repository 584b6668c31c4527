"""The fold-in references cold_users.py compares against, checked by hand on a 3 x 3 matrix."""

from __future__ import annotations

import numpy as np

import tests.transform_support  # noqa: F401  (puts benchmarks/ on sys.path)

# isort: split
from quality_baselines import cosine_weights, ease_from, ease_weights, interactions, user_knn_scores

# users a, b, c; items x, y, z: a rated x y, b rated x y z, c rated z
MATRIX = np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1]], np.float64)


def test_interactions_rows_are_sorted_users_and_columns_the_catalogue():
    users = np.array([b"c", b"a", b"b", b"a", b"b", b"b"])
    items = np.array([b"z", b"x", b"x", b"y", b"y", b"z"])
    got = interactions(users, items, np.array([b"x", b"y", b"z"]))
    np.testing.assert_array_equal(got, MATRIX)
    np.testing.assert_allclose(ease_weights(users, items, np.array([b"x", b"y", b"z"]), 1.0),
                               ease_from(MATRIX, 1.0))


def test_cosine_weights_by_hand():
    # x and y share both their users: cos 2 / (sqrt 2 sqrt 2) = 1; x and z share b:
    # 1 / (sqrt 2 sqrt 2) = 0.5; the diagonal is 0 (an item does not vote for itself).
    np.testing.assert_allclose(cosine_weights(MATRIX),
                               [[0, 1, 0.5], [1, 0, 0.5], [0.5, 0.5, 0]])


def test_user_knn_by_hand():
    # A new user who rated x: overlap with a, b, c = 1, 1, 0; divided by sqrt(row size):
    # 1/sqrt2, 1/sqrt3, 0. With k 1 only a votes (x, y); with k 2, b adds 1/sqrt3 to each.
    history = np.array([[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(user_knn_scores(MATRIX, history, 1), [[2**-0.5, 2**-0.5, 0]])
    b = 3**-0.5
    np.testing.assert_allclose(user_knn_scores(MATRIX, history, 2),
                               [[2**-0.5 + b, 2**-0.5 + b, b]])
