"""recommend_from_items' popularity prior (ModelConfig.cold_popularity_weight), which
serves where the onboarding term (tests/test_onboarding.py) does not."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mtrec.models.config import ModelConfig, resolve_optimizer
from mtrec.models.serving_module import ServingModule
from mtrec.models.serving_tables import build_serving_tables
from mtrec.models.towers import VocabSizes
from mtrec.models.trainer import build_model
from tests.transform_support import as_dataset


def serving_tables(transformed):
    tft_output, train, _ = transformed
    sizes = VocabSizes.from_transform_output(tft_output)
    return build_serving_tables(as_dataset(train, 512), sizes)


def module_with(transformed, overrides: dict, cache_users: bool = False) -> ServingModule:
    """An untrained model is enough: the priors are serving-time terms."""
    tft_output, train, _ = transformed
    sizes = VocabSizes.from_transform_output(tft_output)
    config = resolve_optimizer(ModelConfig.from_dict({"embedding_dim": 16, **overrides}), sizes)
    tables = serving_tables(transformed)
    tf.keras.utils.set_random_seed(0)
    model = build_model(sizes, config, tft_output, tables)
    model(next(iter(as_dataset(train, 4))))  # builds the heads
    return ServingModule(model, tft_output, tables, cache_users=cache_users)


def _module(transformed, weight: float) -> ServingModule:
    """The popularity prior alone (it serves where the onboarding term does not)."""
    return module_with(transformed, {"cold_popularity_weight": weight, "onboarding_weight": 0.0})


def test_a_heavy_prior_serves_the_most_popular_items_not_given(transformed_synthetic):
    _, train, _ = transformed_synthetic
    counts: dict[bytes, int] = {}
    for row in train:
        item = row["item_id_raw"]
        counts[item] = counts.get(item, 0) + 1
    ranked = sorted(counts, key=lambda i: -counts[i])
    given = [ranked[0].decode(), ranked[3].decode()]  # the most popular item and another
    module = _module(transformed_synthetic, weight=1e4)
    out = module.recommend_from_items(item_ids=tf.constant([given]), k=tf.constant(5))
    got = out["item_ids"].numpy()[0].tolist()
    eligible = [i for i in ranked if i.decode() not in given]
    # Ties in count may come in any order: compare the counts, best first.
    assert [counts[i] for i in got] == [counts[i] for i in eligible[:5]]
    assert not {g.encode() for g in given} & set(got)


def test_weight_zero_leaves_the_answer_and_the_export_unchanged(transformed_synthetic):
    _, train, _ = transformed_synthetic
    given = sorted({r["item_id_raw"].decode() for r in train})[:3]
    off = _module(transformed_synthetic, weight=0.0)
    light = _module(transformed_synthetic, weight=1e-6)
    assert not hasattr(off, "log_popularity")
    request = {"item_ids": tf.constant([given]), "k": tf.constant(10)}
    a, b = off.recommend_from_items(**request), light.recommend_from_items(**request)
    assert a["item_ids"].numpy().tolist() == b["item_ids"].numpy().tolist()
    np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-4, atol=1e-4)
    # The prior is log P(item) in catalogue order: the logQ table of the model.
    probability = light.model.item_sampling_prob.numpy()
    np.testing.assert_allclose(light.log_popularity.numpy(),
                               np.log(probability[light.catalog_idx.numpy()]), rtol=1e-6)
