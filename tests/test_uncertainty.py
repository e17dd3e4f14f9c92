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


def _anova_population_variance(parts):
    """Outside the code: the applicants' variance of a total from its parts (path, group; the book's
    group last, left out) by the textbook sums of squares of a two-way layout without replication:
    G (MS_groups - MS_residual) / P."""
    x = parts[:, :-1]
    p, g = x.shape
    grand = x.mean()
    ss_paths = g * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_groups = p * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_residual = ((x - grand) ** 2).sum() - ss_paths - ss_groups
    ms_groups, ms_residual = ss_groups / (g - 1), ss_residual / ((g - 1) * (p - 1))
    return max(0.0, g * (ms_groups - ms_residual) / p)


def _profit_parts(cell):
    return cell["group_path_month_profit"].sum(("month", "product")).transpose("path", "population_group").values


def test_paired_error_is_the_spread_of_per_path_and_per_group_differences(scenario_file, tmp_path):
    a = _run(scenario_file, tmp_path, "free", "run.paths=12")
    b = _run(scenario_file, tmp_path, "capped", "run.paths=12", "policy.apr_cap=0.12")
    columns, cells = summary.compared([a, b])
    (errors, paired), = summary.difference_errors(cells, 0)[1:]
    assert paired
    # Outside the code: the per-path pre-tax income the results keep, differenced path by path, and
    # the population groups' parts of it, differenced group by group.
    pa, pb = (cell["path_profit"].sum("product").values for cell in cells)
    ga, gb = (_profit_parts(cell) for cell in cells)
    for p, g in ((pa, ga), (pb, gb)):
        assert g.sum(axis=1) == pytest.approx(p, rel=1e-12)     # the groups add up to the path
    d = pb - pa
    expected = math.sqrt(d.var(ddof=1) / len(d) + _anova_population_variance(gb - ga))
    assert errors["pretax_income"] == pytest.approx(expected, rel=1e-9)
    assert errors["pretax_income"] > d.std(ddof=1) / math.sqrt(len(d))      # the applicants' noise counts
    for (_, head), p, g in zip(columns, (pa, pb), (ga, gb)):
        assert head["pretax_income"] == pytest.approx(p.mean(), rel=1e-12)
        assert head["pretax_income_se"] == pytest.approx(
            math.sqrt(p.var(ddof=1) / len(p) + _anova_population_variance(g)), rel=1e-9)
    # Unpaired, the two errors in quadrature: larger than the paired one (the paths move together).
    (_, ca), (_, cb) = columns
    unpaired = math.hypot(ca["pretax_income_se"], cb["pretax_income_se"])
    assert errors["pretax_income"] < unpaired
    (_, change), = summary.changes(columns)
    assert change["pretax_income"].se == pytest.approx(unpaired)
    # The same applicants decided twice: the funnel's change is the groups' spread of their changes.
    fa, fb = (cell["group_funnel"].sel(group_funnel_count="approvals").values[:-1] for cell in cells)
    groups = len(fa)
    assert errors["approvals"] == pytest.approx(math.sqrt(groups * (fb - fa).var(ddof=1)), rel=1e-9)


