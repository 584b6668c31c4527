"""The TFRS multitask tutorial's joint model, as a baseline for benchmarks/quality.py.

A faithful reimplementation of `MovielensModel` from tensorflow/recommenders
docs/examples/multitask.ipynb with rating_weight = retrieval_weight = 1:
32-d user and movie id embeddings (StringLookup, one OOV row), a
256-128-1 rating MLP on [user, movie], tfrs Retrieval (in-batch softmax on
dot products, TFRS's default loss) + Ranking (MSE), Adagrad(0.1), batch 8192,
3 epochs, a 100K shuffle buffer.

Two deliberate differences, both for a fair comparison with our model:
movies are keyed by id rather than title (titles are not unique), and the
lookup vocabularies come from the training split only (the tutorial builds
them from all ratings, which lets test-only ids get trained rows).
"""

from __future__ import annotations

import dataclasses
import time

import mtrec  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

EMBEDDING_DIM = 32
LEARNING_RATE = 0.1
BATCH_SIZE = 8192
EPOCHS = 3
SHUFFLE_BUFFER = 100_000


class TutorialModel(tfrs.models.Model):
    """`MovielensModel(rating_weight, retrieval_weight)` of the TFRS multitask tutorial."""

    def __init__(
        self,
        user_vocab: np.ndarray,
        item_vocab: np.ndarray,
        rating_weight: float = 1.0,
        retrieval_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.user_model = tf.keras.Sequential(
            [
                tf.keras.layers.StringLookup(vocabulary=user_vocab, mask_token=None),
                tf.keras.layers.Embedding(len(user_vocab) + 1, EMBEDDING_DIM),
            ]
        )
        self.movie_model = tf.keras.Sequential(
            [
                tf.keras.layers.StringLookup(vocabulary=item_vocab, mask_token=None),
                tf.keras.layers.Embedding(len(item_vocab) + 1, EMBEDDING_DIM),
            ]
        )
        self.rating_model = tf.keras.Sequential(
            [
                tf.keras.layers.Dense(256, activation="relu"),
                tf.keras.layers.Dense(128, activation="relu"),
                tf.keras.layers.Dense(1),
            ]
        )
        self.rating_task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.MeanSquaredError(),
            metrics=[tf.keras.metrics.RootMeanSquaredError()],
        )
        # The tutorial also attaches FactorizedTopK metrics; they only cost time
        # here, since quality.py measures every model with the same code.
        self.retrieval_task = tfrs.tasks.Retrieval()
        self.rating_weight = rating_weight
        self.retrieval_weight = retrieval_weight

    def call(self, features: dict) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        users = self.user_model(features["user_id"])
        movies = self.movie_model(features["item_id"])
        return users, movies, self.rating_model(tf.concat([users, movies], axis=1))

    def compute_loss(self, features: dict, training: bool = False) -> tf.Tensor:
        users, movies, ratings = self(features)
        rating_loss = self.rating_task(labels=features["rating"], predictions=ratings)
        retrieval_loss = self.retrieval_task(users, movies)
        return self.rating_weight * rating_loss + self.retrieval_weight * retrieval_loss


@dataclasses.dataclass
class Trained:
    model: TutorialModel
    catalog: np.ndarray  # item ids the model retrieves from (the training items)
    item_vectors: np.ndarray  # [len(catalog), d]
    train_seconds: float

    def user_vectors(self, users: np.ndarray) -> np.ndarray:
        return self.model.user_model(tf.constant(users)).numpy()

    def scores(self, users: np.ndarray) -> np.ndarray:
        """[len(users), len(catalog)] dot products (the retrieval score)."""
        return self.user_vectors(users) @ self.item_vectors.T

    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        _, _, ratings = self.model(
            {"user_id": tf.constant(users), "item_id": tf.constant(items)}
        )
        return ratings.numpy()[:, 0]


def train(
    users: np.ndarray, items: np.ndarray, ratings: np.ndarray, seed: int = 0, epochs: int = EPOCHS
) -> Trained:
    """Fit the tutorial's joint model on training (user_id, item_id, rating) triples."""
    tf.keras.utils.set_random_seed(seed)
    t0 = time.time()
    user_vocab, item_vocab = np.unique(users), np.unique(items)
    model = TutorialModel(user_vocab, item_vocab)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(LEARNING_RATE))
    data = tf.data.Dataset.from_tensor_slices(
        {"user_id": users, "item_id": items, "rating": ratings.astype(np.float32)}
    )
    cached = data.shuffle(SHUFFLE_BUFFER, seed=seed).batch(BATCH_SIZE).cache()
    model.fit(cached, epochs=epochs, verbose=0)
    seconds = time.time() - t0
    item_vectors = model.movie_model(tf.constant(item_vocab)).numpy()
    return Trained(model, item_vocab, item_vectors, seconds)
