"""The lender's forward-looking scenarios (provisions.scenarios, docs/model.md section 10) against
outside truths: each named path read as a forecast as the defaults file writes it, the weighted
allowance the weighted sum of the scenarios' (linearity), one-hot weights giving that scenario's
allowance, a lender expecting a downturn providing more before it comes, and the point-in-time
allowance above the through-the-cycle one in the trough. Every run shares its realised path and
draws, so only the ECL differs between them."""
from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from simulator.codes import FORECAST_UNIT
from simulator.engine import simulation
from simulator.model import provisions

from conftest import loaded_scenario

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["applicants.monthly_volume=400", "applicants.origination_months=12", "run.paths=3", "run.horizon_months=24",
         "provisions.sensitivity_months=1", "provisions.sicr_pd_ratio=0"]   # the stages then do not depend on the weights
DEFAULT_WEIGHTS = {"baseline": 0.55, "adverse": 0.40, "severe": 0.05}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forecasts")
    done = {}

    def run(*settings: str):
        if settings not in done:
            done[settings] = simulation.simulate(loaded_scenario(folder, [*SMALL, *settings]))
        return done[settings]
    return run


def test_a_named_path_is_read_from_its_first_stressed_month(tmp_path):
    """forecasts: the shift expected j months on is the path's shift in its first month with a shift,
    plus j - 1, then 0; the path's own prepayment sensitivity; the weights as the defaults give them."""
    defaults = tomllib.loads((ROOT / "simulator" / "config" / "defaults.toml").read_text())
    paths, macro = defaults["macro"]["paths"], defaults["macro"]
    assert defaults["provisions"]["scenarios"] == DEFAULT_WEIGHTS
    sc = loaded_scenario(tmp_path, []).scenario
    ahead = provisions.forecasts(sc, 40)
    assert ahead.names == sorted(DEFAULT_WEIGHTS) == ["adverse", "baseline", "severe"]      # by name
    np.testing.assert_array_equal(ahead.weights, [DEFAULT_WEIGHTS[name] for name in ahead.names])
    severe = np.array(paths["severe"]["shift"])
    expected = np.zeros(40)
    expected[:len(severe) - 12] = severe[12:]                   # its first 12 months are calm
    np.testing.assert_array_equal(ahead.shift[2], expected)
    assert ahead.shift[2][0] == -0.3 and ahead.shift[2][5] == -1.7 and not ahead.shift[2][18:].any()
    u = np.array(paths["adverse"]["unemployment"])
    shift = -macro["unemployment_sensitivity"] * (u - macro["unemployment_reference"])
    first = int(np.flatnonzero(shift)[0])
    expected = np.zeros(40)
    expected[:len(u) - first] = shift[first:]
    np.testing.assert_allclose(ahead.shift[0], expected, rtol=0, atol=1e-15)
    assert not ahead.shift[1].any()
    np.testing.assert_array_equal(ahead.prepay_sensitivity, [paths["adverse"]["prepay_sensitivity"],
                                                             macro["prepay_sensitivity"],
                                                             paths["severe"]["prepay_sensitivity"]])


def test_the_weighted_allowance_is_the_weighted_sum_of_the_scenarios(run):
    """In every (path, month, product, stage): weighted = sum of w_k x scenario k's, to 1e-9 of it or the
    unit each account's ECL is kept in (a millionth of a cent, codes.FORECAST_UNIT) an account; in every
    cell of 1,000 yuan or more, to 1e-9 of it. The booked allowance, each account's rounded to a cent,
    is within half a cent an account of it."""
    ds = run()
    by = ds["allowance_by_scenario"]
    weighted = by.sel(forecast="weighted")
    total = sum(w * by.sel(forecast=name, drop=True) for name, w in DEFAULT_WEIGHTS.items())
    months = by["sensitivity_month"].values
    np.testing.assert_array_equal(months, np.arange(1, 25))
    accounts = ds["stage_accounts"].sum("score_band").sel(month=months).rename(month="sensitivity_month")
    unit = 0.01 / FORECAST_UNIT
    assert float(weighted.sum()) > 0
    assert np.all(np.abs(total - weighted) <= 1e-9 * np.abs(weighted) + unit * accounts)
    large = weighted >= 1000
    assert int(large.sum()) > 50
    assert np.all((np.abs(total - weighted) <= 1e-9 * weighted).where(large, True))
    booked = ds["allowance"].sum("score_band").sel(month=months).rename(month="sensitivity_month")
    assert np.all(np.abs(booked - weighted) <= 0.005 * accounts + 1e-9)
    # Stressed forecasts provide more than the base, and the weighted lies between.
    sums = by.sum(("path", "product", "stage"))
    assert np.all(sums.sel(forecast="severe") > sums.sel(forecast="adverse"))
    assert np.all(sums.sel(forecast="adverse") > sums.sel(forecast="baseline"))


