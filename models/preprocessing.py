"""The Transform `preprocessing_fn`: raw interaction features to model inputs.

User, item and context outputs are computed from disjoint raw inputs on
purpose: TFT prunes the transform graph to the inputs that are fed, so the
serving signatures can transform a bare `user_id` (recommend) or bare item
features (the catalogue) with the same graph that transformed training data.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from mtrec.contracts import features as F
from mtrec.data.labels import like_threshold

_TOKEN_PATTERN = r"[^a-z0-9 ]+"


def _dense(x: tf.Tensor | tf.SparseTensor, default: bytes | int | float) -> tf.Tensor:
    """Scalar feature as a dense [B] tensor (tf.Example features may be [B, 1])."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(x, default_value=default)
    if x.shape.rank == 2:
        x = x[:, 0]
    return x


def _ragged(x: tf.Tensor | tf.SparseTensor | tf.RaggedTensor) -> tf.RaggedTensor:
    if isinstance(x, tf.SparseTensor):
        return tf.RaggedTensor.from_sparse(x)
    if isinstance(x, tf.RaggedTensor):
        return x
    return tf.RaggedTensor.from_tensor(x)


def _pad(ids: tf.RaggedTensor, length: int) -> tf.Tensor:
    """Truncate / zero-pad ragged ids to a fixed [B, length] int64 tensor."""
    return ids[:, :length].to_tensor(default_value=0, shape=[None, length])


def tokenize(text: tf.Tensor) -> tf.RaggedTensor:
    """Lower-case, strip punctuation, split on whitespace."""
    text = tf.strings.regex_replace(tf.strings.lower(text), _TOKEN_PATTERN, " ")
    return tf.strings.split(text)


def _vocab_ids(tokens: tf.RaggedTensor, vocab_path: tf.Tensor, oov: int) -> tf.RaggedTensor:
    """Apply a vocabulary to ragged tokens; +1 so that 0 stays the padding id."""
    ids = tft.apply_vocabulary(tokens.flat_values, vocab_path, num_oov_buckets=oov)
    return tokens.with_flat_values(ids + 1)


def _age_bucket(age: tf.Tensor) -> tf.Tensor:
    """0 = unknown, then one bucket per MovieLens age group."""
    age = tf.cast(age, tf.float32)
    bucket = tf.raw_ops.Bucketize(input=age, boundaries=[float(b) for b in F.AGE_BOUNDARIES])
    return tf.where(age > 0, tf.cast(bucket, tf.int64) + 1, tf.zeros_like(age, tf.int64))


def _user_features(inputs: dict) -> dict:
    user_id = _dense(inputs[F.USER_ID], b"")
    users_vocab = tft.vocabulary(user_id, vocab_filename=F.USER_VOCAB)
    user_idx = tft.apply_vocabulary(user_id, users_vocab, num_oov_buckets=F.USER_OOV) + 1

    gender = tf.strings.lower(_dense(inputs[F.GENDER], F.UNKNOWN.encode()))
    occupation = tf.strings.lower(_dense(inputs[F.OCCUPATION], F.UNKNOWN.encode()))
    return {
        F.USER_IDX: user_idx,
        F.USER_ID_XF: user_id,
        F.AGE_BUCKET: _age_bucket(_dense(inputs[F.AGE], 0)),
        F.GENDER_IDX: tft.compute_and_apply_vocabulary(
            gender, num_oov_buckets=F.CATEGORY_OOV, vocab_filename=F.GENDER_VOCAB
        )
        + 1,
        F.OCCUPATION_IDX: tft.compute_and_apply_vocabulary(
            occupation, num_oov_buckets=F.CATEGORY_OOV, vocab_filename=F.OCCUPATION_VOCAB
        )
        + 1,
    }


def _item_vocab(item_id: tf.Tensor) -> tf.Tensor:
    # The frequency file is for the retrieval task's sampling-bias (logQ) correction.
    tft.vocabulary(item_id, vocab_filename=F.ITEM_FREQ_VOCAB, store_frequency=True)
    return tft.vocabulary(item_id, vocab_filename=F.ITEM_VOCAB)


