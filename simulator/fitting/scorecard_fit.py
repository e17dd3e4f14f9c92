"""The scorecard refitted from a loan tape (`simulator calibrate`; docs/calibration.md, "The
scorecard").

The bad flag (90+ or charged off within 12 months on book) of the accounts seen 12 months on book
(`calibration.seasoned`) is regressed by logistic regression (statsmodels' binomial GLM), with each
account's product risk multiplier of the base scenario as an offset:

- recalibration, where the tape has the score: log-odds = a + b x the base scorecard's log-odds of
  the score (the scaling convention in force: score = offset + factor x (-log-odds));
- the scorecard itself, where the tape has the application features: log-odds = intercept + the
  sum of coef x the scorecard's term of each feature (`scoring.scorecard_terms`).

Realised bad rates sit below pd_12m (prepayment, maturity, lines owing nothing: docs/model.md
section 4), so a fit of the tape is not yet the scorecard. The same fits are made on the tape's
accounts simulated under the base scenario (`simulated`), and each of the base's figures moves by
the tape's fit minus the simulated one (one step of indirect inference): a base that made the tape
stays where it is, a wrong one moves to the truth. The fit report shows discrimination (AUC, Gini,
KS) and the realised bad rate by band and by score against the base's simulation and the fits.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from . import backtesting, calibration
from ..engine import simulation
from ..model import scoring
from .calibration import Estimate
from ..codes import CHARGED_OFF_STATUS, DPD90, N_STATES, PD_MONTHS
from ..config.schema import Products, Scenario, ScenarioError, Scorecard

FEATURE_COLUMNS = scoring.SCORECARD_TERMS
MIN_BADS = 10        # fewer bad (or good) accounts than this: nothing is fitted
SCORE_BINS = 20      # score bins of the figure of score against the realised bad rate
SIMULATED_PATHS = 10  # replays of the tape's accounts under the base, for the base's own fits


def multiplier_offset(accounts: pd.DataFrame, products: Products) -> np.ndarray:
    """log of each account's product risk multiplier in the base scenario's `products` (a product's
    odds are the borrower's times it)."""
    return np.log(backtesting.risk_multipliers(accounts, products))


def score_log_odds(score: np.ndarray, card: Scorecard) -> np.ndarray:
    """The base scorecard's log-odds of a score: (offset - score) / factor."""
    factor, offset = scoring.scaling(card)
    return (offset - np.asarray(score, dtype=np.float64)) / factor


def logistic(bad: np.ndarray, columns: dict[str, np.ndarray], offset: np.ndarray) -> dict[str, Estimate] | None:
    """Maximum-likelihood logistic regression of `bad` on an intercept and `columns` with `offset`:
    each coefficient with its standard error (observed information) and the observations; None
    when the fit does not converge or the data separate perfectly."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    design = np.column_stack([np.ones(len(bad))] + list(columns.values()))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PerfectSeparationWarning)
            fit = sm.GLM(bad.astype(np.float64), design, family=sm.families.Binomial(), offset=offset).fit()
    except (PerfectSeparationError, PerfectSeparationWarning, np.linalg.LinAlgError, ValueError):
        return None
    if not fit.converged or not np.all(np.isfinite(fit.bse)):
        return None
    names = ["intercept"] + list(columns)
    return {name: Estimate(float(v), float(se), len(bad)) for name, v, se in zip(names, fit.params, fit.bse)}


def equal_count_bins(values: np.ndarray, bins: int) -> np.ndarray:
    """Each value's bin (0 ..) among `bins` bins with about equal counts (quantile edges, ties merged)."""
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, max(len(edges) - 2, 0))


def discrimination(bad: np.ndarray, risk: np.ndarray) -> dict[str, float]:
    """AUC (the chance a bad account's risk is above a good one's, ties half: Mann-Whitney U over
    n_bad x n_good), Gini = 2 AUC - 1, and KS (the largest gap between the bad and good accounts'
    distribution functions of the risk)."""
    bad = np.asarray(bad, dtype=bool)
    worse, better = risk[bad], risk[~bad]
    auc = float(stats.mannwhitneyu(worse, better).statistic / (len(worse) * len(better)))
    return {"auc": auc, "gini": 2.0 * auc - 1.0, "ks": float(stats.ks_2samp(worse, better).statistic)}


