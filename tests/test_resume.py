"""--resume trusts only this run's intact checkpoints, and a folder holds one run at a time: real
subprocesses, interrupted by signals."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from simulator.results import dataset

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

SCENARIO = """
[run]
name = "resume"
seed = 5
paths = 30
horizon_months = 12

[applicants]
monthly_volume = 300
origination_months = 6

[engine]
task_paths = 1

[book]
file = "book.csv"
"""
BOOK = """product,principal,apr,term_months,method,months_on_book,state,overdue,pd_12m
jiebei,8000,0.18,12,equal_installment,3,current,,0.03
jiebei,2500,0.12,6,equal_principal,1,M2,800,0.2
"""
SLOW = os.environ | {"SIMULATOR_TASK_DELAY": "0.3"}


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    (tmp_path / "book.csv").write_text(BOOK)
    path = tmp_path / "resume.toml"
    path.write_text(SCENARIO)
    return path


def start(scenario: Path, out: Path, *extra: str, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "simulator", "run", str(scenario), "--out", str(out), "--quiet",
                             "--no-report", "--threads", "1", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def interrupted(scenario: Path, out: Path, tasks: int = 4) -> None:
    """Start a slow run and kill it (SIGKILL: no clean-up at all) once `tasks` checkpoints are saved."""
    proc = start(scenario, out, env=SLOW)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / ".checkpoint").glob("*.npz"))) < tasks and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)


def clean_run(scenario: Path, out: Path) -> xr.Dataset:
    code, err = finish(start(scenario, out))
    assert code == 0, err
    return dataset.read(out / "results.nc")


def test_a_changed_book_is_not_resumed(scenario, tmp_path):
    out = tmp_path / "out"
    interrupted(scenario, out)
    (tmp_path / "book.csv").write_text(BOOK.replace("8000", "9000"))
    code, err = finish(start(scenario, out, "--resume"))
    assert code == 2 and err.count("\n") == 1 and "--resume" in err and "another run's" in err
    assert not (out / "results.nc").exists()


def test_damaged_checkpoints_are_recomputed(scenario, tmp_path):
    """Tampered values, arrays reduced to scalars (with a matching checksum), a truncated and an empty
    file: each is recomputed, and the resumed run equals a clean one."""
    from simulator.engine import checkpoints

    out = tmp_path / "out"
    interrupted(scenario, out, tasks=5)
    files = sorted((out / ".checkpoint").glob("*.npz"))
    assert len(files) >= 5
    with np.load(files[0]) as saved:
        arrays = {name: saved[name].copy() for name in saved.files}
    arrays["flows"][...] += 1                                              # tampered: checksum mismatch
    np.savez(files[0], **arrays)
    with np.load(files[1]) as saved:
        arrays = {name: saved[name] for name in saved.files}
    scalars = {n: np.asarray(7, dtype=np.int64) for n in arrays if not n.endswith("__")}
    scalars |= {"task__": arrays["task__"], "fingerprint__": arrays["fingerprint__"],
                "checksum__": np.asarray(checkpoints._checksum(scalars))}  # self-consistent, wrong shapes
    np.savez(files[1], **scalars)
    files[2].write_bytes(files[2].read_bytes()[: files[2].stat().st_size // 2])   # truncated
    files[3].write_bytes(b"")                                              # empty
    code, err = finish(start(scenario, out, "--resume"))
    assert code == 0, err
    xr.testing.assert_identical(dataset.read(out / "results.nc"), clean_run(scenario, tmp_path / "clean"))


def test_resume_needs_the_fingerprint(scenario, tmp_path):
    out = tmp_path / "out"
    interrupted(scenario, out)
    (out / ".checkpoint" / "fingerprint").unlink()
    code, err = finish(start(scenario, out, "--resume"))
    assert code == 2 and "no fingerprint" in err


def test_one_run_per_folder_and_a_killed_run_does_not_hold_it(scenario, tmp_path):
    out = tmp_path / "out"
    first = start(scenario, out, env=SLOW)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / ".run").exists() and first.poll() is None:
        time.sleep(0.05)
    second = start(scenario, out, "--set", "run.seed=6")
    code, err = finish(second)
    assert code == 2 and err.count("\n") == 1 and f"pid {first.pid}" in err and "Traceback" not in err
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    xr.testing.assert_identical(clean_run(scenario, out), clean_run(scenario, tmp_path / "clean"))
    assert not (out / ".run").exists() and not (out / ".checkpoint").exists()


def test_a_linked_checkpoint_folder_is_refused(scenario, tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    out.mkdir()
    (out / ".checkpoint").symlink_to(elsewhere, target_is_directory=True)
    code, err = finish(start(scenario, out))
    assert code == 2 and ".checkpoint" in err and "link" in err
    assert (elsewhere / "keep.txt").read_text() == "mine" and len(list(elsewhere.iterdir())) == 1


def test_a_checkpoint_that_cannot_be_saved_fails_the_run(scenario, tmp_path, monkeypatch):
    """Checkpoints are saved on a thread of their own while the next tasks run: a save that fails still
    fails the run, and no results are written."""
    import simulator
    from simulator.engine.checkpoints import Checkpoints

    def full(self, task, sums):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Checkpoints, "save", full)
    with pytest.raises(OSError, match="No space left"):
        simulator.run(simulator.load(scenario), out=tmp_path / "out", threads=1)
    assert not (tmp_path / "out" / "results.nc").exists()
