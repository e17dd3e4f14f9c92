"""The figures of a report: matplotlib drawings (PNG bytes with a title and a caption) of one run's
results, and of several runs side by side (`compare_figures`)."""
from __future__ import annotations

import io
import itertools
import json
import multiprocessing
import os
import sys
import textwrap
import tomllib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import resources

import numpy as np
import xarray as xr
from matplotlib import colormaps, colors, rc_context
from matplotlib.cm import ScalarMappable
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from . import metrics, summary
from ..results import dataset
from ..codes import PRODUCTS
from ..model.tail import MIN_TAIL_PATHS, path_mean

DPI = 100
STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "figure.labelsize": 10,
    "figure.titlesize": 11,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "lines.linewidth": 1.6,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "image.cmap": "viridis",
}
# Okabe-Ito colours (readable by colour-blind readers); the total in black.
CYCLE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000"]
PRODUCT_COLOURS = dict(zip(PRODUCTS, CYCLE[:-1])) | {"total": "#000000"}   # by product code
GAIN, LOSS, NET = "#009E73", "#D55E00", "#0072B2"
NO_DATA = "no data"
PERCENT = PercentFormatter(xmax=1.0)


@contextmanager
def style():
    """The report's matplotlib style (rcParams), applied for the figures drawn inside the block."""
    with rc_context(STYLE):
        yield


@dataclass
class Drawing:
    """A drawn figure: file name, PNG bytes, title and the caption that says how to read it."""
    name: str
    png: bytes
    title: str
    caption: str


# --- helpers ---------------------------------------------------------------------------------------------

def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _axes(width: float, height: float) -> tuple[Figure, object]:
    """A figure with one pair of axes."""
    fig = _figure(width, height)
    return fig, fig.subplots()


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _has_data(values) -> bool:
    """Some finite value that is not zero."""
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    return finite.size > 0 and bool(np.any(finite != 0))


def _no_data(ax, what: str = "") -> None:
    """Write 'no data' in the axes instead of leaving them empty."""
    ax.text(0.5, 0.5, NO_DATA + (f"\n({what})" if what else ""), transform=ax.transAxes, ha="center",
            va="center", fontsize=12, color="#666666")
    ax.set_facecolor("#f2f2f2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _money_scale(values) -> tuple[float, str]:
    """(divisor, unit label) so that money axes show few digits."""
    arr = np.abs(np.asarray(values, dtype=float))
    top = np.nanmax(arr) if np.isfinite(arr).any() else 0.0
    if top >= 1e9:
        return 1e9, "billion yuan"
    if top >= 1e6:
        return 1e6, "million yuan"
    if top >= 1e4:
        return 1e3, "thousand yuan"
    return 1.0, "yuan"


def _money_formatter(scale: float) -> FuncFormatter:
    """Tick labels in units of `scale`, without a trailing '.0'."""
    def label(value: float, _) -> str:
        text = f"{value / scale:,.1f}"
        return text[:-2] if text.endswith(".0") else text
    return FuncFormatter(label)


def _pick(x, selection: dict[str, int]):
    """One cell of a metric (its sweep dims that are present selected by position)."""
    return x.isel({k: v for k, v in selection.items() if k in x.dims})


def _array(x) -> np.ndarray:
    """The values of a DataArray as floats."""
    return np.asarray(x.values, dtype=float)


def _mean_paths(x, weights=None):
    return path_mean(x, weights) if "path" in x.dims else x


CAPTIONS = tomllib.loads(resources.files("simulator.reporting").joinpath("captions.toml").read_text())


def _drawing(name: str, png: bytes, **fields) -> Drawing:
    """The figure `name` with its title and caption (captions.toml, `fields` filled in)."""
    text = CAPTIONS[name]
    return Drawing(f"{name}.png", png, text["title"], text["caption"].format(**fields))


# --- figures ----------------------------------------------------------------------------------------------

def vintage_figure(ds: xr.Dataset) -> Drawing:
    """Cumulative charge-off rate by months on book: one line per vintage, one panel per product."""
    sel = dataset.cells(ds)[0][1]
    curves = _mean_paths(_pick(metrics.vintage_curves(ds)["cumulative_charge_off_rate"], sel))
    horizon = ds.sizes["month"]
    products = list(curves["product"].values)
    vintages = curves["vintage"].values
    if vintages.size == 0:          # an existing book alone: no new business, no vintage
        with style():
            fig, ax = _axes(9.0, 4.2)
            _no_data(ax, "no new business: the run has no vintages")
            png = _png(fig)
        drawing = _drawing("vintage_curves", png)
        return Drawing(drawing.name, png, drawing.title, "This run has no new business, so no vintages to draw. "
                       + drawing.caption)
    norm = colors.Normalize(vmin=vintages.min(), vmax=max(vintages.max(), vintages.min() + 1))
    with style():
        fig = _figure(4.0 * len(products) + 1.0, 4.2)
        axes = fig.subplots(1, len(products), sharey=True, squeeze=False)[0]
        cmap = colormaps["viridis"]
        drawn = False
        for ax, product in zip(axes, products):
            panel = curves.sel(product=product)
            ax.set_title(product)
            lines = 0
            for v in vintages:
                curve = panel.sel(vintage=v)
                mob = curve["months_on_book"].values
                y = np.where(mob <= horizon - v, curve.values, np.nan)  # months observed within the run
                if not np.isfinite(y).any():
                    continue
                ax.plot(mob, y, color=cmap(norm(v)), linewidth=1.2)
                lines += 1
            if lines == 0 or not _has_data(panel.values):
                _no_data(ax, "no charge-offs")
                continue
            drawn = True
            ax.yaxis.set_major_formatter(PERCENT)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("months on book")
        if drawn:
            axes[0].set_ylabel("cumulative charge-off rate\n(% of original amount)")
            bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes), shrink=0.9)
            bar.set_label("vintage (origination month)")
        png = _png(fig)
    return _drawing("vintage_curves", png)


def delinquency_figure(ds: xr.Dataset) -> Drawing:
    """30+ and 90+ ratios of balances over time by product and in total."""
    sel = dataset.cells(ds)[0][1]
    dq = _pick(metrics.delinquency(ds), sel)
    with style():
        fig = _figure(10.0, 4.2)
        axes = fig.subplots(1, 2, sharey=True)
        for ax, name, title in zip(axes, ["dpd30_ratio", "dpd90_ratio"], ["30+ (M2 and worse)", "90+ (M4 and worse)"]):
            ratio = _mean_paths(dq[name])
            ax.set_title(title)
            if not _has_data(ratio.values):
                _no_data(ax)
                continue
            for product in ratio["product"].values:
                line = ratio.sel(product=product)
                total = product == "total"
                ax.plot(line["month"].values, line.values, label=str(product),
                        color=PRODUCT_COLOURS.get(str(product)), linewidth=2.4 if total else 1.4,
                        zorder=3 if total else 2)
            ax.yaxis.set_major_formatter(PERCENT)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("month of the run")
            ax.set_ylim(bottom=0)
        axes[0].set_ylabel("share of outstanding balance")
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            axes[1].legend(handles, labels, loc="upper left")
        png = _png(fig)
    return _drawing("delinquency", png)


