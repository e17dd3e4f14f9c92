"""Prepayment by price (docs/model.md section 5): a current loan or plan prepays in full in a month
with the path's rate (behaviour.prepay_monthly, moved by the factor) times `price_scale` of its own
all-in APR, so that a dear loan is refinanced or repaid early more often than a 0% promotion."""
from __future__ import annotations

import math

import numba as nb


@nb.njit(inline="always", cache=True)
def price_scale(monthly_rate, sensitivity, reference_apr):
    """2 / (1 + exp(-sensitivity x (12 x monthly_rate - reference_apr))): 1 at the reference APR,
    towards 0 far below it and 2 far above it; 1 for every price with a sensitivity of 0. The
    monthly rate is the account's effective rate (its all-in APR / 12)."""
    return 2.0 / (1.0 + math.exp(-sensitivity * (12.0 * monthly_rate - reference_apr)))
