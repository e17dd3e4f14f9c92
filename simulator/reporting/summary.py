"""Headline figures of a run (means over paths) and the tables `run` and `compare` print."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

import xarray as xr

from ..config.schema import ScenarioError
from .metrics import allowance
from ..model.tail import MIN_TAIL_PATHS, path_mean, paths_needed
from .readback import open_run
from .uncertainty import NOISE, difference_errors as path_difference_errors, errors as path_errors
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
    "stage_2_share": ("stage 2 share of receivables at the end", "stage 2 share", "{:.1%}"),
    "stage_1_coverage": ("stage 1 coverage at the end", "stage 1 cov.", "{:.2%}"),
    "stage_2_coverage": ("stage 2 coverage at the end", "stage 2 cov.", "{:.1%}"),
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
SE = "_se"    # a headline figure's standard error is under its key + SE
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
        "dpd30_peak": float(path_mean(dpd30, ds.get("path_weight")).sel(month=months).max()),
        "dpd90_ratio": _mean_ratio(book, "M4", months),
        "charged_off": float(path_mean(ds["charged_off"].sum(("month", "product", "score_band")), ds.get("path_weight"))),
        "fraud_share": _ratio(*(path_mean(ds[name].sum(("month", "product", "score_band")), ds.get("path_weight"))
                                for name in ("fraud_charged_off", "charged_off"))),
        "allowance": float(end["allowance"].sel(stage="total")),
        "coverage": float(end["coverage"].sel(stage="total")),
        "stage_2_share": _ratio(end["receivables"].sel(stage="stage_2"), end["receivables"].sel(stage="total")),
        "stage_1_coverage": float(end["coverage"].sel(stage="stage_1")),
        "stage_2_coverage": float(end["coverage"].sel(stage="stage_2")),
        "stage_3_coverage": float(end["coverage"].sel(stage="stage_3")),
        **_of_view(book),
        **{f"platform_{key}": platform[key] for key in PLATFORM},
        "paths": float(ds.sizes["path"]),
        "tail_level": float(ds["quantile"].values[-1]),
    } | {f"{key}{SE}": value for key, value in path_errors(ds).items()}


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
    return [(label, headline(cell)) for label, cell in labelled_cells(ds, name)]


def labelled_cells(ds: xr.Dataset, name: str = "") -> list[tuple[str, xr.Dataset]]:
    """(label, the cell's Dataset) of each cell of a sweep, or of the run, labelled as `columns` does."""
    out = []
    for label, selection in cells(ds):
        title = f"{name}: {label}" if name and label else label or name or run_name(ds)
        out.append((title, ds.isel(selection)))
    return out


def compared(folders: list[Path]) -> tuple[list[tuple[str, dict[str, float]]], list[xr.Dataset]]:
    """The columns (label, headline) of every run folder (or results.nc) and every cell of a sweep among
    them, and each column's Dataset (for the errors of differences)."""
    found = []
    for folder in folders:
        path, ds = open_run(folder)
        found += labelled_cells(ds, path.parent.name)
    return [(label, headline(cell)) for label, cell in found], [cell for _, cell in found]


def runs(folders: list[Path]) -> list[tuple[str, dict[str, float]]]:
    """(label, headline) of every run folder (or results.nc) and every cell of a sweep among them."""
    return compared(folders)[0]


def _has_error(se: float) -> bool:
    return se == se and se > 0 and math.isfinite(se)


def _with_error(x: float, se: float, percent: bool, sign: str = "") -> tuple[str, str]:
    """x and its error as numbers to the precision the error supports (two significant digits of
    the error; percent: in points), `sign` "+" to sign x."""
    if percent:
        x, se = 100 * x, 100 * se
    step = 10.0 ** (math.floor(math.log10(se)) - 1)
    d = min(3 if percent else 4, max(0, -math.floor(math.log10(step) + 1e-9)))
    if not percent:
        x, se = round(x / step) * step, round(se / step) * step
    comma = "" if percent else ","
    return f"{x:{sign}{comma}.{d}f}", f"{se:{comma}.{d}f}"


def format_value(key: str, value: float, se: float = math.nan) -> str:
    """A headline figure as the tables show it ("n/a" for NaN): with a positive error, to the
    precision it supports and "± error"."""
    if value != value:
        return "n/a"
    fmt = ROWS[key][2]
    if not _has_error(se):
        return fmt.format(value)
    percent = "%" in fmt
    x, e = _with_error(value, se, percent)
    return f"{x}% ± {e}%" if percent else f"{x} ± {e}"


def error_of(head: dict[str, float], key: str) -> float:
    """A headline figure's standard error, NaN when it has none (IRB capital; a figure of a results file
    without population groups)."""
    return head.get(key + SE, math.nan)


# Tail figures and the count of paths at or beyond the VaR they rest on.
TAIL_FIGURES = {"var_top": "tail_paths", "es_top": "tail_paths", "economic_capital": "capital_tail_paths",
                "raroc": "capital_tail_paths", "platform_economic_capital": "platform_capital_tail_paths",
                "platform_raroc": "platform_capital_tail_paths"}


def too_few(head: dict[str, float], key: str) -> bool:
    """Whether a tail figure rests on fewer than tail.MIN_TAIL_PATHS paths at or beyond its VaR."""
    return key in TAIL_FIGURES and head.get(TAIL_FIGURES[key], MIN_TAIL_PATHS) < MIN_TAIL_PATHS


def shown(key: str, head: dict[str, float]) -> str:
    """A headline figure as printed, with its error: a tail figure resting on too few paths is a lower
    bound (">=") marked "*", RAROC then "n/a*" (see `tail_note`)."""
    if too_few(head, key):
        return "n/a*" if key.endswith("raroc") else ">=" + format_value(key, head[key]) + "*"
    return format_value(key, head[key], error_of(head, key))


def tail_note(columns: list[tuple[str, dict[str, float]]]) -> str:
    """The footnote for figures marked "*", or "" when none is."""
    flagged = [(label, head) for label, head in columns if any(too_few(head, k) for k in TAIL_FIGURES)]
    if not flagged:
        return ""
    counts = sorted({int(head["tail_paths"]) for _, head in flagged})
    level = flagged[0][1]["tail_level"]
    return (f"* too few paths beyond the {level:.1%} quantile ({', '.join(map(str, counts))} of "
            f"{int(flagged[0][1]['paths']):,}; at least {MIN_TAIL_PATHS} needed): the VaR, expected shortfall and "
            f"economic capital are lower bounds and RAROC is not estimated; scenarios/capital.toml states them "
            f"(importance sampling, capital.importance_quantile = {level:g}), or use {paths_needed(level):,} paths")


ERROR_NOTE = ("figures are means over paths; \u00b1 is the Monte Carlo standard error: the paths' and the "
              "applicants' sampling noise (the spread between run.population_groups groups of them), each figure "
              "rounded to the precision it supports; the tail's bootstrap errors (VaR, ES, capital) leave out the "
              "applicants' noise")


def labels(months: slice | None = None, capital_window: str = "") -> dict[str, str]:
    """Each figure's label, the windows of the ratios and of the capital year said."""
    out = {key: label for key, (label, _, _) in ROWS.items()}
    if months is not None:
        window = f"months {months.start}-{months.stop}"
        for key in ("dpd30_ratio", "dpd30_peak", "dpd90_ratio"):
            out[key] += f" over {window}"
        for key in ("risk_adjusted_yield", "return_on_assets", "platform_return_on_assets"):
            out[key] += f" over months 1-{months.stop}"
    if capital_window:
        for key in ("raroc", "platform_raroc"):
            out[key] += f" ({capital_window.replace(' .. ', '-')})"
    return out


def table(columns: list[tuple[str, dict[str, float]]], names: dict[str, str] | None = None) -> str:
    """One column per (label, headline) for up to three runs; one row per run beyond that."""
    names = names or labels()
    if len(columns) <= 3:
        cells_ = {key: [shown(key, h) for _, h in columns] for key in ROWS}
        width = max(len(names[k]) for k in ROWS)
        col = max(14, *(len(label) for label, _ in columns), *(len(c) for row in cells_.values() for c in row))
        lines = [" " * width + "  " + "  ".join(label.rjust(col) for label, _ in columns)]
        for key in ROWS:
            lines.append(names[key].ljust(width) + "  " + "  ".join(c.rjust(col) for c in cells_[key]))
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
        labels_ = "; ".join(label for label, _ in columns)
        raise ScenarioError(file, "--reference", f"expected the label of one run or cell ({labels_}), found "
                                                 f"{len(found)} matching {reference!r}")
    return found[0]


# ---------------------------------------------------------------------------------------------
# Comparability: what must match for a change to mean something, and what only changes its error.
REFUSED = ("paths", "horizon", "applicants' monthly volume", "origination months", "results mode",
           "simulator version")


def _applicants(cell: xr.Dataset) -> dict:
    """The applicants section of a run or cell (a sweep's swept applicants keys at the cell's values)."""
    section = dict(json.loads(cell.attrs["scenario_resolved"])["applicants"])
    for name in cell.coords:
        key = cell[name].attrs.get("scenario_key", "")
        if key.startswith("applicants.") and cell[name].ndim == 0 and "." not in key[len("applicants."):]:
            section[key[len("applicants."):]] = cell[name].item()
    return section


def _facts(cell: xr.Dataset) -> dict[str, object]:
    """What `compare` checks of one run or cell: its seed and what makes its figures comparable."""
    tree = json.loads(cell.attrs["scenario_resolved"])
    applicants = _applicants(cell)
    return {"seed": tree["run"]["seed"], "paths": tree["run"]["paths"], "horizon": tree["run"]["horizon_months"],
            "applicants' monthly volume": applicants["monthly_volume"],
            "origination months": applicants["origination_months"],
            "results mode": cell.attrs.get("results_mode"), "simulator version": cell.attrs.get("simulator_version")}


def differences(columns: list[tuple[str, dict[str, float]]], cells_: list[xr.Dataset]) -> dict[str, str]:
    """What differs between the runs or cells, {what: "label=value, ..."}."""
    facts = [_facts(cell) for cell in cells_]
    out = {}
    for what in facts[0]:
        if len({json.dumps(f[what]) for f in facts}) > 1:
            out[what] = ", ".join(f"{label}={f[what]}" for (label, _), f in zip(columns, facts))
    return out


def check_comparable(columns: list[tuple[str, dict[str, float]]], cells_: list[xr.Dataset],
                     accept: bool = False, file: str = "compare") -> list[str]:
    """The warnings to print above a comparison; a ScenarioError, unless `accept`, when the runs differ
    in what makes their changes meaningless (REFUSED: paths, horizon, applicants, results mode, version)."""
    found = differences(columns, cells_)
    refused = [what for what in REFUSED if what in found]
    if refused and not accept:
        what = "; ".join(f"{w} ({found[w]})" for w in refused)
        raise ScenarioError(file, "runs", f"expected runs that differ only in policy, macro path or seed (the same "
                                          f"paths, horizon and applicants), found a difference in "
                                          f"{what}; --accept-differences compares them anyway")
    warnings = [f"warning: the runs differ in {what} ({found[what]}): their changes mix it with the policy's"
                for what in refused]
    if "seed" in found:
        warnings.append(f"note: the runs differ in seed ({found['seed']}): they drew other applicants and paths, "
                        f"so the errors of changes are unpaired (both runs' errors, the applicants' noise included)")
    return warnings


class Change(NamedTuple):
    """A figure's change against the reference: in its units, as a fraction of the reference (NaN
    where not shown: the reference not positive or not large against its error), and its standard
    error (NaN when it has none)."""
    change: float
    relative: float
    se: float


RELATIVE_BASE = 10.0   # a relative change is shown against a reference at least this many of its errors


def _relative(change: float, base: float, base_se: float) -> float:
    if not base > 0 or (base_se == base_se and base < RELATIVE_BASE * base_se):
        return math.nan
    return change / base


def difference_errors(cells_: list[xr.Dataset], reference: int = 0) -> list[tuple[dict[str, float], bool]]:
    """For each column, the standard errors of its changes against the reference and whether they are
    paired (uncertainty.difference_errors); NaN for a figure that has none (IRB capital)."""
    base = cells_[reference]
    out = []
    for cell in cells_:
        errors, is_paired = path_difference_errors(base, cell)
        out.append(({key: errors.get(key, math.nan) for key in ROWS}, is_paired))
    return out


def changes(columns: list[tuple[str, dict[str, float]]], reference: int = 0,
            errors: list[tuple[dict[str, float], bool]] | None = None) -> list[tuple[str, dict[str, Change]]]:
    """(label, {figure: Change}) of every column but the reference, with the errors of `errors`
    (`difference_errors`), else the two columns' errors in quadrature."""
    base = columns[reference][1]
    out = []
    for i, (label, head) in enumerate(columns):
        if i == reference:
            continue
        found = {}
        for key in ROWS:
            change = head[key] - base[key] if not (too_few(head, key) or too_few(base, key)) else math.nan
            se = errors[i][0][key] if errors is not None else math.hypot(error_of(head, key), error_of(base, key))
            found[key] = Change(change, _relative(change, base[key], error_of(base, key)), se)
        out.append((label, found))
    return out


def within_noise(change: float, se: float) -> bool:
    """Whether a change is not distinguishable from noise: smaller than NOISE errors."""
    return se == se and abs(change) < NOISE * se


def format_change(key: str, change: float, relative: float = math.nan, se: float = math.nan) -> str:
    """A change as the tables show it: in the figure's units (points for ratios), to the precision its
    error supports, "± error", in percent where the reference allows it, and "~" in front when it is
    within noise."""
    if change != change:
        return "n/a"
    fmt = ROWS[key][2]
    if _has_error(se):
        x, e = _with_error(change, se, "%" in fmt, "+")
        text = f"{x} pts ± {e}" if "%" in fmt else f"{x} ± {e}"
    elif "%" in fmt:
        text = f"{100 * change:+.2f} pts"
    else:
        text = "+" + fmt.format(change) if change >= 0 else fmt.format(change)
    text += f" ({relative:+.1%})" if relative == relative else ""
    return ("~ " if within_noise(change, se) else "") + text


def changes_note(paired: list[bool]) -> str:
    """The footnote of a table of changes: how their errors were taken, and what "~" means."""
    how = ("paired: the runs share their random numbers (same seed, paths and population groups), so each error "
           "is the spread of the per-path and per-group differences" if all(paired) else
           "unpaired for runs that do not share their random numbers (the errors of the two in quadrature)")
    return (f"errors of changes {how}; ~ not distinguishable from noise (smaller than {NOISE:g} "
            f"errors); percent only against a positive reference at least {RELATIVE_BASE:g} times its error")


def changes_table(columns: list[tuple[str, dict[str, float]]], reference: int = 0,
                  errors: list[tuple[dict[str, float], bool]] | None = None,
                  names: dict[str, str] | None = None) -> str:
    """Each figure's change against the reference column, one column per other run or cell."""
    rows = changes(columns, reference, errors)
    if not rows:
        return ""
    names = names or labels()
    texts = {key: [format_change(key, *c[key]) for _, c in rows] for key in ROWS}
    width = max(len(names[k]) for k in ROWS)
    col = max(22, *(len(label) for label, _ in rows), *(len(t) for row in texts.values() for t in row))
    lines = [f"changes against {columns[reference][0]}:",
             " " * width + "  " + "  ".join(label.rjust(col) for label, _ in rows)]
    for key in ROWS:
        lines.append(names[key].ljust(width) + "  " + "  ".join(t.rjust(col) for t in texts[key]))
    paired = [p for i, (_, p) in enumerate(errors) if i != reference] if errors is not None else [False]
    return "\n".join(lines + [changes_note(paired)])


def render(ds: xr.Dataset, path: Path, seconds: float) -> str:
    """The summary `simulator run` prints."""
    n_paths, horizon = ds.sizes["path"], ds.sizes["month"]
    months = steady_months(ds)
    top = ds["quantile"].values[-1]
    window = ds.attrs["capital_window"]
    head = (f"{ds.attrs['title']}: {n_paths} path(s) x {horizon} months, seed {ds.attrs['seed']}, {seconds:.1f} s\n"
            f"{ERROR_NOTE}\n"
            f"delinquency ratios over months {months.start}-{months.stop}; yields and ROA a year over months "
            f"1-{horizon}; capital year: the book as it stands at the end of month {ds.attrs['capital_month']} and "
            f"its loss in {window}, RAROC that year's; VaR and expected shortfall at {top:.1%}; economic capital at "
            f"the scenario's level; income basis: {ds.attrs.get('income_basis', 'cash').replace('_', ' ')}")
    weights = ds["path_weight"]
    if not bool((weights == 1.0).all()):
        target = json.loads(ds.attrs["scenario_resolved"])["capital"]["importance_quantile"]
        head += (f"\nimportance sampling of the factor toward the {target:.1%} "
                 f"loss quantile: paths weighted by their likelihood ratios (mean weight {float(weights.mean()):.3f})")
    cols = columns(ds)
    body = table(cols, labels(months, window))
    note = tail_note(cols)
    if note:
        body += "\n" + note
    elif not sweep_names(ds):
        count = int(ds["tail_paths"].sel(quantile=top, view="book"))
        body += f"\n(VaR error: bootstrap over the {n_paths} paths, {count} of them at or beyond the VaR)"
    return f"{head}\n{body}\nresults: {path}"


# ---------------------------------------------------------------------------------------------
FORMATS = ("table", "csv", "json")


def _number(x: float) -> float | None:
    return float(x) if x == x and math.isfinite(x) else None


def records(columns: list[tuple[str, dict[str, float]]], reference: int | None = None,
            errors: list[tuple[dict[str, float], bool]] | None = None) -> list[dict]:
    """One record per run (or cell) and figure: its value and error, and with a `reference` the change
    against it, its error, the change in percent (where shown), whether it is within noise and whether
    its error is paired. Not estimated: None."""
    found = dict(changes(columns, reference, errors)) if reference is not None and len(columns) > 1 else {}
    out = []
    for i, (label, head) in enumerate(columns):
        for key in ROWS:
            row = {"run": label, "figure": key, "value": _number(head[key]), "se": _number(error_of(head, key)),
                   "lower_bound": too_few(head, key)}
            if label in found and i != reference:
                c = found[label][key]
                row |= {"change": _number(c.change), "change_se": _number(c.se), "relative_change": _number(c.relative),
                        "within_noise": within_noise(c.change, c.se),
                        "paired": errors[i][1] if errors is not None else False}
            out.append(row)
    return out


def export(rows: list[dict], form: str, warnings: list[str] = ()) -> str:
    """`records` as CSV (one row each, warnings as leading "# " lines) or JSON ({"warnings", "figures"})."""
    if form == "json":
        return json.dumps({"warnings": list(warnings), "figures": rows}, indent=1)
    import csv
    import io

    buffer = io.StringIO()
    for line in warnings:
        buffer.write(f"# {line}\n")
    keys = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return buffer.getvalue().rstrip("\n")
