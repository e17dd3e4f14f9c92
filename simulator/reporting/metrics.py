"""Portfolio metrics: pure functions of a results Dataset (`simulator.results`).

Each function takes the results Dataset of a run or of a sweep and returns xarray objects whose
variables carry `units` and `description` attributes. Any dimension the functions do not name
(the swept keys of a sweep) is kept and broadcast over.

- `vintage_curves(ds)`: cumulative gross charge-off, 30+ and 90+ rates of each vintage by
  months on book, as shares of the vintage's original amount (mean over paths).
- `roll_rates(ds)`: monthly roll rates current->M1 .. M6->charged_off and cure rates from
  M1 .. M6 (all paths, products and bands pooled).
- `delinquency(ds)`: 30+ and 90+ ratios of balances by month and product (plus "total"), and
  the annualised gross charge-off and net loss rates by month (means over paths).
- `yields(ds)`: risk-adjusted yield and net interest margin a year by product (plus "total").
- `pnl_waterfall(ds)`: the portfolio P&L over the horizon as signed steps to pre-tax income.
- `allowance(ds)`: the ECL allowance, receivables and coverage by impairment stage and month.
- `loss_distribution(ds)`: each path's portfolio net charge-offs over the horizon.
- `score_band_calibration(ds)`: predicted pd_12m against the observed rate of reaching 90+, by
  score band.
- `policy_frontier(ds)`: one row per sweep cell: expected loss, net revenue, pre-tax income, RAROC,
  approvals and the 30+ ratio, for plotting a risk / return frontier.
"""
from __future__ import annotations


import numpy as np
import xarray as xr

from ..codes import COSTS, DPD30, DPD90, REVENUE, STATES
from ..results.pnl import PNL_FLOWS, allowance_change, credit_loss_expense, pretax_income, revenue
from ..results.dataset import delinquency_ratio, run_name, steady_months, swept, sweep_names
from ..model.tail import path_mean, path_sum

TRANSITIONS = tuple(f"{a}->{b}" for a, b in zip(STATES, STATES[1:] + ("charged_off",)))
CURE_STATES = STATES[1:]
WATERFALL_STEPS = (REVENUE + ("funding_cost", "net_charge_offs", "accrued_written_off", "allowance_change") + COSTS
                   + ("pretax_income",))
DPD30_STATES = list(STATES[DPD30:])
DPD90_STATES = list(STATES[DPD90:])


def _attrs(da: xr.DataArray, units: str, description: str) -> xr.DataArray:
    da.attrs = {"units": units, "description": description}
    return da


def _with_total(da: xr.DataArray, total: xr.DataArray | None = None) -> xr.DataArray:
    """Append a "total" entry to the product dimension (the sum over products unless given)."""
    if total is None:
        total = da.sum("product")
    products = [str(p) for p in da["product"].values] + ["total"]
    out = xr.concat([da, total.expand_dims(product=["total"])], dim="product")
    return out.assign_coords(product=products)


def _previous_month(stock: xr.DataArray, opening: xr.DataArray) -> xr.DataArray:
    """The stock at the end of month t - 1 for each month t (month 1: the existing book at the start)."""
    first = stock["month"] == stock["month"][0]
    return xr.where(first, opening, stock.shift(month=1)).transpose(*stock.dims)


# ---------------------------------------------------------------------------------------------
def vintage_curves(ds: xr.Dataset) -> xr.Dataset:
    """Vintage curves over (vintage, months_on_book, product, ...): the cumulative gross charge-offs
    and the 30+ and 90+ balances of the vintage at each month on book, as shares of the vintage's
    original amount, mean over paths. NaN where the vintage is not observed (months_on_book >
    H - vintage) or its original amount is 0."""
    horizon = ds.sizes["month"]
    original = ds["vintage_original"]
    denominator = original.where(original > 0)
    observed = ds["months_on_book"] <= horizon - ds["vintage"]
    balance = path_mean(ds["vintage_balance"], ds.get("path_weight"))
    charged = path_mean(ds["vintage_charged_off"].cumsum("months_on_book"), ds.get("path_weight"))
    dims = ("vintage", "months_on_book", "product")

    def curve(x: xr.DataArray) -> xr.DataArray:
        out = (x / denominator).where(observed)
        return out.transpose(*dims, ...)

    note = ("share of the vintage's original amount (principal of loans and purchases, opening limit of "
            "lines), mean over paths; NaN where not observed (months_on_book > H - vintage) or the original "
            "amount is 0")
    return xr.Dataset({
        "cumulative_charge_off_rate": _attrs(curve(charged), "fraction of original amount",
                                             "cumulative principal charged off (gross of recoveries) up to the "
                                             "month on book, " + note),
        "dpd30_rate": _attrs(curve(balance.sel(state=DPD30_STATES).sum("state")), "fraction of original amount",
                             "balance 30+ days past due (M2 and worse) at the end of the month on book, " + note),
        "dpd90_rate": _attrs(curve(balance.sel(state=DPD90_STATES).sum("state")), "fraction of original amount",
                             "balance 90+ days past due (M4 and worse) at the end of the month on book, " + note),
    })


