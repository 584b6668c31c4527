"""A TF Serving-compatible REST endpoint on the standard library.

Clients written for TF Serving's REST API are pointed at this server, so it
takes the same URLs (http_rest_api_util.cc: matched case-insensitively, the
model name and label URL-decoded) and answers as TF Serving does:

    GET  /v1/models/<name>[/versions/N | /labels/L]             version status
    GET  /v1/models/<name>[/versions/N | /labels/L]/metadata    signature defs
    POST /v1/models/<name>[/versions/N | /labels/L]:predict     `instances` or `inputs`
    POST /v1/models/<name>[/versions/N | /labels/L]:classify    `examples` (+ `context`)
    POST /v1/models/<name>[/versions/N | /labels/L]:regress

Any other /v1/ path is 400 "Malformed request" (TF Serving's INVALID_ARGUMENT).
The same handlers as gRPC do the work, so validation and status codes match;
the JSON conversion is serving/rest_json.py. Every request gets an answer: a
bad one is 4xx, anything unexpected a logged 500 with a JSON error body,
never a dropped connection (a client retries a 5xx or a reset, not a 400).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from mtrec.serving import handlers, rest_json, tensor_codec
from mtrec.serving.errors import ServingError, invalid_argument
from mtrec.serving.model_manager import Servable
from mtrec.serving.registry import ModelRegistry
from mtrec.serving.signature import DEFAULT_SIGNATURE, Signature
from mtrec.serving.versions import MAX_VERSION

log = logging.getLogger("mtrec.serving.rest")

# http_rest_api_util.cc's kPredictionApiGegex and kModelStatusApiRegex (RE2's \d is ASCII).
_VERSION_OR_LABEL = r"(?:/versions/(?P<version>[0-9]+)|/labels/(?P<label>[^/:]+))?"
_POST_PATH = re.compile(
    rf"/v1/models/(?P<name>[^/:]+){_VERSION_OR_LABEL}:(?P<verb>classify|regress|predict)",
    re.IGNORECASE)
_GET_PATH = re.compile(
    rf"/v1/models(?:/(?P<name>[^/:]+))?{_VERSION_OR_LABEL}(?:/(?P<sub>metadata))?",
    re.IGNORECASE)
_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)  # kPathRegex: the rest is 404
_CHUNK_LINE = 1024  # bytes of a chunk-size line (hex size plus extensions)
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_MAX_TRAILERS = 64
_DIGITS = re.compile(r"[0-9]+")
# http_server.cc's ToHTTPStatusCode.
_HTTP = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: HTTPStatus.INTERNAL_SERVER_ERROR,
    grpc.StatusCode.INVALID_ARGUMENT: HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.DEADLINE_EXCEEDED: HTTPStatus.GATEWAY_TIMEOUT,
    grpc.StatusCode.NOT_FOUND: HTTPStatus.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: HTTPStatus.CONFLICT,
    grpc.StatusCode.PERMISSION_DENIED: HTTPStatus.FORBIDDEN,
    grpc.StatusCode.RESOURCE_EXHAUSTED: HTTPStatus.TOO_MANY_REQUESTS,
    grpc.StatusCode.FAILED_PRECONDITION: HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.ABORTED: HTTPStatus.CONFLICT,
    grpc.StatusCode.OUT_OF_RANGE: HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.UNIMPLEMENTED: HTTPStatus.NOT_IMPLEMENTED,
    grpc.StatusCode.INTERNAL: HTTPStatus.INTERNAL_SERVER_ERROR,
    grpc.StatusCode.UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS: HTTPStatus.INTERNAL_SERVER_ERROR,
    grpc.StatusCode.UNAUTHENTICATED: HTTPStatus.UNAUTHORIZED,
}


@dataclass(frozen=True)
class _Route:
    """What a request path asks for (TF Serving's ParseModelInfo)."""

    name: str
    version: int | None
    label: str | None
    verb: str  # "predict", "classify", "regress"; "" for GET
    metadata: bool

    def spec(self, out: model_pb2.ModelSpec) -> None:
        out.name = self.name
        if self.version is not None:
            out.version.value = self.version
        elif self.label is not None:
            out.version_label = self.label


def _decoded(text: str, what: str) -> str:
    """A path part URL-decoded as curl_easy_unescape does (%XX only, '+' stays)."""
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError as exc:
        raise invalid_argument(f"Failed to decode {what}:{text}") from exc


def _route(method: str, path: str) -> _Route:
    """Parse a /v1/ path; INVALID_ARGUMENT (400) where TF Serving refuses it."""
    pattern = {"POST": _POST_PATH, "GET": _GET_PATH}.get(method)
    match = pattern.fullmatch(path) if pattern is not None else None
    if match is None:
        raise invalid_argument(f"Malformed request: {method} {path}")
    version = None
    if match["version"] is not None:
        version = int(match["version"])
        if version > MAX_VERSION:  # absl::SimpleAtoi into an int64
            raise invalid_argument(f"Failed to convert version: {match['version']} to numeric.")
    name = _decoded(match["name"] or "", "model name")
    label = _decoded(match["label"], "model version label") if match["label"] else None
    if method == "POST":
        verb = match["verb"]
        if verb not in ("predict", "classify", "regress"):  # matched, but compared exactly
            raise invalid_argument(f"Malformed request: {method} {path}")
        return _Route(name, version, label, verb, False)
    if not name:
        raise invalid_argument("Missing model name in request.")
    return _Route(name, version, label, "", match["sub"] == "metadata")


def _signature(servable: Servable, name: str) -> Signature:
    """The signature a predict request names, refused in TF Serving's REST words."""
    sig = servable.signatures.get(name or DEFAULT_SIGNATURE)
    if sig is None:
        raise invalid_argument(
            f'Serving signature name: "{name or DEFAULT_SIGNATURE}" not found in signature '
            f"def; model '{servable.name}' version {servable.version} has "
            f"{sorted(servable.signatures)}")
    return sig


def _predict(models: ModelRegistry, route: _Route, body: bytes) -> dict:
    doc = rest_json.parse_body(body)
    request = predict_pb2.PredictRequest()
    route.spec(request.model_spec)
    request.model_spec.signature_name = rest_json.signature_name(doc)
    servable = handlers.resolve(models, request.model_spec)
    sig = _signature(servable, request.model_spec.signature_name)
    arrays, rows = rest_json.predict_inputs(doc, sig)
    for key, arr in arrays.items():
        request.inputs[key].CopyFrom(tensor_codec.encode(arr, sig.inputs[key].dtype))
    response = handlers.predict(servable, request)
    outputs = {key: tensor_codec.decode(proto) for key, proto in response.outputs.items()}
    return rest_json.predict_json(outputs, rows)


def _classify_or_regress(models: ModelRegistry, route: _Route, body: bytes) -> dict:
    doc = rest_json.parse_body(body)
    request: Any = (classification_pb2.ClassificationRequest() if route.verb == "classify"
                    else regression_pb2.RegressionRequest())
    route.spec(request.model_spec)
    request.model_spec.signature_name = rest_json.signature_name(doc)
    request.input.CopyFrom(rest_json.examples_input(doc))
    servable = handlers.resolve(models, request.model_spec)
    if route.verb == "classify":
        return classification_json(handlers.classify(servable, request).result)
    return regression_json(handlers.regress(servable, request).result)


def _float(value: float) -> float:
    return float(str(np.float32(value)))


def classification_json(result: Any) -> dict:
    """MakeJsonFromClassificationResult: per example, [label, score] per class."""
    if not result.classifications:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    return {"results": [[[c.label, _float(c.score)] for c in cls.classes]
                        for cls in result.classifications]}


def regression_json(result: Any) -> dict:
    """MakeJsonFromRegressionResult: one value per example."""
    if not result.regressions:
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    return {"results": [_float(r.value) for r in result.regressions]}


def metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> dict:
    """ToJsonString(GetModelMetadataResponse): proto field names, and the signature map
    unpacked from its Any (no "@type"), as TF Serving prints them."""
    options: dict[str, Any] = {"preserving_proto_field_name": True,
                               "including_default_value_fields": True}
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    if not response.metadata["signature_def"].Unpack(sig_map):
        raise ServingError(grpc.StatusCode.INTERNAL,
                           "Failed to unpack 'Any' object to 'SignatureDefMap'.")
    return {"model_spec": json_format.MessageToDict(response.model_spec, **options),
            "metadata": {"signature_def": json_format.MessageToDict(sig_map, **options)}}


def answer(models: ModelRegistry, method: str, path: str, body: bytes) -> dict:
    """The JSON answer to one request; ServingError for a refusal."""
    route = _route(method, path)
    if route.verb == "predict":
        return _predict(models, route, body)
    if route.verb:
        return _classify_or_regress(models, route, body)
    if route.metadata:
        meta_request = get_model_metadata_pb2.GetModelMetadataRequest(
            metadata_field=[handlers.SIGNATURE_DEF_FIELD])
        route.spec(meta_request.model_spec)
        servable = handlers.resolve(models, meta_request.model_spec)
        return metadata_json(handlers.metadata(servable, meta_request))
    status_request = get_model_status_pb2.GetModelStatusRequest()
    route.spec(status_request.model_spec)  # a label is ignored there, as in TF Serving
    return json_format.MessageToDict(handlers.model_status(models, status_request),
                                     including_default_value_fields=True)


class _Handler(BaseHTTPRequestHandler):
    models: ModelRegistry  # set on the per-server subclass
    max_body: int
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet by default
        log.debug(fmt, *args)

    def _refuse_body(self, code: grpc.StatusCode, message: str) -> ServingError:
        """A body this server will not read: the connection cannot be reused after it."""
        self.close_connection = True
        return ServingError(code, message)

    def _read_body(self) -> bytes:
        """The request body: Content-Length or chunked, within `max_body` bytes."""
        coding = self.headers.get("Transfer-Encoding")
        if coding is not None:
            if [c.strip().lower() for c in coding.split(",")] != ["chunked"]:
                raise self._refuse_body(grpc.StatusCode.UNIMPLEMENTED,
                                        f"Transfer-Encoding {coding!r} is not supported")
            return self._read_chunked()
        text = self.headers.get("Content-Length") or "0"
        if not _DIGITS.fullmatch(text.strip()):
            raise self._refuse_body(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"invalid Content-Length: {text!r}")
        length = int(text)
        if length > self.max_body:
            raise self._refuse_body(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    f"request of {length} bytes exceeds {self.max_body}")
        body = self.rfile.read(length)
        if len(body) < length:
            raise self._refuse_body(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"request body ended after {len(body)} of {length} bytes")
        return body

    def _read_chunked(self) -> bytes:
        """A chunked body (RFC 9112 7.1): chunks until the zero-size one, then trailers.
        Left unread, the chunks would be taken for the next request on the connection."""
        body = bytearray()
        while True:
            line = self.rfile.readline(_CHUNK_LINE + 1)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not _CHUNK_SIZE.fullmatch(size_text):
                raise self._refuse_body(grpc.StatusCode.INVALID_ARGUMENT,
                                        f"malformed chunk size line: {line[:64]!r}")
            size = int(size_text, 16)
            if not size:
                break
            if len(body) + size > self.max_body:
                raise self._refuse_body(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        f"chunked request body exceeds {self.max_body} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise self._refuse_body(grpc.StatusCode.INVALID_ARGUMENT,
                                        "malformed chunked request body")
            body += chunk
        for _ in range(_MAX_TRAILERS):
            if self.rfile.readline(_CHUNK_LINE + 1) in (b"\r\n", b"\n", b""):
                return bytes(body)
        raise self._refuse_body(grpc.StatusCode.INVALID_ARGUMENT, "too many trailer lines")

    def _serve(self) -> None:
        """Answer one request whatever happens in it."""
        path = self.path.split("?", 1)[0]
        status: int = HTTPStatus.OK
        try:
            body = self._read_body()
            if not _API_PATH.fullmatch(path):
                status, payload = HTTPStatus.NOT_FOUND, {"error": f"Not found: {path}"}
            else:
                payload = answer(self.models, self.command, path, body)
        except ServingError as exc:
            status = _HTTP.get(exc.code, HTTPStatus.INTERNAL_SERVER_ERROR)
            payload = {"error": exc.message}
        except RecursionError:  # a value nested past Python's stack
            status, payload = HTTPStatus.BAD_REQUEST, {"error": "JSON Value nests too deeply"}
        except Exception as exc:  # a bug or an unexpected TF error: report, keep serving
            log.exception("REST %s %s failed", self.command, path)
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            payload = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            data = json.dumps(payload).encode("utf-8")
        except (TypeError, ValueError) as exc:
            log.exception("REST %s %s: answer not JSON", self.command, path)
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            data = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    # TF Serving answers any method; those other than GET and POST are malformed there.
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


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
