"""text_encoder_metrics: drawn cold items, warm items and arrived items, counted by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import tests.transform_support  # noqa: F401  (puts benchmarks/ on sys.path)

# isort: split
import tensorflow as tf
from text_encoder_metrics import arrived_rows, baselines, cold_metrics

# Catalogue a b c d (and 200 fillers rated once, so popularity has a top 100 beyond
# any user's seen items). Training ratings: a a b (c was drawn cold: its ratings are
# gone; d has none: it arrived after the split). Held out: u1 rates c; u2 rates d, b.
TRUTH = SimpleNamespace(
    users=np.array([b"u1", b"u2"]),
    catalog=np.array([b"a", b"b", b"c", b"d"]),
    train_items=np.array([b"a", b"a", b"b"] + [b"x%d" % i for i in range(200)]),
    seen=[np.array([0]), np.array([0, 1])],  # u1 rated a, u2 rated a and b
    row_user=np.array([0, 1, 1]),
    items=np.array([b"c", b"d", b"b"]),
)
COLD = {"c"}
PAD = [b""] * 98


def _signature(rows: dict[bytes, list[bytes]]):
    def call(user_id, k):
        ids = [rows[u] + PAD for u in user_id.numpy().tolist()]
        return {"item_ids": tf.constant(ids)[:, : int(k)]}

    return call


def test_arrived_rows_are_the_held_out_items_without_training_ratings_not_drawn():
    assert arrived_rows(TRUTH, COLD).tolist() == [False, True, False]


def test_cold_metrics_count_each_group_on_its_own_rows():
    served = {
        "retrieve": _signature({b"u1": [b"a", b"c"], b"u2": [b"d", b"b"]}),
        "recommend": _signature({b"u1": [b"c", b"b"], b"u2": [b"c", b"a"]}),
    }
    out = cold_metrics(served, TRUTH, COLD)
    # retrieve: u1's c at position 2; u2's d and b both listed.
    assert out["cold_hit_rate@10"] == 1.0
    assert out["arrived_hit_rate@10"] == 1.0
    assert out["warm_hit_rate@10"] == 1.0  # d and b: the warm rows include arrived ones
    # recommend: u1's c listed; neither of u2's.
    assert out["served_cold_hit_rate@10"] == 1.0
    assert out["served_arrived_hit_rate@10"] == 0.0
    assert out["served_warm_hit_rate@10"] == 0.0


def test_random_reference_divides_by_the_unseen_items_of_each_group_s_users():
    out = baselines(TRUTH, COLD, catalog_size=1000)
    assert out["random"]["cold_hit_rate@10"] == pytest.approx(10 / 1000)
    assert out["random"]["served_cold_hit_rate@10"] == pytest.approx(10 / 999)  # u1: 1 seen
    assert out["random"]["served_arrived_hit_rate@100"] == pytest.approx(100 / 998)  # u2: 2
    assert out["popularity"]["served_cold_hit_rate@100"] == 0.0
