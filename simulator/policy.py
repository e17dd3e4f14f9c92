"""Risk control and rate policy: decision rules, pricing, the APR cap, limits and take-up."""
from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from . import rng
from .config import Scenario

# Decision outcomes, in the order the rules are applied.
APPROVED, FAILED_VERIFICATION, BELOW_CUTOFF, POLICY_RULE, ABOVE_CAP, LIMIT_TOO_LOW = range(6)
REASONS = ("approved", "failed_verification", "below_cutoff", "policy_rule", "above_cap", "limit_too_low")


def loss_given_default(scenario: Scenario) -> float:
    """Share of a charged-off balance lost: 1 - recovery rate net of collection cost."""
    b = scenario.behaviour
    return 1.0 - b.recovery_rate * (1.0 - b.collection_cost)


def risk_price(score: np.ndarray, pd_12m: np.ndarray, scenario: Scenario) -> np.ndarray:
    """The cash loan's APR before the cap: the price curve over score, or
    funding + expected loss (pd_12m x LGD) + margin; within the product's daily-rate range."""
    pol, terms = scenario.policy, scenario.products.jiebei
    if pol.pricing == "curve":
        # np.interp divides by the span of each segment (max - min), flat beyond the ends.
        apr = np.interp(score, pol.curve_scores, pol.curve_aprs)
    else:
        apr = scenario.funding.cost_of_funds + pd_12m * loss_given_default(scenario) + pol.risk_margin
    return np.clip(apr, terms.daily_rate_min * terms.days_per_year, terms.daily_rate_max * terms.days_per_year)


def all_in_apr(apr: np.ndarray) -> np.ndarray:
    """All-in APR by the IRR method: for the fee-free cash loan, 12 x monthly rate = the APR."""
    return apr


def credit_limit(income: np.ndarray, score: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Limit from income and score, capped at the product maximum (yuan)."""
    pol, card = scenario.policy, scenario.scorecard
    raw = income * pol.limit_income_multiple * np.exp(pol.limit_score_slope * (score - card.base_score) / card.pdo)
    return np.minimum(np.floor(raw), scenario.products.jiebei.max_amount)


def takeup_probability(apr: np.ndarray, score: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Price-elastic take-up: logit p = logit(base) - sensitivity(score) x (APR - reference).
    Sensitivity rises with score (better applicants have other options): adverse selection."""
    pol, card = scenario.policy, scenario.scorecard
    sensitivity = pol.price_sensitivity * np.maximum(0.0, 1.0 + pol.sensitivity_score_slope * (score - card.base_score) / card.pdo)
    return expit(logit(pol.takeup_base) - sensitivity * (apr - pol.takeup_reference_apr))


def decide(apps: dict[str, np.ndarray], scores: dict[str, np.ndarray], scenario: Scenario) -> dict[str, np.ndarray]:
    """Outcome, APR, limit, granted amount, take-up and first-party fraud for each applicant."""
    pol, terms, seed = scenario.policy, scenario.products.jiebei, scenario.run.seed
    ids, score = apps["id"], scores["score"]
    outcome = np.full(ids.shape[0], APPROVED, dtype=np.int8)

    def rule(mask: np.ndarray, reason: int) -> None:
        outcome[(outcome == APPROVED) & mask] = reason

    rule(apps["verification_failed"], FAILED_VERIFICATION)
    rule(score < pol.cutoff_score, BELOW_CUTOFF)
    rule((apps["dti"] > pol.max_dti) | (apps["past_delinquencies"] > pol.max_past_delinquencies), POLICY_RULE)
    apr = risk_price(score, scores["pd_12m"], scenario)
    over_cap = all_in_apr(apr) > pol.apr_cap
    if pol.on_cap == "reject":
        rule(over_cap, ABOVE_CAP)
    else:
        apr = np.where(over_cap, pol.apr_cap, apr)
    limit = credit_limit(apps["income"], score, scenario)
    rule(limit < terms.min_amount, LIMIT_TOO_LOW)
    approved = outcome == APPROVED
    amount = np.clip(apps["amount"], terms.min_amount, np.maximum(limit, terms.min_amount))
    fraud = approved & (rng.uniforms(seed, 0, ids, 0, rng.FRAUD) < scenario.behaviour.fraud_rate)
    takes = rng.uniforms(seed, 0, ids, 0, rng.TAKEUP) < takeup_probability(apr, score, scenario)
    # First-party fraudsters always take the money.
    takeup = approved & (takes | fraud)
    return {"outcome": outcome, "approved": approved, "apr": apr, "limit": limit, "amount": amount,
            "takeup": takeup, "fraud": fraud}
