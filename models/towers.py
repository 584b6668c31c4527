"""Query (user) and candidate (item) towers over Transform outputs.

Both towers take the transformed feature dict and return a d-dim embedding.
Vocabulary sizes come from the Transform output, so the towers never hard-code
a catalogue.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import tensorflow as tf

from mtrec.contracts import features as F

if TYPE_CHECKING:
    import numpy as np
    import tensorflow_transform as tft


@dataclasses.dataclass(frozen=True)
class VocabSizes:
    """Embedding-table sizes (vocabulary + OOV buckets + the padding id 0)."""

    users: int
    items: int
    genders: int
    occupations: int
    text_tokens: int
    known_users: int  # ids 1..known_users are in the vocabulary; the rest fold to 0
    known_items: int

    @classmethod
    def from_transform_output(cls, tft_output: tft.TFTransformOutput) -> VocabSizes:
        def size(name: str, oov: int) -> int:
            return tft_output.vocabulary_size_by_name(name) + oov + 1

        return cls(
            users=size(F.USER_VOCAB, F.USER_OOV),
            items=size(F.ITEM_VOCAB, F.ITEM_OOV),
            genders=size(F.GENDER_VOCAB, F.CATEGORY_OOV),
            occupations=size(F.OCCUPATION_VOCAB, F.CATEGORY_OOV),
            text_tokens=size(F.TEXT_VOCAB, F.CATEGORY_OOV),
            known_users=tft_output.vocabulary_size_by_name(F.USER_VOCAB),
            known_items=tft_output.vocabulary_size_by_name(F.ITEM_VOCAB),
        )


def fold_unknown(ids: tf.Tensor, known: int) -> tf.Tensor:
    """Map OOV-bucket ids to 0, the row trained by id dropout as "unknown".

    OOV buckets never see training data (the vocabulary covers all training
    ids), so a hashed bucket would be an untrained random vector. Row 0 is
    trained on randomly dropped ids and gives cold users/items a sensible,
    feature-driven embedding.
    """
    return tf.where(ids > known, tf.zeros_like(ids), ids)


def id_embedding(rows: int, dim: int, reg: float, row_l2: bool) -> tf.keras.layers.Embedding:
    """An id table with l2 on the whole table, or (row_l2) on the rows a batch looks up.

    A whole-table penalty gives every row a gradient at every step, so its cost
    grows with the table; `row_l2` (for LazyAdam) keeps the gradient row-sparse.
    """
    l2 = tf.keras.regularizers.l2(reg)
    if row_l2:
        return tf.keras.layers.Embedding(rows, dim, activity_regularizer=l2)
    return tf.keras.layers.Embedding(rows, dim, embeddings_regularizer=l2)


class MaskedMeanPool(tf.keras.layers.Layer):
    """Mean of embeddings over non-padding (id != 0) positions."""

    def call(self, embeddings: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        mask = tf.cast(tf.not_equal(ids, 0), embeddings.dtype)[..., tf.newaxis]
        total = tf.reduce_sum(embeddings * mask, axis=1)
        return total / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


def _mlp(units: tuple[int, ...], out: int, name: str, dropout: float) -> tf.keras.Sequential:
    layers: list[tf.keras.layers.Layer] = []
    for n in units:
        layers.append(tf.keras.layers.Dense(n, activation="relu"))
        if dropout:
            layers.append(tf.keras.layers.Dropout(dropout))
    layers.append(tf.keras.layers.Dense(out))
    return tf.keras.Sequential(layers, name=name)


def pooled_bag(table: tf.keras.layers.Embedding, ids: tf.RaggedTensor) -> tf.Tensor:
    """Sum of a ragged bag's embeddings over sqrt(its size): [B, d], zeros for an empty bag.

    The sqrt keeps a long and a short history on one scale (FISM, Kabbur et
    al. 2013) without a mean's flattening of heavy users.
    """
    total = tf.reduce_sum(tf.ragged.map_flat_values(table, ids), axis=1)
    size = tf.cast(ids.row_lengths(), total.dtype)[:, tf.newaxis]
    return total / tf.sqrt(tf.maximum(size, 1.0))


def architecture_config(model: tf.keras.Model) -> dict:
    """A subclassed model's `get_config`: its name and `_architecture` (a JSON string:
    Keras would wrap a dict attribute in a trackable, non-JSON `_DictWrapper`).

    tf-keras records every tracked Model's config in the SavedModel's Keras
    metadata; without an override it logs "non-serializable objects ...
    Defaulting to empty config" twice per model at each export (6 lines in
    `mtrec add-items`). mtrec reloads exports with tf.saved_model.load, never
    `from_config`, so arrays (text table, sampling probabilities, rated items)
    are data, not config: they are saved as constants/variables, and only their
    shapes or presence are recorded here.
    """
    return {"name": model.name, "trainable": model.trainable, **json.loads(model._architecture)}


class QueryTower(tf.keras.Model):
    """User id + demographics + recent history (+ the bag of rated items) -> query embedding.

    The bag of every item the user rated in training (F.RATED_IDX, ragged) is
    added to the MLP's output as a linear term, not fed into the MLP: on the
    ML-100K u1 validation holdout, a bag-only query scored NDCG@10 0.306
    linear and 0.257 through the MLP (benchmarks/results/quality_tuning.md).
    """

    def __init__(
        self,
        sizes: VocabSizes,
        dim: int,
        reg: float,
        dropout: float,
        use_history: bool = True,
        row_l2: bool = False,
        use_rated: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self._architecture = json.dumps(dict(
            sizes=dataclasses.asdict(sizes), dim=dim, reg=reg, dropout=dropout,
            use_history=use_history, row_l2=row_l2, use_rated=use_rated,
        ))
        self.known_users, self.known_items = sizes.known_users, sizes.known_items
        self.user_embedding = id_embedding(sizes.users, dim, reg, row_l2)
        self.rated_embedding = id_embedding(sizes.items, dim, reg, row_l2) if use_rated else None
        # Without history the tower must not read it at serving time either.
        self.history_embedding = (
            id_embedding(sizes.items, dim, reg, row_l2)
            if use_history
            else None
        )
        self.age_embedding = tf.keras.layers.Embedding(len(F.AGE_BOUNDARIES) + 2, 8)
        self.gender_embedding = tf.keras.layers.Embedding(sizes.genders, 4)
        self.occupation_embedding = tf.keras.layers.Embedding(sizes.occupations, 8)
        self.pool = MaskedMeanPool()
        self.mlp = _mlp((2 * dim,), dim, "query_mlp", dropout)

    def get_config(self) -> dict:
        return architecture_config(self)

    def call(self, x: dict, training: bool = False) -> tf.Tensor:
        parts = [
            self.user_embedding(fold_unknown(x[F.USER_IDX], self.known_users)),
            self.age_embedding(x[F.AGE_BUCKET]),
            self.gender_embedding(x[F.GENDER_IDX]),
            self.occupation_embedding(x[F.OCCUPATION_IDX]),
        ]
        if self.history_embedding is not None:
            history = fold_unknown(x[F.HISTORY_IDX], self.known_items)
            parts.append(self.pool(self.history_embedding(history), history))
        query = self.mlp(tf.concat(parts, axis=-1), training=training)
        if self.rated_embedding is not None and F.RATED_IDX in x:
            query = query + pooled_bag(self.rated_embedding, x[F.RATED_IDX])
        return query


class CandidateTower(tf.keras.Model):
    """Item id + genres + title/description tokens + year (+ text vector) -> embedding.

    `text_table` ([sizes.items, D], row = item_idx, zeros for unknown ids) holds
    the frozen language-model vectors of training items; a learned projection
    maps them into the tower. Callers may pass F.ITEM_TEXT_VECTOR instead
    (cold items, whose ids have no row).
    """

    def __init__(
        self,
        sizes: VocabSizes,
        dim: int,
        reg: float,
        dropout: float,
        text_table: np.ndarray | None = None,
        row_l2: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self._architecture = json.dumps(dict(
            sizes=dataclasses.asdict(sizes), dim=dim, reg=reg, dropout=dropout, row_l2=row_l2,
            text_table_shape=None if text_table is None else [int(n) for n in text_table.shape],
        ))
        self.text_table = None if text_table is None else tf.constant(text_table, dtype=tf.float32)
        self.text_projection = (
            None if text_table is None else tf.keras.layers.Dense(dim, name="text_projection")
        )
        self.known_items = sizes.known_items
        self.item_embedding = id_embedding(sizes.items, dim, reg, row_l2)
        self.genre_projection = tf.keras.layers.Dense(16, use_bias=False)
        self.token_embedding = tf.keras.layers.Embedding(sizes.text_tokens, 32)
        self.pool = MaskedMeanPool()
        self.mlp = _mlp((2 * dim,), dim, "candidate_mlp", dropout)

    def get_config(self) -> dict:
        return architecture_config(self)

    def text_vectors(self, item_idx: tf.Tensor) -> tf.Tensor:
        """The text table's rows of these item_idx (zeros for unknown ids)."""
        return tf.gather(self.text_table, fold_unknown(item_idx, self.known_items))

    def call(self, x: dict, training: bool = False) -> tf.Tensor:
        title, desc = x[F.TITLE_TOKENS], x[F.DESCRIPTION_TOKENS]
        parts = [
            self.item_embedding(fold_unknown(x[F.ITEM_IDX], self.known_items)),
            self.genre_projection(x[F.GENRES_MULTI_HOT]),
            self.pool(self.token_embedding(title), title),
            self.pool(self.token_embedding(desc), desc),
            tf.stack([x[F.YEAR_Z], x[F.YEAR_KNOWN]], axis=-1),
        ]
        if self.text_projection is not None:  # a text table was given
            text = x.get(F.ITEM_TEXT_VECTOR)
            parts.append(self.text_projection(
                self.text_vectors(x[F.ITEM_IDX]) if text is None else text))
        return self.mlp(tf.concat(parts, axis=-1), training=training)
