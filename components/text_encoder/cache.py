"""The text encoder's caches under $MTREC_CACHE_DIR (minilm.cache_root()): a frozen
pretrained encoder's catalogue vectors and exported models.

Only a frozen checkpoint is cached (a `digest` of None: no entry), since its
output depends on nothing but the checkpoint, the texts, the sequence lengths
and the code (minilm.code_fingerprint(), in every key). Entries are written to
a temporary sibling and renamed into place, so concurrent runs never read half
an entry.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mtrec.components.text_encoder.minilm import cache_root, code_fingerprint
from mtrec.data.artifact_io import link_tree


def cache_key(*parts: object) -> str:
    """24 hex digits of the sha256 of the parts, NUL-separated: a cache entry's name."""
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:24]


def catalog_cache_file(digest: str | None, sequence_length: int, texts: list[str],
                        kind: str = "text") -> Path | None:
    """Where the frozen pretrained encoder's vectors for these texts are cached
    (`kind`: "text", the items' full texts, or "description", their descriptions)."""
    if digest is None:
        return None
    key = cache_key(code_fingerprint(), digest, sequence_length, kind, "\n".join(texts))
    return cache_root() / "embeddings" / f"{key}.npy"


def encode_cached(encode: Callable[[], np.ndarray], cache_file: Path | None
                  ) -> tuple[np.ndarray, bool]:
    """(`encode()`, or what it returned once before from `cache_file`; whether cached).

    A miss writes to a temporary sibling and renames it into place, so a
    concurrent run never reads a half-written file.
    """
    if cache_file is not None and cache_file.is_file():
        return np.load(cache_file), True
    vectors = encode()
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        staging = cache_file.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(staging, vectors)
        staging.replace(cache_file)
    return vectors, False


def export_cache_dir(digest: str | None, lengths: tuple[int, int], versions: str
                      ) -> Path | None:
    """Where the frozen pretrained encoder's exported models are cached, or None.

    What write_models writes depends on the checkpoint, the two sequence lengths
    (texts, descriptions) and the library versions that serialise it (`versions`),
    never on the texts.
    """
    if digest is None:
        return None
    key = cache_key(code_fingerprint(), digest, *lengths, versions)
    return cache_root() / "exports" / key


def write_models_cached(cache_dir: Path | None, uri: str, write: Callable[[str], None]) -> bool:
    """`write(uri)`, or, with a `cache_dir`, links to (or a copy of) what `write` wrote there
    once (data/artifact_io.link_tree).

    Returns whether the cache answered. A miss writes to a temporary sibling and
    renames it into place, so a concurrent run never copies a half-written entry.
    Why: the frozen MiniLM's encoder SavedModel, Keras model and preset (265 MB
    then; 178 MB since the Keras model is rebuilt from the preset) took 6.6 s of
    the TextEncoder's 8.8 s on every cached run of the sample.
    """
    if cache_dir is None:
        write(uri)
        return False
    hit = cache_dir.is_dir()
    if not hit:
        staging = cache_dir.with_name(f"{cache_dir.name}.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        write(str(staging))
        try:
            staging.rename(cache_dir)
        except OSError:  # another process renamed its copy first: the same files
            shutil.rmtree(staging, ignore_errors=True)
    link_tree(str(cache_dir), uri)
    return hit
