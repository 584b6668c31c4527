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

Numeric outputs come back in the typed value fields (`float_val`, ...), strings as
`string_val`, as TF Serving answers (tensor_codec's module doc): `serialize_tensor`
writes `tensor_content`, which `as_proto_field` moves to the typed field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework.types_pb2 import DT_FLOAT
from tensorflow_serving.apis import model_pb2

from mtrec.serving.tensor_codec import length_delimited as _field
from mtrec.serving.tensor_codec import numpy_dtype, value_field

# PredictResponse: map<string, TensorProto> outputs = 1; ModelSpec model_spec = 2.
# A map entry is a message: string key = 1; TensorProto value = 2.
_OUTPUTS, _MODEL_SPEC, _KEY, _VALUE = 1, 2, 1, 2


# serialize_tensor's float32 TensorProto: dtype = 1 (varint DT_FLOAT), tensor_shape = 2,
# tensor_content = 4, in that order. Packed float_val (5) holds the same little-endian
# bytes, so the move is a new tag: 0.8 us against 6.6 for a parse and re-serialize of a
# [1, 10] output (2026-12-07); every `recommend` and `score` answer has two.
_FLOAT_PREFIX = bytes([1 << 3, DT_FLOAT])
_SHAPE_TAG, _CONTENT_TAG, _FLOAT_VAL_TAG = 2 << 3 | 2, 4 << 3 | 2, 5 << 3 | 2


def _varint_end(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7


def as_proto_field(serialized: bytes) -> bytes:
    """A serialized TensorProto with its `tensor_content` moved to the typed value field
    (TF Serving's AsProtoField); unchanged without content, or for a dtype the codec has
    no typed field for."""
    if serialized.startswith(_FLOAT_PREFIX) and serialized[2] == _SHAPE_TAG:
        length, pos = _varint_end(serialized, 3)
        pos += length
        if pos == len(serialized):
            return serialized  # no values
        if serialized[pos] == _CONTENT_TAG:
            return serialized[:pos] + bytes([_FLOAT_VAL_TAG]) + serialized[pos + 1:]
    proto = tensor_pb2.TensorProto.FromString(serialized)
    dtype = numpy_dtype(proto.dtype)
    if not proto.tensor_content or dtype is None:
        return serialized
    values = np.frombuffer(proto.tensor_content, dtype=dtype)
    proto.ClearField("tensor_content")
    return proto.SerializeToString() + value_field(proto.dtype, values)


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
        # Each output's map-entry key field, ready to prepend to its value.
        self._keys = {key: _field(_KEY, key.encode()) for key in outputs}

    def response(self, protos: dict[str, bytes], outputs: Sequence[str], spec_field: bytes
                 ) -> bytes:
        """PredictResponse bytes with these outputs (serialized TensorProtos) and spec."""
        parts = [_field(_OUTPUTS, self._keys[key] + _field(_VALUE, as_proto_field(protos[key])))
                 for key in outputs]
        parts.append(spec_field)
        return b"".join(parts)
