"""Push a SavedModel so that a model server never loads it half-written.

On a local or mounted filesystem: hard-link the model's files (copy them where
links cannot reach: data/artifact_io.link_tree) into
`<base>/.incoming-<version>-<random>`, then rename to `<base>/<version>` (one
atomic rename). The Pusher's archive of what it pushed (its PushedModel
artifact, as TFX's Pusher keeps) is linked the same way: a push writes no bytes
of the model again (these two copies were 220 MB of the 330 MB a sample retrain
added to its home; 31 MB with links).

Object stores (gs://, s3://, ...) have no atomic directory rename: TF's
"rename" there copies object by object, in listing order, so `saved_model.pb`
could land before the variables and TF Serving would load a model with missing
weights (tensorflow/serving#1086). There the copy goes straight to
`<base>/<version>` with `saved_model.pb` written last: until it exists, a load
attempt fails and TF Serving retries it (`--max_num_load_retries`), and once it
exists every other file is already in place.

Re-pushing a model that is already the latest version (a pipeline re-run
whose Trainer came from the cache) records the existing version instead of
making a new one, so model servers do not reload an identical model. The same
holds when the latest version is `mtrec add-items`' extension of this model
(marked in assets.extra, `EXTENDS_FILE`): a new copy of the model would be
served in its place and drop the added items. And a model pushed again after another
one (a re-run with the earlier settings: its Trainer from the cache) is pushed as the
newest extension of it still there, so the items added to it come back with it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from typing import Any

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from mtrec.contracts.artifacts import (
    EXTENDS_FILE,
    EXTRA_ASSETS_DIR,
    FINGERPRINT_FILE,
    SAVED_MODEL_FILE,
    STAGING_PREFIX,
)
from mtrec.contracts.pipeline import ALREADY_SERVED, PUSHED_EXTENSION
from mtrec.data.artifact_io import is_local, link_tree

log = logging.getLogger(__name__)


def next_version(base_directory: str, now: int | None = None) -> str:
    """Unix-time version, strictly above any existing numeric version."""
    now = int(time.time()) if now is None else now
    existing = [int(n) for n in fileio.listdir(base_directory) if n.isdigit()] if fileio.exists(
        base_directory
    ) else []
    return str(max([now, *(v + 1 for v in existing)]))


def model_identity(saved_model_dir: str) -> str | None:
    """SavedModel identity (sha256 hex): of TF's fingerprint.pb, else of saved_model.pb."""
    for name in (FINGERPRINT_FILE, SAVED_MODEL_FILE):
        path = os.path.join(saved_model_dir, name)
        if fileio.exists(path):
            return hashlib.sha256(io_utils.read_bytes_file(path)).hexdigest()
    return None


def _extension_lines(version_dir: str) -> list[str]:
    path = os.path.join(version_dir, EXTRA_ASSETS_DIR, EXTENDS_FILE)
    return io_utils.read_string_file(path).split() if fileio.exists(path) else []


def extended_identity(version_dir: str) -> str | None:
    """The identity of the model an add-items version extends (None: not an extension)."""
    lines = _extension_lines(version_dir)
    return lines[0] if lines else None


def added_digest(version_dir: str) -> str | None:
    """The digest of the items an add-items version added (None: not recorded)."""
    lines = _extension_lines(version_dir)
    return lines[1] if len(lines) > 1 else None


def mark_extension(saved_model_dir: str, extends: str, items_digest: str = "") -> None:
    """Mark an exported SavedModel as an extension of the model whose identity is `extends`,
    with `items_digest` (of the added items) on a second line: `mtrec add-items` reads it
    back to tell a served version that holds these items from one that does not."""
    folder = os.path.join(saved_model_dir, EXTRA_ASSETS_DIR)
    fileio.makedirs(folder)
    text = f"{extends}\n{items_digest}\n" if items_digest else extends
    io_utils.write_string_file(os.path.join(folder, EXTENDS_FILE), text)


def _versions(base_directory: str) -> list[str]:
    """The numeric version folders under `base_directory`, oldest first."""
    if not fileio.exists(base_directory):
        return []
    names = (os.fsdecode(n) for n in fileio.listdir(base_directory))  # str in, str out
    return sorted((n for n in names if n.isdigit()), key=int)


