"""Headline figures of a run (means over paths) and the tables `run` and `compare` print."""
from __future__ import annotations

import json
from pathlib import Path

import xarray as xr

from .results import delinquency_ratio

# name: (label, short label, format)
ROWS = {
    "applicants": ("applicants", "applicants", "{:,.0f}"),
    "approvals": ("applications approved", "approved", "{:,.0f}"),
    "accounts_originated": ("accounts originated", "accounts", "{:,.0f}"),
    "originated": ("originated amount (yuan)", "originated", "{:,.0f}"),
    "dpd30_ratio": ("30+ ratio of balances, mean", "30+", "{:.2%}"),
    "dpd30_peak": ("30+ ratio of balances, peak", "30+ peak", "{:.2%}"),
    "dpd90_ratio": ("90+ ratio of balances, mean", "90+", "{:.2%}"),
    "charged_off": ("charged off (yuan)", "charged off", "{:,.0f}"),
    "revenue": ("revenue (yuan)", "revenue", "{:,.0f}"),
    "net_revenue": ("net revenue (yuan)", "net revenue", "{:,.0f}"),
    "risk_adjusted_yield": ("risk-adjusted yield, a year", "RA yield", "{:.2%}"),
    "return_on_assets": ("return on assets, a year", "ROA", "{:.2%}"),
    "expected_loss": ("expected loss (yuan)", "EL", "{:,.0f}"),
    "var_top": ("VaR (yuan)", "VaR", "{:,.0f}"),
    "es_top": ("expected shortfall (yuan)", "ES", "{:,.0f}"),
    "economic_capital": ("economic capital (yuan)", "econ. capital", "{:,.0f}"),
    "irb_capital": ("IRB capital (yuan)", "IRB capital", "{:,.0f}"),
    "raroc": ("RAROC, a year", "RAROC", "{:.1%}"),
}


def steady_months(ds: xr.Dataset) -> slice:
    """Months 13 .. H when the horizon allows (the book has seasoned), else all months."""
    horizon = ds.sizes["month"]
    return slice(13 if horizon > 12 else 1, horizon)


def headline(ds: xr.Dataset) -> dict[str, float]:
    """Headline figures of one cell: means over paths; delinquency ratios over the steady months."""
    months = steady_months(ds)
    dpd30 = delinquency_ratio(ds, "M2")
    top = ds["quantile"].values[-1]
    pnl = ds["pnl"].sel(pnl_product="total")
    return {
        "applicants": float(ds["applicants"].sum()),
        "approvals": float(ds["approvals"].sum()),
        "accounts_originated": float(ds["takeups"].sum()),
        "originated": float(ds["originated"].sum(("month", "product", "score_band")).mean("path")),
        "dpd30_ratio": float(dpd30.sel(month=months).mean()),
        "dpd30_peak": float(dpd30.mean("path").max()),
        "dpd90_ratio": float(delinquency_ratio(ds, "M4").sel(month=months).mean()),
        "charged_off": float(ds["charged_off"].sum(("month", "product", "score_band")).mean("path")),
        "revenue": float(ds["path_revenue"].sum("product").mean("path")),
        "net_revenue": float(pnl.sel(pnl_line="net_revenue")),
        "risk_adjusted_yield": float(pnl.sel(pnl_line="risk_adjusted_yield")),
        "return_on_assets": float(pnl.sel(pnl_line="return_on_assets")),
        "expected_loss": float(ds["expected_loss"]),
        "var_top": float(ds["value_at_risk"].sel(quantile=top)),
        "es_top": float(ds["expected_shortfall"].sel(quantile=top)),
        "economic_capital": float(ds["economic_capital"]),
        "irb_capital": float(ds["irb_capital_total"]),
        "raroc": float(ds["raroc"]),
    }


def sweep_names(ds: xr.Dataset) -> list[str]:
    return [name for name, _, _ in json.loads(ds.attrs.get("sweep", "[]"))]


def cells(ds: xr.Dataset, prefix: str = "") -> list[tuple[str, xr.Dataset]]:
    """(label, one cell) for each cell of a sweep, or the run itself."""
    names = sweep_names(ds)
    if not names:
        return [(prefix or json.loads(ds.attrs["scenario_resolved"])["run"]["name"], ds)]
    stacked = ds.stack(cell=names)
    out = []
    for i in range(stacked.sizes["cell"]):
        cell = stacked.isel(cell=i)
        label = ", ".join(f"{n}={cell[n].item()}" for n in names)
        out.append((f"{prefix}{label}", cell))
    return out


def _format(fmt: str, value: float) -> str:
    return fmt.format(value) if value == value else "n/a"


def table(columns: list[tuple[str, dict[str, float]]]) -> str:
    """One column per (label, headline) for up to three runs; one row per run beyond that."""
    if len(columns) <= 3:
        width = max(len(label) for label, _, _ in ROWS.values())
        col = max(14, *(len(label) for label, _ in columns))
        lines = [" " * width + "  " + "  ".join(label.rjust(col) for label, _ in columns)]
        for key, (label, _, fmt) in ROWS.items():
            lines.append(label.ljust(width) + "  " + "  ".join(_format(fmt, h[key]).rjust(col) for _, h in columns))
        return "\n".join(lines)
    keys = [k for k in ROWS if k != "applicants"]
    cells_ = [[_format(ROWS[k][2], h[k]) for k in keys] for _, h in columns]
    widths = [max(len(ROWS[k][1]), *(len(row[j]) for row in cells_)) for j, k in enumerate(keys)]
    first = max(len(label) for label, _ in columns)
    lines = [" " * first + "  " + "  ".join(ROWS[k][1].rjust(w) for k, w in zip(keys, widths))]
    for (label, _), row in zip(columns, cells_):
        lines.append(label.ljust(first) + "  " + "  ".join(c.rjust(w) for c, w in zip(row, widths)))
    return "\n".join(lines)


def render(ds: xr.Dataset, path: Path, seconds: float) -> str:
    """The summary `simulator run` prints."""
    n_paths, horizon = ds.sizes["path"], ds.sizes["month"]
    months = steady_months(ds)
    top = ds["quantile"].values[-1]
    head = (f"{ds.attrs['title']}: {n_paths} path(s) x {horizon} months, seed {ds.attrs['seed']}, {seconds:.1f} s\n"
            f"means over paths; ratios over months {months.start}-{months.stop}; VaR and expected shortfall "
            f"at {top:.1%}; economic capital at the scenario's level")
    body = table([(label, headline(cell)) for label, cell in cells(ds)])
    if not sweep_names(ds):
        se = float(ds["value_at_risk_se"].sel(quantile=top))
        body += f"\n(VaR Monte Carlo standard error {se:,.0f} yuan with {n_paths} paths)"
    return f"{head}\n{body}\nresults: {path}"
