"""Synthetic applicants (docs/model.md section 2).

Each applicant comes through an acquisition channel (a segment of
`applicants.segments`, drawn by share); its features come from a Gaussian copula over
income, debt-to-income, age, platform tenure and past delinquencies, with the
segment's marginals. Every draw is keyed by
(run.seed, path 0, applicant id, month 0, purpose), so an applicant's
features depend only on its id, never on block sizes or other months' volume.
"""
from __future__ import annotations

import functools

import numba as nb
import numpy as np
from scipy import stats
from scipy.special import ndtr

from . import rng
from ..codes import EQUAL_PRINCIPAL, KIND, LOAN, METHOD_CODES, PLAN, PRODUCTS
from ..config.schema import Applicants, Scenario

# Numerical constants (not model figures).
_U_MIN = 2.0**-53  # smallest uniform `rng` produces: bounds the copula's normal scores
_Z_MAX = -float(stats.norm.ppf(_U_MIN))
_QUANTILE_NODES = 16385  # nodes of the tabulated beta quantile over [-_Z_MAX, _Z_MAX]
_POPULATION_PATH = 0
_POPULATION_MONTH = 0

FEATURE_NAMES = ("income", "dti", "age", "tenure", "past_delinquencies")


@nb.njit(cache=True, nogil=True)
def _searched(table, x, right, out):
    """out[i] = np.searchsorted(table, x[i], side="right" if right else "left") for a short sorted
    table, by counting (numpy's binary search costs more per value than the table is long)."""
    n = table.shape[0]
    for i in range(x.shape[0]):
        v = x[i]
        k = 0
        if v != v:
            k = n          # numpy sorts NaN last
        elif right:
            while k < n and table[k] <= v:
                k += 1
        else:
            while k < n and table[k] < v:
                k += 1
        out[i] = k


def _searchsorted(table: np.ndarray, x: np.ndarray, side: str) -> np.ndarray:
    out = np.empty(x.shape[0], dtype=np.int64)
    _searched(np.ascontiguousarray(table, dtype=np.float64), np.ascontiguousarray(x, dtype=np.float64),
              side == "right", out)
    return out


@nb.njit(cache=True, nogil=True)
def _interp_even(z, nodes, values, out):
    """out[i] = np.interp(z[i], nodes, values), to the bit, for evenly spaced nodes: the node below
    found from the spacing (then checked against the nodes), not by binary search (20x faster)."""
    n = nodes.shape[0]
    first, last = nodes[0], nodes[n - 1]
    per_unit = (n - 1) / (last - first)
    for i in range(z.shape[0]):
        x = z[i]
        if x != x:
            out[i] = x
        elif x <= first:
            out[i] = values[0]
        elif x >= last:
            out[i] = values[n - 1]
        else:
            j = min(max(int((x - first) * per_unit), 0), n - 2)
            while nodes[j + 1] <= x:
                j += 1
            while nodes[j] > x:
                j -= 1
            if nodes[j] == x:
                out[i] = values[j]
            else:
                slope = (values[j + 1] - values[j]) / (nodes[j + 1] - nodes[j])
                out[i] = slope * (x - nodes[j]) + values[j]


def _categorical(u: np.ndarray, shares: list[float]) -> np.ndarray:
    """Index of the category each uniform falls in; categories with share 0 are never drawn."""
    cum = np.cumsum(np.asarray(shares, dtype=np.float64))
    idx = _searchsorted(cum, u * cum[-1], side="right")
    return np.minimum(idx, len(shares) - 1)


def beta_parameters(mean: float, sd: float) -> tuple[float, float]:
    """Beta (a, b) with the given mean and sd (method of moments)."""
    k = mean * (1.0 - mean) / sd**2 - 1.0
    return mean * k, (1.0 - mean) * k


