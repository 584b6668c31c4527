"""What a person sees from `mtrec serve` and `mtrec query`: answers, errors, help.

Each test pins a defect a new-user trial found: excluded items in a top-k, a
misleading "nothing answers", tracebacks from `serve`, the base-path hint, the
startup log, a closed pipe, and the query sub-commands' help.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import socket
import sys
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from mtrec.contracts import signatures as S
from mtrec.serving import cli
from mtrec.serving.client import MtrecClient, catalogue_size
from mtrec.serving.errors import ServingError
from mtrec.serving.model_config import ModelSource, base_path_problem
from mtrec.serving.server import ServingServer
from tests import _serving_support as support

needs_local_server = pytest.mark.skipif(support.EXTERNAL, reason="starts its own servers")
UNUSED_TARGET = "127.0.0.1:1"  # channels connect lazily: nothing is dialled in fake-answer tests


def _listening_port() -> socket.socket:
    """A socket that holds a port, as another server would."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.fixture(scope="module")
def served() -> Iterator[ServingServer]:
    if support.EXTERNAL:
        pytest.skip("starts its own servers")
    root = support.new_model_root()
    os.symlink(os.path.abspath(support.primary_model_dir()), os.path.join(root, "1"))
    srv = support.start_server(root)
    srv.manager.wait_for_version(1, timeout=120)
    yield srv
    srv.stop()


