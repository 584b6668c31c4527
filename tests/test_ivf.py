"""The IVF first stage (models/ivf.py) on tiny hand-computed inputs, and against the exact scan."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mtrec.models.ivf import (
    IvfFirstStage,
    fit_ivf,
    index_from_labels,
    is_member,
    kmeans,
    probed_positions,
    probed_top,
)
from mtrec.models.serving_ops import NEG

# Catalogue positions 0..4 in 2-d; clusters: 0 = +x, 1 = +y, 2 = -x.
ITEMS = np.array([[2, 0], [0, 3], [1, 0], [-1, 0], [0, 1]], np.float32)
LABELS = np.array([0, 1, 0, 2, 1])
CENTROIDS = np.array([[1, 0], [0, 1], [-1, 0]], np.float32)


def _index():
    index = index_from_labels(LABELS, CENTROIDS)
    return index, [tf.constant(a) for a in (index.centroids, index.splits, index.positions)]


def test_items_are_grouped_by_cluster_in_catalogue_order():
    index, _ = _index()
    np.testing.assert_array_equal(index.positions, [0, 2, 1, 4, 3])
    np.testing.assert_array_equal(index.splits, [0, 2, 4, 5])


def test_a_query_reads_the_items_of_its_best_clusters_only():
    # (1, .5): centroid scores 1, .5, -1 -> clusters 0, 1. (0, 1): 0, 1, 0 -> cluster 1,
    # then the tie 0 vs 2 goes to the lower index, cluster 0.
    _, tables = _index()
    query = tf.constant([[1.0, 0.5], [0.0, 1.0]])
    probed = probed_positions(query, *tables, nprobe=2)
    assert probed.to_list() == [[0, 2, 1, 4], [1, 4, 0, 2]]
    assert probed_positions(query[:1], *tables, nprobe=1).to_list() == [[0, 2]]


def test_probed_top_scores_exactly_and_skips_seen_items():
    # Query (1, .5) on clusters 0, 1: positions 0, 2, 1, 4 score 2, 1, 1.5, .5; 2 is seen.
    _, tables = _index()
    query = tf.constant([[1.0, 0.5]])
    probed = probed_positions(query, *tables, nprobe=2)
    seen = tf.ragged.constant([[2]], dtype=tf.int64)
    values, positions, enough = probed_top(query, tf.constant(ITEMS), probed, seen, 2)
    np.testing.assert_allclose(values.numpy(), [[2.0, 1.5]])
    assert positions.numpy().tolist() == [[0, 1]] and bool(enough)
    # 4 asked, 3 unseen probed items: flagged, so the caller scans exactly instead.
    values, positions, enough = probed_top(query, tf.constant(ITEMS), probed, seen, 4)
    np.testing.assert_allclose(values.numpy(), [[2.0, 1.5, 0.5, NEG]])
    assert positions.numpy()[0, :3].tolist() == [0, 1, 4] and not bool(enough)


def test_membership_in_unsorted_and_empty_rows():
    values = tf.constant([[5, 1, 7], [3, 3, 0]], tf.int64)
    sets = tf.ragged.constant([[7, 1], []], dtype=tf.int64)
    assert is_member(values, sets).numpy().tolist() == [[False, True, True], [False] * 3]


def test_kmeans_finds_separated_blobs():
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(10, 0.1, (50, 2)), rng.normal(-10, 0.1, (50, 2))])
    centroids = kmeans(blobs.astype(np.float32), 2)
    np.testing.assert_allclose(np.sort(centroids[:, 0]), [-10, 10], atol=0.1)


def test_probing_every_cluster_is_the_exact_scan_and_fewer_keeps_most_of_it():
    rng = np.random.default_rng(1)
    items = rng.standard_normal((2000, 8)).astype(np.float32)
    queries = rng.standard_normal((20, 8)).astype(np.float32)
    index = fit_ivf(items, clusters=16)
    assert sorted(index.positions.tolist()) == list(range(2000))
    tables = [tf.constant(a) for a in (index.centroids, index.splits, index.positions)]
    exact = np.argsort(-(queries @ items.T), axis=1)[:, :10]
    none = tf.ragged.constant([[]] * 20, dtype=tf.int64)
    recall = {}
    for nprobe in (16, 4):
        probed = probed_positions(tf.constant(queries), *tables, nprobe=nprobe)
        _, positions, _ = probed_top(tf.constant(queries), tf.constant(items), probed, none, 10)
        hits = [len(set(a) & set(b)) for a, b in zip(positions.numpy(), exact, strict=True)]
        recall[nprobe] = sum(hits) / exact.size
    assert recall[16] == 1.0 and 0.5 < recall[4] < 1.0


def test_the_first_stage_answers_from_the_index_or_falls_back_to_the_exact_scan():
    stage = IvfFirstStage(index_from_labels(LABELS, CENTROIDS), nprobe=2)
    query, items = tf.constant([[1.0, 0.5]]), tf.constant(ITEMS)
    seen = tf.ragged.constant([[2]], dtype=tf.int64)

    def exact():  # a stand-in the test can recognise
        return tf.constant([[7.0, 6.0, 5.0, 4.0]]), tf.constant([[3, 3, 3, 3]], tf.int64)

    top = tf.function(lambda c: stage.top(query, items, seen, c, lambda: tuple(
        t[:, :c] for t in exact())))
    values, positions = top(tf.constant(2))
    np.testing.assert_allclose(values.numpy(), [[2.0, 1.5]])
    assert positions.numpy().tolist() == [[0, 1]]
    values, positions = top(tf.constant(4))  # 3 unseen items in the probed clusters
    assert positions.numpy().tolist() == [[3, 3, 3, 3]]
