"""Profit and loss: revenue, net revenue, the credit-loss expense, operating costs and pre-tax income
(each defined here once), the capital year's loss and profit of a book, and the P&L over the horizon
per product and in total (means over paths)."""
from __future__ import annotations

import xarray as xr

import numpy as np

from ..codes import (ACCOUNTING, COSTS, FLOWS, PRODUCTS, REVENUE, V_ACCRUED_WRITTEN_OFF, V_ALLOWANCE, V_CHARGED_OFF,
                     V_COSTS, V_CREDIT_INCOME, V_FUNDING, V_MERCHANT_INCOME, V_RECOVERED)
from ..model.tail import path_mean
from . import joint_lending
from .joint_lending import SERVICE_FEE, VIEWS


def revenue(x):
    """Interest + interest accrual (effective interest: docs/model.md section 6) + fees + penalty + merchant
    discount + merchant fee (+ the platform's service fee, where `x` has one) of `x` (a Dataset or a
    mapping of flows)."""
    total = sum((x[name] for name in REVENUE[1:]), x[REVENUE[0]])
    return total + x[SERVICE_FEE] if SERVICE_FEE in x else total


def write_offs(x):
    """Charged off - recovered + accrued interest written off: the principal written off net of
    recoveries and the accrued interest receivable written off with it (effective interest), of `x`
    (a Dataset or a mapping of flows)."""
    return x["charged_off"] - x["recovered"] + x["accrued_written_off"]


def net_revenue(x):
    """Revenue - funding cost - charged off + recovered - accrued interest written off of `x` (a
    Dataset or a mapping of flows)."""
    return revenue(x) - x["funding_cost"] - write_offs(x)


def allowance_change(x):
    """The change in the ECL allowance: originated + remeasured - released - used (the kernel's
    movements, codes.ACCOUNTING) = allowance at the month end - at the one before."""
    return x["allowance_originated"] + x["allowance_remeasured"] - x["allowance_released"] - x["allowance_used"]


def credit_loss_expense(x):
    """allowance_t - allowance_(t-1) + charged off - recovered + accrued interest written off: the
    allowance's change (measured on principal) plus the write-offs (`write_offs`), of `x` (a Dataset or
    a mapping of flows)."""
    return allowance_change(x) + write_offs(x)


def operating_costs(x):
    """Acquisition + servicing + collection costs of `x`."""
    return sum((x[name] for name in COSTS[1:]), x[COSTS[0]])


def pretax_income(x):
    """Revenue - funding cost - credit-loss expense - operating costs of `x`."""
    return revenue(x) - x["funding_cost"] - credit_loss_expense(x) - operating_costs(x)


def by_name(flows: np.ndarray, accounting: np.ndarray) -> dict[str, np.ndarray]:
    """The kernel's flows (..., FLOWS) and accounting (..., ACCOUNTING) sums by name."""
    return ({name: flows[..., j] for j, name in enumerate(FLOWS)}
            | {name: accounting[..., j] for j, name in enumerate(ACCOUNTING)})


# The flows the P&L's formulas read (of the kernel's FLOWS and ACCOUNTING).
PNL_FLOWS = REVENUE + ("funding_cost", "charged_off", "accrued_written_off", "recovered") + ACCOUNTING


def book_year(flows: np.ndarray, accounting: np.ndarray, vintage_flows: np.ndarray, month: int, first: int,
              last: int) -> dict[str, np.ndarray]:
    """The flows (PNL_FLOWS, each (path, product), in cents) in months first .. last of the book
    as it stands at the end of `month` (the accounts open then: the whole book's flows less those of
    the vintages originated after `month`), from the kernel's integer sums flows (path, month,
    product, band, FLOWS), accounting (path, month, product, band, ACCOUNTING) and vintage_flows
    (path, vintage, months on book, product, VINTAGE_FLOWS). A later vintage's credit-loss expense in
    the window is its allowance at the window's end plus its net charge-offs (its allowance was 0
    before it was originated). Its credit income (interest and its accrual, fees, penalty) comes off
    interest_income, its merchant income off merchant_discount, its funding off funding_cost and its
    costs off acquisition_cost, each as a whole: the P&L's formulas and the platform's view
    (joint_lending) treat the lines of each of these groups alike."""
    months = slice(first - 1, last)
    window = by_name(flows[:, months].sum(axis=(1, 3)), accounting[:, months].sum(axis=(1, 3)))
    window = {name: window[name] for name in PNL_FLOWS}       # columns of arrays summed here
    for v in range(month, vintage_flows.shape[1]):       # vintage v + 1 > month: new business
        start = v + 1
        if start > last:
            continue
        new = vintage_flows[:, v, max(0, first - start):last - start + 1].sum(axis=1)
        for name, column in (("interest_income", V_CREDIT_INCOME), ("merchant_discount", V_MERCHANT_INCOME),
                             ("funding_cost", V_FUNDING), ("acquisition_cost", V_COSTS),
                             ("charged_off", V_CHARGED_OFF), ("recovered", V_RECOVERED),
                             ("accrued_written_off", V_ACCRUED_WRITTEN_OFF)):
            window[name] -= new[..., column]
        window["allowance_originated"] -= vintage_flows[:, v, last - start, :, V_ALLOWANCE]
    return window


