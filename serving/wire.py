"""Predict responses as wire bytes, the output TensorProtos serialized by TF itself.

With the model answer cached (models/answer_cache.py) the Python around the
call is most of what a `recommend` request costs in the server: turning each
output tensor into numpy, filling a PredictResponse field by field and
serializing it (numpy + encode + serialize: 184 us of 1,360 on the real model,
72 of 324 on the synthetic one, before this; benchmarks/results/serving.md). Here each
signature is wrapped at load time in a function that returns every output
already serialized (`tf.io.serialize_tensor`: the TensorProto, in C++, in the
same runtime call), and the response is those bytes framed as PredictResponse
fields around a model_spec serialized once per version: what the client
parses is an ordinary PredictResponse (tests/test_serving_wire.py). Same run,
real `recommend`: those three stages 34.5 us against 86.4 on the numpy path,
all stages around the model 102 against 164 us.

Numeric outputs come back as `tensor_content`, strings as `string_val`, as
tensor_codec.encode writes them; any client decodes either.

Batched calls (serving/batching.py) return numpy rows that are split between
requests after the call, so TF cannot serialize each request's share. There
`tensor_bytes` writes the same TensorProto bytes from numpy in a few byte
concatenations, rather than filling a protobuf message field by field and
serializing the response (tests/test_serving_wire.py checks them byte for byte
against protobuf's).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import model_pb2

from mtrec.serving import tensor_codec

# PredictResponse: map<string, TensorProto> outputs = 1; ModelSpec model_spec = 2.
# A map entry is a message: string key = 1; TensorProto value = 2.
_OUTPUTS, _MODEL_SPEC, _KEY, _VALUE = 1, 2, 1, 2
# TensorProto: DataType dtype = 1; TensorShapeProto tensor_shape = 2;
# bytes tensor_content = 4; repeated bytes string_val = 8.
# TensorShapeProto: repeated Dim dim = 2; a Dim: int64 size = 1.
_DTYPE, _SHAPE, _CONTENT, _STRING_VAL, _DIM, _SIZE = 1, 2, 4, 8, 2, 1
_VARINT, _LENGTH_DELIMITED = 0, 2


def _tag(field: int, wire_type: int = _LENGTH_DELIMITED) -> bytes:
    return bytes([field << 3 | wire_type])


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(field: int, payload: bytes) -> bytes:
    return _tag(field) + _varint(len(payload)) + payload


@functools.lru_cache(maxsize=1024)
def _shape_field(shape: tuple[int, ...]) -> bytes:
    """A TensorProto's tensor_shape field, as protobuf writes it: none for a scalar (no
    dim was added), and a size of 0 left out of its dim."""
    if not shape:
        return b""
    dims = b"".join(
        _field(_DIM, _tag(_SIZE, _VARINT) + _varint(d) if d else b"") for d in shape)
    return _field(_SHAPE, dims)


# Each fast-path dtype's TensorProto dtype field.
_NUMERIC_DTYPE_FIELDS = {dtype: _tag(_DTYPE, _VARINT) + _varint(enum)
                         for dtype, enum in tensor_codec.NUMERIC_ENUMS.items()}
_STRING_DTYPE_FIELD = _tag(_DTYPE, _VARINT) + _varint(types_pb2.DT_STRING)


def tensor_bytes(arr: np.ndarray) -> bytes:
    """A numpy array as serialized TensorProto bytes, as tensor_codec.encode writes it.

    Little-endian numeric and bytes/object-of-bytes arrays are written here;
    anything else (text, half floats, a big-endian host) goes through
    tensor_codec.encode and protobuf.
    """
    dtype_field = _NUMERIC_DTYPE_FIELDS.get(arr.dtype) if tensor_codec.LITTLE_ENDIAN else None
    if dtype_field is not None:
        content = arr.tobytes()
        return (dtype_field + _shape_field(arr.shape)
                + (_field(_CONTENT, content) if content else b""))
    if arr.dtype.kind in ("O", "S"):
        values = arr.reshape(-1).tolist()
        if all(type(v) is bytes for v in values):
            tag = _tag(_STRING_VAL)
            return (_STRING_DTYPE_FIELD + _shape_field(arr.shape)
                    + b"".join(tag + _varint(len(v)) + v for v in values))
    return tensor_codec.encode(arr).SerializeToString()


def response(protos: dict[str, bytes], outputs: Sequence[str], spec_field: bytes) -> bytes:
    """PredictResponse bytes with these outputs (serialized TensorProtos) and spec."""
    parts = [_field(_OUTPUTS, _key_field(key) + _field(_VALUE, protos[key])) for key in outputs]
    parts.append(spec_field)
    return b"".join(parts)


@functools.lru_cache(maxsize=256)
def _key_field(key: str) -> bytes:
    """An output's map-entry key field, ready to prepend to its value."""
    return _field(_KEY, key.encode())


def model_spec_field(name: str, version: int, signature_name: str) -> bytes:
    """The response's model_spec field, serialized once per (version, signature)."""
    spec = model_pb2.ModelSpec(name=name, signature_name=signature_name)
    spec.version.value = version
    return _field(_MODEL_SPEC, spec.SerializeToString())


class SerializedOutputs:
    """A signature whose outputs come back as serialized TensorProtos."""

    def __init__(self, fn: Any, input_order: Sequence[str], specs: dict[str, tf.TensorSpec],
                 outputs: Sequence[str]) -> None:
        order = tuple(input_order)

        def serialized(*flat: tf.Tensor) -> dict[str, tf.Tensor]:
            result = fn(**dict(zip(order, flat, strict=True)))
            return {key: tf.io.serialize_tensor(result[key]) for key in outputs}

        self.function = tf.function(serialized, autograph=False).get_concrete_function(
            *[specs[key] for key in order])
