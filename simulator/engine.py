"""Orchestration: applicants -> scores -> decisions -> account arrays -> kernel -> Dataset."""
from __future__ import annotations

import math
import sys
from importlib.metadata import PackageNotFoundError, version as package_version

import numba as nb
import numpy as np
import xarray as xr
from scipy.special import ndtri
from tqdm import tqdm

from . import hazard, kernel, policy, population, scoring
from .config import PRODUCTS, STATES, LoadedScenario, Scenario
from .products import level_payment

BOOK_ID_OFFSET = 1 << 40          # account ids of an existing book, apart from applicant ids
JIEBEI = PRODUCTS.index("jiebei")
CHUNK_BYTES = 256 * 2**20         # output memory of one kernel call, all chunks together


def simulator_version() -> str:
    try:
        return package_version("credit-simulator")
    except PackageNotFoundError:
        return "unknown"


@nb.njit(cache=True)
def _level_payments(principal, rate, term, out):
    for i in range(principal.shape[0]):
        out[i] = level_payment(principal[i], rate[i], np.int64(term[i]))


def to_cents(amount: np.ndarray) -> np.ndarray:
    """Yuan to integer cents, half up."""
    return np.floor(np.asarray(amount, dtype=np.float64) * 100.0 + 0.5).astype(np.int64)


