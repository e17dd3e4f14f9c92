"""`simulator quote`: the repayment schedule and all-in APR (IRR method) of one loan.

Amounts are computed in integer cents by `products.schedule_cents` and shown in yuan.
The APR is the monthly IRR of the borrower's cash flows x 12, fees included.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from typing import Any, NoReturn

import numpy as np
from scipy.optimize import brentq

from .config import METHODS, PRODUCTS
from .products import schedule_cents

MAX_TERM = 360
MAX_AMOUNT = 1e12  # yuan; keeps every cent figure well inside int64
MAX_APR = 10.0  # 1,000% a year
FORMATS = ("table", "csv", "json")
COLUMNS = ("period", "payment", "principal", "interest", "fee", "balance")


class QuoteError(ValueError):
    """Bad quote input, naming the command-line option (without the leading dashes)."""

    def __init__(self, option: str, what: str):
        super().__init__(f"--{option}: {what}")
        self.option, self.what = option, what


def irr_apr(amount: float, payments: np.ndarray) -> float:
    """Monthly IRR x 12 of receiving `amount` at t=0 and paying `payments[k]` at the end of month k+1."""
    flows = np.asarray(payments, dtype=float)
    if amount <= 0 or flows.size == 0 or not np.all(np.isfinite(flows)) or not math.isfinite(amount):
        raise ValueError("irr_apr: expected amount > 0 and finite payments")
    if flows.sum() <= 0:
        raise ValueError("irr_apr: expected payments with a positive total")
    months = np.arange(1, flows.size + 1)

    def npv(r: float) -> float:
        with np.errstate(over="ignore"):
            return float(np.sum(flows * np.exp(-months * np.log1p(r)))) - amount

    lo, hi = -0.5, 1.0
    for _ in range(200):
        if npv(hi) < 0:
            break
        hi *= 2.0
    for _ in range(200):
        if npv(lo) > 0:
            break
        lo = (lo - 1.0) / 2.0  # towards -1, where the NPV of positive payments grows without bound
    monthly = brentq(npv, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    return 12.0 * monthly


def _cents(amount: float) -> int:
    return int(math.floor(amount * 100.0 + 0.5))


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


def quote(
    product: str,
    amount: float,
    term: int,
    apr: float | None,
    method: str = "equal_installment",
    daily_rate: float | None = None,
    days_per_year: float = 365.0,
) -> dict:
    """Quote a loan: {"apr", "total_payment", "schedule": [...]}; raises QuoteError on bad input."""
    if product not in PRODUCTS:
        raise QuoteError("product", f"expected one of {', '.join(PRODUCTS)}, found {product!r}")
    if product != "jiebei":
        raise QuoteError("product", f"expected jiebei (huabei and yuefu come in a later version), found {product}")
    if method not in METHODS:
        raise QuoteError("method", f"expected one of {', '.join(METHODS)}, found {method!r}")
    if not math.isfinite(amount) or not 0 < amount <= MAX_AMOUNT:
        raise QuoteError("amount", f"expected an amount > 0 and at most {MAX_AMOUNT:g}, found {_show(amount)}")
    principal = _cents(amount)
    if principal < 1:
        raise QuoteError("amount", f"expected at least 0.01, found {_show(amount)}")
    if isinstance(term, bool) or not isinstance(term, (int, np.integer)) or not 1 <= term <= MAX_TERM:
        raise QuoteError("term", f"expected a whole number of months from 1 to {MAX_TERM}, found {_show(term)}")
    if not math.isfinite(days_per_year) or not 0 < days_per_year <= 366:
        raise QuoteError("days-per-year", f"expected a number of days > 0 and at most 366, found {_show(days_per_year)}")
    if apr is not None and daily_rate is not None:
        raise QuoteError("daily-rate", "expected either --apr or --daily-rate, found both")
    if apr is not None:
        annual = apr
    elif daily_rate is not None:
        annual = daily_rate * days_per_year
    else:
        raise QuoteError("apr", "expected --apr or --daily-rate for jiebei, found neither")
    if not math.isfinite(annual) or not 0 <= annual <= MAX_APR:
        if apr is not None:
            raise QuoteError("apr", f"expected an annual rate from 0 to {MAX_APR:g} (a fraction), found {_show(apr)}")
        raise QuoteError("daily-rate", f"expected a daily rate >= 0 (a fraction) with daily rate x days per year "
                                       f"at most {MAX_APR:g}, found {_show(daily_rate)}")

    rows = schedule_cents(method, principal, annual / 12.0, int(term))
    schedule = [
        {
            "period": k + 1,
            "payment": int(pay) / 100,
            "principal": int(prin) / 100,
            "interest": int(interest) / 100,
            "fee": 0.0,
            "balance": int(bal) / 100,
        }
        for k, (pay, prin, interest, bal) in enumerate(rows)
    ]
    return {
        "apr": irr_apr(principal / 100, rows[:, 0] / 100),
        "total_payment": int(rows[:, 0].sum()) / 100,
        "schedule": schedule,
    }


def _argparse_error(message: str) -> NoReturn:
    """One `error: quote: --option: expected ..., found ...` line on stderr, exit status 2."""
    m = re.match(r"argument ([-\w/]+): invalid (?:float|int) value: (.*)", message)
    if m:
        message = f"{m[1].split('/')[0]}: expected a number, found {m[2]}"
    m = re.match(r"argument ([-\w/]+): invalid choice: (\S+) \(choose from (.*)\)", message)
    if m:
        message = f"{m[1].split('/')[0]}: expected one of {m[3].replace(chr(39), '')}, found {m[2]}"
    m = re.match(r"argument ([-\w/]+): not allowed with argument ([-\w/]+)", message)
    if m:
        message = f"{m[1]}: expected at most one of --apr, --daily-rate, --fee-per-period, found {m[2]} too"
    m = re.match(r"the following arguments are required: ([-\w]+)", message)
    if m:
        message = f"{m[1]}: expected a value, found none"
    print(f"error: quote: {message}", file=sys.stderr)
    sys.exit(2)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `quote` subcommand (options of interface.md) to an argparse subparsers object."""
    p = subparsers.add_parser("quote", help="repayment schedule and APR (IRR method) of one loan",
                              description="Repayment schedule and all-in APR (monthly IRR x 12) of one loan.")
    p.add_argument("--product", required=True, choices=PRODUCTS, help="product (this version: jiebei)")
    p.add_argument("--amount", required=True, type=float, help="amount borrowed, yuan (> 0)")
    p.add_argument("--term", required=True, type=int, help=f"term in months (1 to {MAX_TERM})")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--apr", type=float, help="annual contract rate as a fraction; monthly rate = apr / 12")
    rate.add_argument("--daily-rate", type=float, help="daily rate as a fraction (0.0004 = 0.04%% a day)")
    rate.add_argument("--fee-per-period", type=float, help="yuefu fee per period, a fraction of the price")
    p.add_argument("--days-per-year", type=float, default=365.0,
                   help="day count for --daily-rate: apr = daily rate x days (default 365)")
    p.add_argument("--method", choices=METHODS, default="equal_installment", help="repayment method")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    p.error = _argparse_error  # type: ignore[method-assign]
    p.set_defaults(func=run)
    return p


def _table(result: dict, args: argparse.Namespace) -> str:
    rows = [[str(r["period"])] + [f"{r[c]:,.2f}" for c in COLUMNS[1:]] for r in result["schedule"]]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(COLUMNS)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    out = [f"{args.product}: {args.amount:,.2f} over {args.term} months, {args.method}", line(COLUMNS)]
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(row) for row in rows)
    out.append(f"APR (IRR, fees in): {100 * result['apr']:.2f}%   total payment: {result['total_payment']:,.2f}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Print the quote in args.format; bad input gives one `error:` line on stderr and 2."""
    try:
        if args.product == "jiebei" and args.fee_per_period is not None:
            raise QuoteError("fee-per-period", "expected --apr or --daily-rate for jiebei, found --fee-per-period")
        result = quote(args.product, args.amount, args.term, args.apr, args.method,
                       args.daily_rate, args.days_per_year)
    except QuoteError as exc:
        print(f"error: quote: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(result))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in result["schedule"]:
            writer.writerow([r["period"]] + [f"{r[c]:.2f}" for c in COLUMNS[1:]])
    else:
        print(_table(result, args))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: `python -m simulator.quote --product jiebei ...`."""
    parser = argparse.ArgumentParser(prog="simulator")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["quote", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
