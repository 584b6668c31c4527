"""The model server through the public client: results, statuses, hot swaps.

Runs against an in-process `ServingServer` by default, or an external server
(tensorflow/serving or `mtrec serve`) when MTREC_SERVING_TARGET is set; see
tests/_serving_support.py for the knobs.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    predict_pb2,
    regression_pb2,
)

from mtrec.serving import tensor_codec
from mtrec.serving.client import MtrecClient
from tests import _serving_support as support

P = support.profile()
INVALID = grpc.StatusCode.INVALID_ARGUMENT
needs_local_server = pytest.mark.skipif(
    support.EXTERNAL, reason="writes version dirs: needs the in-process server"
)


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    """The read-only server: external target, or version 1 of the primary model."""
    if support.EXTERNAL:
        yield {"target": support.TARGET, "server": None}
        return
    root = support.new_model_root()
    os.symlink(os.path.abspath(support.primary_model_dir()), os.path.join(root, "1"))
    srv = support.start_server(root, rest_port=0)
    srv.manager.wait_for_version(1, timeout=120)
    yield {"target": srv.target, "server": srv}
    srv.stop()


@pytest.fixture(scope="module")
def client(server: dict[str, Any]) -> Iterator[MtrecClient]:
    with MtrecClient(server["target"], model_name=support.MODEL_NAME, timeout=30) as c:
        c.wait_until_available(timeout=120)
        yield c


@pytest.fixture(scope="module")
def reference() -> support.InProcessModel:
    path = support.primary_model_dir()
    if path is None:
        pytest.skip("no MTREC_SERVING_MODEL_DIR to compare an external server against")
    return support.InProcessModel(path)


def _items(client: MtrecClient, n: int = 5) -> list[str]:
    """Real item ids, taken from the model itself (works for any catalogue)."""
    return [it["item_id"] for it in client.recommend(P.users[0], n)["items"]]


# ---------------------------------------------------------------- happy path
def test_status_and_metadata(client: MtrecClient) -> None:
    states = client.status()
    assert any(s["state"] == "AVAILABLE" for s in states)
    meta = client.metadata()
    assert meta["model_spec"]["name"] == support.MODEL_NAME
    sigs = meta["signature_def"]
    assert set(support.CONTRACT_SIGNATURES) <= set(sigs)
    rec = sigs["recommend"]
    assert set(rec["inputs"]) == {"user_id", "k"}
    assert {"item_ids", "scores", "ratings"} <= set(rec["outputs"])
    assert rec["inputs"]["k"]["dtype"] == "DT_INT32"


def _contract_inputs(client: MtrecClient) -> dict[str, dict[str, Any]]:
    users = list(P.users[:2])
    items = _items(client, 4)
    return {
        "recommend": {"user_id": np.array(users, dtype=object), "k": np.int32(5)},
        "score": {
            "user_id": np.array(users, dtype=object),
            "item_ids": np.array([items, items[::-1]], dtype=object),
        },
        "user_interest": {"user_id": np.array(users, dtype=object)},
        "embed_user": {"user_id": np.array(users, dtype=object)},
        "embed_item": {"item_id": np.array(items, dtype=object)},
        "serving_default": {"examples": P.examples(users, items[:2])},
    }


@pytest.mark.parametrize("signature", support.CONTRACT_SIGNATURES)
def test_signature_round_trip_matches_in_process(
    client: MtrecClient, reference: support.InProcessModel, signature: str
) -> None:
    inputs = _contract_inputs(client)[signature]
    got = client.predict(signature, inputs)
    support.assert_outputs_equal(got, reference(signature, inputs))


def test_typed_client_calls(client: MtrecClient) -> None:
    rec = client.recommend(P.users[0], 7)
    assert rec["user_id"] == P.users[0] and len(rec["items"]) == 7
    scores = [it["score"] for it in rec["items"]]
    assert scores == sorted(scores, reverse=True)
    items = [it["item_id"] for it in rec["items"]]
    scored = client.score(P.users[0], items)
    assert [it["item_id"] for it in scored["items"]] == items
    np.testing.assert_allclose([it["score"] for it in scored["items"]], scores, rtol=1e-4)
    interest = client.user_interest(P.users[0])
    assert interest["genres"] and all(isinstance(g["genre"], str) for g in interest["genres"])
    assert client.embed_user(P.users[0]).ndim == 1
    assert client.embed_item(items[0]).shape == client.embed_user(P.users[0]).shape
    many = client.recommend_many(list(P.users[:3]), 3)
    assert [r["user_id"] for r in many] == list(P.users[:3])


def test_unknown_users_and_items_get_answers(client: MtrecClient) -> None:
    rec = client.recommend(P.unknown_user, 5)
    assert len(rec["items"]) == 5
    scored = client.score(P.unknown_user, [P.unknown_item, *_items(client, 2)])
    assert len(scored["items"]) == 3
    assert all(np.isfinite(it["score"]) for it in scored["items"])
    assert np.all(np.isfinite(client.embed_user(P.unknown_user)))
    assert np.all(np.isfinite(client.embed_item(P.unknown_item)))
    assert client.user_interest(P.unknown_user)["genres"]


def test_pinned_version_and_output_filter(client: MtrecClient) -> None:
    version = client.wait_until_available()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = support.MODEL_NAME
    request.model_spec.signature_name = "recommend"
    request.model_spec.version.value = version
    request.inputs["user_id"].CopyFrom(tensor_codec.encode([P.users[0]], tf.string))
    request.inputs["k"].CopyFrom(tensor_codec.encode(3, tf.int32))
    request.output_filter.append("item_ids")
    response = client.predict_raw(request)
    assert set(response.outputs) == {"item_ids"}
    assert response.model_spec.version.value == version
    assert response.model_spec.signature_name == "recommend"


# --------------------------------------------------------------- bad requests
def _k(value: int) -> np.int32:
    return np.int32(value)


def _bad_requests(client: MtrecClient) -> dict[str, tuple]:
    user = np.array([P.users[0]], dtype=object)
    other = MtrecClient(client.target, model_name="no-such-model", retries=0)
    pinned = MtrecClient(client.target, model_name=support.MODEL_NAME, version=987654, retries=0)
    empty = np.zeros([0], dtype=object)
    return {
        "missing input": (lambda: client.predict("recommend", {"user_id": user}), INVALID, "k"),
        "wrong dtype": (
            lambda: client.predict("recommend", {"user_id": user, "k": np.int64(3)}),
            INVALID,
            "'k'",
        ),
        "wrong rank": (
            lambda: client.predict("recommend", {"user_id": user, "k": np.array([3], np.int32)}),
            INVALID,
            "'k'",
        ),
        "extra input": (
            lambda: client.predict("embed_user", {"user_id": user, "bogus": user}), INVALID,
            "'bogus'"),
        "unknown signature": (  # TF Serving's code for it (predict_util.cc)
            lambda: client.predict("no_such_signature", {"user_id": user}),
            grpc.StatusCode.FAILED_PRECONDITION,
            'Serving signature key "no_such_signature" not found',
        ),
        "unknown model": (lambda: other.recommend(P.users[0]), grpc.StatusCode.NOT_FOUND, ""),
        "unknown version": (lambda: pinned.recommend(P.users[0]), grpc.StatusCode.NOT_FOUND,
                            "987654"),
        # The raw request: MtrecClient.recommend refuses k < 1 itself and asks for the
        # whole catalogue past it.
        "k zero": (lambda: client.predict("recommend", {"user_id": user, "k": _k(0)}),
                   INVALID, "k"),
        "k negative": (lambda: client.predict("recommend", {"user_id": user, "k": _k(-3)}),
                       INVALID, "k"),
        "k over catalogue": (
            lambda: client.predict("recommend", {"user_id": user, "k": _k(P.huge_k)}),
            INVALID, "k"),
        "empty batch": (lambda: client.predict("recommend", {"user_id": empty, "k": _k(3)}),
                        INVALID, "'user_id'"),
        "bad output filter": (
            lambda: client.predict("embed_user", {"user_id": user}, output_filter=["nope"]),
            INVALID,
            "nope",
        ),
    }


# Codes where real TF Serving differs from ours (none now: an unknown signature is
# FAILED_PRECONDITION in both; an empty batch may simply succeed there, skipped below).
_TF_SERVING_ALT: dict[str, tuple[grpc.StatusCode, ...]] = {}

BAD = ["missing input", "wrong dtype", "wrong rank", "extra input", "unknown signature",
       "unknown model", "unknown version", "k zero", "k negative", "k over catalogue",
       "empty batch", "bad output filter"]


@pytest.mark.parametrize("case", BAD)
def test_bad_request_gets_status_and_server_stays_up(client: MtrecClient, case: str) -> None:
    call, code, fragment = _bad_requests(client)[case]
    if case == "empty batch" and support.EXTERNAL:
        pytest.skip("TF Serving answers empty batches with empty outputs")
    support.expect_error(call, code, fragment, alt=_TF_SERVING_ALT.get(case, ()))
    assert len(client.recommend(P.users[0], 3)["items"]) == 3  # still serving


def test_oversized_request_is_resource_exhausted(client: MtrecClient) -> None:
    if not support.MAX_REQUEST_BYTES:
        pytest.skip("set MTREC_SERVING_MAX_REQUEST_BYTES to the external server's cap")
    huge = np.array([b"x" * (support.MAX_REQUEST_BYTES + 1024)], dtype=object)
    support.expect_error(
        lambda: client.predict("embed_user", {"user_id": huge}),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert client.embed_user(P.users[0]).size > 0


def test_classify_and_regress_semantics(
    client: MtrecClient, reference: support.InProcessModel
) -> None:
    examples = P.examples(list(P.users[:2]), _items(client, 2))
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = support.MODEL_NAME
    for raw in examples:
        request.input.example_list.examples.add().ParseFromString(raw)
    # serving_default is a predict signature: TF Serving refuses to classify with it.
    support.expect_error(
        lambda: client.classify_raw(request),
        INVALID,
        "method_name",
    )
    sigs = client.metadata()["signature_def"]
    if (support.MODEL_DIR or support.EXTERNAL) and "classify_interest" not in sigs:
        pytest.skip("the model under test (MTREC_SERVING_*) has no classify/regress signatures")
    assert "classify_interest" in sigs  # the synthetic test model is built with them
    request.model_spec.signature_name = "classify_interest"
    result = client.classify_raw(request).result
    want = reference("classify_interest", {"inputs": examples})
    assert len(result.classifications) == len(examples)
    for row, cls in enumerate(result.classifications):
        assert [c.label.encode() for c in cls.classes] == want["classes"][row].tolist()
        np.testing.assert_allclose([c.score for c in cls.classes], want["scores"][row], rtol=1e-5)

    reg = regression_pb2.RegressionRequest()
    reg.model_spec.name = support.MODEL_NAME
    reg.model_spec.signature_name = "regress_rating"
    reg.input.CopyFrom(request.input)
    values = [r.value for r in client.regress_raw(reg).result.regressions]
    want = reference("regress_rating", {"inputs": examples})["outputs"]
    np.testing.assert_allclose(values, want, rtol=1e-5)
    reg.input.example_list.ClearField("examples")
    support.expect_error(lambda: client.regress_raw(reg), INVALID, "empty")


def test_rest_predict_and_status(server: dict[str, Any]) -> None:
    srv = server["server"]
    if srv is None or srv.rest_port is None:
        pytest.skip("REST is only checked on the in-process server")
    base = f"http://127.0.0.1:{srv.rest_port}/v1/models/{support.MODEL_NAME}"
    status = json.load(urllib.request.urlopen(base, timeout=10))
    assert status["model_version_status"][0]["state"] == "AVAILABLE"

    def post(body: dict) -> dict:
        req = urllib.request.Request(f"{base}:predict", data=json.dumps(body).encode())
        return json.load(urllib.request.urlopen(req, timeout=10))

    out = post({"signature_name": "recommend", "inputs": {"user_id": [P.users[0]], "k": 4}})
    assert len(out["outputs"]["item_ids"][0]) == 4
    rows = post({"signature_name": "embed_user", "instances": [P.users[0], P.unknown_user]})
    assert len(rows["predictions"]) == 2
    for body, says in (  # a signature name that is no string was a 500; k 3.7 served as 3
            ({"signature_name": 5, "inputs": {}}, "'signature_name' must be a string, got 5"),
            ({"signature_name": "recommend", "inputs": {"user_id": [P.users[0]], "k": 3.7}},
             "input 'k' takes whole numbers, got 3.7"),
            ({"signature_name": "recommend", "inputs": {"user_id": [P.users[0]], "k": 0}}, "k")):
        with pytest.raises(urllib.error.HTTPError) as info:
            post(body)
        assert info.value.code == 400 and says in json.load(info.value)["error"]
    # Rows cannot carry recommend's one k: the error says to send columns.
    with pytest.raises(urllib.error.HTTPError) as info:
        post({"signature_name": "recommend", "instances": [{"user_id": P.users[0], "k": 4}]})
    assert info.value.code == 400
    assert ("takes 'k' as one value for the whole request, which the row format "
            "('instances') cannot give: send columns" in json.load(info.value)["error"])


@needs_local_server
def test_batching_merges_concurrent_requests_without_changing_answers(
    reference: support.InProcessModel,
) -> None:
    root = support.new_model_root()
    os.symlink(os.path.abspath(support.primary_model_dir()), os.path.join(root, "1"))
    users = [*P.users, P.unknown_user] * 4
    # An RPC thread for every request: all of them can be in flight at once.
    srv = support.start_server(root, batching=True, max_batch_size=8, threads=len(users) + 2)
    batcher = srv.manager.wait_for_version(1, timeout=120).signatures["recommend"].batcher
    assert batcher is not None
    answers: dict[int, Any] = {}
    errors: list[BaseException] = []
    # Merging is opportunistic (no timer): hold the first model call until every request
    # has reached the batcher, so the requests behind it are queued and must merge.
    first, all_in, before, run = threading.Lock(), threading.Event(), batcher.requests, batcher._run

    def held_first_call(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if first.acquire(blocking=False):
            for _ in range(6000):  # a bound on the wait (60 s), not a timing assertion
                if batcher.requests - before >= len(users):
                    all_in.set()
                    break
                time.sleep(0.01)
        return run(arrays)

    batcher._run = held_first_call
    try:
        with MtrecClient(srv.target, model_name=support.MODEL_NAME, retries=0) as client:
            barrier = threading.Barrier(len(users))

            def call(i: int) -> None:
                try:
                    barrier.wait()
                    k = 3 if i % 2 else 5  # two merge groups: k must agree within a batch
                    answers[i] = (
                        k,
                        client.predict(
                            "recommend", {"user_id": np.array([users[i]], object), "k": np.int32(k)}
                        ),
                    )
                    if i == 0:
                        support.expect_error(lambda: client.predict("recommend", {
                            "user_id": np.array([users[i]], object), "k": np.int32(0)}),
                            INVALID, "k")
                except BaseException as exc:
                    errors.append(exc)

            support.run_together(functools.partial(call, i) for i in range(len(users)))
    finally:
        srv.stop()
    assert not errors, errors
    for i, (k, got) in answers.items():
        want = reference("recommend", {"user_id": np.array([users[i]], object), "k": np.int32(k)})
        support.assert_outputs_equal(got, want)
    assert all_in.is_set() and batcher.requests >= len(users)
    # 8 requests per k (8 rows at most per call): those queued behind the held call merged.
    assert batcher.calls < batcher.requests, (batcher.calls, batcher.requests)
