"""An embedded, TF Serving protocol-compatible model server.

Production serving is `tensorflow/serving` (see serving/deploy/). This server
speaks the same gRPC API (`tensorflow.serving.PredictionService` and
`ModelService`) and follows the same version and status semantics, so the
client, the tests and the benchmark run unchanged against either, and
everything can be exercised where the TF Serving binary is not available.

    mtrec serve --model-base-path outputs/sample/serving_model/mtrec --port 8500
    mtrec serve --model-config-file models.config --port 8500   # TF Serving's format

Both mean what they mean in TF Serving (serving/model_config.py).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any, TypeVar

import grpc
import tensorflow as tf
from google.protobuf import symbol_database
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from mtrec.serving import handlers
from mtrec.serving.affinity import pin_process
from mtrec.serving.batching import BatchingOptions
from mtrec.serving.errors import ServingError
from mtrec.serving.model_config import model_sources
from mtrec.serving.model_manager import ModelManager
from mtrec.serving.ports import bind_problem
from mtrec.serving.registry import ModelRegistry
from mtrec.serving.rest import RestServer
from mtrec.serving.server_args import ServerConfig, add_server_arguments, config_from_args
from mtrec.serving.signature import RequestLimits
from mtrec.serving.warmup import replay_warmup

log = logging.getLogger("mtrec.serving")

_Resp = TypeVar("_Resp")


def _call(
    context: grpc.ServicerContext, empty: Callable[[], _Resp], fn: Callable[[], _Resp]
) -> _Resp:
    """Run one RPC body; any failure becomes a status, never a dead server.

    Setting the code on the context (rather than `context.abort`) avoids an
    exception round trip per failed request.
    """
    try:
        return fn()
    except ServingError as exc:
        context.set_code(exc.code)
        context.set_details(exc.message)
    except Exception as exc:  # a bug or an unexpected TF error: report, keep serving
        log.exception("request failed")
        context.set_code(grpc.StatusCode.INTERNAL)
        context.set_details(f"{type(exc).__name__}: {exc}")
    return empty()


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """tensorflow.serving.PredictionService over the served models."""

    def __init__(self, models: ModelRegistry) -> None:
        self._models = models
        # Set when the method is registered with a serializer that passes bytes
        # through (_add_service): then Predict answers with wire bytes (serving/wire.py).
        self.wire_bytes = False

    def Predict(
        self, request: predict_pb2.PredictRequest, context: Any
    ) -> predict_pb2.PredictResponse | bytes:
        predict = handlers.predict_bytes if self.wire_bytes else handlers.predict
        return _call(
            context,
            predict_pb2.PredictResponse,
            lambda: predict(handlers.resolve_request(self._models, request), request),
        )

    def Classify(
        self, request: classification_pb2.ClassificationRequest, context: Any
    ) -> classification_pb2.ClassificationResponse:
        return _call(
            context,
            classification_pb2.ClassificationResponse,
            lambda: handlers.classify(handlers.resolve_request(self._models, request), request),
        )

    def Regress(
        self, request: regression_pb2.RegressionRequest, context: Any
    ) -> regression_pb2.RegressionResponse:
        return _call(
            context,
            regression_pb2.RegressionResponse,
            lambda: handlers.regress(handlers.resolve_request(self._models, request), request),
        )

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: Any
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        return _call(
            context,
            get_model_metadata_pb2.GetModelMetadataResponse,
            lambda: handlers.metadata(handlers.resolve_request(self._models, request), request),
        )


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """tensorflow.serving.ModelService: status only (config reload is TF Serving's job)."""

    def __init__(self, models: ModelRegistry) -> None:
        self._models = models

    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: Any
    ) -> get_model_status_pb2.GetModelStatusResponse:
        return _call(
            context,
            get_model_status_pb2.GetModelStatusResponse,
            lambda: handlers.model_status(self._models, request),
        )


