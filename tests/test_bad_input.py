"""Where the README promises one line, there is one line: bad folders, files, clusters and sizes end in
`error: ...` with exit status 2, no traceback and nothing written (real subprocesses)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

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
    one_error_line(cli("run", str(small), "--out", str(tmp_path / "taken"), "--quiet"), "--out", "found a file")
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
    """Also with Dask's default dashboard port taken (a notebook's dashboard): still one line."""
    taken = socket.socket()
    try:
        taken.bind(("", 8787))
        taken.listen()
    except OSError:
        pass    # already taken by something else: the same case
    with taken:
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


# ---- No input overwritten, no output outside its folder, nothing left behind (issue 26) ----

BOOK = """product,principal,apr,term_months,method,months_on_book,state,overdue,pd_12m
jiebei,5000,0.146,12,equal_installment,3,current,,0.02
jiebei,800,0.219,6,equal_principal,1,current,,0.05
"""


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every file and folder under `folder` with its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


TAPED = ["--set", "run.paths=1", "--set", "applicants.monthly_volume=1000", "--set", "run.horizon_months=18",
         "--set", "applicants.origination_months=6"]   # a tape with every state, months enough to calibrate


@pytest.fixture(scope="module")
def taped(tmp_path_factory) -> Path:
    """A folder with a small scenario, a run of it and its loan tape (with the offers beside it)."""
    folder = tmp_path_factory.mktemp("taped")
    (folder / "small.toml").write_text(SMALL)
    done = cli("run", "small.toml", "--out", "run", "--quiet", "--no-report", "--tape", "tape.parquet", *TAPED,
               cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder


def workspace(taped: Path, tmp_path: Path) -> Path:
    """A copy of the taped folder to try a command in, with a book, a scenario on it and a child scenario."""
    for path in taped.rglob("*"):
        target = tmp_path / path.relative_to(taped)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(path.read_bytes())
    (tmp_path / "book.csv").write_text(BOOK)
    (tmp_path / "booked.toml").write_text(SMALL + '[book]\nfile = "book.csv"\n')
    (tmp_path / "badbook.csv").write_text(BOOK.replace("jiebei,800", "visa,800"))
    (tmp_path / "badbooked.toml").write_text(SMALL + '[book]\nfile = "badbook.csv"\n')
    (tmp_path / "sweptbook.toml").write_text(SMALL + '[sweep]\n"book.file" = ["book.csv", "badbook.csv"]\n')
    (tmp_path / "child.toml").write_text('extends = "small.toml"\n[run]\npaths = 3\n')
    (tmp_path / "afolder.toml").mkdir()
    (tmp_path / "afolder.csv").mkdir()
    (tmp_path / "afile").write_text("a file")
    (tmp_path / "map.toml").write_text("[columns]\n")
    return tmp_path


CALIBRATE = ("calibrate", "tape.parquet", "--extends")
OUTPUT_CASES = [  # (name, command, words in the error)
    ("calibrate over its base", [*CALIBRATE, "small.toml", "--out", "small.toml"], ["--out", "inputs"]),
    ("calibrate over the base's parent", [*CALIBRATE, "child.toml", "--out", "small.toml"], ["--out", "inputs"]),
    ("calibrate into a folder", [*CALIBRATE, "small.toml", "--out", "afolder.toml"], ["--out", "folder"]),
    ("calibrate under a file", [*CALIBRATE, "small.toml", "--out", "afile/cal.toml"], ["--out", "not a folder"]),
    ("tape over the book", ["run", "booked.toml", "--tape", "book.csv", "--quiet"], ["--tape", "inputs"]),
    ("tape into a folder", ["run", "small.toml", "--tape", "afolder.csv", "--quiet"], ["--tape", "folder"]),
    ("calibrate over its mapping", [*CALIBRATE, "small.toml", "--mapping", "map.toml", "--out", "map.toml"],
     ["--out", "inputs"]),
    ("backtest into a file", ["backtest", "tape.parquet", "small.toml", "--out", "afile", "--paths", "2"],
     ["--out", "found a file"]),
    ("backtest over its tape", ["backtest", "tape.parquet", "small.toml", "--out", "tape.parquet", "--paths", "2"],
     ["--out", "inputs"]),
    ("run with a bad book", ["run", "badbooked.toml", "--quiet"], ["badbook.csv", "product"]),
    ("nested --out, bad book", ["run", "badbooked.toml", "--out", "a/b/c", "--quiet"], ["badbook.csv", "product"]),
    ("sweep's second book bad", ["run", "sweptbook.toml", "--out", "a/b", "--quiet"], ["badbook.csv", "product"]),
    ("too many threads", ["run", "small.toml", "--threads", "10000000", "--out", "o", "--quiet"], ["--threads"]),
    ("backtest of too many paths", ["backtest", "tape.parquet", "small.toml", "--paths", "100000000", "--out", "bt"],
     ["GiB"]),
]


@pytest.mark.parametrize("command, words", [case[1:] for case in OUTPUT_CASES], ids=[c[0] for c in OUTPUT_CASES])
def test_outputs_never_replace_inputs_nor_leave_partial_output(taped, tmp_path, command, words):
    folder = workspace(taped, tmp_path)
    before = listing(folder)
    one_error_line(cli(*command, cwd=folder), *words)
    assert listing(folder) == before


@contextmanager
def read_only(*paths: Path):
    """Make files and folders read-only for this process too (immutable when run as root, who ignores
    permissions); skip where that cannot be done."""
    root = os.geteuid() == 0
    try:
        for path in paths:
            if root:
                if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
                    pytest.skip("chattr +i is not available here")
            else:
                path.chmod(0o555 if path.is_dir() else 0o444)
        yield
    finally:
        for path in paths:
            if root:
                subprocess.run(["chattr", "-i", str(path)], capture_output=True)
            else:
                path.chmod(0o755 if path.is_dir() else 0o644)


READ_ONLY_CASES = [  # (name, command, option named); the folder `ro` cannot be written
    ("run --out", ["run", "small.toml", "--out", "ro/o", "--quiet"], "--out"),
    ("run --tape", ["run", "small.toml", "--out", "o", "--tape", "ro/t.csv", "--quiet"], "--tape"),
    ("calibrate --out", [*CALIBRATE, "small.toml", "--out", "ro/cal.toml"], "--out"),
    ("backtest --out", ["backtest", "tape.parquet", "small.toml", "--out", "ro/bt", "--paths", "2"], "--out"),
    ("report", ["report", "ro"], "ro"),
    ("compare --out", ["compare", "run", "--out", "ro/cmp"], "--out"),
]


@pytest.mark.parametrize("command, option", [case[1:] for case in READ_ONLY_CASES],
                         ids=[c[0] for c in READ_ONLY_CASES])
def test_read_only_output_folder_is_refused_before_any_work(taped, tmp_path, command, option):
    folder = workspace(taped, tmp_path)
    (folder / "ro").mkdir()
    (folder / "ro" / "results.nc").write_bytes((folder / "run" / "results.nc").read_bytes())
    before = listing(folder)
    with read_only(folder / "ro"):
        one_error_line(cli(*command, cwd=folder), option)
    assert listing(folder) == before


COMMANDS = {   # by what they need: a group runs in order (report and compare read the run's output)
    "validate": [["validate", "booked.toml"], ["validate", "child.toml", "--print"]],
    "run-report-compare": [["run", "booked.toml", "--out", "o1", "--quiet", "--tape", "t1.csv"], ["report", "o1"],
                           ["compare", "run", "o1", "--out", "cmp", "--accept-differences"]],
    "calibrate": [[*CALIBRATE, "child.toml", "--mapping", "map.toml", "--offers", "tape_offers.parquet", "--out",
                   "cal.toml"]],
    "backtest": [["backtest", "tape.parquet", "small.toml", "--paths", "2", "--out", "bt"]],
    "quote": [["quote", "--product", "jiebei", "--amount", "1000", "--term", "3", "--apr", "0.12"]],
}


@pytest.mark.parametrize("group", list(COMMANDS))
def test_no_command_changes_an_input(taped, tmp_path, group):
    """Every command, run on inputs it cannot write, succeeds and leaves each input's bytes as they were."""
    folder = workspace(taped, tmp_path)
    inputs = [folder / name for name in ("small.toml", "booked.toml", "book.csv", "tape.parquet", "tape_offers.parquet",
                                         "map.toml", "child.toml")]
    inputs += list((folder / "run").iterdir())
    before = {path: path.read_bytes() for path in inputs}
    with read_only(*inputs):
        for command in COMMANDS[group]:
            done = cli(*command, cwd=folder)
            assert done.returncode == 0, (command, done.stderr)
    assert {path: path.read_bytes() for path in inputs} == before
