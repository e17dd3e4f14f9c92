"""Origination: applicants -> scores -> decisions -> the kernel's account arrays, sorted by borrower,
with the host-side counts (applications, approvals, take-ups, the opening book)."""
from __future__ import annotations

from pathlib import Path

import numba as nb
import numpy as np
from scipy.special import ndtri

from . import hazard, kernel, policy, population, rng, scoring
from .config import PRODUCTS, STATES, Scenario
from .policy import HUABEI, JIEBEI, YUEFU
from .products import EQUAL_INSTALLMENT, EQUAL_PRINCIPAL, level_payment

APPLICANTS_AT_ONCE = 1_000_000  # applicants prepared together (no effect on results)
BOOK_ID_OFFSET = 1 << 40          # borrower and account ids of an existing book, apart from applicants'


@nb.njit(cache=True)
def level_payments(principal, rate, term, out):
    """out[i] = the level payment in cents of loan i (see products.level_payment)."""
    for i in range(principal.shape[0]):
        out[i] = level_payment(principal[i], rate[i], np.int64(term[i]))


def to_cents(amount: np.ndarray) -> np.ndarray:
    """Yuan to integer cents, half up."""
    return np.floor(np.asarray(amount, dtype=np.float64) * 100.0 + 0.5).astype(np.int64)


def _hazard_q(pd_12m: np.ndarray, roll_rates: list[float]) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return ndtri(hazard.hazard_from_pd12(np.asarray(pd_12m, dtype=np.float64), np.asarray(roll_rates)))


def product_pd(pd_12m: np.ndarray, multiplier: float) -> np.ndarray:
    """A product's pd_12m: the borrower's odds times the product's risk multiplier."""
    odds = pd_12m / (1.0 - pd_12m) * multiplier
    return np.where(pd_12m >= 1.0, 1.0, odds / (1.0 + odds))


def account_arrays(n: int, roll_rates: list[float], **fields) -> kernel.Accounts:
    """The kernel's struct of arrays; fields not given are zero. `pd_12m` becomes the hazard
    quantile (solved on the host) beside it; a missing `borrower` makes each account its own borrower."""
    dtypes = {"account_id": np.int64, "borrower": np.int64, "product": np.int8, "band": np.int8,
              "start_month": np.int32, "principal": np.int64, "rate": np.float64, "term": np.int32,
              "method": np.int8, "payment": np.int64, "fee": np.int64, "discount": np.int64, "limit": np.int64,
              "line_cap": np.int64, "payer": np.int8, "spend": np.int64, "state0": np.int8,
              "hazard_q": np.float64, "fraud": np.bool_, "pd_12m": np.float64}
    own_borrower = "borrower" not in fields
    out = {k: np.array(np.broadcast_to(fields.pop(k, 0), n), dtype=dt) for k, dt in dtypes.items()}
    if fields:
        raise TypeError(f"unknown account fields {sorted(fields)}")
    if own_borrower:
        out["borrower"] = out["account_id"].copy()
    out["hazard_q"] = _hazard_q(out["pd_12m"], roll_rates)
    loans = out["method"] == EQUAL_INSTALLMENT
    level_payments(out["principal"], out["rate"], np.maximum(out["term"], 1), out["payment"])
    out["payment"][~loans] = 0
    return kernel.Accounts(**out)


def concat(parts: list[kernel.Accounts]) -> kernel.Accounts:
    return kernel.Accounts(*(np.concatenate(column) for column in zip(*parts)))


def new_accounts(sc: Scenario, apps: dict[str, np.ndarray], scores: dict[str, np.ndarray], band: np.ndarray,
                 dec: dict[str, np.ndarray]) -> kernel.Accounts:
    """One account for each product an applicant took, ordered by borrower."""
    who, prod = np.nonzero(dec["takeup"])
    jb, hb, yf = sc.products.jiebei, sc.products.huabei, sc.products.yuefu
    is_loan, is_line, is_buy = prod == JIEBEI, prod == HUABEI, prod == YUEFU
    amount = to_cents(dec["amount"][who, prod])
    rate = dec["rate"][who, prod]
    multiplier = np.select([is_line, is_loan], [hb.risk_multiplier, jb.risk_multiplier], yf.risk_multiplier)
    pd_12m = product_pd(scores["true_pd_12m"][who], multiplier)
    ids = apps["id"][who]
    return account_arrays(
        len(who), sc.behaviour.roll_rates,
        account_id=ids * len(PRODUCTS) + prod, borrower=ids, product=prod, band=band[who],
        start_month=apps["month"][who],
        principal=np.where(is_line, 0, amount),
        rate=np.where(is_buy, 0.0, rate),
        term=np.select([is_loan, is_buy], [apps["term"][who], apps["tenor"][who]], 0),
        method=np.select([is_loan, is_buy], [apps["method"][who], EQUAL_PRINCIPAL], 0),
        fee=np.where(is_buy, np.floor(amount * rate + 0.5), 0),
        discount=np.where(is_buy, np.floor(amount * yf.merchant_discount + 0.5), 0),
        limit=np.where(is_line, amount, 0),
        line_cap=np.where(is_line, to_cents(dec["line_cap"][who]), 0),
        payer=np.where(is_line, policy.payer_type(pd_12m, rng.uniforms(sc.run.seed, 0, ids, 0, rng.PAYER_TYPE), sc), 0),
        spend=np.where(is_line, to_cents(apps["spend"][who]), 0),
        pd_12m=pd_12m, fraud=dec["fraud"][who])


