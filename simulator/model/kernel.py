"""The monthly kernel: borrowers and their accounts through months on each path, in integer cents.

One account at a time, all its months in registers, so memory is proportional to
accounts, not accounts x months. A borrower's accounts are consecutive and never
split between blocks; blocks go to pieces of work that threads take as they become free,
each thread adding into its own slice of the outputs. All sums are integer cents or counts,
so results do not depend on threads or block sizes.

Order of events within a month (docs/model.md section 3) for an open account:
revolving spend (current lines), prepayment (current loans), then a miss with the
conditional hazard (current: a line first draws its loan-equivalent factor of the room under
its limit) or a roll with the conditional roll rate (Mk), else payment or cure. Charge-off from M6; recoveries follow over `recovery_lag` months. At each month
end an open account books its expected-credit-loss allowance (read from provisions.EclTable), its
stage and its operating costs.

A current account's miss probability, given the path's factor z and the
borrower's draw b for the month (shared by all the borrower's accounts):
    Phi((Phi^-1(h) - sqrt(R) z - sqrt(R_b) b) / sqrt(1 - R - R_b)),
which averages over b to the Vasicek transform of docs/model.md section 5.
"""
from __future__ import annotations

import math
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from ..codes import (ACCRUAL, ACCRUED, ACCRUED_WRITTEN_OFF, DPD30, OVERLAY, STAGE_1, STAGE_3, V_ACCRUED_WRITTEN_OFF, A_ORIGINATED, A_RELEASED, A_REMEASURED, A_USED, ACCOUNTS, ACQUISITION, ALLOWANCE, BADS, BALANCE,
                     CHARGED_OFF_AMT, CHARGED_OFF_STATUS, FORECAST_UNIT, CLOSED_STATUS, COLLECTION, DISCOUNT, DPD90, DRAWN, FEES,
                     FRAUD_CHARGED_OFF, FUNDING, INTEREST, LINE, MERCHANT_FEE, N_CHARGED_OFF, N_CLOSED, N_MATURED,
                     N_ORIGINATED, N_PREPAID, PREPAID_STATUS, N_STATES, ORIGINATED, PD_MONTHS, PENALTY, PREPAID, RECOVERED, REPAID, REVOLVER, SERVICING,
                     TRANSACTOR, V_ALLOWANCE, V_CHARGED_OFF, V_COSTS, V_CREDIT_INCOME, V_FUNDING, V_MERCHANT_INCOME,
                     V_ORIGINAL, V_RECOVERED, VINTAGE_STATES, WRITTEN_OFF, T_BALANCE, T_CHARGED_OFF, T_DUE, T_PAID,
                     T_RECOVERED, T_STATUS)
from .hazard import conditional_quantile, normal_cdf
from .prepayment import price_scale
from .products import accrue_interest, plan_principal, round_cents, scheduled_principal
from .provisions import SICR_COLUMNS, SICR_INCREASE, SICR_RATIO, ecl_row, line_exposure, next_stage, stage_of
from .rng import (ACTIVE, ATTRITION, BORROWER, CONVERT, CONVERT_TENOR, INV53, MISS, PREPAY, REPLAY_FRAUD, SPEND, draw,
                  draw_at, inverse_normal, month_key, stream, uniform)

# Phi at k / GRID_SCALE for |k| <= CDF_HALF (x from -10 to 10) and Phi^-1 at k / GRID_SCALE
# for 0 <= k <= GRID_SCALE. Both are increasing, so the grid values on either side of an
# argument bound the function there, and the cell is exact: scaling by a power of two is.
GRID_SCALE = 1024.0
CDF_SCALE, CDF_HALF = 64.0, 640


@nb.njit(cache=True)
def cdf_tables():
    """(Phi on its grid, Phi^-1 on its grid), computed by the functions the kernel uses."""
    cdf = np.empty(2 * CDF_HALF + 1)
    for k in range(cdf.shape[0]):
        cdf[k] = normal_cdf((k - CDF_HALF) / CDF_SCALE)
    inv = np.empty(np.int64(GRID_SCALE) + 1)
    for k in range(inv.shape[0]):
        inv[k] = inverse_normal(max(k / GRID_SCALE, INV53))   # as `rng.normal` maps its uniform
    return cdf, inv


@nb.njit(inline="always", cache=True)
def _cdf_bounds(x, cdf):
    """(lo, hi) with lo <= Phi(x) <= hi: the grid values around x, or (0, 1) off the grid."""
    f = math.floor(x * CDF_SCALE)
    if f >= -CDF_HALF and f < CDF_HALF:        # false for NaN
        k = np.int64(f) + CDF_HALF
        return cdf[k], cdf[k + 1]
    return 0.0, 1.0


@nb.njit(inline="always", cache=True)
def _below_cdf(u, x, cdf):
    """u < Phi(x), exactly as `u < normal_cdf(x)`, with erfc only for the few draws between the bounds."""
    lo, hi = _cdf_bounds(x, cdf)
    if u >= hi:
        return False
    if u < lo:
        return True
    return u < normal_cdf(x)


@nb.njit(inline="always", cache=True)
def _missed(terms, fraud, hazard_q, month_state, borrower_key, t, z, state, roll_rate, has_borrower_draw, cdf, inv):
    """Does the account miss (from current) or roll (from Mk) this month?

    The decision is exactly u < Phi((hazard_q - sqrt(R) z - sqrt(R_b) b) / sqrt(1 - R - R_b)) with
    b = Phi^-1 of the borrower's uniform. Every step is increasing or decreasing in b and in x, also
    in floating point, so bounds on b from `inv` and on Phi from `cdf` decide almost every draw;
    only the rest evaluate Phi^-1 and erfc (same operations in the same order: same bits)."""
    if fraud:
        return True
    u = draw_at(month_state, MISS)
    if state > 0:
        return u < roll_rate
    b = 0.0
    if has_borrower_draw:
        ub = draw(borrower_key, t, BORROWER)
        kb = np.int64(ub * GRID_SCALE)      # b lies in [inv[kb], inv[kb + 1]]
        _, hi = _cdf_bounds(conditional_quantile(hazard_q, z, terms.sqrt_rho, inv[kb], terms.sqrt_rho_b,
                                                 terms.inv_sqrt_idio), cdf)
        if u >= hi:                             # the common case first
            return False
        lo, _ = _cdf_bounds(conditional_quantile(hazard_q, z, terms.sqrt_rho, inv[kb + 1], terms.sqrt_rho_b,
                                                 terms.inv_sqrt_idio), cdf)
        if u < lo:
            return True
        b = inverse_normal(max(ub, INV53))
    return _below_cdf(u, conditional_quantile(hazard_q, z, terms.sqrt_rho, b, terms.sqrt_rho_b, terms.inv_sqrt_idio),
                      cdf)


