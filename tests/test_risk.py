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


def _chain_to_90(h: float, rolls: list[float], state: int, months: int = 12) -> float:
    """P(M4 within `months`) from `state` by the monthly Markov chain written out: current misses at
    h, Mk rolls at rolls[k - 1] else cures to current, M4 absorbs."""
    p = [0.0] * 5
    p[state] = 1.0
    for _ in range(months):
        p = [p[0] * (1 - h) + sum(p[k] * (1 - rolls[k - 1]) for k in (1, 2, 3)),
             p[0] * h, p[1] * rolls[0], p[2] * rolls[1], p[4] + p[3] * rolls[2]]
    return p[4]


def test_state_pds_are_the_chain_from_each_performing_state():
    """The IRB's one-year PD by state: current is the pool's pd_12m of accounts that are not fraud;
    M1 .. M3 the chain from the state at the hazard that gives it (uncorrelated: a plain chain)."""
    from simulator.model import hazard, terms

    rolls = [0.4, 0.8, 0.9, 0.95, 0.96, 0.97]
    accounts = terms.accounts(3, rolls, account_id=np.arange(3), product=[JIEBEI] * 3, principal=[1000.0, 3000.0, 500.0],
                              pd_12m=[0.02, 0.06, 0.5], fraud=[False, False, True])
    pds = risk.state_pds(accounts, 1, rolls, None)
    honest = (1000 * 0.02 + 3000 * 0.06) / 4000
    assert pds[JIEBEI, 0, 0] == pytest.approx(honest, rel=1e-12)
    h = float(hazard.hazard_from_pd12(np.array([honest]), rolls)[0])
    assert _chain_to_90(h, rolls, 0) == pytest.approx(honest, rel=1e-6)
    for state in (1, 2, 3):
        assert pds[JIEBEI, 0, state] == pytest.approx(_chain_to_90(h, rolls, state), rel=1e-12)
    assert pds[JIEBEI, 0, 1] < pds[JIEBEI, 0, 2] < pds[JIEBEI, 0, 3] < 1.0
    assert np.all(pds[PRODUCTS.index("huabei")] == 0.0)          # an empty pool


def test_state_pds_under_the_factor_average_from_current_are_pd_12m(tmp_path):
    """With the factor on, each state's PD is the same factor average as the hazard's solve: from
    current it gives back the pool's pd_12m (to the solve's interpolation)."""
    from conftest import loaded_scenario
    from simulator.model import terms

    sc = loaded_scenario(tmp_path, []).scenario
    rolls, factor = sc.behaviour.roll_rates, sc.factor
    assert factor.asset_correlation > 0 and factor.roll_correlation > 0
    accounts = terms.accounts(1, rolls, account_id=np.arange(1), product=[JIEBEI], principal=[1000.0], pd_12m=[0.05])
    pds = risk.state_pds(accounts, 1, rolls, factor)
    from simulator.model import hazard
    h = hazard.hazard_from_pd12(np.array([0.05]), rolls, factor)
    assert float(hazard.pd12_from_hazard(h, rolls, factor, 0)[0]) == pytest.approx(0.05, rel=1e-3)
    assert pds[JIEBEI, 0, 0] == 0.05
    assert 0.05 < pds[JIEBEI, 0, 1] < pds[JIEBEI, 0, 2] < pds[JIEBEI, 0, 3] < 1.0


def test_revolving_pools_take_their_own_pd_floor():
    """Basel 3.1: a PD floor of 0.10% for qualifying revolving retail, 0.05% for other retail."""
    from types import SimpleNamespace

    capital = SimpleNamespace(pd_floor=0.0005, pd_floor_revolving=0.001, irb_revolving_correlation=0.04,
                              irb_confidence=0.999)
    got = risk.irb_capital(np.array([1e-6, 1e-6]), np.array([1.0, 1.0]), 0.5, np.array([True, False]), capital)
    want = [risk.irb_capital_requirement(np.array(0.001), 0.5, np.array(0.04)),
            risk.irb_capital_requirement(np.array(0.0005), 0.5, risk.other_retail_correlation(np.array(0.0005)))]
    np.testing.assert_allclose(got, np.array(want, dtype=float), rtol=1e-12)
