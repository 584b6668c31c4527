"""A killed run's RUNNING executions and empty folders are cleaned up when `mtrec run` starts.

The MLMD store is laid out the way TFX's LocalDagRunner writes it: context
types pipeline / pipeline_run / node (`<pipeline>.<node id>`), executions
attributed to them, and output folders `<pipeline_root>/<node>/<key>/<id>/`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from mtrec.pipeline import home_lock, killed_runs, local_runner, mlmd_store
from mtrec.pipeline.home_paths import LocalPaths

RUNNING = metadata_store_pb2.Execution.RUNNING
COMPLETE = metadata_store_pb2.Execution.COMPLETE
FAILED = metadata_store_pb2.Execution.FAILED


def _store(path: Path) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    return metadata_store.MetadataStore(config)


def _execution(store: metadata_store.MetadataStore, node: str, state: int) -> int:
    """One execution of `node` in a new pipeline run, as the launcher registers it."""
    ctx_types = {}
    for name in ("pipeline", "pipeline_run", "node"):
        ctx_types[name] = store.put_context_type(metadata_store_pb2.ContextType(name=name))
    exec_type = store.put_execution_type(
        metadata_store_pb2.ExecutionType(name=f"tfx.components.{node}")
    )
    run_no = len(store.get_contexts_by_type("pipeline_run"))
    names = {"pipeline": "mtrec", "pipeline_run": f"run-{run_no}", "node": f"mtrec.{node}"}
    contexts = []
    for kind, name in names.items():
        found = store.get_context_by_type_and_name(kind, name)
        contexts.append(found or metadata_store_pb2.Context(type_id=ctx_types[kind], name=name))
    execution = metadata_store_pb2.Execution(type_id=exec_type, last_known_state=state)
    execution_id, _, _ = store.put_execution(execution, [], contexts)
    return execution_id


def _layout(root: Path, node: str, execution_id: int, keys: tuple[str, ...]) -> dict[str, Path]:
    """The folders TFX's launcher makes before the executor runs."""
    dirs = {key: root / node / key / str(execution_id) for key in keys}
    dirs[".temp"] = root / node / ".system" / "executor_execution" / str(execution_id) / ".temp"
    for folder in dirs.values():
        folder.mkdir(parents=True)
    return dirs


@pytest.fixture
def killed(tmp_path: Path) -> dict:
    """A finished ImportExampleGen and a Trainer killed mid-run."""
    db, root = tmp_path / "metadata.sqlite", tmp_path / "pipeline_root"
    store = _store(db)
    done = _execution(store, "ImportExampleGen", COMPLETE)
    done_dirs = _layout(root, "ImportExampleGen", done, ("examples",))
    (done_dirs["examples"] / "Split-train").mkdir()  # empty, but not ours to touch
    trainer = _execution(store, "Trainer", RUNNING)
    dirs = _layout(root, "Trainer", trainer, ("model", "model_run"))
    (dirs["model"] / "Format-Serving").mkdir()  # only empty folders inside: no data
    (dirs["model_run"] / "events.out.tfevents").write_bytes(b"partial logs")
    return {"db": db, "root": root, "done": done, "done_dirs": done_dirs,
            "trainer": trainer, "dirs": dirs}


def test_running_execution_is_marked_failed_and_its_empty_folders_go(killed: dict) -> None:
    result = killed_runs.clean_killed_runs(str(killed["db"]), str(killed["root"]))

    store = _store(killed["db"])
    [trainer] = store.get_executions_by_id([killed["trainer"]])
    assert trainer.last_known_state == FAILED
    assert "died" in trainer.custom_properties[killed_runs.ABANDONED_PROPERTY].string_value
    [done] = store.get_executions_by_id([killed["done"]])
    assert done.last_known_state == COMPLETE
    assert result.failed == (killed["trainer"],)

    dirs = killed["dirs"]
    assert not dirs["model"].exists()
    assert not dirs[".temp"].parent.exists()  # the scratch folder, empty too
    assert (dirs["model_run"] / "events.out.tfevents").read_bytes() == b"partial logs"
    assert str(dirs["model_run"]) in result.kept
    assert all(p.is_dir() for p in killed["done_dirs"].values())  # a COMPLETE execution's
    assert set(result.removed) == {str(dirs["model"]), str(dirs[".temp"].parent)}

    again = killed_runs.clean_killed_runs(str(killed["db"]), str(killed["root"]))
    assert not again and again.failed == ()


