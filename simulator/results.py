"""The results Dataset: names, units and conventions, NetCDF I/O, and the helpers every reader of
results shares (revenue, sweep cells, delinquency ratios). Variables: docs/results.md."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from . import files, pnl, risk, tail, terms
from .codes import (ACCOUNTING, ACCOUNTS, ALLOWANCE, BADS, BALANCE, DPD30, DPD90, FLOWS, FUNNEL, LINE, LINE_PRODUCT,
                    MONEY_FLOWS, PRODUCTS, PRODUCT_KIND, STAGES, STATES, VINTAGE_STATES, V_ALLOWANCE, V_CHARGED_OFF,
                    V_COSTS, V_EARNINGS, V_ORIGINAL, V_RECOVERED)
from .config import LoadedScenario, Scenario

CENTS = 100
# Moves between impairment stages in a month, (from, to) stage codes, counted by the kernel where a
# change of state changes the stage (under the 30+ / 90+ rule a roll from M1 or M3, a cure from
# M2 .. M6; no other move occurs under it).
TRANSFER_STAGES = ((0, 1), (1, 2), (1, 0), (2, 0))
TRANSFERS = tuple(f"{STAGES[a]}_to_{b + 1}" for a, b in TRANSFER_STAGES)
DESCRIPTIONS = {
    "accounts": "open accounts by state at the end of the month",
    "balance": "principal receivable by state at the end of the month (lines: spend not yet billed, billed "
               "and not yet due, unpaid statements, bill-instalment plans)",
    "originated": "principal lent to new accounts",
    "drawn": "new revolving spend (principal)",
    "repaid": "scheduled and arrears principal repaid",
    "prepaid": "principal repaid early in full",
    "charged_off": "principal written off (from M6, 180+ days past due)",
    "recovered": "recoveries on charged-off principal, net of collection cost",
    "written_off": "interest, fees and penalty owed and never paid, written off at charge-off (never income)",
    "merchant_discount": "merchant discount on instalment purchases, at origination",
    "borrowers": "borrowers with an open account, by the worst state of their open accounts",
    "interest_income": "contract and revolving interest received (cash basis: when paid)",
    "fee_income": "fees received (instalment fees, bill-instalment fees, fixed late fees)",
    "penalty_income": "penalty interest and per-day late fees received on overdue amounts",
    "funding_cost": "cost of funds on the principal outstanding at the start of the month",
    "net_revenue": "interest + fees + penalty + merchant discount - funding cost - charged off + recovered (before "
                   "provisions and operating costs)",
    "acquisition_cost": "operating cost: costs.acquisition per account booked",
    "servicing_cost": "operating cost: costs.servicing per account open at the end of the month",
    "collection_cost": "operating cost: costs.collection per account delinquent (M1 .. M6) at the end of the month",
    "allowance_originated": "ECL allowance of the accounts originated in the month, at its end",
    "allowance_remeasured": "change in the ECL allowance of accounts open at both month ends (stage transfers, "
                            "amortisation, factor)",
    "allowance_released": "ECL allowance at the previous month end of accounts closed in the month (repaid, matured, "
                          "line closed): released",
    "allowance_used": "ECL allowance at the previous month end of accounts charged off in the month: used against the "
                      "write-off",
    "credit_loss_expense": "allowance at the month end - at the previous one + charged off - recovered (= originated + "
                           "remeasured - released - used + charged off - recovered)",
    "operating_costs": "acquisition + servicing + collection costs",
    "pretax_income": "interest + fees + penalty + merchant discount - funding cost - credit-loss expense - operating "
                     "costs",
    "stage_accounts": "open accounts by impairment stage at the end of the month (stage 1: current and M1; stage 2: "
                      "M2, M3; stage 3: M4 .. M6)",
    "stage_balance": "principal receivable by impairment stage at the end of the month",
    "allowance": "expected-credit-loss allowance by impairment stage at the end of the month: 12-month ECL in stage "
                 "1, lifetime ECL in stages 2 and 3 (provisions.basis; a line's exposure is its balance as its "
                 "payer type pays it down and draws on its limit)",
    "opening_allowance": "ECL allowance of the existing book at the start of month 1, per path (with month 1's factor)",
    "stage_transfers": "accounts moving between impairment stages in the month: rolls from M1 (1 to 2) and M3 (2 to 3), "
                       "cures from M2, M3 (2 to 1) and from M4 .. M6 (3 to 1)",
    "vintage_costs": "operating costs of the vintage in the month on book",
    "vintage_allowance": "ECL allowance of the vintage's open accounts at the end of the month on book",
    "path_month_allowance": "ECL allowance at the end of the month, per path",
    "originated_accounts": "accounts originated",
    "prepaid_accounts": "accounts repaid early in full",
    "matured_accounts": "accounts closed by their last scheduled payment",
    "closed_accounts": "revolving lines closed: stopped spending (attrition) and nothing owed",
    "charged_off_accounts": "accounts charged off",
    "rolls": "accounts that missed a payment due, by the state they were in",
    "cures": "accounts that paid all arrears and returned to current, by the state they were in",
    "applicants": "applicants (people)",
    "applications": "applications for the product (an applicant may ask for several products)",
    "approvals": "applications approved (an applicant approved for several products counts once for each)",
    "approved_applicants": "applicants approved for at least one product (people)",
    "takeups": "approved applicants who took the offer (accounts originated)",
    "opening_accounts": "accounts of the existing book at the start of month 1",
    "opening_balance": "principal of the existing book at the start of month 1",
    "mean_apr": "mean all-in APR (IRR method, fees included) of the accounts taken",
    "cap_applications": "applications priced: the product was asked for and the applicant passed the rules",
    "cap_bound": "applications priced whose risk price (all-in APR before the cap) was above policy.apr_cap",
    "priced_at_cap": "applications above the cap that were approved at the cap (on_cap = cap)",
    "rejected_at_cap": "applications above the cap that were rejected for it (on_cap = reject)",
    "apr_before_cap": "mean risk price (all-in APR before the cap) of the applications priced",
    "apr_after_cap": "mean all-in APR offered to the applications approved, after the cap",
    "revenue_given_up": "contract interest (cash loans) and fees (purchases) that the accounts taken at the cap "
                        "would have paid on schedule at their risk price, and do not: a first-order figure, before "
                        "default and prepayment; not estimated for lines (NaN)",
    "accounts_seasoned_12m": "accounts originated with 12 months on book inside the horizon",
    "bads_12m": "of accounts_seasoned_12m, those that reached 90+ within 12 months on book",
    "pd_12m": "exposure-weighted PD of the pool's accounts at origination, first-party fraud at PD 1 (the IRB pool PD)",
    "pd_12m_seasoned": "mean PD by account (first-party fraud at 1) of the accounts originated with 12 months on "
                       "book inside the horizon: what bads_12m / accounts_seasoned_12m estimates",
    "fraud_seasoned": "share of the accounts originated with 12 months on book inside the horizon that are "
                      "first-party fraud",
    "irb_capital": "Basel IRB capital of the pool: K(PD, LGD, R) x irb_exposure, on the capital month",
    "irb_exposure": "the pool's exposure at the end of the capital month, mean over paths: its performing balance "
                    "(current .. M3; 90+ is in default) and, for lines, capital.line_ccf x their undrawn limit",
    "line_limit": "limits of open lines current .. M3 at the end of the month",
    "capital_loss": "net charge-offs (charged off - recovered) in the capital year of the book as it stands at the "
                    "end of the capital month (accounts originated later left out), per path",
    "capital_profit": "pre-tax income in the capital year of the same book, per path (its credit-loss expense: its "
                      "allowance at the window's end - at the capital month + its net charge-offs)",
    "path_month_loss": "net charge-offs (charged off - recovered) in the month, per path",
    "path_month_revenue": "interest, fees, penalty and merchant discount in the month, per path",
    "path_month_profit": "pre-tax income in the month, per path",
    "path_month_balance": "principal receivable at the end of the month, per path",
    "path_month_dpd30_balance": "principal 30+ days past due (M2 and worse) at the end of the month, per path",
    "path_month_dpd90_balance": "principal 90+ days past due (M4 and worse) at the end of the month, per path",
    "path_revenue": "interest, fees, penalty and merchant discount over the horizon, per path",
    "path_loss": "net charge-offs (charged off - recovered) over the horizon, per path",
    "path_profit": "pre-tax income over the horizon, per path",
    "path_weight": "likelihood ratio of the path's factor draws under importance sampling (capital.importance_quantile;"
                   " 1 without): every statistic across paths weights the paths by it",
    "expected_loss": "mean over paths (weighted) of the portfolio's net charge-offs over the horizon",
    "expected_loss_se": "Monte Carlo standard error of expected_loss",
    "capital_expected_loss": "mean over paths (weighted) of capital_loss, the capital year's loss",
    "capital_expected_loss_se": "Monte Carlo standard error of capital_expected_loss",
    "value_at_risk": "quantile across paths of capital_loss, the capital year's loss: the first sorted path loss "
                     "whose losses above carry an estimated probability of at most 1 - q (with equal weights the "
                     "ceil(n q)-th smallest)",
    "value_at_risk_se": "Monte Carlo standard error of value_at_risk (bootstrap over paths, with their weights)",
    "expected_shortfall": "mean loss (weighted) of the paths at or beyond value_at_risk",
    "expected_shortfall_se": "Monte Carlo standard error of expected_shortfall (bootstrap over paths)",
    "tail_paths": "paths at or beyond value_at_risk: with fewer than 10 the figures are a lower bound (VaR) or "
                  "no estimate (ES), and the headline says so",
    "economic_capital_tail_paths": "paths at or beyond the VaR of economic capital (RAROC is NaN below 10)",
    "unexpected_loss": "value_at_risk - capital_expected_loss",
    "economic_capital": "value at risk of the capital year's loss at capital.economic_capital_level - "
                        "capital_expected_loss",
    "irb_capital_total": "Basel IRB capital of the whole book (sum of irb_capital)",
    "raroc": "risk-adjusted return on capital: the capital year's mean pre-tax income (capital_profit, a year) / "
             "economic capital (NaN when fewer than 10 paths lie at or beyond the economic-capital VaR)",
    "pnl": "P&L over the horizon, mean over paths, in yuan",
    "pnl_yield": "the P&L over the horizon, a year, as fractions of the average receivables",
    "vintage_balance": "outstanding principal of the vintage by state (M2 .. M6; current and M1 not kept: NaN), "
                       "at the end of each month on book",
    "vintage_original": "the vintage's original amount: principal of loans and purchases, opening limit of lines",
    "vintage_charged_off": "principal of the vintage charged off in the month on book",
    "vintage_recovered": "recoveries on the vintage's charge-offs in the month on book",
    "vintage_earnings": "interest, fees, penalty and merchant discount less funding cost of the vintage in the month "
                        "on book",
}
COUNT_UNITS = {"borrowers": "borrowers", "applicants": "applicants", "approved_applicants": "applicants",
               "applications": "applications", "cap_applications": "applications", "cap_bound": "applications",
               "priced_at_cap": "applications", "rejected_at_cap": "applications", "tail_paths": "paths",
               "economic_capital_tail_paths": "paths"}
FRACTIONS = {"pd_12m", "pd_12m_seasoned", "fraud_seasoned", "path_weight"}
ANNUAL_FRACTIONS = {"raroc", "mean_apr", "pnl_yield", "apr_before_cap", "apr_after_cap"}
COORDINATES = {  # name: (long_name, UDUNITS units)
    "path": ("Monte Carlo path", "1"),
    "month": ("month of the run, 1 .. H", "1"),
    "vintage": ("origination month of the vintage", "1"),
    "months_on_book": ("months since origination", "1"),
    "quantile": ("quantile level of the loss distribution", "1"),
}


def display_units(name: str, var: xr.DataArray) -> str:
    """A variable's units as a reader says them: yuan, a count (accounts, borrowers, ...), a fraction."""
    if name in FRACTIONS:
        return "fraction"
    if name in ANNUAL_FRACTIONS:
        return "fraction a year"
    return "yuan" if var.dtype.kind == "f" else COUNT_UNITS.get(name, "accounts")


