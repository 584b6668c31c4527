"""A small, real SavedModel with mtrec's serving signatures.

Tests and the serving benchmark need a model with the exported mtrec model's
client-facing signatures (serving_default, recommend, recommend_from_items,
score, user_interest, embed_user, embed_item: names, dtypes, shapes, error
behaviour) without running the TFX pipeline; transform_features, retrieve and
embed_new_item are left out. This one does genuine work -- hash-table id
lookup, embedding gathers, brute-force dot-product top-k -- so latencies and
memory scale with the catalogue like the real thing. Unknown ids map to a
default (mean) embedding, as the real model's OOV buckets do.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from mtrec.contracts import features as F
from mtrec.contracts import signatures as S

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


@dataclass(frozen=True)
class SyntheticModelInfo:
    """What a test needs to know about a built synthetic model."""

    path: str
    num_users: int
    num_items: int
    num_genres: int
    dim: int
    user_ids: tuple[str, ...]  # a few known user ids (not all of them for big models)
    item_ids: tuple[str, ...]  # a few known item ids


def _vocab_table(path: str) -> tf.lookup.StaticHashTable:
    init = tf.lookup.TextFileInitializer(
        path,
        key_dtype=tf.string,
        key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
        value_dtype=tf.int64,
        value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
    )
    return tf.lookup.StaticHashTable(init, default_value=-1)


class _SyntheticRecommender(tf.Module):
    """Two-tower-shaped scorer: user . item dot products plus an item bias."""

    def __init__(
        self,
        user_vocab: str,
        item_vocab: str,
        item_ids: np.ndarray,
        genres: np.ndarray,
        user_emb: np.ndarray,
        item_emb: np.ndarray,
        genre_emb: np.ndarray,
        item_bias: np.ndarray,
    ) -> None:
        super().__init__()
        self.user_table = _vocab_table(user_vocab)
        self.item_table = _vocab_table(item_vocab)
        self.item_ids = tf.Variable(item_ids, dtype=tf.string, trainable=False)
        self.genres = tf.Variable(genres, dtype=tf.string, trainable=False)
        self.user_emb = tf.Variable(user_emb, trainable=False)
        self.user_oov = tf.Variable(user_emb.mean(axis=0, keepdims=True), trainable=False)
        self.item_emb = tf.Variable(item_emb, trainable=False)
        self.item_oov = tf.Variable(item_emb.mean(axis=0, keepdims=True), trainable=False)
        self.item_bias = tf.Variable(item_bias, trainable=False)
        self.genre_emb = tf.Variable(genre_emb, trainable=False)

    # ------------------------------------------------------------- helpers
    def _lookup(
        self, table: tf.lookup.StaticHashTable, emb: tf.Variable, oov: tf.Variable, ids: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        idx = table.lookup(ids)
        vec = tf.gather(emb, tf.maximum(idx, 0))
        known = tf.expand_dims(idx >= 0, -1)
        return tf.where(known, vec, oov[0]), idx

    def _users(self, user_id: tf.Tensor) -> tf.Tensor:
        return self._lookup(self.user_table, self.user_emb, self.user_oov, user_id)[0]

    def _items(self, item_id: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        vec, idx = self._lookup(self.item_table, self.item_emb, self.item_oov, item_id)
        bias = tf.where(idx >= 0, tf.gather(self.item_bias, tf.maximum(idx, 0)), 0.0)
        return vec, bias

    @staticmethod
    def _rating(score: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
        lo, hi = F.MIN_RATING, F.MAX_RATING
        return lo + (hi - lo) * tf.sigmoid(score + bias)

    def _top_k(self, scores: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        """recommend's answer over [B, N] scores (dot + bias), with its checks on k."""
        n = tf.shape(self.item_emb, out_type=tf.int32)[0]
        checks = [tf.debugging.assert_positive(k, message="k must be positive"),
                  tf.debugging.assert_less_equal(k, n, message=S.K_PAST_CATALOGUE)]
        # top_k after the checks, as models/serving_ops.checked_size orders them: tf.function
        # runs the asserts but does not order them before top_k, which then raced them and,
        # on a busy machine, refused a k past the catalogue in its own words ("input must
        # have at least k columns"), which `mtrec query` does not recognise.
        with tf.control_dependencies(checks):
            k = tf.identity(k)
        top = tf.math.top_k(scores, k=k)
        bias = tf.gather(self.item_bias, top.indices)
        return {
            "item_ids": tf.gather(self.item_ids, top.indices),
            "scores": top.values,
            "ratings": self._rating(top.values - bias, bias),
        }

    def _interest(self, users: tf.Tensor) -> tf.Tensor:
        return tf.sigmoid(tf.matmul(users, self.genre_emb, transpose_b=True))

    # ---------------------------------------------------------- signatures
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_example(
            examples,
            {
                F.USER_ID: tf.io.FixedLenFeature([], tf.string, default_value=""),
                F.ITEM_ID: tf.io.FixedLenFeature([], tf.string, default_value=""),
            },
        )
        users = self._users(parsed[F.USER_ID])
        items, bias = self._items(parsed[F.ITEM_ID])
        score = tf.reduce_sum(users * items, axis=-1)
        return {
            F.OUT_RATING: self._rating(score, bias),
            F.OUT_RELEVANCE: tf.sigmoid(score + bias),
            F.OUT_INTEREST: self._interest(users),
        }

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="user_id"),
            tf.TensorSpec([], tf.int32, name="k"),
        ]
    )
    def recommend(self, user_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        users = self._users(user_id)
        return self._top_k(tf.matmul(users, self.item_emb, transpose_b=True) + self.item_bias, k)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.string, name="item_ids"),  # padded with ""
            tf.TensorSpec([], tf.int32, name="k"),
        ]
    )
    def recommend_from_items(self, item_ids: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        """A user known only by items: the mean of their known vectors as the query,
        the given items never returned."""
        idx = self.item_table.lookup(item_ids)
        known = tf.cast(idx >= 0, tf.float32)[..., tf.newaxis]
        vectors = tf.gather(self.item_emb, tf.maximum(idx, 0)) * known
        query = tf.reduce_sum(vectors, axis=1) / tf.maximum(tf.reduce_sum(known, axis=1), 1.0)
        scores = tf.matmul(query, self.item_emb, transpose_b=True) + self.item_bias
        n = tf.shape(self.item_emb)[0]
        given = tf.reduce_max(tf.one_hot(idx, n) * known, axis=1)  # idx -1: all zeros
        return self._top_k(tf.where(given > 0, S.EXCLUDED_SCORE, scores), k)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="user_id"),
            tf.TensorSpec([None, None], tf.string, name="item_ids"),
        ]
    )
    def score(self, user_id: tf.Tensor, item_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        users = self._users(user_id)
        items, bias = self._items(item_ids)
        dots = tf.reduce_sum(tf.expand_dims(users, 1) * items, axis=-1)
        return {
            "scores": dots + bias,
            "ratings": self._rating(dots, bias),
            "relevance": tf.sigmoid(dots + bias),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def user_interest(self, user_id: tf.Tensor) -> dict[str, tf.Tensor]:
        interest = self._interest(self._users(user_id))
        top = tf.math.top_k(interest, k=tf.shape(self.genres)[0])
        return {"genres": tf.gather(self.genres, top.indices), "scores": top.values}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def embed_user(self, user_id: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"embedding": self._users(user_id)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="item_id")])
    def embed_item(self, item_id: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"embedding": self._items(item_id)[0]}

    # Classify/Regress-shaped signatures ("inputs" = serialized examples).
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify_interest(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        out = self.serve_examples(inputs)
        batch = tf.shape(inputs)[0]
        classes = tf.tile(tf.expand_dims(self.genres, 0), [batch, 1])
        return {"classes": classes, "scores": out[F.OUT_INTEREST]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress_rating(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"outputs": self.serve_examples(inputs)[F.OUT_RATING]}


def build_synthetic_model(
    export_dir: str,
    *,
    num_items: int = 1682,
    num_users: int = 943,
    num_genres: int = 18,
    dim: int = 32,
    seed: int = 0,
    classify_regress: bool = False,
) -> SyntheticModelInfo:
    """Export a synthetic mtrec-signature SavedModel to `export_dir`.

    Ids are the decimal strings "1".."N" (MovieLens style). With
    `classify_regress`, two extra signatures (`classify_interest`,
    `regress_rating`) are exported with TF Serving's classify/regress method
    names, which TF2's saver cannot set, so the saved_model.pb is patched.
    """
    rng = np.random.default_rng(seed)
    user_ids = np.array([str(i) for i in range(1, num_users + 1)], dtype=object)
    item_ids = np.array([str(i) for i in range(1, num_items + 1)], dtype=object)
    genres = np.array([f"genre_{g:02d}" for g in range(num_genres)], dtype=object)
    scale = 1.0 / np.sqrt(dim)
    user_emb = rng.normal(0.0, scale, (num_users, dim)).astype(np.float32)
    item_emb = rng.normal(0.0, scale, (num_items, dim)).astype(np.float32)
    genre_emb = rng.normal(0.0, scale, (num_genres, dim)).astype(np.float32)
    item_bias = rng.normal(0.0, 0.1, (num_items,)).astype(np.float32)

    with tempfile.TemporaryDirectory(prefix="mtrec-vocab-") as vocab_dir:
        user_vocab = os.path.join(vocab_dir, "user_id.txt")
        item_vocab = os.path.join(vocab_dir, "item_id.txt")
        for path, ids in ((user_vocab, user_ids), (item_vocab, item_ids)):
            with open(path, "w", encoding="utf-8") as fh:
                fh.write("\n".join(ids) + "\n")
        module = _SyntheticRecommender(
            user_vocab, item_vocab, item_ids, genres, user_emb, item_emb, genre_emb, item_bias
        )
        signatures = {
            "serving_default": module.serve_examples,
            "recommend": module.recommend,
            "recommend_from_items": module.recommend_from_items,
            "score": module.score,
            "user_interest": module.user_interest,
            "embed_user": module.embed_user,
            "embed_item": module.embed_item,
        }
        if classify_regress:
            signatures["classify_interest"] = module.classify_interest
            signatures["regress_rating"] = module.regress_rating
        tf.saved_model.save(module, export_dir, signatures=signatures)

    if classify_regress:
        _set_method_names(
            export_dir, {"classify_interest": CLASSIFY_METHOD, "regress_rating": REGRESS_METHOD}
        )
    return SyntheticModelInfo(
        path=export_dir,
        num_users=num_users,
        num_items=num_items,
        num_genres=num_genres,
        dim=dim,
        user_ids=tuple(user_ids[:16]),
        item_ids=tuple(item_ids[:16]),
    )


def _set_method_names(export_dir: str, methods: dict[str, str]) -> None:
    path = os.path.join(export_dir, "saved_model.pb")
    proto = saved_model_pb2.SavedModel()
    with open(path, "rb") as fh:
        proto.ParseFromString(fh.read())
    for meta_graph in proto.meta_graphs:
        for name, method in methods.items():
            meta_graph.signature_def[name].method_name = method
    with open(path, "wb") as fh:
        fh.write(proto.SerializeToString())
