"""The results Dataset assembled from integer sums (simulator/results/assemble.py): the tail's per-path
series, their shapes, one cell's Dataset and the cells of a sweep combined, on hand-made sums (no run)."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.codes import (ACCOUNTING, ALLOWANCE, BALANCE, DPD90, FLOWS, FUNNEL, GROUP_FUNNEL, N_STATES, PRODUCTS,
                             STAGE_STOCK, STAGES, STATES, V_ACCRUED_WRITTEN_OFF, V_ALLOWANCE, V_CHARGED_OFF, V_COSTS, V_CREDIT_INCOME,
                             V_FUNDING, V_MERCHANT_INCOME, V_RECOVERED, VINTAGE_FLOWS)
from simulator.config.loader import LoadedScenario, load_scenario
from simulator.model import tail, terms
from simulator.model.scoring import band_labels
from simulator.results import assemble, pnl

F = {name: j for j, name in enumerate(FLOWS)}
A = {name: j for j, name in enumerate(ACCOUNTING)}
SMALL = ["run.paths=2", "run.horizon_months=14", "applicants.origination_months=2", "applicants.monthly_volume=20"]


def kernel_sums(n_paths: int, horizon: int, products: int, bands: int, vintages: int, rng) -> dict[str, np.ndarray]:
    """Random integer sums of the kernel's outputs that path_series reads."""
    def ints(*shape):
        return rng.integers(0, 1000, (n_paths, *shape))
    return {"flows": ints(horizon, products, bands, len(FLOWS)),
            "accounting": ints(horizon, products, bands, len(ACCOUNTING)),
            "stocks": ints(horizon, products, bands, N_STATES, 2),
            "stages": ints(horizon, products, bands, len(STAGES), STAGE_STOCK),
            "vintage_flows": ints(vintages, horizon, products, len(VINTAGE_FLOWS))}


