"""The gRPC transport floor: a Predict server that does nothing, in its own process.

The servicer answers every Predict with an empty `PredictResponse` without
reading the request. The server is built like `mtrec serve` builds its own
(sync `grpc.server`, a ThreadPoolExecutor of `--threads` workers, the same
channel options, methods registered by `_add_service`), so a client's round
trip to it is what the Python gRPC stacks of client and server cost for a
request of that size, with no model, decoding or encoding behind it.

    python benchmarks/grpc_floor.py --threads 8   # prints the port, serves until killed
"""

from __future__ import annotations

import argparse
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent import futures

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    predict_pb2,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

from mtrec.serving.server import _add_service
from mtrec.serving.server_args import DEFAULT_MAX_REQUEST_BYTES

# What the handler does before answering (benchmarks/grpc_tf_call.py compares them):
# nothing; busy-wait SPIN_SECONDS holding the GIL; or run a trivial TF function.
HANDLERS = ("empty", "spin", "tf")
SPIN_SECONDS = 250e-6


def trivial_tf_call() -> Callable[[], object]:
    """A concrete TF function computing x * 2 + 1 on a [2] tensor, and its call."""
    fn = tf.function(lambda x: x * 2.0 + 1.0).get_concrete_function(
        tf.TensorSpec([None], tf.float32))
    x = tf.constant([1.0, 2.0])
    fn(x)
    return lambda: fn(x)


class EchoServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, handler: str = "empty") -> None:
        self._work: Callable[[], object] = lambda: None
        if handler == "tf":
            self._work = trivial_tf_call()
        elif handler == "spin":
            self._work = _spin

    def Predict(self, request: predict_pb2.PredictRequest, context: object):  # noqa: N802
        self._work()
        return predict_pb2.PredictResponse()


def _spin() -> None:
    start = time.perf_counter()
    while time.perf_counter() - start < SPIN_SECONDS:
        pass


def serve(threads: int, handler: str = "empty") -> None:
    tf.config.threading.set_inter_op_parallelism_threads(1)  # as `mtrec serve`
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="floor-rpc"),
        options=[
            ("grpc.max_receive_message_length", DEFAULT_MAX_REQUEST_BYTES),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
        ],
    )
    _add_service(
        server,
        prediction_service_pb2,
        "PredictionService",
        EchoServicer(handler),
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server,
    )
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        raise OSError("could not bind the echo server to 127.0.0.1")
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

    def __init__(self, threads: int, log_path: str = os.devnull, timeout: float = 120.0,
                 handler: str = "empty") -> None:
        self._log = open(log_path, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--threads", str(threads),
             "--handler", handler],
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
    args = parser.parse_args()
    serve(args.threads, args.handler)
