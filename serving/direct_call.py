"""One runtime call per request for a loaded signature (private TF APIs, pinned).

`ConcreteFunction.__call__` (and even its flat entry point) spends more time
in Python than a small signature spends computing; `DirectCall` calls the
function's graph by name, the way the atomic function itself does. The private
APIs it reads are pinned by tests/test_private_apis.py, and `build` returns
None (the caller keeps the public path) for anything that does not fit.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

# Private TF APIs (no public way to call a loaded function without the
# per-call Python binding); tests/test_private_apis.py pins them.
from tensorflow.python.distribute import distribute_utils
from tensorflow.python.eager import context, execute
from tensorflow.python.framework.ops import EagerTensor as _EagerTensor

log = logging.getLogger("mtrec.serving")


def host_cpu_device() -> str:
    """The host CPU's full device name, e.g. /job:localhost/replica:0/task:0/device:CPU:0.

    Request tensors are built there by name: with the context's default device
    name (empty outside a `tf.device` scope) the raw constructor resolves the
    device on every call and is about 4x slower (16.5 vs 3.8 us for a [1]
    string tensor, benchmarks/server_path.py), for the same placement.
    """
    ctx = context.context()
    ctx.ensure_initialized()
    return f"{ctx.host_address_space()}/device:CPU:0"


def eager_tensor(arr: np.ndarray, dtype: tf.DType, dtype_enum: int, device: str) -> tf.Tensor:
    """An eager tensor on `device` from an already validated array (cheaper than tf.constant)."""
    try:
        return _EagerTensor(arr, device, dtype_enum)
    except Exception:  # anything the raw constructor refuses; tf.constant explains it
        return tf.constant(arr, dtype=dtype)


class DirectCall:
    """Runs a loaded signature's graph function with one runtime call.

    `ConcreteFunction.__call__` (and even its flat entry point) spends more
    time in Python -- argument binding, tape and distribution checks, context
    managers, output packing -- than a small signature spends computing. A
    signature served here takes only eager, already validated tensors, never
    runs under a gradient tape or a distribution strategy, so it can call the
    function by name the way the atomic function itself does, with the
    captured variables appended. `build` returns None (and the caller keeps
    the regular path) for anything that does not fit that shape.
    """

    def __init__(self, fn: Any, name: str, num_outputs: int, output_names: tuple[str, ...]) -> None:
        self._fn = fn
        self._name = name
        self._num_outputs = num_outputs
        self.output_names = output_names
        # Captures are the model's variable and table handles: fixed for a
        # loaded version unless some are deferred (callables), then resolved per call.
        raw = getattr(fn, "_captured_inputs", None)
        static = raw is not None and not any(callable(x) for x in raw)
        self._captures = list(fn.captured_inputs) if static else None

    @classmethod
    def build(cls, fn: Any, input_dtypes: Sequence[tf.DType]) -> DirectCall | None:
        try:
            atomic = fn._inference_function
            outputs = fn.structured_outputs
            op_def = atomic.cached_definition.signature
            captures = fn.captured_inputs
            if not isinstance(outputs, dict) or not all(
                isinstance(v, (tf.Tensor, tf.TensorSpec)) for v in outputs.values()
            ):
                return None
            # nest flattens a dict by sorted key: the function's output order.
            names = tuple(sorted(outputs))
            in_types = [arg.type for arg in op_def.input_arg]
            out_types = [arg.type for arg in op_def.output_arg]
            if in_types[: len(input_dtypes)] != [d.as_datatype_enum for d in input_dtypes]:
                return None
            if len(in_types) != len(input_dtypes) + len(captures):
                return None
            if out_types != [outputs[k].dtype.as_datatype_enum for k in names]:
                return None
            if any(distribute_utils.is_distributed_variable(c) for c in captures):
                return None
            name = atomic.name
            return cls(fn, name.decode() if isinstance(name, bytes) else name, len(names), names)
        except Exception:  # private API moved: fall back to the regular call
            log.debug("no direct call for %s", fn, exc_info=True)
            return None

    def __call__(self, args: list[tf.Tensor]) -> list[tf.Tensor]:
        ctx = context.context()
        # What context.call_function passes; per thread, as TF keeps these options.
        attrs = tuple(itertools.chain(*ctx.function_call_options.as_attrs().items()))
        captures = self._captures if self._captures is not None else self._fn.captured_inputs
        return execute.execute(
            self._name, num_outputs=self._num_outputs, inputs=args + captures, attrs=attrs, ctx=ctx
        )

