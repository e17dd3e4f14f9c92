"""The backtest (simulator.backtesting, `simulator backtest`): the tape's sums are the kernel's, its accounts
replay with their terms, a scenario stays in the band of the tape it made and a wrong one does not."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simulator.fitting import backtesting, calibration
from simulator.engine import simulation
from simulator.tape import reader
from simulator.tape import writer
from simulator.config.schema import ScenarioError
from simulator.config.loader import load_scenario
from simulator.model.origination import prepare

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "examples" / "tape.parquet"
SCENARIO = ROOT / "examples" / "tape.toml"
OTHER_SEED = ["run.seed=7"]        # the band's draws apart from the shipped tape's


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A small book run with its tape: accounts, the kernel's totals, the tape as read back."""
    folder = tmp_path_factory.mktemp("backtest")
    sc = load_scenario(SCENARIO, ["run.paths=2", "applicants.monthly_volume=400", "run.horizon_months=20",
                                  "applicants.origination_months=20"]).scenario
    accounts, _ = prepare(sc)
    totals = simulation.run_accounts(sc, accounts, tape=True)
    table = writer.frame(sc, accounts, totals.pop("tape"))
    table.to_parquet(folder / "t.parquet", index=False)
    return sc, accounts, totals, reader.read(folder / "t.parquet")[0], folder


def test_the_tapes_sums_are_the_kernels_path_0(made):
    """Balances and accounts by month and state, rolls and the accounts at risk of them, charge-offs by
    vintage and months on book, original amounts: the tape's equal path 0's (to the cent)."""
    sc, accounts, totals, rows, _ = made
    horizon = sc.run.horizon_months
    seen = backtesting.observed_sums(rows, accounts, 1, horizon)
    kernel = backtesting.simulated_sums(totals, horizon)
    for name in ("accounts", "at_risk", "rolls"):
        np.testing.assert_array_equal(seen[name][0], kernel[name][0], err_msg=name)
    for name in ("balance", "charged"):
        np.testing.assert_allclose(seen[name][0], kernel[name][0], atol=1e-6, rtol=0, err_msg=name)
    np.testing.assert_allclose(seen["original"], kernel["original"], atol=1e-6, rtol=0)
    assert kernel["rolls"][0].sum() > 0 and kernel["charged"][0].sum() > 0


def test_replayed_accounts_have_their_terms(made):
    """Every account the tape originates comes back with its terms (rate to rounding, the rest exactly)."""
    sc, accounts, _, rows, _ = made
    replayed = backtesting.replay_accounts(rows, Path("t.parquet"), sc, 0.0)
    order = np.argsort(accounts.account_id)
    back = np.argsort(replayed.account_id)
    assert len(replayed.account_id) == len(accounts.account_id)
    for field in ("account_id", "borrower", "product", "band", "start_month", "principal", "term", "method", "fee",
                  "discount", "limit", "line_cap", "payer", "spend", "payment"):
        np.testing.assert_array_equal(getattr(replayed, field)[back], getattr(accounts, field)[order], err_msg=field)
    for field in ("rate", "eir", "pd_12m", "hazard_q"):
        np.testing.assert_allclose(getattr(replayed, field)[back], getattr(accounts, field)[order], rtol=1e-12,
                                   err_msg=field)
    assert np.all(np.diff(replayed.borrower) >= 0)
    assert (backtesting.replay_accounts(rows, Path("t.parquet"), sc, 0.25).fraud_share == 0.25).all()


def test_the_scenarios_scorecard_gives_the_replayed_pd(made):
    """With the features the replay's pd_12m is the scenario's scorecard's (that made the tape: the
    run's own); with the score only, the pd of the score; without either, the tape's pd_12m. A
    scenario with another intercept gives other PDs."""
    sc, accounts, _, rows, _ = made
    order = np.argsort(accounts.account_id)
    for dropped in ([], list(writer.FEATURES), ["score", *writer.FEATURES]):
        replayed = backtesting.replay_accounts(rows.drop(columns=dropped), Path("t.parquet"), sc, 0.0)
        np.testing.assert_allclose(np.sort(replayed.pd_12m), np.sort(accounts.pd_12m[order]), rtol=1e-9)
    higher = sc.scorecard.intercept + 0.6                                   # log-odds up 0.6: PDs about 1.8 times
    other = sc.model_copy(update={"scorecard": sc.scorecard.model_copy(update={"intercept": higher})})
    assert backtesting.replay_accounts(rows, Path("t.parquet"), other, 0.0).pd_12m.mean() > 1.5 * accounts.pd_12m.mean()


