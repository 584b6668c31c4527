"""The interest AUC over the genre columns that exist (models/interest_metric.py), by hand.

A batch whose labels use 2 genres: the other 30 multi-hot columns are always 0. The head
ranks the 2 real columns badly but puts the phantom ones far below every real cell, so
the flattened AUC of old counts 90 easy negatives and reads high; the masked one is the
pair count over the real cells alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts.metrics import INTEREST_AUC
from mtrec.models.config import INTEREST, ModelConfig
from mtrec.models.interest_metric import InterestAUC, genre_columns
from mtrec.models.model import MultiTaskModel
from tests.tiny_model_support import SIZES, rows

# 3 rows x 2 real genres (columns 0, 1); logits well apart, so Keras' 200 thresholds
# separate every cell and its AUC is the exact pair count.
REAL_LABELS = np.array([[1, 0], [0, 1], [1, 0]], np.float32)
REAL_LOGITS = np.array([[-1.0, 1.0], [2.0, 0.0], [0.5, 0.25]], np.float32)
PHANTOM_LOGIT = -10.0
ROW_WEIGHTS = np.array([1.0, 0.25, 1.0], np.float32)  # the task's 0.25 + 0.75 x liked


def _wide(real: np.ndarray, fill: float) -> np.ndarray:
    out = np.full([len(real), F.GENRE_BUCKETS], fill, np.float32)
    out[:, : real.shape[1]] = real
    return out


LABELS, LOGITS = _wide(REAL_LABELS, 0.0), _wide(REAL_LOGITS, PHANTOM_LOGIT)


def pair_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> float:
    """Weighted ROC AUC by pair counting: P(positive above negative), ties half."""
    labels, scores, weights = labels.ravel(), scores.ravel(), weights.ravel()
    pos, neg = labels == 1, (labels == 0) & (weights > 0)
    wins = (scores[pos][:, None] > scores[neg][None, :]) + 0.5 * (
        scores[pos][:, None] == scores[neg][None, :])
    pair_w = weights[pos][:, None] * weights[neg][None, :]
    return float((wins * pair_w).sum() / pair_w.sum())


def _auc(metric: tf.keras.metrics.Metric, sample_weight: np.ndarray | None = None) -> float:
    metric.update_state(tf.constant(LABELS), tf.constant(LOGITS), sample_weight=sample_weight)
    return float(metric.result())


def test_the_real_columns_pair_count_by_hand():
    # positives -1, 0, 0.5 against negatives 1, 2, 0.25: only 0.5 > 0.25 wins, 1 of 9.
    ones = np.ones_like(REAL_LABELS)
    assert pair_auc(REAL_LABELS, REAL_LOGITS, ones) == pytest.approx(1 / 9)
    # Flattened: the 3 positives also beat 90 phantom cells: (1 + 3 x 90) / (3 x 93).
    assert pair_auc(LABELS, LOGITS, np.ones_like(LABELS)) == pytest.approx(271 / 279)


def test_masked_auc_reads_the_real_columns_where_the_flat_one_is_inflated():
    flat = _auc(tf.keras.metrics.AUC(from_logits=True))
    masked = _auc(InterestAUC(genre_vocab_size=2))
    assert flat == pytest.approx(271 / 279, abs=1e-3)  # 0.971: what the summary showed
    assert masked == pytest.approx(1 / 9, abs=1e-3)
    # Without a vocabulary size, every column: the AUC of old.
    assert _auc(InterestAUC()) == pytest.approx(flat, abs=1e-6)


def test_row_weights_count_as_before_times_the_column_mask():
    """The task passes its [batch, 1] row weights, the loss's: each cell counts with
    row weight x column mask."""
    weights = ROW_WEIGHTS[:, None]
    masked = _auc(InterestAUC(genre_vocab_size=2), sample_weight=weights)
    expected = pair_auc(REAL_LABELS, REAL_LOGITS, np.broadcast_to(weights, REAL_LABELS.shape))
    assert masked == pytest.approx(expected, abs=1e-3)
    # Positive and negative weights sum to 2.25 each; the one win is row 2's (1 x 1).
    assert expected == pytest.approx(1 / 2.25**2)
    flat = _auc(tf.keras.metrics.AUC(from_logits=True), sample_weight=weights)
    assert _auc(InterestAUC(), sample_weight=weights) == pytest.approx(flat, abs=1e-6)
    assert _auc(InterestAUC(2), sample_weight=ROW_WEIGHTS) == pytest.approx(masked, abs=1e-6)


def test_columns_from_the_vocabulary_size():
    def on(n: int | None) -> list[int]:
        return np.flatnonzero(genre_columns(n)).tolist()

    assert on(2) == [0, 1]
    assert on(0) == []  # no genres (the placeholder entry left out by the caller)
    assert on(F.GENRE_VOCAB_TOP_K - 1) == list(range(F.GENRE_VOCAB_TOP_K - 1))
    # Full: genres past the top k share the OOV column, which is real then.
    assert on(F.GENRE_VOCAB_TOP_K) == list(range(F.GENRE_BUCKETS))
    assert on(F.GENRE_VOCAB_TOP_K + 5) == list(range(F.GENRE_BUCKETS))
    assert on(None) == list(range(F.GENRE_BUCKETS))
    assert genre_columns(2).dtype == np.float32 and genre_columns(2).shape == (F.GENRE_BUCKETS,)


def test_config_round_trips():
    metric = InterestAUC(genre_vocab_size=2)
    again = InterestAUC.from_config(metric.get_config())
    assert again.name == INTEREST_AUC and again.genre_vocab_size == 2
    assert again._from_logits
    np.testing.assert_array_equal(again.columns, genre_columns(2))


def _batch(n: int = 3) -> dict[str, tf.Tensor]:
    return {**rows(n), F.GENRES_MULTI_HOT: tf.constant(LABELS[:n]),
            F.RATING_XF: tf.constant([4.0, 2.0, 5.0][:n]),
            F.LIKED_XF: tf.constant([1, 0, 1][:n], tf.int64)}


def _model(genre_vocab_size: int | None, **config) -> MultiTaskModel:
    config = ModelConfig(**{"embedding_dim": 2, "rated_items": False, "optimizer": "adam",
                            **config})
    return MultiTaskModel(SIZES, config, np.full(SIZES.items, 0.25, np.float32), 3.5,
                          genre_vocab_size=genre_vocab_size)


def _metric(model: MultiTaskModel) -> tf.keras.metrics.Metric:
    return {m.name: m for m in model.metrics}[INTEREST_AUC]


def test_the_models_metric_is_masked_and_its_loss_unchanged():
    losses, aucs = {}, {}
    for size in (2, None):
        model = _model(size)
        model.interest_logits = lambda q: tf.constant(LOGITS)
        model.compute_loss(_batch(), training=False)
        losses[size] = float(model.task_losses[INTEREST].result())
        aucs[size] = float(_metric(model).result())
    # Binary cross-entropy over the 32 columns, rows weighted 0.25 + 0.75 x liked.
    x, z = LOGITS, LABELS
    bce = (np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))).mean(axis=1)
    assert losses[2] == losses[None] == pytest.approx(float((bce * ROW_WEIGHTS).mean()),
                                                      rel=1e-5)
    assert aucs[2] == pytest.approx(1 / 2.25**2, abs=1e-3)  # as the row-weighted test
    assert aucs[None] > 0.95
    assert _model(2).get_config()["genre_vocab_size"] == 2


def test_a_fit_logs_the_masked_auc_under_its_old_names():
    model = _model(2, id_dropout=0.0, history_dropout=0.0)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    data = tf.data.Dataset.from_tensors(_batch())
    history = model.fit(data, validation_data=data, epochs=2, verbose=0).history
    assert {INTEREST_AUC, "val_" + INTEREST_AUC} <= set(history)
    # The eval AUC is InterestAUC's over the head's logits, with the task's row weights.
    x = _batch()
    logits = model.interest_logits(model.query_embedding(x))
    expected = InterestAUC(2)
    expected.update_state(x[F.GENRES_MULTI_HOT], logits, ROW_WEIGHTS[:, None])
    assert history["val_" + INTEREST_AUC][-1] == pytest.approx(float(expected.result()),
                                                               abs=1e-6)
    metrics = model.evaluate(data, return_dict=True, verbose=0)
    assert metrics[INTEREST_AUC] == pytest.approx(float(expected.result()), abs=1e-6)
    assert [m.name for m in model.metrics].count(INTEREST_AUC) == 1
    assert INTEREST in model.config.tasks
