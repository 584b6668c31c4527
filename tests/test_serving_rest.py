"""The REST API answers as TF Serving's does (http_rest_api_handler.cc, json_tensor.cc).

Clients written for TF Serving are pointed at `mtrec serve --rest-port`: these
check the URL forms, the JSON it takes and refuses (with TF Serving's status
and words), the JSON it answers, and that every request gets an answer.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.serving import rest, rest_json
from mtrec.serving.errors import ServingError
from tests import _serving_support as support

P = support.profile()
pytestmark = pytest.mark.skipif(support.EXTERNAL, reason="REST is checked in-process")
NAME = support.MODEL_NAME


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    root = support.new_model_root()
    os.symlink(os.path.abspath(support.primary_model_dir()), os.path.join(root, "1"))
    srv = support.start_server(root, rest_port=0)
    srv.manager.wait_for_version(1, timeout=120)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def reference() -> support.InProcessModel:
    return support.InProcessModel(support.primary_model_dir())


def call(srv: Any, method: str, path: str, body: Any = None,
         raw: bytes | None = None) -> tuple[int, dict]:
    """(HTTP status, JSON answer) of one request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.rest_port, timeout=30)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn.request(method, path, body=data)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def refused(srv: Any, method: str, path: str, body: Any, code: int, *words: str) -> str:
    status, answer = call(srv, method, path, body)
    assert status == code, (status, answer)
    for word in words:
        assert word in answer["error"], answer["error"]
    return answer["error"]


def predict(body: dict) -> tuple[str, str, dict]:
    return ("POST", f"/v1/models/{NAME}:predict", body)


# ---------------------------------------------------------------- 1. metadata
def test_metadata_has_tf_servings_field_names(server: Any) -> None:
    status, meta = call(server, "GET", f"/v1/models/{NAME}/metadata")
    assert status == 200
    assert set(meta) == {"model_spec", "metadata"}
    assert meta["model_spec"] == {"name": NAME, "signature_name": "", "version": "1"}
    assert set(meta["metadata"]) == {"signature_def"}
    sig_map = meta["metadata"]["signature_def"]
    assert set(sig_map) == {"signature_def"}  # the SignatureDefMap unpacked: no "@type"
    rec = sig_map["signature_def"]["recommend"]
    assert {"inputs", "outputs", "method_name"} <= set(rec)
    assert rec["method_name"] == "tensorflow/serving/predict"
    assert set(rec["inputs"]["k"]) >= {"dtype", "tensor_shape", "name"}
    assert rec["inputs"]["k"]["dtype"] == "DT_INT32"
    assert rec["inputs"]["user_id"]["tensor_shape"]["dim"][0]["size"] == "-1"


# ---------------------------------------------------------------- 2. b64 values
def test_b64_objects_are_values_for_a_one_input_signature(
        server: Any, reference: support.InProcessModel) -> None:
    examples = P.examples(list(P.users[:2]), ["10", "20"])
    b64 = [{"b64": base64.b64encode(e).decode()} for e in examples]
    want = reference("serving_default", {"examples": examples})
    status, rows = call(server, *predict({"instances": b64}))
    assert status == 200, rows
    np.testing.assert_allclose([r["relevance"] for r in rows["predictions"]],
                               want["relevance"], rtol=1e-5)
    status, cols = call(server, *predict({"inputs": b64[0]}))  # one value: not named inputs
    assert status == 400 and "is not an input" not in cols["error"], cols
    status, cols = call(server, *predict({"inputs": b64}))
    assert status == 200, cols
    np.testing.assert_allclose(cols["outputs"]["relevance"], want["relevance"], rtol=1e-5)

    u1 = base64.b64encode(b"u1").decode()
    assert u1 == "dTE="
    by_b64 = call(server, *predict({"signature_name": "embed_user",
                                    "instances": [{"b64": u1}]}))
    by_text = call(server, *predict({"signature_name": "embed_user", "instances": ["u1"]}))
    assert by_b64[0] == 200 and by_b64 == by_text
    one = call(server, *predict({"signature_name": "embed_user", "inputs": {"b64": u1}}))
    assert "is not an input" not in one[1]["error"]  # a scalar string: refused for its shape
    assert call(server, *predict({"signature_name": "embed_user", "inputs": [{"b64": u1}]})
                )[1]["outputs"] == by_text[1]["predictions"]


