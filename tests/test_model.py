"""The multi-task TFRS model: a few-row fit per configuration, metric keys, config errors."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import tensorflow as tf

from mtrec.models.config import ModelConfig, resolve_optimizer, without_interest
from mtrec.models.model import MultiTaskModel
from mtrec.models.serving_tables import build_serving_tables, item_sampling_probability
from mtrec.models.towers import VocabSizes
from tests.transform_support import as_dataset

TASK_METRICS = {
    "relevance": "relevance_auc",
    "rating": "rating_rmse",
    "interest": "interest_auc",
}


def _fit(transformed, epochs=2, **overrides):
    tft_output, train, eval_rows = transformed
    sizes = VocabSizes.from_transform_output(tft_output)
    config = resolve_optimizer(
        ModelConfig.from_dict({"batch_size": 256, "embedding_dim": 16, **overrides}), sizes)
    tables = build_serving_tables(as_dataset(train, 512), sizes)
    model = MultiTaskModel(sizes, config, item_sampling_probability(tft_output, sizes),
                           tables.rating_mean, rated=(tables.rated_splits, tables.rated_idx))
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    history = model.fit(as_dataset(train, 256), epochs=epochs, verbose=0)
    return model, history, model.evaluate(as_dataset(eval_rows, 512), return_dict=True, verbose=0)


def test_joint_model_trains_every_task_and_reports_its_metrics(transformed_synthetic):
    _, history, metrics = _fit(transformed_synthetic, epochs=3)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    for name in ["loss", *TASK_METRICS.values(), "rating_mae"]:
        assert name in metrics and math.isfinite(metrics[name]), name
    assert 0.0 < metrics["rating_rmse"] < 2.0


@pytest.mark.parametrize("task", ["retrieval", "rating"])
def test_single_task_models_train_only_their_task(transformed_synthetic, task):
    model, history, metrics = _fit(transformed_synthetic, epochs=1, tasks=[task])
    assert math.isfinite(history.history["loss"][-1])
    task_losses = {k for k in history.history if k.endswith("_loss") and not k.startswith(
        "val_")} - {"regularization_loss", "total_loss"}
    assert task_losses == {f"{task}_loss"}
    assert (model.pair_heads is None) == (task not in ("relevance", "rating"))
    if task == "rating":
        assert metrics["rating_rmse"] > 0
    else:  # no pair head was asked for, so its metric never updated
        assert metrics["rating_rmse"] == 0


def test_mmoe_and_uncertainty_weighting_train(transformed_synthetic):
    model, history, metrics = _fit(
        transformed_synthetic, epochs=1, mixture="mmoe", uncertainty_weighting=True
    )
    assert math.isfinite(history.history["loss"][-1])
    assert model.pair_heads.mmoe is not None  # the mixture asked for, not shared_bottom
    log_vars = [v.numpy() for v in model.balancer.log_vars.values()]
    assert any(abs(v) > 0 for v in log_vars)  # the task weights were learned


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_retrieval_similarity_options_train(transformed_synthetic, similarity):
    model, history, _ = _fit(
        transformed_synthetic, epochs=2, similarity=similarity, lr_schedule="cosine"
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    vectors = model.retrieval_vector(tf.constant([[3.0, 4.0]])).numpy()
    expected = [[3.0, 4.0]] if similarity == "dot" else [[0.6, 0.8]]
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)


def test_history_dropout_blanks_training_history_only(transformed_synthetic):
    tft_output, train, _ = transformed_synthetic
    sizes = VocabSizes.from_transform_output(tft_output)
    config = ModelConfig.from_dict({"history_dropout": 1.0, "id_dropout": 0.0,
                                    "rated_items": False, "optimizer": "adam"})
    model = MultiTaskModel(sizes, config, np.ones(sizes.items, np.float32), 3.5)
    batch = next(iter(as_dataset(train, 64)))
    assert batch["history_idx"].numpy().any()
    dropped = model._drop_ids(batch, training=True)
    assert not dropped["history_idx"].numpy().any()
    np.testing.assert_array_equal(dropped["user_idx"], batch["user_idx"])
    kept = model._drop_ids(batch, training=False)
    np.testing.assert_array_equal(kept["history_idx"], batch["history_idx"])
    # Never trained on history, so the served query tower does not read it either.
    assert model.query_tower.history_embedding is None


def test_without_interest_keeps_the_tasks_a_user_named():
    assert without_interest({"epochs": 2}) == {
        "epochs": 2, "tasks": ["retrieval", "relevance", "rating"]}
    assert without_interest({"tasks": ["rating", "interest"]}) == {
        "tasks": ["rating", "interest"]}


@pytest.mark.parametrize(("overrides", "says"), [
    ({"dropout": 1.5}, "'dropout' must be in [0, 1), got 1.5"),
    ({"id_dropout": 2}, "'id_dropout' must be in [0, 1], got 2"),
    ({"history_dropout": -1}, "'history_dropout' must be in [0, 1], got -1"),
    ({"rated_dropout": 3}, "'rated_dropout' must be in [0, 1], got 3"),
    ({"temperature": 0}, "'temperature' must be > 0, got 0"),
    ({"l2": -1}, "'l2' must be >= 0, got -1"),
    ({"ivf_nprobe": 0}, "'ivf_nprobe' must be >= 1, got 0"),
    ({"epochs": 0}, "'epochs' must be >= 1, got 0"),
    ({"loss_weights": [["rating", -1.0]]}, "'loss_weights' weights must be >= 0, got "
     "[('rating', -1.0)]"),
    ({"similarity": "l2"}, "'similarity' must be one of ('cosine', 'dot'), got 'l2'"),
])
def test_out_of_range_settings_name_their_key(overrides, says):
    """They failed a minute into training in Keras' words (dropout 1.5: "Invalid value
    1.5 received for `rate`"), or trained to nothing (temperature 0), or not at all."""
    with pytest.raises(ValueError) as err:
        ModelConfig.from_dict(overrides)
    assert str(err.value) == f"model config {says}"
    assert ModelConfig.from_dict({"history_dropout": 1.0}).history_dropout == 1.0  # bounds


