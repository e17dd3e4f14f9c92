"""The loan tape: one row per account and month of path 0, in the layout of a lender's monthly tape
(docs/results.md section 15), from the kernel's tape (codes.TAPE) and the accounts' terms."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import files
from .codes import (CLOSED_STATUS, HUABEI, METHODS, PAYER_TYPES, PREPAID_STATUS, PRODUCTS, T_BALANCE, T_CHARGED_OFF,
                    T_DUE, T_PAID, T_RECOVERED, T_STATUS, TAPE, TAPE_STATUS)
from .config import ScenarioError

CENTS = 100
SUFFIXES = (".parquet", ".csv")
BYTES_A_CELL = 8 * len(TAPE)        # the kernel's tape: int64 fields for every account and month


def bytes_needed(accounts: int, horizon: int) -> int:
    """Memory of the kernel's tape of `accounts` accounts over `horizon` months."""
    return accounts * horizon * BYTES_A_CELL


def check_path(path: Path) -> None:
    """A tape is written as Parquet or CSV, into an existing folder."""
    if path.suffix.lower() not in SUFFIXES:
        raise ScenarioError(str(path), "--tape", f"expected a file name ending in {' or '.join(SUFFIXES)}, found "
                                                 f"{path.suffix or 'no suffix'}")
    if not path.parent.is_dir():
        raise ScenarioError(str(path), "--tape", "expected a file in an existing folder, found no such folder")


def frame(accounts, tape: np.ndarray, band_labels: list[str]) -> pd.DataFrame:
    """The tape's rows (accounts x months where the kernel wrote one), with each account's terms: ids,
    product, origination month (0 or less: an existing book's), score band and pd_12m, all-in APR,
    limit (lines) or principal (loans), term and method (loans) or payer type (lines); month, months on
    book, status (current, M1 .. M6, charged_off, closed), amounts in yuan; prepaid (repaid early in
    full) and closed flags."""
    account, month = np.nonzero(tape[..., T_STATUS] >= 0)
    cells = tape[account, month]
    line = accounts.product[account] == HUABEI
    start = accounts.start_month[account].astype(np.int64)
    prepaid = cells[:, T_STATUS] == PREPAID_STATUS
    status = np.where(prepaid, CLOSED_STATUS, cells[:, T_STATUS])        # a prepaid account is closed too
    closed = status == CLOSED_STATUS
    mob = month + 1 - start
    return pd.DataFrame({
        "account_id": accounts.account_id[account],
        "borrower_id": accounts.borrower[account],
        "product": pd.Categorical.from_codes(accounts.product[account], PRODUCTS),
        "origination_month": start,
        "score_band": pd.Categorical.from_codes(accounts.band[account], band_labels),
        "pd_12m": accounts.pd_12m[account],
        "apr": accounts.eir[account] * 12.0,
        "limit": np.where(line, accounts.limit[account] / CENTS, np.nan),
        "principal": np.where(line, np.nan, (accounts.principal[account] - accounts.overdue0[account]) / CENTS),
        "term": np.where(line, 0, accounts.term[account]),
        "method": np.where(line, "", np.asarray(METHODS)[accounts.method[account]]),
        "payer": np.where(line, np.asarray(PAYER_TYPES)[accounts.payer[account]], ""),
        "month": month + 1,
        "months_on_book": mob,
        "status": pd.Categorical.from_codes(status, TAPE_STATUS[:PREPAID_STATUS]),
        "balance": cells[:, T_BALANCE] / CENTS,
        "amount_due": cells[:, T_DUE] / CENTS,
        "amount_paid": cells[:, T_PAID] / CENTS,
        "charged_off": cells[:, T_CHARGED_OFF] / CENTS,
        "recovered": cells[:, T_RECOVERED] / CENTS,
        "prepaid": prepaid,
        "closed": closed,
    })


def write(path: Path, table: pd.DataFrame) -> None:
    """Write the tape atomically, as Parquet or CSV by the file's suffix."""
    if path.suffix.lower() == ".csv":
        files.write_atomic(path, lambda tmp: table.to_csv(tmp, index=False))
    else:
        files.write_atomic(path, lambda tmp: table.to_parquet(tmp, index=False))
