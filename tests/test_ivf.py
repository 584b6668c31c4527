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
    assert positions.numpy().tolist() == [[0, 1]] and enough.numpy().tolist() == [True]
    # 4 asked, 3 unseen probed items: flagged, so the caller scans exactly instead.
    values, positions, enough = probed_top(query, tf.constant(ITEMS), probed, seen, 4)
    np.testing.assert_allclose(values.numpy(), [[2.0, 1.5, 0.5, NEG]])
    assert positions.numpy()[0, :3].tolist() == [0, 1, 4] and enough.numpy().tolist() == [False]


def test_probed_top_flags_each_short_row_alone():
    # Row 0 (1, .5) probes clusters 0, 1: 4 items. Row 1 (-1, 0) probes 2, then 1
    # (centroid scores 1 and 0; cluster 0 -1): positions 3, 1, 4, of which 1 is seen.
    _, tables = _index()
    query = tf.constant([[1.0, 0.5], [-1.0, 0.0]])
    probed = probed_positions(query, *tables, nprobe=2)
    assert probed.to_list() == [[0, 2, 1, 4], [3, 1, 4]]
    seen = tf.ragged.constant([[], [1]], dtype=tf.int64)
    _, _, enough = probed_top(query, tf.constant(ITEMS), probed, seen, 3)
    assert enough.numpy().tolist() == [True, False]


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


def _exact(query: tf.Tensor, seen: tf.RaggedTensor, c: tf.Tensor
           ) -> tuple[tf.Tensor, tf.Tensor]:
    """The exact scan over ITEMS, seen items excluded (recommend's fallback)."""
    scores = tf.matmul(query, tf.constant(ITEMS), transpose_b=True)
    hit = tf.reduce_any(tf.equal(seen.to_tensor(-1)[:, :, tf.newaxis],
                                 tf.range(len(ITEMS), dtype=tf.int64)), axis=1)
    top = tf.math.top_k(tf.where(hit, NEG, scores), c)
    return top.values, tf.cast(top.indices, tf.int64)


def _stage_top(stage: IvfFirstStage, rows: list[list[float]], seen: list[list[int]],
               c: int, exact_runs: tf.Variable | None = None) -> tuple[list, np.ndarray]:
    query = tf.constant(rows)
    sets = tf.ragged.constant(seen, dtype=tf.int64, ragged_rank=1, inner_shape=())

    def exact() -> tuple[tf.Tensor, tf.Tensor]:
        if exact_runs is not None:
            exact_runs.assign_add(1)
        return _exact(query, sets, tf.constant(c))

    top = tf.function(lambda: stage.top(query, tf.constant(ITEMS), sets, tf.constant(c),
                                        exact))
    values, positions = top()
    return positions.numpy().tolist(), values.numpy()


def test_each_row_falls_back_alone_so_its_answer_does_not_depend_on_the_batch():
    """Row A (1, .5) probes cluster 0 only: positions 0, 2 (scores 2, 1), its
    approximate answer (the exact one is 0, 1: 2, 1.5). Row B (.1, 1) probes cluster 1:
    positions 1, 4, and 4 is seen, so B is short and takes the exact scan's row: 1, 0
    (scores 3, .2). A keeps its own answer beside B (the export's answer cache is built
    in batches and has to match a request of one)."""
    stage = IvfFirstStage(index_from_labels(LABELS, CENTROIDS), nprobe=1)
    a, b = ([1.0, 0.5], []), ([0.1, 1.0], [4])
    alone_a = _stage_top(stage, [a[0]], [a[1]], 2)
    alone_b = _stage_top(stage, [b[0]], [b[1]], 2)
    assert alone_a[0] == [[0, 2]] and alone_b[0] == [[1, 0]]
    np.testing.assert_allclose(alone_a[1], [[2.0, 1.0]])
    np.testing.assert_allclose(alone_b[1], [[3.0, 0.2]], rtol=1e-6)
    for order in ((a, b), (b, a), (a, b, a)):
        positions, values = _stage_top(stage, [r[0] for r in order], [r[1] for r in order], 2)
        want = [alone_a if row is a else alone_b for row in order]
        assert positions == [w[0][0] for w in want], order
        np.testing.assert_allclose(values, [w[1][0] for w in want], rtol=1e-6)


def test_when_no_row_is_short_the_exact_scan_does_not_run():
    """Both rows have enough unseen probed items: the approximate answers stand, and
    the exact branch (a tf.cond) never runs -- its counter stays 0; one short row runs
    it once for the batch."""
    stage = IvfFirstStage(index_from_labels(LABELS, CENTROIDS), nprobe=1)
    runs = tf.Variable(0)
    positions, values = _stage_top(stage, [[1.0, 0.5], [0.1, 1.0]], [[], []], 2, runs)
    assert positions == [[0, 2], [1, 4]] and int(runs.numpy()) == 0
    np.testing.assert_allclose(values, [[2.0, 1.0], [3.0, 1.0]], rtol=1e-6)
    positions, _ = _stage_top(stage, [[1.0, 0.5], [0.1, 1.0]], [[], [4]], 2, runs)
    assert positions == [[0, 2], [1, 0]] and int(runs.numpy()) == 1
