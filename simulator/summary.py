"""The short summary a run prints: headline figures, means over paths."""
from __future__ import annotations

from pathlib import Path

import xarray as xr

from .results import delinquency_ratio


def headline(ds: xr.Dataset) -> dict[str, float]:
    """Headline figures of a run, means over paths; ratios at the last month."""
    flows = ds[["originated", "charged_off", "recovered", "net_revenue", "interest_income"]].sum(
        ("month", "product", "score_band")).mean("path")
    last = ds["month"].values[-1]
    return {
        "applications": int(ds["applicants"].sum()),
        "accounts_originated": int(ds["takeups"].sum()),
        "originated": float(flows["originated"]),
        "dpd30_ratio": float(delinquency_ratio(ds, "M2").sel(month=last).mean("path")),
        "dpd90_ratio": float(delinquency_ratio(ds, "M4").sel(month=last).mean("path")),
        "peak_dpd30_ratio": float(delinquency_ratio(ds, "M2").max("month").mean("path")),
        "charged_off": float(flows["charged_off"]),
        "charged_off_accounts": float(ds["charged_off_accounts"].sum(("month", "product", "score_band")).mean("path")),
        "recovered": float(flows["recovered"]),
        "interest_income": float(flows["interest_income"]),
        "net_revenue": float(flows["net_revenue"]),
    }


def render(ds: xr.Dataset, path: Path, seconds: float) -> str:
    h = headline(ds)
    n_paths, horizon = ds.sizes["path"], ds.sizes["month"]
    approval = h["accounts_originated"] / h["applications"] if h["applications"] else 0.0
    rows = [
        f"run {ds.attrs['title'].split(chr(39))[1]}: {n_paths} path(s) x {horizon} months, seed {ds.attrs['seed']}, {seconds:.1f} s",
        f"  applicants            {h['applications']:>18,}",
        f"  accounts originated   {h['accounts_originated']:>18,}   ({approval:.2f} per applicant)",
        f"  originated amount     {h['originated']:>18,.2f} yuan",
        f"  30+ ratio of balances {h['dpd30_ratio']:>18.2%}   (month {horizon}; peak {h['peak_dpd30_ratio']:.2%})",
        f"  90+ ratio of balances {h['dpd90_ratio']:>18.2%}   (month {horizon})",
        f"  charged off           {h['charged_off']:>18,.2f} yuan ({h['charged_off_accounts']:,.0f} accounts)",
        f"  recovered             {h['recovered']:>18,.2f} yuan",
        f"  interest income       {h['interest_income']:>18,.2f} yuan",
        f"  net revenue           {h['net_revenue']:>18,.2f} yuan",
        f"  results               {path}",
    ]
    return "\n".join(rows)