@nb.njit(inline="always", cache=True)
def _originate(out, fl, af, terms, c, p, prod, vintage, original):
    """Count a new account, its acquisition cost, and its original amount (principal, or a line's
    opening limit) by vintage."""
    fl[N_ORIGINATED] += 1
    af[ACQUISITION] += terms.acquisition_cost[prod]
    if vintage >= 0:
        out.vintage_flows[c, p, vintage, 0, prod, V_ORIGINAL] += original
        out.vintage_flows[c, p, vintage, 0, prod, V_COSTS] += terms.acquisition_cost[prod]


@nb.njit(inline="always", cache=True)
def _ecl_rows(terms, prod, meth, bnd, eir):
    """The account's two slices of provisions.EclTable around its effective rate (factor node, state,
    months left, column), and the weight of the upper one: linear between the rate nodes."""
    x = eir * terms.ecl_inv_eir_step
    k = min(np.int64(x), terms.ecl.shape[3] - 2)
    return terms.ecl[prod, meth, bnd, k], terms.ecl[prod, meth, bnd, k + 1], x - k


@nb.njit(inline="always", cache=True)
def _ecl_node(terms, n_z, z):
    """The factor nodes m, m1 around z and the weight v of m1 (linear between them; through the cycle
    the table has one node)."""
    if n_z == 1:
        return 0, 0, 0.0
    y = min(max((z - terms.ecl_z0) * terms.ecl_inv_z_step, 0.0), n_z - 1.0)
    m = np.int64(y)
    return m, min(m + 1, n_z - 1), y - m


@nb.njit(inline="always", cache=True)
def _ecl_rate(lo, hi, w, m, m1, v, state, left, col):
    """The table's column `col` for an account (slices `lo`, `hi` and weight `w` of `_ecl_rows`, nodes
    of `_ecl_node`): column 0 the lender's weighted forecast, 1 + k its scenario k (provisions.EclTable)."""
    if lo.shape[0] == 1:
        return (1.0 - w) * lo[0, state, left, col] + w * hi[0, state, left, col]
    return ((1.0 - v) * ((1.0 - w) * lo[m, state, left, col] + w * hi[m, state, left, col])
            + v * ((1.0 - w) * lo[m1, state, left, col] + w * hi[m1, state, left, col]))


@nb.njit(inline="always", cache=True)
def _loan_ecl(lo, hi, w, node, row, left, balance, scratch, every):
    """A loan's expected credit loss in cents under the weighted forecast, and in `scratch[col]` its
    unrounded ECL in cents under the table's column 0 or, with `every`, each forecast's column (`node`:
    `_ecl_node`'s)."""
    m, m1, v = node
    for col in range(lo.shape[3] - SICR_COLUMNS if every else 1):
        scratch[col] = balance * _ecl_rate(lo, hi, w, m, m1, v, row, left, col)
    return round_cents(scratch[0])


@nb.njit(inline="always", cache=True)
def _forecast(fa, scratch):
    """Month end of an open account: its ECL under each column of the table (`scratch`, cents) into its
    stage's row of the forecast allowance, in millionths of a cent (codes.FORECAST_UNIT)."""
    for col in range(fa.shape[0]):
        fa[col] += np.int64(math.floor(scratch[col] * FORECAST_UNIT + 0.5))


@nb.njit(inline="always", cache=True)
def _overlaid(terms, ecl):
    """An account's allowance in cents: its modelled ECL plus the management overlay,
    provisions.overlay of it rounded to a cent; and the overlay."""
    overlay = round_cents(ecl * terms.overlay)
    return ecl + overlay, overlay


@nb.njit(inline="always", cache=True)
def _provide(out, af, sg, terms, c, p, prod, vintage, mob, state, stage, balance, ecl, ecl_before, new, overlay):
    """Month end of an open account in `stage`: its stage's accounts, balance and ECL allowance (with
    its `overlay`); the allowance's movement (originated for a new account, else remeasured from
    `ecl_before`); its servicing cost and, when delinquent, collection cost."""
    sg[stage, ACCOUNTS] += 1
    sg[stage, BALANCE] += balance
    sg[stage, ALLOWANCE] += ecl
    sg[stage, OVERLAY] += overlay
    if new:
        af[A_ORIGINATED] += ecl
    else:
        af[A_REMEASURED] += ecl - ecl_before
    cost = terms.servicing_cost[prod]
    af[SERVICING] += cost
    if state > 0:
        af[COLLECTION] += terms.collection_cost[prod]
        cost += terms.collection_cost[prod]
    if vintage >= 0:
        out.vintage_flows[c, p, vintage, mob, prod, V_COSTS] += cost
        out.vintage_flows[c, p, vintage, mob, prod, V_ALLOWANCE] += ecl


@nb.njit(inline="always", cache=True)
def _restage(terms, tr, lo, hi, w, node, state, left, stage, good, new):
    """Month end of an open account: its stage and months current (provisions.next_stage), with a
    significant increase in credit risk read from the ECL table's SICR columns at its state and months
    left (`lo`, `hi`, `w` its slices, `_ecl_rows`; `node` `_ecl_node`'s); a change of stage is a
    transfer into tr[from, to]. A new account is in stage 1 (at initial recognition)."""
    sicr = False
    if state < DPD30 and not new and (terms.sicr_ratio > 0.0 or terms.sicr_increase > 0.0):
        m, m1, v = node
        sicr = ((terms.sicr_ratio > 0.0
                 and _ecl_rate(lo, hi, w, m, m1, v, state, left, SICR_RATIO) >= terms.sicr_ratio)
                or (terms.sicr_increase > 0.0
                    and _ecl_rate(lo, hi, w, m, m1, v, state, left, SICR_INCREASE) >= terms.sicr_increase))
    after, good = next_stage(stage, good, state, sicr, terms.cure_months, terms.probation_months)
    if after != stage and not new:
        tr[stage, after] += 1
    return after, good


