"""The figures (simulator.figures), piece by piece (the drawn report: test_report.py)."""
from __future__ import annotations

import numpy as np


def test_frontier_labels_of_coinciding_cells_are_gathered():
    from simulator.reporting.figures import _coinciding

    groups = _coinciding(np.array([0.01, 0.01, 0.02]), np.array([5e6, 5e6, 4e6]), ["a=1", "a=2", "a=3"])
    assert sorted(groups.values()) == [["a=1", "a=2"], ["a=3"]]


def backtest_dataset(level: float = 0.95, from_month: int = 6):
    """A backtest's Dataset as `backtesting.run` builds it, from made-up counts: the tape's figures
    (NaN up to `from_month`: not compared), the band of 20 paths, the roll rates' Wilson intervals."""
    import xarray as xr

    from simulator.fitting import backtesting

    rng = np.random.default_rng(3)
    months, horizon, paths = np.arange(1, 25), 24, 20
    ds = xr.Dataset(coords={"month": months, "months_on_book": np.arange(horizon), "path": np.arange(paths)})
    counts = {}
    for name, (label, dim, units, _) in backtesting.FIGURES.items():
        n = ds.sizes[dim]
        if name in backtesting.SHARES_OF_ACCOUNTS:
            trials = rng.integers(50, 400, n)
            events = rng.binomial(trials, 0.1)
            events[-1] = 0                                  # a month from no events
            observed = events / trials
            counts[name] = events, trials
        else:
            observed = rng.uniform(0.01, 0.05, n)
        observed[:from_month] = np.nan
        found = backtesting.compare(observed, rng.uniform(0.0, 0.2, (paths, n)), level)
        ds[f"{name}_observed"] = xr.DataArray(observed, dims=dim, attrs={
            "points_compared": found["compared"], "points_in_band": found["inside"]})
        for bound in ("low", "median", "high"):
            ds[f"{name}_{bound}"] = xr.DataArray(found[bound], dims=dim)
    for name, (events, trials) in counts.items():
        ds = ds.merge(backtesting.tape_interval(name, events, trials, np.isfinite(ds[f"{name}_observed"].values),
                                                level))
    ds.attrs.update({"band_level": level, "paths": paths, "from_month": from_month})
    return ds


def test_the_backtest_figure_draws_the_tapes_roll_rates_with_their_intervals(monkeypatch):
    """Each roll-rate panel (and only those: the ratios and the charge-off curve are shares of amounts)
    draws bars from the tape's interval low to high about each rate, none where not compared; the
    caption says so."""
    from matplotlib.axes import Axes

    from simulator.fitting import backtesting
    from simulator.reporting.figures import backtest_figure

    drawn = []
    errorbar = Axes.errorbar
    monkeypatch.setattr(Axes, "errorbar", lambda ax, x, y, *args, **kw: (drawn.append((ax, x, y, kw)),
                                                                          errorbar(ax, x, y, *args, **kw))[1])
    ds = backtest_dataset()
    drawing = backtest_figure(ds)
    assert [ax.get_title().split(":")[0] for ax, *_ in drawn] == [backtesting.FIGURES[name][0]
                                                                  for name in backtesting.SHARES_OF_ACCOUNTS]
    for name, (_, x, y, kw) in zip(backtesting.SHARES_OF_ACCOUNTS, drawn):
        observed, low, high = (ds[f"{name}{end}"].values for end in ("_observed", "_observed_low", "_observed_high"))
        np.testing.assert_array_equal(x, ds["month"].values)
        np.testing.assert_array_equal(y, observed)
        below, above = kw["yerr"]
        np.testing.assert_allclose(y - below, low, rtol=0, atol=1e-15)    # NaN where not compared
        np.testing.assert_allclose(y + above, high, rtol=0, atol=1e-15)
        assert np.isnan(below[:6]).all() and np.isfinite(below[6:]).all()
        assert below[-1] == 0 and above[-1] > 0              # no events: from 0 up to the upper end
    assert "95% Wilson score interval" in drawing.caption and drawing.png.startswith(b"\x89PNG")
