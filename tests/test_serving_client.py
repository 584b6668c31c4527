"""Client behaviour (retries, errors, TLS) and the query CLI (the server's pieces in process:
tests/test_serving_pieces.py)."""

from __future__ import annotations

import argparse
import datetime
import hashlib
import hmac
import http.server
import ipaddress
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from mtrec.contracts import signatures as S
from mtrec.pseudonyms import pseudonymizer
from mtrec.serving import cli
from mtrec.serving.client import MtrecClient
from mtrec.serving.errors import ServingError
from mtrec.serving.server import ServerConfig, ServingServer
from tests import _serving_support as support

needs_local_server = pytest.mark.skipif(support.EXTERNAL, reason="starts its own servers")


def _server(model_root: str, **kwargs: Any) -> ServingServer:
    config = ServerConfig(model_base_path=model_root, port=0, poll_seconds=0.1, **kwargs)
    return ServingServer(config).start()


def _root_with_model() -> str:
    root = support.new_model_root()
    support.install_version(root, 1, support.primary_model_dir() or support.second_model_dir())
    return root


@pytest.fixture(scope="module")
def served() -> Iterator[ServingServer]:
    if support.EXTERNAL:
        pytest.skip("starts its own servers")
    srv = _server(_root_with_model())
    srv.manager.wait_for_version(1, timeout=120)
    yield srv
    srv.stop()


# --------------------------------------------------------------- retries
class _FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return f"fake {self._code.name}"


def _flaky(codes: list[grpc.StatusCode]) -> tuple[Any, list[float]]:
    calls: list[float] = []

    def method(request: Any, timeout: float) -> str:
        calls.append(timeout)
        if codes:
            raise _FakeRpcError(codes.pop(0))
        return "ok"

    return method, calls


def test_unavailable_is_retried_with_backoff() -> None:
    client = MtrecClient("127.0.0.1:1", timeout=0.5, retries=3, backoff=0.01)
    method, calls = _flaky([grpc.StatusCode.UNAVAILABLE] * 2)
    assert client._invoke(method, None, None) == "ok"
    assert calls == [0.5, 0.5, 0.5]  # every attempt gets the full deadline


def test_retries_give_up_and_other_codes_are_not_retried() -> None:
    client = MtrecClient("127.0.0.1:1", retries=2, backoff=0.001)
    method, calls = _flaky([grpc.StatusCode.UNAVAILABLE] * 5)
    with pytest.raises(ServingError) as info:
        client._invoke(method, None, None)
    assert info.value.code == grpc.StatusCode.UNAVAILABLE and len(calls) == 3
    for code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.DEADLINE_EXCEEDED):
        method, calls = _flaky([code])
        with pytest.raises(ServingError) as info:
            client._invoke(method, None, None)
        assert info.value.code == code and len(calls) == 1
        assert code.name in str(info.value)


@needs_local_server
def test_client_rides_out_a_model_that_is_still_loading() -> None:
    root = support.new_model_root()
    srv = _server(root)
    try:
        client = MtrecClient(srv.target, timeout=5, retries=60, backoff=0.05)
        timer = threading.Timer(
            0.3, support.install_version, args=(root, 1, support.second_model_dir())
        )
        timer.start()
        started = time.monotonic()
        assert len(client.recommend("1", 3)["items"]) == 3
        assert time.monotonic() - started >= 0.3
        timer.join()
    finally:
        srv.stop()


def test_unreachable_server_is_unavailable() -> None:
    client = MtrecClient("127.0.0.1:9", timeout=0.5, retries=1, backoff=0.01)
    with pytest.raises(ServingError) as info:
        client.status()
    assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


# ------------------------------------------------------------------- CLI
def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = cli.main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_query_cli_prints_json(served: ServingServer, capsys: pytest.CaptureFixture[str]) -> None:
    t = ["--target", served.target, "--model-name", "mtrec"]
    code, out = _cli(capsys, "query", "recommend", *t, "--user", "1", "-k", "4")
    assert code == 0 and len(out["items"]) == 4
    items = [it["item_id"] for it in out["items"][:2]]
    code, out = _cli(capsys, "query", "score", *t, "--user", "1", "--items", *items, "zzz")
    assert code == 0 and [it["item_id"] for it in out["items"]] == [*items, "zzz"]
    code, out = _cli(capsys, "query", "recommend-from-items", *t, "--items", *items, "zzz",
                     "-k", "3")
    assert code == 0 and out["given"] == [*items, "zzz"] and len(out["items"]) == 3
    assert not {it["item_id"] for it in out["items"]} & set(items)  # never the given items
    code, out = _cli(capsys, "query", "interest", *t, "--user", "1")
    assert code == 0 and out["genres"]
    code, out = _cli(capsys, "query", "status", *t)
    assert code == 0 and out[0]["state"] == "AVAILABLE"
    code, out = _cli(capsys, "query", "metadata", *t)
    assert code == 0 and "recommend" in out["signature_def"]
    code, out = _cli(capsys, "query", "embed-item", *t, "--item", items[0])
    assert code == 0 and len(out["embedding"]) > 0
    # -k 0 stops in the CLI now (tests/test_serving_cli.py); past the catalogue, the model
    # refuses it and the CLI asks again for the whole catalogue: every unseen item, noted.
    code, out = _cli(capsys, "query", "recommend", *t, "--user", "1", "-k", "1000000")
    assert code == 0 and 0 < len(out["items"]) < 1000000


