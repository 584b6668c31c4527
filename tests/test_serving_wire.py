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
from mtrec.serving.tensor_codec import varint
from mtrec.serving.wire import as_proto_field, model_spec_field


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
        for response in (got, want):  # TF Serving's AsProtoField: typed fields, no content
            for key, proto in response.outputs.items():
                if proto.dtype == tf.float32.as_datatype_enum:
                    assert not proto.tensor_content and len(proto.float_val) == np.prod(
                        [d.size for d in proto.tensor_shape.dim]), key
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
    assert varint(1) == b"\x01" and varint(300) == b"\xac\x02"
    assert varint(-1) == b"\xff" * 9 + b"\x01"  # an int32 -1: 64-bit two's complement
    field = model_spec_field("m", 3, "recommend")
    parsed = predict_pb2.PredictResponse.FromString(field).model_spec
    assert (parsed.name, parsed.version.value, parsed.signature_name) == ("m", 3, "recommend")


_TYPED_FIELD = {np.float32: "float_val", np.float64: "double_val", np.int32: "int_val",
                np.int64: "int64_val", np.bool_: "bool_val"}


@pytest.mark.parametrize("value", [
    np.array([[1.5, -2.0], [0.0, 3.25]], np.float32),
    np.array([1e300, -0.5], np.float64),
    np.array([0, -1, 2**31 - 1, -(2**31)], np.int32),
    np.array([[-(2**63), 2**63 - 1, 300]], np.int64),
    np.array([True, False, True]),
    np.arange(6, dtype=np.float32).reshape(2, 3).T,  # not C-contiguous
    np.zeros((2, 0), np.float32),
    np.array(2.5, np.float32),  # a scalar: an empty shape
])
def test_numeric_outputs_fill_the_typed_fields_as_tf_serving_does(value: np.ndarray) -> None:
    """What protobuf itself writes for a TensorProto whose values are in the typed field
    (TF Serving's AsProtoField), from both the numpy path and the serialized one."""
    field = _TYPED_FIELD[value.dtype.type]
    expected = tf.make_tensor_proto(value)  # dtype and shape; its values are replaced
    expected.ClearField("tensor_content")
    expected.ClearField(field)
    getattr(expected, field).extend(value.reshape(-1).tolist())
    filled = predict_pb2.PredictResponse().outputs["x"]
    tensor_codec.encode_into(filled, value, typed=True)
    assert filled == expected
    moved = as_proto_field(tf.io.serialize_tensor(tf.constant(value)).numpy())
    assert moved == expected.SerializeToString()
    np.testing.assert_array_equal(tensor_codec.decode(filled), value)


def test_a_dtype_without_a_typed_path_keeps_its_content() -> None:
    half = tf.io.serialize_tensor(tf.constant([1.0, 2.0], tf.float16)).numpy()
    assert as_proto_field(half) == half
    strings = tf.io.serialize_tensor(tf.constant([b"a", b"b"])).numpy()
    assert as_proto_field(strings) == strings
