"""The monthly kernel against truths from outside the code: numpy-financial schedules,
Markov chain expectations, the worked example of docs/model.md, the Vasicek distribution."""
from __future__ import annotations

import math

import numba as nb
import numpy as np
import numpy_financial as npf
import pytest
from scipy import stats
from scipy.special import ndtr, ndtri

from simulator import codes
from simulator.engine import simulation
from simulator.model import hazard, kernel, policy, provisions, rng, terms
from simulator.codes import METHODS, PRODUCTS
from simulator.model.products import schedule_cents

from conftest import JIEBEI, identical_book, loaded_scenario, run_book

ROLLS = [0.45, 0.70, 0.85, 0.90, 0.92, 0.95]
NO_RISK = ["behaviour.prepay_monthly=0.0", "factor.asset_correlation=0.0", "factor.roll_correlation=0.0"]


@pytest.mark.parametrize("method", ["equal_installment", "equal_principal", "interest_first"])
def test_riskless_book_follows_the_schedule(tmp_path, method):
    n, principal, apr, term = 40, 6000.0, 0.12, 12
    accounts = identical_book(n, principal, apr, term, method, 0.0, ROLLS)
    _, stocks, flows, _, _ = run_book(tmp_path, accounts, NO_RISK + ["run.horizon_months=14"])
    interest = flows[0, :, JIEBEI, codes.INTEREST] / 100 / n
    repaid = flows[0, :, JIEBEI, codes.REPAID] / 100 / n
    r, k = apr / 12, np.arange(1, term + 1)
    if method == "equal_installment":
        want_interest, want_principal = -npf.ipmt(r, k, term, principal), -npf.ppmt(r, k, term, principal)
    elif method == "equal_principal":
        want_principal = np.full(term, principal / term)
        want_interest = r * (principal - principal / term * (k - 1))
    else:
        want_principal = np.where(k == term, principal, 0.0)
        want_interest = np.full(term, r * principal)
    # Within the rounding of integer cents in every period (half a cent for the level payment,
    # half for the interest, half for the carried residual); the last absorbs what is left.
    assert np.all(np.abs(interest[:term] - want_interest) <= 0.015)
    assert np.all(np.abs(repaid[: term - 1] - want_principal[: term - 1]) <= 0.015)
    assert abs(repaid[term - 1] - want_principal[-1]) <= 0.01 * term
    assert abs(interest.sum() - want_interest.sum()) <= 0.01
    assert repaid.sum() == pytest.approx(principal, abs=1e-9)
    # Exactly the integer-cent schedule, times the count.
    sched = schedule_cents(method, int(principal * 100), r, term)
    assert np.array_equal(flows[0, :term, JIEBEI, codes.INTEREST], n * sched[:, 2])
    assert np.array_equal(flows[0, :term, JIEBEI, codes.REPAID], n * sched[:, 1])
    # Every account closes at maturity.
    assert stocks[0, term - 2, JIEBEI, :, 0].sum() == n
    assert stocks[0, term - 1:, JIEBEI, :, 0].sum() == 0
    assert flows[0, term - 1, JIEBEI, codes.N_MATURED] == n
    assert flows[0, :, JIEBEI, codes.CHARGED_OFF_AMT].sum() == 0


def transition_matrix(hazard_rate: float, rolls: list[float]) -> np.ndarray:
    """States current, M1 .. M6, charged off; no prepayment, no maturity."""
    p = np.zeros((8, 8))
    p[0, 0], p[0, 1] = 1 - hazard_rate, hazard_rate
    for k in range(1, 7):
        p[k, k + 1], p[k, 0] = rolls[k - 1], 1 - rolls[k - 1]
    p[7, 7] = 1.0
    return p


def test_accounts_by_state_follow_the_markov_chain(tmp_path):
    n, horizon, pd_12m = 200_000, 24, 0.08
    accounts = identical_book(n, 5000.0, 0.15, 60, "interest_first", pd_12m, ROLLS)
    h = float(hazard.hazard_from_pd12(np.array([pd_12m]), ROLLS)[0])
    _, stocks, flows, rolls, cures = run_book(tmp_path, accounts, NO_RISK + [f"run.horizon_months={horizon}"])
    simulated = np.concatenate(
        [stocks[0, :, JIEBEI, :, 0], np.cumsum(flows[0, :, JIEBEI, codes.N_CHARGED_OFF])[:, None]], axis=1)
    p = transition_matrix(h, ROLLS)
    dist = np.zeros(8)
    dist[0] = 1.0
    for t in range(horizon):
        dist = dist @ p
        expected = n * dist
        se = np.sqrt(n * dist * (1 - dist))
        assert np.all(np.abs(simulated[t] - expected) <= 5 * se + 1e-9), (t + 1, simulated[t], expected)
    # Transitions are consistent with the stocks: misses from current equal new M1 accounts.
    assert np.array_equal(rolls[0, :, JIEBEI, 0], stocks[0, :, JIEBEI, 1, 0])


