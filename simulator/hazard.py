"""From pd_12m to the monthly hazard (docs/model.md section 4); the systematic factor (section 5)."""
from __future__ import annotations

import math

import numba as nb
import numpy as np
from scipy.special import expit, logit, ndtr, ndtri

from . import rng
from .codes import DPD90, PD_MONTHS

_GRID = np.linspace(-25.0, 25.0, 25001)  # logit of the hazard


def pd12_from_hazard(hazard: np.ndarray, roll_rates: np.ndarray) -> np.ndarray:
    """pd_12m of accounts current at origination with monthly hazard `hazard`, under the
    Markov chain of docs/model.md (neutral factor, no prepayment): P(reach M4 by month 12)."""
    hazard = np.asarray(hazard, dtype=np.float64)
    roll = np.asarray(roll_rates, dtype=np.float64)
    prob = np.zeros(hazard.shape + (DPD90 + 1,))
    prob[..., 0] = 1.0
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


def hazard_from_pd12(pd_12m: np.ndarray, roll_rates: np.ndarray) -> np.ndarray:
    """The monthly hazard h that gives each pd_12m (table over logit h, linear interpolation
    in logit space). pd_12m = 0 gives 0; a pd_12m beyond what h = 1 reaches gives 1."""
    pd_12m = np.asarray(pd_12m, dtype=np.float64)
    table_pd = pd12_from_hazard(expit(_GRID), roll_rates)
    keep = np.concatenate([[True], np.diff(table_pd) > 0]) & (table_pd > 0) & (table_pd < 1)
    if keep.sum() < 2:  # roll rates under which 90+ cannot be reached
        return np.where(pd_12m > 0.0, 1.0, 0.0)
    x, y = logit(table_pd[keep]), _GRID[keep]
    with np.errstate(divide="ignore"):
        h = expit(np.interp(logit(pd_12m), x, y))
    h = np.where(pd_12m <= 0.0, 0.0, h)
    return np.where(pd_12m >= table_pd[keep][-1], 1.0, h)


@nb.njit(cache=True)
def _factor_uniforms(seed, paths, horizon, out):
    for p in range(paths):
        for t in range(1, horizon + 1):
            out[p, t - 1] = rng.uniform(seed, p, -1, t, rng.FACTOR)


def factor_paths(seed: int, paths: int, horizon: int, phi: float, shift: list[float]) -> np.ndarray:
    """z[path, month] = Z_t + s_t: AR(1) factor, stationary N(0, 1), plus the macro shift."""
    u = np.empty((paths, horizon))
    _factor_uniforms(np.int64(seed), paths, horizon, u)
    e = ndtri(np.maximum(u, 2.0**-53))
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
