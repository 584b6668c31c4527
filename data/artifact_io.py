"""The one way to find and read the TFRecord files of an artifact's split.

Every path goes through `tf.io.gfile`, so a `gs://` (or `s3://`, `ram://`)
pipeline root reads like a local one. Python's `glob.glob` and `os.path`
see only the local disk: on a `gs://` root they found no files, and the
Trainer failed with "no catalogue files" while the RetrievalEvaluator
scored zero interactions (tests/test_artifact_io.py runs both on `ram://`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

import tensorflow as tf

from mtrec.contracts.pipeline import split_dir_name

# ExampleGen and Transform write gzipped TFRecords.
COMPRESSION = "GZIP"


def split_dir(artifact_uri: str, split: str) -> str:
    """The folder of `split` inside an Examples artifact (TFX's Split-<name> layout)."""
    return os.path.join(artifact_uri, split_dir_name(split))


def split_files(directory: str, pattern: str = "*", *, required: bool = True) -> list[str]:
    """The files matching `pattern` in `directory`, sorted (shard order is not meaningful).

    `required`: raise FileNotFoundError when there are none, naming the folder.
    """
    files = sorted(tf.io.gfile.glob(os.path.join(directory, pattern)))
    if required and not files:
        raise FileNotFoundError(f"no {pattern} files in {directory}")
    return files


def read_split(
    directory: str, pattern: str = "*", *, required: bool = True
) -> tf.data.TFRecordDataset:
    """The serialized records of a split folder, in file order (empty when not `required`)."""
    return read_files(split_files(directory, pattern, required=required))


def read_files(files: Sequence[str]) -> tf.data.TFRecordDataset:
    """The serialized records of gzipped TFRecord files, in order."""
    return tf.data.TFRecordDataset(list(files), compression_type=COMPRESSION)


def is_local(path: str) -> bool:
    """A path the os module reads: not a URL-style filesystem (gs://, s3://, hdfs://)."""
    return "://" not in path


def link_tree(source: str, target: str) -> None:
    """Put every file under `source` at the same relative path under `target`, overwriting:
    as hard links where both are local on one filesystem, else as copies.

    Artifacts and served versions are written once and never changed in place, so a
    link serves every reader as a copy would, without writing the bytes again: the
    Pusher's archive and the served version of a sample run were two more 110 MB
    copies of the Trainer's model, and each TextEncoder run copied the 178 MB
    export cache. A file already at a target path is removed, not written through
    (it may be a link that another artifact shares).
    """
    if not (is_local(source) and is_local(target)):
        copy_tree(source, target)
        return
    for root, _, names in os.walk(source):
        folder = os.path.join(target, os.path.relpath(root, source))
        os.makedirs(folder, exist_ok=True)
        for name in names:
            _link(os.path.join(root, name), os.path.join(folder, name))


def link_files(files: Sequence[str], folder: str) -> None:
    """Put each of `files` in `folder` under its own name, as `link_tree` does: hard links
    where both sides are local on one filesystem, else copies."""
    tf.io.gfile.makedirs(folder)
    for origin in files:
        destination = os.path.join(folder, os.path.basename(origin))
        if is_local(origin) and is_local(folder):
            _link(origin, destination)
        else:
            tf.io.gfile.copy(origin, destination, True)


def _link(origin: str, destination: str) -> None:
    """A hard link at `destination` (what was there removed, not written through), else a copy."""
    if os.path.lexists(destination):
        os.unlink(destination)
    try:
        os.link(origin, destination)
    except OSError:  # another filesystem, or one without hard links
        shutil.copyfile(origin, destination)


def copy_tree(source: str, target: str) -> None:
    """Copy every file under `source` to the same relative path under `target`, overwriting."""
    for root, _, names in tf.io.gfile.walk(source):
        relative = os.path.relpath(root, source)
        # Not `<target>/./<name>`: a URL filesystem may keep the "./" in the name (ram:// does).
        folder = target if relative == os.curdir else os.path.join(target, relative)
        tf.io.gfile.makedirs(folder)
        for name in names:
            tf.io.gfile.copy(os.path.join(root, name), os.path.join(folder, name), True)
