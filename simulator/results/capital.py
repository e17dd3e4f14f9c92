"""IRB capital's exposure at default of the book on the capital date (docs/model.md section 9):
the performing balance (90+ is in default) and, for lines, their loan-equivalent factor (the one
their drawdown before default and their ECL use) times the undrawn limit; the weighted mean over paths."""
from __future__ import annotations

import numpy as np

from ..codes import BALANCE, DPD90, LINE, PRODUCT_KIND
from .variables import CENTS


def irb_exposure(stocks: np.ndarray, opening: np.ndarray, line_limits: np.ndarray, month: int,
                 loan_equivalent: np.ndarray, path_weight: np.ndarray) -> np.ndarray:
    """The exposure [product, band] in yuan at the end of `month` (0: the opening book), from the
    kernel's `stocks` [path, month, product, band, state, field] and `line_limits` [path, month, product,
    band] (cents) or the `opening` stocks, with the lines' `loan_equivalent` factor by product code;
    the mean over paths with their `path_weight`."""
    n_paths = stocks.shape[0]
    if month == 0:
        performing = np.broadcast_to(opening[None, :, :, :DPD90, BALANCE].sum(axis=-1), (n_paths,) + opening.shape[:2])
        undrawn = np.zeros((n_paths,) + opening.shape[:2])
    else:
        performing = stocks[:, month - 1, :, :, :DPD90, BALANCE].sum(axis=-1)
        undrawn = np.maximum(0, line_limits[:, month - 1] - performing)
    lines = PRODUCT_KIND == LINE
    ead = performing.astype(np.float64)
    ead[:, lines] += loan_equivalent[lines, None] * undrawn[:, lines]
    return (ead.mean(axis=0) if np.all(path_weight == 1.0) else
            (path_weight[:, None, None] * ead).sum(axis=0) / path_weight.sum()) / CENTS


def irb_pd(stocks: np.ndarray, opening: np.ndarray, month: int, state_pd: np.ndarray, pool_pd: np.ndarray,
           path_weight: np.ndarray) -> np.ndarray:
    """The PD [product, band] of the IRB pools on the capital date: the one-year PD of each performing
    state (`state_pd` [product, band, current .. M3], risk.state_pds) weighted by the pool's balance in
    that state at the end of `month` (0: the `opening` stocks), mean over paths with their
    `path_weight`; `pool_pd` (at origination) for a pool with no performing balance then."""
    if month == 0:
        balance = opening[:, :, :DPD90, BALANCE].astype(np.float64)
    else:
        by_path = stocks[:, month - 1, :, :, :DPD90, BALANCE].astype(np.float64)
        balance = (path_weight[:, None, None, None] * by_path).sum(axis=0) / path_weight.sum()
    total = balance.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (balance * state_pd).sum(axis=-1) / total, pool_pd)
