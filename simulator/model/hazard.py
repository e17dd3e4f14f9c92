"""From pd_12m to the monthly hazard (docs/model.md section 4); the systematic factor (section 5)."""
from __future__ import annotations

import functools
import math

import numba as nb
import numpy as np
from scipy.special import expit, logit, ndtr, ndtri
from scipy.stats import qmc

from . import rng
from ..codes import DPD90, PD_MONTHS

_GRID = np.linspace(-25.0, 25.0, 25001)      # logit of the hazard (the exact chain)
_PATH_GRID = np.linspace(-25.0, 25.0, 401)    # logit of the hazard (averages over factor paths)
CALIBRATION_PATHS = 1 << 13                   # stationary factor paths the calibration averages over
CALIBRATION_SEED = 20261127                   # the fixed Sobol scrambling of those paths
_SQRT2 = math.sqrt(2.0)


@nb.njit(inline="always", cache=True)
def normal_cdf(x):
    """Phi(x), the standard normal CDF, in the jitted code (every kernel's one Phi)."""
    return 0.5 * math.erfc(-x / _SQRT2)


@nb.njit(inline="always", cache=True)
def conditional_quantile(hazard_q, z, sqrt_rho, b, sqrt_rho_b, inv_sqrt_idio):
    """Phi^-1 of the hazard given the factor z and the borrower's draw b (section 5):
    (Phi^-1(h) - sqrt(R) z - sqrt(R_b) b) / sqrt(1 - R - R_b), from hazard_q = Phi^-1(h) and the
    loadings of `loadings`. Decreasing in z and in b, also in floating point."""
    return (hazard_q - sqrt_rho * z - sqrt_rho_b * b) * inv_sqrt_idio


@nb.njit(inline="always", cache=True)
def conditional_hazard(hazard_q, z, sqrt_rho, inv_sqrt_idio):
    """The hazard given the factor z alone (section 5): Phi((Phi^-1(h) - sqrt(R) z) / sqrt(1 - R)),
    `conditional_quantile` with no borrower draw."""
    return normal_cdf(conditional_quantile(hazard_q, z, sqrt_rho, 0.0, 0.0, inv_sqrt_idio))


def loadings(rho: float, rho_borrower: float = 0.0) -> tuple[float, float]:
    """(sqrt(R), 1 / sqrt(1 - R - R_b)): the factor's loading and the scale of what is left, for the
    asset correlation R and a borrower correlation R_b."""
    return math.sqrt(rho), 1.0 / math.sqrt(1.0 - rho - rho_borrower)


def pd12_from_hazard(hazard: np.ndarray, roll_rates: np.ndarray, factor=None, state: int = 0) -> np.ndarray:
    """pd_12m of accounts current at origination with baseline monthly hazard `hazard`: the
    probability of reaching M4 within 12 months on book, without prepayment (docs/model.md
    section 4); with `state` 1 .. 3, of accounts in that state (M1 .. M3) now. Without a `factor` (a scenario's factor section), or with both its correlations 0,
    the Markov chain of the unconditional hazard and roll rates; otherwise the average over the
    stationary factor of the chain of the conditional hazards and roll rates (`CALIBRATION_PATHS`
    paths of PD_MONTHS months)."""
    hazard = np.asarray(hazard, dtype=np.float64)
    roll = np.asarray(roll_rates, dtype=np.float64)
    if _correlated(factor):
        z = stationary_factor(factor.autocorrelation)
        rolls = np.ascontiguousarray(conditional(roll[None, None, :DPD90 - 1], factor.roll_correlation, z[:, :, None]))
        rho = factor.asset_correlation
        out = np.empty(hazard.size)
        with np.errstate(divide="ignore"):
            q = ndtri(hazard.ravel())
        _pd12_over_paths(q, *loadings(rho), z, rolls, np.int64(state), out)
        return out.reshape(hazard.shape)
    prob = np.zeros(hazard.shape + (DPD90 + 1,))
    prob[..., state] = 1.0
    for _ in range(PD_MONTHS):
        new = np.zeros_like(prob)
        new[..., 0] = prob[..., 0] * (1 - hazard)
        new[..., 1] = prob[..., 0] * hazard
        for k in range(1, DPD90):
            new[..., 0] += prob[..., k] * (1 - roll[k - 1])
            new[..., k + 1] += prob[..., k] * roll[k - 1]
        new[..., DPD90] += prob[..., DPD90]
        prob = new
    return prob[..., DPD90]


def _correlated(factor) -> bool:
    return factor is not None and (factor.asset_correlation > 0.0 or factor.roll_correlation > 0.0)


def stationary_factor(phi: float, paths: int = CALIBRATION_PATHS, months: int = PD_MONTHS,
                      start: float | None = None) -> np.ndarray:
    """z[path, month]: `months` months of the AR(1) factor (section 5) on a fixed scrambled Sobol set
    of paths (the same numbers in every run): stationary, or from z_0 = `start` (z_1 = phi z_0 +
    sqrt(1 - phi^2) e_1, ...)."""
    u = qmc.Sobol(d=months, scramble=True, seed=CALIBRATION_SEED).random(paths)
    e = ndtri(np.clip(u, 2.0**-53, 1.0 - 2.0**-53))
    z = np.empty_like(e)
    scale = math.sqrt(max(0.0, 1.0 - phi * phi))
    z[:, 0] = e[:, 0] if start is None else phi * start + scale * e[:, 0]
    for t in range(1, months):
        z[:, t] = phi * z[:, t - 1] + scale * e[:, t]
    return z


