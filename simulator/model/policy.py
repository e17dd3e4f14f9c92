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
from ..codes import KIND, LINE, LOAN, PAYER_TYPES, PLAN, PRODUCTS, PRODUCT_KIND
from ..config.schema import Behaviour, Line, Policy, Products, Scenario, Scorecard
from .products import fee_rate_for_apr, plan_apr
from .risk import loss_given_default
from ..units import annual_rate, monthly_rate

# Decision outcomes, in the order the rules are applied.
APPROVED, FAILED_VERIFICATION, BELOW_CUTOFF, POLICY_RULE, ABOVE_CAP, LIMIT_TOO_LOW, NOT_REQUESTED = range(7)


def curve_price(score: np.ndarray, policy: Policy, name: str) -> np.ndarray:
    """The product `name`'s price (all-in APR) on its curve over score (policy.curve_aprs), by score."""
    points = getattr(policy.curve_aprs, name)
    # np.interp divides by the span of each segment (max - min), flat beyond the ends.
    return np.full(len(score), points[0]) if len(points) == 1 else np.interp(score, policy.curve_scores, points)


def risk_price(score: np.ndarray, pd_12m: np.ndarray, policy: Policy, products: Products, cost_of_funds: float,
               lgd: float) -> np.ndarray:
    """Each product's all-in APR before the cap [applicant, product]: the product's price curve
    over score (`curve_price`); a cash loan instead funding (`cost_of_funds`) + expected loss
    (pd_12m x `lgd`, risk.loss_given_default) + margin when pricing = "risk_based", and within its
    daily-rate range."""
    apr = np.empty((len(score), len(PRODUCTS)))
    for p, name in enumerate(PRODUCTS):
        apr[:, p] = curve_price(score, policy, name)
        if KIND[p] == LOAN:
            terms = getattr(products, name)
            if policy.pricing == "risk_based":
                apr[:, p] = cost_of_funds + pd_12m * lgd + policy.risk_margin
            apr[:, p] = np.clip(apr[:, p], annual_rate(terms.daily_rate_min, terms.days_per_year),
                                annual_rate(terms.daily_rate_max, terms.days_per_year))
    return apr


def book_line_apr(score: np.ndarray, product: np.ndarray, policy: Policy) -> np.ndarray:
    """Revolving rate a year of an existing book's lines (their product codes `product`): each line's
    price at its score, at most the cap (a line already open is repriced, not closed, whatever on_cap
    says); 0 for other kinds."""
    apr = np.zeros(len(score))
    for p in np.flatnonzero(PRODUCT_KIND == LINE):
        mine = product == p
        apr[mine] = np.minimum(curve_price(score[mine], policy, PRODUCTS[p]), policy.apr_cap)
    return apr


