"""The figures of a report: matplotlib drawings (PNG bytes with a title and a caption) of one run's
results, and of several runs side by side (`compare_figures`)."""
from __future__ import annotations

import io
import json
import multiprocessing
import os
import sys
import textwrap
import tomllib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources

import numpy as np
import xarray as xr
from matplotlib import colormaps, colors, rc_context
from matplotlib.cm import ScalarMappable
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
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


def _cells_grid(ds: xr.Dataset, name: str, panel, xlabel: str, ylabel: str) -> Drawing:
    """Sweep: one small panel per cell, same axes; `panel(ax, sel)` draws the cell at positions `sel`."""
    cells = dataset.cells(ds)
    ncols = min(4, len(cells))
    nrows = -(-len(cells) // ncols)
    width, height = 3.2 * ncols + 0.85, 2.4 * nrows + 1.3
    with style():
        # Fixed margins (inches) instead of constrained layout: measuring every panel's text took
        # half of a large sweep's report (32 cells: 14 of 27 s of drawing).
        fig = Figure(figsize=(width, height), dpi=DPI)
        FigureCanvasAgg(fig)
        fig.subplots_adjust(left=1.25 / width, right=1 - 0.15 / width, bottom=1.3 / height, top=1 - 0.75 / height,
                            wspace=0.15, hspace=0.5)
        axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
        for ax, (label, sel) in zip(axes, cells):
            ax.set_title(textwrap.fill(label, 34), fontsize=8)
            panel(ax, sel)
        for ax in axes[len(cells):]:
            ax.set_visible(False)
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="upper right", fontsize=8)
        fig.supxlabel(xlabel)
        fig.supylabel(ylabel)
        png = _png(fig)
    return _drawing(name, png)


def _cap_cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: approvals by score band with and without the cap, one small panel per cell."""
    bands = [str(b) for b in ds["score_band"].values]
    x = np.arange(len(bands))

    def panel(ax, sel: dict[str, int]) -> None:
        cell = ds.isel(sel)
        approvals, without = _with_and_without_cap(cell)
        share = float(cell["cap_bound"].sum()) / max(1, int(cell["cap_applications"].sum()))
        ax.set_title(ax.get_title() + f": bound {share:.0%}", fontsize=8)
        if not _has_data(without):
            _no_data(ax)
            return
        ax.bar(x - 0.2, without, width=0.4, color=CYCLE[5], label="without the cap")
        ax.bar(x + 0.2, approvals, width=0.4, color=CYCLE[0], label="with the cap")
        ax.set_xticks(x, bands, fontsize=7, rotation=45)

    return _cells_grid(ds, "apr_cap_cells", panel, "score band", "applications approved")


def _vintage_cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: cumulative charge-off rate of each vintage, all products, one small panel per cell."""
    horizon = ds.sizes["month"]
    norm = colors.Normalize(vmin=1, vmax=max(2, ds.sizes["vintage"]))

    def panel(ax, sel: dict[str, int]) -> None:
        cell = ds.isel(sel)
        original = cell["vintage_original"].sum("product")
        charged = _mean_paths(cell["vintage_charged_off"].sum("product").cumsum("months_on_book"),
                              cell.get("path_weight"))
        rate = (charged / original.where(original > 0)).where(cell["months_on_book"] <= horizon - cell["vintage"])
        if not _has_data(_array(rate)):
            _no_data(ax, "no charge-offs")
            return
        for v in rate["vintage"].values:
            ax.plot(rate["months_on_book"].values, _array(rate.sel(vintage=v)), color=colormaps["viridis"](norm(v)),
                    linewidth=0.9)
        ax.yaxis.set_major_formatter(PERCENT)

    return _cells_grid(ds, "vintage_curves_cells", panel, "months on book",
                       "cumulative charge-off rate (all products)")


def _roll_rate_cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: the roll-rate heat map of each cell, one small panel per cell, one colour scale."""
    rates = metrics.roll_rates(ds)["roll_rate"]
    values = _array(rates)
    norm, _ = _rate_norm(values) if _has_data(values) else (None, None)
    transitions = [str(t) for t in rates["transition"].values]
    months = rates["month"].values

    def panel(ax, sel: dict[str, int]) -> None:
        shown = _array(_pick(rates, sel).transpose("transition", "month"))
        if not _has_data(shown):
            _no_data(ax)
            return
        ax.imshow(np.ma.masked_invalid(shown), aspect="auto", cmap=colormaps["magma_r"].with_extremes(bad="#eeeeee"),
                  norm=norm, interpolation="nearest",
                  extent=(months[0] - 0.5, months[-1] + 0.5, len(transitions) - 0.5, -0.5))
        ax.set_yticks(range(len(transitions)), transitions, fontsize=6)
        ax.grid(False)

    return _cells_grid(ds, "roll_rates_cells", panel, "month of the run", "transition")


def _calibration_cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: predicted PD against the realised 12-month bad rate by score band, one panel per cell."""
    bands = [str(b) for b in ds["score_band"].values]
    x = np.arange(len(bands))
    calibration = metrics.score_band_calibration(ds)

    def panel(ax, sel: dict[str, int]) -> None:
        cal = _pick(calibration, sel)
        predicted, observed = _array(cal["predicted_pd"]), _array(cal["observed_rate"])
        if not (_has_data(predicted) or _has_data(observed)):
            _no_data(ax)
            return
        ax.bar(x - 0.2, np.nan_to_num(predicted), width=0.4, color=CYCLE[0], label="predicted (mean PD, fraud at 1)")
        ax.bar(x + 0.2, np.nan_to_num(observed), width=0.4, color=CYCLE[1], label="observed")
        ax.set_xticks(x, bands, fontsize=7, rotation=45)
        ax.yaxis.set_major_formatter(PERCENT)

    return _cells_grid(ds, "calibration_cells", panel, "score band", "rate of reaching 90+ within 12 months")


