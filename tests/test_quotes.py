"""`simulator quote` against numpy-financial, closed forms and the worked figures of docs/products.md."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import numpy_financial as npf
import pytest

from simulator.model.products import fee_rate_for_apr
from simulator.model.products import irr_apr
from simulator.model.quotes import QuoteError, add_parser, default_instalment_fees, quote

ROOT = Path(__file__).resolve().parents[1]
JIEBEI_MONTHLY = 0.0004 * 365 / 12  # 0.04% a day, documented day count 365

# (amount, monthly rate, term)
CASES = [
    (6000.0, 0.12 / 12, 12),
    (10000.0, 0.10 / 12, 36),
    (10000.0, JIEBEI_MONTHLY, 12),
    (2500.5, 0.18 / 12, 6),
    (123456.78, 0.055 / 12, 24),
    (800.0, 0.219 / 12, 3),
]


def _quote(amount: float, r: float, term: int, method: str) -> tuple[dict, np.ndarray]:
    q = quote("jiebei", amount, term, 12 * r, method, None, 365)
    table = np.array([[row[c] for c in ("payment", "principal", "interest", "fee", "balance")] for row in q["schedule"]])
    return q, table


def _check_rows(table, amount, r, payment, principal, interest, term, tols) -> None:
    """Rows against the reference payment/principal/interest within `tols` (yuan, per column), except the
    last period, which absorbs the rounding (bounded by term cents). Carrying the interest rounding
    residual (products.py) can move a period's interest by up to a cent from the exact figure."""
    for got, want, tol in zip(table.T[:3], (payment, principal, interest), tols):
        assert np.abs(got[:-1] - want[:-1]).max(initial=0) <= tol + 1e-9
        assert abs(got[-1] - want[-1]) <= term * 0.01 + 1e-9
    assert np.allclose(table[:, 3], 0.0)
    np.testing.assert_allclose(table[:, 0], table[:, 1] + table[:, 2], atol=1e-9)
    assert round(table[:, 1].sum(), 2) == amount
    balance = np.round(amount - np.cumsum(table[:, 1]), 2)
    np.testing.assert_allclose(table[:, 4], balance, atol=1e-9)
    assert table[-1, 4] == 0.0
    # Interest is r x the outstanding balance, each period within a cent and cumulatively within half a cent.
    outstanding = np.r_[amount, table[:-1, 4]]
    assert np.abs(table[:, 2] - r * outstanding).max() <= 0.01 + 1e-9
    assert np.abs(np.cumsum(table[:, 2]) - np.cumsum(r * outstanding)).max() <= 0.005 + 1e-9


@pytest.mark.parametrize("amount, r, term", CASES)
def test_equal_installment_matches_numpy_financial(amount, r, term):
    q, table = _quote(amount, r, term, "equal_installment")
    per = np.arange(1, term + 1)
    pmt = -npf.pmt(r, term, amount)
    _check_rows(table, amount, r, np.full(term, pmt), -npf.ppmt(r, per, term, amount),
                -npf.ipmt(r, per, term, amount), term, tols=(0.005, 0.015, 0.015))
    level = round(pmt, 2)
    assert np.all(table[:-1, 0] == level)  # the level payment is npf.pmt rounded to the cent
    # Balances within a cent of the exact balance of a loan paying that rounded level payment.
    exact = -npf.fv(r, per[:-1], -level, amount)
    assert np.abs(table[:-1, 4] - exact).max(initial=0) <= 0.01 + 1e-9
    assert q["total_payment"] == round(table[:, 0].sum(), 2)


@pytest.mark.parametrize("amount, r, term", CASES)
def test_equal_principal_matches_closed_form(amount, r, term):
    _, table = _quote(amount, r, term, "equal_principal")
    principal = np.full(term, amount / term)
    interest = r * (amount - principal * np.arange(term))
    # principal: floor to the cent (< 1 cent); interest: carry (1 cent) on a balance up to k cents higher
    _check_rows(table, amount, r, principal + interest, principal, interest, term, tols=(0.02 + r * term * 0.01, 0.01, 0.01 + r * term * 0.01))
    assert np.all(table[:-1, 1] == np.floor(round(amount * 100) / term) / 100)


