"""One streaming pass over transformed training data for what serving needs.

The exported model answers `recommend(user_id)` with no other input, so it
carries, per known user, the demographics and the latest history seen in
training, the set of items the user already rated (to exclude them), and the
catalogue of items with their candidate-tower features. All of it is built
here in one pass of bounded memory: per-user and per-item arrays, never the
dataset itself.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
from tensorflow_transform import analyzers as tft_analyzers

from mtrec.contracts import features as F
from mtrec.models.item_item import known_rows
from mtrec.models.item_titles import DISPLAY_TITLE
from mtrec.models.towers import VocabSizes

# The entry tf.Transform writes for an empty string vocabulary (see genre_vocabulary).
EMPTY_VOCABULARY_ENTRY = tft_analyzers.get_empy_vocabulary_dummy_value(tf.string)[1]

if TYPE_CHECKING:
    import tensorflow_transform as tft

_ITEM_COLUMNS = F.CANDIDATE_XF_FEATURES
_USER_COLUMNS = (F.AGE_BUCKET, F.GENDER_IDX, F.OCCUPATION_IDX)


@dataclasses.dataclass
class ServingTables:
    """Everything the serving signatures look up instead of taking as input."""

    item_ids: np.ndarray  # [N] bytes, catalogue order
    item_features: dict[str, np.ndarray]  # candidate-tower inputs, [N, ...]
    profiles: dict[str, np.ndarray]  # query-tower inputs per user_idx, [U, ...]
    seen_splits: np.ndarray  # [U + 1] row splits into seen_positions
    seen_positions: np.ndarray  # catalogue positions of rated items
    rated_splits: np.ndarray  # [U + 1] row splits into rated_idx
    rated_idx: np.ndarray  # item_idx of each user's rated (known) items, sorted by user
    rating_mean: float
    num_train_examples: int
    sample_user_ids: np.ndarray  # a few real user ids (warmup requests, examples)
    # The lowest and highest training rating: served ratings are clipped to it
    # (MultiTaskModel.served_rating).
    rating_range: tuple[float, float] = (F.MIN_RATING, F.MAX_RATING)
    # The rating of each rated_idx entry (a pair rated twice: the mean), for the
    # neighbour rating predictor (models/neighbour_rating.py).
    rated_ratings: np.ndarray | None = None
    # When the user rated each rated_idx entry (seconds; a pair rated twice: the
    # latest), for the item-item term's session Gram (models/item_item.py).
    rated_times: np.ndarray | None = None
    # Each catalogue item's display title by id, for `describe_items`
    # (models/item_titles.py); None without a catalogue: no titles.
    item_titles: dict[bytes, str] | None = None

    @property
    def num_items(self) -> int:
        return len(self.item_ids)


def build_serving_tables(
    dataset: tf.data.Dataset, sizes: VocabSizes, catalog: dict[str, np.ndarray] | None = None
) -> ServingTables:
    """Scan batches of transformed training examples once.

    `catalog` (models/item_catalog.read_catalog) is the full item table; without
    it the catalogue is the set of items rated in training.
    """
    users = sizes.users
    latest_ts = np.full(users, np.iinfo(np.int64).min, dtype=np.int64)
    latest_item = np.zeros(users, dtype=np.int64)
    history = np.zeros((users, F.HISTORY_LEN), dtype=np.int64)
    demo = {k: np.zeros(users, dtype=np.int64) for k in _USER_COLUMNS}
    items: dict[int, tuple[bytes, dict[str, np.ndarray]]] = {}
    pairs: list[np.ndarray] = []
    pair_ratings: list[np.ndarray] = []
    pair_times: list[np.ndarray] = []
    rating_sum, count = 0.0, 0
    rating_lo, rating_hi = np.inf, -np.inf
    sample_users: list[bytes] = []

    for batch in dataset.as_numpy_iterator():
        user = batch[F.USER_IDX]
        item = batch[F.ITEM_IDX]
        ts = batch[F.TIMESTAMP_XF]
        rating_sum += float(batch[F.RATING_XF].sum())
        rating_lo = min(rating_lo, float(batch[F.RATING_XF].min()))
        rating_hi = max(rating_hi, float(batch[F.RATING_XF].max()))
        count += len(user)
        pairs.append(user * sizes.items + item)
        pair_ratings.append(batch[F.RATING_XF].astype(np.float64))
        pair_times.append(ts)
        if len(sample_users) < 8:
            sample_users.extend(dict.fromkeys(batch[F.USER_ID_XF][:8].tolist()))

        # Each user's newest row in this batch, kept if newer than what we have.
        order = np.argsort(ts, kind="stable")[::-1]
        u, first = np.unique(user[order], return_index=True)
        rows = order[first]
        newer = ts[rows] >= latest_ts[u]
        u, rows = u[newer], rows[newer]
        latest_ts[u] = ts[rows]
        latest_item[u] = item[rows]
        history[u] = batch[F.HISTORY_IDX][rows]
        for key in _USER_COLUMNS:
            demo[key][u] = batch[key][rows]

        new_items, first = np.unique(item, return_index=True)
        for idx, row in zip(new_items.tolist(), first.tolist(), strict=True):
            if idx not in items and idx <= sizes.known_items:
                items[idx] = (
                    batch[F.ITEM_ID_XF][row],
                    {k: batch[k][row] for k in _ITEM_COLUMNS},
                )

    if count == 0:
        raise ValueError("no training examples: cannot build the serving catalogue")
    titles = None
    if catalog is not None:
        item_ids = catalog[F.ITEM_ID_XF].astype(object)
        item_features = {k: catalog[k] for k in _ITEM_COLUMNS}
        if DISPLAY_TITLE in catalog:
            titles = dict(zip(item_ids.tolist(), catalog[DISPLAY_TITLE].tolist(), strict=True))
    else:
        item_order = sorted(items)
        item_ids = np.array([items[i][0] for i in item_order], dtype=object)
        item_features = {k: np.stack([items[i][1][k] for i in item_order])
                         for k in _ITEM_COLUMNS}

    # The latest history plus the latest item itself, newest first.
    seen_user = latest_ts > np.iinfo(np.int64).min
    profile_history = np.concatenate([latest_item[:, None], history[:, :-1]], axis=1)
    profile_history[~seen_user] = 0
    profiles = {F.HISTORY_IDX: profile_history, **demo}

    # Catalogue position of each known item_idx (cold items share OOV ids and
    # were never rated in training, so they never need a position here).
    position = np.full(sizes.items, -1, dtype=np.int64)
    idx = item_features[F.ITEM_IDX]
    known = known_rows(idx, sizes.known_items)
    position[idx[known]] = np.flatnonzero(known)
    codes, inverse = np.unique(np.concatenate(pairs), return_inverse=True)  # by user, item
    mean_rating = (np.bincount(inverse, np.concatenate(pair_ratings), len(codes))
                   / np.bincount(inverse, minlength=len(codes)))
    latest = np.full(len(codes), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(latest, inverse, np.concatenate(pair_times))
    pair_user, pair_item = codes // sizes.items, codes % sizes.items
    rated = known_rows(pair_item, sizes.known_items)
    pos = position[pair_item]
    in_catalog = pos >= 0
    return ServingTables(
        item_ids=item_ids,
        item_features=item_features,
        profiles=profiles,
        seen_splits=row_splits(pair_user[in_catalog], users),
        seen_positions=pos[in_catalog],
        rated_splits=row_splits(pair_user[rated], users),
        rated_idx=pair_item[rated],
        rating_mean=rating_sum / count,
        num_train_examples=count,
        sample_user_ids=np.array(sample_users[:8], dtype=object),
        rating_range=(rating_lo, rating_hi),
        rated_ratings=mean_rating[rated],
        rated_times=latest[rated],
        item_titles=titles,
    )


def row_splits(sorted_rows: np.ndarray, num_rows: int) -> np.ndarray:
    """RaggedTensor row splits [num_rows + 1] for values whose row ids are `sorted_rows`."""
    counts = np.bincount(sorted_rows, minlength=num_rows)[:num_rows]
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def item_sampling_probability(tft_output: tft.TFTransformOutput, sizes: VocabSizes) -> np.ndarray:
    """P(item appears as a positive in a batch), indexed by item_idx (logQ correction).

    Unknown/padding rows get the smallest probability, so they are never
    over-corrected.
    """
    counts: dict[str, int] = {}
    with tf.io.gfile.GFile(tft_output.vocabulary_file_by_name(F.ITEM_FREQ_VOCAB)) as f:
        for line in f:
            freq, token = line.rstrip("\n").split(" ", 1)
            counts[token] = int(freq)
    tokens = tft_output.vocabulary_by_name(F.ITEM_VOCAB)
    freq = np.ones(sizes.items, dtype=np.float64)
    for i, token in enumerate(tokens):
        freq[i + 1] = counts.get(token.decode() if isinstance(token, bytes) else token, 1)
    return (freq / freq[1 : sizes.known_items + 1].sum()).astype(np.float32)


def genre_vocabulary(tft_output: tft.TFTransformOutput) -> list[bytes]:
    """The genres Transform learned, in their index order; [] when no item had one, where
    tf.Transform writes a placeholder entry instead (analyzers'
    get_empy_vocabulary_dummy_value) that user_interest returned as a genre with P 0.5.
    tests/test_pipeline_e2e_inputs.py pins it on an ids-only run."""
    genres = tft_output.vocabulary_by_name(F.GENRE_VOCAB)
    return [] if genres == [EMPTY_VOCABULARY_ENTRY] else list(genres)


def user_row_table(tft_output: tft.TFTransformOutput) -> tf.lookup.StaticVocabularyTable:
    """user_id -> its Transform row (F.USER_IDX) minus 1, as one hash-table lookup.

    The same table tf.Transform builds for `apply_vocabulary(user_id, vocab,
    num_oov_buckets=F.USER_OOV)` (models/preprocessing.py): the vocabulary's
    line numbers, and unknown ids hashed into the OOV buckets with the same
    default hasher (StringToHashBucketFast). Running the Transform layer for a
    user_id costs `recommend` ~720 of its ~2,300 us of op time on the ML-100K
    model (RunMetadata step stats, one thread); this lookup ~10 us.
    tests/test_export.py pins it to the Transform layer's answer.
    """
    vocab = tft_output.vocabulary_by_name(F.USER_VOCAB)
    return tf.lookup.StaticVocabularyTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(vocab, tf.string), tf.range(len(vocab), dtype=tf.int64)),
        num_oov_buckets=F.USER_OOV,
    )


def user_rows(table: tf.lookup.StaticVocabularyTable, user_id: tf.Tensor) -> tf.Tensor:
    """F.USER_IDX of each user_id: the vocabulary row + 1 (0 stays the padding row)."""
    return table.lookup(user_id) + 1
