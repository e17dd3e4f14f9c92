"""Where a scenario becomes the kernel's inputs: per-product rates a month and fees in cents, the
factor paths, the account arrays, and the kernel's input structs and output shapes.

Day count (docs/products.md; the conversions are in `units`): every product's APR = daily rate x
days_per_year and its monthly rate = APR / 12; penalty interest and daily late fees convert the
same way.
"""
from __future__ import annotations

import math
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numba as nb
import numpy as np
from scipy.special import ndtri

from . import hazard, risk, tail
from .codes import (ACCOUNTING, EQUAL_INSTALLMENT, FLOWS, HUABEI, JIEBEI, N_STATES, PRODUCTS, STAGES, VINTAGE_FLOWS,
                    YUEFU)
from .products import level_payment, plan_rates
from .provisions import EclTable, spend_cap
from .units import annual_rate, monthly_rate, to_cents

if TYPE_CHECKING:
    from .config import Scenario

# Struct of arrays, one entry per account, sorted by borrower.
Accounts = namedtuple("Accounts", [
    "account_id", "borrower", "product", "band", "start_month",
    "principal",     # cents at entry (loans), drawn balance (lines; 0 for a new line)
    "overdue0",      # overdue principal at entry (cents; delinquent accounts of an existing book)
    "rate",          # monthly contract rate (loans) or revolving rate (lines)
    "eir",           # monthly effective interest rate (the rate of instalment purchases' fees; else `rate`)
    "term", "method", "payment",   # loans: instalments from entry, method code, level payment (cents)
    "fee",           # flat fee a period (cents; instalment purchases)
    "discount",      # merchant discount at origination (cents)
    "limit", "line_cap",           # lines: opening limit and the most it may be raised to (cents)
    "payer", "spend",              # lines: payment behaviour (codes.PAYER_TYPES), mean monthly spend (cents)
    "state0", "hazard_q", "fraud",
    "fraud_share",   # a backtest's replayed borrower: the chance it is a first-party fraudster, drawn on each path
    "pd_12m",        # the account's pd_12m (for pools and reports; the kernel reads hazard_q)
])
ACCOUNT_DTYPES = {
    "account_id": np.int64, "borrower": np.int64, "product": np.int8, "band": np.int8, "start_month": np.int32,
    "principal": np.int64, "overdue0": np.int64, "rate": np.float64, "eir": np.float64, "term": np.int32, "method": np.int8, "payment": np.int64,
    "fee": np.int64, "discount": np.int64, "limit": np.int64, "line_cap": np.int64, "payer": np.int8,
    "spend": np.int64, "state0": np.int8, "hazard_q": np.float64, "fraud": np.bool_,
    "fraud_share": np.float32, "pd_12m": np.float64,
}

# Scenario parameters the kernel reads (scalars and small per-product arrays).
Terms = namedtuple("Terms", [
    "seed", "sqrt_rho", "sqrt_rho_b", "inv_sqrt_idio", "funding_rate", "recovery_share",
    "recovery_lag", "penalty_rate", "late_fee", "prepayment",
    "min_payment_share", "min_payment_floor", "revolver_pay_share", "conversion_rate", "min_conversion",
    "conversion_tenors", "conversion_fee_rate", "conversion_cum_shares",
    "limit_cut", "limit_raise", "raise_after", "spend_probability", "attrition",
    "acquisition_cost", "servicing_cost", "collection_cost",   # cents by product
    "ecl", "ecl_inv_eir_step", "ecl_z0", "ecl_inv_z_step",    # provisions.EclTable
    "spend_cap",     # by payer type: the most a line's mean spend counts for in its ECL (provisions.spend_cap)
])

# Integer sums the kernel adds into (each with a leading thread axis; see `kernel.simulate`).
Outputs = namedtuple("Outputs", ["stocks", "flows", "rolls", "cures", "borrowers", "line_limits", "vintage_stocks",
                                 "vintage_flows", "seasoned", "stages", "accounting", "opening_allowance", "tape",
                                 "tape_row0"])


# --- the scenario in kernel units ----------------------------------------------------------------

def by_product_cents(table) -> np.ndarray:
    """An amount in yuan for each product (a scenario's ByProduct table) as cents by product code."""
    return np.array([to_cents(getattr(table, name)) for name in PRODUCTS], dtype=np.int64)


