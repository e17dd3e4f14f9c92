"""The revolving line, instalment purchases and borrowers with several products, against
hand computations of the documented rules, closed forms and the bivariate normal; the schedules'
rates and interest (simulator.products) against the IRR and numpy-financial."""
from __future__ import annotations

import math

import numpy as np
import numpy_financial as npf
import pytest
from scipy import stats

from simulator import codes
from simulator.engine import simulation
from simulator.model import hazard, origination, policy, population, products, provisions, scoring, terms
from simulator.codes import EQUAL_INSTALLMENT, EQUAL_PRINCIPAL, INTEREST_FIRST, PRODUCTS

from conftest import loaded_scenario

HUABEI, JIEBEI, YUEFU = (PRODUCTS.index(p) for p in ("huabei", "jiebei", "yuefu"))
ROLLS = [0.45, 0.70, 0.85, 0.90, 0.92, 0.95]
CALM = ["behaviour.prepay_monthly=0.0", "factor.asset_correlation=0.0", "factor.roll_correlation=0.0",
        "factor.borrower_correlation=0.0"]
LINES = CALM + ["products.huabei.attrition=0.0", "products.huabei.spend_probability=1.0"]
LINE_APR = 0.0005 * 365.0             # Huabei's 0.05% a day x 365: the accounts' rate a year
LINE_RATE = LINE_APR / 12.0           # their monthly rate


def half_up(x: float) -> int:
    return math.floor(x + 0.5)


def run(tmp_path, accounts, overrides, **kwargs):
    loaded = loaded_scenario(tmp_path, overrides)
    return loaded.scenario, simulation.run_accounts(loaded.scenario, accounts, **kwargs)


def lines(n, payer, limit=5000.0, spend=800.0, pd_12m=0.0, cap=None, **fields):
    """n revolving lines opened before the run: month 1 has nothing due, its spend is billed at its end."""
    return terms.accounts(
        n, ROLLS, account_id=np.arange(n), product=HUABEI, apr=LINE_APR, limit=limit, line_cap=cap or limit,
        payer=payer, spend=spend, pd_12m=np.full(n, pd_12m), **fields)


