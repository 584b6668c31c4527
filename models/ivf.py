"""An inverted-file (IVF) index for `recommend`'s first stage on large catalogues, in plain TF ops.

Why: the exact first stage scores every catalogue item. At 1M items x 128
float32 that reads 512 MB per request, memory-bandwidth bound: `recommend` c=1
p50 78 ms over gRPC (benchmarks/results/serving.md). Fewer bytes per item did
not help on TF's CPU kernels: 1 x 128 by 1M x 128 matmul (+ top-100) 71 ms float32,
140 ms bfloat16, 133 ms float16 (same process, this box, which has AVX512-BF16/AMX).
So the index reads fewer items instead: k-means centroids at export, items
grouped by their nearest centroid; a request scores the centroids, takes the
`nprobe` best clusters and scores only their items exactly.

It is approximate: an item in a cluster not probed is missed. Its recall@k
against the exact scan is measured in benchmarks/ivf_recall.py, and the
export uses it only for catalogues of at least ModelConfig.ivf_min_items
items (smaller ones keep the exact scan). A row whose probed clusters hold
fewer unseen items than the re-rank needs takes the exact scan's row instead, so
an answer is never short. Per row, not per batch: a row's answer must not depend
on who else is in the request, since the export's answer cache
(models/answer_cache.py) is built 64 users a call and has to match a request of
one. The exact scan runs (a tf.cond) only when some row is short. Only graph ops
(MatMul, TopKV2, RaggedRange, Gather, SearchSorted, If, SelectV2): TF Serving
loads it as is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from mtrec.models.serving_ops import NEG

_ASSIGN_CHUNK = 65_536  # rows per assignment matmul (a [chunk, clusters] distance block)


@dataclasses.dataclass
class IvfIndex:
    centroids: np.ndarray  # [C, d] float32
    splits: np.ndarray  # [C + 1] int64: cluster j's items are positions[splits[j]:splits[j+1]]
    positions: np.ndarray  # [N] int64 catalogue positions, grouped by cluster


def default_clusters(items: int) -> int:
    """sqrt(N) clusters: ~1,000 of ~1,000 items each at 1M (the usual IVF choice)."""
    return max(1, int(round(np.sqrt(items))))


def nearest(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of each row's nearest centroid (squared L2), in chunks of bounded memory."""
    c2 = (centroids * centroids).sum(axis=1)
    out = np.empty(len(vectors), np.int64)
    for s in range(0, len(vectors), _ASSIGN_CHUNK):
        block = vectors[s:s + _ASSIGN_CHUNK]
        out[s:s + len(block)] = np.argmin(c2[None, :] - 2.0 * block @ centroids.T, axis=1)
    return out


def kmeans(vectors: np.ndarray, clusters: int, iterations: int = 10, sample: int = 65_536,
           seed: int = 0) -> np.ndarray:
    """Lloyd's k-means on a sample of the rows; centroids [<= clusters, d] float32.

    Starts from distinct sampled rows (fewer clusters when there are fewer
    distinct rows); a cluster left empty keeps its centroid.
    """
    rng = np.random.default_rng(seed)
    rows = vectors if len(vectors) <= sample else vectors[rng.choice(len(vectors), sample,
                                                                    replace=False)]
    distinct = np.unique(rows.astype(np.float32), axis=0)
    centroids = distinct[rng.choice(len(distinct), min(clusters, len(distinct)), replace=False)]
    for _ in range(iterations):
        labels = nearest(rows, centroids)
        sums = np.zeros_like(centroids, dtype=np.float64)
        np.add.at(sums, labels, rows)
        counts = np.bincount(labels, minlength=len(centroids))
        filled = counts > 0
        centroids[filled] = (sums[filled] / counts[filled, None]).astype(np.float32)
    return centroids.astype(np.float32)


def index_from_labels(labels: np.ndarray, centroids: np.ndarray) -> IvfIndex:
    """Group catalogue positions by cluster label (stable: catalogue order within a cluster)."""
    positions = np.argsort(labels, kind="stable").astype(np.int64)
    counts = np.bincount(labels, minlength=len(centroids))
    splits = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return IvfIndex(centroids.astype(np.float32), splits, positions)


