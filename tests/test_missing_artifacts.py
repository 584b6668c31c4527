"""Artifacts removed by hand are marked DELETED, so the baseline resolver stops offering them."""

from __future__ import annotations

import shutil
from pathlib import Path

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from mtrec.pipeline.missing_artifacts import describe, forget_missing_artifacts
from mtrec.pipeline.mlmd_store import open_store
from mtrec.run_state import latest_run
from tests.gated_pipeline import run_gated

_ARTIFACT = metadata_store_pb2.Artifact


def _model(home: Path) -> _ARTIFACT:
    return latest_run(str(home / "metadata.sqlite"))["Trainer"].outputs["model"][0]


def _baseline_id(home: Path) -> int:
    blessing = latest_run(str(home / "metadata.sqlite"))["RetrievalEvaluator"]
    return blessing.outputs["blessing"][0].custom_properties["baseline_model_id"].int_value


def test_a_removed_baseline_model_gives_way_to_the_newest_one_that_exists(tmp_path: Path) -> None:
    """A user removed the served run's model folder: every later run trained, then failed
    in the RetrievalEvaluator on the missing SavedModel the resolver still offered."""
    run_gated(tmp_path, version=1)
    first = _model(tmp_path)
    run_gated(tmp_path, version=2)
    second = _model(tmp_path)
    shutil.rmtree(second.uri)

    run_gated(tmp_path, version=3, retrieval_bless=0)  # refused: no new blessed model
    assert _baseline_id(tmp_path) == second.id  # TFX alone offers the removed folder

    metadata, root = str(tmp_path / "metadata.sqlite"), str(tmp_path / "pipeline_root")
    assert forget_missing_artifacts(metadata, root) == (second.uri,)
    states = {a.id: a.state for a in open_store(metadata).get_artifacts_by_id(
        [first.id, second.id])}
    assert states == {first.id: _ARTIFACT.LIVE, second.id: _ARTIFACT.DELETED}
    assert forget_missing_artifacts(metadata, root) == ()  # nothing left to mark

    run_gated(tmp_path, version=4)
    assert _baseline_id(tmp_path) == first.id


def test_only_live_artifacts_inside_the_pipeline_root_are_marked(tmp_path: Path) -> None:
    """Outside the root (a home moved since it ran) is another home's; existing folders
    and artifacts already deleted stay as they are."""
    root = tmp_path / "pipeline_root"
    (root / "Trainer" / "model" / "2").mkdir(parents=True)
    metadata = str(tmp_path / "metadata.sqlite")
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata
    store = metadata_store.MetadataStore(config)
    kind = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="Model"))
    uris = {"gone": root / "Trainer" / "model" / "1", "there": root / "Trainer" / "model" / "2",
            "outside": tmp_path / "elsewhere" / "model" / "3",
            "deleted": root / "Trainer" / "model" / "4"}
    states = {"gone": _ARTIFACT.LIVE, "there": _ARTIFACT.LIVE, "outside": _ARTIFACT.LIVE,
              "deleted": _ARTIFACT.DELETED}
    ids = dict(zip(uris, store.put_artifacts([
        _ARTIFACT(type_id=kind, uri=str(uris[n]), state=states[n]) for n in uris]),
        strict=True))

    assert forget_missing_artifacts(metadata, str(root)) == (str(uris["gone"]),)
    after = {a.id: a.state for a in open_store(metadata).get_artifacts()}
    assert after == {ids["gone"]: _ARTIFACT.DELETED, ids["there"]: _ARTIFACT.LIVE,
                     ids["outside"]: _ARTIFACT.LIVE, ids["deleted"]: _ARTIFACT.DELETED}
    assert describe((str(uris["gone"]),), str(root)) == (
        "1 artifact(s) whose folder was removed marked deleted in ML Metadata "
        "(Trainer/model/1): the cache and the baseline model no longer offer them")


def test_a_home_without_a_store_has_nothing_to_mark(tmp_path: Path) -> None:
    assert forget_missing_artifacts(str(tmp_path / "metadata.sqlite"), str(tmp_path)) == ()
