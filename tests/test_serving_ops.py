"""The serving graph's pure pieces against hand-computed values (models/serving_ops.py)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mtrec.components.text_encoder.corpus import description_text
from mtrec.contracts import features as F
from mtrec.models import serving_ops as ops


def test_blend_score_by_hand():
    weights = {"retrieval": 0.5, "relevance": 0.3, "rating": 0.2}
    got = ops.blend_score(weights, tf.constant([[0.8, 0.0]]), tf.constant([[0.6, 1.0]]),
                          tf.constant([[4.0, 7.0]]))
    # 0.5*0.8 + 0.3*0.6 + 0.2*(4.0-0.5)/4.5 ; the 7.0 rating clips to 1: 0.3 + 0.2.
    np.testing.assert_allclose(got.numpy(), [[0.4 + 0.18 + 0.2 * 3.5 / 4.5, 0.5]], rtol=1e-6)


def test_exclude_sets_listed_positions_to_neg():
    scores = tf.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    got = ops.exclude(scores, tf.ragged.constant([[2], [0, 1]], dtype=tf.int64))
    np.testing.assert_array_equal(got.numpy(), [[1, 2, ops.NEG], [ops.NEG, ops.NEG, 6]])


def test_per_user_rows_covers_every_row_across_chunks():
    rows = ops.per_user_rows(300, lambda idx: tf.cast(idx, tf.float32)[:, None] * [1.0, 2.0])
    assert rows.shape == (300, 2) and rows.dtype == np.float32
    np.testing.assert_array_equal(rows[:, 1], 2.0 * np.arange(300))


def test_fits_is_bounded_by_max_cached_floats():
    assert ops.fits(1, ops.MAX_CACHED_FLOATS)
    assert not ops.fits(2, ops.MAX_CACHED_FLOATS // 2 + 1)


def test_given_description_normalises_and_zeroes_blank_descriptions():
    """The cold-item map's description block for embed_new_item: unit rows, zero where
    the description is empty or ASCII whitespace alone (corpus.description_text's "")."""
    vectors = tf.constant([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    described = tf.constant(["a heist", " \t\n", "", "no vector sent"])
    got = ops.given_description(vectors, described).numpy()
    np.testing.assert_allclose(got, [[0.6, 0.8], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])


def test_given_description_treats_the_same_whitespace_as_the_corpus():
    """tf.strings.strip and description_text drop the same six ASCII characters, so a
    description is blank to the served graph exactly when the catalogue stores none."""
    texts = [" \t\n\f\r\v", "\u00a0", "x", " x\u2003", ""]
    blank = [not description_text(t) for t in texts]
    got = ops.given_description(tf.ones([len(texts), 1]), tf.constant(texts)).numpy()[:, 0]
    assert (got == 0.0).tolist() == blank == [True, False, False, False, True]


def test_the_trained_year_range_reads_known_items_with_a_year_only():
    features = {F.YEAR_Z: np.array([-2.0, 0.5, 3.0, 9.0, 0.0], np.float32),
                F.YEAR_KNOWN: np.array([1, 1, 1, 1, 0], np.float32)}
    known = np.array([True, True, True, False, True])  # item 3 has no training ratings
    assert ops.trained_year_range(features, known) == (-2.0, 3.0)
    # No trained item with a year (a catalogue without years): no range.
    assert ops.trained_year_range(features, np.array([False, False, False, False, True])) is None


def test_within_years_clips_known_years_and_leaves_unknown_ones():
    year_z = np.array([-5.0, 1.0, 7.0, 7.0], np.float32)
    year_known = np.array([1, 1, 1, 0], np.float32)
    held = ops.within_years(tf.constant(year_z), tf.constant(year_known), (-2.0, 3.0))
    np.testing.assert_array_equal(held.numpy(), [-2.0, 1.0, 3.0, 7.0])
    # Without a range every value stays, as a tensor too: the export calls .numpy() on it
    # (numpy in, numpy out was a Trainer crash on data without years).
    same = ops.within_years(year_z, year_known, None)
    assert isinstance(same, tf.Tensor)
    np.testing.assert_array_equal(same.numpy(), year_z)
