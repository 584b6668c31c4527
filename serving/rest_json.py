"""JSON <-> tensors for the REST API, as TF Serving's json_tensor.cc converts them.

Clients written for TF Serving send what its converter takes and read what it
answers, so the checks, their order and their words follow json_tensor.cc:
a value must already be of the input's JSON type (no "3" or 3.0 or true for an
int32, no 1 or null for a string, no int past the type's range: numpy would
have wrapped it silently), `{"b64": "..."}` is one binary value wherever a value
may stand, rows must each carry exactly the signature's inputs, and every
nested list must be as long as the first one at its level. Floats go out as
the float32 value's shortest decimal (0.2, not 0.20000000298023224), as
TF Serving writes them.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow_serving.apis import input_pb2

from mtrec.serving import tensor_codec
from mtrec.serving.errors import ServingError, invalid_argument
from mtrec.serving.signature import Signature

_B64 = "b64"
_BYTES_SUFFIX = "_bytes"  # an output named so is always written as {"b64": ...}
_ERROR_TEXT = 1000  # characters of a JSON value an error message quotes
_MAX_RANK = 32  # numpy's limit on dimensions (TF's is 254; no model input nears either)
_INT64 = (-(1 << 63), (1 << 63) - 1)
# json_tensor.cc's IsInt/IsInt64/IsUint/IsUint64 ranges; int8/int16/uint8 get their own
# range too (TF Serving takes any int32 there and the conversion wraps it).
_INT_RANGE = {name: (int(np.iinfo(name).min), int(np.iinfo(name).max))
              for name in ("int8", "int16", "uint8", "int32", "int64", "uint32", "uint64")}
# Largest whole number a float type holds exactly, and its largest finite value.
_FLOAT_LIMITS = {"float32": ((1 << 24) - 1, float(np.finfo(np.float32).max)),
                 "float64": ((1 << 53) - 1, float(np.finfo(np.float64).max))}
_TF_NAME = {"float32": "float", "float64": "double", "float16": "half"}  # DataTypeString
_B64_TEXT = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _text(value: Any) -> str:
    """A JSON value as error messages quote it (JsonValueToString), cut short: TF Serving
    echoes a whole rejected request, which can be megabytes."""
    text = json.dumps(value)
    return text if len(text) <= _ERROR_TEXT else text[:_ERROR_TEXT] + "..."


def _json_type(value: Any) -> str:
    """JsonTypeString: rapidjson's name for the value's type."""
    if value is None or isinstance(value, bool):
        return str(value).replace("None", "Null")
    kinds = {dict: "Object", list: "Array", str: "String"}
    return next((n for t, n in kinds.items() if isinstance(value, t)), "Number")


def _dtype_text(dtype: tf.DType) -> str:
    return _TF_NAME.get(dtype.name, dtype.name)


def _type_error(value: Any, dtype: tf.DType) -> ServingError:
    return invalid_argument(f"JSON Value: {_text(value)} Type: {_json_type(value)} is not of "
                            f"expected type: {_dtype_text(dtype)}")


def _is_b64(value: Any) -> bool:
    """TF Serving's IsValBase64Object: exactly one key, "b64", holding a string."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_B64), str)


def _b64_decode(value: Any) -> bytes:
    if not _is_b64(value):
        raise invalid_argument(f"JSON Value: {_text(value)} not formatted correctly for "
                               "base64 data")
    text = value[_B64]
    # absl::Base64Unescape: the standard alphabet, padding optional.
    if not _B64_TEXT.fullmatch(text) or len(text.rstrip("=")) % 4 == 1:
        raise invalid_argument("Unable to base64 decode")
    try:
        return base64.b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except binascii.Error as exc:
        raise invalid_argument("Unable to base64 decode") from exc


def _lossless(value: int | float, dtype_name: str) -> bool:
    """IsLosslessDecimal: a JSON integer must fit the float's mantissa, a decimal its range."""
    exact, largest = _FLOAT_LIMITS[dtype_name]
    if isinstance(value, int):
        if _INT64[0] <= value < (1 << 64):  # rapidjson keeps these integral
            return abs(value) <= exact
        try:
            value = float(value)
        except OverflowError:
            return False
    return not math.isfinite(value) or -largest <= value <= largest