def roll_rate_figure(ds: xr.Dataset) -> Drawing:
    """Heat map of roll rates: month x transition, colour in %."""
    sel = dataset.cells(ds)[0][1]
    rates = _mean_paths(_pick(metrics.roll_rates(ds)["roll_rate"], sel)).transpose("transition", "month")
    values = _array(rates)
    months = rates["month"].values
    transitions = [str(t) for t in rates["transition"].values]
    with style():
        fig = _figure(10.0, 0.45 * len(transitions) + 2.0)
        ax = fig.subplots()
        if not _has_data(values):
            _no_data(ax)
        else:
            norm, ticks = _rate_norm(values)
            cmap = colormaps["magma_r"].with_extremes(bad="#eeeeee")
            shown = np.ma.masked_invalid(values)
            image = ax.imshow(shown, aspect="auto", cmap=cmap, norm=norm, interpolation="nearest",
                              extent=(months[0] - 0.5, months[-1] + 0.5, len(transitions) - 0.5, -0.5))
            ax.set_yticks(range(len(transitions)), transitions)
            ax.set_xlabel("month of the run")
            ax.set_ylabel("transition")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(False)
            bar = fig.colorbar(image, ax=ax, pad=0.01)
            bar.set_ticks(ticks, labels=[_percent_label(t) for t in ticks])
            bar.minorticks_off()
            bar.set_label("roll rate (logit scale)")
            # Each transition's mean over the months, written at the right.
            finite = np.isfinite(values)
            counts = finite.sum(axis=1)
            means = np.where(counts > 0, np.where(finite, values, 0.0).sum(axis=1) / np.maximum(counts, 1), np.nan) \
                if finite.any() else None   # a transition never seen has no mean (NaN), without a warning
            if means is not None:
                secondary = ax.secondary_yaxis("right")
                secondary.set_yticks(range(len(transitions)),
                                     [f"{m:.1%}" if np.isfinite(m) else "" for m in means])
                secondary.tick_params(length=0, labelsize=8)
                secondary.set_ylabel("mean", fontsize=8)
        png = _png(fig)
    return _drawing("roll_rates", png)


def _logit(p):
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _expit(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _rate_norm(values: np.ndarray) -> tuple[colors.Normalize, list[float]]:
    """A logit colour scale over the rates' range (small and near-1 rates both stay readable), and its ticks."""
    finite = values[np.isfinite(values)]
    low = float(np.clip(finite.min(), 1e-3, 0.5))
    high = float(np.clip(finite.max(), 0.5, 0.99))
    norm = colors.FuncNorm((_logit, _expit), vmin=low, vmax=high)
    candidates = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]
    return norm, [t for t in candidates if low <= t <= high] or [low, high]


def _percent_label(value: float) -> str:
    return f"{value:.1%}" if value < 0.01 or value > 0.99 else f"{value:.0%}"


def loss_figure(ds: xr.Dataset) -> Drawing:
    """Histogram of path losses with EL, VaR and ES at the top quantile."""
    sel = dataset.cells(ds)[0][1]
    losses = _array(_pick(metrics.loss_distribution(ds), sel)).ravel()
    weights = _array(ds["path_weight"])
    weights, losses = weights[np.isfinite(losses)], losses[np.isfinite(losses)]
    top = float(ds["quantile"].values[-1])
    ds = ds.sel(view="book")           # the whole book's loss distribution
    el = float(_pick(ds["capital_expected_loss"], sel))
    var = float(_pick(ds["value_at_risk"].sel(quantile=top), sel))
    es = float(_pick(ds["expected_shortfall"].sel(quantile=top), sel))
    with style():
        fig, ax = _axes(9.0, 4.2)
        if not _has_data(losses):
            _no_data(ax, "no losses on any path")
        else:
            scale, unit = _money_scale(np.r_[losses, var, es])
            weighted = not np.all(weights == 1.0)
            _histogram(ax, losses, color=CYCLE[0], alpha=0.75, weights=weights,
                       label=f"paths ({losses.size}{', weighted' if weighted else ''})")
            same = np.isclose(es, var, rtol=1e-9, atol=0.005)
            for value, name, colour, dash in [(el, "EL", "#000000", "-"), (var, f"VaR {top:.1%}", LOSS, "--"),
                                              (es, f"ES {top:.1%}", "#CC79A7", ":")]:
                if np.isfinite(value):
                    ax.axvline(value, color=colour, linestyle=dash, linewidth=2,
                               label=f"{name}: {value / scale:,.{0 if scale == 1 else 1}f} {unit}"
                                     + (" (= VaR)" if name.startswith("ES") and same else ""))
            beyond = int(_pick(ds["tail_paths"].sel(quantile=top), sel))
            if beyond < MIN_TAIL_PATHS:     # too few paths in the tail to estimate it (tail.py)
                ax.plot([], [], " ", label=f"only {beyond} of {losses.size} paths at or beyond\nVaR {top:.1%}: "
                                          f"VaR and ES are\nlower bounds (see the headline)")
            ax.xaxis.set_major_formatter(_money_formatter(scale))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel(f"loss in the capital year, {ds.attrs['capital_window']}: net charge-offs ({unit})")
            ax.set_ylabel("paths (weighted: importance sampling)" if weighted else "paths")
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        png = _png(fig)
    return _drawing("loss_distribution", png, top=top, tail=1 - top, month=ds.attrs["capital_month"])


def _histogram(ax, losses: np.ndarray, bins=None, **kwargs) -> None:
    if bins is None:
        bins = _bins([losses])
    ax.hist(losses, bins=bins, edgecolor="white", linewidth=0.5, **kwargs)


def _bins(samples: list[np.ndarray]) -> np.ndarray:
    values = np.concatenate([s[np.isfinite(s)] for s in samples])
    low, high = float(values.min()), float(values.max())
    if high <= low:  # one value (or one path): a bin around it
        width = abs(low) * 0.05 or 1.0
        low, high = low - width, high + width
    n = int(np.clip(np.sqrt(max(len(s) for s in samples)) * 2, 5, 40))
    return np.linspace(low, high, n + 1)


def calibration_figure(ds: xr.Dataset) -> Drawing:
    """Predicted pd against the observed rate by score band (bars)."""
    sel = dataset.cells(ds)[0][1]
    cal = _pick(metrics.score_band_calibration(ds), sel)
    bands = [str(b) for b in cal["score_band"].values]
    predicted = _array(_mean_paths(cal["predicted_pd"]))
    observed = _array(_mean_paths(cal["observed_rate"]))
    accounts = _array(_mean_paths(cal["accounts"]))
    with style():
        fig, ax = _axes(9.0, 4.2)
        if not (_has_data(predicted) or _has_data(observed)):
            _no_data(ax)
        else:
            x = np.arange(len(bands))
            ax.bar(x - 0.2, np.nan_to_num(predicted), width=0.4, label="predicted (mean PD, fraud at 1)", color=CYCLE[0])
            ax.bar(x + 0.2, np.nan_to_num(observed), width=0.4, label="observed", color=CYCLE[1])
            ax.set_xticks(x, [f"{b}\n{a:,.0f} acc." for b, a in zip(bands, accounts)])
            ax.yaxis.set_major_formatter(PERCENT)
            ax.set_xlabel("score band (accounts observed for 12 months)")
            ax.set_ylabel("rate of reaching 90+ within 12 months")
            ax.legend(loc="upper right")
        png = _png(fig)
    return _drawing("calibration", png)


def _cap_of(cell: xr.Dataset, ds: xr.Dataset) -> float:
    """The cap of a cell: a swept cap is a coordinate of the cell, else the scenario's."""
    return float(cell["apr_cap"]) if "apr_cap" in cell.coords else \
        float(json.loads(ds.attrs["scenario_resolved"])["policy"]["apr_cap"])


