"""The monthly kernel: accounts through months on each path, in integer cents.

One account at a time, all its months in registers, so memory is proportional to
accounts, not accounts x months. Blocks of accounts go to a fixed number of chunks
run in parallel; each chunk adds into its own slice of the output. All sums are
integer cents or counts, so results do not depend on threads or block sizes.

Order of events within a month (model.md section 3) for an open account:
prepayment (current accounts), then a miss with the conditional hazard (current)
or a roll with the conditional roll rate (Mk), else payment or cure. Charge-off
from M6; recoveries follow over `recovery_lag` months.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from .products import accrue_interest, round_cents, scheduled_principal
from .rng import MISS, PREPAY, uniform

N_STATES = 7                     # current, M1 .. M6: the `state` dimension
CHARGED_OFF, CLOSED = 7, 8       # absorbing states outside the dimension

# Flow variables: amounts in cents, then account counts.
FLOWS = (
    "originated", "drawn", "capitalised", "repaid", "prepaid", "charged_off", "recovered",
    "interest_income", "fee_income", "penalty_income", "funding_cost",
    "originated_accounts", "prepaid_accounts", "matured_accounts", "charged_off_accounts",
)
(ORIGINATED, DRAWN, CAPITALISED, REPAID, PREPAID, CHARGED_OFF_AMT, RECOVERED,
 INTEREST, FEES, PENALTY, FUNDING,
 N_ORIGINATED, N_PREPAID, N_MATURED, N_CHARGED_OFF) = range(len(FLOWS))
N_FLOWS = len(FLOWS)

_SQRT2 = math.sqrt(2.0)


@nb.njit(cache=True)
def _simulate_account(i, c, p, path_id, seed, horizon, z, roll, sqrt_rho, inv_sqrt_1mrho, prepay_p, funding_rate,
                      recovery_share, recovery_lag, penalty_rate, late_fee, prepayment,
                      account_id, product, band, start_month, principal, rate, term, method, payment, state0,
                      hazard_q, fraud, stocks, flows, rolls, cures):
    prod, bnd, aid = product[i], band[i], account_id[i]
    start, n, meth, pay, r = start_month[i], term[i], method[i], payment[i], rate[i]
    original = principal[i]
    balance = original
    scheduled = original           # balance had the account paid on schedule
    carry = 0.0                    # interest rounding residual, fractions of a cent
    overdue_interest = np.int64(0)
    penalty_due = np.int64(0)
    fees_due = np.int64(0)
    state = state0[i]
    k = 0                          # instalments fallen due
    recovery_each = np.int64(0)
    recovery_last = np.int64(0)
    recovery_left = 0
    for t in range(max(start, 1), horizon + 1):
        ti = t - 1
        fl = flows[c, p, ti, prod, bnd]
        if t == start:
            fl[ORIGINATED] += balance
            fl[N_ORIGINATED] += 1
            stocks[c, p, ti, prod, bnd, 0, 0] += 1
            stocks[c, p, ti, prod, bnd, 0, 1] += balance
            continue
        if state == CLOSED:
            break
        if state == CHARGED_OFF:
            if recovery_left == 0:
                break
            fl[RECOVERED] += recovery_last if recovery_left == 1 else recovery_each
            recovery_left -= 1
            continue
        fl[FUNDING] += round_cents(balance * funding_rate)
        k += 1
        if k <= n:
            interest, new_carry = accrue_interest(balance, r, carry)
            scheduled_interest = interest if balance == scheduled else round_cents(scheduled * r)
            due = scheduled_principal(meth, k, n, original, scheduled, pay, scheduled_interest)
        else:                      # past maturity: no contract interest, only penalty
            interest, new_carry, due = np.int64(0), carry, np.int64(0)
        if state == 0:
            if prepayment[prod] and not fraud[i] and uniform(seed, path_id, aid, t, PREPAY) < prepay_p:
                fl[INTEREST] += interest
                fl[PREPAID] += balance
                fl[N_PREPAID] += 1
                balance = 0
                state = CLOSED
                continue
            if fraud[i]:
                p_miss = 1.0
            else:
                p_miss = 0.5 * math.erfc(-(hazard_q[i] - sqrt_rho * z[p, ti]) * inv_sqrt_1mrho / _SQRT2)
            missed = uniform(seed, path_id, aid, t, MISS) < p_miss
        else:
            p_roll = 1.0 if fraud[i] else roll[p, ti, state - 1]
            missed = uniform(seed, path_id, aid, t, MISS) < p_roll
        carry = new_carry
        if missed:
            rolls[c, p, ti, prod, bnd, state] += 1
            if state == N_STATES - 1:
                fl[CHARGED_OFF_AMT] += balance
                fl[N_CHARGED_OFF] += 1
                total = round_cents(balance * recovery_share)
                recovery_each = total // recovery_lag
                recovery_last = total - recovery_each * (recovery_lag - 1)
                recovery_left = recovery_lag if total > 0 else 0
                balance = 0
                state = CHARGED_OFF
                continue
            state += 1
            overdue_interest += interest
            scheduled -= due
            fees_due += late_fee[prod]
        else:
            if state > 0:
                cures[c, p, ti, prod, bnd, state] += 1
            paid = balance - scheduled + due  # arrears principal plus this month's principal
            fl[REPAID] += paid
            fl[INTEREST] += overdue_interest + interest
            fl[PENALTY] += penalty_due
            fl[FEES] += fees_due
            balance -= paid
            scheduled = balance
            overdue_interest = np.int64(0)
            penalty_due = np.int64(0)
            fees_due = np.int64(0)
            state = 0
            if balance == 0:
                fl[N_MATURED] += 1
                state = CLOSED
                continue
        if state > 0:
            penalty_due += round_cents((balance - scheduled + overdue_interest) * penalty_rate[prod])
        stocks[c, p, ti, prod, bnd, state, 0] += 1
        stocks[c, p, ti, prod, bnd, state, 1] += balance


@nb.njit(parallel=True, cache=True)
def simulate(seed, path0, z, roll, sqrt_rho, inv_sqrt_1mrho, prepay_p, funding_rate, recovery_share, recovery_lag,
             penalty_rate, late_fee, prepayment,
             account_id, product, band, start_month, principal, rate, term, method, payment, state0, hazard_q, fraud,
             block_size, stocks, flows, rolls, cures):
    """Simulate every account on paths path0 .. path0 + z.shape[0] - 1; add into the outputs.

    Outputs have a leading chunk axis (one slice per parallel chunk; sum it after):
    stocks[chunk, path, month, product, band, state, (accounts, balance)],
    flows[chunk, path, month, product, band, flow], rolls/cures[chunk, path, month, product, band, from_state].
    """
    n_accounts = account_id.shape[0]
    n_blocks = (n_accounts + block_size - 1) // block_size
    n_chunks = stocks.shape[0]
    n_paths, horizon = z.shape
    for c in nb.prange(n_chunks):
        for b in range(c, n_blocks, n_chunks):
            lo = b * block_size
            hi = min(n_accounts, lo + block_size)
            for p in range(n_paths):
                for i in range(lo, hi):
                    _simulate_account(i, c, p, path0 + p, seed, horizon, z, roll, sqrt_rho, inv_sqrt_1mrho, prepay_p,
                                      funding_rate, recovery_share, recovery_lag, penalty_rate, late_fee, prepayment,
                                      account_id, product, band, start_month, principal, rate, term, method, payment,
                                      state0, hazard_q, fraud, stocks, flows, rolls, cures)
