"""The scorecard (simulator.scoring): the score scaling, bands, log-odds, and the model error that
keeps the scored pd calibrated."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit

from simulator.model import scoring
from simulator.config.loader import load_scenario


def scenario(scenario_file, *overrides):
    return load_scenario(scenario_file(), list(overrides)).scenario


def test_score_scaling_convention(scenario_file):
    card = scenario(scenario_file).scorecard
    pd_base = 1 / (1 + card.base_odds)
    assert scoring.score_from_pd(np.array([pd_base]), card)[0] == pytest.approx(card.base_score)
    odds2 = 2 * card.base_odds
    assert scoring.score_from_pd(np.array([1 / (1 + odds2)]), card)[0] == pytest.approx(card.base_score + card.pdo)
    pd_12m = np.array([0.001, 0.05, 0.5])
    assert np.allclose(scoring.pd_from_score(scoring.score_from_pd(pd_12m, card), card), pd_12m)


def test_score_bands():
    assert list(scoring.score_band(np.array([100, 540, 579.9, 580, 800]), [540, 580])) == [0, 1, 1, 2, 2]
    assert scoring.band_labels([540, 580]) == ["<540", "540-580", ">=580"]


def test_scorecard_log_odds(scenario_file):
    sc = scenario(scenario_file)
    card, pop = sc.scorecard, sc.applicants
    feats = {"id": np.arange(1), "income": np.array([card.income_reference]), "dti": np.array([0.0]),
             "age": np.array([30.0]), "tenure": np.array([0.0]), "past_delinquencies": np.array([0])}
    out = scoring.score_applicants(feats, card, pop, seed=1)
    assert out["pd_12m"][0] == pytest.approx(expit(card.intercept))
    assert np.array_equal(out["pd_12m"], out["true_pd_12m"])


def test_model_error_keeps_the_scorecard_calibrated(scenario_file):
    """The true pd averages the scored pd at every score: over 100,000 applicants, and in each
    score decile, the mean true pd is the mean scored pd within 5 standard errors."""
    from simulator.model import population

    sc = scenario(scenario_file, "applicants.monthly_volume=100000", "applicants.origination_months=1",
                  "scorecard.model_error_sd=0.6")
    apps = population.applicants(sc)
    scores = scoring.score_applicants(apps, sc.scorecard, sc.applicants, sc.run.seed)
    gap = scores["true_pd_12m"] - scores["pd_12m"]
    deciles = np.searchsorted(np.quantile(scores["score"], np.linspace(0.1, 0.9, 9)), scores["score"])
    for d in range(10):
        g = gap[deciles == d]
        assert abs(g.mean()) <= 5 * g.std(ddof=1) / math.sqrt(g.size), d
    assert np.abs(gap).mean() > 0.002                       # the error is there: only its mean is zero