def simulated(rows: pd.DataFrame, tape_path: Path, base_path: Path, accounts: pd.DataFrame,
              paths: int = SIMULATED_PATHS) -> pd.DataFrame:
    """The seasoned `accounts` of the tape (`rows`) replayed through the base scenario (as a backtest
    replays them, `backtesting.replay_accounts`: with the pd_12m the base's scorecard gives them)
    `paths` times, each with its own seed: one row per account and path with the simulated `bad`
    flag (90+ or charged off within 12 months on book)."""
    first, _ = backtesting.tape_months(rows)
    chosen = rows[rows["account_id"].isin(accounts["account_id"])]
    last_start = int(accounts["month"].max()) - first + 1
    horizon = last_start + PD_MONTHS
    sc = backtesting.backtest_scenario(base_path, [], horizon, 1).scenario
    replayed = backtesting.replay_accounts(chosen, tape_path, sc, backtesting.fraud_share(sc))
    start = replayed.start_month.astype(np.int64) - 1
    window = start[:, None] + np.arange(PD_MONTHS + 1)[None, :]
    bad_codes = np.array(list(range(DPD90, N_STATES)) + [CHARGED_OFF_STATUS])
    order = pd.Series(np.arange(len(replayed.account_id)), index=replayed.account_id)[accounts["account_id"]]
    out = []
    for k in range(paths):
        run = sc.model_copy(update={"run": sc.run.model_copy(update={"seed": sc.run.seed + 1 + k})})
        bad = np.isin(simulation.run_accounts(run, replayed, tape=True)["tape"].status(window), bad_codes).any(axis=1)
        out.append(accounts.assign(bad=bad[order.to_numpy()], path=k))
    return pd.concat(out, ignore_index=True)


def fits(accounts: pd.DataFrame, products: Products, card: Scorecard) -> dict:
    """The auxiliary logistic regressions of `accounts`' bad flags (with the product offset of the
    base's `products`): `recalibration` on the base scorecard's (`card`) log-odds of the score (where
    the tape has the score), `features` on the scorecard's terms (where it has the features); each
    None where it cannot be fitted; and `predicted`, each fit's predicted bad rate by account."""
    out = {"recalibration": None, "features": None, "predicted": {}}
    bad = accounts["bad"].to_numpy(dtype=bool)
    if min(int(bad.sum()), int((~bad).sum())) < MIN_BADS:
        return out
    offset = multiplier_offset(accounts, products)
    if backtesting.has_score(accounts):
        lo = score_log_odds(accounts["score"].to_numpy(), card)
        out["recalibration"] = fit = logistic(bad, {"slope": lo}, offset)
        if fit is not None:
            out["predicted"]["recalibration"] = expit(fit["intercept"].value + fit["slope"].value * lo + offset)
    if backtesting.has_features(accounts):
        terms = scoring.scorecard_terms({name: accounts[name].to_numpy() for name in FEATURE_COLUMNS}, card)
        out["features"] = fit = logistic(bad, terms, offset)
        if fit is not None:
            lo = fit["intercept"].value + sum(fit[name].value * terms[name] for name in FEATURE_COLUMNS)
            out["predicted"]["features"] = expit(lo + offset)
    return out


def _corrected(base_value: float, tape: Estimate, simulated: Estimate) -> Estimate:
    """The base's figure moved by what the tape's fit shows beyond the base's own simulated fit."""
    return Estimate(base_value + tape.value - simulated.value, math.hypot(tape.se, simulated.se), tape.n)


