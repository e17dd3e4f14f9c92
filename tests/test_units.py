"""The unit conversions (simulator.units) against values computed by hand."""
from __future__ import annotations

import numpy as np

from simulator import units


def test_yuan_to_cents_rounds_half_up():
    """Yuan to integer cents, half up (toward +infinity), on amounts exact in binary and ordinary ones."""
    cents = units.to_cents([0.0, 0.125, 0.375, -0.125, 1234.56, 2500.5, 1e9])
    assert cents.dtype == np.int64
    assert cents.tolist() == [0, 13, 38, -12, 123456, 250050, 100_000_000_000]
    assert units.to_cents(9.26).item() == 926 and units.to_cents(np.zeros((2, 3))).shape == (2, 3)


def test_a_share_of_cents_rounds_half_up():
    """A share of an amount in cents: cents x share, half up (not to even)."""
    got = units.share_of_cents([123456, 123456, 3, 5, 0, 100_000], [0.0075, 0.02, 0.5, 0.5, 0.3, 0.0])
    assert got.dtype == np.int64
    # 925.92, 2469.12, 1.5, 2.5, 0, 0 cents
    assert got.tolist() == [926, 2469, 2, 3, 0, 0]
    assert units.share_of_cents(np.array([100_000, 250_000]), 0.0075).tolist() == [750, 1875]


def test_day_count():
    """A rate a year = daily rate x days a year; a rate a month = a rate a year / 12."""
    assert units.annual_rate(0.0004, 365) == 0.0004 * 365               # 0.146: a cash loan's APR
    assert abs(units.annual_rate(0.0004, 365) - 0.146) < 1e-15
    assert units.monthly_rate(0.12) == 0.01
    assert abs(units.monthly_rate(units.annual_rate(0.0005, 365)) - 0.015208333333333333) < 1e-15
    np.testing.assert_array_equal(units.monthly_rate(np.array([0.0, 0.24, 0.36])), [0.0, 0.02, 0.03])
