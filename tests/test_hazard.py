"""The hazard (simulator.hazard): the pd_12m calibration against closed forms, the AR(1) factor and
its macro shift, the Vasicek transform."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.model import hazard

ROLLS = [0.45, 0.70, 0.85, 0.90, 0.92, 0.95]


def test_hazard_round_trip_and_monotone():
    h = np.array([1e-6, 1e-4, 0.003, 0.02, 0.1, 0.4, 0.9])
    pd_12m = hazard.pd12_from_hazard(h, ROLLS)
    assert np.all(np.diff(pd_12m) > 0)
    assert np.allclose(hazard.hazard_from_pd12(pd_12m, ROLLS), h, rtol=1e-6)
    assert hazard.hazard_from_pd12(np.array([0.0]), ROLLS)[0] == 0.0


def test_pd_12m_by_hand_for_one_month_of_cures():
    """Two months of misses cannot reach M4; with cures impossible the worked example holds."""
    h = 0.01
    assert hazard.pd12_from_hazard(np.array([h]), [1.0] * 6)[0] == pytest.approx(1 - (1 - h) ** 9, rel=1e-12)
    # Roll rate from M3 zero: 90+ is never reached.
    assert hazard.pd12_from_hazard(np.array([h]), [1.0, 1.0, 0.0, 1.0, 1.0, 1.0])[0] == 0.0


def test_factor_is_stationary_ar1():
    phi = 0.6
    z = hazard.factor_paths(hazard.factor_innovations(3, 20_000, 6), phi, [])
    se = 1 / math.sqrt(20_000)
    assert np.all(np.abs(z.mean(axis=0)) < 5 * se)
    assert np.all(np.abs(z.std(axis=0) - 1) < 5 * se)
    lag1 = [np.corrcoef(z[:, t], z[:, t + 1])[0, 1] for t in range(5)]
    assert np.all(np.abs(np.array(lag1) - phi) < 5 * (1 - phi**2) * se)


def test_macro_shift_moves_the_factor():
    base = hazard.factor_paths(hazard.factor_innovations(1, 10, 4), 0.5, [])
    shifted = hazard.factor_paths(hazard.factor_innovations(1, 10, 4), 0.5, [-1.0, -2.0])
    assert np.allclose(shifted - base, np.array([-1.0, -2.0, 0.0, 0.0]))


def test_vasicek_transform_neutral_mean():
    """E[h(Z)] over Z ~ N(0, 1) equals the unconditional h."""
    z = np.linspace(-9, 9, 20001)
    w = np.exp(-z**2 / 2) / math.sqrt(2 * math.pi) * (z[1] - z[0])
    assert np.sum(hazard.conditional(0.02, 0.15, z) * w) == pytest.approx(0.02, rel=1e-6)
    assert hazard.conditional(0.02, 0.0, np.array([3.0]))[0] == pytest.approx(0.02)
    assert hazard.conditional(1.0, 0.1, np.array([3.0]))[0] == 1.0
