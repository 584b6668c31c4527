"""cold_item_nonlinear_map.py's maps, against values worked out by hand on 2-d text."""

from __future__ import annotations

import numpy as np

import tests.transform_support  # noqa: F401  (puts benchmarks/ on sys.path)

# isort: split
from cold_item_nonlinear_map import KernelRidge, knn_residual

# Three warm items' unit text vectors and a 1-d residual; a query along the first.
X = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
R = np.array([[1.0], [2.0], [4.0]])
Q = np.array([[1.0, 0.0]])


def test_knn_is_the_cosine_weighted_mean_of_the_nearest_residuals():
    """Cosines (1, 0, 0.6): k 2 keeps items 1 and 3, (1 x 1 + 0.6 x 4) / 1.6 = 2.125;
    shrink 0.4 divides by 2.0 instead (1.7); neighbour weights (1, 1, 2) make the
    cosines (1, 1.2): (1 + 4.8) / 2.2."""
    np.testing.assert_allclose(knn_residual(X, R, Q, 2), [[2.125]], atol=1e-6)
    np.testing.assert_allclose(knn_residual(X, R, Q, 2, shrink=0.4), [[1.7]], atol=1e-6)
    np.testing.assert_allclose(knn_residual(X, R, Q, 2, weights=np.array([1.0, 1.0, 2.0])),
                               [[5.8 / 2.2]], atol=1e-6)


def test_kernel_ridge_is_the_hand_solution():
    """Two orthogonal items, gamma ln 2: K = [[1, 1/2], [1/2, 1]]. l2 1/2, weights 1:
    alpha = (K + I/2)^-1 (1, -1) = (1, -1), f(x1) = 1 - 1/2. Weights (2, 1): alpha =
    (K + diag(1/4, 1/2))^-1 (1, -1) = (16, -14) / 13, f(x1) = 16/13 - 7/13 = 9/13.
    A query at cosines (0.6, 0.8): f = 2^-0.4 - 2^-0.2 (weights 1)."""
    x, y = X[:2], np.array([[1.0], [-1.0]])
    fitted = KernelRidge(x, y, np.ones(2), np.log(2.0))
    np.testing.assert_allclose(fitted.predict(x[:1], 0.5), [[0.5]], atol=1e-9)
    np.testing.assert_allclose(fitted.predict(X[2:], 0.5), [[2 ** -0.4 - 2 ** -0.2]], atol=1e-9)
    weighted = KernelRidge(x, y, np.array([2.0, 1.0]), np.log(2.0))
    np.testing.assert_allclose(weighted.predict(x[:1], 0.5), [[9 / 13]], atol=1e-9)
