"""Monte Carlo error of the headline figures, and of their differences between runs.

A headline figure that is a mean over paths is written here as its values per path: a mean of
`top`, or a ratio of the means of `top` and `bottom` (a share, a coverage, a yield), read from the
per-path series of the results. Its standard error has two parts: the spread of those values over
the paths (the paths' importance weights respected, the ratio's by the delta method), and the
applicants' sampling noise, from the spread between the population groups of the applicants
(`population_variance`, from each group's part of the per-path values: the `group_` series). The
funnel has no path: its error is the groups' spread alone. Tail figures (VaR, expected shortfall,
economic capital) take their bootstrap errors over paths from the results. See docs/results.md,
"Monte Carlo error".

Two runs (or two cells of a sweep) whose paths are the same random numbers (same seed, paths,
population groups and path weights: `paired`) give a paired error of a difference: the same
error of the per-path and per-group differences. Otherwise the errors add in quadrature (unpaired).
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

ONE_DRAW = np.ones(1)   # the weight of the funnel's one draw of the applicants
NOISE = 2.0    # a difference smaller than NOISE standard errors is not distinguishable from noise


class PerPath(NamedTuple):
    """A figure's values per path: the mean of `top`, or with `bottom` the ratio of the two means.
    Of population groups: each group's part of them, (path, group)."""
    top: np.ndarray
    bottom: np.ndarray | None = None


def _paths(x: xr.DataArray) -> np.ndarray:
    return np.asarray(x.transpose("path", ...).values, dtype=np.float64)


def _pnl_lines(series: dict[str, xr.DataArray], shares: joint_lending.Shares, months: int) -> dict[str, xr.DataArray]:
    """The P&L lines (pnl.LINES) of both views, totals over products, per path: {view: lines}."""
    flows = series["path_flows"]
    sums = {name: flows.sel(series_flow=name, drop=True) for name in pnl.PNL_FLOWS}
    sums["balance"] = series["path_month_balance"].mean("month")
    sums["allowance"] = series["path_month_allowance"].isel(month=-1, drop=True)
    out = {}
    for view in joint_lending.VIEWS:
        lines = {name: x.sum("product") for name, x in joint_lending.view(sums, view, shares).items()}
        out[view], _ = pnl.lines(lines, months)
    return out