def kernel_terms(sc: Scenario, bill: dict[str, np.ndarray], ecl: EclTable) -> Terms:
    """The scenario's parameters as the kernel reads them (per-product arrays by product code);
    `bill` holds the bill instalments on offer after the APR cap (`policy.bill_instalment_terms`),
    `ecl` the ECL table of the run's accounts (`provisions.ecl_table`)."""
    jb, hb, yf, beh, fac = sc.products.jiebei, sc.products.huabei, sc.products.yuefu, sc.behaviour, sc.factor
    penalty = np.zeros(len(PRODUCTS))
    penalty[JIEBEI] = monthly_rate(annual_rate(jb.penalty_daily_rate, jb.days_per_year))
    penalty[HUABEI] = monthly_rate(annual_rate(hb.penalty_daily_rate, hb.days_per_year))
    penalty[YUEFU] = monthly_rate(annual_rate(yf.late_fee_daily, yf.days_per_year))
    late_fee = np.zeros(len(PRODUCTS), dtype=np.int64)
    late_fee[JIEBEI] = to_cents(jb.late_fee)
    prepayment = np.zeros(len(PRODUCTS), dtype=np.bool_)
    prepayment[JIEBEI], prepayment[YUEFU] = jb.prepayment, yf.prepayment
    tenors, fee_rate, cum_shares = bill["tenors"], bill["fee_rate"], bill["cum_shares"]
    conversion_rate = hb.conversion_rate
    if len(tenors) == 0:       # no tenor on offer: no conversion (one placeholder tenor keeps the arrays typed)
        conversion_rate = 0.0
        tenors, fee_rate, cum_shares = np.ones(1, dtype=np.int64), np.zeros(1), np.ones(1)
    sqrt_rho, inv_sqrt_idio = hazard.loadings(fac.asset_correlation, fac.borrower_correlation)
    return Terms(
        seed=np.int64(sc.run.seed), sqrt_rho=sqrt_rho, sqrt_rho_b=math.sqrt(fac.borrower_correlation),
        inv_sqrt_idio=inv_sqrt_idio,
        funding_rate=monthly_rate(sc.funding.cost_of_funds),
        recovery_share=risk.recovery_share(beh), recovery_lag=np.int64(beh.recovery_lag_months),
        penalty_rate=penalty, late_fee=late_fee, prepayment=prepayment,
        min_payment_share=hb.min_payment_share, min_payment_floor=np.int64(to_cents(hb.min_payment_floor)),
        revolver_pay_share=beh.revolver_pay_share,
        conversion_rate=conversion_rate, min_conversion=np.int64(to_cents(hb.min_conversion)),
        conversion_tenors=tenors, conversion_fee_rate=fee_rate, conversion_cum_shares=cum_shares,
        limit_cut=hb.limit_cut_on_miss, limit_raise=hb.limit_raise, raise_after=np.int64(hb.raise_after_months),
        spend_probability=hb.spend_probability, attrition=hb.attrition,
        acquisition_cost=by_product_cents(sc.costs.acquisition), servicing_cost=by_product_cents(sc.costs.servicing),
        collection_cost=by_product_cents(sc.costs.collection),
        ecl=ecl.table, ecl_inv_eir_step=ecl.inv_eir_step, ecl_z0=ecl.z0, ecl_inv_z_step=ecl.inv_z_step,
        spend_cap=spend_cap(sc))


