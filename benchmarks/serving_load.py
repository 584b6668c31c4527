"""Load generation and measurement for benchmarks/serving.py.

The server under test runs in its own process (`ServerProcess`); the client
loop (`run_load`) and the in-process references (`in_process_latency`) run in
the benchmark's process. Every level also records CPU per request of server
and client and the CPU other processes used (`HostUsage`): on a shared
machine those say how much of a result is the code.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import grpc
import numpy as np
import portpicker
import psutil
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from mtrec.contracts import signatures as S
from mtrec.serving import handlers, tensor_codec
from mtrec.serving.client import MtrecClient
from mtrec.serving.model_manager import Servable

if TYPE_CHECKING:
    from mtrec.serving.signature import Signature

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grpc_floor import terminate


def percentiles(latencies_s: list[float]) -> dict[str, float]:
    arr = np.asarray(latencies_s) * 1e3
    if arr.size == 0:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {
        "p50_ms": round(float(p50), 3),
        "p95_ms": round(float(p95), 3),
        "p99_ms": round(float(p99), 3),
    }


# -------------------------------------------------------------- host usage
def _busy_jiffies() -> int | None:
    """Non-idle CPU time of the whole host, in clock ticks (None off Linux)."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle  # guest time is already inside user/nice


class HostUsage:
    """CPU used by the server, by this client process and by everything else."""

    def __init__(self, server_pid: int | None) -> None:
        self._server = psutil.Process(server_pid) if server_pid else None
        self._client = psutil.Process()

    def _sample(self) -> tuple[float, float, float, int | None]:
        def cpu(proc: psutil.Process | None) -> float:
            if proc is None:
                return 0.0
            t = proc.cpu_times()
            return t.user + t.system

        return time.perf_counter(), cpu(self._server), cpu(self._client), _busy_jiffies()

    def __enter__(self) -> HostUsage:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        wall = max(end[0] - self._start[0], 1e-9)
        self.server_s = end[1] - self._start[1]
        self.client_s = end[2] - self._start[2]
        self.other_cores: float | None = None
        if end[3] is not None and self._start[3] is not None:
            busy = (end[3] - self._start[3]) / os.sysconf("SC_CLK_TCK")
            self.other_cores = round(max(busy - self.server_s - self.client_s, 0.0) / wall, 2)

    def row(self, requests: int) -> dict[str, Any]:
        n = max(requests, 1)
        return {
            "server_cpu_us_per_req": round(self.server_s / n * 1e6),
            "client_cpu_us_per_req": round(self.client_s / n * 1e6),
            "other_procs_cores": self.other_cores,
            "loadavg_1m": round(os.getloadavg()[0], 2),
        }


# ------------------------------------------------------------------ server
class ServerProcess:
    """`python -m mtrec.serving.server` on a free loopback port, one model version."""

    def __init__(
        self, model_dir: str, threads: int, workdir: str, extra: list[str] | None = None
    ) -> None:
        # The folder of the versions, as TF Serving's --model_base_path.
        self.base = os.path.join(tempfile.mkdtemp(prefix="base-", dir=workdir), S.MODEL_NAME)
        os.makedirs(self.base)
        os.symlink(os.path.abspath(model_dir), os.path.join(self.base, "1"))
        self.port = portpicker.pick_unused_port()
        self.target = f"127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, f"server-{self.port}.log")
        cmd = [
            sys.executable,
            "-m",
            "mtrec.serving.server",
            "--model-base-path",
            self.base,
            "--model-name",
            S.MODEL_NAME,
            "--port",
            str(self.port),
            "--threads",
            str(threads),
            "--poll-seconds",
            "30",
            *(extra or []),
        ]
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        with MtrecClient(self.target, timeout=5, retries=0) as client:
            try:
                client.wait_until_available(timeout=600)
            except TimeoutError:
                self.stop()
                raise RuntimeError(f"server did not come up; see {self.log_path}") from None
        self.load_seconds = round(time.monotonic() - started, 2)

    def rss_mb(self) -> float:
        return round(psutil.Process(self.proc.pid).memory_info().rss / 2**20, 1)

    def batching_stats(self) -> dict[str, dict[str, int]]:
        """Requests and model calls per batched signature, as logged at shutdown."""
        stats = {}
        with open(self.log_path) as fh:
            for line in fh:
                m = re.search(r"batching (\S+): (\d+) requests in (\d+) model calls", line)
                if m:
                    stats[m[1]] = {"requests": int(m[2]), "model_calls": int(m[3])}
        return stats

    def stop(self) -> None:
        terminate(self.proc, timeout=20)
        self._log.close()
        shutil.rmtree(os.path.dirname(self.base), ignore_errors=True)


