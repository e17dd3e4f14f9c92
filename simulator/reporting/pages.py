"""The report's pages: one self-contained HTML page of a run (`build`) and of several runs side by
side (`compare`), the figures embedded, written atomically."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np
import xarray as xr

from ..fitting import calibration
from ..engine import faults
from ..config import files
from . import metrics, readback, summary
from ..results import dataset
from .figures import Drawing, backtest_figure, compare_figures, figures, fit_figures, frontier_points


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 2em auto;
       max-width: 1280px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
p.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 0.25em 0.7em; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #bbb; white-space: normal; vertical-align: bottom; }
table.runs { margin-bottom: 1.2em; }
table.runs thead th { overflow-wrap: anywhere; min-width: 6em; }
table.runs td:first-child { white-space: normal; min-width: 16em; }
table.runs th.reference { background: #f3f6fa; }
.wide { overflow-x: auto; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; box-sizing: border-box; }
figcaption { color: #444; font-size: 0.92em; max-width: 60em; }
figcaption b { color: #222; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
dt { font-weight: bold; margin-top: 0.5em; }
dd { margin-left: 1.5em; }
table.vars th, table.vars td { text-align: left; white-space: normal; }
table.vars td.desc { white-space: normal; }
table.key td:nth-child(2) { white-space: normal; text-align: left; }
label { font-weight: bold; margin-right: 0.5em; }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


BLOCK = 5           # runs or cells side by side in one table of figures; more go on in further tables
CHANGE_BLOCK = 4    # ... in one table of changes (wider cells: the change and its share)
MARK = ' class="reference"'


def _figure_tables(columns: list[tuple[str, dict[str, str]]], reference: str = "", size: int = BLOCK) -> str:
    """Tables of headline figures as shown (one row per figure of summary.ROWS, one column per run or
    cell, `reference` marked), in blocks of `size` columns so that each fits the page."""
    tables = []
    for start in range(0, len(columns), size):
        block = columns[start:start + size]
        header = "".join(f'<th{MARK if label == reference else ""}>{_e(label)}</th>' for label, _ in block)
        rows = "".join(f"<tr><td>{_e(label)}</td>" + "".join(f"<td>{_e(cells[key])}</td>" for _, cells in block)
                       + "</tr>" for key, (label, _, _) in summary.ROWS.items())
        tables.append(f'<table class="runs"><thead><tr><th>figure</th>{header}</tr></thead><tbody>{rows}</tbody>'
                      f"</table>")
    return "".join(tables)


def headline_table(columns: list[tuple[str, dict[str, float]]], reference: str = "") -> str:
    """HTML table of headline figures: one row per figure, a value column for one run, else one
    column per run or cell in tables of BLOCK columns (the reference column marked)."""
    if len(columns) == 1:
        (_, head), = columns
        rows = "".join(f"<tr><td>{_e(label)}</td><td>{_e(summary.shown(key, head))}</td></tr>"
                       for key, (label, _, _) in summary.ROWS.items())
        return (f'<table><thead><tr><th>figure</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>'
                + _note_html(columns))
    shown = [(label, {key: summary.shown(key, head) for key in summary.ROWS}) for label, head in columns]
    return _figure_tables(shown, reference) + _note_html(columns)


def change_columns(columns: list[tuple[str, dict[str, float]]], cells: list[xr.Dataset],
                   reference: int) -> tuple[list[tuple[str, dict[str, str]]], list[bool]]:
    """Each figure's change against the reference column, as the page shows it (summary.format_change:
    the change ± its standard error, "~" in front within noise), for every other column, and whether
    each one's errors are paired; `cells` the columns' Datasets (summary.difference_errors, as
    `simulator compare` prints them). The one place the page reads `summary.changes`."""
    errors = summary.difference_errors(cells, reference)
    shown = [(label, {key: summary.format_change(key, *change[key]) for key in summary.ROWS})
             for label, change in summary.changes(columns, reference, errors)]
    return shown, [is_paired for i, (_, is_paired) in enumerate(errors) if i != reference]


def changes_html(columns: list[tuple[str, dict[str, float]]], cells: list[xr.Dataset], reference: int) -> str:
    """The section of each figure's change against the reference run or cell, with its standard error
    and the footnote `simulator compare` prints under its table (empty for one column)."""
    if len(columns) < 2:
        return ""
    name = columns[reference][0]
    shown, paired = change_columns(columns, cells, reference)
    return (f'<section id="changes"><h2>Changes against {_e(name)}</h2>'
            f"<p>Each figure of every other run or cell less that of <b>{_e(name)}</b> (the reference: "
            f"<code>--reference</code>, else the first run), in its units (ratios in percentage points) and as a "
            f"share of the reference's value. Each change carries its Monte Carlo standard error (±), "
            f"paired when the runs share their random numbers (the same seed, paths and population groups), "
            f"else the two runs' "
            f"errors in quadrature; <code>~</code> marks a change within {summary.NOISE:g} errors, not "
            f"distinguishable from noise.</p>{_figure_tables(shown, size=CHANGE_BLOCK)}"
            f'<p class="note">{_e(summary.changes_note(paired))}</p></section>')


def _note_html(columns: list[tuple[str, dict[str, float]]]) -> str:
    note = summary.tail_note(columns)
    return f"<p class=\"note\">{_e(note)}</p>" if note else ""


def _figure_html(drawing: Drawing) -> str:
    data = base64.b64encode(drawing.png).decode("ascii")
    return (f'<figure id="{_e(Path(drawing.name).stem)}"><img src="data:image/png;base64,{data}" '
            f'alt="{_e(drawing.title)}"><figcaption><b>{_e(drawing.title)}.</b> {_e(drawing.caption)}'
            f"</figcaption></figure>")


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_e(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _conventions_html(ds: xr.Dataset) -> str:
    conventions = "".join(f"<dt>{_e(k[len('convention_'):].replace('_', ' '))}</dt><dd>{_e(v)}</dd>"
                          for k, v in ds.attrs.items() if k.startswith("convention_"))
    rows = "".join(f'<tr><td>{_e(name)}</td><td>{_e(" x ".join(var.dims) or "-")}</td>'
                   f'<td class="desc">{_e(var.attrs.get("display_units", var.attrs.get("units", "")))}</td>'
                   f'<td class="desc">{_e(var.attrs.get("description", ""))}</td></tr>'
                   for name, var in ds.data_vars.items())
    return (f"<h2>Conventions</h2><dl>{conventions}</dl>"
            f"<h3>Variables and units (results.nc)</h3><div class=\"wide\"><table class=\"vars\"><thead><tr><th>variable</th>"
            f"<th>dimensions</th><th>units</th><th>description</th></tr></thead><tbody>{rows}</tbody></table></div>")


BAND_COLUMNS = {  # variable: (heading, format)
    "applications": ("applications", "{:,.0f}"), "approval_rate": ("approval rate", "{:.1%}"),
    "takeup_rate": ("take-up", "{:.1%}"), "mean_pd_12m": ("predicted 12-month bad rate", "{:.2%}"),
    "bad_rate_12m": ("realised 12-month bad rate", "{:.2%}"), "fraud_share": ("of which fraud", "{:.2%}"),
    "mean_apr": ("mean APR", "{:.1%}"),
    "loss": ("loss (yuan)", "{:,.0f}"), "profit": ("profit (yuan)", "{:,.0f}"),
}


def score_band_html(ds: xr.Dataset) -> str:
    """The score-band table: the funnel, calibration (mean pd_12m against the realised 12-month bad
    rate), price, and loss and profit over the horizon, one row per band."""
    table = metrics.score_band_table(ds)
    head = "".join(f"<th>{_e(h)}</th>" for h, _ in BAND_COLUMNS.values())
    rows = []
    for band in table["score_band"].values:
        row = table.sel(score_band=band)
        cells = "".join(f"<td>{fmt.format(float(row[k])) if np.isfinite(float(row[k])) else 'n/a'}</td>"
                        for k, (_, fmt) in BAND_COLUMNS.items())
        rows.append(f"<tr><th>{_e(band)}</th>{cells}</tr>")
    return f"<table><thead><tr><th>score band</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


BAND_SCRIPT = """<script>
document.getElementById("band-cell").addEventListener("change", function () {
  for (const table of document.querySelectorAll(".band-cell")) table.hidden = table.dataset.cell !== this.value;
});
</script>"""


def band_tables_html(ds: xr.Dataset) -> str:
    """The score-band table of the run, or of a sweep every cell's, one shown at a time (chosen
    in a list)."""
    cells = dataset.cells(ds)
    if not dataset.sweep_names(ds):
        return score_band_html(ds)
    options = "".join(f'<option value="{i}">{_e(label)}</option>' for i, (label, _) in enumerate(cells))
    tables = "".join(f'<div class="band-cell" data-cell="{i}"{" hidden" if i else ""}>{score_band_html(ds.isel(sel))}'
                     f"</div>" for i, (_, sel) in enumerate(cells))
    return (f'<p><label for="band-cell">cell</label><select id="band-cell">{options}</select></p>{tables}'
            f"{BAND_SCRIPT}")


def frontier_key_html(ds: xr.Dataset) -> str:
    """The key to the frontier's numbered points: each number's cell, loss rate and pre-tax income."""
    rows = "".join(f"<tr><td>{n}</td><td>{_e(label)}</td><td>{loss:.2%}</td><td>{income:,.0f}</td></tr>"
                   for n, label, loss, income in frontier_points(ds))
    return ('<table class="key"><thead><tr><th>point</th><th>cell</th><th>loss rate</th><th>pre-tax income '
            f"(yuan)</th></tr></thead><tbody>{rows}</tbody></table>")


def render_html(ds: xr.Dataset, drawings: list[Drawing]) -> str:
    """The report page of one results Dataset, figures embedded as data URIs."""
    n_paths, horizon = ds.sizes["path"], ds.sizes["month"]
    months = dataset.steady_months(ds)
    top = float(ds["quantile"].values[-1])
    columns = summary.columns(ds)
    overrides = json.loads(ds.attrs.get("scenario_overrides", "[]"))
    names = dataset.sweep_names(ds)
    sweep = (f"<p>Sweep over {_e(', '.join(names))}: {len(columns)} cells, each with the same applicants and "
             f"random draws (common random numbers).</p>" if names else "")
    body = [
        f"<h1>{_e(ds.attrs.get('title', 'Monte Carlo run'))}</h1>",
        f'<p class="meta">{n_paths} path(s) x {horizon} months, seed {_e(ds.attrs.get("seed", ""))}, '
        f'simulator {_e(ds.attrs.get("simulator_version", ""))}; money in yuan (CNY).</p>',
        sweep,
        "<h2>Headline figures</h2>",
        f"<p>Means over paths; delinquency ratios over months {months.start}-{months.stop}; VaR and expected "
        f"shortfall at {top:.1%}; economic capital at the scenario's level.</p>",
        headline_table(columns),
        "<h2>By score band</h2>",
        band_tables_html(ds),
        "<h2>Figures</h2>",
        *(_figure_html(d) + (frontier_key_html(ds) if d.name == "policy_frontier.png" else "") for d in drawings),
        "<h2>Scenario</h2>",
        f"<p>File <code>{_e(ds.attrs.get('scenario_file', ''))}</code>"
        + (f", overrides <code>{_e(' '.join(overrides))}</code>" if overrides else "") + ".</p>",
        f"<pre>{_e(ds.attrs.get('scenario_text', ''))}</pre>",
        _conventions_html(ds),
    ]
    return _page(ds.attrs.get("title", "Monte Carlo run"), "\n".join(part for part in body if part))


def _check_outputs(folder: Path, option: str, inputs: list[Path], pages: list[str]) -> None:
    """Refuse, before anything is drawn, a page's folder (and its figures/) that cannot be written, or
    a page there that is one of `inputs` or not a file."""
    files.check_output(folder, option, inputs, folder=True)
    files.check_output(folder / "figures", option, inputs, folder=True)
    for name in pages:
        files.check_output(folder / name, option, inputs)


def _write_figures(folder: Path, drawings: list[Drawing], option: str, inputs: list[Path]) -> None:
    """Write the figures into folder/figures/, each checked first (none replaces an input), so that a
    refusal writes nothing."""
    for drawing in drawings:
        files.check_output(folder / "figures" / drawing.name, option, inputs)
    for drawing in drawings:
        files.write_bytes(folder / "figures" / drawing.name, drawing.png)


def build(folder: Path, ds: xr.Dataset | None = None, processes: int | None = None) -> Path:
    """Draw the figures of folder/results.nc (or of `ds`, the Dataset just written there, not read
    back) into folder/figures/ on `processes` (default: the cores), write folder/report.html; its path.
    The folder is checked before anything is drawn (`DIR` in errors: `simulator report DIR`)."""
    folder = Path(folder)
    if ds is None:
        _, ds = readback.open_run(folder)
    inputs = [readback.results_path(folder)]
    _check_outputs(folder, "DIR", inputs, ["report.html"])
    faults.before_report()
    drawings = figures(ds, processes)
    _write_figures(folder, drawings, "DIR", inputs)
    path = folder / "report.html"
    files.write_bytes(path, render_html(ds, drawings).encode("utf-8"))
    return path


def _against_base_html(rows) -> str:
    """Each estimate written (with its 95% interval where it has one) beside the base scenario's value."""
    def interval(e) -> str:
        lo, hi = e.interval()
        return f"[{lo:.4g}, {hi:.4g}]" if np.isfinite(e.se) else "(derived)"

    body = "".join(f"<tr><td><code>{_e(name)}</code></td><td>{e.value:.4g}</td><td>{_e(interval(e))}</td>"
                   f"<td>{value:.4g}</td></tr>" for name, e, value in rows)
    return ("<table><thead><tr><th>key</th><th>tape</th><th>95% interval</th><th>base scenario</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")