def _waterfall_cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: the P&L over the horizon of each cell (income up, costs down, pre-tax income), one panel per cell."""
    steps = metrics.pnl_waterfall(ds)
    names = [str(s) for s in steps["step"].values]
    scale, unit = _money_scale(_array(steps))

    def panel(ax, sel: dict[str, int]) -> None:
        values = _array(_pick(steps, sel))
        if not _has_data(values):
            _no_data(ax)
            return
        colour = [NET if i == len(values) - 1 else (GAIN if v >= 0 else LOSS) for i, v in enumerate(values)]
        ax.bar(range(len(values)), values / scale, color=colour, width=0.65)
        ax.axhline(0, color="#444444", linewidth=0.8)
        ax.set_xticks(range(len(names)), [n.replace("_", " ") for n in names], fontsize=6, rotation=60)

    return _cells_grid(ds, "pnl_waterfall_cells", panel, "", f"over the horizon ({unit})")


CELL_FIGURES = ("approvals", "apr_after_cap", "pretax_income", "charged_off", "dpd30_ratio", "dpd90_ratio")


def cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: headline figures of every cell side by side, one bar a cell, one panel a figure."""
    columns = summary.columns(ds)
    labels = [textwrap.shorten(label, 60) for label, _ in columns]
    y = np.arange(len(columns))
    with style():
        fig = _figure(15.0, 1.4 + 0.22 * len(columns))
        axes = fig.subplots(1, len(CELL_FIGURES), sharey=True)
        for ax, key in zip(axes, CELL_FIGURES):
            values = np.array([head[key] for _, head in columns], dtype=float)
            ax.set_title(textwrap.fill(summary.ROWS[key][0], 26), fontsize=8.5)
            if not _has_data(values):
                _no_data(ax)
                continue
            ax.barh(y, np.nan_to_num(values), color=CYCLE[0], height=0.7)
            if "%" in summary.ROWS[key][2]:
                ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
            elif "yuan" in summary.ROWS[key][0]:
                scale, unit = _money_scale(values)
                ax.xaxis.set_major_formatter(_money_formatter(scale))
                ax.set_xlabel(unit)
            else:
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e3:,.0f}k" if abs(v) >= 1e4 else f"{v:,.0f}"))
            ax.xaxis.set_major_locator(MaxNLocator(nbins=3))
            ax.tick_params(axis="x", labelsize=7)
        axes[0].set_yticks(y, labels, fontsize=7)
        axes[0].invert_yaxis()
        png = _png(fig)
    return _drawing("sweep_cells", png)


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


def frontier_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: loss rate against pre-tax income, one labelled point per cell."""
    frontier = metrics.policy_frontier(ds)
    el = _array(frontier["loss_rate"])
    revenue = _array(frontier["pretax_income"])
    labels = [str(lab) for lab in frontier["label"].values]
    with style():
        fig, ax = _axes(9.0, 5.5)
        if not (_has_data(el) or _has_data(revenue)):
            _no_data(ax)
        else:
            ys, yu = _money_scale(revenue)
            ax.scatter(el, revenue, s=45, color=CYCLE[0], zorder=3)
            for (x, y), names in _coinciding(el, revenue, labels).items():
                ax.annotate("\n".join(textwrap.fill(n, 28) for n in names), (x, y), xytext=(5, 4),
                            textcoords="offset points", fontsize=8, color="#333333", va="bottom")
            ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=2))
            ax.yaxis.set_major_formatter(_money_formatter(ys))
            ax.set_xlabel("loss rate: expected loss / originated amount")
            ax.set_ylabel(f"pre-tax income over the horizon ({yu})")
            ax.margins(x=0.15, y=0.12)
        png = _png(fig)
    return _drawing("policy_frontier", png)


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
                right.plot(months, held["coverage"].sel(stage=s).values, label=s.replace("_", " "),
                           color=STAGE_COLOURS[s], linewidth=2.2 if s == "total" else 1.4)
            right.set_yscale("log")
            right.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
            right.set_ylabel("coverage: allowance / receivables")
            right.legend(loc="lower right", fontsize=8)
            for ax in (left, right):
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_xlabel("month of the run")
        png = _png(fig)
    return _drawing("allowance", png)


def _allowance_cells_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: the coverage ratio by impairment stage over time, one small panel per cell."""
    coverage = _mean_paths(metrics.allowance(ds)["coverage"])

    def panel(ax, sel: dict[str, int]) -> None:
        cell = _pick(coverage, sel)
        if not _has_data(cell.values):
            _no_data(ax)
            return
        for s in cell["stage"].values:
            ax.plot(cell["month"].values, cell.sel(stage=s).values, color=STAGE_COLOURS[str(s)],
                    label=str(s).replace("_", " "), linewidth=1.8 if s == "total" else 1.1)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))

    return _cells_grid(ds, "allowance_cells", panel, "month of the run", "coverage: allowance / receivables")


