"""Expected credit loss (IFRS 9) from the model itself (docs/model.md section 10): tables of ECL per
unit of exposure by (product, method, band, effective-rate node, factor node, state, months left),
which the kernel reads at every month end for every open account.

The ECL of an account is sum_j P(charged off in month j from now) x EAD_j x DF(j) x (1 - r rho):
- P from the Markov chain of the model's monthly transitions (current -> M1 at the band's hazard,
  prepayment from current, Mk -> Mk+1 at the roll rate else cure to current, M6 -> charge-off), with
  the hazard, roll and prepayment rates given the factor, averaged over factor paths: stationary ones
  (through the cycle) or ones that start from the path's factor at the month end (point in time);
- EAD_j: the balance when the account was last current: a charge-off in month j ends 7 misses in a
  row, so that was month j - 7 (a delinquent line is frozen). A loan's schedule fixes it (months left
  L - j + 7); a line's expected balance follows its payer type's payments and its spend under its
  limit (`line_exposure`), plus the loan-equivalent factor of the room left, which it draws at its
  first miss (`line_ecl`);
- DF(j) = (1 + i)^-j at the account's monthly effective rate i; r the recovery share (net of
  collection cost), rho the value at the charge-off of its recoveries spread over the lag;
- over 12 months for stage 1 (a default, 90+, within 12 months: a charge-off within 15) and over
  the life for stages 2 and 3 (a loan's schedule; a line's provisions.line_life_months + 3).
"""
from __future__ import annotations

import math
from collections import namedtuple
from typing import TYPE_CHECKING

import numba as nb
import numpy as np
from scipy.special import ndtr, ndtri

from . import hazard, risk
from .prepayment import price_scale
from ..codes import (DPD30, DPD90, EQUAL_INSTALLMENT, EQUAL_PRINCIPAL, INTEREST_FIRST, KIND, LINE, METHODS, N_STATES,
                     PAYER_TYPES, PD_MONTHS, PRODUCTS, PRODUCT_KIND, STAGE_1, STAGE_2, STAGE_3, TRANSACTOR)

if TYPE_CHECKING:
    from ..config.schema import Behaviour, Factor, Line, Scenario

EIR_STEP = 0.0025              # monthly effective rate between table nodes (linear interpolation)
Z_STEP = 0.5                   # factor between nodes of a point-in-time table
TABLE_PATHS = 1 << 11          # factor paths each through-the-cycle chain averages over
PIT_PATHS = 1 << 8             # ... each point-in-time node
CHARGE_OFF_MISSES = N_STATES   # misses in a row from current to charge-off (M1 .. M6, then the 7th)
NEVER_PAID = N_STATES        # the table's states NEVER_PAID + s: Ms with every payment since origination missed
# ... and LIFETIME + s, LIFETIME + DPD30 + s (never paid): the lifetime ECL of a state of stage 1 (current, M1),
# for an account in stage 2 or 3 by a significant increase in credit risk or on probation (`ecl_row`)
LIFETIME = NEVER_PAID + N_STATES
ECL_ROWS = LIFETIME + 2 * DPD30
TO_CHARGE_OFF = N_STATES - DPD90   # months from default (M4) to the charge-off: M5, M6, charged off
TWELVE_MONTHS = PD_MONTHS + TO_CHARGE_OFF   # a default within 12 months: a charge-off within 15

# The kernel's ECL input: table[product, method, band, eir node, z node, state, months left, column], eir
# node k at k x EIR_STEP, z node k at z0 + k x z_step (one node through the cycle). Loans: per unit of balance.
# Lines: the method axis is the payer type and "months left" k is per unit of the exposure of a
# charge-off that ends 7 misses from month k (`line_ecl`).
EclTable = namedtuple("EclTable", ["table", "inv_eir_step", "z0", "inv_z_step"])
# Its last axis, the column: the weighted forecast, each forecast alone, then for current and M1 the weighted lifetime
# PD over its PD at origination (through the cycle, from current, for the same months left) and its
# increase: a significant increase in credit risk (provisions.sicr_pd_ratio, sicr_pd_increase).
SICR_COLUMNS = 2
SICR_RATIO, SICR_INCREASE = -2, -1
MANY = 1e9                     # the ratio when the PD at origination is 0