@pytest.mark.parametrize("amount, r, term", CASES)
def test_interest_first_matches_numpy_financial(amount, r, term):
    # An interest-only loan is an annuity whose future value repays the principal (fv = -pv).
    _, table = _quote(amount, r, term, "interest_first")
    per = np.arange(1, term + 1)
    interest = -npf.ipmt(r, per, term, amount, -amount)
    principal = np.zeros(term)
    principal[-1] = amount
    np.testing.assert_allclose(-npf.pmt(r, term, amount, -amount), amount * r)
    _check_rows(table, amount, r, interest + principal, principal, interest, term, tols=(0.01, 0.0, 0.01))
    assert round(table[:, 2].sum(), 2) == round(amount * r * term, 2)  # interest rounded once over the life


def test_worked_figures():
    assert quote("jiebei", 6000, 12, 0.12, "equal_installment", None, 365)["schedule"][0]["payment"] == 533.09
    assert quote("jiebei", 10000, 36, 0.10, "equal_installment", None, 365)["schedule"][0]["payment"] == 322.67
    daily = dict(apr=None, daily_rate=0.0004, days_per_year=365)
    assert quote("jiebei", 10000, 12, method="equal_installment", **daily)["total_payment"] == 10808.36
    assert quote("jiebei", 10000, 12, method="interest_first", **daily)["total_payment"] == 11460.00
    # The daily-rate convention is the same loan as apr = daily x days_per_year.
    assert quote("jiebei", 10000, 12, method="equal_principal", **daily) == quote(
        "jiebei", 10000, 12, 0.0004 * 365, "equal_principal", None, 365
    )
    assert quote("jiebei", 10000, 12, 0.144, "equal_installment", None, 365) == quote(
        "jiebei", 10000, 12, None, "equal_installment", 0.0004, 360
    )


@pytest.mark.parametrize("method", ["equal_installment", "equal_principal", "interest_first"])
@pytest.mark.parametrize("amount, r, term", CASES)
def test_quote_apr_is_irr_of_rounded_schedule(amount, r, term, method):
    q, table = _quote(amount, r, term, method)
    assert q["apr"] == pytest.approx(12 * npf.irr(np.r_[-amount, table[:, 0]]), abs=1e-9)
    assert q["apr"] == pytest.approx(12 * r, abs=1e-4)  # only cent rounding separates it from nominal


@pytest.mark.parametrize("amount, r, term", CASES)
def test_fee_free_apr_equals_nominal(amount, r, term):
    n = np.arange(term)
    flows = {
        "equal_installment": np.full(term, -npf.pmt(r, term, amount)),
        "equal_principal": amount / term + r * (amount - amount / term * n),
        "interest_first": amount * r + np.where(n == term - 1, amount, 0.0),
    }
    for payments in flows.values():
        assert abs(irr_apr(amount, payments) - 12 * r) < 1e-9
        assert irr_apr(amount, payments) == pytest.approx(12 * npf.irr(np.r_[-amount, payments]), abs=1e-9)


@pytest.mark.parametrize("term, total_fee, apr_percent", [(3, 0.025, 14.94), (6, 0.045, 15.27), (9, 0.065, 15.34), (12, 0.088, 15.86)])
def test_fee_apr_matches_published_instalment_aprs(term, total_fee, apr_percent):
    # Bill instalments (docs/products.md): fee charged evenly per period, principal in equal parts.
    payments = np.full(term, (1 + total_fee) / term * 1000.0)
    apr = irr_apr(1000.0, payments)
    assert round(100 * apr, 2) == apr_percent
    assert apr == pytest.approx(12 * npf.irr(np.r_[-1000.0, payments]), abs=1e-9)


def test_upfront_fee_raises_apr_above_nominal():
    r, term, amount = 0.12 / 12, 12, 6000.0
    payments = np.full(term, -npf.pmt(r, term, amount))
    payments[0] += 0.01 * amount  # a 1% fee collected with the first payment
    assert irr_apr(amount, payments) > 0.12 + 1e-3
    assert irr_apr(amount, payments) == pytest.approx(12 * npf.irr(np.r_[-amount, payments]), abs=1e-9)


