"""The scorecard refit (simulator.scorecard_fit) against hand counts and closed forms: discrimination
and the logistic regression (the refit of a run's tape: test_calibration.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.fitting import scorecard_fit


def test_discrimination_is_a_hand_count():
    """AUC is the share of (bad, good) pairs ordered right, ties half; KS the largest gap of the two
    distribution functions; Gini = 2 AUC - 1."""
    bad = np.array([1, 1, 0, 0, 0, 1, 0], dtype=bool)
    risk = np.array([0.9, 0.4, 0.4, 0.1, 0.3, 0.7, 0.8])
    pairs = [(r1 > r0) + 0.5 * (r1 == r0) for r1 in risk[bad] for r0 in risk[~bad]]
    grid = np.unique(risk)
    gap = max(abs(np.mean(risk[bad] <= x) - np.mean(risk[~bad] <= x)) for x in grid)
    found = scorecard_fit.discrimination(bad, risk)
    assert found["auc"] == pytest.approx(np.mean(pairs))
    assert found["gini"] == pytest.approx(2 * np.mean(pairs) - 1) and found["ks"] == pytest.approx(gap)


def test_logistic_regression_of_a_binary_covariate_is_the_closed_form():
    """With one 0/1 covariate and an offset c the maximum-likelihood fit is closed form: intercept
    logit(p0) - c, slope logit(p1) - logit(p0), standard errors sqrt(1 / (n p (1 - p))) (the
    slope's the two groups' in quadrature)."""
    x = np.repeat([0.0, 1.0], [400, 600])
    bad = np.concatenate([np.arange(400) < 40, np.arange(600) < 150])
    fit = scorecard_fit.logistic(bad, {"x": x}, np.full(1000, 0.3))
    logit = lambda p: math.log(p / (1 - p))   # noqa: E731
    assert fit["intercept"].value == pytest.approx(logit(0.1) - 0.3, abs=1e-8)
    assert fit["x"].value == pytest.approx(logit(0.25) - logit(0.1), abs=1e-8)
    se0, se1 = math.sqrt(1 / (400 * 0.1 * 0.9)), math.sqrt(1 / (600 * 0.25 * 0.75))
    assert fit["intercept"].se == pytest.approx(se0, rel=1e-6)
    assert fit["x"].se == pytest.approx(math.hypot(se0, se1), rel=1e-6)
