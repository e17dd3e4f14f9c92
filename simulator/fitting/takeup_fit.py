"""Take-up refitted from the offers a lender made (`simulator calibrate --offers`; docs/calibration.md,
"Take-up").

An offers table has one row per approved application: product, score, all-in APR offered, whether
it was taken, and optionally the acquisition channel (`segment`). The scenario's take-up is a
logistic curve in price (policy.takeup_probability):

    logit p = logit(takeup_base) - price_sensitivity x s x channel x (APR - takeup_reference_apr),
    s = max(0, 1 + sensitivity_score_slope x (score - base_score) / pdo),

so with the base's reference APR, score slope and channel factors held, a logistic regression of
`taken` on x = -s x channel x (APR - reference) has intercept logit(takeup_base) and slope
price_sensitivity.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

from .calibration import Estimate, binomial
from ..codes import PRODUCTS
from ..config.schema import Policy, ScenarioError, Scorecard, Segment
from ..model.book import Checker
from .scorecard_fit import MIN_BADS, equal_count_bins, logistic
from ..tape.reader import read_table, where

COLUMNS = ("product", "score", "apr", "taken")
APR_BINS = 12    # equal-count APR bins of the fit report's take-up figure


def read(path: Path) -> pd.DataFrame:
    """An offers table (Parquet or CSV) with COLUMNS (and optionally `segment`), checked by column and row."""
    path = Path(path)
    offers = read_table(path, "an offers table")
    missing = [c for c in COLUMNS if c not in offers.columns]
    if missing:
        raise ScenarioError(str(path), f"column {missing[0]}", f"expected the columns {', '.join(COLUMNS)}, found no "
                                                               f"{missing[0]}")
    checks = {"product": (offers["product"].astype(str).isin(PRODUCTS), f"one of {', '.join(PRODUCTS)}"),
              "score": (np.isfinite(pd.to_numeric(offers["score"], errors="coerce")), "a number"),
              "apr": (pd.to_numeric(offers["apr"], errors="coerce").between(0.0, 5.0), "an APR from 0 to 5 (a fraction)"),
              "taken": (offers["taken"].astype(str).str.lower().isin(["true", "false", "1", "0"]), "true or false")}
    check = Checker(path, offers)
    for column, (good, expected) in checks.items():
        check.fail(column, ~good.to_numpy(), expected)
    return offers.assign(score=pd.to_numeric(offers["score"]), apr=pd.to_numeric(offers["apr"]),
                         taken=offers["taken"].astype(str).str.lower().isin(["true", "1"]))


def price_term(offers: pd.DataFrame, policy: Policy, card: Scorecard, segments: dict[str, Segment]) -> np.ndarray:
    """x = -s x channel x (APR - takeup_reference_apr), the regressor whose coefficient is price_sensitivity,
    with the base's `policy` and scorecard `card` (channel: the price_sensitivity of the offer's segment
    among the base's applicants' `segments`; 1 where the table has none or an unknown one)."""
    s = np.maximum(0.0, 1.0 + policy.sensitivity_score_slope * (offers["score"].to_numpy() - card.base_score)
                   / card.pdo)
    channel = np.ones(len(offers))
    if "segment" in offers:
        factors = {name: seg.price_sensitivity for name, seg in segments.items()}
        channel = offers["segment"].astype(str).map(factors).fillna(1.0).to_numpy(dtype=np.float64)
    return -s * channel * (offers["apr"].to_numpy() - policy.takeup_reference_apr)


def refit(offers: pd.DataFrame, policy: Policy, card: Scorecard, segments: dict[str, Segment]) -> dict:
    """The take-up rate by product (binomial), and `keys`: policy.takeup_base and policy.price_sensitivity
    (each an Estimate; takeup_base's standard error by the delta method), or none, with a `note` saying
    why and that the base's are kept, with too few offers taken or not taken, offers taken and not
    taken that do not overlap in price (no finite estimate), or a fit that does not converge; `bins`: by APR (equal-count bins), the share taken and the fit's mean. A fit outside the
    scenario's bounds (take-up rising with the APR) is a ScenarioError naming the offers' file."""
    taken = offers["taken"].to_numpy(dtype=bool)
    out = {"n": len(offers), "by_product": {}, "keys": {}, "note": ""}
    for name in PRODUCTS:
        mine = offers["product"].astype(str).to_numpy() == name
        if mine.any():
            out["by_product"][name] = binomial(int(taken[mine].sum()), int(mine.sum()))
    kept = "the base's policy.takeup_base and price_sensitivity are kept"
    if min(int(taken.sum()), int((~taken).sum())) < MIN_BADS:
        out["note"] = (f"take-up: not refitted ({int(taken.sum()):,} offers taken and {int((~taken).sum()):,} not; at "
                       f"least {MIN_BADS} of each are needed): {kept}")
        return out
    x = price_term(offers, policy, card, segments)
    if x[taken].min() >= x[~taken].max() or x[taken].max() <= x[~taken].min():
        # The offers taken and not taken do not overlap in price: no finite maximum-likelihood estimate
        # exists (Albert and Anderson 1984), though a solver may stop at a large one.
        out["note"] = (f"take-up: not refitted (the offers taken and not taken do not overlap in price, so the "
                       f"fit has no finite estimate): {kept}")
        return out
    fit = logistic(taken, {"price_sensitivity": x}, np.zeros(len(offers)))
    if fit is None:
        out["note"] = f"take-up: not refitted (the logistic fit of taken on price does not converge): {kept}"
        return out
    c0, slope = fit["intercept"], fit["price_sensitivity"]
    p = float(expit(c0.value))
    if slope.value < 0:
        raise ScenarioError(*where(offers, "taken"), f"expected offers taken less often as their APR rises "
                            f"(policy.price_sensitivity >= 0), found more often: a price sensitivity of "
                            f"{slope.value:.4f} (se {slope.se:.4f}, {len(offers):,} offers)")
    if not 0.0 < round(p, 6) < 1.0:
        raise ScenarioError(*where(offers, "taken"), f"expected a take-up between 0 and 1 at the base's "
                            f"policy.takeup_reference_apr {policy.takeup_reference_apr:g}, found {p:.7f} "
                            f"(extrapolated from the offers' APRs, {offers['apr'].min():g} to {offers['apr'].max():g})")
    out["keys"] = {"takeup_base": Estimate(p, p * (1.0 - p) * c0.se, c0.n), "price_sensitivity": slope}
    fitted = expit(c0.value + slope.value * x)
    apr = offers["apr"].to_numpy(dtype=np.float64)
    bins = pd.DataFrame({"bin": equal_count_bins(apr, APR_BINS), "apr": apr, "taken": taken, "fitted": fitted})
    out["bins"] = bins.groupby("bin").agg(apr=("apr", "mean"), offers=("taken", "size"), taken=("taken", "mean"),
                                          fitted=("fitted", "mean"))
    return out