def _item_features(inputs: dict, items_vocab: tf.Tensor) -> dict:
    item_id = _dense(inputs[F.ITEM_ID], b"")
    genres = tf.strings.lower(_ragged(inputs[F.GENRES]))
    genres_vocab = tft.vocabulary(
        genres.flat_values, top_k=F.GENRE_VOCAB_TOP_K, vocab_filename=F.GENRE_VOCAB
    )
    genre_ids = tft.apply_vocabulary(genres.flat_values, genres_vocab, default_value=-1)
    # Unknown genres share the last bucket; the multi-hot has a fixed width.
    genre_ids = tf.where(genre_ids < 0, tf.constant(F.GENRE_BUCKETS - 1, tf.int64), genre_ids)
    one_hot = tf.one_hot(genres.with_flat_values(genre_ids), F.GENRE_BUCKETS)
    # Reducing an empty ragged row gives -inf; items without genres are all-zero.
    multi_hot = tf.maximum(tf.reduce_max(one_hot, axis=1), 0.0)

    title = tokenize(_dense(inputs[F.TITLE], b""))
    description = tokenize(_dense(inputs[F.DESCRIPTION], b""))
    text_vocab = tft.vocabulary(
        tf.concat([title.flat_values, description.flat_values], axis=0),
        top_k=F.TEXT_VOCAB_TOP_K,
        vocab_filename=F.TEXT_VOCAB,
    )
    year = tf.cast(_dense(inputs[F.YEAR], 0), tf.float32)
    known = tf.cast(year > 0, tf.float32)
    # Mean/std over known years only, so "unknown" (0) does not skew the scale.
    year_mean = tft.mean(tf.boolean_mask(year, year > 0))
    year_std = tf.sqrt(tft.var(tf.boolean_mask(year, year > 0))) + 1e-6
    return {
        F.ITEM_IDX: tft.apply_vocabulary(item_id, items_vocab, num_oov_buckets=F.ITEM_OOV) + 1,
        F.ITEM_ID_XF: item_id,
        F.GENRES_MULTI_HOT: multi_hot,
        F.TITLE_TOKENS: _pad(_vocab_ids(title, text_vocab, F.CATEGORY_OOV), F.TITLE_LEN),
        F.DESCRIPTION_TOKENS: _pad(
            _vocab_ids(description, text_vocab, F.CATEGORY_OOV), F.DESCRIPTION_LEN
        ),
        F.YEAR_Z: known * (year - year_mean) / year_std,
        F.YEAR_KNOWN: known,
    }


def _context_features(inputs: dict) -> dict:
    ts = _dense(inputs[F.TIMESTAMP], 0)
    days = tf.cast(ts, tf.float32) / 86400.0
    event_year = 1970.0 + days / 365.25
    year = tf.cast(_dense(inputs[F.YEAR], 0), tf.float32)
    item_age = tf.where(year > 0, tf.maximum(event_year - year, 0.0), tf.zeros_like(year))
    return {
        F.TIMESTAMP_XF: ts,
        F.TIME_Z: tft.scale_to_z_score(days),
        F.ITEM_AGE_Z: tft.scale_to_z_score(item_age),
    }


def _labels(inputs: dict) -> dict:
    rating = tf.cast(_dense(inputs[F.RATING], 0.0), tf.float32)
    # The like threshold, at most the highest training rating: in a log of one rating
    # value (implicit feedback, every rating 1) each interaction is a like against the
    # sampled unrated items, where below 4 none was and the relevance head learned 0.
    # The ingest report counts likes by the same rule (data/examples.py).
    threshold = like_threshold(tft.max(rating), tf.minimum)
    return {
        F.RATING_XF: rating,
        F.LIKED_XF: tf.cast(rating >= threshold, tf.int64),
    }


def preprocessing_fn(inputs: dict) -> dict:
    """tf.Transform entry point (referenced by name from the pipeline)."""
    items_vocab = _item_vocab(_dense(inputs[F.ITEM_ID], b""))
    outputs = {}
    outputs.update(_user_features(inputs))
    outputs.update(_item_features(inputs, items_vocab))
    history = _ragged(inputs[F.HISTORY])
    outputs[F.HISTORY_IDX] = _pad(
        history.with_flat_values(
            tft.apply_vocabulary(history.flat_values, items_vocab, num_oov_buckets=F.ITEM_OOV)
            + 1
        ),
        F.HISTORY_LEN,
    )
    outputs.update(_context_features(inputs))
    if F.RATING in inputs:
        outputs.update(_labels(inputs))
    return outputs
