"""Ground truth: on synthetic data with a known latent structure, the trained
model must clearly beat popularity at full-catalogue retrieval."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mtrec.data import clean, generate
from mtrec.data.examples import write_examples
from mtrec.models import features as F
from mtrec.models.evaluation import hit_rates, popularity_ranking
from mtrec.models.model import ModelConfig
from mtrec.models.trainer import train_and_export
from mtrec.models.transform_local import transform_examples


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality")
    # The size of the embedded sample: on much smaller sets the towers overfit
    # before they beat popularity.
    dataset = clean(generate(seed=7)).dataset
    write_examples(dataset, out / "examples")
    tft_output, columns = transform_examples(str(out / "examples"), str(out / "xf"))
    train, held_out = columns["train"], columns["eval"]
    shuffled = (
        tf.data.Dataset.from_tensor_slices(train)
        .shuffle(len(train[F.USER_IDX]), seed=0)
        .batch(512)
    )
    metrics = train_and_export(
        shuffled,
        tf.data.Dataset.from_tensor_slices(held_out).batch(4096),
        tf.data.Dataset.from_tensor_slices(train).batch(8192),
        tft_output,
        ModelConfig.from_dict({"epochs": 8}),
        str(out / "model"),
        catalog_dir=str(out / "examples" / "catalog"),
    )
    return str(out / "model"), train, held_out, metrics


def test_model_clearly_beats_popularity(trained):
    model_dir, train, held_out, _ = trained
    users, row_user = np.unique(held_out[F.USER_ID_XF], return_inverse=True)
    retrieve = tf.saved_model.load(model_dir).signatures["retrieve"]
    ranked = retrieve(user_id=tf.constant(users), k=tf.constant(100))["item_ids"].numpy()
    ks = (10, 100)
    ours = hit_rates(ranked, row_user, held_out[F.ITEM_ID_XF], ks)
    popular = popularity_ranking(train[F.ITEM_ID_XF], 100)[None, :]
    baseline = hit_rates(popular, np.zeros_like(row_user), held_out[F.ITEM_ID_XF], ks)
    # Measured: HR@100 0.52 vs 0.38; HR@10 only level with popularity (0.070 vs
    # 0.068), which is the model's known weak spot (see the quality benchmark).
    assert ours["hit_rate@100"] > 1.25 * baseline["hit_rate@100"], (ours, baseline)
    assert ours["hit_rate@10"] > 0.8 * baseline["hit_rate@10"], (ours, baseline)


def test_rating_head_beats_the_global_mean(trained):
    _, train, held_out, metrics = trained
    mean = train[F.RATING_XF].mean()
    global_rmse = float(np.sqrt(np.mean((held_out[F.RATING_XF] - mean) ** 2)))
    assert metrics["eval_rating_rmse"] < 0.95 * global_rmse
