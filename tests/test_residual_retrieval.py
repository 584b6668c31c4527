"""The retrieval loss as a residual on the served item-item term: hand-computed maths."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from mtrec.contracts import features as F
from mtrec.models.config import ModelConfig
from mtrec.models.item_item import item_item_scores, item_item_term
from mtrec.models.model import MultiTaskModel
from mtrec.models.residual_retrieval import (
    ItemItemPrior,
    PriorTerm,
    ResidualRetrieval,
    fit_prior,
    in_batch_term,
    leave_one_out_scores,
    not_rated_elsewhere,
    retrieval_logits,
)
from mtrec.models.serving_tables import row_splits
from tests.tiny_model_support import SIZES, rows

# item_idx 0 is padding; items 1..3. B's rows by hand (diagonal zero).
B = np.array([[0, 0, 0, 0], [0, 0, 1, 2], [0, 3, 0, 1], [0, 1, 4, 0]], np.float32)
# User 0 rated {1, 2, 3}: S[0] = B[1] + B[2] + B[3] = [0, 4, 5, 3]; user 1 rated {2}.
SPLITS, BAGS = np.array([0, 3, 4], np.int64), np.array([1, 2, 3, 2], np.int64)
S = np.array([[0, 4, 5, 3], [0, 3, 0, 1]], np.float32)
# The catalogue, in its own order: item_idx 3, 1, 2 (positions 0, 1, 2); all rated.
CATALOG_IDX = np.array([3, 1, 2], np.int64)
RATED = np.array([True, True, True, False])  # [N + 1]: the outside column has none


def _ragged() -> tf.RaggedTensor:
    return tf.RaggedTensor.from_row_splits(tf.constant(BAGS), tf.constant(SPLITS))


def test_the_rows_own_item_leaves_the_bag_and_a_held_out_item_does_not():
    # (user 0, item 2): item 2 is in the bag, so {1, 3}: B[1] + B[3] = [0, 1, 5, 2].
    # (user 1, item 3): item 3 is not (a held-out pair), so the whole bag: S[1].
    got = leave_one_out_scores(tf.constant(S), tf.constant(B), _ragged(),
                               tf.constant([0, 1], tf.int64), tf.constant([2, 3], tf.int64))
    np.testing.assert_allclose(got, [[0, 1, 5, 2], [0, 3, 0, 1]])


def test_the_term_is_standardised_over_the_catalogue_and_read_at_the_candidates():
    # Row 0: scores [0, 1, 5, 2] in catalogue order (idx 3, 1, 2) = [2, 1, 5]: mean 8/3,
    # deviations [-2, -5, 7] / 3, std sqrt(26) / 3. Its similarity [1, 2, 3] has std
    # sqrt(2 / 3), so the term is [-2, -5, 7] / sqrt(26) * sqrt(2 / 3) = [-2, -5, 7] / sqrt(39).
    # Row 1: [0, 3, 0, 1] -> [1, 3, 0]: deviations [-1, 5, -4] / 3, std sqrt(14) / 3;
    # similarity [0, 0, 3] has std sqrt(2): [-1, 5, -4] / sqrt(7).
    # Candidates item_idx 2, 3 and one outside the catalogue: positions 2, 0, 3 (N).
    similarity = tf.constant([[1.0, 2.0, 3.0], [0.0, 0.0, 3.0]])
    scores = tf.constant([[0, 1, 5, 2], [0, 3, 0, 1]], tf.float32)
    got = in_batch_term(similarity, scores, tf.constant(CATALOG_IDX), tf.constant(RATED),
                        tf.constant([2, 0, 3], tf.int64))
    s39, s7 = np.sqrt(39), np.sqrt(7)
    np.testing.assert_allclose(got, [[7 / s39, -2 / s39, 0], [-4 / s7, -1 / s7, 0]],
                               rtol=1e-5, atol=1e-6)


def test_the_training_term_is_the_served_term_of_the_bag_without_the_rows_item():
    positions = np.array([3, 1, 2, 0], np.int64)  # item_idx -> position; 0 is outside
    prior = ItemItemPrior(B, S, SPLITS, BAGS, {}, RATED, positions, CATALOG_IDX)
    term = PriorTerm(prior, weight=0.5)
    query = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    catalog = tf.constant([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]])
    got = term(query, catalog, tf.constant([0, 1]), tf.constant([2, 3]))
    # What recommend serves: the bag's B rows summed over catalogue columns, then
    # item_item_term on the similarity; user 0's bag without item 2, user 1's whole bag.
    served_bags = tf.ragged.constant([[1, 3], [2]], tf.int64)
    served = item_item_term(tf.matmul(query, catalog, transpose_b=True),
                            item_item_scores(tf.constant(B[:, CATALOG_IDX]), served_bags),
                            tf.constant(RATED)).numpy()
    np.testing.assert_allclose(got, 0.5 * served[:, [2, 0]], rtol=1e-5, atol=1e-6)
    # With the row's own item left in, row 0's positive would read a larger term.
    leaked = item_item_term(tf.matmul(query, catalog, transpose_b=True),
                            item_item_scores(tf.constant(B[:, CATALOG_IDX]), _ragged()),
                            tf.constant(RATED)).numpy()
    assert not np.allclose(leaked[0, 2], served[0, 2])


def test_fit_prior_sums_each_users_bag_over_the_fitted_weights():
    prior = fit_prior(SPLITS, BAGS, num_items=4, l2=1.0, catalog_features={},
                      catalog_idx=CATALOG_IDX)
    bags = tf.ragged.constant([[1, 2, 3], [2]], tf.int64)
    np.testing.assert_allclose(prior.user_scores, item_item_scores(prior.weights, bags),
                               rtol=1e-6)
    np.testing.assert_array_equal(prior.positions, [3, 1, 2, 0])
    np.testing.assert_array_equal(prior.rated, [True, True, True, False])


def test_logits_add_the_prior_before_the_temperature_and_the_logq_correction():
    # q.c = [[2, 1], [0, 1]]; + prior [[0.5, 0], [0, -1]] = [[2.5, 1], [0, 0]];
    # / 0.5 = [[5, 2], [0, 0]]; - log q = + [log 2, log 4] per column.
    query, cands = tf.constant([[1.0, 0.0], [0.0, 1.0]]), tf.constant([[2.0, 0.0], [1.0, 1.0]])
    prior, p = tf.constant([[0.5, 0.0], [0.0, -1.0]]), tf.constant([0.5, 0.25])
    labels, logits = retrieval_logits(query, cands, prior, 0.5, p, tf.constant([7, 8]))
    np.testing.assert_allclose(labels, np.eye(2))
    expected = [[5 + np.log(2), 2 + np.log(4)], [np.log(2), np.log(4)]]
    np.testing.assert_allclose(logits, expected, rtol=1e-5)
    # The same candidate twice: the other copy is not a negative (accidental hit).
    _, hits = retrieval_logits(query, cands, prior, 0.5, p, tf.constant([7, 7]))
    assert hits[0, 1] < -1e8 and hits[1, 0] < -1e8


def test_negatives_the_user_rated_elsewhere_are_masked_but_not_the_positive():
    # Row 0's user rated {3, 1} (unsorted), row 1's {2, 1}; candidates item 1, 2, 3,
    # row r's positive is column r. Row 0: item 1 is its own positive (kept), item 3
    # rated elsewhere (masked). Row 1: item 1 rated elsewhere (masked), item 2 its own.
    bags = tf.ragged.constant([[3, 1], [2, 1]], tf.int64)
    got = not_rated_elsewhere(bags, tf.constant([1, 2, 3], tf.int64))
    np.testing.assert_array_equal(got, [[True, True, False], [False, True, True]])
    # A masked negative drops out of the softmax: the row's loss is the 2-way one.
    query, cands = tf.constant([[1.0, 0.0]]), tf.constant([[1.0, 0.0], [3.0, 0.0]])
    _, logits = retrieval_logits(query, cands, None, 1.0, None, tf.constant([1, 2]),
                                 tf.constant([[True, False]]))
    assert logits[0, 0] == 1.0 and logits[0, 1] < -1e8


def test_without_a_prior_the_loss_is_tfrs_retrievals():
    rng = np.random.default_rng(0)
    query, cands = (tf.constant(rng.normal(size=(5, 3)), tf.float32) for _ in range(2))
    p, ids = tf.constant(rng.uniform(0.1, 0.5, 5), tf.float32), tf.constant([1, 2, 3, 2, 4])
    reference = tfrs.tasks.Retrieval(
        loss=tf.keras.losses.CategoricalCrossentropy(
            from_logits=True, reduction=tf.keras.losses.Reduction.NONE),
        temperature=0.7, remove_accidental_hits=True)
    want = reference(query, cands, candidate_sampling_probability=p, candidate_ids=ids,
                     compute_metrics=False)
    got = ResidualRetrieval(0.7)(query, cands, None, p, ids)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    shifted = ResidualRetrieval(0.7)(query, cands, tf.ones([5, 5]), p, ids)  # a row constant
    np.testing.assert_allclose(shifted, want, rtol=1e-5)


def test_a_model_trains_with_the_term_and_only_when_asked():
    # SIZES: users 0..2, items 0..4 (known 1..4); rows(3) is user 1 with items 1, 2, 3.
    splits, bags = row_splits(np.array([1, 1, 1]), SIZES.users), np.array([1, 2, 3])
    batch = rows(3)
    features = {k: batch[k].numpy() for k in F.CANDIDATE_XF_FEATURES}
    prior = fit_prior(splits, bags, SIZES.items, 1.0, features, features[F.ITEM_IDX])

    def model(residual: float, exclude: bool = False) -> MultiTaskModel:
        config = ModelConfig(embedding_dim=2, optimizer="adam", tasks=("retrieval",),
                             item_item_residual=residual, exclude_rated_negatives=exclude)
        return MultiTaskModel(SIZES, config, np.full(SIZES.items, 0.25, np.float32), 3.5,
                              rated=(splits, bags), item_item_prior=prior)

    assert model(0.0).prior_term is None
    trained = model(1.0)
    assert isinstance(trained.retrieval_task, ResidualRetrieval)
    trained.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    history = trained.fit(tf.data.Dataset.from_tensors(batch), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # All three items are user 1's: with them masked each row is its positive alone.
    masked = model(1.0, exclude=True)
    masked.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    loss = masked.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
    np.testing.assert_allclose(loss.history["loss"], 0.0, atol=1e-6)


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_the_share_is_range_checked(value):
    with pytest.raises(ValueError, match="item_item_residual"):
        ModelConfig.from_dict({"item_item_residual": value})