def cell_sums(sc, n_paths: int, rng, weight=None) -> dict[str, np.ndarray]:
    """Everything build_dataset reads (simulation.cell_sums' keys), random, of the scenario's shapes."""
    horizon, products, bands = sc.run.horizon_months, len(PRODUCTS), terms.n_bands(sc)
    sums = {name: rng.integers(0, 1000, (n_paths, *shape)) for name, shape in terms.output_shapes(sc).items()}
    cap = rng.integers(0, 5, (products, bands, 6))
    cap[0, 0, 0] = 0                                      # nothing priced in one pool: its mean APR is NaN
    return sums | {
        "funnel": rng.integers(0, 50, (horizon, products, bands, len(FUNNEL))),
        "applicants": rng.integers(0, 50, (horizon, bands)),
        "approved_applicants": rng.integers(0, 50, (horizon, bands)),
        "opening": rng.integers(0, 1000, (products, bands, N_STATES, 2)),
        "cap_counts": cap, "cap_aprs": rng.uniform(0, 1, (products, bands, 2)),
        "revenue_given_up": rng.uniform(0, 100, (products, bands)), "mean_apr": rng.uniform(0, 0.3, (products, bands)),
        "pool_pd": rng.uniform(0.01, 0.2, (products, bands)), "seasoned_pd": rng.uniform(0, 0.2, (products, bands)),
        "seasoned_fraud": rng.uniform(0, 0.05, (products, bands)),
        "state_pd": np.sort(rng.uniform(0.01, 0.9, (products, bands, DPD90)), axis=-1),
        "path_weight": np.ones(n_paths) if weight is None else weight,
        "group_funnel": rng.integers(0, 50, (sc.run.population_groups + 1, len(GROUP_FUNNEL))),
        "groups": {name: rng.integers(0, 1000, (n_paths, sc.run.population_groups + 1) + shape)
                   for name, shape in assemble.series_shapes(sc).items()},
    }


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A sweep of two cells, each a Dataset built from its own random sums, and the sums."""
    path = tmp_path_factory.mktemp("assemble") / "s.toml"
    path.write_text('[run]\nname = "t"\n[sweep]\n"policy.cutoff_score" = [560, 600]\n')
    loaded = load_scenario(path, SMALL)
    rng = np.random.default_rng(7)
    weight = np.array([0.5, 1.5])
    sums = [cell_sums(sc, 2, rng, weight) for sc in loaded.cells]
    labels = band_labels(loaded.scenario.scorecard.bands)
    cells = [assemble.build_dataset(loaded, sc, labels, s, "9.9") for sc, s in zip(loaded.cells, sums)]
    return loaded, sums, cells


# --- path_series -----------------------------------------------------------------------------------

def capital(out: dict) -> tuple[np.ndarray, np.ndarray]:
    """The capital year's (loss, pre-tax income) of the book from path_series' capital_lines."""
    year = {name: out["capital_lines"][..., j] for j, name in enumerate(pnl.PNL_FLOWS)}
    return year["charged_off"] - year["recovered"], pnl.pretax_income(year)


def test_path_series_monthly_totals_sum_bands_and_states():
    s = kernel_sums(2, 5, 3, 2, 0, np.random.default_rng(1))
    out = assemble.path_series(s, (2, 3, 5))
    fl, st = s["flows"], s["stocks"][..., BALANCE]
    np.testing.assert_array_equal(out["path_month_loss"], (fl[..., F["charged_off"]] - fl[..., F["recovered"]]).sum(3))
    revenue = fl[..., [F["interest_income"], F["interest_accrual"], F["fee_income"], F["penalty_income"],
                       F["merchant_discount"], F["merchant_fee_income"]]].sum((3, 4))
    np.testing.assert_array_equal(out["path_month_revenue"], revenue)
    np.testing.assert_array_equal(out["path_month_balance"], st.sum((3, 4)))
    np.testing.assert_array_equal(out["path_month_dpd30_balance"], st[..., 2:].sum((3, 4)))   # M2 .. M6
    np.testing.assert_array_equal(out["path_month_dpd90_balance"], st[..., 4:].sum((3, 4)))   # M4 .. M6
    np.testing.assert_array_equal(out["path_month_allowance"], s["stages"][..., ALLOWANCE].sum((3, 4)))
    assert out["path_month_loss"].shape == (2, 5, 3) and capital(out)[0].shape == (2, 3)


def test_path_series_profit_is_revenue_less_funding_expense_and_costs():
    s = kernel_sums(1, 4, 3, 2, 0, np.random.default_rng(2))
    out = assemble.path_series(s, (1, 2, 4))
    fl, ac = s["flows"].sum(3), s["accounting"].sum(3)
    allowance = (ac[..., A["allowance_originated"]] + ac[..., A["allowance_remeasured"]]
                 - ac[..., A["allowance_released"]] - ac[..., A["allowance_used"]])
    expense = allowance + fl[..., F["charged_off"]] + fl[..., F["accrued_written_off"]] - fl[..., F["recovered"]]
    costs = ac[..., :3].sum(-1)
    np.testing.assert_array_equal(out["path_month_profit"],
                                  out["path_month_revenue"] - fl[..., F["funding_cost"]] - expense - costs)


def test_capital_year_sums_the_windows_months_only():
    """Without vintages (no new business) the capital year is the book's months first .. last."""
    s = kernel_sums(2, 6, 3, 2, 0, np.random.default_rng(3))
    out = assemble.path_series(s, (2, 3, 5))
    fl = s["flows"][:, 2:5]                                          # months 3, 4, 5
    loss, profit = capital(out)
    np.testing.assert_array_equal(loss, (fl[..., F["charged_off"]] - fl[..., F["recovered"]]).sum((1, 3)))
    np.testing.assert_array_equal(profit, out["path_month_profit"][:, 2:5].sum(1))


