"""Credit risk figures: loss given default, pool PDs, the loss distribution across Monte Carlo paths
and capital (VaR, expected shortfall with their Monte Carlo standard errors, economic capital,
Basel IRB capital, RAROC)."""
from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy.stats import norm

from .codes import HUABEI, PD_MONTHS, PRODUCTS


def recovery_share(behaviour) -> float:
    """Share of a charged-off balance recovered, net of collection cost (a scenario's `behaviour`)."""
    return behaviour.recovery_rate * (1.0 - behaviour.collection_cost)


def loss_given_default(scenario) -> float:
    """Share of a charged-off balance lost: 1 - recovery rate net of collection cost."""
    return 1.0 - recovery_share(scenario.behaviour)


def risk_pd(accounts) -> np.ndarray:
    """Each account's probability of going bad within 12 months as the risk figures count it: its
    pd_12m, or 1 for first-party fraud (which never pays)."""
    return np.where(accounts.fraud, 1.0, accounts.pd_12m)


def _by_pool(accounts, n_bands: int, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of `values` in each (product, band) pool; NaN for an empty pool."""
    cell = accounts.product.astype(np.int64) * n_bands + accounts.band
    size = len(PRODUCTS) * n_bands
    total = np.bincount(cell, weights=weights, minlength=size)
    weighted = np.bincount(cell, weights=weights * values, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weighted / total).reshape(len(PRODUCTS), n_bands)


def pool_pd(accounts, n_bands: int) -> np.ndarray:
    """Exposure-weighted PD of each (product, band) pool of `accounts` (a terms.Accounts) at
    origination (weights: principal of loans, the cap of lines; first-party fraud at PD 1); the
    retail IRB approach assigns exposures to such pools. 0 for an empty pool."""
    weight = np.where(accounts.product == HUABEI, accounts.line_cap, accounts.principal).astype(np.float64)
    return np.nan_to_num(_by_pool(accounts, n_bands, risk_pd(accounts), weight))


def seasoned_pools(accounts, n_bands: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Of the accounts originated early enough to be observed for 12 months on book (as the kernel's
    realised 12-month bad rate counts them), by (product, band): the mean PD by account (fraud at 1),
    and the share that are first-party fraud. NaN for an empty pool."""
    seasoned = ((accounts.start_month >= 1) & (accounts.start_month + PD_MONTHS <= horizon)).astype(np.float64)
    return (_by_pool(accounts, n_bands, risk_pd(accounts), seasoned),
            _by_pool(accounts, n_bands, accounts.fraud.astype(np.float64), seasoned))


def value_at_risk(losses: np.ndarray, level: float) -> np.ndarray:
    """The `level` quantile of losses along the last axis (the order statistic ceil(n q), no interpolation)."""
    x = np.sort(np.asarray(losses, dtype=np.float64), axis=-1)
    n = x.shape[-1]
    k = min(n, max(1, math.ceil(n * level)))
    return x[..., k - 1]


def value_at_risk_se(losses: np.ndarray, level: float) -> np.ndarray:
    """Standard error of `value_at_risk`, distribution free: half the width of the order-statistic
    interval k = n q +/- sqrt(n q (1 - q)) (the binomial count below the quantile, +/- one sd)."""
    x = np.sort(np.asarray(losses, dtype=np.float64), axis=-1)
    n = x.shape[-1]
    sd = math.sqrt(n * level * (1 - level))
    lo = min(n, max(1, math.floor(n * level - sd)))
    hi = min(n, max(1, math.ceil(n * level + sd)))
    return (x[..., hi - 1] - x[..., lo - 1]) / 2.0


def expected_shortfall(losses: np.ndarray, level: float) -> np.ndarray:
    """Mean of the losses at or beyond the `level` VaR, along the last axis."""
    x = np.sort(np.asarray(losses, dtype=np.float64), axis=-1)
    n = x.shape[-1]
    k = min(n, max(1, math.ceil(n * level)))
    return x[..., k - 1:].mean(axis=-1)


def expected_shortfall_se(losses: np.ndarray, level: float) -> np.ndarray:
    """Standard error of `expected_shortfall`: sqrt((Var(L | L >= VaR) + q (ES - VaR)^2) / (n (1 - q)))."""
    x = np.sort(np.asarray(losses, dtype=np.float64), axis=-1)
    n = x.shape[-1]
    k = min(n, max(1, math.ceil(n * level)))
    tail = x[..., k - 1:]
    var_q = x[..., k - 1]
    es = tail.mean(axis=-1)
    spread = tail.var(axis=-1) + level * (es - var_q) ** 2
    return np.sqrt(spread / max(1.0, n * (1.0 - level)))


def other_retail_correlation(pd: np.ndarray) -> np.ndarray:
    """Basel other retail: R = 0.03 w + 0.16 (1 - w), w = (1 - e^(-35 PD)) / (1 - e^(-35))."""
    w = (1.0 - np.exp(-35.0 * pd)) / (1.0 - math.exp(-35.0))
    return 0.03 * w + 0.16 * (1.0 - w)


def irb_capital_requirement(pd: np.ndarray, lgd: float, correlation: np.ndarray, confidence: float = 0.999) -> np.ndarray:
    """Basel IRB retail K = LGD N[(1-R)^-0.5 G(PD) + (R/(1-R))^0.5 G(0.999)] - PD LGD (per unit of EAD)."""
    pd = np.clip(np.asarray(pd, dtype=np.float64), 1e-12, 1.0 - 1e-12)
    r = np.asarray(correlation, dtype=np.float64)
    stressed = norm.cdf(norm.ppf(pd) / np.sqrt(1.0 - r) + np.sqrt(r / (1.0 - r)) * norm.ppf(confidence))
    return np.maximum(0.0, lgd * stressed - pd * lgd)


def irb_capital(pool_pd: np.ndarray, exposure: np.ndarray, lgd: float, revolving: np.ndarray,
                capital) -> np.ndarray:
    """Basel IRB capital of pools (same shape as pool_pd): K(PD, LGD, R) x EAD, with R the revolving
    correlation for revolving pools and the other-retail formula for the rest; PD floored."""
    pd = np.maximum(pool_pd, capital.pd_floor)
    r = np.where(revolving, capital.irb_revolving_correlation, other_retail_correlation(pd))
    return irb_capital_requirement(pd, lgd, r, capital.irb_confidence) * exposure


def loss_metrics(loss: xr.DataArray, profit: xr.DataArray, horizon_months: int, irb: xr.DataArray,
                 levels: list[float], economic_level: float) -> xr.Dataset:
    """Risk figures over the `path` dimension: expected and unexpected loss, VaR and ES at `levels`
    with their standard errors, economic capital (VaR at `economic_level` - EL), IRB capital,
    annualised RAROC (mean profit a year / economic capital)."""
    def over_paths(fn, level):
        return xr.apply_ufunc(lambda a: fn(a, level), loss, input_core_dims=[["path"]])

    def by_level(fn):
        return xr.concat([over_paths(fn, q) for q in levels], dim="quantile")

    n = loss.sizes["path"]
    expected = loss.mean("path")
    var = by_level(value_at_risk)
    economic = over_paths(value_at_risk, economic_level) - expected
    annual_profit = profit.mean("path") * 12.0 / horizon_months
    out = xr.Dataset({
        "expected_loss": expected,
        "expected_loss_se": loss.std("path", ddof=1) / math.sqrt(n) if n > 1 else expected * 0.0,
        "value_at_risk": var,
        "value_at_risk_se": by_level(value_at_risk_se),
        "expected_shortfall": by_level(expected_shortfall),
        "expected_shortfall_se": by_level(expected_shortfall_se),
        "unexpected_loss": var - expected,
        "economic_capital": economic,
        "irb_capital_total": irb,
        "raroc": annual_profit / economic.where(economic > 0),
    })
    return out.assign_coords(quantile=list(levels))