def capped_fee_rates(fee_rates: list[float], periods: list[int], policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """Fee a period for each tenor after the APR cap (policy.apr_cap and on_cap), and whether the tenor
    may be offered."""
    rates = np.asarray(fee_rates, dtype=np.float64).copy()
    offered = np.ones(len(rates), dtype=np.bool_)
    for j, n in enumerate(periods):
        if rates[j] > 0 and plan_apr(rates[j], n) > policy.apr_cap:
            if policy.on_cap == "reject":
                offered[j] = False
            else:
                rates[j] = fee_rate_for_apr(policy.apr_cap, n)
    return rates, offered


def bill_instalments(line: Line, policy: Policy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tenors, fee a period (fraction of the converted statement) and cumulative shares of the bill
    instalments of a line (its terms `line`) on offer after the APR cap (no tenor offered, or none
    with a share: empty arrays)."""
    per_period = [fee / n for fee, n in zip(line.instalment_fees, line.instalment_tenors)]
    rates, offered = capped_fee_rates(per_period, line.instalment_tenors, policy)
    shares = np.asarray(line.instalment_tenor_shares)[offered]
    if shares.sum() <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    return np.asarray(line.instalment_tenors, dtype=np.int64)[offered], rates[offered], np.cumsum(shares) / shares.sum()


def bill_instalment_terms(products: Products, policy: Policy) -> dict[str, np.ndarray]:
    """The bill instalments on offer of each line (`bill_instalments`) by product code: `tenors`,
    `fee_rate` and `cum_shares` [product, tenor], a row padded to the most tenors of a line (at
    least one: a tenor of 1, no fee, share 1), and `offered` [product], how many of the row are on
    offer (0 for other kinds)."""
    lines = {p: bill_instalments(getattr(products, PRODUCTS[p]), policy) for p in np.flatnonzero(PRODUCT_KIND == LINE)}
    width = max([1] + [len(tenors) for tenors, _, _ in lines.values()])
    out = {"tenors": np.ones((len(PRODUCTS), width), dtype=np.int64), "fee_rate": np.zeros((len(PRODUCTS), width)),
           "cum_shares": np.ones((len(PRODUCTS), width)), "offered": np.zeros(len(PRODUCTS), dtype=np.int64)}
    for p, (tenors, fee_rate, cum_shares) in lines.items():
        n = len(tenors)
        out["tenors"][p, :n], out["fee_rate"][p, :n], out["cum_shares"][p, :n] = tenors, fee_rate, cum_shares
        out["offered"][p] = n
    return out


def credit_limit(income: np.ndarray, score: np.ndarray, policy: Policy, card: Scorecard) -> np.ndarray:
    """A borrower's total limit from income and score (yuan), shared by all its products."""
    raw = income * policy.limit_income_multiple * np.exp(policy.limit_score_slope * (score - card.base_score)
                                                         / card.pdo)
    return np.minimum(np.floor(raw), policy.max_total_limit)


def takeup_probability(apr: np.ndarray, score: np.ndarray, policy: Policy, card: Scorecard,
                       hidden: np.ndarray | float = 0.0, channel: np.ndarray | float = 1.0) -> np.ndarray:
    """Price-elastic take-up: logit p = logit(base) - sensitivity x (APR - reference), with
    sensitivity = price_sensitivity x channel x max(0, 1 + slope x (score - base_score) / pdo) x
    exp(-takeup_risk_tilt x hidden), `channel` the segment's price_sensitivity. Sensitivity rises with score (better applicants have other
    options) and falls with the risk the score does not see (`hidden`, in standard deviations:
    riskier people accept dearer credit more readily): adverse selection."""
    sensitivity = policy.price_sensitivity * np.maximum(0.0, 1.0 + policy.sensitivity_score_slope
                                                        * (score - card.base_score) / card.pdo)
    sensitivity = sensitivity * np.asarray(channel) * np.exp(-policy.takeup_risk_tilt * np.asarray(hidden))
    return expit(logit(policy.takeup_base) - sensitivity * (apr - policy.takeup_reference_apr))


def payer_weights(pd_12m: np.ndarray, behaviour: Behaviour, shares=None) -> np.ndarray:
    """Unnormalised weights [account, payer type] of the payer-type multinomial logit: `shares`
    (default behaviour.payer_shares) times exp(payer_risk_slope x the code x (logit pd_12m - logit
    payer_reference_pd))."""
    shares = behaviour.payer_shares if shares is None else shares
    tilt = behaviour.payer_risk_slope * (logit(np.clip(pd_12m, 1e-12, 1.0 - 1e-12))
                                         - logit(behaviour.payer_reference_pd))
    with np.errstate(divide="ignore"):
        return np.exp(np.log(np.asarray(shares))[None, :] + np.outer(tilt, np.arange(len(PAYER_TYPES), dtype=np.float64)))


def payer_type(pd_12m: np.ndarray, u: np.ndarray, behaviour: Behaviour) -> np.ndarray:
    """Payer type code (codes.PAYER_TYPES: transactor, revolver, minimum payer): a multinomial logit
    whose log-odds against transactor rise by payer_risk_slope x the code per unit of logit pd_12m
    (the scenario's `behaviour`)."""
    cum = np.cumsum(payer_weights(pd_12m, behaviour), axis=1)
    return (u[:, None] * cum[:, -1:] >= cum[:, :-1]).sum(axis=1).astype(np.int8)


def share_limit(outcome: np.ndarray, wanted: np.ndarray, total: np.ndarray, policy: Policy,
                products: Products) -> tuple[np.ndarray, np.ndarray]:
    """Each borrower's total limit `total` taken by the products still approved in `outcome` [applicant,
    product], in policy.limit_order: a cash loan its amount asked for (`wanted`) within its range and what
    is left, a purchase its price if it fits, a line its cap (opened at initial_limit_share of it). The
    amounts [applicant, product] (a line's opening limit) and the lines' caps; a product that does not
    fit becomes LIMIT_TOO_LOW in `outcome` (in place)."""
    remaining = total.copy()
    amount = np.zeros(outcome.shape)
    line_cap = np.zeros(outcome.shape)
    for name in policy.limit_order:
        p, terms = PRODUCTS.index(name), getattr(products, name)
        live = outcome[:, p] == APPROVED
        if KIND[p] == LOAN:
            want = np.clip(wanted[:, p], terms.min_amount, terms.max_amount)
            fits = remaining >= terms.min_amount
            got = np.minimum(want, remaining)
        elif KIND[p] == PLAN:
            want = np.clip(wanted[:, p], terms.min_amount, terms.max_amount)
            fits = remaining >= want
            got = want
        else:
            cap = np.minimum(remaining, terms.max_limit)
            fits = cap >= terms.min_limit
            got = np.maximum(terms.min_limit, np.floor(cap * terms.initial_limit_share))
            line_cap[:, p] = np.where(live & fits, cap, 0.0)
        outcome[live & ~fits, p] = LIMIT_TOO_LOW
        ok = live & fits
        amount[:, p] = np.where(ok, got, 0.0)
        remaining -= np.where(ok, line_cap[:, p] if KIND[p] == LINE else got, 0.0)
    return amount, line_cap


def takes_offer(ids: np.ndarray, score: np.ndarray, apr: np.ndarray, hidden: np.ndarray | float,
                segment: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Whether each applicant `ids` would take each product offered at `apr` [applicant, product]: its
    take-up draw (keyed by applicant and product) below `takeup_probability` (with the segment's
    price sensitivity). It reads the policy, scorecard, applicants and run sections."""
    pol = scenario.policy
    channel = np.array([s.price_sensitivity for s in scenario.applicants.segments.values()])[segment]
    takes = np.empty((len(ids), len(PRODUCTS)), dtype=np.bool_)
    for p in range(len(PRODUCTS)):
        u = rng.uniforms(scenario.run.seed, 0, ids, p, rng.TAKEUP)
        takes[:, p] = u < takeup_probability(apr[:, p], score, pol, scenario.scorecard, hidden, channel)
    return takes


def decide(apps: dict[str, np.ndarray], scores: dict[str, np.ndarray], scenario: Scenario) -> dict[str, np.ndarray]:
    """Per applicant and product (columns in codes.PRODUCTS order): outcome, price, all-in APR,
    amount (cash loan, purchase price, or line limit), line cap, and take-up; per applicant:
    borrower outcome, total limit and first-party fraud. The module's orchestrator: it reads the
    policy, run, products, funding, behaviour, scorecard and applicants sections."""
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
    risk_apr = risk_price(score, scores["pd_12m"], pol, scenario.products, scenario.funding.cost_of_funds,
                          loss_given_default(scenario.behaviour))
    plan = PRODUCT_KIND == PLAN
    risk_apr[:, plan] = np.where(apps["promotion"][:, plan], 0.0, risk_apr[:, plan])   # merchant-funded: no fee
    over = risk_apr > pol.apr_cap
    if pol.on_cap == "reject":
        outcome[over & (outcome == APPROVED)] = ABOVE_CAP
        apr = risk_apr.copy()
    else:
        apr = np.minimum(risk_apr, pol.apr_cap)
    # Monthly rate of a loan and of a line; a purchase plan's flat fee a period with that all-in APR.
    rate = monthly_rate(apr)
    for p in np.flatnonzero(plan):
        rate[:, p] = fee_rate_for_apr(apr[:, p], apps["term"][:, p])

    # The total limit, taken by each offered product in turn.
    total = np.where(borrower == APPROVED, credit_limit(apps["income"], score, pol, scenario.scorecard), 0.0)
    amount, line_cap = share_limit(outcome, apps["amount"], total, pol, scenario.products)
    approved = outcome == APPROVED
    fraud = (borrower == APPROVED) & (rng.uniforms(seed, 0, ids, 0, rng.FRAUD) < scenario.behaviour.fraud_rate)
    # First-party fraudsters take every offer.
    takeup = approved & (takes_offer(ids, score, apr, scores.get("hidden", 0.0), apps["segment"], scenario)
                         | fraud[:, None])
    return {"borrower_outcome": borrower, "outcome": outcome, "approved": approved, "apr": apr, "rate": rate,
            "risk_apr": risk_apr, "over_cap": over & apps["requests"],
            "amount": amount, "line_cap": line_cap, "total_limit": total, "takeup": takeup, "fraud": fraud}


def decide_without_cap(apps: dict[str, np.ndarray], scores: dict[str, np.ndarray], scenario: Scenario,
                       dec: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same applicants decided again with the cap lifted: every application at its risk price, with
    the same draws (common random numbers), as a run without a binding cap decides them. Only the
    applicants with an application above the cap (`dec`, the run's decisions) can be decided otherwise:
    their rows, and their approvals and take-ups [row, product] without the cap (none: empty). With
    on_cap = cap nobody was turned away and limits do not depend on the price, so only take-up is
    decided again. An orchestrator: it reads the policy, products, scorecard, applicants and run
    sections."""
    over = np.zeros(len(apps["id"]), dtype=np.bool_)
    for p in range(len(PRODUCTS)):          # a column at a time: ten times faster than .any(axis=1)
        over |= dec["over_cap"][:, p]
    rows = np.flatnonzero(over & (dec["borrower_outcome"] == APPROVED))
    if len(rows) == 0:
        empty = np.zeros((0, len(PRODUCTS)), dtype=np.bool_)
        return rows, empty, empty
    if scenario.policy.on_cap == "cap":
        approved = dec["approved"][rows]
    else:
        outcome = np.where(apps["requests"][rows], dec["borrower_outcome"][rows, None], NOT_REQUESTED).astype(np.int8)
        share_limit(outcome, apps["amount"][rows], dec["total_limit"][rows], scenario.policy, scenario.products)
        approved = outcome == APPROVED
    hidden = scores.get("hidden", 0.0)
    takes = takes_offer(apps["id"][rows], scores["score"][rows], dec["risk_apr"][rows],
                        hidden[rows] if np.ndim(hidden) else hidden, apps["segment"][rows], scenario)
    return rows, approved, approved & (takes | dec["fraud"][rows, None])
