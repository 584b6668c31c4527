"""Model versions through the public client: hot swaps, half-written and corrupt
versions, warmup gating, no version yet, and freeing the replaced version.

Split from tests/test_serving_server.py (same in-process server set-up, in
tests/_serving_support.py); these tests write version dirs, so they need the
in-process server and skip against an external one.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import socket
import threading
import time
import urllib.request
import weakref
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from mtrec.serving import tensor_codec
from mtrec.serving.cli import error_hint
from mtrec.serving.client import MtrecClient
from mtrec.serving.errors import ServingError
from mtrec.serving.model_manager import ModelManager
from mtrec.serving.server import ServerConfig, ServingServer
from mtrec.serving.versions import MAX_VERSION, list_versions
from mtrec.serving.warmup import write_warmup_requests
from tests import _serving_support as support

P = support.profile()
needs_local_server = pytest.mark.skipif(
    support.EXTERNAL, reason="writes version dirs: needs the in-process server"
)


@pytest.fixture
def rollout() -> Iterator[dict[str, Any]]:
    """A fresh server on its own base dir, serving version 1 of the primary model."""
    if support.EXTERNAL:
        pytest.skip("writes version dirs: needs the in-process server")
    root = support.new_model_root()
    support.install_version(root, 1, support.primary_model_dir())
    srv = support.start_server(root)
    srv.manager.wait_for_version(1, timeout=120)
    client = MtrecClient(srv.target, model_name=support.MODEL_NAME, timeout=10, retries=0)
    yield {"root": root, "server": srv, "client": client}
    client.close()
    srv.stop()


def _served_version(client: MtrecClient) -> int:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = support.MODEL_NAME
    request.model_spec.signature_name = "embed_user"
    request.inputs["user_id"].CopyFrom(tensor_codec.encode([P.users[0]], tf.string))
    return client.predict_raw(request).model_spec.version.value


def _wait(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@needs_local_server
def test_version_swap_under_load_drops_nothing(rollout: dict[str, Any]) -> None:
    client, root = rollout["client"], rollout["root"]
    errors: list[str] = []
    seen: list[list[int]] = [[] for _ in range(6)]
    stop = threading.Event()

    def worker(slot: int) -> None:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = support.MODEL_NAME
        request.model_spec.signature_name = "recommend"
        request.inputs["user_id"].CopyFrom(tensor_codec.encode([P.users[0]], tf.string))
        request.inputs["k"].CopyFrom(tensor_codec.encode(5, tf.int32))
        while not stop.is_set():
            try:
                response = client.predict_raw(request, timeout=5.0)
                seen[slot].append(response.model_spec.version.value)
            except ServingError as exc:
                errors.append(f"{exc.code.name}: {exc.message}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(seen))]
    for t in threads:
        t.start()
    try:
        _wait(lambda: all(len(s) >= 3 for s in seen))
        support.install_version(root, 2, support.second_model_dir())
        _wait(lambda: all(s and s[-1] == 2 for s in seen))
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    for versions in seen:
        assert versions[0] == 1 and versions[-1] == 2
        assert versions == sorted(versions)  # never back to the old version
    states = {s["version"]: s["state"] for s in client.status()}
    assert states[2] == "AVAILABLE" and states[1] == "END"


@needs_local_server
def test_half_written_version_is_ignored_until_complete(rollout: dict[str, Any]) -> None:
    client, root, srv = rollout["client"], rollout["root"], rollout["server"]
    staging = os.path.join(support.new_base_dir(), "partial")
    shutil.copytree(support.second_model_dir(), staging)
    pb_aside = os.path.join(os.path.dirname(staging), "saved_model.pb")
    os.rename(os.path.join(staging, "saved_model.pb"), pb_aside)
    partial = os.path.join(root, "5")
    os.rename(staging, partial)  # variables/ and assets/ there, saved_model.pb not yet
    srv.manager.poll_once()  # a whole poll round that sees version 5's folder
    assert _served_version(client) == 1
    assert 5 not in srv.manager.statuses()  # not loaded, nor tried and failed
    assert 5 not in {s["version"] for s in client.status()}
    os.rename(pb_aside, os.path.join(partial, "saved_model.pb"))
    srv.manager.wait_for_version(5, timeout=60)
    assert _served_version(client) == 5


@needs_local_server
# TF parses the bytes before it fails the load, and protobuf warns as it gives up.
@pytest.mark.filterwarnings("ignore:Unexpected end-group tag:RuntimeWarning")
def test_corrupt_version_keeps_old_one_serving(rollout: dict[str, Any]) -> None:
    client, root, srv = rollout["client"], rollout["root"], rollout["server"]
    bad = os.path.join(root, ".tmp-3")
    os.makedirs(os.path.join(bad, "variables"))
    with open(os.path.join(bad, "saved_model.pb"), "wb") as fh:
        fh.write(b"\x00 this is not a SavedModel \xff" * 10)
    os.rename(bad, os.path.join(root, "3"))
    _wait(lambda: any(s["version"] == 3 and s["state"] == "END" for s in client.status()))
    failed = next(s for s in client.status() if s["version"] == 3)
    assert failed["error_code"] != 0 and "load failed" in failed["error_message"]
    assert _served_version(client) == 1
    assert len(client.recommend(P.users[0], 3)["items"]) == 3
    # A good newer version still rolls out past the broken one.
    support.install_version(root, 4, support.second_model_dir())
    srv.manager.wait_for_version(4, timeout=60)
    assert _served_version(client) == 4


@needs_local_server
def test_warmup_records_are_replayed_and_gate_the_load(rollout: dict[str, Any]) -> None:
    client, root, srv = rollout["client"], rollout["root"], rollout["server"]
    staging = os.path.join(support.new_base_dir(), "bad-warmup")
    shutil.copytree(support.second_model_dir(), staging)
    # k=0 is rejected by the model: TF Serving fails a load whose warmup fails.
    write_warmup_requests(staging, [("recommend", {"user_id": [P.users[0]], "k": 0})])
    os.rename(staging, os.path.join(root, "2"))
    _wait(lambda: any(s["version"] == 2 and s["state"] == "END" for s in client.status()))
    assert _served_version(client) == 1

    good = os.path.join(support.new_base_dir(), "good-warmup")
    shutil.copytree(support.second_model_dir(), good)
    write_warmup_requests(
        good,
        [("recommend", {"user_id": [P.users[0]], "k": 5}), ("embed_user", {"user_id": ["x"]})],
    )
    os.rename(good, os.path.join(root, "3"))
    srv.manager.wait_for_version(3, timeout=60)
    assert _served_version(client) == 3


@needs_local_server
def test_no_version_yet_is_not_found() -> None:
    """TF Serving's answer (BasicManager's ServingMap): NOT_FOUND, "Servable not found"."""
    srv = support.start_server(support.new_model_root())
    try:
        with MtrecClient(srv.target, model_name=support.MODEL_NAME, retries=0) as c:
            error = support.expect_error(
                lambda: c.recommend(P.users[0]), grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Latest({support.MODEL_NAME})", "no version")
            assert "no model loaded yet" in error_hint(srv.target, "NOT_FOUND", error.message)
            with pytest.raises(ServingError) as info:
                c.status()
            assert info.value.code == grpc.StatusCode.NOT_FOUND
    finally:
        srv.stop()


def test_folder_names_past_int64_are_not_versions(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """As in TF Serving: a version is an int64, and a larger number is no version."""
    for name in ("1", str(MAX_VERSION), str(MAX_VERSION + 1), "99999999999999999999"):
        os.makedirs(tmp_path / name)
        (tmp_path / name / "saved_model.pb").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="mtrec.serving"):
        assert sorted(list_versions(str(tmp_path))) == [1, MAX_VERSION]
        assert sorted(list_versions(str(tmp_path))) == [1, MAX_VERSION]
    warned = [r.getMessage() for r in caplog.records if "int64" in r.getMessage()]
    assert len(warned) == 2, warned  # once for each folder, not once a poll
    assert any("99999999999999999999" in w for w in warned)


@needs_local_server
def test_a_folder_past_int64_leaves_status_and_serving_alone() -> None:
    """Such a folder was tried as a version: its load failed, and then every status
    answer (gRPC and REST) failed on the version number, even after it was removed."""
    root = support.new_model_root()
    support.install_version(root, 1, support.primary_model_dir())
    srv = support.start_server(root, rest_port=0)
    huge = os.path.join(root, "99999999999999999999")
    try:
        srv.manager.wait_for_version(1, timeout=120)
        os.symlink(os.path.abspath(support.second_model_dir()), huge)
        with MtrecClient(srv.target, model_name=support.MODEL_NAME, retries=0) as client:
            for _ in range(2):  # with the folder there, then once it is gone
                srv.manager.poll_once()
                assert [(s["version"], s["state"]) for s in client.status()] == [
                    (1, "AVAILABLE")]
                rest = f"http://127.0.0.1:{srv.rest_port}/v1/models/{support.MODEL_NAME}"
                status = json.load(urllib.request.urlopen(rest, timeout=10))
                assert [v["version"] for v in status["model_version_status"]] == ["1"]
                assert _served_version(client) == 1
                if os.path.lexists(huge):
                    os.remove(huge)
    finally:
        srv.stop()


@needs_local_server
def test_a_version_whose_folder_is_removed_says_so(rollout: dict[str, Any]) -> None:
    client, root, srv = rollout["client"], rollout["root"], rollout["server"]
    shutil.rmtree(os.path.join(root, "1"))
    _wait(lambda: srv.manager.current is None, timeout=30)
    error = support.expect_error(lambda: client.recommend(P.users[0]),
                                 grpc.StatusCode.NOT_FOUND,
                                 "version 1 was unloaded because its folder",
                                 "is gone, and no other version is left")
    assert "no model loaded any more" in error_hint(srv.target, "NOT_FOUND", error.message)
    support.install_version(root, 2, support.second_model_dir())  # a new one serves again
    srv.manager.wait_for_version(2, timeout=60)
    assert _served_version(client) == 2 and srv.manager.unloaded is None


@needs_local_server
def test_version_change_frees_the_old_version_and_freezes_the_heap(
    rollout: dict[str, Any],
) -> None:
    """gc.freeze after each load must not pin replaced versions in memory."""
    client, root, srv = rollout["client"], rollout["root"], rollout["server"]
    assert srv.config.freeze_gc
    _wait(lambda: gc.get_freeze_count() > 0, timeout=30)  # settles just after the swap
    assert len(client.recommend(P.users[0], 3)["items"]) == 3
    old = weakref.ref(srv.manager.current._module)  # the loaded SavedModel, not the wrapper
    support.install_version(root, 2, support.second_model_dir())
    srv.manager.wait_for_version(2, timeout=60)
    _wait(lambda: old() is None, timeout=30)
    assert len(client.recommend(P.users[0], 3)["items"]) == 3


@needs_local_server
def test_version_that_failed_without_its_assets_loads_once_they_arrive(
    rollout: dict[str, Any],
) -> None:
    """A folder copied in place (not renamed in) can get assets/ after saved_model.pb and
    variables/: the load fails on the missing vocabulary and must be retried when it comes."""
    client, root, srv = rollout["client"], rollout["root"], rollout["server"]
    staging = os.path.join(support.new_base_dir(), "no-assets")
    shutil.copytree(support.second_model_dir(), staging)
    assets_aside = os.path.join(os.path.dirname(staging), "assets")
    os.rename(os.path.join(staging, "assets"), assets_aside)
    os.rename(staging, os.path.join(root, "2"))
    _wait(lambda: any(s["version"] == 2 and s["state"] == "END" for s in client.status()))
    failed = next(s for s in client.status() if s["version"] == 2)
    assert _served_version(client) == 1
    os.rename(assets_aside, os.path.join(root, "2", "assets"))
    srv.manager.wait_for_version(2, timeout=30)
    assert _served_version(client) == 2
    # The status said why, without TF's boilerplate ("Graph execution error", ...).
    assert "No such file" in failed["error_message"]
    assert "Detected at node" not in failed["error_message"]


@needs_local_server
def test_version_changed_while_it_loads_is_not_served_until_reloaded() -> None:
    """Files written during a load (a copy still in progress) may be half read: that
    load is dropped and the next poll loads the folder again."""
    root = support.new_model_root()
    path = support.install_version(root, 1, support.primary_model_dir())
    loads: list[int] = []

    def warmup(servable: Any) -> int:
        loads.append(servable.version)
        if len(loads) == 1:  # the copy is still writing while the first load runs
            os.utime(os.path.join(path, "assets", "user_id.txt"), ns=(1, 1))
        return 0

    manager = ModelManager(root, support.MODEL_NAME, warmup=warmup)
    manager.poll_once()
    assert manager.current is None and loads == [1]
    assert manager.statuses() == {}  # not LOADING for ever should the folder go away
    manager.poll_once()
    assert manager.current is not None and manager.current.version == 1 and loads == [1, 1]


@needs_local_server
def test_stop_closes_the_port_while_a_version_is_still_loading() -> None:
    """SIGTERM during a (long) load: new RPCs are refused at once, the load is not served."""
    root = support.new_model_root()
    support.install_version(root, 1, support.primary_model_dir())
    config = ServerConfig(model_base_path=root, model_name=support.MODEL_NAME, port=0,
                          poll_seconds=0.1)
    srv = ServingServer(config)
    entered, release = threading.Event(), threading.Event()

    def slow_warmup(servable: Any) -> int:
        entered.set()
        release.wait(30)
        return 0

    srv.manager._warmup = slow_warmup
    srv.start()
    stopper = threading.Thread(target=srv.stop, kwargs={"grace": 0})
    try:
        assert entered.wait(60)
        stopper.start()
        deadline = time.monotonic() + 10
        refused = False
        while not refused and time.monotonic() < deadline:
            with socket.socket() as sock:
                refused = sock.connect_ex(("127.0.0.1", srv.port)) != 0
            time.sleep(0.05)
        assert refused, "the server kept taking connections while its poller finished a load"
    finally:
        release.set()
        if stopper.ident is not None:
            stopper.join(60)
        else:
            srv.stop()
    assert srv.manager.current is None  # loaded after the stop: never served