def fit_report(path: Path, found: dict, base, tape: Path, predicted: dict[str, float], report_text: str) -> Path:
    """The calibration's fit report: the estimates (with their intervals and observations) as printed,
    and the figures of the tape against the base scenario; written atomically to `path`."""
    drawings = fit_figures(found, base, predicted)
    body = [f"<h1>Calibration of {_e(tape)}</h1>",
            f'<p class="meta">{found["accounts"]:,} accounts, {found["account_months"]:,} account-months; base '
            f"scenario <code>{_e(base.run.name)}</code>.</p>",
            "<h2>The tape against the base</h2>", _against_base_html(calibration.against_base(found, base)),
            "<h2>Estimates</h2>", f"<pre>{_e(report_text)}</pre>",
            "<h2>Figures</h2>", *(_figure_html(d) for d in drawings)]
    files.write_bytes(Path(path), _page(f"Calibration of {tape}", "\n".join(body)).encode("utf-8"))
    return Path(path)


def backtest_report(folder: Path, ds: xr.Dataset, table_text: str) -> Path:
    """A backtest's page, folder/backtest.html: the points inside the band by figure, and the figure."""
    drawing = backtest_figure(ds)
    files.write_bytes(Path(folder) / "figures" / drawing.name, drawing.png)
    body = [f"<h1>Backtest of {_e(ds.attrs['scenario_file'])}</h1>",
            f'<p class="meta">Tape <code>{_e(ds.attrs["tape"])}</code>, months {ds.attrs["first_month"]} to '
            f'{ds.attrs["last_month"]}: {ds.attrs["accounts_replayed"]:,} accounts replayed '
            f'({ds.attrs["accounts_left_out"]:,} from before the tape left out), {ds.attrs["paths"]} paths, '
            f'seed {ds.attrs["seed"]}.</p>',
            "<h2>Points inside the band</h2>", f"<pre>{_e(table_text)}</pre>",
            "<h2>Figure</h2>", _figure_html(drawing)]
    path = Path(folder) / "backtest.html"
    files.write_bytes(path, _page(f"Backtest of {ds.attrs['scenario_file']}", "\n".join(body)).encode("utf-8"))
    return path