def test_capital_year_leaves_out_vintages_booked_after_the_capital_month():
    """The whole book's flows are an existing book plus the vintages' (by calendar month); the capital
    year's loss and profit are those of the existing book and of the vintages 1 .. m only."""
    rng = np.random.default_rng(4)
    n, horizon, products, vintages, (m, first, last) = 2, 8, 3, 5, (2, 3, 7)
    vf = np.zeros((n, vintages, horizon, products, len(VINTAGE_FLOWS)), dtype=np.int64)
    for v in range(1, vintages + 1):
        for k in range(horizon - v + 1):                             # month on book k: calendar month v + k
            vf[:, v - 1, k] = rng.integers(0, 1000, (n, products, len(VINTAGE_FLOWS)))
    existing = kernel_sums(n, horizon, products, 1, 0, rng)
    flows, accounting = existing["flows"].copy(), existing["accounting"].copy()
    flows[..., F["interest_income"] + 1:F["funding_cost"] + 1] = 0   # existing book: interest, no other revenue
    for v in range(1, vintages + 1):
        for k in range(horizon - v + 1):
            t, x = v + k - 1, vf[:, v - 1, k]
            previous = vf[:, v - 1, k - 1, :, V_ALLOWANCE] if k else 0
            flows[:, t, :, 0, F["charged_off"]] += x[..., V_CHARGED_OFF]
            flows[:, t, :, 0, F["recovered"]] += x[..., V_RECOVERED]
            flows[:, t, :, 0, F["accrued_written_off"]] += x[..., V_ACCRUED_WRITTEN_OFF]
            flows[:, t, :, 0, F["interest_income"]] += x[..., V_CREDIT_INCOME]
            flows[:, t, :, 0, F["merchant_fee_income"]] += x[..., V_MERCHANT_INCOME]
            flows[:, t, :, 0, F["funding_cost"]] += x[..., V_FUNDING]
            accounting[:, t, :, 0, A["acquisition_cost"]] += x[..., V_COSTS]
            accounting[:, t, :, 0, A["allowance_originated"]] += x[..., V_ALLOWANCE] - previous
    s = existing | {"flows": flows, "accounting": accounting, "vintage_flows": vf}
    out = assemble.path_series(s, (m, first, last))
    # The book at the end of month m, by hand: the existing book, vintages 1 .. m, in months first .. last.
    e = {"flows": existing["flows"].sum(3), "accounting": existing["accounting"].sum(3)}
    months = slice(first - 1, last)
    ef, ea = e["flows"][:, months], e["accounting"][:, months]
    loss = (ef[..., F["charged_off"]] - ef[..., F["recovered"]]).sum(1)
    profit = (ef[..., F["interest_income"]] + ef[..., F["interest_accrual"]] - ef[..., F["charged_off"]]
              - ef[..., F["accrued_written_off"]] + ef[..., F["recovered"]]
              - ea[..., A["allowance_originated"]] - ea[..., A["allowance_remeasured"]]
              + ea[..., A["allowance_released"]] + ea[..., A["allowance_used"]] - ea[..., :3].sum(-1)).sum(1)
    for v in range(1, m + 1):
        ks = slice(first - v, last - v + 1)
        x = vf[:, v - 1, ks]
        loss = loss + (x[..., V_CHARGED_OFF] - x[..., V_RECOVERED]).sum(1)
        change = vf[:, v - 1, last - v, :, V_ALLOWANCE] - vf[:, v - 1, first - v - 1, :, V_ALLOWANCE]
        earnings = x[..., V_CREDIT_INCOME] + x[..., V_MERCHANT_INCOME] - x[..., V_FUNDING]
        profit = profit + (earnings - x[..., V_COSTS] - x[..., V_CHARGED_OFF] + x[..., V_RECOVERED]
                           - x[..., V_ACCRUED_WRITTEN_OFF]).sum(1) - change
    got_loss, got_profit = capital(out)
    np.testing.assert_array_equal(got_loss, loss)
    np.testing.assert_array_equal(got_profit, profit)


def test_path_series_is_linear_so_tasks_add():
    rng = np.random.default_rng(5)
    a, b = kernel_sums(2, 6, 3, 2, 3, rng), kernel_sums(2, 6, 3, 2, 3, rng)
    both = assemble.path_series({k: a[k] + b[k] for k in a}, (2, 3, 6))
    parts = assemble.path_series(a, (2, 3, 6)), assemble.path_series(b, (2, 3, 6))
    for name in both:
        np.testing.assert_array_equal(both[name], parts[0][name] + parts[1][name])


# --- series_shapes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("horizon, cuts", [(14, "[560.0, 600.0]"), (30, "[500.0, 550.0, 600.0, 650.0, 700.0]")])
def test_series_shapes_follow_the_horizon_and_products_not_bands(scenario_file, horizon, cuts):
    sc = load_scenario(scenario_file(), [f"run.horizon_months={horizon}", f"scorecard.bands={cuts}",
                                         "run.paths=3"]).scenario
    shapes = assemble.series_shapes(sc)
    assert set(shapes) == {
        "path_month_loss", "path_month_revenue", "path_month_profit", "path_month_allowance", "path_month_balance",
        "path_month_dpd30_balance", "path_month_dpd90_balance", "capital_lines", "path_flows", "path_stage_balance",
        "path_stage_allowance"}
    assert set(shapes) - {"capital_lines"} <= set(assemble.DESCRIPTIONS)     # the capital year's lines become
    others = {"capital_lines": (len(PRODUCTS), len(pnl.PNL_FLOWS)),            # capital_loss and _profit
              "path_flows": (len(PRODUCTS), len(assemble.SERIES_FLOWS)),
              "path_stage_balance": (len(PRODUCTS), len(STAGES)), "path_stage_allowance": (len(PRODUCTS), len(STAGES))}
    for name, shape in shapes.items():
        expected = (horizon, len(PRODUCTS)) if name.startswith("path_month") else others[name]
        assert shape == expected, name


