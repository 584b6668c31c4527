"""MultiTaskModel.compute_loss against values computed by hand on a 3-row batch.

tests/test_model_maths.py checks the TFRS pieces on their own; here the model's
own wiring runs: the logQ lookup by item, the temperature, the accidental hits,
the rolled in-batch negatives and their mask, the rating and interest terms,
the global-batch means, the loss weights and the uncertainty weighting. The
towers, pair heads and interest head are replaced by fixed outputs, so every
number below follows from Q, C and the labels alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts.metrics import INTEREST_AUC
from mtrec.models.config import INTEREST, RATING, RELEVANCE, RETRIEVAL, ModelConfig
from mtrec.models.model import MultiTaskModel
from mtrec.models.serving_tables import item_sampling_probability
from tests.tiny_model_support import SIZES

# Rows: (user, item) = (1, 1), (1, 2), (2, 1): item 1 twice, an accidental hit.
ITEMS = [1, 2, 1]
Q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
C = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0]], np.float32)  # rows 0 and 2: item 1
LIKED = [1, 0, 1]
RATINGS = [4.0, 2.0, 5.0]
RATING_MEAN = 3.0
# P(item) by item_idx: items 1 and 2 are drawn with 0.5 and 0.25.
SAMPLING = np.array([0.05, 0.5, 0.25, 0.1, 0.1], np.float32)
TEMPERATURE = 0.5
LN2, LN4 = np.log(2.0), np.log(4.0)


def softplus(z: float) -> float:
    return float(np.log1p(np.exp(z)))


# Retrieval: Q C' = [[1, 0, 1], [0, 2, 0], [1, 2, 1]]; / T = [[2, 0, 2], [0, 4, 0],
# [2, 4, 2]]; logQ adds -log P(item) per column: +ln2, +ln4, +ln2. Row 0's column 2
# and row 2's column 0 are item 1 again (not the row's positive): out of the softmax.
RETRIEVAL_LOSS = np.mean([
    -(2 + LN2) + np.log(np.exp(2 + LN2) + np.exp(LN4)),
    -(4 + LN4) + np.log(np.exp(LN2) + np.exp(4 + LN4) + np.exp(LN2)),
    -(2 + LN2) + np.log(np.exp(4 + LN4) + np.exp(2 + LN2)),
])
RETRIEVAL_WITHOUT_LOGQ = np.mean([
    -2 + np.log(np.exp(2) + np.exp(0)),
    -4 + np.log(np.exp(0) + np.exp(4) + np.exp(0)),
    -2 + np.log(np.exp(4) + np.exp(2)),
])
# Relevance (the stub's logit: q.c): positives q_i.c_i = [1, 2, 1], liked [1, 0, 1];
# negatives pair q_i with c_{i-1} (items rolled by one: 1, 1, 2): logits [1, 0, 2],
# label 0, and row 0's rolled item is its own (item 1): weight 0. Binary
# cross-entropy, the weighted sum over all 6 rows divided by 6.
RELEVANCE_LOSS = (softplus(-1) + softplus(2) + softplus(-1)
                  + 0 * softplus(1) + softplus(0) + softplus(2)) / 6
# Rating: 3 + q_i.c_i = [4, 5, 4] against [4, 2, 5]: squared errors 0, 9, 1.
RATING_LOSS = 10 / 3
# Interest: logits 0 give ln 2 on every genre; rows weighted 0.25 + 0.75 x liked.
INTEREST_LOSS = LN2 * (1 + 0.25 + 1) / 3


def _model(rated: tuple[np.ndarray, np.ndarray] | None = None, **config) -> MultiTaskModel:
    config = ModelConfig(**{"embedding_dim": 2, "rated_items": False,
                            "temperature": TEMPERATURE, "optimizer": "adam", **config})
    model = MultiTaskModel(SIZES, config, SAMPLING, RATING_MEAN, rated=rated)
    model.query_embedding = lambda x, training=False: tf.constant(Q)
    model.candidate_embedding = lambda x, training=False: tf.constant(C)

    def heads(features: tf.Tensor) -> dict[str, tf.Tensor]:  # [q, c, q*c] -> q.c
        dot = tf.reduce_sum(features[:, 4:], axis=-1)
        return {RELEVANCE: dot, RATING: dot}

    model.pair_heads = heads
    model.interest_logits = lambda q: tf.zeros([len(ITEMS), F.GENRE_BUCKETS])
    return model


def _batch() -> dict[str, tf.Tensor]:
    genres = np.zeros([len(ITEMS), F.GENRE_BUCKETS], np.float32)
    genres[0, 1] = genres[2, 3] = 1.0  # no effect at logit 0, but real labels
    return {F.USER_IDX: tf.constant([1, 1, 2], tf.int64),
            F.ITEM_IDX: tf.constant(ITEMS, tf.int64),
            F.RATING_XF: tf.constant(RATINGS), F.LIKED_XF: tf.constant(LIKED, tf.int64),
            F.GENRES_MULTI_HOT: tf.constant(genres)}


def _task_losses(model: MultiTaskModel) -> dict[str, float]:
    return {t: float(m.result()) for t, m in model.task_losses.items()}


def _towers_see(model: MultiTaskModel) -> list[dict[str, tf.Tensor]]:
    """The stub towers' inputs, query's then candidate's per compute_loss call."""
    seen: list[dict[str, tf.Tensor]] = []

    def tower(out: np.ndarray) -> Callable[..., tf.Tensor]:
        return lambda x, training=False: seen.append(x) or tf.constant(out)

    model.query_embedding, model.candidate_embedding = tower(Q), tower(C)
    return seen