def test_zero_rate_and_long_terms():
    assert irr_apr(1200.0, np.full(12, 100.0)) == pytest.approx(0.0, abs=1e-12)
    q = quote("jiebei", 1000, 3, 0.0, "equal_installment", None, 365)
    assert [row["payment"] for row in q["schedule"]] == [333.33, 333.33, 333.34] and q["apr"] == pytest.approx(0, abs=1e-6)
    payments = np.full(360, -npf.pmt(0.3 / 12, 360, 1e5))
    assert irr_apr(1e5, payments) == pytest.approx(0.3, abs=1e-9)


def test_bad_values_raise():
    with pytest.raises(QuoteError) as err:
        quote("jiebei", 1000, 3, None, "equal_installment", None, 365)
    assert err.value.option == "apr"
    with pytest.raises(QuoteError) as err:
        quote("jiebei", 1000, 3, 0.1, fee_per_period=0.01)
    assert err.value.option == "fee-per-period"
    for product in ("huabei", "yuefu"):
        for kwargs, option in [({"apr": 0.1}, "apr"), ({"daily_rate": 0.0004}, "daily-rate"),
                               ({"method": "equal_principal"}, "method"), ({"fee_per_period": -0.01}, "fee-per-period"),
                               ({"fee_per_period": float("nan")}, "fee-per-period"), ({"fee_per_period": 1.5}, "fee-per-period")]:
            with pytest.raises(QuoteError) as err:
                quote(product, 1000, 3, **kwargs)
            assert err.value.option == option and "expected" in str(err.value) and "found" in str(err.value)
        with pytest.raises(QuoteError) as err:
            quote(product, 1000, 0)
        assert err.value.option == "term"
        with pytest.raises(QuoteError) as err:
            quote(product, 0.001, 3)
        assert err.value.option == "amount"
    # huabei without a fee: the term must be in the default table
    with pytest.raises(QuoteError, match="over 5 periods") as err:
        quote("huabei", 1000, 5)
    assert err.value.option == "fee-per-period"
    with pytest.raises(QuoteError) as err:
        quote("huabei", 1000, 3, instalment_fees={6: 0.045})
    assert err.value.option == "fee-per-period"


# --- instalment plans: huabei statement instalments and yuefu instalment purchases ------------------

# docs/products.md: total fee of a bill instalment by number of periods, and its APR by the IRR method (%).
HUABEI_TABLE = {3: (0.025, 14.94), 6: (0.045, 15.27), 9: (0.065, 15.34), 12: (0.088, 15.86)}
HUABEI_FEES = {n: fee for n, (fee, _) in HUABEI_TABLE.items()}


def _plan(q: dict) -> np.ndarray:
    return np.array([[row[c] for c in ("payment", "principal", "interest", "fee", "balance")] for row in q["schedule"]])


def _half_up_cents(cents: int, fee: str, periods: int) -> int:
    """Closed-form fee per period in cents, exact decimal arithmetic: total x principal / n, half up."""
    return int((Decimal(cents) * Decimal(fee) / periods).to_integral_value(rounding=ROUND_HALF_UP))


def _check_plan(q: dict, amount: float, term: int, fee_cents: int) -> None:
    """Rows of an instalment plan against the closed form: principal amount / n each period floored to the
    cent, the last period the remainder; the same fee every period; no interest; balances to 0."""
    table = _plan(q)
    cents = round(amount * 100)
    assert [row["period"] for row in q["schedule"]] == list(range(1, term + 1))
    part = cents // term
    assert np.all(np.round(table[:-1, 1] * 100) == part)
    assert abs(table[:-1, 1] - amount / term).max(initial=0) < 0.01
    assert round(table[-1, 1] * 100) == cents - (term - 1) * part
    assert -1e-9 <= table[-1, 1] - amount / term < term * 0.01
    assert round(table[:, 1].sum(), 2) == amount
    assert np.all(table[:, 2] == 0.0)
    assert np.all(np.round(table[:, 3] * 100) == fee_cents)
    np.testing.assert_allclose(table[:, 0], table[:, 1] + table[:, 3], atol=1e-9)
    np.testing.assert_allclose(table[:, 4], np.round(amount - np.cumsum(table[:, 1]), 2), atol=1e-9)
    assert table[-1, 4] == 0.0
    assert q["total_payment"] == round(amount + term * fee_cents / 100, 2)
    assert q["total_payment"] == round(table[:, 0].sum(), 2)
    if fee_cents == 0:
        assert q["apr"] == 0.0
    else:
        assert q["apr"] == pytest.approx(12 * npf.irr(np.r_[-amount, table[:, 0]]), abs=1e-9)


