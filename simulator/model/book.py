"""An existing book of accounts read from CSV or Parquet (docs/model.md section 8), validated row by row
with errors that name the file, the row and the column."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..codes import (EQUAL_PRINCIPAL, LINE, LOAN, METHODS, METHOD_CODES, PAYER_TYPES, PLAN, PRODUCTS, PRODUCT_KIND,
                     STATES)
from ..config.schema import MAX_AMOUNT, MAX_ANNUAL_RATE, MAX_PERIOD_FEE, ScenarioError, Scorecard
from ..config.loader import LoadedScenario
from .scoring import pd_from_score
from .terms import of_kind

# Columns every book has; the others are needed by some products or some rows (docs/model.md section 8).
COLUMNS = ("product", "principal", "state", "pd_12m")
NO_PAYER = -1    # a line's payer type not given: drawn by the payer-type model
MAX_TERM = 360   # months


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
            columns_once(path, skipinitialspace=True)
            return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        columns_once(path)
        return pd.read_parquet(path)
    except (OSError, ValueError, ImportError) as exc:
        said = " ".join(str(exc).split())         # pandas' and pyarrow's messages span lines: one line here
        raise ScenarioError(file, "-", f"cannot read the file ({exc.__class__.__name__}: {said})") from None


def columns_once(path: Path, **csv) -> None:
    """Refuse a table (CSV, read with the options `csv`, or Parquet) whose header names a column twice:
    pandas would read the second as `name.1`, and the first would be used unseen."""
    if Path(path).suffix.lower() == ".csv":
        names = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, **csv).iloc[0].tolist()
    else:
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
    repeated = [name for k, name in enumerate(names) if name in names[:k]]
    if repeated:
        name = repeated[0]
        raise ScenarioError(str(path), f"column {name}", f"expected each column once, found {names.count(name)} "
                                                         f"columns of that name")


class Checker:
    """Column validation that raises a ScenarioError naming the file, the 1-based data row (or the file's
    row of each frame row, `rows`) and the column (as the file names it: `names`, ours -> the file's)."""

    def __init__(self, path: Path, frame: pd.DataFrame, rows: np.ndarray | None = None,
                 names: dict[str, str] | None = None):
        self.file, self.frame, self.names = str(path), frame, names or {}
        self.rows = np.arange(1, len(frame) + 1) if rows is None else np.asarray(rows)

    def key(self, name: str, row: int | None = None) -> str:
        """`column C` (or `row N: column C`), C as the file names the column."""
        column = f"column {self.names.get(name, name)}"
        return column if row is None else f"row {row}: {column}"

    def column(self, name: str) -> pd.Series:
        if name not in self.frame.columns:
            raise ScenarioError(self.file, self.key(name), "missing")
        return self.frame[name]

    def fail(self, name: str, bad: np.ndarray, expected: str) -> None:
        """Raise for the first row where `bad` holds, if any."""
        rows = np.flatnonzero(bad)
        if rows.size:
            r = int(rows[0])
            value = self.frame[name].iloc[r]
            value = value.item() if isinstance(value, np.generic) else value
            raise ScenarioError(self.file, self.key(name, self.rows[r]), f"expected {expected}, found {value!r}")

    def number(self, name: str, expected: str, rows: np.ndarray | None = None, default: float = np.nan) -> np.ndarray:
        """The column as float64: finite where `rows` (default: every row); elsewhere, or when the
        column is absent and no row needs it, `default`."""
        rows = np.ones(len(self.frame), dtype=bool) if rows is None else rows
        if name not in self.frame.columns:
            if rows.any():
                self.column(name)
            return np.full(len(self.frame), default)
        if self.frame[name].dtype.kind in "mMb":      # Parquet dates, durations or booleans are no numbers
            raise ScenarioError(self.file, self.key(name), f"expected numbers, found a column of "
                                                           f"{self.frame[name].dtype}")
        values = pd.to_numeric(self.frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        self.fail(name, rows & ~np.isfinite(values), expected)
        return np.where(rows, values, default)

    def choice(self, name: str, names: tuple[str, ...], expected: str, rows: np.ndarray | None = None,
               default: int = 0) -> np.ndarray:
        """Index of each value in `names` (values stripped of surrounding spaces) where `rows`;
        elsewhere, or when the column is absent and no row needs it, `default`."""
        rows = np.ones(len(self.frame), dtype=bool) if rows is None else rows
        if name not in self.frame.columns:
            if rows.any():
                self.column(name)
            return np.full(len(self.frame), default, dtype=np.int64)
        codes = self.frame[name].astype(str).str.strip().map({v: i for i, v in enumerate(names)})
        self.fail(name, rows & codes.isna().to_numpy(), expected)
        return np.where(rows, codes.fillna(default).to_numpy(), default).astype(np.int64)

    def ids(self, name: str, expected: str) -> np.ndarray:
        """The column as whole numbers (int64), such as account ids: text such as 'A7' is refused."""
        values = pd.to_numeric(self.column(name), errors="coerce")
        whole = (values.notna() & (values % 1 == 0) & (values.abs() < 2**63)).to_numpy(dtype=bool)
        self.fail(name, ~whole, expected)
        return values.to_numpy().astype(np.int64)

    def blank(self, name: str) -> np.ndarray:
        """Rows where the column is absent or empty."""
        if name not in self.frame.columns:
            return np.ones(len(self.frame), dtype=bool)
        return self.frame[name].astype(str).str.strip().isin(["", "nan", "None"]).to_numpy()


def read_book(path: Path, spend_median: np.ndarray, card: Scorecard) -> dict[str, np.ndarray]:
    """Existing accounts of any product from CSV or Parquet (columns in docs/model.md section 8),
    validated row by row: every value a row needs must be there and in range. Amounts in yuan (a
    plan's `fee` a period), a loan's `apr` a year, as `terms.accounts` takes them. A line without its
    spend spends its product's `spend_median` (by product code: its applicants'); a book with a score
    and no pd_12m has the pd of the score on the scorecard `card`."""
    path = Path(path)
    frame = _read_frame(path)
    check = Checker(path, frame)
    for name in COLUMNS:
        if name == "pd_12m" and name not in frame.columns and "score" in frame.columns:
            continue
        check.column(name)

    product = check.choice("product", PRODUCTS, f"one of {', '.join(PRODUCTS)}")
    kind = PRODUCT_KIND[product]
    line, loan, purchase = kind == LINE, kind == LOAN, kind == PLAN
    instalments = loan | purchase
    principal = check.number("principal", "a number > 0 (>= 0 for a line's drawn balance)")
    check.fail("principal", (principal < 0) | (instalments & (principal == 0)),
               "a number > 0 (>= 0 for a line's drawn balance)")
    check.fail("principal", principal > MAX_AMOUNT, f"at most {MAX_AMOUNT:.0e} yuan")
    state = check.choice("state", STATES, f"one of {', '.join(STATES)}")

    term_months = check.number("term_months", "an integer >= 1 (the original term)", instalments, 0.0)
    check.fail("term_months", instalments & ((term_months != np.floor(term_months)) | (term_months < 1)
                                             | (term_months > MAX_TERM)),
               f"an integer >= 1 and at most {MAX_TERM} (the original term)")
    mob = check.number("months_on_book", "an integer >= 0", instalments, 0.0)
    check.fail("months_on_book", instalments & ((mob != np.floor(mob)) | (mob < 0)), "an integer >= 0")
    check.fail("months_on_book", instalments & (mob >= term_months), "months_on_book < term_months")
    apr = check.number("apr", "a number >= 0 (the contract APR of a loan)", loan, 0.0)
    check.fail("apr", loan & (apr < 0), "a number >= 0 (the contract APR of a loan)")
    check.fail("apr", loan & (apr > MAX_ANNUAL_RATE), "a fraction such as 0.146 (rates are fractions, not percent)")
    method = check.choice("method", METHODS, f"one of {', '.join(METHODS)}", loan, METHODS.index("equal_principal"))

    fee = check.number("fee_per_period", "a number >= 0 (a fraction of the price)", purchase & ~check.blank("fee_per_period"),
                       0.0)
    check.fail("fee_per_period", purchase & (fee < 0), "a number >= 0 (a fraction of the price)")
    check.fail("fee_per_period", purchase & (fee > MAX_PERIOD_FEE), "a fraction such as 0.0075 (fees are fractions, "
                                                             "not percent)")
    price = check.number("price", "a number > 0 (the original price)", purchase & (fee > 0), 0.0)
    check.fail("price", purchase & (fee > 0) & ((price <= 0) | (price > MAX_AMOUNT)),
               f"a number > 0 and at most {MAX_AMOUNT:.0e} (the original price)")

    limit = check.number("limit", "a number > 0 (the line's limit)", line, 0.0)
    check.fail("limit", line & ((limit <= 0) | (limit < principal) | (limit > MAX_AMOUNT)),
               f"a number > 0, >= principal and at most {MAX_AMOUNT:.0e} (the line's limit)")
    payer = check.choice("payer", PAYER_TYPES, f"one of {', '.join(PAYER_TYPES)} or empty",
                         line & ~check.blank("payer"), NO_PAYER)
    spend = check.number("spend", "a number >= 0 (mean monthly spend)", line & ~check.blank("spend"),
                         spend_median[product])
    check.fail("spend", line & ((spend < 0) | (spend > MAX_AMOUNT)), f"a number >= 0 and at most {MAX_AMOUNT:.0e} "
                                                                     f"(mean monthly spend)")

    delinquent = state > 0
    if delinquent.any() and "overdue" not in frame.columns:
        first = int(np.flatnonzero(delinquent)[0])
        raise ScenarioError(str(path), "column overdue", f"missing: row {first + 1} is delinquent and needs its "
                                                         f"overdue principal")
    overdue = check.number("overdue", "a number (the overdue principal)", delinquent | ~check.blank("overdue"), 0.0)
    check.fail("overdue", delinquent & ((overdue <= 0) | (overdue > principal)),
               "a number > 0 and <= principal for a delinquent row (the overdue principal)")
    check.fail("overdue", ~delinquent & (overdue != 0), "0 or empty for a current row")

    if "pd_12m" in frame.columns:
        pd_12m = check.number("pd_12m", "a number in [0, 1]")
        check.fail("pd_12m", (pd_12m < 0) | (pd_12m > 1), "a number in [0, 1]")
    else:
        pd_12m = pd_from_score(check.number("score", "a number"), card)

    return {
        "product": product.astype(np.int8),
        "principal": principal,
        "overdue": overdue,
        "apr": apr,
        "term": (term_months - mob).astype(np.int32),
        "method": np.where(loan, np.asarray([METHOD_CODES[m] for m in METHODS], dtype=np.int8)[method],
                           EQUAL_PRINCIPAL).astype(np.int8),
        "fee": np.where(purchase, price * fee, 0.0),
        "limit": limit,
        "payer": payer.astype(np.int8),
        "spend": np.where(line, spend, 0.0),
        "state": state.astype(np.int8),
        "pd_12m": pd_12m,
    }


def check_books(loaded: LoadedScenario) -> None:
    """Read every sweep cell's book once before a run makes anything (a bad book is bad input, not a
    failure half-way through a sweep)."""
    sc = loaded.scenario
    for path in loaded.book_paths():
        read_book(path, of_kind(sc.applicants, "spend_median", LINE), sc.scorecard)
