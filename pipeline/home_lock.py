"""One command at a time in a run's home folder.

Two `mtrec run`s in one home shared its ML Metadata, its examples folder and
its serving folder: the first to finish summarised the other's pipeline run,
which was still going ("RUNNING: RetrievalEvaluator", "nothing pushed (the run
stopped before the Pusher)", exit code 0) after pushing a model of its own, and
two first runs of the same data raced to rename their examples into one folder.
`mtrec run` and `mtrec add-items` therefore hold the home's lock from start to
end, and a second command in the same home stops at once with HomeInUseError.

The lock is a flock: the kernel drops it when its process dies, however it
dies, so a killed run never leaves its home locked, and holding it proves that
no other live run uses the home (pipeline/killed_runs.py relies on that).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

LOCK_FILE = ".mtrec-run.lock"


class HomeInUseError(RuntimeError):
    """Another live process holds the home's lock."""


@contextlib.contextmanager
def run_lock(lock_path: str) -> Iterator[bool]:
    """Hold an exclusive lock on `lock_path` while the block runs; yields whether we got it."""
    os.makedirs(os.path.dirname(lock_path) or ".", exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def home_lock(home: str) -> Iterator[None]:
    """Hold `home`'s lock while the block runs, or raise HomeInUseError at once.

    A home that did not exist and holds only the lock file afterwards (the command
    stopped before writing anything: a missing --path) is removed again, with the
    folders above it that this made.
    """
    made = _first_missing(os.path.abspath(home))
    lock_path = os.path.join(home, LOCK_FILE)
    try:
        with run_lock(lock_path) as sole:
            if not sole:
                raise HomeInUseError(
                    f"another `mtrec run` or `mtrec add-items` is using {home} (it holds "
                    f"{LOCK_FILE}): wait for it to finish, or give another --home")
            yield
    finally:
        if made and os.listdir(home) == [LOCK_FILE]:
            with contextlib.suppress(OSError):
                os.remove(lock_path)
                folder = os.path.abspath(home)
                while True:  # up to `made`, each left empty
                    os.rmdir(folder)
                    if folder == made:
                        break
                    folder = os.path.dirname(folder)


def in_use(home: str) -> bool:
    """Whether a live `mtrec run` or `mtrec add-items` holds `home`'s lock now (for
    commands that only read a home: they say so rather than wait or race it)."""
    if not os.path.isfile(os.path.join(home, LOCK_FILE)):
        return False
    with run_lock(os.path.join(home, LOCK_FILE)) as sole:
        return not sole


def _first_missing(path: str) -> str | None:
    """The outermost folder of `path` (absolute) that does not exist yet, or None."""
    missing = None
    while not os.path.exists(path):
        missing, path = path, os.path.dirname(path)
    return missing
