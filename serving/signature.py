"""A loaded signature as the server runs it: validation, decoding, the call.

Everything request-facing (input specs, flat argument order, the direct
call, output names) is resolved once when a version loads, so a request is
dictionary look-ups, a decode per input and one runtime call.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from mtrec.contracts.artifacts import SAVED_MODEL_FILE, SAVED_MODEL_TEXT_FILE
from mtrec.contracts.signatures import SERVING_DEFAULT, SIGNATURES, K
from mtrec.serving import tensor_codec
from mtrec.serving.batching import SignatureBatcher
from mtrec.serving.direct_call import DirectCall, eager_tensor, host_cpu_device
from mtrec.serving.errors import ServingError, invalid_argument, status_code_from_int
from mtrec.serving.request_checks import (
    PROBE_K,
    PairBudget,
    catalogue_from_message,
    check_rows_agree,
    row_owner_order,
)
from mtrec.serving.server_args import (
    DEFAULT_MAX_REQUEST_ELEMENTS,
    DEFAULT_MAX_REQUEST_PAIRS,
    DEFAULT_MAX_REQUEST_ROWS,
)
from mtrec.serving.tf_messages import clean_tf_message
from mtrec.serving.wire import SerializedOutputs, model_spec_field

log = logging.getLogger("mtrec.serving")

PREDICT_METHOD = "tensorflow/serving/predict"
DEFAULT_SIGNATURE = SERVING_DEFAULT


@dataclass(frozen=True)
class InputSpec:
    """One signature input, resolved once at load time."""

    name: str
    dtype: tf.DType
    dtype_enum: int
    dims: tuple[int | None, ...] | None  # None: unknown rank

    @property
    def batched(self) -> bool:
        return self.dims is not None and len(self.dims) >= 1

    def shape_ok(self, shape: tuple[int, ...]) -> bool:
        if self.dims is None:
            return True
        if len(shape) != len(self.dims):
            return False
        return all(d is None or d == s for d, s in zip(self.dims, shape, strict=True))

    def shape_text(self) -> str:
        return "?" if self.dims is None else str([-1 if d is None else d for d in self.dims])


@dataclass(frozen=True)
class RequestLimits:
    """How big one request's inputs may be; 0 lifts a limit.

    A request's bytes say little about the work it asks for: TensorProto's
    repeated-last-value form lets 50 bytes declare a million-row tensor, and a
    recommend request for 200,000 users (1.2 MB) drives the model to a 13 GB
    peak. Both are refused from the declared shape, before anything is decoded; so is
    a request whose (user, item) pairs would pass `max_pairs` (serving/request_checks.py).
    """

    max_rows: int = DEFAULT_MAX_REQUEST_ROWS  # dim 0 of an input with a batch dimension
    max_elements: int = DEFAULT_MAX_REQUEST_ELEMENTS  # elements of any one input tensor
    max_pairs: int = DEFAULT_MAX_REQUEST_PAIRS  # pairs the model scores (PairBudget)


_CONST_CACHE_SIZE = 256


class Signature:
    """A loaded signature: validated input conversion plus the cached function.

    Inputs go in the function's flat (sorted-key) order through `DirectCall`
    where it applies, else the concrete function's flat entry point: the
    public keyword call re-binds and re-validates the structured signature on
    every request, which costs more than the model itself for small
    signatures, and the inputs were already validated here.
    """

    def __init__(
        self,
        name: str,
        fn: Any,
        signature_def: meta_graph_pb2.SignatureDef | None,
        limits: RequestLimits | None = None,
    ) -> None:
        self.name = name
        self._fn = fn
        self.limits = limits or RequestLimits()
        specs = fn.structured_input_signature[1]
        self.inputs: dict[str, InputSpec] = {
            key: InputSpec(
                key,
                spec.dtype,
                spec.dtype.as_datatype_enum,
                None if spec.shape.rank is None else tuple(spec.shape.as_list()),
            )
            for key, spec in specs.items()
        }
        self.outputs: tuple[str, ...] = tuple(fn.structured_outputs)
        self.method_name = signature_def.method_name if signature_def else PREDICT_METHOD
        self.signature_def = signature_def
        self._expected = "{" + ", ".join(sorted(self.inputs)) + "}"
        # tf.nest flattens a dict in sorted-key order; that is the flat call's order.
        self._flat_order = tuple(sorted(specs))
        self._call_flat = getattr(fn, "_call_flat", None)
        dtypes = [self.inputs[k].dtype for k in self._flat_order]
        self._direct = DirectCall.build(fn, dtypes)
        # The same function with its outputs serialized by TF (serving/wire.py).
        self._wire, self._wire_direct = _serialized_outputs(fn, self._flat_order, specs,
                                                            self.outputs, dtypes)
        self._spec_fields: dict[tuple[str, int], bytes] = {}
        # Inputs without a batch dimension (`recommend`'s k) repeat across
        # requests: their tensors are cached by value (eager tensors are immutable).
        self._const_cache: dict[tuple[Any, ...], tf.Tensor] = {}
        self._device = host_cpu_device()  # request tensors are built there (see there why)
        self.batcher: SignatureBatcher | None = None
        ranks = {key: len(spec.dims) for key, spec in self.inputs.items() if spec.dims is not None}
        self._batched = row_owner_order([k for k, s in self.inputs.items() if s.batched], ranks)
        # Whether every batched input must carry the same rows (request_checks.py): mtrec's
        # signatures, and any signature the batcher merges (model_manager.Servable).
        self.rows_agree = name in SIGNATURES
        self._catalogue: int | None = None  # asked of the model when first needed
        self.pair_budget = PairBudget(name, ranks, self.limits.max_pairs, self.catalogue)

    def decode_inputs(self, protos: Mapping[str, tensor_pb2.TensorProto]) -> dict[str, np.ndarray]:
        """`checked_inputs`' arrays."""
        return self.checked_inputs(protos)[0]

    def checked_inputs(self, protos: Mapping[str, tensor_pb2.TensorProto]
                       ) -> tuple[dict[str, np.ndarray], int]:
        """Validate request tensors against the signature and decode them: the arrays
        and their (user, item) pairs (0 where not counted: request_checks.PairBudget).

        Every failure names the offending input: unknown or missing names, dtype,
        shape, an empty batch, the limits, rows that disagree, undecodable content.
        """
        if len(protos) != len(self.inputs) or any(key not in self.inputs for key in protos):
            for key in protos:
                if key not in self.inputs:
                    raise invalid_argument(
                        f"input '{key}' is not an input of signature '{self.name}'; "
                        f"expected {self._expected}"
                    )
            missing = sorted(set(self.inputs) - set(protos))
            raise invalid_argument(
                f"missing input '{missing[0]}' for signature '{self.name}'; "
                f"expected {self._expected}"
            )
        # Everything about the shapes is checked on the declared ones, before decoding:
        # a short proto can declare a huge tensor (repeated-last-value form).
        shapes = {key: self._declared_shape(spec, protos[key]) for key, spec in self.inputs.items()}
        agree = self.rows_agree and self._batched
        rows = check_rows_agree(self.name, shapes, self._batched) if agree else 0
        arrays: dict[str, np.ndarray] = {}

        def k() -> int:  # decoded first only where the pair budget needs it
            arrays[K] = self._decode_one(self.inputs[K], protos[K])
            return int(arrays[K])

        pairs = self.pair_budget.pairs(rows, shapes, k)
        for key, spec in self.inputs.items():
            if key not in arrays:
                arrays[key] = self._decode_one(spec, protos[key])
        return arrays, pairs

    def catalogue(self) -> int:
        """The catalogue size the model's refusal of a k past it names (0: none), asked
        once, with one row of blanks and a k no catalogue reaches."""
        if self._catalogue is None:
            text = {key: spec.dtype == tf.string for key, spec in self.inputs.items()}
            probe = {key: np.array(PROBE_K, np.int32) if key == K else np.full(
                [1 if d is None else d for d in spec.dims or ()], b"" if text[key] else 0,
                object if text[key] else spec.dtype.as_numpy_dtype)
                for key, spec in self.inputs.items()}
            try:
                self.run_arrays(probe)
                self._catalogue = 0
            except ServingError as exc:
                self._catalogue = catalogue_from_message(exc.message) or 0
        return self._catalogue

    def to_tensors(self, arrays: Mapping[str, np.ndarray]) -> dict[str, tf.Tensor]:
        return {key: self._tensor(spec, arrays[key]) for key, spec in self.inputs.items()}

    def _tensor(self, spec: InputSpec, arr: np.ndarray) -> tf.Tensor:
        if spec.batched or arr.dtype.kind not in "biuf" or arr.size > 16:
            return eager_tensor(arr, spec.dtype, spec.dtype_enum, self._device)
        key = (spec.name, arr.dtype.str, arr.shape, arr.tobytes())
        tensor = self._const_cache.get(key)
        if tensor is None:
            tensor = eager_tensor(arr, spec.dtype, spec.dtype_enum, self._device)
            if len(self._const_cache) < _CONST_CACHE_SIZE:
                self._const_cache[key] = tensor
        return tensor

    def convert_inputs(self, protos: Mapping[str, tensor_pb2.TensorProto]) -> dict[str, tf.Tensor]:
        """`decode_inputs` then eager tensors, ready for `run`."""
        return self.to_tensors(self.decode_inputs(protos))

    def convert_arrays(self, arrays: Mapping[str, np.ndarray]) -> dict[str, tf.Tensor]:
        """Same checks as `convert_inputs` for already-decoded arrays (REST, warmup)."""
        protos = {
            key: tensor_codec.encode(value, self.inputs[key].dtype if key in self.inputs else None)
            for key, value in arrays.items()
        }
        return self.convert_inputs(protos)

    def predict(
        self, protos: Mapping[str, tensor_pb2.TensorProto], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Validate, then run alone or merged with concurrent requests (if batching)."""
        arrays, pairs = self.checked_inputs(protos)
        if self.batcher is not None:
            result = self.batcher.run(arrays, pairs)
            return {key: result[key] for key in outputs}
        return self.run(self.to_tensors(arrays), outputs)

    def predict_bytes(self, protos: Mapping[str, tensor_pb2.TensorProto],
                      outputs: Sequence[str], model: str, version: int) -> bytes | None:
        """`predict` as PredictResponse wire bytes (serving/wire.py), or None where that
        path does not apply (batching on, or no serialized-outputs function)."""
        if self.batcher is not None or not self.serializes:
            return None
        serialized = self.call_serialized(self.to_tensors(self.decode_inputs(protos)))
        return self.wire_response({key: serialized[key].numpy() for key in outputs},
                                  outputs, model, version)

    @property
    def serializes(self) -> bool:
        """Whether `call_serialized` is available (serving/wire.py)."""
        return self._wire is not None and self._wire_direct is not None

    def call_serialized(self, tensors: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Each output as a scalar string tensor: its serialized TensorProto."""
        assert self._wire_direct is not None
        flat = self._call(self._wire_direct, [tensors[key] for key in self._flat_order])
        return dict(zip(self._wire_direct.output_names, flat, strict=True))

    def wire_response(self, protos: dict[str, bytes], outputs: Sequence[str], model: str,
                      version: int) -> bytes:
        """PredictResponse bytes for these serialized outputs (model_spec made once)."""
        assert self._wire is not None
        spec = self._spec_fields.get((model, version))
        if spec is None:
            spec = self._spec_fields[(model, version)] = model_spec_field(model, version,
                                                                          self.name)
        return self._wire.response(protos, outputs, spec)

    def _call(self, direct: DirectCall, args: list[tf.Tensor]) -> list[tf.Tensor]:
        try:
            return direct(args)
        except tf.errors.OpError as exc:
            raise ServingError(
                status_code_from_int(exc.error_code), clean_tf_message(exc.message)
            ) from exc

    def run_arrays(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.run(self.to_tensors(arrays))

    def _declared_shape(self, spec: InputSpec, proto: tensor_pb2.TensorProto) -> tuple[int, ...]:
        if proto.dtype != spec.dtype_enum:
            raise invalid_argument(
                f"input '{spec.name}' of signature '{self.name}' has dtype "
                f"{tensor_codec.dtype_name(proto.dtype)}, expected {spec.dtype.name}"
            )
        shape = tuple(d.size for d in proto.tensor_shape.dim)
        if any(d < 0 for d in shape):
            raise invalid_argument(
                f"input '{spec.name}' of signature '{self.name}' has an invalid shape "
                f"{list(shape)} (negative dimension)"
            )
        if not spec.shape_ok(shape):
            raise invalid_argument(
                f"input '{spec.name}' of signature '{self.name}' has shape {list(shape)}, "
                f"expected {spec.shape_text()}"
            )
        if spec.batched and shape[0] == 0:
            raise invalid_argument(
                f"input '{spec.name}' of signature '{self.name}' has an empty batch (dim 0 is 0)"
            )
        self._check_size(spec, shape)
        return shape

    def _decode_one(self, spec: InputSpec, proto: tensor_pb2.TensorProto) -> np.ndarray:
        try:
            return tensor_codec.decode(proto)
        except Exception as exc:  # malformed content: size mismatch, bad shape...
            raise invalid_argument(f"input '{spec.name}' could not be decoded: {exc}") from exc

    def _check_size(self, spec: InputSpec, shape: tuple[int, ...]) -> None:
        limits = self.limits
        if spec.batched and limits.max_rows and shape[0] > limits.max_rows:
            raise invalid_argument(
                f"input '{spec.name}' of signature '{self.name}' has {shape[0]} rows; this "
                f"server takes at most {limits.max_rows} per request (--max-request-rows): "
                "split the batch"
            )
        elements = math.prod(shape)  # Python ints: exact for any declared shape, and a
        # tenth of np.prod's cost per request (0.7 against 6.4 us for a [1] input)
        if limits.max_elements and elements > limits.max_elements:
            raise invalid_argument(
                f"input '{spec.name}' of signature '{self.name}' has shape {list(shape)}, "
                f"{elements} elements; this server takes at most {limits.max_elements} per "
                "input (--max-request-elements)"
            )

    def check_output_filter(self, output_filter: Sequence[str]) -> tuple[str, ...]:
        if not output_filter:
            return self.outputs
        seen: set[str] = set()
        for alias in output_filter:
            if alias not in self.outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected to "
                    f"be in the set {{{','.join(sorted(self.outputs))}}}."
                )
            if alias in seen:
                raise invalid_argument(f"duplicate output tensor alias: {alias}")
            seen.add(alias)
        return tuple(output_filter)

    def run(
        self, tensors: Mapping[str, tf.Tensor], outputs: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Call the concrete function; TF runtime errors keep their status code."""
        result = self.call_flat(tensors)
        names = outputs if outputs is not None else self.outputs
        return {key: result[key].numpy() for key in names}

    def call_flat(self, tensors: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The function's output tensors by name (`run` without the numpy step)."""
        try:
            if self._direct is not None:
                flat = self._direct([tensors[key] for key in self._flat_order])
                return dict(zip(self._direct.output_names, flat, strict=True))
            if self._call_flat is not None:
                args = [tensors[key] for key in self._flat_order]
                return self._call_flat(args, self._fn.captured_inputs)
            return self._fn(**tensors)
        except tf.errors.OpError as exc:
            raise ServingError(
                status_code_from_int(exc.error_code), clean_tf_message(exc.message)
            ) from exc
        except (TypeError, ValueError) as exc:  # argument binding; validated above
            raise invalid_argument(f"signature '{self.name}': {exc}") from exc


def _serialized_outputs(fn: Any, order: Sequence[str], specs: Mapping[str, tf.TensorSpec],
                        outputs: Sequence[str], dtypes: Sequence[tf.DType]
                        ) -> tuple[SerializedOutputs | None, DirectCall | None]:
    """serving/wire.py's function for this signature and its direct call; (None, None)
    (the numpy path serves it) for anything that does not trace or fit."""
    try:
        wire = SerializedOutputs(fn, order, dict(specs), outputs)
    except Exception:  # e.g. an output serialize_tensor cannot take: keep the numpy path
        log.debug("no serialized outputs for %s", fn, exc_info=True)
        return None, None
    return wire, DirectCall.build(wire.function, dtypes)


def read_signature_defs(path: str) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The serving meta graph's SignatureDefs (method names, tensor info) from disk."""
    proto = saved_model_pb2.SavedModel()
    pb = os.path.join(path, SAVED_MODEL_FILE)
    if os.path.exists(pb):
        with open(pb, "rb") as fh:
            proto.ParseFromString(fh.read())
    else:
        with open(os.path.join(path, SAVED_MODEL_TEXT_FILE), encoding="utf-8") as fh:
            text_format.Parse(fh.read(), proto)
    for meta_graph in proto.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    return dict(proto.meta_graphs[0].signature_def) if proto.meta_graphs else {}

