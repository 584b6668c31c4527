"""What a run that stopped left behind: the components it never started, and the failed
component's error, read back from the run's log.

ML Metadata records a failed execution's state but not its error, and nothing at all
for the components the run never reached, so the report said "not recorded" where the
answer was "the Trainer failed". TFX's launcher logs "Execution <id> failed." when a
component fails (the id is ML Metadata's), and `mtrec run` then writes the
exception's traceback into the same log (console.py); the execution id finds this
run's failure even in a log that earlier runs of the home appended to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from mtrec.contracts import pipeline as P
from mtrec.run_state import FAILED, RUNNING, NodeRun

# The components a run starts, in order. SchemaGen and AnomalyGate have no contract
# name, and the TextEncoder is optional (--no-text-encoder, items without text) with
# nothing recorded to tell: none of the three is named when it did not run.
PIPELINE_NODES = (P.EXAMPLE_GEN, P.CATALOG_GEN, P.STATISTICS_GEN, P.SCHEMA_GEN,
                  P.EXAMPLE_VALIDATOR, P.BASELINE_RESOLVER, P.TRANSFORM, P.TRAINER,
                  P.RETRIEVAL_EVALUATOR, P.EVALUATOR, P.PUSHER)
# The start of a line console.py's log formatter writes ("%(asctime)s %(levelname)s ..."):
# a traceback has ended when one follows it.
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
# A traceback's last line: the exception's (dotted) class name, then its message.
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Iteration|Failure)"
                            r"(: .*)?$")
TRACEBACK = "Traceback (most recent call last)"
MAX_CHARS = 300  # a message longer than a line is cut: the log has all of it


def not_run(nodes: Mapping[str, NodeRun]) -> list[str]:
    """The pipeline's components that a stopped run (one failed or still RUNNING: killed)
    never started; [] for a run that did not stop, where an absent component was left
    out on purpose (TFMA after a refused retrieval gate)."""
    if not any(node.state in (FAILED, RUNNING) for node in nodes.values()):
        return []
    return [node for node in PIPELINE_NODES if node not in nodes]


def error_line(lines: Iterable[str], execution_id: int) -> str | None:
    """The last line of the error that failed execution `execution_id`: the exception
    line of the traceback logged after TFX's "Execution <id> failed."; None if the log
    holds no such traceback (a run killed before it could write one)."""
    failed = re.compile(rf"\bExecution {execution_id} failed\b")
    found = in_traceback = False
    last = None
    for line in lines:
        line = line.rstrip("\n")
        if not found:
            found = bool(failed.search(line))
        elif line.startswith(TRACEBACK):
            in_traceback = True  # again for a chained exception: its last line wins
        elif in_traceback and LOG_RECORD.match(line):
            break
        elif in_traceback and EXCEPTION_LINE.match(line):
            last = line
    if last is not None and len(last) > MAX_CHARS:
        return last[:MAX_CHARS] + "…"
    return last


def failed_error(nodes: Mapping[str, NodeRun], log_path: str | None) -> str | None:
    """The failed component's error from the run log at `log_path`; None without a failed
    execution, a log, or a traceback in it."""
    failed = [node.execution for node in nodes.values()
              if node.state == FAILED and node.execution is not None]
    if not failed or not log_path:
        return None
    try:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            return error_line(log, failed[0].id)
    except OSError:  # unreadable: the page still points to the log
        return None