def cf_units(display: str) -> dict[str, str]:
    """CF attributes for units said as `display`: UDUNITS `units` ("1" for counts and fractions,
    "year-1" a year), the currency of money, what a count counts, and `display_units`."""
    attrs = {"display_units": display}
    if display == "yuan":
        return attrs | {"units": "1", "currency": "CNY"}
    if display == "fraction":
        return attrs | {"units": "1"}
    if display == "fraction a year":
        return attrs | {"units": "year-1"}
    return attrs | {"units": "1", "count_of": display}
CONVENTIONS = {
    "money": "yuan (CNY); amounts are sums of integer cents; repaid and prepaid are principal only",
    "month": "month t = 1 .. H of the run; balances and accounts at the end of the month",
    "states": "current = M0; Mk = k consecutive missed payments (M1 1-30 days past due ... M6 151-180); "
              "30+ = M2 and worse, 90+ = M4 and worse; a miss in M6 is charged off",
    "correlation": "asset correlation R in the Basel sense: h(z) = Phi((Phi^-1(h) - sqrt(R) z) / sqrt(1 - R))",
    "score_scaling": "factor = pdo / ln 2; offset = base_score - factor ln(base_odds); "
                     "score = offset + factor ln((1 - pd) / pd), odds good:bad",
    "day_count": "APR = daily rate x days_per_year (cash loan, revolving line); monthly rate = APR / 12; "
                 "penalty a month = daily penalty rate x days_per_year / 12, on overdue principal only",
    "income": "cash basis: interest, fees and penalty counted when paid; what is owed and unpaid at charge-off "
              "is written_off, never income; charged_off is principal only",
    "borrower_dependence": "a borrower's accounts share a monthly draw b: miss if u < Phi((Phi^-1(h) - sqrt(R) z "
                           "- sqrt(R_b) b) / sqrt(1 - R - R_b)), R_b = factor.borrower_correlation",
    "principal_identity": "sum(balance)_t = sum(balance)_(t-1) + originated + drawn - repaid - prepaid - charged_off",
}


