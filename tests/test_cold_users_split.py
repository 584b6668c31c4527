"""cold_users.py: which users are held out, and what each request is given."""

from __future__ import annotations

import pandas as pd

import tests.transform_support  # noqa: F401  (puts benchmarks/ on sys.path)

# isort: split
from cold_users import held_out, markdown, split_users

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