# Amounts: round, not divisible by n in cents, large, small, and 10,000.20 / 1,001.00, where the
# exact fee is a whole number of cents and a half (8,333.5 cents at 3 periods; 500.5 at 0.5%).
PLAN_AMOUNTS = [10000.0, 3000.0, 5999.99, 10000.20, 1001.0, 1234.56, 123456.78, 99.99, 0.07]


@pytest.mark.parametrize("amount", PLAN_AMOUNTS)
@pytest.mark.parametrize("term", [3, 6, 9, 12])
def test_huabei_default_fees_closed_form(amount, term):
    fee = _half_up_cents(round(amount * 100), str(HUABEI_FEES[term]), term)
    q = quote("huabei", amount, term)
    _check_plan(q, amount, term, fee)
    assert q == quote("huabei", amount, term, instalment_fees=HUABEI_FEES)
    assert abs(q["schedule"][0]["fee"] - HUABEI_FEES[term] * amount / term) <= 0.005 + 1e-9


def test_half_cent_fees_round_up():
    assert quote("huabei", 10000.20, 3)["schedule"][0]["fee"] == 83.34  # 8,333.5 cents
    assert quote("yuefu", 1001.0, 6, fee_per_period=0.005)["schedule"][0]["fee"] == 5.01  # 500.5 cents
    assert quote("huabei", 0.60, 3)["schedule"][0]["fee"] == 0.01  # 0.5 cent


@pytest.mark.parametrize("amount", PLAN_AMOUNTS)
@pytest.mark.parametrize("term, fee", [(3, 0.0), (6, 0.005), (12, 0.0073), (9, 0.0072), (1, 0.01), (24, 0.0066), (7, 0.00123)])
def test_fee_per_period_closed_form(amount, term, fee):
    # yuefu: a flat fee per period on the original price; huabei with --fee-per-period: the same plan.
    cents = _half_up_cents(round(amount * 100), str(fee), 1)
    for product in ("yuefu", "huabei"):
        q = quote(product, amount, term, fee_per_period=fee)
        _check_plan(q, amount, term, cents)
        assert abs(q["schedule"][0]["fee"] - fee * amount) <= 0.005 + 1e-9


@pytest.mark.parametrize("amount", [10000.0, 3000.0, 50000.0, 123456.78, 10000.20, 20000.0])
@pytest.mark.parametrize("term", [3, 6, 9, 12])
def test_huabei_published_aprs(amount, term):
    # docs/products.md: 14.94%, 15.27%, 15.34%, 15.86%; any amount large enough that cent rounding of the fee
    # and of the principal parts does not move the second decimal (at 1,000 the 3-period APR is 14.93%).
    total, apr_percent = HUABEI_TABLE[term]
    q = quote("huabei", amount, term)
    assert round(100 * q["apr"], 2) == apr_percent
    assert q["apr"] == pytest.approx(12 * npf.irr(np.r_[-amount, _plan(q)[:, 0]]), abs=1e-9)
    exact = np.full(term, amount * (1 + total) / term)
    assert q["apr"] == pytest.approx(12 * npf.irr(np.r_[-amount, exact]), abs=2e-4)
    assert abs(fee_rate_for_apr(q["apr"], term) - total / term) < 1e-6 * max(1.0, 1e4 / amount)


def test_default_fee_table_is_products_md():
    assert default_instalment_fees() == HUABEI_FEES


