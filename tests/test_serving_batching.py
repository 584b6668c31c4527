"""Requests whose batched inputs disagree on their rows, with and without --enable-batching.

The batcher concatenates requests' batched inputs and slices the answer back by rows:
a `score` request of 2 users and 1 item row, merged with one of 1 user and 2 item rows,
made a call TF accepts, and each got rows scored for the other's users. Such requests
are refused before they can join a batch, in the same words with batching off.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from mtrec.serving.batching import BatchingOptions, SignatureBatcher
from mtrec.serving.client import MtrecClient
from tests import _serving_support as support

P = support.profile()
INVALID = grpc.StatusCode.INVALID_ARGUMENT
needs_local_server = pytest.mark.skipif(
    support.EXTERNAL, reason="batching and its checks are the in-process server's"
)
ITEMS = ["1", "2", "3"]


def _score(users: list[str], item_rows: int) -> dict[str, np.ndarray]:
    return {"user_id": np.array(users, dtype=object),
            "item_ids": np.array([ITEMS] * item_rows, dtype=object)}


def _start(batching: bool, threads: int = 8) -> Any:
    root = support.new_model_root()
    os.symlink(os.path.abspath(support.primary_model_dir()), os.path.join(root, "1"))
    srv = support.start_server(root, batching=batching, max_batch_size=8, threads=threads)
    srv.manager.wait_for_version(1, timeout=120)
    return srv


@pytest.fixture(scope="module", params=[False, True], ids=["batching-off", "batching-on"])
def client(request: pytest.FixtureRequest) -> Iterator[MtrecClient]:
    if support.EXTERNAL:
        pytest.skip("batching and its checks are the in-process server's")
    srv = _start(request.param)
    with MtrecClient(srv.target, model_name=support.MODEL_NAME, retries=0) as c:
        yield c
    srv.stop()


@needs_local_server
def test_rows_that_disagree_are_refused_whether_batching_or_not(client: MtrecClient) -> None:
    users = list(P.users)
    support.expect_error(lambda: client.predict("score", _score(users[:2], 1)), INVALID,
                         "user_id has 2 rows but item_ids has 1: each row of item_ids "
                         "belongs to one user_id")
    support.expect_error(lambda: client.predict("score", _score(users[:1], 2)), INVALID,
                         "user_id has 1 row but item_ids has 2")
    assert client.predict("score", _score(users[:2], 2))["scores"].shape == (2, 3)


@needs_local_server
def test_malformed_requests_never_join_a_batch() -> None:
    """Valid requests merged while malformed ones arrive get exactly their own rows."""
    reference = support.InProcessModel(support.primary_model_dir())
    users = [*P.users, P.unknown_user] * 3  # 12 valid requests, one row each
    malformed = [_score(users[:2], 1), _score(users[:1], 2)] * 3
    srv = _start(True, threads=len(users) + len(malformed) + 2)
    batcher = srv.manager.current.signatures["score"].batcher
    assert batcher is not None
    # Merging is opportunistic: hold the first model call until every valid request
    # reached the batcher (the malformed ones never do), so the rest queue and merge.
    first, before, run = threading.Lock(), batcher.requests, batcher._run
    merged: list[int] = []

    def held_first_call(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if first.acquire(blocking=False):
            for _ in range(6000):  # a bound on the wait (60 s), not a timing assertion
                if batcher.requests - before >= len(users):
                    break
                time.sleep(0.01)
        merged.append(len(arrays["user_id"]))
        return run(arrays)

    batcher._run = held_first_call
    answers: dict[int, Any] = {}
    refusals: list[str] = []
    errors: list[BaseException] = []
    try:
        with MtrecClient(srv.target, model_name=support.MODEL_NAME, retries=0) as client:
            barrier = threading.Barrier(len(users) + len(malformed))

            def valid(i: int) -> None:
                try:
                    barrier.wait()
                    answers[i] = client.predict("score", _score([users[i]], 1))
                except BaseException as exc:
                    errors.append(exc)

            def bad(inputs: dict[str, np.ndarray]) -> None:
                try:
                    barrier.wait()
                    refused = support.expect_error(lambda: client.predict("score", inputs),
                                                   INVALID, "but item_ids has")
                    refusals.append(refused.message)
                except BaseException as exc:
                    errors.append(exc)

            support.run_together([*(functools.partial(valid, i) for i in range(len(users))),
                                  *(functools.partial(bad, m) for m in malformed)])
    finally:
        srv.stop()
    assert not errors, errors
    assert len(refusals) == len(malformed)
    for i, got in answers.items():
        support.assert_outputs_equal(got, reference("score", _score([users[i]], 1)))
    assert max(merged) > 1, merged  # requests did merge around the refused ones


def test_batcher_runs_a_request_whose_rows_disagree_alone() -> None:
    """The batcher's own guard: it slices by the rows it merged on, so a request whose
    batched inputs disagree (one that skipped the signature's check) never merges."""
    calls: list[tuple[int, int]] = []
    gate = threading.Event()

    def run(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        calls.append((len(arrays["u"]), len(arrays["v"])))
        if len(calls) == 1:
            gate.wait(5)
        return {"y": arrays["v"].sum(axis=-1)}

    batcher = SignatureBatcher("sig", run, ["u", "v"], BatchingOptions(max_batch_size=8),
                               max_cost=5)
    results: dict[str, Any] = {}

    def submit(name: str, u: int, v: int, cost: int = 1) -> None:
        results[name] = batcher.run({"u": np.zeros(u), "v": np.ones((v, 2))}, cost)["y"]

    first = threading.Thread(target=submit, args=("first", 1, 1))
    first.start()
    while not calls:
        time.sleep(0.001)
    others = [threading.Thread(target=submit, args=(f"ok{i}", 1, 1, 2)) for i in range(4)]
    others.append(threading.Thread(target=submit, args=("odd", 2, 1)))
    for t in others:
        t.start()
    while batcher.requests < 5:  # the odd one is not queued
        time.sleep(0.001)
    time.sleep(0.05)
    gate.set()
    for t in [first, *others]:
        t.join()
    assert (2, 1) in calls  # alone, as it came
    assert results["odd"].tolist() == [2.0]
    assert all(results[f"ok{i}"].tolist() == [2.0] for i in range(4))
    # Merged calls stay within max_cost: the four cost-2 requests merge two by two.
    assert sorted(c for c in calls if c != (2, 1))[-1] == (2, 2), calls