def _with_and_without_cap(cell: xr.Dataset, name: str = "approvals") -> tuple[np.ndarray, np.ndarray]:
    """Applications approved (or, with `name` "takeups", offers taken) by score band with the cap, and
    without it: the run's second decision pass with the cap lifted (`approvals_without_cap`)."""
    return (_array(cell[name].sum(("month", "product"))),
            _array(cell[f"{name}_without_cap"].sum("product")))


def cap_figure(ds: xr.Dataset) -> Drawing:
    """What the APR cap did by score band: applications approved and offers taken with the cap and
    without it (the same applicants decided with the cap lifted), and the mean price before and after
    it, all products together."""
    cell = ds.isel(dataset.cells(ds)[0][1])
    bands = [str(b) for b in cell["score_band"].values]
    approvals, without = _with_and_without_cap(cell)
    taken, taken_without = _with_and_without_cap(cell, "takeups")
    priced, approved = cell["cap_applications"], cell["approvals"].sum("month")
    with np.errstate(invalid="ignore", divide="ignore"):
        before = _array((cell["apr_before_cap"].fillna(0) * priced).sum("product") / priced.sum("product"))
        after = _array((cell["apr_after_cap"].fillna(0) * approved).sum("product") / approved.sum("product"))
    cap = _cap_of(cell, ds)
    with style():
        fig = _figure(11.0, 4.2)
        left, right = fig.subplots(1, 2)
        x = np.arange(len(bands))
        if not _has_data(without):
            _no_data(left)
        else:
            left.bar(x - 0.2, without, width=0.4, label="approved without the cap", color=CYCLE[5])
            left.bar(x + 0.2, approvals, width=0.4, label="approved with the cap", color=CYCLE[0])
            # The offers taken, a part of those approved, inside each bar.
            left.bar(x - 0.2, taken_without, width=0.4, label="of which taken, without", color="#2B8CBE",
                     hatch="///", edgecolor="white", linewidth=0)
            left.bar(x + 0.2, taken, width=0.4, label="of which taken, with", color="#004C80", hatch="///",
                     edgecolor="white", linewidth=0)
            left.set_xticks(x, bands)
            left.set_xlabel("score band")
            left.set_ylabel("applications approved, offers taken")
            left.set_ylim(top=1.35 * max(np.nanmax(without), np.nanmax(approvals)))
            left.legend(loc="upper left", ncols=2, fontsize=8)
        if not (_has_data(before) or _has_data(after)):
            _no_data(right)
        else:
            right.plot(x, before, marker="o", label="risk price (before the cap)", color=CYCLE[4])
            right.plot(x, after, marker="o", label="price offered (after the cap)", color=CYCLE[0])
            right.axhline(cap, color="#444444", linestyle="--", linewidth=1.0, label=f"cap {cap:.1%}")
            right.set_xticks(x, bands)
            right.yaxis.set_major_formatter(PERCENT)
            right.set_xlabel("score band")
            right.set_ylabel("mean all-in APR")
            right.legend(loc="upper right")
        png = _png(fig)
    share = float(cell["cap_bound"].sum() / max(1, int(cell["cap_applications"].sum())))
    return _drawing("apr_cap", png, share=share, cap=cap)


# --- sweeps: each figure against the swept value ---------------------------------------------------------

LINE_COLOURS = CYCLE[:-1]                     # without black
DASHES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


@dataclass
class SweepLayout:
    """How a sweep's figures are drawn: the swept key along the x axis (`key`, None when no key is
    left), and one line per combination of the other keys (`lines`: the selection and the line's
    style). The colour follows the first other key, the dash the second, the marker the rest, so
    that the legend (`legend`: label and style) has one entry per value, not one per combination."""
    key: str | None
    x: np.ndarray
    ticks: list[str]
    lines: list[tuple[dict[str, int], dict]]
    legend: list[tuple[str, dict]]

    def selection(self, others: dict[str, int], i: int) -> dict[str, int]:
        """The cell at position i of the swept key with the other keys at `others`."""
        return {**others, self.key: i} if self.key else dict(others)


def _value_text(value) -> str:
    value = np.asarray(value).item()
    return f"{value:g}" if isinstance(value, float) else str(value)


def sweep_layout(ds: xr.Dataset, without: tuple[str, ...] = ()) -> SweepLayout:
    """The layout of a sweep's figures: along x the numeric swept key with most values (else the
    key with most values), not one of `without` (keys drawn as panels)."""
    names = [n for n in dataset.sweep_names(ds) if n not in without]
    numeric = [n for n in names if np.issubdtype(ds[n].dtype, np.number)]
    key = max(numeric or names, key=lambda n: ds.sizes[n]) if names else None
    others = [n for n in names if n != key]
    if key is None:
        x, ticks = np.zeros(1), [""]
    else:
        # Evenly spaced, numeric values in increasing order: close values keep readable ticks.
        ticks = [_value_text(v) for v in ds[key].values]
        x = np.argsort(np.argsort(_array(ds[key]), kind="stable")).astype(float) if key in numeric else \
            np.arange(ds.sizes[key], dtype=float)
    grey = "#555555"
    legend = [(f"{others[0]}={_value_text(v)}", {"color": LINE_COLOURS[i % len(LINE_COLOURS)], "linestyle": "-"})
              for i, v in enumerate(ds[others[0]].values)] if others else []
    if len(others) > 1:
        legend += [(f"{others[1]}={_value_text(v)}", {"color": grey, "linestyle": DASHES[i % len(DASHES)]})
                   for i, v in enumerate(ds[others[1]].values)]
    rest = list(itertools.product(*(range(ds.sizes[n]) for n in others[2:])))
    if len(others) > 2:
        legend += [(", ".join(f"{n}={_value_text(ds[n].values[j])}" for n, j in zip(others[2:], index)),
                    {"color": grey, "linestyle": "none", "marker": MARKERS[k % len(MARKERS)]})
                   for k, index in enumerate(rest)]
    lines = []
    for index in itertools.product(*(range(ds.sizes[n]) for n in others)):
        style_ = {"color": LINE_COLOURS[index[0] % len(LINE_COLOURS)] if others else LINE_COLOURS[0],
                  "linestyle": DASHES[index[1] % len(DASHES)] if len(others) > 1 else "-",
                  "marker": MARKERS[rest.index(index[2:]) % len(MARKERS)] if len(others) > 2 else "o",
                  "markersize": 3.5, "linewidth": 1.4}
        lines.append((dict(zip(others, index)), style_))
    return SweepLayout(key, x, ticks, lines, legend)


def _legend_handles(layout: SweepLayout, extra: list[tuple[str, dict]] = ()) -> tuple[list, list[str]]:
    entries = [*layout.legend, *extra]
    return [Line2D([], [], **{"linewidth": 1.6, **s}) for _, s in entries], [label for label, _ in entries]


def _swept_axis(ax, layout: SweepLayout) -> None:
    """The swept key's values as the x axis's ticks (every value when there are few)."""
    if layout.key is None:
        ax.set_xticks([])
        return
    if len(layout.x) <= 12:
        ax.set_xticks(layout.x, layout.ticks, rotation=45 if max(map(len, layout.ticks)) > 5 else 0)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
        ax.xaxis.set_major_formatter(FuncFormatter(
            lambda v, _: layout.ticks[int(np.flatnonzero(layout.x == round(v))[0])] if round(v) in layout.x else ""))
    ax.set_xlabel(layout.key, fontsize=9)


