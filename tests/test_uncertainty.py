"""Monte Carlo error of the headline figures and of their differences (simulator.reporting.uncertainty,
summary): checked against the per-path variables computed outside the code, against the spread of
independent batches of paths, and the comparisons' refusals, markings and formats."""
from __future__ import annotations

import csv
import io
import json
import math

import pytest

from simulator.cli import main
from simulator.config.loader import load_scenario
from simulator.engine import simulation
from simulator.reporting import summary, uncertainty

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

SMALL = ["run.horizon_months=14", "applicants.monthly_volume=300", "applicants.origination_months=6"]


def _run(scenario_file, tmp_path, name, *overrides):
    out = tmp_path / name
    args = ["run", str(scenario_file()), "--out", str(out), "--quiet", "--no-report"]
    for item in [*SMALL, *overrides]:
        args += ["--set", item]
    assert main(args) == 0
    return out


def test_paired_error_is_the_spread_of_per_path_differences(scenario_file, tmp_path):
    a = _run(scenario_file, tmp_path, "free", "run.paths=12")
    b = _run(scenario_file, tmp_path, "capped", "run.paths=12", "policy.apr_cap=0.12")
    columns, cells = summary.compared([a, b])
    (errors, paired), = summary.difference_errors(cells, 0)[1:]
    assert paired
    # Outside the code: the per-path pre-tax income the results keep, differenced path by path.
    pa, pb = (cell["path_profit"].sum("product").values for cell in cells)
    d = pb - pa
    assert errors["pretax_income"] == pytest.approx(d.std(ddof=1) / math.sqrt(len(d)), rel=1e-9)
    for (_, head), p in zip(columns, (pa, pb)):
        assert head["pretax_income"] == pytest.approx(p.mean(), rel=1e-12)
        assert head["pretax_income_se"] == pytest.approx(p.std(ddof=1) / math.sqrt(len(p)), rel=1e-9)
    # Unpaired, the two errors in quadrature: larger than the paired one (the paths move together).
    (_, ca), (_, cb) = columns
    unpaired = math.hypot(ca["pretax_income_se"], cb["pretax_income_se"])
    assert errors["pretax_income"] < unpaired
    (_, change), = summary.changes(columns)
    assert change["pretax_income"].se == pytest.approx(unpaired)
    # The same applicants decided twice: the funnel's change has no error.
    assert errors["approvals"] == 0.0


def test_ratio_errors_by_the_delta_method(scenario_file, tmp_path):
    cell = summary.compared([_run(scenario_file, tmp_path, "r", "run.paths=10")])[1][0]
    end = cell.isel(month=-1)
    top = end["allowance"].sum(("product", "score_band", "stage")).values
    bottom = end["stage_balance"].sum(("product", "score_band", "stage")).values
    ratio = top.mean() / bottom.mean()
    z = (top - ratio * bottom) / bottom.mean()
    head = summary.headline(cell)
    assert head["coverage"] == pytest.approx(ratio, rel=1e-12)
    assert head["coverage_se"] == pytest.approx(z.std(ddof=1) / math.sqrt(len(z)), rel=1e-9)


def test_path_errors_cover_the_spread_of_independent_batches(scenario_file):
    """20 batches of 10 paths (independent: each path its own random numbers, the applicants shared):
    each batch's figure lies within 2 of its own errors of the mean of all 200 paths about as often as
    the t distribution with 9 degrees of freedom says (92%), within the binomial error of 20 batches."""
    ds = simulation.simulate(load_scenario(scenario_file(), [*SMALL, "run.paths=200"]))
    keys = ("pretax_income", "charged_off", "dpd30_ratio", "allowance", "coverage", "return_on_assets",
            "fraud_share", "revenue")
    whole = summary.headline(ds)
    inside = {key: 0 for key in keys}
    for b in range(20):
        head = summary.headline(ds.isel(path=slice(10 * b, 10 * b + 10)))
        for key in keys:
            inside[key] += abs(head[key] - whole[key]) <= 2 * head[f"{key}_se"]
    expected, n = 0.92, 20
    for key in keys:
        assert inside[key] / n >= expected - 3 * math.sqrt(expected * (1 - expected) / n), (key, inside[key])