def test_one_hot_weights_give_that_scenarios_allowance(run):
    """A lender with weight 1 on adverse books exactly the adverse column of the three-scenario run
    (the same chain, the same bits) and its own weighted column is that allowance."""
    three, one = run(), run("provisions.scenarios={adverse=1.0}")
    adverse = three["allowance_by_scenario"].sel(forecast="adverse", drop=True)
    np.testing.assert_array_equal(one["allowance_by_scenario"].sel(forecast="weighted", drop=True), adverse)
    np.testing.assert_array_equal(one["allowance_by_scenario"].sel(forecast="adverse", drop=True), adverse)
    months = adverse["sensitivity_month"].values
    booked = one["allowance"].sum("score_band").sel(month=months).rename(month="sensitivity_month")
    accounts = one["stage_accounts"].sum("score_band").sel(month=months).rename(month="sensitivity_month")
    assert np.all(np.abs(booked - adverse) <= 0.005 * accounts + 1e-9)
    # The books are the same: only the allowance differs.
    np.testing.assert_array_equal(one["balance"], three["balance"])


def test_a_lender_expecting_the_downturn_provides_more_before_it_comes(run):
    """Under the baseline path, at month 17 (the month before the severe path's trough begins) and at
    every month end, the lender expecting the severe path (weight 1) holds more than the one expecting
    the baseline."""
    severe = run("provisions.scenarios={severe=1.0}")["allowance"].sum(("path", "product", "score_band", "stage"))
    base = run("provisions.scenarios={baseline=1.0}")["allowance"].sum(("path", "product", "score_band", "stage"))
    assert float(severe.sel(month=17)) > float(base.sel(month=17))
    assert np.all(severe > base)


def test_point_in_time_exceeds_through_the_cycle_in_the_trough(run):
    """Under the severe path, in the trough (months 18 .. 24, shift -1.7), the point-in-time allowance
    (forecasting the baseline alone, and with the default weights) exceeds the through-the-cycle one."""
    def held(*settings):
        ds = run('macro.path="severe"', *settings)
        return ds["allowance"].sum(("path", "product", "score_band", "stage")).sel(month=slice(18, 24))
    ttc = held('provisions.basis="through_the_cycle"')
    assert np.all(held("provisions.scenarios={baseline=1.0}") > ttc)
    assert np.all(held() > ttc)
    # Through the cycle no forecast enters: every forecast's allowance is the one allowance.
    by = run('macro.path="severe"', 'provisions.basis="through_the_cycle"')["allowance_by_scenario"]
    for name in DEFAULT_WEIGHTS:
        np.testing.assert_allclose(by.sel(forecast=name), by.sel(forecast="weighted"), rtol=1e-12)


def test_a_management_overlay_is_its_own_line(run):
    """provisions.overlay = 0.1: the allowance is the modelled one (the run without an overlay, to the
    cent: the books and the model are the same) plus the overlay, which is a tenth of it within half a
    cent an account; the roll-forward of section 4 holds with it, and the credit-loss expense grows by
    the overlay's change (and by the accrued interest written off, which stage 3's income net of the
    larger allowance changes)."""
    plain, overlaid = run(), run("provisions.overlay=0.1")
    cents = lambda x: np.round(np.asarray(x) * 100).astype(np.int64)      # noqa: E731
    np.testing.assert_array_equal(plain["balance"], overlaid["balance"])
    over = overlaid["allowance_overlay"]
    assert float(over.sum()) > 0 and float(plain["allowance_overlay"].sum()) == 0
    np.testing.assert_array_equal(cents(overlaid["allowance"]) - cents(over), cents(plain["allowance"]))
    assert np.all(np.abs(over - 0.1 * plain["allowance"]) <= 0.005 * overlaid["stage_accounts"] + 1e-9)
    held = cents(overlaid["allowance"].sum("stage"))
    moved = sum(sign * cents(overlaid[name]) for sign, name in ((1, "allowance_originated"), (1, "allowance_remeasured"),
                                                                 (-1, "allowance_released"), (-1, "allowance_used")))
    np.testing.assert_array_equal(held[:, 1:], held[:, :-1] + moved[:, 1:])
    change = over.sum(("product", "score_band", "stage")).diff("month")
    extra = (overlaid["credit_loss_expense"] - plain["credit_loss_expense"]
             - overlaid["accrued_written_off"] + plain["accrued_written_off"]).sum(("product", "score_band"))
    np.testing.assert_allclose(extra.isel(month=slice(1, None)), change, atol=1e-6)
