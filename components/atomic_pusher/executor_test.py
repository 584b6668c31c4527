"""AtomicPusher: versions appear whole (rename, or saved_model.pb last), never duplicated."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from mtrec.components.atomic_pusher.executor import (
    Executor,
    added_digest,
    atomic_copy,
    copy_saved_model_last,
    extended_identity,
    mark_extension,
    model_identity,
    newest_serving,
    next_version,
    renames_atomically,
)
from mtrec.data import artifact_io


def _model(tmp_path, payload: bytes):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / f"model-{uuid.uuid4().hex}")
    serving = os.path.join(model.uri, "Format-Serving")
    os.makedirs(os.path.join(serving, "variables"))
    for name, data in (("saved_model.pb", payload), ("fingerprint.pb", payload),
                       ("variables/variables.index", b"x")):
        with open(os.path.join(serving, name), "wb") as f:
            f.write(data)
    return model


def _push(tmp_path, model, base):
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / f"pushed-{len(os.listdir(tmp_path))}")
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base)
    )
    Executor().Do({"model": [model]}, {"pushed_model": [pushed]},
                  {"push_destination": proto_utils.proto_to_json(destination)})
    return pushed


def test_push_renames_into_a_numeric_version_and_skips_identical_models(tmp_path):
    base = str(tmp_path / "serving")
    first = _push(tmp_path, _model(tmp_path, b"one"), base)
    assert first.get_int_custom_property("pushed") == 1
    versions = sorted(os.listdir(base))
    assert len(versions) == 1 and versions[0].isdigit()  # no staging dir left behind
    assert os.path.exists(os.path.join(base, versions[0], "saved_model.pb"))

    # The served version and the Pusher's archive are links to the model's files.
    model = _model(tmp_path, b"two")
    linked = _push(tmp_path, model, str(tmp_path / "linked"))
    version = os.path.join(str(tmp_path / "linked"), os.listdir(tmp_path / "linked")[0])
    for name in ("saved_model.pb", "variables/variables.index"):
        source = os.path.join(model.uri, "Format-Serving", name)
        assert os.path.samefile(source, os.path.join(version, name))
        assert os.path.samefile(source, os.path.join(linked.uri, name))

    again = _push(tmp_path, _model(tmp_path, b"one"), base)
    assert sorted(os.listdir(base)) == versions
    assert first.get_int_custom_property("already_served") == 0
    assert again.get_int_custom_property("already_served") == 1
    assert again.get_string_custom_property("pushed_version") == versions[0]

    _push(tmp_path, _model(tmp_path, b"two"), base)
    newer = sorted(os.listdir(base), key=int)
    assert len(newer) == 2 and int(newer[1]) > int(newer[0])


def test_a_rerun_keeps_add_items_extension_of_the_same_model_served(tmp_path):
    """A re-run whose Trainer came from the cache pushed a copy of the model above the
    version `mtrec add-items` made from it, and the server dropped the added items."""
    base = str(tmp_path / "serving")
    model = _model(tmp_path, b"one")
    first = _push(tmp_path, model, base).get_string_custom_property("pushed_version")
    extension = _model(tmp_path, b"one + 2 items")
    extension_dir = os.path.join(extension.uri, "Format-Serving")
    mark_extension(extension_dir, model_identity(os.path.join(model.uri, "Format-Serving")))
    extended = str(int(first) + 1)
    atomic_copy(extension_dir, base, extended)

    again = _push(tmp_path, _model(tmp_path, b"one"), base)
    assert again.get_string_custom_property("pushed_version") == extended
    assert again.get_int_custom_property("already_served") == 1
    assert sorted(os.listdir(base), key=int) == [first, extended]
    # Another model is pushed above the extension.
    other = _push(tmp_path, _model(tmp_path, b"two"), base)
    assert int(other.get_string_custom_property("pushed_version")) > int(extended)
    # The first model again (a re-run with the earlier settings): pushed as its extension,
    # so the added items are served again (a plain copy served them as unknown items).
    pushed_back = _push(tmp_path, _model(tmp_path, b"one"), base)
    back = pushed_back.get_string_custom_property("pushed_version")
    assert int(back) > int(other.get_string_custom_property("pushed_version"))
    assert pushed_back.get_string_custom_property("pushed_extension") == extended
    assert not other.get_string_custom_property("pushed_extension")  # a model of its own
    assert _read(os.path.join(base, back, "saved_model.pb")) == b"one + 2 items"
    assert extended_identity(os.path.join(base, back)) == extended_identity(
        os.path.join(base, extended))


def test_an_extension_records_its_items_digest(tmp_path):
    folder = str(tmp_path / "model")
    mark_extension(folder, "abc", "d1g3st")
    assert (extended_identity(folder), added_digest(folder)) == ("abc", "d1g3st")
    mark_extension(folder, "abc")  # as add-items wrote it before the digest
    assert (extended_identity(folder), added_digest(folder)) == ("abc", None)
    assert (extended_identity(str(tmp_path)), added_digest(str(tmp_path))) == (None, None)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class _Fault(OSError):
    """The disk filled up (or the connection dropped) partway through a push."""


def _fail_on_second_call(real: Callable[..., Any], calls: list[str]) -> Callable[..., Any]:
    """`real`, except that its second call (one file already in place) raises `_Fault`."""
    def flaky(source: str, destination: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(destination)
        if len(calls) == 2:
            raise _Fault(f"no space left writing {destination}")
        return real(source, destination, *args, **kwargs)
    return flaky


@pytest.mark.parametrize("step", ["link", "rename"])
def test_a_local_push_that_fails_partway_leaves_no_version_and_no_staging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    base = str(tmp_path / "serving")
    calls: list[str] = []
    if step == "link":  # link_tree's per-file step: one file linked, the next one fails
        monkeypatch.setattr(artifact_io, "_link", _fail_on_second_call(artifact_io._link, calls))
    else:  # the whole staging folder written, its rename to the version fails
        def refuse(source: str, destination: str, overwrite: bool = False) -> None:
            calls.append(destination)
            os.listdir(source)  # the staging folder exists at this point
            raise _Fault(f"cannot rename to {destination}")
        monkeypatch.setattr(fileio, "rename", refuse)
    with pytest.raises(_Fault):
        _push(tmp_path, _model(tmp_path, b"one"), base)
    if step == "link":  # the fault hit the staging folder, not the version
        assert len(calls) == 2 and ".incoming-" in calls[0]
    else:
        assert len(calls) == 1 and os.path.basename(calls[0]).isdigit()
    assert os.listdir(base) == []  # no numeric version, no .incoming-* staging folder

    monkeypatch.undo()  # the next push, without the fault, makes the one version
    _push(tmp_path, _model(tmp_path, b"one"), base)
    (version,) = os.listdir(base)
    assert version.isdigit()


def test_an_object_store_push_that_fails_partway_leaves_no_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a rename the copy goes straight to <base>/<version>: a failed copy removes
    the version folder, so no half model (saved_model.pb last or not) stays to be loaded."""
    base = f"ram://serving-{uuid.uuid4().hex}"
    calls: list[str] = []
    monkeypatch.setattr(fileio, "copy", _fail_on_second_call(fileio.copy, calls))
    with pytest.raises(_Fault):
        _push(tmp_path, _model(tmp_path, b"one"), base)
    assert len(calls) == 2 and fileio.exists(calls[0]) is False  # the first file went too
    assert fileio.listdir(base) == []