# ---------------------------------------------------------------- 3. value types
@pytest.mark.parametrize(("inputs", "words"), [
    ({"user_id": ["1"], "k": 4294967299}, ["JSON Value: 4294967299", "expected type: int32"]),
    ({"user_id": ["1"], "k": -2147483649}, ["expected type: int32"]),
    ({"user_id": ["1"], "k": "3"}, ['JSON Value: "3" Type: String', "expected type: int32"]),
    ({"user_id": ["1"], "k": True}, ["JSON Value: true Type: True", "expected type: int32"]),
    ({"user_id": ["1"], "k": 3.0}, ["JSON Value: 3.0 Type: Number", "expected type: int32"]),
    ({"user_id": ["1"], "k": None}, ["Type: Null", "expected type: int32"]),
    ({"user_id": [1], "k": 3}, ["JSON Value: 1 Type: Number", "expected type: string"]),
    ({"user_id": [None], "k": 3}, ["JSON Value: null Type: Null", "expected type: string"]),
    ({"user_id": [{"b64": "!!!"}], "k": 3}, ["Unable to base64 decode"]),
    ({"user_id": [{"b64": "dTE"}], "k": 3}, []),  # unpadded: absl takes it
    ({"user_id": [{"text": "u1"}], "k": 3}, ["not formatted correctly for base64 data"]),
    ({"user_id": ["1"]}, ["Missing named input: k in 'inputs' object."]),
    ({"user_id": [["1"], "2"], "k": 3}, ["found at incorrect level: 2", "Expected at level: 2"]),
    ({"user_id": ["1", ["2"]], "k": 3}, ["Encountered list at unexpected level: 1 expected < 1"]),
])
def test_values_must_be_of_the_inputs_json_type(server: Any, inputs: dict, words: list) -> None:
    body = {"signature_name": "recommend", "inputs": inputs}
    if not words:
        status, answer = call(server, *predict(body))
        assert status == 200, answer
        return
    refused(server, *predict(body), 400, *words)


def test_decimals_and_wide_ints_follow_json_tensor() -> None:
    """Inputs this model lacks (float, int64, bool): json_tensor.cc's checks directly."""
    assert rest_json.to_array([1, 2.5], tf.float32).tolist() == [1.0, 2.5]
    assert rest_json.to_array(16777215, tf.float32) == 16777215.0
    for value, words in ((16777217, "to float without loss of precision"),
                         (1e39, "to float without loss of precision"),
                         (True, "Type: True is not of expected type: float"),
                         ("1.5", "is not of expected type: float")):
        with pytest.raises(ServingError, match=words):
            rest_json.to_array(value, tf.float32)
    assert rest_json.to_array(2**62, tf.int64) == 2**62
    with pytest.raises(ServingError, match="expected type: int64"):
        rest_json.to_array(2**63, tf.int64)
    with pytest.raises(ServingError, match="expected type: bool"):
        rest_json.to_array(1, tf.bool)
    assert rest_json.to_array([[True], [False]], tf.bool).shape == (2, 1)
    with pytest.raises(ServingError, match="unexpected size: 1 at level: 1 expected "
                                                     "size: 2"):
        rest_json.to_array([[1, 2], [3]], tf.int32)


def test_float_outputs_are_written_as_float32_decimals(server: Any) -> None:
    status, answer = call(server, *predict({"signature_name": "embed_user",
                                            "instances": [P.users[0]]}))
    assert status == 200
    values = answer["predictions"][0]
    assert values and all(repr(v) == str(np.float32(v)) for v in values), values[:4]
    out = rest_json.predict_json({"key_bytes": np.array([b"\xff"], object),
                                  "text": np.array([b"a"], object)}, rows=True)
    assert out == {"predictions": [{"key_bytes": {"b64": "/w=="}, "text": "a"}]}


