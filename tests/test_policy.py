"""The credit policy (simulator.policy): the price curve and risk-based prices, the APR cap, the
decision rules, take-up, limits, and the hidden risk of the takers of dearer credit."""
from __future__ import annotations

import math

import numpy as np
import numpy_financial as npf
import pytest

from simulator.model import policy, risk, scoring
from simulator.codes import KIND, LOAN, PLAN, PRODUCTS

from test_scoring import scenario

JIEBEI = PRODUCTS.index("jiebei")


def test_price_curve_divides_by_the_score_span(scenario_file):
    sc = scenario(scenario_file, "policy.curve_scores=[600.0, 700.0]", "policy.curve_aprs.jiebei=[0.20, 0.10]",
                  "policy.curve_aprs.huabei=[0.1825]", "policy.curve_aprs.yuefu=[0.30, 0.12]")
    apr = policy.risk_price(np.array([550.0, 600.0, 625.0, 650.0, 700.0, 800.0]), np.zeros(6), sc.policy, sc.products,
                            sc.funding.cost_of_funds, risk.loss_given_default(sc.behaviour))
    # (score - min) / (max - min) of the way from 20% to 10%; flat beyond the ends.
    assert np.allclose(apr[:, JIEBEI], [0.20, 0.20, 0.175, 0.15, 0.10, 0.10])
    assert np.allclose(apr[:, PRODUCTS.index("yuefu")], [0.30, 0.30, 0.255, 0.21, 0.12, 0.12])
    assert np.all(apr[:, PRODUCTS.index("huabei")] == 0.1825)      # one value: a flat price


def test_risk_based_price_and_daily_rate_bounds(scenario_file):
    sc = scenario(scenario_file, "policy.pricing=\"risk_based\"", "policy.risk_margin=0.03",
                  "funding.cost_of_funds=0.06")
    lgd = risk.loss_given_default(sc.behaviour)
    apr = policy.risk_price(np.zeros(3), np.array([0.01, 0.05, 0.5]), sc.policy, sc.products, sc.funding.cost_of_funds,
                            lgd)[:, JIEBEI]
    terms = sc.products.jiebei
    expected = np.clip(0.06 + np.array([0.01, 0.05, 0.5]) * lgd + 0.03,
                       terms.daily_rate_min * 365, terms.daily_rate_max * 365)
    assert np.allclose(apr, expected)
    assert apr[-1] == pytest.approx(terms.daily_rate_max * 365)


def applicants_for_policy(n: int, score: np.ndarray, products=("jiebei",)):
    requests = np.zeros((n, len(PRODUCTS)), dtype=bool)
    for name in products:
        requests[:, PRODUCTS.index(name)] = True
    return {
        "id": np.arange(n), "verification_failed": np.zeros(n, dtype=bool), "dti": np.full(n, 0.2),
        "past_delinquencies": np.zeros(n, dtype=np.int32), "income": np.full(n, 8000.0), "segment": np.zeros(n, np.int8),
        "score": score, "requests": requests,
        # per product: a loan's amount 5,000 and a plan's price 1,000; a plan's tenor 6; no promotion
        "amount": np.where(np.asarray(KIND) == LOAN, 5000.0, np.where(np.asarray(KIND) == PLAN, 1000.0, 0.0))[None, :]
        .repeat(n, axis=0),
        "term": np.where(np.asarray(KIND) == PLAN, 6, 0).astype(np.int32)[None, :].repeat(n, axis=0),
        "promotion": np.zeros((n, len(PRODUCTS)), dtype=bool),
    }


@pytest.mark.parametrize("on_cap", ["cap", "reject"])
def test_apr_cap(scenario_file, on_cap):
    sc = scenario(scenario_file, "policy.apr_cap=0.15", f"policy.on_cap=\"{on_cap}\"", "policy.cutoff_score=0.0")
    score = np.linspace(560, 760, 201)
    apps = applicants_for_policy(len(score), score)
    dec = policy.decide(apps, {"score": score, "pd_12m": scoring.pd_from_score(score, sc.scorecard)}, sc)
    uncapped = policy.risk_price(score, np.zeros_like(score), sc.policy, sc.products, sc.funding.cost_of_funds,
                                 risk.loss_given_default(sc.behaviour))[:, JIEBEI]
    above = uncapped > 0.15
    assert above.any() and (~above).any()
    approved, apr, outcome = dec["approved"][:, JIEBEI], dec["apr"][:, JIEBEI], dec["outcome"][:, JIEBEI]
    if on_cap == "cap":
        assert approved.all() and np.all(apr <= 0.15 + 1e-12)
        assert np.allclose(apr[above], 0.15)
    else:
        assert not approved[above].any() and approved[~above].all()
        assert np.all(outcome[above] == policy.ABOVE_CAP)


def test_decision_rules(scenario_file):
    sc = scenario(scenario_file, "policy.cutoff_score=600.0", "policy.max_dti=0.5")
    score = np.array([650.0, 590.0, 650.0, 650.0])
    apps = applicants_for_policy(4, score)
    apps["dti"][2] = 0.6
    apps["verification_failed"][3] = True
    dec = policy.decide(apps, {"score": score, "pd_12m": np.full(4, 0.02)}, sc)
    assert list(dec["borrower_outcome"]) == [policy.APPROVED, policy.BELOW_CUTOFF, policy.POLICY_RULE,
                                             policy.FAILED_VERIFICATION]
    assert list(dec["outcome"][:, JIEBEI]) == list(dec["borrower_outcome"])
    assert np.all(dec["outcome"][:, PRODUCTS.index("huabei")] == policy.NOT_REQUESTED)
    assert not dec["takeup"][1:].any()


