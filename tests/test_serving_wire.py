"""serving/wire.py: Predict answered as wire bytes is the PredictResponse the numpy path
builds (same outputs, spec, output filter, errors), and the framing is protobuf's."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

import tests._serving_support as support
from mtrec.serving import handlers, tensor_codec
from mtrec.serving.errors import ServingError
from mtrec.serving.model_manager import Servable
from mtrec.serving.wire import _varint, model_spec_field


@pytest.fixture(scope="module")
def servable() -> Servable:
    path = support.primary_model_dir()
    if path is None:
        pytest.skip("no local model to load")
    return Servable(support.MODEL_NAME, 7, path)


def _request(signature: str, inputs: dict, output_filter=()) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = support.MODEL_NAME
    request.model_spec.signature_name = signature
    for key, (value, dtype) in inputs.items():
        request.inputs[key].CopyFrom(tensor_codec.encode(value, dtype))
    request.output_filter.extend(output_filter)
    return request


def _decoded(response: predict_pb2.PredictResponse) -> dict[str, np.ndarray]:
    return {key: tensor_codec.decode(proto) for key, proto in response.outputs.items()}


@pytest.mark.parametrize("output_filter", [(), ("scores",)])
def test_wire_bytes_parse_to_the_numpy_paths_response(servable, output_filter):
    users = list(support.profile().users) + [support.profile().unknown_user]
    requests = [
        _request("recommend", {"user_id": (users, tf.string), "k": (5, tf.int32)},
                 output_filter),
        _request("embed_user", {"user_id": (users, tf.string)}),
    ]
    for request in requests:
        wire = handlers.predict_bytes(servable, request)
        assert type(wire) is bytes
        got = predict_pb2.PredictResponse.FromString(wire)
        want = handlers.predict(servable, request)
        assert got.model_spec == want.model_spec
        assert got.model_spec.version.value == 7
        expected, decoded = _decoded(want), _decoded(got)
        assert set(decoded) == set(expected) and decoded
        for key, value in expected.items():
            assert decoded[key].dtype == value.dtype and decoded[key].shape == value.shape
            np.testing.assert_array_equal(decoded[key], value)


def test_wire_path_keeps_the_errors(servable):
    bad_k = _request("recommend", {"user_id": (["1"], tf.string), "k": (0, tf.int32)})
    with pytest.raises(ServingError, match="k must"):
        handlers.predict_bytes(servable, bad_k)
    wrong_dtype = _request("recommend", {"user_id": (["1"], tf.string), "k": (5, tf.int64)})
    with pytest.raises(ServingError, match="dtype"):
        handlers.predict_bytes(servable, wrong_dtype)


def test_varint_and_spec_field_are_protobufs_encoding():
    # 300 = 0b1_0010_1100 -> 0xAC 0x02 (the protobuf encoding guide's example).
    assert _varint(1) == b"\x01" and _varint(300) == b"\xac\x02"
    field = model_spec_field("m", 3, "recommend")
    parsed = predict_pb2.PredictResponse.FromString(field).model_spec
    assert (parsed.name, parsed.version.value, parsed.signature_name) == ("m", 3, "recommend")
