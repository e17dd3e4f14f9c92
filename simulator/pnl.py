"""Profit and loss: revenue and net revenue (defined here once), the capital year's loss and profit of
a book, and the P&L over the horizon per product and in total (means over paths)."""
from __future__ import annotations

import xarray as xr

import numpy as np

from .codes import FLOWS, PRODUCTS, REVENUE, V_CHARGED_OFF, V_EARNINGS, V_RECOVERED
from .tail import path_mean


def revenue(x):
    """Interest + fees + penalty + merchant discount of `x` (a Dataset or a mapping of flows)."""
    return sum((x[name] for name in REVENUE[1:]), x[REVENUE[0]])


def net_revenue(x):
    """Revenue - funding cost - charged off + recovered of `x` (a Dataset or a mapping of flows)."""
    return revenue(x) - x["funding_cost"] - x["charged_off"] + x["recovered"]


def book_year(flows: np.ndarray, vintage_flows: np.ndarray, month: int, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    """(loss, profit) in cents, (path, product): the net charge-offs and the net revenue in months
    first .. last of the book as it stands at the end of `month` (the accounts open then: the whole
    book's flows less those of the vintages originated after `month`), from the kernel's integer
    sums flows (path, month, product, band, FLOWS) and vintage_flows (path, vintage, months on book,
    product, VINTAGE_FLOWS)."""
    months = slice(first - 1, last)
    window = flows[:, months].sum(axis=(1, 3))
    by_name = {name: window[..., j] for j, name in enumerate(FLOWS)}
    loss = by_name["charged_off"] - by_name["recovered"]
    profit = net_revenue(by_name)
    for v in range(month, vintage_flows.shape[1]):       # vintage v + 1 > month: new business
        start = v + 1
        mob = slice(max(0, first - start), max(0, last - start + 1))
        new = vintage_flows[:, v, mob].sum(axis=1)
        new_loss = new[..., V_CHARGED_OFF] - new[..., V_RECOVERED]
        loss = loss - new_loss
        profit = profit - (new[..., V_EARNINGS] - new_loss)
    return loss, profit


LINES = ("interest_income", "fee_income", "penalty_income", "merchant_discount", "funding_cost",
         "net_charge_offs", "net_revenue", "average_balance")           # yuan
YIELD_LINES = ("risk_adjusted_yield", "return_on_assets")               # fractions a year


def profit_and_loss(ds: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    """The P&L over the horizon by product and total, mean over paths: the lines in yuan (LINES), and
    the yields as fractions a year of the average balance (YIELD_LINES)."""
    horizon = ds.sizes["month"]
    weights = ds.get("path_weight")
    sums = path_mean(ds[list(REVENUE) + ["funding_cost", "charged_off", "recovered", "net_revenue"]].sum(
        ("month", "score_band")), weights)
    balance = path_mean(ds["balance"].sum(("score_band", "state")).mean("month"), weights)
    total = sums.sum("product").expand_dims(product=["total"])
    sums = xr.concat([sums, total], dim="product")
    balance = xr.concat([balance, balance.sum("product").expand_dims(product=["total"])], dim="product")
    net_charge_offs = sums["charged_off"] - sums["recovered"]
    annual = 12.0 / horizon / balance.where(balance > 0)
    table = xr.concat([
        sums["interest_income"], sums["fee_income"], sums["penalty_income"], sums["merchant_discount"],
        sums["funding_cost"], net_charge_offs, sums["net_revenue"], balance,
    ], dim=xr.DataArray(list(LINES), dims="pnl_line"))
    rates = xr.concat([(revenue(sums) - net_charge_offs) * annual, sums["net_revenue"] * annual],
                      dim=xr.DataArray(list(YIELD_LINES), dims="pnl_yield_line"))
    products = list(PRODUCTS) + ["total"]
    table = table.rename(product="pnl_product").assign_coords(pnl_product=products)
    rates = rates.rename(product="pnl_product").assign_coords(pnl_product=products)
    table.attrs.update(description="P&L over the horizon, mean over paths, in yuan (average_balance: over months and "
                                   "paths)")
    rates.attrs.update(description="yields of the P&L over the horizon, a year, of the average balance: risk-adjusted "
                                   "yield = (revenue - net charge-offs) / average balance; return on assets = net "
                                   "revenue / average balance")
    return table, rates
