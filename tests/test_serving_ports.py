"""serving/ports.py: the bind check `mtrec serve` makes before gRPC binds."""

from __future__ import annotations

import argparse
import socket

import pytest

from mtrec.serving.ports import bind_problem
from mtrec.serving.server_args import add_server_arguments


def test_a_free_port_and_port_zero_have_no_problem() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    assert bind_problem("127.0.0.1", free) is None
    assert bind_problem("127.0.0.1", 0) is None


def test_a_listening_port_is_in_use() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert bind_problem("127.0.0.1", port) == "the port is in use (another server?)"
        # still free for a later bind by the holder: the probe closed its own socket
        assert sock.getsockname()[1] == port


def test_an_address_of_another_host_and_an_unresolvable_host() -> None:
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): never a local address
    assert bind_problem("192.0.2.1", 8500) == "the address is not this host's"
    assert bind_problem("no-such-host.invalid", 8500).startswith("the host does not resolve")


@pytest.mark.parametrize("flag", ["--port", "--rest-port"])
@pytest.mark.parametrize("value", ["99999", "-1", "http"])
def test_a_port_outside_0_to_65535_is_a_usage_error(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--port 99999` served on 34463 (gRPC reads the port modulo 65536), with no word of it."""
    parser = argparse.ArgumentParser(prog="mtrec serve")
    add_server_arguments(parser)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--model-base-path", "m", flag, value])
    assert exit_.value.code == 2
    assert f"argument {flag}:" in capsys.readouterr().err
    parsed = parser.parse_args(["--model-base-path", "m", flag, "0"])  # 0: a free port
    assert getattr(parsed, flag[2:].replace("-", "_")) == 0


@pytest.mark.parametrize("flag, value, says", [
    ("--threads", "0", "0: must be 1 or more"),  # gRPC's "max_workers must be greater than 0"
    ("--max-batch-size", "0", "0: must be 1 or more"),
    ("--max-request-rows", "-1", "-1: must be 0 or more"),
    ("--tf-intra-op-threads", "two", "'two' is not a whole number"),
    ("--poll-seconds", "-1", "-1.0: must be above 0"),  # was taken as given
])
def test_a_count_or_interval_out_of_range_is_a_usage_error(
    flag: str, value: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="mtrec serve")
    add_server_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--model-base-path", "m", flag, value])
    assert f"argument {flag}: {says}" in capsys.readouterr().err
    assert parser.parse_args(["--model-base-path", "m", "--max-request-rows", "0",
                              "--poll-seconds", "0.5"]).max_request_rows == 0  # 0: no limit