def reference_line(drawn, sc, payer, limit, cap, conversion=False):
    """The documented statement cycle of a current line, month by month, given its spends (cents):
    the statement billed at the end of the previous month is paid by type, with the interest billed
    on it; interest on what is left unpaid is billed on the next statement; then the month's spend."""
    hb = sc.products.huabei
    r = LINE_RATE
    tenor = hb.instalment_tenors[int(np.argmax(hb.instalment_tenor_shares))]
    fee_rate = hb.instalment_fees[hb.instalment_tenors.index(tenor)] / tenor
    balance = plan_left = plan_original = plan_fee = plan_k = months_current = interest_billed = 0
    out = []
    for spend in drawn:
        statement = balance - plan_left
        if conversion and plan_left == 0 and payer != codes.TRANSACTOR and statement >= hb.min_conversion * 100:
            plan_original = plan_left = statement
            plan_fee, plan_k, statement = half_up(statement * fee_rate), 0, 0
        plan_due = fee = 0
        if plan_left > 0:
            plan_k += 1
            plan_due = plan_left if plan_k >= tenor else min(plan_original // tenor, plan_left)
            fee = plan_fee
        minimum = min(max(half_up(statement * hb.min_payment_share), round(hb.min_payment_floor * 100)), statement)
        paid = {codes.TRANSACTOR: statement, codes.MINIMUM_PAYER: minimum,
                codes.REVOLVER: min(max(minimum, half_up(statement * sc.behaviour.revolver_pay_share)), statement)}[payer]
        interest_paid, interest_billed = interest_billed, half_up((statement - paid) * r)
        balance -= paid + plan_due
        plan_left -= plan_due
        months_current += 1
        if months_current >= hb.raise_after_months:
            limit = max(limit, min(cap, math.floor(limit * (1 + hb.limit_raise))))
            months_current = 0
        assert spend <= max(0, math.floor(limit / (1 + r)) - balance)
        balance += spend
        out.append({"repaid": paid + plan_due, "interest": interest_paid, "fee": fee, "balance": balance})
    return out


def test_transactors_carry_their_float_and_pay_no_interest(tmp_path):
    """A transactor's month-end balance is the month's spend (billed at its end, due next month); it
    is repaid in full the month after, pays no interest, and the float is funded."""
    sc, out = run(tmp_path, lines(1, codes.TRANSACTOR), LINES + ["run.horizon_months=12"], tape=True)
    flows = out["flows"][0].sum(axis=2)[:, HUABEI]
    drawn, balance = flows[:, codes.DRAWN], out["tape"].dense(codes.T_BALANCE)[0]
    assert np.all(drawn > 0) and np.array_equal(balance, drawn)
    assert flows[0, codes.REPAID] == 0 and np.array_equal(flows[1:, codes.REPAID], drawn[:-1])
    assert flows[:, codes.INTEREST].sum() == 0
    funding = sc.funding.cost_of_funds / 12
    assert list(flows[1:, codes.FUNDING]) == [half_up(b * funding) for b in balance[:-1]]
    many = run(tmp_path, lines(200, codes.TRANSACTOR), LINES + ["run.horizon_months=12"])[1]
    assert many["stocks"][0, :, HUABEI, :, 0, 1].sum(axis=1).min() > 0       # every month-end balance


@pytest.mark.parametrize("payer", [codes.MINIMUM_PAYER, codes.REVOLVER])
def test_revolving_interest_on_the_unpaid_statement_paid_the_month_after(tmp_path, payer):
    limit, cap = 3000.0, 4000.0
    sc, out = run(tmp_path, lines(1, payer, limit=limit, cap=cap, spend=900.0),
                  LINES + ["run.horizon_months=24", "products.huabei.conversion_rate=0.0"], tape=True)
    flows = out["flows"][0].sum(axis=2)[:, HUABEI]
    want = reference_line(flows[:, codes.DRAWN], sc, payer, limit * 100, cap * 100)
    assert [w["interest"] for w in want] == list(flows[:, codes.INTEREST])
    assert [w["repaid"] for w in want] == list(flows[:, codes.REPAID])
    assert [w["balance"] for w in want] == list(out["tape"].dense(codes.T_BALANCE)[0])
    assert flows[:, codes.INTEREST].sum() > 0
    # The line never goes over its limit.
    assert out["tape"].dense(codes.T_BALANCE)[0].max() <= cap * 100


def test_the_merchant_fee_is_a_share_of_each_purchase(tmp_path):
    """One line, one purchase a month at most: the month's merchant service fee is merchant_fee x the
    month's spend, rounded half up to the cent; no other product earns it."""
    sc, out = run(tmp_path, lines(1, codes.TRANSACTOR, limit=3000.0, spend=900.0),
                  LINES + ["run.horizon_months=24", "products.huabei.merchant_fee=0.01"])
    flows = out["flows"][0].sum(axis=2)
    drawn = flows[:, HUABEI, codes.DRAWN]
    assert list(flows[:, HUABEI, codes.MERCHANT_FEE]) == [half_up(d * 0.01) for d in drawn]
    assert drawn.sum() > 0 and flows[:, :, codes.MERCHANT_FEE].sum() == flows[:, HUABEI, codes.MERCHANT_FEE].sum()


@pytest.mark.parametrize("factor", [0.0, 0.4])
def test_a_first_miss_draws_the_loan_equivalent_factor_of_the_room(tmp_path, factor):
    """Drawdown before default: a current line that misses draws loan_equivalent_factor of the room
    under its limit (half up to the cent), a purchase with its merchant fee, billed at the month end."""
    n, balance, limit = 4000, 1000.0, 4000.0
    sc, out = run(tmp_path, lines(n, codes.MINIMUM_PAYER, limit=limit, spend=0.0, pd_12m=0.6, principal=balance),
                  CALM + ["run.horizon_months=1", f"products.huabei.loan_equivalent_factor={factor}",
                          "products.huabei.merchant_fee=0.01"], tape=True)
    misses = int(out["rolls"][0, 0, HUABEI, :, 0].sum())
    drawdown = half_up(factor * (math.floor(limit * 100 / (1.0 + LINE_RATE)) - balance * 100))
    flows = out["flows"][0, 0, HUABEI].sum(axis=0)
    assert 0.2 * n < misses < 0.8 * n
    assert flows[codes.DRAWN] == misses * drawdown
    assert flows[codes.MERCHANT_FEE] == misses * half_up(drawdown * 0.01)
    balances = out["tape"].dense(codes.T_BALANCE)[:, 0]
    missed = out["tape"].dense(codes.T_STATUS)[:, 0] == 1
    assert missed.sum() == misses and np.all(balances[missed] == balance * 100 + drawdown)


def test_bill_instalments_fee_and_principal_per_period(tmp_path):
    limit = 6000.0
    overrides = LINES + ["run.horizon_months=30", "products.huabei.conversion_rate=1.0",
                         "products.huabei.min_conversion=0.0", "products.huabei.instalment_tenor_shares=[0,0,0,1.0]"]
    sc, out = run(tmp_path, lines(1, codes.REVOLVER, limit=limit, spend=2000.0), overrides, tape=True)
    flows = out["flows"][0].sum(axis=2)[:, HUABEI]
    want = reference_line(flows[:, codes.DRAWN], sc, codes.REVOLVER, limit * 100, limit * 100, conversion=True)
    assert [w["fee"] for w in want] == list(flows[:, codes.FEES])
    assert [w["repaid"] for w in want] == list(flows[:, codes.REPAID])
    assert [w["balance"] for w in want] == list(out["tape"].dense(codes.T_BALANCE)[0])
    # Closed form: the first statement S (month 1's spend) becomes 12 parts of S // 12 and a fee of
    # 8.8% / 12 of S a period, from month 2.
    statement = flows[0, codes.DRAWN]
    assert list(flows[1:13, codes.FEES]) == [half_up(statement * 0.088 / 12)] * 12
    assert flows[13, codes.FEES] > 0 and flows[13, codes.FEES] != flows[1, codes.FEES]  # the next plan


def test_bust_out_fraud_loses_about_the_limit(tmp_path):
    """A first-party fraudster spends all it can before its first due date, never pays, and is
    charged off from M6: the loss per line is its limit (less the month's interest headroom)."""
    limit = 2000.0
    accounts = lines(50, codes.MINIMUM_PAYER, limit=limit, spend=500.0)
    accounts.fraud[:] = True
    sc, out = run(tmp_path, accounts, LINES + ["run.horizon_months=9"])
    flows = out["flows"][0].sum(axis=2)[:, HUABEI]
    room = math.floor(limit * 100 / (1 + LINE_RATE))
    assert flows[0, codes.DRAWN] == 50 * room and flows[1:, codes.DRAWN].sum() == 0  # frozen after the miss
    assert flows[7, codes.N_CHARGED_OFF] == 50                                        # months 2 .. 7 missed
    assert flows[7, codes.CHARGED_OFF_AMT] == flows[0, codes.DRAWN]
    assert flows[:, codes.REPAID].sum() == 0 and flows[:, codes.INTEREST].sum() == 0
    assert flows[7, codes.WRITTEN_OFF] > 0                                            # interest owed, never paid


def test_attrition_closes_lines_and_activity_thins_spend(tmp_path):
    """With attrition a, a current line stops spending with probability a a month and closes once it
    owes nothing: a transactor has paid its statement before it decides, so it closes that month and
    n (1 - a)^t lines are open at the end of month t. With spend probability s, a share s of the
    open transactors spent in the month (a positive month-end balance)."""
    n, a, s = 20_000, 0.1, 0.6
    sc, out = run(tmp_path, lines(n, codes.TRANSACTOR),
                  CALM + ["run.horizon_months=12", f"products.huabei.attrition={a}",
                          f"products.huabei.spend_probability={s}"], tape=True)
    open_lines = out["stocks"][0, :, HUABEI, :, :, 0].sum(axis=(1, 2))
    for t in range(1, 13):
        p = (1 - a) ** t
        assert abs(open_lines[t - 1] - n * p) <= 5 * math.sqrt(n * p * (1 - p)), (t, open_lines[t - 1], n * p)
    closed = out["flows"][0].sum(axis=2)[:, HUABEI, codes.N_CLOSED]
    assert closed.sum() == n - open_lines[-1]
    spent = (out["tape"].dense(codes.T_BALANCE) > 0).sum(axis=0)    # closed lines have a zero balance
    for t in range(12):
        assert abs(spent[t] - s * open_lines[t]) <= 5 * math.sqrt(open_lines[t] * s * (1 - s)), t


def purchases(n, price, tenor, fee_rate, discount, pd_12m=0.0, start=1):
    return terms.accounts(
        n, ROLLS, account_id=np.arange(n), product=YUEFU, start_month=start, principal=price, term=tenor,
        method=1, fee_rate=fee_rate, discount_rate=discount, pd_12m=np.full(n, pd_12m))


def test_instalment_purchase_fees_principal_and_merchant_discount(tmp_path):
    n, price, tenor = 10, 1234.56, 6
    sc, out = run(tmp_path, purchases(n, price, tenor, 0.0075, 0.02), CALM + ["run.horizon_months=9"])
    flows = out["flows"][0].sum(axis=2)[:, YUEFU]
    assert flows[0, codes.DISCOUNT] == n * half_up(123456 * 0.02) == n * 2469
    assert flows[0, codes.ORIGINATED] == n * 123456
    assert list(flows[1:7, codes.FEES]) == [n * half_up(123456 * 0.0075)] * 6       # 9.26 a period
    assert list(flows[1:7, codes.REPAID]) == [n * (123456 // 6)] * 5 + [n * (123456 - 5 * (123456 // 6))]
    assert flows[:, codes.INTEREST].sum() == 0
    assert flows[6, codes.N_MATURED] == n


def test_instalment_purchase_late_fee_per_day(tmp_path):
    """Miss in month 1, cure in month 2: the late fee is 0.05% a day on the overdue principal."""
    overrides = CALM + ["run.horizon_months=2", "behaviour.roll_rates=[0,0,0,0,0,0]"]
    sc, out = run(tmp_path, purchases(1, 3000.0, 3, 0.01, 0.0, pd_12m=1.0, start=0), overrides)
    flows = out["flows"][0].sum(axis=2)[:, YUEFU]
    overdue = 300000 // 3
    yf = sc.products.yuefu
    assert flows[1, codes.PENALTY] == half_up(overdue * yf.penalty_daily_rate * yf.days_per_year / 12)   # 15.21
    assert flows[1, codes.FEES] == 2 * 3000                                   # both months' fees
    assert flows[1, codes.REPAID] == 2 * overdue


def test_kernel_terms_take_each_product_by_its_kind(tmp_path):
    """Each product's penalty from its own penalty_daily_rate; a term a kind lacks is neutral: only a
    loan charges a fixed late fee, and a line has no prepayment."""
    sc = loaded_scenario(tmp_path, ["products.huabei.penalty_daily_rate=0.0003", "products.yuefu.penalty_daily_rate=0.0007",
                                    "products.yuefu.days_per_year=360.0", "products.jiebei.late_fee=12.5",
                                    "products.jiebei.prepayment=false"]).scenario
    kernel = terms.kernel_terms(sc, policy.bill_instalment_terms(sc.products, sc.policy),
                                provisions.EclTable(np.zeros(1), 1.0, 0.0, 1.0))
    assert kernel.penalty_rate.tolist() == [0.0003 * 365.0 / 12, 0.0005 * 365.0 / 12, 0.0007 * 360.0 / 12]
    assert kernel.late_fee.tolist() == [1250 if kind == codes.LOAN else 0 for kind in codes.KIND]
    assert kernel.prepayment.tolist() == [kind == codes.PLAN for kind in codes.KIND]


def bivariate_normal_cdf(a: float, b: float, rho: float) -> float:
    return stats.multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([a, b])


@pytest.mark.parametrize("rho_b", [0.0, 0.3])
def test_joint_miss_rate_of_a_borrowers_two_products(tmp_path, rho_b):
    n, h_loan, h_buy = 100_000, 0.05, 0.08
    pd_loan, pd_buy = hazard.pd12_from_hazard(np.array([h_loan, h_buy]), ROLLS)
    ids = np.repeat(np.arange(n), 2)
    product = np.tile([JIEBEI, YUEFU], n)
    accounts = terms.accounts(
        2 * n, ROLLS, account_id=np.arange(2 * n), borrower=ids, product=product, principal=1000.0, apr=0.12,
        term=12, method=2, pd_12m=np.where(product == JIEBEI, pd_loan, pd_buy))
    sc, out = run(tmp_path, accounts, CALM + ["run.horizon_months=1", f"factor.borrower_correlation={rho_b}"])
    missed = out["rolls"][0, 0, :, :, 0].sum(axis=1)
    at_least_one = out["borrowers"][0, 0, :, 1].sum()
    both = missed[JIEBEI] + missed[YUEFU] - at_least_one
    from scipy.special import ndtri
    p_both = bivariate_normal_cdf(ndtri(h_loan), ndtri(h_buy), rho_b)
    assert abs(both - n * p_both) <= 5 * math.sqrt(n * p_both * (1 - p_both)), (both, n * p_both)
    for p, h in ((JIEBEI, h_loan), (YUEFU, h_buy)):      # the marginals are unchanged
        assert abs(missed[p] - n * h) <= 5 * math.sqrt(n * h * (1 - h))
    assert out["borrowers"][0, 0].sum() == n


def test_borrower_counts_equal_account_counts_for_one_product_each(tmp_path):
    loaded = loaded_scenario(tmp_path, ["applicants.monthly_volume=500", "applicants.origination_months=6",
                                        "run.horizon_months=12", "applicants.also_requests={}"])
    accounts, _ = origination.prepare(loaded.scenario)
    out = simulation.run_accounts(loaded.scenario, accounts)
    assert len(np.unique(accounts.borrower)) == len(accounts.borrower)
    assert np.array_equal(out["borrowers"], out["stocks"][..., 0].sum(axis=2))


def test_shared_limit_is_never_exceeded(tmp_path):
    loaded = loaded_scenario(tmp_path, [
        "applicants.monthly_volume=3000", "applicants.origination_months=6", "run.horizon_months=18",
        "applicants.also_requests={huabei=0.9, jiebei=0.6, yuefu=0.6}", "applicants.huabei.spend_median=5000.0",
        "behaviour.payer_shares=[0.2,0.4,0.4]", "products.huabei.limit_raise=0.5", "products.huabei.raise_after_months=2"])
    sc = loaded.scenario
    apps = population.applicants(sc)
    scores = scoring.score_applicants(apps, sc.scorecard, sc.applicants, sc.run.seed)
    dec = policy.decide(apps, scores, sc)
    accounts = origination.new_accounts(sc, apps, scores, scoring.score_band(scores["score"], sc.scorecard.bands), dec)
    out = simulation.run_accounts(sc, accounts, tape=True)
    balance = out["tape"].dense(codes.T_BALANCE)
    total = np.zeros((len(apps["id"]), sc.run.horizon_months), dtype=np.int64)
    np.add.at(total, accounts.borrower, balance)
    several = np.bincount(accounts.borrower, minlength=len(apps["id"])) >= 2
    assert several.sum() > 1000
    assert np.all(total <= np.round(dec["total_limit"] * 100).astype(np.int64)[:, None])
    line = accounts.product == HUABEI
    assert np.all(balance[line] <= accounts.line_cap[line][:, None])
    # Allocations at origination add up to at most the total limit.
    alloc = dec["amount"][:, JIEBEI] + dec["amount"][:, YUEFU] + dec["line_cap"].sum(axis=1)
    assert np.all(alloc <= dec["total_limit"] + 1e-9)


def test_plan_rate_inverts_the_fee_and_is_the_irr():
    """The effective rate of a flat-fee plan: the inverse of fee_rate_for_apr, and the IRR of its cents."""
    apr = np.array([0.0, 0.05, 0.15, 0.36, 1.2])
    periods = np.array([3, 6, 12, 12, 24])
    out = np.empty(len(apr))
    products.plan_rates(products.fee_rate_for_apr(apr, periods), periods, out)
    np.testing.assert_allclose(out * 12, apr, rtol=1e-12, atol=1e-14)
    rows = products.instalment_plan_cents(1_200_000, 12, 9_000)        # 0.75% a period on 12,000 yuan
    irr = products.irr_apr(12_000.0, rows[:, 0] / 100) / 12
    products.plan_rates(np.array([0.0075]), np.array([12]), out[:1])
    assert out[0] == pytest.approx(irr, rel=1e-12)


def test_plan_rates_solved_side_by_side_are_each_solved_alone():
    """plan_rates solves four plans at a time: each plan's rate is, to the bit, what it is alone, for any
    number of plans (a last group of one to four) and with plans that need no solving between them."""
    rng = np.random.default_rng(5)
    fee = np.where(rng.random(23) < 0.2, 0.0, rng.uniform(0.001, 0.03, 23))
    periods = rng.choice([1, 3, 6, 12, 24], 23).astype(np.int64)
    together = np.empty(23)
    products.plan_rates(fee, periods, together)
    alone = np.empty(1)
    for i in range(23):
        products.plan_rates(fee[i:i + 1], periods[i:i + 1], alone)
        assert alone[0] == together[i], i
    for k in range(1, 6):
        some = np.empty(k)
        products.plan_rates(fee[-k:], periods[-k:], some)
        np.testing.assert_array_equal(some, together[-k:])


@pytest.mark.parametrize("method, npf_interest", [
    (EQUAL_INSTALLMENT, lambda p, r, n: -n * npf.pmt(r, n, p) - p),
    (EQUAL_PRINCIPAL, lambda p, r, n: sum((p - k * p / n) * r for k in range(n))),
    (INTEREST_FIRST, lambda p, r, n: p * r * n),
])
def test_scheduled_interest_against_numpy_financial(method, npf_interest):
    for p, r, n in [(10_000.0, 0.012, 12), (6_000.0, 0.01, 12), (500.0, 0.02, 3)]:
        got = products.scheduled_interest(np.array([method]), np.array([p]), np.array([r]), np.array([n]))[0]
        assert got == pytest.approx(npf_interest(p, r, n), rel=1e-12)