# Amounts where rounding the fee to the cent moves it by well under 1e-6 of the price (at 1,001.00 and
# 0.5% the fee rounds 5.005 up to 5.01, an effective 0.5005%).
@pytest.mark.parametrize("amount", [3000.0, 5999.99, 10000.0, 20000.0, 123456.78])
@pytest.mark.parametrize("term", [3, 6, 9, 12])
def test_yuefu_free_and_fee_aprs(amount, term):
    free = quote("yuefu", amount, term)
    assert free["apr"] == 0.0 and free["total_payment"] == amount
    assert free == quote("yuefu", amount, term, fee_per_period=0.0)
    assert all(row["fee"] == 0.0 and row["interest"] == 0.0 for row in free["schedule"])
    for fee in (0.005, 0.0072, 0.0083, 0.01):
        q = quote("yuefu", amount, term, fee_per_period=fee)
        assert q["apr"] > 0.0
        # The APR inverts fee_rate_for_apr (the equal-principal, flat-fee plan), up to the cent rounding.
        assert fee_rate_for_apr(q["apr"], term) == pytest.approx(fee, abs=1e-6)
        assert q["apr"] == pytest.approx(12 * npf.irr(np.r_[-amount, _plan(q)[:, 0]]), abs=1e-9)
    # A higher fee is a higher APR.
    aprs = [quote("yuefu", amount, term, fee_per_period=f)["apr"] for f in (0.001, 0.005, 0.01)]
    assert aprs == sorted(aprs)


def test_yuefu_and_huabei_fee_per_period_agree():
    # The same plan whether sold as an instalment purchase or a statement instalment with that fee.
    assert quote("yuefu", 6000, 12, fee_per_period=0.0073) == quote("huabei", 6000, 12, fee_per_period=0.0073)
    # --fee-per-period overrides the default table, and an empty table needs it.
    assert quote("huabei", 6000, 5, fee_per_period=0.0) == quote("yuefu", 6000, 5)
    assert quote("huabei", 6000, 3, instalment_fees={3: 0.03})["schedule"][0]["fee"] == 60.0