# --- build_dataset ---------------------------------------------------------------------------------

def test_dataset_holds_the_sums_in_yuan_and_counts(swept):
    _, sums, cells = swept
    s, ds = sums[0], cells[0]
    np.testing.assert_array_equal(ds["accounts"].values, s["stocks"][..., 0])
    np.testing.assert_array_equal(ds["balance"].values, s["stocks"][..., 1] / 100)
    np.testing.assert_array_equal(ds["charged_off"].values, s["flows"][..., F["charged_off"]] / 100)
    np.testing.assert_array_equal(ds["charged_off_accounts"].values, s["flows"][..., F["charged_off_accounts"]])
    assert ds["charged_off_accounts"].dtype.kind == "i" and ds["balance"].dtype.kind == "f"
    np.testing.assert_array_equal(ds["takeups"].values, s["funnel"][..., 2])
    np.testing.assert_array_equal(ds["opening_balance"].values, s["opening"][..., 1] / 100)
    assert ds["balance"].dims == ("path", "month", "product", "score_band", "state")
    assert list(ds["state"].values) == list(STATES) and list(ds["month"].values) == list(range(1, 15))


def test_dataset_net_revenue_and_pretax_income_by_hand(swept):
    _, sums, cells = swept
    fl, ac, ds = sums[1]["flows"], sums[1]["accounting"], cells[1]
    revenue = sum(fl[..., F[n]] for n in ("interest_income", "interest_accrual", "fee_income", "penalty_income",
                                          "merchant_discount", "merchant_fee_income"))
    written_off = fl[..., F["charged_off"]] - fl[..., F["recovered"]] + fl[..., F["accrued_written_off"]]
    net = revenue - fl[..., F["funding_cost"]] - written_off
    np.testing.assert_allclose(ds["net_revenue"].values, net / 100, rtol=0, atol=1e-9)
    costs = ac[..., 0] + ac[..., 1] + ac[..., 2]
    expense = ac[..., 3] + ac[..., 4] - ac[..., 5] - ac[..., 6] + written_off
    np.testing.assert_allclose(ds["operating_costs"].values, costs / 100, atol=1e-9)
    income = revenue - fl[..., F["funding_cost"]] - expense - costs
    np.testing.assert_allclose(ds["pretax_income"].values, income / 100, atol=1e-9)


def test_dataset_stage_transfers_and_cap_means(swept):
    _, sums, cells = swept
    s, ds = sums[0], cells[0]
    tr = ds["stage_transfers"]
    np.testing.assert_array_equal(tr.sel(transfer="stage_1_to_2").values, s["transfers"][..., 0, 1])
    np.testing.assert_array_equal(tr.sel(transfer="stage_2_to_3").values, s["transfers"][..., 1, 2])
    np.testing.assert_array_equal(tr.sel(transfer="stage_3_to_1").values, s["transfers"][..., 2, 0])
    np.testing.assert_array_equal(ds["allowance"].values, s["stages"][..., 2] / 100)
    cap = s["cap_counts"]
    np.testing.assert_array_equal(ds["approvals_without_cap"].values, cap[..., 4])
    np.testing.assert_array_equal(ds["takeups_without_cap"].values, cap[..., 5])
    before = ds["apr_before_cap"].values
    assert np.isnan(before[0, 0])
    priced = cap[..., 0] > 0
    np.testing.assert_allclose(before[priced], s["cap_aprs"][..., 0][priced] / cap[..., 0][priced])
    approved = s["funnel"][..., 1].sum(0)
    np.testing.assert_allclose(ds["apr_after_cap"].values[approved > 0],
                               (s["cap_aprs"][..., 1] / np.where(approved > 0, approved, 1))[approved > 0])


def test_dataset_vintages_keep_m2_and_worse_only(swept):
    _, sums, cells = swept
    s, ds = sums[0], cells[0]
    vb = ds["vintage_balance"]
    assert vb.sizes["vintage"] == 2 and list(ds["months_on_book"].values) == list(range(14))
    assert np.isnan(vb.sel(state=["current", "M1"]).values).all()
    np.testing.assert_array_equal(vb.sel(state=list(STATES[2:])).values, s["vintage_stocks"][..., 2:, 1] / 100)
    np.testing.assert_array_equal(ds["vintage_original"].values, s["vintage_flows"][0, :, 0, :, 0] / 100)


