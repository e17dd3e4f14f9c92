"""The test seams: each environment variable does what the module's docstring says, and nothing
happens when it is unset (normal use). Sleeps and exits are recorded, not taken."""
from __future__ import annotations

import pytest

from simulator.engine import faults

SEAMS = (faults.TASK_DELAY, faults.REPORT_DELAY, faults.REPORT_READY, faults.CRASH_ONCE, faults.CRASH_ALWAYS)


class Exited(Exception):
    """os._exit, recorded instead of taken."""


@pytest.fixture
def calls(monkeypatch):
    """No seam set; time.sleep and os._exit recorded (an exit raises Exited)."""
    for name in SEAMS:
        monkeypatch.delenv(name, raising=False)
    made = []

    def exit_(code):
        made.append(("exit", code))
        raise Exited(code)

    monkeypatch.setattr(faults.time, "sleep", lambda seconds: made.append(("sleep", seconds)))
    monkeypatch.setattr(faults.os, "_exit", exit_)
    return made


def test_the_variables_are_the_documented_ones():
    assert SEAMS == ("SIMULATOR_TASK_DELAY", "SIMULATOR_REPORT_DELAY", "SIMULATOR_REPORT_READY",
                     "SIMULATOR_CRASH_ONCE", "SIMULATOR_CRASH_ALWAYS")


def test_unset_seams_do_nothing(calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    faults.after_task()
    faults.before_report()
    faults.on_worker_task(("cell", 0))
    assert calls == [] and list(tmp_path.iterdir()) == []


def test_the_delays_wait_the_seconds_given(calls, monkeypatch):
    monkeypatch.setenv(faults.TASK_DELAY, "0.3")
    faults.after_task()
    monkeypatch.setenv(faults.REPORT_DELAY, "2")
    faults.before_report()
    assert calls == [("sleep", 0.3), ("sleep", 2.0)]


def test_the_ready_file_exists_before_the_wait(calls, tmp_path, monkeypatch):
    """A test interrupts the wait itself: the file is there by the time the wait begins."""
    ready = tmp_path / "drawing"
    monkeypatch.setenv(faults.REPORT_READY, str(ready))
    monkeypatch.setenv(faults.REPORT_DELAY, "300")
    seen = []
    monkeypatch.setattr(faults.time, "sleep", lambda seconds: seen.append((ready.exists(), seconds)))
    faults.before_report()
    assert seen == [(True, 300.0)]


def test_crash_once_kills_the_first_worker_only(calls, tmp_path, monkeypatch):
    """The first task finds no marker, writes its task into it and exits with status 1; later tasks
    find the marker and run."""
    marker = tmp_path / "crashed"
    monkeypatch.setenv(faults.CRASH_ONCE, str(marker))
    with pytest.raises(Exited):
        faults.on_worker_task((0, 0, 4, 0, 100))
    assert calls == [("exit", 1)] and marker.read_text() == "(0, 0, 4, 0, 100)"
    faults.on_worker_task((0, 4, 8, 0, 100))
    assert calls == [("exit", 1)] and marker.read_text() == "(0, 0, 4, 0, 100)"


def test_crash_always_kills_every_worker(calls, monkeypatch):
    monkeypatch.setenv(faults.CRASH_ALWAYS, "1")
    for task in range(3):
        with pytest.raises(Exited):
            faults.on_worker_task(task)
    assert calls == [("exit", 1)] * 3
