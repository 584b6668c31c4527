"""Model versions on disk, read the way TF Serving's file-system source reads them.

A version is an all-digit folder name inside a model's base path that holds a
complete SavedModel (`saved_model.pb` or `.pbtxt`; the Pusher renames a
finished copy into place, so a folder still being filled is skipped).
"""

from __future__ import annotations

import os
import re

from mtrec.contracts.artifacts import SAVED_MODEL_FILE, SAVED_MODEL_TEXT_FILE

VERSION_RE = re.compile(r"[0-9]+")


def version_stamp(path: str) -> tuple[tuple[str, int, int], ...]:
    """Changes when any of a version's files change, so a failed load is retried then.

    Covers saved_model.pb and variables/, so a dir whose model file appeared
    before its variables were complete gets another try once they are.
    """
    names = [SAVED_MODEL_FILE, SAVED_MODEL_TEXT_FILE]
    variables = os.path.join(path, "variables")
    if os.path.isdir(variables):
        names += [os.path.join("variables", n) for n in sorted(os.listdir(variables))]
    stamp = []
    for name in names:
        try:
            st = os.stat(os.path.join(path, name))
        except OSError:
            continue
        stamp.append((name, st.st_mtime_ns, st.st_size))
    return tuple(stamp)


def list_versions(model_dir: str) -> dict[int, str]:
    """Complete version dirs: numeric names that contain a saved_model.pb(txt)."""
    found: dict[int, str] = {}
    for entry in os.listdir(model_dir):
        if not VERSION_RE.fullmatch(entry):
            continue
        path = os.path.join(model_dir, entry)
        if os.path.isdir(path) and (
            os.path.isfile(os.path.join(path, SAVED_MODEL_FILE))
            or os.path.isfile(os.path.join(path, SAVED_MODEL_TEXT_FILE))
        ):
            found[int(entry)] = path
    return found
