"""An item-to-item term for the re-ranker: EASE's closed form over the users' rated items.

EASE (Steck 2019) regresses each item's column of the 0/1 user-item matrix
X on all other items: B = I - P / diag(P) with P = (X'X + l2 I)^-1, diag(B) = 0.
A user's item-item score for item j is sum over their rated items i of B[i, j].
With a Session, X'X is blended with a Gram matrix that counts a co-rating by
how close in time the user made the two ratings (session_gram).
It is fitted once in the Trainer, from the same rated-item table the query
tower reads, in about a second for ML-100K's 1,682 items, and kept dense up to
MAX_ITEMS known items (a 5,000-item B is 100 MB of float32) in catalogues of up to
MAX_DENSE_COLUMNS items. Above, the export
keeps B's top-K weights per item (models/sparse_item_item.py), except from
ModelConfig.ivf_min_items catalogue items on, where the IVF index picks the
first stage without a term.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

MAX_ITEMS = 5_000
# The dense B kept is [id rows, catalogue]: catalogue items nobody rated widen it
# without evidence (5,000 rated items in a 25,000-item catalogue made it 500 MB and the
# SavedModel 612 MB, 2026-12-07 probe), so its width is bounded too (200 MB at most).
MAX_DENSE_COLUMNS = 2 * MAX_ITEMS


def dense_item_item(known_items: int, catalogue: int) -> bool:
    """Whether the export keeps B dense: up to MAX_ITEMS known items in a catalogue of up
    to MAX_DENSE_COLUMNS items (else top-K rows, or no term: models/first_stage.py)."""
    return known_items <= MAX_ITEMS and catalogue <= MAX_DENSE_COLUMNS


@dataclasses.dataclass(frozen=True)
class Session:
    """How much of the Gram matrix counts only items rated close in time (session_gram)."""

    times: np.ndarray  # [T] seconds, aligned with rated_idx
    tau: float  # seconds
    mix: float  # in [0, 1]: gram = (1 - mix) X'X + mix C_tau


def fit_item_item(
    rated_splits: np.ndarray, rated_idx: np.ndarray, num_items: int, l2: float,
    session: Session | None = None,
) -> np.ndarray:
    """[num_items, num_items] float32 B over item_idx rows/columns (0 and unrated: zero).

    With `session`, B is fitted on session_gram's blend instead of X'X."""
    users = np.repeat(np.arange(len(rated_splits) - 1), np.diff(rated_splits))
    x = np.zeros((len(rated_splits) - 1, num_items), np.float64)
    x[users, rated_idx] = 1.0
    gram = x.T @ x
    if session is not None:
        gram = (1.0 - session.mix) * gram + session.mix * session_gram(
            rated_splits, rated_idx, session.times, num_items, session.tau)
    active = np.flatnonzero(np.diag(gram) > 0)
    p = np.linalg.inv(gram[np.ix_(active, active)] + l2 * np.eye(len(active)))
    b = -p / np.diag(p)[np.newaxis, :]
    np.fill_diagonal(b, 0.0)
    full = np.zeros((num_items, num_items), np.float32)
    full[np.ix_(active, active)] = b
    return full


def session_gram(
    rated_splits: np.ndarray, rated_idx: np.ndarray, times: np.ndarray, num_items: int,
    tau: float,
) -> np.ndarray:
    """[num_items, num_items] C with C[i, j] = sum over users who rated both of
    exp(-|t_ui - t_uj| / tau): X'X with each co-rating weighted by how close in
    time the user rated the two items (C[i, i] = X'X[i, i], the raters of i).

    Why: a MovieLens user rates in sessions (a held-out new user's first 5
    ratings span a median 124 s, quality_tuning.md), and two items rated in one
    sitting say more about each other than two rated months apart. Per user the
    weights are a Laplacian kernel matrix, positive semi-definite, so C is a
    Gram matrix too. EASE alone on a validation holdout of ML-100K u1.base
    (quality_tuning.md): NDCG@10 0.320 on X'X, 0.328 on 0.5 X'X + 0.5 C at
    tau 600 s (l2 300). Each user's items must be distinct (ServingTables'
    rated_idx are: one entry per rated pair).
    """
    gram = np.zeros((num_items, num_items), np.float64)
    t = times.astype(np.float64)
    for start, stop in zip(rated_splits[:-1].tolist(), rated_splits[1:].tolist(), strict=True):
        if stop > start:
            items, when = rated_idx[start:stop], t[start:stop]
            gram[np.ix_(items, items)] += np.exp(-np.abs(when[:, None] - when[None, :]) / tau)
    return gram


def item_item_scores(weights: tf.Tensor, bag: tf.RaggedTensor) -> tf.Tensor:
    """[B, num_items]: for each row, the sum of B's rows of the items in its bag."""
    return tf.reduce_sum(tf.gather(weights, bag), axis=1)