def test_a_purchase_without_its_fee_takes_the_fee_of_its_apr(made):
    sc, _, _, rows, _ = made
    with_fee = backtesting.replay_accounts(rows, Path("t.parquet"), sc, 0.0)
    without = backtesting.replay_accounts(rows.drop(columns="fee"), Path("t.parquet"), sc, 0.0)
    buy = with_fee.fee > 0
    assert buy.any()
    np.testing.assert_allclose(without.fee[buy], with_fee.fee[buy], atol=1.0)     # a cent of rounding


@pytest.fixture(scope="module")
def shipped():
    return reader.read(SHIPPED)[0]


def test_a_scenario_stays_in_the_band_of_its_own_tape(shipped):
    """The shipped tape against the scenario that made it (other draws): every figure inside the 95% band
    in at least 90% of its points. Under a downturn of -2 sd from the first month every figure falls
    below 90%; with roll rates from M1 and M2 much higher, the roll figures do (the ratios hold: the
    hazard is solved for each account's pd_12m under the scenario's roll rates)."""
    ds = backtesting.run(shipped, SHIPPED, SCENARIO, OTHER_SEED, paths=100)
    for name in backtesting.FIGURES:
        attrs = ds[f"{name}_observed"].attrs
        assert attrs["points_compared"] >= 30, name
        assert attrs["points_in_band"] >= 0.9 * attrs["points_compared"], (name, attrs)
    for change, caught in (([f"macro.shift={[-2.0] * 36}"], list(backtesting.FIGURES)),
                           (["behaviour.roll_rates=[0.7,0.97,0.97,0.98,0.98,0.99]"], ["roll_current", "roll_M1", "roll_M2"])):
        wrong = backtesting.run(shipped, SHIPPED, SCENARIO, OTHER_SEED + change, paths=100)
        for name in caught:
            attrs = wrong[f"{name}_observed"].attrs
            assert attrs["points_in_band"] < 0.9 * attrs["points_compared"], (change, name, attrs)


def test_out_of_time_compares_only_later_months_and_vintages(shipped):
    ds = backtesting.run(shipped, SHIPPED, SCENARIO, OTHER_SEED, paths=20, from_month=12)
    assert np.isnan(ds["dpd30_ratio_observed"].sel(month=slice(None, 12))).all()
    assert ds["dpd30_ratio_observed"].attrs["points_compared"] == 36 - 12
    curve = ds["charge_off_curve_observed"].attrs["points_compared"]
    assert 0 < curve < ds.sizes["months_on_book"]          # vintages 13 .. 24 only: seen at most 23 months


