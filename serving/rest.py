"""A minimal TF Serving-compatible REST endpoint on the standard library.

Covers what probes and quick manual tests use: `GET /v1/models/<name>`
(version status), `GET /v1/models/<name>/metadata` and
`POST /v1/models/<name>[/versions/N]:predict` in both of TF Serving's JSON
request formats (row `instances`, columnar `inputs`). The same handlers as
gRPC do the work, so validation and status codes match.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from mtrec.serving import handlers, tensor_codec
from mtrec.serving.errors import ServingError, invalid_argument
from mtrec.serving.registry import ModelRegistry
from mtrec.serving.signature import DEFAULT_SIGNATURE

log = logging.getLogger("mtrec.serving.rest")

_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+))?"
    r"(?:(?P<meta>/metadata)|:(?P<verb>predict))?$"
)
# Same mapping TF Serving's HTTP server uses for error statuses.
_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.FAILED_PRECONDITION: HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.OUT_OF_RANGE: HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.NOT_FOUND: HTTPStatus.NOT_FOUND,
    grpc.StatusCode.UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: HTTPStatus.TOO_MANY_REQUESTS,
    grpc.StatusCode.UNIMPLEMENTED: HTTPStatus.NOT_IMPLEMENTED,
}


def _spec(request: Any, name: str, version: str | None) -> None:
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = int(version)


def _whole(value: Any) -> bool:
    """Whether a JSON value holds whole numbers only: an int input cut 3.7 to 3, where TF
    Serving's REST API refuses it. Values that are no numbers are the conversion's to name."""
    try:
        numbers = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return True
    return bool(np.all(numbers == np.floor(numbers)))


def _predict(models: ModelRegistry, name: str, version: str | None, body: dict) -> dict:
    request = predict_pb2.PredictRequest()
    _spec(request, name, version)
    signature = body.get("signature_name") or DEFAULT_SIGNATURE
    if not isinstance(signature, str):  # the proto's TypeError was a 500
        raise invalid_argument(f"'signature_name' must be a string, got {signature!r}")
    request.model_spec.signature_name = signature
    servable = handlers.resolve(models, request.model_spec)
    sig = servable.signature(request.model_spec.signature_name)
    row_format = "instances" in body
    if row_format == ("inputs" in body):
        raise invalid_argument("request must have exactly one of 'instances' or 'inputs'")
    if row_format:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise invalid_argument("'instances' must be a non-empty list")
        scalars = [key for key, spec in sig.inputs.items() if not spec.batched]
        if scalars:  # a row holds one value per input: no row can carry a scalar's
            raise invalid_argument(
                f"signature '{sig.name}' takes {scalars[0]!r} as one value for the whole "
                f"request, which the row format ('instances') cannot give: send columns, "
                f'{{"inputs": {{"{scalars[0]}": ..., ...}}}} (one list per batched input)')
        if isinstance(instances[0], dict):
            columns = {
                key: [tensor_codec.from_json(row.get(key)) for row in instances]
                for key in instances[0]
            }
        elif len(sig.inputs) == 1:
            columns = {next(iter(sig.inputs)): tensor_codec.from_json(instances)}
        else:
            raise invalid_argument("'instances' must be objects for a multi-input signature")
    else:
        inputs = body["inputs"]
        if not isinstance(inputs, dict):
            if len(sig.inputs) != 1:
                raise invalid_argument("'inputs' must be an object for a multi-input signature")
            inputs = {next(iter(sig.inputs)): inputs}
        columns = {key: tensor_codec.from_json(value) for key, value in inputs.items()}
    for key, value in columns.items():
        spec = sig.inputs.get(key)
        if spec is not None and spec.dtype.is_integer and not _whole(value):
            raise invalid_argument(f"input '{key}' takes whole numbers, got {value!r}")
        try:
            arr = np.asarray(
                value,
                dtype=object
                if spec is None or spec.dtype.name == "string"
                else spec.dtype.as_numpy_dtype,
            )
        except (TypeError, ValueError) as exc:
            raise invalid_argument(f"input '{key}' could not be converted: {exc}") from exc
        request.inputs[key].CopyFrom(tensor_codec.encode(arr, spec.dtype if spec else None))
    response = handlers.predict(servable, request)
    outputs = {
        key: tensor_codec.to_jsonable(tensor_codec.decode(proto))
        for key, proto in response.outputs.items()
    }
    if not row_format:
        return {"outputs": outputs if len(outputs) != 1 else next(iter(outputs.values()))}
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    batch = len(next(iter(outputs.values())))
    return {
        "predictions": [{key: value[i] for key, value in outputs.items()} for i in range(batch)]
    }


class _Handler(BaseHTTPRequestHandler):
    models: ModelRegistry  # set on the per-server subclass
    max_body: int
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet by default
        log.debug(fmt, *args)

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, exc: ServingError) -> None:
        self._send(_HTTP.get(exc.code, HTTPStatus.INTERNAL_SERVER_ERROR), {"error": exc.message})

    def _route(self) -> re.Match[str] | None:
        match = _PATH.match(self.path.split("?", 1)[0])
        if match is None:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"Malformed request: {self.path}"})
        return match

    def do_GET(self) -> None:  # http.server's naming
        match = self._route()
        if match is None:
            return
        name, version = match["name"], match["version"]
        try:
            if match["verb"]:
                raise ServingError(grpc.StatusCode.UNIMPLEMENTED, "use POST for :predict")
            if match["meta"]:
                req = get_model_metadata_pb2.GetModelMetadataRequest(
                    metadata_field=["signature_def"]
                )
                _spec(req, name, version)
                servable = handlers.resolve(self.models, req.model_spec)
                resp = handlers.metadata(servable, req)
            else:
                req = get_model_status_pb2.GetModelStatusRequest()
                _spec(req, name, version)
                resp = handlers.model_status(self.models, req)
            self._send(
                HTTPStatus.OK, json_format.MessageToDict(resp, including_default_value_fields=True)
            )
        except ServingError as exc:
            self._error(exc)

    def do_POST(self) -> None:
        match = self._route()
        if match is None:
            return
        try:
            if match["verb"] != "predict":
                raise ServingError(grpc.StatusCode.UNIMPLEMENTED, "only :predict is supported")
            length = int(self.headers.get("Content-Length") or 0)
            if length > self.max_body:
                self.close_connection = True
                raise ServingError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"request of {length} bytes exceeds {self.max_body}",
                )
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError as exc:
                raise invalid_argument(f"JSON parse error: {exc}") from exc
            if not isinstance(body, dict):
                raise invalid_argument("request body must be a JSON object")
            self._send(HTTPStatus.OK, _predict(self.models, match["name"], match["version"], body))
        except ServingError as exc:
            self._error(exc)
        except Exception as exc:  # keep the server up whatever the request
            log.exception("REST predict failed")
            self._error(ServingError(grpc.StatusCode.INTERNAL, str(exc)))


class RestServer:
    """Threaded HTTP server bound to (host, port); port 0 picks a free one."""

    def __init__(self, models: ModelRegistry, host: str, port: int, max_body: int) -> None:
        handler = type("Handler", (_Handler,), {"models": models, "max_body": max_body})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="mtrec-rest", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