@nb.njit(cache=True, parallel=True)
def _charge_offs(hazard_q, owes, prepay, sqrt_rho, inv_sqrt_idio, z, roll, growth, out):
    """out[pool, node, s, j - 1]: mean over the paths z[node, path, month] of the probability that an
    account in state s now is charged off in month j, for the pool's hazard quantile hazard_q[pool]
    (the hazard applies to a current account with probability owes[pool, month] that it owes a
    payment), the roll rates roll[node, path, month, k] and the prepayment rate prepay[pool] x
    growth[node, path, month]. Neighbouring pools with the same hazard quantile share its conditional
    hazard; each (run of pools, node) on its own: the same sums whatever the threads."""
    n_pools, n_nodes = hazard_q.shape[0], z.shape[0]
    n_paths, months = z.shape[1], z.shape[2]
    first = [0]
    for pool in range(1, n_pools):
        if hazard_q[pool] != hazard_q[pool - 1]:
            first.append(pool)
    first.append(n_pools)
    n_runs = len(first) - 1
    for job in nb.prange(n_runs * n_nodes):
        run, node = job // n_nodes, job % n_nodes
        p0, p1 = first[run], first[run + 1]
        d = np.zeros((p1 - p0, N_STATES, N_STATES))
        for p in range(n_paths):
            d[:] = 0.0
            for pool in range(p1 - p0):
                for s in range(N_STATES):
                    d[pool, s, s] = 1.0
            for t in range(months):
                h0 = hazard.conditional_hazard(hazard_q[p0], z[node, p, t], sqrt_rho, inv_sqrt_idio)
                r = roll[node, p, t]
                for pool in range(p0, p1):
                    h = owes[pool, t] * h0
                    pi = min(1.0, prepay[pool] * growth[node, p, t])
                    stay = (1.0 - pi) * (1.0 - h)
                    miss = (1.0 - pi) * h
                    dp = d[pool - p0]
                    for s in range(N_STATES):
                        row = dp[s]
                        out[pool, node, s, t] += row[N_STATES - 1] * r[N_STATES - 2] / n_paths
                        current = row[0] * stay
                        for k in range(1, N_STATES):       # Mk: cured, else rolled (from M6: charged off)
                            current += row[k] * (1.0 - r[k - 1])
                        for k in range(N_STATES - 1, 1, -1):
                            row[k] = row[k - 1] * r[k - 2]
                        row[1] = row[0] * miss
                        row[0] = current


Forecasts = namedtuple("Forecasts", ["names", "weights", "shift", "prepay_sensitivity"])


def forecast_names(scenarios: dict[str, float]) -> list[str]:
    """The lender's scenarios (provisions.scenarios) in the order of the ECL table's columns and of the
    results' forecast coordinate: by name (a scenario's table is read back sorted)."""
    return sorted(scenarios)


def forecasts(sc: Scenario, months: int) -> Forecasts:
    """The lender's forward-looking scenarios (provisions.scenarios; docs/model.md section 10): names,
    weights, shift[k, j - 1] the factor shift scenario k expects j months after a reporting month, and
    its prepayment sensitivity (Macro.named_prepay). A named path is read as a forecast from its first
    month with a shift: that month's shift is expected one month on, the next two months on, ..., and 0
    after its last month (a path with no shift expects none). So a forecast does not depend on the
    reporting month, and a path's calm months before its stress (the stress test's timing) are not
    part of what it forecasts."""
    names = forecast_names(sc.provisions.scenarios)
    shift = np.zeros((len(names), months))
    for k, name in enumerate(names):
        path = np.asarray(sc.macro.named_shift(name), dtype=np.float64)
        stressed = np.flatnonzero(path != 0.0)
        ahead = path[stressed[0]:] if stressed.size else path[:0]
        shift[k, :min(months, len(ahead))] = ahead[:months]
    return Forecasts(names=names, weights=np.array([sc.provisions.scenarios[n] for n in names], dtype=np.float64),
                     shift=shift, prepay_sensitivity=np.array([sc.macro.named_prepay(n) for n in names]))


