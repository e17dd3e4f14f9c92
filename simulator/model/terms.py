"""Where a scenario becomes the kernel's inputs: per-product rates a month and fees in cents, the
factor paths, the account arrays (from yuan and rates a year), and the kernel's input structs and output
shapes.

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
from ..codes import (ACCOUNTING, BOOK_ID_OFFSET, EQUAL_INSTALLMENT, FLOWS, KIND, LINE, LOAN, N_STATES, PAYER_TYPES,
                     PRODUCTS, PRODUCT_KIND, STAGE_STOCK, STAGES, VINTAGE_FLOWS)
from .products import level_payment, plan_rates
from .provisions import EclTable, line_window, statement_paid
from ..units import annual_rate, monthly_rate, share_of_cents, to_cents

if TYPE_CHECKING:
    from ..config.schema import ByProductSection, Scenario

# Struct of arrays, one entry per account, sorted by borrower: cents and rates a month (made by `accounts`).
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
    "recovery_lag", "penalty_rate", "late_fee", "prepayment", "prepay_price_sensitivity", "prepay_reference_apr",
    "revolver_pay_share",
    # A line's terms, by product code (0 for other kinds); the bill instalments [product, tenor] as
    # policy.bill_instalment_terms pads them, `conversion_tenors_offered` of each row on offer.
    "min_payment_share", "min_payment_floor", "conversion_rate", "min_conversion",
    "conversion_tenors", "conversion_fee_rate", "conversion_cum_shares", "conversion_tenors_offered",
    "conversion_eir",  # [product, tenor]: the bill instalment's effective rate a month (`plan_eir`)
    "limit_cut", "limit_raise", "raise_after", "spend_probability", "attrition", "merchant_fee",
    "loan_equivalent",   # by product: the share of a line's room it draws at its first miss
    # A line's ECL exposure path (provisions.line_exposure): the share of a statement each payer type keeps
    # [product, payer type], the last k of the table's columns by stage > 0.
    "line_kept", "line_window",
    "acquisition_cost", "servicing_cost", "collection_cost",   # cents by product
    "ecl", "ecl_inv_eir_step", "ecl_z0", "ecl_inv_z_step",    # provisions.EclTable
    "sensitivity_slot",   # by month index: its row of the forecast_allowance output, -1 if none (`sensitivity_months`)
    # Staging (provisions.next_stage): a significant increase in credit risk at a lifetime PD ratio or
    # increase (0: off; the ECL table's SICR columns), months current before stage 3 to 2 and 2 to 1.
    "sicr_ratio", "sicr_increase", "cure_months", "probation_months",
    "overlay",            # the management overlay: a share of each account's modelled ECL (provisions.overlay)
    "effective_interest",   # run.income_basis is "effective_interest" (else no accrual: docs/model.md section 6)
    "kind",          # by product code: its kind (codes.KIND), an array: a global tuple would be frozen into
                     # the cached kernel, which Numba does not recompile when codes.py alone changes
])

# Integer sums the kernel adds into (each with a leading thread axis; see `kernel.simulate`).
Outputs = namedtuple("Outputs", ["stocks", "flows", "rolls", "cures", "borrowers", "line_limits", "vintage_stocks",
                                 "vintage_flows", "seasoned", "stages", "transfers", "accounting", "opening_allowance",
                                 "forecast_allowance", "tape",
                                 "tape_row0"])


# --- the scenario in kernel units ----------------------------------------------------------------

def by_product_cents(table) -> np.ndarray:
    """An amount in yuan for each product (a scenario's ByProduct table) as cents by product code."""
    return np.array([to_cents(getattr(table, name)) for name in PRODUCTS], dtype=np.int64)


def plan_eir(fee_rate: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """The effective rate a month of equal-principal plans with a flat fee a period (`fee_rate`, a share
    of the principal) over `periods` (arrays of one shape): the IRR of -1, then 1/n + f each period."""
    fee_rate, periods = np.broadcast_arrays(np.asarray(fee_rate, dtype=np.float64), np.asarray(periods, dtype=np.int64))
    out = np.empty(fee_rate.size)
    plan_rates(np.ascontiguousarray(fee_rate).ravel(), np.ascontiguousarray(periods).ravel(), out)
    return out.reshape(fee_rate.shape)


def kernel_terms(sc: Scenario, bill: dict[str, np.ndarray], ecl: EclTable) -> Terms:
    """The scenario's parameters as the kernel reads them (per-product arrays by product code);
    `bill` holds the lines' bill instalments on offer after the APR cap (`policy.bill_instalment_terms`),
    `ecl` the ECL table of the run's accounts (`provisions.ecl_table`)."""
    beh, fac = sc.behaviour, sc.factor
    sections = [getattr(sc.products, name) for name in PRODUCTS]
    penalty = np.array([monthly_rate(annual_rate(s.penalty_daily_rate, s.days_per_year)) for s in sections])
    # A kind without the term gets the neutral value: only a loan has a fixed late fee, a line no prepayment.
    late_fee = np.array([to_cents(s.late_fee) if kind == LOAN else 0 for s, kind in zip(sections, KIND)],
                        dtype=np.int64)
    prepayment = np.array([kind != LINE and s.prepayment for s, kind in zip(sections, KIND)], dtype=np.bool_)

    def line(key: str) -> np.ndarray:
        return of_kind(sc.products, key, LINE)

    # No tenor on offer: no conversion.
    conversion_rate = np.where(bill["offered"] > 0, line("conversion_rate"), 0.0)
    window = line_window(sc.provisions.line_life_months)
    kept = np.zeros((len(PRODUCTS), len(PAYER_TYPES)))
    for p in np.flatnonzero(PRODUCT_KIND == LINE):
        kept[p] = 1.0 - statement_paid(beh.revolver_pay_share, sections[p].min_payment_share)
    sqrt_rho, inv_sqrt_idio = hazard.loadings(fac.asset_correlation, fac.borrower_correlation)
    return Terms(
        seed=np.int64(sc.run.seed), sqrt_rho=sqrt_rho, sqrt_rho_b=math.sqrt(fac.borrower_correlation),
        inv_sqrt_idio=inv_sqrt_idio,
        funding_rate=monthly_rate(sc.funding.cost_of_funds),
        recovery_share=risk.recovery_share(beh), recovery_lag=np.int64(beh.recovery_lag_months),
        penalty_rate=penalty, late_fee=late_fee, prepayment=prepayment,
        prepay_price_sensitivity=beh.prepay_price_sensitivity, prepay_reference_apr=beh.prepay_reference_apr,
        revolver_pay_share=beh.revolver_pay_share,
        min_payment_share=line("min_payment_share"), min_payment_floor=to_cents(line("min_payment_floor")),
        conversion_rate=conversion_rate, min_conversion=to_cents(line("min_conversion")),
        conversion_tenors=bill["tenors"], conversion_fee_rate=bill["fee_rate"],
        conversion_cum_shares=bill["cum_shares"], conversion_tenors_offered=bill["offered"],
        conversion_eir=plan_eir(bill["fee_rate"], bill["tenors"]),
        limit_cut=line("limit_cut_on_miss"), limit_raise=line("limit_raise"),
        raise_after=line("raise_after_months").astype(np.int64),
        spend_probability=line("spend_probability"), attrition=line("attrition"), merchant_fee=line("merchant_fee"),
        loan_equivalent=line("loan_equivalent_factor"), line_kept=kept, line_window=window,
        acquisition_cost=by_product_cents(sc.costs.acquisition), servicing_cost=by_product_cents(sc.costs.servicing),
        collection_cost=by_product_cents(sc.costs.collection),
        ecl=ecl.table, ecl_inv_eir_step=ecl.inv_eir_step, ecl_z0=ecl.z0, ecl_inv_z_step=ecl.inv_z_step,
        sensitivity_slot=sensitivity_slots(sc),
        sicr_ratio=float(sc.provisions.sicr_pd_ratio), sicr_increase=float(sc.provisions.sicr_pd_increase),
        cure_months=np.int64(sc.provisions.cure_months), probation_months=np.int64(sc.provisions.probation_months),
        overlay=float(sc.provisions.overlay),
        effective_interest=sc.run.income_basis == "effective_interest", kind=PRODUCT_KIND)


# A cell's factor paths: made once per cell (`factors`) and handed to its tasks, its ECL table and its results.
FactorPaths = namedtuple("FactorPaths", [
    "z",         # [path, month]: the factor plus the macro shift
    "roll",      # [path, month, 6]: the roll rates
    "prepay",    # [path, month]: the prepayment rate
    "weight",    # [path]: the path's likelihood-ratio weight (1 without importance sampling)
])


def factors(sc: Scenario) -> FactorPaths:
    """The factor paths of a scenario (or sweep cell): the factor's innovations as drawn (shifted
    under importance sampling) and the paths' weights (`tail.factor_innovations`), the factor with
    the macro shift, the roll rates and the prepayment rate it gives."""
    drawn, weight = tail.factor_innovations(sc)
    z = hazard.factor_paths(drawn, sc.factor.autocorrelation, sc.macro.monthly_shift()[:sc.run.horizon_months])
    roll = hazard.roll_paths(sc.behaviour.roll_rates, sc.factor.roll_correlation, z)
    prepay = np.minimum(1.0, sc.behaviour.prepay_monthly * np.exp(sc.macro.prepay_in_force() * z))
    return FactorPaths(z, roll, prepay, weight)


def n_bands(sc: Scenario) -> int:
    """Score bands: one more than the cut points."""
    return len(sc.scorecard.bands) + 1


def sensitivity_months(sc: Scenario) -> np.ndarray:
    """The months whose allowance under each forecast alone the kernel keeps: every
    provisions.sensitivity_months-th month end and the horizon's last."""
    horizon, every = sc.run.horizon_months, sc.provisions.sensitivity_months
    return np.union1d(np.arange(every, horizon + 1, every), [horizon]).astype(np.int64)


def sensitivity_slots(sc: Scenario) -> np.ndarray:
    """slot[t - 1]: month t's row of the forecast_allowance output (`sensitivity_months`), -1 if none."""
    slot = np.full(sc.run.horizon_months, -1, dtype=np.int64)
    months = sensitivity_months(sc)
    slot[months - 1] = np.arange(len(months))
    return slot


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
        "line_limits": (horizon, products, bands),
        "vintage_stocks": (vintages, horizon, products, N_STATES, 2),
        "vintage_flows": (vintages, horizon, products, len(VINTAGE_FLOWS)),
        "seasoned": (products, bands, 2),
        "stages": (horizon, products, bands, len(STAGES), STAGE_STOCK),
        "transfers": (horizon, products, bands, len(STAGES), len(STAGES)),
        "accounting": (horizon, products, bands, len(ACCOUNTING)),
        "opening_allowance": (products, bands, len(STAGES)),
        "forecast_allowance": (len(sensitivity_months(sc)), products, len(STAGES), 1 + len(sc.provisions.scenarios)),
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


def of_kind(section: ByProductSection, key: str, kind: int) -> np.ndarray:
    """`key` of the entry (of a by-product section of a scenario: `products`, `applicants`) of each
    product of `kind`, by product code (0 for other kinds)."""
    return np.array([getattr(getattr(section, name), key) if k == kind else 0.0 for name, k in zip(PRODUCTS, KIND)],
                    dtype=np.float64)


# Amounts the constructor takes in yuan (kept in cents), and fields it derives (refused as given).
YUAN_FIELDS = ("principal", "overdue0", "fee", "limit", "line_cap", "spend")
DERIVED_FIELDS = ("rate", "eir", "payment", "discount", "hazard_q")


def accounts(n: int, roll_rates: list[float], factor=None, **fields) -> Accounts:
    """The kernel's struct of arrays of n accounts, from amounts in yuan and rates a year; fields not
    given are zero. The amounts of YUAN_FIELDS (`fee`: a plan's flat fee a period) become cents;
    `apr` (a loan's APR, a line's revolving rate a year) becomes the monthly `rate`; `fee_rate` (a
    plan's flat fee a period as a share of its principal, in place of `fee`) and `discount_rate` (the
    merchant discount as a share of the principal) become `fee` and `discount`, in cents of the
    principal in cents, half up. `pd_12m` becomes the hazard quantile (solved on the host for the roll
    rates and `factor`, a scenario's factor section; None: uncorrelated) beside it; a missing
    `borrower` makes each account its own borrower; equal-instalment loans get their level payment;
    `eir` is derived (the rate of a plan's fee, else `rate`)."""
    derived = sorted(set(fields) & set(DERIVED_FIELDS))
    if derived:
        raise TypeError(f"account fields {derived} are derived, not given (a rate a year is `apr`)")
    if "fee" in fields and "fee_rate" in fields:
        raise TypeError("a plan's fee is given in yuan (`fee`) or as a share (`fee_rate`), not both")
    own_borrower = "borrower" not in fields

    def column(name: str, dtype=np.float64) -> np.ndarray:
        return np.array(np.broadcast_to(fields.pop(name, 0), n), dtype=dtype)

    out = {name: to_cents(column(name)) for name in YUAN_FIELDS}
    out["rate"] = monthly_rate(column("apr"))
    if "fee_rate" in fields:
        out["fee"] = share_of_cents(out["principal"], column("fee_rate"))
    out["discount"] = share_of_cents(out["principal"], column("discount_rate"))
    out |= {k: column(k, dt) for k, dt in ACCOUNT_DTYPES.items() if k not in out}
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
    charged = np.zeros(n)      # the fee in cents over the principal scheduled: the eir's fee a period
    charged[plans] = out["fee"][plans] / scheduled[plans]
    plan_rates(charged, out["term"].astype(np.int64), out["eir"])
    out["eir"] = np.where(plans, out["eir"], out["rate"])
    return Accounts(**{k: out[k] for k in Accounts._fields})


def between(accounts: Accounts, a0: int, a1: int) -> Accounts:
    """Accounts a0 .. a1 - 1 (views of the columns)."""
    return Accounts(*(column[a0:a1] for column in accounts))


def concat(parts: list[Accounts], threads: int = 1) -> Accounts:
    """Accounts of several parts, one after the other (the columns copied on `threads` threads)."""
    if threads <= 1:
        return Accounts(*(np.concatenate(column) for column in zip(*parts)))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return Accounts(*pool.map(np.concatenate, zip(*parts)))


def population_group(ids: np.ndarray, groups: int) -> np.ndarray:
    """The population group of each borrower id: an applicant's id modulo `groups`
    (`run.population_groups`), and `groups` for an existing book's borrowers (which are given, not
    drawn). The groups are independent samples of the applicants: the spread between them is the
    applicants' sampling noise (docs/results.md, "Monte Carlo error")."""
    return np.where(ids < BOOK_ID_OFFSET, ids % groups, groups).astype(np.int64)


def borrower_groups(borrower: np.ndarray, starts: np.ndarray, groups: int) -> np.ndarray:
    """`population_group` of each borrower (accounts `starts[b] .. starts[b + 1]`)."""
    return population_group(borrower[starts[:-1]], groups)


def borrower_starts(borrower: np.ndarray) -> np.ndarray:
    """Offsets of each borrower's first account (accounts sorted by borrower), and the end."""
    if len(borrower) and np.any(np.diff(borrower) < 0):
        raise ValueError("accounts must be sorted by borrower")
    firsts = np.flatnonzero(np.diff(borrower)) + 1
    return np.concatenate([[0], firsts, [len(borrower)]]).astype(np.int64) if len(borrower) else np.zeros(1, np.int64)
