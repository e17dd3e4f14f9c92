"""Monte Carlo error of the headline figures, and of their differences between runs.

A headline figure that is a mean over paths is written here as its values per path: a mean of
`top`, or a ratio of the means of `top` and `bottom` (a share, a coverage, a yield). Its standard
error is the spread of those values over the paths (the paths' importance weights respected, the
ratio's by the delta method). The error is that of the paths for the applicants the run drew: the
funnel (applicants, approvals, prices) is one draw of the applicants, common to every path, and has
no error over paths. Tail figures (VaR, expected shortfall, economic capital) take their bootstrap
errors from the results. See docs/results.md, "Monte Carlo error".

Two runs (or two cells of a sweep) whose paths are the same random numbers (same seed, paths and
path weights: `paired`) give a paired error of a difference: the spread over paths of the per-path
differences. Otherwise the errors add in quadrature (unpaired).
"""
from __future__ import annotations

import json
import math
from typing import NamedTuple

import numpy as np
import xarray as xr

from ..model.tail import mean_and_error, paired_tail_errors
from ..results import joint_lending, pnl
from ..results.dataset import steady_months

NOISE = 2.0    # a difference smaller than NOISE standard errors is not distinguishable from noise


class PerPath(NamedTuple):
    """A figure's values per path: the mean of `top`, or with `bottom` the ratio of the two means."""
    top: np.ndarray
    bottom: np.ndarray | None = None


def _paths(x: xr.DataArray) -> np.ndarray:
    return np.asarray(x.transpose("path").values, dtype=np.float64)