def prepare(sc: Scenario, book_path: Path | None = None) -> tuple[kernel.Accounts, dict[str, np.ndarray]]:
    """Accounts for the kernel (sorted by borrower), and host-side counts: `applicants`
    [month, band], the application `funnel` [month, product, band, (applications, approvals,
    takeups)] and the `opening` book [product, band, state, (accounts, balance cents)]."""
    n_bands = len(sc.scorecard.bands) + 1
    applicants = np.zeros((sc.run.horizon_months, n_bands), dtype=np.int64)
    funnel = np.zeros((sc.run.horizon_months, len(PRODUCTS), n_bands, 3), dtype=np.int64)
    opening = np.zeros((len(PRODUCTS), n_bands, len(STATES), 2), dtype=np.int64)
    apr_sum = np.zeros((len(PRODUCTS), n_bands))
    parts = []
    window = population.origination_window(sc) if sc.applicants.monthly_volume > 0 else 0
    # A few months of applicants at a time: memory follows accounts, not applicants.
    step = max(1, APPLICANTS_AT_ONCE // max(1, sc.applicants.monthly_volume))
    for first in range(1, window + 1, step):
        apps = population.applicants(sc, first, min(window, first + step - 1))
        scores = scoring.score_applicants(apps, sc.scorecard, sc.applicants, sc.run.seed)
        band = scoring.score_band(scores["score"], sc.scorecard.bands)
        dec = policy.decide(apps, scores, sc)
        np.add.at(applicants, (apps["month"] - 1, band), 1)
        for j, mask in enumerate((apps["requests"], dec["approved"], dec["takeup"])):
            who, prod = np.nonzero(mask)
            np.add.at(funnel[..., j], (apps["month"][who] - 1, prod, band[who]), 1)
        np.add.at(apr_sum, (prod, band[who]), dec["apr"][who, prod])  # the accounts taken (last mask)
        parts.append(new_accounts(sc, apps, scores, band, dec))
        del apps, scores, band, dec
    if book_path is not None:
        book = population.read_book(book_path, sc)
        n = len(book["product"])
        band = scoring.score_band(scoring.score_from_pd(book["pd_12m"], sc.scorecard), sc.scorecard.bands)
        cents = to_cents(book["principal"])
        np.add.at(opening[..., 0], (book["product"], band, book["state"]), 1)
        np.add.at(opening[..., 1], (book["product"], band, book["state"]), cents)
        ids = BOOK_ID_OFFSET + np.arange(n)
        parts.append(account_arrays(
            n, sc.behaviour.roll_rates, account_id=ids, borrower=ids, product=book["product"], band=band,
            principal=cents, rate=book["apr"] / 12.0, term=book["term"], method=book["method"],
            state0=book["state"], pd_12m=book["pd_12m"]))
    if not parts:
        parts.append(account_arrays(0, sc.behaviour.roll_rates))
    taken = funnel[..., 2].sum(axis=0)
    mean_apr = np.where(taken > 0, apr_sum / np.maximum(taken, 1), np.nan)
    return concat(parts), {"applicants": applicants, "funnel": funnel, "opening": opening, "mean_apr": mean_apr}


def borrower_starts(borrower: np.ndarray) -> np.ndarray:
    """Offsets of each borrower's first account (accounts sorted by borrower), and the end."""
    if len(borrower) and np.any(np.diff(borrower) < 0):
        raise ValueError("accounts must be sorted by borrower")
    firsts = np.flatnonzero(np.diff(borrower)) + 1
    return np.concatenate([[0], firsts, [len(borrower)]]).astype(np.int64) if len(borrower) else np.zeros(1, np.int64)


def pool_pd(accounts: kernel.Accounts, n_bands: int) -> np.ndarray:
    """Exposure-weighted pd_12m of each (product, band) pool at origination (weights: principal of
    loans, the cap of lines); the retail IRB approach assigns exposures to such pools."""
    weight = np.where(accounts.product == HUABEI, accounts.line_cap, accounts.principal).astype(np.float64)
    cell = accounts.product.astype(np.int64) * n_bands + accounts.band
    size = len(PRODUCTS) * n_bands
    total = np.bincount(cell, weights=weight, minlength=size)
    weighted = np.bincount(cell, weights=weight * accounts.pd_12m, minlength=size)
    return (weighted / np.where(total > 0, total, 1.0)).reshape(len(PRODUCTS), n_bands)