def _format_axis(axis, key: str, values) -> str:
    """Tick labels for a headline figure (summary.ROWS): percent, money (the unit returned) or counts."""
    if "%" in summary.ROWS[key][2]:
        axis.set_major_formatter(PercentFormatter(1.0, decimals=1))
        return ""
    if "yuan" in summary.ROWS[key][0]:
        scale, unit = _money_scale(values)
        axis.set_major_formatter(_money_formatter(scale))
        return unit
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e3:,.0f}k" if abs(v) >= 1e4 else f"{v:,.0f}"))
    return ""


def _panels(n: int, columns: int = 4, width: float = 3.3, height: float = 2.7, legend_rows: int = 1):
    """A constrained figure of n panels in rows of `columns` (the spare ones hidden), room at the top
    for a legend; (figure, axes)."""
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    fig = _figure(width * columns + 0.6, height * rows + 0.9 + 0.2 * legend_rows)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _top_legend(fig, handles: list, labels: list[str]) -> None:
    """The legend above the panels, outside them, in as many columns as fit."""
    if handles:
        fig.legend(handles, labels, loc="outside upper center", ncols=min(len(handles), 6), fontsize=8.5)


def _swept_figure(ds: xr.Dataset, name: str, panels: list[tuple[str, object, object]], ylabel: str = "",
                  columns: int = 4, extra: list[tuple[str, dict]] = (), **fields) -> Drawing:
    """One panel per (title, value, format) against the swept value, one line per combination of the
    other keys: value(selection) is the cell's figure (or a pair (line, marker) of arrays for a
    panel that draws two things), format(ax, values) sets the y axis."""
    layout = sweep_layout(ds)
    with style():
        fig, axes = _panels(len(panels), columns)
        handles, labels = _legend_handles(layout, extra)
        for ax, (title, value, fmt) in zip(axes, panels):
            ax.set_title(textwrap.fill(title, 38), fontsize=9)
            drawn = []
            for others, line_style in layout.lines:
                y = np.array([value(layout.selection(others, i)) for i in range(len(layout.x))], dtype=float)
                drawn.append(y)
                ax.plot(layout.x, y, **line_style)
            if not _has_data(np.concatenate(drawn)):
                _no_data(ax)
                continue
            if fmt is not None:
                fmt(ax, np.concatenate(drawn))
            _swept_axis(ax, layout)
        if ylabel:
            fig.supylabel(ylabel, fontsize=9)
        _top_legend(fig, handles, labels)
        png = _png(fig)
    return _drawing(name, png, key=layout.key or "the cell", **fields)


def _percent_axis(ax, _values) -> None:
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))


def _headline_by_cell(ds: xr.Dataset):
    """sel -> the headline figures of the cell at positions `sel` (summary.headline, each cell once)."""
    names = dataset.sweep_names(ds)
    heads = {tuple(sel[n] for n in names): head for (_, sel), (_, head) in zip(dataset.cells(ds), summary.columns(ds))}
    return lambda sel: heads[tuple(sel[n] for n in names)]


def _headline_panel(head, key: str) -> tuple[str, object, object]:
    """A panel of one headline figure (summary.ROWS) against the swept value."""
    def fmt(ax, values) -> None:
        unit = _format_axis(ax.yaxis, key, values)
        if unit:
            ax.set_ylabel(unit, fontsize=8)
    return summary.ROWS[key][0], lambda sel: head(sel)[key], fmt


def _cap_cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: what the cap did against the swept value: the share of applications for which it bound,
    and by score band the approvals with the cap as a share of those without it."""
    bands = [str(b) for b in ds["score_band"].values]
    kept = {}

    def band_share(band: int):
        def value(sel: dict[str, int]) -> float:
            key = tuple(sorted(sel.items()))
            if key not in kept:
                approvals, without = _with_and_without_cap(ds.isel(sel))
                kept[key] = np.where(without > 0, approvals / np.where(without > 0, without, 1), np.nan)
            return kept[key][band]
        return value

    head = _headline_by_cell(ds)
    panels = [_headline_panel(head, "cap_bound_share"), _headline_panel(head, "approvals")]
    panels += [(f"band {b}: approved with the cap / without it", band_share(i), _percent_axis)
               for i, b in enumerate(bands)]
    return _swept_figure(ds, "apr_cap_cells", panels)


def _vintage_cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: the cumulative charge-off rate of all vintages together by months on book, one panel
    per value of the swept key, one line per combination of the others."""
    horizon = ds.sizes["month"]
    observed = ds["months_on_book"] <= horizon - ds["vintage"]
    original = ds["vintage_original"].sum("product").where(observed)
    charged = _mean_paths(ds["vintage_charged_off"].sum("product").cumsum("months_on_book"), ds.get("path_weight"))
    rate = charged.where(observed).sum("vintage") / original.sum("vintage").where(original.sum("vintage") > 0)
    return _over_time(ds, "vintage_curves_cells", rate, "months_on_book", "months on book",
                      "cumulative charge-off rate (all vintages and products)")


def _over_time(ds: xr.Dataset, name: str, series: xr.DataArray, dim: str, xlabel: str, ylabel: str) -> Drawing:
    """Sweep: a series over `dim`, one panel per value of the swept key (same axes), one line per
    combination of the other keys."""
    layout = sweep_layout(ds)
    values = _array(series)
    top = float(np.nanmax(values)) * 1.08 if _has_data(values) else 1.0
    with style():
        fig, axes = _panels(len(layout.x), height=2.5)
        handles, labels = _legend_handles(layout)
        for i, ax in enumerate(axes):
            ax.set_title(f"{layout.key}={layout.ticks[i]}" if layout.key else "", fontsize=9)
            drawn = False
            for others, line_style in layout.lines:
                line = _pick(series, layout.selection(others, i))
                if _has_data(line.values):
                    ax.plot(line[dim].values, line.values, **{**line_style, "marker": None})
                    drawn = True
            if not drawn:
                _no_data(ax)
                continue
            ax.set_ylim(0, top)
            ax.yaxis.set_major_formatter(PERCENT)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        fig.supxlabel(xlabel, fontsize=9)
        fig.supylabel(ylabel, fontsize=9)
        _top_legend(fig, handles, labels)
        png = _png(fig)
    return _drawing(name, png, key=layout.key or "the cell")


def _roll_rate_cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: each transition's roll rate (mean over the months) against the swept value."""
    rates = metrics.roll_rates(ds)["roll_rate"]
    with np.errstate(invalid="ignore"):
        mean = _mean_paths(rates).mean("month", skipna=True)
    panels = [(str(t), (lambda sel, t=t: float(_pick(mean.sel(transition=t), sel))), _percent_axis)
              for t in mean["transition"].values]
    return _swept_figure(ds, "roll_rates_cells", panels, "roll rate, mean over the months")