def _runs(folders: list[Path]) -> list[tuple[str, xr.Dataset, dict[str, int]]]:
    """(label, Dataset, cell selection) of every run and every cell of a sweep, labelled as `compare` prints."""
    out = []
    for folder in folders:
        path, ds = readback.open_run(folder)
        name = path.parent.name
        for label, sel in dataset.cells(ds):
            out.append((f"{name}: {label}" if label else name, ds, sel))
    return out


def check_compare(folders: list[Path], out: Path) -> list[Path]:
    """Refuse, before any run is read, an `out` that cannot take compare.html and figures/ (`--out` in
    errors); the files the runs have (results, report, figures), which `compare` never replaces."""
    inputs = []
    for folder in folders:
        path = readback.results_path(folder)
        inputs += [path, *(p for p in path.parent.glob("*") if p.is_file()), *path.parent.glob("figures/*")]
    _check_outputs(Path(out), "--out", inputs, ["compare.html"])
    return inputs


def compare(folders: list[Path], out: Path, reference: str | None = None) -> Path:
    """Draw two or more runs side by side into out/compare.html (figures in out/figures/), with each
    figure's change against the `reference` run or cell (its label, or part of it; default the
    first); its path. `out` is checked before anything is read or drawn, and nothing the runs have
    is replaced."""
    out = Path(out)
    inputs = check_compare(folders, out)
    runs = _runs(folders)
    cells = [ds.isel(sel) for _, ds, sel in runs]
    columns = [(label, summary.headline(cell)) for (label, _, _), cell in zip(runs, cells)]
    base = summary.reference_index(columns, reference)
    drawings = compare_figures(runs)
    _write_figures(out, drawings, "--out", inputs)
    sources = "".join(f"<li><code>{_e(Path(f))}</code></li>" for f in folders)
    body = [
        "<h1>Comparison of runs</h1>",
        f'<p class="meta">{len(runs)} run(s) or cell(s) from:</p><ul>{sources}</ul>',
        "<h2>Headline figures</h2>",
        "<p>Means over paths; delinquency ratios over each run's steady months (13 on when the horizon allows); "
        "VaR and expected shortfall at each run's top quantile.</p>",
        headline_table(columns, columns[base][0] if len(columns) > 1 else ""),
        changes_html(columns, cells, base),
        "<h2>Figures</h2>",
        *(_figure_html(d) for d in drawings),
    ]
    path = out / "compare.html"
    files.write_bytes(path, _page("Comparison of runs", "\n".join(body)).encode("utf-8"))
    return path
