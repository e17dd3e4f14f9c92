"""Test seams: environment variables that slow a run down or crash a worker on purpose, so that
tests can interrupt a run midway or kill a Dask worker. Read here only; unset in normal use.

- SIMULATOR_TASK_DELAY=<seconds>: wait this long after each task of a run here has finished.
- SIMULATOR_REPORT_DELAY=<seconds>: wait this long before a report's figures are drawn.
- SIMULATOR_REPORT_READY=<file>: create this file just before that wait, so that a test interrupts
  the wait itself (a Ctrl-C that lands inside an import's lock callback is dropped by Python).
- SIMULATOR_CRASH_ONCE=<file>: the first Dask task to find no such file creates it and kills its worker.
- SIMULATOR_CRASH_ALWAYS=1: every Dask task kills its worker (all workers lost).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

TASK_DELAY = "SIMULATOR_TASK_DELAY"
REPORT_DELAY = "SIMULATOR_REPORT_DELAY"
REPORT_READY = "SIMULATOR_REPORT_READY"
CRASH_ONCE = "SIMULATOR_CRASH_ONCE"
CRASH_ALWAYS = "SIMULATOR_CRASH_ALWAYS"


def _wait(variable: str) -> None:
    delay = os.environ.get(variable)
    if delay:
        time.sleep(float(delay))


def after_task() -> None:
    """Wait SIMULATOR_TASK_DELAY seconds, if set."""
    _wait(TASK_DELAY)


def before_report() -> None:
    """Create SIMULATOR_REPORT_READY's file and wait SIMULATOR_REPORT_DELAY seconds, each if set."""
    ready = os.environ.get(REPORT_READY)
    if ready:
        Path(ready).touch()
    _wait(REPORT_DELAY)


def on_worker_task(task: object) -> None:
    """Kill this worker process if SIMULATOR_CRASH_ALWAYS is set, or if SIMULATOR_CRASH_ONCE names a
    file that does not exist yet (creating it)."""
    if os.environ.get(CRASH_ALWAYS):
        os._exit(1)
    marker = os.environ.get(CRASH_ONCE)
    if marker and not os.path.exists(marker):
        Path(marker).write_text(str(task))
        os._exit(1)
