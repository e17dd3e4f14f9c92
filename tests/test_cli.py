"""The command line at unit level: the parser's help and one-line errors (exit status 2, no
traceback), `validate` on the shipped scenarios and its --print reading back, `quote` against a
closed-form annuity, --set naming a bad key, and `run` / `report` handing their options to the API
(faked: no engine runs)."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import numba  # noqa: F401  (imported first: an in-process quote would otherwise set NUMBA_DISABLE_JIT for good)
import pytest

import simulator
from simulator import api, cli

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))
COMMANDS = ("run", "validate", "compare", "report", "calibrate", "backtest", "quote")
BASELINE = ROOT / "scenarios" / "baseline.toml"


@pytest.fixture(autouse=True)
def _keep_showwarning(monkeypatch):
    """main() installs its one-line warnings: put the original back after each test."""
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)


def cli_run(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of main(argv), in process."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, *names: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for name in names:
        assert name in err, (name, err)


# --- the parser -------------------------------------------------------------------------------------

def test_help_lists_every_command(capsys):
    code, out, err = cli_run(capsys, "--help")
    assert code == 0 and err == ""
    assert out.startswith("usage: simulator")
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(capsys, command):
    code, out, err = cli_run(capsys, command, "--help")
    assert code == 0 and err == ""
    assert out.startswith(f"usage: simulator {command}")


def test_version(capsys):
    code, out, _ = cli_run(capsys, "--version")
    assert code == 0 and out == f"simulator {simulator.__version__}\n"


@pytest.mark.parametrize("argv, names", [
    ((), ["command"]),
    (("frobnicate",), ["frobnicate"]),
    (("--bogus", "validate", BASELINE), ["--bogus"]),
    (("validate",), ["simulator validate", "scenario"]),
    (("validate", BASELINE, "--bogus"), ["--bogus"]),
    (("run", BASELINE, "--threads", "many"), ["--threads", "many"]),
    (("run", BASELINE, "--workers", "2", "--scheduler", "tcp://h:1"), ["--scheduler", "--workers"]),
    (("calibrate", "t.csv", "--out", "s.toml"), ["--extends"]),
    (("calibrate", "t.csv", "--out", "s.toml", "--extends", "b.toml", "--on-bad-rows", "skip"), ["skip"]),
    (("quote", "--product", "nope", "--amount", "1", "--term", "1"), ["--product", "nope"]),
    (("quote", "--product", "jiebei", "--amount", "lots", "--term", "3"), ["--amount", "lots"]),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, names):
    code, out, err = cli_run(capsys, *argv)
    assert code == 2 and out == ""
    one_line_error(err, *names)


def test_subprocess_help_and_unknown_command():
    """`python -m simulator` (the package's __main__): help exits 0, an unknown command 2 in one line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "simulator", "--help"], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    assert done.returncode == 0 and "validate" in done.stdout and done.stderr == ""
    done = subprocess.run([sys.executable, "-m", "simulator", "frobnicate"], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    assert done.returncode == 2 and done.stdout == ""
    one_line_error(done.stderr, "frobnicate")


# --- validate -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_validate_shipped_scenarios(capsys, path):
    code, out, err = cli_run(capsys, "validate", path)
    assert (code, out, err) == (0, f"{path}: ok\n", "")


def test_shipped_scenarios_are_there():
    assert {"baseline", "adverse", "severe"} <= {p.stem for p in SCENARIOS}


def test_validate_print_reads_back_as_the_scenario(capsys, tmp_path):
    """--print is TOML of the whole scenario, with the file's own keys and the --set ones; written to
    a file of its own it validates and prints the same again."""
    code, out, err = cli_run(capsys, "validate", BASELINE, "--print", "--set", "run.paths=7")
    assert code == 0 and err == ""
    tree = tomllib.loads(out)
    own = tomllib.loads(BASELINE.read_text())
    assert tree["run"]["name"] == own["run"]["name"] and tree["run"]["paths"] == 7
    assert {"run", "engine", "applicants", "policy"} <= set(tree)
    assert tree["engine"]["task_paths"] >= 1          # a default key, not in the file
    again = tmp_path / "resolved.toml"
    again.write_text(out)
    code, printed, _ = cli_run(capsys, "validate", again, "--print")
    assert code == 0 and printed == out


@pytest.mark.parametrize("setting, key", [
    ("run.nope=3", "run.nope"), ("nope", "nope"), ("run.paths=-1", "run.paths"), ("engine.threads=x", "engine.threads")])
def test_validate_bad_set_exits_2_naming_the_key(capsys, setting, key):
    code, out, err = cli_run(capsys, "validate", BASELINE, "--set", setting)
    assert code == 2 and out == ""
    one_line_error(err, str(BASELINE), key)


def test_validate_a_missing_file_exits_2(capsys, tmp_path):
    missing = tmp_path / "none.toml"
    code, out, err = cli_run(capsys, "validate", missing)
    assert code == 2 and out == ""
    one_line_error(err, str(missing))


# --- quote ----------------------------------------------------------------------------------------

def annuity(principal: float, apr: float, term: int) -> float:
    r = apr / 12
    return principal * r / (1 - (1 + r) ** -term)


def table_rows(out: str) -> list[list[float]]:
    """The schedule rows of the quote's table: period, payment, principal, interest, fee, balance."""
    return [[float(c.replace(",", "")) for c in line.split()] for line in out.splitlines()
            if line.split() and line.split()[0].isdigit()]


def test_quote_schedule_is_the_closed_form_annuity(capsys):
    code, out, err = cli_run(capsys, "quote", "--product", "jiebei", "--amount", "6000", "--term", "12", "--apr", "0.12")
    assert code == 0 and err == ""
    rows = table_rows(out)
    assert [r[0] for r in rows] == list(range(1, 13))
    level = annuity(6000, 0.12, 12)                           # 533.0929 a month
    assert all(r[1] == round(level, 2) for r in rows[:-1])    # the level payment, in cents
    assert abs(rows[-1][1] - level) <= 0.05                   # the last takes what is left
    assert sum(r[2] for r in rows) == pytest.approx(6000, abs=1e-6)
    assert all(r[1] == pytest.approx(r[2] + r[3] + r[4], abs=1e-9) for r in rows)
    assert rows[0][3] == 60.00 and rows[-1][5] == 0.0        # a month's interest on 6,000 at 1%
    balances = [6000.0] + [r[5] for r in rows]
    assert all(b0 - r[2] == pytest.approx(b1, abs=1e-6) for b0, b1, r in zip(balances, balances[1:], rows))
    assert "12.00%" in out.splitlines()[-1]
    assert "NUMBA_DISABLE_JIT" not in os.environ or os.environ["NUMBA_DISABLE_JIT"] != "1"


def test_quote_instalment_purchase_by_hand(capsys):
    """1,200 over 6 periods at 1% a period: 200 of principal and a 12.00 fee each period."""
    code, out, _ = cli_run(capsys, "quote", "--product", "yuefu", "--amount", "1200", "--term", "6",
                           "--fee-per-period", "0.01", "--format", "csv")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "period,payment,principal,interest,fee,balance"
    assert lines[1:] == [f"{k},212.00,200.00,0.00,12.00,{1200 - 200 * k:.2f}" for k in range(1, 7)]


def test_quote_bad_value_exits_2_naming_the_option(capsys):
    code, out, err = cli_run(capsys, "quote", "--product", "jiebei", "--amount", "1000", "--term", "12", "--apr", "18")
    assert code == 2 and out == ""
    one_line_error(err, "--apr")


# --- run and report, dispatched to a fake API -----------------------------------------------------

@pytest.fixture
def fake_api(monkeypatch):
    """api.run and api.report record their arguments; nothing runs."""
    calls = {}

    def run(loaded, **kwargs):
        calls["run"] = (loaded, kwargs)
        return "the dataset"

    def report(folder, ds=None, processes=None):
        calls["report"] = (folder, ds, processes)
        return Path(folder) / "report.html"

    monkeypatch.setattr(api, "run", run)
    monkeypatch.setattr(api, "report", report)
    return calls


def test_run_hands_its_options_to_the_api(capsys, fake_api, tmp_path):
    code, out, err = cli_run(capsys, "run", BASELINE, "--quiet", "--out", tmp_path, "--threads", "3", "--block-size",
                             "7", "--set", "run.paths=2", "--set", "run.horizon_months=5")
    assert (code, out, err) == (0, "", "")
    loaded, kwargs = fake_api["run"]
    assert loaded.scenario.run.paths == 2 and loaded.scenario.run.horizon_months == 5
    assert kwargs == {"out": tmp_path, "threads": 3, "block_size": 7, "workers": None, "scheduler": None,
                      "resume": False, "tape": None, "progress": False}
    assert fake_api["report"] == (tmp_path, "the dataset", 3)


def test_run_defaults_out_to_reports_name_and_no_report(capsys, fake_api):
    code, _, _ = cli_run(capsys, "run", BASELINE, "--quiet", "--no-report", "--workers", "2", "--resume")
    assert code == 0
    _, kwargs = fake_api["run"]
    assert kwargs["out"] == Path("reports") / "baseline"
    assert kwargs["workers"] == 2 and kwargs["resume"] is True and kwargs["threads"] is None
    assert "report" not in fake_api


def test_run_interrupted_exits_130_keeping_the_checkpoints(capsys, monkeypatch, tmp_path):
    def interrupted(loaded, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "run", interrupted)
    code, out, err = cli_run(capsys, "run", BASELINE, "--quiet", "--out", tmp_path)
    assert code == 130 and out == ""
    one_line_error(err, str(tmp_path / ".checkpoint"), "--resume")


def test_report_prints_the_page(capsys, fake_api, tmp_path):
    code, out, _ = cli_run(capsys, "report", tmp_path)
    assert code == 0 and out == f"{tmp_path / 'report.html'}\n"
    assert fake_api["report"][0] == tmp_path


def test_a_refused_file_is_one_line_naming_it(capsys, monkeypatch, tmp_path):
    """The system refusing a file (disk full) is `error: FILE: -: reason`, exit 2."""
    def full(folder, ds=None, processes=None):
        raise OSError(28, "No space left on device", str(tmp_path / "results.nc"))

    monkeypatch.setattr(api, "report", full)
    code, out, err = cli_run(capsys, "report", tmp_path)
    assert code == 2 and out == ""
    assert err == f"error: {tmp_path / 'results.nc'}: -: No space left on device\n"


def test_warnings_are_one_line(capsys):
    cli._one_line_warning(UserWarning("first line\nsecond line\n"), UserWarning, "f.py", 1)
    assert capsys.readouterr().err == "warning: UserWarning: first line\n"
