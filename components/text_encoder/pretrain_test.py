"""Masked-LM batches keep only the mask slots they use, with the same loss."""

from __future__ import annotations

import keras
import keras_nlp
import numpy as np
import tensorflow as tf

from mtrec.components.text_encoder.masking import mask_tokens
from mtrec.components.text_encoder.pretrain import (
    MASK_POSITIONS,
    _to_features,
    build_mlm_model,
    evaluate_mlm,
    pad_sequences,
)

PAD, CLS, SEP, MASK, VOCAB = 0, 2, 3, 4, 40
CAP = 11  # ceil(42 tokens x 0.25), the long text's


def _sequences() -> list[np.ndarray]:
    """Short texts and one long one, as a catalogue with a single long description."""
    rng = np.random.default_rng(3)
    lengths = [3, 4, 5, 6, 4, 3, 5, 40]
    return [np.array([CLS, *rng.integers(5, VOCAB, n), SEP], np.int32) for n in lengths]


def _masked(sequences: list[np.ndarray], seed: int = 7) -> dict[str, tf.Tensor]:
    ids = pad_sequences(sequences, PAD)
    cap = CAP  # the corpus-wide cap the masker pads every batch to: the long text's
    return mask_tokens(tf.constant(ids), tf.constant([seed, 0]), vocabulary_size=VOCAB,
                       mask_token_id=MASK, unselectable_ids=[PAD, CLS, SEP], mask_rate=0.25,
                       max_selections=cap)  # fmt: skip


def _model() -> keras.Model:
    keras.utils.set_random_seed(0)
    backbone = keras_nlp.models.BertBackbone(
        vocabulary_size=VOCAB, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=64,
    )  # fmt: skip
    return build_mlm_model(backbone)


def test_slots_no_row_uses_are_cut_and_nothing_else():
    masked = _masked(_sequences()[:3])  # a batch of short rows: 1, 1 and 2 slots picked
    weights = masked["mask_weights"].numpy()
    assert weights.shape[1] == CAP
    np.testing.assert_array_equal(weights.sum(axis=1), [1, 1, 2])
    features, labels, cut = _to_features(masked, PAD)
    assert features[MASK_POSITIONS].shape[1] == labels.shape[1] == cut.shape[1] == 2
    np.testing.assert_array_equal(cut.numpy(), weights[:, :2])
    np.testing.assert_array_equal(labels.numpy(), masked["mask_ids"].numpy()[:, :2])
    assert weights[:, 2:].sum() == 0  # only empty slots went
    whole = _masked(_sequences())  # with the long row (10 picks), 10 slots stay
    assert _to_features(whole, PAD)[2].shape[1] == 10


def test_evaluation_in_small_batches_equals_the_whole_set_at_once():
    model = _model()
    masked = _masked(_sequences())
    features, labels, weights = _to_features(masked, PAD)
    # Reference: every row, padded to the longest, all slots, float64 log-softmax.
    logits = np.asarray(model(features), np.float64)
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    labels, weights = labels.numpy(), weights.numpy().astype(np.float64)
    nll = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    correct = log_probs.argmax(-1) == labels
    want_loss = (nll * weights).sum() / weights.sum()
    want_acc = (correct * weights).sum() / weights.sum()

    loss, acc = evaluate_mlm(model, (features, labels, weights), batch_size=3)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    np.testing.assert_allclose(acc, want_acc, rtol=1e-9)


def test_the_training_loss_is_the_same_with_the_empty_slots_cut():
    model = _model()
    masked = _masked(_sequences()[:6])  # short rows under the long text's cap
    features, labels, weights = _to_features(masked, PAD)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="mean_with_sample_weight")
    full = {**features, MASK_POSITIONS: tf.cast(masked[MASK_POSITIONS], tf.int32)}
    loss_full = loss_fn(masked["mask_ids"], model(full), sample_weight=masked["mask_weights"])
    loss_cut = loss_fn(labels, model(features), sample_weight=weights)
    assert features[MASK_POSITIONS].shape[1] < full[MASK_POSITIONS].shape[1]
    np.testing.assert_allclose(float(loss_cut), float(loss_full), rtol=1e-6)