def _configure_tf_threads(inter: int, intra: int) -> None:
    """Apply TF pool sizes; only possible before TF's runtime starts (e.g. in tests it has)."""
    threading_api = tf.config.threading
    for value, get, set_ in (
        (
            inter,
            threading_api.get_inter_op_parallelism_threads,
            threading_api.set_inter_op_parallelism_threads,
        ),
        (
            intra,
            threading_api.get_intra_op_parallelism_threads,
            threading_api.set_intra_op_parallelism_threads,
        ),
    ):
        if value and get() != value:
            try:
                set_(value)
            except RuntimeError as exc:  # runtime already initialised in this process
                log.warning("cannot change TF thread pools now: %s", exc)


def _add_service(
    server: grpc.Server,
    proto_module: Any,
    service: str,
    servicer: Any,
    add_generic: Callable[[Any, grpc.Server], None],
) -> None:
    """Register `servicer` for every method of the proto service.

    Registered methods are matched by gRPC core instead of a per-call lookup
    through generic handlers (the generated `add_*_to_server` predates them),
    which trims the per-request cost a little. Methods come from the service
    descriptor, so unimplemented ones (MultiInference) answer UNIMPLEMENTED as
    before. Older grpcio without registered methods gets the generated path.
    """
    descriptor = proto_module.DESCRIPTOR.services_by_name[service]
    streaming = any(m.client_streaming or m.server_streaming for m in descriptor.methods)
    if streaming or not hasattr(server, "add_registered_method_handlers"):
        add_generic(servicer, server)
        return
    symbols = symbol_database.Default()
    handlers_by_method = {
        method.name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=symbols.GetSymbol(method.input_type.full_name).FromString,
            response_serializer=_serialized,
        )
        for method in descriptor.methods
    }
    server.add_registered_method_handlers(descriptor.full_name, handlers_by_method)
    if isinstance(servicer, PredictionServicer):
        servicer.wire_bytes = True


def _serialized(response: Any) -> bytes:
    """A response message's wire bytes; bytes (already a serialized response) as they are."""
    return response if type(response) is bytes else response.SerializeToString()


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


