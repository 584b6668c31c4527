"""Ctrl-C and SIGTERM stop `mtrec run` as a cancel (exit 130 / 143), never as a failure.

A user's probe: Ctrl-C during Transform printed "Transform FAILED ... pipeline failed"
and exited 1 (Beam wraps the KeyboardInterrupt into a RuntimeError); SIGTERM killed the
run with no word, leaving the previous run's summary.json and report.html as the latest.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import mtrec.commands.add_items as command
from mtrec import stop_signals
from mtrec.cli import main
from mtrec.stop_signals import Terminated, handled, on_stop, stop_signal
from mtrec.summary import SUMMARY_FILE

BEAM_WRAPPED = "KeyboardInterrupt [while running 'Analyze/RunPhase[0]/BatchAnalyzerInputs']"
RESUME = ("(run it again to resume: finished components come from the cache, "
          "unless mtrec's code changed since the last finished run)")


def _raised(make: Callable[[], object]) -> BaseException:
    """The exception `make()` raises, with its chain as Python builds it."""
    try:
        make()
    except BaseException as err:
        return err
    raise AssertionError("nothing raised")


def _beam_wrapped() -> None:
    """What apache_beam's _reraise_augmented makes of a bare KeyboardInterrupt."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as err:
        raise RuntimeError(BEAM_WRAPPED) from err


def test_an_interrupt_in_the_cause_chain_is_a_stop():
    assert stop_signal(_raised(_beam_wrapped), None) == signal.SIGINT
    outer = _raised(lambda: _raise_from(ValueError("launcher"), _raised(_beam_wrapped)))
    assert stop_signal(outer, None) == signal.SIGINT  # two links down


def _raise_from(err: BaseException, cause: BaseException) -> None:
    raise err from cause


def test_an_interrupt_in_the_context_chain_is_a_stop():
    def in_handler() -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("while stopping")  # noqa: B904

    err = _raised(in_handler)
    assert err.__cause__ is None and isinstance(err.__context__, KeyboardInterrupt)
    assert stop_signal(err, None) == signal.SIGINT


def test_beams_message_alone_is_a_stop():
    """Across Beam's process boundary only the text survives: no chain to follow."""
    err = RuntimeError(BEAM_WRAPPED)
    assert err.__cause__ is None and err.__context__ is None
    assert stop_signal(err, None) == signal.SIGINT


def test_a_terminated_in_the_chain_is_sigterm():
    err = _raised(lambda: _raise_from(RuntimeError("x"), Terminated("terminated [while x]")))
    assert stop_signal(err, None) == signal.SIGTERM


def test_an_unrelated_error_is_no_stop():
    assert stop_signal(ValueError("bad rating"), None) is None
    assert stop_signal(RuntimeError("worker failed: interrupted KeyboardInterrupt"), None) is None
    assert stop_signal(_raised(lambda: _raise_from(ValueError("a"), OSError("b"))), None) is None


def test_a_received_signal_wins_over_any_error():
    """Ctrl-C also reaches Beam's worker processes: the main process may first see a
    worker's failure that carries no KeyboardInterrupt at all."""
    worker = RuntimeError("SDK worker exited with code 1")
    assert stop_signal(worker, signal.SIGTERM) == signal.SIGTERM
    assert stop_signal(worker, signal.SIGINT) == signal.SIGINT
    assert stop_signal(RuntimeError(BEAM_WRAPPED), signal.SIGTERM) == signal.SIGTERM


def _wait_for_signal() -> None:
    for _ in range(100):  # the handler runs at the next bytecode: at once, in practice
        time.sleep(0.01)
    raise AssertionError("no signal handled")


def test_sigterm_raises_terminated_and_the_old_handlers_come_back():
    seen = []

    def previous(signum, _frame):
        seen.append(signum)

    old_int = signal.getsignal(signal.SIGINT)
    old_term = signal.signal(signal.SIGTERM, previous)
    try:
        with pytest.raises(Terminated) as stop, handled():
            assert stop_signals.received() is None
            os.kill(os.getpid(), signal.SIGTERM)
            _wait_for_signal()
        assert isinstance(stop.value, KeyboardInterrupt) and stop.value.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is previous
        assert signal.getsignal(signal.SIGINT) is old_int
        assert stop_signals.received() is None  # this run's, not the next one's
        os.kill(os.getpid(), signal.SIGTERM)  # the previous handler again
        for _ in range(100):
            if seen:
                break
            time.sleep(0.01)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, old_term)


def test_sigint_raises_a_plain_keyboard_interrupt_and_is_recorded():
    got = {}
    with pytest.raises(KeyboardInterrupt) as stop, handled():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            _wait_for_signal()
        finally:
            got["received"] = stop_signals.received()
    assert type(stop.value) is KeyboardInterrupt
    assert got["received"] == signal.SIGINT
    assert (stop_signals.exit_code(stop.value), stop_signals.stop_line(stop.value)) == (
        130, "interrupted")
    term = Terminated("terminated (SIGTERM) [while running 'x']")  # as Beam rebuilds it
    assert (stop_signals.exit_code(term), stop_signals.stop_line(term)) == (
        143, "terminated (SIGTERM)")


def test_outside_the_main_thread_nothing_is_installed():
    before = signal.getsignal(signal.SIGTERM)
    errors = []

    def run() -> None:
        try:
            with handled():
                errors.append(signal.getsignal(signal.SIGTERM) is before)
        except Exception as err:  # signal.signal raises ValueError off the main thread
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert errors == [True]


