"""Where a command's output flag writes: one rule for `mtrec report --output` and
`mtrec data check --rejects`, and the part of a path that exists (also
`mtrec compile --output`'s check, pipeline/kubeflow_checks.py).

A folder (an existing one, or a path ending in a slash, made if missing) gets the
command's file in it: `--rejects out/` wrote a file named `out` (pathlib drops the
slash), and `--output reports/new/` failed on "No such file or directory:
'reports/new/.tmp'". A path under an existing file is refused before anything
runs, in words: it was a FileExistsError traceback (report) or "[Errno 17] File
exists" naming only the file (data check).
"""

from __future__ import annotations

import os


def file_in(path: str, name: str) -> str:
    """`path`, or `path/name` when `path` is a folder or ends in a separator."""
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        return os.path.join(path, name)
    return path


def unwritable(flag: str, path: str | None) -> str | None:
    """Why no file can be made at `path` (given as `flag`), or None: an existing file
    where one of its folders must be. None for no path (the flag not given)."""
    if not path:
        return None
    folder = existing_part(path)
    if not os.path.isdir(folder):
        return f"{flag} {path}: {folder} is a file, so no folder can be made under it"
    return None


def existing_part(path: str) -> str:
    """The nearest folder above `path` that exists, or the file found in its place."""
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return folder
