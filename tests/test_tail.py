"""Tail estimation: importance sampling of the factor against the one-factor closed form, honest
standard errors across seeds, weighted statistics that reduce to the plain ones, the VaR and expected
shortfall estimators against closed forms."""
from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from scipy import stats
from scipy.special import ndtr, ndtri

from simulator import codes
from simulator.model import hazard, tail
from simulator.reporting import summary
from simulator.codes import PRODUCTS
from simulator.config.loader import load_scenario

from conftest import identical_book, run_book

JIEBEI = PRODUCTS.index("jiebei")
N_LOANS, HORIZON, HAZARD, RHO = 2000, 12, 0.01, 0.1


def closed_form(q: float) -> float:
    """Charged-off share at loss quantile q: one factor draw per path, roll rates 1, so a first miss
    in month t is charged off in month t + 6: 1 - (1 - p(z))^(H - 6), z = Phi^-1(1 - q)."""
    p = ndtr((ndtri(HAZARD) + math.sqrt(RHO) * ndtri(q)) / math.sqrt(1 - RHO))
    return 1 - (1 - p) ** (HORIZON - 6)


def homogeneous_book(tmp_path, paths: int, quantile: float, seed: int = 1):
    """(charged-off share per path, path weights) of 2,000 identical interest-first loans."""
    pd_12m = float(hazard.pd12_from_hazard(np.array([HAZARD]), [1.0] * 6)[0])
    accounts = identical_book(N_LOANS, 1000.0, 0.15, 36, "interest_first", pd_12m, [1.0] * 6)
    sc, _, flows, _, _ = run_book(tmp_path, accounts, [
        "behaviour.roll_rates=[1,1,1,1,1,1]", "behaviour.recovery_rate=0.0", "behaviour.prepay_monthly=0.0",
        "factor.autocorrelation=1.0", f"factor.asset_correlation={RHO}", "factor.borrower_correlation=0.0",
        f"run.horizon_months={HORIZON}", f"run.paths={paths}", f"capital.importance_quantile={quantile}",
        f"run.seed={seed}"])
    share = flows[:, :, JIEBEI, codes.CHARGED_OFF_AMT].sum(axis=1) / (N_LOANS * 100_000)
    return share, tail.factor_innovations(sc)[1]


def test_importance_sampling_reaches_the_closed_form_quantiles(tmp_path):
    """400 paths with importance sampling: the 99% and 99.9% VaR equal the closed form within 3 of their
    stated standard errors (with the binomial noise of a 2,000-loan book added). Plain Monte Carlo with
    the same 400 paths has 4 paths beyond 99% and none or one beyond 99.9%: the rule marks both, and at
    99% its standard error is over twice importance sampling's."""
    levels = [0.99, 0.999]
    share, weights = homogeneous_book(tmp_path, 400, 0.999)
    got = tail.tail_statistics(share, weights, levels)
    plain_share, plain_weights = homogeneous_book(tmp_path, 400, 0.0)
    plain = tail.tail_statistics(plain_share, plain_weights, levels)
    assert np.all(plain_weights == 1.0)
    for j, q in enumerate(levels):
        want = closed_form(q)
        binomial = math.sqrt(want * (1 - want) / N_LOANS)
        assert abs(got["var"][j] - want) <= 3 * math.hypot(got["var_se"][j], binomial), (q, got["var"][j], want)
        assert got["tail_paths"][j] >= 50
        assert plain["tail_paths"][j] < tail.MIN_TAIL_PATHS
    assert plain["var_se"][0] / got["var_se"][0] > 2.0


@pytest.mark.slow   # many paths: the errors' coverage over repeated runs
def test_stated_errors_are_honest_with_importance_sampling(tmp_path):
    """Across 40 seeds (300 paths each, importance sampling), the spread of the 99.9% VaR estimates
    agrees with their mean stated standard error within a factor of 1.5."""
    estimates, errors = [], []
    for seed in range(40):
        share, weights = homogeneous_book(tmp_path, 300, 0.999, seed=seed + 1)
        out = tail.tail_statistics(share, weights, [0.999])
        estimates.append(out["var"][0])
        errors.append(out["var_se"][0])
    ratio = np.std(estimates, ddof=1) / np.mean(errors)
    assert 1 / 1.5 <= ratio <= 1.5, ratio


