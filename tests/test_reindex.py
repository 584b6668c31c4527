"""New items join the served catalogue without retraining (models/reindex.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts.artifacts import WEIGHTS_CONFIG_FILE
from mtrec.data import generate
from mtrec.data.examples import write_examples
from mtrec.models.config import ModelConfig
from mtrec.models.reindex import reindex
from mtrec.models.trainer import train_and_export
from mtrec.models.weights_file import load_config
from mtrec.serving.model_manager import WARMUP_FILE
from tests.transform_support import as_dataset, transform_examples

NEW = pd.DataFrame({
    "item_id": ["new-1", "new-2"],
    "title": ["Space Heist", "Quiet Village Love"],
    "genres": ["Sci-Fi|Action", "Romance"],
    "description": ["a crew robs a station", "two neighbours fall in love"],
    "year": [2030, 2031],
})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The trained model's export ("old") and its re-indexed one ("new") under one folder."""
    out = tmp_path_factory.mktemp("reindex")
    write_examples(generate(n_users=60, n_items=60, n_ratings=1500, seed=5), out / "examples")
    tft_output, columns = transform_examples(str(out / "examples"), str(out / "xf"))
    catalog = str(out / "examples" / "catalog")
    train_and_export(
        as_dataset(columns["train"], 256), as_dataset(columns["eval"], 1024),
        as_dataset(columns["train"], 1024), tft_output,
        ModelConfig.from_dict({"epochs": 1, "embedding_dim": 16}), str(out / "old"),
        catalog_dir=catalog, weights_dir=str(out / "weights"),
    )
    size = reindex(
        weights_dir=str(out / "weights"), tft_output=tft_output,
        scan_ds=as_dataset(columns["train"], 1024), catalog_dir=catalog, new_items=NEW,
        out_catalog_dir=str(out / "catalog2"), export_dir=str(out / "new"),
    )
    users = np.unique(columns["train"][F.USER_ID_XF])[:5].astype(str).tolist()
    return out, size, users


@pytest.fixture(scope="module")
def models(exported):
    out, size, users = exported
    return tf.saved_model.load(str(out / "old")), tf.saved_model.load(str(out / "new")), size, users


def test_the_reindexed_export_has_the_trained_exports_warmup_requests(exported):
    """`mtrec add-items`' version was pushed without them: TF Serving and `mtrec serve`
    then answered its first request of each signature cold."""
    out, _, _ = exported
    for export in ("old", "new"):
        assert (out / export / WARMUP_FILE).is_file(), export


def test_catalogue_grows_and_users_are_unchanged(models):
    old, new, size, users = models
    assert size == 62
    u = tf.constant(users)
    np.testing.assert_allclose(old.signatures["embed_user"](user_id=u)["embedding"],
                               new.signatures["embed_user"](user_id=u)["embedding"], atol=1e-6)
    every = new.signatures["retrieve"](user_id=u, k=tf.constant(62))["item_ids"].numpy()
    assert {b"new-1", b"new-2"} <= set(every[0].tolist())
    with pytest.raises(tf.errors.InvalidArgumentError):
        old.signatures["retrieve"](user_id=u, k=tf.constant(62))
    # The re-rank heads hold the trained weights: the same pair answers as the old
    # model, and recommend's ratings (split first layer, models/pair_split.py) are
    # score's for the same items.
    rec = new.signatures["recommend"](user_id=u, k=tf.constant(5))
    items = rec["item_ids"]
    old_items = tf.where(tf.strings.regex_full_match(items, "new-.*"), b"never-added", items)
    for key in ("relevance", "ratings"):
        np.testing.assert_allclose(old.signatures["score"](user_id=u, item_ids=old_items)[key],
                                   new.signatures["score"](user_id=u, item_ids=old_items)[key],
                                   atol=1e-5, err_msg=key)
    np.testing.assert_allclose(rec["ratings"],
                               new.signatures["score"](user_id=u, item_ids=items)["ratings"],
                               atol=1e-4)


def test_added_item_is_indexed_like_a_cold_item(models):
    _, new, _, _ = models
    indexed = new.signatures["embed_item"](item_id=tf.constant(["new-1"]))["embedding"]
    cold = new.signatures["embed_new_item"](
        item_id=tf.constant(["new-1"]), title=tf.constant(["Space Heist"]),
        genres=tf.constant([["Sci-Fi", "Action"]]),
        description=tf.constant(["a crew robs a station"]),
        year=tf.constant([2030], tf.int64), text_embedding=tf.zeros([1, 0]),
        description_embedding=tf.zeros([1, 0]),
    )["embedding"]
    np.testing.assert_allclose(indexed, cold, atol=1e-5)
    unknown = new.signatures["embed_item"](item_id=tf.constant(["never-added"]))["embedding"]
    assert not np.allclose(indexed, unknown)


def test_years_past_training_do_not_extrapolate_the_tower(models):
    """New items' years are z-scored with the training items' mean and spread; the
    synthetic items end at 2014, so 2030 (new-1) lies past every trained year: it is
    served like the newest trained year, not on the tower's linear extrapolation
    (an added 2024 film ranked 6,288th of 9,745 on ml-latest-small, 4,478th as 2018)."""
    _, new, _, _ = models

    def embedded(year: int):
        return new.signatures["embed_new_item"](
            item_id=tf.constant(["new-1"]), title=tf.constant(["Space Heist"]),
            genres=tf.constant([["Sci-Fi", "Action"]]),
            description=tf.constant(["a crew robs a station"]),
            year=tf.constant([year], tf.int64), text_embedding=tf.zeros([1, 0]),
            description_embedding=tf.zeros([1, 0]),
        )["embedding"].numpy()

    np.testing.assert_allclose(embedded(2030), embedded(2500), atol=1e-6)
    np.testing.assert_allclose(embedded(2030), embedded(2015), atol=1e-6)
    indexed = new.signatures["embed_item"](item_id=tf.constant(["new-1"]))["embedding"]
    np.testing.assert_allclose(indexed, embedded(2500), atol=1e-5)
    assert not np.allclose(embedded(2030), embedded(1990), atol=1e-3)  # in range: the year counts
    assert not np.allclose(embedded(2030), embedded(0), atol=1e-3)  # unknown stays unknown


def test_weights_from_before_the_relevance_rename_are_refused(tmp_path):
    """Their head sits under its old checkpoint name: restoring would silently skip it."""
    (tmp_path / WEIGHTS_CONFIG_FILE).write_text(
        '{"tasks": ["retrieval", "ranking"], "loss_weights": [["ranking", 0.5]], "blend": []}'
    )
    with pytest.raises(ValueError, match="run `mtrec run` again"):
        load_config(str(tmp_path))
