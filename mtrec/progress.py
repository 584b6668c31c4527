"""Progress lines meant for the person running mtrec, whatever runs the code.

Code that has progress to show (the Trainer's epochs, a benchmark loop) logs it
to one logger, `PROGRESS_LOGGER`, through `report()`. Under `mtrec run` the
console (mtrec/console.py) prints those records on the terminal while every
other library's output goes to the run's log file; anywhere else (a Vertex
job, a test) they are ordinary INFO log records. So components never write to
the terminal themselves and never need to know where they run.
"""

from __future__ import annotations

import logging

PROGRESS_LOGGER = "mtrec.progress"
# The `extra` key of a record with a known length: (done, total, label).
STEP_FIELD = "mtrec_step"

_log = logging.getLogger(PROGRESS_LOGGER)


def report(message: str, *, done: int | None = None, total: int | None = None,
           label: str = "") -> None:
    """Log one progress line; `done`/`total` let a terminal draw a progress bar."""
    extra = {STEP_FIELD: (done, total, label)} if done is not None and total else None
    _log.info(message, extra=extra)
