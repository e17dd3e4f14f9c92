"""The shipped baseline lands near the platforms' published delinquency (docs/products.md)."""
from __future__ import annotations

from pathlib import Path

import pytest

from simulator.engine import simulation
from simulator.results import dataset
from simulator.config.loader import load_scenario

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

BASELINE = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.toml"


@pytest.mark.parametrize("fraud", ["on", "off"])
def test_baseline_steady_state_delinquency_near_the_2019_figures(fraud):
    """30+ and 90+ within 25% of the platforms' 2019 figures through credit risk: with the baseline's
    first-party fraud and without it."""
    overrides = ["run.paths=16", "applicants.monthly_volume=5000"] + (["behaviour.fraud_rate=0"] if fraud == "off" else [])
    ds = simulation.simulate(load_scenario(BASELINE, overrides))
    steady = dict(month=slice(13, 36))
    dpd30 = float(dataset.delinquency_ratio(ds, "M2").sel(**steady).mean())
    dpd90 = float(dataset.delinquency_ratio(ds, "M4").sel(**steady).mean())
    assert abs(dpd30 / 0.0156 - 1) <= 0.25, dpd30
    assert abs(dpd90 / 0.0105 - 1) <= 0.25, dpd90
    fraud_share = float(ds["fraud_charged_off"].sum() / ds["charged_off"].sum())
    if fraud == "on":         # first-party fraud: 5% to 20% of credit losses (docs/products.md section 7)
        assert 0.05 <= fraud_share <= 0.20, fraud_share
    else:
        assert fraud_share == 0.0
    # All three products are in the book, and borrowers hold several.
    assert (ds["originated_accounts"].sum(("path", "month", "score_band")) > 0).all()
    open_accounts = ds["accounts"].isel(month=-1).sum(("product", "score_band", "state"))
    open_borrowers = ds["borrowers"].isel(month=-1).sum(("score_band", "state"))
    assert (open_borrowers < open_accounts).all()


def test_baseline_book_levels_off():
    """Constant new business with line activity and attrition gives a book that levels off: from
    month 30 to 36 open accounts, open lines and balances change by less than 6% (open accounts grew
    by about 20% from month 12 to 24); the line's month-end balance includes its unbilled spend."""
    loaded = load_scenario(BASELINE, ["run.paths=4", "applicants.monthly_volume=5000"])
    ds = simulation.simulate(loaded)
    accounts = ds["accounts"].sum(("score_band", "state")).mean("path")
    balance = ds["balance"].sum(("score_band", "state")).mean("path")
    for series in (accounts.sum("product"), accounts.sel(product="huabei"), balance.sum("product"),
                   balance.sel(product="huabei")):
        assert abs(float(series.sel(month=36) / series.sel(month=30)) - 1) < 0.06, series
    assert float(accounts.sum("product").sel(month=24) / accounts.sum("product").sel(month=12)) > 1.1
    # The float: lines hold more at the month end than they spend in a month.
    line = ds.sel(product="huabei", month=slice(13, 36))
    assert float(line["balance"].sum(("score_band", "state")).mean()) > float(line["drawn"].sum("score_band").mean())