def _value(value: Any, dtype: tf.DType) -> Any:
    """One JSON leaf as an element of `dtype` (AddValueToTensor), or the error it gets."""
    name = dtype.name
    if dtype == tf.string:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, dict):
            return _b64_decode(value)
        raise _type_error(value, dtype)
    if isinstance(value, (dict, list)) or value is None or isinstance(value, str):
        raise _type_error(value, dtype)
    if name == "bool":
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if isinstance(value, bool):
        raise _type_error(value, dtype)
    if name in _FLOAT_LIMITS:
        if not _lossless(value, name):
            raise invalid_argument(f"Cannot convert JSON value: {_text(value)} to "
                                   f"{_dtype_text(dtype)} without loss of precision.")
        return float(value)
    bounds = _INT_RANGE.get(name)
    if bounds is None:
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                           f"Conversion of JSON Value: {_text(value)} to type: {name}")
    if not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise _type_error(value, dtype)
    return value


def _shape(value: Any) -> list[int]:
    """GetDenseTensorShape: the lengths of the first list at each level."""
    dims = []
    while isinstance(value, list):
        dims.append(len(value))
        if len(dims) > _MAX_RANK:
            raise invalid_argument(f"JSON Value nests lists more than {_MAX_RANK} deep: this "
                                   f"server takes tensors of at most {_MAX_RANK} dimensions")
        value = value[0] if value else None
    return dims


def _fill(value: Any, level: int, shape: list[int], dtype: tf.DType, out: list) -> None:
    """FillTensorProto: every leaf at the tensor's rank, every list its level's length."""
    if not isinstance(value, list):
        if level != len(shape):
            raise invalid_argument(f"JSON Value: {_text(value)} found at incorrect level: "
                                   f"{level + 1} in the JSON DOM. Expected at level: {len(shape)}")
        out.append(_value(value, dtype))
        return
    if level >= len(shape):
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < "
                               f"{len(shape)}")
    if len(value) != shape[level]:
        raise invalid_argument(f"Encountered list at unexpected size: {len(value)} at level: "
                               f"{level} expected size: {shape[level]}")
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def to_array(value: Any, dtype: tf.DType) -> np.ndarray:
    """A JSON value (nested lists of leaves) as an array of `dtype`, checked as TF Serving
    checks it; strings come back as an object array of bytes."""
    shape = _shape(value)
    flat: list = []
    _fill(value, 0, shape, dtype, flat)
    if dtype == tf.string:
        arr = np.empty(len(flat), dtype=object)
        arr[:] = flat
        return arr.reshape(shape)
    return np.array(flat, dtype=dtype.as_numpy_dtype).reshape(shape)


def parse_body(raw: bytes) -> dict:
    """The request's JSON object (ParseJson): 400 for an empty, unparsable or non-object
    body, and for nesting past what the parser recurses through."""
    if not raw:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise invalid_argument(f"JSON Parse error: {exc.msg} at offset: {exc.pos}") from exc
    except UnicodeDecodeError as exc:
        raise invalid_argument(f"JSON Parse error: Invalid encoding in string ({exc})") from exc
    except RecursionError as exc:
        raise invalid_argument("JSON Parse error: the document nests too deeply") from exc
    if not isinstance(doc, dict):
        raise invalid_argument(f"JSON Value: {_text(doc)} Is not object")
    return doc


def signature_name(doc: dict) -> str:
    """The optional `signature_name` ("" when absent: the default signature)."""
    name = doc.get("signature_name", "")
    if not isinstance(name, str):  # the first words are this server's, kept for its clients
        raise invalid_argument(
            f"'signature_name' must be a string, got {name!r}: JSON Value: {_text(doc)} not "
            "formatted correctly. 'signature_name' key must be a string value.")
    return name


def _hinted(exc: ServingError, key: str, value: Any, dtype: tf.DType) -> ServingError:
    """A type error naming the input where a decimal was sent for an integer input (k 3.7
    was once cut to 3 here; the hint says why it is refused now)."""
    if dtype.is_integer and isinstance(value, float) and math.isfinite(value):
        hint = ("takes whole numbers" if not value.is_integer()
                else "takes integers written without a decimal point")
        return invalid_argument(f"{exc.message} (input '{key}' {hint}, got {value!r})")
    return exc


