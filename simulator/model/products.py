"""Repayment schedules in integer cents, shared by the kernel, the rate policy and `simulator quote`,
and the all-in APR of a schedule (IRR method).

Conventions (pinned by tests against numpy-financial):
- Money is held in integer cents; `round_cents` rounds half up.
- Monthly contract rate r = APR / 12; for the cash loan APR = daily rate x days_per_year.
- Interest of a period = outstanding principal x r, rounded to the cent with the
  rounding residual carried to the next period (`accrue_interest`), so the interest
  over a loan's life is its exact total rounded once: 10,000 interest-first for 12
  months at 0.04% a day pays 1,460.00 of interest, not 12 x 121.67.
- equal_installment: level payment P = round_cents(annuity payment); principal of
  period k = P - interest; the last period repays what is left.
- equal_principal: principal of period k = floor(principal / n); the last repays the rest.
- interest_first: interest each period, all principal in the last.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from ..codes import EQUAL_INSTALLMENT, EQUAL_PRINCIPAL, METHOD_CODES, METHODS


@nb.njit(inline="always", cache=True)
def round_cents(x: float) -> np.int64:
    """Round an amount in cents to an integer number of cents, half up."""
    return np.int64(math.floor(x + 0.5))


@nb.njit(inline="always", cache=True)
def accrue_interest(balance, rate, carry):
    """(interest in whole cents, new carry) for one period on `balance` cents at `rate`."""
    exact = balance * rate + carry
    interest = round_cents(exact)
    return interest, exact - interest


@nb.njit(cache=True)
def level_payment(principal: np.int64, rate: float, term: np.int64) -> np.int64:
    """Equal-instalment payment in cents (annuity), for principal in cents and monthly rate."""
    if rate == 0.0:
        return round_cents(principal / term)
    return round_cents(principal * rate / (1.0 - (1.0 + rate) ** (-term)))


@nb.njit(inline="always", cache=True)
def scheduled_principal(method, k, term, original, scheduled_balance, payment, scheduled_interest):
    """Principal due in period k (1-based) of a loan on its schedule, in cents."""
    if k >= term:
        return scheduled_balance
    if method == EQUAL_INSTALLMENT:
        due = payment - scheduled_interest
    elif method == EQUAL_PRINCIPAL:
        due = original // term
    else:
        due = np.int64(0)
    if due < 0:
        due = np.int64(0)
    if due > scheduled_balance:
        due = scheduled_balance
    return due


@nb.njit(cache=True)
def _schedule(method, principal, rate, term, out):
    payment = level_payment(principal, rate, term) if method == EQUAL_INSTALLMENT else np.int64(0)
    balance = principal
    carry = 0.0
    for k in range(1, term + 1):
        interest, carry = accrue_interest(balance, rate, carry)
        due = scheduled_principal(method, k, term, principal, balance, payment, interest)
        balance -= due
        out[k - 1, 0] = due + interest
        out[k - 1, 1] = due
        out[k - 1, 2] = interest
        out[k - 1, 3] = balance


def schedule_cents(method: str, principal_cents: int, monthly_rate: float, term: int) -> np.ndarray:
    """Schedule as int64 cents, one row a period: payment, principal, interest, balance after."""
    if method not in METHOD_CODES:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    out = np.zeros((term, 4), dtype=np.int64)
    _schedule(METHOD_CODES[method], np.int64(principal_cents), float(monthly_rate), np.int64(term), out)
    return out


@nb.njit(inline="always", cache=True)
def plan_principal(k, periods, original, remaining):
    """Principal of period k (1-based) of an instalment plan: equal parts, the last takes the rest."""
    if k >= periods:
        return remaining
    return min(original // periods, remaining)


def instalment_plan_cents(principal_cents: int, periods: int, fee_per_period_cents: int) -> np.ndarray:
    """Instalment plan (bill instalment or instalment purchase) as int64 cents, one row a period:
    payment, principal, fee, balance after. Principal in equal parts, a flat fee each period."""
    out = np.zeros((periods, 4), dtype=np.int64)
    remaining = int(principal_cents)
    for k in range(1, periods + 1):
        due = int(plan_principal(k, periods, int(principal_cents), remaining))
        remaining -= due
        out[k - 1] = (due + fee_per_period_cents, due, fee_per_period_cents, remaining)
    return out


def fee_rate_for_apr(apr, periods):
    """Flat fee per period (fraction of the principal) at which an equal-principal plan's
    all-in APR (monthly IRR x 12) equals `apr`: 1 = (1/n + f) a(r, n), a the annuity factor.
    Scalars or arrays."""
    r = np.asarray(apr, dtype=np.float64) / 12.0
    n = np.asarray(periods, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        annuity = np.where(r == 0, n, -np.expm1(-n * np.log1p(r)) / np.where(r == 0, 1.0, r))
    fee = np.maximum(0.0, 1.0 / annuity - 1.0 / n)
    return float(fee) if fee.ndim == 0 else fee


@nb.njit(inline="always", cache=True)
def _plan_newton_step(r, pay, n):
    """One step of `plan_rates`' Newton's method: the next r, and the step taken."""
    v = (1.0 + r) ** (-n)
    g = pay * (1.0 - v) / r - 1.0
    dg = pay * (n * v / (1.0 + r) * r - (1.0 - v)) / (r * r)
    step = g / dg
    return max(r - step, 0.5 * r), step


PLAN_NEWTON_STEPS = 100
PLAN_LANES = 4   # plans solved side by side


@nb.njit(cache=True, nogil=True)
def plan_rates(fee_rate, periods, out):
    """out[i]: the monthly IRR r of an equal-principal plan with a flat fee a period (fee_rate[i], a
    fraction of the principal) over periods[i] periods: the root of (1/n + f) a(r, n) = 1, a the
    annuity factor (the inverse of `fee_rate_for_apr`), by Newton's method from the flat-rate guess.
    Four plans are solved side by side, each with its own steps: the processor overlaps their
    chains of divisions (each plan's r is what it would be alone)."""
    todo = np.empty(fee_rate.shape[0], dtype=np.int64)
    m = 0
    for i in range(fee_rate.shape[0]):
        f, n = fee_rate[i], periods[i]
        if f <= 0.0 or n <= 1:
            out[i] = f if n == 1 else 0.0   # one period: r = f exactly
        else:
            todo[m] = i
            m += 1
    r, pay = np.empty(PLAN_LANES), np.empty(PLAN_LANES)
    n, done = np.empty(PLAN_LANES, dtype=np.int64), np.empty(PLAN_LANES, dtype=np.bool_)
    for b in range(0, m, PLAN_LANES):
        for k in range(PLAN_LANES):
            i = todo[min(b + k, m - 1)]
            n[k] = periods[i]
            pay[k] = 1.0 / n[k] + fee_rate[i]
            r[k] = 2.0 * fee_rate[i] * n[k] / (n[k] + 1.0)
            done[k] = b + k >= m            # a lane past the last plan has nothing to solve
        for _ in range(PLAN_NEWTON_STEPS):
            busy = False
            for k in range(PLAN_LANES):
                if not done[k]:
                    r[k], step = _plan_newton_step(r[k], pay[k], n[k])
                    done[k] = abs(step) <= 1e-15 * r[k]
                    busy = busy or not done[k]
            if not busy:
                break
        for k in range(min(PLAN_LANES, m - b)):
            out[todo[b + k]] = r[k]


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
    # Bisection (the NPV falls as the rate rises) to brentq's tolerance, not scipy's brentq itself:
    # importing scipy.optimize takes 0.3 s, most of what `simulator quote` would wait for.
    for _ in range(500):
        mid = 0.5 * (lo + hi)
        if hi - lo <= 1e-15 + 4 * np.finfo(float).eps * abs(mid):
            break
        lo, hi = (mid, hi) if npv(mid) > 0 else (lo, mid)
    return 12.0 * 0.5 * (lo + hi)


def plan_apr(fee_rate: float, periods: int) -> float:
    """All-in APR (IRR method) of an equal-principal plan with a flat fee a period (fraction of principal)."""
    principal = 1_000_000  # cents; large enough that rounding does not show
    rows = instalment_plan_cents(principal, periods, int(round(principal * fee_rate)))
    return irr_apr(principal / 100, rows[:, 0] / 100)


def scheduled_interest(method: np.ndarray, principal: np.ndarray, monthly_rate: np.ndarray,
                       term: np.ndarray) -> np.ndarray:
    """Contract interest over a loan's life if it is paid on schedule (closed forms, unrounded):
    equal instalment n P r / (1 - (1 + r)^-n) - P, equal principal P r (n + 1) / 2, interest
    first P r n."""
    p, r, n = (np.asarray(x, dtype=np.float64) for x in (principal, monthly_rate, term))
    with np.errstate(divide="ignore", invalid="ignore"):
        annuity = np.where(r > 0, n * p * r / (1.0 - (1.0 + r) ** (-n)) - p, 0.0)
    return np.select([method == EQUAL_INSTALLMENT, method == EQUAL_PRINCIPAL], [annuity, p * r * (n + 1) / 2],
                     p * r * n)