@nb.njit(inline="always", cache=True)
def _earn(out, fl, line, c, p, prod, vintage, mob, amount):
    """Income or funding cost of an account in a month: into its flow `line` and into its vintage's
    credit income, merchant income or funding."""
    fl[line] += amount
    if vintage >= 0:
        merchant = line == DISCOUNT or line == MERCHANT_FEE
        column = V_FUNDING if line == FUNDING else V_MERCHANT_INCOME if merchant else V_CREDIT_INCOME
        out.vintage_flows[c, p, vintage, mob, prod, column] += amount


@nb.njit(inline="always", cache=True)
def _hold_accrued(sg, stage, accrued):
    """Month end of an open account: its accrued interest receivable, by its stage."""
    if accrued != 0:               # always so on the cash basis
        sg[stage, ACCRUED] += accrued


@nb.njit(inline="always", cache=True)
def _recognised(terms, eir, gross, stage, ecl, carry):
    """(Effective-interest income of a loan's month in cents, the new carry; docs/model.md section 6):
    its effective rate on the gross carrying amount `gross` (principal + accrued interest), in stage 3
    on the amount net of its allowance `ecl`, rounded with its residual carried like contract
    interest (`accrue_interest`); 0 on the cash basis."""
    if not terms.effective_interest:
        return np.int64(0), carry
    return accrue_interest(max(gross - ecl, 0) if stage == STAGE_3 else gross, eir, carry)


@nb.njit(inline="always", cache=True)
def _accrue(terms, out, fl, c, p, prod, vintage, mob, amount):
    """The month's income recognised less the cash interest and integral fees received (`amount`) into
    interest_accrual and the vintage's credit income; returns the change of the accrued receivable
    (0 on the cash basis)."""
    if not terms.effective_interest:
        return np.int64(0)
    _earn(out, fl, ACCRUAL, c, p, prod, vintage, mob, amount)
    return amount


@nb.njit(inline="always", cache=True)
def _write_off_accrued(out, fl, c, p, prod, vintage, mob, accrued):
    """At a charge-off, the accrued interest receivable written off (a credit loss), also by vintage."""
    fl[ACCRUED_WRITTEN_OFF] += accrued
    if vintage >= 0:
        out.vintage_flows[c, p, vintage, mob, prod, V_ACCRUED_WRITTEN_OFF] += accrued


@nb.njit(inline="always", cache=True)
def _line_recognised(stage3, gross, ecl, billed, plan_due, plan_left, fee_due, plan_eir, plan_accrued):
    """(Effective-interest income of a line's month, its plan's accrual after it): the revolving
    interest `billed`, plus in a month of a bill-instalment plan its fee at the plan's effective rate
    on the plan's principal before the instalment and its accrual (the plan's last month takes the
    rest, so the plan's accrual ends at 0); in stage 3 the share (gross - allowance) / gross of it."""
    plan = np.int64(0)
    if plan_due > 0 or fee_due > 0:
        plan = fee_due - plan_accrued if plan_left == 0 else \
            round_cents(plan_eir * (plan_left + plan_due + plan_accrued))
        plan_accrued += plan - fee_due
    earned = billed + plan
    if stage3 and gross > 0:
        earned = round_cents(earned * (max(gross - ecl, 0) / gross))
    return earned, plan_accrued


@nb.njit(inline="always", cache=True)
def _charge_off(out, flows, af, c, p, prod, vintage, start, t, horizon, balance, unpaid, ecl, owed, terms, taping, i,
                fraud):
    """Write the balance off in month t, with the interest, fees and penalty `unpaid` (never income),
    use the allowance `ecl` against it, and book its recoveries in months t + 1 .. t + recovery_lag
    (equal parts, the last takes the rest; none past the horizon); `owed` is the month's amount due
    (the tape's); a first-party fraudster's balance is also `fraud_charged_off`. The account's months
    end here."""
    fl = flows[t - 1]
    fl[WRITTEN_OFF] += unpaid
    af[A_USED] += ecl
    if taping:
        _tape(out, i, t - 1, CHARGED_OFF_STATUS, 0, owed, 0, balance)
    fl[CHARGED_OFF_AMT] += balance
    if fraud:
        fl[FRAUD_CHARGED_OFF] += balance
    fl[N_CHARGED_OFF] += 1
    if vintage >= 0:
        out.vintage_flows[c, p, vintage, t - start, prod, V_CHARGED_OFF] += balance
    total = round_cents(balance * terms.recovery_share)
    if total <= 0:
        return
    lag = terms.recovery_lag
    each = total // lag
    for m in range(1, min(lag, horizon - t) + 1):
        recovered = total - each * (lag - 1) if m == lag else each
        flows[t + m - 1, RECOVERED] += recovered
        if vintage >= 0:
            out.vintage_flows[c, p, vintage, t + m - start, prod, V_RECOVERED] += recovered
        if taping:
            row = out.tape[out.tape_row0[i] + t + m - 1]
            row[T_STATUS] = CHARGED_OFF_STATUS
            row[T_RECOVERED] = recovered


@nb.njit(inline="always", cache=True)
def _close(out, fl, af, counter, ecl, taping, i, ti, status, owed, paid):
    """An account closed in month ti + 1 (repaid, matured, prepaid in full, a line closed): counted in
    the flow `counter`, its allowance `ecl` released, its tape row `status` with what it owed and paid."""
    fl[counter] += 1
    af[A_RELEASED] += ecl
    if taping:
        _tape(out, i, ti, status, 0, owed, paid, 0)