# ---------------------------------------------------------------- 4. URL forms
def test_version_labels_classify_regress_and_path_forms(
        server: Any, reference: support.InProcessModel) -> None:
    base = f"/v1/models/{NAME}"
    status, answer = call(server, "GET", f"{base}/labels/stable")  # labels: ignored there
    assert status == 200 and answer["model_version_status"][0]["version"] == "1"
    body = {"signature_name": "embed_user", "instances": ["1"]}
    for method, path, label_body in (
            ("POST", f"{base}/labels/stable:predict", body),
            ("GET", f"{base}/labels/stable/metadata", None),
            ("POST", f"{base}/labels/stable:classify", {"examples": [{"user_id": "1"}]})):
        refused(server, method, path, label_body, 400,
                "Unrecognized servable version label: stable")
    for path in (f"/V1/MODELS/{NAME}/VERSIONS/1:predict", "/v1/models/%6Dtrec:predict"):
        status, answer = call(server, "POST", path, body)
        assert status == 200, (path, answer)
    refused(server, "POST", f"{base}:explode", body, 400, f"Malformed request: POST {base}:explode")
    refused(server, "POST", f"{base}:PREDICT", body, 400, "Malformed request")
    refused(server, "GET", f"{base}:predict", None, 400, f"Malformed request: GET {base}:predict")
    refused(server, "PUT", base, body, 400, "Malformed request: PUT")
    refused(server, "GET", "/v1/models", None, 400, "Missing model name in request.")
    assert call(server, "GET", "/v2/models")[0] == 404

    items = ["10", "20"]  # P.examples' features, as JSON
    examples = [{F.USER_ID: u, F.ITEM_ID: i, F.TIMESTAMP: 978_300_760, F.AGE: 25,
                 F.GENDER: "M", F.OCCUPATION: "12", F.TITLE: "Toy Story (1995)",
                 F.GENRES: ["Animation", "Comedy"],
                 F.DESCRIPTION: "a cowboy doll is threatened by a new spaceman",
                 F.YEAR: 1995, F.HISTORY: items} for u, i in zip(P.users[:2], items, strict=True)]
    status, answer = call(server, "POST", f"{base}:classify",
                          {"signature_name": "classify_interest", "examples": examples})
    assert status == 200, answer
    serialized = P.examples(list(P.users[:2]), items)
    want = reference("classify_interest", {"inputs": serialized})
    assert len(answer["results"]) == 2
    for row, classes in enumerate(answer["results"]):
        assert [c[0] for c in classes] == [b.decode() for b in want["classes"][row]]
        np.testing.assert_allclose([c[1] for c in classes], want["scores"][row], rtol=1e-5)
    status, answer = call(server, "POST", f"{base}/versions/1:regress",
                          {"signature_name": "regress_rating", "examples": examples})
    assert status == 200, answer
    np.testing.assert_allclose(answer["results"], reference(
        "regress_rating", {"inputs": serialized})["outputs"].reshape(-1), rtol=1e-5)
    for body, words in (
            ({"signature_name": "regress_rating"}, "key 'examples' is expected"),
            ({"signature_name": "regress_rating", "examples": []}, "empty array"),
            ({"signature_name": "regress_rating", "examples": [{"age": [1, "x"]}]},
             "Unexpected element type in feature: age expecting type: int64"),
            ({"signature_name": "regress_rating", "examples": [{"age": None}]},
             "unexpected JSON type: Null"),
            ({"examples": examples}, "method_name")):
        refused(server, "POST", f"{base}:regress", body, 400, words)


