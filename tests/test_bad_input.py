"""Where the README promises one line, there is one line: bad folders, files, clusters and sizes end in
`error: ...` with exit status 2, no traceback and nothing written (real subprocesses)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

SMALL = '[run]\nname = "b"\npaths = 2\nhorizon_months = 6\n[applicants]\nmonthly_volume = 100\norigination_months = 2\n'


def cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True, timeout=300,
                          env=os.environ | (env or {}), cwd=cwd)


def one_error_line(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr, \
        done.stderr
    for word in words:
        assert word in done.stderr, (word, done.stderr)


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def test_out_that_is_a_file_or_a_device(small, tmp_path):
    (tmp_path / "taken").write_text("a file")
    one_error_line(cli("run", str(small), "--out", str(tmp_path / "taken"), "--quiet"), "--out", "cannot use")
    assert (tmp_path / "taken").read_text() == "a file"
    one_error_line(cli("run", str(small), "--out", "/dev/null", "--quiet"), "--out")


def test_results_too_large_for_memory(small, tmp_path):
    done = cli("run", str(small), "--set", "run.paths=100000000", "--out", str(tmp_path / "o"), "--quiet")
    one_error_line(done, "run.paths", "GiB")
    assert not (tmp_path / "o").exists()


def test_scheduler_that_is_not_there(small, tmp_path):
    done = cli("run", str(small), "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path / "o"), "--quiet")
    one_error_line(done, "--scheduler", "after")
    assert not (tmp_path / "o").exists()


def test_all_workers_lost_says_resume(small, tmp_path):
    done = cli("run", str(small), "--workers", "1", "--out", str(tmp_path / "o"), "--quiet", "--no-report",
               env={"SIMULATOR_CRASH_ALWAYS": "1"})
    one_error_line(done, "--resume")
    assert not (tmp_path / "o" / "results.nc").exists()


def test_report_and_compare_of_a_foreign_netcdf_file(tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    xr.Dataset({"x": ("t", np.arange(3))}).to_netcdf(folder / "results.nc", engine="h5netcdf")
    one_error_line(cli("report", str(folder)), "this simulator")
    one_error_line(cli("compare", str(folder / "results.nc"), str(folder), "--out", str(tmp_path / "cmp")),
                   "this simulator")
    assert sorted(p.name for p in folder.iterdir()) == ["results.nc"] and not (tmp_path / "cmp").exists()


def test_scenario_files_that_are_not_scenarios(tmp_path):
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + SMALL.encode())
    one_error_line(cli("validate", str(bom)), "byte-order mark")
    one_error_line(cli("validate", "/dev/zero"), "regular file")
    (tmp_path / "child.toml").write_text('extends = "missing.toml"\n')
    one_error_line(cli("validate", str(tmp_path / "child.toml")), "extends", "missing.toml", str(tmp_path))
    (tmp_path / "device.toml").write_text('extends = "/dev/zero"\n')
    one_error_line(cli("validate", str(tmp_path / "device.toml")), "extends")
    for i in range(20):
        (tmp_path / f"d{i}.toml").write_text(f'extends = "d{i + 1}.toml"\n')
    (tmp_path / "d20.toml").write_text(SMALL)
    one_error_line(cli("validate", str(tmp_path / "d0.toml")), "extends", "at most")
