"""Results files read back (`simulator report`, `simulator compare`, `simulator.read`) and the folders their
pages go to: a file from another tool or edited by hand, or a folder that cannot take the pages, ends in one
`error:` line (exit 2) naming the file and the attribute, coordinate, variable or option, with nothing
written (real subprocesses on a real small run's results, edited with xarray)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import xarray as xr

import simulator
from test_bad_input import SMALL, cli, one_error_line

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A real small run's folder (results.nc only)."""
    root = tmp_path_factory.mktemp("runs")
    (root / "small.toml").write_text(SMALL)
    done = cli("run", str(root / "small.toml"), "--out", str(root / "base"), "--quiet", "--no-report")
    assert done.returncode == 0, done.stderr
    return root / "base"


@pytest.fixture(scope="module")
def results(base) -> xr.Dataset:
    return simulator.read(base)


def snapshot(*roots: Path) -> dict[str, bytes | None]:
    """Every path under `roots` with its bytes (None for a folder)."""
    return {str(p): (p.read_bytes() if p.is_file() else None) for root in roots for p in sorted(root.rglob("*"))}


def _resolved(ds: xr.Dataset, section: str, key: str, value) -> str:
    tree = json.loads(ds.attrs["scenario_resolved"])
    tree[section][key] = value
    return json.dumps(tree)


# (case, edit of the run's Dataset (or the file's bytes), command, words of the error line besides the file)
TAMPERED = [
    ("no quantile coordinate", lambda ds: ds.drop_vars("quantile"), "report", ["quantile"]),
    ("a dimension dropped", lambda ds: ds.assign(accounts=ds["accounts"].sum("state")), "compare", ["accounts", "state"]),
    ("a variable as text", lambda ds: ds.assign(approvals=ds["approvals"].astype(str)), "report", ["approvals", "numbers"]),
    ("no paths", lambda ds: ds.isel(path=slice(0, 0)), "compare", ["path", "found 0"]),
    ("scenario not JSON", lambda ds: ds.assign_attrs(scenario_resolved="{run: b"), "report",
     ["scenario_resolved", "not JSON"]),
    ("scenario not a table", lambda ds: ds.assign_attrs(scenario_resolved="[1, 2]"), "compare",
     ["scenario_resolved", "JSON table", "JSON list"]),
    ("scenario not valid", lambda ds: ds.assign_attrs(scenario_resolved=_resolved(ds, "policy", "apr_cap", "high")),
     "report", ["scenario_resolved", "policy.apr_cap"]),
    ("an attribute missing", lambda ds: ds.drop_attrs(deep=False).assign_attrs(
        {k: v for k, v in ds.attrs.items() if k != "capital_window"}), "compare_out", ["capital_window"]),
    ("a variable only the figures read missing", lambda ds: ds.drop_vars("vintage_allowance"), "compare",
     ["vintage_allowance"]),
    ("state labels renamed", lambda ds: ds.assign_coords(state=[f"S{i}" for i in range(ds.sizes["state"])]),
     "compare_out", ["state", "current, M1"]),
    ("from a newer version", lambda ds: ds.assign_attrs(simulator_version="9.0", results_mode="sampled"), "report",
     ["results_mode", "simulator 9.0"]),
    ("not a results file at all", lambda ds: b"\x89HDF\r\n\x1a\n but cut short", "report", ["cannot be read"]),
]


def _tampered(results: xr.Dataset, edit, folder: Path) -> Path:
    """A run folder whose results.nc is the run's, edited by `edit` (a Dataset, or the file's bytes)."""
    folder.mkdir()
    edited = edit(results.copy(deep=True))
    if isinstance(edited, bytes):
        (folder / "results.nc").write_bytes(edited)
    else:
        edited.to_netcdf(folder / "results.nc", engine="h5netcdf")
    return folder


@pytest.mark.parametrize("edit, command, words", [row[1:] for row in TAMPERED], ids=[row[0] for row in TAMPERED])
def test_a_results_file_that_is_not_what_this_version_writes(results, base, tmp_path, edit, command, words):
    run = _tampered(results, edit, tmp_path / "run")
    argv = {"report": ["report", str(run)], "compare": ["compare", str(run)],
            "compare_out": ["compare", str(run), "--out", str(tmp_path / "cmp")]}[command]
    before = snapshot(tmp_path, base)
    one_error_line(cli(*argv), str(run / "results.nc"), *words)
    assert snapshot(tmp_path, base) == before


