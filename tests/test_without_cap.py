"""What the APR cap did, against the same applicants with the cap lifted: the second decision pass
(common random numbers) is a run without a binding cap, and the revenue given up on the lines is the
revolving interest of a hand computation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.codes import APPROVALS, PRODUCTS, TAKEUPS
from simulator.config.loader import load_scenario
from simulator.model import origination, policy, population, provisions, scoring

CAP_24 = Path(__file__).resolve().parent.parent / "scenarios" / "cap_24.toml"
SMALL = ["applicants.monthly_volume=1500", "applicants.origination_months=2", "run.horizon_months=4"]
WITHOUT, TAKEN_WITHOUT = origination.CAP_COUNTS.index("approved_without_cap"), \
    origination.CAP_COUNTS.index("taken_without_cap")
HUABEI = PRODUCTS.index("huabei")


def prepared(*overrides: str, offers: bool = False) -> tuple:
    return origination.prepare(load_scenario(CAP_24, [*SMALL, *overrides]).scenario, offers=offers)


@pytest.mark.parametrize("on_cap", ["reject", "cap"])
def test_without_the_cap_is_a_run_without_it(on_cap):
    """Approvals and take-ups without the cap, by product and band, are those of the same scenario run
    with a cap above every price: the same applicants and draws, decided at their risk prices."""
    _, capped = prepared(f'policy.on_cap="{on_cap}"')
    _, free = prepared("policy.apr_cap=0.5")
    counts = capped["cap_counts"]
    assert counts[..., 1].sum() > 0                                      # the 24% cap binds
    np.testing.assert_array_equal(counts[..., WITHOUT], free["funnel"][..., APPROVALS].sum(axis=0))
    np.testing.assert_array_equal(counts[..., TAKEN_WITHOUT], free["funnel"][..., TAKEUPS].sum(axis=0))
    approvals = capped["funnel"][..., APPROVALS].sum(axis=0)
    if on_cap == "cap":             # the cap turns nobody away; its lower price is taken more often
        np.testing.assert_array_equal(approvals, counts[..., WITHOUT])
        assert capped["funnel"][..., TAKEUPS].sum() > counts[..., TAKEN_WITHOUT].sum()
    else:
        # Adding the rejected back counts more than a run without the cap approves: a rejection
        # leaves room under the borrower's limit that another product then takes.
        assert (approvals + counts[..., 3]).sum() > counts[..., WITHOUT].sum()


def test_without_a_binding_cap_the_run_itself():
    """A cap that binds for nobody: nobody is decided again, and the counts without the cap are the
    run's approvals and take-ups."""
    sc = load_scenario(CAP_24, [*SMALL, "policy.apr_cap=0.5"]).scenario
    apps = population.applicants_by_id(sc.applicants, sc.run.seed, np.arange(3000, dtype=np.int64))
    scores = scoring.score_applicants(apps, sc.scorecard, sc.applicants, sc.run.seed)
    dec = policy.decide(apps, scores, sc)
    rows, approved, takeup = policy.decide_without_cap(apps, scores, sc, dec)
    assert len(rows) == 0 and approved.shape == takeup.shape == (0, len(PRODUCTS))
    _, host = prepared("policy.apr_cap=0.5")
    np.testing.assert_array_equal(host["cap_counts"][..., WITHOUT], host["funnel"][..., APPROVALS].sum(axis=0))
    np.testing.assert_array_equal(host["cap_counts"][..., TAKEN_WITHOUT], host["funnel"][..., TAKEUPS].sum(axis=0))


LINES = ["applicants.product_mix={huabei=1.0}", "applicants.also_requests={}", "behaviour.fraud_rate=0.0",
         "applicants.huabei.spend_median=1.0", "applicants.huabei.spend_sigma=0.0", "policy.apr_cap=0.15"]


def test_a_lines_revenue_given_up_by_hand():
    """Revolvers spending 1 yuan a month, far below any limit (so a month's expected spend is p x 1):
    the expected balance is E_k = p sum_j a^(k - j) b^j (a the share a revolver leaves unpaid, b = 1 -
    attrition), and the revenue given up is (risk price - cap) / 12 x sum over the line's life of a E_k,
    for every line taken at the cap, summed by score band."""
    _, host = prepared(*LINES, "behaviour.payer_shares=[0.0, 1.0, 0.0]", offers=True)
    sc = load_scenario(CAP_24, [*SMALL, *LINES]).scenario
    line, months = sc.products.huabei, sc.provisions.line_life_months
    a, p, b = 1.0 - sc.behaviour.revolver_pay_share, line.spend_probability, 1.0 - line.attrition
    k = np.arange(months)
    expected = p * np.array([sum(a ** (m - j) * b ** j for j in range(m + 1)) for m in k])
    offers = host["offers"]
    risk = np.interp(offers["score"], sc.policy.curve_scores, sc.policy.curve_aprs.huabei)
    at_cap = offers["taken"] & (risk > 0.15)
    assert at_cap.sum() > 100
    band = np.searchsorted(sc.scorecard.bands, offers["score"][at_cap], side="right")
    by_hand = np.bincount(band, (risk[at_cap] - 0.15) / 12 * (a * expected).sum(),
                          minlength=len(sc.scorecard.bands) + 1)
    np.testing.assert_allclose(host["revenue_given_up"][HUABEI], by_hand, rtol=1e-9)
    assert host["revenue_given_up"][HUABEI].sum() > 0


def test_a_transactor_gives_up_no_revolving_interest():
    _, host = prepared(*LINES, "behaviour.payer_shares=[1.0, 0.0, 0.0]")
    assert host["cap_counts"][HUABEI, :, 2].sum() > 0                    # lines priced at the cap
    assert host["revenue_given_up"][HUABEI].sum() == 0.0


def test_the_revolving_balance_is_the_ecls_expected_balance():
    """revolving_months runs the recursion of the line's ECL (provisions.line_exposure) from an empty
    line: each month's kept share of E_k, on lines whose limit binds the spend."""
    rng = np.random.default_rng(3)
    sc = load_scenario(CAP_24, SMALL).scenario
    line = sc.products.huabei
    limit, spend = rng.uniform(500, 5000, 20), rng.uniform(100, 3000, 20)
    kept, rate = rng.choice([0.6, 0.9], 20), rng.uniform(0.005, 0.02, 20)
    got = origination.revolving_months(limit, spend, kept, rate, line, 24)
    for i in range(20):
        room = limit[i] / (1 + rate[i])
        staying = expected = line.spend_probability * spend[i] * -np.expm1(-room / spend[i])
        total, stay = kept[i] * expected, 1.0
        for _ in range(1, 24):
            stay *= 1 - line.attrition
            staying, expected = provisions.line_exposure(staying, expected, kept[i], line.spend_probability, stay,
                                                         spend[i], room, False)
            total += kept[i] * expected
        assert got[i] == pytest.approx(total, rel=1e-12)