@nb.njit(inline="always", cache=True)
def _tape(out, i, ti, status, balance, due, paid, charged_off):
    """The account's row of the loan tape in month ti + 1 (codes.TAPE)."""
    row = out.tape[out.tape_row0[i] + ti]
    row[T_STATUS] = status
    row[T_BALANCE] = balance
    row[T_DUE] = due
    row[T_PAID] = paid
    row[T_CHARGED_OFF] = charged_off


@nb.njit(inline="always", cache=True)
def _record(out, stocks, borrowers, worst, single, c, p, ti, prod, state, balance, vintage, mob):
    """Month-end stock of an open account: by cell; its delinquent (30+) balance by vintage and
    months on book (current and M1 are not kept by vintage: they cost a quarter of the kernel's
    time and no vintage measure needs them); the borrower's worst state (directly when the
    borrower has this account only)."""
    stocks[ti, state, ACCOUNTS] += 1
    stocks[ti, state, BALANCE] += balance
    if vintage >= 0 and state >= VINTAGE_STATES:
        out.vintage_stocks[c, p, vintage, mob, prod, state, BALANCE] += balance
    if single:
        borrowers[ti, state] += 1
    else:
        worst[ti] = max(worst[ti], state)


@nb.njit(inline="always", cache=True)
def _seasoning(out, c, p, prod, bnd, start, t, state, horizon, counted):
    """The realised 12-month bad rate: accounts originated with 12 months on book inside the
    horizon (at origination), and those of them that reach 90+ within 12 months on book.
    Returns whether this account is now counted as bad."""
    if start < 1 or start + PD_MONTHS > horizon:
        return counted
    if t == start:
        out.seasoned[c, p, prod, bnd, ACCOUNTS] += 1
    elif state == DPD90 and not counted and t - start <= PD_MONTHS:
        out.seasoned[c, p, prod, bnd, BADS] += 1
        return True
    return counted


@nb.njit(inline="always", cache=True)
def _fraudster(terms, path_id, acc, i):
    """A first-party fraudster: flagged at origination, or a replayed borrower drawn as one on this path
    with its `fraud_share` (a backtest: which of a tape's borrowers were fraudsters is not known)."""
    share = acc.fraud_share[i]
    return acc.fraud[i] or (share > 0.0 and uniform(terms.seed, path_id, acc.borrower[i], 0, REPLAY_FRAUD) < share)


@nb.njit(inline="always", cache=True)
def _account(i, c, p, path_id, z, roll, terms, acc, out):
    """What an account's months share: product, band, start month, vintage (-1: not kept), its
    random streams (own and borrower's), its rows of the outputs by month (flows, stocks, rolls,
    cures, borrowers, accounting, stages, stage transfers), the path's factor and roll rates by month, its risk inputs,
    and whether it writes the loan tape (path 0, when the tape has rows)."""
    prod, bnd, start = acc.product[i], acc.band[i], acc.start_month[i]
    vintage = start - 1 if 1 <= start <= out.vintage_stocks.shape[2] else -1
    has_b = terms.sqrt_rho_b > 0.0
    key = stream(terms.seed, path_id, acc.account_id[i])
    borrower_key = stream(terms.seed, path_id, acc.borrower[i]) if has_b else key
    taping = out.tape.shape[0] > 0 and path_id == 0
    return (prod, bnd, start, vintage, has_b, key, borrower_key, taping,
            out.flows[c, p, :, prod, bnd], out.stocks[c, p, :, prod, bnd], out.rolls[c, p, :, prod, bnd],
            out.cures[c, p, :, prod, bnd], out.borrowers[c, p, :, bnd], out.accounting[c, p, :, prod, bnd],
            out.stages[c, p, :, prod, bnd], out.transfers[c, p, :, prod, bnd], z[p], roll[p],
            _fraudster(terms, path_id, acc, i), acc.hazard_q[i], terms.penalty_rate[prod])


