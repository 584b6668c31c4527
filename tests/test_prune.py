"""`mtrec prune` frees old runs' artifacts, and TFX's cache and baseline still work after.

Real LocalDagRunner runs of the stand-in pipeline (tests/gated_pipeline.py), a few
seconds each: what is kept, what goes (from disk, and DELETED in ML Metadata), and
that the next run neither reuses a removed output nor loses its baseline.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2

from mtrec import cli, summary
from mtrec.add_items import left_out_by_retrain
from mtrec.pipeline import local_runner
from mtrec.pipeline.home_lock import LOCK_FILE, HomeInUseError, home_lock
from mtrec.pipeline.mlmd_store import open_store
from mtrec.prune import after_run, freed_bytes, plan, prune, prune_hint
from mtrec.run_state import latest_pushed_run, latest_run
from tests.gated_pipeline import run_gated

DELETED = metadata_store_pb2.Artifact.DELETED


def _run(home: Path, version: int, bless: int = 1, data: str = "a") -> dict[str, str]:
    (home / "examples" / data).mkdir(parents=True, exist_ok=True)
    return run_gated(home, version=version, retrieval_bless=bless,
                     input_base=str(home / "examples" / data),
                     serving_dir=str(home / "serving_model" / "mtrec"))


def _model(home: Path) -> metadata_store_pb2.Artifact:
    return latest_run(str(home / "metadata.sqlite"))["Trainer"].outputs["model"][0]


def _state(home: Path, artifact: metadata_store_pb2.Artifact) -> int:
    return open_store(str(home / "metadata.sqlite")).get_artifacts_by_id([artifact.id])[0].state


def _baseline_id(home: Path) -> int:
    blessing = latest_run(str(home / "metadata.sqlite"))["RetrievalEvaluator"]
    return blessing.outputs["blessing"][0].custom_properties["baseline_model_id"].int_value


def _versions(home: Path) -> list[str]:
    return sorted(os.listdir(home / "serving_model" / "mtrec"))


def test_prune_keeps_the_newest_runs_and_the_served_models_run(tmp_path: Path) -> None:
    """Run 1 pushed, run 2 pushed (data b), run 3 refused by the gate: keeping one run
    keeps run 3 and run 2 (the served model's), and removes what only run 1 used."""
    _run(tmp_path, version=1)
    first = _model(tmp_path)
    first_push = latest_run(str(tmp_path / "metadata.sqlite"))["AtomicPusher"].outputs[
        "pushed_model"][0]
    _run(tmp_path, version=2, data="b")
    served = _model(tmp_path)
    _run(tmp_path, version=3, bless=0, data="b")
    refused = _model(tmp_path)
    assert _versions(tmp_path) == ["1", "2"]

    found = prune(str(tmp_path), keep_runs=1)
    assert found.runs == 3 and len(found.kept_runs) == 2
    assert _state(tmp_path, first_push) == DELETED and not os.path.exists(first_push.uri)
    # Run 1's model stays: run 2, kept, read it as its gates' baseline.
    for kept in (first, served, refused):
        assert _state(tmp_path, kept) == metadata_store_pb2.Artifact.LIVE
        assert os.path.isfile(os.path.join(kept.uri, "saved_model.pb"))
    assert _versions(tmp_path) == ["2"]  # run 1's push goes; the served version stays
    assert sorted(os.listdir(tmp_path / "examples")) == ["b"]
    assert found.size > 0 and "freed" in found.describe()

    # The next run compares against the served model, which is still there.
    fourth = _run(tmp_path, version=4, data="b")
    assert fourth.pop("ImportExampleGen") == "CACHED"  # data b: run 2's output, kept
    assert set(fourth.values()) == {"COMPLETE"}
    assert _baseline_id(tmp_path) == served.id
    assert plan(str(tmp_path), keep_runs=4).artifact_ids == ()  # nothing more to free


def test_a_removed_output_is_trained_again_not_taken_from_the_cache(tmp_path: Path) -> None:
    for version in (1, 2, 3):
        _run(tmp_path, version=version)
    first = latest_run(str(tmp_path / "metadata.sqlite"), 0)["Trainer"].outputs["model"][0]
    kept = _model(tmp_path)
    prune(str(tmp_path), keep_runs=1)
    assert not os.path.exists(first.uri)

    # Version 1's Trainer has a cache entry, whose output is gone: TFX trains again.
    again = _run(tmp_path, version=1)
    assert again["Trainer"] == "COMPLETE"
    retrained = _model(tmp_path)
    assert retrained.id != first.id and os.path.isfile(
        os.path.join(retrained.uri, "saved_model.pb"))
    # A kept output is still the cache's answer.
    assert _run(tmp_path, version=3)["Trainer"] == "CACHED"
    assert _model(tmp_path).id == kept.id


def test_a_dry_run_removes_nothing_and_a_second_prune_has_nothing_left(tmp_path: Path) -> None:
    for version in (1, 2, 3):
        _run(tmp_path, version=version)
    def files() -> list[Path]:  # but the lock file, which `mtrec run` made in a real home
        return sorted(p for p in tmp_path.rglob("*") if p.name != LOCK_FILE)

    before = files()
    dry = prune(str(tmp_path), keep_runs=1, dry_run=True)
    assert dry.artifact_ids and dry.folders
    assert files() == before
    assert prune(str(tmp_path), keep_runs=1) == dry
    assert dry.pruned_runs == 2 and "of 2 older run(s); kept 1 of 3 run(s)" in dry.describe()
    again = plan(str(tmp_path), keep_runs=1)
    assert (again.artifact_ids, again.folders, again.size, again.pruned_runs) == ((), (), 0, 0)


def test_keeping_every_run_frees_nothing(tmp_path: Path) -> None:
    _run(tmp_path, version=1)
    _run(tmp_path, version=2)
    found = plan(str(tmp_path), keep_runs=2)
    assert (found.artifact_ids, found.folders, found.size) == ((), (), 0)
    with pytest.raises(ValueError, match="at least 1"):
        plan(str(tmp_path), keep_runs=0)


def test_a_served_model_from_an_older_run_is_kept_when_newer_runs_were_refused(
    tmp_path: Path,
) -> None:
    _run(tmp_path, version=1)
    served = _model(tmp_path)
    for version in (2, 3, 4):
        _run(tmp_path, version=version, bless=0)
    prune(str(tmp_path), keep_runs=1)
    assert os.path.isfile(os.path.join(served.uri, "saved_model.pb"))
    assert latest_pushed_run(str(tmp_path / "metadata.sqlite"))["Trainer"].outputs[
        "model"][0].id == served.id  # what `mtrec add-items` re-indexes
    assert _versions(tmp_path) == ["1"]


def test_prune_waits_for_no_one_a_running_command_keeps_its_home(tmp_path: Path) -> None:
    _run(tmp_path, version=1)
    with home_lock(str(tmp_path)), pytest.raises(HomeInUseError):
        prune(str(tmp_path), keep_runs=1)


def test_the_command_prints_what_it_freed_and_refuses_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for version in (1, 2, 3):
        _run(tmp_path, version=version)
    assert cli.main(["prune", str(tmp_path), "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would free ")
    assert cli.main(["prune", str(tmp_path)]) == 0
    assert "kept 1 of 3 run(s)" in capsys.readouterr().out
    assert cli.main(["prune", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["prune", str(tmp_path), "--keep-runs", "0"])
    assert "0: must be 1 or more" in capsys.readouterr().err


def test_a_copied_home_never_removes_the_original_homes_files(tmp_path: Path) -> None:
    """ML Metadata keeps absolute URIs: in a copy of a home, they name the original's files."""
    original = tmp_path / "original"
    for version in (1, 2, 3):
        _run(original, version=version)
    before = sorted(original.rglob("*"))
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    found = prune(str(copy), keep_runs=1)
    assert found.outside > 0 and found.artifact_ids == ()
    assert "outside this home left alone" in found.describe()
    assert sorted(original.rglob("*")) == before
    assert _versions(copy) == ["3"]  # the copy's own older served versions do go


def test_freed_bytes_count_a_hard_linked_file_once_and_only_when_every_link_goes(
    tmp_path: Path,
) -> None:
    """A served version and the Pusher's archive are links to the Trainer's files."""
    model, version, other = (tmp_path / n for n in ("model", "version", "other"))
    for folder in (model, version, other):
        folder.mkdir()
    (model / "weights").write_bytes(b"w" * 1000)
    os.link(model / "weights", version / "weights")
    (other / "own").write_bytes(b"o" * 10)
    assert freed_bytes([str(version)]) == 0  # the model keeps the bytes
    assert freed_bytes([str(model), str(version)]) == 1000
    assert freed_bytes([str(model), str(version), str(other)]) == 1010


def test_the_run_summary_suggests_a_prune_only_when_older_runs_hold_enough(
    tmp_path: Path,
) -> None:
    assert prune_hint(str(tmp_path)) is None  # no store yet
    for version in (1, 2, 3):
        _run(tmp_path, version=version)
    assert prune_hint(str(tmp_path)) is None  # bytes, not the 500 MB it waits for
    hint = prune_hint(str(tmp_path), at_least_mb=0)
    assert hint is not None and hint.startswith("disk: 2 older run(s) hold ")
    assert hint.endswith(f"`mtrec prune {tmp_path}` frees them")


def test_older_add_items_versions_go_and_a_version_put_there_by_hand_stays(
    tmp_path: Path,
) -> None:
    serving = tmp_path / "serving_model" / "mtrec"
    serving.mkdir(parents=True)
    (serving / "0").mkdir()  # a version no run and no `mtrec add-items` wrote
    (serving / "0" / "saved_model.pb").write_text("by hand")
    _run(tmp_path, version=1)  # pushes version 1
    extension = serving / "2" / "assets.extra"  # `mtrec add-items`' extension of it
    extension.mkdir(parents=True)
    (extension / "extends_model").write_text("identity of version 1")
    (serving / "2" / "saved_model.pb").write_text("model 1 and new items")
    _run(tmp_path, version=3)  # pushes version 3
    _run(tmp_path, version=4)  # pushes version 4
    prune(str(tmp_path), keep_runs=1)
    assert _versions(tmp_path) == ["0", "4"]


def test_run_with_keep_runs_prunes_once_the_run_is_done_and_says_what_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """`mtrec run --keep-runs N` (ingestion real, the pipeline the stand-in one, the
    summary left out): nothing goes after the first run, the older run after the second."""
    versions = itertools.count(1)
    monkeypatch.setattr(local_runner, "run", lambda *_a, **_k: _run(tmp_path, next(versions)))
    monkeypatch.setattr(cli, "_summarise", lambda *_a: {})
    monkeypatch.setattr(cli, "_write_report", lambda _home: (None, "not in this test"))
    monkeypatch.setattr(summary, "render", lambda _summary: "summary")
    argv = ["run", "--home", str(tmp_path), "--no-text-encoder", "--keep-runs", "1"]
    assert cli.main(argv) == 0
    assert capfd.readouterr().out.splitlines()[-1] == (
        "disk: nothing to free: 1 run(s), each kept or already pruned")
    assert cli.main(argv) == 0
    last = capfd.readouterr().out.splitlines()[-1]
    assert last.startswith("disk: freed ") and "kept 1 of 2 run(s)" in last
    assert _versions(tmp_path) == ["2"]
    assert cli.main(argv[:-2]) == 0  # without it, a run keeps every run (no hint: < 500 MB)
    assert capfd.readouterr().out.splitlines()[-1] == "summary"
    assert _versions(tmp_path) == ["2", "3"]
    assert after_run(str(tmp_path), None) is None


def test_a_retrain_names_the_added_items_its_model_left_out(tmp_path: Path) -> None:
    """A retrain serves its own catalogue: what `mtrec add-items` served with the model
    before went out of service without a word. The summary now names those items the
    new catalogue lacks, once: the next run's model before had none added."""
    _run(tmp_path, version=1)
    assert left_out_by_retrain(str(tmp_path), {"i1"}) == []  # no model before the first
    added = tmp_path / "added_items" / f"model-{_model(tmp_path).id}.csv"
    added.parent.mkdir()
    added.write_text("item_id,title\nn1,New one\nn2,New two\n")
    _run(tmp_path, version=2, bless=0)  # refused (no summary note): the first stays served
    _run(tmp_path, version=3)  # replaces the first model, across the refused run
    assert left_out_by_retrain(str(tmp_path), {"i1", "n2"}) == ["n1"]
    _run(tmp_path, version=4)
    assert left_out_by_retrain(str(tmp_path), {"i1"}) == []
    text = summary.render({"components": {}, "pushed_to": "v", "added_items_left_out": ["n1"]})
    assert ("note: 1 item(s) `mtrec add-items` served with the model before are not in this "
            "one (n1): add them to your items table, or run `mtrec add-items` again") in text


def test_a_failed_summary_keeps_the_runs_result_and_leaves_no_stale_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """An error while summarising (after the pipeline pushed) was a raw traceback and
    exit 1 with the last run's summary.json left in place, naming the old model, for
    `mtrec report` to read. Now: exit 0, one line saying why, and no stale summary."""
    monkeypatch.setattr(local_runner, "run", lambda *_a, **_k: _run(tmp_path, version=1))
    monkeypatch.setattr(cli, "_write_report", lambda _home: (None, "not in this test"))
    (tmp_path / summary.SUMMARY_FILE).write_text('{"pushed_to": "the last run\'s model"}')

    def broken(_nodes: object) -> None:
        raise ImportError("a half-upgraded install")

    monkeypatch.setattr(summary, "collect", broken)
    assert cli.main(["run", "--home", str(tmp_path), "--no-text-encoder"]) == 0
    err = capfd.readouterr().err
    assert "summary not written (ImportError: a half-upgraded install;" in err
    assert not (tmp_path / summary.SUMMARY_FILE).exists()
    assert _versions(tmp_path) == ["1"]  # the pushed model stands


def test_prune_frees_what_stopped_runs_and_pushes_left(tmp_path: Path) -> None:
    """A stateful working folder and a killed push's staging copy stayed for good."""
    _run(tmp_path, version=1)
    stateful = tmp_path / "pipeline_root" / "Trainer" / ".system" / "stateful_working_dir" / "a1"
    stateful.mkdir(parents=True)
    (stateful / "state").write_bytes(b"x" * 1000)
    staging = tmp_path / "serving_model" / "mtrec" / ".incoming-2-0a1b2c3d"
    staging.mkdir()
    (staging / "saved_model.pb").write_bytes(b"y" * 1000)
    found = prune(str(tmp_path), keep_runs=1, dry_run=True)
    assert found.leftovers == 2 and found.size == 2000 and stateful.exists()
    assert "2 of the folders left by stopped runs or pushes" in found.describe(dry_run=True)
    prune(str(tmp_path), keep_runs=1)
    assert not stateful.exists() and not staging.exists()
    assert _versions(tmp_path) == ["1"]
