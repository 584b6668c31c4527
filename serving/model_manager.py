"""Version discovery, loading and hot swapping of one SavedModel.

Mirrors TF Serving's file-system source with the `latest { num_versions: 1 }`
policy and its availability-preserving loader:

* only all-digit directory names under the base path are versions, and a
  version counts only once its `saved_model.pb` exists (the Pusher writes a
  temp dir and renames it; a dir still being filled is skipped until complete);
* the highest version is aspired; it is loaded and warmed up *before* the
  serving pointer moves, and the previous version is dropped only after that;
* a request takes a reference to the current `Servable` when it starts, so a
  swap never pulls a model out from under an in-flight request;
* a version that fails to load leaves the current one serving, and is not
  retried until its files change.

Everything request-facing (signature specs, concrete functions, metadata) is
resolved once at load time so the hot path is dictionary look-ups.
"""

from __future__ import annotations

import gc
import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

# Private TF APIs (no public way to call a loaded function without the
# per-call Python binding, see _DirectCall); tests/test_private_apis.py pins them.
from tensorflow.python.distribute import distribute_utils
from tensorflow.python.eager import context, execute
from tensorflow.python.framework.ops import EagerTensor as _EagerTensor
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from mtrec.contracts.signatures import SERVING_DEFAULT
from mtrec.serving import tensor_codec
from mtrec.serving.batching import BatchingOptions, SignatureBatcher
from mtrec.serving.errors import ServingError, invalid_argument, status_code_from_int
from mtrec.serving.versions import list_versions, version_stamp

log = logging.getLogger("mtrec.serving")

PREDICT_METHOD = "tensorflow/serving/predict"
DEFAULT_SIGNATURE = SERVING_DEFAULT
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
_STATE = get_model_status_pb2.ModelVersionStatus.State

# TF's runtime errors start with boilerplate that says nothing to a client.
_NOISE = ("Graph execution error:", "Detected at node", "<stack traces unavailable>")


_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")


def _clean_tf_message(message: str) -> str:
    lines = [ln for ln in message.splitlines() if ln.strip() and not ln.startswith(_NOISE)]
    text = " ".join(ln.strip() for ln in lines) or message
    # "{{function_node f}} msg [[{{function_node g}}{{node n}}]]" -> "msg"
    text = text.split(" [[{{", 1)[0].split(" [Op:", 1)[0]
    return _FUNCTION_NODE.sub("", text).strip() or message.strip()


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


_CONST_CACHE_SIZE = 256


def _eager_tensor(arr: np.ndarray, spec: InputSpec) -> tf.Tensor:
    """An eager tensor from an already validated array (cheaper than tf.constant)."""
    try:
        return _EagerTensor(arr, context.context().device_name, spec.dtype_enum)
    except Exception:  # anything the raw constructor refuses; tf.constant explains it
        return tf.constant(arr, dtype=spec.dtype)


class _DirectCall:
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

    def __init__(self, fn: Any, name: str, num_outputs: int, output_names: tuple[str, ...]):
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
    def build(cls, fn: Any, input_dtypes: Sequence[tf.DType]) -> _DirectCall | None:
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


