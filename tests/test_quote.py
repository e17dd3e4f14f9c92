"""`simulator quote` against numpy-financial, closed forms and the worked figures of products.md."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy_financial as npf
import pytest

from simulator.quote import QuoteError, add_parser, irr_apr, quote, run

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
    # Bill instalments (products.md): fee charged evenly per period, principal in equal parts.
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


def test_later_products_and_bad_values_raise():
    for product in ("huabei", "yuefu"):
        with pytest.raises(ValueError, match="later version"):
            quote(product, 1000, 3, 0.1, "equal_installment", None, 365)
    with pytest.raises(QuoteError) as err:
        quote("jiebei", 1000, 3, None, "equal_installment", None, 365)
    assert err.value.option == "apr"


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
        (["--product", "huabei", "--amount", "100", "--term", "12", "--apr", "0.1"], "--product"),
        (["--product", "yuefu", "--amount", "100", "--term", "12", "--fee-per-period", "0.01"], "--product"),
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


def test_cli_subprocess():
    script = "import sys; from simulator.quote import main; sys.exit(main(sys.argv[1:]))"
    ok = subprocess.run([sys.executable, "-c", script, *BASE, "--format", "json"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["total_payment"] == 10808.36
    bad = subprocess.run([sys.executable, "-c", script, *BASE[:4], "--term", "0", "--apr", "0.1"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: quote: --term: expected")