def roll_rates(ds: xr.Dataset) -> xr.Dataset:
    """Monthly roll and cure rates, all paths, products and score bands pooled.

    `roll_rate` (month, transition, ...): accounts that missed a payment in month t from state k
    / accounts in state k at the end of month t - 1 (transitions current->M1 .. M6->charged_off);
    `cure_rate` (month, from_state, ...): accounts that cured from state k in month t / accounts in
    state k at the end of month t - 1 (from_state M1 .. M6). Month 1 uses the existing book at the
    start as denominator (NaN without one); NaN wherever the denominator is 0."""
    pooled = ("product", "score_band")
    weights = ds.get("path_weight")
    if "path" not in ds["accounts"].dims:      # a summary: the counts are means over paths
        n_paths = 1.0
    else:
        n_paths = ds.sizes["path"] if weights is None else weights.sum("path")
    accounts = path_sum(ds["accounts"].sum(pooled), weights)
    opening = ds["opening_accounts"].sum(("product", "score_band")) * n_paths
    previous = _previous_month(accounts, opening)
    denominator = previous.where(previous > 0)
    rolls = path_sum(ds["rolls"].sum(pooled), weights)
    cures = path_sum(ds["cures"].sum(pooled), weights)

    roll = (rolls / denominator).rename(state="transition").assign_coords(transition=list(TRANSITIONS))
    cure = (cures / denominator).sel(state=list(CURE_STATES)).rename(state="from_state")
    cure = cure.assign_coords(from_state=list(CURE_STATES))
    return xr.Dataset({
        "roll_rate": _attrs(roll.transpose("month", "transition", ...), "fraction a month",
                            "accounts that missed a payment in the month from the transition's first state / "
                            "accounts in that state at the end of the previous month (month 1: the existing "
                            "book at the start); all paths, products and score bands pooled"),
        "cure_rate": _attrs(cure.transpose("month", "from_state", ...), "fraction a month",
                            "accounts that paid all arrears and returned to current in the month from the state / "
                            "accounts in that state at the end of the previous month (month 1: the existing book "
                            "at the start); all paths, products and score bands pooled"),
    })


def delinquency(ds: xr.Dataset) -> xr.Dataset:
    """Delinquency by month: `dpd30_ratio` and `dpd90_ratio` (month, product + "total", ...), each
    path's share of balances in 30+ (M2 and worse) and 90+ (M4 and worse), 0 where there is no
    balance (as `dataset.delinquency_ratio`), mean over paths; `charge_off_rate` and
    `net_loss_rate` (month, ...): the month's gross (net of recoveries) charge-offs x 12 / the
    balance at the end of the previous month (month 1: the existing book), mean over paths."""
    balance = ds["balance"].sum("score_band")
    balance = _with_total(balance)
    total = balance.sum("state")

    def ratio(states: list[str]) -> xr.DataArray:
        r = (balance.sel(state=states).sum("state") / total.where(total > 0)).fillna(0.0)
        return path_mean(r, ds.get("path_weight")).transpose("month", "product", ...)

    pooled = ("product", "score_band")
    portfolio = ds["balance"].sum(pooled + ("state",))
    previous = _previous_month(portfolio, ds["opening_balance"].sum(pooled + ("state",)))
    annual = 12.0 / previous.where(previous > 0)
    charged = ds["charged_off"].sum(pooled)
    net = charged - ds["recovered"].sum(pooled)
    balances = "share of balances, mean over paths of each path's ratio (0 where there is no balance)"
    rate = ("x 12 / outstanding principal at the end of the previous month (month 1: the existing book), "
            "mean over paths of each path's rate (NaN where the previous balance is 0)")
    return xr.Dataset({
        "dpd30_ratio": _attrs(ratio(DPD30_STATES), "fraction", "balance 30+ days past due (M2 and worse), " + balances),
        "dpd90_ratio": _attrs(ratio(DPD90_STATES), "fraction", "balance 90+ days past due (M4 and worse), " + balances),
        "charge_off_rate": _attrs(path_mean(charged * annual, ds.get("path_weight")).transpose("month", ...), "fraction a year",
                                  "annualised gross charge-off rate: principal charged off in the month " + rate),
        "net_loss_rate": _attrs(path_mean(net * annual, ds.get("path_weight")).transpose("month", ...), "fraction a year",
                                "annualised net loss rate: principal charged off less recoveries in the month "
                                + rate),
    })


