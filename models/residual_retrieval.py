"""Training the retrieval logits as a residual on the served item-item term.

`recommend`'s first stage is the towers' similarity plus the item-item (EASE)
term, scaled to the similarity's per-user spread (models/item_item.py,
models/serving_module.py). Without this module the retrieval loss never sees
that term, so the towers re-learn what EASE already gives. With it
(ModelConfig.item_item_residual = r > 0), each query row's in-batch logits get
r * item_item_weight * the term exactly as served for that user and candidate:

    logit[u, j] = (sim(u, j) + r * w * term(u, j)) / temperature - log q(j)

with `term` item_item.item_item_term over the catalogue (standardised over
the items with training ratings, put on the row's similarity spread over the
whole catalogue), so at r = 1 the loss trains the served stage-1 score.

Leave-one-out: B is fitted on the same training interactions, and the served
bag is the user's whole history. For a training row (u, i) the bag would
contain i itself, and EASE's in-sample score of i from the rest of the bag is
what B was fitted to reproduce. At serving a candidate is never in the bag
(training items are excluded), so the row's bag here is the user's bag
without i: S[u] - B[i] with S = X B precomputed (X the users' 0/1 bags), when
i is in u's bag (always for training rows; never for held-out rows).

The reference spread reads every catalogue item's similarity, so the candidate
tower runs over the catalogue at every step (features as the export has them;
a catalogue item without an id row reads no text, which the export would give
it: the spread alone sees that). Memory: S is [users, items] and B [items,
items] float32, built only where the dense term is served (item_item.MAX_ITEMS).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from mtrec.models.item_item import fit_item_item, item_item_term, rated_columns

MIN_LOGIT = np.finfo(np.float32).min / 100.0  # tfrs.tasks.Retrieval's masked score


@dataclasses.dataclass(frozen=True)
class ItemItemPrior:
    """What the training term reads, all fixed for the run."""

    weights: np.ndarray  # B: [items, items] over item_idx (fit_item_item)
    user_scores: np.ndarray  # S = X B: [users, items], each user's whole bag
    rated_splits: np.ndarray  # [users + 1] row splits into rated_idx
    rated_idx: np.ndarray  # the users' rated item_idx (their bags)
    catalog_features: dict[str, np.ndarray]  # candidate-tower inputs, [N, ...]
    rated: np.ndarray  # [N + 1] bool: item_item.rated_columns
    positions: np.ndarray  # [items]: catalogue position of each item_idx, N outside
    catalog_idx: np.ndarray  # [N]: the catalogue's item_idx


def fit_prior(rated_splits: np.ndarray, rated_idx: np.ndarray, num_items: int, l2: float,
              catalog_features: dict[str, np.ndarray], catalog_idx: np.ndarray
              ) -> ItemItemPrior:
    """B (the export's, in item_idx order) and every user's whole-bag scores."""
    weights = fit_item_item(rated_splits, rated_idx, num_items, l2)
    users = len(rated_splits) - 1
    x = np.zeros((users, num_items), np.float32)
    x[np.repeat(np.arange(users), np.diff(rated_splits)), rated_idx] = 1.0
    positions = np.full(num_items, len(catalog_idx), np.int64)
    positions[catalog_idx] = np.arange(len(catalog_idx))
    return ItemItemPrior(weights, x @ weights, rated_splits, rated_idx, catalog_features,
                         rated_columns(rated_idx, catalog_idx), positions, catalog_idx)


class PriorTerm:
    """An ItemItemPrior as tensors, and the weighted term of a batch's logits.

    Plain attributes (not Keras-tracked): nothing here is trained or exported."""

    def __init__(self, prior: ItemItemPrior, weight: float):
        self.weight = weight
        self.weights = tf.constant(prior.weights, tf.float32)
        self.user_scores = tf.constant(prior.user_scores, tf.float32)
        self.rated_splits = tf.constant(prior.rated_splits, tf.int64)
        self.rated_idx = tf.constant(prior.rated_idx, tf.int64)
        self.catalog_features = {k: tf.constant(v) for k, v in prior.catalog_features.items()}
        self.catalog_idx = tf.constant(prior.catalog_idx, tf.int64)
        self.rated = tf.constant(prior.rated)
        self.positions = tf.constant(prior.positions, tf.int64)

    def __call__(self, query_vectors: tf.Tensor, catalog_vectors: tf.Tensor,
                 user_idx: tf.Tensor, item_idx: tf.Tensor) -> tf.Tensor:
        """[B, B]: weight * the served term of row r's user (its bag without its item)
        for the batch's candidate c (item_idx[c]); `catalog_vectors` [N, d]."""
        bags = tf.RaggedTensor.from_row_splits(self.rated_idx, self.rated_splits)
        user_idx, item_idx = tf.cast(user_idx, tf.int64), tf.cast(item_idx, tf.int64)
        scores = leave_one_out_scores(self.user_scores, self.weights, bags, user_idx, item_idx)
        # No gradient through the spread: with one, the towers inflated the similarity
        # of catalogue items rarely in a batch to scale the term up (u1 validation
        # NDCG@10 0.328 -> 0.219, coverage@10 0.19 -> 0.45).
        similarity = tf.stop_gradient(
            tf.matmul(query_vectors, catalog_vectors, transpose_b=True))
        term = in_batch_term(similarity, scores, self.catalog_idx, self.rated,
                             tf.gather(self.positions, item_idx))
        return self.weight * term


def leave_one_out_scores(user_scores: tf.Tensor, weights: tf.Tensor, bags: tf.RaggedTensor,
                         user_idx: tf.Tensor, item_idx: tf.Tensor) -> tf.Tensor:
    """[B, items]: each row's item-item scores from its user's bag without the row's
    item: S[u] - B[i] where i is in u's bag, S[u] otherwise."""
    bag = tf.gather(bags, user_idx)
    member = tf.reduce_any(tf.equal(bag, tf.expand_dims(item_idx, 1)), axis=1)
    own = tf.gather(weights, item_idx) * tf.cast(member, weights.dtype)[:, tf.newaxis]
    return tf.gather(user_scores, user_idx) - own


def in_batch_term(catalog_similarity: tf.Tensor, scores: tf.Tensor, catalog_idx: tf.Tensor,
                  rated: tf.Tensor, candidate_positions: tf.Tensor) -> tf.Tensor:
    """[B, C]: item_item_term (as served, before its weight) of each row for each
    in-batch candidate. `catalog_similarity` [B, N]: the row's similarity to the
    catalogue; `scores` [B, items] over item_idx; `candidate_positions` [C]:
    catalogue positions (N: outside the catalogue, term 0)."""
    term = item_item_term(catalog_similarity, tf.gather(scores, catalog_idx, axis=1), rated)
    return tf.gather(term, candidate_positions, axis=1)


def not_rated_elsewhere(bags: tf.RaggedTensor, candidate_ids: tf.Tensor) -> tf.Tensor:
    """[B, C] bool, tfrs score_mask's sense (True = a negative kept): False where
    candidate c is an item row r's user rated, unless it is row r's own column.

    `recommend` never serves a user's training items, so an in-batch negative the
    user rated elsewhere in training teaches a ranking nothing is served from
    (ModelConfig.exclude_rated_negatives). Each bag is sorted and searched."""
    big = tf.constant(np.iinfo(np.int64).max, tf.int64)
    dense = tf.cast(bags, tf.int64).to_tensor(default_value=big)
    # One padding column more, so an all-empty batch of bags still has a column.
    dense = tf.sort(tf.pad(dense, [[0, 0], [0, 1]], constant_values=big), axis=1)
    ids = tf.cast(candidate_ids, tf.int64)
    wanted = tf.tile(ids[tf.newaxis, :], [tf.shape(dense)[0], 1])
    at = tf.minimum(tf.searchsorted(dense, wanted), tf.shape(dense)[1] - 1)
    found = tf.equal(tf.gather(dense, at, batch_dims=1), wanted)
    own = tf.cast(tf.eye(tf.shape(found)[0], tf.shape(found)[1]), tf.bool)
    return ~found | own


def retrieval_logits(query: tf.Tensor, candidates: tf.Tensor, prior: tf.Tensor | None,
                     temperature: float, sampling_probability: tf.Tensor | None,
                     candidate_ids: tf.Tensor, score_mask: tf.Tensor | None = None
                     ) -> tuple[tf.Tensor, tf.Tensor]:
    """(labels, logits) [B, B]: tfrs.tasks.Retrieval's in-batch logits (temperature,
    logQ correction, accidental hits removed, score_mask) with `prior` added to the
    raw scores."""
    scores = tf.matmul(query, candidates, transpose_b=True)
    if prior is not None:
        scores = scores + prior
    labels = tf.eye(tf.shape(scores)[0], tf.shape(scores)[1])
    scores = scores / temperature
    if sampling_probability is not None:
        scores = tfrs.layers.loss.SamplingProbablityCorrection()(scores, sampling_probability)
    scores = tfrs.layers.loss.RemoveAccidentalHits()(labels, scores, candidate_ids)
    if score_mask is not None:
        scores = tf.where(score_mask, scores, MIN_LOGIT)
    return labels, scores


class ResidualRetrieval(tf.keras.layers.Layer, tfrs.tasks.Task):
    """The retrieval task with a fixed additive score term (per-example softmax loss)."""

    def __init__(self, temperature: float, **kw):
        super().__init__(**kw)
        self.temperature = temperature
        self.softmax_loss = tf.keras.losses.CategoricalCrossentropy(
            from_logits=True, reduction=tf.keras.losses.Reduction.NONE)

    def call(self, query: tf.Tensor, candidates: tf.Tensor, prior: tf.Tensor | None,
             candidate_sampling_probability: tf.Tensor | None,
             candidate_ids: tf.Tensor, score_mask: tf.Tensor | None = None) -> tf.Tensor:
        labels, logits = retrieval_logits(query, candidates, prior, self.temperature,
                                          candidate_sampling_probability, candidate_ids,
                                          score_mask)
        return self.softmax_loss(labels, logits)