def test_config_validation():
    with pytest.raises(ValueError, match=r"unknown model config keys: \['embeding_dim'\] \(did "
                       r"you mean 'embedding_dim'\?\); known: \['answer_cache_max_entries', "):
        ModelConfig.from_dict({"embeding_dim": 8})
    with pytest.raises(ValueError, match=r"keys: \['zzz'\]; known: "):  # nothing near
        ModelConfig.from_dict({"zzz": 8})
    with pytest.raises(ValueError, match="tasks must be"):
        ModelConfig.from_dict({"tasks": ["retrieval", "clicks"]})
    with pytest.raises(ValueError, match="mixture"):
        from mtrec.models.heads import PairHeads

        PairHeads("moe")
    with pytest.raises(ValueError, match="similarity"):
        ModelConfig.from_dict({"similarity": "euclidean"})
    with pytest.raises(ValueError, match="optimizer"):
        ModelConfig.from_dict({"optimizer": "sgd"})
    with pytest.raises(ValueError, match="lr_schedule"):
        ModelConfig.from_dict({"lr_schedule": "step"})
    config = ModelConfig.from_dict({"loss_weights": {"rating": 2.0}})
    assert config.weight("rating") == 2.0 and config.weight("retrieval") == 1.0


@pytest.mark.parametrize("values, says", [
    ({"embedding_dim": "abc"}, "'embedding_dim' must be a whole number, got 'abc'"),
    ({"epochs": 2.5}, "'epochs' must be a whole number, got 2.5"),
    ({"tasks": 5}, "'tasks' must be a list of task names, got 5"),
    ({"loss_weights": "x"}, "'loss_weights' must be an object of weights"),
    ({"blend": {"rating": "high"}}, "'blend' must be an object of weights"),
    ({"learning_rate": True}, "'learning_rate' must be a number, got True"),
    ({"similarity": 1}, "'similarity' must be a string, got 1"),
])
def test_a_value_of_the_wrong_type_names_its_key(values: dict, says: str) -> None:
    """They raised a TypeError (`'<' not supported ...`) or unpacking errors from deep
    inside from_dict: a traceback on `mtrec run --model-config`."""
    with pytest.raises(ValueError, match=re.escape(f"model config {says}")):
        ModelConfig.from_dict(values)