def test_worked_example_pd_12m(tmp_path):
    """Roll rates 1, no prepayment: 90+ within 12 months iff the first miss is in month 1 .. 9."""
    pd_12m, n = 0.05, 200_000
    h = 1 - (1 - pd_12m) ** (1 / 9)
    assert hazard.hazard_from_pd12(np.array([pd_12m]), [1.0] * 6)[0] == pytest.approx(h, rel=1e-7)
    assert hazard.pd12_from_hazard(np.array([h]), [1.0] * 6)[0] == pytest.approx(pd_12m, rel=1e-12)
    accounts = identical_book(n, 5000.0, 0.15, 36, "interest_first", pd_12m, [1.0] * 6)
    _, stocks, flows, _, _ = run_book(tmp_path, accounts, NO_RISK + ["behaviour.roll_rates=[1,1,1,1,1,1]",
                                                                      "run.horizon_months=12"])
    reached = stocks[0, 11, JIEBEI, 4:, 0].sum() + flows[0, :, JIEBEI, codes.N_CHARGED_OFF].sum()
    assert abs(reached - n * pd_12m) <= 5 * np.sqrt(n * pd_12m * (1 - pd_12m))
    # Without cures nobody misses in month 10 .. 12 and reaches M4 by month 12.
    assert stocks[0, 11, JIEBEI, 1:4, 0].sum() == pytest.approx(n * (1 - pd_12m) * (1 - (1 - h) ** 3), rel=0.05)


def vasicek_mixture_cdf(x: np.ndarray, n: int, h: float, rho: float) -> np.ndarray:
    """P(share of n accounts missing <= x): binomial given the factor, mixed over z ~ N(0, 1)."""
    z = np.linspace(-9, 9, 30001)
    p = ndtr((ndtri(h) - np.sqrt(rho) * z) / np.sqrt(1 - rho))
    weight = stats.norm.pdf(z) * (z[1] - z[0])
    counts = np.floor(np.asarray(x) * n + 1e-9)
    return np.array([np.sum(stats.binom.cdf(c, n, p) * weight) for c in counts])


def test_month_one_miss_share_is_vasicek(tmp_path):
    n, paths, h, rho = 20_000, 300, 0.03, 0.12
    pd_12m = float(hazard.pd12_from_hazard(np.array([h]), ROLLS)[0])
    accounts = identical_book(n, 5000.0, 0.15, 12, "interest_first", pd_12m, ROLLS)
    _, _, _, rolls, _ = run_book(tmp_path, accounts, [
        "behaviour.prepay_monthly=0.0", f"factor.asset_correlation={rho}", "factor.autocorrelation=0.0",
        "run.horizon_months=1", f"run.paths={paths}"])
    share = rolls[:, 0, JIEBEI, 0] / n
    result = stats.kstest(share, lambda x: vasicek_mixture_cdf(x, n, h, rho))
    assert result.pvalue > 0.001, result
    # And it is not the independent (binomial) distribution: the spread is the factor's.
    assert share.std() > 5 * np.sqrt(h * (1 - h) / n)


def test_fraud_never_pays_and_charges_off_after_six_misses(tmp_path):
    n = 100
    accounts = identical_book(n, 1000.0, 0.2, 12, "equal_installment", 0.0, ROLLS)
    accounts.fraud[:] = True
    _, stocks, flows, _, _ = run_book(tmp_path, accounts, ["run.horizon_months=10"])
    assert flows[0, :, JIEBEI, codes.REPAID].sum() == 0
    assert flows[0, :, JIEBEI, codes.PREPAID].sum() == 0
    assert flows[0, 6, JIEBEI, codes.N_CHARGED_OFF] == n          # month 7: the seventh miss
    assert flows[0, 6, JIEBEI, codes.CHARGED_OFF_AMT] == n * 100_000


def test_recoveries_spread_over_the_lag(tmp_path):
    n, lag = 10, 4
    accounts = identical_book(n, 1000.0, 0.2, 12, "interest_first", 0.0, ROLLS)
    accounts.fraud[:] = True
    _, _, flows, _, _ = run_book(tmp_path, accounts, [
        "run.horizon_months=14", "behaviour.recovery_rate=0.3", "behaviour.collection_cost=0.1",
        f"behaviour.recovery_lag_months={lag}"])
    recovered = flows[0, :, JIEBEI, codes.RECOVERED]
    total = round(n * 100_000 * 0.3 * 0.9)
    assert recovered.sum() == total
    assert np.count_nonzero(recovered) == lag and recovered[7:7 + lag].sum() == total