def small_multiples_figure(ds: xr.Dataset) -> Drawing:
    """Sweep: 30+ ratio over time, one small panel per cell, same axes."""
    dq = _mean_paths(metrics.delinquency(ds)["dpd30_ratio"].sel(product="total"))
    top = float(np.nanmax(dq.values)) * 1.08 if _has_data(dq.values) else 1.0

    def panel(ax, sel: dict[str, int]) -> None:
        line = _pick(dq, sel)
        if not _has_data(line.values):
            _no_data(ax)
            return
        ax.plot(line["month"].values, line.values, color="#000000", linewidth=1.5)
        ax.yaxis.set_major_formatter(PERCENT)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        ax.set_ylim(0, top)

    return _cells_grid(ds, "small_multiples", panel, "month of the run", "30+ ratio of balances")


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


def backtest_figure(ds: xr.Dataset) -> Drawing:
    """A backtest's figures (`simulator.backtest`), one panel each: the tape's figure against the band
    of the paths and their median, with the points inside the band in the title."""
    from ..fitting.backtesting import FIGURES as BACKTEST

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
           waterfall_figure, allowance_figure]
SWEEP_FIGURES = [_vintage_cells_figure, small_multiples_figure, _roll_rate_cells_figure, _calibration_cells_figure,
                 _cap_cells_figure, _waterfall_cells_figure, _allowance_cells_figure, cells_figure, frontier_figure]


def _cells_compared(ds: xr.Dataset) -> list[Drawing]:
    return compare_figures([(label, ds, selection) for label, selection in dataset.cells(ds)])


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


def compare_figures(runs: list[tuple[str, xr.Dataset, dict[str, int]]]) -> list[Drawing]:
    """30+ ratio over time overlaid and loss distributions overlaid, one colour per run (or cell)."""
    cache: dict[int, tuple[xr.DataArray, xr.DataArray]] = {}
    series = []
    for label, ds, sel in runs:
        if id(ds) not in cache:
            cache[id(ds)] = (metrics.delinquency(ds)["dpd30_ratio"].sel(product="total"), metrics.loss_distribution(ds))
        dq, losses = cache[id(ds)]
        loss = _array(_pick(losses, sel)).ravel()
        weights = _array(ds["path_weight"])
        series.append((label, _mean_paths(_pick(dq, sel)), loss[np.isfinite(loss)], weights[np.isfinite(loss)]))
    colour = {label: CYCLE[i % len(CYCLE)] for i, (label, *_) in enumerate(series)}
    dashes = {label: ["-", "--", ":", "-."][(i // len(CYCLE)) % 4] for i, (label, *_) in enumerate(series)}
    with style():
        fig, ax = _axes(11.0, 4.6)
        if not any(_has_data(line.values) for _, line, _, _ in series):
            _no_data(ax)
        else:
            for label, line, _, _ in series:
                ax.plot(line["month"].values, line.values, label=label, color=colour[label], linestyle=dashes[label])
            ax.yaxis.set_major_formatter(PERCENT)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("month of the run")
            ax.set_ylabel("30+ ratio of balances")
            ax.set_ylim(bottom=0)
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        dpd = _png(fig)
    with style():
        fig, ax = _axes(11.0, 4.6)
        samples = [loss for _, _, loss, _ in series if loss.size]
        if not any(_has_data(s) for s in samples):
            _no_data(ax, "no losses on any path")
        else:
            scale, unit = _money_scale(np.concatenate(samples))
            bins = _bins(samples)
            for label, _, loss, weights in series:
                if loss.size == 0:
                    continue
                ax.hist(loss, bins=bins, weights=weights, histtype="stepfilled", color=colour[label], alpha=0.18)
                ax.hist(loss, bins=bins, weights=weights, histtype="step", linewidth=1.8, color=colour[label],
                        linestyle=dashes[label], label=label)
                ax.axvline(np.sum(weights * loss) / np.sum(weights), color=colour[label], linestyle=dashes[label], linewidth=1.0, alpha=0.8)
            ax.xaxis.set_major_formatter(_money_formatter(scale))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel(f"loss in the capital year: net charge-offs ({unit})")
            ax.set_ylabel("paths")
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        loss_png = _png(fig)
    return [_drawing("compare_dpd30", dpd), _drawing("compare_loss_distribution", loss_png)]