def fit_ivf(vectors: np.ndarray, clusters: int | None = None, seed: int = 0) -> IvfIndex:
    """The index of these retrieval vectors [N, d] (catalogue order)."""
    centroids = kmeans(vectors, clusters or default_clusters(len(vectors)), seed=seed)
    return index_from_labels(nearest(vectors, centroids), centroids)


def probed_positions(query: tf.Tensor, centroids: tf.Tensor, splits: tf.Tensor,
                     positions: tf.Tensor, nprobe: int) -> tf.RaggedTensor:
    """[B, None] catalogue positions in each query's `nprobe` best clusters (dot product)."""
    best = tf.math.top_k(tf.matmul(query, centroids, transpose_b=True),
                         tf.minimum(nprobe, tf.shape(centroids)[0])).indices
    starts, limits = tf.gather(splits, best), tf.gather(splits, best + 1)
    slots = tf.ragged.range(tf.reshape(starts, [-1]), tf.reshape(limits, [-1])).flat_values
    return tf.RaggedTensor.from_row_lengths(tf.gather(positions, slots),
                                            tf.reduce_sum(limits - starts, axis=1))


def is_member(values: tf.Tensor, sets: tf.RaggedTensor) -> tf.Tensor:
    """[B, W] bool: values[b, w] is in row b of `sets` (int64; any order)."""
    big = tf.constant(np.iinfo(np.int64).max, tf.int64)
    rows = tf.sort(sets.to_tensor(default_value=big), axis=1)
    rows = tf.concat([rows, tf.fill([tf.shape(rows)[0], 1], big)], axis=1)  # never empty
    at = tf.searchsorted(rows, values, side="left")
    return tf.equal(tf.gather(rows, tf.minimum(at, tf.shape(rows)[1] - 1), batch_dims=1),
                    values)


def probed_top(query: tf.Tensor, item_vectors: tf.Tensor, probed: tf.RaggedTensor,
               seen: tf.RaggedTensor, c: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Top `c` unseen probed items by exact dot product: (scores [B, c], positions [B, c]
    int64, enough [B] bool: the row had c unseen probed items). Per row, so that the
    caller replaces only the short rows."""
    positions = probed.to_tensor(default_value=-1)
    width = tf.maximum(tf.shape(positions)[1], c)  # top_k needs c columns
    positions = tf.pad(positions, [[0, 0], [0, width - tf.shape(positions)[1]]],
                       constant_values=-1)
    valid = (positions >= 0) & ~is_member(positions, seen)
    vectors = tf.gather(item_vectors, tf.maximum(positions, 0))
    scores = tf.where(valid, tf.linalg.matvec(vectors, query), NEG)
    top = tf.math.top_k(scores, c)
    enough = tf.reduce_sum(tf.cast(valid, tf.int32), axis=1) >= c
    return top.values, tf.gather(positions, top.indices, batch_dims=1), enough


class IvfFirstStage(tf.Module):
    """The index's tables as variables of the SavedModel, and the request-time search."""

    def __init__(self, index: IvfIndex, nprobe: int) -> None:
        super().__init__(name="ivf")
        self.nprobe = nprobe
        self.centroids = tf.Variable(index.centroids, trainable=False, name="ivf_centroids")
        self.splits = tf.Variable(index.splits, trainable=False, name="ivf_splits")
        self.positions = tf.Variable(index.positions, trainable=False, name="ivf_positions")

    def top(self, query: tf.Tensor, item_vectors: tf.Tensor, seen: tf.RaggedTensor,
            c: tf.Tensor, exact: Callable[[], tuple[tf.Tensor, tf.Tensor]]
            ) -> tuple[tf.Tensor, tf.Tensor]:
        """(first-stage scores [B, c], catalogue positions [B, c] int64): each row's
        probed clusters' best unseen items, or `exact()`'s row where it has fewer than
        c. exact() runs only when some row is short (a tf.cond), for the whole batch;
        rows with enough keep their own answer, so no row depends on the others."""
        probed = probed_positions(query, self.centroids, self.splits, self.positions,
                                  self.nprobe)
        values, positions, enough = probed_top(query, item_vectors, probed, seen, c)

        def merged() -> tuple[tf.Tensor, tf.Tensor]:
            exact_values, exact_positions = exact()
            keep = enough[:, tf.newaxis]
            return (tf.where(keep, values, exact_values),
                    tf.where(keep, positions, exact_positions))

        return tf.cond(tf.reduce_all(enough), lambda: (values, positions), merged)
