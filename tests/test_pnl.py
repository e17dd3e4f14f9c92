"""The P&L (simulator.pnl): the capital year of the book, by hand."""
from __future__ import annotations

import numpy as np

from simulator.results import pnl
from simulator.codes import PRODUCTS


def _loss_and_profit(year: dict) -> tuple[np.ndarray, np.ndarray]:
    """The capital year's net charge-offs and pre-tax income from book_year's flows."""
    return year["charged_off"] - year["recovered"], pnl.pretax_income(year)


def test_book_year_leaves_out_later_vintages():
    """The capital year's loss and pre-tax income of the book at month m: the whole book's flows in
    months m+1 .. m+12 less those of the vintages originated after m, whose credit-loss expense is
    their allowance at the window's end plus their net charge-offs (an accounting identity, by hand)."""
    from simulator.codes import ACCOUNTING, FLOWS, VINTAGE_FLOWS

    paths, horizon, products, bands = 1, 6, 3, 1
    flows = np.zeros((paths, horizon, products, bands, len(FLOWS)), dtype=np.int64)
    accounting = np.zeros((paths, horizon, products, bands, len(ACCOUNTING)), dtype=np.int64)
    vintage = np.zeros((paths, horizon, horizon, products, len(VINTAGE_FLOWS)), dtype=np.int64)
    jb = PRODUCTS.index("jiebei")
    # An account of vintage 1 (open at month 2) charges off 500 in month 4 and earns 40 interest in month 3;
    # one of vintage 3 charges off 200 in month 5 and earns 30 in month 4 (both in the whole book's flows too).
    for month, amount, v in ((4, 500, 1), (5, 200, 3)):
        flows[0, month - 1, jb, 0, FLOWS.index("charged_off")] += amount
        vintage[0, v - 1, month - v, jb, VINTAGE_FLOWS.index("charged_off")] += amount
    for month, amount, v in ((3, 40, 1), (4, 30, 3)):
        flows[0, month - 1, jb, 0, FLOWS.index("interest_income")] += amount
        vintage[0, v - 1, month - v, jb, VINTAGE_FLOWS.index("credit_income")] += amount
    # Vintage 3 costs 7 to acquire in month 3, and holds an allowance of 60 at the end of month 3 and 0 after its
    # charge-off in month 5 (remeasured +0 in month 4, used 60 in month 5).
    accounting[0, 2, jb, 0, ACCOUNTING.index("acquisition_cost")] = 7
    vintage[0, 2, 0, jb, VINTAGE_FLOWS.index("costs")] = 7
    accounting[0, 2, jb, 0, ACCOUNTING.index("allowance_originated")] = 60
    accounting[0, 4, jb, 0, ACCOUNTING.index("allowance_used")] = 60
    vintage[0, 2, 0:2, jb, VINTAGE_FLOWS.index("allowance")] = 60
    loss, profit = _loss_and_profit(pnl.book_year(flows, accounting, vintage, 2, 3, 6))
    assert loss[0, jb] == 500 and profit[0, jb] == 40 - 500
    loss, profit = _loss_and_profit(pnl.book_year(flows, accounting, vintage, 0, 1, 6))         # the book at the start: none of these
    assert loss[0, jb] == 0 and profit[0, jb] == 0
    loss, profit = _loss_and_profit(pnl.book_year(flows, accounting, vintage, 3, 4, 6))         # both open at month 3
    # Vintage 3 is the book now: its allowance of 60 at month 3 is used in month 5 (expense: -60 + 200).
    assert loss[0, jb] == 700 and profit[0, jb] == 30 - 500 - (200 - 60)
    loss, profit = _loss_and_profit(pnl.book_year(flows, accounting, vintage, 2, 3, 4))         # vintage 3 new, its allowance open
    assert loss[0, jb] == 500 and profit[0, jb] == 40 - 500
