"""An existing book of accounts read from CSV or Parquet (docs/model.md section 8), validated row by row
with errors that name the file, the row and the column."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .codes import METHOD_CODES, METHODS, PRODUCTS, STATES
from .config import Scenario, ScenarioError
from .scoring import pd_from_score

COLUMNS = ("product", "principal", "apr", "term_months", "method", "months_on_book", "state", "pd_12m")
PRODUCTS_IN_BOOKS = ("jiebei",)


def _read_frame(path: Path) -> pd.DataFrame:
    file = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        found = repr(path.suffix) if path.suffix else "no extension"
        raise ScenarioError(file, "-", f"expected a .csv, .parquet or .pq file, found {found}")
    if not path.is_file():
        raise ScenarioError(file, "-", "file not found")
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        return pd.read_parquet(path)
    except (OSError, ValueError, ImportError) as exc:
        raise ScenarioError(file, "-", f"cannot read the file ({exc.__class__.__name__}: {exc})") from None


class _Checker:
    """Column validation that raises a ScenarioError naming the file, the 1-based data row and the column."""

    def __init__(self, path: Path, frame: pd.DataFrame):
        self.file, self.frame = str(path), frame

    def column(self, name: str) -> pd.Series:
        if name not in self.frame.columns:
            raise ScenarioError(self.file, f"column {name}", "missing")
        return self.frame[name]

    def fail(self, name: str, bad: np.ndarray, expected: str) -> None:
        """Raise for the first row where `bad` holds, if any."""
        rows = np.flatnonzero(bad)
        if rows.size:
            r = int(rows[0])
            value = self.frame[name].iloc[r]
            value = value.item() if isinstance(value, np.generic) else value
            raise ScenarioError(self.file, f"row {r + 1}: column {name}", f"expected {expected}, found {value!r}")

    def number(self, name: str, expected: str) -> np.ndarray:
        """The column as finite float64 (non-numbers and non-finite values are errors)."""
        col = self.column(name)
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        self.fail(name, ~np.isfinite(values), expected)
        return values

    def choice(self, name: str, names: tuple[str, ...], expected: str) -> np.ndarray:
        """Index of each value in `names` (values stripped of surrounding spaces)."""
        col = self.column(name).astype(str).str.strip()
        codes = col.map({v: i for i, v in enumerate(names)})
        self.fail(name, codes.isna().to_numpy(), expected)
        return codes.to_numpy(dtype=np.int64)


def read_book(path: Path, scenario: Scenario) -> dict[str, np.ndarray]:
    """Existing accounts from CSV or Parquet (columns in docs/model.md section 8), validated row by row."""
    path = Path(path)
    frame = _read_frame(path)
    check = _Checker(path, frame)
    for name in COLUMNS:
        if name == "pd_12m" and name not in frame.columns and "score" in frame.columns:
            continue
        check.column(name)

    product = check.choice("product", PRODUCTS, f"one of {', '.join(PRODUCTS)}")
    book_ok = np.isin(product, [PRODUCTS.index(p) for p in PRODUCTS_IN_BOOKS])
    check.fail("product", ~book_ok, f"{' or '.join(PRODUCTS_IN_BOOKS)} (this version models jiebei only in books)")

    principal = check.number("principal", "a number > 0")
    check.fail("principal", principal <= 0, "a number > 0")
    apr = check.number("apr", "a number >= 0")
    check.fail("apr", apr < 0, "a number >= 0")
    term_months = check.number("term_months", "an integer >= 1")
    check.fail("term_months", (term_months != np.floor(term_months)) | (term_months < 1), "an integer >= 1")
    method = check.choice("method", METHODS, f"one of {', '.join(METHODS)}")
    mob = check.number("months_on_book", "an integer >= 0")
    check.fail("months_on_book", (mob != np.floor(mob)) | (mob < 0), "an integer >= 0")
    check.fail("months_on_book", mob >= term_months, "months_on_book < term_months")
    state = check.choice("state", STATES, f"one of {', '.join(STATES)}")
    if "pd_12m" in frame.columns:
        pd_12m = check.number("pd_12m", "a number in [0, 1]")
        check.fail("pd_12m", (pd_12m < 0) | (pd_12m > 1), "a number in [0, 1]")
    else:
        pd_12m = pd_from_score(check.number("score", "a number"), scenario.scorecard)

    return {
        "product": product.astype(np.int8),
        "principal": principal,
        "apr": apr,
        "term": (term_months - mob).astype(np.int32),
        "months_on_book": mob.astype(np.int32),
        "method": np.asarray([METHOD_CODES[m] for m in METHODS], dtype=np.int8)[method],
        "state": state.astype(np.int8),
        "pd_12m": pd_12m,
    }