def _calibration_cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: by score band, the realised 12-month bad rate (lines) and the predicted PD (crosses)
    against the swept value."""
    calibration = metrics.score_band_calibration(ds)
    layout = sweep_layout(ds)
    bands = [str(b) for b in ds["score_band"].values]
    with style():
        fig, axes = _panels(len(bands), 3)
        handles, labels = _legend_handles(layout, [("realised", {"color": "#555555"}),
                                                   ("predicted (mean PD, fraud at 1)",
                                                    {"color": "#555555", "linestyle": "none", "marker": "x"})])
        for ax, band in zip(axes, bands):
            ax.set_title(f"band {band}", fontsize=9)
            cal = calibration.sel(score_band=band)
            drawn = []
            for others, line_style in layout.lines:
                cells = [layout.selection(others, i) for i in range(len(layout.x))]
                observed = np.array([float(_pick(cal["observed_rate"], s)) for s in cells])
                predicted = np.array([float(_pick(cal["predicted_pd"], s)) for s in cells])
                ax.plot(layout.x, observed, **line_style)
                ax.plot(layout.x, predicted, linestyle="none", marker="x", color=line_style["color"], markersize=5)
                drawn += [observed, predicted]
            if not _has_data(np.concatenate(drawn)):
                _no_data(ax)
                continue
            ax.yaxis.set_major_formatter(PERCENT)
            _swept_axis(ax, layout)
        fig.supylabel("rate of reaching 90+ within 12 months", fontsize=9)
        _top_legend(fig, handles, labels)
        png = _png(fig)
    return _drawing("calibration_cells", png, key=layout.key or "the cell")


def _waterfall_cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: each line of the P&L over the horizon (income up, costs down, pre-tax income) against
    the swept value."""
    steps = metrics.pnl_waterfall(ds)
    scale, unit = _money_scale(_array(steps))

    def fmt(ax, _values) -> None:
        ax.yaxis.set_major_formatter(_money_formatter(scale))
        ax.axhline(0, color="#444444", linewidth=0.8)

    panels = [(str(s).replace("_", " "), (lambda sel, s=s: float(_pick(steps.sel(step=s), sel))), fmt)
              for s in steps["step"].values]
    return _swept_figure(ds, "pnl_waterfall_cells", panels, f"over the horizon ({unit})")


CELL_FIGURES = ("approvals", "apr_after_cap", "pretax_income", "charged_off", "dpd30_ratio", "dpd90_ratio",
                "economic_capital", "raroc")


def cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: headline figures against the swept value, one panel a figure."""
    head = _headline_by_cell(ds)
    return _swept_figure(ds, "sweep_cells", [_headline_panel(head, key) for key in CELL_FIGURES])



def waterfall_figure(ds: xr.Dataset) -> Drawing:
    """P&L waterfall over the horizon: income lines up (the interest accrual up or down); funding, net
    charge-offs, the accrued interest written off, the allowance's build and operating costs down; pre-tax
    income."""
    sel = dataset.cells(ds)[0][1]
    steps = _pick(metrics.pnl_waterfall(ds), sel)
    steps = _mean_paths(steps)
    names = [str(s) for s in steps["step"].values]
    values = _array(steps)
    with style():
        fig, ax = _axes(10.0, 4.6)
        if not _has_data(values):
            _no_data(ax)
        else:
            scale, unit = _money_scale(np.cumsum(np.nan_to_num(values[:-1])).tolist() + values.tolist())
            running, low, high = 0.0, 0.0, 0.0
            for i, (name, value) in enumerate(zip(names, np.nan_to_num(values))):
                if i == len(names) - 1:  # the pre-tax income bar starts from zero
                    bottom, height, colour = 0.0, value, NET
                else:
                    bottom, height = running, value
                    colour = GAIN if value >= 0 else LOSS
                    running += value
                ax.bar(i, height, bottom=bottom, color=colour, width=0.65)
                top = max(bottom, bottom + height)
                low, high = min(low, bottom, bottom + height), max(high, top)
                ax.annotate(f"{value / scale:,.{0 if scale == 1 else 1}f}", (i, top), xytext=(0, 3),
                            textcoords="offset points", ha="center", va="bottom", fontsize=9)
                if i < len(names) - 1:
                    ax.plot([i + 0.33, i + 0.67], [running, running], color="#888888", linewidth=0.8)
            ax.axhline(0, color="#444444", linewidth=0.8)
            ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=8)
            ax.yaxis.set_major_formatter(_money_formatter(scale))
            ax.set_ylabel(f"over the horizon ({unit})")
            pad = 0.1 * (high - low) or 1.0       # room for the labels above the bars
            ax.set_ylim(low - (pad if low < 0 else 0.0), high + pad)
        png = _png(fig)
    return _drawing("pnl_waterfall", png)


def _coinciding(x: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[tuple[float, float], list[str]]:
    """The labels of points that coincide (to 4 significant digits), gathered under one point, so
    that one annotation names them all instead of several printed over each other."""
    groups: dict[tuple[float, float], list[str]] = {}
    keys: dict[tuple[str, str], tuple[float, float]] = {}
    for xi, yi, label in zip(x, y, labels):
        key = (f"{xi:.4g}", f"{yi:.4g}")
        groups.setdefault(keys.setdefault(key, (xi, yi)), []).append(label)
    return groups


def frontier_points(ds: xr.Dataset) -> list[tuple[int, str, float, float]]:
    """(number, cell label, loss rate, pre-tax income) of each cell of the frontier, numbered from 1
    in the order of the cells: the key to the numbers drawn on the frontier."""
    frontier = metrics.policy_frontier(ds)
    return [(k + 1, str(label), float(loss), float(income)) for k, (label, loss, income) in
            enumerate(zip(frontier["label"].values, _array(frontier["loss_rate"]), _array(frontier["pretax_income"])))]


LABEL_OFFSETS = [(4, 3), (4, -11), (-4, 3), (-4, -11), (7, -4), (-7, -4), (0, 7), (0, -15), (12, 8), (-12, 8),
                 (12, -16), (-12, -16)]     # points: right-above, right-below, left-above, ...


def _number_points(ax, groups: dict[tuple[float, float], list[str]], fontsize: float = 8.0) -> None:
    """Write each group's numbers beside its point, at the first of LABEL_OFFSETS where it overlaps
    no label written before (the nearest, when every one does): numbers that do not print over each other."""
    ax.autoscale_view()
    to_pixels = ax.transData.transform
    scale = ax.figure.dpi / 72.0
    r = 3.0 * scale      # the markers' radius: labels keep off the points too
    taken = [(px - r, py - r, px + r, py + r) for px, py in
             (to_pixels(point) for point in groups if np.isfinite(point[0]) and np.isfinite(point[1]))]
    for (x, y), labels in sorted(groups.items(), key=lambda item: -item[0][1]):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        text = ", ".join(labels)
        px, py = to_pixels((x, y))
        width, height = 0.62 * fontsize * scale * len(text), 1.0 * fontsize * scale
        best, best_overlap = LABEL_OFFSETS[0], np.inf
        for dx, dy in LABEL_OFFSETS:
            left = px + dx * scale - (width if dx < 0 else width / 2 if dx == 0 else 0)
            box = (left, py + dy * scale, left + width, py + dy * scale + height)
            overlap = sum(max(0.0, min(box[2], b[2]) - max(box[0], b[0])) * max(0.0, min(box[3], b[3]) - max(box[1], b[1]))
                          for b in taken)
            if overlap < best_overlap:
                best, best_overlap, best_box = (dx, dy), overlap, box
            if overlap == 0:
                break
        taken.append(best_box)
        dx, dy = best
        ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize, color="#222222",
                    ha="right" if dx < 0 else "center" if dx == 0 else "left", va="bottom", zorder=4)


def frontier_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: loss rate against pre-tax income, one numbered point per cell (the page lists the
    numbers), one panel per macro path, the cells along the swept key joined by a line."""
    points = frontier_points(ds)
    names = dataset.sweep_names(ds)
    number = {tuple(sel[n] for n in names): k + 1 for k, (_, sel) in enumerate(dataset.cells(ds))}
    loss = np.array([p[2] for p in points])
    income = np.array([p[3] for p in points])
    macro = "macro" in names and len(names) > 1
    layout = sweep_layout(ds, without=("macro",) if macro else ())
    panels = list(range(ds.sizes["macro"])) if macro else [None]
    with style():
        fig = _figure(min(13.0, 6.2 * len(panels) + 0.8), 5.6)
        axes = fig.subplots(1, len(panels), sharex=True, sharey=True, squeeze=False)[0]
        if not (_has_data(loss) or _has_data(income)):
            for ax in axes:
                _no_data(ax)
        else:
            ys, yu = _money_scale(income)
            for ax, m in zip(axes, panels):
                if m is not None:
                    ax.set_title(f"macro={_value_text(ds['macro'].values[m])}")
                shown = []
                for others, line_style in layout.lines:
                    cells = [layout.selection(others, i) | ({"macro": m} if m is not None else {})
                             for i in range(len(layout.x))]
                    ks = [number[tuple(sel[n] for n in names)] - 1 for sel in cells]
                    ax.plot(loss[ks], income[ks], **{**line_style, "markersize": 6, "linewidth": 1.0}, zorder=3)
                    shown += ks
                ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=2))
                ax.yaxis.set_major_formatter(_money_formatter(ys))
                ax.set_xlabel("loss rate: expected loss / originated amount")
                ax.margins(x=0.12, y=0.1)
                _number_points(ax, _coinciding(loss[shown], income[shown], [str(k + 1) for k in shown]))
            axes[0].set_ylabel(f"pre-tax income over the horizon ({yu})")
            if layout.legend:
                _top_legend(fig, *_legend_handles(layout))
        png = _png(fig)
    return _drawing("policy_frontier", png, key=layout.key or "the cell")