def account_arrays(account_id, product, band, start_month, principal_cents, apr, term, method, state0, pd_12m,
                   fraud, roll_rates) -> dict[str, np.ndarray]:
    """Struct of arrays the kernel reads; the hazard is solved from pd_12m here, on the host."""
    rate = np.asarray(apr, dtype=np.float64) / 12.0
    term = np.asarray(term, dtype=np.int32)
    payment = np.empty(len(account_id), dtype=np.int64)
    _level_payments(principal_cents, rate, term, payment)
    with np.errstate(divide="ignore"):
        hazard_q = ndtri(hazard.hazard_from_pd12(pd_12m, np.asarray(roll_rates)))
    return {
        "account_id": np.asarray(account_id, dtype=np.int64),
        "product": np.asarray(product, dtype=np.int8),
        "band": np.asarray(band, dtype=np.int8),
        "start_month": np.asarray(start_month, dtype=np.int32),
        "principal": np.asarray(principal_cents, dtype=np.int64),
        "rate": rate,
        "term": term,
        "method": np.asarray(method, dtype=np.int8),
        "payment": payment,
        "state0": np.asarray(state0, dtype=np.int8),
        "hazard_q": hazard_q,
        "fraud": np.asarray(fraud, dtype=np.bool_),
    }


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def prepare(loaded: LoadedScenario) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Accounts for the kernel, the application funnel [month, product, band, (applications,
    approvals, takeups)] and the opening book [product, band, state, (accounts, balance cents)]."""
    sc = loaded.scenario
    n_bands = len(sc.scorecard.bands) + 1
    funnel = np.zeros((sc.run.horizon_months, len(PRODUCTS), n_bands, 3), dtype=np.int64)
    opening = np.zeros((len(PRODUCTS), n_bands, len(STATES), 2), dtype=np.int64)
    parts = []
    apps = population.applicants(sc)
    if len(apps["id"]):
        scores = scoring.score_applicants(apps, sc.scorecard, sc.applicants, sc.run.seed)
        band = scoring.score_band(scores["score"], sc.scorecard.bands)
        dec = policy.decide(apps, scores, sc)
        where = (apps["month"] - 1, apps["product"], band)
        for j, mask in enumerate((None, dec["approved"], dec["takeup"])):
            np.add.at(funnel[..., j], where if mask is None else tuple(w[mask] for w in where), 1)
        take = dec["takeup"]
        parts.append(account_arrays(
            apps["id"][take], apps["product"][take], band[take], apps["month"][take], to_cents(dec["amount"][take]),
            dec["apr"][take], apps["term"][take], apps["method"][take], np.zeros(take.sum()),
            scores["true_pd_12m"][take], dec["fraud"][take], sc.behaviour.roll_rates))
    book_path = loaded.book_path()
    if book_path is not None:
        book = population.read_book(book_path, sc)
        n = len(book["product"])
        band = scoring.score_band(scoring.score_from_pd(book["pd_12m"], sc.scorecard), sc.scorecard.bands)
        cents = to_cents(book["principal"])
        np.add.at(opening[..., 0], (book["product"], band, book["state"]), 1)
        np.add.at(opening[..., 1], (book["product"], band, book["state"]), cents)
        parts.append(account_arrays(
            BOOK_ID_OFFSET + np.arange(n), book["product"], band, np.zeros(n), cents, book["apr"], book["term"],
            book["method"], book["state"], book["pd_12m"], np.zeros(n, dtype=bool), sc.behaviour.roll_rates))
    if not parts:
        parts.append(account_arrays(*[np.zeros(0, dtype=np.int64)] * 11, sc.behaviour.roll_rates))
    return concat(parts), funnel, opening


def product_terms(sc: Scenario) -> dict[str, np.ndarray]:
    """Per-product parameters the kernel reads (indexed by product code)."""
    jb = sc.products.jiebei
    penalty = np.zeros(len(PRODUCTS))
    late_fee = np.zeros(len(PRODUCTS), dtype=np.int64)
    prepayment = np.zeros(len(PRODUCTS), dtype=np.bool_)
    penalty[JIEBEI] = jb.penalty_daily_rate * jb.days_per_year / 12.0
    late_fee[JIEBEI] = to_cents(jb.late_fee)
    prepayment[JIEBEI] = jb.prepayment
    return {"penalty_rate": penalty, "late_fee": late_fee, "prepayment": prepayment}


def run_kernel(sc: Scenario, accounts: dict[str, np.ndarray], threads: int | None = None,
               block_size: int | None = None, progress: bool = False):
    """Run every path over every account; integer sums (stocks, flows, rolls, cures)."""
    threads = threads or sc.engine.threads or nb.config.NUMBA_NUM_THREADS
    nb.set_num_threads(min(threads, nb.config.NUMBA_NUM_THREADS))
    chunks = nb.get_num_threads()
    block_size = block_size or sc.engine.block_size
    paths, horizon = sc.run.paths, sc.run.horizon_months
    n_bands = len(sc.scorecard.bands) + 1
    cell = (horizon, len(PRODUCTS), n_bands)
    stocks = np.zeros((paths,) + cell + (len(STATES), 2), dtype=np.int64)
    flows = np.zeros((paths,) + cell + (kernel.N_FLOWS,), dtype=np.int64)
    rolls = np.zeros((paths,) + cell + (len(STATES),), dtype=np.int64)
    cures = np.zeros_like(rolls)

    fac = sc.factor
    z = hazard.factor_paths(sc.run.seed, paths, horizon, fac.autocorrelation, sc.macro.shift)
    roll = hazard.roll_paths(sc.behaviour.roll_rates, fac.roll_correlation, z)
    terms = product_terms(sc)
    beh = sc.behaviour
    n_accounts = len(accounts["account_id"])
    bytes_per_path = chunks * math.prod(cell) * (len(STATES) * 4 + kernel.N_FLOWS) * 8
    paths_per_call = max(1, min(paths, CHUNK_BYTES // bytes_per_path))
    batch = block_size * chunks * max(1, 4_000_000 // max(1, block_size * chunks * horizon))
    bar = tqdm(total=n_accounts * paths, unit="acct-path", disable=not progress, file=sys.stderr,
               leave=False, dynamic_ncols=True)
    for p0 in range(0, paths, paths_per_call):
        p1 = min(paths, p0 + paths_per_call)
        out_stocks = np.zeros((chunks, p1 - p0) + stocks.shape[1:], dtype=np.int64)
        out_flows = np.zeros((chunks, p1 - p0) + flows.shape[1:], dtype=np.int64)
        out_rolls = np.zeros((chunks, p1 - p0) + rolls.shape[1:], dtype=np.int64)
        out_cures = np.zeros_like(out_rolls)
        for a0 in range(0, max(n_accounts, 1), batch):
            a1 = min(n_accounts, a0 + batch)
            acc = {k: v[a0:a1] for k, v in accounts.items()}
            kernel.simulate(
                np.int64(sc.run.seed), np.int64(p0), np.ascontiguousarray(z[p0:p1]),
                np.ascontiguousarray(roll[p0:p1]), math.sqrt(fac.asset_correlation),
                1.0 / math.sqrt(1.0 - fac.asset_correlation), beh.prepay_monthly, sc.funding.cost_of_funds / 12.0,
                beh.recovery_rate * (1.0 - beh.collection_cost), beh.recovery_lag_months,
                terms["penalty_rate"], terms["late_fee"], terms["prepayment"],
                acc["account_id"], acc["product"], acc["band"], acc["start_month"], acc["principal"], acc["rate"],
                acc["term"], acc["method"], acc["payment"], acc["state0"], acc["hazard_q"], acc["fraud"],
                np.int64(block_size), out_stocks, out_flows, out_rolls, out_cures)
            bar.update((a1 - a0) * (p1 - p0))
        stocks[p0:p1] = out_stocks.sum(axis=0)
        flows[p0:p1] = out_flows.sum(axis=0)
        rolls[p0:p1] = out_rolls.sum(axis=0)
        cures[p0:p1] = out_cures.sum(axis=0)
    bar.close()
    return stocks, flows, rolls, cures


def simulate(loaded: LoadedScenario, threads: int | None = None, block_size: int | None = None,
             progress: bool = False) -> xr.Dataset:
    """A whole run: a pure function of the scenario (and its seed)."""
    from .results import build_dataset

    sc = loaded.scenario
    accounts, funnel, opening = prepare(loaded)
    stocks, flows, rolls, cures = run_kernel(sc, accounts, threads, block_size, progress)
    labels = scoring.band_labels(sc.scorecard.bands)
    return build_dataset(loaded, labels, stocks, flows, rolls, cures, funnel, opening, simulator_version())
