"""The server's pieces in process: warmup files, the tensor codec, the batcher and the
signature call path (tests/test_serving_client.py starts servers)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from typing import Any

import grpc
import numpy as np
import pytest
import tensorflow as tf

from mtrec.serving import signature, tensor_codec
from mtrec.serving.batching import BatchingOptions, SignatureBatcher
from mtrec.serving.errors import ServingError
from mtrec.serving.model_manager import Servable
from mtrec.serving.warmup import read_warmup_logs, write_warmup_requests
from tests import _serving_support as support


# ---------------------------------------------------------------- warmup
def test_warmup_file_round_trips_with_signature_dtypes(tmp_path: Any) -> None:
    model = str(tmp_path / "m")
    shutil.copytree(support.second_model_dir(), model)
    path = write_warmup_requests(
        model, [("recommend", {"user_id": ["1", "2"], "k": 10}), ("embed_item", {"item_id": ["7"]})]
    )
    assert path.endswith(os.path.join("assets.extra", "tf_serving_warmup_requests"))
    logs = read_warmup_logs(model)
    assert len(logs) == 2
    request = logs[0].predict_log.request
    assert request.model_spec.signature_name == "recommend"
    assert request.inputs["k"].dtype == tf.int32.as_datatype_enum  # cast from Python int
    assert tensor_codec.decode(request.inputs["user_id"]).tolist() == [b"1", b"2"]
    with pytest.raises(ValueError, match="not in the model"):
        write_warmup_requests(model, [("nope", {"user_id": ["1"]})])
    with pytest.raises(ValueError, match="not in signature"):
        write_warmup_requests(model, [("recommend", {"bogus": ["1"]})])


# ----------------------------------------------------------------- codec
@pytest.mark.parametrize(
    "value",
    [
        np.array([[1.5, -2.0]], dtype=np.float32),
        np.array([1, 2, 3], dtype=np.int64),
        np.int32(7),
        np.array([True, False]),
        np.array([[b"a", b"\xff\x00"], [b"", b"xyz"]], dtype=object),
        np.array(["caf\u00e9"]),
        np.array([1.0, 2.0], dtype=np.float16),
        np.arange(6, dtype=np.float32).reshape(2, 3).T,  # not C-contiguous
        np.asfortranarray(np.arange(6, dtype=np.int64).reshape(3, 2)),
        np.array([["a", b"b\xff"], ["caf\u00e9", b""]], dtype=object),  # str and bytes mixed
        np.zeros((2, 0), dtype=np.float32),
    ],
)
def test_codec_matches_tensorflow(value: Any) -> None:
    proto = tensor_codec.encode(value)
    want = tf.make_ndarray(tf.make_tensor_proto(value))
    got = tensor_codec.decode(proto)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert got.tolist() == want.tolist()


def test_codec_forced_dtype_and_json() -> None:
    assert tensor_codec.encode(3, tf.int32).dtype == tf.int32.as_datatype_enum
    assert tensor_codec.encode([1, 2], tf.string).string_val == [b"1", b"2"]
    arr = np.array([[b"ok", b"\xff"]], dtype=object)
    assert tensor_codec.to_jsonable(arr) == [["ok", {"b64": "/w=="}]]


# --------------------------------------------------------------- batcher
def test_batcher_merges_queued_requests_and_keeps_errors_apart() -> None:
    calls: list[list[int]] = []
    gate = threading.Event()

    def run(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = arrays["x"]
        calls.append(x.tolist())
        if len(calls) == 1:
            gate.wait(5)  # hold the first call so the others queue up behind it
        if (x < 0).any():
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "negative x")
        return {"y": x * 10 + arrays["k"]}

    batcher = SignatureBatcher("sig", run, ["x"], BatchingOptions(max_batch_size=4))
    results: dict[int, Any] = {}

    def submit(i: int, k: int = 1) -> None:
        try:
            results[i] = batcher.run({"x": np.array([i]), "k": np.int32(k)})["y"].tolist()
        except ServingError as exc:
            results[i] = exc.code

    first = threading.Thread(target=submit, args=(100,))
    first.start()
    while not calls:
        time.sleep(0.001)
    others = [threading.Thread(target=submit, args=(i,)) for i in (1, 2, -3, 4, 5)]
    others.append(threading.Thread(target=submit, args=(7, 2)))  # different k: own batch
    for t in others:
        t.start()
    while batcher.requests < 7:
        time.sleep(0.001)
    gate.set()
    for t in [first, *others]:
        t.join()
    assert results[100] == [1001] and results[7] == [72]
    assert results[1] == [11] and results[5] == [51] and results[4] == [41]
    assert results[-3] == grpc.StatusCode.INVALID_ARGUMENT
    merged = [c for c in calls if len(c) > 1]
    assert merged and max(len(c) for c in merged) <= 4  # merged, within max_batch_size


# ------------------------------------------------------ signature call path
@pytest.fixture(scope="module")
def servable() -> Servable:
    """The primary model loaded the way the server loads it (no server needed)."""
    return Servable("mtrec", 1, support.primary_model_dir() or support.second_model_dir())


def _signature_inputs(servable: Servable) -> dict[str, dict[str, np.ndarray]]:
    profile = support.profile()
    users = np.array(profile.users[:2], dtype=object)
    rec = servable.signatures["recommend"]
    top = rec.run(rec.to_tensors({"user_id": users[:1], "k": np.array(4, np.int32)}))
    items = top["item_ids"][0]
    return {
        "recommend": {"user_id": users, "k": np.array(3, np.int32)},
        "score": {"user_id": users, "item_ids": np.stack([items, items[::-1]])},
        "user_interest": {"user_id": users},
        "embed_user": {"user_id": users},
        "embed_item": {"item_id": items},
        "serving_default": {
            "examples": profile.examples(list(profile.users[:2]), [items[0].decode()] * 2)
        },
    }


def _public_call(servable: Servable, name: str, arrays: dict[str, np.ndarray]) -> dict:
    fn = servable._module.signatures[name]
    specs = fn.structured_input_signature[1]
    out = fn(**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in arrays.items()})
    return {k: v.numpy() for k, v in out.items()}


@pytest.mark.parametrize("name", support.CONTRACT_SIGNATURES)
def test_server_call_path_matches_the_public_call(servable: Servable, name: str) -> None:
    """The direct runtime call (and its fallback) answers exactly as the SavedModel does."""
    sig = servable.signatures[name]
    arrays = _signature_inputs(servable)[name]
    want = _public_call(servable, name, arrays)
    if not support.MODEL_DIR:
        assert sig._direct is not None  # the fast path applies to the contract model
    support.assert_outputs_equal(sig.run(sig.to_tensors(arrays)), want)
    direct, sig._direct = sig._direct, None  # the regular flat-call fallback
    try:
        support.assert_outputs_equal(sig.run(sig.to_tensors(arrays)), want)
    finally:
        sig._direct = direct


def test_server_call_path_keeps_tf_error_status_and_a_clean_message(servable: Servable) -> None:
    sig = servable.signatures["recommend"]
    users = np.array(support.profile().users[:1], dtype=object)
    with pytest.raises(ServingError) as info:
        sig.run(sig.to_tensors({"user_id": users, "k": np.array(0, np.int32)}))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    message = info.value.message
    assert "k" in message and "{{" not in message and "[[" not in message, message


def test_unbatched_input_tensors_are_cached_by_value(servable: Servable) -> None:
    sig = servable.signatures["recommend"]
    users = np.array(support.profile().users[:1], dtype=object)
    sig._const_cache.clear()
    ks = [3, 5, 3, 7]
    tensors = [sig.to_tensors({"user_id": users, "k": np.array(k, np.int32)})["k"] for k in ks]
    assert [int(t.numpy()) for t in tensors] == ks
    assert tensors[2] is tensors[0]  # k=3 again: the cached tensor, not a new one
    assert len(sig._const_cache) == 3  # 3, 5, 7
    for k in range(signature._CONST_CACHE_SIZE + 50):  # distinct values: bounded cache
        sig.to_tensors({"user_id": users, "k": np.array(k, np.int32)})
    assert len(sig._const_cache) <= signature._CONST_CACHE_SIZE
    fresh = sig.to_tensors({"user_id": users, "k": np.array(10**6, np.int32)})["k"]
    assert int(fresh.numpy()) == 10**6  # beyond the cap: still correct, just not cached
