"""One command at a time in a run's home (pipeline/home_lock.py): a second `mtrec run` or
`mtrec add-items` in a home another live process is using stops at once, writing nothing;
the lock dies with its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtrec.cli import main
from mtrec.pipeline.home_lock import LOCK_FILE, HomeInUseError, home_lock, in_use, run_lock
from mtrec.pipeline.mlmd_store import open_store

HOLDER = """import sys, time
from mtrec.pipeline.home_lock import run_lock
with run_lock(sys.argv[1]) as sole:
    print(sole, flush=True)
    time.sleep(600)
"""


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen]]:
    """A home whose lock another process holds, as a run in progress does."""
    home = tmp_path / "home"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(home / LOCK_FILE)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        yield home, holder
    finally:
        holder.kill()
        holder.wait()


def test_a_second_process_is_refused_until_the_holder_dies(held) -> None:
    home, holder = held
    refused = pytest.raises(HomeInUseError, match=rf"is using {home} \(it holds {LOCK_FILE}\)"
                            ": wait for it to finish, or give another --home")
    with refused, home_lock(str(home)):
        pass
    holder.send_signal(signal.SIGKILL)  # killed, however: the kernel drops the flock
    holder.wait()
    with home_lock(str(home)):
        assert (home / LOCK_FILE).exists()


def test_mtrec_run_in_a_home_in_use_stops_before_ingestion(held, capsys) -> None:
    """Two runs in one home: the first to finish summarised the other's unfinished
    pipeline run ("nothing pushed", exit code 0) after pushing its own model."""
    home, _ = held
    assert main(["run", "--home", str(home)]) == 2
    assert f"error: another `mtrec run` or `mtrec add-items` is using {home}" in \
        capsys.readouterr().err
    assert os.listdir(home) == [LOCK_FILE]  # no rejects.csv, no examples


def test_add_items_in_a_home_in_use_is_refused(held, tmp_path: Path, capsys) -> None:
    home, _ = held
    (home / "metadata.sqlite").touch()  # an MLMD store: passes the quick check
    open_store(str(home / "metadata.sqlite"), writable=True)
    items = tmp_path / "new.csv"
    items.write_text("item_id,title\nn1,New (2021)\n")
    assert main(["add-items", "--home", str(home), "--items", str(items)]) == 2
    assert "is using" in capsys.readouterr().err


def test_a_new_home_left_empty_is_removed_and_one_written_to_is_kept(tmp_path: Path) -> None:
    """A run that stops before writing (a missing --path) left a home holding only the
    lock file."""
    empty, used = tmp_path / "outputs" / "empty", tmp_path / "used"
    with home_lock(str(empty)):
        assert (empty / LOCK_FILE).exists()
    assert not (tmp_path / "outputs").exists()  # nor the folder made above it
    (tmp_path / "kept").mkdir()
    with home_lock(str(tmp_path / "kept" / "home")):
        pass
    assert os.listdir(tmp_path / "kept") == []  # a folder that was there stays
    with home_lock(str(used)):
        (used / "rejects.csv").write_text("table\n")
    assert sorted(os.listdir(used)) == [LOCK_FILE, "rejects.csv"]
    with home_lock(str(used)):  # an existing home is never removed
        (used / "rejects.csv").unlink()
    assert os.listdir(used) == [LOCK_FILE]


def test_the_run_lock_is_exclusive_within_a_process_too(tmp_path: Path) -> None:
    lock = str(tmp_path / "home" / LOCK_FILE)
    with run_lock(lock) as first:
        assert first
        with run_lock(lock) as second:  # another open file: another run
            assert not second
    with run_lock(lock) as after:
        assert after


def test_a_report_while_a_run_holds_the_home_is_refused_unless_written_elsewhere(
        held, tmp_path: Path, capsys) -> None:
    """`mtrec report HOME` mid-run wrote HOME/report.html saying "nothing pushed: the run
    stopped before the Pusher" (exit 0), a page the run overwrites when it ends."""
    home, holder = held
    (home / "metadata.sqlite").touch()  # an MLMD store: passes the quick check
    open_store(str(home / "metadata.sqlite"), writable=True)
    assert in_use(str(home))
    assert main(["report", str(home)]) == 2
    assert capsys.readouterr().err == (
        f"error: a run is in progress in {home}: it writes {home / 'report.html'} when it "
        "ends (`--output FILE` writes a page now, with that run unfinished)\n")
    assert not (home / "report.html").exists()
    holder.kill()
    holder.wait()
    assert not in_use(str(home)) and not in_use(str(tmp_path / "nowhere"))
