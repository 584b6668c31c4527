"""The terminal during `mtrec run`: progress lines on the console, library noise in a log.

Before this, a successful run printed about 480 lines with 74 harmless
tracebacks (issue 20): absl/TF C++ logs, Beam worker chatter, google-api-core
FutureWarnings and `AtomicFunction.__del__` errors at worker exit. They come
from C++ and from Beam's worker subprocesses as much as from Python, so
redirecting `sys.stderr` is not enough: `RunConsole` points file descriptors 1
and 2 at `<home>/logs/run.log` (children inherit them) and keeps a duplicate of
the real terminal for its own lines. `verbose=True` leaves the descriptors
alone, so everything streams as before, progress lines included.

On the terminal:
- one line when each pipeline component starts and one when it finishes, with
  the elapsed time, `CACHED` when TFX took its outputs from the cache and
  `FAILED` (then the error in full) when it raised; a component done within
  START_LINE_AFTER_SECONDS gets its finish line only;
- the progress lines of mtrec.progress (the Trainer's epochs) and the text
  encoder's MLM and encoding lines, with a progress bar on a real terminal.

Component boundaries come from TFX's own LocalDagRunner/launcher log records
(their format strings are matched, not scraped text); tests/test_console.py
runs a real LocalDagRunner twice to pin them to the TFX version in the lock.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
import traceback
from typing import IO, TYPE_CHECKING

from absl import logging as absl_logging
from tqdm import tqdm

from mtrec.progress import PROGRESS_LOGGER, STEP_FIELD

if TYPE_CHECKING:
    from collections.abc import Callable

LOG_DIR = "logs"
LOG_FILE = "run.log"

# Inherited by Beam's worker subprocesses (unless the user set them): TF's and
# gRPC's C++ logs at errors only. Everything else the children print lands in
# the log through the inherited descriptors.
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "GRPC_VERBOSITY": "ERROR"}

# tfx/orchestration/local/local_dag_runner.py and portable/launcher.py (TFX 1.16).
_TFX_START = "Component %s is running."
_TFX_FINISH = "Component %s is finished."
_TFX_CACHED = "A cached execution %d is used."
# The launcher's line for a node whose inputs resolve to Skip: a false Cond (the
# gate chain: TFMA and the Pusher after a refused model).
_TFX_SKIPPED = "Skipping execution for %s"
# components/text_encoder logs through absl; its MLM and encoding lines are
# shown (the rest stays in the log), step lines ("%d/%d": MLM steps, texts encoded
# on a large catalogue) only at each quarter: 4 lines, not 15.
_TEXT_ENCODER_SHOWN = ("TextEncoder MLM", "TextEncoder: encoded", "TextEncoder encoding")
_STEP_FORMAT = "%d/%d"
# A component done sooner than this gets one line ("done"/"CACHED"), not two:
# on a cached re-run most of the 14 nodes take under a second.
START_LINE_AFTER_SECONDS = 2.0


def log_path(home: str) -> str:
    return os.path.join(home, LOG_DIR, LOG_FILE)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def _positional(record: logging.LogRecord) -> tuple:
    """The record's %-arguments (the messages read here take them by position)."""
    return record.args if isinstance(record.args, tuple) else ()


class _Records(logging.Handler):
    """Turns TFX, text-encoder and mtrec.progress log records into console lines."""

    def __init__(self, console: RunConsole) -> None:
        super().__init__(logging.INFO)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.name == PROGRESS_LOGGER:
                self.console.line(record.getMessage(), getattr(record, STEP_FIELD, None))
            elif record.msg == _TFX_START:
                self.console.component_started(str(_positional(record)[0]))
            elif record.msg == _TFX_FINISH:
                self.console.component_finished(str(_positional(record)[0]))
            elif record.msg == _TFX_CACHED:
                self.console.cached = True
            elif record.msg == _TFX_SKIPPED:
                self.console.skipped = True
            elif isinstance(record.msg, str) and record.msg.startswith(_TEXT_ENCODER_SHOWN):
                if _STEP_FORMAT in record.msg:
                    before = record.msg.split(_STEP_FORMAT)[0].count("%")
                    done, total = _positional(record)[before:before + 2]
                    label = "MLM" if "MLM" in record.msg else "encode"
                    self.console.quarter_step("  " + record.getMessage(), int(done), int(total),
                                              label)
                else:
                    self.console.line("  " + record.getMessage())
        except Exception:  # a progress line must never fail the run
            self.handleError(record)


