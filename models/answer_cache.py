"""`recommend`'s whole answer for each known user, computed at export.

For a known user, everything `recommend` reads is fixed when the model is
exported: the query (a per-user table already), the seen-item set, the
item-item term and every weight. So is its answer for a given k. The re-rank
reads max(100, 4k) first-stage candidates (serving_module._candidates), the
same 100 for every k <= 25, and its top-k is sorted (top_k breaks ties by
position), so the answer for such a k is the first k entries of the answer
for k = 25. The export stores that answer per known user -- catalogue
positions, scores and ratings, in `recommend`'s order -- and a request whose
users are all known and whose k is at most that depth becomes a gather and a
slice inside a `tf.cond`; any unknown id (an OOV row) or a larger k takes the
computed path. On the ML-100K u1 model this took `recommend`'s op time from
1,356 to 173 us a call (benchmarks/graph_ops.py, one thread; 16 nodes in the
taken branch) and gRPC c=1 p50 from 2.65 to 1.22 ms
(benchmarks/results/serving.md).

The table holds users x depth entries (12 bytes each); above
ModelConfig.answer_cache_max_entries it is not built and every request is
computed, as before. Tested against the export without it:
tests/test_export.py::test_per_user_cache_changes_no_answer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

# Users computed per call at export (one traced function, so one graph).
_CHUNK = 64


def cache_depth(num_items: int, num_candidates: int) -> int:
    """The largest k whose re-rank reads the minimum candidate set max(100, 4k) = 100
    (25 for 100 candidates), at most the catalogue."""
    return max(0, min(num_items, num_candidates // 4))


class AnswerCache(tf.Module):
    """Per-user rows of `recommend`'s answer for k = depth, for user rows 0..users
    (row 0, the padding row, is stored but never served: lookups give 1..).

    Keyed by the answer's own output names, so no output name is repeated here:
    the one string output (the item ids) is stored as catalogue positions
    (int32), every other output as it is (float32)."""

    def __init__(self, tables: dict[str, np.ndarray], ids: str) -> None:
        super().__init__(name="answer_cache")
        shapes = {key: value.shape for key, value in tables.items()}
        first = tables[ids].shape
        if len(first) != 2 or any(shape != first for shape in shapes.values()):
            raise ValueError(f"answer tables must be [users + 1, depth] alike, got {shapes}")
        self.depth, self.last_row = int(first[1]), int(first[0]) - 1
        self._ids = ids
        self.tables = {key: tf.Variable(value.astype(np.int32 if key == ids else np.float32),
                                        trainable=False, name=key)
                       for key, value in tables.items()}

    def covers(self, user_idx: tf.Tensor, k: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
        """True when every row in user_idx is cached (1..last_row) and k <= depth.
        `n` is the catalogue size after recommend's k checks: reading it orders
        them before either branch."""
        known = tf.reduce_all((user_idx >= 1) & (user_idx <= self.last_row))
        return tf.logical_and(k <= tf.minimum(n, self.depth), known)

    def answer(self, user_idx: tf.Tensor, k: tf.Tensor, catalog_ids: tf.Tensor
               ) -> dict[str, tf.Tensor]:
        """The first k cached entries of each row, as `recommend` returns them."""
        out = {key: tf.gather(table, user_idx)[:, :k] for key, table in self.tables.items()}
        out[self._ids] = tf.gather(catalog_ids, out[self._ids])
        return out

    def answer_or(self, user_idx: tf.Tensor, k: tf.Tensor, n: tf.Tensor, catalog_ids: tf.Tensor,
                  computed: Callable[[], dict[str, tf.Tensor]]) -> dict[str, tf.Tensor]:
        """The cached answer when it covers the request, else `computed()` (tf.cond:
        only the branch taken runs)."""
        return tf.cond(self.covers(user_idx, k, n),
                       lambda: self.answer(user_idx, k, catalog_ids), computed)


def build_answer_cache(answer: Callable[[tf.Tensor, tf.Tensor], dict[str, tf.Tensor]],
                       positions_of: Callable[[tf.Tensor], tf.Tensor],
                       known_users: int, depth: int, max_entries: int) -> AnswerCache | None:
    """`answer(user_idx [b], k)` -> recommend's outputs for these user rows; the
    cache of rows 0..known_users at k = depth, or None when depth is 0 or the
    table would exceed max_entries. `positions_of(item_ids)` maps the answer's
    ids (its one string output) back to catalogue positions (unique ids)."""
    rows = known_users + 1
    if depth < 1 or rows * depth > max_entries:
        return None
    k = tf.constant(depth, tf.int32)
    run = tf.function(lambda idx: answer(idx, k),
                      input_signature=[tf.TensorSpec([None], tf.int64)])
    parts: dict[str, list[np.ndarray]] = {}
    ids = ""
    for start in range(0, rows, _CHUNK):
        for key, value in run(tf.range(start, min(start + _CHUNK, rows), dtype=tf.int64)).items():
            if value.dtype == tf.string:
                ids, value = key, positions_of(value)
            parts.setdefault(key, []).append(value.numpy())
    tables = {key: np.concatenate(value) for key, value in parts.items()}
    if (tables[ids] < 0).any():
        raise ValueError("recommend returned an item outside the catalogue")
    return AnswerCache(tables, ids)
