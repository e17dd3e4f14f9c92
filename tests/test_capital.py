"""IRB capital's exposure (simulator/results/capital.py), by hand: the performing balance (90+ is in
default) plus the line's loan-equivalent factor of its undrawn limit, on the capital date, weighted over paths."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.codes import BALANCE, HUABEI, JIEBEI, N_STATES, PRODUCTS, STATES
from simulator.results.capital import irb_exposure

M2, M4 = STATES.index("M2"), STATES.index("M4")
HALF = np.full(len(PRODUCTS), 0.5)        # the loan-equivalent factor by product (only lines read it)


def book(paths: int = 2, months: int = 3, bands: int = 1):
    """Zero stocks [path, month, product, band, state, field], opening stocks and line limits (cents)."""
    stocks = np.zeros((paths, months, len(PRODUCTS), bands, N_STATES, 2), dtype=np.int64)
    opening = np.zeros((len(PRODUCTS), bands, N_STATES, 2), dtype=np.int64)
    limits = np.zeros((paths, months, len(PRODUCTS), bands), dtype=np.int64)
    return stocks, opening, limits


def test_performing_balance_and_the_undrawn_limit_of_lines():
    """A loan's 90+ balance is in default and left out; a line adds its loan-equivalent factor of its undrawn limit."""
    stocks, opening, limits = book()
    stocks[:, 1, JIEBEI, 0, 0, BALANCE] = 100_000          # 1,000 yuan current
    stocks[:, 1, JIEBEI, 0, M2, BALANCE] = 50_000          # 500 yuan 30+: performing
    stocks[:, 1, JIEBEI, 0, M4, BALANCE] = 70_000          # 700 yuan 90+: in default
    stocks[:, 1, HUABEI, 0, 0, BALANCE] = 20_000           # a line drawn 200 yuan of 1,000
    limits[:, 1, HUABEI, 0] = 100_000
    found = irb_exposure(stocks, opening, limits, 2, HALF, np.ones(2))
    assert found[JIEBEI, 0] == pytest.approx(1_500.0)
    assert found[HUABEI, 0] == pytest.approx(200.0 + 0.5 * 800.0)


def test_the_mean_over_paths_is_weighted():
    stocks, opening, limits = book()
    stocks[0, 0, JIEBEI, 0, 0, BALANCE] = 100_000
    stocks[1, 0, JIEBEI, 0, 0, BALANCE] = 400_000
    assert irb_exposure(stocks, opening, limits, 1, HALF, np.ones(2))[JIEBEI, 0] == pytest.approx(2_500.0)
    assert irb_exposure(stocks, opening, limits, 1, HALF, np.array([3.0, 1.0]))[JIEBEI, 0] == pytest.approx(1_750.0)


def test_month_zero_is_the_opening_book_without_undrawn_limits():
    stocks, opening, limits = book()
    opening[JIEBEI, 0, 0, BALANCE] = 30_000
    opening[HUABEI, 0, M4, BALANCE] = 10_000               # in default
    limits[:, 0, HUABEI, 0] = 1_000_000                    # not the opening book's
    found = irb_exposure(stocks, opening, limits, 0, HALF, np.ones(2))
    assert found[JIEBEI, 0] == pytest.approx(300.0) and found[HUABEI, 0] == 0.0


def test_the_irb_pd_weights_each_performing_states_pd_by_its_balance():
    """The pool's PD on the capital date: its balance in current .. M3 times each state's PD, over the
    balance (90+ is in default, left out); the mean over paths weighted; a pool with no performing
    balance keeps its PD at origination."""
    from simulator.results.capital import irb_pd

    stocks, opening, _ = book()
    stocks[0, 1, JIEBEI, 0, 0, BALANCE] = 300_000
    stocks[0, 1, JIEBEI, 0, M2, BALANCE] = 100_000
    stocks[1, 1, JIEBEI, 0, 0, BALANCE] = 100_000
    stocks[:, 1, JIEBEI, 0, M4, BALANCE] = 900_000          # in default
    state_pd = np.zeros((len(PRODUCTS), 1, M4))
    state_pd[JIEBEI, 0] = [0.02, 0.3, 0.6, 0.8]
    pool_pd = np.full((len(PRODUCTS), 1), 0.07)
    weight = np.array([3.0, 1.0])
    found = irb_pd(stocks, opening, 2, state_pd, pool_pd, weight)
    current, m2 = (3 * 300_000 + 100_000) / 4, 3 * 100_000 / 4
    assert found[JIEBEI, 0] == pytest.approx((current * 0.02 + m2 * 0.6) / (current + m2))
    assert found[HUABEI, 0] == 0.07
    opening[JIEBEI, 0, 1, BALANCE] = 50_000                  # M1 at the start
    assert irb_pd(stocks, opening, 0, state_pd, pool_pd, weight)[JIEBEI, 0] == pytest.approx(0.3)