class RunConsole:
    """Context manager around one pipeline run; see the module docstring.

    `terminal`: where console lines go (default: the process's real stdout).
    """

    def __init__(self, home: str, *, verbose: bool = False, terminal: IO[str] | None = None,
                 ) -> None:
        self.home = home
        self.verbose = verbose
        self.log_path = log_path(home)
        self._given_terminal = terminal
        self._terminal: IO[str]  # the given one, or a copy of stdout's fd: set on entry
        self._saved_fds: list[int] = []
        self._streams: tuple[IO[str], IO[str]] | None = None
        self._handler = _Records(self)
        self._loggers: list[tuple[logging.Logger, int]] = []
        self._env: dict[str, None] = {}
        self._bar: tqdm | None = None
        self.start = time.monotonic()
        self.running: str | None = None
        self.running_since = 0.0
        self.cached = self.skipped = False
        self._started_shown = True
        self._timer: threading.Timer | None = None
        self._quarter = 0
        self._quarter_of: tuple[str, int] | None = None  # (label, total) being counted
        # Lines come from the run's thread and from the start-line timer.
        self._lock = threading.RLock()

    # ------------------------------------------------------------ set-up
    def __enter__(self) -> RunConsole:
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        given = self._given_terminal
        self._owns_terminal = given is None
        self._terminal = (os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
                          if given is None else given)
        self._log = open(self.log_path, "a", buffering=1)  # closed in __exit__
        if not self.verbose:
            for name, value in QUIET_ENV.items():
                if name not in os.environ:
                    self._env[name] = None
                    os.environ[name] = value
            for fd in (1, 2):
                self._saved_fds.append(os.dup(fd))
                os.dup2(self._log.fileno(), fd)
            # Python-level writers too, in case sys.stdout is not fd 1 (pytest, notebooks).
            self._streams = (sys.stdout, sys.stderr)
            sys.stdout = sys.stderr = self._log
        # Python logging: into the log always; off the terminal unless verbose.
        root = logging.getLogger()
        self._root_handlers = list(root.handlers)
        if not self.verbose:
            for handler in self._root_handlers:
                if type(handler) is logging.StreamHandler:
                    root.removeHandler(handler)
        self._file_handler = logging.StreamHandler(self._log)
        self._file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(self._file_handler)
        logging.captureWarnings(True)
        # Through absl's flag, not the logger's level: every SavedModel save
        # (tf AutoTrackable) resets the logger to absl.logging.get_verbosity(),
        # the flag, which would silence TFX's records after the first export.
        self._absl_verbosity = absl_logging.get_verbosity()
        absl_logging.set_verbosity(absl_logging.INFO)
        for name in ("absl", PROGRESS_LOGGER):
            logger = logging.getLogger(name)
            self._loggers.append((logger, logger.level))
            logger.setLevel(logging.INFO)
            logger.addHandler(self._handler)
        self.line(f"library output -> {self.log_path}"
                  + ("" if self.verbose else " (--verbose streams it)"))
        return self

    def __exit__(self, *exc: object) -> None:
        # Finalizers (AtomicFunction.__del__ and friends) print while the log
        # still holds fd 2; later ones (interpreter exit) go to the log too.
        gc.collect()
        if self._timer is not None:
            self._timer.cancel()
        self._close_bar()
        for logger, level in self._loggers:
            logger.removeHandler(self._handler)
            logger.setLevel(level)
        absl_logging.set_verbosity(self._absl_verbosity)
        logging.captureWarnings(False)
        root = logging.getLogger()
        root.removeHandler(self._file_handler)
        for handler in self._root_handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        sys.stdout.flush()
        sys.stderr.flush()
        if self._streams:
            sys.stdout, sys.stderr = self._streams
        for fd, saved in zip((1, 2), self._saved_fds, strict=False):
            os.dup2(saved, fd)
            os.close(saved)
        for name in self._env:
            os.environ.pop(name, None)
        if not self.verbose:
            sys.unraisablehook = _unraisable_to(self.log_path)
        self._log.close()
        if self._owns_terminal:
            self._terminal.close()

    # ------------------------------------------------------------ output
    def line(self, text: str, step: tuple[int | None, int | None, str] | None = None,
             at: float | None = None) -> None:
        """Print one line on the terminal (above the progress bar, if one is drawn).

        `at`: the monotonic time to stamp it with (default: now).
        """
        with self._lock:
            if at is None:
                self._show_started()
            when = time.monotonic() if at is None else at
            stamped = f"[{_clock(when - self.start)}] {text}"
            if self._bar is not None:
                self._bar.write(stamped, file=self._terminal)
            else:
                print(stamped, file=self._terminal, flush=True)
            if step is not None:
                self._advance(*step)

    def quarter_step(self, text: str, done: int, total: int, label: str) -> None:
        """A step line shown only when `done` enters a new quarter of `total`; a bar for all."""
        quarter = 4 * done // total
        with self._lock:
            if (label, total) != self._quarter_of:  # a new count: MLM, then encoding
                self._quarter_of, self._quarter = (label, total), 0
            if quarter > self._quarter:
                self._quarter = quarter
                self.line(text, (done, total, label))
            else:
                self._advance(done, total, label)

    def _advance(self, done: int | None, total: int | None, label: str) -> None:
        if not (done and total) or not self._terminal.isatty():
            return  # a file or a pipe gets the lines only, no carriage returns
        if self._bar is None or self._bar.total != total:
            self._close_bar()
            self._bar = tqdm(total=total, desc=label, file=self._terminal, leave=False,
                             dynamic_ncols=True)
        self._bar.update(done - self._bar.n)
        if done >= total:
            self._close_bar()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ------------------------------------------------------------ components
    def component_started(self, node_id: str) -> None:
        with self._lock:
            self.running, self.running_since = node_id, time.monotonic()
            self.cached = self.skipped = False
            self._started_shown, self._quarter = False, 0
            self._timer = threading.Timer(START_LINE_AFTER_SECONDS, self._show_started)
            self._timer.daemon = True
            self._timer.start()

    def _show_started(self) -> None:
        """The pending "X started" line, stamped with its start time (once)."""
        with self._lock:
            if self.running and not self._started_shown:
                self._started_shown = True
                self.line(f"{self.running} started", at=self.running_since)

    def component_finished(self, node_id: str) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            seconds = time.monotonic() - self.running_since
            self._close_bar()
            self._started_shown = True  # a quick component: this one line says it all
            if self.skipped:
                self.line(f"{node_id} skipped (a gate before it refused the model)")
            else:
                self.line(f"{node_id} {'CACHED' if self.cached else 'done'} in {seconds:.1f}s")
            self.running = None

    def failure(self, err: BaseException) -> str:
        """Report a failed run: the component, the error in full; the traceback to the log.

        Returns a one-line reason for the caller's last line.
        """
        if self._timer is not None:
            self._timer.cancel()
        self._close_bar()
        where = self.running or "the pipeline"
        self._log.write("".join(traceback.format_exception(type(err), err, err.__traceback__)))
        seconds = time.monotonic() - self.running_since if self.running else 0.0
        self.line(f"{where} FAILED after {seconds:.1f}s")
        print(f"error in {where}: {type(err).__name__}: {err}", file=self._terminal)
        print(f"traceback: {self.log_path}", file=self._terminal, flush=True)
        return (f"{where} failed with {type(err).__name__} "
                f"(error above, traceback in {self.log_path})")


def _unraisable_to(path: str) -> Callable[[sys.UnraisableHookArgs], None]:
    """A sys.unraisablehook that appends to the run's log instead of the terminal."""

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        try:
            with open(path, "a") as f:
                f.write(f"{unraisable.err_msg or 'Exception ignored in'}: {unraisable.object!r}\n")
                traceback.print_exception(unraisable.exc_type, unraisable.exc_value,
                                          unraisable.exc_traceback, file=f)
        except Exception:  # interpreter shutdown: drop it rather than print it
            pass

    return hook