class ServingServer:
    """Model manager + gRPC server (+ optional REST), started and stopped together."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        if config.cpus:  # first: the threads started below inherit it
            pin_process(config.cpus)
        _configure_tf_threads(config.tf_inter_op_threads, config.tf_intra_op_threads)
        sources = model_sources(config.model_base_path, config.model_name, config.model_config_file)
        batching = BatchingOptions(config.max_batch_size) if config.batching else None
        limits = RequestLimits(config.max_request_rows, config.max_request_elements,
                               config.max_request_pairs)
        self.models = ModelRegistry([
            ModelManager(source.base_path, source.name, poll_seconds=config.poll_seconds,
                         warmup=replay_warmup if config.warmup else None, batching=batching,
                         freeze_gc=config.freeze_gc, limits=limits)
            for source in sources
        ])
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="mtrec-rpc"),
            options=[
                ("grpc.max_receive_message_length", config.max_request_bytes),
                ("grpc.max_send_message_length", -1),
                # Never share a port with a stale server (SO_REUSEPORT would).
                ("grpc.so_reuseport", 0),
            ],
        )
        _add_service(
            self._grpc,
            prediction_service_pb2,
            "PredictionService",
            PredictionServicer(self.models),
            prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server,
        )
        _add_service(
            self._grpc,
            model_service_pb2,
            "ModelService",
            ModelServicer(self.models),
            model_service_pb2_grpc.add_ModelServiceServicer_to_server,
        )
        self.port = self._bind_grpc(config)
        self._rest = None
        self.rest_port: int | None = None
        if config.rest_port is not None:
            try:
                self._rest = RestServer(
                    self.models, config.host, config.rest_port, config.max_request_bytes
                )
            except OSError as exc:  # e.g. EADDRINUSE: say which flag to change
                self._grpc.stop(None)  # free the gRPC port bound above
                raise OSError(
                    f"cannot serve REST on {config.host}:{config.rest_port}: "
                    f"{exc.strerror or exc}; pick another --rest-port"
                ) from exc
            self.rest_port = self._rest.port
        self._stopped = threading.Event()

    def _bind_grpc(self, config: ServerConfig) -> int:
        """Bind the gRPC port; OSError naming the flag when it cannot be had.

        serving/ports.py asks first, so the usual causes (the port in use, an address not
        of this host) come without gRPC's C++ log line. Otherwise grpcio raises a bare
        RuntimeError ("Failed to bind to address ...", older versions return 0).
        """
        address = f"{config.host}:{config.port}"
        problem = bind_problem(config.host, config.port)
        if problem:
            raise OSError(f"cannot serve gRPC on {address}: {problem}; pick another --port "
                          "(or --host)")
        creds = None
        if config.tls_cert or config.tls_key:
            if not (config.tls_cert and config.tls_key):
                raise ValueError("TLS needs both --tls-cert and --tls-key")
            creds = grpc.ssl_server_credentials(
                [(_read(config.tls_key), _read(config.tls_cert))],
                root_certificates=_read(config.tls_client_ca) if config.tls_client_ca else None,
                require_client_auth=bool(config.tls_client_ca),
            )
        try:
            if creds is not None:
                port = self._grpc.add_secure_port(address, creds)
            else:
                port = self._grpc.add_insecure_port(address)
        except RuntimeError:
            port = 0
        if port == 0:
            raise OSError(
                f"cannot serve gRPC on {address}: the port is in use (another server?) or "
                "the address is not this host's; pick another --port (or --host)"
            )
        return port

    @property
    def manager(self) -> ModelManager:
        """The first configured model's manager (the only one with --model-base-path)."""
        return self.models.first

    @property
    def target(self) -> str:
        return f"{self.config.host}:{self.port}"

    def start(self) -> ServingServer:
        self._grpc.start()
        if self._rest is not None:
            self._rest.start()
        self.models.start()
        cfg = self.config
        log.info(
            "serving %s on %s (REST %s, TLS %s, %d RPC threads, batching %s)",
            ", ".join(f"{m.model_name} from {m.model_dir}" for m in self.models),
            self.target,
            f"on {cfg.host}:{self.rest_port}" if self.rest_port is not None else "off",
            "on" if cfg.tls_cert else "off",
            cfg.threads,
            f"max {cfg.max_batch_size} rows" if cfg.batching else "off",
        )
        return self

    def stop(self, grace: float | None = 2.0) -> None:
        """Stop polling, refuse new RPCs, let in-flight ones finish within `grace`."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        # Refuse new RPCs and drain in-flight ones first: joining a poller that is
        # loading a version can take as long as the load, and must not keep the
        # server taking requests after SIGTERM all that time.
        self.models.stop(join=False)
        if self._rest is not None:
            self._rest.stop()
        self._grpc.stop(grace).wait()
        self.models.stop()
        servables = [m.current for m in self.models if m.current is not None]
        for sig in (sig for servable in servables for sig in servable.signatures.values()):
            if sig.batcher is not None and sig.batcher.requests:
                log.info(
                    "batching %s: %d requests in %d model calls",
                    sig.name,
                    sig.batcher.requests,
                    sig.batcher.calls,
                )

    def wait(self) -> None:
        self._grpc.wait_for_termination()

    def __enter__(self) -> ServingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_server(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM, then drain in-flight requests."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Version loads/swaps/failures are operational events: show them even when
    # the host CLI configured logging at WARNING.
    logging.getLogger("mtrec.serving").setLevel(logging.INFO)
    server = ServingServer(config_from_args(args)).start()
    print(
        f"mtrec serving on {server.target}"
        + (f" (REST on {args.host}:{server.rest_port})" if server.rest_port else ""),
        flush=True,
    )

    stop = threading.Event()

    def _shutdown(signum: int, _frame: Any) -> None:
        log.info("signal %d: draining and shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    while not stop.wait(0.5):  # short waits keep the main thread responsive to signals
        pass
    started = time.monotonic()
    server.stop(grace=5.0)
    log.info("stopped in %.2fs", time.monotonic() - started)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mtrec serve", description=__doc__.splitlines()[0])
    add_server_arguments(parser)
    return run_server(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