# --- command line -------------------------------------------------------------------------------


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="simulator")
    add_parser(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(["quote", *argv])
        code = args.func(args)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


BASE = ["--product", "jiebei", "--amount", "10000", "--term", "12", "--daily-rate", "0.0004"]


def test_cli_json(capsys):
    code, out, err = _cli([*BASE, "--method", "interest_first", "--format", "json"], capsys)
    assert code == 0 and err == ""
    data = json.loads(out)
    assert set(data) == {"apr", "total_payment", "schedule"}
    assert data == quote("jiebei", 10000, 12, None, "interest_first", 0.0004, 365)
    assert data["total_payment"] == 11460.00
    assert set(data["schedule"][0]) == {"period", "payment", "principal", "interest", "fee", "balance"}
    assert [row["period"] for row in data["schedule"]] == list(range(1, 13))


def test_cli_csv_and_table(capsys):
    code, out, _ = _cli([*BASE, "--format", "csv"], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "period,payment,principal,interest,fee,balance" and len(lines) == 13
    assert sum(float(line.split(",")[1]) for line in lines[1:]) == pytest.approx(10808.36)
    code, out, _ = _cli(["--product", "jiebei", "--amount", "6000", "--term", "12", "--apr", "0.12"], capsys)
    assert code == 0 and "533.09" in out
    assert "12.00%" in out.splitlines()[-1] and "6,397.11" in out.splitlines()[-1]


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--product", "jiebei", "--amount", "0", "--term", "12", "--apr", "0.1"], "--amount"),
        (["--product", "jiebei", "--amount", "-5", "--term", "12", "--apr", "0.1"], "--amount"),
        (["--product", "jiebei", "--amount", "abc", "--term", "12", "--apr", "0.1"], "--amount"),
        (["--product", "jiebei", "--amount", "100", "--term", "0", "--apr", "0.1"], "--term"),
        (["--product", "jiebei", "--amount", "100", "--term", "12", "--apr", "-0.1"], "--apr"),
        (["--product", "jiebei", "--amount", "100", "--term", "12", "--daily-rate", "-0.0004"], "--daily-rate"),
        (["--product", "jiebei", "--amount", "100", "--term", "12"], "--apr"),
        (["--product", "jiebei", "--amount", "100", "--term", "12", "--fee-per-period", "0.01"], "--fee-per-period"),
        (["--product", "huabei", "--amount", "100", "--term", "12", "--apr", "0.1"], "--apr"),
        (["--product", "yuefu", "--amount", "100", "--term", "12", "--apr", "0.1"], "--apr"),
        (["--product", "huabei", "--amount", "100", "--term", "12", "--daily-rate", "0.0004"], "--daily-rate"),
        (["--product", "yuefu", "--amount", "100", "--term", "12", "--daily-rate", "0.0004"], "--daily-rate"),
        (["--product", "huabei", "--amount", "100", "--term", "12", "--method", "equal_principal"], "--method"),
        (["--product", "yuefu", "--amount", "100", "--term", "6", "--method", "equal_installment"], "--method"),
        (["--product", "yuefu", "--amount", "100", "--term", "6", "--days-per-year", "360"], "--days-per-year"),
        (["--product", "huabei", "--amount", "100", "--term", "5"], "--fee-per-period"),
        (["--product", "huabei", "--amount", "100", "--term", "6", "--fee-per-period", "-0.01"], "--fee-per-period"),
        (["--product", "yuefu", "--amount", "100", "--term", "6", "--fee-per-period", "x"], "--fee-per-period"),
        (["--product", "yuefu", "--amount", "100", "--term", "6", "--fee-per-period", "0.01", "--apr", "0.1"], "--apr"),
        (["--product", "yuefu", "--amount", "0", "--term", "6"], "--amount"),
        (["--product", "huabei", "--amount", "100", "--term", "0"], "--term"),
        (["--product", "yuefu", "--amount", "100"], "--term"),
        (["--product", "alipay", "--amount", "100", "--term", "3"], "--product"),
        (["--product", "jiebei", "--amount", "100", "--term", "12", "--apr", "0.1", "--method", "x"], "--method"),
        (["--product", "jiebei", "--amount", "100", "--apr", "0.1"], "--term"),
        (["--product", "jiebei", "--amount", "100", "--term", "12", "--apr", "0.1", "--daily-rate", "0.001"], "--daily-rate"),
    ],
)
def test_cli_bad_input(argv, option, capsys):
    code, out, err = _cli(argv, capsys)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: quote: {option}: expected ")
    assert "found" in lines[0]


def test_cli_instalment_json(capsys):
    for argv, want in [
        (["--product", "yuefu", "--amount", "5999.99", "--term", "12", "--fee-per-period", "0.005"],
         quote("yuefu", 5999.99, 12, fee_per_period=0.005)),
        (["--product", "yuefu", "--amount", "3000", "--term", "3"], quote("yuefu", 3000, 3)),
        (["--product", "huabei", "--amount", "10000", "--term", "12"], quote("huabei", 10000, 12)),
        (["--product", "huabei", "--amount", "10000", "--term", "5", "--fee-per-period", "0.006"],
         quote("huabei", 10000, 5, fee_per_period=0.006)),
    ]:
        code, out, err = _cli([*argv, "--format", "json"], capsys)
        assert code == 0 and err == ""
        data = json.loads(out)
        assert data == want
        assert set(data) == {"apr", "total_payment", "schedule"}
        assert all(set(row) == {"period", "payment", "principal", "interest", "fee", "balance"} for row in data["schedule"])
    code, out, _ = _cli(["--product", "huabei", "--amount", "10000", "--term", "12", "--format", "json"], capsys)
    data = json.loads(out)
    assert round(100 * data["apr"], 2) == 15.86 and data["total_payment"] == 10879.96
    assert [row["fee"] for row in data["schedule"]] == [73.33] * 12
    code, out, _ = _cli(["--product", "yuefu", "--amount", "3000", "--term", "3", "--format", "json"], capsys)
    assert json.loads(out)["apr"] == 0.0 and json.loads(out)["total_payment"] == 3000.0