def catalogue_positions(catalog_idx: np.ndarray, max_idx: int) -> np.ndarray:
    """item_idx -> its catalogue position, -1 for an item outside the catalogue; defined
    for every id up to max_idx and every catalogue id."""
    position = np.full(max(int(max_idx), int(catalog_idx.max(initial=0))) + 1, -1, np.int64)
    position[catalog_idx] = np.arange(len(catalog_idx))
    return position


def rated_columns(rated_idx: np.ndarray, catalog_idx: np.ndarray) -> np.ndarray:
    """[N + 1] bool: the catalogue positions whose item has training ratings (B's
    non-zero columns), and False for the extra column of an item outside it."""
    return np.append(np.isin(catalog_idx, rated_idx), False)


def scaled_to(
    reference: tf.Tensor, scores: tf.Tensor, mask: tf.Tensor, evidence: tf.Tensor | None = None
) -> tf.Tensor:
    """`scores` standardised per row and put on `reference`'s per-row spread.

    Rows' statistics are over the positions where `mask` is true (the catalogue),
    so one blend weight means the same for a user with 5 ratings and one with 500,
    and a zero weight leaves the reference untouched.

    With `evidence` (broadcast against `scores`), the scores' mean and spread are
    over `mask & evidence` only, and positions without evidence get the mean, 0:
    neutral. An item without training ratings has an all-zero column in B, so a
    raw 0 that says "no evidence", not "unrelated"; standardised with the rest it
    sat below the warm items' mean and was buried. On the ML-100K cold protocol
    (10% of items without training ratings, MiniLM text) that left cold HR@100 as
    served at 0.0005, against 0.197 with the term off.
    """
    m = tf.cast(mask, scores.dtype)
    e = m if evidence is None else m * tf.cast(evidence, scores.dtype)

    def moments(t: tf.Tensor, w: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        n = tf.maximum(tf.reduce_sum(w, axis=-1, keepdims=True), 1.0)
        mean = tf.reduce_sum(t * w, axis=-1, keepdims=True) / n
        var = tf.reduce_sum(tf.square(t - mean) * w, axis=-1, keepdims=True) / n
        return mean, tf.sqrt(var + 1e-12)

    s_mean, s_std = moments(scores, e)
    _, r_std = moments(reference, m)
    scaled = (scores - s_mean) / s_std * r_std
    return scaled if evidence is None else scaled * tf.cast(evidence, scores.dtype)


def item_item_term(similarity: tf.Tensor, scores: tf.Tensor, rated: tf.Tensor) -> tf.Tensor:
    """[B, N + 1], before the weight: the item-item `scores` [B, N] of the catalogue on
    the `similarity` [B, N]'s per-row spread, for every catalogue item and (last
    column) an item outside the catalogue. `rated` [N + 1]: items with training
    ratings (rated_columns).

    An item without training ratings has no item-item evidence (scaled_to); its
    term is its own similarity's deviation from the row mean, on the same spread,
    so it competes on the scale of items that have both a similarity and a term.
    Measured on the ML-100K cold protocol (MiniLM text, cold HR@100 as served):
    a raw 0 standardised with the rest gave 0.0005, a neutral 0 gave 0.0123 (the
    top of stage 1 is items whose term is well above the mean), the term off 0.197,
    this rule 0.265 (warm u1 NDCG@10/RMSE unchanged; text_encoder_ml-100k.md).
    The outside column has no similarity here either: 0.
    """
    padded_sim = tf.pad(similarity, [[0, 0], [0, 1]])
    n = tf.shape(similarity)[1]
    in_catalog = tf.sequence_mask(tf.fill(tf.shape(similarity)[:1], n), n + 1)
    term = scaled_to(padded_sim, tf.pad(scores, [[0, 0], [0, 1]]), in_catalog, rated)
    own = scaled_to(padded_sim, padded_sim, in_catalog)
    return tf.where(in_catalog & ~tf.cast(rated, tf.bool), own, term)


def cold_item_term(similarity: tf.Tensor, cold: tf.Tensor) -> tf.Tensor:
    """[B, N]: item_item_term's rule for the items without training ratings alone
    (`cold` [N] bool), 0 for the others: where no item-item term is served (above
    MAX_ITEMS by default), a cold item still gets its own similarity's deviation
    from the row mean, as it would with the term."""
    own = scaled_to(similarity, similarity, tf.ones_like(similarity, tf.bool))
    return tf.where(cold, own, tf.zeros_like(own))


def known_rows(item_idx: tf.Tensor | np.ndarray, known_items: int) -> tf.Tensor | np.ndarray:
    """Which item_idx are items with training ratings: 1..known_items (0 is the
    padding row, above known_items the OOV buckets of ids Transform never saw)."""
    return (item_idx >= 1) & (item_idx <= known_items)