def refit(observed: pd.DataFrame, simulated_accounts: pd.DataFrame, products: Products, card: Scorecard) -> dict:
    """The scorecard refitted to the tape's seasoned accounts (`observed`), by the same fits on the
    same accounts simulated under the base (`simulated_accounts`; the base's `products` and scorecard
    `card`): each of the base's figures moved by the tape's fit minus the simulated one (prepayment,
    maturity and lines with nothing owed keep realised bad rates below pd_12m; the base's own
    simulation carries that). `keys`:
    scorecard.<name> -> Estimate, from the features where the tape has them, else from the
    recalibration (intercept a + b x intercept, coefficients b x each, with a and b corrected so);
    also the fits, the discrimination of the base's score and of each fit, the bad rates by band
    (tape, base simulated, each fit) and the figure's score bins."""
    tape, sim = fits(observed, products, card), fits(simulated_accounts, products, card)
    out = {"n": len(observed), "bads": int(observed["bad"].sum()), "tape": tape, "simulated": sim, "keys": {},
           "recalibrated": None, "discrimination": {}, "by_band": None, "bins": None}
    if tape["recalibration"] is not None and sim["recalibration"] is not None:
        a = _corrected(0.0, tape["recalibration"]["intercept"], sim["recalibration"]["intercept"])
        b = _corrected(1.0, tape["recalibration"]["slope"], sim["recalibration"]["slope"])
        out["recalibrated"] = {"intercept": a, "slope": b}
        out["keys"] = {"intercept": Estimate(a.value + b.value * card.intercept, float("nan"), a.n),
                       **{f"coef_{name}": Estimate(b.value * getattr(card, f"coef_{name}"), float("nan"), a.n)
                          for name in FEATURE_COLUMNS}}
    if tape["features"] is not None and sim["features"] is not None:
        out["keys"] = {"intercept": _corrected(card.intercept, tape["features"]["intercept"],
                                               sim["features"]["intercept"]),
                       **{f"coef_{name}": _corrected(getattr(card, f"coef_{name}"), tape["features"][name],
                                                     sim["features"][name]) for name in FEATURE_COLUMNS}}
    bad = observed["bad"].to_numpy(dtype=bool)
    risk = dict(tape["predicted"])
    if backtesting.has_score(observed):
        risk = {"base score": -observed["score"].to_numpy(dtype=np.float64)} | risk
    if min(int(bad.sum()), int((~bad).sum())) >= MIN_BADS:
        out["discrimination"] = {model: discrimination(bad, r) for model, r in risk.items()}
    base_rate = simulated_accounts.groupby("account_id")["bad"].mean()
    rates = pd.DataFrame({"band": observed["score_band"].astype(str).to_numpy(), "tape": bad,
                          "base (simulated)": base_rate.reindex(observed["account_id"]).to_numpy(),
                          **{f"fit on {m}": p for m, p in tape["predicted"].items()}})
    if "score" in observed:
        rates["score"] = observed["score"].to_numpy(dtype=np.float64)
    out["by_band"] = rates.drop(columns="score", errors="ignore").groupby("band", sort=False).agg(
        accounts=("tape", "size"), **{c: (c, "mean") for c in rates.columns if c not in ("band", "score")})
    if "score" in rates and np.isfinite(rates["score"]).all() and len(rates):
        rates["bin"] = equal_count_bins(rates["score"].to_numpy(), SCORE_BINS)
        out["bins"] = rates.drop(columns="band").groupby("bin").agg(
            accounts=("tape", "size"), **{c: (c, "mean") for c in rates.columns if c not in ("band", "bin")})
    return out


def from_tape(rows: pd.DataFrame, tape_path: Path, base_path: Path, base: Scenario) -> tuple[dict | None, str]:
    """The scorecard refitted from a tape (`refit`), or None and why not: the tape has neither the
    score nor the features, too few bad or good seasoned accounts, or lacks a term its accounts are
    replayed with. The module's orchestrator: it replays the tape's accounts under the base scenario
    (`base`, loaded from `base_path`) and reads its products and scorecard."""
    accounts = calibration.seasoned(rows)
    has = "score" in accounts or all(name in accounts for name in FEATURE_COLUMNS)
    if not has:
        return None, "scorecard: not refitted (the tape has neither a score column nor the application features)"
    bads = int(accounts["bad"].sum())
    if min(bads, len(accounts) - bads) < MIN_BADS:
        return None, (f"scorecard: not refitted ({bads:,} bad and {len(accounts) - bads:,} good accounts seen 12 "
                      f"months on book; at least {MIN_BADS} of each are needed)")
    try:
        simulated_accounts = simulated(rows, tape_path, base_path, accounts)
    except ScenarioError as exc:
        return None, f"scorecard: not refitted (its accounts cannot be replayed under the base: {exc})"
    return refit(accounts, simulated_accounts, base.products, base.scorecard), ""
