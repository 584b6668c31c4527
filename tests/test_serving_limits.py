"""Request size limits (`--max-request-rows`, `--max-request-elements`,
`--max-request-pairs`): checked on the declared shape before anything is decoded or run,
so a few bytes cannot ask for gigabytes.

Needs the in-process server (TF Serving has no such limits).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2

from mtrec.serving import tensor_codec
from mtrec.serving.client import MtrecClient
from mtrec.serving.errors import ServingError
from mtrec.serving.request_checks import PairBudget
from mtrec.serving.server_args import ServerConfig
from mtrec.serving.signature import RequestLimits
from tests import _serving_support as support

pytestmark = pytest.mark.skipif(support.EXTERNAL, reason="limits of the in-process server")
INVALID = grpc.StatusCode.INVALID_ARGUMENT
ROWS, ELEMENTS, PAIRS = 16, 2000, 1600
CATALOGUE = 300  # the synthetic model's items (tests/_serving_support.py)


@pytest.fixture(scope="module")
def client() -> Iterator[MtrecClient]:
    root = support.new_model_root()
    os.symlink(os.path.abspath(support.primary_model_dir()), os.path.join(root, "1"))
    srv = support.start_server(root, max_request_rows=ROWS, max_request_elements=ELEMENTS,
                               max_request_pairs=PAIRS)
    srv.manager.wait_for_version(1, timeout=120)
    with MtrecClient(srv.target, model_name=support.MODEL_NAME, retries=0) as c:
        yield c
    srv.stop()


def _users(n: int) -> np.ndarray:
    return np.array([f"u{i}" for i in range(n)], dtype=object)


def _embed_user(proto: tensor_pb2.TensorProto) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = support.MODEL_NAME
    request.model_spec.signature_name = "embed_user"
    request.inputs["user_id"].CopyFrom(proto)
    return request


def _declared(dims: list[int]) -> tensor_pb2.TensorProto:
    """One string value declared as a tensor of `dims` (TF's repeated-last-value form)."""
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"1"])
    for d in dims:
        proto.tensor_shape.dim.add().size = d
    return proto


def test_defaults_bound_every_request() -> None:
    config = ServerConfig()
    assert config.max_request_rows == RequestLimits().max_rows == 8192
    assert config.max_request_elements == RequestLimits().max_elements == 1 << 20
    assert config.max_request_pairs == RequestLimits().max_pairs == 1 << 18


@pytest.mark.parametrize(("signature", "rows", "k", "items"), [
    ("recommend", 1024, 10, 0),  # the RetrievalEvaluator's batches (in process)
    ("recommend", 512, 50, 0),  # benchmarks/served_metrics.py's (in process)
    ("recommend_from_items", 1024, 10, 0),
    ("score", 32, 1024, 1024),  # benchmarks/quality.py's 32,768 pairs a call
    ("score", 4096, 1, 1),  # served_metrics.served_ratings: one item a row
])
def test_the_default_pair_budget_passes_what_the_repo_sends(
        signature: str, rows: int, k: int, items: int) -> None:
    budget = PairBudget(signature, {"user_id": 1, "item_ids": 2 if items else 1, "k": 0},
                        RequestLimits().max_pairs, lambda: 800)
    assert budget.applies
    assert 0 < budget.pairs(rows, {"item_ids": (rows, items)}, lambda: k) <= budget.limit


def test_retrieve_counts_its_catalogue_scores_against_the_pair_budget() -> None:
    """retrieve scores every catalogue item a row (4 bytes each): 768 scores take a
    pair's memory, so at 10 pairs and 1,000 items, 7 rows (7,000 scores, 9.1 -> 10 pairs)
    pass and 8 (8,000 scores, 10.4 -> 11) are refused; an unknown catalogue or a k past it
    is left to the model."""
    def budget(catalogue: int) -> PairBudget:
        return PairBudget("retrieve", {"user_id": 1, "k": 0}, 10, lambda: catalogue)

    assert budget(1000).applies and budget(1000).pairs(7, {}, lambda: 10) == 10
    with pytest.raises(ServingError) as refused:
        budget(1000).pairs(8, {}, lambda: 10)
    assert refused.value.message == (
        "signature 'retrieve' would score 8 rows x 1000 catalogue items = 8000 similarity "
        "scores, as much memory as 11 pairs (768 scores a pair); this server takes at most 10 "
        "(user, item) pairs per request (--max-request-pairs): split the batch")
    assert budget(0).pairs(8, {}, lambda: 10) == 0  # the model cannot say its size
    assert budget(1000).pairs(8, {}, lambda: 1001) == 0  # the model's own refusal
    assert not PairBudget("retrieve", {"user_id": 1, "k": 0}, 0, lambda: 1000).applies
    # The repo's own batches pass the default: served_metrics' 512 users over ML-100K.
    default = PairBudget("retrieve", {"user_id": 1, "k": 0}, RequestLimits().max_pairs,
                         lambda: 1682)
    assert default.pairs(512, {}, lambda: 100) == 1122
    # 201 users over 1M items pass (~0.8 GB of scores), 202 do not.
    default = PairBudget("retrieve", {"user_id": 1, "k": 0}, RequestLimits().max_pairs,
                         lambda: 1_000_000)
    assert default.pairs(201, {}, lambda: 10) <= RequestLimits().max_pairs
    with pytest.raises(ServingError):
        default.pairs(202, {}, lambda: 10)


