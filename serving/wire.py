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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf
from tensorflow_serving.apis import model_pb2

# PredictResponse: map<string, TensorProto> outputs = 1; ModelSpec model_spec = 2.
# A map entry is a message: string key = 1; TensorProto value = 2.
_OUTPUTS, _MODEL_SPEC, _KEY, _VALUE = 1, 2, 1, 2
_LENGTH_DELIMITED = 2


def _tag(field: int) -> bytes:
    return bytes([field << 3 | _LENGTH_DELIMITED])


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(field: int, payload: bytes) -> bytes:
    return _tag(field) + _varint(len(payload)) + payload


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
        parts = [_field(_OUTPUTS, self._keys[key] + _field(_VALUE, protos[key]))
                 for key in outputs]
        parts.append(spec_field)
        return b"".join(parts)