@pytest.mark.slow   # many paths: the errors' coverage over repeated runs
def test_stated_errors_are_honest_with_plain_monte_carlo():
    """The same check for plain Monte Carlo on the one-factor loss itself (20,000 paths a seed, so about
    20 beyond the 99.9% quantile; the kernel would need 40 x 20,000 paths): spread / mean stated error
    within a factor of 1.5."""
    estimates, errors = [], []
    for seed in range(40):
        z = stats.norm.rvs(size=20_000, random_state=np.random.default_rng(seed))
        p = ndtr((ndtri(HAZARD) - math.sqrt(RHO) * z) / math.sqrt(1 - RHO))
        loss = 1 - (1 - p) ** (HORIZON - 6)
        out = tail.tail_statistics(loss, np.ones_like(loss), [0.999])
        estimates.append(out["var"][0])
        errors.append(out["var_se"][0])
        assert out["tail_paths"][0] >= tail.MIN_TAIL_PATHS
    ratio = np.std(estimates, ddof=1) / np.mean(errors)
    assert 1 / 1.5 <= ratio <= 1.5, ratio
    assert abs(np.mean(estimates) - closed_form(0.999)) <= 3 * np.std(estimates, ddof=1) / math.sqrt(40)


def test_weights_of_one_give_the_plain_statistics_bit_for_bit():
    x = stats.lognorm.rvs(0.8, size=999, random_state=np.random.default_rng(3))
    out = tail.tail_statistics(x, np.ones_like(x), [0.95, 0.99, 0.999])
    ordered = np.sort(x)
    for j, q in enumerate((0.95, 0.99, 0.999)):
        k = math.ceil(len(x) * q)                              # the ceil(n q)-th smallest
        assert out["var"][j] == ordered[k - 1]
        assert out["es"][j] == ordered[k - 1:].mean()
        assert out["tail_paths"][j] == len(x) - k + 1
    assert out["mean"] == np.sum(x) / len(x)
    da = xr.DataArray(x.reshape(9, 111), dims=("month", "path"))
    ones = xr.DataArray(np.ones(111), dims="path")
    assert tail.path_mean(da, ones).identical(da.mean("path"))
    assert tail.path_sum(da, ones).identical(da.sum("path"))
    assert tail.tail_statistics(np.arange(1, 101.0), np.ones(100), [0.95])["var"][0] == 95.0


def test_weights_average_one_and_are_bounded(scenario_file):
    """Under importance sampling the likelihood ratios against the defensive mixture average 1 within 3
    standard errors and never exceed 1 / DEFENSIVE_SHARE; without it they are all 1."""
    sc = load_scenario(scenario_file(), ["run.paths=20000", "capital.importance_quantile=0.999"]).scenario
    drawn, w = tail.factor_innovations(sc)
    assert abs(w.mean() - 1.0) <= 3 * w.std(ddof=1) / math.sqrt(len(w))
    assert w.max() <= 1 / tail.DEFENSIVE_SHARE
    window = tail.capital_window(sc)
    mu = tail.innovation_shift(sc.run.horizon_months, window, 0.999, sc.factor.autocorrelation)
    assert np.linalg.norm(mu) == pytest.approx(ndtri(0.999))
    # Even paths are drawn as without importance sampling, odd ones shifted by mu (keyed draws unchanged).
    plain = hazard.factor_innovations(sc.run.seed, sc.run.paths, sc.run.horizon_months)
    np.testing.assert_array_equal(drawn[0::2], plain[0::2])
    np.testing.assert_allclose(drawn[1::2], plain[1::2] + mu)
    off = load_scenario(scenario_file(), ["run.paths=50"]).scenario
    assert np.all(tail.factor_innovations(off)[1] == 1.0)


