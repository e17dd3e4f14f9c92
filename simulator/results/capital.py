"""IRB capital's exposure at default of the book on the capital date (docs/model.md section 9):
the performing balance (90+ is in default) and, for lines, the credit conversion factor times the
undrawn limit; the weighted mean over paths."""
from __future__ import annotations

import numpy as np

from ..codes import BALANCE, DPD90, LINE, PRODUCT_KIND
from .variables import CENTS


def irb_exposure(stocks: np.ndarray, opening: np.ndarray, line_limits: np.ndarray, month: int, line_ccf: float,
                 path_weight: np.ndarray) -> np.ndarray:
    """The exposure [product, band] in yuan at the end of `month` (0: the opening book), from the
    kernel's `stocks` [path, month, product, band, state, field] and `line_limits` [path, month, product,
    band] (cents) or the `opening` stocks; the mean over paths with their `path_weight`."""
    n_paths = stocks.shape[0]
    if month == 0:
        performing = np.broadcast_to(opening[None, :, :, :DPD90, BALANCE].sum(axis=-1), (n_paths,) + opening.shape[:2])
        undrawn = np.zeros((n_paths,) + opening.shape[:2])
    else:
        performing = stocks[:, month - 1, :, :, :DPD90, BALANCE].sum(axis=-1)
        undrawn = np.maximum(0, line_limits[:, month - 1] - performing)
    lines = PRODUCT_KIND == LINE
    ead = performing.astype(np.float64)
    ead[:, lines] += line_ccf * undrawn[:, lines]
    return (ead.mean(axis=0) if np.all(path_weight == 1.0) else
            (path_weight[:, None, None] * ead).sum(axis=0) / path_weight.sum()) / CENTS
