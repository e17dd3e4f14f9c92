"""The kernel's inputs (simulator.terms): the one constructor of the account arrays (yuan and rates a
year in, cents and rates a month out) against outside computations, and a cell's factor paths."""
from __future__ import annotations

import pickle

import numpy as np
import numpy_financial as npf
import pytest

from simulator.model import hazard, tail, terms
from simulator.codes import EQUAL_INSTALLMENT, EQUAL_PRINCIPAL, HUABEI, INTEREST_FIRST, JIEBEI, PAYER_TYPES, YUEFU

from conftest import loaded_scenario

ROLLS = [0.45, 0.70, 0.85, 0.90, 0.92, 0.95]


def half_up(x) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def test_amounts_in_yuan_become_cents_and_rates_a_year_rates_a_month():
    """Every amount is kept in integer cents, half up; the APR (a loan's, a line's revolving rate a
    year) becomes the monthly rate APR / 12; fields not given are zero; each account its own borrower."""
    acc = terms.accounts(
        3, ROLLS, account_id=[7, 8, 9], product=[JIEBEI, HUABEI, YUEFU], principal=[2500.5, 300.0, 1234.56],
        overdue0=[400.25, 100.0, 0.0], apr=[0.146, 0.0005 * 365, 0.0], term=[12, 0, 6],
        method=[EQUAL_PRINCIPAL, 0, EQUAL_PRINCIPAL], limit=[0.0, 2000.0, 0.0], line_cap=[0.0, 4000.5, 0.0],
        spend=[0.0, 600.125, 0.0], payer=[0, PAYER_TYPES.index("revolver"), 0])
    assert acc.principal.tolist() == [250050, 30000, 123456]
    assert acc.overdue0.tolist() == [40025, 10000, 0]
    assert acc.limit.tolist() == [0, 200000, 0] and acc.line_cap.tolist() == [0, 400050, 0]
    assert acc.spend.tolist() == [0, 60013, 0]
    np.testing.assert_array_equal(acc.rate, [0.146 / 12, 0.0005 * 365 / 12, 0.0])
    assert acc.borrower.tolist() == [7, 8, 9]
    assert acc.fee.tolist() == acc.discount.tolist() == acc.state0.tolist() == [0, 0, 0]
    for name, dtype in terms.ACCOUNT_DTYPES.items():
        assert getattr(acc, name).dtype == dtype, name


@pytest.mark.parametrize("principal, apr, term", [(10_000.0, 0.146, 12), (5000.0, 0.24, 36), (1234.56, 0.0, 6),
                                                  (20_000.0, 0.0004 * 365, 24)])
def test_level_payment_is_numpy_financials_pmt(principal, apr, term):
    """An equal-instalment loan's payment: numpy-financial's pmt at APR / 12, rounded half up to the
    cent, on the principal not overdue; other methods have none."""
    acc = terms.accounts(3, ROLLS, product=JIEBEI, principal=principal, overdue0=[0.0, 0.0, 1000.0], apr=apr,
                         term=term, method=[EQUAL_INSTALLMENT, INTEREST_FIRST, EQUAL_INSTALLMENT])
    cents = round(principal * 100)
    want = half_up(-npf.pmt(apr / 12, term, cents)) if apr > 0 else half_up(cents / term)
    assert acc.payment[0] == want and acc.payment[1] == 0
    scheduled = cents - 100_000
    assert acc.payment[2] == (half_up(-npf.pmt(apr / 12, term, scheduled)) if apr > 0 else half_up(scheduled / term))
    np.testing.assert_array_equal(acc.eir, acc.rate)                 # a loan's effective rate: its rate


def test_a_plans_fee_and_discount_and_its_effective_rate():
    """A plan's fee a period given as a share of its principal is the cents of that share, half up (as
    given in yuan, it is those yuan in cents); the merchant discount likewise; its monthly effective
    rate `eir` is the IRR of the plan's cash flows (principal in equal parts plus the fee), as
    numpy-financial's irr finds it."""
    price, tenor, share, discount = 1234.56, 6, 0.0075, 0.02
    acc = terms.accounts(2, ROLLS, product=YUEFU, principal=price, term=tenor, method=EQUAL_PRINCIPAL,
                         fee_rate=share, discount_rate=discount)
    assert acc.fee.tolist() == [half_up(123456 * share)] * 2 == [926] * 2
    assert acc.discount.tolist() == [half_up(123456 * discount)] * 2 == [2469] * 2
    np.testing.assert_array_equal(acc.rate, 0.0)
    charged = 926 / 123456
    irr = npf.irr([-1.0] + [1.0 / tenor + charged] * tenor)
    np.testing.assert_allclose(acc.eir, irr, rtol=1e-10)
    in_yuan = terms.accounts(1, ROLLS, product=YUEFU, principal=price, term=tenor, method=EQUAL_PRINCIPAL, fee=9.26)
    assert in_yuan.fee[0] == 926 and in_yuan.eir[0] == acc.eir[0]


def test_fields_refused():
    """Unknown fields, derived ones (the monthly rate, eir, payment, discount, hazard quantile) and a
    fee given twice are errors."""
    for fields in ({"principle": 1.0}, {"rate": 0.01}, {"eir": 0.01}, {"payment": 5.0}, {"discount": 1.0},
                   {"hazard_q": 0.0}, {"fee": 1.0, "fee_rate": 0.01}):
        with pytest.raises(TypeError):
            terms.accounts(1, ROLLS, **fields)
    assert len(terms.accounts(0, ROLLS).principal) == 0


def test_hazard_quantile_beside_the_pd():
    """pd_12m is kept, and the kernel's hazard quantile solved from it beside it."""
    pd_12m = np.array([0.01, 0.05, 0.2])
    acc = terms.accounts(3, ROLLS, pd_12m=pd_12m)
    np.testing.assert_array_equal(acc.pd_12m, pd_12m)
    np.testing.assert_array_equal(acc.hazard_q, terms.hazard_quantile(pd_12m, ROLLS))


@pytest.mark.parametrize("quantile", [0.0, 0.99])
def test_a_cells_factor_paths(tmp_path, quantile):
    """One structure per cell: the factor paths from the innovations as drawn, the roll and prepayment
    rates, and the paths' weights (1 without importance sampling); small enough to ship to a worker."""
    sc = loaded_scenario(tmp_path, ["run.paths=6", "run.horizon_months=15",
                                    f"capital.importance_quantile={quantile}"]).scenario
    factors = terms.factors(sc)
    drawn, weight = tail.factor_innovations(sc)
    assert factors.z.shape == factors.prepay.shape == (6, 15) and factors.roll.shape == (6, 15, 6)
    np.testing.assert_array_equal(factors.weight, weight)
    np.testing.assert_array_equal(factors.z, hazard.factor_paths(drawn, sc.factor.autocorrelation,
                                                                 sc.macro.monthly_shift()[:15]))
    assert (factors.weight == 1.0).all() == (quantile == 0.0)
    assert np.all((factors.prepay >= 0) & (factors.prepay <= 1))
    back = pickle.loads(pickle.dumps(factors))
    assert all(np.array_equal(a, b) for a, b in zip(back, factors))