def path_series(sums: dict[str, np.ndarray], window: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """What the tail needs of each path, from the kernel's integer sums with a leading path axis (a
    task's, or a run's): monthly totals by product in cents (loss, revenue, pre-tax income, allowance,
    balance, 30+ and 90+ balance) and the loss and pre-tax income by product of the capital year
    (`window`, as tail.capital_window gives it). Linear in the sums, so tasks add."""
    by_name = pnl.by_name(sums["flows"].sum(axis=3), sums["accounting"].sum(axis=3))   # (path, month, product)
    balance = sums["stocks"][..., BALANCE].sum(axis=3)      # (path, month, product, state)
    month, first, last = window
    loss, profit = pnl.book_year(sums["flows"], sums["accounting"], sums["vintage_flows"], month, first, last)
    return {
        "path_month_loss": by_name["charged_off"] - by_name["recovered"],
        "path_month_revenue": pnl.revenue(by_name),
        "path_month_profit": pnl.pretax_income(by_name),
        "path_month_allowance": sums["stages"][..., ALLOWANCE].sum(axis=(3, 4)),
        "path_month_balance": balance.sum(axis=-1),
        "path_month_dpd30_balance": balance[..., DPD30:].sum(axis=-1),
        "path_month_dpd90_balance": balance[..., DPD90:].sum(axis=-1),
        "capital_loss": loss,
        "capital_profit": profit,
    }


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
    data["opening_allowance"] = (("path", "product", "score_band", "stage"), sums["opening_allowance"] / CENTS)
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
            "apr_before_cap": (("product", "score_band"), np.where(cap[..., 0] > 0, cap_aprs[..., 0] / cap[..., 0], np.nan)),
            "apr_after_cap": (("product", "score_band"), np.where(approved > 0, cap_aprs[..., 1] / approved, np.nan)),
            "revenue_given_up": (("product", "score_band"), sums["revenue_given_up"]),
        }
    data["pd_12m"] = (("product", "score_band"), sums["pool_pd"])
    data["pd_12m_seasoned"] = (("product", "score_band"), sums["seasoned_pd"])
    data["fraud_seasoned"] = (("product", "score_band"), sums["seasoned_fraud"])
    data["mean_apr"] = (("product", "score_band"), sums["mean_apr"])
    data["accounts_seasoned_12m"] = (("path", "product", "score_band"), sums["seasoned"][..., ACCOUNTS])
    data["bads_12m"] = (("path", "product", "score_band"), sums["seasoned"][..., BADS])
    # The capital year: the book as it stands at the end of month m, its loss and profit in the year after.
    month, first, last = window
    data["line_limit"] = (("path", "month", "score_band"), sums["line_limits"] / CENTS)
    # IRB capital of the same book on the same date: the performing balance (90+ is in default) at
    # month m, and for lines line_ccf of their undrawn limit; mean over paths.
    if month == 0:
        performing = np.broadcast_to(opening[None, :, :, :DPD90, BALANCE].sum(axis=-1), (n_paths,) + opening.shape[:2])
        undrawn = np.zeros((n_paths,) + opening.shape[1:2])
    else:
        performing = stocks[:, month - 1, :, :, :DPD90, BALANCE].sum(axis=-1)
        undrawn = np.maximum(0, sums["line_limits"][:, month - 1] - performing[:, LINE_PRODUCT])
    ead = performing.astype(np.float64)
    ead[:, LINE_PRODUCT] += sc.capital.line_ccf * undrawn
    weights = sums["path_weight"]
    exposure = (ead.mean(axis=0) if np.all(weights == 1.0) else
                (weights[:, None, None] * ead).sum(axis=0) / weights.sum()) / CENTS
    revolving = (PRODUCT_KIND == LINE)[:, None]
    data["irb_exposure"] = (("product", "score_band"), exposure)
    data["irb_capital"] = (("product", "score_band"),
                           risk.irb_capital(sums["pool_pd"], exposure, risk.loss_given_default(sc.behaviour),
                                            revolving, sc.capital))
    vintages = sums["vintage_stocks"]
    vcube = ("path", "vintage", "months_on_book", "product")
    vbalance = vintages[..., BALANCE] / CENTS
    vbalance[..., :VINTAGE_STATES] = np.nan  # current and M1 are not kept by vintage
    data["vintage_balance"] = (vcube + ("state",), vbalance)
    vflows = sums["vintage_flows"]
    data["vintage_original"] = (("vintage", "product"), vflows[0, :, 0, :, V_ORIGINAL] / CENTS)
    data["vintage_charged_off"] = (vcube, vflows[..., V_CHARGED_OFF] / CENTS)
    data["vintage_recovered"] = (vcube, vflows[..., V_RECOVERED] / CENTS)
    data["vintage_earnings"] = (vcube, vflows[..., V_EARNINGS] / CENTS)
    data["vintage_costs"] = (vcube, vflows[..., V_COSTS] / CENTS)
    data["vintage_allowance"] = (vcube, vflows[..., V_ALLOWANCE] / CENTS)
    coords["vintage"] = np.arange(1, vintages.shape[1] + 1)
    coords["months_on_book"] = np.arange(vintages.shape[2])
    ds = xr.Dataset(data, coords=coords)
    if summary:         # the means over paths: no path dimension
        ds = ds.isel(path=0, drop=True)
    n_series = next(iter(series.values())).shape[0]
    for name, values in series.items():
        dims = ("path", "month", "product") if name.startswith("path_month") else ("path", "product")
        ds[name] = xr.DataArray(values / CENTS, dims=dims, coords={"path": np.arange(n_series)})
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
    metrics = risk.loss_metrics(ds["path_loss"].sum("product"), ds["capital_loss"].sum("product"),
                                ds["capital_profit"].sum("product"), last - first + 1,
                                ds["irb_capital"].sum(("product", "score_band")),
                                sc.capital.quantiles, sc.capital.economic_capital_level, ds["path_weight"])
    ds = ds.merge(metrics)
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
    return ds


