"""The multi-task TFRS model: shared towers, four tasks, one `compute_loss`.

Tasks (one TFRS Task each):
- retrieval: in-batch softmax over item embeddings, with logQ correction by the
  items' training frequency and removal of accidental hits;
- relevance: pointwise P(like) for a (user, item) pair. Positives are observed
  interactions labelled liked (rating >= 4) or not; each is paired with an
  in-batch negative (the batch's items rolled by one) labelled 0. Pointwise
  keeps the output a probability, which the score blend and TFMA's
  calibration metric need; it is one over rated and sampled pairs together, so
  the reported P(like) is fitted on the served rating instead
  (models/like_calibration.py);
- rating: explicit rating regression (MSE) = global mean + user/item biases +
  a pair MLP;
- interest: multi-label genres of what the user engages with, weighted toward
  what they like; read from the query embedding alone, so it is a user profile.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from mtrec.contracts import features as F
from mtrec.contracts.artifacts import LIKE_CALIBRATION_IDENTITY
from mtrec.models.autograph_rules import skip_tf_keras
from mtrec.models.config import (
    INTEREST,
    RATING,
    RELEVANCE,
    RESOLVED_OPTIMIZERS,
    RETRIEVAL,
    ModelConfig,
)
from mtrec.models.heads import PairHeads, UncertaintyWeighting, pair_features
from mtrec.models.interest_metric import InterestAUC
from mtrec.models.towers import CandidateTower, QueryTower, VocabSizes, architecture_config

# What TFRS's train/test step return for the last batch only (see loss_means).
BATCH_LOSSES = ("loss", "regularization_loss", "total_loss")

skip_tf_keras()  # every process that builds the model traces it: 104 -> 60 s a sample run_fn


class MultiTaskModel(tfrs.Model):
    """Shared query/candidate towers with retrieval, relevance, rating and interest tasks."""

    def __init__(
        self,
        sizes: VocabSizes,
        config: ModelConfig,
        item_sampling_prob: np.ndarray,
        rating_mean: float,
        text_table: np.ndarray | None = None,
        rated: tuple[np.ndarray, np.ndarray] | None = None,
        rating_range: tuple[float, float] = (F.MIN_RATING, F.MAX_RATING),
        neighbour_ratings: np.ndarray | None = None,
        genre_vocab_size: int | None = None,
    ) -> None:
        """`rated`: (row splits [users + 1], item_idx values), every user's rated items
        (serving_tables.ServingTables.rated_splits / rated_idx); needed when config.rated_items.
        `rating_range`: the lowest and highest training rating (ServingTables.rating_range).
        `neighbour_ratings`: [users, items] closed-form predictions the served rating is
        blended with at config.rating_knn_weight (models/neighbour_rating.py); None = off.
        `genre_vocab_size`: the Transform genre vocabulary's; the interest AUC reads only
        its columns (models/interest_metric.py); None = all F.GENRE_BUCKETS."""
        super().__init__()
        # Keras' default under MultiWorkerMirroredStrategy sums every logged value
        # over workers, doubling the (already synchronised) AUC/RMSE with 2
        # workers; "first" reads them once, and _global_loss makes the loss global.
        self.distribute_reduction_method = "first"
        if config.optimizer not in RESOLVED_OPTIMIZERS:
            raise ValueError(f"resolve the optimizer first (resolve_optimizer): "
                             f"{config.optimizer!r}")
        self.sizes, self.config = sizes, config
        self._architecture = json.dumps(dict(
            sizes=dataclasses.asdict(sizes), config=dataclasses.asdict(config),
            rating_mean=float(rating_mean), rating_range=[float(r) for r in rating_range],
            items=int(len(item_sampling_prob)), text_table=text_table is not None,
            rated=rated is not None, neighbour_ratings=neighbour_ratings is not None,
            genre_vocab_size=genre_vocab_size,
        ))
        d = config.embedding_dim
        row_l2 = config.optimizer == "lazy_adam"  # LazyAdam needs row-sparse gradients
        self.query_tower = QueryTower(
            sizes,
            d,
            config.l2,
            config.dropout,
            use_history=config.history_dropout < 1.0,
            row_l2=row_l2,
            use_rated=config.rated_items,
            name="query_tower",
        )
        if config.rated_items and rated is None:
            raise ValueError("config.rated_items needs the users' rated items (rated=...)")
        # Variables, not constants: they grow with the interactions (and are saved).
        self.rated_splits: tf.Variable | None
        self.rated_values: tf.Variable | None
        self.rated_splits, self.rated_values = (
            (tf.Variable(rated[0], trainable=False, name="rated_splits"),
             tf.Variable(rated[1], trainable=False, name="rated_values"))
            if config.rated_items and rated is not None else (None, None)
        )
        self.candidate_tower = CandidateTower(
            sizes,
            d,
            config.l2,
            config.dropout,
            text_table=text_table,
            row_l2=row_l2,
            name="candidate_tower",
        )
        # Heads exist only for trained tasks (an untrained head has no weights);
        # single-task models still export every signature, with neutral outputs.
        needs_pair = bool({RELEVANCE, RATING} & set(config.tasks))
        self.pair_heads = PairHeads(config.mixture, name="pair_heads") if needs_pair else None
        self.user_bias = tf.keras.layers.Embedding(sizes.users, 1, embeddings_initializer="zeros")
        self.item_bias = tf.keras.layers.Embedding(sizes.items, 1, embeddings_initializer="zeros")
        self.rating_mean = tf.constant(rating_mean, tf.float32)
        lo, hi = rating_range
        if not lo <= rating_mean <= hi:
            raise ValueError(f"rating_range {rating_range} must hold rating_mean {rating_mean}")
        self.rating_range = (tf.constant(lo, tf.float32), tf.constant(hi, tf.float32))
        self.neighbour_ratings = None
        if neighbour_ratings is not None and config.rating_knn_weight:
            if neighbour_ratings.shape != (sizes.users, sizes.items):
                raise ValueError(f"neighbour_ratings {neighbour_ratings.shape} must be "
                                 f"[users, items] = {(sizes.users, sizes.items)}")
            self.neighbour_ratings = tf.Variable(neighbour_ratings, trainable=False,
                                                 name="neighbour_ratings")
        self.interest_head = (
            tf.keras.layers.Dense(F.GENRE_BUCKETS, name="interest_head")
            if INTEREST in config.tasks
            else None
        )
        self.item_sampling_prob = tf.constant(item_sampling_prob, tf.float32)
        # The reported P(like)'s weights: the identity until the Trainer fits them
        # after training (models/like_calibration.py); saved with the weights.
        self.like_weights = tf.Variable(LIKE_CALIBRATION_IDENTITY, trainable=False,
                                        name="like_weights")

        # Every task returns per-example losses; compute_loss averages them over
        # the *global* batch (tf.nn.compute_average_loss): the mean, not TFRS's
        # default sum, so loss weights compare like with like across tasks, and
        # correct under tf.distribute, where gradients are summed over replicas
        # and Keras refuses SUM_OVER_BATCH_SIZE losses (tests/test_multi_worker.py).
        none = tf.keras.losses.Reduction.NONE
        self.retrieval_task = tfrs.tasks.Retrieval(
            loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True, reduction=none),
            temperature=config.temperature,
            remove_accidental_hits=True,
            name=RETRIEVAL,
        )
        self.relevance_task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction=none),
            metrics=[tf.keras.metrics.AUC(name="relevance_auc", from_logits=True)],
            name=RELEVANCE,
        )
        self.rating_task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.MeanSquaredError(reduction=none),
            metrics=[
                tf.keras.metrics.RootMeanSquaredError(name="rating_rmse"),
                tf.keras.metrics.MeanAbsoluteError(name="rating_mae"),
            ],
            name=RATING,
        )
        # As the head: without the task, no interest AUC (never updated, it read 0.000 in
        # every epoch line of a run whose items have no genres, where the run drops it).
        # InterestAUC masks the phantom genre columns itself: the loss never sees the mask.
        self.interest_task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction=none),
            metrics=[InterestAUC(genre_vocab_size)],
            name=INTEREST,
        ) if INTEREST in config.tasks else None
        self.balancer = UncertaintyWeighting(config.tasks) if config.uncertainty_weighting else None
        # Each task's loss as an epoch mean (`<task>_loss`, `val_<task>_loss` in
        # the fit logs): the Trainer's progress line shows them, and they cost
        # one add per batch where per-batch AUC/RMSE would cost far more.
        self.task_losses = {t: tf.keras.metrics.Mean(name=f"{t}_loss") for t in config.tasks}
        # TFRS logs `loss`, `regularization_loss` and `total_loss` as the epoch's last
        # batch: next to the tasks' epoch means they did not add up (ml-latest-small's
        # epoch 1: loss 6.84 against a weighted task sum of 7.61). Logged as epoch means.
        self.loss_means = {key: tf.keras.metrics.Mean(name=f"mean_{key}") for key in BATCH_LOSSES}

    # ------------------------------------------------------------ building blocks
    def get_config(self) -> dict:
        return architecture_config(self)

    def _trackable_children(self, save_type: str = "checkpoint", **kwargs: Any
                            ) -> dict[str, object]:
        """Leave the optimizer out of SavedModels: serving never reads its slots.

        Adam keeps two slots per weight, so they were half of every export
        (420 MB of variables at 5M interactions), loaded by TF Serving and by
        each of TFMA's Beam workers. Checkpoints (save_weights) keep them.
        A private Keras hook: Keras has no public switch for this;
        tests/test_private_apis.py pins its signature.
        """
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "savedmodel":
            children.pop("optimizer", None)
        return children

    def rated_bag(
        self, user_idx: tf.Tensor, exclude: tf.Tensor | None = None, dropout: float = 0.0
    ) -> tf.RaggedTensor:
        """Each user's rated items (ragged item_idx) without `exclude` (the row's own item),
        with a `dropout` share of them removed at random."""
        table = tf.RaggedTensor.from_row_splits(self.rated_values, self.rated_splits)
        bag = tf.gather(table, user_idx)
        keep = tf.ones_like(bag, dtype=tf.bool)
        if exclude is not None:
            keep = tf.not_equal(bag, tf.expand_dims(exclude, 1))
        if dropout > 0:
            drop = tf.random.uniform(tf.shape(bag.flat_values)) < dropout
            keep = keep & bag.with_flat_values(~drop)
        return tf.ragged.boolean_mask(bag, keep)

    def _with_rated(self, x: dict, training: bool) -> dict:
        """Add F.RATED_IDX, looked up by user_idx, unless the caller passed a bag."""
        if self.rated_values is None or F.RATED_IDX in x:
            return x
        dropout = self.config.rated_dropout if training else 0.0
        return {**x, F.RATED_IDX: self.rated_bag(x[F.USER_IDX], x.get(F.ITEM_IDX), dropout)}

    def query_embedding(self, x: dict, training: bool = False) -> tf.Tensor:
        return self.query_tower(self._with_rated(x, training), training=training)

    def candidate_embedding(self, x: dict, training: bool = False) -> tf.Tensor:
        return self.candidate_tower(x, training=training)

    def retrieval_vector(self, embedding: tf.Tensor) -> tf.Tensor:
        """What retrieval scores are dot products of: the embedding itself ("dot")
        or its unit vector ("cosine"). Applied to both towers, so an external
        index over embed_user / embed_item ranks exactly like `retrieve`."""
        if self.config.similarity == "dot":
            return embedding
        return tf.math.l2_normalize(embedding, axis=-1)

    def pair_outputs(
        self, query: tf.Tensor, candidate: tf.Tensor, user_idx: tf.Tensor, item_idx: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        """Relevance logit and predicted rating for aligned (user, item) rows."""
        heads = None if self.pair_heads is None else self.pair_heads(
            pair_features(query, candidate))
        return self.pair_from_heads(heads, user_idx, item_idx)

    def pair_from_heads(self, heads: dict[str, tf.Tensor] | None, user_idx: tf.Tensor,
                        item_idx: tf.Tensor) -> dict[str, tf.Tensor]:
        """pair_outputs from the pair heads' outputs (serving computes those its own
        way: models/pair_split.py)."""
        bias = tf.squeeze(self.user_bias(user_idx) + self.item_bias(item_idx), axis=-1)
        if heads is None:
            zero = tf.zeros_like(bias)
            return {RELEVANCE: zero, RATING: self.rating_mean + bias}
        return {
            RELEVANCE: heads[RELEVANCE], RATING: self.rating_mean + bias + heads[RATING]
        }

    def served_rating(self, rating: tf.Tensor, user_idx: tf.Tensor,
                      item_idx: tf.Tensor) -> tf.Tensor:
        """A predicted rating for every served output: the head's, blended with the
        neighbour predictor's at config.rating_knn_weight (when fitted), clipped to the
        training range. `user_idx`/`item_idx` broadcast against `rating`.

        Clipping moves a prediction outside the range towards every rating in it,
        so it can only lower the error: ML-100K u1 validation holdout RMSE 0.9029
        -> 0.9014; the neighbour blend then 0.8854 (benchmarks/results/
        quality_tuning.md). Training fits the head's unclipped output alone (a
        clipped one has no gradient outside the range).
        """
        if self.neighbour_ratings is not None:
            w = self.config.rating_knn_weight
            shape = tf.shape(rating)
            at = tf.stack([tf.broadcast_to(tf.cast(user_idx, tf.int64), shape),
                           tf.broadcast_to(tf.cast(item_idx, tf.int64), shape)], axis=-1)
            rating = (1.0 - w) * rating + w * tf.gather_nd(self.neighbour_ratings, at)
        return tf.clip_by_value(rating, *self.rating_range)

    def like_probability(self, logit: tf.Tensor, rating: tf.Tensor) -> tf.Tensor:
        """The reported P(like) of a pair from its relevance logit and served rating
        (like_calibration weighs them: models/like_calibration.py)."""
        a, b, c = tf.unstack(self.like_weights)
        return tf.sigmoid(a * logit + b * rating + c)

    def interest_logits(self, query: tf.Tensor) -> tf.Tensor:
        if self.interest_head is None:
            return tf.zeros([tf.shape(query)[0], F.GENRE_BUCKETS])
        return self.interest_head(query)

    def call(self, x: dict, training: bool = False) -> dict[str, tf.Tensor]:
        q = self.query_embedding(x, training)
        c = self.candidate_embedding(x, training)
        pair = self.pair_outputs(q, c, x[F.USER_IDX], x[F.ITEM_IDX])
        rating = self.served_rating(pair[RATING], x[F.USER_IDX], x[F.ITEM_IDX])
        return {
            F.OUT_RATING: rating,
            F.OUT_RELEVANCE: self.like_probability(pair[RELEVANCE], rating),
            F.OUT_INTEREST: tf.sigmoid(self.interest_logits(q)),
        }

    # --------------------------------------------------------------- training
    def _drop_ids(self, x: dict, training: bool) -> dict:
        """Id dropout (trains row 0 as the unknown user / item) and history dropout."""
        if not training:
            return x
        x = dict(x)
        if (self.config.id_dropout_keeps_text and self.candidate_tower.text_table is not None
                and F.ITEM_TEXT_VECTOR not in x):
            # A dropped item keeps its text: "unknown id + its own text" is what a
            # cold item is served with (ModelConfig.id_dropout_keeps_text).
            x[F.ITEM_TEXT_VECTOR] = self.candidate_tower.text_vectors(x[F.ITEM_IDX])
        rates = {F.USER_IDX: self.config.id_dropout, F.ITEM_IDX: self.config.id_dropout}
        rates[F.HISTORY_IDX] = self.config.history_dropout
        for key, rate in rates.items():
            if rate > 0:
                keep = tf.random.uniform(tf.shape(x[key])) >= rate
                x[key] = tf.where(keep, x[key], tf.zeros_like(x[key]))
        return x

    def train_step(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self._epoch_means(self._global_loss(super().train_step(inputs)), inputs)

    def test_step(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self._epoch_means(self._global_loss(super().test_step(inputs)), inputs)

    def _epoch_means(self, logs: dict, inputs: dict) -> dict:
        """`logs` with the batch losses TFRS returns replaced by their means so far,
        weighted by batch size like the tasks' (their Means average per example, so an
        epoch's short last batch counts as many examples as it has, not as a batch)."""
        logs = dict(logs)
        examples = tf.cast(tf.shape(inputs[F.ITEM_IDX])[0], tf.float32)
        for key, mean in self.loss_means.items():
            logs.pop(mean.name, None)
            mean.update_state(logs[key], sample_weight=examples)
            logs[key] = mean.result()
        return logs

    @staticmethod
    def _global_loss(logs: dict) -> dict:
        """Each replica's loss is its share of the global-batch mean: log their sum."""
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return logs
        loss = context.all_reduce("SUM", logs["loss"])
        return {**logs, "loss": loss, "total_loss": loss + logs["regularization_loss"]}

    def compute_loss(self, x: dict, training: bool = False) -> tf.Tensor:
        tasks = self.config.tasks
        ids = self._drop_ids(self._with_rated(x, training), training)
        q = self.query_embedding(ids, training)
        c = self.candidate_embedding(ids, training)
        losses: dict[str, tf.Tensor] = {}
        if RETRIEVAL in tasks:
            losses[RETRIEVAL] = self.retrieval_task(
                self.retrieval_vector(q),
                self.retrieval_vector(c),
                candidate_sampling_probability=(
                    tf.gather(self.item_sampling_prob, x[F.ITEM_IDX])
                    if self.config.logq_correction
                    else None
                ),
                candidate_ids=x[F.ITEM_IDX],
                compute_metrics=False,
            )
        if RELEVANCE in tasks or RATING in tasks:
            pos = self.pair_outputs(q, c, ids[F.USER_IDX], ids[F.ITEM_IDX])
        if RATING in tasks:
            losses[RATING] = self.rating_task(
                labels=x[F.RATING_XF][:, tf.newaxis],
                predictions=pos[RATING][:, tf.newaxis],
                compute_metrics=not training,
            )
        if RELEVANCE in tasks:
            neg_items = tf.roll(ids[F.ITEM_IDX], shift=1, axis=0)
            neg = self.pair_outputs(q, tf.roll(c, shift=1, axis=0), ids[F.USER_IDX], neg_items)
            # An accidental positive: the same item, by the batch's ids (id dropout may
            # have turned both into the unknown row).
            same = tf.equal(tf.roll(x[F.ITEM_IDX], shift=1, axis=0), x[F.ITEM_IDX])
            labels = tf.concat(
                [tf.cast(x[F.LIKED_XF], tf.float32), tf.zeros_like(neg[RELEVANCE])], axis=0
            )
            weights = tf.concat(
                [tf.ones_like(pos[RELEVANCE]), 1.0 - tf.cast(same, tf.float32)], axis=0
            )
            losses[RELEVANCE] = self.relevance_task(
                labels=labels[:, tf.newaxis],
                predictions=tf.concat([pos[RELEVANCE], neg[RELEVANCE]], axis=0)[:, tf.newaxis],
                sample_weight=weights[:, tf.newaxis],
                compute_metrics=not training,
            )
        if INTEREST in tasks and self.interest_task is not None:
            liked = tf.cast(x[F.LIKED_XF], tf.float32)
            losses[INTEREST] = self.interest_task(
                labels=x[F.GENRES_MULTI_HOT],
                predictions=self.interest_logits(q),
                sample_weight=(0.25 + 0.75 * liked)[:, tf.newaxis],
                compute_metrics=not training,
            )
        for task, loss in losses.items():
            self.task_losses[task].update_state(loss)
        losses = {t: tf.nn.compute_average_loss(loss) for t, loss in losses.items()}
        if self.balancer is not None:
            return self.balancer(losses)
        return tf.add_n([self.config.weight(t) * loss for t, loss in losses.items()])