# ---------------------------------------------------------------- 5. always an answer
def test_bad_requests_are_400_not_a_dropped_connection(server: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    huge = "99999999999999999999"
    for method in ("GET", "POST"):
        path = f"/v1/models/{NAME}/versions/{huge}" + (":predict" if method == "POST" else "")
        refused(server, method, path, {"instances": ["1"]} if method == "POST" else None, 400,
                f"Failed to convert version: {huge} to numeric.")
    refused(server, *predict({"signature_name": "embed_user", "instances": [{"user_id": "1"},
                                                                             "2"]}),
            400, "Expecting object but got list at item 1 of input list")
    refused(server, *predict({"signature_name": "embed_user", "instances": ["1", {"user_id":
                                                                                  "2"}]}),
            400, "Expecting value/list but got object at item 1 of input list")
    deep = b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    status, answer = call(server, "POST", f"/v1/models/{NAME}:predict", raw=deep)
    assert status == 400, answer
    for raw, words in ((b"", "The document is empty"), (b"{", "JSON Parse error"),
                       (b"[1]", "Is not object"), (b"\xff\xfe{", "JSON Parse error")):
        status, answer = call(server, "POST", f"/v1/models/{NAME}:predict", raw=raw)
        assert status == 400 and words in answer["error"], (raw, answer)

    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(rest.handlers, "predict", broken)
    status, answer = call(server, *predict({"signature_name": "embed_user", "instances": ["1"]}))
    assert status == 500 and answer == {"error": "RuntimeError: a bug"}


# ---------------------------------------------------------------- 6. chunked bodies
def test_chunked_bodies_are_read(server: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    try:
        body = json.dumps({"signature_name": "embed_user", "instances": ["1", "2"]}).encode()
        for _ in range(2):  # the same connection twice: nothing was left unread on it
            conn.request("POST", f"/v1/models/{NAME}:predict", body=iter([body[:7], body[7:]]),
                         headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
            response = conn.getresponse()
            answer = json.loads(response.read())
            assert response.status == 200 and len(answer["predictions"]) == 2, answer
    finally:
        conn.close()

    def raw(head: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", server.rest_port), timeout=30) as sock:
            sock.sendall(f"POST /v1/models/{NAME}:predict HTTP/1.1\r\nHost: x\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n".encode() + head)
            return sock.makefile("rb").read()

    too_big = raw(b"%x\r\n" % (support.MAX_REQUEST_BYTES + 1))
    assert too_big.startswith(b"HTTP/1.1 429") and b"exceeds" in too_big
    assert raw(b"zz\r\n").startswith(b"HTTP/1.1 400")


# ---------------------------------------------------------------- 7. row keys
def test_every_row_has_exactly_the_inputs(server: Any) -> None:
    def rows(*instances: dict) -> dict:
        return {"signature_name": "score", "instances": list(instances)}

    one = {"user_id": "1", "item_ids": ["10", "20"]}
    refused(server, *predict(rows(one, {**one, "extra": "x"})), 400,
            "Failed to process element: 1 key: extra of 'instances' list",
            "does not have named input: extra")
    refused(server, *predict(rows(one, {"user_id": "2"})), 400,
            "Failed to process element: 1 of 'instances' list",
            "must only have keys: item_ids,user_id")
    refused(server, *predict(rows(one, {**one, "item_ids": ["10", "20", "30"]})), 400,
            "Failed to process element: 1 key: item_ids", "Expecting tensor size: 2 but got: 3")
    refused(server, *predict(rows(one, {**one, "item_ids": [["10"], ["20"]]})), 400,
            "Expecting shape [2] but got: [2,1]")
    status, answer = call(server, *predict(rows(one, {**one, "user_id": "2"})))
    assert status == 200 and len(answer["predictions"]) == 2, answer
    refused(server, *predict({"signature_name": "score", "instances": ["1"]}), 400,
            "instances is a plain list, but expecting list of objects")
    refused(server, *predict({"signature_name": "score", "inputs": ["1"]}), 400,
            "inputs is a plain value/list, but expecting an object")
    refused(server, *predict({"instances": [], "signature_name": "embed_user"}), 400,
            "No values in 'instances' array")
    refused(server, *predict({"instances": ["1"], "inputs": ["1"]}), 400,
            "expecting only one of 'inputs' or 'instances' keys to exist")
    refused(server, *predict({"signature_name": "embed_user"}), 400,
            "Missing 'inputs' or 'instances' key")
    refused(server, *predict({"signature_name": "nope", "instances": ["1"]}), 400,
            'Serving signature name: "nope" not found in signature def')