def newest_extension(model_path: str, base_directory: str) -> str | None:
    """The newest version that is add-items' extension of this SavedModel, or None."""
    identity = model_identity(model_path)
    for version in reversed(_versions(base_directory)):
        if identity is not None and extended_identity(
                os.path.join(base_directory, version)) == identity:
            return version
    return None


def served_version(model_path: str, base_directory: str) -> str | None:
    """The newest pushed version if it serves this SavedModel already, else None: it holds
    the same model, or it is add-items' extension of it (the added items stay served)."""
    versions = _versions(base_directory)
    identity = model_identity(model_path)
    if not versions or identity is None:
        return None
    latest = os.path.join(base_directory, versions[-1])
    if identity in (model_identity(latest), extended_identity(latest)):
        return versions[-1]
    return None


def newest_serving(version_dir: str) -> str:
    """The newest version in `version_dir`'s base that serves its model: an add-items
    extension pushed after it (a cached re-run's Pusher names the version it pushed,
    not the one add-items pushed since), else `version_dir` itself."""
    base = os.path.dirname(version_dir.rstrip("/"))
    versions = _versions(base)
    identity = extended_identity(version_dir) or model_identity(version_dir)
    if not versions or identity is None:
        return version_dir
    newest = os.path.join(base, versions[-1])
    return newest if extended_identity(newest) == identity else version_dir


def renames_atomically(path: str) -> bool:
    """Local and mounted paths rename in one step; URL-style object stores do not."""
    return is_local(path) or path.startswith("file://")


def copy_saved_model_last(model_path: str, target: str) -> list[str]:
    """Copy a SavedModel tree into `target`, `saved_model.pb` last; return the copy order."""
    files = [
        os.path.join(os.fsdecode(root), os.fsdecode(name))
        for root, _, names in fileio.walk(model_path)
        for name in names
    ]
    top = os.path.join(model_path, SAVED_MODEL_FILE)
    files.sort(key=lambda f: f == top)  # stable: saved_model.pb to the end
    copied = []
    for source in files:
        relative = os.path.relpath(source, model_path)
        destination = os.path.join(target, relative)
        fileio.makedirs(os.path.dirname(destination))
        fileio.copy(source, destination, overwrite=False)
        copied.append(relative)
    return copied


def atomic_copy(model_path: str, base_directory: str, version: str) -> str:
    """Put a SavedModel at `<base>/<version>` so that no reader sees it half-written."""
    fileio.makedirs(base_directory)
    target = os.path.join(base_directory, version)
    if not renames_atomically(base_directory):
        try:
            copy_saved_model_last(model_path, target)
        except BaseException:
            if fileio.exists(target):
                fileio.rmtree(target)
            raise
        return target
    staging = os.path.join(base_directory, f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex[:8]}")
    try:
        link_tree(model_path, staging)
        fileio.rename(staging, target, overwrite=False)
    except BaseException:
        if fileio.exists(staging):
            fileio.rmtree(staging)
        raise
    return target


class Executor(pusher_executor.Executor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError("AtomicPusher pushes to a filesystem destination only")
        base = destination.filesystem.base_directory
        version = served_version(model_path, base)
        served = version is not None
        extension = None
        if version is not None:
            target = os.path.join(base, version)
            log.info("Model already served as %s; not pushing it again", target)
        else:
            # This model served again after another one: with the items add-items gave it.
            extension = newest_extension(model_path, base)
            source = model_path if extension is None else os.path.join(base, extension)
            version = next_version(base)
            target = atomic_copy(source, base, version)
            log.info("Model pushed to %s%s", target,
                     f" (add-items' extension {extension} of it)" if extension else "")
        link_tree(model_path, model_push.uri)  # TFX's archive of what was pushed
        self._MarkPushed(model_push, pushed_destination=target, pushed_version=version)
        model_push.set_int_custom_property(ALREADY_SERVED, int(served))
        if extension is not None:
            model_push.set_string_custom_property(PUSHED_EXTENSION, extension)
