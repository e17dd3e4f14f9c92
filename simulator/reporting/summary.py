"""Headline figures of a run (means over paths) and the tables `run` and `compare` print."""
from __future__ import annotations

import json
from pathlib import Path

import xarray as xr

from ..config.schema import ScenarioError
from .metrics import allowance
from ..model.tail import MIN_TAIL_PATHS, path_mean, paths_needed
from .readback import open_run
from ..results.dataset import cells, delinquency_ratio, run_name, steady_months, sweep_names

# name: (label, short label, format)
ROWS = {
    "applicants": ("applicants", "applicants", "{:,.0f}"),
    "approved_applicants": ("applicants approved", "appl. approved", "{:,.0f}"),
    "applicant_approval_rate": ("approval rate of applicants", "appl. rate", "{:.1%}"),
    "applications": ("applications (one per product asked for)", "applications", "{:,.0f}"),
    "approvals": ("applications approved", "approved", "{:,.0f}"),
    "application_approval_rate": ("approval rate of applications", "approval rate", "{:.1%}"),
    "cap_bound_share": ("APR cap bound for (share of applications priced)", "cap bound", "{:.1%}"),
    "rejected_at_cap": ("applications rejected for the cap", "rej. at cap", "{:,.0f}"),
    "apr_before_cap": ("mean risk price (all-in APR, applications priced)", "risk price", "{:.2%}"),
    "apr_after_cap": ("mean price offered (all-in APR, applications approved)", "price", "{:.2%}"),
    "revenue_given_up": ("revenue given up to the cap (yuan; loans, lines, purchases)", "given up", "{:,.0f}"),
    "accounts_originated": ("accounts originated", "accounts", "{:,.0f}"),
    "originated": ("originated amount (yuan)", "originated", "{:,.0f}"),
    "dpd30_ratio": ("30+ ratio of balances, mean", "30+", "{:.2%}"),
    "dpd30_peak": ("30+ ratio of balances, peak", "30+ peak", "{:.2%}"),
    "dpd90_ratio": ("90+ ratio of balances, mean", "90+", "{:.2%}"),
    "charged_off": ("charged off (yuan)", "charged off", "{:,.0f}"),
    "fraud_share": ("fraud share of charge-offs (first-party fraud)", "fraud share", "{:.1%}"),
    "revenue": ("revenue (yuan)", "revenue", "{:,.0f}"),
    "merchant_fee_income": ("of which merchant fees on line purchases (yuan)", "merchant fees", "{:,.0f}"),
    "net_revenue": ("net revenue, before provisions and costs (yuan)", "net revenue", "{:,.0f}"),
    "credit_loss_expense": ("credit-loss expense (yuan)", "credit loss", "{:,.0f}"),
    "operating_costs": ("operating costs (yuan)", "op. costs", "{:,.0f}"),
    "pretax_income": ("pre-tax income (yuan)", "pre-tax", "{:,.0f}"),
    "allowance": ("ECL allowance at the end (yuan)", "allowance", "{:,.0f}"),
    "coverage": ("coverage: allowance / receivables at the end", "coverage", "{:.2%}"),
    "stage_3_coverage": ("stage 3 coverage at the end", "stage 3 cov.", "{:.1%}"),
    "risk_adjusted_yield": ("risk-adjusted yield (after credit-loss expense), a year", "RA yield", "{:.2%}"),
    "return_on_assets": ("return on assets (pre-tax income), a year", "ROA", "{:.2%}"),
    "expected_loss": ("expected loss over the horizon (yuan)", "EL", "{:,.0f}"),
    "capital_expected_loss": ("capital year: expected loss (yuan)", "year EL", "{:,.0f}"),
    "var_top": ("capital year: VaR (yuan)", "VaR", "{:,.0f}"),
    "es_top": ("capital year: expected shortfall (yuan)", "ES", "{:,.0f}"),
    "economic_capital": ("economic capital: VaR - expected loss (yuan)", "econ. capital", "{:,.0f}"),
    "irb_capital": ("IRB capital at the one-year PD, same book and month (yuan)", "IRB capital", "{:,.0f}"),
    "raroc": ("RAROC: the year's pre-tax income / economic capital", "RAROC", "{:.1%}"),
    "platform_revenue": ("platform: revenue, with the partners' service fee (yuan)", "pf revenue", "{:,.0f}"),
    "platform_service_fee_income": ("platform: of which service fee from partner banks (yuan)", "pf svc fee",
                                    "{:,.0f}"),
    "platform_pretax_income": ("platform: pre-tax income (yuan)", "pf pre-tax", "{:,.0f}"),
    "platform_return_on_assets": ("platform: pre-tax income / the book's receivables, a year", "pf ROA", "{:.2%}"),
    "platform_economic_capital": ("platform: economic capital of its own exposure (yuan)", "pf capital", "{:,.0f}"),
    "platform_raroc": ("platform: RAROC", "pf RAROC", "{:.1%}"),
}
# Headline figures that have a platform view (joint_lending): its rows are these with "platform_".
PLATFORM = ("revenue", "service_fee_income", "pretax_income", "return_on_assets", "economic_capital", "raroc",
            "capital_tail_paths")


