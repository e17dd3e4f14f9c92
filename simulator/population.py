"""Synthetic applicants (model.md section 2) and existing books read from CSV or Parquet (section 8).

Applicant features come from a Gaussian copula over income, debt-to-income,
age, platform tenure and past delinquencies. Every draw is keyed by
(run.seed, path 0, applicant id, month 0, purpose), so an applicant's
features depend only on its id, never on block sizes or other months' volume.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import ndtr

from . import rng
from .config import METHODS, PRODUCTS, STATES, Scenario, ScenarioError
from .products import METHOD_CODES

# Numerical constants (not model figures).
_U_MIN = 2.0**-53  # smallest uniform `rng` produces: bounds the copula's normal scores
_Z_MAX = -float(stats.norm.ppf(_U_MIN))
_QUANTILE_NODES = 16385  # nodes of the tabulated beta quantile over [-_Z_MAX, _Z_MAX]
_POPULATION_PATH = 0
_POPULATION_MONTH = 0

FEATURE_NAMES = ("income", "dti", "age", "tenure", "past_delinquencies")
BOOK_COLUMNS = ("product", "principal", "apr", "term_months", "method", "months_on_book", "state", "pd_12m")
BOOK_PRODUCTS = ("jiebei",)


# ---------------------------------------------------------------------------
# Applicants


def _categorical(u: np.ndarray, shares: list[float]) -> np.ndarray:
    """Index of the category each uniform falls in; categories with share 0 are never drawn."""
    cum = np.cumsum(np.asarray(shares, dtype=np.float64))
    idx = np.searchsorted(cum, u * cum[-1], side="right")
    return np.minimum(idx, len(shares) - 1)


def beta_parameters(mean: float, sd: float) -> tuple[float, float]:
    """Beta (a, b) with the given mean and sd (method of moments)."""
    k = mean * (1.0 - mean) / sd**2 - 1.0
    return mean * k, (1.0 - mean) * k


def _beta_from_normal(z: np.ndarray, a: float, b: float) -> np.ndarray:
    """scipy.stats.beta.ppf(Phi(z)), tabulated at fine nodes in z and interpolated (about 15x faster)."""
    nodes = np.linspace(-_Z_MAX, _Z_MAX, _QUANTILE_NODES)
    values = stats.beta.ppf(ndtr(nodes), a, b)
    return np.interp(z, nodes, values)


def _poisson_from_uniform(u: np.ndarray, mean: float) -> np.ndarray:
    """scipy.stats.poisson.ppf(u) by a cdf table: the smallest k with cdf(k) >= u."""
    k_max = int(stats.poisson.ppf(1.0 - _U_MIN, mean))
    cdf = stats.poisson.cdf(np.arange(k_max + 1), mean)
    return np.minimum(np.searchsorted(cdf, u, side="left"), k_max)


def origination_window(scenario: Scenario) -> int:
    """The last month in which applicants arrive (origination_months, within the horizon)."""
    return min(scenario.applicants.origination_months, scenario.run.horizon_months)


def applicants(scenario: Scenario, first_month: int = 1, last_month: int | None = None) -> dict[str, np.ndarray]:
    """The applicants of months first_month .. last_month (default: the whole origination window),
    ids ordered by month: applicant j of month m has id (m - 1) x monthly_volume + j."""
    a = scenario.applicants
    req = a.jiebei
    seed = scenario.run.seed
    last_month = origination_window(scenario) if last_month is None else last_month
    ids = np.arange((first_month - 1) * a.monthly_volume, max(0, last_month) * a.monthly_volume, dtype=np.int64)
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

    income = a.income_median * np.exp(a.income_sigma * z_income)
    dti = _beta_from_normal(z_dti, *beta_parameters(a.dti_mean, a.dti_sd))
    age = np.clip(a.age_mean + a.age_sd * z_age, a.age_min, a.age_max)
    tenure = -a.tenure_mean_years * np.log(ndtr(-z_tenure))  # exponential quantile of Phi(z)
    past = _poisson_from_uniform(ndtr(z_past), a.past_delinquency_mean).astype(np.int32)

    mix = [a.product_mix.get(p, 0.0) for p in PRODUCTS]
    product = _categorical(uniform(rng.PRODUCT), mix).astype(np.int8)
    # requests[i, p]: applicant i asks for product p (its main product, and others it also wants).
    requests = np.empty((n, len(PRODUCTS)), dtype=np.bool_)
    for p, name in enumerate(PRODUCTS):
        requests[:, p] = (product == p) | (uniform(rng.ALSO_REQUEST + p) < a.also_requests.get(name, 0.0))
    spend = np.round(a.huabei.spend_median * np.exp(a.huabei.spend_sigma * normal(rng.SPEND_MEAN)), 2)
    yf = a.yuefu
    price = np.round(yf.price_median * np.exp(yf.price_sigma * normal(rng.PRICE)))
    tenor = np.asarray(yf.tenors, dtype=np.int32)[_categorical(uniform(rng.TENOR), yf.tenor_shares)]
    promotion = uniform(rng.PROMOTION) < yf.promotion_share
    amount = np.round(req.amount_median * np.exp(req.amount_sigma * normal(rng.AMOUNT)))
    terms = np.asarray(req.terms, dtype=np.int32)
    term = terms[_categorical(uniform(rng.TERM), req.term_shares)]
    codes = np.asarray([METHOD_CODES[m] for m in req.methods], dtype=np.int8)
    method = codes[_categorical(uniform(rng.METHOD), req.method_shares)]
    verification_failed = uniform(rng.VERIFY) < a.verification_fail_rate

    return {
        "id": ids,
        "month": month,
        "product": product,
        "income": income,
        "dti": dti,
        "age": age,
        "tenure": tenure,
        "past_delinquencies": past,
        "amount": amount,
        "term": term,
        "method": method,
        "verification_failed": verification_failed,
        "requests": requests,
        "spend": spend,
        "price": price,
        "tenor": tenor,
        "promotion": promotion,
    }


# ---------------------------------------------------------------------------
# Existing book


def pd_from_score(score: np.ndarray, scenario: Scenario) -> np.ndarray:
    """pd_12m from a score under the scorecard scaling (odds good:bad, factor = pdo / ln 2)."""
    sc = scenario.scorecard
    factor = sc.pdo / math.log(2.0)
    offset = sc.base_score - factor * math.log(sc.base_odds)
    return 1.0 / (1.0 + np.exp((np.asarray(score, dtype=np.float64) - offset) / factor))


def _read_frame(path: Path) -> pd.DataFrame:
    file = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        found = repr(path.suffix) if path.suffix else "no extension"
        raise ScenarioError(file, "-", f"expected a .csv, .parquet or .pq file, found {found}")
    if not path.is_file():
        raise ScenarioError(file, "-", "file not found")
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        return pd.read_parquet(path)
    except (OSError, ValueError, ImportError) as exc:
        raise ScenarioError(file, "-", f"cannot read the file ({exc.__class__.__name__}: {exc})") from None


class _Checker:
    """Column validation that raises a ScenarioError naming the file, the 1-based data row and the column."""

    def __init__(self, path: Path, frame: pd.DataFrame):
        self.file, self.frame = str(path), frame

    def column(self, name: str) -> pd.Series:
        if name not in self.frame.columns:
            raise ScenarioError(self.file, f"column {name}", "missing")
        return self.frame[name]

    def fail(self, name: str, bad: np.ndarray, expected: str) -> None:
        """Raise for the first row where `bad` holds, if any."""
        rows = np.flatnonzero(bad)
        if rows.size:
            r = int(rows[0])
            value = self.frame[name].iloc[r]
            value = value.item() if isinstance(value, np.generic) else value
            raise ScenarioError(self.file, f"row {r + 1}: column {name}", f"expected {expected}, found {value!r}")

    def number(self, name: str, expected: str) -> np.ndarray:
        """The column as finite float64 (non-numbers and non-finite values are errors)."""
        col = self.column(name)
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        self.fail(name, ~np.isfinite(values), expected)
        return values

    def choice(self, name: str, names: tuple[str, ...], expected: str) -> np.ndarray:
        """Index of each value in `names` (values stripped of surrounding spaces)."""
        col = self.column(name).astype(str).str.strip()
        codes = col.map({v: i for i, v in enumerate(names)})
        self.fail(name, codes.isna().to_numpy(), expected)
        return codes.to_numpy(dtype=np.int64)


def read_book(path: Path, scenario: Scenario) -> dict[str, np.ndarray]:
    """Existing accounts from CSV or Parquet (interface.md "Book file columns"), validated row by row."""
    path = Path(path)
    frame = _read_frame(path)
    check = _Checker(path, frame)
    for name in BOOK_COLUMNS:
        if name == "pd_12m" and name not in frame.columns and "score" in frame.columns:
            continue
        check.column(name)

    product = check.choice("product", PRODUCTS, f"one of {', '.join(PRODUCTS)}")
    book_ok = np.isin(product, [PRODUCTS.index(p) for p in BOOK_PRODUCTS])
    check.fail("product", ~book_ok, f"{' or '.join(BOOK_PRODUCTS)} (this version models jiebei only in books)")

    principal = check.number("principal", "a number > 0")
    check.fail("principal", principal <= 0, "a number > 0")
    apr = check.number("apr", "a number >= 0")
    check.fail("apr", apr < 0, "a number >= 0")
    term_months = check.number("term_months", "an integer >= 1")
    check.fail("term_months", (term_months != np.floor(term_months)) | (term_months < 1), "an integer >= 1")
    method = check.choice("method", METHODS, f"one of {', '.join(METHODS)}")
    mob = check.number("months_on_book", "an integer >= 0")
    check.fail("months_on_book", (mob != np.floor(mob)) | (mob < 0), "an integer >= 0")
    check.fail("months_on_book", mob >= term_months, "months_on_book < term_months")
    state = check.choice("state", STATES, f"one of {', '.join(STATES)}")
    if "pd_12m" in frame.columns:
        pd_12m = check.number("pd_12m", "a number in [0, 1]")
        check.fail("pd_12m", (pd_12m < 0) | (pd_12m > 1), "a number in [0, 1]")
    else:
        pd_12m = pd_from_score(check.number("score", "a number"), scenario)

    return {
        "product": product.astype(np.int8),
        "principal": principal,
        "apr": apr,
        "term": (term_months - mob).astype(np.int32),
        "months_on_book": mob.astype(np.int32),
        "method": np.asarray([METHOD_CODES[m] for m in METHODS], dtype=np.int8)[method],
        "state": state.astype(np.int8),
        "pd_12m": pd_12m,
    }
