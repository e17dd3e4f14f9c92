"""Effective-interest income (IFRS 9; run.income_basis, docs/model.md section 6) against outside truths:
numpy-financial's IRR of a plan's cash flows, the cash of riskless schedules, the accrued receivable's
roll-forward and the cash basis unchanged."""
from __future__ import annotations

import numpy as np
import numpy_financial as npf
import pytest
from conftest import identical_book, loaded_scenario

from simulator import codes
from simulator.engine import simulation
from simulator.model import policy, products, terms
from simulator.results import pnl

RISKLESS = ["behaviour.prepay_monthly=0.0", "behaviour.fraud_rate=0", "factor.asset_correlation=0",
            "factor.roll_correlation=0", "factor.borrower_correlation=0"]


def one_account(out: dict) -> dict[str, np.ndarray]:
    """Path 0's monthly figures of a run's accounts (all products and bands together), in cents: the
    flows by code, the balance and accrued interest at each month end (index 0: the start), and the
    allowance at each month end."""
    flows = out["flows"][0].sum(axis=(1, 2))                        # (month, flow)
    stages = out["stages"][0].sum(axis=(1, 2))                      # (month, stage, entry)
    return {"flows": flows, "balance": stages[..., codes.BALANCE].sum(axis=-1),
            "accrued": stages[..., codes.ACCRUED].sum(axis=-1), "allowance": stages[..., codes.ALLOWANCE].sum(axis=-1),
            "stage_3": stages[:, codes.STAGE_3, 0] > 0}


def recognised(x: dict) -> np.ndarray:
    """Each month's effective-interest income: the cash interest and fees plus the accrual."""
    return x["flows"][:, codes.INTEREST] + x["flows"][:, codes.FEES] + x["flows"][:, codes.ACCRUAL]


def test_a_plans_effective_rate_is_the_irr_of_its_cash_flows(tmp_path):
    """The kernel's eir of an instalment purchase, and of each bill instalment on offer (terms.plan_eir),
    is numpy-financial's IRR of -principal, then principal / n + fee each period."""
    principal, fee, term = 3000.0, 0.0075, 12
    acc = terms.accounts(1, [0.5] * 6, product=codes.YUEFU, principal=principal, fee_rate=fee, term=term,
                         method=codes.EQUAL_PRINCIPAL)
    rows = products.instalment_plan_cents(int(principal * 100), term, int(acc.fee[0]))
    assert float(acc.eir[0]) == pytest.approx(npf.irr([-principal * 100, *rows[:, 0]]), abs=1e-12)
    sc = loaded_scenario(tmp_path, []).scenario
    bill = policy.bill_instalment_terms(sc.products, sc.policy)
    n = int(bill["offered"][codes.HUABEI])
    tenors, rates = bill["tenors"][codes.HUABEI, :n], bill["fee_rate"][codes.HUABEI, :n]
    eir = terms.plan_eir(rates, tenors)
    assert n > 1 and np.all(eir > 0)
    for k in range(n):
        assert eir[k] == pytest.approx(npf.irr([-1.0] + [1.0 / tenors[k] + rates[k]] * int(tenors[k])), abs=1e-12)


@pytest.mark.parametrize("kind", ["equal_installment", "equal_principal", "interest_first", "purchase"])
def test_a_loan_repaid_on_schedule_recognises_its_cash_at_its_effective_rate(tmp_path, kind):
    """A riskless account on schedule: each month's income is eir x the gross carrying amount (principal
    + accrued interest at the month's start) within a cent, its life's income is exactly its cash
    interest and fees, and the accrued interest is 0 when it matures; a cash loan's eir is its rate,
    so its income is its cash interest within a cent each month."""
    term = 12
    sc = loaded_scenario(tmp_path, ["run.paths=1", f"run.horizon_months={term + 2}", *RISKLESS]).scenario
    if kind == "purchase":
        accounts = terms.accounts(1, sc.behaviour.roll_rates, product=codes.YUEFU, principal=4321.0, fee_rate=0.0075,
                                  term=term, method=codes.EQUAL_PRINCIPAL, pd_12m=np.zeros(1))
    else:
        accounts = identical_book(1, 7654.32, 0.2, term, kind, 0.0, sc.behaviour.roll_rates)
    x = one_account(simulation.run_accounts(sc, accounts))
    eir, income = float(accounts.eir[0]), recognised(x)
    gross = np.concatenate([[accounts.principal[0]], (x["balance"] + x["accrued"])[:term - 1]])
    assert np.all(np.abs(income[:term] - eir * gross) <= 1.0), (income[:term] - eir * gross)
    assert income.sum() == (x["flows"][:, codes.INTEREST] + x["flows"][:, codes.FEES]).sum() > 0
    assert x["flows"][:, codes.ACCRUAL].sum() == 0 and x["accrued"][term - 1:].sum() == 0
    np.testing.assert_array_equal(np.cumsum(x["flows"][:, codes.ACCRUAL]), x["accrued"])   # opening 0
    if kind == "purchase":
        assert x["accrued"].max() > 0                  # a flat fee on the original principal: earned early
    else:
        assert np.all(np.abs(income - x["flows"][:, codes.INTEREST]) <= 1)


