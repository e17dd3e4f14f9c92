"""Prepayment by price (simulator.model.prepayment): the scale by its closed form, and a homogeneous
book's prepayments against their Markov expectation."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.codes import EQUAL_PRINCIPAL, FLOWS, PRODUCTS
from simulator.engine import simulation
from simulator.model import prepayment, products, provisions, terms

from conftest import loaded_scenario

YUEFU = PRODUCTS.index("yuefu")
QUIET = ["factor.asset_correlation=0.0", "factor.roll_correlation=0.0", "factor.borrower_correlation=0.0",
         "macro.prepay_sensitivity=0.0", "behaviour.fraud_rate=0.0"]


def test_the_scale_is_one_at_the_reference_and_bounded_by_two():
    k, ref = 10.0, 0.15
    assert prepayment.price_scale(ref / 12, k, ref) == pytest.approx(1.0, abs=1e-15)
    assert prepayment.price_scale(0.0, k, ref) == pytest.approx(2 / (1 + math.exp(1.5)), rel=1e-14)   # 0.365
    assert prepayment.price_scale(0.36 / 12, k, ref) == pytest.approx(2 / (1 + math.exp(-2.1)), rel=1e-14)
    # Symmetric about the reference: s(ref + d) + s(ref - d) = 2.
    for d in (0.01, 0.1, 0.3):
        up, down = (prepayment.price_scale((ref + x) / 12, k, ref) for x in (d, -d))
        assert up + down == pytest.approx(2.0, abs=1e-14) and 1.0 < up < 2.0
    assert prepayment.price_scale(0.0, 0.0, ref) == 1.0          # no sensitivity: every price alike


def test_the_ecl_prepays_as_the_kernel_draws(tmp_path):
    beh = loaded_scenario(tmp_path, []).scenario.behaviour
    rates = np.array([0.0, 0.01, 0.02])
    expected = beh.prepay_monthly * 2 / (1 + np.exp(-beh.prepay_price_sensitivity * (12 * rates
                                                                                     - beh.prepay_reference_apr)))
    np.testing.assert_allclose(provisions.prepay_rates(rates, beh, True), expected, rtol=1e-14)
    np.testing.assert_array_equal(provisions.prepay_rates(rates, beh, False), np.zeros(3))


@pytest.mark.parametrize("fee_rate", [0.0, 0.02])
def test_a_promotion_prepays_less_than_a_priced_plan_by_the_documented_scale(tmp_path, fee_rate):
    """n riskless 6-month plans, a 0% promotion or a fee of 2% a period (an all-in APR near 40%): the
    prepayments in each instalment month k are binomial with mean n (1 - pi)^(k - 1) pi, pi the path's
    prepayment rate x price_scale(the plan's effective rate), within 5 standard errors."""
    n, term, paths = 20_000, 6, 4
    sc = loaded_scenario(tmp_path, [f"run.paths={paths}", "run.horizon_months=8", "behaviour.prepay_monthly=0.05",
                                    *QUIET]).scenario
    accounts = terms.accounts(n, sc.behaviour.roll_rates, account_id=np.arange(n), product=YUEFU, principal=1200.0, start_month=1,
                              fee_rate=fee_rate, term=term, method=EQUAL_PRINCIPAL, pd_12m=np.zeros(n))
    rows = products.instalment_plan_cents(120_000, term, int(120_000 * fee_rate))
    apr = products.irr_apr(1200.0, rows[:, 0] / 100) if fee_rate else 0.0      # the plan's all-in APR, outside
    beh = sc.behaviour
    pi = beh.prepay_monthly * 2 / (1 + math.exp(-beh.prepay_price_sensitivity * (apr - beh.prepay_reference_apr)))
    out = simulation.run_accounts(sc, accounts)
    prepaid = out["flows"][..., FLOWS.index("prepaid_accounts")].sum(axis=(2, 3))       # (path, month)
    for k in range(1, term + 1):
        p = (1 - pi) ** (k - 1) * pi
        mean, se = n * p, math.sqrt(n * p * (1 - p) / paths)
        assert abs(prepaid[:, k].mean() - mean) < 5 * se, (k, prepaid[:, k].mean(), mean, se)
    if fee_rate == 0.0:
        assert pi < 0.4 * beh.prepay_monthly                      # a promotion prepays little
    else:
        assert pi > 1.5 * beh.prepay_monthly
