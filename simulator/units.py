"""Units: yuan to integer cents, and the day count that turns daily and annual rates into rates a
month (docs/products.md): a rate a year = daily rate x days_per_year, a rate a month = a rate a
year / 12. Every conversion of a scenario figure into the kernel's units uses these."""
from __future__ import annotations

import numpy as np


def to_cents(amount) -> np.ndarray:
    """Yuan to integer cents, half up."""
    return np.floor(np.asarray(amount, dtype=np.float64) * 100.0 + 0.5).astype(np.int64)


def share_of_cents(cents, share) -> np.ndarray:
    """A share of an amount in cents (a plan's fee a period, a merchant discount), in integer cents, half up."""
    return np.floor(np.asarray(cents) * np.asarray(share, dtype=np.float64) + 0.5).astype(np.int64)


def annual_rate(daily_rate, days_per_year):
    """A daily rate as a rate a year: daily rate x days_per_year (a cash loan's APR)."""
    return daily_rate * days_per_year


def monthly_rate(annual):
    """A rate a year as the rate a month: annual / 12."""
    return annual / 12.0
