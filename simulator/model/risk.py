"""Credit risk figures: loss given default, pool PDs, Basel IRB capital, and the risk figures of the
loss distribution across Monte Carlo paths (their estimators are in `tail`): expected loss, VaR,
expected shortfall, economic capital, RAROC."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numba as nb
import numpy as np
import xarray as xr
from scipy.stats import norm

from . import hazard, tail
from ..codes import DPD90, LINE, PD_MONTHS, PRODUCTS, PRODUCT_KIND

if TYPE_CHECKING:
    from ..config.schema import Behaviour, Capital, Factor


def recovery_share(behaviour: Behaviour) -> float:
    """Share of a charged-off balance recovered, net of collection cost (a scenario's `behaviour`)."""
    return behaviour.recovery_rate * (1.0 - behaviour.collection_cost)


def loss_given_default(behaviour: Behaviour) -> float:
    """Share of a charged-off balance lost: 1 - recovery rate net of collection cost."""
    return 1.0 - recovery_share(behaviour)


def risk_pd(accounts) -> np.ndarray:
    """Each account's probability of going bad within 12 months as the risk figures count it: its
    pd_12m, or 1 for first-party fraud (which never pays)."""
    return np.where(accounts.fraud, 1.0, accounts.pd_12m)


@nb.njit(cache=True, nogil=True)
def _pool_sums(product, band, n_bands, values, weights, total, weighted):
    """total[pool] += weight, weighted[pool] += weight x value, account by account in order: the sums
    np.bincount makes, to the bit, without its temporary arrays (a run has millions of accounts)."""
    for i in range(product.shape[0]):
        pool = np.int64(product[i]) * n_bands + band[i]
        total[pool] += weights[i]
        weighted[pool] += weights[i] * values[i]


def _by_pool(accounts, n_bands: int, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of `values` in each (product, band) pool; NaN for an empty pool."""
    total, weighted = np.zeros(len(PRODUCTS) * n_bands), np.zeros(len(PRODUCTS) * n_bands)
    _pool_sums(accounts.product, accounts.band, n_bands, np.asarray(values, dtype=np.float64),
               np.asarray(weights, dtype=np.float64), total, weighted)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weighted / total).reshape(len(PRODUCTS), n_bands)


def _exposure(accounts) -> np.ndarray:
    """The weight of an account in its pool: principal of a loan or a purchase plan, the cap of a line."""
    line = PRODUCT_KIND[accounts.product] == LINE
    return np.where(line, accounts.line_cap, accounts.principal).astype(np.float64)


def pool_pd(accounts, n_bands: int) -> np.ndarray:
    """Exposure-weighted PD of each (product, band) pool of `accounts` (a terms.Accounts) at
    origination (weights: principal of loans, the cap of lines; first-party fraud at PD 1); the
    retail IRB approach assigns exposures to such pools. 0 for an empty pool."""
    return np.nan_to_num(_by_pool(accounts, n_bands, risk_pd(accounts), _exposure(accounts)))


def _honest_pd(accounts, n_bands: int) -> np.ndarray:
    """The exposure-weighted pd_12m (weights as `pool_pd`) of each pool's accounts that are not
    first-party fraud; 0 for an empty pool."""
    return np.nan_to_num(_by_pool(accounts, n_bands, accounts.pd_12m, np.where(accounts.fraud, 0.0, _exposure(accounts))))


def pool_pd_and_fraud(accounts, n_bands: int, owed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """By (product, band) pool: the exposure-weighted PD of the accounts that are not first-party fraud
    (weights as `pool_pd`), and the share of what the pool's new accounts (originated in the run) owe
    at their first due date, `owed` by account, that first-party fraudsters owe. 0 for an empty pool."""
    honest = _honest_pd(accounts, n_bands)
    new = np.where(accounts.start_month >= 1, owed, 0.0)
    return honest, np.nan_to_num(_by_pool(accounts, n_bands, accounts.fraud.astype(np.float64), new))


def state_pds(accounts, n_bands: int, roll_rates: list[float], factor: Factor) -> np.ndarray:
    """pd[product, band, s] for s = current .. M3: the one-year PD through the cycle of a pool's
    performing account in state s (the probability of reaching 90+ within 12 months), at the hazard
    that gives the pool's exposure-weighted pd_12m of the accounts that are not first-party fraud (the
    kernel's hazards are solved so, under `roll_rates` and the factor settings `factor`): the pool's
    pd_12m for current, the Markov chain from the state for M1 .. M3. 0 for an empty pool."""
    honest = _honest_pd(accounts, n_bands)
    h = hazard.hazard_from_pd12(honest, roll_rates, factor)
    out = np.stack([honest] + [hazard.pd12_from_hazard(h, roll_rates, factor, s) for s in range(1, DPD90)], axis=-1)
    return np.where(honest[..., None] > 0, out, 0.0)


def seasoned_pools(accounts, n_bands: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Of the accounts originated early enough to be observed for 12 months on book (as the kernel's
    realised 12-month bad rate counts them), by (product, band): the mean PD by account (fraud at 1),
    and the share that are first-party fraud. NaN for an empty pool."""
    seasoned = ((accounts.start_month >= 1) & (accounts.start_month + PD_MONTHS <= horizon)).astype(np.float64)
    return (_by_pool(accounts, n_bands, risk_pd(accounts), seasoned),
            _by_pool(accounts, n_bands, accounts.fraud.astype(np.float64), seasoned))


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
                capital: Capital) -> np.ndarray:
    """Basel IRB capital of pools (same shape as pool_pd): K(PD, LGD, R) x EAD, with R the revolving
    correlation for revolving pools and the other-retail formula for the rest; PD floored (revolving
    pools at their own floor)."""
    pd = np.maximum(pool_pd, np.where(revolving, capital.pd_floor_revolving, capital.pd_floor))
    r = np.where(revolving, capital.irb_revolving_correlation, other_retail_correlation(pd))
    return irb_capital_requirement(pd, lgd, r, capital.irb_confidence) * exposure


def loss_metrics(horizon_loss: xr.DataArray, loss: xr.DataArray, profit: xr.DataArray, months: int,
                 irb: xr.DataArray, levels: list[float], economic_level: float, weights: xr.DataArray) -> xr.Dataset:
    """Risk figures over the `path` dimension, with the paths' weights (tail.tail_statistics): the
    expected loss over the horizon (`horizon_loss`); of the capital year's loss (`loss`, over
    `months` months) its expectation, VaR and expected shortfall at `levels` with their standard
    errors and the paths at or beyond each VaR, and economic capital (VaR at `economic_level` - its
    expectation); IRB capital; and RAROC (the year's mean profit, annualised, / economic capital),
    NaN when fewer than tail.MIN_TAIL_PATHS paths lie at or beyond the economic-capital VaR."""
    all_levels = list(levels) + [economic_level]

    def stats(x: np.ndarray) -> tuple[np.ndarray, ...]:
        out = tail.tail_statistics(x, weights.values, all_levels)
        return tuple(out[k] for k in ("mean", "mean_se", "var", "var_se", "es", "es_se", "unexpected_se", "tail_paths"))

    core = [["path"]]
    mean, mean_se, var, var_se, es, es_se, unexpected_se, count = xr.apply_ufunc(
        stats, loss, input_core_dims=core, output_core_dims=[[], []] + [["level"]] * 6)
    at = {"level": slice(0, len(levels))}
    economic = var.isel(level=-1) - mean
    enough = count.isel(level=-1) >= tail.MIN_TAIL_PATHS
    annual_profit = tail.path_mean(profit, weights) * 12.0 / months
    horizon_mean, horizon_se = xr.apply_ufunc(
        lambda x: tail.mean_and_error(x, weights.values), horizon_loss, input_core_dims=core,
        output_core_dims=[[], []], vectorize=True)
    out = xr.Dataset({
        "expected_loss": horizon_mean,
        "expected_loss_se": horizon_se,
        "capital_expected_loss": mean,
        "capital_expected_loss_se": mean_se,
        "value_at_risk": var.isel(at),
        "value_at_risk_se": var_se.isel(at),
        "expected_shortfall": es.isel(at),
        "expected_shortfall_se": es_se.isel(at),
        "tail_paths": count.isel(at).astype(np.int64),
        "unexpected_loss": var.isel(at) - mean,
        "economic_capital": economic,
        "economic_capital_se": unexpected_se.isel(level=-1),
        "economic_capital_tail_paths": count.isel(level=-1).astype(np.int64),
        "irb_capital_total": irb,
        "raroc": (annual_profit / economic.where(economic > 0)).where(enough),
    })
    return out.rename(level="quantile").assign_coords(quantile=list(levels))