# ---------------------------------------------------------------- requests
# make_requests' label of `recommend` for unknown users (computed, never cached).
COMPUTED = "recommend, unknown users (computed)"


def make_requests(model_dir: str, users: list[str]) -> dict[str, list[predict_pb2.PredictRequest]]:
    """Pre-built requests (distinct users) so the client loop does no encoding."""
    recommend, score = [], []
    fn = tf.saved_model.load(model_dir).signatures[S.RECOMMEND]
    for user in users:
        req = predict_pb2.PredictRequest()
        req.model_spec.name = S.MODEL_NAME
        req.model_spec.signature_name = "recommend"
        req.inputs["user_id"].CopyFrom(tensor_codec.encode([user], tf.string))
        req.inputs["k"].CopyFrom(tensor_codec.encode(10, tf.int32))
        recommend.append(req)
        # 100 real item ids from the model itself, so any catalogue works.
        items = fn(user_id=tf.constant([user]), k=tf.constant(100, tf.int32))[S.ITEM_IDS].numpy()
        sreq = predict_pb2.PredictRequest()
        sreq.model_spec.name = S.MODEL_NAME
        sreq.model_spec.signature_name = "score"
        sreq.inputs["user_id"].CopyFrom(tensor_codec.encode([user], tf.string))
        sreq.inputs["item_ids"].CopyFrom(tensor_codec.encode(items, tf.string))
        score.append(sreq)
    # The same signature for ids the model has never seen: no cached answer
    # (models/answer_cache.py), every request computed: the reference row.
    computed = []
    for user in users:
        req = predict_pb2.PredictRequest()
        req.CopyFrom(recommend[0])
        req.inputs["user_id"].CopyFrom(tensor_codec.encode([f"unknown-{user}"], tf.string))
        computed.append(req)
    return {"recommend": recommend, "score": score, COMPUTED: computed}


