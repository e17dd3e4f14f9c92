"""The logistic scorecard: pd_12m from features, score scaling (docs/model.md section 2), score bands,
and a product's pd_12m from the borrower's."""
from __future__ import annotations

import functools
import math

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import expit

from . import rng
from ..config.schema import Applicants, Scorecard

_HERMITE_NODES = 64   # Gauss-Hermite nodes of the model error's centring


def scaling(card: Scorecard) -> tuple[float, float]:
    """(factor, offset): factor = pdo / ln 2, offset = base_score - factor * ln(base_odds)."""
    factor = card.pdo / math.log(2.0)
    return factor, card.base_score - factor * math.log(card.base_odds)


def score_from_pd(pd_12m: np.ndarray, card: Scorecard) -> np.ndarray:
    """score = offset + factor * ln((1 - pd) / pd); odds are good:bad."""
    factor, offset = scaling(card)
    with np.errstate(divide="ignore"):
        return offset + factor * (np.log1p(-pd_12m) - np.log(pd_12m))


def pd_from_score(score: np.ndarray, card: Scorecard) -> np.ndarray:
    """The inverse of `score_from_pd`."""
    factor, offset = scaling(card)
    return expit(-(np.asarray(score, dtype=np.float64) - offset) / factor)


SCORECARD_TERMS = ("income", "dti", "age", "tenure", "past_delinquencies")   # coefficient coef_<term> each


def scorecard_terms(features, card: Scorecard) -> dict[str, np.ndarray]:
    """The features as the scorecard weighs them: log income over its reference, debt-to-income,
    decades of age from 30, log(1 + tenure in years), past delinquencies."""
    return {"income": np.log(np.asarray(features["income"], dtype=np.float64) / card.income_reference),
            "dti": np.asarray(features["dti"], dtype=np.float64),
            "age": (np.asarray(features["age"], dtype=np.float64) - 30.0) / 10.0,
            "tenure": np.log1p(np.asarray(features["tenure"], dtype=np.float64)),
            "past_delinquencies": np.asarray(features["past_delinquencies"], dtype=np.float64)}


def log_odds(features, card: Scorecard, population: Applicants | None = None) -> np.ndarray:
    """The scorecard's log-odds of going bad (90+ within 12 months)."""
    terms = scorecard_terms(features, card)
    return card.intercept + sum(getattr(card, f"coef_{name}") * terms[name] for name in SCORECARD_TERMS)


def centring_shift(log_odds: np.ndarray, sd: float) -> np.ndarray:
    """The shift m of the log-odds with E[expit(lo + m + sd Z)] = expit(lo), Z ~ N(0, 1): a model
    error that leaves the scorecard calibrated on average at every score (Gauss-Hermite quadrature
    on a grid of log-odds, bisection, linear interpolation)."""
    return np.interp(log_odds, *_centring_table(sd))


@functools.lru_cache(maxsize=64)
def _centring_table(sd: float) -> tuple[np.ndarray, np.ndarray]:
    """(log-odds grid, centring shift at each): solved once per sd, not once per chunk of applicants."""
    grid = np.linspace(-25.0, 15.0, 801)
    nodes, weights = hermegauss(_HERMITE_NODES)
    weights = weights / weights.sum()
    target = expit(grid)
    low = np.full(grid.shape, -(sd * sd + 5.0))
    high = np.full(grid.shape, sd * sd + 5.0)
    for _ in range(60):
        mid = 0.5 * (low + high)
        mean = expit(grid[:, None] + mid[:, None] + sd * nodes[None, :]) @ weights
        low, high = np.where(mean < target, mid, low), np.where(mean < target, high, mid)
    shift = 0.5 * (low + high)
    grid.flags.writeable = shift.flags.writeable = False     # cached: read-only
    return grid, shift


def score_applicants(features: dict[str, np.ndarray], card: Scorecard, population: Applicants,
                     seed: int) -> dict[str, np.ndarray]:
    """Scored pd_12m, score, the true pd_12m, and `hidden`, the part of the risk the score does not
    see in standard deviations (0 without model error): the true log-odds are the scored ones plus
    model_error_sd x hidden, shifted so that the true pd averages the scored pd at every score."""
    lo = log_odds(features, card, population)
    scored_pd = expit(lo)
    true_pd = scored_pd
    hidden = np.zeros_like(lo)
    if card.model_error_sd > 0:
        hidden = rng.normals(seed, 0, features["id"], 0, rng.MODEL_ERROR)
        true_pd = expit(lo + centring_shift(lo, card.model_error_sd) + card.model_error_sd * hidden)
    return {"pd_12m": scored_pd, "score": score_from_pd(scored_pd, card), "true_pd_12m": true_pd, "hidden": hidden}


def product_pd(pd_12m: np.ndarray, multiplier: float) -> np.ndarray:
    """A product's pd_12m: the borrower's odds times the product's risk multiplier."""
    odds = pd_12m / (1.0 - pd_12m) * multiplier
    return np.where(pd_12m >= 1.0, 1.0, odds / (1.0 + odds))


def score_band(score: np.ndarray, bands: list[float]) -> np.ndarray:
    """Band index 0 .. len(bands): band i holds bands[i-1] <= score < bands[i]."""
    return np.searchsorted(np.asarray(bands), score, side="right").astype(np.int8)


def band_labels(bands: list[float]) -> list[str]:
    """Readable labels of the score bands, e.g. '<540', '540-580', '>=700'."""
    cuts = [f"{b:g}" for b in bands]
    return [f"<{cuts[0]}"] + [f"{a}-{b}" for a, b in zip(cuts, cuts[1:])] + [f">={cuts[-1]}"]