def test_nothing_to_do_without_a_store(tmp_path: Path) -> None:
    result = killed_runs.clean_killed_runs(str(tmp_path / "none.sqlite"), str(tmp_path))
    assert not result
    assert not (tmp_path / "none.sqlite").exists()


def test_the_store_opens_read_only_unless_asked_for_writes(tmp_path: Path) -> None:
    """Readers (summary, report) open the store read-only; only the sweep may write."""
    db = tmp_path / "metadata.sqlite"
    _store(db).put_context_type(metadata_store_pb2.ContextType(name="pipeline"))
    reader = mlmd_store.open_store(str(db))
    assert reader.get_context_type("pipeline").name == "pipeline"
    with pytest.raises(Exception, match="(?i)readonly"):
        reader.put_context_type(metadata_store_pb2.ContextType(name="node"))
    writer = mlmd_store.open_store(str(db), writable=True)
    writer.put_context_type(metadata_store_pb2.ContextType(name="node"))
    assert reader.get_context_type("node").name == "node"


def test_local_run_cleans_up_before_the_pipeline_starts(
    killed: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = LocalPaths(str(tmp_path))
    assert (paths.metadata_path, paths.pipeline_root) == (str(killed["db"]), str(killed["root"]))
    seen = {}

    class _Runner:
        def run(self, pipeline: object) -> None:
            [trainer] = _store(killed["db"]).get_executions_by_id([killed["trainer"]])
            seen["state"] = trainer.last_known_state
            seen["model_dir"] = killed["dirs"]["model"].exists()
            # While the run is on, a second run may not touch its RUNNING executions.
            with home_lock.run_lock(os.path.join(paths.home, home_lock.LOCK_FILE)) as sole:
                seen["second_run_sole"] = sole

    monkeypatch.setattr(local_runner.tfx.orchestration, "LocalDagRunner", _Runner)
    local_runner.run(paths, local_runner.settings(
        paths, examples_root=os.fspath(tmp_path / "examples"), text_encoder=None))
    assert seen == {"state": FAILED, "model_dir": False, "second_run_sole": False}


def test_what_killed_processes_left_is_listed_for_prune(killed: dict, tmp_path: Path) -> None:
    """A killed Trainer's TensorBoard events, a stateful working folder and a killed push's
    staging folder stayed for good: `mtrec prune` frees them (killed_runs.leftovers)."""
    killed_runs.clean_killed_runs(str(killed["db"]), str(killed["root"]))
    stateful = killed["root"] / "Transform" / ".system" / "stateful_working_dir" / "ab12"
    stateful.mkdir(parents=True)
    (stateful / "state").write_text("x")
    serving = tmp_path / "serving_model" / "mtrec"
    (serving / ".incoming-7-0a1b2c3d").mkdir(parents=True)
    (serving / "7").mkdir()  # a served version: never a leftover
    (tmp_path / "add-items-x1y2").mkdir()  # a killed add-items' work folder
    (tmp_path / "added_items").mkdir()  # its record: never a leftover
    found = killed_runs.leftovers(_store(killed["db"]), str(killed["root"]), str(serving),
                                  str(tmp_path))
    assert found == [str(killed["dirs"]["model_run"]), str(stateful),
                     str(serving / ".incoming-7-0a1b2c3d"), str(tmp_path / "add-items-x1y2")]
    assert all(p.is_dir() for p in killed["done_dirs"].values())  # a COMPLETE execution's


def test_the_stateful_folder_name_is_tfxs() -> None:
    from tfx.orchestration.portable import outputs_utils

    assert outputs_utils._STATEFUL_WORKING_DIR == killed_runs.STATEFUL_DIR  # a private name
