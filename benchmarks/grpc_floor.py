"""The gRPC transport floor: a Predict server that does nothing, in its own process.

The servicer answers every Predict with an empty `PredictResponse` without
reading the request. The server is built like `mtrec serve` builds its own
(sync `grpc.server`, a ThreadPoolExecutor of `--threads` workers, the same
channel options, methods registered by `_add_service`), so a client's round
trip to it is what the Python gRPC stacks of client and server cost for a
request of that size, with no model, decoding or encoding behind it.

`--handler` and `--server` are the variants benchmarks/grpc_tf_call.py compares
(issue 19): what the handler does before answering, and the sync server or a
`grpc.aio` one (handler on the event-loop thread, no thread-pool hand-off).
Handlers other than `empty` time their work inside the server (wall and
thread CPU); a Predict for the model named `WORK_TIMES` answers their p50s
since the last such ask, so the client can tell a slower call from a slower
server around it.

    python benchmarks/grpc_floor.py --threads 8   # prints the port, serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent import futures

import numpy as np

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    predict_pb2,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

from mtrec.serving.affinity import parse_cpus, pin_process
from mtrec.serving.direct_call import DirectCall
from mtrec.serving.server import _add_service
from mtrec.serving.server_args import DEFAULT_MAX_REQUEST_BYTES

# What the handler does before answering (benchmarks/grpc_tf_call.py compares them):
# nothing; busy-wait SPIN_SECONDS holding the GIL; run a trivial TF function
# eagerly (its public call, or DirectCall as `mtrec serve` calls signatures);
# or run it as a TF1 Session callable on the calling thread.
HANDLERS = ("empty", "spin", "tf", "tf-direct", "tf-session")
SERVERS = ("sync", "aio")
SPIN_SECONDS = 250e-6
# Model name that asks a non-empty handler for its work's p50 [wall us, thread CPU us].
WORK_TIMES = "work_us"
OPTIONS = [
    ("grpc.max_receive_message_length", DEFAULT_MAX_REQUEST_BYTES),
    ("grpc.max_send_message_length", -1),
    ("grpc.so_reuseport", 0),
]


def _twice_plus_one(x: tf.Tensor) -> tf.Tensor:
    """The trivial work every TF handler does, on a [2] float tensor."""
    return x * 2.0 + 1.0


def trivial_tf_call() -> Callable[[], object]:
    """A concrete TF function computing x * 2 + 1 on a [2] tensor, and its call."""
    fn = tf.function(_twice_plus_one).get_concrete_function(
        tf.TensorSpec([None], tf.float32)
    )
    x = tf.constant([1.0, 2.0])
    fn(x)
    return lambda: fn(x)


def trivial_direct_call() -> Callable[[], object]:
    """The same function called the way the server calls a signature (serving/direct_call.py)."""
    fn = tf.function(lambda x: {"y": _twice_plus_one(x)}).get_concrete_function(
        tf.TensorSpec([None], tf.float32)
    )
    call = DirectCall.build(fn, [tf.float32])
    if call is None:
        raise RuntimeError("DirectCall does not fit the trivial function")
    x = [tf.constant([1.0, 2.0])]
    call(x)
    return lambda: call(x)


def trivial_session_call() -> Callable[[], object]:
    """The same x * 2 + 1 as a `tf.compat.v1.Session` callable: one C call (one GIL
    release), its ops run on the caller's thread (inter-op threads -1), as a
    SavedModel loaded into a session (TF Serving's way) would run."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None])
        y = _twice_plus_one(x)
    config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=-1)
    call = tf.compat.v1.Session(graph=graph, config=config).make_callable(y, [x])
    value = np.array([1.0, 2.0], np.float32)
    call(value)
    return lambda: call(value)


def _spin() -> None:
    start = time.perf_counter()
    while time.perf_counter() - start < SPIN_SECONDS:
        pass