def _pnl_lines(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    """The P&L lines (pnl.LINES) of both views, totals over products, per path: {view: lines}."""
    sums = ds[list(pnl.PNL_FLOWS)].sum(("month", "score_band"))
    sums["balance"] = ds["balance"].sum(("score_band", "state")).mean("month")
    sums["allowance"] = ds["allowance"].isel(month=-1).sum(("score_band", "stage"))
    shares = joint_lending.Shares(ds["platform_share"], ds["platform_loss_share"], ds["service_fee_share"])
    out = {}
    for view in joint_lending.VIEWS:
        flows = {name: x.sum("product") for name, x in joint_lending.view(dict(sums.data_vars), view, shares).items()}
        out[view], _ = pnl.lines(flows, ds.sizes["month"])
    return out


def _dpd(balance: xr.DataArray, worse: xr.DataArray, months: slice, weights: np.ndarray) -> tuple[PerPath, PerPath]:
    """The mean ratio over the path-months with a balance in `months` (balance and worse by path and
    month), and the ratio at the month of its peak (of the weighted mean over paths) among them."""
    b, w = balance.sel(month=months), worse.sel(month=months)
    has = (b > 0).astype(float)
    ratio = (w / b.where(b > 0)).fillna(0.0)
    mean = PerPath(_paths((ratio * has).sum("month")), _paths(has.sum("month")))
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = xr.DataArray(weights / weights.sum(), dims="path")
    return mean, PerPath(_paths(ratio.isel(month=int(np.argmax((ratio * weight).sum("path").values)))))


def per_path(ds: xr.Dataset, weights: np.ndarray) -> dict[str, PerPath]:
    """The headline figures of one cell that are means over paths, as values per path (those a
    summary's results keep per path only, in the summary mode). The peak 30+ ratio's month is that of
    the mean over paths weighted by `weights`."""
    months = steady_months(ds)
    pooled = ("month", "product", "score_band")
    out: dict[str, PerPath] = {}
    if "path" in ds["balance"].dims:       # every variable per path
        lines = _pnl_lines(ds)
        book, platform = lines["book"], lines["platform"]
        out["originated"] = PerPath(_paths(ds["originated"].sum(pooled)))
        out["charged_off"] = PerPath(_paths(ds["charged_off"].sum(pooled)))
        out["fraud_share"] = PerPath(_paths(ds["fraud_charged_off"].sum(pooled)), out["charged_off"].top)
        for name in ("revenue", "merchant_fee_income", "net_revenue", "credit_loss_expense", "operating_costs",
                     "pretax_income"):
            out[name] = PerPath(_paths(book.sel(pnl_line=name)))
        annual = 12.0 / ds.sizes["month"]
        balance = _paths(book.sel(pnl_line="average_balance"))
        out["risk_adjusted_yield"] = PerPath(annual * (out["revenue"].top - out["credit_loss_expense"].top), balance)
        out["return_on_assets"] = PerPath(annual * out["pretax_income"].top, balance)
        for name in ("revenue", "service_fee_income", "pretax_income"):
            out[f"platform_{name}"] = PerPath(_paths(platform.sel(pnl_line=name)))
        out["platform_return_on_assets"] = PerPath(annual * out["platform_pretax_income"].top, balance)
        end = ds.isel(month=-1)
        held = end["allowance"].sum(("product", "score_band"))
        owed = end["stage_balance"].sum(("product", "score_band"))
        out["allowance"] = PerPath(_paths(held.sum("stage")))
        out["coverage"] = PerPath(out["allowance"].top, _paths(owed.sum("stage")))
        out["stage_3_coverage"] = PerPath(_paths(held.sel(stage="stage_3")), _paths(owed.sel(stage="stage_3")))
    else:                                  # a summary: per path only the tail's monthly totals
        out["revenue"] = PerPath(_paths(ds["path_revenue"].sum("product")))
        out["pretax_income"] = PerPath(_paths(ds["path_profit"].sum("product")))
        out["allowance"] = PerPath(_paths(ds["path_month_allowance"].isel(month=-1).sum("product")))
    balance = ds["path_month_balance"].sum("product")
    out["dpd30_ratio"], out["dpd30_peak"] = _dpd(balance, ds["path_month_dpd30_balance"].sum("product"), months,
                                                 weights)
    out["dpd90_ratio"], _ = _dpd(balance, ds["path_month_dpd90_balance"].sum("product"), months, weights)
    out["expected_loss"] = PerPath(_paths(ds["path_loss"].sum("product")))
    out["capital_expected_loss"] = PerPath(_paths(ds["capital_loss"].sum("product")))
    return out


def linearised(values: PerPath, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """The figure (mean, or ratio of means, with the weights) and its values per path linearised: a
    mean's own values, a ratio's (top - R bottom) / mean(bottom), whose weighted mean's error is the
    ratio's (delta method)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        w = weights / weights.sum()
    if values.bottom is None:
        return float(np.sum(w * values.top)), values.top
    top, bottom = float(np.sum(w * values.top)), float(np.sum(w * values.bottom))
    if bottom == 0:
        return math.nan, np.full_like(values.top, math.nan)
    ratio = top / bottom
    return ratio, (values.top - ratio * values.bottom) / bottom


def error(values: PerPath, weights: np.ndarray) -> float:
    """The standard error of a figure over paths (0 with one path; NaN for an undefined ratio)."""
    _, z = linearised(values, weights)
    return mean_and_error(z, weights)[1] if np.all(np.isfinite(z)) else math.nan


def tail_errors(ds: xr.Dataset) -> dict[str, float]:
    """The bootstrap errors of the tail figures of one cell, by headline key (book, and the platform's);
    RAROC's by the delta method from its year's profit and its capital, taken as independent."""
    top = ds["quantile"].values[-1]
    out = {}
    for view, prefix in (("book", ""), ("platform", "platform_")):
        v = ds.sel(view=view)
        capital, capital_se = float(v["economic_capital"]), float(v["economic_capital_se"])
        if not prefix:
            out["var_top"] = float(v["value_at_risk_se"].sel(quantile=top))
            out["es_top"] = float(v["expected_shortfall_se"].sel(quantile=top))
        out[f"{prefix}economic_capital"] = capital_se
        profit = ds["capital_profit" if not prefix else "platform_capital_profit"].sum("product")
        weights = ds["path_weight"].values
        mean, profit_se = mean_and_error(_paths(profit), weights) if "path" in profit.dims else (math.nan, math.nan)
        raroc = float(v["raroc"])
        out[f"{prefix}raroc"] = (abs(raroc) * math.hypot(profit_se / mean, capital_se / capital)
                                 if raroc == raroc and mean and capital else math.nan)
    return out


def errors(ds: xr.Dataset) -> dict[str, float]:
    """The standard error of each headline figure of one cell that has one, by headline key."""
    weights = ds["path_weight"].values
    out = {key: error(values, weights) for key, values in per_path(ds, weights).items()}
    return out | tail_errors(ds)


# ---------------------------------------------------------------------------------------------
RANDOM_NUMBERS = ("seed", "paths", "horizon_months")


def random_numbers(ds: xr.Dataset) -> dict:
    """What a run's random numbers are: its seed, paths and horizon, and the importance sampling of
    its factor (`capital.importance_quantile`, `capital.month`); runs with the same are paired."""
    tree = json.loads(ds.attrs["scenario_resolved"])
    return {"seed": tree["run"]["seed"], "paths": tree["run"]["paths"], "horizon_months": tree["run"]["horizon_months"],
            "importance_quantile": tree["capital"]["importance_quantile"], "capital_month": tree["capital"]["month"]}


def paired(a: xr.Dataset, b: xr.Dataset) -> bool:
    """Whether two cells' paths are the same random numbers (common random numbers): the same seed,
    paths, horizon and importance sampling, and identical path weights."""
    return (random_numbers(a) == random_numbers(b)
            and np.array_equal(a["path_weight"].values, b["path_weight"].values))


def difference_errors(a: xr.Dataset, b: xr.Dataset) -> tuple[dict[str, float], bool]:
    """The standard error of each headline figure's difference b - a, and whether it is paired (the
    spread over paths of the per-path differences of the linearised figures) or not (the two errors in
    quadrature). Tail figures' paired errors are a bootstrap of the paths, the same resample for
    both runs (`_paired_tail_errors`); unpaired, their errors in quadrature."""
    wa, wb = a["path_weight"].values, b["path_weight"].values
    pa, pb = per_path(a, wa), per_path(b, wb)
    is_paired = paired(a, b)
    out = {}
    for key in pa.keys() & pb.keys():
        if is_paired:
            (_, za), (_, zb) = linearised(pa[key], wa), linearised(pb[key], wb)
            d = zb - za
            out[key] = mean_and_error(d, wa)[1] if np.all(np.isfinite(d)) else math.nan
        else:
            out[key] = math.hypot(error(pa[key], wa), error(pb[key], wb))
    if is_paired and "path" in a["capital_loss"].dims:
        out |= _paired_tail_errors(a, b)
    else:
        ta, tb = tail_errors(a), tail_errors(b)
        out |= {key: math.hypot(ta[key], tb[key]) for key in ta}
    return out, is_paired


def _paired_tail_errors(a: xr.Dataset, b: xr.Dataset) -> dict[str, float]:
    """The paired bootstrap errors of the changes of the tail figures (tail.paired_tail_errors): VaR
    and ES at the top quantile, economic capital and RAROC at the scenario's level, both views."""
    tree = json.loads(a.attrs["scenario_resolved"])
    first, last = (int(m) for m in a.attrs["capital_window"].removeprefix("months ").split(" .. "))
    weights = a["path_weight"].values
    out = {}
    for prefix, name in (("", "capital"), ("platform_", "platform_capital")):
        losses = tuple(_paths(x[f"{name}_loss"].sum("product")) for x in (a, b))
        profits = tuple(_paths(x[f"{name}_profit"].sum("product")) for x in (a, b))
        months = last - first + 1
        top = paired_tail_errors(losses, profits, weights, float(a["quantile"].values[-1]), months)
        capital = paired_tail_errors(losses, profits, weights, tree["capital"]["economic_capital_level"], months)
        if not prefix:
            out["var_top"], out["es_top"] = top["var"], top["es"]
        out[f"{prefix}economic_capital"], out[f"{prefix}raroc"] = capital["economic_capital"], capital["raroc"]
    return out