def run_load(
    target: str,
    requests: list[predict_pb2.PredictRequest],
    concurrency: int,
    total: int,
    max_seconds: float,
    timeout: float = 10.0,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """Closed loop: keep `concurrency` Predicts outstanding until `total` are done.

    c=1 uses plain blocking calls. Higher concurrency uses gRPC futures whose
    completion callback issues the next request: the load generator then
    costs one callback per request instead of a contended Python thread per
    slot, so on a small machine it steals less CPU from the server. Either
    way the client runs on the same cores as the server; its CPU per request
    is in the result.
    """
    channel = grpc.insecure_channel(target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    for req in requests[:3]:  # connect + warm
        stub.Predict(req, timeout=timeout)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.monotonic() + max_seconds
    usage = HostUsage(server_pid).__enter__()
    start = time.perf_counter()
    if concurrency <= 1:
        for i in range(total):
            if time.monotonic() > deadline:
                break
            t0 = time.perf_counter()
            try:
                stub.Predict(requests[i % len(requests)], timeout=timeout)
                latencies.append(time.perf_counter() - t0)
            except grpc.RpcError as exc:
                errors[exc.code().name] = errors.get(exc.code().name, 0) + 1
    else:
        lock = threading.Lock()
        done = threading.Event()
        state = {"issued": 0, "finished": 0}

        def issue() -> None:
            with lock:
                if state["issued"] >= total or time.monotonic() > deadline:
                    return
                i = state["issued"]
                state["issued"] += 1
            t0 = time.perf_counter()
            future = stub.Predict.future(requests[i % len(requests)], timeout=timeout)
            future.add_done_callback(lambda f, t0=t0: finish(f, t0))

        def finish(future: Any, t0: float) -> None:
            elapsed = time.perf_counter() - t0
            code = future.code()
            with lock:
                if code == grpc.StatusCode.OK:
                    latencies.append(elapsed)
                else:
                    errors[code.name] = errors.get(code.name, 0) + 1
                state["finished"] += 1
            issue()
            with lock:
                if state["finished"] >= state["issued"]:
                    done.set()

        for _ in range(concurrency):
            issue()
        done.wait(max_seconds + timeout + 5)
    wall = time.perf_counter() - start
    usage.__exit__()
    channel.close()
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(wall, 3),
        "qps": round(len(latencies) / wall, 1) if wall > 0 else 0.0,
        **percentiles(latencies),
        **usage.row(len(latencies) + sum(errors.values())),
        "latencies_s": latencies,
    }


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from repeats of a level: pooled latencies, median QPS (and its range)."""
    pooled = [x for r in runs for x in r["latencies_s"]]
    errors: dict[str, int] = {}
    for r in runs:
        for code, n in r["errors"].items():
            errors[code] = errors.get(code, 0) + n
    others = [r["other_procs_cores"] for r in runs if r["other_procs_cores"] is not None]
    qps = [r["qps"] for r in runs]
    return {
        "concurrency": runs[0]["concurrency"],
        "repeats": len(runs),
        "requests": len(pooled),
        "errors": errors,
        "seconds": round(sum(r["seconds"] for r in runs), 3),
        "qps": float(np.median(qps)),
        "qps_runs": qps,
        **percentiles(pooled),
        "server_cpu_us_per_req": int(np.median([r["server_cpu_us_per_req"] for r in runs])),
        "client_cpu_us_per_req": int(np.median([r["client_cpu_us_per_req"] for r in runs])),
        "other_procs_cores": round(float(np.mean(others)), 2) if others else None,
        "loadavg_1m": runs[-1]["loadavg_1m"],
    }


def in_process_latency(
    model_dir: str,
    n: int,
    users: list[str],
    requests: dict[str, list[predict_pb2.PredictRequest]],
) -> dict[str, dict[str, dict[str, float]]]:
    """The model alone, no RPC, three ways (rounds interleaved so all see the same load),
    for each label's requests (`make_requests`).

    `public`: the SavedModel's signature called with keyword tensors, what a
    program using the model directly would write. `server_path`: the call the
    server makes once a request is decoded (batching off: the function with its
    outputs serialized, serving/wire.py, and those bytes fetched), so the
    overhead measured against it is everything the server and gRPC add and
    nothing else. `handler`: the server's whole request handler (PredictRequest
    in, response bytes out: validation, decoding, the call, framing) without
    gRPC, which splits that overhead into handler and transport.
    """
    del users  # the requests carry them
    loaded = tf.saved_model.load(model_dir)
    servable = Servable(S.MODEL_NAME, 1, model_dir)
    calls: dict[str, dict[str, list[Callable[[], Any]]]] = {}
    for label, reqs in requests.items():
        ways: dict[str, list[Callable[[], Any]]] = {"public": [], "server_path": [],
                                                    "handler": []}
        for req in reqs:
            name = req.model_spec.signature_name
            sig, fn = servable.signatures[name], loaded.signatures[name]
            tensors = sig.to_tensors(sig.decode_inputs(req.inputs))

            # Each default binds this request's values (a closure would see the last).
            def public(fn: Any = fn, t: dict[str, tf.Tensor] = tensors) -> Any:
                return fn(**t)

            def serialized(sig: Signature = sig, t: dict[str, tf.Tensor] = tensors
                           ) -> list[np.ndarray]:
                return [v.numpy() for v in sig.call_serialized(t).values()]

            def run(sig: Signature = sig, t: dict[str, tf.Tensor] = tensors
                    ) -> dict[str, np.ndarray]:
                return sig.run(t)

            def handler(req: predict_pb2.PredictRequest = req
                        ) -> bytes | predict_pb2.PredictResponse:
                return handlers.predict_bytes(servable, req)

            ways["public"].append(public)
            ways["server_path"].append(serialized if sig.serializes else run)
            ways["handler"].append(handler)
        calls[label] = ways
    out: dict[str, dict[str, dict[str, float]]] = {}
    for label, ways in calls.items():
        lat: dict[str, list[float]] = {way: [] for way in ways}
        for fns in ways.values():
            for fn in fns[:20]:
                fn()
        for start in range(0, n, 50):
            for way, fns in ways.items():
                for i in range(start, min(start + 50, n)):
                    t0 = time.perf_counter()
                    fns[i % len(fns)]()
                    lat[way].append(time.perf_counter() - t0)
        out[label] = {way: {"calls": n, **percentiles(lat[way])} for way in ways}
    return out