def test_cli_instalment_csv_and_table(capsys):
    code, out, _ = _cli(["--product", "huabei", "--amount", "10000", "--term", "3", "--format", "csv"], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "period,payment,principal,interest,fee,balance" and len(lines) == 4
    assert lines[1:] == ["1,3416.66,3333.33,0.00,83.33,6666.67", "2,3416.66,3333.33,0.00,83.33,3333.34",
                         "3,3416.67,3333.34,0.00,83.33,0.00"]
    code, out, _ = _cli(["--product", "yuefu", "--amount", "6000", "--term", "6", "--fee-per-period", "0.0075",
                         "--format", "csv"], capsys)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 7 and all(line == f"{k},1045.00,1000.00,0.00,45.00,{6000 - 1000 * k}.00"
                                                 for k, line in enumerate(lines[1:], 1))
    code, out, _ = _cli(["--product", "huabei", "--amount", "10000", "--term", "6"], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("huabei") and "6 periods" in lines[0]
    assert lines[1].split() == ["period", "payment", "principal", "interest", "fee", "balance"]
    assert "15.27%" in lines[-1] and "10,450.00" in lines[-1]
    code, out, _ = _cli(["--product", "yuefu", "--amount", "3000", "--term", "3"], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("yuefu") and "0.00%" in lines[-1] and "3,000.00" in lines[-1]


def test_cli_help_names_the_products(capsys):
    code, out, _ = _cli(["--help"], capsys)
    assert code == 0
    for word in ("yuefu", "huabei", "jiebei", "--fee-per-period", "periods"):
        assert word in out


def test_cli_subprocess():
    script = [sys.executable, "-m", "simulator", "quote"]
    ok = subprocess.run([*script, *BASE, "--format", "json"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["total_payment"] == 10808.36
    bad = subprocess.run([*script, *BASE[:4], "--term", "0", "--apr", "0.1"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: quote: --term: expected")


@pytest.mark.parametrize("args", [
    ["--product", "jiebei", "--amount", "10000", "--term", "12", "--apr", "0.18"],
    ["--product", "jiebei", "--amount", "7777.77", "--term", "9", "--daily-rate", "0.0005", "--method", "equal_principal"],
    ["--product", "jiebei", "--amount", "5000", "--term", "6", "--apr", "0.24", "--method", "interest_first"],
    ["--product", "yuefu", "--amount", "3999", "--term", "12", "--fee-per-period", "0.006"],
    ["--product", "huabei", "--amount", "2500", "--term", "6"],
])
def test_the_quote_command_runs_the_same_code_uncompiled(args):
    """`simulator quote` runs its one schedule as plain Python (numba's JIT off in its process, for start-up
    time): the same figures, to the cent and the APR's last digit, as the compiled code of the API."""
    import json

    done = subprocess.run([sys.executable, "-m", "simulator", "quote", *args, "--format", "json"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    options = dict(zip(args[::2], args[1::2]))
    keys = {"--apr": "apr", "--daily-rate": "daily_rate", "--method": "method", "--fee-per-period": "fee_per_period"}
    kwargs = {keys[k]: (v if k == "--method" else float(v)) for k, v in options.items() if k in keys}
    expected = quote(options["--product"], float(options["--amount"]), int(options["--term"]), **kwargs)
    assert json.loads(done.stdout) == json.loads(json.dumps(expected))


def test_light_commands_import_only_what_they_need():
    """--help, validate and quote do not import the kernel's or the results' libraries (their start-up
    time: benchmarks/startup.py); quote imports numba with its JIT off."""
    probe = ("import runpy, sys\n"
             "sys.argv = ['simulator'] + sys.argv[1:]\n"
             "try:\n    runpy.run_module('simulator', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'numba', 'xarray', 'pandas', 'matplotlib', "
             "'dask', 'statsmodels'} | ({'scipy.optimize', 'scipy.stats'} & set(sys.modules)))\n"
             "print('HEAVY', ' '.join(heavy), file=sys.stderr)\n")
    for args, allowed in ((["--help"], set()), (["validate", "scenarios/baseline.toml"], set()),
                          (["quote", "--product", "jiebei", "--amount", "1000", "--term", "3", "--apr", "0.1"],
                           {"numba"})):
        done = subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True)
        heavy = set(done.stderr.split("HEAVY", 1)[1].split())
        assert heavy <= allowed, (args, heavy)
