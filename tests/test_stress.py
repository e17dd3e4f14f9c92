"""Stress testing, end to end: the loss distribution against Vasicek, macro paths, sweeps under common
random numbers, capital and compare (the formulas alone: test_risk.py, test_tail.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from scipy.special import ndtr, ndtri

from simulator import codes
from simulator.engine import simulation
from simulator.model import hazard, tail
from simulator.results import dataset
from simulator.cli import main
from simulator.codes import PRODUCTS
from simulator.config.loader import load_scenario

from conftest import identical_book, run_book

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

JIEBEI = PRODUCTS.index("jiebei")


def test_loss_quantiles_follow_the_vasicek_closed_form(tmp_path):
    """Roll rates 1, no recovery, one factor draw per path: a first miss in month t is charged off in
    month t + 6, so by month H the loss share given z is 1 - (1 - p(z))^(H - 6) (plain Monte Carlo;
    tests/test_tail.py does the same with importance sampling)."""
    n, paths, horizon, h, rho = 2000, 2000, 12, 0.01, 0.1
    pd_12m = float(hazard.pd12_from_hazard(np.array([h]), [1.0] * 6)[0])
    accounts = identical_book(n, 1000.0, 0.15, 36, "interest_first", pd_12m, [1.0] * 6)
    _, _, flows, _, _ = run_book(tmp_path, accounts, [
        "behaviour.roll_rates=[1,1,1,1,1,1]", "behaviour.recovery_rate=0.0", "behaviour.prepay_monthly=0.0",
        "factor.autocorrelation=1.0", f"factor.asset_correlation={rho}", "factor.borrower_correlation=0.0",
        f"run.horizon_months={horizon}", f"run.paths={paths}"])
    share = flows[:, :, JIEBEI, codes.CHARGED_OFF_AMT].sum(axis=1) / (n * 100_000)
    levels = [0.95, 0.99, 0.999]
    out = tail.tail_statistics(share, np.ones(paths), levels)
    for j, q in enumerate(levels):
        z = ndtri(1 - q)                                   # bad factor draws make the large losses
        p = ndtr((ndtri(h) - math.sqrt(rho) * z) / math.sqrt(1 - rho))
        want = 1 - (1 - p) ** (horizon - 6)
        binomial = math.sqrt(want * (1 - want) / n)
        got, se = out["var"][j], out["var_se"][j]
        assert abs(got - want) <= 3 * math.hypot(se, binomial), (q, got, want, se)


SMALL = ["applicants.monthly_volume=1500", "run.paths=6", "run.horizon_months=30", "applicants.origination_months=24"]


def test_severe_path_lifts_delinquency_and_cuts_prepayment(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[run]\nname = "s"\n[macro]\nprepay_sensitivity = 0.3\n[sweep]\nmacro = ["baseline", "severe"]\n')
    ds = simulation.simulate(load_scenario(path, SMALL))
    dpd30 = dataset.delinquency_ratio(ds, "M2").mean("path").max("month")
    assert 2.0 <= float(dpd30.sel(macro="severe") / dpd30.sel(macro="baseline")) <= 4.0
    prepaid = ds["prepaid_accounts"].sum(("path", "month", "product", "score_band"))
    assert prepaid.sel(macro="severe") < prepaid.sel(macro="baseline")
    loss = ds["expected_loss"]
    assert (loss.sel(macro="severe") > loss.sel(macro="baseline")).all()        # in both views


def test_sweep_dimensions_common_random_numbers_and_invariance(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text('[run]\nname = "sw"\n[sweep]\n"policy.apr_cap" = [0.24, 0.15]\n"engine.block_size" = [7, 4096]\n')
    loaded = load_scenario(path, SMALL)
    ds = simulation.simulate(loaded)
    assert ds.sizes["apr_cap"] == 2 and ds.sizes["block_size"] == 2
    assert list(ds["apr_cap"].values) == [0.24, 0.15] and ds["apr_cap"].attrs["scenario_key"] == "policy.apr_cap"
    assert ds["balance"].dims[:2] == ("apr_cap", "block_size") or "apr_cap" in ds["balance"].dims
    # Cells that differ only by block size are identical.
    xr.testing.assert_identical(ds.sel(block_size=7, drop=True), ds.sel(block_size=4096, drop=True))
    # A cell equals a standalone run with the same settings (common random numbers).
    alone = simulation.simulate(load_scenario(path, SMALL + ["sweep={}", "policy.apr_cap=0.15"]))
    cell = ds.sel(apr_cap=0.15, block_size=7, drop=True)
    for name in ("balance", "accounts", "charged_off", "takeups", "borrowers"):
        assert np.array_equal(cell[name].values, alone[name].values), name
    # Same applicants and factor paths in every cell.
    assert np.array_equal(ds["applicants"].sel(apr_cap=0.24, block_size=7), ds["applicants"].sel(apr_cap=0.15, block_size=7))


def test_sweep_bit_identical_across_threads(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text('[run]\nname = "sw"\n[sweep]\nmacro = ["baseline", "adverse"]\n')
    loaded = load_scenario(path, SMALL)
    xr.testing.assert_identical(simulation.simulate(loaded, threads=1, block_size=64),
                                simulation.simulate(loaded, threads=2, block_size=1000))


def test_policy_monotone_under_common_random_numbers(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text('[run]\nname = "sw"\n[sweep]\n"policy.cutoff_score" = [540.0, 570.0, 600.0, 630.0]\n')
    ds = simulation.simulate(load_scenario(path, SMALL))
    dpd90 = dataset.delinquency_ratio(ds, "M4").sel(month=slice(13, 30)).mean(("path", "month"))
    assert np.all(np.diff(dpd90.values) <= 0), dpd90.values
    path.write_text('[run]\nname = "sw"\n[policy]\non_cap = "reject"\n'
                    '[sweep]\n"policy.apr_cap" = [0.36, 0.24, 0.2, 0.154, 0.12]\n')
    ds = simulation.simulate(load_scenario(path, SMALL))
    approvals = ds["approvals"].sum(("month", "product", "score_band")).values
    assert np.all(np.diff(approvals) <= 0) and approvals[-1] < approvals[0]


def test_metrics_in_the_dataset_and_summary(tmp_path, capsys):
    path = tmp_path / "m.toml"
    path.write_text('[run]\nname = "m"\n')
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)] + [f"--set={s}" for s in SMALL]) == 0
    printed = capsys.readouterr().out
    for label in ("expected loss", "VaR", "economic capital", "IRB capital", "RAROC", "risk-adjusted yield"):
        assert label in printed
    ds = dataset.read(out / "results.nc")
    assert list(ds["quantile"].values) == [0.95, 0.99, 0.999]
    assert ds["value_at_risk"].dims == ("view", "quantile") and ds["expected_shortfall"].dims == ("view", "quantile")
    book = ds.sel(view="book")
    assert float(book["expected_loss"]) == pytest.approx(float(ds["path_loss"].sum("product").mean("path")))
    pnl = book["pnl"].sel(pnl_product="total")
    assert float(pnl.sel(pnl_line="net_revenue")) == pytest.approx(float(ds["net_revenue"].sum(("month", "product", "score_band")).mean("path")))
    assert float(book["irb_capital_total"]) > 0
    # compare: side by side, one column per run
    assert main(["compare", str(out), str(out)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["out", "out"] and "RAROC" in table


def test_extends_and_bad_sweeps(tmp_path, capsys):
    (tmp_path / "base.toml").write_text('[run]\nname = "base"\npaths = 3\n')
    child = tmp_path / "child.toml"
    child.write_text('extends = "base.toml"\n[run]\nname = "child"\n')
    sc = load_scenario(child).scenario
    assert (sc.run.name, sc.run.paths) == ("child", 3)
    for text, message in [
        ('[sweep]\n"policy.nope" = [1]\n', 'sweep.policy.nope: expected a scenario key'),
        ('[sweep]\n"policy.apr_cap" = []\n', "sweep.policy.apr_cap: expected at least 1 values"),
        ('[sweep]\n"policy.apr_cap" = [0.2, -1.0]\n', "policy.apr_cap: expected greater than or equal to 0, found -1.0 (sweep cell apr_cap=-1.0)"),
        # Sweeps that would change the results' shape or their shared random numbers, or fail late.
        ('[sweep]\n"run.paths" = [1, 2]\n', "sweep.run.paths: expected a key that keeps the results' shape"),
        ('[sweep]\n"run.horizon_months" = [6, 12]\n', "sweep.run.horizon_months: expected a key that keeps"),
        ('[sweep]\n"run.seed" = [1, 2]\n', "sweep.run.seed: expected a key that keeps"),
        ('[sweep]\n"scorecard.bands" = [540.0, 600.0]\n', "sweep.scorecard.bands: expected a key that keeps"),
        ('[sweep]\n"applicants.origination_months" = [6, 12]\n', "sweep.applicants.origination_months: expected"),
        ('[sweep]\n"applicants.monthly_volume" = [0, 100]\n', "expected volumes all above 0"),
        # Under importance sampling the autocorrelation moves the shift, so the cells' path weights would differ.
        ('[capital]\nimportance_quantile = 0.99\n[sweep]\n"factor.autocorrelation" = [0.5, 0.8]\n',
         "sweep.factor.autocorrelation: expected a key that keeps the paths' weights"),
        ('[sweep]\n"policy.apr_cap" = [0.2, 0.2]\n', "sweep.policy.apr_cap: expected distinct values"),
        ('[sweep]\n"policy.apr_cap" = [0.2, nan]\n', "policy.apr_cap: expected a finite number, found nan"),
        ('[sweep]\n"behaviour.roll_rates" = [[0.5, 0.5, 0.5, 0.5, 0.5, 0.5]]\n', "expected single values"),
        ('extends = "child.toml"\n', "expected no cycle"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        if "child" in text:
            child.write_text('extends = "bad.toml"\n')
        assert main(["validate", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_fraud_raises_irb_capital_and_shows_in_the_calibration(tmp_path):
    path = tmp_path / "f.toml"
    path.write_text('[run]\nname = "f"\n')
    small = SMALL + ["run.horizon_months=18"]
    clean = simulation.simulate(load_scenario(path, small + ["behaviour.fraud_rate=0.0"]))
    fraud = simulation.simulate(load_scenario(path, small + ["behaviour.fraud_rate=0.02"]))
    assert (fraud["irb_capital_total"] > clean["irb_capital_total"]).all()       # in both views
    assert (fraud["pd_12m"] >= clean["pd_12m"] - 1e-12).all() and (fraud["pd_12m"] > clean["pd_12m"]).any()
    from simulator.reporting import metrics

    share = metrics.score_band_calibration(fraud)["fraud_share"]
    accounts = metrics.score_band_calibration(fraud)["accounts"]
    overall = float((share * accounts).sum() / accounts.sum())
    assert 0.01 < overall < 0.04                                  # about the 2% of approved borrowers
    assert float(metrics.score_band_calibration(clean)["fraud_share"].fillna(0).max()) == 0.0


def test_a_macro_sweep_cell_is_the_named_scenario():
    """A sweep over `macro` gives, in its severe cell, exactly the shipped severe scenario: what belongs
    to a macro path (its shift and its prepayment sensitivity) is inside the named path."""
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "scenarios"
    small = ["run.paths=2", "applicants.monthly_volume=400", "run.horizon_months=24"]
    sweep = simulation.simulate(load_scenario(shipped / "baseline.toml", small + ['sweep.macro=["baseline", "severe"]']))
    severe = simulation.simulate(load_scenario(shipped / "severe.toml", small))
    cell = sweep.sel(macro="severe", drop=True)
    for name in ("balance", "accounts", "prepaid", "charged_off", "net_revenue", "expected_loss"):
        xr.testing.assert_identical(cell[name].drop_attrs(), severe[name].drop_attrs())