def _frozen(table: np.ndarray) -> np.ndarray:
    """A cached table, read-only."""
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=64)
def _beta_table(a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """(nodes in z, beta quantiles of Phi(node)): made once per (a, b), not once per chunk of applicants."""
    nodes = np.linspace(-_Z_MAX, _Z_MAX, _QUANTILE_NODES)
    return _frozen(nodes), _frozen(stats.beta.ppf(ndtr(nodes), a, b))


def _beta_from_normal(z: np.ndarray, a: float, b: float) -> np.ndarray:
    """scipy.stats.beta.ppf(Phi(z)), tabulated at fine nodes in z and interpolated (about 15x faster)."""
    out = np.empty(len(z))
    _interp_even(np.ascontiguousarray(z, dtype=np.float64), *_beta_table(a, b), out)
    return out


@functools.lru_cache(maxsize=64)
def _poisson_cdf(mean: float) -> np.ndarray:
    """The Poisson cdf at 0 .. the quantile of 1 - 2**-53."""
    return _frozen(stats.poisson.cdf(np.arange(int(stats.poisson.ppf(1.0 - _U_MIN, mean)) + 1), mean))


def _poisson_from_uniform(u: np.ndarray, mean: float) -> np.ndarray:
    """scipy.stats.poisson.ppf(u) by a cdf table: the smallest k with cdf(k) >= u."""
    cdf = _poisson_cdf(mean)
    return np.minimum(_searchsorted(cdf, u, side="left"), len(cdf) - 1)


def origination_window(origination_months: int, horizon: int) -> int:
    """The last month in which applicants arrive (applicants.origination_months, within the horizon)."""
    return min(origination_months, horizon)


def applicants(scenario: Scenario, first_month: int = 1, last_month: int | None = None) -> dict[str, np.ndarray]:
    """The applicants of months first_month .. last_month (default: the whole origination window),
    ids ordered by month: applicant j of month m has id (m - 1) x monthly_volume + j."""
    a = scenario.applicants
    if last_month is None:
        last_month = origination_window(a.origination_months, scenario.run.horizon_months)
    return applicants_by_id(a, scenario.run.seed, np.arange((first_month - 1) * a.monthly_volume,
                                                          max(0, last_month) * a.monthly_volume, dtype=np.int64))


def applicants_by_id(a: Applicants, seed: int, ids: np.ndarray) -> dict[str, np.ndarray]:
    """The applicants with ids `ids` under the applicants' section `a` and the run's `seed` (each a
    pure function of the seed and its id: a loan tape's borrowers get their application features back)."""
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    month = (ids // max(a.monthly_volume, 1) + 1).astype(np.int32)

    def uniform(purpose: int) -> np.ndarray:
        return rng.uniforms(seed, _POPULATION_PATH, ids, _POPULATION_MONTH, purpose)

    def normal(purpose: int) -> np.ndarray:
        return rng.normals(seed, _POPULATION_PATH, ids, _POPULATION_MONTH, purpose)

    # Gaussian copula: independent normals mixed by the Cholesky factor of the correlation.
    chol = np.linalg.cholesky(np.asarray(a.correlation, dtype=np.float64))
    e = np.empty((n, len(FEATURE_NAMES)), dtype=np.float64)
    for j in range(len(FEATURE_NAMES)):
        e[:, j] = normal(rng.FEATURES + j)
    z = e @ chol.T
    z_income, z_dti, z_age, z_tenure, z_past = (z[:, j] for j in range(len(FEATURE_NAMES)))

    segments = list(a.segments.values())
    segment = _categorical(uniform(rng.SEGMENT), [s.share for s in segments]).astype(np.int8)

    def by_segment(name: str) -> np.ndarray:
        return np.array([getattr(s, name) for s in segments], dtype=np.float64)[segment]

    income = by_segment("income_median") * np.exp(a.income_sigma * z_income)
    dti = np.empty(n)
    past = np.empty(n, dtype=np.int32)
    for k, s in enumerate(segments):
        mine = segment == k
        dti[mine] = _beta_from_normal(z_dti[mine], *beta_parameters(s.dti_mean, a.dti_sd))
        past[mine] = _poisson_from_uniform(ndtr(z_past[mine]), s.past_delinquency_mean)
    age = np.clip(a.age_mean + a.age_sd * z_age, a.age_min, a.age_max)
    tenure = -by_segment("tenure_mean_years") * np.log(ndtr(-z_tenure))  # exponential quantile of Phi(z)

    mix = [a.product_mix.get(p, 0.0) for p in PRODUCTS]
    product = _categorical(uniform(rng.PRODUCT), mix).astype(np.int8)
    # requests[i, p]: applicant i asks for product p (its main product, and others it also wants).
    requests = np.empty((n, len(PRODUCTS)), dtype=np.bool_)
    for p, name in enumerate(PRODUCTS):
        requests[:, p] = (product == p) | (uniform(rng.also_request(p)) < a.also_requests.get(name, 0.0))
    # What the applicant would ask of each product, by its kind: a loan's amount, term and method; a
    # plan's price, tenor and whether it is a merchant-funded promotion; what it would spend on a line.
    # The k-th product of a kind draws with its own purposes (rng.of_product).
    amount = np.zeros((n, len(PRODUCTS)))
    term = np.zeros((n, len(PRODUCTS)), dtype=np.int32)
    method = np.zeros((n, len(PRODUCTS)), dtype=np.int8)
    promotion = np.zeros((n, len(PRODUCTS)), dtype=np.bool_)
    spend = np.zeros((n, len(PRODUCTS)))
    for p, (name, kind) in enumerate(zip(PRODUCTS, KIND)):
        req, k = getattr(a, name), KIND[:p].count(kind)
        if kind == LOAN:
            amount[:, p] = np.round(by_segment("loan_amount_median")
                                    * np.exp(req.amount_sigma * normal(rng.of_product(rng.AMOUNT, k))))
            term[:, p] = np.asarray(req.terms, dtype=np.int32)[
                _categorical(uniform(rng.of_product(rng.TERM, k)), req.term_shares)]
            codes = np.asarray([METHOD_CODES[m] for m in req.methods], dtype=np.int8)
            method[:, p] = codes[_categorical(uniform(rng.of_product(rng.METHOD, k)), req.method_shares)]
        elif kind == PLAN:
            amount[:, p] = np.round(req.price_median * np.exp(req.price_sigma * normal(rng.of_product(rng.PRICE, k))))
            term[:, p] = np.asarray(req.tenors, dtype=np.int32)[
                _categorical(uniform(rng.of_product(rng.TENOR, k)), req.tenor_shares)]
            method[:, p] = EQUAL_PRINCIPAL
            promotion[:, p] = uniform(rng.of_product(rng.PROMOTION, k)) < req.promotion_share
        else:              # a line
            draw = normal(rng.of_product(rng.SPEND_MEAN, k))
            spend[:, p] = np.round(req.spend_median * np.exp(req.spend_sigma * draw), 2)
    verification_failed = uniform(rng.VERIFY) < a.verification_fail_rate

    return {
        "id": ids,
        "month": month,
        "segment": segment,
        "product": product,
        "income": income,
        "dti": dti,
        "age": age,
        "tenure": tenure,
        "past_delinquencies": past,
        "verification_failed": verification_failed,
        "requests": requests,
        "amount": amount,          # [applicant, product]: a loan's amount, a plan's price (yuan; 0 for a line)
        "term": term,              # [applicant, product]: a loan's term, a plan's tenor (months)
        "method": method,          # [applicant, product]: a loan's method code; EQUAL_PRINCIPAL for a plan
        "promotion": promotion,    # [applicant, product]: a plan's purchase in a merchant-funded promotion
        "spend": spend,            # [applicant, product]: a line's mean monthly spend (yuan; 0 for other kinds)
    }
