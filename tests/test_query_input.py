"""`mtrec query` with what people type and read: ids outside ASCII, a port out of
range, a TLS file that is not there, answers with titles in any script."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import pytest

from mtrec.serving import cli
from mtrec.serving.client import MtrecClient
from tests.test_serving_cli import TITLES, UNUSED_TARGET, _answers_with_titles


def test_query_prints_titles_and_ids_as_written_on_a_utf8_console(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON's \\u escapes hid every non-ASCII title ("\\u00e9"); an ASCII console keeps
    them, as it cannot show the letters."""
    monkeypatch.setattr(MtrecClient, "predict", _answers_with_titles)
    monkeypatch.setattr(MtrecClient, "unknown", lambda self, kind, ids: [])
    monkeypatch.setitem(TITLES, "i7", "Léon (1994) 🎬")
    query = ["query", "recommend", "--user", "ü", "-k", "2", "--target", UNUSED_TARGET]
    assert cli.main(query) == 0
    out = capsys.readouterr().out
    assert '"title": "Léon (1994) 🎬"' in out and '"user_id": "ü"' in out
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="ascii"))
    assert cli.main(query) == 0
    sys.stdout.seek(0)
    assert '"title": "L\\u00e9on (1994) \\ud83c\\udfac"' in sys.stdout.read()


@pytest.mark.parametrize("flag, value, says", [
    ("--target", "127.0.0.1:99999", "'127.0.0.1:99999': a port is from 1 to 65535"),
    ("--user", "\udcff\udcfe", "is not UTF-8 text (is the terminal set to another encoding?)"),
])
def test_a_value_no_request_can_carry_is_a_usage_error(
        flag: str, value: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    """gRPC dialled port 99999 as 34463 (another server could have answered), and bytes
    that are not UTF-8 (argv holds them as surrogates) failed with a traceback."""
    given = {"--target": UNUSED_TARGET, "--user": "u1", flag: value}
    with pytest.raises(SystemExit) as exit_:
        cli.main(["query", "recommend", *[x for kv in given.items() for x in kv]])
    assert exit_.value.code == 2 and says in capsys.readouterr().err


def test_a_missing_tls_root_cert_is_one_error_line(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "ca.pem"
    code = cli.main(["query", "status", "--target", UNUSED_TARGET, "--tls-root-cert",
                     str(missing)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --tls-root-cert: [Errno 2]") and str(missing) in err
    assert "Traceback" not in err


def test_the_client_names_a_kind_of_id_it_does_not_have() -> None:
    """unknown("bogus", ids) looked the ids up as items."""
    with MtrecClient(UNUSED_TARGET) as client, pytest.raises(
            ValueError, match="kind must be 'user' or 'item', got 'bogus'"):
        client.unknown("bogus", ["u1"])


def test_notes_count_an_item_given_twice_once_and_show_an_empty_id() -> None:
    args = argparse.Namespace(query="recommend-from-items", items=["i1", "i1"], k=5)
    answer = {"items": [{"item_id": "i2"}]}
    assert cli.short_list_note(args, answer) == (
        "note: only 1 unseen items besides the 1 given (asked for -k 5)")  # was "the 2 given"

    class Unknowing:
        def unknown(self, kind: str, ids: list[str]) -> list[str]:
            return list(ids)

    asked = argparse.Namespace(query="score", user="u9", items=["", "x"])
    assert cli.unknown_note(Unknowing(), asked) == (
        'note: not in the model, answered as unknown: user u9; items "", x')  # was "items , x"
    spaced = argparse.Namespace(query="score", user="u9", items=[" 1 ", "a,b", "é"])
    assert cli.unknown_note(Unknowing(), spaced) == (  # was "items  1 , a,b, é"
        'note: not in the model, answered as unknown: user u9; items " 1 ", "a,b", é')
