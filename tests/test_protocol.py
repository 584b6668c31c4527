"""The split protocol is read from the data, and the pipeline and benchmarks apply its settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtrec.contracts import features as F
from mtrec.contracts.pipeline import EVAL_SPLIT, TRAIN_SPLIT
from mtrec.data import clean
from mtrec.data.examples import recorded_split_protocol, write_examples
from mtrec.data.splits import (
    RANDOM_PROTOCOL,
    TIME_PROTOCOL,
    UNKNOWN_PROTOCOL,
    eval_mask,
    split_protocol,
    time_split,
)
from mtrec.data.synthetic import generate
from mtrec.data.tables import SPLIT
from mtrec.models.config import (
    ModelConfig,
    applied_protocol_settings,
    protocol_overrides,
    with_protocol_overrides,
)
from mtrec.summary import render, training_time


def _ratings(n_users: int = 40, per_user: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", f"i{rng.integers(100)}", 4.0, int(1_000 * u + t))
            for u in range(n_users) for t in rng.permutation(per_user)]
    return pd.DataFrame(rows, columns=[F.USER_ID, F.ITEM_ID, F.RATING, F.TIMESTAMP])


def test_a_per_user_time_split_is_time_and_a_random_one_is_random():
    ratings = _ratings()
    assert split_protocol(ratings, time_split(ratings, 0.2)) == TIME_PROTOCOL
    random_eval = np.random.default_rng(1).random(len(ratings)) < 0.2
    assert split_protocol(ratings, random_eval) == RANDOM_PROTOCOL


def test_the_rule_is_the_share_of_eval_ratings_after_the_users_latest_training_one():
    # One user, train at t=1,2,3; eval at t=4 (after) and t=0 (before): share 1/2 -> random.
    ratings = pd.DataFrame({F.USER_ID: ["u"] * 5, F.ITEM_ID: list("abcde"),
                            F.RATING: [4.0] * 5, F.TIMESTAMP: [1, 2, 3, 4, 0]})
    is_eval = np.array([False, False, False, True, True])
    assert split_protocol(ratings, is_eval) == RANDOM_PROTOCOL
    assert split_protocol(ratings, np.array([False, False, False, True, False])) == TIME_PROTOCOL
    # A tie with the latest training rating counts as "after" (the time split breaks ties by row).
    ratings.loc[3, F.TIMESTAMP] = 3
    assert split_protocol(ratings, np.array([False, False, False, True, False])) == TIME_PROTOCOL


def test_ratings_without_time_order_are_split_at_random_per_user():
    """No timestamps (0 for all) made "latest" mean file order: with a file sorted by item
    id, every user's eval ratings were their highest item ids. And the protocol was time
    (every eval rating ties with the latest training one)."""
    ratings = pd.DataFrame({F.USER_ID: np.repeat([f"u{u}" for u in range(200)], 10),
                            F.ITEM_ID: np.tile([f"i{i}" for i in range(10)], 200),
                            F.RATING: 4.0, F.TIMESTAMP: 0})
    is_eval, rule = eval_mask(ratings, 0.2)
    assert rule.startswith("per-user random, 0.2 to eval: the ratings have no time order")
    per_user = is_eval.reshape(200, 10)
    assert (per_user.sum(axis=1) == 2).all()  # the time split's counts
    last_two = per_user[:, 8:].all(axis=1).mean()  # 1.0 in file order; 1/45 at random
    assert last_two < 0.1 and per_user.mean(axis=0).min() > 0.1  # every position drawn
    assert (eval_mask(ratings, 0.2)[0] == is_eval).all()  # seeded
    assert split_protocol(ratings, is_eval) == RANDOM_PROTOCOL
    timed = ratings.assign(**{F.TIMESTAMP: np.tile(np.arange(10), 200)})
    assert eval_mask(timed, 0.2)[1] == "per-user time, latest 0.2 to eval"
    assert per_user.sum() == eval_mask(timed, 0.2)[0].sum()


def test_protocol_settings_and_the_users_own_config_wins():
    assert protocol_overrides(RANDOM_PROTOCOL) == {"history_dropout": 1.0}
    # Light users (models/light_users.py) are served from their items on time splits only.
    assert protocol_overrides(TIME_PROTOCOL) == {"light_user_items": 5}
    assert protocol_overrides(None) == {}
    ModelConfig.from_dict(protocol_overrides(RANDOM_PROTOCOL))  # valid keys
    assert with_protocol_overrides(RANDOM_PROTOCOL, None) == {"history_dropout": 1.0}
    assert with_protocol_overrides(RANDOM_PROTOCOL, {"history_dropout": 0.5, "epochs": 3}) == {
        "history_dropout": 0.5, "epochs": 3}
    assert with_protocol_overrides(TIME_PROTOCOL, {"epochs": 2}) == {"epochs": 2,
                                                                     "light_user_items": 5}
    assert ModelConfig.from_dict(protocol_overrides(TIME_PROTOCOL)).light_user_items == 5
    assert ModelConfig().light_user_items == 0  # off where the protocol is not known
    assert with_protocol_overrides(UNKNOWN_PROTOCOL, {}) == {}


@pytest.mark.parametrize("split", ["u1", None])
def test_write_examples_reports_the_protocol(tmp_path, split):
    dataset = clean(generate(n_users=30, n_items=40, n_ratings=600, seed=2)).dataset
    if split:  # an official split column drawn at random, like ML-100K's u1..u5
        draw = np.random.default_rng(0).random(len(dataset.ratings)) < 0.2
        ratings = dataset.ratings.assign(**{SPLIT: np.where(draw, EVAL_SPLIT, TRAIN_SPLIT)})
        dataset = type(dataset)(dataset.name, ratings, dataset.users, dataset.items,
                                dataset.malformed)
    report = write_examples(dataset, tmp_path / "examples")
    assert report["split_protocol"] == (RANDOM_PROTOCOL if split else TIME_PROTOCOL)
    # What the pipeline's ExampleGen reads back at run time (components/example_gen).
    assert recorded_split_protocol(str(tmp_path / "examples")) == report["split_protocol"]
    assert recorded_split_protocol(str(tmp_path)) == UNKNOWN_PROTOCOL  # no report there


def test_the_run_summary_says_which_protocol_the_trainer_applied():
    training = {"train_examples": 80, "epochs": 2, "train_seconds": 1.5, "catalog_size": 9}

    def line(**recorded) -> str:
        text = render({"components": {}, "pushed_to": None,
                       "training": {**training, **recorded}})
        (found,) = [x for x in text.splitlines() if x.startswith("training:")]
        return found

    assert line(split_protocol=RANDOM_PROTOCOL,
                protocol_overrides=protocol_overrides(RANDOM_PROTOCOL)).endswith(
        ", split protocol random (history_dropout 1.0)")
    assert line(split_protocol=TIME_PROTOCOL, protocol_overrides={}).endswith(
        ", split protocol time")
    assert "--no-cache" in line(split_protocol=None, protocol_overrides={})
    assert line().endswith("catalogue 9 items")  # a model_run from before it was recorded


def test_the_recorded_protocol_settings_are_the_trained_ones():
    """A user's --model-config light_user_items 0 trains 0: the summary said 5."""
    trained = ModelConfig.from_dict(with_protocol_overrides(TIME_PROTOCOL,
                                                            {"light_user_items": 0}))
    assert applied_protocol_settings(TIME_PROTOCOL, trained) == {"light_user_items": 0}
    default = ModelConfig.from_dict(with_protocol_overrides(TIME_PROTOCOL, None))
    assert applied_protocol_settings(TIME_PROTOCOL, default) == {"light_user_items": 5}
    assert applied_protocol_settings(UNKNOWN_PROTOCOL, default) == {}


def test_the_run_summary_tells_fit_time_from_the_rest_of_the_trainer():
    """The epoch lines add up to the fit; scan, build, evaluation and export are named
    apart (one "338s" was read as the fit and disagreed with both)."""
    training = {"train_examples": 80, "epochs": 2, "train_seconds": 4.0, "catalog_size": 9,
                "phase_seconds": {"scan": 1.0, "build": 0.5, "fit": 2.5, "evaluate": 0.25,
                                  "export": 2.0}}
    assert training_time(training) == "fit 2.5s + 3.8s scan, build, evaluate, export"
    assert "2 epochs, fit 2.5s + 3.8s scan" in render(
        {"components": {}, "pushed_to": None, "training": training})
    assert training_time({"train_seconds": 1.5}) == "1.5s"  # phases not recorded
