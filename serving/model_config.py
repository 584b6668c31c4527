"""Which models `mtrec serve` serves, with TF Serving's meaning of every path.

Either one model, `--model-base-path` + `--model-name`, or TF Serving's
`--model-config-file` (a text-format `ModelServerConfig`: a
`model_config_list` of `config { name base_path model_platform }`). In both,
a base path is the folder that *holds the numeric version folders*
(`<base_path>/<version>/saved_model.pb`), exactly as TF Serving's
`--model_base_path` / `base_path`: for a local run that is the Pusher's
destination, `outputs/<source>/serving_model/mtrec`. The model name is only
the name clients ask for; it is never appended to the path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from google.protobuf import text_format

from mtrec.serving.versions import VERSION_RE, list_versions

try:  # shipped with tensorflow-serving-api, next to tensorflow_serving.apis
    from tensorflow_serving.config import model_server_config_pb2
except ImportError:  # pragma: no cover - depends on the installed wheel
    model_server_config_pb2 = None

TENSORFLOW_PLATFORM = "tensorflow"


@dataclass(frozen=True)
class ModelSource:
    """One served model: the name clients use, and the folder of its versions."""

    name: str
    base_path: str


def parse_model_config(text: str, origin: str = "<model config>") -> tuple[ModelSource, ...]:
    """Models listed in a TF Serving `models.config` text; ValueError for what we cannot serve.

    The embedded server serves the latest version of each model (TF Serving's
    default policy, `latest { num_versions: 1 }`) from a file-system base path.
    """
    if model_server_config_pb2 is None:
        raise ValueError(
            "--model-config-file needs tensorflow_serving.config (the tensorflow-serving-api "
            "package); it is not importable here"
        )
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise ValueError(f"{origin}: not a TF Serving ModelServerConfig: {exc}") from exc
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{origin}: needs a model_config_list (custom_model_config is not served)")
    sources = tuple(_source(entry, origin) for entry in config.model_config_list.config)
    if not sources:
        raise ValueError(f"{origin}: model_config_list has no config entries")
    names = [s.name for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{origin}: model names must be unique; repeated: {duplicates}")
    return sources


def _source(entry: Any, origin: str) -> ModelSource:
    name, base_path = entry.name, entry.base_path
    if not name or not base_path:
        raise ValueError(f"{origin}: every config needs a name and a base_path; got {entry}")
    if entry.model_platform not in ("", TENSORFLOW_PLATFORM):
        raise ValueError(
            f"{origin}: model {name!r} has model_platform {entry.model_platform!r}; "
            f"only {TENSORFLOW_PLATFORM!r} SavedModels are served"
        )
    policy = entry.model_version_policy
    which = policy.WhichOneof("policy_choice")
    if which not in (None, "latest") or (which == "latest" and policy.latest.num_versions > 1):
        raise ValueError(
            f"{origin}: model {name!r}: the embedded server serves only the latest version "
            "(model_version_policy { latest { num_versions: 1 } }, TF Serving's default)"
        )
    return ModelSource(name=name, base_path=base_path)


def read_model_config_file(path: str) -> tuple[ModelSource, ...]:
    """The models of a models.config file; ValueError (a bad flag) when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ValueError(f"--model-config-file {path}: {exc.strerror or exc}") from exc
    return parse_model_config(text, origin=path)


def model_sources(
    model_base_path: str | None, model_name: str, model_config_file: str | None
) -> tuple[ModelSource, ...]:
    """The models to serve from the `serve` settings; exactly one way must be given."""
    if (model_base_path is None) == (model_config_file is None):
        raise ValueError("give either --model-base-path or --model-config-file (not both)")
    if model_config_file is not None:
        return read_model_config_file(model_config_file)
    return (ModelSource(name=model_name, base_path=model_base_path or ""),)


def _versions(folder: str) -> dict[int, str]:
    try:
        return list_versions(folder)
    except OSError:
        return {}


def _has_versions(folder: str) -> bool:
    return bool(_versions(folder))


def _folders_below(path: str) -> list[str]:
    try:
        return sorted(e.path for e in os.scandir(path) if e.is_dir())
    except OSError:
        return []


def _right_folder(path: str, name: str) -> tuple[str, str] | None:
    """(the folder of the versions the user likely meant, what `path` is to it), or None.

    The usual mistakes: the folder above it (`serving_model`, where the Pusher
    puts `<name>/`), a run's home (`outputs/sample`, which holds
    `serving_model/<name>/`) or one version folder itself.
    """
    nested = os.path.join(path, name)
    if _has_versions(nested):
        return nested, "the folder above them"
    for folder in _folders_below(path):  # a run home: <home>/<any>/<name>/<versions>
        candidate = os.path.join(folder, name)
        if _has_versions(candidate):
            return candidate, "two levels above them (a run's home?)"
    parent = os.path.dirname(os.path.normpath(path)) or os.curdir
    version = os.path.basename(os.path.normpath(path))
    if VERSION_RE.fullmatch(version) and int(version) in _versions(parent):
        return parent, f"version {version} itself"
    return None


def missing_base_path(name: str, path: str) -> str:
    """The warning for a base path that is not there: the version poller's, said once."""
    return f"model {name!r}: base path {path} does not exist (yet)"


def base_path_problem(source: ModelSource) -> str | None:
    """Why `source.base_path` will serve nothing, with the fix; None when it has versions.

    Catches the common mistakes of passing a folder above the versions (the old
    meaning of --model-base-path, `<parent>/<name>/<version>`, or the run's
    home) or a version folder itself: names the folder to pass instead.
    """
    path = source.base_path
    if _has_versions(path):
        return None
    if not os.path.isdir(path):
        return missing_base_path(source.name, path)
    right = _right_folder(path, source.name)
    if right is not None:
        folder, what = right
        return (
            f"model {source.name!r}: no version folders in {path}: it is {what}. "
            "A base path is the folder that holds the numeric version folders, as in TF "
            f"Serving: use {folder}"
        )
    return f"model {source.name!r}: no version folders (<number>/saved_model.pb) in {path} yet"
