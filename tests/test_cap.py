"""What the APR cap did: bound shares, approvals at and rejected for the cap, prices before and after
it, and the revenue given up, against runs without a binding cap (common random numbers)."""
from __future__ import annotations

import numpy as np
import numpy_financial as npf
import pytest
import xarray as xr

from simulator import engine, products, summary
from simulator.codes import EQUAL_INSTALLMENT, EQUAL_PRINCIPAL, INTEREST_FIRST
from simulator.config import load_scenario

SMALL = ["run.paths=2", "run.horizon_months=8", "applicants.monthly_volume=2000", "applicants.origination_months=2"]
LOANS_ONLY = ["applicants.product_mix={jiebei=1.0}", "applicants.also_requests={}"]


def run(scenario_file, *overrides):
    return engine.simulate(load_scenario(scenario_file(), [*SMALL, *overrides]))


def test_a_cap_above_every_price_changes_nothing(scenario_file):
    high, higher = run(scenario_file, "policy.apr_cap=0.30"), run(scenario_file, "policy.apr_cap=0.50")
    assert int(high["cap_bound"].sum()) == 0 and int(high["cap_applications"].sum()) > 0
    xr.testing.assert_identical(high.drop_attrs(), higher.drop_attrs())
    assert summary.headline(high)["cap_bound_share"] == 0.0 and summary.headline(high)["revenue_given_up"] == 0.0


@pytest.mark.parametrize("on_cap", ["reject", "cap"])
def test_a_binding_cap(scenario_file, on_cap):
    free = run(scenario_file, *LOANS_ONLY, "policy.apr_cap=0.50")
    capped = run(scenario_file, *LOANS_ONLY, "policy.apr_cap=0.15", f"policy.on_cap=\"{on_cap}\"")
    bound, rejected, at_cap = (int(capped[n].sum()) for n in ("cap_bound", "rejected_at_cap", "priced_at_cap"))
    assert bound > 0
    if on_cap == "reject":
        # Approvals fall by exactly the applications above the cap that would have been approved.
        assert rejected > 0 and at_cap == 0
        assert int(capped["approvals"].sum()) == int(free["approvals"].sum()) - rejected
        assert float(capped["revenue_given_up"].sel(product="jiebei").sum()) == 0.0
    else:
        # Nobody more is turned away, and the price is the cap for those above it.
        assert rejected == 0 and at_cap > 0
        assert int(capped["approvals"].sum()) == int(free["approvals"].sum())
        after = capped["apr_after_cap"].sel(product="jiebei")
        assert float(after.max()) <= 0.15 + 1e-12
        assert float(capped["revenue_given_up"].sel(product="jiebei").sum()) > 0
    before = capped["apr_before_cap"].sel(product="jiebei")
    np.testing.assert_allclose(before.values, free["apr_before_cap"].sel(product="jiebei").values)


@pytest.mark.parametrize("method, npf_interest", [
    (EQUAL_INSTALLMENT, lambda p, r, n: -n * npf.pmt(r, n, p) - p),
    (EQUAL_PRINCIPAL, lambda p, r, n: sum((p - k * p / n) * r for k in range(n))),
    (INTEREST_FIRST, lambda p, r, n: p * r * n),
])
def test_scheduled_interest_against_numpy_financial(method, npf_interest):
    for p, r, n in [(10_000.0, 0.012, 12), (6_000.0, 0.01, 12), (500.0, 0.02, 3)]:
        got = products.scheduled_interest(np.array([method]), np.array([p]), np.array([r]), np.array([n]))[0]
        assert got == pytest.approx(npf_interest(p, r, n), rel=1e-12)


def test_compare_changes_are_the_differences(scenario_file, tmp_path, capsys):
    from simulator.cli import main

    paths = []
    for cap in ("0.50", "0.15"):
        out = tmp_path / f"cap{cap}"
        args = ["run", str(scenario_file()), "--out", str(out), "--quiet", "--no-report", "--set", f"policy.apr_cap={cap}"]
        for item in [*SMALL, *LOANS_ONLY]:
            args += ["--set", item]
        assert main(args) == 0
        paths.append(out)
    columns = summary.runs(paths)
    (label, change), = summary.changes(columns)
    assert label == "cap0.15"
    for key, (delta, relative) in change.items():
        a, b = columns[0][1][key], columns[1][1][key]
        assert delta == pytest.approx(b - a, nan_ok=True), key
        if a:
            assert relative == pytest.approx((b - a) / abs(a), nan_ok=True), key
    capsys.readouterr()
    assert main(["compare", str(paths[0]), str(paths[1]), "--reference", "cap0.15"]) == 0
    printed = capsys.readouterr().out
    assert "changes against cap0.15:" in printed and "cap0.5" in printed.split("changes against")[1]
    assert main(["compare", str(paths[0]), str(paths[1]), "--reference", "cap"]) == 2     # names both
    assert "--reference" in capsys.readouterr().err