def _ratio(part, whole) -> float:
    """part / whole, NaN (shown as n/a) when whole is 0."""
    return float(part) / float(whole) if float(whole) > 0 else float("nan")


def _weighted(mean: xr.DataArray, weight: xr.DataArray) -> float:
    """The mean over products and bands of a per-(product, band) mean, weighted by its count."""
    return _ratio((mean.fillna(0) * weight).sum(), weight.sum())


def _mean_ratio(ds: xr.Dataset, worst_from: str, months: slice) -> float:
    """A delinquency ratio's mean over the paths and steady months in which the book has a balance
    (a book that runs off has none at the end: those months do not count as 0%)."""
    has_balance = ds["balance"].sum(("product", "score_band", "state")).sel(month=months) > 0
    ratio = delinquency_ratio(ds, worst_from).sel(month=months).where(has_balance)
    weights = ds["path_weight"]
    if bool((weights == 1.0).all()):
        return float(ratio.mean())
    weights = weights * has_balance       # each path-month with a balance, weighted by its path
    return float((ratio.fillna(0.0) * weights).sum() / weights.sum())


def headline(ds: xr.Dataset) -> dict[str, float]:
    """Headline figures of one cell: means over paths; delinquency ratios over the steady months
    with a balance; the P&L and capital of the whole book, and of the platform (PLATFORM)."""
    book = ds.sel(view="book")
    months = steady_months(book)
    dpd30 = delinquency_ratio(book, "M2")
    end = allowance(book).isel(month=-1)
    platform = _of_view(ds.sel(view="platform"))
    return {
        "applicants": float(ds["applicants"].sum()),
        "approved_applicants": float(ds["approved_applicants"].sum()),
        "applicant_approval_rate": _ratio(ds["approved_applicants"].sum(), ds["applicants"].sum()),
        "applications": float(ds["applications"].sum()),
        "approvals": float(ds["approvals"].sum()),
        "application_approval_rate": _ratio(ds["approvals"].sum(), ds["applications"].sum()),
        "cap_bound_share": _ratio(ds["cap_bound"].sum(), ds["cap_applications"].sum()),
        "rejected_at_cap": float(ds["rejected_at_cap"].sum()),
        "apr_before_cap": _weighted(ds["apr_before_cap"], ds["cap_applications"]),
        "apr_after_cap": _weighted(ds["apr_after_cap"], ds["approvals"].sum("month")),
        "revenue_given_up": float(ds["revenue_given_up"].sum(skipna=True)),
        "accounts_originated": float(ds["takeups"].sum()),
        "originated": float(path_mean(ds["originated"].sum(("month", "product", "score_band")), ds.get("path_weight"))),
        "dpd30_ratio": _mean_ratio(book, "M2", months),
        "dpd30_peak": float(path_mean(dpd30, ds.get("path_weight")).max()),
        "dpd90_ratio": _mean_ratio(book, "M4", months),
        "charged_off": float(path_mean(ds["charged_off"].sum(("month", "product", "score_band")), ds.get("path_weight"))),
        "fraud_share": _ratio(*(path_mean(ds[name].sum(("month", "product", "score_band")), ds.get("path_weight"))
                                for name in ("fraud_charged_off", "charged_off"))),
        "allowance": float(end["allowance"].sel(stage="total")),
        "coverage": float(end["coverage"].sel(stage="total")),
        "stage_3_coverage": float(end["coverage"].sel(stage="stage_3")),
        **_of_view(book),
        **{f"platform_{key}": platform[key] for key in PLATFORM},
        "paths": float(ds.sizes["path"]),
        "tail_level": float(ds["quantile"].values[-1]),
    }