def yields(ds: xr.Dataset) -> xr.Dataset:
    """Yields a year over product + "total": `risk_adjusted_yield` = (revenue - credit-loss expense)
    and `net_interest_margin` = (revenue - funding cost), each over the horizon x 12 / H / the average
    balance (over months and paths); revenue = interest + fees + penalty + merchant discount; flows
    are means over paths."""
    horizon = ds.sizes["month"]
    sums = path_mean(ds[list(PNL_FLOWS)].sum(("month", "score_band")), ds.get("path_weight"))
    revenue_ = _with_total(revenue(sums))
    expense = _with_total(credit_loss_expense(sums))
    funding = _with_total(sums["funding_cost"])
    balance = _with_total(path_mean(ds["balance"].sum(("score_band", "state")).mean("month"), ds.get("path_weight")))
    annual = 12.0 / horizon / balance.where(balance > 0)
    average = "over the horizon, mean over paths, x 12 / H / average balance (over months and paths; NaN if 0)"
    return xr.Dataset({
        "risk_adjusted_yield": _attrs(((revenue_ - expense) * annual).transpose("product", ...), "fraction a year",
                                      "(interest + fees + penalty + merchant discount - credit-loss expense) "
                                      + average),
        "net_interest_margin": _attrs(((revenue_ - funding) * annual).transpose("product", ...), "fraction a year",
                                      "(interest + fees + penalty + merchant discount - funding cost) " + average),
    })


def pnl_waterfall(ds: xr.Dataset) -> xr.DataArray:
    """The portfolio P&L over the horizon, mean over paths, as steps (dimension `step`): income lines
    positive; funding cost, net charge-offs, the allowance's change (its build) and operating costs
    negative; and pre-tax income, the sum of the others."""
    # Contiguous copies: numpy's sums follow the memory layout, and a run's Dataset and the same Dataset read
    # back from its file lay the arrays out differently; the figures must not differ in the last bit.
    flows = ds[list(PNL_FLOWS)].map(lambda x: x.copy(data=np.ascontiguousarray(x.values)))
    sums = path_mean(flows.sum(("month", "product", "score_band")), ds.get("path_weight"))
    steps = [sums[name] for name in REVENUE] + [-sums["funding_cost"], -(sums["charged_off"] - sums["recovered"]),
                                                -sums["accrued_written_off"], -allowance_change(sums)]
    steps += [-sums[name] for name in COSTS]
    steps.append(pretax_income(sums))
    out = xr.concat(steps, dim="step", coords="minimal", compat="override")
    out = out.assign_coords(step=list(WATERFALL_STEPS)).transpose("step", ...)
    out.name = "pnl_waterfall"
    return _attrs(out, "yuan", "portfolio P&L over the horizon, mean over paths: interest, interest accrual, fees, "
                               "penalty and merchant income (positive); funding cost, net charge-offs (charged off - "
                               "recovered), the accrued interest written off, the allowance's change and operating "
                               "costs (negative); pretax_income = the sum of the other steps")


def allowance(ds: xr.Dataset) -> xr.Dataset:
    """The ECL allowance by impairment stage and month (plus "total"), means over paths: `allowance`,
    `receivables` (principal receivable) and `coverage` = allowance / receivables (NaN when none)."""
    weights = ds.get("path_weight")
    held = path_mean(ds["allowance"].sum(("product", "score_band")), weights)
    balance = path_mean(ds["stage_balance"].sum(("product", "score_band")), weights)
    stages = [str(s) for s in held["stage"].values] + ["total"]
    held = xr.concat([held, held.sum("stage").expand_dims(stage=["total"])], dim="stage").assign_coords(stage=stages)
    balance = xr.concat([balance, balance.sum("stage").expand_dims(stage=["total"])],
                        dim="stage").assign_coords(stage=stages)
    return xr.Dataset({
        "allowance": _attrs(held.transpose("month", "stage", ...), "yuan",
                            "expected-credit-loss allowance at the end of the month, mean over paths"),
        "receivables": _attrs(balance.transpose("month", "stage", ...), "yuan",
                              "principal receivable at the end of the month, mean over paths"),
        "coverage": _attrs((held / balance.where(balance > 0)).transpose("month", "stage", ...), "fraction",
                           "coverage ratio: allowance / receivables (lines' allowance includes their expected "
                           "drawdown of undrawn limit)"),
    })