STAGE_COLOURS = {"stage_1": "#4C9F70", "stage_2": "#E3A33B", "stage_3": "#C8553D", "total": "#000000"}


def allowance_figure(ds: xr.Dataset) -> Drawing:
    """The ECL allowance by impairment stage over time (stacked), and the coverage ratio by stage."""
    sel = dataset.cells(ds)[0][1]
    held = _mean_paths(_pick(metrics.allowance(ds), sel))
    with style():
        fig = _figure(10.0, 4.2)
        left, right = fig.subplots(1, 2)
        values = _array(held["allowance"])
        if not _has_data(values) or not np.nansum(np.abs(values)):
            _no_data(left, "no allowance")
            _no_data(right, "no allowance")
        else:
            months = held["month"].values
            stages = [s for s in held["stage"].values if s != "total"]
            scale, unit = _money_scale(_array(held["allowance"].sel(stage="total")))
            left.stackplot(months, *[held["allowance"].sel(stage=s).values / scale for s in stages],
                           labels=[s.replace("_", " ") for s in stages], colors=[STAGE_COLOURS[s] for s in stages])
            left.yaxis.set_major_formatter(_money_formatter(1.0))
            left.set_ylabel(f"allowance ({unit})")
            left.legend(loc="upper left", fontsize=8)
            for s in list(stages) + ["total"]:
                if s in CARD_COVERAGE:
                    right.axhspan(*CARD_COVERAGE[s], color=STAGE_COLOURS[s], alpha=0.12, linewidth=0)
                right.plot(months, held["coverage"].sel(stage=s).values, label=s.replace("_", " "),
                           color=STAGE_COLOURS[s], linewidth=2.2 if s == "total" else 1.4)
            right.set_yscale("log")
            right.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
            right.set_ylabel("coverage: allowance / receivables")
            right.legend(loc="lower right", fontsize=8)
            _month_axes(left, right)
        png = _png(fig)
    return _drawing("allowance", png)


def _month_axes(*axes) -> None:
    """Whole months along the x axis of each of `axes`."""
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("month of the run")


STAGE_2_SHARE = (0.15, 0.23)      # UK credit cards' stage 2 share of balances (docs/products.md, "IFRS 9 practice")
CARD_COVERAGE = {"stage_1": (0.012, 0.018), "stage_2": (0.167, 0.184), "stage_3": (0.49, 0.58)}   # ... their coverage


def _stage_2_share(ds: xr.Dataset) -> xr.DataArray:
    """Stage 2's share of the principal receivable at each month end, mean over paths (ratio of means)."""
    receivables = metrics.allowance(ds)["receivables"]
    return receivables.sel(stage="stage_2") / receivables.sel(stage="total").where(receivables.sel(stage="total") > 0)


def forecast_figure(ds: xr.Dataset) -> Drawing:
    """The allowance under the lender's weighted forecast and under each of its scenarios alone, over
    time; stage 2's share of the receivables against UK credit cards'."""
    sel = dataset.cells(ds)[0][1]
    cell = _pick(ds, sel)
    weights = cell.get("path_weight")
    by = _mean_paths(cell["allowance_by_scenario"].sum(("product", "stage")), weights)
    booked = _mean_paths(cell["allowance"].sum(("product", "score_band", "stage")), weights)
    share = _stage_2_share(cell)
    with style():
        fig = _figure(10.0, 4.2)
        left, right = fig.subplots(1, 2)
        if not _has_data(_array(booked)) or not np.nansum(np.abs(_array(booked))):
            _no_data(left, "no allowance")
            _no_data(right, "no allowance")
        else:
            scale, unit = _money_scale(_array(booked))
            left.plot(booked["month"].values, booked.values / scale, color="black", linewidth=2.2,
                      label="weighted (booked)")
            for name in by["forecast"].values[1:]:
                line = by.sel(forecast=name)
                left.plot(line["sensitivity_month"].values, line.values / scale, marker="o", markersize=3,
                          linewidth=1.2, label=f"{name} alone")
            left.yaxis.set_major_formatter(_money_formatter(1.0))
            left.set_ylabel(f"allowance ({unit})")
            left.legend(loc="upper left", fontsize=8)
            right.axhspan(*STAGE_2_SHARE, color="#dddddd", label="UK credit cards")
            right.plot(share["month"].values, share.values, color=STAGE_COLOURS["stage_2"], linewidth=1.8,
                       label="stage 2")
            right.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            right.set_ylim(0, max(float(np.nanmax(_array(share))) * 1.1, STAGE_2_SHARE[1] * 1.1))
            right.set_ylabel("stage 2 share of receivables")
            right.legend(loc="upper left", fontsize=8)
            _month_axes(left, right)
        png = _png(fig)
    return _drawing("forecasts", png)


def _coverage_cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: the coverage of the receivables by the allowance over time, cell by cell (the cliff)."""
    coverage = metrics.allowance(ds)["coverage"].sel(stage="total")
    return _over_time(ds, "coverage_cells", coverage, "month", "month of the run", "coverage: allowance / receivables")


def _stage_2_cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: stage 2's share of the receivables over time, cell by cell (the cliff through a downturn)."""
    return _over_time(ds, "stage_2_cells", _stage_2_share(ds), "month", "month of the run",
                      "stage 2 share of receivables")


def _allowance_cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: the coverage ratio at the end of the horizon by impairment stage and in total, against
    the swept value."""
    coverage = _mean_paths(metrics.allowance(ds)["coverage"]).isel(month=-1)
    panels = [(str(s).replace("_", " "), (lambda sel, s=s: float(_pick(coverage.sel(stage=s), sel))),
               _percent_axis) for s in coverage["stage"].values]
    return _swept_figure(ds, "allowance_cells", panels, "coverage at the end: allowance / receivables")


def small_multiples_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: 30+ ratio over time, one panel per value of the swept key (same axes), one line per
    combination of the other keys."""
    dq = _mean_paths(metrics.delinquency(ds)["dpd30_ratio"].sel(product="total"))
    return _over_time(ds, "small_multiples", dq, "month", "month of the run", "30+ ratio of balances")