def test_a_loan_that_defaults_writes_its_accrued_interest_off(tmp_path):
    """A fraudster's loan misses every payment and charges off in month 7: its accrual builds up (in stage
    3 on its gross carrying amount net of the allowance) and is written off in full at the charge-off."""
    sc = loaded_scenario(tmp_path, ["run.paths=1", "run.horizon_months=10", *RISKLESS]).scenario
    accounts = terms.accounts(1, sc.behaviour.roll_rates, product=codes.JIEBEI, principal=5000.0, apr=0.24, term=12,
                              pd_12m=np.full(1, 0.05), fraud=True)
    x = one_account(simulation.run_accounts(sc, accounts))
    flows, eir = x["flows"], float(accounts.eir[0])
    assert flows[6, codes.N_CHARGED_OFF] == 1 and not flows[:, codes.INTEREST].any()
    built = flows[:6, codes.ACCRUAL]
    assert np.all(built > 0) and flows[6:, codes.ACCRUAL].sum() == 0
    assert flows[6, codes.ACCRUED_WRITTEN_OFF] == built.sum() == x["accrued"][5]
    gross = np.concatenate([[accounts.principal[0]], (x["balance"] + x["accrued"])[:5]])
    allowance = np.concatenate([[0], x["allowance"][:5]])
    impaired = np.concatenate([[False], x["stage_3"][:5]])           # the stage at the month's start
    assert impaired.sum() == 2                                       # months starting in M4 and M5
    want = np.where(impaired, eir * np.maximum(gross - allowance, 0), eir * gross)
    assert np.all(np.abs(built - want) <= 1.0), (built, want)           # rounded with its carry
    assert x["accrued"][6:].sum() == 0


@pytest.fixture(scope="module")
def both_bases(tmp_path_factory):
    """A risky mixed book (loans, purchases, lines of every payer type) run on each income basis."""
    folder = tmp_path_factory.mktemp("bases")
    n = 240
    rng = np.random.default_rng(3)
    settings = ["run.paths=3", "run.horizon_months=16", "products.huabei.conversion_rate=0.3"]
    roll = loaded_scenario(folder, settings).scenario.behaviour.roll_rates
    pd = rng.uniform(0.02, 0.4, n)
    kind = np.arange(n) % 3
    line = kind == codes.HUABEI
    accounts = terms.accounts(
        n, roll, account_id=np.arange(n), product=kind, principal=np.where(line, 1500.0, 3000.0),
        apr=np.where(kind == codes.YUEFU, 0.0, 0.18), fee_rate=np.where(kind == codes.YUEFU, 0.006, 0.0),
        term=np.where(line, 0, 12), method=np.where(kind == codes.YUEFU, codes.EQUAL_PRINCIPAL, 0),
        limit=np.where(line, 6000.0, 0.0), line_cap=np.where(line, 9000.0, 0.0),
        payer=np.arange(n) // 3 % len(codes.PAYER_TYPES), spend=np.where(line, 800.0, 0.0),
        start_month=np.arange(n) % 4, pd_12m=pd)
    out = {basis: simulation.run_accounts(
        loaded_scenario(folder, [*settings, f'run.income_basis="{basis}"']).scenario, accounts, threads=1)
        for basis in ("effective_interest", "cash")}
    return accounts, out


def test_the_accrued_interest_rolls_forward_in_every_cell(both_bases):
    """opening (0) + the accruals - the accrued interest written off = the accrued interest at each
    month end, in cents, for every (path, product, band); and some of it was written off."""
    _, out = both_bases
    eff = out["effective_interest"]
    flows = eff["flows"]
    moves = np.cumsum(flows[..., codes.ACCRUAL] - flows[..., codes.ACCRUED_WRITTEN_OFF], axis=1)   # over months
    np.testing.assert_array_equal(moves, eff["stages"][..., codes.ACCRUED].sum(axis=-1))
    assert flows[..., codes.ACCRUED_WRITTEN_OFF].sum() > 0 and eff["stages"][..., codes.ACCRUED].sum() != 0


