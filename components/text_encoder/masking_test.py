"""The stateless masker: reproducible, follows BERT's rules, never masks specials."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mtrec.components.text_encoder.masking import mask_tokens

PAD, CLS, SEP, MASK, VOCAB = 0, 2, 3, 4, 50
KWARGS = dict(
    vocabulary_size=VOCAB,
    mask_token_id=MASK,
    unselectable_ids=[PAD, CLS, SEP],
    mask_rate=0.25,
    max_selections=6,
)


def _batch(rows: int = 64, length: int = 20) -> tf.Tensor:
    rng = np.random.default_rng(0)
    ids = np.zeros((rows, length), np.int32)
    for r in range(rows):
        n = int(rng.integers(1, length - 1))
        ids[r, : n + 2] = [CLS, *rng.integers(5, VOCAB, n), SEP]
    return tf.constant(ids)


def test_same_seed_same_masks_different_seed_different_masks():
    ids = _batch()
    a = mask_tokens(ids, tf.constant([1, 0]), **KWARGS)
    b = mask_tokens(ids, tf.constant([1, 0]), **KWARGS)
    c = mask_tokens(ids, tf.constant([1, 1]), **KWARGS)
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
    assert not np.array_equal(a["mask_positions"].numpy(), c["mask_positions"].numpy())


def test_selection_rules():
    ids = _batch()
    out = {k: v.numpy() for k, v in mask_tokens(ids, tf.constant([5, 9]), **KWARGS).items()}
    ids = ids.numpy()
    real = (ids != PAD) & (ids != CLS) & (ids != SEP)
    want = np.minimum(np.ceil(real.sum(1) * 0.25), 6)
    np.testing.assert_array_equal(out["mask_weights"].sum(1), want)
    picked = out["mask_weights"] > 0
    rows = np.nonzero(picked)[0]
    positions = out["mask_positions"][picked]
    assert real[rows, positions].all()  # never [PAD]/[CLS]/[SEP]
    for r in range(len(ids)):  # positions within a row are distinct
        row_positions = out["mask_positions"][r][picked[r]]
        assert len(set(row_positions)) == len(row_positions)
    np.testing.assert_array_equal(out["mask_ids"][picked], ids[rows, positions])
    assert (out["mask_positions"][~picked] == 0).all() and (out["mask_ids"][~picked] == 0).all()
    # Only picked positions change; ~80% of them become [MASK].
    changed = out["token_ids"] != ids
    assert not changed[~real].any()
    share_masked = (out["token_ids"][rows, positions] == MASK).mean()
    assert 0.65 < share_masked < 0.95
    unpicked = np.ones_like(real)
    unpicked[rows, positions] = False
    assert not changed[unpicked].any()


def test_rows_shorter_than_max_selections_are_padded():
    ids = tf.constant([[CLS, 7, SEP], [CLS, SEP, PAD]])
    out = mask_tokens(ids, tf.constant([0, 0]), **KWARGS)
    assert out["mask_positions"].shape == (2, 6)
    np.testing.assert_array_equal(out["mask_weights"].numpy().sum(1), [1, 0])
    assert out["mask_positions"].numpy()[0, 0] == 1
