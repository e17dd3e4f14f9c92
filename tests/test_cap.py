"""What the APR cap did: bound shares, approvals at and rejected for the cap, prices before and after
it, and the revenue given up, against runs without a binding cap (common random numbers)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from simulator.engine import simulation
from simulator.model import origination
from simulator.reporting import summary
from simulator.codes import APPROVALS, PRODUCTS, TAKEUPS
from simulator.config.loader import load_scenario

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

SMALL = ["run.paths=2", "run.horizon_months=8", "applicants.monthly_volume=2000", "applicants.origination_months=2"]
LOANS_ONLY = ["applicants.product_mix={jiebei=1.0}", "applicants.also_requests={}"]


def run(scenario_file, *overrides):
    return simulation.simulate(load_scenario(scenario_file(), [*SMALL, *overrides]))


def test_a_cap_above_every_price_changes_nothing(scenario_file):
    high, higher = run(scenario_file, "policy.apr_cap=0.37"), run(scenario_file, "policy.apr_cap=0.50")
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
    for key, (delta, relative, _) in change.items():
        a, b = columns[0][1][key], columns[1][1][key]
        if not (summary.too_few(columns[0][1], key) or summary.too_few(columns[1][1], key)):
            assert delta == pytest.approx(b - a, nan_ok=True), key
        if relative == relative:        # shown only against a positive reference, large against its error
            assert a > 0 and relative == pytest.approx((b - a) / a), key
    capsys.readouterr()
    assert main(["compare", str(paths[0]), str(paths[1]), "--reference", "cap0.15"]) == 0
    printed = capsys.readouterr().out
    assert "changes against cap0.15:" in printed and "cap0.5" in printed.split("changes against")[1]
    assert main(["compare", str(paths[0]), str(paths[1]), "--reference", "cap"]) == 2     # names both
    assert "--reference" in capsys.readouterr().err


# --- The shipped cap sweep (scenarios/rate_cap_sweep.toml) -------------------------------------------------

SWEEP = Path(__file__).resolve().parent.parent / "scenarios" / "rate_cap_sweep.toml"
INTEREST_BEARING = ["jiebei", "huabei"]     # purchases include fee-free promotions, which no cap touches


def shipped_cells(on_cap: str) -> list:
    """The shipped sweep's cells with `on_cap`, baseline macro path, from the highest cap to the lowest."""
    cells = [c for c in load_scenario(SWEEP).cells if c.policy.on_cap == on_cap and c.macro.path == "baseline"]
    caps = [c.policy.apr_cap for c in cells]
    assert caps == sorted(caps, reverse=True) and caps[0] == 0.36 and caps[-1] == 0.12
    return cells


def takers_mean_pd(accounts) -> float:
    mine = np.isin(accounts.product, [PRODUCTS.index(p) for p in INTEREST_BEARING])
    return float(accounts.pd_12m[mine].mean())


@pytest.fixture(scope="module")
def shipped_origination():
    return {on_cap: [origination.prepare(c) for c in shipped_cells(on_cap)] for on_cap in ("reject", "cap")}


def test_shipped_cap_sweep_declines_approvals_smoothly(shipped_origination):
    """With reject, approvals fall at every step of the shipped sweep and no step declines more than a
    third of the previous cap's approvals; with cap, nobody more is declined and take-ups rise."""
    approvals = [int(host["funnel"][..., APPROVALS].sum()) for _, host in shipped_origination["reject"]]
    steps = [1 - b / a for a, b in zip(approvals, approvals[1:])]
    assert all(0 < step <= 1 / 3 for step in steps), steps
    approvals = [int(host["funnel"][..., APPROVALS].sum()) for _, host in shipped_origination["cap"]]
    takeups = [int(host["funnel"][..., TAKEUPS].sum()) for _, host in shipped_origination["cap"]]
    assert len(set(approvals)) == 1
    assert all(b >= a for a, b in zip(takeups, takeups[1:])) and takeups[-1] > takeups[0]


def test_shipped_cap_sweep_selection_of_takers(shipped_origination):
    """The direction adverse selection gives (docs/model.md section 3): with reject, a lower cap
    sheds the applicants priced above it, the riskiest, so the takers' expected bad rate (mean
    pd_12m of loans and lines taken) falls at every step; with cap, the riskiest pay less and take
    more, so it rises."""
    reject = [takers_mean_pd(accounts) for accounts, _ in shipped_origination["reject"]]
    assert all(b < a for a, b in zip(reject, reject[1:])), reject
    capped = [takers_mean_pd(accounts) for accounts, _ in shipped_origination["cap"]]
    assert all(b >= a for a, b in zip(capped, capped[1:])) and capped[-1] > capped[0], capped


def test_shipped_cap_sweep_realised_bad_rate():
    """Realised in the simulation (2 paths): the takers' 12-month bad rate (reached 90+ within 12
    months on book, loans and lines) falls at every step with reject, by far more than its standard
    error from 36% to 12%; with cap it is never below the uncapped rate."""
    loaded = load_scenario(SWEEP, ["run.paths=2", 'sweep.macro=["baseline"]'])
    ds = simulation.simulate(loaded).sel(product=INTEREST_BEARING, macro="baseline")
    bads = ds["bads_12m"].sum(("path", "product", "score_band"))
    seasoned = ds["accounts_seasoned_12m"].sum(("path", "product", "score_band"))
    rate = bads / seasoned
    reject, capped = rate.sel(on_cap="reject").values, rate.sel(on_cap="cap").values
    assert np.all(np.diff(reject) < 0), reject
    n = seasoned.sel(on_cap="reject").values
    se = np.sqrt(reject[0] * (1 - reject[0]) / n[0] + reject[-1] * (1 - reject[-1]) / n[-1])
    assert reject[0] - reject[-1] > 10 * se
    assert np.all(capped >= capped[0]), capped