def test_a_pseudonymising_client_sends_each_user_as_its_pseudonym(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run made with --pseudonymize-key-env knows users by pseudonym only: a client
    asking with the raw id got the unknown user's answer. With the key, every user id
    goes out as ingestion wrote it; items stay as they are, answers name the id given."""
    sent: list[tuple[str, list]] = []

    def predict(self: MtrecClient, signature: str, inputs: dict, timeout: Any = None) -> dict:
        ids = next(inputs[k] for k in ("user_id", "item_id") if k in inputs)
        sent.append((signature, np.asarray(ids).tolist()))
        rows = len(ids)
        return {"item_ids": np.array([[b"i1"]] * rows), "scores": np.ones((rows, 1)),
                "ratings": np.ones((rows, 1)),
                "embedding": np.arange(rows, dtype=float)[:, None].repeat(2, 1)}

    monkeypatch.setattr(MtrecClient, "predict", predict)
    pseudo = pseudonymizer(b"secret")
    with MtrecClient("127.0.0.1:1", pseudonymize_key=b"secret") as client:
        answer = client.recommend_many(["u1", b"u2"], k=1)
        client.score("u1", ["i1"])
        client.embed_user("u1")
        client.unknown("user", ["u1"])
        client.unknown("item", ["i1"])
    assert [a["user_id"] for a in answer] == ["u1", "u2"]
    assert sent == [("recommend", [pseudo("u1").encode(), pseudo("u2").encode()]),
                    ("score", [pseudo("u1").encode()]), ("embed_user", [pseudo("u1").encode()]),
                    ("embed_user", [pseudo("u1").encode(), S.NO_SUCH_ID]),
                    ("embed_item", [b"i1", S.NO_SUCH_ID])]
    assert pseudo("u1") == hmac.new(b"secret", b"u1", hashlib.sha256).hexdigest()[:16]


def test_query_cli_takes_the_key_from_the_environment(
        served: ServingServer, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    t = ["--target", served.target]
    monkeypatch.setenv("MTREC_TEST_KEY", "secret")
    code, keyed = _cli(capsys, "query", "embed-user", *t, "--user", "1",
                       "--pseudonymize-key-env", "MTREC_TEST_KEY")
    code, plain = _cli(capsys, "query", "embed-user", *t, "--user",
                       pseudonymizer(b"secret")("1"))
    assert code == 0 and keyed == {**plain, "user_id": "1"}
    assert cli.main(["query", "embed-user", *t, "--user", "1", "--pseudonymize-key-env",
                     "MTREC_TEST_UNSET"]) == 2
    assert "--pseudonymize-key-env: env MTREC_TEST_UNSET is not set" in capsys.readouterr().err


def test_query_cli_says_when_nothing_answers(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{sock.getsockname()[1]}"
    code = cli.main(["query", "status", "--target", target, "--timeout", "2"])
    captured = capsys.readouterr()
    assert code == 1 and json.loads(captured.out)["error"]["code"] == "UNAVAILABLE"
    assert captured.err == (f"error: nothing answers at {target}: is `mtrec serve` running "
                            "there (its --port)?\n")


def test_query_cli_says_when_an_http1_server_answers(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    """A REST port (HTTP/1) given as --target said "nothing answers"."""
    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # stderr is what the test reads
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = f"127.0.0.1:{server.server_address[1]}"
        code = cli.main(["query", "status", "--target", target, "--timeout", "5"])
    finally:
        server.shutdown()
        server.server_close()
    captured = capsys.readouterr()
    assert code == 1 and json.loads(captured.out)["error"]["code"] == "UNAVAILABLE"
    assert captured.err == (f"error: {target} answers, but over HTTP/1, not gRPC: `mtrec "
                            "query` speaks gRPC, so give the server's --port, not its "
                            "--rest-port\n")


def test_serve_parser_defaults() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.add_serve_parser(sub)
    cli.add_query_parser(sub)
    args = parser.parse_args(["serve", "--model-base-path", "/models"])
    assert (args.host, args.port, args.model_name) == ("127.0.0.1", 8500, "mtrec")
    assert args.func is not None


# ------------------------------------------------------------------- TLS
def _self_signed(directory: str) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


@needs_local_server
def test_tls_server_needs_a_tls_client() -> None:
    pytest.importorskip("cryptography")
    cert, key = _self_signed(support.new_base_dir())
    srv = _server(_root_with_model(), tls_cert=cert, tls_key=key)
    try:
        secure = MtrecClient(srv.target, root_cert=cert, timeout=10)
        secure.wait_until_available(timeout=60)
        assert len(secure.recommend("1", 2)["items"]) == 2
        plain = MtrecClient(srv.target, timeout=2, retries=0)
        with pytest.raises(ServingError) as info:
            plain.status()
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        srv.stop()