def charge_off_probabilities(hazard_q: np.ndarray, prepay: np.ndarray, factor: Factor, roll_rates: list[float],
                             prepay_sensitivity, months: int, z_now: np.ndarray | None = None,
                             owes: np.ndarray | None = None, shift: np.ndarray | None = None,
                             paths: int = TABLE_PATHS) -> np.ndarray:
    """P[pool, node, s, j - 1]: the probability that an account in state s is charged off in month j
    (1 .. months), given the pool's baseline hazard quantile Phi^-1(h), monthly prepayment rate and
    the probability owes[pool, j - 1] that a current account owes a payment in month j (default 1),
    under the factor settings `factor`, the roll rates (behaviour.roll_rates) and the prepayment
    rate's sensitivity to the factor (`prepay_sensitivity`, the macro path's: Macro.prepay_in_force):
    averaged over stationary factor paths (through the cycle: one node) or over paths from each factor
    value z_now[node] (point in time). With `shift[k, j - 1]` (point in time; `forecasts`) the nodes
    are (k, z_now[x]) at k x len(z_now) + x: the paths from z_now[x] plus forecast k's shift, with
    prepay_sensitivity[k]: one chain pass over the stacked forecasts. Through the cycle over `paths`
    stationary paths."""
    shift = np.zeros((1, months)) if shift is None else shift[:, :months]
    ps = np.broadcast_to(np.asarray(prepay_sensitivity, dtype=np.float64), (shift.shape[0],))
    moves = (factor.asset_correlation > 0 or factor.roll_correlation > 0
             or (np.any(ps != 0) and np.any(prepay > 0)))
    if z_now is None:
        z = hazard.stationary_factor(factor.autocorrelation, paths, months)[None] if moves else \
            np.zeros((1, 1, months))
        ps = ps[:1]
    elif moves:
        base = np.stack([hazard.stationary_factor(factor.autocorrelation, PIT_PATHS, months, start=x) for x in z_now])
        z = (base[None] + shift[:, None, None, :]).reshape((-1,) + base.shape[1:])
    else:
        z = np.zeros((shift.shape[0] * len(z_now), 1, months))
    rho = factor.asset_correlation
    roll = np.ascontiguousarray(hazard.conditional(np.asarray(roll_rates), factor.roll_correlation, z[..., None]))
    out = np.zeros((len(hazard_q), z.shape[0], N_STATES, months))
    owes = np.ones((len(hazard_q), months)) if owes is None else np.ascontiguousarray(owes, dtype=np.float64)
    growth = np.exp(np.repeat(ps, z.shape[0] // len(ps))[:, None, None] * z)
    _charge_offs(np.asarray(hazard_q, dtype=np.float64), owes, np.asarray(prepay, dtype=np.float64),
                 *hazard.loadings(rho), np.ascontiguousarray(z), roll, growth, out)
    return out


def schedule_shape(method: int, rate: np.ndarray, left: np.ndarray) -> np.ndarray:
    """A loan's scheduled balance with `left` instalments to go, in proportion (not normalised): equal
    instalment the annuity factor (1 - (1 + i)^-L) / i, equal principal L, interest first 1 (L >= 1)."""
    left = np.maximum(left, 0).astype(np.float64)
    if method == EQUAL_INSTALLMENT:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(rate > 0, -np.expm1(-left * np.log1p(rate)) / np.where(rate > 0, rate, 1.0), left)
    if method == EQUAL_PRINCIPAL:
        return left + 0.0 * rate
    if method == INTEREST_FIRST:
        return (left >= 1).astype(np.float64) + 0.0 * rate
    raise ValueError(f"unknown method code {method}")


def loss_given_charge_off(behaviour: Behaviour, rate: np.ndarray) -> np.ndarray:
    """1 - r rho: the share of a charged-off balance lost, valued at the charge-off at monthly rate
    `rate` (recoveries r in equal parts over the lag's months after it)."""
    lag = behaviour.recovery_lag_months
    rho = np.mean([(1.0 + rate) ** -m for m in range(1, lag + 1)], axis=0)
    return 1.0 - risk.recovery_share(behaviour) * rho


def loan_ecl(p_co: np.ndarray, method: int, rate: np.ndarray, lgd: np.ndarray, max_left: int,
             lifetime: bool = False) -> np.ndarray:
    """ECL per unit of balance of loans, [..., rate, state, months left 0 .. max_left], from
    P[..., rate, state, month] (`charge_off_probabilities` at each rate's prepayment, `prepay_rates`)
    at monthly effective rates `rate`, with `lgd` the
    share lost at each rate (`loss_given_charge_off`): 12-month ECL in stage 1 (lifetime ECL in every
    state with `lifetime`)."""
    months = p_co.shape[-1]
    j = np.arange(1, months + 1)
    s = np.arange(N_STATES)[:, None, None]
    left = np.arange(max_left + 1)[None, :, None]
    i = rate[:, None, None, None]
    # EAD_j / balance now: 1 for the charge-off that ends the present run of misses (j = 7 - s); after
    # a cure (j >= 8) the schedule's balance with L - j + 7 months to go, over the present one's L + s.
    now = schedule_shape(method, i, left + s)
    later = schedule_shape(method, i, left - j + CHARGE_OFF_MISSES)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(j == CHARGE_OFF_MISSES - s, 1.0,
                         np.where(j > CHARGE_OFF_MISSES, np.nan_to_num(later / np.where(now > 0, now, 1.0)), 0.0))
    weight = ratio * (1.0 + i) ** -j.astype(np.float64) * (1.0 if lifetime else _within(s, j))
    return lgd[:, None, None] * np.einsum("...rsj,rslj->...rsl", p_co, weight)


def statement_paid(revolver_pay_share: float, min_payment_share: float) -> np.ndarray:
    """The share of a statement each payer type (codes.PAYER_TYPES) pays: all, the revolver's share
    but never less than the minimum (as the kernel pays it), the minimum (behaviour.revolver_pay_share,
    the line's min_payment_share)."""
    return np.array([1.0, max(revolver_pay_share, min_payment_share), min_payment_share])


def line_owes(line: Line, months: int) -> np.ndarray:
    """owes[payer type, j - 1]: the probability that a current line (its terms `line`) owes a payment
    in month j: a transactor owes only the last month's spend (it spent with spend_probability and has
    not left); revolvers and minimum payers carry a balance. Month 1: the balance now falls due."""
    owes = np.ones((3, months))
    owes[TRANSACTOR, 1:] = line.spend_probability * (1.0 - line.attrition) ** np.arange(1, months)
    return owes


def line_ecl(p_co: np.ndarray, rate: np.ndarray, lgd: np.ndarray, life_months: int, lifetime: bool = False) -> np.ndarray:
    """ECL of lines [..., rate, state, k] per unit of the exposure EAD_k of a charge-off that ends 7
    misses from month k (k = 0: from now), from P[..., state, month] (the payer type's chain, with
    `line_owes`), with `lgd` the share lost at each rate (`loss_given_charge_off`): a charge-off in
    month j counts at k = max(0, j - 7) (a delinquent line is frozen), discounted j months. The kernel
    sums the columns times its exposures (`line_exposure`). Lifetime is `life_months`,
    provisions.line_life_months (+ 3 to the charge-off); in every state with `lifetime`."""
    months = p_co.shape[-1]
    j = np.arange(1, months + 1)
    s = np.arange(N_STATES)[:, None]
    i = rate[:, None, None]
    life = np.where(j <= life_months + TO_CHARGE_OFF, 1.0, 0.0)
    weight = (1.0 + i) ** -j.astype(np.float64) * (1.0 if lifetime else _within(s, j)) * life
    k = np.maximum(j - CHARGE_OFF_MISSES, 0)
    onto = (k[:, None] == np.arange(k.max() + 1)[None, :]).astype(np.float64)
    return lgd[:, None, None] * np.einsum("...sj,rsj,jk->...rsk", p_co, weight, onto)


def line_window(life_months: int) -> np.ndarray:
    """The last k of `line_ecl`'s columns that counts, for stage 1 (a charge-off within TWELVE_MONTHS)
    and for stages 2 and 3 (within the line's life + 3)."""
    return np.array([TWELVE_MONTHS - CHARGE_OFF_MISSES,
                     max(life_months + TO_CHARGE_OFF, TWELVE_MONTHS) - CHARGE_OFF_MISSES], dtype=np.int64)


@nb.njit(inline="always", cache=True)
def line_exposure(staying, total, kept, active, stay, spend_mean, room, transactor):
    """(C_k, E_k), a current line's expected balance k months on if it has not left by then, and
    whether or not, from (C_(k-1), E_(k-1)) (docs/model.md section 10): a revolver or minimum payer
    keeps the share `kept` of its statement and then, if it has not left (probability `stay`,
    1 - attrition a month) and is active (probability `active`, spend_probability), spends
    min(X, room - kept x C_(k-1)), X exponential with mean `spend_mean` (as the kernel draws it),
    `room` the most its limit allows; a transactor, which owes only when it spent (`line_owes`),
    owes that month's spend min(X, room)."""
    if transactor:
        spend = spend_mean * -math.expm1(-room / spend_mean) if spend_mean > 0.0 else 0.0
        return spend, spend
    carried = kept * staying
    spend = spend_mean * -math.expm1(-max(room - carried, 0.0) / spend_mean) if spend_mean > 0.0 else 0.0
    return carried + active * spend, kept * total + active * stay * spend


@nb.njit(inline="always", cache=True)
def stage_of(state):
    """The delinquency stage (codes.STAGES) of `state`: 0 current and M1, 1 M2 and M3 (30+ days past
    due, the backstop of a significant increase in credit risk), 2 M4 .. M6 (90+, credit-impaired).
    An account's stage is `next_stage`'s, which starts from this; the ECL window of a state follows it."""
    return 0 if state < DPD30 else (1 if state < DPD90 else 2)


@nb.njit(inline="always", cache=True)
def next_stage(stage, good, state, sicr, cure_months, probation_months):
    """An open account's stage and its months current at a month end (docs/model.md section 10), from
    its stage and months current at the last (`stage`, `good`), its state and whether its lifetime PD
    rose significantly (`sicr`): 90+ is stage 3; a stage 3 account moves to stage 2 at its
    `cure_months`-th month end in a row current (with no significant increase), then to stage 1
    after `probation_months` more; 30+ or a significant increase is stage 2 (months current back to
    0); a stage 2 account moves to stage 1 at its `probation_months`-th month end in a row current.
    With no significant increase and 0 months this is `stage_of(state)`."""
    if state >= DPD90:
        return STAGE_3, 0
    good = good + 1 if state == 0 and not sicr else 0
    if stage == STAGE_3:
        if good < cure_months:
            return STAGE_3, good
        stage, good = STAGE_2, good - cure_months
    if state >= DPD30 or sicr:
        return STAGE_2, 0
    if stage == STAGE_2 and good < probation_months:
        return STAGE_2, good
    return STAGE_1, good


@nb.njit(inline="always", cache=True)
def ecl_row(state, never_paid, stage):
    """The table's state row of an account in `state` and `stage` (`never_paid`: it missed every
    payment since origination): lifetime rows for a state of stage 1 held in stage 2 or 3."""
    if state < DPD30 and stage > STAGE_1:
        return LIFETIME + state + (DPD30 if never_paid else 0)
    return state + (NEVER_PAID if never_paid else 0)


def stage_table() -> np.ndarray:
    """The stage of every state (codes.STATES), by `stage_of`."""
    return np.array([stage_of(state) for state in range(N_STATES)])


def _within(s: np.ndarray, j: np.ndarray) -> np.ndarray:
    """1 where a charge-off in month j counts toward the ECL of state s: within TWELVE_MONTHS for
    stage 1 (12-month ECL), always for stages 2 and 3 (lifetime)."""
    return np.where((stage_table()[s] > 0) | (j <= TWELVE_MONTHS), 1.0, 0.0)


def first_due(accounts) -> np.ndarray:
    """What each account owes when its first payment falls due, in cents, as far as its terms say: a
    loan's principal; a line's first month's mean spend, or for a first-party fraudster (who spends
    all it can before its first due date) the room under its limit."""
    room = np.floor(accounts.limit / (1.0 + accounts.rate))
    line = np.where(accounts.fraud, room, np.minimum(accounts.spend, room))
    return np.where(PRODUCT_KIND[accounts.product] == LINE, line, accounts.principal).astype(np.float64)


def pool_hazards(accounts, n_bands: int, roll_rates: list[float], factor: Factor) -> tuple[np.ndarray, np.ndarray]:
    """By (product, band) pool: Phi^-1 of the baseline monthly hazard of its accounts that are not
    first-party fraud, from their exposure-weighted PD at origination, as the kernel's hazards are
    solved (under the roll rates and the factor settings `factor`); and the share of what its new
    accounts owe at their first due date (`first_due`) that first-party fraudsters owe
    (risk.pool_pd_and_fraud)."""
    pd, fraud = risk.pool_pd_and_fraud(accounts, n_bands, first_due(accounts))
    with np.errstate(divide="ignore"):
        return ndtri(hazard.hazard_from_pd12(pd, roll_rates, factor)), fraud


def fraud_posterior(hazard_q: np.ndarray, fraud: np.ndarray, roll_rates) -> np.ndarray:
    """w[..., s]: of the balance of new accounts in state s that have missed every payment since their
    origination (Ms at s months on book; current in their origination month), the share that
    first-party fraudsters owe, who never pay: fraud / (fraud + (1 - fraud) P), with `fraud` the
    fraudsters' share at the first due date (`pool_hazards`) and P = h r_1 .. r_(s-1) the chance that
    another account missed its first s payments (baseline hazard h and roll rates)."""
    honest = np.ones(np.shape(fraud) + (N_STATES,))
    rolls = np.concatenate([[1.0], np.cumprod(roll_rates[:N_STATES - 2])])
    honest[..., 1:] = (ndtr(hazard_q)[..., None] * rolls)
    fraud = np.asarray(fraud)[..., None]
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(fraud / (fraud + (1.0 - fraud) * honest))


def prepay_rates(rates: np.ndarray, behaviour, prepays: bool) -> np.ndarray:
    """The monthly prepayment rate of a current loan at each monthly effective rate of `rates`, as the
    kernel draws it (prepayment.price_scale); 0 for a product that does not prepay."""
    if not prepays:
        return np.zeros(len(rates))
    return behaviour.prepay_monthly * np.array([price_scale(r, behaviour.prepay_price_sensitivity,
                                                            behaviour.prepay_reference_apr) for r in rates])


def factor_nodes(z: np.ndarray) -> np.ndarray:
    """Point-in-time nodes: every Z_STEP from below the least to above the greatest factor value."""
    lo = math.floor(float(z.min()) / Z_STEP) * Z_STEP if z.size else 0.0
    hi = math.ceil(float(z.max()) / Z_STEP) * Z_STEP if z.size else 0.0
    return np.arange(lo, hi + Z_STEP / 2, Z_STEP)


def ecl_table(sc: Scenario, accounts, bands: int, z: np.ndarray) -> EclTable:
    """The kernel's ECL table for a run's accounts (a terms.Accounts) in `bands` score bands and its
    factor paths z[path, month] (the nodes of a point-in-time table cover them). The module's
    orchestrator: it reads the provisions, products, behaviour, factor and macro sections."""
    loans = PRODUCT_KIND[accounts.product] != LINE      # loans and purchase plans: a schedule
    max_left = int(accounts.term[loans].max()) if loans.any() else 0
    top = float(accounts.eir.max()) if len(accounts.eir) else 0.0
    rates = EIR_STEP * np.arange(max(2, math.ceil(top / EIR_STEP) + 2))
    pro = sc.provisions
    pit = pro.basis == "point_in_time"
    sicr = pro.sicr_pd_ratio > 0 or pro.sicr_pd_increase > 0
    nodes = factor_nodes(z) if pit else np.zeros(1)
    beh, factor = sc.behaviour, sc.factor
    chain = max(max_left + CHARGE_OFF_MISSES, TWELVE_MONTHS, pro.line_life_months + TO_CHARGE_OFF)
    ahead = forecasts(sc, chain)
    kw = {"z_now": nodes, "shift": ahead.shift} if pit else {}
    prepay_sensitivity = ahead.prepay_sensitivity if pit else sc.macro.prepay_in_force()
    n_nodes = len(nodes) * (len(ahead.names) if pit else 1)
    lgd = loss_given_charge_off(sc.behaviour, rates)
    q, fraud = pool_hazards(accounts, bands, beh.roll_rates, factor)
    lines = [product for product in range(len(PRODUCTS)) if KIND[product] == LINE]
    line_last = int(line_window(pro.line_life_months)[1]) if lines else 0
    shape = (len(PRODUCTS), max(len(METHODS), len(PAYER_TYPES)), bands, len(rates))
    left = max(line_last, max_left) + 1
    table = np.zeros(shape + (n_nodes, ECL_ROWS, left))
    pd_now = np.zeros(shape + (n_nodes, DPD30, left))     # lifetime PD of current and M1 (SICR)
    pd_then = np.zeros(shape + (1, 1, left))              # ... of current through the cycle: at origination
    scheduled = [product for product in range(len(PRODUCTS)) if KIND[product] != LINE]
    stage_1 = slice(LIFETIME, LIFETIME + DPD30)
    # Loans and purchases: a chain as long as the longest schedule's last charge-off.
    months = max(max_left + CHARGE_OFF_MISSES, TWELVE_MONTHS)
    within = np.minimum(np.arange(max_left + 1) + CHARGE_OFF_MISSES, months) - 1   # a PD's last month, by months left
    for product in scheduled:
        prepay = prepay_rates(rates, beh, getattr(sc.products, PRODUCTS[product]).prepayment)
        pools = (np.repeat(q[product], len(rates)), np.tile(prepay, bands), factor, beh.roll_rates)
        p_co = charge_off_probabilities(*pools, prepay_sensitivity, months, **kw)
        p_co = np.moveaxis(p_co.reshape((bands, len(rates)) + p_co.shape[1:]), 1, 2)   # band, node, rate, ...
        for method in range(len(METHODS)):
            table[product, method, ..., :N_STATES, :max_left + 1] = np.moveaxis(
                loan_ecl(p_co, method, rates, lgd, max_left), 1, 2)
            table[product, method, ..., stage_1, :max_left + 1] = np.moveaxis(
                loan_ecl(p_co, method, rates, lgd, max_left, lifetime=True), 1, 2)[..., :DPD30, :]
        if sicr:
            pd_now[product, :, ..., :max_left + 1] = np.moveaxis(np.cumsum(p_co[..., :DPD30, :], axis=-1)[..., within],
                                                                 1, 2)[None]
            ttc = p_co if not pit else np.moveaxis(charge_off_probabilities(
                *pools, sc.macro.prepay_in_force(), months, paths=PIT_PATHS).reshape((bands, len(rates), 1, N_STATES,
                                                                                       months)), 1, 2)
            pd_then[product, :, ..., 0, 0, :max_left + 1] = np.moveaxis(np.cumsum(ttc[..., 0, :], axis=-1)[..., within],
                                                                        1, 2)[None, ..., 0, :]
    # Lines: one chain per band and payer type, over the behavioural life, under each line's terms.
    months = max(pro.line_life_months + TO_CHARGE_OFF, TWELVE_MONTHS)
    for product in lines:
        line = getattr(sc.products, PRODUCTS[product])
        owes = np.tile(line_owes(line, months), (bands, 1))
        pools = (np.repeat(q[product], len(PAYER_TYPES)), np.zeros(bands * len(PAYER_TYPES)), factor, beh.roll_rates)
        p_co = charge_off_probabilities(*pools, prepay_sensitivity, months, owes=owes, **kw)
        p_co = p_co.reshape(bands, len(PAYER_TYPES), n_nodes, N_STATES, months)
        life = min(pro.line_life_months + TO_CHARGE_OFF, months)
        if sicr:
            ttc = p_co if not pit else charge_off_probabilities(*pools, sc.macro.prepay_in_force(), months, owes=owes,
                                                                paths=PIT_PATHS).reshape(bands, len(PAYER_TYPES), 1,
                                                                                         N_STATES, months)
        for payer in range(len(PAYER_TYPES)):       # a line's method axis holds its payer type
            table[product, payer, ..., :N_STATES, :line_last + 1] = np.moveaxis(
                line_ecl(p_co[:, payer], rates, lgd, pro.line_life_months), 1, 2)
            table[product, payer, ..., stage_1, :line_last + 1] = np.moveaxis(
                line_ecl(p_co[:, payer], rates, lgd, pro.line_life_months, lifetime=True), 1, 2)[..., :DPD30, :]
            if sicr:     # the same for every rate and every k
                pd_now[product, payer] = p_co[:, payer, :, :DPD30, :life].sum(axis=-1)[:, None, :, :, None]
                pd_then[product, payer] = ttc[:, payer, 0, 0, :life].sum(axis=-1)[:, None, None, None, None]
    # A new account that has missed every payment since origination may be a first-party fraudster, who
    # is charged off 7 - s months on with its balance as it stands (it never pays): a mixture.
    s = np.arange(N_STATES)
    lost = lgd[:, None] * (1.0 + rates[:, None]) ** -(CHARGE_OFF_MISSES - s)
    w = fraud_posterior(q, fraud, np.asarray(beh.roll_rates))[:, None, :, None, None, :]
    for honest, mixed, states in ((slice(0, N_STATES), slice(NEVER_PAID, NEVER_PAID + N_STATES), s),
                                  (stage_1, slice(LIFETIME + DPD30, ECL_ROWS), s[:DPD30])):
        table[..., mixed, :] = (1.0 - w[..., states, None]) * table[..., honest, :]
        table[..., mixed, 0] += w[..., states] * lost[:, None, states]   # per unit of balance (a line's: of EAD_0)
        for product in scheduled:
            table[product, ..., mixed, 1:] += (w[product][..., states] * lost[:, None, states])[..., None]
    out = forecast_columns(table, len(nodes), ahead.weights if pit else None, len(ahead.names))
    if sicr:
        now = weighted(pd_now, len(nodes), ahead.weights) if pit else pd_now
        with np.errstate(divide="ignore", invalid="ignore"):
            out[..., :DPD30, :, SICR_RATIO] = np.where(pd_then > 0, now / pd_then, np.where(now > 0, MANY, 0.0))
        out[..., :DPD30, :, SICR_INCREASE] = now - pd_then
    return EclTable(table=out, inv_eir_step=1.0 / EIR_STEP, z0=float(nodes[0]), inv_z_step=1.0 / Z_STEP)


def forecast_columns(table: np.ndarray, n_z: int, weights: np.ndarray | None, n_forecasts: int) -> np.ndarray:
    """The kernel's table [product, method, band, rate, z node, state, months left, column] from one
    [..., node, state, months left] whose node axis is (forecast k, z node) (`charge_off_probabilities`):
    column 0 the weighted sum over the forecasts, column 1 + k forecast k alone, and the last two the
    significant-increase columns (`SICR_RATIO`, `SICR_INCREASE`, 0 here). Through the cycle (`weights`
    None: one node, no forecast) every forecast's column is the one table. The columns are last: an
    account's are on one cache line (benchmarks/provisions_cost.py)."""
    out = np.zeros(table.shape[:4] + (n_z,) + table.shape[5:] + (1 + n_forecasts + SICR_COLUMNS,))
    if weights is None:
        out[..., :1 + n_forecasts] = table[..., None]
        return out
    out[..., 0] = weighted(table, n_z, weights)
    for k in range(n_forecasts):
        out[..., 1 + k] = _by_forecast(table, n_z, len(weights))[:, :, :, :, k]
    return out


def _by_forecast(table: np.ndarray, n_z: int, n_forecasts: int) -> np.ndarray:
    """A table [..., node, ...] with its node axis (the fifth) split into (forecast, z node)."""
    return table.reshape(table.shape[:4] + (n_forecasts, n_z) + table.shape[5:])


def weighted(table: np.ndarray, n_z: int, weights: np.ndarray) -> np.ndarray:
    """The weighted sum over the forecasts of a table whose node axis is (forecast, z node)."""
    return np.tensordot(_by_forecast(table, n_z, len(weights)), weights, axes=([4], [0]))