def test_the_cash_basis_is_todays_cash_and_nothing_accrued(both_bases):
    """On the cash basis the new flows and the accrued stock are 0 and the P&L is cash interest and
    fees; the cash itself (every other flow, stock and movement) is the same on either basis."""
    _, out = both_bases
    cash, eff = out["cash"], out["effective_interest"]
    assert not cash["flows"][..., [codes.ACCRUAL, codes.ACCRUED_WRITTEN_OFF]].any()
    assert not cash["stages"][..., codes.ACCRUED].any()
    assert eff["flows"][..., codes.ACCRUAL].any()
    for name in cash:
        if name == "groups":       # each population group's series: revenue and profit differ, the cash does not
            np.testing.assert_array_equal(cash[name]["path_month_balance"], eff[name]["path_month_balance"])
        elif name == "flows":
            kept = [j for j in range(len(codes.FLOWS)) if j not in (codes.ACCRUAL, codes.ACCRUED_WRITTEN_OFF)]
            np.testing.assert_array_equal(cash[name][..., kept], eff[name][..., kept])
        elif name == "stages":
            np.testing.assert_array_equal(cash[name][..., :codes.ACCRUED], eff[name][..., :codes.ACCRUED])
        else:
            np.testing.assert_array_equal(cash[name], eff[name], err_msg=name)
    lines = pnl.by_name(cash["flows"], cash["accounting"])
    revenue = (lines["interest_income"] + lines["fee_income"] + lines["penalty_income"] + lines["merchant_discount"]
               + lines["merchant_fee_income"])
    np.testing.assert_array_equal(pnl.revenue(lines), revenue)
    np.testing.assert_array_equal(pnl.write_offs(lines), lines["charged_off"] - lines["recovered"])
    # On the effective-interest basis revenue - the cash revenue is the accrual, the expense's extra the write-off.
    both = pnl.by_name(eff["flows"], eff["accounting"])
    np.testing.assert_array_equal(pnl.revenue(both) - revenue, both["interest_accrual"])
    np.testing.assert_array_equal(pnl.credit_loss_expense(both) - pnl.credit_loss_expense(lines),
                                  both["accrued_written_off"])


@pytest.mark.parametrize("threads, block_size", [(2, 1), (3, 7)])
def test_the_accruals_are_the_same_bits_whatever_threads_and_blocks(both_bases, threads, block_size, tmp_path):
    accounts, out = both_bases
    sc = loaded_scenario(tmp_path, ["run.paths=3", "run.horizon_months=16", "products.huabei.conversion_rate=0.3"])
    again = simulation.run_accounts(sc.scenario, accounts, threads=threads, block_size=block_size)
    np.testing.assert_array_equal(again["flows"], out["effective_interest"]["flows"])
    np.testing.assert_array_equal(again["stages"], out["effective_interest"]["stages"])


def test_a_bill_instalment_plans_fee_is_spread_at_its_irr(tmp_path):
    """A revolver's statement converted into a 6-month bill instalment (no spend, no revolving interest):
    each month's income is the plan's effective rate (numpy-financial's IRR of its cash flows) x its
    gross carrying amount within a cent, but the last (which takes the rest); over the plan the income is
    its fees exactly and the accrued interest ends at 0."""
    tenor, fee = 6, 0.045
    sc = loaded_scenario(tmp_path, ["run.paths=1", "run.horizon_months=9", *RISKLESS,
                                    f"products.huabei.instalment_tenors=[{tenor}]",
                                    f"products.huabei.instalment_fees=[{fee}]",
                                    "products.huabei.instalment_tenor_shares=[1.0]",
                                    "products.huabei.conversion_rate=1.0", "products.huabei.min_conversion=100.0",
                                    "products.huabei.attrition=0.0", "products.huabei.spend_probability=0.0"]).scenario
    balance = 2468.0
    accounts = terms.accounts(1, sc.behaviour.roll_rates, product=codes.HUABEI, principal=balance, limit=5000.0,
                              line_cap=5000.0, apr=0.18, payer=codes.PAYER_TYPES.index("revolver"), pd_12m=np.zeros(1))
    x = one_account(simulation.run_accounts(sc, accounts))
    per_period = round(balance * 100 * fee / tenor)
    np.testing.assert_array_equal(x["flows"][:tenor, codes.FEES], per_period)
    assert not x["flows"][:, codes.INTEREST].any()
    rows = products.instalment_plan_cents(int(balance * 100), tenor, per_period)
    eir = npf.irr([-balance * 100, *rows[:, 0]])
    income = recognised(x)
    gross = np.concatenate([[balance * 100], (x["balance"] + x["accrued"])[:tenor - 1]])
    assert np.all(np.abs(income[:tenor - 1] - eir * gross[:tenor - 1]) <= 1.0)
    assert abs(income[tenor - 1] - eir * gross[tenor - 1]) <= 2.0
    assert income.sum() == tenor * per_period and x["accrued"][tenor - 1:].sum() == 0
    assert x["accrued"][0] > 0                         # the fee is earned ahead of its flat instalments