def test_penalty_on_overdue_principal_in_place_of_interest(tmp_path):
    """Miss in month 1, cure in month 2 (equal principal, 1,000.00 over 12 months at 1% a month, penalty
    0.1% a day x 360 / 12 = 3% a month, late fee 30.00). By hand, in cents: month 1 owes interest
    1,000 on the 100,000 not yet due and principal 8,333, and misses both; the overdue principal
    bears penalty 8,333 x 3% = 250 instead of interest, and the unpaid interest bears none. Month 2
    accrues interest only on the 91,667 not yet due (917) and cures: it pays both months' interest,
    the penalty, the late fee and both months' principal."""
    accounts = identical_book(1, 1000.0, 0.12, 12, "equal_principal", 1.0, [0.0] * 6)
    _, stocks, flows, _, cures = run_book(tmp_path, accounts, [
        "run.horizon_months=2", "behaviour.roll_rates=[0,0,0,0,0,0]", "behaviour.prepay_monthly=0.0",
        "factor.asset_correlation=0.0", "factor.roll_correlation=0.0", "products.jiebei.late_fee=30.0",
        "products.jiebei.penalty_daily_rate=0.001", "products.jiebei.days_per_year=360.0"])
    assert stocks[0, 0, JIEBEI, 1, 0] == 1 and cures[0, 1, JIEBEI, 1] == 1
    assert flows[0, 0, JIEBEI, codes.INTEREST] == 0 and flows[0, 0, JIEBEI, codes.REPAID] == 0
    assert flows[0, 1, JIEBEI, codes.INTEREST] == 1000 + 917
    assert flows[0, 1, JIEBEI, codes.PENALTY] == 250
    assert flows[0, 1, JIEBEI, codes.FEES] == 3000
    assert flows[0, 1, JIEBEI, codes.REPAID] == 2 * 8333
    assert stocks[0, 1, JIEBEI, 0, 1] == 100_000 - 2 * 8333


def test_unpaid_interest_fees_and_penalty_are_written_off(tmp_path):
    """Never paying, a loan is charged off from M6 in month 7: charged_off is its principal, and what
    it owed besides (six months of interest on what was not yet due, the late fees, the penalty on
    overdue principal) is written off, never income. Interest-first: no principal falls due, so no
    penalty; interest 1% a month on 100,000 cents."""
    accounts = identical_book(1, 1000.0, 0.12, 12, "interest_first", 1.0, [1.0] * 6)
    _, _, flows, _, _ = run_book(tmp_path, accounts, [
        "run.horizon_months=8", "behaviour.prepay_monthly=0.0", "behaviour.roll_rates=[1,1,1,1,1,1]",
        "factor.asset_correlation=0.0", "factor.roll_correlation=0.0", "products.jiebei.late_fee=30.0"])
    assert flows[0, 6, JIEBEI, codes.CHARGED_OFF_AMT] == 100_000
    assert flows[0, 6, JIEBEI, codes.WRITTEN_OFF] == 6 * 1000 + 6 * 3000
    for income in (codes.INTEREST, codes.FEES, codes.PENALTY):
        assert flows[0, :, JIEBEI, income].sum() == 0


def test_realised_12_month_bad_rate_matches_pd_12m(tmp_path):
    """New accounts observed for 12 months on book reach 90+ at the calibrated rate."""
    n, pd_12m = 100_000, 0.06
    accounts = terms.accounts(
        n, ROLLS, account_id=np.arange(n), product=JIEBEI, start_month=1, principal=5000.0, apr=0.12,
        term=36, method=METHODS.index("interest_first"), pd_12m=np.full(n, pd_12m))
    out = simulation.run_accounts(loaded_scenario(tmp_path, NO_RISK + ["run.horizon_months=13"]).scenario, accounts)
    seasoned, bads = out["seasoned"][0, JIEBEI].sum(axis=0)
    assert seasoned == n
    assert abs(bads - n * pd_12m) <= 5 * np.sqrt(n * pd_12m * (1 - pd_12m)), bads


@nb.njit
def _cdf_decisions(u, x, cdf):
    fast = np.empty(u.shape[0], dtype=np.bool_)
    exact = np.empty(u.shape[0], dtype=np.bool_)
    for j in range(u.shape[0]):
        fast[j] = kernel._below_cdf(u[j], x[j], cdf)
        exact[j] = u[j] < 0.5 * math.erfc(-x[j] / math.sqrt(2.0))
    return fast, exact