def test_a_file_written_before_a_key_was_renamed_still_reads(results, tmp_path):
    """A results file whose scenario uses a key's earlier name (config.RENAMED) is read and reported
    as the same scenario, silently (the file is not the user's to edit)."""
    from simulator.config.loader import RENAMED
    tree = json.loads(results.attrs["scenario_resolved"])
    for old, new in RENAMED.items():
        *tables, key = new.split(".")
        table = tree
        for part in tables:
            table = table[part]
        table[old.rsplit(".", 1)[1]] = table.pop(key)
    run = _tampered(results, lambda ds: ds.assign_attrs(scenario_resolved=json.dumps(tree)), tmp_path / "run")
    done = cli("report", str(run))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert (run / "report.html").is_file()


def test_the_api_reads_say_what_the_command_line_says(results, base, tmp_path):
    run = _tampered(results, TAMPERED[0][1], tmp_path / "run")
    line = cli("report", str(run)).stderr
    for call in (lambda: simulator.read(run), lambda: simulator.report(run), lambda: simulator.compare([base, run])):
        with pytest.raises(simulator.ScenarioError) as err:
            call()
        assert line == f"error: {err.value}\n"
    assert sorted(p.name for p in run.iterdir()) == ["results.nc"]


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` made read-only; for root, which writes through permissions, also immutable (chattr +i)."""
    folder.chmod(0o555)
    immutable = os.geteuid() == 0
    try:
        if immutable and (shutil.which("chattr") is None or
                          subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0):
            pytest.skip("running as root without chattr +i: no folder is read-only to root here")
        yield
    finally:
        if immutable and shutil.which("chattr"):
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        folder.chmod(0o755)


def _copy(base: Path, tmp: Path) -> Path:
    return Path(shutil.copytree(base, tmp / "run"))


def _read_only_run(base, tmp):
    _copy(base, tmp)
    return ["report", str(tmp / "run")], tmp / "run", ["DIR", "read-only"]


def _report_html_a_folder(base, tmp):
    (_copy(base, tmp) / "report.html").mkdir()
    return ["report", str(tmp / "run")], None, [str(tmp / "run" / "report.html"), "DIR", "folder"]


def _figures_a_file(base, tmp):
    (_copy(base, tmp) / "figures").write_text("not a folder")
    return ["report", str(tmp / "run")], None, [str(tmp / "run" / "figures"), "DIR", "found a file"]


def _out_a_file(base, tmp):
    (tmp / "out").write_text("a file")
    return ["compare", str(base), "--out", str(tmp / "out")], None, [str(tmp / "out"), "--out", "found a file"]


def _out_read_only(base, tmp):
    (tmp / "out").mkdir()
    return ["compare", str(base), "--out", str(tmp / "out")], tmp / "out", [str(tmp / "out"), "--out", "read-only"]


def _out_a_runs_own_folder(base, tmp):
    # A sweep's report draws compare_dpd30.png into its own figures/ (docs/results.md section 14): compare
    # --out into that folder would replace it.
    run = _copy(base, tmp)
    (run / "figures").mkdir()
    (run / "figures" / "compare_dpd30.png").write_bytes(b"the run's own figure")
    return ["compare", str(run), "--out", str(run)], None, [str(run / "figures" / "compare_dpd30.png"), "--out"]


# (case, setup(base, tmp) -> (argv, the folder to make read-only or None, words of the error line))
OUTPUTS = [
    ("report into a read-only folder", _read_only_run),
    ("report.html a folder", _report_html_a_folder),
    ("figures a file", _figures_a_file),
    ("compare --out a file", _out_a_file),
    ("compare --out a read-only folder", _out_read_only),
    ("compare --out a run's own folder", _out_a_runs_own_folder),
]


def _api(argv: list[str]):
    """The API's call for a `report DIR` or `compare DIR ... --out OUT` command line."""
    if argv[0] == "report":
        return lambda: simulator.report(argv[1])
    return lambda: simulator.compare(argv[1:-2], out=argv[-1])


@pytest.mark.parametrize("setup", [row[1] for row in OUTPUTS], ids=[row[0] for row in OUTPUTS])
def test_pages_into_a_folder_that_cannot_take_them(base, tmp_path, setup):
    argv, locked, words = setup(base, tmp_path)
    before = snapshot(tmp_path, base)
    with read_only(locked) if locked else contextlib.nullcontext():
        done = cli(*argv)
        with pytest.raises(simulator.ScenarioError) as err:   # the API says the same
            _api(argv)()
    one_error_line(done, *words)
    assert done.stderr == f"error: {err.value}\n"
    assert snapshot(tmp_path, base) == before
