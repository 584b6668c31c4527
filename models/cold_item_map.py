"""A content-to-latent correction for items without training ratings, fitted at export.

A cold item is served with the candidate tower's "unknown id + its own text"
vector (id dropout trains that path on 5% of the interactions). For every
warm item the export has both that vector (its id blanked) and the vector
training gave it; their difference is what the item's ratings taught the
tower beyond its features. A ridge regression from the frozen text vector
predicts that difference, and a cold item's vector becomes

    cold = tower(unknown id, features, text) + w * (text - centre) @ W

with W fitted on the warm items, each weighted by the square root of its
training ratings, and `centre` their weighted mean text vector: the map adds
only the text-predicted direction (which users), not the warm items' mean
difference, which would carry the long-tail items' level to the cold ones.

Why this form (ml-latest-small validation cut with its own cold draw,
cold_item_validation.md; numbers for the first stage alone, each variant's
cold-term weight set so NDCG@10 matches the previous default's 0.137):
- the warm items' trained vectors as the target, not the difference (the
  failed kNN-in-text-space blend's mistake, as a linear map): the fitted
  intercept is the mean warm item, mostly long tail, which scores low for
  everyone, so the map buries cold items (cold HR@100 0.121 -> 0.049 mapped
  alone, 0.092 half blended with the tower's vector);
- the difference with its mean kept: the same mistake (0.089);
- the difference without it: 0.121 -> 0.127 (uniform weights), 0.131 (sqrt
  counts), and warm-item HR@100 0.218 -> 0.221: not a trade, both gain.
As served (`recommend`, re-rank included), weight 1 at l2 10: cold HR@100
0.122 -> 0.138 with no cold term, NDCG@10 0.1365 -> 0.1342. The correction
moves cold items through the first stage: applied to the retrieval vectors
alone 0.136 / 0.1348, to the pair heads' input alone 0.101 / 0.1478 (the
no-map value). ML-100K u1's validation cut: cold HR@100 0.355 -> 0.377.

The map's input is the text vector and, where the catalogue has descriptions,
the description's own vector beside it (ItemText.map_rows_for; zeros for an
item without one): the encoder's `description` signature, which packs a
description to its first 16 tokens (TextEncoderConfig.description_length). In
the full text ("title | genres | year | description") a description is one part
among four; alone, it says what its words say (on ml-latest-small the user
tags, which 1,572 of 9,742 items had before data/tags.py left out held-out
pairs). First stage at equal NDCG@10, the validation cut's two cold draws (same weights each;
benchmarks/results/cold_item_map_inputs*.md): cold HR@100 0.129 / 0.144 with
the text alone at l2 10, 0.130 / 0.146 at l2 30, 0.136 / 0.152 with the whole
description beside it at l2 30, and 0.141 / 0.158 with its first 16 tokens
(0.134 / 0.152 at l2 10), warm-item HR@100 0.223 / 0.219 -> 0.223 / 0.222:
hence l2 30. ML-100K has no descriptions, so there only the l2 moved: its
validation cut as served, cold HR@100 0.348 at l2 10 and 0.343 at 30, NDCG@10
0.3230 and 0.3234.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from mtrec.contracts import features as F

if TYPE_CHECKING:  # the model imports nothing from here; typing only
    from mtrec.models.model import MultiTaskModel


@dataclasses.dataclass(frozen=True)
class ColdItemMap:
    """correction(text) = (text - centre) @ coef, [.., d] for text [.., D]."""

    coef: np.ndarray  # float32 [D, d]
    centre: np.ndarray  # float32 [D]

    def correction(self, text: np.ndarray) -> np.ndarray:
        return ((text - self.centre) @ self.coef).astype(np.float32)


def fit_ridge(inputs: np.ndarray, targets: np.ndarray, l2: float,
              weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(W [D, d], b [d]) minimising sum_i w_i ||x_i W + b - y_i||^2 + l2 ||W||^2.

    The intercept is not penalised: inputs and targets are centred on their
    (weighted) means, W = (Xc' diag(w) Xc + l2 I)^-1 Xc' diag(w) Yc and
    b = mean(y) - mean(x) W. `weights` default to 1.
    """
    x = inputs.astype(np.float64)
    y = targets.astype(np.float64)
    w = np.ones(len(x)) if weights is None else weights.astype(np.float64)
    x_mean = w @ x / w.sum()
    y_mean = w @ y / w.sum()
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ (xc * w[:, np.newaxis]) + l2 * np.eye(x.shape[1])
    coef = np.linalg.solve(gram, xc.T @ (yc * w[:, np.newaxis]))
    return coef.astype(np.float32), (y_mean - x_mean @ coef).astype(np.float32)


def fit_cold_item_map(text: np.ndarray, trained: np.ndarray, as_cold: np.ndarray,
                      counts: np.ndarray, l2: float) -> ColdItemMap:
    """The map from the warm items' text [n, D] to trained - as_cold [n, d] (their
    trained vectors and their unknown-id vectors), weighted by sqrt(counts)
    (their training ratings; normalised to mean 1, so l2 reads the same on any
    dataset)."""
    weights = np.sqrt(counts.astype(np.float64))
    weights /= weights.mean()
    coef, _ = fit_ridge(text, trained - as_cold, l2, weights)
    centre = (weights @ text.astype(np.float64) / weights.sum()).astype(np.float32)
    return ColdItemMap(coef=coef, centre=centre)


def catalogue_vectors(model: MultiTaskModel, inputs: dict, known: np.ndarray, counts: np.ndarray,
                      text: np.ndarray | None) -> tuple[np.ndarray, ColdItemMap | None]:
    """The candidate vectors of the catalogue (`inputs`: the tower's features, [N, ..];
    `known` [N]: items with training ratings; `counts` [N]: their training ratings,
    or anything proportional (the logQ table: the weights are normalised);
    `text` [N, D']: the map's inputs, ItemText.map_rows_for's text vectors and
    description vectors side by side, zero rows for none), the cold items' corrected
    at ModelConfig.cold_item_map_weight, and the fitted map (None when off)."""
    vectors = model.candidate_embedding(inputs).numpy()
    config = model.config
    if text is None or not config.cold_item_map_weight:
        return vectors, None
    has_text = np.any(text != 0, axis=1)
    fit_rows, cold_rows = known & has_text, ~known & has_text
    if fit_rows.sum() < 2 or not cold_rows.any():
        return vectors, None
    blank = {**inputs, F.ITEM_IDX: tf.zeros_like(inputs[F.ITEM_IDX])}
    as_cold = model.candidate_embedding(blank).numpy()
    fitted = fit_cold_item_map(text[fit_rows], vectors[fit_rows], as_cold[fit_rows],
                               counts[fit_rows], config.cold_item_map_l2)
    vectors[cold_rows] += config.cold_item_map_weight * fitted.correction(text[cold_rows])
    return vectors, fitted


def corrected(vectors: tf.Tensor, text: tf.Tensor, cold: tf.Tensor, coef: tf.Variable,
              centre: tf.Variable, weight: float) -> tf.Tensor:
    """catalogue_vectors' correction in the graph (`embed_new_item`): `vectors` [B, d]
    plus weight * (text - centre) @ coef on the rows that are `cold` [B] and carry
    a text vector (an all-zero row is none)."""
    apply = cold & tf.reduce_any(tf.not_equal(text, 0.0), axis=-1)
    correction = weight * tf.matmul(text - centre, coef)
    return vectors + tf.where(apply[:, tf.newaxis], correction, tf.zeros_like(correction))