LINES = ("interest_income", "interest_accrual", "fee_income", "penalty_income", "merchant_discount",
         "merchant_fee_income", "service_fee_income", "revenue", "funding_cost", "net_charge_offs",
         "accrued_written_off", "net_revenue", "allowance_change", "credit_loss_expense", "acquisition_cost",
         "servicing_cost", "collection_cost", "operating_costs", "pretax_income", "average_balance",
         "closing_allowance")                                                       # yuan
YIELD_LINES = ("revenue_yield", "funding_cost_rate", "credit_loss_rate", "operating_cost_ratio", "risk_adjusted_yield",
               "return_on_assets")                                                  # fractions a year


def profit_and_loss(ds: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    """The P&L over the horizon by view (joint_lending.VIEWS), product and total, mean over paths:
    the lines in yuan (LINES), and the yields as fractions a year of the whole book's average
    receivables (YIELD_LINES), in both views."""
    horizon = ds.sizes["month"]
    weights = ds.get("path_weight")
    sums = path_mean(ds[list(PNL_FLOWS)].sum(("month", "score_band")), weights)
    sums["balance"] = path_mean(ds["balance"].sum(("score_band", "state")).mean("month"), weights)
    sums["allowance"] = path_mean(ds["allowance"].isel(month=-1).sum(("score_band", "stage")), weights)
    shares = joint_lending.Shares(ds["platform_share"], ds["platform_loss_share"], ds["service_fee_share"])
    tables, yields = [], []
    for view in VIEWS:
        flows = joint_lending.view(dict(sums.data_vars), view, shares)
        flows = {name: xr.concat([x, x.sum("product").expand_dims(product=["total"])], dim="product")
                 for name, x in flows.items()}
        table, rates = lines(flows, horizon)
        tables.append(table)
        yields.append(rates)
    views = xr.DataArray(list(VIEWS), dims="view")
    table, rates = xr.concat(tables, dim=views), xr.concat(yields, dim=views)
    products = list(PRODUCTS) + ["total"]
    table = table.rename(product="pnl_product").assign_coords(pnl_product=products)
    rates = rates.rename(product="pnl_product").assign_coords(pnl_product=products)
    table.attrs.update(description="P&L over the horizon, mean over paths, in yuan, of the whole book (view book) and "
                                   "of the platform's share of a jointly funded book (view platform): revenue - "
                                   "funding cost - credit-loss expense - operating costs = pre-tax income "
                                   "(average_balance: the book's receivables over months and paths; "
                                   "closing_allowance: at the last month's end)")
    rates.attrs.update(description="the P&L over the horizon a year, as fractions of the whole book's average "
                                   "receivables: revenue yield, funding cost, credit-loss expense, operating costs; "
                                   "risk-adjusted yield = (revenue - credit-loss expense); return on assets = pre-tax "
                                   "income")
    return table, rates


def lines(sums: dict, horizon: int) -> tuple[xr.DataArray, xr.DataArray]:
    """The P&L lines (LINES) and yields (YIELD_LINES) of one view's flows `sums` over `horizon` months."""
    lines = {
        **{name: sums[name] for name in REVENUE}, SERVICE_FEE: sums[SERVICE_FEE], "revenue": revenue(sums),
        "funding_cost": sums["funding_cost"], "net_charge_offs": sums["charged_off"] - sums["recovered"],
        "accrued_written_off": sums["accrued_written_off"],
        "net_revenue": net_revenue(sums), "allowance_change": allowance_change(sums),
        "credit_loss_expense": credit_loss_expense(sums), **{name: sums[name] for name in COSTS},
        "operating_costs": operating_costs(sums), "pretax_income": pretax_income(sums),
        "average_balance": sums["balance"], "closing_allowance": sums["allowance"],
    }
    annual = 12.0 / horizon / sums["balance"].where(sums["balance"] > 0)
    rates = {
        "revenue_yield": lines["revenue"], "funding_cost_rate": lines["funding_cost"],
        "credit_loss_rate": lines["credit_loss_expense"], "operating_cost_ratio": lines["operating_costs"],
        "risk_adjusted_yield": lines["revenue"] - lines["credit_loss_expense"], "return_on_assets": lines["pretax_income"],
    }
    table = xr.concat([lines[name] for name in LINES], dim=xr.DataArray(list(LINES), dims="pnl_line"))
    rates = xr.concat([rates[name] * annual for name in YIELD_LINES],
                      dim=xr.DataArray(list(YIELD_LINES), dims="pnl_yield_line"))
    return table, rates