def test_rows_up_to_the_limit_pass_and_beyond_it_are_refused(client: MtrecClient) -> None:
    assert client.embed_user("1").size > 0
    assert client.predict("embed_user", {"user_id": _users(ROWS)})["embedding"].shape[0] == ROWS
    assert len(client.recommend_many([f"u{i}" for i in range(ROWS)], 3)) == ROWS
    support.expect_error(
        lambda: client.recommend_many([f"u{i}" for i in range(ROWS + 1)], 3),
        INVALID, f"{ROWS + 1} rows", "--max-request-rows",
    )
    items = np.array([["1"] * 2] * (ROWS + 1), dtype=object)
    support.expect_error(
        lambda: client.predict("score", {"user_id": _users(ROWS + 1), "item_ids": items}),
        INVALID, "--max-request-rows",
    )


def test_a_short_request_declaring_a_huge_tensor_is_refused_at_once(
    client: MtrecClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 40 bytes on the wire, 2**40 elements once decoded: refused from the shape alone,
    # before the server decodes it (a decode would build 2**40 strings).
    decoded: list[tuple[int, ...]] = []  # declared shape of every tensor decoded (this process)
    real_decode = tensor_codec.decode

    def spy(proto: tensor_pb2.TensorProto) -> np.ndarray:
        shape = tuple(d.size for d in proto.tensor_shape.dim)
        decoded.append(shape)
        if math.prod(shape) > ELEMENTS:  # a regression fails the test, not the machine
            raise MemoryError(f"test spy: not decoding a {list(shape)} tensor")
        return real_decode(proto)

    monkeypatch.setattr(tensor_codec, "decode", spy)
    support.expect_error(lambda: client.predict_raw(_embed_user(_declared([2**40]))),
                         INVALID, "--max-request-rows")
    items = np.array([["1"] * (ELEMENTS // 2 + 1)] * 2, dtype=object)  # 2 rows, too many items
    support.expect_error(
        lambda: client.predict("score", {"user_id": _users(2), "item_ids": items}),
        INVALID, "elements", "--max-request-elements",
    )
    assert (2**40,) not in decoded and items.shape not in decoded
    assert all(math.prod(shape) <= ELEMENTS for shape in decoded), decoded
    # Within the limits the same form is honoured, as TF Serving does, and decoded: the
    # spy sees the server's decoding.
    out = client.predict_raw(_embed_user(_declared([3])))
    assert list(out.outputs["embedding"].tensor_shape.dim)[0].size == 3
    assert (3,) in decoded


def test_negative_dimensions_are_refused(client: MtrecClient) -> None:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"1"])
    proto.tensor_shape.dim.add().size = -1
    support.expect_error(lambda: client.predict_raw(_embed_user(proto)), INVALID,
                         "negative dimension")


def _rows(n: int, k: int) -> dict[str, np.ndarray]:
    return {"user_id": _users(n), "k": np.int32(k)}


def test_pairs_up_to_the_budget_pass_and_beyond_it_are_refused(client: MtrecClient) -> None:
    """recommend re-ranks max(100, 4k) candidates a row, at most the catalogue; score
    scores each item it is given: rows x those, at most PAIRS a request."""
    at_budget = {  # rows x candidates = PAIRS exactly
        "recommend": _rows(ROWS, 25),  # 16 x 100
        "recommend_from_items": {"item_ids": np.array([["1", "2"]] * 8, dtype=object),
                                 "k": np.int32(50)},  # 8 x 200
        "score": {"user_id": _users(ROWS), "item_ids": np.array([["1"] * 100] * ROWS,
                                                                 dtype=object)},  # 16 x 100
    }
    for signature, inputs in at_budget.items():
        assert client.predict(signature, inputs)["scores"].shape[0] == len(
            inputs.get("user_id", inputs.get("item_ids")))
    assert client.predict("recommend", _rows(5, 100))["scores"].shape == (5, 100)  # 5 x 300
    support.expect_error(lambda: client.predict("recommend", _rows(ROWS, 26)), INVALID,
                         "16 rows x 104 candidates = 1664 pairs", f"at most {PAIRS}",
                         "--max-request-pairs", "lower k")
    support.expect_error(  # 4 x 400 candidates, capped at the catalogue's 300: 1800
        lambda: client.predict("recommend", _rows(6, 100)), INVALID,
        f"6 rows x {CATALOGUE} candidates = 1800 pairs", "--max-request-pairs")
    support.expect_error(
        lambda: client.predict("recommend_from_items", {
            "item_ids": np.array([["1"]] * 9, dtype=object), "k": np.int32(50)}),
        INVALID, "9 rows x 200 candidates = 1800 pairs", "--max-request-pairs")
    items = np.array([["1"] * 101] * ROWS, dtype=object)
    support.expect_error(
        lambda: client.predict("score", {"user_id": _users(ROWS), "item_ids": items}),
        INVALID, "16 rows x 101 item ids = 1616 pairs", "--max-request-pairs")
    # A k past the catalogue is the model's refusal, naming its size, whatever the rows:
    # MtrecClient then asks for the whole catalogue (300 candidates a row, in budget).
    support.expect_error(lambda: client.predict("recommend", _rows(ROWS, 5000)), INVALID,
                         "k must not exceed the catalogue size", f"limit = {CATALOGUE}")
    answers = client.recommend_many(["1", "2"], 5000)
    assert all(0 < len(a["items"]) <= CATALOGUE for a in answers)
