"""pipeline/code_version.py (over mtrec/source_fingerprint.py) and its use by the local
runner: a change to the pipeline's code turns TFX's cache off for one run, since TFX's
cache key does not see code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mtrec.pipeline import code_version, local_runner
from mtrec.pipeline.home_paths import LocalPaths
from mtrec.source_fingerprint import fingerprint, package_roots


def _package(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    (root / "sub").mkdir(parents=True)
    (root / "a.py").write_text("A = 1\n")
    (root / "sub" / "b.py").write_text("B = 2\n")
    (root / "schema.pbtxt").write_text("feature {}\n")
    return root


def test_the_fingerprint_follows_the_source_and_the_library_versions(tmp_path: Path) -> None:
    root = _package(tmp_path)
    before = fingerprint([root], libraries=("numpy",))
    assert fingerprint([root], libraries=("numpy",)) == before  # deterministic
    # Not results: tests, bytecode, other files.
    (root / "a_test.py").write_text("def test(): pass\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "a.cpython-310.pyc").write_bytes(b"\0")
    (root / "notes.md").write_text("x")
    assert fingerprint([root], libraries=("numpy",)) == before
    # What changes results: an edit, a new module, a moved one, a library's version.
    (root / "sub" / "b.py").write_text("B = 3\n")
    edited = fingerprint([root], libraries=("numpy",))
    (root / "c.py").write_text("")
    added = fingerprint([root], libraries=("numpy",))
    (root / "sub" / "b.py").rename(root / "b.py")
    moved = fingerprint([root], libraries=("numpy",))
    (root / "schema.pbtxt").write_text("feature { name: 'x' }\n")
    schema = fingerprint([root], libraries=("numpy",))
    assert len({before, edited, added, moved, schema}) == 5
    assert fingerprint([root], libraries=("no-such-library",)) != schema


def test_the_installed_packages_are_hashed() -> None:
    roots = package_roots(code_version.PACKAGES)
    assert {r.name for r in roots} >= {"models", "components", "pipeline"}
    assert len(code_version.pipeline_fingerprint()) == 64


def test_the_cache_is_stale_only_for_a_home_whose_recorded_code_differs(tmp_path: Path) -> None:
    code, db = str(tmp_path / ".mtrec-code"), str(tmp_path / "metadata.sqlite")
    assert code_version.stale_cache_reason(code, db, "new") is None  # nothing cached yet
    Path(db).touch()
    assert "not recorded" in code_version.stale_cache_reason(code, db, "new")  # older mtrec
    code_version.record(code, "old")
    assert code_version.recorded(code) == "old"
    assert "changed since this home's last finished run" in code_version.stale_cache_reason(
        code, db, "new")
    code_version.record(code, "new")
    assert code_version.stale_cache_reason(code, db, "new") is None


def test_a_local_run_after_a_code_change_goes_without_the_cache_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = LocalPaths(str(tmp_path))
    Path(paths.metadata_path).touch()  # an earlier run's store
    code_version.record(paths.code_path, "the code of the earlier run")
    caches: list[bool] = []
    fail = {"now": True}

    class _Runner:
        def run(self, pipeline) -> None:
            caches.append(pipeline.enable_cache)
            if fail["now"]:
                raise RuntimeError("a component failed")

    monkeypatch.setattr(local_runner.tfx.orchestration, "LocalDagRunner", _Runner)

    def run(**fields) -> None:
        local_runner.run(paths, local_runner.settings(
            paths, examples_root=os.fspath(tmp_path / "examples"), text_encoder=None, **fields))

    with pytest.raises(RuntimeError):
        run()  # the code changed, and the run failed: nothing recorded
    assert code_version.recorded(paths.code_path) == "the code of the earlier run"
    fail["now"] = False
    run()  # still without the cache; this one finishes and records the code
    run()  # the same code: the cache again
    run(enable_cache=False)  # --no-cache stays off
    assert caches == [False, False, True, False]
    assert code_version.recorded(paths.code_path) == code_version.pipeline_fingerprint()


def test_a_stopped_first_run_resumes_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new home's first run, stopped (Ctrl-C, a kill): its re-run found no recorded code
    and went without the cache, retraining everything the stopped run had finished."""
    paths = LocalPaths(str(tmp_path))
    caches: list[bool] = []
    stop = {"now": True}

    class _Runner:
        def run(self, pipeline) -> None:
            caches.append(pipeline.enable_cache)
            Path(paths.metadata_path).touch()  # the executions so far
            if stop["now"]:
                raise KeyboardInterrupt

    monkeypatch.setattr(local_runner.tfx.orchestration, "LocalDagRunner", _Runner)

    def run() -> None:
        local_runner.run(paths, local_runner.settings(
            paths, examples_root=os.fspath(tmp_path / "examples"), text_encoder=None))

    with pytest.raises(KeyboardInterrupt):
        run()
    stop["now"] = False
    run()
    assert caches == [True, True]
    assert code_version.recorded(paths.code_path) == code_version.pipeline_fingerprint()