def _of_view(ds: xr.Dataset) -> dict[str, float]:
    """The headline figures that have a view (the P&L and capital), of `ds` selected to one view;
    tail_paths and capital_tail_paths are not rows: how many paths the tail figures rest on (`shown`)."""
    top = ds["quantile"].values[-1]
    pnl = ds["pnl"].sel(pnl_product="total")
    yields = ds["pnl_yield"].sel(pnl_product="total")
    lines = ("revenue", "merchant_fee_income", "service_fee_income", "net_revenue", "credit_loss_expense",
             "operating_costs", "pretax_income")
    return {
        **{name: float(pnl.sel(pnl_line=name)) for name in lines},
        "risk_adjusted_yield": float(yields.sel(pnl_yield_line="risk_adjusted_yield")),
        "return_on_assets": float(yields.sel(pnl_yield_line="return_on_assets")),
        "expected_loss": float(ds["expected_loss"]),
        "capital_expected_loss": float(ds["capital_expected_loss"]),
        "var_top": float(ds["value_at_risk"].sel(quantile=top)),
        "es_top": float(ds["expected_shortfall"].sel(quantile=top)),
        "economic_capital": float(ds["economic_capital"]),
        "irb_capital": float(ds["irb_capital_total"]),
        "raroc": float(ds["raroc"]),
        "tail_paths": float(ds["tail_paths"].sel(quantile=top)),
        "capital_tail_paths": float(ds["economic_capital_tail_paths"]),
    }


def columns(ds: xr.Dataset, name: str = "") -> list[tuple[str, dict[str, float]]]:
    """(label, headline) of each cell of a sweep ("name: key=value, ..."), or of the run (its `name`,
    else run.name)."""
    out = []
    for label, selection in cells(ds):
        title = f"{name}: {label}" if name and label else label or name or run_name(ds)
        out.append((title, headline(ds.isel(selection))))
    return out


def runs(folders: list[Path]) -> list[tuple[str, dict[str, float]]]:
    """(label, headline) of every run folder (or results.nc) and every cell of a sweep among them."""
    out = []
    for folder in folders:
        path, ds = open_run(folder)
        out += columns(ds, path.parent.name)
    return out


def format_value(key: str, value: float) -> str:
    """A headline figure as the tables show it ("n/a" for NaN)."""
    return ROWS[key][2].format(value) if value == value else "n/a"


# Tail figures and the count of paths at or beyond the VaR they rest on.
TAIL_FIGURES = {"var_top": "tail_paths", "es_top": "tail_paths", "economic_capital": "capital_tail_paths",
                "raroc": "capital_tail_paths", "platform_economic_capital": "platform_capital_tail_paths",
                "platform_raroc": "platform_capital_tail_paths"}


def too_few(head: dict[str, float], key: str) -> bool:
    """Whether a tail figure rests on fewer than tail.MIN_TAIL_PATHS paths at or beyond its VaR."""
    return key in TAIL_FIGURES and head.get(TAIL_FIGURES[key], MIN_TAIL_PATHS) < MIN_TAIL_PATHS


def shown(key: str, head: dict[str, float]) -> str:
    """A headline figure as printed: a tail figure resting on too few paths is a lower bound (">=")
    marked "*", RAROC then "n/a*" (see `tail_note`)."""
    if too_few(head, key):
        return "n/a*" if key.endswith("raroc") else ">=" + format_value(key, head[key]) + "*"
    return format_value(key, head[key])


def tail_note(columns: list[tuple[str, dict[str, float]]]) -> str:
    """The footnote for figures marked "*", or "" when none is."""
    flagged = [(label, head) for label, head in columns if any(too_few(head, k) for k in TAIL_FIGURES)]
    if not flagged:
        return ""
    counts = sorted({int(head["tail_paths"]) for _, head in flagged})
    level = flagged[0][1]["tail_level"]
    return (f"* too few paths beyond the {level:.1%} quantile ({', '.join(map(str, counts))} of "
            f"{int(flagged[0][1]['paths']):,}; at least {MIN_TAIL_PATHS} needed): the VaR, expected shortfall and "
            f"economic capital are lower bounds and RAROC is not estimated; use {paths_needed(level):,} paths or "
            f"importance sampling (capital.importance_quantile = {level:g})")


def table(columns: list[tuple[str, dict[str, float]]]) -> str:
    """One column per (label, headline) for up to three runs; one row per run beyond that."""
    if len(columns) <= 3:
        width = max(len(label) for label, _, _ in ROWS.values())
        col = max(14, *(len(label) for label, _ in columns))
        lines = [" " * width + "  " + "  ".join(label.rjust(col) for label, _ in columns)]
        for key, (label, _, _) in ROWS.items():
            lines.append(label.ljust(width) + "  " + "  ".join(shown(key, h).rjust(col) for _, h in columns))
        return "\n".join(lines)
    keys = [k for k in ROWS if k != "applicants"]
    cells_ = [[shown(k, h) for k in keys] for _, h in columns]
    widths = [max(len(ROWS[k][1]), *(len(row[j]) for row in cells_)) for j, k in enumerate(keys)]
    first = max(len(label) for label, _ in columns)
    lines = [" " * first + "  " + "  ".join(ROWS[k][1].rjust(w) for k, w in zip(keys, widths))]
    for (label, _), row in zip(columns, cells_):
        lines.append(label.ljust(first) + "  " + "  ".join(c.rjust(w) for c, w in zip(row, widths)))
    return "\n".join(lines)