def test_bracketed_normal_cdf_decides_exactly_as_erfc():
    """u < Phi(x) from the grid bounds equals the erfc comparison, also on and next to the grid
    points and with u equal to, or one step beside, the tabulated values."""
    cdf, _ = kernel.cdf_tables()
    k = np.arange(-kernel.CDF_HALF - 5, kernel.CDF_HALF + 5)
    on_grid = k / kernel.CDF_SCALE
    x = np.concatenate([on_grid, np.nextafter(on_grid, -np.inf), np.nextafter(on_grid, np.inf)])
    grid_values = 0.5 * np.array([math.erfc(-v / math.sqrt(2.0)) for v in x])
    u = np.concatenate([grid_values, np.nextafter(grid_values, 0.0), np.nextafter(grid_values, 1.0)])
    x = np.tile(x, 3)
    rng = np.random.default_rng(5)
    x = np.concatenate([x, rng.normal(-2.5, 2.0, 300_000), [np.inf, -np.inf, np.nan, 11.0, -11.0]])
    u = np.concatenate([u, rng.random(300_000) ** 3, [0.5, 0.5, 0.5, 0.5, 0.0]])
    fast, exact = _cdf_decisions(u, x, cdf)
    assert np.array_equal(fast, exact)
    assert exact.sum() > 1000 and (~exact).sum() > 1000      # both outcomes exercised


@nb.njit
def _miss_decisions(terms, hazard_q, z, keys, cdf, inv):
    n = hazard_q.shape[0]
    fast = np.empty(n, dtype=np.bool_)
    exact = np.empty(n, dtype=np.bool_)
    for j in range(n):
        key, borrower_key, t = keys[j, 0], keys[j, 1], keys[j, 2]
        fast[j] = kernel._missed(terms, False, hazard_q[j], rng.month_key(key, t), borrower_key, t, z[j], 0, 0.0,
                                 True, cdf, inv)
        x = hazard_q[j] - terms.sqrt_rho * z[j]                      # the formula without bounds
        x -= terms.sqrt_rho_b * rng.normal(borrower_key, t, rng.BORROWER)
        exact[j] = rng.draw(key, t, rng.MISS) < 0.5 * math.erfc(-x * terms.inv_sqrt_idio / math.sqrt(2.0))
    return fast, exact


def test_bracketed_miss_with_borrower_draw_is_the_formula(tmp_path):
    """The miss decision with the borrower-level draw, bounded by the grids, equals the plain
    formula Phi((q - sqrt(R) z - sqrt(R_b) b) / sqrt(1 - R - R_b)) draw for draw."""
    sc = loaded_scenario(tmp_path, ["factor.borrower_correlation=0.3"]).scenario
    no_accounts = terms.accounts(0, sc.behaviour.roll_rates)
    params = terms.kernel_terms(sc, policy.bill_instalment_terms(sc.products, sc.policy),
                                provisions.ecl_table(sc, no_accounts, terms.n_bands(sc), np.zeros((1, 1))))
    cdf, inv = kernel.cdf_tables()
    gen = np.random.default_rng(11)
    n = 400_000
    hazard_q = ndtri(gen.uniform(1e-4, 0.5, n))
    z = gen.normal(0.0, 1.5, n)
    keys = np.column_stack([gen.integers(0, 2**62, n), gen.integers(0, 2**62, n), gen.integers(1, 60, n)])
    fast, exact = _miss_decisions(params, hazard_q, z, keys, cdf, inv)
    assert np.array_equal(fast, exact)
    assert exact.sum() > 1000


def _probe(accounts, out):
    """Reads arrays out of a namedtuple in a loop, as the monthly kernel does."""
    for i in range(accounts.principal.shape[0]):
        out[i] += accounts.principal[i] * accounts.rate[i]


def _probe_ir(options: dict) -> str:
    compiled = nb.njit(**options)(_probe)
    accounts = terms.accounts(3, [0.5] * 6, principal=1.0, apr=0.12)
    compiled(accounts, np.zeros(3))
    return "".join(compiled.inspect_llvm().values())


