"""Credit-risk formulas (simulator.risk): IRB capital against the published formula, and the pool
PDs and their sums."""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from simulator.model import risk
from simulator.codes import PRODUCTS

JIEBEI = PRODUCTS.index("jiebei")


@pytest.mark.parametrize("pd", [0.0005, 0.003, 0.01, 0.05, 0.2])
def test_irb_capital_against_the_published_formula(pd):
    n = NormalDist()
    lgd = 0.45
    w = (1 - math.exp(-35 * pd)) / (1 - math.exp(-35))
    r_other = 0.03 * w + 0.16 * (1 - w)
    for r, got_r in ((0.04, 0.04), (r_other, float(risk.other_retail_correlation(np.array(pd))))):
        assert got_r == pytest.approx(r, rel=1e-12)
        k = lgd * n.cdf((1 - r) ** -0.5 * n.inv_cdf(pd) + (r / (1 - r)) ** 0.5 * n.inv_cdf(0.999)) - pd * lgd
        assert float(risk.irb_capital_requirement(np.array(pd), lgd, np.array(r))) == pytest.approx(k, rel=1e-9)
    assert float(risk.other_retail_correlation(np.array(0.0))) == pytest.approx(0.16)
    assert float(risk.other_retail_correlation(np.array(1.0))) == pytest.approx(0.03, abs=1e-12)


def test_pool_pds_count_fraud_at_pd_one():
    """IRB pool PDs are exposure-weighted with first-party fraud at PD 1; the calibration pools are
    the accounts observed for 12 months on book, weighted by account, fraud at 1 as well."""
    from simulator.model import terms
    from simulator.codes import HUABEI

    n_bands, horizon = 2, 24
    accounts = terms.accounts(
        4, [0.5] * 6, account_id=np.arange(4), product=[JIEBEI, JIEBEI, JIEBEI, HUABEI], band=[0, 0, 0, 1],
        principal=[1000.0, 3000.0, 1000.0, 0.0], line_cap=[0.0, 0.0, 0.0, 5000.0], start_month=[1, 1, 20, 2],
        pd_12m=[0.02, 0.04, 0.10, 0.03], fraud=[False, True, False, False])
    pools = risk.pool_pd(accounts, n_bands)
    assert pools[JIEBEI, 0] == pytest.approx((100_000 * 0.02 + 300_000 * 1.0 + 100_000 * 0.10) / 500_000)
    assert pools[HUABEI, 1] == pytest.approx(0.03) and pools[HUABEI, 0] == 0.0
    mean_pd, fraud = risk.seasoned_pools(accounts, n_bands, horizon)
    assert mean_pd[JIEBEI, 0] == pytest.approx((0.02 + 1.0) / 2)         # month 20 + 12 > 24: not seasoned
    assert fraud[JIEBEI, 0] == pytest.approx(0.5) and np.isnan(mean_pd[JIEBEI, 1])


def test_pool_sums_are_bincounts_to_the_bit():
    """The compiled pool sums add account by account in order, as np.bincount does: the same bits."""
    from collections import namedtuple

    rng = np.random.default_rng(2)
    pools = namedtuple("Pools", "product band")(rng.integers(0, 3, 100_000).astype(np.int8),
                                                 rng.integers(0, 5, 100_000).astype(np.int8))
    values, weights = rng.random(100_000), rng.random(100_000) * 1e5
    weights[rng.random(100_000) < 0.2] = 0.0
    cell = pools.product.astype(np.int64) * 5 + pools.band
    with np.errstate(invalid="ignore"):
        expected = (np.bincount(cell, weights * values, 15) / np.bincount(cell, weights, 15)).reshape(3, 5)
    np.testing.assert_array_equal(risk._by_pool(pools, 5, values, weights), expected)