def _column(value: Any, key: str, dtype: tf.DType) -> np.ndarray:
    try:
        return to_array(value, dtype)
    except ServingError as exc:
        raise _hinted(exc, key, value, dtype) from None


def predict_inputs(doc: dict, sig: Signature) -> tuple[dict[str, np.ndarray], bool]:
    """The input arrays of a predict request, and whether it came as rows (`instances`:
    answered as `predictions`) rather than columns (`inputs`: answered as `outputs`)."""
    if not sig.inputs:
        raise invalid_argument(f"Failed to get input map for signature: {sig.name}")
    if "instances" in doc:
        if "inputs" in doc:
            raise invalid_argument(
                f"JSON Value: {_text(doc)} Not formatted correctly expecting only one of "
                "'inputs' or 'instances' keys to exist ")
        return _rows(doc, sig), True
    if "inputs" not in doc:
        raise invalid_argument("Missing 'inputs' or 'instances' key")
    value = doc["inputs"]
    if not isinstance(value, dict) or _is_b64(value):
        if len(sig.inputs) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map")
        key, spec = next(iter(sig.inputs.items()))
        return {key: _column(value, key, spec.dtype)}, False
    columns = {}
    for key, spec in sig.inputs.items():  # keys the signature lacks are ignored, as there
        if key not in value:
            raise invalid_argument(f"Missing named input: {key} in 'inputs' object.")
        columns[key] = _column(value[key], key, spec.dtype)
    return columns, False


def _is_row_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _rows(doc: dict, sig: Signature) -> dict[str, np.ndarray]:
    """FillTensorMapFromInstancesList: one tensor per input, the rows stacked."""
    rows = doc["instances"]
    if not isinstance(rows, list):
        raise invalid_argument(
            f"JSON Value: {_text(doc)} Excepting 'instances' to be an list/array")
    if not rows:
        raise invalid_argument(f"JSON Value: {_text(doc)} No values in 'instances' array")
    objects = _is_row_object(rows[0])
    if not objects and len(sig.inputs) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map")
    scalars = [key for key, spec in sig.inputs.items() if not spec.batched]
    if scalars:  # a row holds one value per input: no row can carry a scalar's
        raise invalid_argument(
            f"signature '{sig.name}' takes {scalars[0]!r} as one value for the whole "
            f"request, which the row format ('instances') cannot give: send columns, "
            f'{{"inputs": {{"{scalars[0]}": ..., ...}}}} (one list per batched input)')
    names = sorted(sig.inputs)
    items: dict[str, list[np.ndarray]] = {key: [] for key in names}
    for i, row in enumerate(rows):
        if objects != _is_row_object(row):
            raise invalid_argument(f"Expecting object but got list at item {i} of input list"
                                   if objects else
                                   f"Expecting value/list but got object at item {i} of "
                                   "input list")
        for key, value in (row.items() if objects else [(names[0], row)]):
            try:
                if key not in sig.inputs:
                    raise invalid_argument(f"JSON object: does not have named input: {key}")
                item = _column(value, key, sig.inputs[key].dtype)
                first = items[key][0] if items[key] else item
                if first.size != item.size:
                    raise invalid_argument(f"Expecting tensor size: {first.size} but got: "
                                           f"{item.size}")
                if first.shape != item.shape:
                    raise invalid_argument(f"Expecting shape {_shape_text(first.shape)} but "
                                           f"got: {_shape_text(item.shape)}")
            except ServingError as exc:
                where = f"{i} key: {key}" if objects else f"{i}"
                raise invalid_argument(f"Failed to process element: {where} of 'instances' "
                                       f"list. Error: {exc.code.name}: {exc.message}") from None
            items[key].append(item)
        if objects and set(row) != set(names):
            raise invalid_argument(f"Failed to process element: {i} of 'instances' list. JSON "
                                   f"object: {_text(row)} must only have keys: {','.join(names)}")
    return {key: np.stack(parts) for key, parts in items.items()}


def _shape_text(shape: tuple[int, ...]) -> str:
    """ShapeToString: [2,3]."""
    return "[" + ",".join(str(d) for d in shape) + "]"