@nb.njit(inline="always", cache=True)
def _loan(i, c, p, path_id, horizon, z, roll, prepay, terms, acc, out, worst, single, cdf, inv, scratch):
    """A cash loan or instalment purchase: scheduled instalments, prepayment, arrears, charge-off."""
    (prod, bnd, start, vintage, has_b, key, borrower_key, taping, flows, stocks, rolls, cures, borrowers, accounting,
     stages, transfers, z_p, roll_p, fraud, hazard_q, penalty_rate) = _account(i, c, p, path_id, z, roll, terms, acc, out)
    n, meth, pay, r, fee, eir = acc.term[i], acc.method[i], acc.payment[i], acc.rate[i], acc.fee[i], acc.eir[i]
    balance = acc.principal[i]
    original = balance - acc.overdue0[i]   # the schedule's principal (an existing book's arrears are apart)
    late_fee, prepay_p = terms.late_fee[prod], prepay[p]
    can_prepay = terms.prepayment[prod] and not fraud
    prepay_scale = price_scale(eir, terms.prepay_price_sensitivity, terms.prepay_reference_apr)
    scheduled = original           # balance had the account paid on schedule
    carry = 0.0                    # interest rounding residual, fractions of a cent
    overdue_interest = np.int64(0)
    penalty_due = np.int64(0)
    fees_due = np.int64(0)         # fees missed (integral to the yield)
    late_due = np.int64(0)         # late fees missed (cash basis always)
    accrued = np.int64(0)          # accrued interest receivable (an existing book's: 0 at the start)
    income_carry = 0.0             # its income's rounding residual
    state = acc.state0[i]
    stage, good = stage_of(state), 0   # its stage and months current at the last month end (an existing book's: its state's)
    k = 0                          # instalments fallen due
    counted = False
    ecl = np.int64(0)              # the allowance at the last month end
    ecl_lo, ecl_hi, ecl_w = _ecl_rows(terms, prod, meth, bnd, eir)
    if start <= 0:                 # an existing book's account: its allowance at the start (month 1's factor)
        node = _ecl_node(terms, ecl_lo.shape[0], z_p[0])
        ecl, _ = _overlaid(terms, _loan_ecl(ecl_lo, ecl_hi, ecl_w, node, state, n, balance, scratch, False))
        out.opening_allowance[c, p, prod, bnd, stage] += ecl
    for t in range(max(start, 1), horizon + 1):
        ti = t - 1
        fl = flows[ti]
        af = accounting[ti]
        owed = np.int64(0)         # what falls due this month, and what is paid (the tape's)
        paid_in = np.int64(0)
        if t == start:
            _originate(out, fl, af, terms, c, p, prod, vintage, balance)
            fl[ORIGINATED] += balance
            _earn(out, fl, DISCOUNT, c, p, prod, vintage, 0, acc.discount[i])
        else:
            _earn(out, fl, FUNDING, c, p, prod, vintage, t - start, round_cents(balance * terms.funding_rate))
            k += 1
            if k <= n:            # contract interest on the principal not yet due; overdue principal bears penalty
                interest, new_carry = accrue_interest(scheduled, r, carry)
                due = scheduled_principal(meth, k, n, original, scheduled, pay, interest)
                fee_due = fee
            else:                  # past maturity: no contract interest or fee, only penalty
                interest, new_carry, due, fee_due = np.int64(0), carry, np.int64(0), np.int64(0)
            month_state = month_key(key, t)
            owed = balance - scheduled + due + overdue_interest + interest + penalty_due + fees_due + late_due + fee_due
            earned, income_carry = _recognised(terms, eir, balance + accrued, stage, ecl, income_carry)
            if state == 0 and can_prepay and draw_at(month_state, PREPAY) < prepay_p[ti] * prepay_scale:
                _earn(out, fl, INTEREST, c, p, prod, vintage, t - start, interest)
                _earn(out, fl, FEES, c, p, prod, vintage, t - start, fee_due)
                _accrue(terms, out, fl, c, p, prod, vintage, t - start, -accrued)   # derecognised: A to 0
                fl[PREPAID] += balance
                _close(out, fl, af, N_PREPAID, ecl, taping, i, ti, PREPAID_STATUS, owed, balance + interest + fee_due)
                break
            roll_rate = roll_p[ti, state - 1] if state > 0 else 0.0
            carry = new_carry
            if _missed(terms, fraud, hazard_q, month_state, borrower_key, t, z_p[ti], state, roll_rate, has_b, cdf, inv):
                rolls[ti, state] += 1
                if state == N_STATES - 1:
                    _write_off_accrued(out, fl, c, p, prod, vintage, t - start, accrued)
                    _charge_off(out, flows, af, c, p, prod, vintage, start, t, horizon, balance,
                                overdue_interest + fees_due + late_due + penalty_due, ecl, owed, terms, taping, i,
                                fraud)
                    break
                state += 1
                accrued += _accrue(terms, out, fl, c, p, prod, vintage, t - start, earned)
                overdue_interest += interest
                scheduled -= due
                fees_due += fee_due
                late_due += late_fee
            else:
                if state > 0:
                    cures[ti, state] += 1
                paid = balance - scheduled + due  # arrears principal plus this month's principal
                paid_in = owed
                fl[REPAID] += paid
                _earn(out, fl, INTEREST, c, p, prod, vintage, t - start, overdue_interest + interest)
                _earn(out, fl, PENALTY, c, p, prod, vintage, t - start, penalty_due)
                _earn(out, fl, FEES, c, p, prod, vintage, t - start, fees_due + late_due + fee_due)
                balance -= paid
                # The cash interest and integral fees reduce the accrual; repaid in full, A ends at 0.
                accrued += _accrue(terms, out, fl, c, p, prod, vintage, t - start,
                                   earned - (overdue_interest + interest + fees_due + fee_due) if balance > 0
                                   else -accrued)
                scheduled = balance
                overdue_interest = np.int64(0)
                penalty_due = np.int64(0)
                fees_due = np.int64(0)
                late_due = np.int64(0)
                state = 0
                if balance == 0:
                    _close(out, fl, af, N_MATURED, ecl, taping, i, ti, CLOSED_STATUS, owed, paid_in)
                    break
            if state > 0:          # on overdue principal only: no penalty on interest (no compounding)
                penalty_due += round_cents((balance - scheduled) * penalty_rate)
        _record(out, stocks, borrowers, worst, single, c, p, ti, prod, state, balance, vintage, t - start)
        left = max(n - k, 0)
        node = _ecl_node(terms, ecl_lo.shape[0], z_p[ti])
        stage, good = _restage(terms, transfers[ti], ecl_lo, ecl_hi, ecl_w, node, state, left, stage, good, t == start)
        _hold_accrued(stages[ti], stage, accrued)
        if taping:
            _tape(out, i, ti, state, balance, owed, paid_in, 0)
        row = ecl_row(state, start >= 1 and state == t - start, stage)   # never paid: missed every payment so far
        slot = terms.sensitivity_slot[ti]
        before = ecl
        ecl, overlay = _overlaid(terms, _loan_ecl(ecl_lo, ecl_hi, ecl_w, node, row, left, balance, scratch, slot >= 0))
        _provide(out, af, stages[ti], terms, c, p, prod, vintage, t - start, state, stage, balance, ecl, before,
                 t == start, overlay)
        if slot >= 0:
            _forecast(out.forecast_allowance[c, p, slot, prod, stage], scratch)
        counted = _seasoning(out, c, p, prod, bnd, start, t, state, horizon, counted)


@nb.njit(inline="always", cache=True)
def _most_owed(limit, r):
    """The most a line with `limit` may owe in principal (cents): its revolving interest at monthly rate
    r on top stays within the limit. The room for spend and drawdown is this less the balance."""
    return np.int64(math.floor(limit / (1.0 + r)))