def _dpd(balance: xr.DataArray, worse: xr.DataArray, months: slice, weights: np.ndarray,
         groups: tuple[xr.DataArray, xr.DataArray] | None) -> tuple[PerPath, PerPath]:
    """The mean ratio over the path-months with a balance in `months` (balance and worse by path and
    month), and the ratio at the month of its peak (of the weighted mean over paths) among them. With
    `groups` (the groups' balance and worse), each group's part of them: of a path-month's ratio
    r = W / B, a group's w / B - r (b / B - 1 / G), which adds up to r over the groups and varies
    between them as r does to first order."""
    b, w = balance.sel(month=months), worse.sel(month=months)
    has = (b > 0).astype(float)
    ratio = (w / b.where(b > 0)).fillna(0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = xr.DataArray(weights / weights.sum(), dims="path")
    peak = int(np.argmax((ratio * weight).sum("path").values))
    if groups is None:
        return (PerPath(_paths((ratio * has).sum("month")), _paths(has.sum("month"))),
                PerPath(_paths(ratio.isel(month=peak))))
    gb, gw = (x.sel(month=months) for x in groups)
    n = gb.sizes["population_group"]
    part = ((gw - ratio * (gb - b / n)) / b.where(b > 0)).fillna(0.0)
    months_with_balance = (has.sum("month") / n).broadcast_like(part.isel(month=0, drop=True))
    return (PerPath(_paths((part * has).sum("month")), _paths(months_with_balance)),
            PerPath(_paths(part.isel(month=peak))))


def per_path(ds: xr.Dataset, weights: np.ndarray, groups: bool = False) -> dict[str, PerPath]:
    """The headline figures of one cell that are means over paths, as values per path, from the
    per-path series (`assemble.path_series`, kept in both results modes); with `groups`, each
    population group's part of them (the `group_` series, (path, group)). The peak 30+ ratio's
    month is that of the mean over paths weighted by `weights`."""
    names = ("path_flows", "path_stage_balance", "path_stage_allowance", "capital_loss") + tuple(
        name for name in ds.data_vars if name.startswith("path_month_"))
    series = {name: ds[f"group_{name}" if groups else name] for name in names}
    shares = joint_lending.Shares(ds["platform_share"], ds["platform_loss_share"], ds["service_fee_share"])
    lines = _pnl_lines(series, shares, ds.sizes["month"])
    book, platform = lines["book"], lines["platform"]
    flows = series["path_flows"].sum("product")
    out: dict[str, PerPath] = {}
    out["originated"] = PerPath(_paths(flows.sel(series_flow="originated")))
    out["charged_off"] = PerPath(_paths(flows.sel(series_flow="charged_off")))
    out["fraud_share"] = PerPath(_paths(flows.sel(series_flow="fraud_charged_off")), out["charged_off"].top)
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
    held = series["path_stage_allowance"].sum("product")
    owed = series["path_stage_balance"].sum("product")
    out["allowance"] = PerPath(_paths(held.sum("stage")))
    out["coverage"] = PerPath(out["allowance"].top, _paths(owed.sum("stage")))
    for stage in (1, 2, 3):
        out[f"stage_{stage}_coverage"] = PerPath(_paths(held.sel(stage=f"stage_{stage}")),
                                                 _paths(owed.sel(stage=f"stage_{stage}")))
    out["stage_2_share"] = PerPath(_paths(owed.sel(stage="stage_2")), _paths(owed.sum("stage")))
    months = steady_months(ds)
    balance_by_month = ds["path_month_balance"].sum("product")
    for name, key in (("dpd30", "dpd30_ratio"), ("dpd90", "dpd90_ratio")):
        worse = f"path_month_{name}_balance"
        of_groups = (series["path_month_balance"].sum("product"), series[worse].sum("product")) if groups else None
        out[key], peak = _dpd(balance_by_month, ds[worse].sum("product"), months, weights, of_groups)
        if name == "dpd30":
            out["dpd30_peak"] = peak
    out["expected_loss"] = PerPath(_paths(series["path_month_loss"].sum(("month", "product"))))
    out["capital_expected_loss"] = PerPath(_paths(series["capital_loss"].sum("product")))
    return out


def funnel(ds: xr.Dataset, groups: bool = False) -> dict[str, PerPath]:
    """The headline's funnel figures (one draw of the applicants, no path): as one value, or with
    `groups` as each population group's part ((1, group), `group_funnel`)."""
    table = ds["group_funnel"]
    if not groups:
        table = table.sum("population_group")
    x = {name: np.asarray(table.sel(group_funnel_count=name).values, dtype=np.float64).reshape(1, -1)
         for name in table["group_funnel_count"].values}
    if not groups:
        x = {name: value[:, 0] for name, value in x.items()}
    return {"applicants": PerPath(x["applicants"]), "approved_applicants": PerPath(x["approved_applicants"]),
            "applicant_approval_rate": PerPath(x["approved_applicants"], x["applicants"]),
            "applications": PerPath(x["applications"]), "approvals": PerPath(x["approvals"]),
            "application_approval_rate": PerPath(x["approvals"], x["applications"]),
            "accounts_originated": PerPath(x["takeups"]),
            "apr_after_cap": PerPath(x["apr_approved_sum"], x["approvals"]),
            "cap_bound_share": PerPath(x["cap_bound"], x["cap_applications"]),
            "rejected_at_cap": PerPath(x["rejected_at_cap"]),
            "apr_before_cap": PerPath(x["apr_priced_sum"], x["cap_applications"]),
            "revenue_given_up": PerPath(x["revenue_given_up"])}


def linearised(values: PerPath, weights: np.ndarray, of: PerPath | None = None) -> tuple[float, np.ndarray]:
    """The figure (mean, or ratio of means, with the weights) and its values per path linearised: a
    mean's own values, a ratio's (top - R bottom) / mean(bottom), whose weighted mean's error is the
    ratio's (delta method). With `of` (the population groups' parts of the same figure), their
    values linearised at the figure's ratio instead, (path, group)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        w = weights / weights.sum()
    target = values if of is None else of
    if values.bottom is None:
        return float(np.sum(w * values.top)), target.top
    top, bottom = float(np.sum(w * values.top)), float(np.sum(w * values.bottom))
    if bottom == 0:
        return math.nan, np.full_like(target.top, math.nan)
    ratio = top / bottom
    return ratio, (target.top - ratio * target.bottom) / bottom


def population_variance(parts: np.ndarray, weights: np.ndarray) -> float:
    """The applicants' sampling variance of a figure whose linearised values per path are the sums
    over population groups of `parts` (path, group; the last group, the existing book's, is given and
    left out). A two-way analysis of variance: the groups' weighted means over paths vary by the
    groups' own noise (G sigma_a^2 in the figure) and by the paths' within them (sigma_e^2 / n_eff,
    n_eff = 1 / sum of squared normalised weights, estimated from the interaction residuals); the
    first is the applicants'. With one path, the spread of the groups alone (docs/results.md)."""
    x = parts[:, :-1]
    n_paths, groups = x.shape
    w = weights / weights.sum()
    means = w @ x                                          # each group's weighted mean over paths
    between = np.var(means, ddof=1)
    n_eff = 1.0 / np.sum(w**2)
    if n_paths > 1 and n_eff > 1.0:
        residual = x - x.mean(axis=1, keepdims=True) - means + means.mean()
        within = np.sum(w[:, None] * residual**2) / (groups - 1) * n_eff / (n_eff - 1)
        between -= within / n_eff
    return max(0.0, groups * float(between))


def error(values: PerPath, weights: np.ndarray, groups: PerPath | None = None) -> float:
    """The standard error of a figure over paths (0 with one path; NaN for an undefined ratio), with
    the applicants' sampling noise when the population `groups`' parts of it are given."""
    _, z = linearised(values, weights)
    if not np.all(np.isfinite(z)):
        return math.nan
    variance = mean_and_error(z, weights)[1] ** 2
    if groups is not None:
        _, parts = linearised(values, weights, groups)
        variance += population_variance(parts, weights) if np.all(np.isfinite(parts)) else math.nan
    return math.sqrt(variance)


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


def _figures(ds: xr.Dataset) -> dict[str, tuple[PerPath, PerPath, np.ndarray]]:
    """(values, the population groups' parts, the paths' weights) of each headline figure of one cell
    that has an error but the tail's: those over paths, and the funnel (one draw, ONE_DRAW)."""
    weights = ds["path_weight"].values
    values, groups = per_path(ds, weights), per_path(ds, weights, groups=True)
    out = {key: (values[key], groups[key], weights) for key in values}
    values, groups = funnel(ds), funnel(ds, groups=True)
    return out | {key: (values[key], groups[key], ONE_DRAW) for key in values}


def errors(ds: xr.Dataset) -> dict[str, float]:
    """The standard error of each headline figure of one cell that has one, by headline key."""
    out = {key: error(values, weights, groups) for key, (values, groups, weights) in _figures(ds).items()}
    return out | tail_errors(ds)


# ---------------------------------------------------------------------------------------------
RANDOM_NUMBERS = ("seed", "paths", "horizon_months", "population_groups")


def random_numbers(ds: xr.Dataset) -> dict:
    """What a run's random numbers are: its seed, paths and horizon, and the importance sampling of
    its factor (`capital.importance_quantile`, `capital.month`); runs with the same are paired."""
    tree = json.loads(ds.attrs["scenario_resolved"])
    return {"seed": tree["run"]["seed"], "paths": tree["run"]["paths"], "horizon_months": tree["run"]["horizon_months"],
            "population_groups": tree["run"]["population_groups"],
            "importance_quantile": tree["capital"]["importance_quantile"], "capital_month": tree["capital"]["month"]}


def paired(a: xr.Dataset, b: xr.Dataset) -> bool:
    """Whether two cells' paths are the same random numbers (common random numbers): the same seed,
    paths, horizon and importance sampling, and identical path weights."""
    return (random_numbers(a) == random_numbers(b)
            and np.array_equal(a["path_weight"].values, b["path_weight"].values))


def difference_errors(a: xr.Dataset, b: xr.Dataset) -> tuple[dict[str, float], bool]:
    """The standard error of each headline figure's difference b - a, and whether it is paired (the
    error of the per-path and per-group differences of the linearised figures) or not (the two errors
    in quadrature). Tail figures' paired errors are a bootstrap of the paths, the same resample for
    both runs (`_paired_tail_errors`); unpaired, their errors in quadrature."""
    fa, fb = _figures(a), _figures(b)
    is_paired = paired(a, b)
    out = {}
    for key in fa.keys() & fb.keys():
        (va, ga, wa), (vb, gb, wb) = fa[key], fb[key]
        if is_paired:
            (_, za), (_, zb) = linearised(va, wa), linearised(vb, wb)
            (_, parts_a), (_, parts_b) = linearised(va, wa, ga), linearised(vb, wb, gb)
            d, parts = zb - za, parts_b - parts_a
            out[key] = (math.sqrt(mean_and_error(d, wa)[1] ** 2 + population_variance(parts, wa))
                        if np.all(np.isfinite(d)) and np.all(np.isfinite(parts)) else math.nan)
        else:
            out[key] = math.hypot(error(va, wa, ga), error(vb, wb, gb))
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


