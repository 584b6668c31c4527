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
  retried until its files (any of them, assets included) change;
* a version whose files change while it loads (a folder copied in place,
  not renamed in) is not served; the next poll loads it again.

Everything request-facing (signature specs, concrete functions, metadata) is
resolved once at load time so the hot path is dictionary look-ups.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from mtrec.contracts.artifacts import EXTRA_ASSETS_DIR
from mtrec.serving.batching import BatchingOptions, SignatureBatcher
from mtrec.serving.errors import failed_precondition
from mtrec.serving.model_config import missing_base_path
from mtrec.serving.signature import (
    DEFAULT_SIGNATURE,
    RequestLimits,
    Signature,
    read_signature_defs,
)
from mtrec.serving.tf_messages import clean_tf_message
from mtrec.serving.versions import list_versions, version_stamp

log = logging.getLogger("mtrec.serving")

WARMUP_FILE = os.path.join(EXTRA_ASSETS_DIR, "tf_serving_warmup_requests")
_STATE = get_model_status_pb2.ModelVersionStatus.State


class Servable:
    """One loaded model version with its signatures resolved for serving."""

    def __init__(
        self,
        name: str,
        version: int,
        path: str,
        batching: BatchingOptions | None = None,
        limits: RequestLimits | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.path = path
        self._module = tf.saved_model.load(path, tags=["serve"])
        defs = read_signature_defs(path)
        self.signatures: dict[str, Signature] = {
            key: Signature(key, fn, defs.get(key), limits)
            for key, fn in self._module.signatures.items()
        }
        if batching is not None:
            for sig in self.signatures.values():
                batched = [k for k, spec in sig.inputs.items() if spec.batched]
                if batched:  # signatures without a batch dimension run alone
                    # Merged calls are sliced back by rows: a request's must agree.
                    sig.rows_agree = True
                    sig.batcher = SignatureBatcher(sig.name, sig.run_arrays, batched, batching,
                                                   max_cost=sig.limits.max_pairs)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        for key, sig_def in defs.items():
            sig_map.signature_def[key].CopyFrom(sig_def)
        self.signature_def_map = sig_map

    def signature(self, name: str) -> Signature:
        sig = self.signatures.get(name or DEFAULT_SIGNATURE)
        if sig is None:  # TF Serving's code for it (predict_util.cc), and its words first
            raise failed_precondition(
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
        limits: RequestLimits | None = None,
    ) -> None:
        self.base_path = base_path
        self._limits = limits
        self._batching = batching
        self._freeze_gc = freeze_gc
        self.model_name = model_name
        self.model_dir = base_path
        self.poll_seconds = poll_seconds
        self._warmup = warmup
        self._current: Servable | None = None
        # (version, folder) unloaded because no version folder was left; None once one loads.
        self.unloaded: tuple[int, str] | None = None
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

    def stop(self, join: bool = True) -> None:
        """Stop polling; with `join`, wait (at most 30 s) for a load in progress to end.

        A load cannot be interrupted, but one that ends after the stop is neither
        warmed up nor served.
        """
        self._stop.set()
        if join and self._thread is not None:
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
                problem = (missing_base_path(self.model_name, self.model_dir)
                           if isinstance(exc, FileNotFoundError)
                           else f"cannot list {self.model_dir}: {exc}")
                if problem != self._list_error:
                    log.warning("%s", problem)
                self._list_error = problem
                return
            current = self._current
            if not versions:
                if current is not None:
                    log.warning(
                        "no versions left under %s; unloading %d", self.model_dir, current.version
                    )
                    self.unloaded = (current.version, current.path)
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
            servable = Servable(self.model_name, version, path, self._batching, self._limits)
            if self._stop.is_set():  # shutting down: neither warm up nor serve it
                return
            if self._warmup is not None:
                replayed = self._warmup(servable)
                if replayed:
                    log.info("version %d: replayed %d warmup requests", version, replayed)
        except Exception as exc:
            code = getattr(exc, "code", None)
            if not isinstance(code, grpc.StatusCode):
                code = grpc.StatusCode.UNKNOWN
            message = clean_tf_message(str(exc))
            log.error(
                "loading %s version %d from %s failed (tried again when its files change): %s",
                self.model_name, version, path, message,
            )
            self._failed[version] = stamp
            self._set_status(version, VersionStatus(_STATE.END, code, f"load failed: {message}"))
            return
        if self._stop.is_set():
            return
        if version_stamp(path) != stamp:
            # Loaded from files that were still being written: it may hold half a
            # vocabulary. Not served, nor reported: the next poll loads the folder as it
            # is then (and a folder removed meanwhile is not left LOADING for ever).
            log.warning(
                "%s version %d changed while it loaded (still being copied in?); loading it again",
                self.model_name, version,
            )
            with self._lock:
                self._statuses.pop(version, None)
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
                self.unloaded = None
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
