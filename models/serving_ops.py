"""Pure tensor pieces of the serving graph (models/serving_module.py), and its per-user cache.

Per-user cache: for a known user, everything `recommend` computes before the
re-rank depends on the user alone. The query tower reads the user's profile
row (demographics, latest history, rated-item bag) and the item-item term
reads the same bag. So the export runs the query tower over every user row
once (a [users, dim] table) and, with the item-item term on, that term for
every user row (a [users, items + 1] table); a request gathers a row. On the
ML-100K u1 model this, with the pair-split cut, took in-process `recommend` from
1.52 to 1.16 ms p50 (benchmarks/results/serving_profile.md). user_id maps to its
row by one hash-table lookup with tf.Transform's vocabulary and OOV hashing
(serving_tables.user_row_table), not the Transform graph; unknown users land
in the OOV rows as before.

A table is skipped (the per-request path stays) above MAX_CACHED_FLOATS, so a
large user base or catalogue never blows up the SavedModel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts import signatures as S
from mtrec.models.config import RATING, RELEVANCE, RETRIEVAL

if TYPE_CHECKING:  # typing only: the model module is not needed to run these ops
    from mtrec.models.model import MultiTaskModel

NEG = S.EXCLUDED_SCORE  # score of excluded items: finite, always ranked last
LIKE = "like"  # pair_scores' calibrated P(like), the one signatures report
# 64 MB of float32 per table; ML-100K's item-item table is 944 x 1,683 (6.4 MB).
MAX_CACHED_FLOATS = 1 << 24
# User rows per eager batch. The item-item term gathers one catalogue-wide row per
# rated item: ~11K rows x 1,683 floats (72 MB) per 128 ML-100K users.
_CHUNK = 128


def as_variable(value: np.ndarray, name: str) -> tf.Variable:
    """A served table. Variables, not constants: a 1M-item catalogue would not fit
    a GraphDef."""
    return tf.Variable(value, trainable=False, name=name)


def position_table(ids: np.ndarray) -> tf.lookup.StaticHashTable:
    """id (bytes) -> its position in `ids`; -1 for any other id."""
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(ids.astype(bytes)), tf.range(len(ids), dtype=tf.int64)), default_value=-1)


def fits(rows: int, columns: int) -> bool:
    return rows * columns <= MAX_CACHED_FLOATS


def per_user_rows(users: int, fn: Callable[[tf.Tensor], tf.Tensor]) -> np.ndarray:
    """fn(user_idx [b]) -> [b, ...], stacked over user_idx 0..users-1 in chunks."""
    parts = [fn(tf.range(start, min(start + _CHUNK, users), dtype=tf.int64)).numpy()
             for start in range(0, users, _CHUNK)]
    return np.concatenate(parts).astype(np.float32)


def profile_inputs(profiles: dict[str, tf.Variable], user_idx: tf.Tensor) -> dict:
    """Query-tower inputs of these user rows: the id and its profile tables' rows."""
    inputs = {F.USER_IDX: user_idx}
    for key, table in profiles.items():
        inputs[key] = tf.gather(table, user_idx)
    return inputs


def blend_score(weights: dict[str, float], stage1: tf.Tensor, relevance: tf.Tensor,
                rating: tf.Tensor) -> tf.Tensor:
    """The final recommendation score (models/serving_module.py docstring): the first-stage
    score, P(like) and the rating mapped onto [0, 1], weighted by ModelConfig.blend."""
    rating01 = (rating - F.MIN_RATING) / (F.MAX_RATING - F.MIN_RATING)
    return (
        weights.get(RETRIEVAL, 0.0) * stage1
        + weights.get(RELEVANCE, 0.0) * relevance
        + weights.get(RATING, 0.0) * tf.clip_by_value(rating01, 0.0, 1.0)
    )