def test_dataset_series_and_capital_window_attrs(swept):
    loaded, sums, cells = swept
    ds, s = cells[0], sums[0]
    month, first, last = tail.capital_window(loaded.cells[0])
    assert (ds.attrs["capital_month"], ds.attrs["capital_window"]) == (month, f"months {first} .. {last}")
    assert ds.attrs["results_mode"] == "full" and ds.attrs["simulator_version"] == "9.9"
    assert ds.attrs["income_basis"] == "effective_interest"
    loss = (s["flows"][..., F["charged_off"]] - s["flows"][..., F["recovered"]]).sum(3) / 100
    np.testing.assert_allclose(ds["path_month_loss"].values, loss, atol=1e-9)
    assert ds["path_month_loss"].dims == ("path", "month", "product")


def test_summary_mode_drops_the_path_axis_but_keeps_the_series(swept):
    loaded, _, _ = swept
    sc = loaded.cells[0]
    rng = np.random.default_rng(8)
    means = cell_sums(sc, 1, rng)
    means["groups"] = cell_sums(sc, 5, rng)["groups"]          # the groups' series are per path in both modes
    series = assemble.path_series(kernel_sums(5, 14, 3, 6, 2, rng), tail.capital_window(sc))
    ds = assemble.build_dataset(loaded, sc, band_labels(sc.scorecard.bands), means, "9.9", series)
    assert "path" not in ds["balance"].dims and ds.attrs["results_mode"] == "summary"
    np.testing.assert_array_equal(ds["balance"].values, means["stocks"][0, ..., 1] / 100)
    assert ds.sizes["path"] == 5
    np.testing.assert_array_equal(ds["capital_loss"].values, capital(series)[0] / 100)
    assert ds["group_path_month_loss"].dims == ("path", "population_group", "month", "product")


# --- combine_cells ---------------------------------------------------------------------------------

def test_combined_cells_stack_along_the_swept_key(swept):
    loaded, _, cells = swept
    ds = assemble.combine_cells(loaded, cells, np.array([0.5, 1.5]))
    assert list(ds["cutoff_score"].values) == [560.0, 600.0]
    assert ds["cutoff_score"].attrs["scenario_key"] == "policy.cutoff_score"
    for k, cell in enumerate(cells):
        for name in ("balance", "accounts", "pretax_income", "path_month_loss", "irb_capital"):
            np.testing.assert_array_equal(ds[name].isel(cutoff_score=k).transpose(*cell[name].dims).values,
                                          cell[name].values, err_msg=name)
    assert ds.attrs["Conventions"] == "CF-1.10"


def test_combined_cells_carry_the_path_weights_into_the_loss(swept):
    loaded, _, cells = swept
    weight = np.array([0.5, 1.5])
    ds = assemble.combine_cells(loaded, cells, weight)
    np.testing.assert_array_equal(ds["path_weight"].values, weight)
    for k, cell in enumerate(cells):
        horizon_loss = cell["path_month_loss"].sum(("month", "product")).values
        np.testing.assert_allclose(ds["path_loss"].isel(cutoff_score=k).sum("product").values, horizon_loss)
        np.testing.assert_allclose(float(ds["expected_loss"].sel(view="book").isel(cutoff_score=k)),
                                   (weight * horizon_loss).sum() / weight.sum())
        year = cell["capital_loss"].sum("product").values
        np.testing.assert_allclose(float(ds["capital_expected_loss"].sel(view="book").isel(cutoff_score=k)),
                                   (weight * year).sum() / weight.sum())


def test_combined_variables_carry_cf_attributes(swept):
    loaded, _, cells = swept
    single = LoadedScenario(loaded.cells[0], loaded.path, loaded.text, loaded.overrides)
    ds = assemble.combine_cells(single, [cells[0].copy()], np.ones(2))
    for name, var in ds.data_vars.items():
        assert var.attrs["description"] and var.attrs["long_name"] == name.replace("_", " "), name
        assert var.attrs["units"] in ("1", "year-1"), name
    assert ds["balance"].attrs["currency"] == "CNY" and ds["accounts"].attrs["count_of"] == "accounts"
    assert ds["pd_12m"].attrs["display_units"] == "fraction" and ds["mean_apr"].attrs["units"] == "year-1"
    assert ds["path"].attrs["units"] == "1" and ds["month"].attrs["long_name"]