class Signature:
    """A loaded signature: validated input conversion plus the cached function.

    Inputs go in the function's flat (sorted-key) order through `_DirectCall`
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
    ) -> None:
        self.name = name
        self._fn = fn
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
        self._direct = _DirectCall.build(fn, [self.inputs[k].dtype for k in self._flat_order])
        # Inputs without a batch dimension (`recommend`'s k) repeat across
        # requests: their tensors are cached by value (eager tensors are immutable).
        self._const_cache: dict[tuple[Any, ...], tf.Tensor] = {}
        self.batcher: SignatureBatcher | None = None

    def decode_inputs(self, protos: Mapping[str, tensor_pb2.TensorProto]) -> dict[str, np.ndarray]:
        """Validate request tensors against the signature and decode them.

        Every failure names the offending input: unknown or missing names,
        dtype, shape, an empty batch, undecodable content.
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
        return {key: self._decode_one(spec, protos[key]) for key, spec in self.inputs.items()}

    def to_tensors(self, arrays: Mapping[str, np.ndarray]) -> dict[str, tf.Tensor]:
        return {key: self._tensor(spec, arrays[key]) for key, spec in self.inputs.items()}

    def _tensor(self, spec: InputSpec, arr: np.ndarray) -> tf.Tensor:
        if spec.batched or arr.dtype.kind not in "biuf" or arr.size > 16:
            return _eager_tensor(arr, spec)
        key = (spec.name, arr.dtype.str, arr.shape, arr.tobytes())
        tensor = self._const_cache.get(key)
        if tensor is None:
            tensor = _eager_tensor(arr, spec)
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
        arrays = self.decode_inputs(protos)
        if self.batcher is not None:
            result = self.batcher.run(arrays)
            return {key: result[key] for key in outputs}
        return self.run(self.to_tensors(arrays), outputs)

    def run_arrays(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.run(self.to_tensors(arrays))

    def _decode_one(self, spec: InputSpec, proto: tensor_pb2.TensorProto) -> np.ndarray:
        if proto.dtype != spec.dtype_enum:
            raise invalid_argument(
                f"input '{spec.name}' of signature '{self.name}' has dtype "
                f"{tensor_codec.dtype_name(proto.dtype)}, expected {spec.dtype.name}"
            )
        try:
            arr = tensor_codec.decode(proto)
        except Exception as exc:  # malformed content: size mismatch, bad shape...
            raise invalid_argument(f"input '{spec.name}' could not be decoded: {exc}") from exc
        if not spec.shape_ok(arr.shape):
            raise invalid_argument(
                f"input '{spec.name}' of signature '{self.name}' has shape {list(arr.shape)}, "
                f"expected {spec.shape_text()}"
            )
        if spec.batched and arr.shape[0] == 0:
            raise invalid_argument(
                f"input '{spec.name}' of signature '{self.name}' has an empty batch (dim 0 is 0)"
            )
        return arr

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
        try:
            if self._direct is not None:
                flat = self._direct([tensors[key] for key in self._flat_order])
                result = dict(zip(self._direct.output_names, flat, strict=True))
            elif self._call_flat is not None:
                args = [tensors[key] for key in self._flat_order]
                result = self._call_flat(args, self._fn.captured_inputs)
            else:
                result = self._fn(**tensors)
        except tf.errors.OpError as exc:
            raise ServingError(
                status_code_from_int(exc.error_code), _clean_tf_message(exc.message)
            ) from exc
        except (TypeError, ValueError) as exc:  # argument binding; validated above
            raise invalid_argument(f"signature '{self.name}': {exc}") from exc
        names = outputs if outputs is not None else self.outputs
        return {key: result[key].numpy() for key in names}


def read_signature_defs(path: str) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The serving meta graph's SignatureDefs (method names, tensor info) from disk."""
    proto = saved_model_pb2.SavedModel()
    pb = os.path.join(path, "saved_model.pb")
    if os.path.exists(pb):
        with open(pb, "rb") as fh:
            proto.ParseFromString(fh.read())
    else:
        with open(os.path.join(path, "saved_model.pbtxt"), encoding="utf-8") as fh:
            text_format.Parse(fh.read(), proto)
    for meta_graph in proto.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    return dict(proto.meta_graphs[0].signature_def) if proto.meta_graphs else {}


class Servable:
    """One loaded model version with its signatures resolved for serving."""

    def __init__(
        self, name: str, version: int, path: str, batching: BatchingOptions | None = None
    ) -> None:
        self.name = name
        self.version = version
        self.path = path
        self._module = tf.saved_model.load(path, tags=["serve"])
        defs = read_signature_defs(path)
        self.signatures: dict[str, Signature] = {
            key: Signature(key, fn, defs.get(key)) for key, fn in self._module.signatures.items()
        }
        if batching is not None:
            for sig in self.signatures.values():
                batched = [k for k, spec in sig.inputs.items() if spec.batched]
                if batched:  # signatures without a batch dimension run alone
                    sig.batcher = SignatureBatcher(sig.name, sig.run_arrays, batched, batching)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        for key, sig_def in defs.items():
            sig_map.signature_def[key].CopyFrom(sig_def)
        self.signature_def_map = sig_map

    def signature(self, name: str) -> Signature:
        sig = self.signatures.get(name or DEFAULT_SIGNATURE)
        if sig is None:
            raise invalid_argument(
                f'Serving signature key "{name or DEFAULT_SIGNATURE}" not found; model '
                f"'{self.name}' version {self.version} has {sorted(self.signatures)}"
            )
        return sig


@dataclass
class VersionStatus:
    """What GetModelStatus reports for one version."""

    state: int
    code: grpc.StatusCode = grpc.StatusCode.OK
    message: str = ""


WarmupFn = Callable[[Servable], int]


class ModelManager:
    """Serves the latest complete version in `base_path`, the folder of the versions.

    `base_path` means what TF Serving's `--model_base_path` means (the
    Pusher's destination); `model_name` is only the name requests use.

    With `freeze_gc`, every version change ends with one full garbage
    collection (reclaiming the previous version) followed by `gc.freeze()`:
    a loaded TensorFlow process holds a few hundred thousand long-lived
    objects, and Python's periodic full collection walks all of them -- a
    ~0.2 s stall of every in-flight request at an unpredictable moment.
    Frozen objects are skipped by later collections, so that cost is paid
    once per rollout, in the poller, instead of at random under traffic.
    It is process-wide, so it is the server's choice (`mtrec serve` turns it
    on), not a library default.
    """

    def __init__(
        self,
        base_path: str,
        model_name: str,
        poll_seconds: float = 1.0,
        warmup: WarmupFn | None = None,
        batching: BatchingOptions | None = None,
        freeze_gc: bool = False,
    ) -> None:
        self.base_path = base_path
        self._batching = batching
        self._freeze_gc = freeze_gc
        self.model_name = model_name
        self.model_dir = base_path
        self.poll_seconds = poll_seconds
        self._warmup = warmup
        self._current: Servable | None = None
        self._statuses: dict[int, VersionStatus] = {}
        self._failed: dict[int, tuple[tuple[str, int, int], ...]] = {}
        self._list_error = ""  # the last listing failure, logged once until it changes
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition()

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start polling in the background; the first load happens there too."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="mtrec-model-poll", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # never let the poller die; next round retries
                log.exception("model poll failed")
            self._stop.wait(self.poll_seconds)

    # --------------------------------------------------------------- polling
    def poll_once(self) -> None:
        """One round of the file-system source + latest policy + loader."""
        with self._poll_lock:
            try:
                versions = list_versions(self.model_dir)
                self._list_error = ""
            except OSError as exc:  # must not unload a serving model; warn once, not per poll
                if str(exc) != self._list_error:
                    log.warning("cannot list %s: %s", self.model_dir, exc)
                self._list_error = str(exc)
                return
            current = self._current
            if not versions:
                if current is not None:
                    log.warning(
                        "no versions left under %s; unloading %d", self.model_dir, current.version
                    )
                    self._swap(None)
                    del current
                    self._settle_heap()
                return
            target = max(versions)
            if current is not None and current.version == target:
                return
            path = versions[target]
            stamp = version_stamp(path)
            if self._failed.get(target) == stamp:
                return
            del current  # the version being replaced must be collectable after the swap
            self._load(target, path, stamp)

    def _load(self, version: int, path: str, stamp: tuple[tuple[str, int, int], ...]) -> None:
        self._set_status(version, VersionStatus(_STATE.LOADING))
        started = time.monotonic()
        try:
            servable = Servable(self.model_name, version, path, self._batching)
            if self._warmup is not None:
                replayed = self._warmup(servable)
                if replayed:
                    log.info("version %d: replayed %d warmup requests", version, replayed)
        except Exception as exc:
            code = getattr(exc, "code", None)
            if not isinstance(code, grpc.StatusCode):
                code = grpc.StatusCode.UNKNOWN
            log.error(
                "loading %s version %d from %s failed: %s", self.model_name, version, path, exc
            )
            self._failed[version] = stamp
            self._set_status(version, VersionStatus(_STATE.END, code, f"load failed: {exc}"))
            return
        self._failed.pop(version, None)
        log.info(
            "loaded %s version %d in %.2fs", self.model_name, version, time.monotonic() - started
        )
        self._swap(servable)
        self._settle_heap()

    def _settle_heap(self) -> None:
        """Collect what the version change freed, then freeze the survivors (see class doc)."""
        if not self._freeze_gc:
            return
        started = time.monotonic()
        gc.unfreeze()
        unreachable = gc.collect()
        gc.freeze()
        log.info(
            "heap settled after version change: full gc %.0f ms (%d unreachable), %d frozen",
            (time.monotonic() - started) * 1e3,
            unreachable,
            gc.get_freeze_count(),
        )

    def _swap(self, servable: Servable | None) -> None:
        with self._lock:
            old, self._current = self._current, servable
            if servable is not None:
                self._statuses[servable.version] = VersionStatus(_STATE.AVAILABLE)
            if old is not None and (servable is None or old.version != servable.version):
                # In-flight requests hold their own reference; dropping ours is the unload.
                self._statuses[old.version] = VersionStatus(_STATE.END)
        with self._changed:
            self._changed.notify_all()

    def _set_status(self, version: int, status: VersionStatus) -> None:
        with self._lock:
            self._statuses[version] = status

    # -------------------------------------------------------------- queries
    @property
    def current(self) -> Servable | None:
        return self._current

    def wait_for_version(self, min_version: int | None = None, timeout: float = 60.0) -> Servable:
        """Block until some version (at least `min_version`) serves; for tests and tools."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                cur = self._current
                if cur is not None and (min_version is None or cur.version >= min_version):
                    return cur
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no version >= {min_version} of {self.model_name} loaded")
                self._changed.wait(min(left, 0.1))

    def statuses(self) -> dict[int, VersionStatus]:
        with self._lock:
            return dict(self._statuses)
