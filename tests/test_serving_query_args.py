"""`mtrec query`'s and MtrecClient's checks of what they are given, made before anything
is asked of a server, and the hint for a host that does not resolve."""

from __future__ import annotations

import pytest

from mtrec.serving import cli
from mtrec.serving.client import MtrecClient

UNUSED_TARGET = "127.0.0.1:1"  # channels connect lazily: nothing here is dialled


@pytest.mark.parametrize(("flag", "value", "said"), [
    ("--version", "99999999999999999999", "must be 9223372036854775807 or less"),
    ("--version", "-1", "must be 0 or more"),
    ("--timeout", "0", "must be above 0"),
    ("--timeout", "-1", "must be above 0"),
])
def test_query_refuses_a_version_or_timeout_no_server_could_take(
    flag: str, value: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version past int64 was a protobuf traceback; a timeout of 0 or less always
    ended in DEADLINE_EXCEEDED."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(["query", "status", flag, value, "--target", UNUSED_TARGET])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}:" in err and said in err
    with pytest.raises(ValueError, match="version|timeout"):
        MtrecClient(UNUSED_TARGET, **{flag[2:]: float(value) if flag == "--timeout"
                                      else int(value)})


def test_a_host_that_does_not_resolve_is_named_as_such() -> None:
    message = ("DNS resolution failed for nohost.invalid:8500: C-ares status is not "
               "ARES_SUCCESS qtype=A name=nohost.invalid is_balancer=0: Domain name not found")
    hint = cli.error_hint("nohost.invalid:8500", "UNAVAILABLE", message)
    assert hint.startswith("error: cannot find the host of nohost.invalid:8500: DNS")
    assert "is `mtrec serve` running" in cli.error_hint("127.0.0.1:1", "UNAVAILABLE",
                                                          "failed to connect to all addresses")
    assert cli.error_hint("h:1", "NOT_FOUND", "Servable not found") == (
        "error: NOT_FOUND: Servable not found")


def test_recommend_many_for_no_users_asks_nothing() -> None:
    with MtrecClient(UNUSED_TARGET, retries=0, timeout=1) as client:  # nothing listens
        assert client.recommend_many([]) == []