def test_the_band_is_the_same_whatever_the_threads(shipped):
    one = backtesting.run(shipped, SHIPPED, SCENARIO, OTHER_SEED, paths=4, threads=1)
    two = backtesting.run(shipped, SHIPPED, SCENARIO, OTHER_SEED, paths=4, threads=2)
    assert one.identical(two)


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_the_wilson_interval_is_scipys(level):
    from scipy.stats import binomtest

    for n in (1, 2, 7, 40, 1000):
        for k in sorted({0, 1, n // 3, n - 1, n}):
            want = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
            low, high = calibration.wilson_interval(k, n, level)
            assert (float(low), float(high)) == pytest.approx((want.low, want.high), abs=1e-12), (k, n)
    low, high = calibration.wilson_interval(np.array([0, 3]), np.array([0, 0]))
    assert np.isnan(low).all() and np.isnan(high).all()                   # no trials: no interval


def test_the_tapes_roll_rates_have_wilson_intervals(shipped):
    """Each month's roll rate of the tape is events / trials with scipy's Wilson interval at the band's
    level; a rate from no events is 0, flagged, and named in the table with its interval."""
    from scipy.stats import binomtest

    ds = backtesting.run(shipped, SHIPPED, SCENARIO, OTHER_SEED, paths=4, level=0.9)
    for name in backtesting.SHARES_OF_ACCOUNTS:
        events, trials = ds[f"{name}_events"].values, ds[f"{name}_trials"].values
        rate = ds[f"{name}_observed"].values
        compared = np.isfinite(rate)
        assert compared.sum() >= 30
        np.testing.assert_allclose(rate[compared], events[compared] / trials[compared], rtol=1e-12)
        for month in np.flatnonzero(compared):
            want = binomtest(int(events[month]), int(trials[month])).proportion_ci(0.9, method="wilson")
            got = ds[f"{name}_observed_low"].values[month], ds[f"{name}_observed_high"].values[month]
            assert got == pytest.approx((want.low, want.high), abs=1e-12)
        assert np.isnan(ds[f"{name}_observed_low"].values[~compared]).all()
        np.testing.assert_array_equal(ds[f"{name}_no_events"].values, compared & (events == 0))
        assert ds[f"{name}_observed"].attrs["points_without_events"] == int((compared & (events == 0)).sum())
    for name in ("dpd30_ratio", "dpd90_ratio", "charge_off_curve"):        # shares of amounts: no interval
        assert f"{name}_observed_low" not in ds
    zero = ds["roll_M2_no_events"].values
    assert zero.any()                   # the shipped tape has months whose M2 -> M3 roll rests on no events
    text = backtesting.table(ds)
    for month in ds["month"].values[zero]:
        assert f"roll M2->M3, month {month}: no events, 0 of " in text
    assert "90% Wilson score" in text


def test_missing_terms_and_bad_requests_say_so(made, shipped):
    sc, _, _, rows, _ = made
    bare = rows.drop(columns=["score", *writer.FEATURES])          # a tape without the application
    with pytest.raises(ScenarioError) as info:
        backtesting.replay_accounts(bare.drop(columns="pd_12m"), Path("t.parquet"), sc, 0.0)
    assert info.value.key == "column pd_12m"
    broken = rows.copy()
    first = broken.index[(broken["months_on_book"] == 0) & (broken["product"] == "jiebei")][0]
    broken.loc[first, "term"] = 0
    with pytest.raises(ScenarioError) as info:
        backtesting.replay_accounts(broken, Path("t.parquet"), sc, 0.0)
    assert info.value.key == f"row {broken.loc[first, 'row']}: column term"
    with pytest.raises(ScenarioError, match="--from-month"):
        backtesting.run(shipped, SHIPPED, SCENARIO, OTHER_SEED, paths=4, from_month=36)
    with pytest.raises(ScenarioError, match="months_on_book 0"):
        backtesting.replay_accounts(rows[rows["months_on_book"] > 0], Path("t.parquet"), sc, 0.0)


def test_backtest_from_the_command_line(tmp_path):
    """calibrate on months 1 .. 18, backtest the written scenario on the rest: both exit 0, write the
    scenario, the results and the report; a sweep is refused with one line and exit 2."""
    cli = [sys.executable, "-m", "simulator"]
    done = subprocess.run(cli + ["calibrate", str(SHIPPED), "--out", str(tmp_path / "early.toml"), "--extends",
                                 str(ROOT / "scenarios" / "baseline.toml"), "--until-month", "18"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(cli + ["backtest", str(SHIPPED), str(tmp_path / "early.toml"), "--set",
                                 "applicants.monthly_volume=1000", "--paths", "10", "--from-month", "18",
                                 "--out", str(tmp_path / "bt"), "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "30+ ratio" in done.stdout
    assert (tmp_path / "bt" / "backtest.nc").is_file() and (tmp_path / "bt" / "backtest.html").is_file()
    done = subprocess.run(cli + ["backtest", str(SHIPPED), str(ROOT / "scenarios" / "rate_cap_sweep.toml"),
                                 "--paths", "4", "--out", str(tmp_path / "sweep")], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "sweep" in done.stderr
    assert not (tmp_path / "sweep").exists()
    done = subprocess.run(cli + ["calibrate", str(SHIPPED), "--out", str(tmp_path / "x.toml"), "--extends",
                                 str(ROOT / "scenarios" / "baseline.toml"), "--until-month", "99"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--until-month" in done.stderr


def test_replayed_accounts_with_their_fraud_flags_give_the_runs_sums(made):
    """The tape's accounts replayed (with the run's fraud flags, known here) give every path's sums of the
    run that wrote the tape, to the cent: the replay loses nothing the kernel reads."""
    sc, accounts, totals, rows, _ = made
    replayed = backtesting.replay_accounts(rows, Path("t.parquet"), sc, 0.0)
    fraud = np.zeros(len(replayed.account_id), dtype=bool)
    fraud[np.argsort(replayed.account_id)] = accounts.fraud[np.argsort(accounts.account_id)]
    assert fraud.any()
    again = simulation.run_accounts(sc, replayed._replace(fraud=fraud))
    for name in ("stocks", "flows", "rolls", "cures", "vintage_flows", "vintage_stocks"):
        np.testing.assert_array_equal(again[name], totals[name], err_msg=name)
