"""preprocessing_fn through tf.Transform on Beam, against expected outputs."""

from __future__ import annotations

import numpy as np
import pytest

from mtrec.contracts import features as F
from tests.transform_support import analyze_and_transform, row

HEIST = {"title": "The Big Heist!", "genres": ("Action", "Crime"), "description": "a heist"}
TRAIN = [
    row("u1", "i1", 5, ts=100, age=24, gender="F", year=1990, history=(), **HEIST),
    row("u1", "i2", 2, ts=200, age=24, gender="F", title="Quiet Days", genres=("Drama",),
        year=2000, history=("i1",)),
    row("u2", "i1", 4, ts=300, age=0, gender="M", year=1990, history=(), **HEIST),
    row("u2", "i3", 3, ts=400, age=60, gender="M", title="No Year", genres=(), year=0,
        history=("i1", "i9")),
]
UNSEEN = [row("stranger", "new-item", 1, ts=500, gender="X", occupation="pilot",
              title="zzz qqq", genres=("Western",), history=("i2", "nope"))]


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("tft"))
    return analyze_and_transform(TRAIN, UNSEEN, out)


def test_vocabularies_are_frequency_ordered_with_oov_buckets(transformed):
    tft_output, train, unseen = transformed
    assert tft_output.vocabulary_by_name(F.ITEM_VOCAB)[0] == b"i1"  # most frequent first
    n_items = tft_output.vocabulary_size_by_name(F.ITEM_VOCAB)
    n_users = tft_output.vocabulary_size_by_name(F.USER_VOCAB)
    assert (n_items, n_users) == (3, 2)
    assert train[0][F.ITEM_IDX] == 1  # index 0 is padding, so ids start at 1
    # Unknown ids land in the OOV buckets, above the vocabulary and padding.
    assert n_users + 1 <= unseen[0][F.USER_IDX] <= n_users + F.USER_OOV
    assert n_items + 1 <= unseen[0][F.ITEM_IDX] <= n_items + F.ITEM_OOV


def test_history_uses_item_vocabulary_and_pads(transformed):
    _, train, unseen = transformed
    history = train[3][F.HISTORY_IDX]
    assert len(history) == F.HISTORY_LEN
    assert history[0] == 1  # i1
    assert history[1] > 3  # i9 is not a training item -> OOV bucket
    assert list(history[2:]) == [0] * (F.HISTORY_LEN - 2)
    assert list(train[0][F.HISTORY_IDX]) == [0] * F.HISTORY_LEN
    assert unseen[0][F.HISTORY_IDX][0] in (2, 3)  # i2 is known


def test_genres_multi_hot_and_unknown_genre_bucket(transformed):
    tft_output, train, unseen = transformed
    genres = [g.decode() for g in tft_output.vocabulary_by_name(F.GENRE_VOCAB)]
    hot = np.asarray(train[0][F.GENRES_MULTI_HOT])
    assert hot.shape == (F.GENRE_BUCKETS,)
    assert {genres[i] for i in np.flatnonzero(hot)} == {"action", "crime"}
    assert np.asarray(train[3][F.GENRES_MULTI_HOT]).sum() == 0  # no genres
    assert np.flatnonzero(unseen[0][F.GENRES_MULTI_HOT]).tolist() == [F.GENRE_BUCKETS - 1]


def test_title_tokens_lowercased_without_punctuation(transformed):
    tft_output, train, unseen = transformed
    vocab = [t.decode() for t in tft_output.vocabulary_by_name(F.TEXT_VOCAB)]
    tokens = train[0][F.TITLE_TOKENS]
    assert [vocab[t - 1] for t in tokens if t] == ["the", "big", "heist"]
    assert len(tokens) == F.TITLE_LEN and list(tokens[3:]) == [0] * (F.TITLE_LEN - 3)
    assert all(t > len(vocab) for t in unseen[0][F.TITLE_TOKENS][:2])  # OOV tokens


def test_age_time_year_and_labels(transformed):
    _, train, _ = transformed
    # Buckets: 0 unknown, then (<18), [18,25), [25,35), ... -> 24 is bucket 2, 60 is 7.
    assert [r[F.AGE_BUCKET] for r in train] == [2, 2, 0, 7]
    assert train[3][F.YEAR_KNOWN] == 0 and train[3][F.YEAR_Z] == 0
    assert train[0][F.YEAR_KNOWN] == 1
    # Known years 1990, 2000, 1990: mean 1993.33, population std 4.714; row 3's
    # unknown year (0) takes no part and stays 0.
    np.testing.assert_allclose([r[F.YEAR_Z] for r in train],
                               [-0.70711, 1.41421, -0.70711, 0.0], atol=1e-4)
    assert [r[F.LIKED_XF] for r in train] == [1, 0, 1, 0]
    assert [r[F.RATING_XF] for r in train] == [5, 2, 4, 3]
    # Event days 100..400 s apart: z-scores of (-150, -50, 50, 150) / 111.8.
    np.testing.assert_allclose([r[F.TIME_Z] for r in train],
                               [-1.34164, -0.44721, 0.44721, 1.34164], atol=1e-4)


def test_one_rating_value_makes_every_interaction_a_like(tmp_path):
    """Implicit feedback (every training rating 1): the like threshold falls to the
    highest training rating, so each interaction is a like (it was none: 1 < 4). An
    unseen row rated above the training maximum is a like too."""
    train = [row("u1", "i1", 1, ts=100), row("u2", "i2", 1, ts=200), row("u1", "i2", 1, ts=300)]
    _, rows, unseen = analyze_and_transform(train, [row("u3", "i1", 5)], str(tmp_path))
    assert [r[F.LIKED_XF] for r in rows] == [1, 1, 1]
    assert [r[F.LIKED_XF] for r in unseen] == [1]