def test_values_as_json_writes_them_are_read() -> None:
    config = ModelConfig.from_dict({"epochs": 3.0, "learning_rate": 1, "tasks": ["rating"],
                                    "blend": [["rating", 1]]})
    assert (config.epochs, config.learning_rate, config.tasks) == (3, 1, ("rating",))
    assert isinstance(config.epochs, int) and config.blend == (("rating", 1),)


def test_old_task_name_ranking_still_works_with_a_warning():
    """Configs written before the rename (BUILD.md changelog) keep their meaning."""
    with pytest.warns(FutureWarning, match="now called 'relevance'"):
        config = ModelConfig.from_dict(
            {"tasks": ["retrieval", "ranking"], "loss_weights": {"ranking": 0.3, "rating": 2.0}}
        )
    assert config.tasks == ("retrieval", "relevance")
    assert config.weight("relevance") == 0.3 and config.weight("rating") == 2.0
    assert dict(ModelConfig().loss_weights)["relevance"] == 0.5


def test_auto_optimizer_goes_lazy_once_an_id_table_is_large():
    """Adam's step cost grows with the tables (optimizer_step.md); "auto" caps it."""
    import dataclasses

    from mtrec.models.config import LAZY_ADAM_MIN_ROWS
    from mtrec.models.optimizer import LazyAdam
    from mtrec.models.trainer import make_optimizer

    small = VocabSizes(100, 200, 3, 22, 50, known_users=91, known_items=191)
    large = dataclasses.replace(small, items=LAZY_ADAM_MIN_ROWS)
    auto = ModelConfig()
    assert auto.optimizer == "auto"
    assert resolve_optimizer(auto, small).optimizer == "adam"
    assert resolve_optimizer(auto, large).optimizer == "lazy_adam"
    pinned = ModelConfig.from_dict({"optimizer": "adam"})
    assert resolve_optimizer(pinned, large).optimizer == "adam"

    config = ModelConfig(embedding_dim=8, rated_items=False)
    with pytest.raises(ValueError, match="resolve"):  # one resolved config, not two
        MultiTaskModel(large, config, np.ones(large.items, np.float32), 3.5)
    model = MultiTaskModel(large, resolve_optimizer(config, large),
                           np.ones(large.items, np.float32), 3.5)
    assert model.config.optimizer == "lazy_adam"
    item_table = model.candidate_tower.item_embedding  # l2 on looked-up rows only
    assert item_table.activity_regularizer and not item_table.embeddings_regularizer
    assert isinstance(make_optimizer(model.config, 1000), LazyAdam)
    with pytest.raises(ValueError, match="resolved"):
        make_optimizer(auto, 1000)


def test_serving_tables_hold_latest_history_and_seen_items(transformed_synthetic):
    tft_output, train, _ = transformed_synthetic
    sizes = VocabSizes.from_transform_output(tft_output)
    tables = build_serving_tables(as_dataset(train, 97), sizes)  # odd batch: cross-batch merge
    user = train[0]["user_idx"]
    rows = [r for r in train if r["user_idx"] == user]
    latest = max(rows, key=lambda r: r["timestamp_raw"])
    assert tables.profiles["history_idx"][user][0] == latest["item_idx"]
    seen = tables.seen_positions[tables.seen_splits[user] : tables.seen_splits[user + 1]]
    seen_ids = {tables.item_ids[p] for p in seen}
    assert seen_ids == {r["item_id_raw"] for r in rows}
    assert np.isclose(tables.rating_mean, np.mean([r["rating_label"] for r in train]))
    ratings = [r["rating_label"] for r in train]
    assert tables.rating_range == (min(ratings), max(ratings))
    # The session Gram's times: per rated pair, the latest time the user rated it.
    rated = tables.rated_idx[tables.rated_splits[user] : tables.rated_splits[user + 1]]
    times = tables.rated_times[tables.rated_splits[user] : tables.rated_splits[user + 1]]
    for item, when in zip(rated.tolist(), times.tolist(), strict=True):
        assert when == max(r["timestamp_raw"] for r in rows if r["item_idx"] == item)


def test_distribution_strategies_from_custom_config():
    from mtrec.models.trainer import distribution_strategy

    assert isinstance(distribution_strategy("mirrored"), tf.distribute.MirroredStrategy)
    assert distribution_strategy(None) is tf.distribute.get_strategy()
    with pytest.raises(ValueError, match="unknown distribution"):
        distribution_strategy("tpu_magic")


