"""Expected-credit-loss provisions (simulator.provisions, the kernel's allowance) and the accounting P&L,
against outside truths: closed forms, the model's own simulated losses, accounting identities."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import identical_book, loaded_scenario
from simulator.engine import simulation
from simulator.model import products, provisions, terms
from simulator.codes import (ACCOUNTING, ALLOWANCE, COSTS, EQUAL_PRINCIPAL, FLOWS, HUABEI, METHODS, PAYER_TYPES,
                             PRODUCTS, STAGES, STATES, YUEFU)
from simulator.config.loader import load_scenario

UNCORRELATED = ["factor.asset_correlation=0", "factor.roll_correlation=0", "factor.borrower_correlation=0",
                "behaviour.fraud_rate=0", "macro.prepay_sensitivity=0", 'provisions.basis="through_the_cycle"']


def test_no_credit_risk_no_allowance(tmp_path):
    """A book with pd_12m = 0 (and no fraud) carries no allowance at any month end."""
    sc = loaded_scenario(tmp_path, ["run.paths=2", "run.horizon_months=14", "behaviour.fraud_rate=0"]).scenario
    accounts = identical_book(500, 3000.0, 0.18, 12, "equal_installment", 0.0, sc.behaviour.roll_rates)
    out = simulation.run_accounts(sc, accounts)
    assert out["stages"][..., ALLOWANCE].max() == 0 and out["opening_allowance"].max() == 0
    assert not out["accounting"][..., ACCOUNTING.index("allowance_originated"):].any()
    assert out["stages"][..., 0].sum() > 0                             # the accounts were there


@pytest.mark.parametrize("product", ["jiebei", "huabei"])
def test_book_in_m6_carries_its_loss_net_of_discounted_recoveries(tmp_path, product):
    """Every account in M6 with a certain charge-off next month carries lifetime ECL = E x [(1 + i)^-1 -
    r / L sum_(m = 1 .. L) (1 + i)^-(1 + m)]: the exposure lost at the charge-off less the recoveries r
    over the lag's L months, discounted at the account's effective rate i; the allowance is used at the
    charge-off."""
    rolls = "behaviour.roll_rates=[0.45, 0.70, 0.85, 0.90, 0.92, 1.0]"
    sc = loaded_scenario(tmp_path, ["run.paths=1", "run.horizon_months=3", rolls, "behaviour.recovery_rate=0.3",
                                    "behaviour.collection_cost=0", "behaviour.recovery_lag_months=4"]).scenario
    n, balance, apr = 400, 2500.0, 0.18
    if product == "jiebei":
        accounts = identical_book(n, balance, apr, 12, "equal_installment", 0.05, sc.behaviour.roll_rates, state=6)
    else:
        accounts = terms.accounts(n, sc.behaviour.roll_rates, account_id=np.arange(n), product=HUABEI,
                                  principal=balance, limit=2 * balance, line_cap=2 * balance,
                                  apr=apr, state0=6, pd_12m=np.full(n, 0.05), overdue0=balance / 2)
    out = simulation.run_accounts(sc, accounts)
    i, r, lag = apr / 12, 0.3, 4
    per_account = balance * ((1 + i) ** -1 - r / lag * sum((1 + i) ** -(1 + m) for m in range(1, lag + 1)))
    opening = out["opening_allowance"].sum() / 100
    assert abs(opening - n * per_account) <= n * 0.005                   # each account rounded to the cent
    assert out["opening_allowance"][..., STAGES.index("stage_3")].sum() == out["opening_allowance"].sum()
    used = out["accounting"][0, 0, ..., ACCOUNTING.index("allowance_used")].sum()
    assert used == out["opening_allowance"].sum() and out["stages"][0, 0, ..., ALLOWANCE].sum() == 0


def simulated_losses(out: dict, rate: float, lgd: float) -> tuple[np.ndarray, np.ndarray]:
    """Per path: the discounted net credit loss of the whole life (charge-offs less recoveries, each
    discounted from its month), and the discounted loss of the charge-offs within 15 months (a default
    within 12), net of their recoveries valued at the charge-off (1 - r rho = `lgd`)."""
    charged = out["flows"][..., FLOWS.index("charged_off")].sum(axis=(2, 3)) / 100
    recovered = out["flows"][..., FLOWS.index("recovered")].sum(axis=(2, 3)) / 100
    discount = (1 + rate) ** -np.arange(1, charged.shape[1] + 1)
    within = provisions.TWELVE_MONTHS
    return ((charged - recovered) * discount).sum(axis=1), (charged[:, :within] * discount[:within]).sum(axis=1) * lgd


@pytest.mark.parametrize("kind", [*METHODS, "purchase"])
def test_ecl_at_origination_is_the_models_own_discounted_loss(tmp_path, kind):
    """For identical accounts with no factor correlation: the lifetime ECL at the start equals the mean
    over paths of the simulated discounted net credit loss, and the 12-month ECL the kernel books equals
    the simulated discounted loss of the defaults within 12 months, each within 3 standard errors."""
    n, paths, term, principal, pd = 20_000, 40, 12, 5000.0, 0.08
    sc = loaded_scenario(tmp_path, [f"run.paths={paths}", "run.horizon_months=30", *UNCORRELATED]).scenario
    if kind == "purchase":
        fee = 0.01                                                      # of the price, a period
        accounts = terms.accounts(
            n, sc.behaviour.roll_rates, account_id=np.arange(n), product=YUEFU, principal=principal,
            fee_rate=fee, term=term, method=EQUAL_PRINCIPAL, pd_12m=np.full(n, pd))
        rows = products.instalment_plan_cents(int(principal * 100), term, int(principal * 100 * fee))
        rate = products.irr_apr(principal, rows[:, 0] / 100) / 12        # the IRR of the plan's cash flows
        method = EQUAL_PRINCIPAL
    else:
        accounts = identical_book(n, principal, 0.24, term, kind, pd, sc.behaviour.roll_rates)
        rate, method = 0.02, METHODS.index(kind)
    out = simulation.run_accounts(sc, accounts)
    product = int(accounts.product[0])
    beh = sc.behaviour
    q = provisions.pool_hazards(accounts, terms.n_bands(sc), beh.roll_rates, sc.factor)[0][product, accounts.band[0]]
    # The loan's prepayment rate by its price (docs/model.md section 5): 2 / (1 + exp(-k (APR - reference))).
    apr = 12 * float(accounts.eir[0])
    prepay = beh.prepay_monthly * 2 / (1 + np.exp(-beh.prepay_price_sensitivity * (apr - beh.prepay_reference_apr)))
    p_co = provisions.charge_off_probabilities(np.array([q]), np.array([prepay]), sc.factor, beh.roll_rates,
                                               sc.macro.prepay_in_force(), term + 7)
    lgd = provisions.loss_given_charge_off(sc.behaviour, np.array([rate]))
    lifetime = provisions.loan_ecl(p_co[0][:, None], method, np.array([rate]), lgd, term, lifetime=True)[0, 0, 0, term]
    life_sim, twelve_sim = simulated_losses(out, rate, lgd[0])
    se = life_sim.std(ddof=1) / np.sqrt(paths)
    assert abs(lifetime * principal * n - life_sim.mean()) < 3 * se, (lifetime * principal * n, life_sim.mean(), se)
    booked = out["opening_allowance"].sum(axis=(1, 2, 3)) / 100                        # the kernel's, per path
    assert np.all(booked == booked[0])                                   # through the cycle: no path in it
    se = twelve_sim.std(ddof=1) / np.sqrt(paths)
    assert abs(booked[0] - twelve_sim.mean()) < 3 * se, (booked[0], twelve_sim.mean(), se)
    assert booked[0] < lifetime * principal * n                        # 12 months are less than the life


def test_point_in_time_follows_the_factor(tmp_path):
    """Point in time: the probability of charge-off falls as the factor rises (a higher factor lowers the
    hazard); with no autocorrelation the factor now says nothing of the months ahead, so every node
    equals the through-the-cycle average (up to the quadrature of each)."""
    sc = loaded_scenario(tmp_path, ["factor.asset_correlation=0.1", "factor.roll_correlation=0.1"]).scenario
    q, prepay, nodes = np.array([-2.3]), np.array([0.02]), np.array([-2.0, 0.0, 2.0])
    def charge_offs(sc, *nodes):
        return provisions.charge_off_probabilities(q, prepay, sc.factor, sc.behaviour.roll_rates,
                                                   sc.macro.prepay_in_force(), 24, *nodes)

    pit = charge_offs(sc, nodes)[0].sum(axis=-1)
    assert np.all(np.diff(pit, axis=0) < 0)
    flat = loaded_scenario(tmp_path, ["factor.asset_correlation=0.1", "factor.roll_correlation=0.1",
                                      "factor.autocorrelation=0"]).scenario
    ttc = charge_offs(flat)[0, 0].sum(axis=-1)
    pit = charge_offs(flat, nodes)[0].sum(axis=-1)
    np.testing.assert_allclose(pit[:, 1:], np.broadcast_to(ttc[1:], pit[:, 1:].shape), rtol=0.03)


@pytest.fixture(scope="module")
def run_with_book(tmp_path_factory):
    """A small run with an existing book and new business, point in time, over 2 paths."""
    folder = tmp_path_factory.mktemp("book")
    book = folder / "book.csv"
    rows = ["jiebei,5000,0.146,12,equal_installment,3,current,,0.02,,,,,",
            "jiebei,2500.5,0.0,6,equal_principal,5,M1,400,0.05,,,,,",
            "jiebei,800,0.219,3,interest_first,2,M6,800,1.0,,,,,",
            "yuefu,1000,,6,,2,M2,333.34,0.05,0.0075,1500,,,",
            "huabei,1200,,,,,current,,0.03,,,4000,revolver,600",
            "huabei,300,,,,,M1,100,0.08,,,2000,,"]
    book.write_text("product,principal,apr,term_months,method,months_on_book,state,overdue,pd_12m,fee_per_period,price,"
                    "limit,payer,spend\n" + "\n".join(rows * 20) + "\n")
    scenario = folder / "s.toml"
    scenario.write_text(f'[run]\nname = "b"\n[book]\nfile = "{book}"\n')
    loaded = load_scenario(scenario, ["run.paths=2", "applicants.monthly_volume=300", "run.horizon_months=18",
                                      "applicants.origination_months=8", 'provisions.basis="point_in_time"'])
    return loaded.scenario, simulation.simulate(loaded)


def cents(x) -> np.ndarray:
    return np.round(np.asarray(x) * 100).astype(np.int64)


def test_allowance_rolls_forward_in_every_cell(run_with_book):
    """opening + originated + remeasured - released - used = closing, and the credit-loss expense =
    closing - opening + charged off + accrued interest written off - recovered, in every (path, month,
    product, band), in cents."""
    _, ds = run_with_book
    closing = cents(ds["allowance"].sum("stage"))
    opening = np.concatenate([cents(ds["opening_allowance"].sum("stage"))[:, None], closing[:, :-1]], axis=1)
    moves = {name: cents(ds[name]) for name in ACCOUNTING}
    assert np.array_equal(opening + moves["allowance_originated"] + moves["allowance_remeasured"]
                          - moves["allowance_released"] - moves["allowance_used"], closing)
    assert np.array_equal(cents(ds["credit_loss_expense"]),
                          closing - opening + cents(ds["charged_off"]) + cents(ds["accrued_written_off"])
                          - cents(ds["recovered"]))
    assert closing.sum() > 0 and cents(ds["opening_allowance"]).sum() > 0
    assert moves["allowance_used"].sum() > 0 and moves["allowance_released"].sum() > 0
    income = cents(ds["interest_income"] + ds["interest_accrual"] + ds["fee_income"] + ds["penalty_income"]
                   + ds["merchant_discount"] + ds["merchant_fee_income"]
                   - ds["funding_cost"]) - cents(ds["credit_loss_expense"]) - cents(ds["operating_costs"])
    assert np.abs(cents(ds["pretax_income"]) - income).max() <= 5     # each line rounded to the cent once


def test_stages_hold_their_states(run_with_book):
    """Whatever the staging rules (a significant increase, cure and probation months: the defaults
    here), the stages hold every open account and balance once, 90+ is always stage 3 and stage 1
    holds only current and M1 accounts (tests/test_staging.py checks the rules themselves)."""
    _, ds = run_with_book
    documented = (0, 0, 1, 1, 2, 2, 2)        # docs/model.md section 10: current, M1 | M2, M3 | M4 .. M6
    assert tuple(provisions.stage_table()) == documented
    stages, states = ds["stage_accounts"], ds["accounts"]
    np.testing.assert_array_equal(stages.sum("stage"), states.sum("state"))
    np.testing.assert_array_equal(cents(ds["stage_balance"]).sum(axis=-1), cents(ds["balance"]).sum(axis=-1))
    assert np.all(stages.sel(stage="stage_3") >= states.sel(state=["M4", "M5", "M6"]).sum("state"))
    assert np.all(stages.sel(stage="stage_1") <= states.sel(state=["current", "M1"]).sum("state"))
    assert int(stages.sel(stage="stage_2").sum()) > int(states.sel(state=["M2", "M3"]).sum())    # SICR, probation
    assert ds["stage_transfers"].sum() > 0


def test_costs_are_counts_times_rates(run_with_book):
    """Acquisition per account originated, servicing per account open at a month end, collection per
    delinquent account at a month end, by product."""
    sc, ds = run_with_book
    for product in PRODUCTS:
        cell = ds.sel(product=product)
        rate = {name: getattr(getattr(sc.costs, name.split("_")[0]), product) for name in COSTS}
        counts = {"acquisition_cost": cell["originated_accounts"],
                  "servicing_cost": cell["accounts"].sum("state"),
                  "collection_cost": cell["accounts"].sel(state=list(STATES[1:])).sum("state")}
        for name in COSTS:
            np.testing.assert_allclose(cell[name].values, counts[name].values * rate[name], rtol=1e-12)
    assert float(ds["operating_costs"].sum()) > 0


def test_pretax_income_in_the_headline_and_raroc(run_with_book):
    """The P&L table's pre-tax income is revenue - funding - credit-loss expense - operating costs; ROA is
    it over the average receivables; RAROC divides the capital year's pre-tax income."""
    _, ds = run_with_book
    table = ds["pnl"].sel(pnl_product="total", view="book")
    line = {str(k): float(table.sel(pnl_line=k)) for k in table["pnl_line"].values}
    assert line["pretax_income"] == pytest.approx(line["revenue"] - line["funding_cost"] - line["credit_loss_expense"]
                                                  - line["operating_costs"])
    assert line["credit_loss_expense"] == pytest.approx(line["net_charge_offs"] + line["accrued_written_off"]
                                                        + line["allowance_change"])
    horizon = ds.sizes["month"]
    roa = float(ds["pnl_yield"].sel(pnl_product="total", pnl_yield_line="return_on_assets", view="book"))
    assert roa == pytest.approx(line["pretax_income"] * 12 / horizon / line["average_balance"])
    assert float(ds["path_profit"].sum("product").mean()) == pytest.approx(line["pretax_income"])