def loss_distribution(ds: xr.Dataset) -> xr.DataArray:
    """Each path's loss in the capital year (`capital_loss` summed over products: what VaR, expected
    shortfall and economic capital measure), dims (path, ...)."""
    loss = ds["capital_loss"].sum("product").transpose("path", ...)
    loss.name = "loss"
    return _attrs(loss, "yuan", f"net charge-offs in the capital year ({ds.attrs.get('capital_window', '')}) of the "
                                f"book as it stands at the end of month {ds.attrs.get('capital_month', '')}, per path")


def score_band_calibration(ds: xr.Dataset) -> xr.Dataset:
    """Calibration by score band (score_band, ...), like with like: of the accounts originated early
    enough to be observed for 12 months on book (`accounts`), `predicted_pd`, their mean PD by
    account (first-party fraud at 1); `observed_rate`, the share that reached 90+ within 12 months
    on book, mean over paths; `fraud_share`, the share that are first-party fraud."""
    seasoned = ds["accounts_seasoned_12m"]
    if "path" in seasoned.dims:
        seasoned = seasoned.isel(path=0, drop=True)
    accounts = seasoned.sum("product")
    denominator = accounts.where(accounts > 0)
    predicted = (ds["pd_12m_seasoned"].fillna(0.0) * seasoned).sum("product") / denominator
    fraud = (ds["fraud_seasoned"].fillna(0.0) * seasoned).sum("product") / denominator
    observed = path_mean(ds["bads_12m"].sum("product") / denominator, ds.get("path_weight"))
    return xr.Dataset({
        "predicted_pd": _attrs(predicted.transpose("score_band", ...), "fraction",
                               "mean PD by account (pd_12m, first-party fraud at 1) of the accounts observed for "
                               "12 months on book"),
        "observed_rate": _attrs(observed.transpose("score_band", ...), "fraction",
                                "realised 12-month bad rate: accounts that reached 90+ within 12 months on book / "
                                "accounts originated with 12 months on book inside the horizon, mean over paths"),
        "accounts": _attrs(accounts.transpose("score_band", ...), "accounts",
                           "accounts originated early enough to be observed for 12 months on book"),
        "fraud_share": _attrs(fraud.transpose("score_band", ...), "fraction",
                              "share of those accounts that are first-party fraud (in predicted_pd at PD 1)"),
    })


def score_band_table(ds: xr.Dataset) -> xr.Dataset:
    """By score band (score_band, ...): applications, approval rate, take-up, the predicted and the
    realised 12-month bad rate of the same accounts (those observed for 12 months on book) and their
    share of first-party fraud, mean all-in APR of the accounts taken, and loss and profit over the
    horizon (means over paths; profit is pre-tax income), all products together."""
    apps = ds["applications"].sum(("month", "product"))
    approvals = ds["approvals"].sum(("month", "product"))
    takeups = ds["takeups"].sum("month")
    taken = takeups.sum("product")
    per_taken = taken.where(taken > 0)
    flows = path_mean(ds[["charged_off", "recovered", "pretax_income"]].sum(("month", "product")),
                      ds.get("path_weight"))
    calibration = score_band_calibration(ds)
    return xr.Dataset({
        "applications": _attrs(apps, "applications", "applications for any product"),
        "approval_rate": _attrs(approvals / apps.where(apps > 0), "fraction", "approvals / applications"),
        "takeup_rate": _attrs(taken / approvals.where(approvals > 0), "fraction", "accounts taken / approvals"),
        "mean_pd_12m": _attrs(calibration["predicted_pd"], "fraction",
                              "mean PD of the accounts observed for 12 months on book, fraud at 1 "
                              "(see score_band_calibration)"),
        "bad_rate_12m": _attrs(calibration["observed_rate"], "fraction",
                               "realised 12-month bad rate of the same accounts (see score_band_calibration)"),
        "fraud_share": _attrs(calibration["fraud_share"], "fraction",
                              "first-party fraud among the same accounts (see score_band_calibration)"),
        "mean_apr": _attrs((ds["mean_apr"].fillna(0.0) * takeups).sum("product") / per_taken, "fraction a year",
                           "all-in APR (IRR method) of the accounts taken, mean"),
        "loss": _attrs(flows["charged_off"] - flows["recovered"], "yuan", "net charge-offs over the horizon"),
        "profit": _attrs(flows["pretax_income"], "yuan", "pre-tax income over the horizon"),
    }).transpose("score_band", ...)