# ------------------------------------------------- 1: excluded items dropped
def test_recommend_drops_seen_items_and_notes_how_many_are_left(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """-k past the user's unseen items: the seen ones (score EXCLUDED_SCORE) are no answer."""
    answer = {
        S.ITEM_IDS: np.array([[b"i7", b"i3", b"i1"]], dtype=object),
        S.SCORES: np.array([[2.5, 1.0, S.EXCLUDED_SCORE]], dtype=np.float32),
        S.RATINGS: np.array([[4.0, 3.5, 3.0]], dtype=np.float32),
    }
    monkeypatch.setattr(MtrecClient, "predict", lambda self, *a, **kw: answer)
    monkeypatch.setattr(MtrecClient, "unknown", lambda self, kind, ids: [])
    monkeypatch.setattr(MtrecClient, "describe", lambda self, ids: {})
    code = cli.main(["query", "recommend", "--user", "u1", "-k", "3", "--target", UNUSED_TARGET])
    captured = capsys.readouterr()
    assert code == 0
    assert '"i1"' not in captured.out and '"i3"' in captured.out
    assert captured.err == "note: only 2 unseen items for user u1 (asked for -k 3)\n"


@needs_local_server
@pytest.mark.skipif(bool(support.MODEL_DIR), reason="needs the synthetic catalogue's size")
def test_recommend_from_items_drops_the_given_items_at_full_k(
    served: ServingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    k = 300  # the whole synthetic catalogue
    code = cli.main(["query", "recommend-from-items", "--target", served.target,
                     "--items", "1", "2", "3", "-k", str(k)])
    captured = capsys.readouterr()
    items = [it["item_id"] for it in json.loads(captured.out)["items"]]
    assert code == 0 and len(items) == k - 3 and not {"1", "2", "3"} & set(items)
    assert captured.err == (
        f"note: only {k - 3} unseen items besides the 3 given (asked for -k {k})\n"
    )


# ------------------------------------------------- 1b: titles people can read
TITLES = {"i7": "Fly, The (1986)", "i3": "Heat (1995)"}


def _answers_with_titles(self, signature, inputs, *args, **kwargs):
    """A model that answers describe_items: i7 and i3 titled, any other id ""."""
    if signature == S.DESCRIBE_ITEMS:
        ids = [i.decode() for i in inputs[S.ITEM_IDS][0]]
        return {S.TITLES: np.array([[TITLES.get(i, "").encode() for i in ids]], dtype=object)}
    ids = np.array([[b"i7", b"i3"]], dtype=object)
    scores = np.array([[2.5, 1.0]], dtype=np.float32)
    if signature == S.SCORE:
        return {S.SCORES: scores, S.RATINGS: scores, S.RELEVANCE: scores}
    return {S.ITEM_IDS: ids, S.SCORES: scores, S.RATINGS: scores}


def test_query_prints_floats_at_the_precision_the_model_computed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A float32 score 0.1 printed as its float64 expansion, 0.10000000149011612."""
    def answers(self, signature, inputs, *args, **kwargs):
        values = np.array([[0.1, 10.38657, 8.812856e-09]], dtype=np.float32)
        return {S.SCORES: values, S.RATINGS: values, S.RELEVANCE: values}

    monkeypatch.setattr(MtrecClient, "predict", answers)
    monkeypatch.setattr(MtrecClient, "unknown", lambda self, kind, ids: [])
    monkeypatch.setattr(cli, "with_titles", lambda client, args, answer: answer)
    code = cli.main(["query", "score", "--user", "u1", "--items", "a", "b", "c",
                     "--target", UNUSED_TARGET])
    out = capsys.readouterr().out
    assert code == 0 and '"score": 0.1,' in out and '"rating": 10.38657,' in out
    assert '"relevance": 8.812856e-09' in out
    for item in json.loads(out)["items"]:  # the same float32 values, shorter
        assert np.float32(item["score"]) == np.float32(item["relevance"])
    assert [np.float32(it["score"]) for it in json.loads(out)["items"]] == list(
        np.array([0.1, 10.38657, 8.812856e-09], dtype=np.float32))


@pytest.mark.parametrize("value, short", [
    (float(np.float32(0.1)), 0.1), (float(np.float32(-1e9)), -1e9),
    (float(np.float32(1 / 3)), 0.33333334), (16777217.0, 16777216.0), (0.0, 0.0),
    (1e300, 1e300),  # beyond float32: left as it is
])
def test_float32_short_reads_back_as_the_same_float32(value: float, short: float) -> None:
    assert cli.float32_short(value) == short
    assert math.isnan(cli.float32_short(math.nan))


@pytest.mark.parametrize("query", [["recommend", "--user", "u1", "-k", "2"],
                                   ["recommend-from-items", "--items", "i1", "-k", "2"],
                                   ["score", "--user", "u1", "--items", "i7", "i3"]])
def test_query_shows_each_items_title_after_its_id(
    query: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(MtrecClient, "predict", _answers_with_titles)
    monkeypatch.setattr(MtrecClient, "unknown", lambda self, kind, ids: [])
    code = cli.main(["query", *query, "--target", UNUSED_TARGET])
    items = json.loads(capsys.readouterr().out)["items"]
    assert code == 0
    assert [list(it)[:2] for it in items] == [["item_id", "title"]] * 2
    assert [(it["item_id"], it["title"]) for it in items] == list(TITLES.items())


def test_client_describe_gives_titles_by_id_and_unknown_ones_empty(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MtrecClient, "predict", _answers_with_titles)
    with MtrecClient(UNUSED_TARGET) as client:
        assert client.describe(["i3", "nope", "i7"]) == {
            "i3": "Heat (1995)", "nope": "", "i7": "Fly, The (1986)"}
        assert client.describe([]) == {}


@needs_local_server
@pytest.mark.skipif(bool(support.MODEL_DIR), reason="needs a model without describe_items")
def test_a_model_without_describe_items_gives_ids_alone(
    served: ServingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model pushed before describe_items (the synthetic one has none): the same answer
    as ever, no "title" keys and nothing on stderr."""
    with MtrecClient(served.target) as client, pytest.raises(ServingError):
        client.describe(["1"])
    for query in (["recommend", "--user", "1", "-k", "3"], ["score", "--user", "1",
                                                             "--items", "1", "2"]):
        code = cli.main(["query", *query, "--target", served.target])
        captured = capsys.readouterr()
        items = json.loads(captured.out)["items"]
        assert code == 0 and captured.err == ""
        assert len(items) == (3 if query[0] == "recommend" else 2)
        assert all("title" not in it for it in items), items


# ------------------------------------------------- 2: no model vs no server
@needs_local_server
def test_query_says_when_the_server_has_no_model_yet(capsys: pytest.CaptureFixture[str]) -> None:
    srv = support.start_server(support.new_model_root())
    try:
        code = cli.main(["query", "recommend", "--user", "1", "--target", srv.target,
                         "--timeout", "2"])
    finally:
        srv.stop()
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"error: the server at {srv.target} has no model loaded yet ("), err
    assert "nothing answers" not in err


# ------------------------------------------------- 3: serve errors, no traceback
@needs_local_server
def test_serve_reports_a_taken_grpc_port(capfd: pytest.CaptureFixture[str]) -> None:
    with _listening_port() as taken:
        port = taken.getsockname()[1]
        code = cli.main(["serve", "--model-base-path", support.new_model_root(),
                         "--port", str(port)])
    err = capfd.readouterr().err  # capfd: gRPC's C++ log goes to fd 2, past sys.stderr
    assert code == 2
    # The error is the first line: gRPC's "add_port.cc: Failed to add port" line is not
    # printed before it (serving/ports.py asks before gRPC binds).
    assert err.startswith(f"error: cannot serve gRPC on 127.0.0.1:{port}: the port is in use")
    assert "--port" in err and "Traceback" not in err and "add_port" not in err


@needs_local_server
def test_serve_reports_a_taken_rest_port(capsys: pytest.CaptureFixture[str]) -> None:
    with _listening_port() as taken:
        port = taken.getsockname()[1]
        code = cli.main(["serve", "--model-base-path", support.new_model_root(),
                         "--port", "0", "--rest-port", str(port)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (f"error: cannot serve REST on 127.0.0.1:{port}: Address already in use; "
                   "pick another --rest-port\n")


def test_serve_reports_a_missing_model_config_file(capsys: pytest.CaptureFixture[str]) -> None:
    missing = os.path.join(support.new_base_dir(), "models.config")
    code = cli.main(["serve", "--model-config-file", missing, "--port", "0"])
    assert code == 2
    assert capsys.readouterr().err == (
        f"error: --model-config-file {missing}: No such file or directory\n"
    )


# ------------------------------------------------- 4: which folder to pass
def test_base_path_hint_from_the_run_home_or_a_version_folder() -> None:
    root = support.new_model_root()  # <home>/serving_model/mtrec, the Pusher's destination
    version = os.path.join(root, "1796391098")
    os.makedirs(version)
    open(os.path.join(version, "saved_model.pb"), "wb").close()  # a complete version, to ls
    home = os.path.dirname(os.path.dirname(root))
    for wrong in (home, version, version + os.sep):
        problem = base_path_problem(ModelSource("mtrec", wrong)) or ""
        assert problem.endswith(f"use {root}"), (wrong, problem)
    assert "version 1796391098 itself" in (base_path_problem(ModelSource("mtrec", version)) or "")
    assert "use" not in (base_path_problem(ModelSource("other", home)) or "")


# ------------------------------------------------- 5: the startup log
@needs_local_server
def test_startup_log_says_rest_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="mtrec.serving"):
        support.start_server(support.new_model_root()).stop()
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("serving ")]
    assert "REST off" in line and "None" not in line, line


# ------------------------------------------------- 6: a closed pipe
def test_query_into_a_closed_pipe_exits_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mtrec query ... | head -1`: the reader left; no BrokenPipeError traceback."""
    status = [{"version": v, "state": "AVAILABLE"} for v in range(5000)]  # > a pipe's buffer
    monkeypatch.setattr(MtrecClient, "status", lambda self, *a, **kw: status)
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "w") as closed:
        monkeypatch.setattr(sys, "stdout", closed)
        code = cli.main(["query", "status", "--target", UNUSED_TARGET])
        assert os.path.samestat(os.fstat(closed.fileno()), os.stat(os.devnull))
        closed.write("the rest")  # the interpreter's last flush: devnull takes it
    assert code == cli.EXIT_BROKEN_PIPE == 141
    assert capsys.readouterr().err == ""


# ------------------------------------------------- 7: help with an example
def _query_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = argparse.ArgumentParser(prog="mtrec")
    query = cli.add_query_parser(parser.add_subparsers(dest="command"))
    (action,) = [a for a in query._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_each_query_help_ends_with_a_runnable_example() -> None:
    parsers = _query_parsers()
    assert set(parsers) == set(cli.QUERY_EXAMPLES)
    for name, sub in parsers.items():
        text = sub.format_help()
        last = text.rstrip().splitlines()[-1].strip()
        assert last == cli.QUERY_EXAMPLES[name], (name, text)
        assert "(default: 127.0.0.1:8500)" in text, name
        argv = last.split()
        assert argv[:3] == ["mtrec", "query", name]
        sub.parse_args(argv[3:])  # the example parses as written
    for name in ("recommend", "recommend-from-items"):
        assert "(default: 10)" in parsers[name].format_help(), name


# ------------------------------------------------- -k, and errors for a person
@pytest.mark.parametrize("k", ["0", "-1", "ten"])
def test_query_refuses_a_k_below_one_before_asking(
    k: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """-k 0 came back from the model as TF's assertion text, as JSON on stdout."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(["query", "recommend", "--user", "u1", "-k", k, "--target", UNUSED_TARGET])
    assert exit_.value.code == 2
    assert "argument -k:" in capsys.readouterr().err


def test_a_refused_query_says_why_on_stderr_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(self, *args, **kwargs):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "k must not exceed 1682")

    monkeypatch.setattr(MtrecClient, "predict", refuse)
    code = cli.main(["query", "recommend", "--user", "u1", "-k", "5000",
                     "--target", UNUSED_TARGET])
    captured = capsys.readouterr()
    assert code == 1 and json.loads(captured.out)["error"]["code"] == "INVALID_ARGUMENT"
    assert captured.err == "error: INVALID_ARGUMENT: k must not exceed 1682\n"


# What the model answers a k past its catalogue (models/serving_ops.py checked_size).
PAST_CATALOGUE = ("assertion failed: [k must not exceed the catalogue size] [Condition x <= y "
                  "did not hold element-wise:] [x (k:0) = ] [{k}] [y (strided_slice:0) = ] [3]")


def _catalogue_of_three(self, signature, inputs, *args, **kwargs):
    """A three-item catalogue whose user has seen i1: a k past 3 is refused, as the model does."""
    k = int(inputs[S.K])
    if k > 3:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, PAST_CATALOGUE.format(k=k))
    return {S.ITEM_IDS: np.array([[b"i7", b"i3", b"i1"][:k]], dtype=object),
            S.SCORES: np.array([[2.5, 1.0, S.EXCLUDED_SCORE][:k]], dtype=np.float32),
            S.RATINGS: np.array([[4.0, 3.5, 3.0][:k]], dtype=np.float32)}


def test_a_k_past_the_catalogue_answers_every_item_left(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-k 5000` on the sample's 800 items printed TF's assertion text and exited 1; README
    and -k's help say fewer come back when fewer are left."""
    monkeypatch.setattr(MtrecClient, "predict", _catalogue_of_three)
    monkeypatch.setattr(MtrecClient, "unknown", lambda self, kind, ids: [])
    monkeypatch.setattr(MtrecClient, "describe", lambda self, ids: {})
    code = cli.main(["query", "recommend", "--user", "u1", "-k", "5000",
                     "--target", UNUSED_TARGET])
    captured = capsys.readouterr()
    assert code == 0
    assert [it["item_id"] for it in json.loads(captured.out)["items"]] == ["i7", "i3"]
    assert captured.err == "note: only 2 unseen items for user u1 (asked for -k 5000)\n"
    assert catalogue_size(PAST_CATALOGUE.format(k=5000)) == 3
    assert catalogue_size("k must not exceed 1682") is None
    # A k past int32 wrapped negative ("k must be a positive integer"): it asks for all.
    assert cli.main(["query", "recommend", "--user", "u1", "-k", "3000000000",
                     "--target", UNUSED_TARGET]) == 0
    assert [it["item_id"] for it in json.loads(capsys.readouterr().out)["items"]] == ["i7", "i3"]
    with MtrecClient(UNUSED_TARGET) as client:  # the Python client, as its docstring says
        assert len(client.recommend("u1", 5000)["items"]) == 2
        with pytest.raises(ValueError, match="k must be a whole number from 1 up, got 0"):
            client.recommend("u1", 0)


@needs_local_server
@pytest.mark.skipif(bool(support.MODEL_DIR), reason="needs the synthetic model's ids")
def test_query_notes_ids_the_model_does_not_know(
    served: ServingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unknown ids are answered as the model's "unknown" user or item (never an error, as
    TF Serving would): the answer came back with nothing said (a user trial's finding)."""
    client = MtrecClient(served.target)
    try:
        known_user, known_item = "1", "1"
        assert client.unknown("user", [known_user, "no-such-user"]) == ["no-such-user"]
        assert client.unknown("item", ["nope", known_item, "Toy Story (1995)"]) == [
            "nope", "Toy Story (1995)"]
    finally:
        client.close()
    code = cli.main(["query", "score", "--user", "no-such-user", "--items", "1", "nope",
                     "--target", served.target])
    assert code == 0
    assert capsys.readouterr().err == (
        "note: not in the model, answered as unknown: user no-such-user; item nope\n")
    cli.main(["query", "recommend", "--user", "1", "-k", "2", "--target", served.target])
    assert "not in the model" not in capsys.readouterr().err


@pytest.mark.parametrize("given,dialled", [
    ("127.0.0.1", "127.0.0.1:8500"),  # gRPC alone would dial 443
    ("serving-host", "serving-host:8500"),
    ("serving-host:9000", "serving-host:9000"),
    ("[::1]", "[::1]:8500"),
    ("[::1]:9000", "[::1]:9000"),
    ("dns:///serving-host:9000", "dns:///serving-host:9000"),
    ("unix:/tmp/mtrec.sock", "unix:/tmp/mtrec.sock"),
])
def test_a_target_without_a_port_gets_the_servers_default(given, dialled):
    assert cli.grpc_target(given) == dialled


def test_a_target_with_a_port_that_is_not_a_number_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["query", "status", "--target", "localhost:grpc"])
    assert exit_.value.code == 2
    assert "'localhost:grpc': the port after ':' must be a number" in capsys.readouterr().err
