"""Origination, the applicant funnel: applicants -> scores -> decisions -> the kernel's account
arrays (sorted by borrower), with the host-side counts (applications, approvals, take-ups, the
opening book)."""
from __future__ import annotations

import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from . import book, memory, policy, population, products, provisions, rng, scoring, terms
from ..codes import (ACCOUNTS, APPLICATIONS, APPROVALS, BALANCE, BOOK_ID_OFFSET, FUNNEL, GROUP_FUNNEL, GROUP_PRICES,
                     KIND, LINE, LOAN, N_STATES, PLAN, PRODUCTS, PRODUCT_KIND, TAKEUPS)
from ..config.schema import Line, Scenario
from .terms import Accounts
from ..units import monthly_rate

APPLICANTS_AT_ONCE = 100_000   # applicants prepared together, a chunk a thread (no effect on results)


def _cells(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(applicant, product) of each true cell of a [applicant, product] mask, in row order: np.nonzero's
    answer, three times faster."""
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def new_accounts(sc: Scenario, apps: dict[str, np.ndarray], scores: dict[str, np.ndarray], band: np.ndarray,
                 dec: dict[str, np.ndarray]) -> Accounts:
    """One account for each product an applicant took, ordered by borrower. An orchestrator of the
    module: it reads the products, behaviour, factor and run sections."""
    who, prod = _cells(dec["takeup"])
    kind = PRODUCT_KIND[prod]
    is_line, is_plan = kind == LINE, kind == PLAN
    amount = dec["amount"][who, prod]
    multiplier = np.array([getattr(sc.products, name).risk_multiplier for name in PRODUCTS])[prod]
    pd_12m = scoring.product_pd(scores["true_pd_12m"][who], multiplier)
    ids = apps["id"][who]
    return terms.accounts(
        len(who), sc.behaviour.roll_rates, sc.factor,
        account_id=ids * len(PRODUCTS) + prod, borrower=ids, product=prod, band=band[who],
        start_month=apps["month"][who],
        principal=np.where(is_line, 0.0, amount),
        apr=np.where(is_plan, 0.0, dec["apr"][who, prod]),
        fee_rate=np.where(is_plan, dec["rate"][who, prod], 0.0),     # a plan's decided rate: its flat fee a period
        term=apps["term"][who, prod], method=apps["method"][who, prod],
        discount_rate=terms.of_kind(sc.products, "merchant_discount", PLAN)[prod],
        limit=np.where(is_line, amount, 0.0),
        line_cap=np.where(is_line, dec["line_cap"][who, prod], 0.0),
        payer=np.where(is_line, policy.payer_type(pd_12m, rng.uniforms(sc.run.seed, 0, ids, 0, rng.PAYER_TYPE),
                                                  sc.behaviour), 0),
        spend=np.where(is_line, np.minimum(apps["spend"][who, prod],
                                           terms.of_kind(sc.products, "max_limit", LINE)[prod]), 0.0),
        pd_12m=pd_12m, fraud=dec["fraud"][who])


# Applications priced, above the cap, priced at it, rejected for it; approved and taken with the cap lifted.
CAP_COUNTS = ("priced", "bound", "at_cap", "rejected", "approved_without_cap", "taken_without_cap")


def _counted(shape: tuple[int, ...], *index: np.ndarray) -> np.ndarray:
    """How many times each cell of an int64 array of `shape` is indexed (integer counts: no order)."""
    flat = np.ravel_multi_index(index, shape) if len(index[0]) else np.zeros(0, dtype=np.int64)
    return np.bincount(flat, minlength=math.prod(shape)).reshape(shape).astype(np.int64)


def revolving_months(limit: np.ndarray, spend: np.ndarray, kept: np.ndarray, rate: np.ndarray, line: Line,
                     months: int) -> np.ndarray:
    """The balance each new line is expected to revolve, summed over its months on book 0 .. `months` - 1
    (yuan x months): the share `kept` of its expected balance E_k that its payer type leaves unpaid at
    the due date, on which the next statement bills revolving interest. E_k is the expected-balance
    recursion of the line's ECL (docs/model.md section 10) from an empty line that may spend in its
    origination month: C_0 = E_0 = p G(L); C_k = kept C_(k-1) + p G(L - kept C_(k-1)), E_k = kept
    E_(k-1) + p (1 - q)^k G(L - kept C_(k-1)); G(x) = S (1 - e^(-x / S)), S the mean spend `spend`,
    L = limit / (1 + rate) (the most the opening `limit` lets it owe at monthly `rate`), p the line's
    spend_probability, q its attrition. Before default; bill instalments and limit raises left out."""
    room = limit / (1.0 + rate)
    scale = np.where(spend > 0, spend, 1.0)       # G is 0 without spend
    p = line.spend_probability

    def spent(x: np.ndarray) -> np.ndarray:       # p G(x)
        return -p * spend * np.expm1(-np.maximum(x, 0.0) / scale)

    staying = expected = spent(room)
    revolved = expected.copy()
    stay = 1.0
    for _ in range(1, months):
        stay *= 1.0 - line.attrition
        spend_k = spent(room - kept * staying)
        staying = kept * staying + spend_k
        expected = kept * expected + stay * spend_k
        revolved += expected
    return kept * revolved


def cap_effect(sc: Scenario, apps: dict[str, np.ndarray], scores: dict[str, np.ndarray], band: np.ndarray,
               dec: dict[str, np.ndarray], run_counts: np.ndarray,
               group: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[str, np.ndarray, np.ndarray]]]:
    """What the APR cap did, by product and band: `counts` [product, band, CAP_COUNTS], the applications
    priced (the borrower passed the rules), those whose risk price was above the cap, those priced at
    the cap and those rejected for it, and the applications approved and taken had the cap been lifted:
    the run's (`run_counts` [product, band, (approvals, takeups)]) with the applicants the cap binds for
    decided again (`policy.decide_without_cap`); and the additions (target, flat index, values,
    in applicant order) to `cap_aprs` [product, band, 2], the sums of the risk price of the applications
    priced and of the price of those approved, and to `revenue_given_up` [product, band] (yuan): what
    the accounts taken at the cap would have paid at their risk price and do not, before default and
    prepayment: a loan's contract interest and a purchase's fees on schedule, a line's revolving
    interest on the balance it is expected to revolve over provisions.line_life_months
    (`revolving_months`); the same by population group (`group` of each applicant: the counts
    [group, GROUP_FUNNEL] and additions to `group_prices` [group, product, GROUP_PRICES], by product so
    that each cell adds in applicant order whatever the chunks). An orchestrator of the module: it
    reads the policy, products, behaviour, provisions, scorecard and run sections."""
    bands = terms.n_bands(sc)
    priced = apps["requests"] & (dec["borrower_outcome"] == policy.APPROVED)[:, None]
    bound = priced & dec["over_cap"]
    counts = np.zeros((len(PRODUCTS), bands, len(CAP_COUNTS)), dtype=np.int64)
    group_counts = np.zeros((sc.run.population_groups + 1, len(GROUP_FUNNEL)), dtype=np.int64)
    masks = (priced, bound, bound & dec["approved"], dec["outcome"] == policy.ABOVE_CAP)
    for k, (mask, column) in enumerate(zip(masks, ("cap_applications", "cap_bound", None, "rejected_at_cap"))):
        who, prod = _cells(mask)
        counts[..., k] = _counted((len(PRODUCTS), bands), prod, band[who])
        if column is not None:          # those priced at the cap: no headline figure of a group's
            group_counts[:, GROUP_FUNNEL.index(column)] = np.bincount(group[who], minlength=len(group_counts))
    rows, *without = policy.decide_without_cap(apps, scores, sc, dec)
    for k, (name, free) in enumerate(zip(("approved", "takeup"), without)):
        changed = np.zeros((len(PRODUCTS), bands), dtype=np.int64)
        for mask, sign in ((free, 1), (dec[name][rows], -1)):
            who, prod = _cells(mask)
            changed += sign * _counted((len(PRODUCTS), bands), prod, band[rows[who]])
        counts[..., 4 + k] = run_counts[..., k] + changed
    adds = []
    for k, (mask, price) in enumerate(((priced, dec["risk_apr"]), (dec["approved"], dec["apr"]))):
        who, prod = _cells(mask)
        adds.append(("cap_aprs", (prod * bands + band[who]) * 2 + k, price[who, prod]))
        adds.append(("group_prices", (group[who] * len(PRODUCTS) + prod) * len(GROUP_PRICES)
                     + GROUP_PRICES.index(("apr_priced_sum", "apr_approved_sum")[k]), price[who, prod]))
    capped = bound & dec["takeup"]
    for p, kind in enumerate(KIND):
        taken = np.flatnonzero(capped[:, p])
        amount = dec["amount"][taken, p]
        if kind == LOAN:
            term, method = apps["term"][taken, p], apps["method"][taken, p]
            lost = (products.scheduled_interest(method, amount, monthly_rate(dec["risk_apr"][taken, p]), term)
                    - products.scheduled_interest(method, amount, dec["rate"][taken, p], term))
        elif kind == PLAN:
            tenor = apps["term"][taken, p]
            fee_before = products.fee_rate_for_apr(dec["risk_apr"][taken, p], tenor)
            lost = (fee_before - dec["rate"][taken, p]) * amount * tenor
        else:
            line = getattr(sc.products, PRODUCTS[p])
            pd_12m = scoring.product_pd(scores["true_pd_12m"][taken], line.risk_multiplier)
            payer = policy.payer_type(pd_12m, rng.uniforms(sc.run.seed, 0, apps["id"][taken], 0, rng.PAYER_TYPE),
                                      sc.behaviour)      # as new_accounts draws it
            kept = 1.0 - provisions.statement_paid(sc.behaviour.revolver_pay_share, line.min_payment_share)[payer]
            spend = np.minimum(apps["spend"][taken, p], line.max_limit)
            revolved = revolving_months(amount, spend, kept, dec["rate"][taken, p], line,
                                        sc.provisions.line_life_months)
            lost = (monthly_rate(dec["risk_apr"][taken, p]) - dec["rate"][taken, p]) * revolved
        adds.append(("revenue_given_up", p * bands + band[taken], lost))
        adds.append(("group_prices", (group[taken] * len(PRODUCTS) + p) * len(GROUP_PRICES)
                     + GROUP_PRICES.index("revenue_given_up"), lost))
    return counts, group_counts, adds


def book_accounts(sc: Scenario, path: Path) -> tuple[Accounts, np.ndarray]:
    """The existing book's accounts, and its opening counts [product, band, state, (accounts, balance cents)].
    An orchestrator of the module: it reads the applicants, scorecard, run, behaviour, policy and factor
    sections."""
    opening = np.zeros((len(PRODUCTS), terms.n_bands(sc), N_STATES, 2), dtype=np.int64)
    loans = book.read_book(path, terms.of_kind(sc.applicants, "spend_median", LINE), sc.scorecard)
    n = len(loans["product"])
    score = scoring.score_from_pd(loans["pd_12m"], sc.scorecard)
    band = scoring.score_band(score, sc.scorecard.bands)
    ids = BOOK_ID_OFFSET + np.arange(n)
    line = PRODUCT_KIND[loans["product"]] == LINE
    drawn = rng.uniforms(sc.run.seed, 0, ids, 0, rng.PAYER_TYPE)
    payer = np.where(loans["payer"] == book.NO_PAYER, policy.payer_type(loans["pd_12m"], drawn, sc.behaviour),
                     loans["payer"])
    line_apr = policy.book_line_apr(score, loans["product"], sc.policy)
    accounts = terms.accounts(
        n, sc.behaviour.roll_rates, sc.factor, account_id=ids, borrower=ids, product=loans["product"], band=band,
        principal=loans["principal"], overdue0=loans["overdue"], apr=np.where(line, line_apr, loans["apr"]),
        term=loans["term"], method=loans["method"], fee=loans["fee"], limit=loans["limit"], line_cap=loans["limit"],
        payer=np.where(line, payer, 0), spend=loans["spend"], state0=loans["state"], pd_12m=loans["pd_12m"])
    np.add.at(opening[..., ACCOUNTS], (loans["product"], band, loans["state"]), 1)
    np.add.at(opening[..., BALANCE], (loans["product"], band, loans["state"]), accounts.principal)
    return accounts, opening


OFFER_FIELDS = ("applicant_id", "product", "month", "score", "segment", "apr", "taken")


def approved_offers(apps: dict[str, np.ndarray], scores: dict[str, np.ndarray],
                    dec: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every application approved (an offer), with what take-up sees: applicant, product code, month,
    score, acquisition channel (segment code), all-in APR, and whether it was taken."""
    who, prod = _cells(dec["approved"])
    return {"applicant_id": apps["id"][who], "product": prod.astype(np.int8), "month": apps["month"][who],
            "score": scores["score"][who], "segment": apps["segment"][who], "apr": dec["apr"][who, prod],
            "taken": dec["takeup"][who, prod]}


def group_funnel(group: np.ndarray, groups: int, approved: np.ndarray,
                 cells: dict[int, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The funnel's counts by population group (`group` of each applicant, `terms.population_group`;
    of `groups` groups, the last, the existing book's, has none) [group, GROUP_FUNNEL]: applicants,
    approved, and each of `cells` (applications, approvals, take-ups); the cap's columns are
    `cap_effect`'s."""
    out = np.zeros((groups, len(GROUP_FUNNEL)), dtype=np.int64)
    out[:, GROUP_FUNNEL.index("applicants")] = np.bincount(group, minlength=groups)
    out[:, GROUP_FUNNEL.index("approved_applicants")] = np.bincount(group[approved], minlength=groups)
    for j, (who, _) in cells.items():
        out[:, GROUP_FUNNEL.index(FUNNEL[j])] = np.bincount(group[who], minlength=groups)
    return out


def _chunk(sc: Scenario, first: int, end: int, offers: bool) -> tuple:
    """The applicants with ids first .. end - 1: their accounts, integer counts (`applicants`,
    `approved_applicants`, `funnel`, `cap_counts`), the floating-point additions to make in order
    (target, flat index, values: `apr_sum`, `cap_aprs`, `revenue_given_up`), and with `offers` the
    approved offers."""
    apps = population.applicants_by_id(sc.applicants, sc.run.seed, np.arange(first, end, dtype=np.int64))
    scores = scoring.score_applicants(apps, sc.scorecard, sc.applicants, sc.run.seed)
    band = scoring.score_band(scores["score"], sc.scorecard.bands)
    dec = policy.decide(apps, scores, sc)
    horizon, bands = sc.run.horizon_months, terms.n_bands(sc)
    month = apps["month"] - 1
    approved = dec["approved"].any(axis=1)
    counts = {"applicants": _counted((horizon, bands), month, band),
              "approved_applicants": _counted((horizon, bands), month[approved], band[approved]),
              "funnel": np.zeros((horizon, len(PRODUCTS), bands, len(FUNNEL)), dtype=np.int64)}
    cells = {j: _cells(mask) for j, mask in zip((APPLICATIONS, APPROVALS, TAKEUPS),
                                                 (apps["requests"], dec["approved"], dec["takeup"]))}
    for j, (who, prod) in cells.items():
        counts["funnel"][..., j] = _counted((horizon, len(PRODUCTS), bands), month[who], prod, band[who])
    run_counts = counts["funnel"][..., [APPROVALS, TAKEUPS]].sum(axis=0)
    group = terms.population_group(apps["id"], sc.run.population_groups)
    counts["cap_counts"], cap_groups, adds = cap_effect(sc, apps, scores, band, dec, run_counts, group)
    who, prod = cells[TAKEUPS]
    adds.insert(0, ("apr_sum", prod * bands + band[who], dec["apr"][who, prod]))
    counts["group_funnel"] = group_funnel(group, sc.run.population_groups + 1, approved, cells) + cap_groups
    offered = approved_offers(apps, scores, dec) if offers else None
    return new_accounts(sc, apps, scores, band, dec), counts, adds, offered


def _threads(threads: int) -> int:
    """Threads of origination: engine.threads, 0 for all cores."""
    return threads or os.cpu_count() or 1


def _prepared(sc: Scenario, chunks: list[tuple[int, int]], offers: bool):
    """`_chunk` of each (first, end) range of applicant ids, in order, computed on the scenario's
    threads (numpy and the draws release the GIL) with at most one chunk a thread ahead of the one
    taken; BLAS (the copula's small product) on one thread meanwhile, as its own threads would spin
    on the cores these need."""
    threads = _threads(sc.engine.threads)
    with threadpool_limits(limits=1, user_api="blas"):
        if threads == 1 or len(chunks) < 2:
            yield from (_chunk(sc, first, end, offers) for first, end in chunks)
            return
        with ThreadPoolExecutor(max_workers=threads) as pool:
            pending = deque()
            for first, end in chunks:
                pending.append(pool.submit(_chunk, sc, first, end, offers))
                if len(pending) > threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()


def prepare(sc: Scenario, book_path: Path | None = None,
            offers: bool = False) -> tuple[Accounts, dict[str, np.ndarray]]:
    """Accounts for the kernel (sorted by borrower), and host-side counts: `applicants` and
    `approved_applicants` [month, band], the application `funnel` [month, product, band, (applications, approvals,
    takeups)] and the `opening` book [product, band, state, (accounts, balance cents)]; with `offers`,
    also `offers`: every approved application (`approved_offers`)."""
    memory.settle()
    bands = terms.n_bands(sc)
    applicants = np.zeros((sc.run.horizon_months, bands), dtype=np.int64)
    approved_applicants = np.zeros((sc.run.horizon_months, bands), dtype=np.int64)
    funnel = np.zeros((sc.run.horizon_months, len(PRODUCTS), bands, len(FUNNEL)), dtype=np.int64)
    apr_sum = np.zeros((len(PRODUCTS), bands))
    cap_counts = np.zeros((len(PRODUCTS), bands, len(CAP_COUNTS)), dtype=np.int64)
    cap_aprs = np.zeros((len(PRODUCTS), bands, 2))
    given_up = np.zeros((len(PRODUCTS), bands))
    funnel_of_groups = np.zeros((sc.run.population_groups + 1, len(GROUP_FUNNEL)), dtype=np.int64)
    group_prices = np.zeros((sc.run.population_groups + 1, len(PRODUCTS), len(GROUP_PRICES)))
    parts, offer_parts = [], []
    window = (population.origination_window(sc.applicants.origination_months, sc.run.horizon_months)
              if sc.applicants.monthly_volume > 0 else 0)
    # Applicants a chunk at a time (memory follows accounts, not applicants; a chunk's arrays stay in
    # the cache), prepared on threads; their counts are added here in id order, so floating-point
    # sums do not depend on the threads or the chunks.
    applicants_in_window = window * sc.applicants.monthly_volume
    chunks = [(first, min(applicants_in_window, first + APPLICANTS_AT_ONCE))
              for first in range(0, applicants_in_window, APPLICANTS_AT_ONCE)]
    sums = {"apr_sum": apr_sum, "cap_aprs": cap_aprs, "revenue_given_up": given_up, "group_prices": group_prices}
    for accounts, counts, adds, offered in _prepared(sc, chunks, offers):
        funnel_of_groups += counts.pop("group_funnel")
        for target, total in (("applicants", applicants), ("approved_applicants", approved_applicants),
                              ("funnel", funnel), ("cap_counts", cap_counts)):
            total += counts[target]
        for target, index, values in adds:          # in applicant order: the same sums whatever the split
            np.add.at(sums[target].reshape(-1), index, values)
        parts.append(accounts)
        if offers:
            offer_parts.append(offered)
        del accounts, counts, adds, offered
    opening = np.zeros((len(PRODUCTS), bands, N_STATES, 2), dtype=np.int64)
    if book_path is not None:
        accounts, opening = book_accounts(sc, book_path)
        parts.append(accounts)
    if not parts:
        parts.append(terms.accounts(0, sc.behaviour.roll_rates))
    taken = funnel[..., TAKEUPS].sum(axis=0)
    mean_apr = np.where(taken > 0, apr_sum / np.maximum(taken, 1), np.nan)
    found = {"offers": {k: np.concatenate([part[k] for part in offer_parts]) if offer_parts else np.zeros(0)
                        for k in OFFER_FIELDS}} if offers else {}
    return terms.concat(parts, _threads(sc.engine.threads)), found | {
        "cap_counts": cap_counts, "cap_aprs": cap_aprs, "revenue_given_up": given_up, "applicants": applicants,
        "approved_applicants": approved_applicants, "funnel": funnel, "opening": opening, "mean_apr": mean_apr,
        "group_funnel": np.concatenate([funnel_of_groups[:, :-len(GROUP_PRICES)], group_prices.sum(axis=1)], axis=1)}
