"""Runs split into tasks: Dask workers, a worker that dies, checkpoints and --resume, Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr

from simulator.engine import checkpoints, simulation
from simulator.results import dataset
from simulator.model import terms
from simulator.config.loader import load_scenario

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end


SCENARIO = """
[run]
name = "tasks"
seed = 11
paths = 6
horizon_months = 15

[applicants]
monthly_volume = 800
origination_months = 10

[engine]
task_paths = 2
task_borrowers = 2500
"""


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "tasks.toml"
    path.write_text(SCENARIO)
    return path


def test_task_plan_does_not_change_results(scenario):
    loaded = load_scenario(scenario)
    one_task = simulation.simulate(load_scenario(scenario, ["engine.task_paths=100", "engine.task_borrowers=1000000"]))
    xr.testing.assert_identical(simulation.simulate(loaded).drop_attrs(), one_task.drop_attrs())
    assert len(simulation.plan_tasks(loaded.scenario, 6000)) == 3 * 3


def test_local_dask_cluster_gives_the_local_result(scenario):
    loaded = load_scenario(scenario)
    xr.testing.assert_identical(simulation.simulate(loaded), simulation.simulate(loaded, workers=2))


def test_summary_mode_with_importance_sampling_on_dask_gives_the_local_result(scenario):
    """The summary mode folds its weighted means path by path in order, so tasks finishing in any order
    on workers give the same bits."""
    loaded = load_scenario(scenario, ['run.results="summary"', "capital.importance_quantile=0.99"])
    xr.testing.assert_identical(simulation.simulate(loaded), simulation.simulate(loaded, workers=2))


def test_a_worker_that_dies_does_not_lose_the_run(scenario, tmp_path, monkeypatch):
    marker = tmp_path / "crashed"
    monkeypatch.setenv("SIMULATOR_CRASH_ONCE", str(marker))
    loaded = load_scenario(scenario)
    distributed = simulation.simulate(loaded, workers=2)
    assert marker.exists()                      # a worker did die mid-run
    monkeypatch.delenv("SIMULATOR_CRASH_ONCE")
    xr.testing.assert_identical(simulation.simulate(loaded), distributed)


def interruptible() -> None:
    """In the child before it starts: Ctrl-C's default, so that Python makes it KeyboardInterrupt even
    when the suite runs with SIGINT ignored (as a non-interactive shell starts a background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "simulator", "run", *args, "--quiet", "--no-report"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible,
                            **kwargs)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_run_leaves_no_results_and_resumes_identically(scenario, tmp_path, stop):
    out = tmp_path / "out"
    slow = ["--set", "run.paths=40", "--set", "engine.task_paths=1", "--threads", "1"]
    proc = run_cli(str(scenario), "--out", str(out), *slow, env=os.environ | {"SIMULATOR_TASK_DELAY": "0.5"})
    checkpoint = out / ".checkpoint"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(checkpoint.glob("*.npz"))) < 3 and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    if stop == signal.SIGINT:
        assert err.strip().splitlines()[-1].startswith("error: interrupted") and "Traceback" not in err
    assert not (out / "results.nc").exists() and not list(out.glob(".results.nc*"))
    done_before = len(list(checkpoint.glob("*.npz")))
    assert done_before >= 3
    resumed = run_cli(str(scenario), "--out", str(out), *slow, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert not checkpoint.exists()
    clean = tmp_path / "clean"
    assert run_cli(str(scenario), "--out", str(clean), *slow).wait(timeout=300) == 0
    xr.testing.assert_identical(dataset.read(out / "results.nc"), dataset.read(clean / "results.nc"))


def test_resume_refuses_another_runs_checkpoints(scenario, tmp_path):
    out = tmp_path / "out"
    loaded = load_scenario(scenario)
    shapes = [terms.output_shapes(sc) for sc in loaded.cells]
    checkpoints.Checkpoints(out / ".checkpoint", loaded, False, shapes).save(checkpoints.Task(0, 0, 1, 0, 1), {})
    proc = run_cli(str(scenario), "--out", str(out), "--set", "run.seed=12", "--resume")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and err.count("\n") == 1 and "--resume" in err
    proc = run_cli(str(scenario), "--out", str(tmp_path / "none"), "--resume")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "found none" in err


def test_interrupted_report_keeps_the_finished_results(scenario, tmp_path):
    """Ctrl-C while the report is drawn: results.nc is complete and said to be, no report, no traceback."""
    out, ready = tmp_path / "out", tmp_path / "drawing"
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "run", str(scenario), "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible,
                            env=os.environ | {"SIMULATOR_REPORT_DELAY": "300", "SIMULATOR_REPORT_READY": str(ready)})
    deadline = time.time() + 240
    while time.time() < deadline and not ready.exists() and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().splitlines() == [f"error: interrupted after the run: {out / 'results.nc'} is complete, its "
                                        f"report is not drawn (draw it with: simulator report {out})"]
    assert not (out / "report.html").exists() and not (out / "figures").exists()
    assert dataset.read(out / "results.nc").sizes["path"] == 6
