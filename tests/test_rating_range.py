"""Served ratings are clipped to the training range: hand-computed on a bias-only model."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.models.config import ModelConfig
from mtrec.models.model import MultiTaskModel
from tests.tiny_model_support import SIZES, rows

# A rating-less model's rating is mean + user bias + item bias (model.pair_outputs).
CONFIG = ModelConfig(embedding_dim=2, optimizer="adam", tasks=("retrieval",), rated_items=False)


def test_served_ratings_are_clipped_to_the_training_range_and_training_sees_them_raw():
    model = MultiTaskModel(SIZES, CONFIG, np.full(SIZES.items, 0.25, np.float32), 3.5,
                           rating_range=(1.0, 5.0))
    x = rows(3)
    model(x)  # builds the bias tables
    model.user_bias.set_weights([np.array([[0.0], [0.25], [0.0]], np.float32)])
    model.item_bias.set_weights([np.array([[0.0], [2.0], [-3.0], [0.1], [0.0]], np.float32)])
    raw = model.pair_outputs(tf.zeros([3, 2]), tf.zeros([3, 2]), x[F.USER_IDX], x[F.ITEM_IDX])
    # 3.5 + 0.25 + (2, -3, 0.1): 5.75 and 0.75 fall outside [1, 5], 3.85 inside.
    np.testing.assert_allclose(raw["rating"], [5.75, 0.75, 3.85], rtol=1e-6)
    np.testing.assert_allclose(model(x)[F.OUT_RATING], [5.0, 1.0, 3.85], rtol=1e-6)


def test_the_range_must_hold_the_mean():
    with pytest.raises(ValueError, match="rating_range"):
        MultiTaskModel(SIZES, CONFIG, np.full(SIZES.items, 0.25, np.float32), 3.5,
                       rating_range=(4.0, 5.0))