def test_monthly_loop_runs_without_reference_counting():
    """The kernel's loop relies on Numba's private option _nrt=False (half its speed). A Numba that
    ignores the option would still give the same results, only slower: fail loudly here instead."""
    options = {**kernel.LOOP_OPTIONS, "cache": False}
    assert options["_nrt"] is False
    assert kernel.simulate_piece.targetoptions.get("_nrt") is False
    counted = _probe_ir({})
    assert "NRT_decref" in counted, "the probe no longer shows Numba's reference counting; update the probe"
    loop = _probe_ir(options)
    assert "NRT_incref" not in loop and "NRT_decref" not in loop, (
        f"numba {nb.__version__} no longer honours _nrt=False: the monthly loop would run about twice as slow. "
        f"Pin numba in pyproject.toml to the last version that does, or find the new way to turn it off.")


@pytest.mark.parametrize("rho, roll_rho", [(0.04, None), (0.0, 0.0)])
def test_realised_12_month_rate_is_pd_12m_over_the_cycle(tmp_path, rho, roll_rho):
    """pd_12m is through the cycle: averaged over stationary factor paths (asset correlation R,
    the default roll correlation, autocorrelation 0.7), new accounts reach 90+ within 12 months on
    book at the rate pd_12m (within 5 standard errors of the mean over paths)."""
    n, paths, pd_12m = 2_000, 1_500, 0.03
    overrides = ["behaviour.prepay_monthly=0.0", f"factor.asset_correlation={rho}", "factor.autocorrelation=0.7",
                 "run.horizon_months=13", f"run.paths={paths}"]
    if roll_rho is not None:
        overrides.append(f"factor.roll_correlation={roll_rho}")
    sc = loaded_scenario(tmp_path, overrides).scenario
    assert roll_rho is not None or sc.factor.roll_correlation > 0      # the default responds to the factor
    accounts = terms.accounts(
        n, sc.behaviour.roll_rates, sc.factor, account_id=np.arange(n), product=JIEBEI, start_month=1,
        principal=5000.0, apr=0.12, term=36, method=METHODS.index("interest_first"), pd_12m=np.full(n, pd_12m))
    seasoned, bads = simulation.run_accounts(sc, accounts)["seasoned"][:, JIEBEI].sum(axis=1).T
    assert np.all(seasoned == n)
    rate = bads / n
    se = rate.std(ddof=1) / np.sqrt(paths)
    assert abs(rate.mean() - pd_12m) <= 5 * se, (rate.mean(), se)
    # The uncorrelated calibration (the chain at a neutral factor) would fail the same check.
    if rho > 0:
        naive = hazard.pd12_from_hazard(hazard.hazard_from_pd12(np.array([pd_12m]), sc.behaviour.roll_rates),
                                        sc.behaviour.roll_rates, sc.factor)[0]
        assert abs(naive - pd_12m) > 5 * se, (naive, se)


def test_existing_book_arrears_and_lines_by_hand(tmp_path):
    """An existing book's delinquent loan carries its overdue principal: with roll rates 0 it cures in
    month 1, paying the arrears, the month's principal on its new schedule (the 800.00 not overdue
    over the 10 instalments left) and interest on what is not overdue; a line's drawn balance is the
    statement due in month 1 (a transactor pays it in full); an instalment purchase pays its fee."""
    from simulator.model import origination

    (tmp_path / "book.csv").write_text(
        "product,principal,apr,term_months,method,months_on_book,state,overdue,pd_12m,fee_per_period,price,limit,payer\n"
        "jiebei,1000,0.12,12,equal_principal,2,M2,200,0.0,,,,\n"
        "huabei,1200,,,,,current,,0.0,,,4000,transactor\n"
        "yuefu,600,,6,,3,current,,0.0,0.01,1200,,\n")
    sc = loaded_scenario(tmp_path, NO_RISK + ["run.horizon_months=1", "behaviour.roll_rates=[0,0,0,0,0,0]",
                                              "products.huabei.attrition=0.0"]).scenario
    accounts, opening = origination.book_accounts(sc, tmp_path / "book.csv")
    out = simulation.run_accounts(sc, accounts)
    flows = out["flows"][0, 0].sum(axis=1)                     # month 1, by product
    assert flows[JIEBEI, codes.REPAID] == 20_000 + 80_000 // 10 and flows[JIEBEI, codes.INTEREST] == 800
    assert out["cures"][0, 0, JIEBEI].sum() == 1 and out["stocks"][0, 0, JIEBEI, :, 0, 1].sum() == 100_000 - 28_000
    huabei, yuefu = PRODUCTS.index("huabei"), PRODUCTS.index("yuefu")
    assert flows[huabei, codes.REPAID] == 120_000 and flows[huabei, codes.INTEREST] == 0
    assert flows[yuefu, codes.REPAID] == 60_000 // 3 and flows[yuefu, codes.FEES] == 1200
    assert opening[..., 1].sum() == 100_000 + 120_000 + 60_000