def test_each_task_loss_by_hand():
    model = _model()
    model.compute_loss(_batch())
    assert _task_losses(model) == pytest.approx({
        RETRIEVAL: RETRIEVAL_LOSS, RELEVANCE: RELEVANCE_LOSS, RATING: RATING_LOSS,
        INTEREST: INTEREST_LOSS}, rel=1e-5)


def test_total_is_the_weighted_sum_of_the_task_means():
    model = _model()
    total = float(model.compute_loss(_batch()))
    weights = dict(model.config.loss_weights)
    assert weights == {RETRIEVAL: 1.0, RELEVANCE: 0.5, RATING: 1.0, INTEREST: 0.2}
    assert total == pytest.approx(
        RETRIEVAL_LOSS + 0.5 * RELEVANCE_LOSS + RATING_LOSS + 0.2 * INTEREST_LOSS, rel=1e-5)


def test_without_logq_correction_the_softmax_is_plain():
    model = _model(logq_correction=False, tasks=(RETRIEVAL,))
    assert float(model.compute_loss(_batch())) == pytest.approx(RETRIEVAL_WITHOUT_LOGQ,
                                                                rel=1e-5)


def test_without_the_interest_task_the_total_and_the_metrics_leave_it_out():
    """Data without genres drops the task (mtrec/cli.py): its AUC, never updated, read
    0.000 in every epoch line."""
    model = _model(tasks=(RETRIEVAL, RELEVANCE, RATING))
    total = float(model.compute_loss(_batch()))
    assert total == pytest.approx(RETRIEVAL_LOSS + 0.5 * RELEVANCE_LOSS + RATING_LOSS, rel=1e-5)
    assert model.interest_task is None and model.interest_head is None
    assert INTEREST_AUC not in {m.name for m in model.metrics}
    assert INTEREST_AUC in {m.name for m in _model().metrics}


def test_uncertainty_weighting_weighs_each_task_mean_by_its_learned_variance():
    model = _model(uncertainty_weighting=True)
    log_vars = {RETRIEVAL: 0.0, RELEVANCE: LN2, RATING: -LN2, INTEREST: 1.0}
    for task, value in log_vars.items():
        model.balancer.log_vars[task].assign(value)
    total = float(model.compute_loss(_batch()))
    means = {RETRIEVAL: RETRIEVAL_LOSS, RELEVANCE: RELEVANCE_LOSS, RATING: RATING_LOSS,
             INTEREST: INTEREST_LOSS}
    assert total == pytest.approx(
        sum(np.exp(-log_vars[t]) * means[t] + log_vars[t] for t in means), rel=1e-5)


def test_a_batch_without_duplicates_keeps_every_negative():
    """The rolled-negative mask only drops a row whose rolled item is its own."""
    model = _model(tasks=(RELEVANCE,))
    batch = {**_batch(), F.ITEM_IDX: tf.constant([1, 2, 3], tf.int64)}
    loss = float(model.compute_loss(batch))
    # Same logits as above; row 0's negative (item 3, logit 1) now counts. The
    # relevance weight stays 0.5 (loss_weights), alone or not.
    assert loss == pytest.approx(0.5 * (RELEVANCE_LOSS + softplus(1) / 6), rel=1e-5)


# No dropout of any kind: training=True runs _drop_ids, the rated-bag dropout and skips
# the metrics, and must change no loss.
NO_DROPOUT = {"id_dropout": 0.0, "rated_dropout": 0.0, "dropout": 0.0, "history_dropout": 0.0}
TASK_LOSSES = {RETRIEVAL: RETRIEVAL_LOSS, RELEVANCE: RELEVANCE_LOSS, RATING: RATING_LOSS,
               INTEREST: INTEREST_LOSS}