def fit_figures(found: dict, base, predicted: dict[str, float]) -> list[Drawing]:
    """A calibration's figures: the roll and cure rates estimated from a tape (95% intervals) against the
    base scenario's; the realised 12-month bad rate by score band (95% intervals) against the mean
    pd_12m the tape's accounts were given (`predicted`, by band)."""
    rolls, cures = found["rolls"], found["cures"]
    names = [f"M{k + 1}" for k in range(len(rolls))]
    x = np.arange(len(names))
    with style():
        fig, ax = _axes(10.0, 4.2)
        for offset, estimates, label, colour in ((-0.12, rolls, "roll rate (tape)", CYCLE[0]),
                                                 (0.12, cures, "cure rate (tape)", CYCLE[1])):
            values = np.array([e.value for e in estimates])
            errors = np.array([1.96 * e.se for e in estimates])
            ax.errorbar(x + offset, values, yerr=errors, fmt="o", color=colour, capsize=3, label=label)
        ax.plot(x, base.behaviour.roll_rates, "_", markersize=22, color="#000000", label="roll rate (base scenario)")
        ax.plot(x, 1.0 - np.asarray(base.behaviour.roll_rates), "_", markersize=22, color="#888888",
                label="cure rate = 1 - roll (base scenario)")
        ax.set_xticks(x, names)
        ax.set_xlabel("state at the month end")
        ax.set_ylabel("share moving by the next month end")
        ax.yaxis.set_major_formatter(PERCENT)
        ax.set_ylim(0, 1.02)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
        rolls_png = _png(fig)
    bands = list(found["pd_by_band"])
    card = found.get("scorecard")
    fitted = card["by_band"] if card else None
    with style():
        fig, ax = _axes(10.0, 4.2)
        if not bands:
            _no_data(ax, "no account seen 12 months on book")
        else:
            xb = np.arange(len(bands))
            observed = np.array([found["pd_by_band"][b].value for b in bands])
            errors = np.array([1.96 * found["pd_by_band"][b].se for b in bands])
            ax.errorbar(xb, observed, yerr=errors, fmt="o", color=CYCLE[1], capsize=3,
                        label="realised 12-month bad rate (tape)")
            ax.plot(xb, [predicted.get(b, np.nan) for b in bands], "_", markersize=22, color="#888888",
                    label="mean pd_12m given (tape; before prepayment and maturity)")
            if fitted is not None:
                for k, column in enumerate(c for c in fitted.columns if c not in ("accounts", "tape")):
                    ax.plot(xb + 0.12 * (k + 1), fitted[column].reindex(bands).to_numpy(), "s", markersize=5,
                            color=CYCLE[[0, 2, 3][k % 3]], label=column)
            ax.set_xticks(xb, bands)
            ax.set_xlabel("score band")
            ax.set_ylabel("reached 90+ within 12 months")
            ax.yaxis.set_major_formatter(PERCENT)
            ax.set_ylim(bottom=0)
            ax.legend(loc="upper right", fontsize=8)
        bands_png = _png(fig)
    drawings = [_drawing("fit_rolls", rolls_png), _drawing("fit_bands", bands_png)]
    if card is not None and card["bins"] is not None:
        bins = card["bins"]
        with style():
            fig, ax = _axes(10.0, 4.2)
            rate, n = bins["tape"].to_numpy(), bins["accounts"].to_numpy()
            half = 1.96 * np.sqrt(np.maximum(rate * (1 - rate), 1e-12) / n)
            ax.errorbar(bins["score"], rate, yerr=[np.minimum(half, rate * 0.999), half], fmt="o", color=CYCLE[1],
                        capsize=3, label="realised (tape), 95% interval")
            for k, column in enumerate(c for c in bins.columns if c not in ("accounts", "tape", "score")):
                ax.plot(bins["score"], bins[column], color=CYCLE[[0, 2, 3][k % 3]], label=column)
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:g}%"))
            ax.set_xlabel("score (mean of the bin; equal-count bins)")
            ax.set_ylabel("reached 90+ within 12 months")
            ax.legend(loc="upper right", fontsize=8)
            disc = card["discrimination"]
            ax.set_title("; ".join(f"{m}: AUC {d['auc']:.3f}, KS {d['ks']:.3f}" for m, d in disc.items()), fontsize=9)
            drawings.append(_drawing("fit_score", _png(fig)))
    takeup = found.get("takeup")
    if takeup and "bins" in takeup:
        bins = takeup["bins"]
        with style():
            fig, ax = _axes(10.0, 4.2)
            rate, n = bins["taken"].to_numpy(), bins["offers"].to_numpy()
            half = 1.96 * np.sqrt(np.maximum(rate * (1 - rate), 1e-12) / n)
            ax.errorbar(bins["apr"], rate, yerr=half, fmt="o", color=CYCLE[1], capsize=3,
                        label="offers taken (tape's offers), 95% interval")
            ax.plot(bins["apr"], bins["fitted"], color=CYCLE[0], label="fitted take-up curve (mean of the bin)")
            ax.xaxis.set_major_formatter(PERCENT)
            ax.yaxis.set_major_formatter(PERCENT)
            ax.set_xlabel("all-in APR offered (mean of the bin; equal-count bins)")
            ax.set_ylabel("share of offers taken")
            ax.legend(loc="upper right", fontsize=8)
            drawings.append(_drawing("fit_takeup", _png(fig)))
    return drawings


def _tape_interval(ax, x: np.ndarray, observed: np.ndarray, low: np.ndarray, high: np.ndarray, level: float) -> None:
    """The tape's rate with its interval (low to high) as grey bars about each point (none where NaN:
    the months not compared)."""
    below, above = np.maximum(observed - low, 0.0), np.maximum(high - observed, 0.0)   # NaN stays NaN
    ax.errorbar(x, observed, yerr=np.vstack([below, above]), fmt="none", ecolor="#777777", elinewidth=0.9,
                capsize=0, zorder=1.5, label=f"tape's {level:.0%} Wilson interval")


def backtest_figure(ds: xr.Dataset) -> Drawing:
    """A backtest's figures (`simulator.backtest`), one panel each: the tape's figure against the band
    of the paths and their median, with the points inside the band in the title; the tape's roll rates
    (shares of accounts) with their Wilson score intervals as bars."""
    from ..fitting.backtesting import FIGURES as BACKTEST, SHARES_OF_ACCOUNTS

    level = float(ds.attrs["band_level"])
    with style():
        fig = _figure(13.5, 7.0)
        axes = fig.subplots(2, 3).ravel()
        for ax, (name, (label, dim, units, _)) in zip(axes, BACKTEST.items()):
            x = ds[dim].values
            observed = ds[f"{name}_observed"]
            if not _has_data(observed.values):
                _no_data(ax, "nothing to compare")
            else:
                ax.fill_between(x, ds[f"{name}_low"].values, ds[f"{name}_high"].values, color=CYCLE[0], alpha=0.25,
                                linewidth=0, label=f"simulated {level:.0%} band")
                ax.plot(x, ds[f"{name}_median"].values, color=CYCLE[0], linestyle="--", label="simulated median")
                if name in SHARES_OF_ACCOUNTS and f"{name}_observed_low" in ds:
                    _tape_interval(ax, x, observed.values, ds[f"{name}_observed_low"].values,
                                   ds[f"{name}_observed_high"].values, level)
                ax.plot(x, observed.values, color="#000000", marker="o", markersize=2.5, label="tape")
            n, k = observed.attrs["points_compared"], observed.attrs["points_in_band"]
            ax.set_title(f"{label}: {k} of {n} in band" if n else label)
            ax.set_xlabel(dim.replace("_", " "))
            ax.yaxis.set_major_formatter(PERCENT)
            ax.set_ylim(bottom=0)
        axes[0].legend(loc="upper left", fontsize=8)
        if ds.attrs["from_month"] >= 0:
            for ax in axes[:-1]:
                ax.axvline(ds.attrs["from_month"] + 0.5, color="#888888", linewidth=0.8)
        png = _png(fig)
    return _drawing("backtest", png, paths=int(ds.attrs["paths"]), level=f"{level:.0%}")


