"""The results Dataset assembled from the kernel's and the host's integer sums, with IRB capital;
the cells of a sweep combined, with the loss distribution and the P&L."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from ..codes import (ACCOUNTING, ACCOUNTS, ACCRUED, ALLOWANCE, BADS, BALANCE, DPD30, DPD90, FLOWS, FORECAST_UNIT, FUNNEL,
                     OVERLAY,
                     GROUP_FUNNEL, LINE, MONEY_FLOWS, PRODUCTS, PRODUCT_KIND, STAGES, STATES, VINTAGE_STATES,
                     V_ACCRUED_WRITTEN_OFF, V_ALLOWANCE, V_CHARGED_OFF, V_COSTS, V_CREDIT_INCOME, V_FUNDING, V_MERCHANT_INCOME, V_ORIGINAL,
                     V_RECOVERED)
from ..config.loader import LoadedScenario
from ..config.schema import Scenario
from ..model import provisions, risk, tail, terms
from . import capital, joint_lending, pnl
from .variables import WEIGHTED, CENTS, CONVENTIONS, COORDINATES, DESCRIPTIONS, TRANSFERS, TRANSFER_STAGES, cf_units, display_units


# The horizon's flows by path and product that the headline's errors read (`path_flows`).
SERIES_FLOWS = pnl.PNL_FLOWS + ("originated", "fraud_charged_off")
# Each series' dimensions after "path" (`path_series`); a population group's (`group_...`) put
# "population_group" after "path".
SERIES_DIMS = {"path_flows": ("product", "series_flow"), "path_stage_balance": ("product", "stage"),
               "path_stage_allowance": ("product", "stage")}


def series_dims(name: str) -> tuple[str, ...]:
    """The dimensions after "path" of a `path_series` array."""
    return SERIES_DIMS.get(name, ("month", "product") if name.startswith("path_month") else ("product",))


def path_series(sums: dict[str, np.ndarray], window: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """What the tail needs of each path, from the kernel's integer sums with a leading path axis (a
    task's, or a run's): monthly totals by product in cents (loss, revenue, pre-tax income, allowance,
    balance, 30+ and 90+ balance) and the flows by product of the capital year (`capital_lines`,
    pnl.PNL_FLOWS last; `window` as tail.capital_window gives it). Linear in the sums, so tasks
    add (in integers: the views' shares apply once they are summed, in `capital_year`)."""
    by_name = pnl.by_name(sums["flows"].sum(axis=3), sums["accounting"].sum(axis=3))   # (path, month, product)
    balance = sums["stocks"][..., BALANCE].sum(axis=3)      # (path, month, product, state)
    month, first, last = window
    year = pnl.book_year(sums["flows"], sums["accounting"], sums["vintage_flows"], month, first, last)
    end = sums["stages"][:, -1].sum(axis=2)                 # (path, product, stage, STAGE_STOCK)
    return {
        "path_flows": np.stack([by_name[name].sum(axis=1) for name in SERIES_FLOWS], axis=-1),
        "path_stage_balance": end[..., BALANCE],
        "path_stage_allowance": end[..., ALLOWANCE],
        "path_month_loss": by_name["charged_off"] - by_name["recovered"],
        "path_month_revenue": pnl.revenue(by_name),
        "path_month_profit": pnl.pretax_income(by_name),
        "path_month_allowance": sums["stages"][..., ALLOWANCE].sum(axis=(3, 4)),
        "path_month_balance": balance.sum(axis=-1),
        "path_month_dpd30_balance": balance[..., DPD30:].sum(axis=-1),
        "path_month_dpd90_balance": balance[..., DPD90:].sum(axis=-1),
        "capital_lines": np.stack([year[name] for name in pnl.PNL_FLOWS], axis=-1),
    }


def capital_year(lines: np.ndarray, shares: joint_lending.Shares) -> dict[str, np.ndarray]:
    """The capital year's loss (net charge-offs) and pre-tax income, (path, product) in cents, of the
    book and of the platform (joint_lending), from its flows `lines` (path, product, PNL_FLOWS)."""
    flows = {name: lines[..., j] for j, name in enumerate(pnl.PNL_FLOWS)}
    out = {}
    for view, prefix in zip(joint_lending.VIEWS, ("capital", "platform_capital")):
        x = joint_lending.view(flows, view, shares)
        out[f"{prefix}_loss"] = x["charged_off"] - x["recovered"]
        out[f"{prefix}_profit"] = pnl.pretax_income(x)
    return out


def series_shapes(sc: Scenario) -> dict[str, tuple[int, ...]]:
    """The shape after the path axis of each of `path_series`'s arrays. An orchestrator: the shapes of
    the kernel's outputs (`terms.output_shapes`) and the capital window are the scenario's (its run,
    applicants, scorecard and capital)."""
    zeros = {name: np.zeros((1,) + shape, dtype=np.int64) for name, shape in terms.output_shapes(sc).items()}
    window = tail.capital_window(sc)
    return {name: part.shape[1:] for name, part in path_series(zeros, window).items()}


def build_dataset(loaded: LoadedScenario, sc: Scenario, band_labels: list[str], sums: dict[str, np.ndarray],
                  version: str, series: dict[str, np.ndarray] | None = None) -> xr.Dataset:
    """Assemble one cell's Dataset from integer sums (cents and counts) of the kernel and the host,
    per path; or, in the summary mode, from the kernel's weighted means over paths (a path axis of
    length 1, dropped) and the per-path `series` (`path_series`)."""
    summary = series is not None
    window = tail.capital_window(sc)
    series = path_series(sums, window) if series is None else series
    shares = joint_lending.shares(sc.funding)
    series = {name: part for name, part in series.items() if name != "capital_lines"} \
        | capital_year(series["capital_lines"], shares)
    groups = sums.get("groups")
    groups = ({name: part for name, part in groups.items() if name != "capital_lines"}
              | capital_year(groups["capital_lines"], shares)) if groups else {}
    stocks, flows, funnel, opening = sums["stocks"], sums["flows"], sums["funnel"], sums["opening"]
    n_paths, horizon = stocks.shape[:2]
    coords = {
        "path": np.arange(n_paths),
        "month": np.arange(1, horizon + 1),
        "product": list(PRODUCTS),
        "score_band": band_labels,
        "state": list(STATES),
        "stage": list(STAGES),
        "transfer": list(TRANSFERS),
        "forecast": [WEIGHTED, *provisions.forecast_names(sc.provisions.scenarios)],
        "sensitivity_month": terms.sensitivity_months(sc),
    }
    cube = ("path", "month", "product", "score_band")
    data = {
        "accounts": (cube + ("state",), stocks[..., ACCOUNTS]),
        "balance": (cube + ("state",), stocks[..., BALANCE] / CENTS),
        "rolls": (cube + ("state",), sums["rolls"]),
        "cures": (cube + ("state",), sums["cures"]),
        "borrowers": (("path", "month", "score_band", "state"), sums["borrowers"]),
        "applicants": (("month", "score_band"), sums["applicants"]),
        "approved_applicants": (("month", "score_band"), sums["approved_applicants"]),
        **{name: (("month", "product", "score_band"), funnel[..., j]) for j, name in enumerate(FUNNEL)},
        "opening_accounts": (("product", "score_band", "state"), opening[..., ACCOUNTS]),
        "opening_balance": (("product", "score_band", "state"), opening[..., BALANCE] / CENTS),
    }
    by_name = {name: flows[..., j] for j, name in enumerate(FLOWS)}
    for name, values in by_name.items():
        data[name] = (cube, values / CENTS if name in MONEY_FLOWS else values)
    data["net_revenue"] = (cube, pnl.net_revenue(by_name) / CENTS)   # summed in integer cents
    accounting = pnl.by_name(flows, sums["accounting"])
    for name in ACCOUNTING:
        data[name] = (cube, accounting[name] / CENTS)
    for name in ("credit_loss_expense", "operating_costs", "pretax_income"):
        data[name] = (cube, getattr(pnl, name)(accounting) / CENTS)
    stages = sums["stages"]
    data["stage_accounts"] = (cube + ("stage",), stages[..., ACCOUNTS])
    data["stage_balance"] = (cube + ("stage",), stages[..., BALANCE] / CENTS)
    data["allowance"] = (cube + ("stage",), stages[..., ALLOWANCE] / CENTS)
    data["allowance_overlay"] = (cube + ("stage",), stages[..., OVERLAY] / CENTS)
    data["accrued_interest"] = (cube + ("stage",), stages[..., ACCRUED] / CENTS)
    # The existing book enters with no interest accrued (docs/model.md section 6).
    data["opening_accrued_interest"] = (("product", "score_band"), np.zeros(opening.shape[:2]))
    data["opening_allowance"] = (("path", "product", "score_band", "stage"), sums["opening_allowance"] / CENTS)
    data["allowance_by_scenario"] = (("path", "sensitivity_month", "product", "stage", "forecast"),
                                     sums["forecast_allowance"] / (CENTS * FORECAST_UNIT))
    data["stage_transfers"] = (cube + ("transfer",),
                               np.stack([sums["transfers"][..., a, b] for a, b in TRANSFER_STAGES], axis=-1))
    cap, cap_aprs = sums["cap_counts"], sums["cap_aprs"]
    approved = funnel[..., FUNNEL.index("approvals")].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        data |= {
            "cap_applications": (("product", "score_band"), cap[..., 0]),
            "cap_bound": (("product", "score_band"), cap[..., 1]),
            "priced_at_cap": (("product", "score_band"), cap[..., 2]),
            "rejected_at_cap": (("product", "score_band"), cap[..., 3]),
            "approvals_without_cap": (("product", "score_band"), cap[..., 4]),
            "takeups_without_cap": (("product", "score_band"), cap[..., 5]),
            "apr_before_cap": (("product", "score_band"), np.where(cap[..., 0] > 0, cap_aprs[..., 0] / cap[..., 0], np.nan)),
            "apr_after_cap": (("product", "score_band"), np.where(approved > 0, cap_aprs[..., 1] / approved, np.nan)),
            "revenue_given_up": (("product", "score_band"), sums["revenue_given_up"]),
        }
    data["group_funnel"] = (("population_group", "group_funnel_count"), sums["group_funnel"])
    coords["group_funnel_count"] = list(GROUP_FUNNEL)
    data["pd_12m"] = (("product", "score_band"), sums["pool_pd"])
    data["pd_12m_seasoned"] = (("product", "score_band"), sums["seasoned_pd"])
    data["fraud_seasoned"] = (("product", "score_band"), sums["seasoned_fraud"])
    data["mean_apr"] = (("product", "score_band"), sums["mean_apr"])
    data["accounts_seasoned_12m"] = (("path", "product", "score_band"), sums["seasoned"][..., ACCOUNTS])
    data["bads_12m"] = (("path", "product", "score_band"), sums["seasoned"][..., BADS])
    # The capital year: the book as it stands at the end of month m, its loss and profit in the year after.
    month, first, last = window
    data["line_limit"] = (("path", "month", "score_band"), sums["line_limits"].sum(axis=2) / CENTS)
    # IRB capital of the same book on the same date.
    exposure = capital.irb_exposure(stocks, opening, sums["line_limits"], month,
                                    terms.of_kind(sc.products, "loan_equivalent_factor", LINE), sums["path_weight"])
    revolving = (PRODUCT_KIND == LINE)[:, None]
    data["irb_exposure"] = (("product", "score_band"), exposure)
    pd = capital.irb_pd(stocks, opening, month, sums["state_pd"], sums["pool_pd"], sums["path_weight"])
    data["irb_pd"] = (("product", "score_band"), pd)
    data["irb_capital"] = (("product", "score_band"),
                           risk.irb_capital(pd, exposure, risk.loss_given_default(sc.behaviour), revolving, sc.capital))
    vintages = sums["vintage_stocks"]
    vcube = ("path", "vintage", "months_on_book", "product")
    vbalance = vintages[..., BALANCE] / CENTS
    vbalance[..., :VINTAGE_STATES] = np.nan  # current and M1 are not kept by vintage
    data["vintage_balance"] = (vcube + ("state",), vbalance)
    vflows = sums["vintage_flows"]
    data["vintage_original"] = (("vintage", "product"), vflows[0, :, 0, :, V_ORIGINAL] / CENTS)
    data["vintage_charged_off"] = (vcube, vflows[..., V_CHARGED_OFF] / CENTS)
    data["vintage_recovered"] = (vcube, vflows[..., V_RECOVERED] / CENTS)
    data["vintage_accrued_written_off"] = (vcube, vflows[..., V_ACCRUED_WRITTEN_OFF] / CENTS)
    earnings = vflows[..., V_CREDIT_INCOME] + vflows[..., V_MERCHANT_INCOME] - vflows[..., V_FUNDING]
    data["vintage_earnings"] = (vcube, earnings / CENTS)
    data["vintage_costs"] = (vcube, vflows[..., V_COSTS] / CENTS)
    data["vintage_allowance"] = (vcube, vflows[..., V_ALLOWANCE] / CENTS)
    data["platform_share"] = (("product",), shares.funded)
    data["platform_loss_share"] = (("product",), shares.losses)
    data["service_fee_share"] = (("product",), shares.service_fee)
    coords["vintage"] = np.arange(1, vintages.shape[1] + 1)
    coords["months_on_book"] = np.arange(vintages.shape[2])
    ds = xr.Dataset(data, coords=coords)
    if summary:         # the means over paths: no path dimension
        ds = ds.isel(path=0, drop=True)
    n_series = next(iter(series.values())).shape[0]
    for name, values in series.items():
        ds[name] = xr.DataArray(values / CENTS, dims=("path",) + series_dims(name), coords={"path": np.arange(n_series)})
    for name, values in groups.items():
        ds[f"group_{name}"] = xr.DataArray(values / CENTS, dims=("path", "population_group") + series_dims(name),
                                           coords={"path": np.arange(n_series)})
    ds.coords["series_flow"] = list(SERIES_FLOWS)
    ds["vintage"].attrs["description"] = "origination month of the accounts"
    ds["months_on_book"].attrs["description"] = "months since origination (0: the origination month)"
    ds["score_band"].attrs["cut_points"] = np.asarray(sc.scorecard.bands)
    ds.attrs.update({
        "title": f"Monte Carlo run '{sc.run.name}' of a consumer-credit portfolio",
        "simulator_version": version,
        "seed": sc.run.seed,
        "scenario_file": str(loaded.path),
        "scenario_text": loaded.text,
        "scenario_overrides": json.dumps(loaded.overrides),
        "scenario_resolved": json.dumps(loaded.resolved(), sort_keys=True),
        "currency": "CNY",
        "results_mode": "summary" if summary else "full",
        "income_basis": sc.run.income_basis,
        "capital_month": month,
        "capital_window": f"months {first} .. {last}",
        **{f"convention_{k}": v for k, v in CONVENTIONS.items()},
    })
    return ds


def combine_cells(loaded: LoadedScenario, cells: list[xr.Dataset], path_weight: np.ndarray) -> xr.Dataset:
    """One Dataset with a dimension per swept key, plus per-path totals, the loss distribution,
    capital and the P&L (computed for every cell); `path_weight`: the weights of the run's paths (a
    cell's `terms.factors` weight, which the cells of a sweep share)."""
    if loaded.dims:
        names = [name for name, _, _ in loaded.dims]
        index = pd.MultiIndex.from_product([values for _, _, values in loaded.dims], names=names)
        ds = xr.concat(cells, dim="cell", data_vars="all", coords="minimal", compat="override")
        ds = ds.assign_coords(xr.Coordinates.from_pandas_multiindex(index, "cell")).unstack("cell")
        ds = ds.sel({name: values for name, _, values in loaded.dims})
        for name, key, _ in loaded.dims:
            ds[name].attrs["scenario_key"] = key
    else:
        ds = cells[0]
    sc = loaded.scenario
    ds["path_weight"] = ("path", path_weight)
    for name in ("revenue", "loss", "profit"):
        ds[f"path_{name}"] = ds[f"path_month_{name}"].sum("month")
    _, first, last = tail.capital_window(sc)
    views = []
    for view, prefix, share in (("book", "capital", 1.0), ("platform", "platform_capital", ds["platform_loss_share"])):
        views.append(risk.loss_metrics((ds["path_loss"] * share).sum("product"), ds[f"{prefix}_loss"].sum("product"),
                                       ds[f"{prefix}_profit"].sum("product"), last - first + 1,
                                       (ds["irb_capital"] * share).sum(("product", "score_band")),
                                       sc.capital.quantiles, sc.capital.economic_capital_level, ds["path_weight"]))
    ds = ds.merge(xr.concat(views, dim=xr.DataArray(list(joint_lending.VIEWS), dims="view")))
    ds["view"].attrs["description"] = ("book: the whole book as one lender; platform: the platform's share of a "
                                       "jointly funded book, with the partners' service fee")
    ds["pnl"], ds["pnl_yield"] = pnl.profit_and_loss(ds)
    for name, var in ds.data_vars.items():
        var.attrs.setdefault("description", DESCRIPTIONS[name])
        var.attrs["long_name"] = name.replace("_", " ")
        var.attrs.update(cf_units(display_units(name, var)))
    for name, (long_name, units) in COORDINATES.items():
        if name in ds.coords:
            ds[name].attrs.update(long_name=long_name, units=units)
    ds.attrs["Conventions"] = "CF-1.10"
    ds.attrs["sweep"] = json.dumps([[name, key, values] for name, key, values in loaded.dims])
    if any(key == "run.income_basis" for _, key, _ in loaded.dims):
        ds.attrs["income_basis"] = "swept"          # each cell's is its coordinate
    return ds