@nb.njit(inline="always", cache=True)
def _line_ecl(terms, lo, hi, w, node, row, state, stage, prod, payer, balance, limit, r, spend_mean, leaving, scratch,
              every):
    """A line's expected credit loss in cents (provisions.line_ecl): the table's columns k times the
    exposure of a charge-off that ends 7 misses from month k, its expected balance then
    (provisions.line_exposure: no spend once leaving) plus, if it has not left by then, the
    loan-equivalent factor of the room left (none for the present run of misses of a delinquent line:
    it drew at its first miss). `row` is the table's state row (provisions.ecl_row), `stage` the
    account's (lifetime from stage 2); `lo`, `hi`, `w` its slices of the table (`_ecl_rows`), `node`
    `_ecl_node`'s. Under the weighted forecast; `scratch[col]` gets its unrounded ECL in cents under
    column 0 or, with `every`, each forecast's column."""
    room = float(_most_owed(limit, r))
    kept = terms.line_kept[prod, payer]
    transactor = payer == TRANSACTOR
    mean = 0.0 if leaving else float(spend_mean)
    stay = 0.0 if leaving else 1.0        # has not left by month k (a transactor owes only then: line_owes)
    staying = expected = float(balance)
    m, m1, v = node
    cols = lo.shape[3] - SICR_COLUMNS if every else 1
    scratch[:cols] = 0.0
    for k in range(terms.line_window[1 if stage > STAGE_1 else 0] + 1):
        if k > 0:
            stay *= 1.0 - terms.attrition[prod]
            if k == 1 or not transactor:      # a transactor's exposure is the same from k = 1 on
                staying, expected = line_exposure(staying, expected, kept, terms.spend_probability[prod], stay,
                                                  mean, room, transactor)
        exposure = expected
        if k > 0 or state == 0:
            exposure += terms.loan_equivalent[prod] * (1.0 if transactor and k > 0 else stay) * max(room - staying, 0.0)
        for col in range(cols):
            scratch[col] += exposure * _ecl_rate(lo, hi, w, m, m1, v, row, k, col)
    return round_cents(scratch[0])


