"""Risk control and rate policy: decision rules, pricing, the APR cap, shared limits and take-up.

A borrower passes or fails the borrower-level rules (identity screen, cutoff, policy
rules). Then each product it asks for is priced by score (each product's price curve); the
APR cap applies to each product's all-in APR (IRR method, fees included); the borrower's total limit is shared out
between its products in `policy.limit_order`; and it takes each offer with a
probability that falls with the offer's APR.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from . import rng
from .codes import KIND, LINE, LOAN, PAYER_TYPES, PLAN, PRODUCTS
from .config import Scenario
from .products import fee_rate_for_apr, plan_apr
from .risk import loss_given_default
from .units import annual_rate, monthly_rate

# Decision outcomes, in the order the rules are applied.
APPROVED, FAILED_VERIFICATION, BELOW_CUTOFF, POLICY_RULE, ABOVE_CAP, LIMIT_TOO_LOW, NOT_REQUESTED = range(7)


def risk_price(score: np.ndarray, pd_12m: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Each product's all-in APR before the cap [applicant, product]: the product's price curve
    over score (policy.curve_aprs); a cash loan instead funding + expected loss (pd_12m x LGD) +
    margin when pricing = "risk_based", and within its daily-rate range."""
    pol = scenario.policy
    apr = np.empty((len(score), len(PRODUCTS)))
    for p, name in enumerate(PRODUCTS):
        points = getattr(pol.curve_aprs, name)
        # np.interp divides by the span of each segment (max - min), flat beyond the ends.
        apr[:, p] = points[0] if len(points) == 1 else np.interp(score, pol.curve_scores, points)
        if KIND[p] == LOAN:
            terms = getattr(scenario.products, name)
            if pol.pricing == "risk_based":
                apr[:, p] = scenario.funding.cost_of_funds + pd_12m * loss_given_default(scenario) + pol.risk_margin
            apr[:, p] = np.clip(apr[:, p], annual_rate(terms.daily_rate_min, terms.days_per_year),
                                annual_rate(terms.daily_rate_max, terms.days_per_year))
    return apr