def reference_index(columns: list[tuple[str, dict[str, float]]], reference: str | None, file: str = "compare") -> int:
    """The position of the reference column: the one whose label is or contains `reference` (exactly
    one), or the first."""
    if reference is None:
        return 0
    exact = [i for i, (label, _) in enumerate(columns) if label == reference]
    found = exact or [i for i, (label, _) in enumerate(columns) if reference in label]
    if len(found) != 1:
        labels = "; ".join(label for label, _ in columns)
        raise ScenarioError(file, "--reference", f"expected the label of one run or cell ({labels}), found "
                                                 f"{len(found)} matching {reference!r}")
    return found[0]


def changes(columns: list[tuple[str, dict[str, float]]], reference: int = 0) -> list[tuple[str, dict[str, tuple]]]:
    """(label, {figure: (change, relative change)}) of every column but the reference: the change in
    the figure's units and as a fraction of the reference (NaN where the reference is 0)."""
    base = columns[reference][1]
    out = []
    for i, (label, head) in enumerate(columns):
        if i == reference:
            continue
        out.append((label, {key: (head[key] - base[key],
                                  (head[key] - base[key]) / abs(base[key]) if base[key] else float("nan"))
                            for key in ROWS}))
    return out


def format_change(key: str, change: float, relative: float) -> str:
    """A change as the tables show it: in the figure's units (points for ratios) and in percent."""
    if change != change:
        return "n/a"
    fmt = ROWS[key][2]
    if "%" in fmt:
        text = f"{100 * change:+.2f} pts"
    else:
        text = "+" + fmt.format(change) if change >= 0 else fmt.format(change)
    return text + (f" ({relative:+.1%})" if relative == relative else "")


def changes_table(columns: list[tuple[str, dict[str, float]]], reference: int = 0) -> str:
    """Each figure's change against the reference column, one column per other run or cell."""
    rows = changes(columns, reference)
    if not rows:
        return ""
    width = max(len(label) for label, _, _ in ROWS.values())
    col = max(22, *(len(label) for label, _ in rows))
    lines = [f"changes against {columns[reference][0]}:",
             " " * width + "  " + "  ".join(label.rjust(col) for label, _ in rows)]
    for key, (label, _, _) in ROWS.items():
        lines.append(label.ljust(width) + "  " + "  ".join(format_change(key, *c[key]).rjust(col) for _, c in rows))
    return "\n".join(lines)


def render(ds: xr.Dataset, path: Path, seconds: float) -> str:
    """The summary `simulator run` prints."""
    n_paths, horizon = ds.sizes["path"], ds.sizes["month"]
    months = steady_months(ds)
    top = ds["quantile"].values[-1]
    head = (f"{ds.attrs['title']}: {n_paths} path(s) x {horizon} months, seed {ds.attrs['seed']}, {seconds:.1f} s\n"
            f"means over paths; ratios over months {months.start}-{months.stop}; capital year: the book as it stands at "
            f"the end of month {ds.attrs['capital_month']} and its loss in {ds.attrs['capital_window']}; VaR and "
            f"expected shortfall at {top:.1%}; economic capital at the scenario's level; income basis: "
            f"{ds.attrs.get('income_basis', 'cash').replace('_', ' ')}")
    weights = ds["path_weight"]
    if not bool((weights == 1.0).all()):
        target = json.loads(ds.attrs["scenario_resolved"])["capital"]["importance_quantile"]
        head += (f"\nimportance sampling of the factor toward the {target:.1%} "
                 f"loss quantile: paths weighted by their likelihood ratios (mean weight {float(weights.mean()):.3f})")
    cols = columns(ds)
    body = table(cols)
    note = tail_note(cols)
    if note:
        body += "\n" + note
    elif not sweep_names(ds):
        se = float(ds["value_at_risk_se"].sel(quantile=top, view="book"))
        count = int(ds["tail_paths"].sel(quantile=top, view="book"))
        body += (f"\n(VaR standard error {se:,.0f} yuan: bootstrap over the {n_paths} paths, {count} of them at or "
                 f"beyond the VaR)")
    return f"{head}\n{body}\nresults: {path}"
