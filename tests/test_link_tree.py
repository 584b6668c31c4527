"""link_tree: artifacts and served versions share the model's bytes instead of copying them."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import tensorflow as tf

from mtrec.data import artifact_io
from mtrec.data.artifact_io import link_tree


def _tree(root: Path) -> Path:
    (root / "variables").mkdir(parents=True)
    (root / "saved_model.pb").write_bytes(b"graph")
    (root / "variables" / "variables.data-00000-of-00001").write_bytes(b"weights")
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_local_files_are_hard_links_with_the_same_bytes(tmp_path: Path) -> None:
    source = _tree(tmp_path / "model")
    link_tree(str(source), str(tmp_path / "pushed"))
    assert _files(tmp_path / "pushed") == _files(source)
    for name in ("saved_model.pb", "variables/variables.data-00000-of-00001"):
        assert os.path.samefile(source / name, tmp_path / "pushed" / name)  # no second copy
    # Removing the source (mtrec prune) leaves the link whole.
    (source / "saved_model.pb").unlink()
    assert (tmp_path / "pushed" / "saved_model.pb").read_bytes() == b"graph"


def test_a_file_at_the_target_is_replaced_not_written_through(tmp_path: Path) -> None:
    """The target file may be a link another artifact shares: it must not change."""
    shared = tmp_path / "other_artifact.pb"
    shared.write_bytes(b"another model")
    target = tmp_path / "pushed"
    target.mkdir()
    os.link(shared, target / "saved_model.pb")
    link_tree(str(_tree(tmp_path / "model")), str(target))
    assert (target / "saved_model.pb").read_bytes() == b"graph"
    assert shared.read_bytes() == b"another model"


def test_across_filesystems_it_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cross_device(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(artifact_io.os, "link", cross_device)
    source = _tree(tmp_path / "model")
    link_tree(str(source), str(tmp_path / "pushed"))
    assert _files(tmp_path / "pushed") == _files(source)
    assert not os.path.samefile(source / "saved_model.pb", tmp_path / "pushed" / "saved_model.pb")


def test_url_filesystems_get_copies(tmp_path: Path) -> None:
    """gs:// and the like have no links: TF's in-memory ram:// stands in for them. The
    copy wrote the top folder's files as `<target>/./<name>`, and ram:// kept the "./"
    in the name (it could not find the file)."""
    source = _tree(tmp_path / "model")
    link_tree(str(source), "ram://link_tree/pushed")
    assert tf.io.gfile.GFile("ram://link_tree/pushed/saved_model.pb", "rb").read() == b"graph"
    assert tf.io.gfile.GFile(
        "ram://link_tree/pushed/variables/variables.data-00000-of-00001", "rb").read() == b"weights"
