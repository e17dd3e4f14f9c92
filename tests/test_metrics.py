"""Portfolio metrics (simulator.metrics) against hand-built results whose answers are known, and on
a small real run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from simulator.engine import simulation
from simulator.reporting import metrics
from simulator.results import pnl
from simulator.results import dataset
from simulator.codes import ACCOUNTING, PRODUCTS, STAGES, STATES
from simulator.config.loader import load_scenario

BANDS = ("low", "high")
CUBE = ("path", "month", "product", "score_band")
VCUBE = ("path", "vintage", "months_on_book", "product")
MONEY = ("originated", "drawn", "repaid", "prepaid", "charged_off", "accrued_written_off", "recovered",
         "interest_income", "interest_accrual",
         "fee_income", "penalty_income", "funding_cost", "merchant_discount", "merchant_fee_income", "net_revenue", "pretax_income",
         "credit_loss_expense", "operating_costs") + ACCOUNTING
COUNTS = ("originated_accounts", "prepaid_accounts", "matured_accounts", "charged_off_accounts")


def make_ds(paths: int = 2, months: int = 12, vintages: int = 3, sweep: dict | None = None,
            name: str = "hand") -> xr.Dataset:
    """A minimal valid results Dataset of zeros (the names and dims of assemble.build_dataset); a test
    sets a few values with `ds[var].loc[...] = value`. `sweep` {name: values} adds swept dimensions."""
    sizes = {"path": paths, "month": months, "product": len(PRODUCTS), "score_band": len(BANDS),
             "state": len(STATES), "vintage": vintages, "months_on_book": months, "stage": len(STAGES)}

    def zeros(dims, dtype=float):
        return dims, np.zeros([sizes[d] for d in dims], dtype=dtype)

    data = {
        "accounts": zeros(CUBE + ("state",), np.int64),
        "balance": zeros(CUBE + ("state",)),
        "rolls": zeros(CUBE + ("state",), np.int64),
        "cures": zeros(CUBE + ("state",), np.int64),
        "applicants": zeros(("month", "score_band"), np.int64),
        "approved_applicants": zeros(("month", "score_band"), np.int64),
        "applications": zeros(("month", "product", "score_band"), np.int64),
        "approvals": zeros(("month", "product", "score_band"), np.int64),
        "takeups": zeros(("month", "product", "score_band"), np.int64),
        "opening_accounts": zeros(("product", "score_band", "state"), np.int64),
        "opening_balance": zeros(("product", "score_band", "state")),
        "pd_12m": zeros(("product", "score_band")),
        "pd_12m_seasoned": zeros(("product", "score_band")),
        "fraud_seasoned": zeros(("product", "score_band")),
        "mean_apr": zeros(("product", "score_band")),
        "accounts_seasoned_12m": zeros(("path", "product", "score_band"), np.int64),
        "bads_12m": zeros(("path", "product", "score_band"), np.int64),
        "vintage_balance": zeros(VCUBE + ("state",)),
        "vintage_original": zeros(("vintage", "product")),
        "vintage_charged_off": zeros(VCUBE),
        "vintage_recovered": zeros(VCUBE),
        "capital_loss": zeros(("path", "product")),
        "allowance": zeros(CUBE + ("stage",)),
        "stage_balance": zeros(CUBE + ("stage",)),
        # Joint lending: the platform funds 30% and carries 30% of the losses, with a 18% service fee.
        "platform_share": (("product",), np.full(len(PRODUCTS), 0.3)),
        "platform_loss_share": (("product",), np.full(len(PRODUCTS), 0.3)),
        "service_fee_share": (("product",), np.full(len(PRODUCTS), 0.18)),
    }
    data |= {v: zeros(CUBE) for v in MONEY} | {v: zeros(CUBE, np.int64) for v in COUNTS}
    coords = {"path": np.arange(paths), "month": np.arange(1, months + 1), "product": list(PRODUCTS),
              "score_band": list(BANDS), "state": list(STATES), "vintage": np.arange(1, vintages + 1),
              "months_on_book": np.arange(months), "stage": list(STAGES)}
    ds = xr.Dataset(data, coords=coords)
    dims = []
    for key, values in (sweep or {}).items():
        ds = ds.expand_dims({key: list(values)}, axis=-1).copy(deep=True)
        dims.append([key, f"policy.{key}", list(values)])
    ds.attrs["sweep"] = json.dumps(dims)
    ds.attrs["scenario_resolved"] = json.dumps({"run": {"name": name}})
    return ds


def check_attrs(obj):
    items = obj.data_vars.values() if isinstance(obj, xr.Dataset) else [obj]
    for da in items:
        assert da.attrs.get("units") and da.attrs.get("description"), da.name


# --- roll and cure rates ----------------------------------------------------------------------
def test_roll_rate_is_rolls_over_previous_month_accounts():
    ds = make_ds()
    # 100 accounts current at the end of month 1 (spread over paths, products, bands); 20 roll in month 2.
    ds["accounts"].loc[dict(path=0, month=1, product="jiebei", score_band="low", state="current")] = 60
    ds["accounts"].loc[dict(path=1, month=1, product="huabei", score_band="high", state="current")] = 40
    ds["rolls"].loc[dict(path=0, month=2, product="jiebei", score_band="low", state="current")] = 12
    ds["rolls"].loc[dict(path=1, month=2, product="huabei", score_band="high", state="current")] = 8
    out = metrics.roll_rates(ds)
    check_attrs(out)
    rate = out["roll_rate"]
    assert rate.dims == ("month", "transition")
    assert list(rate["transition"].values) == list(metrics.TRANSITIONS)
    assert rate.sel(month=2, transition="current->M1") == pytest.approx(0.2)
    assert np.isnan(rate.sel(month=1)).all()          # no existing book: no denominators in month 1
    assert np.isnan(rate.sel(month=3)).all()          # nobody at the end of month 2
    assert np.isnan(rate.sel(month=2, transition="M1->M2"))


def test_cure_rate_and_roll_from_delinquent_state():
    ds = make_ds()
    ds["accounts"].loc[dict(path=0, month=3, product="yuefu", score_band="low", state="M2")] = 10
    ds["cures"].loc[dict(path=0, month=4, product="yuefu", score_band="low", state="M2")] = 5
    ds["rolls"].loc[dict(path=0, month=4, product="yuefu", score_band="low", state="M2")] = 3
    ds["accounts"].loc[dict(path=1, month=3, product="jiebei", score_band="low", state="M6")] = 4
    ds["rolls"].loc[dict(path=1, month=4, product="jiebei", score_band="low", state="M6")] = 4
    out = metrics.roll_rates(ds)
    cure = out["cure_rate"]
    assert cure.dims == ("month", "from_state")
    assert list(cure["from_state"].values) == ["M1", "M2", "M3", "M4", "M5", "M6"]
    assert cure.sel(month=4, from_state="M2") == pytest.approx(0.5)
    assert cure.sel(month=4, from_state="M6") == 0.0
    assert out["roll_rate"].sel(month=4, transition="M2->M3") == pytest.approx(0.3)
    assert out["roll_rate"].sel(month=4, transition="M6->charged_off") == pytest.approx(1.0)


def test_month_one_rates_use_the_existing_book():
    ds = make_ds(paths=2)
    ds["opening_accounts"].loc[dict(product="jiebei", score_band="low", state="current")] = 50  # per path
    ds["opening_accounts"].loc[dict(product="jiebei", score_band="high", state="M1")] = 8
    ds["rolls"].loc[dict(month=1, product="jiebei", score_band="low", state="current")] = 5    # each path
    ds["cures"].loc[dict(path=0, month=1, product="jiebei", score_band="high", state="M1")] = 4
    out = metrics.roll_rates(ds)
    assert out["roll_rate"].sel(month=1, transition="current->M1") == pytest.approx(0.1)
    assert out["cure_rate"].sel(month=1, from_state="M1") == pytest.approx(0.25)


# --- vintages ---------------------------------------------------------------------------------
def test_vintage_charges_off_half_at_month_seven():
    ds = make_ds(months=12, vintages=3)
    ds["vintage_original"].loc[dict(vintage=1, product="jiebei")] = 1000.0
    ds["vintage_original"].loc[dict(vintage=3, product="jiebei")] = 2000.0
    ds["vintage_charged_off"].loc[dict(vintage=1, months_on_book=7, product="jiebei")] = 500.0  # both paths
    ds["vintage_recovered"].loc[dict(vintage=1, months_on_book=9, product="jiebei")] = 100.0     # gross: ignored
    out = metrics.vintage_curves(ds)
    check_attrs(out)
    cum = out["cumulative_charge_off_rate"]
    assert cum.dims == ("vintage", "months_on_book", "product")
    curve = cum.sel(vintage=1, product="jiebei").values
    np.testing.assert_allclose(curve[:7], 0.0)
    np.testing.assert_allclose(curve[7:], 0.5)        # vintage 1 is observed up to mob 11 = H - 1
    v3 = cum.sel(vintage=3, product="jiebei")
    assert np.isfinite(v3.sel(months_on_book=slice(0, 9))).all()
    assert np.isnan(v3.sel(months_on_book=[10, 11])).all()   # not observed beyond H - vintage = 9
    assert np.isnan(cum.sel(product="huabei")).all()          # original amount 0


def test_vintage_delinquency_rates_mean_over_paths():
    ds = make_ds(months=12, vintages=2)
    ds["vintage_original"].loc[dict(vintage=2, product="yuefu")] = 1000.0
    at = dict(vintage=2, months_on_book=3, product="yuefu")
    ds["vintage_balance"].loc[dict(path=0, state="current", **at)] = 700.0
    ds["vintage_balance"].loc[dict(path=0, state="M1", **at)] = 100.0
    ds["vintage_balance"].loc[dict(path=0, state="M2", **at)] = 100.0
    ds["vintage_balance"].loc[dict(path=0, state="M4", **at)] = 50.0
    ds["vintage_balance"].loc[dict(path=1, state="M3", **at)] = 300.0
    out = metrics.vintage_curves(ds).sel(**at)
    assert out["dpd30_rate"] == pytest.approx((150 + 300) / 2 / 1000)
    assert out["dpd90_rate"] == pytest.approx(50 / 2 / 1000)


# --- delinquency and loss rates ---------------------------------------------------------------
def split_balances(ds: xr.Dataset, month: int = 5) -> None:
    def put(path, product, state, value):
        ds["balance"].loc[dict(path=path, month=month, product=product, score_band="low", state=state)] = value

    put(0, "jiebei", "current", 800.0); put(0, "jiebei", "M2", 100.0); put(0, "jiebei", "M5", 100.0)
    put(0, "huabei", "current", 1000.0)
    put(1, "jiebei", "current", 900.0); put(1, "jiebei", "M4", 100.0)
    put(1, "huabei", "current", 500.0); put(1, "huabei", "M1", 500.0)


def test_delinquency_ratios_of_a_known_balance_split():
    ds = make_ds()
    split_balances(ds)
    out = metrics.delinquency(ds)
    check_attrs(out)
    assert out["dpd30_ratio"].dims == ("month", "product")
    assert list(out["dpd30_ratio"]["product"].values) == [*PRODUCTS, "total"]
    at = out.sel(month=5)
    assert at["dpd30_ratio"].sel(product="jiebei") == pytest.approx((0.2 + 0.1) / 2)
    assert at["dpd90_ratio"].sel(product="jiebei") == pytest.approx(0.1)
    assert at["dpd30_ratio"].sel(product="huabei") == 0.0
    assert at["dpd30_ratio"].sel(product="yuefu") == 0.0          # no balance: 0, as dataset.delinquency_ratio
    assert at["dpd30_ratio"].sel(product="total") == pytest.approx((200 / 2000 + 100 / 2000) / 2)
    assert at["dpd90_ratio"].sel(product="total") == pytest.approx((100 / 2000 + 100 / 2000) / 2)
    for worst, name in (("M2", "dpd30_ratio"), ("M4", "dpd90_ratio")):
        expected = dataset.delinquency_ratio(ds, worst).mean("path")
        np.testing.assert_allclose(out[name].sel(product="total").values, expected.values)


def test_charge_off_rate_is_annualised_on_the_previous_balance():
    ds = make_ds()
    split_balances(ds, month=5)                                   # 2,000 in each path at the end of month 5
    ds["charged_off"].loc[dict(path=0, month=6, product="jiebei", score_band="low")] = 20.0
    ds["charged_off"].loc[dict(path=1, month=6, product="huabei", score_band="high")] = 10.0
    ds["recovered"].loc[dict(path=0, month=6, product="jiebei", score_band="low")] = 5.0
    out = metrics.delinquency(ds)
    assert out["charge_off_rate"].dims == ("month",)
    assert out["charge_off_rate"].sel(month=6) == pytest.approx((20 * 12 / 2000 + 10 * 12 / 2000) / 2)
    assert out["net_loss_rate"].sel(month=6) == pytest.approx((15 * 12 / 2000 + 10 * 12 / 2000) / 2)
    assert np.isnan(out["charge_off_rate"].sel(month=1))          # no balance before month 1
    # With an existing book, month 1 is measured against the opening balance.
    ds["opening_balance"].loc[dict(product="jiebei", score_band="low", state="current")] = 1000.0
    ds["charged_off"].loc[dict(month=1, product="jiebei", score_band="low")] = 10.0
    assert metrics.delinquency(ds)["charge_off_rate"].sel(month=1) == pytest.approx(0.12)


# --- yields and the P&L -----------------------------------------------------------------------
def pnl_ds(months: int = 24) -> xr.Dataset:
    ds = make_ds(months=months)
    cell = dict(product="jiebei", score_band="low")
    ds["interest_income"].loc[dict(path=0, month=1, **cell)] = 1000.0
    ds["interest_income"].loc[dict(path=1, month=2, **cell)] = 1400.0      # mean 1,200
    ds["fee_income"].loc[dict(path=0, month=3, **cell)] = 240.0           # mean 120
    ds["penalty_income"].loc[dict(month=4, **cell)] = 30.0
    ds["merchant_discount"].loc[dict(month=5, **cell)] = 50.0
    ds["merchant_fee_income"].loc[dict(month=5, **cell)] = 20.0
    ds["funding_cost"].loc[dict(month=6, **cell)] = 100.0
    ds["charged_off"].loc[dict(month=7, **cell)] = 300.0
    ds["recovered"].loc[dict(month=9, **cell)] = 100.0
    ds["balance"].loc[dict(state="current", **cell)] = 10000.0             # every month and path
    ds["balance"].loc[dict(product="huabei", score_band="high", state="M1")] = 10000.0
    ds["net_revenue"][:] = (ds["interest_income"] + ds["fee_income"] + ds["penalty_income"]
                            + ds["merchant_discount"] + ds["merchant_fee_income"] - ds["funding_cost"] - ds["charged_off"]
                            + ds["recovered"]).values
    return ds


def test_yields_by_product_and_total():
    ds = pnl_ds(months=24)                       # a year = half the horizon
    out = metrics.yields(ds)
    check_attrs(out)
    assert list(out["product"].values) == [*PRODUCTS, "total"]
    revenue, net_co, funding = 1200 + 120 + 30 + 50 + 20, 300 - 100, 100
    jiebei = out.sel(product="jiebei")
    assert jiebei["risk_adjusted_yield"] == pytest.approx((revenue - net_co) * 0.5 / 10000)
    assert jiebei["net_interest_margin"] == pytest.approx((revenue - funding) * 0.5 / 10000)
    assert out["risk_adjusted_yield"].sel(product="total") == pytest.approx((revenue - net_co) * 0.5 / 20000)
    assert out["risk_adjusted_yield"].sel(product="huabei") == 0.0
    assert np.isnan(out["risk_adjusted_yield"].sel(product="yuefu"))      # no balance
    table = pnl.profit_and_loss(ds)[1].sel(pnl_yield_line="risk_adjusted_yield", view="book")
    np.testing.assert_allclose(out["risk_adjusted_yield"].values, table.values)


def test_waterfall_sums_to_pretax_income():
    ds = pnl_ds()
    cell = dict(product="jiebei", score_band="low")
    # The allowance: 80 on origination, remeasured by -10, 5 released on repayment, 5 used at the charge-off (+60).
    for name, month, value in (("allowance_originated", 2, 80.0), ("allowance_remeasured", 5, -10.0),
                               ("allowance_released", 6, 5.0), ("allowance_used", 7, 5.0),
                               ("acquisition_cost", 2, 25.0), ("servicing_cost", 3, 10.0), ("collection_cost", 4, 5.0)):
        ds[name].loc[dict(month=month, **cell)] = value
    out = metrics.pnl_waterfall(ds)
    check_attrs(out)
    assert out.dims == ("step",)
    assert list(out["step"].values) == list(metrics.WATERFALL_STEPS)
    expected = {"interest_income": 1200, "fee_income": 120, "penalty_income": 30, "merchant_discount": 50,
                "merchant_fee_income": 20, "funding_cost": -100, "net_charge_offs": -200, "allowance_change": -60,
                "acquisition_cost": -25, "servicing_cost": -10, "collection_cost": -5, "pretax_income": 1020}
    for step, value in expected.items():
        assert out.sel(step=step) == pytest.approx(value), step
    assert out.sel(step="pretax_income") == pytest.approx(float(out.drop_sel(step="pretax_income").sum()))


def test_loss_distribution_per_path():
    ds = make_ds()
    ds["capital_loss"] = xr.DataArray([[250.0, 0.0, 0.0], [0.0, 100.0, 0.0]], dims=("path", "product"))
    out = metrics.loss_distribution(ds)
    check_attrs(out)
    assert out.dims == ("path",)
    np.testing.assert_allclose(out.values, [250.0, 100.0])


# --- calibration ------------------------------------------------------------------------------
def test_score_band_calibration_shares():
    ds = make_ds()
    for path in (0, 1):
        ds["accounts_seasoned_12m"].loc[dict(path=path, product="jiebei", score_band="low")] = 100
        ds["accounts_seasoned_12m"].loc[dict(path=path, product="huabei", score_band="low")] = 300
    ds["pd_12m_seasoned"].loc[dict(product="jiebei", score_band="low")] = 0.08
    ds["pd_12m_seasoned"].loc[dict(product="huabei", score_band="low")] = 0.04
    ds["pd_12m_seasoned"].loc[dict(product="yuefu", score_band="low")] = np.nan   # no accounts: no weight
    ds["pd_12m"].loc[dict(product="jiebei", score_band="low")] = 0.5     # the exposure-weighted pool PD: not used
    ds["fraud_seasoned"].loc[dict(product="huabei", score_band="low")] = 0.01
    ds["bads_12m"].loc[dict(path=0, product="jiebei", score_band="low")] = 20
    ds["bads_12m"].loc[dict(path=1, product="huabei", score_band="low")] = 30
    out = metrics.score_band_calibration(ds)
    check_attrs(out)
    assert out["predicted_pd"].dims == ("score_band",)
    low = out.sel(score_band="low")
    assert low["predicted_pd"] == pytest.approx((100 * 0.08 + 300 * 0.04) / 400)
    assert low["observed_rate"] == pytest.approx((20 / 400 + 30 / 400) / 2)
    assert low["accounts"] == 400
    assert low["fraud_share"] == pytest.approx(300 * 0.01 / 400)
    high = out.sel(score_band="high")
    assert high["accounts"] == 0 and np.isnan(high["predicted_pd"]) and np.isnan(high["observed_rate"])
    assert "12 months on book" in out["observed_rate"].attrs["description"]


def test_score_band_table():
    ds = make_ds()
    sel = dict(product="jiebei", score_band="low")
    ds["applications"].loc[dict(month=1, **sel)] = 200
    ds["approvals"].loc[dict(month=1, **sel)] = 100
    ds["takeups"].loc[dict(month=1, **sel)] = 40
    ds["mean_apr"].loc[sel] = 0.18
    ds["pd_12m_seasoned"].loc[sel] = 0.05
    ds["accounts_seasoned_12m"].loc[dict(path=0, **sel)] = 40
    ds["accounts_seasoned_12m"].loc[dict(path=1, **sel)] = 40
    ds["charged_off"].loc[dict(path=0, month=3, **sel)] = 300.0
    ds["recovered"].loc[dict(path=1, month=4, **sel)] = 100.0
    ds["pretax_income"].loc[dict(path=0, month=3, **sel)] = 50.0
    row = metrics.score_band_table(ds).sel(score_band="low")
    assert row["applications"] == 200 and row["approval_rate"] == pytest.approx(0.5)
    assert row["takeup_rate"] == pytest.approx(0.4) and row["mean_apr"] == pytest.approx(0.18)
    assert row["mean_pd_12m"] == pytest.approx(0.05)
    assert row["loss"] == pytest.approx((300 - 100) / 2) and row["profit"] == pytest.approx(25.0)


# --- the policy frontier and sweeps -----------------------------------------------------------
def test_policy_frontier_of_a_two_cell_sweep():
    ds = make_ds(months=24, sweep={"cutoff_score": [560.0, 600.0]})
    ds["approvals"].loc[dict(month=1, product="jiebei", score_band="low", cutoff_score=560.0)] = 300
    ds["approvals"].loc[dict(month=2, product="huabei", score_band="high", cutoff_score=560.0)] = 200
    ds["approvals"].loc[dict(month=1, product="jiebei", score_band="high", cutoff_score=600.0)] = 250
    ds["net_revenue"].loc[dict(path=0, month=3, product="jiebei", score_band="low")] = 1000.0   # both cells
    ds["net_revenue"].loc[dict(path=1, month=3, product="jiebei", score_band="low", cutoff_score=600.0)] = 500.0
    ds["expected_loss"] = xr.DataArray([[400.0, 150.0], [120.0, 45.0]], dims=("view", "cutoff_score"),
                                       coords={"view": ["book", "platform"]})
    ds["raroc"] = xr.DataArray([[0.2, 0.3], [0.5, 0.6]], dims=("view", "cutoff_score"),
                               coords={"view": ["book", "platform"]})
    # 30+ ratio 0.5 in months 1..12 (excluded) and 0.1 (cell 560) / 0.05 (cell 600) in months 13..24.
    cell = dict(product="jiebei", score_band="low")
    ds["balance"].loc[dict(month=slice(1, 12), state="M2", **cell)] = 100.0
    ds["balance"].loc[dict(month=slice(1, 12), state="current", **cell)] = 100.0
    ds["balance"].loc[dict(month=slice(13, 24), state="current", **cell)] = 900.0
    ds["balance"].loc[dict(month=slice(13, 24), state="M3", cutoff_score=560.0, **cell)] = 100.0
    ds["balance"].loc[dict(month=slice(13, 24), path=0, state="M3", cutoff_score=600.0, **cell)] = 100.0
    out = metrics.policy_frontier(ds)
    check_attrs(out)
    assert out.sizes["cell"] == 2
    assert list(out["label"].values) == ["cutoff_score=560.0", "cutoff_score=600.0"]
    np.testing.assert_allclose(out["cutoff_score"].values, [560.0, 600.0])
    np.testing.assert_allclose(out["expected_loss"].values, [400.0, 150.0])
    np.testing.assert_allclose(out["raroc"].values, [0.2, 0.3])
    np.testing.assert_allclose(out["platform_raroc"].values, [0.5, 0.6])
    np.testing.assert_array_equal(out["approvals"].values, [500, 250])
    np.testing.assert_allclose(out["net_revenue"].values, [500.0, 750.0])
    np.testing.assert_allclose(out["dpd30_ratio"].values, [0.1, 0.05])
    assert out.sel(cutoff_score=600.0)["approvals"].item() == 250
    grid = out.drop_vars("label").unstack("cell")
    assert grid["approvals"].sel(cutoff_score=560.0) == 500


def test_policy_frontier_without_sweep_is_one_cell_named_after_the_run():
    ds = make_ds(name="base")
    ds["approvals"].loc[dict(month=1, product="yuefu", score_band="low")] = 7
    ds["charged_off"].loc[dict(path=0, month=3, product="yuefu", score_band="low")] = 80.0
    out = metrics.policy_frontier(ds)
    assert out.sizes["cell"] == 1
    assert out["label"].values.tolist() == ["base"]
    assert out["approvals"].item() == 7
    assert out["expected_loss"].item() == pytest.approx(40.0)      # from the per-path losses
    assert np.isnan(out["raroc"].item())                            # not in these results


def test_every_metric_broadcasts_over_sweep_dimensions():
    sweep = {"cutoff_score": [560.0, 600.0], "macro": ["baseline", "severe"]}
    ds = make_ds(sweep=sweep)
    split_balances(ds)
    ds["accounts"].loc[dict(month=1, state="current")] = 10
    ds["vintage_original"][:] = 100.0
    ds["takeups"][:] = 1
    for fn in (metrics.vintage_curves, metrics.roll_rates, metrics.delinquency, metrics.yields,
               metrics.pnl_waterfall, metrics.loss_distribution, metrics.score_band_calibration):
        out = fn(ds)
        check_attrs(out)
        for da in (out.data_vars.values() if isinstance(out, xr.Dataset) else [out]):
            assert {"cutoff_score", "macro"} <= set(da.dims), (fn.__name__, da.name)
    frontier = metrics.policy_frontier(ds)
    assert frontier.sizes["cell"] == 4
    assert frontier["label"].values[3] == "cutoff_score=600.0, macro=severe"
    total = metrics.delinquency(ds)["dpd30_ratio"].sel(product="total", month=5)
    np.testing.assert_allclose(total.values, 0.075)


# --- a small real run -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory) -> xr.Dataset:
    path: Path = tmp_path_factory.mktemp("metrics") / "t.toml"
    path.write_text('[run]\nname = "t"\n')
    overrides = ["run.paths=2", "applicants.monthly_volume=200", "run.horizon_months=15",
                 "applicants.origination_months=12"]
    return simulation.simulate(load_scenario(path, overrides))


def test_metrics_of_a_real_run(run):
    ds = run
    horizon, n_products = 15, len(PRODUCTS)

    curves = metrics.vintage_curves(ds)
    assert curves["cumulative_charge_off_rate"].shape == (12, horizon, n_products)
    cum = curves["cumulative_charge_off_rate"]
    observed = cum["months_on_book"] <= horizon - cum["vintage"]
    has_amount = ds["vintage_original"] > 0
    assert np.isfinite(cum.where(observed & has_amount, 0.0)).all()
    assert np.isnan(cum.where(~observed)).all()
    assert (cum.diff("months_on_book").fillna(0) >= -1e-12).all()     # cumulative: never falls

    rates = metrics.roll_rates(ds)
    assert rates["roll_rate"].shape == (horizon, 7)
    assert rates["cure_rate"].shape == (horizon, 6)
    later = rates["roll_rate"].sel(month=slice(3, None), transition="current->M1")
    assert np.isfinite(later).all() and ((later > 0) & (later < 1)).all()
    both = rates["roll_rate"].fillna(0) + rates["cure_rate"].rename(from_state="transition").assign_coords(
        transition=list(metrics.TRANSITIONS[1:])).reindex(transition=list(metrics.TRANSITIONS)).fillna(0)
    assert (both <= 1 + 1e-12).all()                                  # an account rolls or cures, not both

    dq = metrics.delinquency(ds)
    assert dq["dpd30_ratio"].shape == (horizon, n_products + 1)
    np.testing.assert_allclose(dq["dpd30_ratio"].sel(product="total").values,
                               dataset.delinquency_ratio(ds, "M2").mean("path").values)
    np.testing.assert_allclose(dq["dpd90_ratio"].sel(product="total").values,
                               dataset.delinquency_ratio(ds, "M4").mean("path").values)
    assert np.isfinite(dq["charge_off_rate"].sel(month=slice(2, None))).all()
    assert (dq["net_loss_rate"].sel(month=slice(2, None)) <= dq["charge_off_rate"].sel(month=slice(2, None))).all()

    ylds = metrics.yields(ds)
    np.testing.assert_allclose(ylds["risk_adjusted_yield"].values,
                               ds["pnl_yield"].sel(pnl_yield_line="risk_adjusted_yield", view="book").values)
    assert np.isfinite(ylds["net_interest_margin"]).all()

    waterfall = metrics.pnl_waterfall(ds)
    assert waterfall.sel(step="pretax_income") == pytest.approx(float(ds["pnl"].sel(pnl_line="pretax_income",
                                                                                      pnl_product="total", view="book")))
    losses = metrics.loss_distribution(ds)
    assert losses.dims == ("path",)
    assert float(losses.mean()) == pytest.approx(float(ds["capital_expected_loss"].sel(view="book")))
    assert float(ds["path_loss"].sum("product").mean()) == pytest.approx(float(ds["expected_loss"].sel(view="book")))

    cal = metrics.score_band_calibration(ds)
    assert cal["accounts"].sum() == ds["takeups"].sel(month=slice(1, ds.sizes["month"] - 12)).sum()
    populated = cal["accounts"] > 0
    assert np.isfinite(cal["predicted_pd"].where(populated, 0)).all()
    assert ((cal["observed_rate"].where(populated, 0) >= 0) & (cal["observed_rate"].where(populated, 0) <= 1)).all()

    frontier = metrics.policy_frontier(ds)
    assert frontier["label"].values.tolist() == ["t"]
    assert frontier["raroc"].item() == pytest.approx(float(ds["raroc"].sel(view="book")), nan_ok=True)
    assert frontier["platform_raroc"].item() == pytest.approx(float(ds["raroc"].sel(view="platform")), nan_ok=True)
    assert frontier["approvals"].item() == ds["approvals"].sum()
    for out in (curves, rates, dq, ylds, waterfall, losses, cal, frontier):
        check_attrs(out)
