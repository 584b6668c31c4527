"""Model versions on disk, read the way TF Serving's file-system source reads them.

A version is an all-digit folder name inside a model's base path that holds a
complete SavedModel (`saved_model.pb` or `.pbtxt`; the Pusher renames a
finished copy into place, so a folder still being filled is skipped). A folder
copied in place can show its saved_model.pb before the rest: `version_stamp`
lets the loader notice files that change during or after a failed load.
"""

from __future__ import annotations

import logging
import os
import re

from mtrec.contracts.artifacts import SAVED_MODEL_FILE, SAVED_MODEL_TEXT_FILE

log = logging.getLogger("mtrec.serving")

VERSION_RE = re.compile(r"[0-9]+")
# Versions are int64s (ModelSpec.version, GetModelStatus): TF Serving skips a folder
# whose name does not parse as one. Served, 99999999999999999999 broke every status
# answer ("Value out of range") until a restart, even after the folder was removed.
MAX_VERSION = 2**63 - 1
_skipped: set[str] = set()  # folders already warned about (once each)


def version_stamp(path: str) -> tuple[tuple[str, int, int], ...]:
    """(relative path, mtime, size) of every file of a version, in a fixed order.

    Changes when any of a version's files change: a failed load is retried then,
    and a load during which it changed is not served (the folder was still being
    written). Covers the whole tree, not just saved_model.pb and variables/: a
    load fails just as surely on a missing or short assets/ vocabulary file, and
    a version written in place (not renamed in, as the Pusher does) may get its
    assets last.
    """
    stamp = []
    for folder, subfolders, files in os.walk(path):
        subfolders.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            try:
                st = os.stat(full)
            except OSError:  # removed while listed: the next stamp differs anyway
                continue
            stamp.append((os.path.relpath(full, path), st.st_mtime_ns, st.st_size))
    return tuple(stamp)


def list_versions(model_dir: str) -> dict[int, str]:
    """Complete version dirs: numeric names (int64) that contain a saved_model.pb(txt)."""
    found: dict[int, str] = {}
    for entry in os.listdir(model_dir):
        if not VERSION_RE.fullmatch(entry):
            continue
        path = os.path.join(model_dir, entry)
        if int(entry) > MAX_VERSION:
            if path not in _skipped:
                _skipped.add(path)
                log.warning("ignoring %s: a version number is at most %d (an int64, as in TF "
                            "Serving)", path, MAX_VERSION)
            continue
        if os.path.isdir(path) and (
            os.path.isfile(os.path.join(path, SAVED_MODEL_FILE))
            or os.path.isfile(os.path.join(path, SAVED_MODEL_TEXT_FILE))
        ):
            found[int(entry)] = path
    return found
