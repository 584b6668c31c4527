"""TensorProto <-> numpy conversion for the request hot path.

`tf.make_tensor_proto` / `tf.make_ndarray` validate and convert element by
element; for the dense numeric and string tensors that make up nearly every
request a direct fill of (or `np.frombuffer` over) `tensor_content` /
`string_val` is several times faster, so those take a fast path and
everything else falls back to TensorFlow's converters. Responses are written
in place (`encode_into`) rather than built and copied.

Responses carry numbers in the typed value fields (`float_val`, `int_val`, ...), as
TF Serving's Predict writes them (Tensor::AsProtoField, its default "for backward
compatibility", predict_util.cc): clients written against it read
`outputs["scores"].float_val`, which a `tensor_content` answer leaves empty. Requests
are sent as `tensor_content`, as `tf.make_tensor_proto` sends them; both are read.
"""

from __future__ import annotations

import base64
import sys
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

_NUMERIC_FAST: dict[np.dtype, int] = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
    np.dtype(np.bool_): types_pb2.DT_BOOL,
}
# tensor_content is little-endian on the wire; a native buffer is only that here.
_LITTLE_ENDIAN = sys.byteorder == "little"


def as_bytes(value: Any) -> bytes:
    """A string tensor element from str (UTF-8), bytes, np.bytes_ or anything printable."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, np.bytes_):
        return bytes(value)
    return str(value).encode("utf-8")


def encode(value: Any, dtype: tf.DType | None = None) -> tensor_pb2.TensorProto:
    """Any array-like (numpy, tf.Tensor, lists, scalars) as a TensorProto.

    `dtype` forces the element type (e.g. int32 for `k`, which Python would
    otherwise send as int64).
    """
    proto = tensor_pb2.TensorProto()
    encode_into(proto, value, dtype)
    return proto


def encode_into(proto: tensor_pb2.TensorProto, value: Any, dtype: tf.DType | None = None,
                *, typed: bool = False) -> None:
    """`encode`, written into an empty `proto` (e.g. a response's output map entry);
    `typed`: numbers in the typed value fields, as TF Serving answers (module doc).

    Filling the message in place saves building a second one and copying it.
    """
    if isinstance(value, tf.Tensor):
        value = value.numpy()
    if dtype is not None and dtype != tf.string:
        arr = np.asarray(value, dtype=dtype.as_numpy_dtype)
    elif dtype == tf.string:
        arr = np.asarray(value, dtype=object)
    else:
        arr = np.asarray(value)
    kind = arr.dtype.kind
    if kind in ("U", "S", "O"):
        flat = arr.reshape(-1).tolist()
        if kind != "S" and not all(type(v) is bytes for v in flat):
            flat = [as_bytes(v) for v in flat]
        proto.dtype = types_pb2.DT_STRING
        _fill_shape(proto, arr.shape)
        proto.string_val.extend(flat)
        return
    enum = _NUMERIC_FAST.get(arr.dtype) if _LITTLE_ENDIAN else None
    if enum is not None:
        proto.dtype = enum
        _fill_shape(proto, arr.shape)
        if typed:
            proto.MergeFromString(value_field(enum, arr))
        else:
            proto.tensor_content = arr.tobytes()  # C order whatever the layout
        return
    proto.CopyFrom(tf.make_tensor_proto(arr))


def _fill_shape(proto: tensor_pb2.TensorProto, shape: tuple[int, ...]) -> None:
    proto.tensor_shape.SetInParent()  # a scalar's empty shape is still written, as TF does
    dims = proto.tensor_shape.dim
    for d in shape:
        dims.add().size = d


# TensorProto's typed value fields (tensor.proto), by dtype: what AsProtoField fills.
_FIELD_NUMBER = {types_pb2.DT_FLOAT: 5, types_pb2.DT_DOUBLE: 6, types_pb2.DT_INT32: 7,
                 types_pb2.DT_INT64: 10, types_pb2.DT_BOOL: 11}
_LENGTH_DELIMITED = 2
_FIXED_WIDTH = (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE)  # packed: the raw little-endian bytes


def varint(value: int) -> bytes:
    """A protobuf varint (a negative int as its 64-bit two's complement, as int32 fields)."""
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(field: int, payload: bytes) -> bytes:
    """A serialized length-delimited field: tag, length, payload."""
    return varint(field << 3 | _LENGTH_DELIMITED) + varint(len(payload)) + payload


def value_field(enum: int, arr: np.ndarray) -> bytes:
    """`arr`'s values as TensorProto's packed typed field for `enum` (a dtype
    `_NUMERIC_FAST` maps to; little-endian host): what appending to a serialized
    TensorProto without tensor_content makes it hold them. Nothing for no values."""
    if not arr.size:
        return b""
    if enum in _FIXED_WIDTH:
        payload = np.ascontiguousarray(arr).tobytes()
    else:
        payload = b"".join(varint(int(v)) for v in arr.reshape(-1).tolist())
    return length_delimited(_FIELD_NUMBER[enum], payload)


_NUMPY_BY_ENUM = {enum: dtype for dtype, enum in _NUMERIC_FAST.items()}


def numpy_dtype(enum: int) -> np.dtype | None:
    """The numpy dtype of a numeric DataType the fast paths read and write, else None."""
    return _NUMPY_BY_ENUM.get(enum) if _LITTLE_ENDIAN else None
_VALUE_FIELD = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_BOOL: "bool_val",
}


def decode(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """A TensorProto as a numpy array (strings come back as an object array of bytes).

    Fast paths cover fully specified string/numeric tensors; the rest (half
    floats, repeated-last-value shorthand, exotic types) go to tf.make_ndarray.
    """
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    size = 1
    for d in shape:
        size *= d
    if proto.dtype == types_pb2.DT_STRING:
        if len(proto.string_val) == size:
            return np.array(list(proto.string_val) if size else [], dtype=object).reshape(shape)
    elif proto.dtype in _NUMPY_BY_ENUM and _LITTLE_ENDIAN:
        np_dtype = _NUMPY_BY_ENUM[proto.dtype]
        if proto.tensor_content:
            return np.frombuffer(proto.tensor_content, dtype=np_dtype).reshape(shape)
        values = getattr(proto, _VALUE_FIELD[proto.dtype])
        if len(values) == size:
            return np.array(values, dtype=np_dtype).reshape(shape)
    return tf.make_ndarray(proto)


def dtype_name(enum: int) -> str:
    """'int32' for DT_INT32, etc.; the raw enum name for anything TF cannot map."""
    try:
        return tf.dtypes.as_dtype(enum).name
    except TypeError:
        return types_pb2.DataType.Name(enum) if enum in types_pb2.DataType.values() else str(enum)


def to_jsonable(arr: np.ndarray) -> Any:
    """Nested lists for JSON: utf-8 text for strings, {"b64": ...} for binary."""
    if arr.dtype.kind in ("O", "S"):
        return _map_nested(arr.tolist(), _bytes_to_json)
    return arr.tolist()


def _bytes_to_json(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def _map_nested(value: Any, fn: Any) -> Any:
    if isinstance(value, list):
        return [_map_nested(v, fn) for v in value]
    return fn(value)
