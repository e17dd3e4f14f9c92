"""Tail estimation across Monte Carlo paths: importance sampling of the systematic factor (the
mean shift of Glasserman and Li), the paths' likelihood-ratio weights, weighted means, value at
risk and expected shortfall with bootstrap standard errors, and the rule that says when too few
paths lie in the tail to estimate it (docs/model.md section 6)."""
from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy.special import ndtri

from . import hazard
from ..config.schema import Scenario

MIN_TAIL_PATHS = 10          # fewer paths at or beyond a VaR than this: the figure is a lower bound
DEFENSIVE_SHARE = 0.5        # under importance sampling, the share of paths drawn without the shift (even paths)
BOOTSTRAP_REPLICATES = 400   # resamples of the paths behind each standard error
BOOTSTRAP_SEED = 20_261_127  # the bootstrap's own stream: standard errors are reproducible
CHARGE_OFF_LAG = 6           # months from a first miss to charge-off (M1 .. M6, then charged off)


def capital_window(sc: Scenario) -> tuple[int, int, int]:
    """(m, first, last): the capital month m and the months first .. last of the year after it, whose
    loss of the book as it stands at the end of month m the tail figures measure, over the horizon of
    H months. m is capital.month, or by default the end of the origination window W when a year
    follows it (no new business in the year), else H - 12, else (H <= 12) W or the month before the
    last, the window then being the months left (shorter than a year). It takes the scenario: it
    reads the run, applicants and capital sections, and every caller holds the scenario."""
    horizon, applicants = sc.run.horizon_months, sc.applicants
    window = min(applicants.origination_months, horizon) if applicants.monthly_volume > 0 else 0
    m = sc.capital.month
    if m == 0:
        if window + 12 <= horizon:
            m = window
        elif horizon > 12:
            m = horizon - 12
        else:
            m = min(max(1, min(window, horizon - 1)), horizon - 1)
    return m, m + 1, min(m + 12, horizon)


def innovation_shift(horizon: int, window: tuple[int, int, int], q: float, phi: float) -> np.ndarray:
    """The mean mu[t] added to the factor's innovations over `horizon` months (zero without importance
    sampling): of length Phi^-1(q) for q = capital.importance_quantile, pointing where the factor
    (autocorrelation phi) of the months that drive the loss of the capital year (`window`, as
    `capital_window` gives it) falls fastest: the year's months and the CHARGE_OFF_LAG months before
    (a first miss charges off six months later)."""
    if q == 0.0:
        return np.zeros(horizon)
    _, first, last = window
    drives = np.zeros(horizon)
    drives[max(0, first - 1 - CHARGE_OFF_LAG):last] = 1.0
    scale = math.sqrt(max(0.0, 1.0 - phi * phi))
    # dZ_t / de_s of the AR(1) factor (hazard.factor_paths): phi^t for s = 0, scale phi^(t - s) for 1 <= s <= t.
    t, s = np.meshgrid(np.arange(horizon), np.arange(horizon), indexing="ij")
    with np.errstate(invalid="ignore"):
        power = np.where(t >= s, float(phi) ** np.maximum(t - s, 0), 0.0)
    jacobian = np.where(s == 0, power, scale * power)
    direction = drives @ jacobian
    norm = np.linalg.norm(direction)
    return -ndtri(q) * direction / norm if norm > 0 else np.zeros(horizon)


