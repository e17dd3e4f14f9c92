"""The public Python API (simulator.load / run / write / read / report / compare / quote): the same
results and the same errors as the command line."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import simulator
from simulator.engine import simulation
from simulator.cli import main

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

SMALL = {"run.paths": 2, "run.horizon_months": 6, "applicants.monthly_volume": 150, "applicants.origination_months": 2}


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "api.toml"
    path.write_text('[run]\nname = "api"\n')
    return path


def test_run_equals_the_command_line(scenario, tmp_path):
    loaded = simulator.load(scenario, SMALL)
    assert loaded.scenario.run.paths == 2 and loaded.overrides == [f"{k}={v}" for k, v in SMALL.items()]
    ds = simulator.run(loaded, out=tmp_path / "api")
    xr.testing.assert_identical(ds, simulator.read(tmp_path / "api"))
    sets = [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={value}")]
    assert main(["run", str(scenario), *sets, "--out", str(tmp_path / "cli"), "--quiet", "--no-report"]) == 0
    xr.testing.assert_identical(ds, simulator.read(tmp_path / "cli" / "results.nc"))
    xr.testing.assert_identical(simulator.run(scenario, threads=1, block_size=7), simulator.run(simulator.load(scenario)))
    assert not (tmp_path / "api" / ".checkpoint").exists()


def test_dict_and_string_overrides_agree(scenario):
    a = simulator.load(scenario, {"policy.apr_cap": 0.2, "sweep": {"policy.cutoff_score": [560, 600]}})
    b = simulator.load(scenario, ["policy.apr_cap=0.2", 'sweep."policy.cutoff_score"=[560, 600]'])
    assert a.resolved() == b.resolved() and a.dims == b.dims
    np_value = simulator.load(scenario, {"run.paths": np.int64(3)})
    assert np_value.scenario.run.paths == 3


def test_write_report_compare(scenario, tmp_path):
    ds = simulator.run(simulator.load(scenario, SMALL))
    simulator.write(ds, tmp_path / "one" / "results.nc")
    simulator.write(ds, tmp_path / "two" / "results.nc")
    page = simulator.report(tmp_path / "one")
    assert page == tmp_path / "one" / "report.html" and page.read_text().startswith("<!DOCTYPE html>")
    table = simulator.compare([tmp_path / "one", tmp_path / "two"], out=tmp_path / "cmp")
    assert list(table.index) == ["one", "two"] and table.loc["one", "approvals"] == float(ds["approvals"].sum())
    assert (tmp_path / "cmp" / "compare.html").is_file()


def test_errors_are_the_command_lines(scenario, tmp_path, capsys):
    cases = [
        (lambda: simulator.load(scenario, {"run.paths": 0}), ["run", str(scenario), "--set", "run.paths=0"]),
        (lambda: simulator.load(scenario, {"run.nope": 1}), ["validate", str(scenario), "--set", "run.nope=1"]),
        (lambda: simulator.run(scenario, threads=-1, out=tmp_path / "x"),
         ["run", str(scenario), "--threads", "-1", "--out", str(tmp_path / "x")]),
        (lambda: simulator.read(tmp_path / "none"), ["compare", str(tmp_path / "none")]),
        (lambda: simulator.quote("jiebei", 1000, 0, apr=0.1),
         ["quote", "--product", "jiebei", "--amount", "1000", "--term", "0", "--apr", "0.1"]),
    ]
    for call, argv in cases:
        with pytest.raises(simulator.ScenarioError) as err:
            call()
        capsys.readouterr()
        assert main(argv) == 2
        assert capsys.readouterr().err == f"error: {err.value}\n"
    assert not (tmp_path / "x").exists()


def test_quote_dataframe():
    q = simulator.quote("jiebei", 10_000, 12, daily_rate=0.0004)
    assert q.total_payment == 10808.36 and list(q.schedule.index) == list(range(1, 13))
    assert list(q.schedule.columns) == ["payment", "principal", "interest", "fee", "balance"]
    assert q.schedule["principal"].sum() == pytest.approx(10_000) and q.schedule["balance"].iloc[-1] == 0
    assert q.apr == pytest.approx(0.146, abs=1e-5)   # a fee-free loan: its contract rate, but for cents


def test_version():
    out = subprocess.run([sys.executable, "-m", "simulator", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"simulator {simulator.__version__}"
    assert simulator.__version__ != "unknown"


def test_same_task_loop_for_tests_and_runs(scenario):
    """engine.run_accounts, which tests and benchmarks call, is the loop simulate runs."""
    loaded = simulator.load(scenario, SMALL)
    from simulator.model import origination

    accounts, _ = origination.prepare(loaded.scenario)
    sums = simulation.run_accounts(loaded.scenario, accounts, threads=1)
    ds = simulator.run(loaded)
    assert np.array_equal(sums["stocks"][..., 0].sum(axis=(2, 3, 4)), ds["accounts"].sum(("product", "score_band", "state")))


def test_calibrate_and_backtest_equal_the_command_line(scenario, tmp_path, capsys):
    taped = {"run.paths": 1, "run.horizon_months": 18, "applicants.monthly_volume": 1000,
             "applicants.origination_months": 6}
    tape = tmp_path / "tape.parquet"
    simulator.run(simulator.load(scenario, taped), tape=tape)
    fit = simulator.calibrate(tape, tmp_path / "fit.toml", scenario)
    assert fit.fit_report.is_file() and simulator.load(fit.scenario).scenario.run.name == "fit"
    assert main(["calibrate", str(tape), "--out", str(tmp_path / "cli.toml"), "--extends", str(scenario)]) == 0
    assert fit.table in capsys.readouterr().out
    assert (tmp_path / "cli.toml").read_text().replace("cli", "fit") == fit.scenario.read_text()

    done = simulator.backtest(tape, fit.scenario, {"run.seed": 7}, paths=4, out=tmp_path / "bt")
    xr.testing.assert_identical(xr.open_dataset(done.results, engine="h5netcdf").load(), done.dataset)
    assert done.report.is_file() and done.dataset.attrs["paths"] == 4
    assert main(["backtest", str(tape), str(fit.scenario), "--set", "run.seed=7", "--paths", "4",
                 "--out", str(tmp_path / "bt_cli")]) == 0
    assert done.table in capsys.readouterr().out

    with pytest.raises(simulator.ScenarioError, match="--out: expected an output that is not one of the inputs"):
        simulator.calibrate(tape, scenario, scenario)
    with pytest.raises(simulator.ScenarioError, match="--on-bad-rows"):
        simulator.backtest(tape, fit.scenario, on_bad_rows="skip")