def test_takeup_falls_with_price_and_more_so_for_good_scores(scenario_file):
    sc = scenario(scenario_file)
    apr = np.array([0.10, 0.15, 0.20, 0.24])
    low = policy.takeup_probability(apr, np.full(4, 560.0), sc.policy, sc.scorecard)
    high = policy.takeup_probability(apr, np.full(4, 700.0), sc.policy, sc.scorecard)
    assert np.all(np.diff(low) < 0) and np.all(np.diff(high) < 0)
    assert high[-1] / high[0] < low[-1] / low[0]        # better applicants leave faster as price rises
    pol = sc.policy
    ref = policy.takeup_probability(np.array([pol.takeup_reference_apr]), np.array([sc.scorecard.base_score]), pol,
                                    sc.scorecard)
    assert ref[0] == pytest.approx(pol.takeup_base)


def test_limits_grow_with_income_and_score(scenario_file):
    sc = scenario(scenario_file)
    limit = policy.credit_limit(np.array([5000.0, 10000.0, 5000.0]), np.array([600.0, 600.0, 640.0]), sc.policy,
                                sc.scorecard)
    pol = sc.policy
    assert limit[0] == math.floor(5000 * pol.limit_income_multiple)
    assert limit[1] == 2 * limit[0]
    assert limit[2] == math.floor(5000 * pol.limit_income_multiple * math.exp(2 * pol.limit_score_slope))


def _takers_hidden_risk(scenario_file, tilt, shift, sd=0.6):
    """Mean true pd - scored pd of the cash-loan takers, and its standard error, for the price curve
    raised by `shift`; every applicant asks for a cash loan, none is capped or cut off."""
    from simulator.model import population

    aprs = [round(a + shift, 4) for a in (0.36, 0.30, 0.22, 0.15, 0.105, 0.09, 0.073)]
    sc = scenario(scenario_file, "applicants.monthly_volume=100000", "applicants.origination_months=1",
                  "applicants.product_mix={jiebei=1.0}", "applicants.also_requests={}",
                  "applicants.verification_fail_rate=0.0", "policy.cutoff_score=0.0", "policy.max_dti=1.0",
                  "policy.max_past_delinquencies=100", "policy.apr_cap=1.0", "products.jiebei.daily_rate_max=0.002",
                  f"policy.curve_aprs.jiebei={aprs}", f"scorecard.model_error_sd={sd}", f"policy.takeup_risk_tilt={tilt}",
                  "behaviour.fraud_rate=0.0")
    apps = population.applicants(sc)
    scores = scoring.score_applicants(apps, sc.scorecard, sc.applicants, sc.run.seed)
    took = policy.decide(apps, scores, sc)["takeup"][:, JIEBEI]
    gap = (scores["true_pd_12m"] - scores["pd_12m"])[took]
    return gap.mean(), gap.std(ddof=1) / math.sqrt(gap.size)


def test_takers_of_dearer_credit_are_riskier_than_their_score(scenario_file):
    """With model error and the take-up tilt, the takers' true pd exceeds their scored pd, and more so
    when the price curve is raised; with the tilt at 0 take-up does not select on the hidden risk."""
    low, low_se = _takers_hidden_risk(scenario_file, 1.0, 0.0)
    high, high_se = _takers_hidden_risk(scenario_file, 1.0, 0.06)
    assert low > 5 * low_se and high > 5 * high_se
    assert high - low > 5 * math.hypot(low_se, high_se)
    for shift in (0.0, 0.06):
        neutral, se = _takers_hidden_risk(scenario_file, 0.0, shift)
        assert abs(neutral) <= 5 * se


def test_line_and_purchase_prices(scenario_file):
    """0.05% a day is 18.25% a year (docs/products.md): a line priced at that flat APR has the monthly
    rate 0.0005 x 365 / 12; a purchase's fee a period is the flat fee whose all-in APR is its price."""
    sc = scenario(scenario_file, "policy.apr_cap=0.36", "policy.curve_aprs.huabei=[0.1825]")
    apps = applicants_for_policy(3, np.full(3, 700.0))
    apps["requests"][:] = True
    apps["term"][:, PRODUCTS.index("yuefu")] = [3, 6, 12]
    dec = policy.decide(apps, {"score": np.full(3, 700.0), "pd_12m": np.full(3, 0.01)}, sc)
    line, buy = PRODUCTS.index("huabei"), PRODUCTS.index("yuefu")
    assert dec["approved"][:, line].all() and np.allclose(dec["apr"][:, line], 0.1825)
    assert np.allclose(12 * dec["rate"][:, line], 0.0005 * 365)
    price = np.interp(700.0, sc.policy.curve_scores, sc.policy.curve_aprs.yuefu)
    assert np.allclose(dec["apr"][:, buy], price)
    for k, n in enumerate((3, 6, 12)):
        # The plan's payments (1/n + fee) of the price each month, discounted at the APR / 12, repay it.
        payment = 1 / n + dec["rate"][k, buy]
        assert npf.pv(price / 12, n, -payment) == pytest.approx(1.0, rel=1e-12)
