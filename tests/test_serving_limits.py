"""Request size limits (`--max-request-rows`, `--max-request-elements`): checked on the
declared shape before anything is decoded or run, so a few bytes cannot ask for gigabytes.

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
from mtrec.serving.server_args import ServerConfig
from mtrec.serving.signature import RequestLimits
from tests import _serving_support as support

pytestmark = pytest.mark.skipif(support.EXTERNAL, reason="limits of the in-process server")
INVALID = grpc.StatusCode.INVALID_ARGUMENT
ROWS, ELEMENTS = 16, 1000


@pytest.fixture(scope="module")
def client() -> Iterator[MtrecClient]:
    root = support.new_model_root()
    os.symlink(os.path.abspath(support.primary_model_dir()), os.path.join(root, "1"))
    srv = support.start_server(root, max_request_rows=ROWS, max_request_elements=ELEMENTS)
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
