"""The text encoder's caches (cache.py) and the description vectors it caches."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from mtrec.components.text_encoder import cache, minilm
from mtrec.components.text_encoder.export import description_vectors


def test_description_vectors_encode_the_described_items_alone():
    """One encode call with the non-empty descriptions in catalogue order; zero rows
    (the cold-item map's "none") for the rest."""
    calls = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.array([[len(t), 1.0] for t in texts], np.float32)

    got = description_vectors(encode, ["ab", "", "abcd", ""], 2)
    assert calls == [["ab", "abcd"]]
    np.testing.assert_array_equal(got, [[2, 1], [0, 0], [4, 1], [0, 0]])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(description_vectors(encode, ["", ""], 2), np.zeros((2, 2)))
    assert len(calls) == 1  # nothing to encode: no call


def test_cache_entries_follow_the_encoder_code(monkeypatch, tmp_path):
    """Every cache below cache_root() is keyed by the package's source and library
    versions: an edit of the encoding or export code never reads what older code wrote."""
    monkeypatch.setenv(minilm.CACHE_ENV, str(tmp_path))
    texts = ["a film", "another film"]

    def locations() -> tuple[Path | None, Path | None]:
        return (cache.catalog_cache_file("sha", 16, texts),
                cache.export_cache_dir("sha", (16, 8), "keras==1"))

    before = locations()
    assert before == locations()  # deterministic
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "edited")
    after = locations()
    assert all(a != b for a, b in zip(before, after, strict=True))
    assert cache.catalog_cache_file(None, 16, texts) is None  # scratch: never cached


def test_write_models_cached_writes_once_then_links(tmp_path):
    """The export cache: a miss writes to a temporary sibling and renames it into
    place; a hit links to it without writing; a run that loses the rename to another
    process links to the winner's entry; no cache directory writes in place."""
    calls = []

    def write(directory: str) -> None:
        calls.append(directory)
        Path(directory, "encoder").mkdir(parents=True, exist_ok=True)
        Path(directory, "encoder", "saved_model.pb").write_text(f"written {len(calls)}")

    entry = tmp_path / "cache" / "key"
    assert cache.write_models_cached(entry, str(tmp_path / "a"), write) is False
    assert cache.write_models_cached(entry, str(tmp_path / "b"), write) is True
    assert len(calls) == 1 and Path(calls[0]).parent == entry.parent and Path(calls[0]) != entry
    for run in "ab":
        assert (tmp_path / run / "encoder" / "saved_model.pb").read_text() == "written 1"
        assert os.path.samefile(tmp_path / run / "encoder" / "saved_model.pb",
                                entry / "encoder" / "saved_model.pb")  # no copy of 178 MB
    assert sorted(p.name for p in entry.parent.iterdir()) == ["key"]

    other = tmp_path / "cache" / "other"

    def racing(directory: str) -> None:  # another process finishes first
        write(directory)
        shutil.copytree(directory, other)

    assert cache.write_models_cached(other, str(tmp_path / "c"), racing) is False
    assert sorted(p.name for p in entry.parent.iterdir()) == ["key", "other"]
    assert (tmp_path / "c" / "encoder" / "saved_model.pb").read_text() == "written 2"

    assert cache.write_models_cached(None, str(tmp_path / "d"), write) is False
    assert calls[-1] == str(tmp_path / "d")
