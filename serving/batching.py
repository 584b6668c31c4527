"""Opportunistic request batching for one signature.

Each model call has a fixed cost (function dispatch, op launches) that
dominates small requests, so under concurrency it pays to merge requests:
while one call for a signature runs, requests that arrive queue up, and the
next call takes them all (up to `max_batch_size` rows) in one go. Nothing
waits on a timer, so a lone request is never delayed -- unlike TF Serving's
`batch_timeout_micros`, latency at low load is unchanged.

Requests merge only when everything except dimension 0 agrees: the same
values for inputs without a batch dimension (`recommend`'s `k`) and the same
trailing shapes (`score`'s list length). Every batched input of a request must
carry the same rows (Signature checks it before a request gets here: a merged
call is sliced back by those rows, so a `score` request of 2 users and 1 item
row, merged with one of 1 user and 2 item rows, got the other's answers); one
whose rows disagree anyway runs alone. A merged call stays within
`max_batch_size` rows and, where given, `max_cost` (the pair budget: each request
within it must not add up past it). If a merged call fails, each request is
re-run alone so errors stay attributed to the request that caused them; if a
signature's outputs turn out not to be batch-major, it stops batching.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchingOptions:
    """`max_batch_size`: most rows one merged call may carry."""

    max_batch_size: int = 32


class _Item:
    """One queued request. `_ready` is a held lock its thread blocks on until
    released (cheaper than an Event, which builds a Condition per request)."""

    __slots__ = ("arrays", "rows", "cost", "_ready", "result", "error", "lead")

    def __init__(self, arrays: dict[str, np.ndarray], rows: int, cost: int) -> None:
        self.arrays = arrays
        self.rows = rows
        self.cost = cost
        self._ready = threading.Lock()
        self._ready.acquire()
        self.result: dict[str, np.ndarray] | None = None
        self.error: BaseException | None = None
        self.lead = False

    def wait(self) -> None:
        self._ready.acquire()

    def wake(self) -> None:
        self._ready.release()


RunArrays = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


class SignatureBatcher:
    """Leader/follower batching: at most one model call per merge key at a time."""

    def __init__(
        self, name: str, run: RunArrays, batched_inputs: Sequence[str], options: BatchingOptions,
        max_cost: int = 0,
    ) -> None:
        self.name = name
        self._run = run
        self._batched = frozenset(batched_inputs)
        self._max_rows = max(1, options.max_batch_size)
        self._max_cost = max_cost  # 0: no bound on a merged call's summed cost
        self._lock = threading.Lock()
        self._queues: dict[Hashable, deque[_Item]] = {}
        self._busy: set[Hashable] = set()
        self._enabled = True
        self.calls = 0  # model calls made (for tests / stats)
        self.requests = 0

    def _key(self, arrays: dict[str, np.ndarray]) -> Hashable:
        parts: list[Hashable] = []
        for key in sorted(arrays):
            arr = arrays[key]
            if key in self._batched:
                parts.append((key, arr.shape[1:], arr.dtype.str))
            elif arr.dtype == object:
                parts.append((key, arr.shape, tuple(arr.reshape(-1).tolist())))
            else:
                parts.append((key, arr.shape, arr.dtype.str, arr.tobytes()))
        return tuple(parts)

    def rows(self, arrays: dict[str, np.ndarray]) -> int:
        """The rows every batched input carries; 0 where they disagree."""
        rows = {int(arrays[key].shape[0]) for key in self._batched}
        return rows.pop() if len(rows) == 1 else 0

    def run(self, arrays: dict[str, np.ndarray], cost: int = 0) -> dict[str, np.ndarray]:
        """Run `arrays` (already validated; `cost`: its pairs), possibly merged with
        concurrent requests."""
        rows = self.rows(arrays)  # the rows the merge concatenates and slices by
        if not self._enabled or not rows:
            return self._run(arrays)
        item = _Item(arrays, rows, cost)
        key = self._key(arrays)
        with self._lock:
            self.requests += 1
            queue = self._queues.setdefault(key, deque())
            queue.append(item)
            lead = key not in self._busy
            if lead:
                self._busy.add(key)
        if not lead:
            item.wait()
            if not item.lead:  # another request's call carried this one
                return self._outcome(item)
        with self._lock:
            batch = [queue.popleft()]
            rows, cost = batch[0].rows, batch[0].cost
            while queue and rows + queue[0].rows <= self._max_rows and (
                    not self._max_cost or cost + queue[0].cost <= self._max_cost):
                rows += queue[0].rows
                cost += queue[0].cost
                batch.append(queue.popleft())
        try:
            self._execute(batch, rows)
        finally:
            with self._lock:
                if queue:  # hand the lead to the oldest waiting request
                    queue[0].lead = True
                    queue[0].wake()
                else:
                    self._busy.discard(key)
                    del self._queues[key]
        return self._outcome(item)

    @staticmethod
    def _outcome(item: _Item) -> dict[str, np.ndarray]:
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result

    def _alone(self, batch: list[_Item]) -> None:
        for it in batch:
            try:
                self.calls += 1
                it.result = self._run(it.arrays)
            except BaseException as exc:  # delivered to the request's own thread
                it.error = exc

    def _execute(self, batch: list[_Item], rows: int) -> None:
        try:
            if len(batch) == 1:
                self._alone(batch)
                return
            merged = {
                key: np.concatenate([it.arrays[key] for it in batch])
                if key in self._batched
                else batch[0].arrays[key]
                for key in batch[0].arrays
            }
            try:
                self.calls += 1
                out = self._run(merged)
            except BaseException:
                self._alone(batch)  # find out whose request it was
                return
            if any(v.ndim == 0 or v.shape[0] != rows for v in out.values()):
                self._enabled = False  # outputs are not batch-major: never merge again
                self._alone(batch)
                return
            start = 0
            for it in batch:
                end = start + it.rows
                it.result = {key: value[start:end] for key, value in out.items()}
                start = end
        finally:
            for it in batch:  # the leader's own item too: releasing it is harmless
                it.wake()