@pytest.mark.parametrize("trouble, says", [
    (KeyboardInterrupt(), "report not done (interrupted again)"),
    (ValueError("disk full"), "report not done (ValueError: disk full)"),
])
def test_a_failing_cleanup_after_a_stop_is_one_line(trouble, says, capsys):
    """A second Ctrl-C while the report is rebuilt, or its error: one line, no traceback."""
    def cleanup() -> None:
        raise trouble

    with pytest.raises(Terminated), on_stop(cleanup, "report"):
        raise Terminated("terminated (SIGTERM)")
    assert capsys.readouterr().err == says + "\n"


def _stale_summary(home: Path) -> Path:
    home.mkdir()
    stale = home / SUMMARY_FILE
    stale.write_text(json.dumps({"run": "an earlier one"}))
    return stale


def test_a_beam_wrapped_interrupt_is_reported_as_interrupted_not_failed(
        tmp_path: Path, monkeypatch, capfd):
    from mtrec.pipeline import local_runner

    monkeypatch.setattr(local_runner, "run", lambda *_a, **_k: _beam_wrapped())
    stale = _stale_summary(tmp_path / "home")
    assert main(["run", "--home", str(tmp_path / "home"), "--no-text-encoder"]) == 130
    out, err = capfd.readouterr()
    assert "FAILED" not in out + err and "pipeline failed" not in err
    assert "Traceback" not in out + err
    assert err.endswith(f"\ninterrupted {RESUME}\n")
    assert not stale.exists()
    assert signal.getsignal(signal.SIGTERM) is not stop_signals._raise_stop  # restored


def test_a_worker_failure_after_sigterm_is_reported_as_terminated(
        tmp_path: Path, monkeypatch, capfd):
    """The signal, handled in the main process, then a Beam worker's failure with no
    KeyboardInterrupt in it: still a stop, with SIGTERM's exit code."""
    from mtrec.pipeline import local_runner

    before = signal.getsignal(signal.SIGTERM)

    def worker_fails(*_args, **_kwargs) -> None:
        if signal.getsignal(signal.SIGTERM) == before:  # SIGTERM would end pytest itself
            raise RuntimeError("`mtrec run` installed no SIGTERM handler")
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            _wait_for_signal()
        except Terminated:
            pass  # as if it had landed where a library swallows it
        raise RuntimeError("SDK worker exited with code 1")

    monkeypatch.setattr(local_runner, "run", worker_fails)
    assert main(["run", "--home", str(tmp_path / "home"), "--no-text-encoder"]) == 143
    out, err = capfd.readouterr()
    assert "FAILED" not in out + err and "pipeline failed" not in err
    assert err.endswith(f"\nterminated (SIGTERM) {RESUME}\n")


def test_other_failures_still_fail(tmp_path: Path, monkeypatch, capfd):
    from mtrec.pipeline import local_runner

    def fails(*_args, **_kwargs) -> None:
        raise RuntimeError("worker failed")

    monkeypatch.setattr(local_runner, "run", fails)
    assert main(["run", "--home", str(tmp_path / "home"), "--no-text-encoder"]) == 1
    assert "pipeline failed" in capfd.readouterr().err


STARTED = re.compile(r"\] (Transform|Trainer) started$")
E2E_TIMEOUT_S = 240  # to Transform's start: ~20 s on an idle 2-core box


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


@pytest.mark.e2e
def test_sigterm_during_a_run_is_a_terminated_run_with_its_report(tmp_path: Path):
    """The real `mtrec run` on the embedded sample, sent SIGTERM once Transform (a Beam
    component) runs: exit 143, one "terminated" line, no traceback, no summary.json
    of the earlier run, and a report that shows this run stopped."""
    home = tmp_path / "home"
    stale = _stale_summary(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mtrec.cli", "run", "--home", str(home), "--no-text-encoder"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    out: queue.Queue = queue.Queue()
    err: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, out), daemon=True).start()
    threading.Thread(target=_lines, args=(proc.stderr, err), daemon=True).start()
    shown: list[str] = []
    try:
        deadline = time.monotonic() + E2E_TIMEOUT_S
        while not any(STARTED.search(line.rstrip()) for line in shown):
            line = out.get(timeout=max(deadline - time.monotonic(), 0.1))
            assert line is not None, f"the run ended first: {''.join(shown)}"
            shown.append(line)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    shown += list(iter(out.get, None))
    errors = "".join(iter(err.get, None))
    console = "".join(shown) + errors
    assert code == 143, console
    assert errors.endswith(f"\nterminated (SIGTERM) {RESUME}\n"), console
    assert "Traceback" not in console and "FAILED" not in console, console
    assert not stale.exists()
    report = (home / "report.html").read_text()
    assert "did not run" in report  # this run, stopped: the Trainer (at least) never ran


def test_sigterm_stops_add_items_as_a_cancel(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """SIGTERM killed add-items at once, and its work folder stayed in the home; now it
    stops as `run` does, so its cleanup (a `finally`) runs and it says so."""
    cleaned: list[bool] = []

    def adding(_args: object) -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            return 0
        finally:
            cleaned.append(True)

    monkeypatch.setattr(command, "run_add_items", adding)
    assert main(["add-items", "--items", "x.csv"]) == 128 + signal.SIGTERM
    assert cleaned == [True]
    assert capsys.readouterr().err.strip() == "terminated (SIGTERM)"