WORK: dict[str, Callable[[], Callable[[], object]]] = {
    "spin": lambda: _spin,
    "tf": trivial_tf_call,
    "tf-direct": trivial_direct_call,
    "tf-session": trivial_session_call,
}


class EchoServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, handler: str = "empty") -> None:
        self._work = WORK[handler]() if handler != "empty" else None
        self._times: list[tuple[float, float]] = []

    def Predict(
        self, request: predict_pb2.PredictRequest, context: object
    ) -> predict_pb2.PredictResponse:
        if self._work is not None:
            if request.model_spec.name == WORK_TIMES:
                return self._work_times()
            wall, cpu = time.perf_counter(), time.thread_time()
            self._work()
            self._times.append((time.perf_counter() - wall, time.thread_time() - cpu))
        return predict_pb2.PredictResponse()

    def _work_times(self) -> predict_pb2.PredictResponse:
        """p50 wall and thread-CPU microseconds of the work since the last ask; resets."""
        times, self._times = np.array(self._times or [(0.0, 0.0)]), []
        response = predict_pb2.PredictResponse()
        response.outputs[WORK_TIMES].CopyFrom(
            tf.make_tensor_proto(1e6 * np.median(times, axis=0), tf.float64)
        )
        return response


class AioEchoServicer(EchoServicer):
    """The same handler as a coroutine: grpc.aio runs it on the event-loop thread."""

    async def Predict(
        self, request: predict_pb2.PredictRequest, context: object
    ) -> predict_pb2.PredictResponse:
        return EchoServicer.Predict(self, request, context)


def _register(server: grpc.Server | grpc.aio.Server, servicer: EchoServicer) -> int:
    _add_service(
        server,
        prediction_service_pb2,
        "PredictionService",
        servicer,
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server,
    )
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        raise OSError("could not bind the echo server to 127.0.0.1")
    return port


async def _serve_aio(handler: str) -> None:
    server = grpc.aio.server(options=OPTIONS)
    port = _register(server, AioEchoServicer(handler))
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


def serve(threads: int, handler: str = "empty", kind: str = "sync", cpus: str | None = None
          ) -> None:
    if cpus:  # as `mtrec serve --cpus`, before any thread starts
        pin_process(parse_cpus(cpus))
    tf.config.threading.set_inter_op_parallelism_threads(1)  # as `mtrec serve`
    if kind == "aio":
        asyncio.run(_serve_aio(handler))
        return
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="floor-rpc"),
        options=OPTIONS,
    )
    port = _register(server, EchoServicer(handler))
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


def terminate(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class EchoServer:
    """This file's server as a child process on a free loopback port; `stop()` ends it."""

    def __init__(
        self,
        threads: int,
        log_path: str = os.devnull,
        timeout: float = 120.0,
        handler: str = "empty",
        kind: str = "sync",
        cpus: str | None = None,
    ) -> None:
        self._log = open(log_path, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--threads",
                str(threads),
                "--handler",
                handler,
                "--server",
                kind,
                *(["--cpus", cpus] if cpus else []),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        try:
            self.port = self._read_port(timeout)
        except BaseException:
            self.stop()
            raise
        self.target = f"127.0.0.1:{self.port}"

    def _read_port(self, timeout: float) -> int:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if sel.select(timeout=1.0):
                    line = self.proc.stdout.readline().strip()
                    if line.isdigit():
                        return int(line)
                    if not line and self.proc.poll() is not None:
                        break
        raise RuntimeError(f"echo gRPC server did not start (exit code {self.proc.poll()})")

    def stop(self) -> None:
        terminate(self.proc, timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def __enter__(self) -> EchoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--handler", choices=HANDLERS, default="empty")
    parser.add_argument("--server", choices=SERVERS, default="sync")
    parser.add_argument("--cpus", help="pin every thread to these CPU ids, as `mtrec serve`")
    args = parser.parse_args()
    serve(args.threads, args.handler, args.server, args.cpus)
