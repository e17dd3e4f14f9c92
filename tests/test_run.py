"""Whole runs: the principal identity in every cell, invariance to threads and blocks, the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from simulator.engine import simulation
from simulator.model import origination
from simulator.results import dataset
from simulator.cli import main
from simulator.config.loader import load_scenario

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

SMALL = """
[run]
name = "small"
seed = 7
paths = 3
horizon_months = 18

[applicants]
monthly_volume = 1500
origination_months = 12

[applicants.jiebei]
methods = ["equal_installment", "equal_principal", "interest_first"]
method_shares = [0.5, 0.25, 0.25]

[behaviour]
fraud_rate = 0.01
recovery_lag_months = 3

[products.jiebei]
late_fee = 25.0
"""

BOOK = """product,principal,apr,term_months,method,months_on_book,state,overdue,pd_12m,fee_per_period,price,limit
jiebei,8000,0.18,12,equal_installment,3,current,,0.03,,,
jiebei,2500.5,0.12,6,equal_principal,1,M2,800,0.2,,,
jiebei,12000,0.146,12,interest_first,11,M5,1000,0.5,,,
jiebei,500,0.0,3,equal_installment,0,current,,0,,,
yuefu,700,,6,,2,M1,116.67,0.1,0.0075,1050,
huabei,1500,,,,,current,,0.05,,,3000
"""


@pytest.fixture
def small(tmp_path: Path) -> Path:
    header, rows = BOOK.split("\n", 1)
    (tmp_path / "book.csv").write_text(header + "\n" + rows * 20)
    path = tmp_path / "small.toml"
    path.write_text(SMALL + '\n[book]\nfile = "book.csv"\n')
    return path


def cents(x: xr.DataArray) -> np.ndarray:
    return np.round(x.values * 100).astype(np.int64)


def test_principal_identity_in_every_cell(small):
    ds = simulation.simulate(load_scenario(small))
    balance = cents(ds["balance"].sum("state"))
    opening = cents(ds["opening_balance"].sum("state"))
    previous = np.concatenate([np.broadcast_to(opening, balance[:, :1].shape), balance[:, :-1]], axis=1)
    change = (cents(ds["originated"]) + cents(ds["drawn"]) - cents(ds["repaid"])
              - cents(ds["prepaid"]) - cents(ds["charged_off"]))
    assert np.array_equal(balance, previous + change)
    # The run is not trivial: every kind of flow happened.
    for name in ["originated", "repaid", "prepaid", "charged_off", "recovered", "interest_income",
                 "penalty_income", "fee_income", "funding_cost"]:
        assert ds[name].sum() > 0, name
    assert ds["opening_accounts"].sum() == 120
    # Account counts: opening + originated - closed - charged off = open at the end.
    closed = ds["prepaid_accounts"] + ds["matured_accounts"] + ds["closed_accounts"] + ds["charged_off_accounts"]
    flow = (ds["originated_accounts"] - closed).sum(("month", "product", "score_band"))
    open_end = ds["accounts"].isel(month=-1).sum(("product", "score_band", "state"))
    assert np.array_equal(open_end.values, (ds["opening_accounts"].sum() + flow).values)


def test_bit_identical_across_threads_and_block_sizes(small):
    loaded = load_scenario(small)
    reference = simulation.simulate(loaded, threads=1, block_size=4096)
    for threads, block_size in [(2, 4096), (2, 7), (1, 100)]:
        other = simulation.simulate(loaded, threads=threads, block_size=block_size)
        xr.testing.assert_identical(reference, other)


def test_seed_changes_results(small):
    a = simulation.simulate(load_scenario(small))
    b = simulation.simulate(load_scenario(small, ["run.seed=8"]))
    assert not a["balance"].equals(b["balance"])


def test_run_writes_results_with_scenario_and_seed(small, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(small), "--out", str(out), "--set", "run.paths=2"]) == 0
    printed = capsys.readouterr().out
    assert "30+ ratio" in printed and "net revenue" in printed
    ds = dataset.read(out / "results.nc")
    assert ds.sizes["path"] == 2
    assert ds.attrs["seed"] == 7
    assert ds.attrs["scenario_text"] == small.read_text()
    assert json.loads(ds.attrs["scenario_overrides"]) == ["run.paths=2"]
    assert json.loads(ds.attrs["scenario_resolved"])["run"]["paths"] == 2
    assert ds["balance"].attrs["display_units"] == "yuan" and ds["balance"].attrs["currency"] == "CNY"
    assert ds.attrs["Conventions"] == "CF-1.10"
    for name, var in ds.data_vars.items():                     # CF: a long name and UDUNITS units on every variable
        assert var.attrs["long_name"] and var.attrs["units"] in ("1", "year-1"), name
    for name in ("path", "month", "vintage", "months_on_book", "quantile"):
        assert ds[name].attrs["units"] == "1" and ds[name].attrs["long_name"], name
    assert "pnl_line" in ds["pnl"].dims and "risk_adjusted_yield" not in ds["pnl"]["pnl_line"].values
    assert "pdo" in ds.attrs["convention_score_scaling"]
    names = sorted(p.name for p in out.iterdir())
    assert "results.nc" in names and not [n for n in names if n.startswith(".")]  # no temporary files left


def test_module_entry_point(tmp_path):
    scenario = tmp_path / "tiny.toml"
    scenario.write_text('[run]\nname = "tiny"\nhorizon_months = 3\n[applicants]\nmonthly_volume = 50\norigination_months = 2\n')
    done = subprocess.run([sys.executable, "-m", "simulator", "run", str(scenario), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o" / "results.nc").exists()


BAD_SETS = {
    "unknown key": (["behaviour.roll_ratez=[1,1,1,1,1,1]"], "behaviour.roll_ratez: unknown key"),
    "unknown section": (["sweeps.x=1"], "sweeps: unknown key"),
    "sweep not a list": (["sweep.x=1"], "sweep.x: expected a valid list, found 1"),
    "wrong type": (["run.paths=\"3\""], "run.paths: expected a valid integer"),
    "negative rate": (["funding.cost_of_funds=-0.01"], "funding.cost_of_funds: expected greater than or equal to 0"),
    "probability above 1": (["behaviour.prepay_monthly=1.5"], "behaviour.prepay_monthly: expected less than or equal to 1"),
    "zero horizon": (["run.horizon_months=0"], "run.horizon_months: expected greater than or equal to 1"),
    "five roll rates": (["behaviour.roll_rates=[0.5,0.5,0.5,0.5,0.5]"], "behaviour.roll_rates: expected at least 6 values, found 5"),
    "bad choice": (["policy.on_cap=maybe"], "policy.on_cap: expected 'cap' or 'reject'"),
    "shares": (["applicants.jiebei.term_shares=[0.5,0.6,0.1]"], "applicants.jiebei.term_shares: expected shares summing to 1"),
    "macro too long": (["run.horizon_months=2", "applicants.origination_months=1", "macro.shift=[0,0,0]"],
                       "macro.shift: expected at most horizon_months = 2 values, found 3"),
    "not a table": (["run=3"], "run: expected a table"),
    "bad set syntax": (["run.paths"], "run.paths: expected --set KEY=VALUE"),
    "unknown product": (["applicants.product_mix={cars=1.0}"], "applicants.product_mix.cars: expected 'huabei', 'jiebei' or 'yuefu'"),
    "minimum payment below the rate": (["products.huabei.min_payment_share=0.001"],
                                       "products.huabei.min_payment_share: expected at least the highest monthly revolving rate"),
    "curve length": (["policy.curve_aprs.yuefu=[0.2, 0.1]"],
                     "policy.curve_aprs.yuefu: expected 7 values (one per curve score) or one (a flat price), found 2"),
    "segment shares": (["applicants.segments.prime.share=0.9"], "applicants.segments: expected shares summing to 1, found 1.2"),
    "segment missing a key": (["applicants.segments.web={share=0.0}"], "applicants.segments.web.income_median: missing"),
    "segment unknown key": (["applicants.segments.prime.score=600"], "applicants.segments.prime.score: unknown key"),
    "correlations": (["factor.borrower_correlation=0.97"], "factor.borrower_correlation: expected asset_correlation + borrower_correlation < 1"),
    "limit order": (["policy.limit_order=[\"jiebei\"]"], "policy.limit_order: expected each of huabei, jiebei, yuefu once"),
    "tenor not offered": (["applicants.yuefu.tenors=[5,6,9,12]"], "applicants.yuefu.tenors: expected tenors offered in products.yuefu.tenors, found 5"),
    "payer shares": (["behaviour.payer_shares=[0.5,0.5,0.5]"], "behaviour.payer_shares: expected shares summing to 1"),
    # Non-finite numbers, overflowing amounts, percent where a fraction belongs (issue 12).
    "nan cutoff": (["policy.cutoff_score=nan"], "policy.cutoff_score: expected a finite number, found nan"),
    "nan intercept": (["scorecard.intercept=nan"], "scorecard.intercept: expected a finite number"),
    "nan in a list": (["macro.shift=[0.0, nan]"], "macro.shift[1]: expected a finite number"),
    "infinite rate": (["funding.cost_of_funds=inf"], "funding.cost_of_funds: expected a finite number, found inf"),
    "1e400 is infinite": (["policy.max_dti=1e400"], "policy.max_dti: expected a finite number"),
    "amount too large": (["policy.max_total_limit=1e308"], "policy.max_total_limit: expected less than or equal to 100000000"),
    "sigma too large": (["applicants.huabei.spend_sigma=50.0"], "applicants.huabei.spend_sigma: expected less than or equal to 3"),
    "cap in percent": (["policy.apr_cap=36"], "policy.apr_cap: expected a fraction such as 0.36"),
    "curve in percent": (["policy.curve_aprs.jiebei=[36,30,22,15,10.5,9,7.3]"],
                         "policy.curve_aprs.jiebei[0]: expected a fraction such as 0.36"),
    "daily rate in percent": (["products.huabei.penalty_daily_rate=0.05"],
                              "products.huabei.penalty_daily_rate: expected a fraction such as 0.0005"),
    "fee in percent": (["products.huabei.instalment_fees=[2.5,4.5,6.5,8.8]"],
                       "products.huabei.instalment_fees[0]: expected a fraction such as 0.0075"),
    "old line rate key": (["products.huabei.daily_rate=0.0005"], "products.huabei.daily_rate: unknown key; now policy.curve_aprs.huabei"),
    "funding in percent": (["funding.cost_of_funds=6.5"], "funding.cost_of_funds: expected a fraction such as 0.36"),
}


@pytest.mark.parametrize("case", sorted(BAD_SETS))
def test_bad_scenario_values(case, scenario_file, tmp_path, capsys):
    overrides, message = BAD_SETS[case]
    path = scenario_file()
    args = ["run", str(path), "--out", str(tmp_path / "out")]
    for item in overrides:
        args += ["--set", item]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: "), err
    assert message in err, err
    assert not (tmp_path / "out").exists()


BAD_FILES = {
    "syntax": ("[run\nname = 1\n", "expected valid TOML"),
    "unknown section": ('[runn]\nname = "x"\n', "runn: unknown key"),
    "probability": ('[behaviour]\nfraud_rate = -0.1\n', "behaviour.fraud_rate: expected greater than or equal to 0"),
    "book column": ('[book]\nfile = "book.csv"\n', "row 2: column apr"),
    "book missing": ('[book]\nfile = "nowhere.csv"\n', "nowhere.csv"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_exit_2_with_one_line(case, tmp_path):
    text, message = BAD_FILES[case]
    (tmp_path / "book.csv").write_text(BOOK.replace("0.12,6", "twelve,6"))
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "simulator", "run", str(path), "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and message in done.stderr, done.stderr
    assert not out.exists()
    assert done.stdout == ""


def test_missing_scenario_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "none.toml")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.toml'}: -: file not found\n"


def test_validate_prints_the_resolved_scenario(scenario_file, capsys):
    path = scenario_file()
    assert main(["validate", str(path), "--print", "--set", "run.paths=4"]) == 0
    text = capsys.readouterr().out
    import tomllib

    resolved = tomllib.loads(text)
    assert resolved["run"]["paths"] == 4
    assert len(resolved["behaviour"]["roll_rates"]) == 6
    # The printed scenario is itself a valid scenario giving the same resolution.
    path.write_text(text)
    assert load_scenario(path).resolved() == load_scenario(scenario_file(), ["run.paths=4"]).resolved()


def test_preparing_applicants_in_pieces_changes_nothing(small, monkeypatch):
    whole = simulation.simulate(load_scenario(small))
    monkeypatch.setattr(origination, "APPLICANTS_AT_ONCE", 1000)   # a chunk straddling months
    xr.testing.assert_identical(whole, simulation.simulate(load_scenario(small)))


def test_preparing_applicants_on_threads_changes_nothing(small, monkeypatch):
    """The applicants are prepared a chunk a thread, their counts and floating-point sums added in month
    order: the same accounts and counts, to the bit, on 1 thread and on 3, in one chunk or many."""
    monkeypatch.setattr(origination, "APPLICANTS_AT_ONCE", 10**9)
    sc = load_scenario(small, ["engine.threads=1"]).scenario
    accounts, counts = origination.prepare(sc)
    monkeypatch.setattr(origination, "APPLICANTS_AT_ONCE", 700)
    again, counted = origination.prepare(load_scenario(small, ["engine.threads=3"]).scenario)
    for field, column in accounts._asdict().items():
        np.testing.assert_array_equal(getattr(again, field), column, err_msg=field)
    assert counts.keys() == counted.keys()
    for name, value in counts.items():
        np.testing.assert_array_equal(counted[name], value, err_msg=name)
