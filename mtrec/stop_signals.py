"""Ctrl-C and SIGTERM during `mtrec run`: a stopped run, never a failed one.

A scheduler (Kubernetes, systemd, Airflow) cancels a run with SIGTERM, a user
with Ctrl-C (SIGINT); both must end as a stop, with its exit code (143, 130),
not as a component failure (exit 1). Two things got in the way (a user's probe):

- SIGTERM had no handler: the process died at once with 143, printed nothing,
  and left the previous run's summary.json and report.html as the latest.
- Beam wraps a KeyboardInterrupt raised inside a transform into
  `RuntimeError: KeyboardInterrupt [while running '...']` (`raise ... from` the
  original, in `_reraise_augmented`), which `mtrec run` reported as "Transform
  FAILED". With Beam's multi-processing mode, Ctrl-C reaches the worker
  subprocesses too, so the main process may first see a worker's failure that
  carries no KeyboardInterrupt at all: only the signal it received tells.

`handled()` installs handlers that record the signal and raise in the main
thread: KeyboardInterrupt for SIGINT (as Python's default handler does) and
`Terminated`, a KeyboardInterrupt subclass, for SIGTERM, so every library that
special-cases KeyboardInterrupt (TFX, Beam, TensorFlow) treats both alike.
`stop_signal()` says whether an exception the pipeline raised means the run
was stopped. Standard library only: the CLI loads it before TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How Beam's `_reraise_augmented` spells a KeyboardInterrupt it could not rebuild
# (a bare one has no message to annotate): "KeyboardInterrupt [while running 'x']".
# The same text crosses Beam's process boundary, where no exception chain survives.
INTERRUPT_MESSAGE = "KeyboardInterrupt"

_received: list[int] = []  # the stop signals received while handled() is on, in order


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Python raises KeyboardInterrupt for SIGINT.

    Positional arguments are the message, as any exception's (Beam rebuilds an
    exception from its type and message to add the step it ran in)."""

    def __init__(self, *args: object, signum: int = signal.SIGTERM) -> None:
        super().__init__(*args)
        self.signum = signum


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    _received.append(signum)
    raise stop_exception(signum)


def stop_exception(signum: int) -> KeyboardInterrupt:
    """The exception that stands for stop signal `signum`: KeyboardInterrupt for SIGINT,
    Terminated for any other (SIGTERM)."""
    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    return Terminated(f"terminated ({signal.Signals(signum).name})", signum=signum)


def received() -> int | None:
    """The first stop signal received since `handled()` was entered, or None."""
    return _received[0] if _received else None


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """SIGINT and SIGTERM raise (see the module docstring) while the block runs; the
    previous handlers come back after it. Outside the main thread (where Python
    allows no handler) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    _received.clear()
    try:
        for signum in STOP_SIGNALS:
            signal.signal(signum, _raise_stop)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        _received.clear()


def _chain(err: BaseException) -> Iterator[BaseException]:
    """`err`, then its causes and contexts (each once: a chain may loop)."""
    seen: set[int] = set()
    todo = [err]
    while todo:
        exc = todo.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        todo.extend(e for e in (exc.__context__, exc.__cause__) if e is not None)


def stop_signal(err: BaseException, arrived: int | None) -> int | None:
    """The signal that stopped the run `err` ended, or None when it was not stopped.

    `arrived`: the stop signal received during the run, if any (`received()`):
    it wins, whatever `err` is (a Beam worker killed by the same Ctrl-C fails with an
    error of its own). Else a KeyboardInterrupt in `err`'s cause/context chain, or a
    message that starts with "KeyboardInterrupt" (Beam's wrapping, which may cross a
    process boundary as text only), means SIGINT (SIGTERM for a Terminated).
    """
    if arrived is not None:
        return arrived
    for exc in _chain(err):
        if isinstance(exc, Terminated):
            return exc.signum
        if isinstance(exc, KeyboardInterrupt) or str(exc).startswith(INTERRUPT_MESSAGE):
            return signal.SIGINT
    return None


def reraise_if_stopped(err: BaseException) -> None:
    """Raise the stop's exception (from `err`) when `err` means the run was stopped;
    `err`'s traceback goes to the log (the run's log during `mtrec run`)."""
    signum = stop_signal(err, received())
    if signum is not None:
        logging.getLogger(__name__).warning("the run was stopped by %s",
                                            signal.Signals(signum).name, exc_info=err)
        raise stop_exception(signum) from err


def exit_code(stop: KeyboardInterrupt) -> int:
    """128 + the signal number, as a shell reports a process the signal ended."""
    return 128 + (stop.signum if isinstance(stop, Terminated) else signal.SIGINT)


def stop_line(stop: KeyboardInterrupt) -> str:
    """The stop in words: interrupted (Ctrl-C, SIGINT) or terminated (SIGTERM)."""
    if isinstance(stop, Terminated):
        return f"terminated ({signal.Signals(stop.signum).name})"
    return "interrupted"


@contextlib.contextmanager
def on_stop(cleanup: Callable[[], object], what: str) -> Iterator[None]:
    """Run `cleanup` when the block is stopped (a KeyboardInterrupt, Terminated included,
    leaves it), then let the stop go on. An error in `cleanup`, or a second Ctrl-C while
    it runs, is one line on stderr ("<what> not done: ..."), not a traceback."""
    try:
        yield
    except KeyboardInterrupt:
        try:
            cleanup()
        except (Exception, KeyboardInterrupt) as err:
            why = (stop_line(err) + " again" if isinstance(err, KeyboardInterrupt)
                   else f"{type(err).__name__}: {err}")
            print(f"{what} not done ({why})", file=sys.stderr)
        raise
