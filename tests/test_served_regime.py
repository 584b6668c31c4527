"""What the export chose by its size rules, recorded for the run summary's `serving:`
line (models/export.served_regime): a run on 14,993 items lost the item-kNN blend
without a word, and one past item_item.MAX_ITEMS its item-item term."""

from __future__ import annotations

from mtrec.contracts import artifacts as A
from mtrec.models.export import served_regime
from mtrec.summary import render, served_regime_line
from tests.test_cold_popularity import module_with


def test_the_default_export_on_a_small_catalogue(transformed_synthetic):
    regime = served_regime(module_with(transformed_synthetic, {}))
    assert regime == {A.SERVED_FIRST_STAGE: "exact", A.SERVED_ITEM_ITEM: "dense",
                      A.SERVED_RATING_KNN: True, A.SERVED_NEW_USER_PRIOR: "onboarding",
                      A.SERVED_CACHED_USERS: 0}


def test_each_choice_is_read_from_what_the_export_built(transformed_synthetic):
    module = module_with(transformed_synthetic, {
        "item_item_weight": 0.0, "cold_item_term_weight": 0.0, "ivf_min_items": 1,
        "rating_knn_weight": 0.0, "onboarding_weight": 0.0, "cold_popularity_weight": 1.0})
    assert served_regime(module) == {
        A.SERVED_FIRST_STAGE: "ivf", A.SERVED_ITEM_ITEM: "off", A.SERVED_RATING_KNN: False,
        A.SERVED_NEW_USER_PRIOR: "popularity", A.SERVED_CACHED_USERS: 0}
    cached = module_with(transformed_synthetic, {"item_item_weight": 0.0,
                                                 "cold_item_term_weight": 0.04}, cache_users=True)
    regime = served_regime(cached)
    assert regime[A.SERVED_ITEM_ITEM] == "cold_only"
    assert regime[A.SERVED_CACHED_USERS] == cached.answers.last_row > 0


def test_the_summary_says_it_in_words():
    regime = {A.SERVED_FIRST_STAGE: "exact", A.SERVED_ITEM_ITEM: "top_k",
              A.SERVED_RATING_KNN: False, A.SERVED_NEW_USER_PRIOR: "popularity",
              A.SERVED_CACHED_USERS: 1234}
    assert served_regime_line(regime) == (
        "exact first stage, top-K item-item term, ratings from the rating head alone, "
        "new users' prior: popularity, answers cached for 1,234 users")
    training = {"train_examples": 8, "epochs": 1, "train_seconds": 1.0, "catalog_size": 9}
    text = render({"components": {}, "pushed_to": None,
                   "training": {**training, A.SERVED_REGIME: regime}})
    assert "\nserving: exact first stage, top-K item-item term" in text
    assert "serving:" not in render({"components": {}, "pushed_to": None,
                                     "training": training})  # a model from before it