@nb.njit(inline="always", cache=True)
def _line(i, c, p, path_id, horizon, z, roll, prepay, terms, acc, out, worst, single, cdf, inv, scratch):
    """A revolving line on its statement cycle (docs/model.md section 3): the statement billed at the
    end of the previous month falls due, is paid by behaviour type or missed; then the month's spend
    (billed at its end). Revolving interest on the unpaid statement is billed on the next statement
    and income when paid; bill instalments; limit rules; activity and attrition; arrears; charge-off.
    Its terms are its product's (by `prod`)."""
    (prod, bnd, start, vintage, has_b, key, borrower_key, taping, flows, stocks, rolls, cures, borrowers, accounting,
     stages, transfers, z_p, roll_p, fraud, hazard_q, penalty_rate) = _account(i, c, p, path_id, z, roll, terms, acc, out)
    r, payer, limit, eir = acc.rate[i], acc.payer[i], acc.limit[i], acc.eir[i]
    spend_mean, line_cap = acc.spend[i], acc.line_cap[i]
    balance = acc.principal[i]     # principal receivable: unbilled and billed spend, overdue, bill-instalment plan
    overdue = acc.overdue0[i]      # overdue principal (missed minimums and plan instalments)
    plan_left = np.int64(0)        # principal of the bill-instalment plan not yet due
    plan_original = np.int64(0)
    plan_fee = np.int64(0)
    plan_n = 0
    plan_k = 0
    interest_due = np.int64(0)     # revolving interest billed and not yet paid
    fees_due = np.int64(0)         # plan fees missed
    accrued = np.int64(0)          # accrued interest receivable (an existing book's: 0 at the start)
    plan_eir = 0.0                 # the plan's effective rate a month, and its fee recognised less fallen due
    plan_accrued = np.int64(0)
    penalty_due = np.int64(0)
    months_current = 0
    leaving = False                # stopped spending for good: closes once nothing is owed
    state = acc.state0[i]
    stage, good = stage_of(state), 0   # its stage and months current at the last month end (an existing book's: its state's)
    counted = False
    ecl = np.int64(0)              # the allowance at the last month end
    ecl_lo, ecl_hi, ecl_w = _ecl_rows(terms, prod, payer, bnd, eir)   # a line's rows by payer type
    if start <= 0:                 # an existing book's line: its allowance at the start (month 1's factor)
        node = _ecl_node(terms, ecl_lo.shape[0], z_p[0])
        ecl, _ = _overlaid(terms, _line_ecl(terms, ecl_lo, ecl_hi, ecl_w, node, state, state, stage, prod, payer,
                                            balance, limit, r, spend_mean, False, scratch, False))
        out.opening_allowance[c, p, prod, bnd, stage] += ecl
    for t in range(max(start, 1), horizon + 1):
        ti = t - 1
        fl = flows[ti]
        af = accounting[ti]
        month_state = month_key(key, t)
        owed = np.int64(0)         # what falls due this month, and what is paid (the tape's)
        paid_in = np.int64(0)
        if t == start:
            _originate(out, fl, af, terms, c, p, prod, vintage, limit)
        else:
            _earn(out, fl, FUNDING, c, p, prod, vintage, t - start, round_cents(balance * terms.funding_rate))
            interest_before, fees_before, stage_before, gross = interest_due, fees_due, stage, balance + accrued
            # The statement billed at the end of last month: a revolver's or minimum payer's may become a plan.
            statement = balance - plan_left - overdue
            if state == 0 and plan_left == 0 and payer != TRANSACTOR and statement >= terms.min_conversion[prod] \
                    and terms.conversion_rate[prod] > 0.0 \
                    and draw_at(month_state, CONVERT) < terms.conversion_rate[prod]:
                u = draw_at(month_state, CONVERT_TENOR)
                j = 0
                while j < terms.conversion_tenors_offered[prod] - 1 and u >= terms.conversion_cum_shares[prod, j]:
                    j += 1
                plan_n, plan_k = terms.conversion_tenors[prod, j], 0
                plan_original = statement
                plan_left = statement
                plan_fee = round_cents(statement * terms.conversion_fee_rate[prod, j])
                plan_eir = terms.conversion_eir[prod, j]
                statement = np.int64(0)
            plan_due = np.int64(0)
            fee_due = np.int64(0)
            if plan_left > 0:
                plan_k += 1
                plan_due = plan_principal(plan_k, plan_n, plan_original, plan_left)
                fee_due = plan_fee
            minimum = min(max(round_cents(statement * terms.min_payment_share[prod]), terms.min_payment_floor[prod]),
                          statement)
            owes = statement > 0 or plan_due > 0 or overdue > 0 or interest_due > 0
            owed = minimum + plan_due + overdue + interest_due + fees_due + fee_due + penalty_due
            roll_rate = roll_p[ti, state - 1] if state > 0 else 0.0
            if owes and _missed(terms, fraud, hazard_q, month_state, borrower_key, t, z_p[ti], state, roll_rate, has_b,
                                cdf, inv):
                rolls[ti, state] += 1
                if state == N_STATES - 1:
                    _write_off_accrued(out, fl, c, p, prod, vintage, t - start, accrued)
                    _charge_off(out, flows, af, c, p, prod, vintage, start, t, horizon, balance,
                                interest_due + fees_due + penalty_due, ecl, owed, terms, taping, i, fraud)
                    break
                drawdown = np.int64(0)
                if state == 0:
                    # Drawdown before default: a first miss draws the loan-equivalent factor of the room
                    # under the limit (a fraudster has drawn it all; a customer who left draws nothing),
                    # billed at the month end; then the cut.
                    room = _most_owed(limit, r) - balance
                    if room > 0 and not fraud and not leaving:
                        drawdown = round_cents(room * terms.loan_equivalent[prod])
                    limit = max(balance + drawdown, np.int64(math.floor(limit * (1.0 - terms.limit_cut[prod]))))
                state += 1
                months_current = 0
                overdue += minimum + plan_due
                plan_left -= plan_due
                fees_due += fee_due
                # Revolving interest on the principal not overdue; the overdue principal bears penalty instead.
                interest_due += round_cents((balance - plan_left - overdue) * r)
                if drawdown > 0:
                    fl[DRAWN] += drawdown
                    balance += drawdown
                    _earn(out, fl, MERCHANT_FEE, c, p, prod, vintage, t - start,
                          round_cents(drawdown * terms.merchant_fee[prod]))
            else:
                if state > 0:
                    cures[ti, state] += 1
                    paid_in += overdue + fees_due + penalty_due
                    fl[REPAID] += overdue
                    _earn(out, fl, FEES, c, p, prod, vintage, t - start, fees_due)
                    _earn(out, fl, PENALTY, c, p, prod, vintage, t - start, penalty_due)
                    balance -= overdue
                    overdue = np.int64(0)
                    fees_due = np.int64(0)
                    penalty_due = np.int64(0)
                    state = 0
                if payer == TRANSACTOR:
                    paid = statement
                elif payer == REVOLVER:
                    paid = min(max(minimum, round_cents(statement * terms.revolver_pay_share)), statement)
                else:
                    paid = minimum
                paid_in += paid + plan_due + interest_due + fee_due
                _earn(out, fl, INTEREST, c, p, prod, vintage, t - start, interest_due)
                fl[REPAID] += paid + plan_due
                _earn(out, fl, FEES, c, p, prod, vintage, t - start, fee_due)
                balance -= paid + plan_due
                plan_left -= plan_due
                # Revolving interest on what was not paid by the due date, billed on the next statement.
                interest_due = round_cents((statement - paid) * r)
                months_current += 1
                if months_current >= terms.raise_after[prod]:
                    limit = max(limit, min(line_cap, np.int64(math.floor(limit * (1.0 + terms.limit_raise[prod])))))
                    months_current = 0
            if terms.effective_interest:   # revolving interest when billed, the plan's fee at its rate, less cash
                cash_interest = interest_before if state == 0 else np.int64(0)
                earned, plan_accrued = _line_recognised(stage_before == STAGE_3, gross, ecl,
                                                        interest_due - interest_before + cash_interest, plan_due,
                                                        plan_left, fee_due, plan_eir, plan_accrued)
                accrued += _accrue(terms, out, fl, c, p, prod, vintage, t - start,
                                   earned - cash_interest - (fees_before + fee_due - fees_due))
            if state > 0:
                penalty_due += round_cents(overdue * penalty_rate)
            elif not leaving and draw_at(month_state, ATTRITION) < terms.attrition[prod]:
                leaving = True
            if leaving and balance == 0 and interest_due == 0:
                _accrue(terms, out, fl, c, p, prod, vintage, t - start, -accrued)   # derecognised: A to 0
                _close(out, fl, af, N_CLOSED, ecl, taping, i, ti, CLOSED_STATUS, owed, paid_in)
                break
        # The month's spend, billed at its end: none while delinquent (the line is frozen) or leaving;
        # a first-party fraudster spends all it can before its first due date (bust-out).
        if state == 0 and not leaving:
            room = _most_owed(limit, r) - balance
            if room > 0 and (fraud or draw_at(month_state, ACTIVE) < terms.spend_probability[prod]):
                u = draw_at(month_state, SPEND)
                # 1 - u is exact (u is a multiple of 2**-53), so log(1 - u) is as accurate as log1p(-u), and faster.
                spend = room if fraud else min(round_cents(-math.log(1.0 - u) * spend_mean), room)
                fl[DRAWN] += spend
                balance += spend
                _earn(out, fl, MERCHANT_FEE, c, p, prod, vintage, t - start, round_cents(spend * terms.merchant_fee[prod]))
        if state < DPD90:          # performing: its undrawn limit counts toward the IRB exposure
            out.line_limits[c, p, ti, prod, bnd] += limit
        _record(out, stocks, borrowers, worst, single, c, p, ti, prod, state, balance, vintage, t - start)
        node = _ecl_node(terms, ecl_lo.shape[0], z_p[ti])
        stage, good = _restage(terms, transfers[ti], ecl_lo, ecl_hi, ecl_w, node, state, 0, stage, good, t == start)
        _hold_accrued(stages[ti], stage, accrued)
        if taping:
            _tape(out, i, ti, state, balance, owed, paid_in, 0)
        before = ecl
        row = ecl_row(state, start >= 1 and state == t - start, stage)   # never paid: missed every payment so far
        slot = terms.sensitivity_slot[ti]
        ecl, overlay = _overlaid(terms, _line_ecl(terms, ecl_lo, ecl_hi, ecl_w, node, row, state, stage, prod, payer,
                                                  balance, limit, r, spend_mean, leaving, scratch, slot >= 0))
        _provide(out, af, stages[ti], terms, c, p, prod, vintage, t - start, state, stage, balance, ecl, before,
                 t == start, overlay)
        if slot >= 0:
            _forecast(out.forecast_allowance[c, p, slot, prod, stage], scratch)
        counted = _seasoning(out, c, p, prod, bnd, start, t, state, horizon, counted)


