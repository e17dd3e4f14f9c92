"""Quoting one loan: its repayment schedule and all-in APR (IRR method); the `simulator quote` command.

Products (docs/products.md):
- jiebei (cash loan): contract rate from --apr or --daily-rate, one of three methods;
  schedule by `products.schedule_cents` (interest column filled, fee 0).
- yuefu (instalment purchase): price in equal principal parts (the last takes the rest)
  and a flat fee per period = --fee-per-period x the price (default 0: a merchant-funded
  promotion); schedule by `products.instalment_plan_cents` (fee column filled, interest 0).
- huabei (statement instalment): the same plan on the converted statement, the fee per
  period either --fee-per-period x the principal or, by default, total fee x principal / n
  with the total from the default table (`products.huabei.instalment_tenors` /
  `instalment_fees` of the shipped defaults.toml).

Amounts are computed in integer cents (fees rounded half up) and shown in yuan.
The APR is the monthly IRR of the borrower's cash flows x 12, fees included.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
from fractions import Fraction
from typing import Any, Mapping, NoReturn

import numpy as np
from pydantic import ConfigDict, TypeAdapter, ValidationError

from ..codes import KIND, LOAN, METHODS, PLAN, PRODUCTS
from ..config.schema import AnnualRate, DailyRate, PeriodFee, ScenarioError
from ..config.loader import pydantic_message

MAX_TERM = 360
MAX_AMOUNT = 1e12  # yuan; keeps every cent figure well inside int64
DAYS_PER_YEAR = 365.0  # a cash loan's day count when --days-per-year is not given
# Rates and fees are held to the scenario schema's rules for their kind (config.AnnualRate, DailyRate,
# PeriodFee): fractions at least 0, and a value above the kind's limit is refused as a percent.
RATES = {option: TypeAdapter(kind, config=ConfigDict(allow_inf_nan=False))
         for option, kind in (("apr", AnnualRate), ("daily-rate", DailyRate), ("fee-per-period", PeriodFee))}
FORMATS = ("table", "csv", "json")
COLUMNS = ("period", "payment", "principal", "interest", "fee", "balance")


class QuoteError(ScenarioError):
    """Bad quote input, naming the command-line option (`option`, without the leading dashes)."""

    def __init__(self, option: str, what: str):
        super().__init__("quote", f"--{option}", what)
        self.option = option


def _cents(amount: float) -> int:
    return int(math.floor(amount * 100.0 + 0.5))


def _fee_cents(principal_cents: int, fee: float, periods: int = 1) -> int:
    """round_half_up(principal_cents x fee / periods) in whole cents, with the fee read as the
    decimal it is written as (0.045 is 45/1000, not the nearest binary double)."""
    return math.floor(principal_cents * Fraction(repr(float(fee))) / periods + Fraction(1, 2))


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


def default_instalment_fees(product: str = "huabei") -> dict[int, float]:
    """Default total fee of a line's (`product`'s) statement instalment by number of periods, from the
    shipped defaults (`products.<product>.instalment_tenors` and `instalment_fees`); {} when not there."""
    from ..config.loader import defaults

    line = defaults().get("products", {}).get(product, {})
    tenors, fees = line.get("instalment_tenors"), line.get("instalment_fees")
    if not isinstance(tenors, list) or not isinstance(fees, list) or len(tenors) != len(fees):
        return {}
    return {int(n): float(f) for n, f in zip(tenors, fees)}


def _number(option: str, value: Any) -> float:
    """The number given for --option (not text, None or a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise QuoteError(option, f"expected a number, found {_show(value)}")
    return float(value)


def _rate(option: str, value: Any) -> float:
    """The rate or fee given for --option, held to the scenario's rule for its kind (`RATES`)."""
    try:
        return RATES[option].validate_python(_number(option, value))
    except ValidationError as exc:
        raise QuoteError(option, pydantic_message(exc.errors()[0])[1]) from None


def _instalment_fee_cents(
    product: str,
    principal: int,
    term: int,
    fee_per_period: float | None,
    instalment_fees: Mapping[int, float] | None,
) -> int:
    """Fee per period in cents of a purchase plan or a line's bill instalment (see the module docstring)."""
    if fee_per_period is not None:
        return _fee_cents(principal, _rate("fee-per-period", fee_per_period))
    if KIND[PRODUCTS.index(product)] == PLAN:
        return 0  # merchant-funded promotion
    table = default_instalment_fees(product) if instalment_fees is None else dict(instalment_fees)
    if term not in table:
        tenors = ", ".join(str(n) for n in sorted(table)) or "none"
        raise QuoteError("fee-per-period", f"expected --fee-per-period for a {product} instalment over {term} "
                                           f"periods (default fees for {tenors} periods), found none")
    return _fee_cents(principal, _rate("fee-per-period", table[term]), term)


def quote(
    product: str,
    amount: float,
    term: int,
    apr: float | None = None,
    method: str | None = None,
    daily_rate: float | None = None,
    days_per_year: float | None = None,
    fee_per_period: float | None = None,
    instalment_fees: Mapping[int, float] | None = None,
) -> dict:
    """Quote a loan: {"apr", "total_payment", "schedule": [...]}; raises QuoteError on bad input.

    jiebei: `apr` or `daily_rate` (x `days_per_year`, default 365), `method` (default equal_installment).
    yuefu: `fee_per_period` a fraction of the price (default 0). huabei: `fee_per_period` a fraction
    of the principal, or by default total fee / term from `instalment_fees` ({periods: total fee};
    None: the shipped defaults). apr, daily_rate, days_per_year and method are errors for yuefu and
    huabei. Rates and fees are fractions held to the scenario's limits (`RATES`).
    """
    from .products import instalment_plan_cents, irr_apr, schedule_cents   # numba: only to quote

    if product not in PRODUCTS:
        raise QuoteError("product", f"expected one of {', '.join(PRODUCTS)}, found {product!r}")
    kind = KIND[PRODUCTS.index(product)]
    instalment = kind != LOAN      # a purchase plan, or a line's bill instalment
    if instalment:
        fee_source = "--fee-per-period (or none: 0)" if kind == PLAN else \
            "--fee-per-period (or none: the default fee table)"
        for option, value in (("apr", apr), ("daily-rate", daily_rate), ("method", method),
                              ("days-per-year", days_per_year)):
            if value is not None:
                raise QuoteError(option, f"expected {fee_source} for {product}, found --{option} {value if isinstance(value, str) else _show(value)}")
    elif fee_per_period is not None:
        raise QuoteError("fee-per-period", f"expected --apr or --daily-rate for {product}, found --fee-per-period")
    if method is None:
        method = "equal_installment"
    if method not in METHODS:
        raise QuoteError("method", f"expected one of {', '.join(METHODS)}, found {method!r}")
    amount = _number("amount", amount)
    if not math.isfinite(amount) or not 0 < amount <= MAX_AMOUNT:
        raise QuoteError("amount", f"expected an amount > 0 and at most {MAX_AMOUNT:g}, found {_show(amount)}")
    principal = _cents(amount)
    if principal < 1:
        raise QuoteError("amount", f"expected at least 0.01, found {_show(amount)}")
    _number("term", term)   # text, None or a bool: the command line's "expected a number"
    if not isinstance(term, (int, np.integer)) or not 1 <= term <= MAX_TERM:
        unit = "periods" if instalment else "months"
        raise QuoteError("term", f"expected a whole number of {unit} from 1 to {MAX_TERM}, found {_show(term)}")
    term = int(term)

    if instalment:
        fee = _instalment_fee_cents(product, principal, term, fee_per_period, instalment_fees)
        plan = instalment_plan_cents(principal, term, fee)
        rows = [(pay, prin, 0, fee_k, bal) for pay, prin, fee_k, bal in plan]
        payments = plan[:, 0]
    else:
        annual = _loan_rate(product, apr, daily_rate, days_per_year)
        sched = schedule_cents(method, principal, annual / 12.0, term)
        rows = [(pay, prin, interest, 0, bal) for pay, prin, interest, bal in sched]
        payments = sched[:, 0]
    schedule = [
        {"period": k + 1, **{c: int(v) / 100 for c, v in zip(COLUMNS[1:], row)}}
        for k, row in enumerate(rows)
    ]
    total = int(payments.sum())
    return {
        # Paying back exactly the principal is an IRR of exactly 0 (e.g. a fee-free instalment plan).
        "apr": 0.0 if total == principal else irr_apr(principal / 100, payments / 100),
        "total_payment": total / 100,
        "schedule": schedule,
    }


def _loan_rate(product: str, apr: float | None, daily_rate: float | None, days_per_year: float | None) -> float:
    """Annual contract rate of a cash loan from --apr or --daily-rate x --days-per-year (default 365)."""
    days = DAYS_PER_YEAR if days_per_year is None else _number("days-per-year", days_per_year)
    if not math.isfinite(days) or not 0 < days <= 366:
        raise QuoteError("days-per-year", f"expected a number of days > 0 and at most 366, found {_show(days)}")
    if apr is not None and daily_rate is not None:
        raise QuoteError("daily-rate", "expected either --apr or --daily-rate, found both")
    if apr is not None:
        return _rate("apr", apr)
    if daily_rate is not None:
        return _rate("daily-rate", daily_rate) * days   # at most 1% a day x 366: within an annual rate's limit
    raise QuoteError("apr", f"expected --apr or --daily-rate for {product}, found neither")


# argparse's messages, reworded as "--option: expected ..., found ..."
_ARGPARSE_MESSAGES = [
    (r"argument ([-\w/]+): invalid (?:float|int) value: (.*)",
     lambda m: f"{m[1].split('/')[0]}: expected a number, found {m[2]}"),
    (r"argument ([-\w/]+): invalid choice: (\S+) \(choose from (.*)\)",
     lambda m: f"{m[1].split('/')[0]}: expected one of {m[3].replace(chr(39), '')}, found {m[2]}"),
    (r"argument ([-\w/]+): not allowed with argument ([-\w/]+)",
     lambda m: f"{m[1]}: expected at most one of --apr, --daily-rate, --fee-per-period, found {m[2]} too"),
    (r"the following arguments are required: ([-\w]+)", lambda m: f"{m[1]}: expected a value, found none"),
]


def _argparse_error(message: str) -> NoReturn:
    """One `error: quote: --option: expected ..., found ...` line on stderr, exit status 2."""
    for pattern, reword in _ARGPARSE_MESSAGES:
        m = re.match(pattern, message)
        if m:
            message = reword(m)
            break
    print(f"error: quote: {message}", file=sys.stderr)
    sys.exit(2)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `quote` subcommand (options in README.md) to an argparse subparsers object."""
    p = subparsers.add_parser(
        "quote", help="repayment schedule and APR (IRR method) of one loan or instalment plan",
        description="Repayment schedule and all-in APR (monthly IRR x 12, fees included) of a jiebei cash loan "
                    "(--apr or --daily-rate, --method), a yuefu instalment purchase (--fee-per-period, default 0) "
                    "or a huabei statement instalment (--fee-per-period, default: the total fee of the shipped "
                    "defaults for 3, 6, 9 or 12 periods, charged evenly).")
    p.add_argument("--product", required=True, choices=PRODUCTS,
                   help="jiebei (cash loan), yuefu (instalment purchase) or huabei (statement instalment)")
    p.add_argument("--amount", required=True, type=float,
                   help="yuan (> 0): jiebei the amount borrowed, yuefu the purchase price, huabei the converted statement")
    p.add_argument("--term", required=True, type=int,
                   help=f"jiebei: months; yuefu, huabei: monthly periods (1 to {MAX_TERM})")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--apr", type=float, help="jiebei: annual contract rate as a fraction (0.18 = 18%%; a percent such as 18 is refused); "
                           "monthly rate = apr / 12")
    rate.add_argument("--daily-rate", type=float, help="jiebei: daily rate as a fraction (0.0004 = 0.04%% a day)")
    rate.add_argument("--fee-per-period", type=float,
                      help="yuefu, huabei: flat fee each period as a fraction of the price or principal "
                           "(yuefu default 0; huabei default: total fee of the default table / periods)")
    p.add_argument("--days-per-year", type=float, default=None,
                   help="jiebei, day count for --daily-rate: apr = daily rate x days (default 365)")
    p.add_argument("--method", choices=METHODS, default=None,
                   help="jiebei repayment method (default equal_installment); "
                        "yuefu and huabei repay principal in equal parts")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    p.error = _argparse_error  # type: ignore[method-assign]
    p.set_defaults(func=run)
    return p


def _heading(result: dict, args: argparse.Namespace) -> str:
    """First line of the table: product, amount, term and the rate or fee terms."""
    amount, kind = f"{args.amount:,.2f}", KIND[PRODUCTS.index(args.product)]
    if kind == LOAN:
        return f"{args.product} (cash loan): {amount} over {args.term} months, {args.method or 'equal_installment'}"
    fee = result["schedule"][0]["fee"]
    if kind == PLAN:
        terms = (f"fee {100 * args.fee_per_period:.4g}% of the price a period" if args.fee_per_period
                 else "no fee (merchant-funded)")
        return f"{args.product} (instalment purchase): {amount} over {args.term} periods, {terms}"
    source = "" if args.fee_per_period is not None else ", default fee table"
    total = sum(r["fee"] for r in result["schedule"])
    return (f"{args.product} (statement instalment): {amount} over {args.term} periods, "
            f"fee {fee:,.2f} a period ({total:,.2f} in all{source})")


def _table(result: dict, args: argparse.Namespace) -> str:
    rows = [[str(r["period"])] + [f"{r[c]:,.2f}" for c in COLUMNS[1:]] for r in result["schedule"]]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(COLUMNS)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    out = [_heading(result, args), line(COLUMNS)]
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(row) for row in rows)
    out.append(f"APR (IRR, fees in): {100 * result['apr']:.2f}%   total payment: {result['total_payment']:,.2f}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Print the quote in args.format; bad input gives one `error:` line on stderr and 2."""
    if "numba" not in sys.modules:
        # One schedule runs as plain Python, the same code: compiling or loading the cached machine
        # code would take most of the command's time. Only this command's process is affected.
        os.environ["NUMBA_DISABLE_JIT"] = "1"
    try:
        result = quote(args.product, args.amount, args.term, args.apr, args.method,
                       args.daily_rate, args.days_per_year, args.fee_per_period)
    except QuoteError as exc:
        print(f"error: {exc}", file=sys.stderr)
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