def factor_inputs(sc: Scenario) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per path and month: the factor plus the macro shift (its innovations shifted under importance
    sampling, tail.factor_innovations), the six roll rates, the prepayment rate."""
    horizon = sc.run.horizon_months
    z = hazard.factor_paths(tail.factor_innovations(sc)[0], sc.factor.autocorrelation,
                            sc.macro.monthly_shift()[:horizon])
    roll = hazard.roll_paths(sc.behaviour.roll_rates, sc.factor.roll_correlation, z)
    prepay = np.minimum(1.0, sc.behaviour.prepay_monthly * np.exp(sc.macro.prepay_in_force() * z))
    return z, roll, prepay


def n_bands(sc: Scenario) -> int:
    """Score bands: one more than the cut points."""
    return len(sc.scorecard.bands) + 1


def output_shapes(sc: Scenario) -> dict[str, tuple[int, ...]]:
    """Shape of each kernel output after its (path,) axis: see kernel.simulate."""
    horizon, products, bands = sc.run.horizon_months, len(PRODUCTS), n_bands(sc)
    vintages = min(sc.applicants.origination_months, horizon) if sc.applicants.monthly_volume > 0 else 0
    return {
        "stocks": (horizon, products, bands, N_STATES, 2),
        "flows": (horizon, products, bands, len(FLOWS)),
        "rolls": (horizon, products, bands, N_STATES),
        "cures": (horizon, products, bands, N_STATES),
        "borrowers": (horizon, bands, N_STATES),
        "line_limits": (horizon, bands),
        "vintage_stocks": (vintages, horizon, products, N_STATES, 2),
        "vintage_flows": (vintages, horizon, products, len(VINTAGE_FLOWS)),
        "seasoned": (products, bands, 2),
        "stages": (horizon, products, bands, len(STAGES), 3),
        "accounting": (horizon, products, bands, len(ACCOUNTING)),
        "opening_allowance": (products, bands, len(STAGES)),
    }


# --- account arrays --------------------------------------------------------------------------------

@nb.njit(cache=True, nogil=True)
def level_payments(principal, rate, term, out):
    """out[i] = the level payment in cents of loan i (see products.level_payment)."""
    for i in range(principal.shape[0]):
        out[i] = level_payment(principal[i], rate[i], np.int64(term[i]))


def hazard_quantile(pd_12m: np.ndarray, roll_rates: list[float], factor=None) -> np.ndarray:
    """Phi^-1 of the baseline monthly hazard that gives each pd_12m under the roll rates and the
    factor settings (`hazard.hazard_from_pd12`): the kernel's form of the hazard."""
    with np.errstate(divide="ignore"):
        return ndtri(hazard.hazard_from_pd12(np.asarray(pd_12m, dtype=np.float64), roll_rates, factor))


def account_arrays(n: int, roll_rates: list[float], factor=None, **fields) -> Accounts:
    """The kernel's struct of arrays; fields not given are zero. `pd_12m` becomes the hazard
    quantile (solved on the host for the roll rates and `factor`, a scenario's factor section;
    None: uncorrelated) beside it; a missing `borrower` makes each account its own borrower;
    equal-instalment loans get their level payment; `eir` is derived (the rate of a plan's fee, else
    `rate`)."""
    own_borrower = "borrower" not in fields
    if "eir" in fields:
        raise TypeError("eir is derived from rate and fee, not given")
    out = {k: np.array(np.broadcast_to(fields.pop(k, 0), n), dtype=dt) for k, dt in ACCOUNT_DTYPES.items()}
    if fields:
        raise TypeError(f"unknown account fields {sorted(fields)}")
    if own_borrower:
        out["borrower"] = out["account_id"].copy()
    out["hazard_q"] = hazard_quantile(out["pd_12m"], roll_rates, factor)
    loans = out["method"] == EQUAL_INSTALLMENT
    scheduled = out["principal"] - out["overdue0"]
    level_payments(scheduled, out["rate"], np.maximum(out["term"], 1), out["payment"])
    out["payment"][~loans] = 0
    plans = (out["fee"] > 0) & (scheduled > 0)
    fee_rate = np.zeros(n)
    fee_rate[plans] = out["fee"][plans] / scheduled[plans]
    plan_rates(fee_rate, out["term"].astype(np.int64), out["eir"])
    out["eir"] = np.where(plans, out["eir"], out["rate"])
    return Accounts(**out)


def between(accounts: Accounts, a0: int, a1: int) -> Accounts:
    """Accounts a0 .. a1 - 1 (views of the columns)."""
    return Accounts(*(column[a0:a1] for column in accounts))


def concat(parts: list[Accounts], threads: int = 1) -> Accounts:
    """Accounts of several parts, one after the other (the columns copied on `threads` threads)."""
    if threads <= 1:
        return Accounts(*(np.concatenate(column) for column in zip(*parts)))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return Accounts(*pool.map(np.concatenate, zip(*parts)))


def borrower_starts(borrower: np.ndarray) -> np.ndarray:
    """Offsets of each borrower's first account (accounts sorted by borrower), and the end."""
    if len(borrower) and np.any(np.diff(borrower) < 0):
        raise ValueError("accounts must be sorted by borrower")
    firsts = np.flatnonzero(np.diff(borrower)) + 1
    return np.concatenate([[0], firsts, [len(borrower)]]).astype(np.int64) if len(borrower) else np.zeros(1, np.int64)