def policy_frontier(ds: xr.Dataset) -> xr.Dataset:
    """One entry per sweep cell along a stacked `cell` dimension (the swept keys kept as its
    coordinates, plus a `label` like "cutoff_score=560.0, macro=severe"): `expected_loss`,
    `net_revenue` and `pretax_income` (portfolio totals over the horizon, mean over paths), `raroc`
    (all of the whole book), the platform's `platform_pretax_income` and `platform_raroc`,
    `approvals` (sum) and `dpd30_ratio` (mean over paths and months 13 .. H, or all months when
    H <= 12). A run without a sweep gives a single cell labelled with the run's name."""
    pooled = ("month", "product", "score_band")
    months = steady_months(ds)
    expected = ds["expected_loss"].sel(view="book", drop=True) if "expected_loss" in ds else \
        path_mean(ds["charged_off"].sum(pooled) - ds["recovered"].sum(pooled), ds.get("path_weight"))
    missing = xr.full_like(expected, np.nan, dtype=float)
    raroc = ds["raroc"] if "raroc" in ds else missing.expand_dims(view=["book", "platform"])
    platform = ds["pnl"].sel(view="platform", pnl_product="total", pnl_line="pretax_income", drop=True) \
        if "pnl" in ds else missing
    originated = path_mean(ds["originated"].sum(pooled), ds.get("path_weight"))
    values = {
        "expected_loss": expected,
        "loss_rate": expected / originated.where(originated > 0),
        "net_revenue": path_mean(ds["net_revenue"].sum(pooled), ds.get("path_weight")),
        "pretax_income": path_mean(ds["pretax_income"].sum(pooled), ds.get("path_weight")),
        "raroc": raroc.sel(view="book", drop=True),
        "platform_pretax_income": platform,
        "platform_raroc": raroc.sel(view="platform", drop=True),
        "approvals": ds["approvals"].sum(pooled),
        "dpd30_ratio": path_mean(delinquency_ratio(ds, "M2").sel(month=months).mean("month"), ds.get("path_weight")),
    }
    values = dict(zip(values, xr.broadcast(*values.values())))
    out = xr.Dataset({name: da.copy() for name, da in values.items()})
    names = sweep_names(ds)
    # Swept keys already selected down to one value (scalar coordinates) still name the cell.
    fixed = [f"{n}={ds[n].item()}" for n in swept(ds) if n in ds.coords and n not in ds.dims]
    if names:
        extra = [d for d in out.dims if d not in names]
        if extra:
            raise ValueError(f"policy_frontier: unexpected dimensions {extra}")
        out = out.stack(cell=names)
        labels = [", ".join(fixed + [f"{n}={out[n].values[i]}" for n in names]) for i in range(out.sizes["cell"])]
    else:
        out = out.expand_dims(cell=1)
        labels = [", ".join(fixed) or run_name(ds)]
    out = out.assign_coords(label=("cell", labels))
    out["label"].attrs["description"] = "the cell's swept keys and values (or the run's name)"
    horizon = ds.sizes["month"]
    _attrs(out["expected_loss"], "yuan", "mean over paths of the portfolio's net charge-offs over the horizon")
    _attrs(out["net_revenue"], "yuan", "portfolio net revenue (before provisions and operating costs) over the "
                                       "horizon, mean over paths")
    _attrs(out["pretax_income"], "yuan", "portfolio pre-tax income over the horizon, mean over paths")
    _attrs(out["loss_rate"], "fraction", "expected loss / originated amount over the horizon")
    _attrs(out["raroc"], "fraction a year", "risk-adjusted return on capital: the capital year's mean pre-tax "
                                            "income / economic capital (NaN if not in the results)")
    _attrs(out["platform_pretax_income"], "yuan", "the platform's pre-tax income over the horizon (its view of a "
                                                  "jointly funded book), mean over paths")
    _attrs(out["platform_raroc"], "fraction a year", "the platform's RAROC on the economic capital of its own "
                                                     "exposure (NaN if not in the results)")
    _attrs(out["approvals"], "accounts", "applications approved over the run")
    _attrs(out["dpd30_ratio"], "fraction",
           f"30+ ratio of balances (M2 and worse), mean over paths and months {months.start}-{horizon}")
    return out