def test_compare_refuses_runs_that_differ_in_paths_or_seed(scenario_file, tmp_path, capsys):
    a = _run(scenario_file, tmp_path, "a", "run.paths=4")
    b = _run(scenario_file, tmp_path, "b", "run.paths=6")
    c = _run(scenario_file, tmp_path, "c", "run.paths=4", "run.seed=7")
    capsys.readouterr()
    for other, what in ((b, "paths (a=4, b=6)"), (c, "seed")):
        assert main(["compare", str(a), str(other)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and what in err and "--accept-differences" in err
    assert main(["compare", str(a), str(c), "--accept-differences"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("warning: the runs differ in seed") and "unpaired" in printed
    with pytest.raises(summary.ScenarioError):
        import simulator
        simulator.compare([a, b])


def test_percent_only_against_a_positive_base_large_against_its_error():
    assert summary._relative(10.0, 100.0, 5.0) == pytest.approx(0.1)
    assert math.isnan(summary._relative(10.0, 100.0, 20.0))      # base only 5 errors
    assert math.isnan(summary._relative(10.0, -100.0, 1.0))      # negative base
    assert math.isnan(summary._relative(10.0, 0.0, math.nan))
    assert summary._relative(10.0, 100.0, math.nan) == pytest.approx(0.1)   # exact (the funnel)
    assert summary.format_change("pretax_income", -386_242.0, math.nan, 120_000.0) == "-390,000 ± 120,000"
    assert summary.format_change("pretax_income", 50_000.0, math.nan, 120_000.0) == "~ +50,000 ± 120,000"
    assert summary.format_change("dpd30_ratio", 0.0012, math.nan, 0.0002) == "+0.120 pts ± 0.020"
    assert summary.format_value("pretax_income", 14_953_118.0, 1_359_331.0) == "15,000,000 ± 1,400,000"
    assert summary.format_value("return_on_assets", 0.02461, 0.00218) == "2.46% ± 0.22%"
    assert summary.within_noise(1.9, 1.0) and not summary.within_noise(2.1, 1.0)


def test_run_and_compare_print_csv_and_json(scenario_file, tmp_path, capsys):
    a = _run(scenario_file, tmp_path, "a", "run.paths=4")
    b = _run(scenario_file, tmp_path, "b", "run.paths=4", "policy.apr_cap=0.12")
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    rows = {(r["run"], r["figure"]): r for r in found["figures"]}
    head = summary.runs([a, b])
    assert rows[("b", "pretax_income")]["value"] == pytest.approx(head[1][1]["pretax_income"])
    assert rows[("b", "pretax_income")]["change"] == pytest.approx(head[1][1]["pretax_income"]
                                                                  - head[0][1]["pretax_income"])
    assert rows[("b", "pretax_income")]["paired"] is True
    assert main(["compare", str(a), str(b), "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["run"] for r in table} == {"a", "b"} and len(table) == 2 * len(summary.ROWS)
    args = ["run", str(scenario_file()), "--out", str(tmp_path / "j"), "--no-report", "--format", "json"]
    for item in [*SMALL, "run.paths=3"]:
        args += ["--set", item]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {r["figure"] for r in printed["figures"]} == set(summary.ROWS)


def test_headline_windows_are_the_steady_months(scenario_file):
    ds = simulation.simulate(load_scenario(scenario_file(), [*SMALL, "run.paths=3", "run.horizon_months=24"]))
    head = summary.headline(ds)
    from simulator.results.dataset import delinquency_ratio
    ratio = delinquency_ratio(ds, "M2").mean("path")
    assert head["dpd30_peak"] == pytest.approx(float(ratio.sel(month=slice(13, 24)).max()))
    names = summary.labels(slice(13, 24), "months 13 .. 24")
    assert "months 13-24" in names["dpd30_peak"] and "months 13-24" in names["raroc"]
    assert uncertainty.NOISE == 2.0