def test_capital_year_and_irb_exposure_of_the_same_book(scenario_file):
    """The capital year is the book at month m and its loss and pre-tax income in months m+1 .. m+12:
    with no new business after m it is the whole book's; otherwise the whole book's less the later
    vintages'. IRB capital is on the same book at month m: its performing balance plus the loan-equivalent factor of
    the lines' undrawn limit."""
    from simulator.engine import simulation

    base = ["run.paths=3", "applicants.monthly_volume=400", "run.horizon_months=20"]
    ds = simulation.simulate(load_scenario(scenario_file(), [*base, "applicants.origination_months=6"]))
    assert ds.attrs["capital_month"] == 6 and ds.attrs["capital_window"] == "months 7 .. 18"
    window = ds.sel(month=slice(7, 18)).sum(("month", "score_band"))
    np.testing.assert_allclose(ds["capital_loss"], window["charged_off"] - window["recovered"])
    np.testing.assert_allclose(ds["capital_profit"], window["pretax_income"], atol=1e-6)

    ds = simulation.simulate(load_scenario(scenario_file(), [*base, "applicants.origination_months=20",
                                                           "capital.month=5", "products.huabei.loan_equivalent_factor=0.25"]))
    assert ds.attrs["capital_window"] == "months 6 .. 17"
    window = ds.sel(month=slice(6, 17)).sum(("month", "score_band"))
    later = ds.sel(vintage=slice(6, None))
    month_of = later["vintage"] + later["months_on_book"]
    in_window = (month_of >= 6) & (month_of <= 17)
    new_loss = ((later["vintage_charged_off"] - later["vintage_recovered"]).where(in_window, 0.0)
                .sum(("vintage", "months_on_book")))
    assert float(new_loss.sum()) > 0
    np.testing.assert_allclose(ds["capital_loss"], window["charged_off"] - window["recovered"] - new_loss)
    # The later vintages' pre-tax income in the window: earnings - costs - net charge-offs - accrued interest
    # written off - their allowance at its end (they held none before they were originated).
    new_income = ((later["vintage_earnings"] - later["vintage_costs"] - later["vintage_accrued_written_off"])
                  .where(in_window, 0.0)
                  .sum(("vintage", "months_on_book")) - new_loss
                  - later["vintage_allowance"].where(month_of == 17, 0.0).sum(("vintage", "months_on_book")))
    np.testing.assert_allclose(ds["capital_profit"], window["pretax_income"] - new_income, atol=1e-6)
    performing = ds["balance"].sel(month=5, state=["current", "M1", "M2", "M3"]).sum("state")
    undrawn = ds["line_limit"].sel(month=5) - performing.sel(product="huabei")
    assert float(undrawn.min()) >= 0
    ead = performing.mean("path")
    ead.loc[dict(product="huabei")] = ead.sel(product="huabei") + 0.25 * undrawn.mean("path")
    np.testing.assert_allclose(ds["irb_exposure"].transpose(*ead.dims), ead, rtol=1e-12)


def test_summary_mode_keeps_the_tail_and_the_means(scenario_file):
    """The summary mode's per-path series equal the full mode's per-path totals summed over score bands,
    bit for bit; its means equal the full mode's means over paths; the tail figures are the same."""
    from simulator.engine import simulation

    base = ["run.paths=40", "applicants.monthly_volume=300", "run.horizon_months=18", "applicants.origination_months=6",
            "engine.task_paths=7", "engine.task_borrowers=150"]
    full = simulation.simulate(load_scenario(scenario_file(), [*base, 'run.results="full"']))
    summary_ds = simulation.simulate(load_scenario(scenario_file(), [*base, 'run.results="summary"']))
    assert full.attrs["results_mode"] == "full" and summary_ds.attrs["results_mode"] == "summary"
    assert "path" not in summary_ds["balance"].dims and "path" in full["balance"].dims
    by_path = full.sum("score_band")
    series = {"path_month_loss": by_path["charged_off"] - by_path["recovered"],
              "path_month_balance": by_path["balance"].sum("state"),
              "path_month_dpd90_balance": by_path["balance"].sel(state=["M4", "M5", "M6"]).sum("state")}
    for name, want in series.items():
        cents = np.round(want.transpose("path", "month", "product").values * 100)     # the same integer cents
        np.testing.assert_array_equal(np.round(summary_ds[name].values * 100), cents)
        np.testing.assert_array_equal(summary_ds[name].values, full[name].values)
    for name in ("capital_loss", "capital_profit", "path_loss", "path_weight"):
        np.testing.assert_array_equal(summary_ds[name].values, full[name].values)
    for name in ("balance", "charged_off", "accounts", "vintage_charged_off"):
        np.testing.assert_allclose(summary_ds[name].values, full[name].mean("path").values, rtol=1e-12)
    for name in ("value_at_risk", "expected_shortfall", "tail_paths", "economic_capital", "irb_capital_total"):
        np.testing.assert_allclose(summary_ds[name].values, full[name].values, rtol=1e-12)
    assert summary.headline(summary_ds)["net_revenue"] == pytest.approx(summary.headline(full)["net_revenue"], rel=1e-12)