FIGURES = [vintage_figure, delinquency_figure, roll_rate_figure, loss_figure, calibration_figure, cap_figure,
           waterfall_figure, allowance_figure, forecast_figure]
SWEEP_FIGURES = [_vintage_cells_figure, small_multiples_figure, _roll_rate_cells_figure, _calibration_cells_figure,
                 _cap_cells_figure, _waterfall_cells_figure, _allowance_cells_figure, _coverage_cells_figure, _stage_2_cells_figure,
                 cells_figure,
                 frontier_figure]


def _cells_compared(ds: xr.Dataset) -> list[Drawing]:
    """Sweep: what `compare` overlays for runs, against the swept value instead: the 30+ and 90+
    ratios, and the capital year's loss (mean, VaR, expected shortfall) with the capital."""
    head = _headline_by_cell(ds)
    delinquency = _swept_figure(ds, "compare_dpd30_cells", [_headline_panel(head, k) for k in
                                                              ("dpd30_ratio", "dpd30_peak", "dpd90_ratio")], columns=3)
    loss = _swept_figure(ds, "compare_loss_distribution_cells", [_headline_panel(head, k) for k in
                         ("capital_expected_loss", "var_top", "es_top", "economic_capital")], columns=4)
    return [replace(delinquency, name="compare_dpd30.png"), replace(loss, name="compare_loss_distribution.png")]



def figures(ds: xr.Dataset, processes: int | None = None) -> list[Drawing]:
    """Every figure of the report of `ds`. For a sweep every figure shows every cell: small multiples
    (one panel per cell), the cells side by side, the frontier, and every cell's 30+ ratio and
    loss distribution overlaid (as `compare` draws runs). Drawn on `processes` (default: the cores)."""
    draws = SWEEP_FIGURES + [_cells_compared] if dataset.sweep_names(ds) else FIGURES
    drawn = _drawn(ds, draws, processes or os.cpu_count() or 1)
    return [d for each in drawn for d in (each if isinstance(each, list) else [each])]


_TO_DRAW: tuple = ()     # (ds, draws) for the forked processes of `_drawn`, which inherit it


def _draw_one(i: int):
    ds, draws = _TO_DRAW
    return draws[i](ds)


def _drawn(ds: xr.Dataset, draws: list, processes: int) -> list:
    """draws[i](ds) for each i, in order. matplotlib draws on one core and the figures are independent,
    so on Linux they are drawn in forked processes, which share `ds` with this one without copying
    it (elsewhere, or with one process, here; and here again if a drawing process dies)."""
    processes = min(processes, len(draws))
    if processes < 2 or not sys.platform.startswith("linux"):
        return [draw(ds) for draw in draws]
    global _TO_DRAW
    _TO_DRAW = (ds, draws)
    try:
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_draw_one, range(len(draws))))
    except BrokenProcessPool:     # a drawing process was killed (out of memory, say): the same figures here
        print("warning: a process drawing the report's figures died; drawing them in this one", file=sys.stderr)
        return [draw(ds) for draw in draws]
    finally:
        _TO_DRAW = ()


OVERLAID = 6     # runs drawn over each other with a legend; more are drawn one panel each


def _run_panels(n: int) -> tuple[Figure, list]:
    """One panel per run (or cell) beyond OVERLAID, in rows of four, same axes; else one panel."""
    if n <= OVERLAID:
        fig, ax = _axes(11.0, 4.6)
        return fig, [ax] * n
    fig, axes = _panels(n, 4, 3.3, 2.4, legend_rows=0)
    for ax in axes[1:]:
        ax.sharex(axes[0])
        ax.sharey(axes[0])
    return fig, list(axes)


def compare_figures(runs: list[tuple[str, xr.Dataset, dict[str, int]]]) -> list[Drawing]:
    """30+ ratio over time and loss distributions, one colour per run (or cell): overlaid for a few,
    one panel each (the others in grey behind) for more than OVERLAID."""
    cache: dict[int, tuple[xr.DataArray, xr.DataArray]] = {}
    series = []
    for label, ds, sel in runs:
        if id(ds) not in cache:
            cache[id(ds)] = (metrics.delinquency(ds)["dpd30_ratio"].sel(product="total"), metrics.loss_distribution(ds))
        dq, losses = cache[id(ds)]
        loss = _array(_pick(losses, sel)).ravel()
        weights = _array(ds["path_weight"])
        series.append((label, _mean_paths(_pick(dq, sel)), loss[np.isfinite(loss)], weights[np.isfinite(loss)]))
    overlaid = len(series) <= OVERLAID
    colour = {label: CYCLE[i % len(CYCLE)] if overlaid else CYCLE[0] for i, (label, *_) in enumerate(series)}
    with style():
        fig, axes = _run_panels(len(series))
        if not any(_has_data(line.values) for _, line, _, _ in series):
            for ax in set(axes):
                _no_data(ax)
        else:
            for ax, (label, line, _, _) in zip(axes, series):
                if not overlaid:
                    for _, other, _, _ in series:
                        ax.plot(other["month"].values, other.values, color="#cccccc", linewidth=0.8)
                    ax.set_title(textwrap.fill(label, 40), fontsize=8)
                ax.plot(line["month"].values, line.values, label=label, color=colour[label], zorder=3)
                ax.yaxis.set_major_formatter(PERCENT)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
                ax.set_ylim(bottom=0)
            if overlaid:
                axes[0].set_xlabel("month of the run")
                axes[0].set_ylabel("30+ ratio of balances")
                axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
            else:
                fig.supxlabel("month of the run", fontsize=9)
                fig.supylabel("30+ ratio of balances", fontsize=9)
        dpd = _png(fig)
    with style():
        fig, axes = _run_panels(len(series))
        samples = [loss for _, _, loss, _ in series if loss.size]
        if not any(_has_data(s) for s in samples):
            for ax in set(axes):
                _no_data(ax, "no losses on any path")
        else:
            scale, unit = _money_scale(np.concatenate(samples))
            bins = _bins(samples)
            for ax, (label, _, loss, weights) in zip(axes, series):
                if not overlaid:
                    ax.set_title(textwrap.fill(label, 40), fontsize=8)
                if loss.size == 0:
                    continue
                ax.hist(loss, bins=bins, weights=weights, histtype="stepfilled", color=colour[label], alpha=0.18)
                ax.hist(loss, bins=bins, weights=weights, histtype="step", linewidth=1.8, color=colour[label],
                        label=label)
                ax.axvline(np.sum(weights * loss) / np.sum(weights), color=colour[label], linewidth=1.0, alpha=0.8)
                ax.xaxis.set_major_formatter(_money_formatter(scale))
                ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            xlabel = f"loss in the capital year: net charge-offs ({unit})"
            if overlaid:
                axes[0].set_xlabel(xlabel)
                axes[0].set_ylabel("paths")
                axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
            else:
                fig.supxlabel(xlabel, fontsize=9)
                fig.supylabel("paths", fontsize=9)
        loss_png = _png(fig)
    return [_drawing("compare_dpd30", dpd), _drawing("compare_loss_distribution", loss_png)]
