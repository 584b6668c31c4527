"""cold_users.py: which users are held out, and what each request is given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf

import tests.transform_support  # noqa: F401  (puts benchmarks/ on sys.path)

# isort: split
from cold_users import held_out, markdown, retrained_metrics, split_users

from mtrec.contracts import features as F


def _ratings(users: int = 20, per_user: int = 8) -> pd.DataFrame:
    rows = [(f"u{u}", f"i{(u + t) % 11}", 4.0, 1000 - t) for u in range(users)
            for t in range(per_user)]  # later rows have earlier timestamps
    return pd.DataFrame(rows, columns=[F.USER_ID, F.ITEM_ID, F.RATING, F.TIMESTAMP])


def test_the_first_items_by_time_are_given_and_the_rest_scored():
    ratings = _ratings()
    warm, given, rest = split_users(ratings, given=3)
    assert given[F.USER_ID].nunique() == 2  # 10% of 20 users
    assert not set(warm[F.USER_ID]) & set(given[F.USER_ID])
    for _, rows in given.groupby(F.USER_ID):
        assert sorted(rows[F.TIMESTAMP]) == [993, 994, 995]  # the 3 earliest of 993..1000
    assert len(given) + len(rest) + len(warm) == len(ratings)
    assert rest.groupby(F.USER_ID).size().tolist() == [5, 5]


def test_every_count_given_serves_the_same_users():
    ratings = _ratings()
    _, five, _ = split_users(ratings, given=5)
    _, two, rest = split_users(ratings, given=2)
    assert set(five[F.USER_ID]) == set(two[F.USER_ID]) == set(rest[F.USER_ID])


def test_validation_holds_out_other_users_and_never_reads_the_test_ones():
    ratings = _ratings(users=40)
    _, test_given, _ = held_out(ratings, validation=False)
    warm, given, rest = held_out(ratings, validation=True)
    test_users = set(test_given[F.USER_ID])
    assert not test_users & (set(warm[F.USER_ID]) | set(given[F.USER_ID])
                             | set(rest[F.USER_ID]))
    assert given[F.USER_ID].nunique() == 3  # 10% of the 36 remaining users


def test_the_curve_lists_each_count_with_its_ratio():
    metrics = {"ndcg@10": 0.5, "precision@10": 0.4, "recall@10": 0.1}
    payload = {"dataset": "d", "held_out_users": 2, "given": 5, "train_users": 18,
               "train_seconds": 1.0, "results": {"ours": metrics, "popularity": metrics},
               "ndcg_vs_popularity": 1.0, "target": 1.5, "met": False,
               "by_given": {"20": {"users": 2, "results": {"ours": metrics, "popularity":
                                                           {**metrics, "ndcg@10": 0.25}},
                                   "ratio": 2.0}}}
    text = markdown(payload)
    assert "missed by 0.50x" in text
    assert "| 20 | 2 | 0.500 | 0.250 | 2.00x |" in text


def test_the_curve_header_names_its_own_columns_beside_a_headline_only_row():
    metrics = {"ndcg@10": 0.5, "precision@10": 0.4, "recall@10": 0.1}
    payload = {"dataset": "d", "held_out_users": 2, "given": 5, "train_users": 18,
               "train_seconds": 1.0, "ndcg_vs_popularity": 1.0, "target": 1.5, "met": False,
               "results": {"ours": metrics, "popularity": metrics, "retrained": metrics},
               "by_given": {"20": {"users": 2, "ratio": 1.0,
                                   "results": {"ours": metrics, "popularity": metrics}}}}
    lines = markdown(payload).splitlines()
    header = next(line for line in lines if line.startswith("| items given"))
    assert header == "| items given | users | ours | popularity | ours / popularity |"
    assert "| retrained | 0.500 | 0.400 | 0.100 |" in lines


def test_a_retrained_list_drops_the_given_items_before_its_top_10():
    warm = pd.DataFrame({F.USER_ID: ["w"] * 12, F.ITEM_ID: [f"i{n}" for n in range(12)],
                         F.RATING: 4.0, F.TIMESTAMP: range(12)})
    given = pd.DataFrame({F.USER_ID: ["c"] * 5, F.ITEM_ID: [f"i{n}" for n in range(5)],
                          F.RATING: 4.0, F.TIMESTAMP: range(5)})
    rest = pd.DataFrame({F.USER_ID: ["c"] * 2, F.ITEM_ID: ["i5", "i14"], F.RATING: 4.0,
                         F.TIMESTAMP: [5, 6]})
    asked = {}

    def recommend(user_id: tf.Tensor, k: tf.Tensor) -> dict:
        asked["k"] = int(k)
        # The given items i0..i4 lead the list; i5 and i14 (held out) follow at 1 and 10.
        order = ["i0", "i5", "i1", "i2", "i3", "i4", "i6", "i7", "i8", "i9", "i14", "i10",
                 "i11", "i12", "i13"]
        return {"item_ids": tf.constant([[i.encode() for i in order]] * len(user_id))}

    metrics = retrained_metrics(recommend, given, rest, warm)
    assert asked["k"] == 15  # 10 + the 5 given, so 10 remain after dropping them
    # After the drop: i5 i6 i7 i8 i9 i14 ...: hits at ranks 1 and 6 of 2 relevant.
    assert metrics["precision@10"] == 0.2
    assert metrics["recall@10"] == 1.0
    ideal = 1 + 1 / np.log2(3)
    assert np.isclose(metrics["ndcg@10"], (1 + 1 / np.log2(7)) / ideal)