CHUNK_BYTES = 1 << 27   # an array is stored as one compressed chunk, or split along its first axis into 128 MiB ones


def _chunks(var: xr.DataArray) -> tuple[int, ...]:
    """The HDF5 chunk of an array: all of it, up to CHUNK_BYTES. Fewer, larger chunks than h5py's
    guess compress faster and smaller, and a results file is always read whole."""
    shape = tuple(max(1, n) for n in var.shape)
    row = var.dtype.itemsize * int(np.prod(shape[1:]))
    return (max(1, min(shape[0], CHUNK_BYTES // row)),) + shape[1:]


def write(ds: xr.Dataset, path: Path) -> None:
    """Write a results file atomically (never a half-written result), its arrays compressed (lossless
    zlib: about a quarter of the size, read back identical)."""
    encoding = {name: {"zlib": True, "complevel": 4, "chunksizes": _chunks(var)}
                for name, var in ds.data_vars.items() if var.ndim > 0}
    files.write_atomic(Path(path), lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding))


def read(path: Path) -> xr.Dataset:
    """Open a results file (loaded into memory, file closed)."""
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def swept(ds: xr.Dataset) -> list[str]:
    """The names of a sweep's swept keys (none for a single run), whether or not `ds` still has them as
    dimensions (a selection of one cell keeps them as scalar coordinates)."""
    return [name for name, _, _ in json.loads(ds.attrs.get("sweep", "[]"))]


def sweep_names(ds: xr.Dataset) -> list[str]:
    """The swept keys that are dimensions of `ds`."""
    return [name for name in swept(ds) if name in ds.dims]


def steady_months(ds: xr.Dataset) -> slice:
    """Months 13 .. H when the horizon allows (the book has seasoned), else all months."""
    horizon = ds.sizes["month"]
    return slice(13 if horizon > 12 else 1, horizon)


def cells(ds: xr.Dataset) -> list[tuple[str, dict[str, int]]]:
    """(label, position of the cell along each swept dimension) for each cell of a sweep, in order;
    one ("", {}) for a single run. The label reads like "apr_cap=0.24, macro=severe"."""
    names = sweep_names(ds)
    out = []
    for index in itertools.product(*(range(ds.sizes[n]) for n in names)):
        label = ", ".join(f"{n}={np.asarray(ds[n].values[i]).item()}" for n, i in zip(names, index))
        out.append((label, dict(zip(names, index))))
    return out


def run_name(ds: xr.Dataset) -> str:
    """The run's name (run.name of the resolved scenario)."""
    try:
        return json.loads(ds.attrs["scenario_resolved"])["run"]["name"]
    except (KeyError, TypeError, ValueError):
        return str(ds.attrs.get("run_name", "run"))


def delinquency_ratio(ds: xr.Dataset, worst_from: str) -> xr.DataArray:
    """Share of balances in `worst_from` and worse (M2 for 30+, M4 for 90+), by path and month."""
    bal = ds["balance"].sum(("product", "score_band"))
    worse = bal.sel(state=list(STATES[STATES.index(worst_from):])).sum("state")
    total = bal.sum("state")
    return (worse / total.where(total > 0)).fillna(0.0)