def test_next_version_is_strictly_increasing(tmp_path):
    base = tmp_path / "serving"
    (base / "2000000000").mkdir(parents=True)
    (base / ".incoming-x").mkdir()
    assert next_version(str(base), now=1_000) == "2000000001"
    assert next_version(str(tmp_path / "absent"), now=5) == "5"


def test_object_stores_get_the_saved_model_file_last(tmp_path):
    """ram:// is a real non-local TF filesystem, like gs://: no atomic directory rename."""
    assert renames_atomically("/models/mtrec") and renames_atomically("file:///m")
    assert not renames_atomically("gs://bucket/serving") and not renames_atomically("ram://s")
    model = _model(tmp_path, b"one")
    source = os.path.join(model.uri, "Format-Serving")
    order = copy_saved_model_last(source, f"ram://order-{uuid.uuid4().hex}/1")
    assert order[-1] == "saved_model.pb"
    assert sorted(order) == ["fingerprint.pb", "saved_model.pb", "variables/variables.index"]

    base = f"ram://serving-{uuid.uuid4().hex}"
    pushed = _push(tmp_path, model, base)
    version = pushed.get_string_custom_property("pushed_version")
    assert fileio.listdir(base) == [version]  # straight into the version, no staging dir
    with fileio.open(os.path.join(base, version, "variables", "variables.index"), "rb") as f:
        assert f.read() == b"x"
    again = _push(tmp_path, _model(tmp_path, b"one"), base)
    assert again.get_string_custom_property("pushed_version") == version


def test_a_model_tfma_did_not_bless_is_recorded_as_not_pushed(tmp_path):
    """The pipeline gives the Pusher TFMA's blessing (TFX's Pusher contract):
    a refusal writes no version and records pushed = 0."""
    base = str(tmp_path / "serving")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", 0)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base)
    )
    Executor().Do({"model": [_model(tmp_path, b"one")], "model_blessing": [blessing]},
                  {"pushed_model": [pushed]},
                  {"push_destination": proto_utils.proto_to_json(destination)})
    assert pushed.get_int_custom_property("pushed") == 0
    assert not os.path.exists(base)

    blessing.set_int_custom_property("blessed", 1)
    Executor().Do(
        {"model": [_model(tmp_path, b"one")], "model_blessing": [blessing]},
        {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination)},
    )
    assert pushed.get_int_custom_property("pushed") == 1
    assert len(os.listdir(base)) == 1


def test_a_cached_push_names_the_add_items_version_that_serves_its_model(tmp_path):
    """A fully cached re-run's summary named the version its Pusher pushed, not the one
    add-items pushed since and the server was serving."""
    base = str(tmp_path / "serving")
    model = _model(tmp_path, b"one")
    pushed = os.path.join(base, _push(tmp_path, model, base).get_string_custom_property(
        "pushed_version"))
    assert newest_serving(pushed) == pushed
    extension = os.path.join(_model(tmp_path, b"one + 2 items").uri, "Format-Serving")
    mark_extension(extension, model_identity(pushed))
    extended = atomic_copy(extension, base, next_version(base))
    assert newest_serving(pushed) == extended == newest_serving(extended)
    other = _push(tmp_path, _model(tmp_path, b"two"), base)  # a newer model serves
    assert other.get_int_custom_property("pushed") == 1 and newest_serving(pushed) == pushed