# The monthly loop allocates nothing, so it runs without Numba's reference counting (_nrt=False,
# a private option: the Numba range in pyproject.toml is the one tests/test_kernel.py checks honours
# it). With counting, the atomic increments and decrements on every array read from the namedtuples
# took half the kernel's time (benchmarks/README.md). _loan and _line are inlined for the same
# reason: a call copied the three namedtuples onto the stack once per account and path.
LOOP_OPTIONS = {"cache": True, "nogil": True, "_nrt": False}


@nb.njit(**LOOP_OPTIONS)
def simulate_piece(piece, n_pieces, c, terms, acc, borrower_start, borrower_group, group, z, roll, prepay, path0,
                   block_size, out, worst_c, scratch_c, cdf, inv):
    """One piece of the work, added into output slice c: blocks of borrowers piece, piece + n_pieces,
    ...; every path, every account of the borrowers whose `borrower_group` is `group`. Releases the
    GIL, so pieces run in parallel on Python threads (see `simulate`)."""
    n_borrowers = borrower_start.shape[0] - 1
    n_blocks = (n_borrowers + block_size - 1) // block_size
    n_paths, horizon = z.shape
    for blk in range(piece, n_blocks, n_pieces):
        lo = blk * block_size
        hi = min(n_borrowers, lo + block_size)
        for p in range(n_paths):
            path_id = path0 + p
            for b in range(lo, hi):
                if borrower_group[b] != group:
                    continue
                first, last = borrower_start[b], borrower_start[b + 1]
                single = last - first == 1
                if not single:
                    worst_c[:] = -1
                for i in range(first, last):
                    if terms.kind[acc.product[i]] == LINE:
                        _line(i, c, p, path_id, horizon, z, roll, prepay, terms, acc, out, worst_c, single, cdf, inv,
                              scratch_c)
                    else:
                        _loan(i, c, p, path_id, horizon, z, roll, prepay, terms, acc, out, worst_c, single, cdf, inv,
                              scratch_c)
                if not single:
                    bnd = acc.band[first]
                    for ti in range(horizon):
                        if worst_c[ti] >= 0:
                            out.borrowers[c, p, ti, bnd, worst_c[ti]] += 1


PIECES_PER_THREAD = 8    # pieces of work a thread, for load balance (no effect on results)


def simulate(terms, acc, borrower_start: np.ndarray, borrower_group: np.ndarray, group: int, z: np.ndarray,
             roll: np.ndarray, prepay: np.ndarray, path0: int, block_size: int, out) -> None:
    """Simulate every account of the borrowers of population group `group` (`borrower_group[b]`, see
    `terms.borrower_groups`) on paths path0 .. path0 + z.shape[0] - 1; add into the outputs.

    `terms`, `acc` and `out` are the structs of `simulator.terms` (Terms, Accounts, Outputs).

    z[path, month] is the factor plus the macro shift, roll[path, month, k] the six roll rates
    and prepay[path, month] the prepayment probability given it.
    `borrower_start[b] .. borrower_start[b + 1]` are borrower b's accounts. Outputs have a
    leading axis, one slice per thread (sum it after), in `out`:
    stocks[thread, path, month, product, band, state, (accounts, balance)],
    flows[thread, path, month, product, band, flow], rolls/cures[thread, path, month, product, band, from_state],
    borrowers[thread, path, month, band, worst state of the borrower's open accounts],
    vintage_stocks[thread, path, vintage, months on book, product, state, (unused, balance)] for M2 .. M6,
    line_limits[thread, path, month, product, band] the limits of open lines current .. M3 at the month end,
    vintage_flows[thread, path, vintage, months on book, product, VINTAGE_FLOWS] for accounts
    originated in month vintage + 1; seasoned[thread, path, product, band, (accounts, bad)] for the
    realised 12-month bad rate; stages[thread, path, month, product, band, stage, (accounts, balance,
    allowance, accrued interest, overlay)], transfers[thread, path, month, product, band, from stage, to stage]
    (accounts whose stage at the month end differs from the last month end's, counted where they are staged), accounting[thread, path, month, product, band, ACCOUNTING] (operating costs and the
    allowance's movements), opening_allowance[thread, path, product, band, stage] (the existing book's
    allowance at the start), forecast_allowance[thread, path, sensitivity month, product, stage, column]
    (the allowance under each column of the ECL table at terms.sensitivity_months, unrounded, in
    codes.FORECAST_UNIT); `tape[cell, codes.TAPE]` (the loan tape of path 0: account i's month t + 1
    is cell tape_row0[i] + t) when it has rows.
    """
    n_threads = out.stocks.shape[0]
    worst = np.empty((n_threads, z.shape[1] + 16), dtype=np.int64)   # padded: rows on separate cache lines
    scratch = np.empty((n_threads, terms.ecl.shape[-1] + 16))          # an account's ECL by forecast
    cdf, inv = cdf_tables()
    # More pieces than threads, taken by whichever thread is free, balance the load; each thread
    # adds into its own output slice. Sums are integers, so who ran which piece does not matter.
    n_pieces = 1 if n_threads == 1 else PIECES_PER_THREAD * n_threads
    free_slots = queue.SimpleQueue()
    for c in range(n_threads):
        free_slots.put(c)
    local = threading.local()

    def run_piece(piece: int) -> None:
        if not hasattr(local, "slot"):
            local.slot = free_slots.get_nowait()      # a pool has at most n_threads threads
        c = local.slot
        simulate_piece(np.int64(piece), np.int64(n_pieces), np.int64(c), terms, acc, borrower_start, borrower_group,
                       np.int64(group), z, roll, prepay, np.int64(path0), np.int64(block_size), out, worst[c], scratch[c], cdf, inv)

    if n_threads == 1:
        run_piece(0)
        return
    # Python threads (the kernel releases the GIL) rather than a Numba parallel loop: one compiled
    # kernel instead of two, and half the compile time.
    with ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(run_piece, range(n_pieces)))