@pytest.mark.parametrize("payer, tolerance", [("transactor", 0.03), ("revolver", 0.03), ("minimum_payer", 0.06)])
def test_line_ecl_follows_the_payer_types_balance(tmp_path, payer, tolerance):
    """A line's 12-month ECL from its payer type's expected balance (paid down as it pays, drawn as it
    spends under its limit, plus the drawdown at the first miss) against the simulated discounted loss
    of the defaults within 12 months, for identical current lines: transactors and revolvers within 3%,
    minimum payers within 6% (measured +0.7%, -1.4% and +3.9%: the recursion takes a month's spend at
    the expected balance, and leaves out bill instalments; docs/model.md 10)."""
    n, paths, apr = 20_000, 24, 0.18
    sc = loaded_scenario(tmp_path, [f"run.paths={paths}", "run.horizon_months=18", *UNCORRELATED]).scenario
    accounts = terms.accounts(n, sc.behaviour.roll_rates, account_id=np.arange(n), product=HUABEI,
                              principal=1000.0, limit=4000.0, line_cap=4000.0, apr=apr,
                              payer=PAYER_TYPES.index(payer), spend=800.0, pd_12m=np.full(n, 0.08))
    out = simulation.run_accounts(sc, accounts)
    lgd = provisions.loss_given_charge_off(sc.behaviour, np.array([apr / 12]))[0]
    _, twelve_sim = simulated_losses(out, apr / 12, lgd)
    booked = out["opening_allowance"].sum() / paths / 100
    assert abs(booked / twelve_sim.mean() - 1) < tolerance, (booked, twelve_sim.mean())


def test_a_revolver_pays_at_least_the_minimum():
    """The ECL's payer shares follow the kernel's payment (kernel._line: the larger of the revolver's
    share and the minimum): a line whose minimum is above the revolver's share has its revolvers pay
    the minimum."""
    np.testing.assert_array_equal(provisions.statement_paid(0.40, 0.10), [1.0, 0.40, 0.10])
    np.testing.assert_array_equal(provisions.statement_paid(0.40, 1.00), [1.0, 1.00, 1.00])