@nb.njit(cache=True, parallel=True)
def _pd12_over_paths(q, sqrt_rho, inv_sqrt_idio, z, roll, state, out):
    """out[j]: mean over paths of P(M4 within the months of z) from `state` (current .. M3) for the
    hazard quantile q[j], the hazard given z_t Phi((q - sqrt(R) z_t) / sqrt(1 - R)) and the roll rates
    M1->M2 .. M3->M4 given z_t."""
    n_paths, months = z.shape
    for j in nb.prange(q.shape[0]):       # each grid point on its own: the same sums whatever the threads
        total = 0.0
        for p in range(n_paths):
            s0, s1, s2, s3, s4 = (1.0 if state == 0 else 0.0, 1.0 if state == 1 else 0.0,
                                  1.0 if state == 2 else 0.0, 1.0 if state == 3 else 0.0, 0.0)
            for t in range(months):
                h = conditional_hazard(q[j], z[p, t], sqrt_rho, inv_sqrt_idio)
                r1, r2, r3 = roll[p, t, 0], roll[p, t, 1], roll[p, t, 2]
                s0, s1, s2, s3, s4 = (s0 * (1.0 - h) + s1 * (1.0 - r1) + s2 * (1.0 - r2) + s3 * (1.0 - r3),
                                      s0 * h, s1 * r1, s2 * r2, s4 + s3 * r3)
            total += s4
        out[j] = total / n_paths


@functools.lru_cache(maxsize=32)
def _table(roll_rates: tuple[float, ...], factor) -> tuple[np.ndarray, np.ndarray]:
    """(logit h, pd_12m) on the grid where pd_12m rises strictly inside (0, 1)."""
    grid = _PATH_GRID if _correlated(factor) else _GRID
    table_pd = pd12_from_hazard(expit(grid), np.asarray(roll_rates), factor)
    keep = np.concatenate([[True], np.diff(table_pd) > 0]) & (table_pd > 0) & (table_pd < 1)
    return grid[keep], table_pd[keep]


def hazard_from_pd12(pd_12m: np.ndarray, roll_rates: np.ndarray, factor=None) -> np.ndarray:
    """The baseline monthly hazard h that gives each pd_12m (see `pd12_from_hazard`; a table over
    logit h, linear interpolation in logit space). pd_12m = 0 gives 0; a pd_12m beyond what h = 1
    reaches gives 1."""
    pd_12m = np.asarray(pd_12m, dtype=np.float64)
    if pd_12m.size == 0:
        return pd_12m.copy()
    grid, table_pd = _table(tuple(float(r) for r in roll_rates), factor if _correlated(factor) else None)
    if len(grid) < 2:  # roll rates under which 90+ cannot be reached
        return np.where(pd_12m > 0.0, 1.0, 0.0)
    with np.errstate(divide="ignore"):
        h = expit(np.interp(logit(pd_12m), logit(table_pd), grid))
    h = np.where(pd_12m <= 0.0, 0.0, h)
    return np.where(pd_12m >= table_pd[-1], 1.0, h)


@nb.njit(cache=True)
def _factor_uniforms(seed, paths, horizon, out):
    for p in range(paths):
        for t in range(1, horizon + 1):
            out[p, t - 1] = rng.uniform(seed, p, -1, t, rng.FACTOR)


def factor_innovations(seed: int, paths: int, horizon: int) -> np.ndarray:
    """e[path, month]: the factor's standard normal innovations, keyed by (seed, path, month)."""
    u = np.empty((paths, horizon))
    _factor_uniforms(np.int64(seed), paths, horizon, u)
    return ndtri(np.maximum(u, 2.0**-53))


def factor_paths(e: np.ndarray, phi: float, shift: list[float]) -> np.ndarray:
    """z[path, month] = Z_t + s_t: the AR(1) factor of innovations `e` (stationary N(0, 1) for standard
    normal e: Z_1 = e_1, Z_t = phi Z_(t-1) + sqrt(1 - phi^2) e_t), plus the macro shift s_t."""
    horizon = e.shape[1]
    z = np.empty_like(e)
    z[:, 0] = e[:, 0]
    scale = math.sqrt(max(0.0, 1.0 - phi * phi))
    for t in range(1, horizon):
        z[:, t] = phi * z[:, t - 1] + scale * e[:, t]
    s = np.zeros(horizon)
    s[: len(shift)] = shift
    return z + s


def conditional(probability: np.ndarray, rho: float, z: np.ndarray) -> np.ndarray:
    """Vasicek transform: Phi((Phi^-1(p) - sqrt(rho) z) / sqrt(1 - rho))."""
    with np.errstate(invalid="ignore"):
        q = ndtri(np.asarray(probability, dtype=np.float64))
        return ndtr((q - math.sqrt(rho) * z) / math.sqrt(1.0 - rho))


def roll_paths(roll_rates: list[float], rho: float, z: np.ndarray) -> np.ndarray:
    """roll[path, month, k]: the six roll rates given the factor of each path and month."""
    return conditional(np.asarray(roll_rates)[None, None, :], rho, z[:, :, None])
