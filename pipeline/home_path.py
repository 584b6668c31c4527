"""What a run's home folder may be: a folder (or a new path), where Beam and TFX can
read their own files back.

TFX and Beam read a component's inputs by file pattern (`<uri>/Split-train/*`),
so a `[`, `]`, `*` or `?` anywhere in the home's absolute path is read as a
pattern character: a sample run under "runs [v2]/" wrote its examples, then
failed in its first component with "No files found based on the file pattern
.../runs [v2]/examples/.../catalog/*". TFX builds those patterns itself, so
the path is refused before anything is written.
"""

from __future__ import annotations

import os

PATTERN_CHARACTERS = "[]*?"


def home_problem(home: str) -> str | None:
    """Why `home` cannot be a run's home, in words for an `error:` line; None when it can."""
    if os.path.exists(home) and not os.path.isdir(home):  # else a traceback from ingestion
        return (f"--home {home} is a file: the run's output folder must be a folder "
                "(a new path makes one)")
    found = sorted({c for c in os.path.abspath(home) if c in PATTERN_CHARACTERS})
    if found:
        return (f"--home {os.path.abspath(home)} holds {' '.join(found)}, which Beam and TFX "
                "read as file-pattern characters in the paths of their own files: give a "
                "home whose path has none")
    return None