def test_summary_mode_is_the_same_whatever_the_task_split(scenario_file):
    """Weighted means are folded in path-block order: the same bits for any task sizes, with importance
    sampling too."""
    from simulator.engine import simulation

    base = ["run.paths=12", "applicants.monthly_volume=200", "run.horizon_months=14", "applicants.origination_months=4",
            'run.results="summary"', "capital.importance_quantile=0.99"]
    a = simulation.simulate(load_scenario(scenario_file(), [*base, "engine.task_paths=5", "engine.task_borrowers=100"]))
    b = simulation.simulate(load_scenario(scenario_file(), [*base, "engine.task_paths=12", "engine.task_borrowers=100000"]))
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


def test_path_quantile_of_any_variable():
    x = xr.DataArray(np.arange(1.0, 101.0).reshape(1, 100), dims=("month", "path"))
    ones = xr.DataArray(np.ones(100), dims="path")
    assert float(tail.path_quantile(x, ones, 0.95)[0]) == 95.0
    # Weight 3 on the largest value and 1 elsewhere: an estimated probability of 3 / 100 above 97.
    heavy = xr.DataArray(np.r_[np.ones(99), 3.0], dims="path")
    assert float(tail.path_quantile(x, heavy, 0.97)[0]) == 99.0
    assert float(tail.path_quantile(x, heavy, 0.96)[0]) == 98.0


def test_var_and_expected_shortfall_estimators():
    levels = [0.95, 0.99, 0.999]
    x = stats.norm.rvs(size=400_000, random_state=np.random.default_rng(5))
    out = tail.tail_statistics(x, np.ones_like(x), levels)
    for j, q in enumerate(levels):
        z = stats.norm.ppf(q)
        assert abs(out["var"][j] - z) <= 4 * out["var_se"][j]
        es = stats.norm.pdf(z) / (1 - q)
        assert abs(out["es"][j] - es) <= 4 * out["es_se"][j]
    e = stats.expon.rvs(size=400_000, random_state=np.random.default_rng(6))
    out = tail.tail_statistics(e, np.ones_like(e), [0.99])
    assert out["var"][0] == pytest.approx(-math.log(0.01), abs=4 * out["var_se"][0])
    assert out["es"][0] == pytest.approx(out["var"][0] + 1, abs=4 * out["es_se"][0])


def test_paired_tail_errors_of_shared_paths():
    """The paired bootstrap of tail differences: zero for a run against itself or against its losses
    shifted by a constant (VaR, ES and economic capital move by the constant in every resample), and
    close to a plain bootstrap that resamples path indices with replacement."""
    rng = np.random.default_rng(5)
    loss = rng.lognormal(10.0, 0.6, size=400)
    profit = 2e4 - 0.3 * loss + rng.normal(0, 1e3, size=400)
    w = np.ones(400)
    same = tail.paired_tail_errors((loss, loss), (profit, profit), w, 0.99, 12)
    assert all(v == 0.0 for v in same.values())
    shifted = tail.paired_tail_errors((loss, loss + 500.0), (profit, profit), w, 0.99, 12)
    assert shifted["var"] == pytest.approx(0.0, abs=1e-6) and shifted["economic_capital"] == pytest.approx(0.0, abs=1e-6)
    other = 1.2 * loss + rng.normal(0, 2e3, size=400)
    got = tail.paired_tail_errors((loss, other), (profit, profit), w, 0.99, 12)
    diffs = []
    for _ in range(2000):
        i = rng.integers(0, 400, size=400)
        a, b = np.sort(loss[i]), np.sort(other[i])
        k = math.ceil(400 * 0.99) - 1
        diffs.append((b[k] - b.mean()) - (a[k] - a.mean()))
    assert got["economic_capital"] == pytest.approx(np.std(diffs, ddof=1), rel=0.2)