def test_a_training_step_moves_only_the_embedding_rows_its_batch_touches(transformed_synthetic):
    """With lazy_adam, per-step cost follows the batch, not the tables (scale.md: Trainer)."""
    from mtrec.models.trainer import make_optimizer

    tft_output, train, _ = transformed_synthetic
    sizes = VocabSizes.from_transform_output(tft_output)
    config = ModelConfig.from_dict(
        {"embedding_dim": 8, "id_dropout": 0.0, "history_dropout": 0.0, "optimizer": "lazy_adam",
         "rated_items": False}
    )
    model = MultiTaskModel(sizes, config, item_sampling_probability(tft_output, sizes), 3.5)
    model.compile(optimizer=make_optimizer(config, len(train)))
    first, batch = iter(as_dataset(train[:32], 16))
    # The first step builds every variable and gives the first batch's rows momentum.
    model.fit(tf.data.Dataset.from_tensors(first), verbose=0)
    tables = {
        "user": (model.query_tower.user_embedding.embeddings, "user_idx"),
        "item": (model.candidate_tower.item_embedding.embeddings, "item_idx"),
        "history": (model.query_tower.history_embedding.embeddings, "history_idx"),
    }
    before = {name: var.numpy().copy() for name, (var, _) in tables.items()}
    model.fit(tf.data.Dataset.from_tensors(batch), verbose=0)
    for name, (var, key) in tables.items():
        touched = np.unique(batch[key].numpy())
        with_momentum = np.setdiff1d(np.unique(first[key].numpy()), touched)
        assert len(with_momentum) > 0, name
        untouched = np.setdiff1d(np.arange(var.shape[0]), touched)
        np.testing.assert_array_equal(var.numpy()[untouched], before[name][untouched], name)
        assert not np.allclose(var.numpy()[touched], before[name][touched]), name


def test_per_task_losses_are_logged_and_add_up_to_the_loss(transformed_synthetic):
    # One evaluation batch: each `<task>_loss` Mean holds that batch's task
    # loss, and the model's loss is their weighted sum (no uncertainty weighting).
    model, history, _ = _fit(transformed_synthetic, epochs=1)
    tasks = model.config.tasks
    assert {f"{t}_loss" for t in tasks} <= set(history.history)
    eval_rows = transformed_synthetic[2]
    metrics = model.evaluate(as_dataset(eval_rows, 1_000_000), return_dict=True, verbose=0)
    weighted = sum(model.config.weight(t) * metrics[f"{t}_loss"] for t in tasks)
    assert weighted == pytest.approx(metrics["loss"], rel=1e-5)
    assert all(metrics[f"{t}_loss"] > 0 for t in tasks)
    # Over many batches too: `loss` is the epoch mean, as the tasks' are (TFRS logged
    # the last batch's).
    for logs in (history.history, model.evaluate(as_dataset(eval_rows, 64), return_dict=True,
                                                 verbose=0)):
        last = {k: v[-1] if isinstance(v, list) else v for k, v in logs.items()}
        weighted = sum(model.config.weight(t) * last[f"{t}_loss"] for t in tasks)
        assert weighted == pytest.approx(last["loss"], rel=1e-4)
        assert last["total_loss"] == pytest.approx(last["loss"] + last["regularization_loss"],
                                                   rel=1e-4)
        assert not any(k.startswith("mean_") for k in logs)


def test_model_and_towers_record_their_architecture_not_an_empty_config(
        transformed_synthetic, caplog, tmp_path):
    """tf-keras records each Model's get_config in the SavedModel's Keras metadata; the
    default logged "non-serializable objects ... empty config" twice per model."""
    model, _, _ = _fit(transformed_synthetic, epochs=1)
    with caplog.at_level("WARNING"):
        tf.saved_model.save(model, str(tmp_path / "saved"))
    assert not [r for r in caplog.records if "non-serializable" in r.getMessage()]
    config = json.loads(json.dumps(model.get_config()))
    assert config["config"]["embedding_dim"] == 16 and config["rated"] is True
    assert config["sizes"]["items"] == model.sizes.items
    for tower in (model.query_tower, model.candidate_tower):
        tower_config = json.loads(json.dumps(tower.get_config()))
        assert tower_config["dim"] == 16 and tower_config["name"] == tower.name
    assert model.candidate_tower.get_config()["text_table_shape"] is None