def factor_innovations(sc: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """(innovations as drawn, path weights). Without importance sampling: the keyed standard normals,
    weights 1. With it, a defensive mixture: odd paths add the shift mu to their keyed normals, even
    paths do not, and every path's weight is its likelihood ratio against the mixture,
    w = 1 / (a + (1 - a) exp(mu . e - |mu|^2 / 2)) with a = DEFENSIVE_SHARE and e the innovations as
    drawn. The weights average 1 and are at most 1 / a, so means stay as precise as plain Monte
    Carlo's within a factor 1 / a while half the paths sample the tail. The module's orchestrator: it
    reads the run, the capital window (applicants, capital) and the factor."""
    run = sc.run
    e = hazard.factor_innovations(run.seed, run.paths, run.horizon_months)
    mu = innovation_shift(run.horizon_months, capital_window(sc), sc.capital.importance_quantile,
                          sc.factor.autocorrelation)
    if not mu.any():
        return e, np.ones(run.paths)
    shifted = (np.arange(run.paths) % 2 == 1)[:, None]
    drawn = np.where(shifted, e + mu, e)
    a = DEFENSIVE_SHARE
    return drawn, 1.0 / (a + (1.0 - a) * np.exp(drawn @ mu - 0.5 * float(mu @ mu)))


# --- statistics over paths ----------------------------------------------------------------------------

def path_mean(x: xr.DataArray, weights: xr.DataArray | None) -> xr.DataArray:
    """The mean over `path`, weighted by the paths' likelihood ratios (self-normalised); the plain mean
    when every weight is 1, bit for bit; `x` itself when it has no path dimension (a summary's mean)."""
    if "path" not in x.dims:
        return x
    if weights is None or bool((weights == 1.0).all()):
        return x.mean("path")
    w = weights.sel(path=x["path"]) if "path" in x.coords else weights
    return (x * w).sum("path") / w.sum("path")


def path_sum(x: xr.DataArray, weights: xr.DataArray | None) -> xr.DataArray:
    """The sum over `path` of the paths weighted by their likelihood ratios (what pooling the paths
    means under importance sampling); the plain sum when every weight is 1; `x` itself when it has no
    path dimension (a summary's mean: pooled ratios of means are those of sums)."""
    if "path" not in x.dims:
        return x
    if weights is None or bool((weights == 1.0).all()):
        return x.sum("path")
    return (x * weights).sum("path")


def _tail_start(w: np.ndarray, level: float) -> int:
    """For losses sorted ascending with weights w: the index of the `level` quantile, the first whose
    losses above it carry an estimated probability sum(w above) / n of at most 1 - level (the
    importance-sampling estimator of the tail); with equal weights 1 the ceil(n q)-th smallest, the
    order statistic, exactly."""
    n = len(w)
    if np.all(w == 1.0):
        return min(n, max(1, math.ceil(n * level))) - 1
    above = np.sum(w) - np.cumsum(w)          # weight strictly above each index
    return int(min(n - 1, np.argmax(above <= (1.0 - level) * n)))


def path_quantile(x: xr.DataArray, weights: xr.DataArray, level: float) -> xr.DataArray:
    """The `level` quantile over `path` of any per-path variable, with the paths' weights (the estimator
    of VaR: with weights 1 the ceil(n q)-th smallest), e.g. of `path_month_dpd90_balance`."""
    def one(values: np.ndarray) -> float:
        order = np.argsort(values, kind="stable")
        return values[order][_tail_start(weights.values[order], level)]
    return xr.apply_ufunc(one, x, input_core_dims=[["path"]], vectorize=True)


def _replicates(xs: np.ndarray, ws: np.ndarray, counts: np.ndarray,
                levels: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """VaR, ES and VaR - mean at `levels` (replicate, level) of losses xs sorted ascending with weights
    ws, each path counted `counts[replicate, path]` times (a Poisson bootstrap resample)."""
    rows = np.arange(counts.shape[0])
    var, es, unexpected = (np.empty((len(rows), len(levels))) for _ in range(3))
    cw = counts * ws
    cum_w, cum_wx = np.cumsum(cw, axis=1), np.cumsum(cw * xs, axis=1)
    total_w, total_wx = cum_w[:, -1:], cum_wx[:, -1:]
    drawn = counts.sum(axis=1, keepdims=True)
    for j, level in enumerate(levels):
        k = np.argmax(total_w - cum_w <= (1.0 - level) * drawn, axis=1)
        before_w = np.where(k > 0, cum_w[rows, k - 1], 0.0)
        before_wx = np.where(k > 0, cum_wx[rows, k - 1], 0.0)
        var[:, j] = xs[k]
        with np.errstate(invalid="ignore", divide="ignore"):
            unexpected[:, j] = xs[k] - total_wx[:, 0] / total_w[:, 0]
            es[:, j] = (total_wx[:, 0] - before_wx) / (total_w[:, 0] - before_w)
    return var, es, unexpected


def _bootstrap(xs: np.ndarray, ws: np.ndarray, levels: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standard errors of VaR, ES and VaR - mean (unexpected loss, economic capital at its level) at
    `levels` for losses xs sorted ascending with weights ws: the
    standard deviation over BOOTSTRAP_REPLICATES Poisson bootstrap resamples (each path counted a
    Poisson(1) number of times, the large-sample form of resampling with replacement), which needs
    no sort per resample."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    n = len(xs)
    var, es, unexpected = (np.empty((BOOTSTRAP_REPLICATES, len(levels))) for _ in range(3))
    chunk = max(1, min(BOOTSTRAP_REPLICATES, 4_000_000 // max(n, 1)))   # bounded memory
    for r0 in range(0, BOOTSTRAP_REPLICATES, chunk):
        rows = slice(r0, min(BOOTSTRAP_REPLICATES, r0 + chunk))
        counts = rng.poisson(1.0, size=(rows.stop - rows.start, n)).astype(np.float64)
        var[rows], es[rows], unexpected[rows] = _replicates(xs, ws, counts, levels)
    return tuple(np.nanstd(x, axis=0, ddof=1) for x in (var, es, unexpected))


def paired_tail_errors(losses: tuple[np.ndarray, np.ndarray], profits: tuple[np.ndarray, np.ndarray],
                       weights: np.ndarray, level: float, months: int) -> dict[str, float]:
    """Standard errors of the differences b - a of VaR, ES, economic capital (VaR - mean) at `level`
    and RAROC (mean profit x 12 / months / economic capital) of two runs whose paths are the same
    random numbers (losses and profits per path, shared weights): the standard deviation over
    BOOTSTRAP_REPLICATES Poisson resamples of the paths, the same resample for both runs."""
    n = len(weights)
    counts = np.random.default_rng(BOOTSTRAP_SEED).poisson(1.0, size=(BOOTSTRAP_REPLICATES, n)).astype(np.float64)
    cw = counts * weights
    found = []
    for loss, profit in zip(losses, profits):
        order = np.argsort(loss, kind="stable")
        var, es, unexpected = (x[:, 0] for x in _replicates(loss[order], weights[order], counts[:, order], [level]))
        with np.errstate(invalid="ignore", divide="ignore"):
            raroc = (cw @ profit) / cw.sum(axis=1) * 12.0 / months / np.where(unexpected > 0, unexpected, np.nan)
        found.append({"var": var, "es": es, "economic_capital": unexpected, "raroc": raroc})
    a, b = found
    return {key: float(np.nanstd(b[key] - a[key], ddof=1)) if n > 1 else 0.0 for key in a}


def mean_and_error(x: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """The weighted (self-normalised) mean of x over paths and its delta-method standard error, which
    with equal weights is the plain sd / sqrt(n) (0 with one path)."""
    n = len(x)
    mean = np.sum(weights * x) / np.sum(weights)
    spread = np.sum(weights**2 * (x - mean) ** 2) / np.sum(weights) ** 2
    return mean, (math.sqrt(spread * n / (n - 1)) if n > 1 else 0.0)


def tail_statistics(losses: np.ndarray, weights: np.ndarray, levels: list[float]) -> dict[str, np.ndarray]:
    """Over the last axis (paths) of `losses`: mean, VaR and expected shortfall at `levels`, each with
    its bootstrap standard error (`_bootstrap`), and the number of paths at or beyond each VaR.
    Leading axes (sweep cells) are kept."""
    losses = np.asarray(losses, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    lead, n = losses.shape[:-1], losses.shape[-1]
    out = {name: np.empty(lead + (len(levels),)) for name in ("var", "var_se", "es", "es_se", "unexpected_se",
                                                              "tail_paths")}
    out |= {name: np.empty(lead) for name in ("mean", "mean_se")}
    for index in np.ndindex(*lead):
        x = losses[index]
        out["mean"][index], out["mean_se"][index] = mean_and_error(x, weights)
        order = np.argsort(x, kind="stable")
        xs, ws = x[order], weights[order]
        for j, level in enumerate(levels):
            k = _tail_start(ws, level)
            out["var"][index + (j,)] = xs[k]
            out["es"][index + (j,)] = np.sum(ws[k:] * xs[k:]) / np.sum(ws[k:])
            out["tail_paths"][index + (j,)] = n - k
        if n > 1:
            out["var_se"][index], out["es_se"][index], out["unexpected_se"][index] = _bootstrap(xs, ws, levels)
        else:
            out["var_se"][index] = out["es_se"][index] = out["unexpected_se"][index] = 0.0
    return out


def paths_needed(level: float) -> int:
    """Plain Monte Carlo paths that put MIN_TAIL_PATHS paths beyond the `level` quantile on average."""
    return math.ceil(MIN_TAIL_PATHS / (1.0 - level))