def book_line_apr(score: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Revolving rate a year of an existing book's line: the line's price at its score, at most the
    cap (a line already open is repriced, not closed, whatever on_cap says)."""
    apr = risk_price(score, np.zeros_like(score), scenario)[:, KIND.index(LINE)]
    return np.minimum(apr, scenario.policy.apr_cap)


def capped_fee_rates(fee_rates: list[float], periods: list[int], scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Fee a period for each tenor after the APR cap, and whether the tenor may be offered."""
    pol = scenario.policy
    rates = np.asarray(fee_rates, dtype=np.float64).copy()
    offered = np.ones(len(rates), dtype=np.bool_)
    for j, n in enumerate(periods):
        if rates[j] > 0 and plan_apr(rates[j], n) > pol.apr_cap:
            if pol.on_cap == "reject":
                offered[j] = False
            else:
                rates[j] = fee_rate_for_apr(pol.apr_cap, n)
    return rates, offered


def bill_instalment_terms(scenario: Scenario) -> dict[str, np.ndarray]:
    """Tenors, fee a period (fraction of the converted statement) and cumulative shares of the
    bill instalments on offer after the APR cap (no tenor offered: empty arrays)."""
    hb = scenario.products.line()
    per_period = [fee / n for fee, n in zip(hb.instalment_fees, hb.instalment_tenors)]
    rates, offered = capped_fee_rates(per_period, hb.instalment_tenors, scenario)
    shares = np.asarray(hb.instalment_tenor_shares)[offered]
    cum = np.cumsum(shares) / shares.sum() if shares.sum() > 0 else np.zeros(0)
    return {"tenors": np.asarray(hb.instalment_tenors, dtype=np.int64)[offered], "fee_rate": rates[offered],
            "cum_shares": cum}


def credit_limit(income: np.ndarray, score: np.ndarray, scenario: Scenario) -> np.ndarray:
    """A borrower's total limit from income and score (yuan), shared by all its products."""
    pol, card = scenario.policy, scenario.scorecard
    raw = income * pol.limit_income_multiple * np.exp(pol.limit_score_slope * (score - card.base_score) / card.pdo)
    return np.minimum(np.floor(raw), pol.max_total_limit)


def takeup_probability(apr: np.ndarray, score: np.ndarray, scenario: Scenario,
                       hidden: np.ndarray | float = 0.0, channel: np.ndarray | float = 1.0) -> np.ndarray:
    """Price-elastic take-up: logit p = logit(base) - sensitivity x (APR - reference), with
    sensitivity = price_sensitivity x channel x max(0, 1 + slope x (score - base_score) / pdo) x
    exp(-takeup_risk_tilt x hidden), `channel` the segment's price_sensitivity. Sensitivity rises with score (better applicants have other
    options) and falls with the risk the score does not see (`hidden`, in standard deviations:
    riskier people accept dearer credit more readily): adverse selection."""
    pol, card = scenario.policy, scenario.scorecard
    sensitivity = pol.price_sensitivity * np.maximum(0.0, 1.0 + pol.sensitivity_score_slope * (score - card.base_score) / card.pdo)
    sensitivity = sensitivity * np.asarray(channel) * np.exp(-pol.takeup_risk_tilt * np.asarray(hidden))
    return expit(logit(pol.takeup_base) - sensitivity * (apr - pol.takeup_reference_apr))


def payer_weights(pd_12m: np.ndarray, scenario: Scenario, shares=None) -> np.ndarray:
    """Unnormalised weights [account, payer type] of the payer-type multinomial logit: `shares`
    (default behaviour.payer_shares) times exp(payer_risk_slope x the code x (logit pd_12m - logit
    payer_reference_pd))."""
    b = scenario.behaviour
    shares = b.payer_shares if shares is None else shares
    tilt = b.payer_risk_slope * (logit(np.clip(pd_12m, 1e-12, 1.0 - 1e-12)) - logit(b.payer_reference_pd))
    with np.errstate(divide="ignore"):
        return np.exp(np.log(np.asarray(shares))[None, :] + np.outer(tilt, np.arange(len(PAYER_TYPES), dtype=np.float64)))


def payer_type(pd_12m: np.ndarray, u: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Payer type code (codes.PAYER_TYPES: transactor, revolver, minimum payer): a multinomial logit
    whose log-odds against transactor rise by payer_risk_slope x the code per unit of logit pd_12m."""
    cum = np.cumsum(payer_weights(pd_12m, scenario), axis=1)
    return (u[:, None] * cum[:, -1:] >= cum[:, :-1]).sum(axis=1).astype(np.int8)


def decide(apps: dict[str, np.ndarray], scores: dict[str, np.ndarray], scenario: Scenario) -> dict[str, np.ndarray]:
    """Per applicant and product (columns in codes.PRODUCTS order): outcome, price, all-in APR,
    amount (cash loan, purchase price, or line limit), line cap, and take-up; per applicant:
    borrower outcome, total limit and first-party fraud."""
    pol, seed = scenario.policy, scenario.run.seed
    ids, score = apps["id"], scores["score"]
    n = ids.shape[0]

    borrower = np.full(n, APPROVED, dtype=np.int8)

    def rule(mask: np.ndarray, reason: int) -> None:
        borrower[(borrower == APPROVED) & mask] = reason

    rule(apps["verification_failed"], FAILED_VERIFICATION)
    rule(score < pol.cutoff_score, BELOW_CUTOFF)
    rule((apps["dti"] > pol.max_dti) | (apps["past_delinquencies"] > pol.max_past_delinquencies), POLICY_RULE)

    outcome = np.where(apps["requests"], borrower[:, None], NOT_REQUESTED).astype(np.int8)

    # Risk prices, then the cap: an application priced above it is priced at the cap or rejected.
    risk_apr = risk_price(score, scores["pd_12m"], scenario)
    plan = np.asarray(KIND) == PLAN
    risk_apr[:, plan] = np.where(apps["promotion"][:, None], 0.0, risk_apr[:, plan])   # merchant-funded: no fee
    over = risk_apr > pol.apr_cap
    if pol.on_cap == "reject":
        outcome[over & (outcome == APPROVED)] = ABOVE_CAP
        apr = risk_apr.copy()
    else:
        apr = np.minimum(risk_apr, pol.apr_cap)
    # Monthly rate of a loan and of a line; a purchase plan's flat fee a period with that all-in APR.
    rate = monthly_rate(apr)
    for p in np.flatnonzero(plan):
        rate[:, p] = fee_rate_for_apr(apr[:, p], apps["tenor"])

    # The total limit, taken by each offered product in turn.
    total = np.where(borrower == APPROVED, credit_limit(apps["income"], score, scenario), 0.0)
    remaining = total.copy()
    amount = np.zeros((n, len(PRODUCTS)))
    line_cap = np.zeros(n)
    for name in pol.limit_order:
        p, terms = PRODUCTS.index(name), getattr(scenario.products, name)
        live = outcome[:, p] == APPROVED
        if KIND[p] == LOAN:
            want = np.clip(apps["amount"], terms.min_amount, terms.max_amount)
            fits = remaining >= terms.min_amount
            got = np.minimum(want, remaining)
        elif KIND[p] == PLAN:
            want = np.clip(apps["price"], terms.min_amount, terms.max_amount)
            fits = remaining >= want
            got = want
        else:
            cap = np.minimum(remaining, terms.max_limit)
            fits = cap >= terms.min_limit
            got = np.maximum(terms.min_limit, np.floor(cap * terms.initial_limit_share))
            line_cap = np.where(live & fits, cap, line_cap)
        outcome[live & ~fits, p] = LIMIT_TOO_LOW
        ok = live & fits
        amount[:, p] = np.where(ok, got, 0.0)
        remaining -= np.where(ok, line_cap if KIND[p] == LINE else got, 0.0)

    approved = outcome == APPROVED
    fraud = (borrower == APPROVED) & (rng.uniforms(seed, 0, ids, 0, rng.FRAUD) < scenario.behaviour.fraud_rate)
    takes = np.empty((n, len(PRODUCTS)), dtype=np.bool_)
    channel = np.array([s.price_sensitivity for s in scenario.applicants.segments.values()])[apps["segment"]]
    for p in range(len(PRODUCTS)):
        u = rng.uniforms(seed, 0, ids, p, rng.TAKEUP)
        takes[:, p] = u < takeup_probability(apr[:, p], score, scenario, scores.get("hidden", 0.0), channel)
    # First-party fraudsters take every offer.
    takeup = approved & (takes | fraud[:, None])
    return {"borrower_outcome": borrower, "outcome": outcome, "approved": approved, "apr": apr, "rate": rate,
            "risk_apr": risk_apr, "over_cap": over & apps["requests"],
            "amount": amount, "line_cap": line_cap, "total_limit": total, "takeup": takeup, "fraud": fraud}
