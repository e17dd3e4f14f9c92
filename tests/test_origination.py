"""Origination's accounts (simulator.origination): new accounts carry the decision's terms, an
existing book's accounts its rows', converted to cents and rates a month as computed here by hand."""
from __future__ import annotations

import numpy as np

from simulator.model import origination, policy, population, products, scoring
from simulator.codes import (ACCOUNTS, BALANCE, EQUAL_INSTALLMENT, EQUAL_PRINCIPAL, HUABEI, JIEBEI, LINE, LOAN, PLAN,
                             PRODUCT_KIND, STATES, YUEFU)

from conftest import loaded_scenario


def cents(yuan) -> np.ndarray:
    return np.floor(np.asarray(yuan, dtype=np.float64) * 100 + 0.5).astype(np.int64)


def test_new_accounts_carry_the_decided_terms(tmp_path):
    """Each account taken has its decision's amount in cents, its APR / 12 as its monthly rate (loans
    and lines), its plan's flat fee a period of the APR and the merchant discount in cents of the price
    (half up), its term or tenor and method; a line its limit, line cap and capped spend."""
    sc = loaded_scenario(tmp_path, ["applicants.monthly_volume=3000", "run.horizon_months=2",
                                    "applicants.origination_months=1"]).scenario
    apps = population.applicants_by_id(sc.applicants, sc.run.seed, np.arange(3000, dtype=np.int64))
    scores = scoring.score_applicants(apps, sc.scorecard, sc.applicants, sc.run.seed)
    band = scoring.score_band(scores["score"], sc.scorecard.bands)
    dec = policy.decide(apps, scores, sc)
    acc = origination.new_accounts(sc, apps, scores, band, dec)
    who, prod = acc.borrower, acc.product.astype(np.int64)     # applicant ids are their row here
    kind = PRODUCT_KIND[prod]
    amount, apr = dec["amount"][who, prod], dec["apr"][who, prod]
    line, loan, plan = kind == LINE, kind == LOAN, kind == PLAN
    assert line.sum() > 10 and loan.sum() > 10 and plan.sum() > 10
    np.testing.assert_array_equal(acc.principal, np.where(line, 0, cents(amount)))
    np.testing.assert_array_equal(acc.rate, np.where(plan, 0.0, apr / 12))
    np.testing.assert_array_equal(acc.limit, np.where(line, cents(amount), 0))
    np.testing.assert_array_equal(acc.line_cap, np.where(line, cents(dec["line_cap"][who, prod]), 0))
    np.testing.assert_array_equal(acc.spend, np.where(line, cents(np.minimum(apps["spend"][who, prod],
                                                                             sc.products.huabei.max_limit)), 0))
    fee_rate = products.fee_rate_for_apr(apr, np.where(plan, apps["term"][who, prod], 1))   # lines: no tenor
    principal = cents(amount).astype(np.float64)
    np.testing.assert_array_equal(acc.fee, np.where(plan, np.floor(principal * fee_rate + 0.5), 0))
    np.testing.assert_array_equal(acc.discount,
                                  np.where(plan, np.floor(principal * sc.products.yuefu.merchant_discount + 0.5), 0))
    np.testing.assert_array_equal(acc.term, np.where(line, 0, apps["term"][who, prod]))
    np.testing.assert_array_equal(acc.method, np.select([loan, plan], [apps["method"][who, prod], EQUAL_PRINCIPAL], 0))


def test_book_accounts_convert_the_rows(tmp_path):
    """An existing book's rows in yuan and APRs become cents and rates a month: a loan's APR / 12, a
    line's revolving rate at most the cap (here below every price: the cap / 12), a plan's fee in
    yuan a period (price x fee) in cents; the opening book counts accounts and balances by state."""
    book = tmp_path / "book.csv"
    book.write_text("product,principal,apr,term_months,method,months_on_book,state,overdue,pd_12m,fee_per_period,"
                    "price,limit,payer,spend\n"
                    "jiebei,2500.5,0.146,12,equal_installment,2,M1,400.25,0.05,,,,,\n"
                    "yuefu,1000,,6,,2,current,,0.03,0.0075,1500,,,\n"
                    "huabei,1200,,,,,M2,100,0.08,,,4000,revolver,600.125\n")
    sc = loaded_scenario(tmp_path, ["policy.apr_cap=0.05"]).scenario
    acc, opening = origination.book_accounts(sc, book)
    assert acc.product.tolist() == [JIEBEI, YUEFU, HUABEI]
    assert acc.principal.tolist() == [250050, 100000, 120000] and acc.overdue0.tolist() == [40025, 0, 10000]
    np.testing.assert_array_equal(acc.rate, [0.146 / 12, 0.0, 0.05 / 12])
    assert acc.term.tolist() == [10, 4, 0] and acc.method[0] == EQUAL_INSTALLMENT
    assert acc.fee.tolist() == [0, cents(1500 * 0.0075), 0] == [0, 1125, 0]
    assert acc.limit[2] == acc.line_cap[2] == 400000 and acc.spend[2] == 60013
    assert acc.state0.tolist() == [1, 0, 2]
    for product, state, balance in ((JIEBEI, "M1", 250050), (YUEFU, "current", 100000), (HUABEI, "M2", 120000)):
        cell = opening[product, :, STATES.index(state)]
        assert cell[:, ACCOUNTS].sum() == 1 and cell[:, BALANCE].sum() == balance
    assert opening[..., ACCOUNTS].sum() == 3