def test_ratio_errors_by_the_delta_method(scenario_file, tmp_path):
    cell = summary.compared([_run(scenario_file, tmp_path, "r", "run.paths=10")])[1][0]
    end = cell.isel(month=-1)
    top = end["allowance"].sum(("product", "score_band", "stage")).values
    bottom = end["stage_balance"].sum(("product", "score_band", "stage")).values
    ratio = top.mean() / bottom.mean()
    z = (top - ratio * bottom) / bottom.mean()
    # The groups' parts linearised at the same ratio.
    parts = [cell[f"group_path_stage_{name}"].sum(("product", "stage")).transpose("path", "population_group").values
             for name in ("allowance", "balance")]
    assert parts[0].sum(axis=1) == pytest.approx(top, rel=1e-12)
    linear = (parts[0] - ratio * parts[1]) / bottom.mean()
    head = summary.headline(cell)
    # The groups' funnel adds up to the run's.
    funnel = cell["group_funnel"].sum("population_group")
    for column, key in (("approvals", "approvals"), ("takeups", "accounts_originated"),
                        ("applications", "applications"), ("revenue_given_up", "revenue_given_up")):
        assert float(funnel.sel(group_funnel_count=column)) == pytest.approx(head[key], rel=1e-12)
    assert head["approvals_se"] > 0 and head["applicants_se"] == 0     # a fixed number of applicants
    assert head["coverage"] == pytest.approx(ratio, rel=1e-12)
    assert head["coverage_se"] == pytest.approx(
        math.sqrt(z.var(ddof=1) / len(z) + _anova_population_variance(linear)), rel=1e-9)


def test_errors_cover_the_spread_over_independent_seeds():
    """24 seeds (each its own applicants and paths): each run's figure lies within 2 of its errors of
    the mean over seeds about as often as its error says (the error estimated from 10 population
    groups and 4 paths: t with about 9 degrees of freedom, 92%), within the binomial error of 24 runs;
    the root-mean-square error printed is the spread over seeds to within the spread's own sampling
    error. Two runs that differ only in seed: their changes are within noise about as often."""
    import numpy as np

    from simulator.config.loader import load_scenario as load
    from simulator.reporting.summary import ROWS
    # (The peak 30+ ratio's error, at the peak month of the mean, is conservative: not checked here.)
    keys = ("pretax_income", "revenue", "charged_off", "allowance", "coverage", "dpd30_ratio", "return_on_assets",
            "approvals", "application_approval_rate", "apr_after_cap", "originated", "platform_pretax_income")
    heads, cells_ = [], []
    root = __import__("pathlib").Path(__file__).resolve().parent.parent
    for seed in range(24):
        ds = simulation.simulate(load(root / "scenarios" / "baseline.toml",
                                      [*SMALL, "applicants.monthly_volume=500", "run.paths=4", f"run.seed={100 + seed}"]))
        heads.append(summary.headline(ds))
        cells_.append(ds)
    expected, n = 0.92, len(heads)
    floor = expected - 3 * math.sqrt(expected * (1 - expected) / n)
    for key in keys:
        v = np.array([h[key] for h in heads])
        e = np.array([h[f"{key}_se"] for h in heads])
        inside = np.mean(np.abs(v - v.mean()) <= 2 * e * math.sqrt(1 + 1 / n))
        assert inside >= floor, (key, inside)
        ratio = v.std(ddof=1) / math.sqrt(np.mean(e**2))
        assert 0.6 < ratio < 1.6, (key, ratio)
    within = []
    for i in range(0, n, 2):
        (errors, paired), = summary.difference_errors(cells_[i:i + 2], 0)[1:]
        assert not paired
        for key in ROWS:
            se = errors[key]
            if se == se and se > 0:
                within.append(summary.within_noise(heads[i + 1][key] - heads[i][key], se))
    assert np.mean(within) >= 0.85, np.mean(within)


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


def test_compare_refuses_runs_that_differ_in_paths_and_notes_a_seed(scenario_file, tmp_path, capsys):
    a = _run(scenario_file, tmp_path, "a", "run.paths=4")
    b = _run(scenario_file, tmp_path, "b", "run.paths=6")
    c = _run(scenario_file, tmp_path, "c", "run.paths=4", "run.seed=7")
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "paths (a=4, b=6)" in err and "--accept-differences" in err
    assert main(["compare", str(a), str(b), "--accept-differences"]) == 0
    assert capsys.readouterr().out.startswith("warning: the runs differ in paths")
    # Another seed draws other applicants and paths: comparable, with unpaired errors that count both.
    assert main(["compare", str(a), str(c)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("note: the runs differ in seed") and "unpaired" in printed
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