def checked_size(k: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
    """n, once k is checked to be in 1..n (a clear error for a bad request)."""
    checks = [tf.debugging.assert_positive(k, message="k must be a positive integer"),
              tf.debugging.assert_less_equal(k, n, message=S.K_PAST_CATALOGUE)]
    with tf.control_dependencies(checks):  # before any top_k that reads n, not racing it
        return tf.identity(n)


def top_positions(scores: tf.Tensor, c: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Each row's c best scores and their positions (int64)."""
    top = tf.math.top_k(scores, c)
    return top.values, tf.cast(top.indices, tf.int64)


def pair_scores(model: MultiTaskModel, query: tf.Tensor, user_idx: tf.Tensor, vectors: tf.Tensor,
                item_idx: tf.Tensor, heads: dict | None = None) -> dict[str, tf.Tensor]:
    """P(like) and rating, [B, C], of each user (query [B, d], user_idx [B])
    against each of their candidates (vectors [B, C, d], item_idx [B, C]), by a
    MultiTaskModel's pair heads, or from their outputs `heads` computed already.
    P(like) twice: the head's own (RELEVANCE), which the blend ranks by, and the
    calibrated one a signature reports (LIKE: models/like_calibration.py)."""
    shape = tf.shape(item_idx)
    b, c = shape[0], shape[1]
    if heads is not None:
        users = tf.broadcast_to(user_idx[:, tf.newaxis], shape)
        out = model.pair_from_heads(heads, users, item_idx)
        rating = model.served_rating(out[RATING], users, item_idx)
        return {RELEVANCE: tf.sigmoid(out[RELEVANCE]),
                LIKE: model.like_probability(out[RELEVANCE], rating), RATING: rating}
    q = tf.reshape(tf.repeat(query[:, tf.newaxis, :], c, axis=1), [b * c, -1])
    out = model.pair_outputs(
        q,
        tf.reshape(vectors, [b * c, -1]),
        tf.reshape(tf.repeat(user_idx[:, tf.newaxis], c, axis=1), [-1]),
        tf.reshape(item_idx, [-1]),
    )
    logit = tf.reshape(out[RELEVANCE], [b, c])
    rating = model.served_rating(tf.reshape(out[RATING], [b, c]), user_idx[:, tf.newaxis],
                                 item_idx)
    return {RELEVANCE: tf.sigmoid(logit), LIKE: model.like_probability(logit, rating),
            RATING: rating}


def exclude(scores: tf.Tensor, positions: tf.RaggedTensor) -> tf.Tensor:
    """`scores` with each row's listed catalogue positions set to NEG (ranked last)."""
    indices = tf.stack([positions.value_rowids(), positions.flat_values], axis=1)
    fill = tf.fill(tf.shape(indices)[:1], tf.constant(NEG, scores.dtype))
    return tf.tensor_scatter_nd_update(scores, indices, fill)


def vectors_at(item_vectors: tf.Tensor, unknown: tf.Tensor, catalog_idx: tf.Tensor,
               positions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Candidate vectors and item_idx for catalogue positions (-1 = unknown item:
    the `unknown` vector and item_idx 0)."""
    known = positions >= 0
    safe = tf.maximum(positions, 0)
    vectors = tf.where(
        known[..., tf.newaxis],
        tf.gather(item_vectors, safe),
        tf.broadcast_to(unknown, tf.concat([tf.shape(safe), tf.shape(unknown)], 0)),
    )
    idx = tf.where(known, tf.gather(catalog_idx, safe), tf.zeros_like(safe))
    return vectors, idx


def unknown_item_vector(model: MultiTaskModel) -> np.ndarray:
    """Candidate embedding (a MultiTaskModel's) of an item we know nothing about:
    id row 0, no features."""
    blank = {
        F.ITEM_IDX: tf.zeros([1], tf.int64),
        F.GENRES_MULTI_HOT: tf.zeros([1, F.GENRE_BUCKETS]),
        F.TITLE_TOKENS: tf.zeros([1, F.TITLE_LEN], tf.int64),
        F.DESCRIPTION_TOKENS: tf.zeros([1, F.DESCRIPTION_LEN], tf.int64),
        F.YEAR_Z: tf.zeros([1]),
        F.YEAR_KNOWN: tf.zeros([1]),
    }
    if model.candidate_tower.text_table is not None:
        blank[F.ITEM_TEXT_VECTOR] = tf.zeros([1, model.candidate_tower.text_table.shape[1]])
    return model.candidate_embedding(blank).numpy()[0]


def given_items_inputs(profiles: dict[str, tf.Variable], catalog_idx: tf.Tensor,
                       positions: tf.Tensor, known_items: int, with_bag: bool
                       ) -> tuple[dict, tf.RaggedTensor]:
    """The query tower's inputs for users known only by the items given now
    (`recommend_from_items`; catalogue `positions` [B, L], -1 for none, oldest
    first): an unknown user's profile (row 0) with those items as the newest-first
    history and, `with_bag`, the rated-item bag; and that bag. Items outside the
    catalogue or without training ratings (item_idx > known_items) are dropped."""
    idx = tf.where(positions >= 0, tf.gather(catalog_idx, tf.maximum(positions, 0)), 0)
    idx = tf.where(idx > known_items, tf.zeros_like(idx), idx)
    bag = tf.ragged.boolean_mask(idx, idx > 0)
    user_idx = tf.zeros(tf.shape(positions)[:1], tf.int64)
    inputs = profile_inputs(profiles, user_idx)
    newest_first = tf.reverse_sequence(bag.to_tensor(), bag.row_lengths(), seq_axis=1)
    inputs[F.HISTORY_IDX] = tf.pad(newest_first, [[0, 0], [0, F.HISTORY_LEN]])[
        :, : F.HISTORY_LEN]
    inputs[F.USER_IDX] = user_idx
    if with_bag:
        inputs[F.RATED_IDX] = bag
    return inputs, bag


def new_item_inputs(tft_layer: Callable[[dict], dict], item_id: tf.Tensor, title: tf.Tensor,
                    genres: tf.Tensor, description: tf.Tensor, year: tf.Tensor) -> dict:
    """The candidate tower's inputs of items given by their raw features
    (`embed_new_item`), through the Transform layer; genres padded with ""."""
    column = lambda t: tf.reshape(t, [-1, 1])  # noqa: E731
    xf = tft_layer({F.ITEM_ID: column(item_id), F.TITLE: column(title),
                    F.GENRES: tf.sparse.from_dense(genres),
                    F.DESCRIPTION: column(description), F.YEAR: column(year)})
    return {k: xf[k] for k in F.CANDIDATE_XF_FEATURES}


def trained_year_range(item_features: dict[str, np.ndarray],
                       known: np.ndarray) -> tuple[float, float] | None:
    """The z-scored release years (F.YEAR_Z) the candidate tower was trained on: their
    range over the catalogue items with training ratings (`known` [N]) and a known
    year; None when there are none."""
    trained = item_features[F.YEAR_Z][known & (item_features[F.YEAR_KNOWN] > 0)]
    if trained.size == 0:
        return None
    return float(trained.min()), float(trained.max())


def within_years(year_z: tf.Tensor, year_known: tf.Tensor,
                 year_range: tuple[float, float] | None) -> tf.Tensor:
    """An item's F.YEAR_Z held to the trained range (trained_year_range); an unknown
    year (0) stays 0. The tower is linear in year_z near its edge, so a year past the
    newest training item extrapolated it: on ml-latest-small (newest 2018) an added
    2024 film's first-stage score fell from -16.2 (as 2018) to -20.1 for user 40, and
    kept falling with the year."""
    if year_range is None:  # no trained item has a year (a catalogue without years)
        return tf.convert_to_tensor(year_z)
    lo, hi = year_range
    return tf.where(year_known > 0, tf.clip_by_value(year_z, lo, hi), year_z)


def given_text(text_embedding: tf.Tensor, text_mean: tf.Tensor) -> tf.Tensor:
    """A request's text vectors as the tower reads them: centred on the catalogue's
    mean and L2-normalised; an all-zero row (no text given) stays zero."""
    given = tf.reduce_any(tf.not_equal(text_embedding, 0.0), axis=-1, keepdims=True)
    centred = tf.math.l2_normalize(text_embedding - text_mean, axis=-1)
    return tf.where(given, centred, tf.zeros_like(centred))


def given_description(description_embedding: tf.Tensor, description: tf.Tensor) -> tf.Tensor:
    """A request's description vectors as the cold-item map reads them (ItemText's
    `descriptions`): L2-normalised, zero where the description is empty or ASCII
    whitespace (corpus.description_text's "" : tf.strings.strip drops the same six)."""
    has = tf.strings.length(tf.strings.strip(description)) > 0
    vectors = tf.math.l2_normalize(description_embedding, axis=-1)
    return tf.where(has[:, tf.newaxis], vectors, tf.zeros_like(vectors))