def _jsonable(name: str, arr: np.ndarray) -> Any:
    if arr.dtype.kind in ("O", "S"):
        if name.endswith(_BYTES_SUFFIX):
            to_b64 = np.frompyfunc(lambda v: {_B64: base64.b64encode(
                tensor_codec.as_bytes(v)).decode("ascii")}, 1, 1)
            return np.asarray(to_b64(arr), dtype=object).tolist()
        return tensor_codec.to_jsonable(arr)
    if arr.dtype == np.float32:  # the float32's shortest decimal, not its float64 expansion
        return arr.astype(str).astype(np.float64).tolist()
    return arr.tolist()


def predict_json(outputs: dict[str, np.ndarray], rows: bool) -> dict:
    """MakeJsonFromTensors: `outputs` (columns) or `predictions` (rows); one output is
    written bare, several as an object of them."""
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    if not rows:
        values = {name: _jsonable(name, arr) for name, arr in outputs.items()}
        return {"outputs": values if len(values) > 1 else next(iter(values.values()))}
    batch = 0
    for name, arr in outputs.items():
        if arr.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if arr.shape[0] < 1:
            raise invalid_argument(f"Tensor name: {name} has invalid batch size: {arr.shape[0]}")
        if batch and arr.shape[0] != batch:
            raise invalid_argument(f"Tensor name: {name} has inconsistent batch size: "
                                   f"{arr.shape[0]} expecting: {batch}")
        batch = arr.shape[0]
    values = {name: _jsonable(name, arr) for name, arr in outputs.items()}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    return {"predictions": [{name: value[i] for name, value in values.items()}
                            for i in range(batch)]}


def _feature_error(name: str, value: Any) -> ServingError:
    return invalid_argument(f"Feature: {name} has element with unexpected JSON type: "
                            f"{_json_type(value)}")


def _add_feature_value(value: Any, name: str, feature: feature_pb2.Feature) -> None:
    """AddValueToFeature: strings and b64 to bytes_list, decimals to float_list, integers
    and booleans to int64_list; one kind per feature."""
    if value is None or isinstance(value, list) or (isinstance(value, dict)
                                                    and not _is_b64(value)):
        raise _feature_error(name, value)
    if isinstance(value, (str, dict)):
        kind = "bytes_list"
    elif isinstance(value, bool) or (isinstance(value, int) and _INT64[0] <= value < 1 << 64):
        kind = "int64_list"
    else:
        kind = "float_list"
    have = feature.WhichOneof("kind")
    if have not in (None, kind):
        raise invalid_argument(f"Unexpected element type in feature: {name} expecting type: "
                               f"{have.split('_')[0]}")
    if kind == "bytes_list":
        feature.bytes_list.value.append(value.encode("utf-8") if isinstance(value, str)
                                        else _b64_decode(value))
    elif kind == "int64_list":
        if not isinstance(value, bool) and value > _INT64[1]:
            raise invalid_argument(f"Feature: {name} has uint64 element. Only int64 is "
                                   "supported.")
        feature.int64_list.value.append(int(value))
    else:
        if not _lossless(value, "float32"):
            raise invalid_argument(f"Cannot convert JSON value: {_text(value)} to float "
                                   "without loss of precision.")
        feature.float_list.value.append(float(value))


def _example(value: Any, out: example_pb2.Example) -> None:
    if not isinstance(value, dict):
        raise invalid_argument(f"Example must be JSON object but got JSON {_json_type(value)}")
    for name, content in value.items():
        feature = out.features.feature[name]
        for item in content if isinstance(content, list) else [content]:
            _add_feature_value(item, name, feature)


def examples_input(doc: dict) -> input_pb2.Input:
    """FillClassifyRegressRequestFromJson: `examples` (and an optional `context`) as the
    Input of a Classify or Regress request."""
    inp = input_pb2.Input()
    context = "context" in doc
    if context:
        _example(doc["context"], inp.example_list_with_context.context)
    examples = doc.get("examples")
    if examples is None and "examples" not in doc:
        raise invalid_argument(f"JSON Value: {_text(doc)} When method is classify, key "
                               "'examples' is expected and was not found")
    if not isinstance(examples, list):
        raise invalid_argument(f"JSON Value: {_text(doc)} Expecting 'examples' value to be an "
                               "list/array")
    if not examples:
        raise invalid_argument(f"JSON Value: {_text(doc)} 'examples' value is an empty array")
    target = inp.example_list_with_context if context else inp.example_list
    for value in examples:
        _example(value, target.examples.add())
    return inp