# Every user's rated items (row splits by user_idx, item_idx): user 1 rated 1, 2, 3 and
# user 2 rated 1, 4. The bag leaves out the row's own item.
RATED = (np.array([0, 0, 3, 5], np.int64), np.array([1, 2, 3, 1, 4], np.int64))
RATED_BAGS = [[2, 3], [1, 3], [4]]


def _weighted_total(losses: dict[str, float]) -> float:
    return losses[RETRIEVAL] + 0.5 * losses[RELEVANCE] + losses[RATING] + 0.2 * losses[INTEREST]


def test_training_without_dropout_gives_the_inference_losses():
    model = _model(**NO_DROPOUT)
    seen = _towers_see(model)
    total = float(model.compute_loss(_batch(), training=True))
    assert _task_losses(model) == pytest.approx(TASK_LOSSES, rel=1e-5)
    assert total == pytest.approx(_weighted_total(TASK_LOSSES), rel=1e-5)
    for x in seen:  # the towers see the batch's own ids
        assert x[F.USER_IDX].numpy().tolist() == [1, 1, 2]
        assert x[F.ITEM_IDX].numpy().tolist() == ITEMS


@pytest.mark.parametrize("training,rated_dropout,bags", [
    (False, 0.0, RATED_BAGS), (True, 0.0, RATED_BAGS),
    (False, 1.0, RATED_BAGS),  # inference never drops
    (True, 1.0, [[], [], []]),
])
def test_the_rated_bag_the_towers_see_and_its_dropout(training, rated_dropout, bags):
    model = _model(rated=RATED, **{**NO_DROPOUT, "rated_items": True,
                                   "rated_dropout": rated_dropout})
    seen = _towers_see(model)
    total = float(model.compute_loss(_batch(), training=training))
    assert seen[0][F.RATED_IDX].to_list() == bags
    assert total == pytest.approx(_weighted_total(TASK_LOSSES), rel=1e-5)  # stub towers


def test_id_dropout_of_one_trains_the_unknown_rows_on_the_batchs_labels():
    """id_dropout 1: every user and item id is row 0, the unknown one, for the towers and
    the biases; the labels, logQ, accidental hits and interest weights stay the
    batch's. Row 0's biases are set (0.5 user, 0.25 item) so the rating shows it."""
    model = _model(**{**NO_DROPOUT, "id_dropout": 1.0})
    seen = _towers_see(model)
    for bias, row_0 in ((model.user_bias, 0.5), (model.item_bias, 0.25)):
        bias(tf.constant([0]))  # built, then row 0 set
        table = np.zeros(bias.get_weights()[0].shape, np.float32)
        table[0] = row_0
        bias.set_weights([table])
    total = float(model.compute_loss(_batch(), training=True))
    for x in seen:
        assert x[F.USER_IDX].numpy().tolist() == [0, 0, 0]
        assert x[F.ITEM_IDX].numpy().tolist() == [0, 0, 0]
    # Rating: 3 + 0.5 + 0.25 + q_i.c_i = [4.75, 5.75, 4.75] against [4, 2, 5].
    rating = (0.75 ** 2 + 3.75 ** 2 + 0.25 ** 2) / 3
    # Relevance, retrieval's accidental hits and logQ read the batch's ids: row 0's
    # accidental hit (item 1 rolled onto item 1) stays masked though both ids are now
    # the unknown row (compared after dropout, it counted as a negative: softplus(1)/6).
    want = {**TASK_LOSSES, RATING: rating}
    assert _task_losses(model) == pytest.approx(want, rel=1e-5)
    assert total == pytest.approx(_weighted_total(want), rel=1e-5)


class _Vocabularies:
    """The two vocabularies item_sampling_probability reads from a Transform output."""

    def __init__(self, freq_file: str):
        self._freq_file = freq_file

    def vocabulary_file_by_name(self, name: str) -> str:
        assert name == F.ITEM_FREQ_VOCAB
        return self._freq_file

    def vocabulary_by_name(self, name: str) -> list[bytes]:
        assert name == F.ITEM_VOCAB
        return [b"a", b"b", b"c"]


def test_logq_table_is_each_items_share_of_the_training_positives(tmp_path):
    """The table compute_loss gathers by item_idx: count / all known items' counts;
    padding (row 0) and the OOV row get a count of 1, the smallest share."""
    freq_file = tmp_path / "item_id_freq"
    freq_file.write_text("6 a\n3 b\n1 c\n")
    sizes = dataclasses.replace(SIZES, items=5, known_items=3)
    table = item_sampling_probability(_Vocabularies(str(freq_file)), sizes)
    np.testing.assert_allclose(table, [0.1, 0.6, 0.3, 0.1, 0.1], rtol=1e-6)
