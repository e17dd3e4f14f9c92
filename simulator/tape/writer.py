"""The loan tape written from a run: one row per account and month of path 0, in the layout of a
lender's monthly tape (docs/results.md section 15), from the kernel's codes.TAPE and the accounts'
terms; and the offers beside it."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..codes import (CLOSED_STATUS, LINE, METHODS, PAYER_TYPES, PREPAID_STATUS, PRODUCTS, PRODUCT_KIND, TAPE,
                     TAPE_STATUS, T_BALANCE, T_CHARGED_OFF, T_DUE, T_PAID, T_RECOVERED, T_STATUS)
from ..config import files
from ..config.schema import ScenarioError
from ..model import population, scoring, terms
from ..codes import BOOK_ID_OFFSET


CENTS = 100
ACCOUNTS_AT_ONCE = 100_000   # accounts whose rows are built and written together (memory, not results)
FEATURES = population.FEATURE_NAMES   # the application's features, as the scorecard reads them
SUFFIXES = (".parquet", ".csv")
BYTES_A_CELL = 8 * len(TAPE)        # the kernel's tape: int64 fields for every account and month from its start


class KernelTape(NamedTuple):
    """The kernel's loan tape: `cells` [cell, codes.TAPE], one per account and month from the account's
    first month in the run (its start, or month 1 for an existing book's) to the horizon, account
    after account; account i's month t (1-based) is cell `row0[i] + t - 1`; `offset[i]` is its first
    cell (offset[n]: the number of cells)."""
    cells: np.ndarray
    row0: np.ndarray
    offset: np.ndarray

    def part(self, a0: int, a1: int) -> "KernelTape":
        """Accounts a0 .. a1 - 1 of the tape (a view of their cells)."""
        base = self.offset[a0]
        return KernelTape(self.cells[base:self.offset[a1]], self.row0[a0:a1] - base, self.offset[a0:a1 + 1] - base)

    def dense(self, field: int) -> np.ndarray:
        """One field [account, month] over the whole horizon (0 before an account's first month)."""
        n = len(self.row0)
        horizon = int(np.max(self.offset[1:] - self.row0)) if n else 0
        out = np.zeros((n, horizon), dtype=np.int64)
        account = np.repeat(np.arange(n), np.diff(self.offset))
        out[account, np.arange(len(account)) - self.row0[account]] = self.cells[:, field]
        return out

    def status(self, months: np.ndarray) -> np.ndarray:
        """The status [account, k] of each account in months[account, k] (0-based month indices)."""
        return self.cells[self.row0[:, None] + months, T_STATUS]


def first_months(start_month: np.ndarray) -> np.ndarray:
    """Each account's first month index (0-based) in the run: its start, month 1 for a book's."""
    return np.maximum(np.asarray(start_month, dtype=np.int64), 1) - 1


def cells_needed(start_month: np.ndarray, horizon: int) -> int:
    """Cells of the kernel's tape of accounts starting in `start_month` over `horizon` months."""
    return int(np.sum(horizon - first_months(start_month)))


def new_kernel_tape(start_month: np.ndarray, horizon: int) -> KernelTape:
    """An empty kernel tape (no rows: status -1) for accounts starting in `start_month`."""
    first = first_months(start_month)
    offset = np.concatenate([[0], np.cumsum(horizon - first)]).astype(np.int64)
    cells = np.zeros((int(offset[-1]), len(TAPE)), dtype=np.int64)
    cells[:, T_STATUS] = -1
    return KernelTape(cells, offset[:-1] - first, offset)


def check_path(path: Path) -> None:
    """A tape is written as Parquet or CSV, into an existing folder."""
    if path.suffix.lower() not in SUFFIXES:
        raise ScenarioError(str(path), "--tape", f"expected a file name ending in {' or '.join(SUFFIXES)}, found "
                                                 f"{path.suffix or 'no suffix'}")
    if not path.parent.is_dir():
        raise ScenarioError(str(path), "--tape", "expected a file in an existing folder, found no such folder")


def applications(sc, borrower: np.ndarray) -> dict[str, np.ndarray]:
    """The application features and score of each borrower (NaN for an existing book's, whose
    applications are not in the run): drawn again from the seed and the borrower's applicant id."""
    ids, index = np.unique(borrower, return_inverse=True)
    out = {name: np.full(len(ids), np.nan) for name in FEATURES + ("score",)}
    new = ids < BOOK_ID_OFFSET
    if new.any():
        apps = population.applicants_by_id(sc.applicants, sc.run.seed, ids[new])
        for name in FEATURES:
            out[name][new] = apps[name]
        out["score"][new] = scoring.score_applicants(apps, sc.scorecard, sc.applicants, sc.run.seed)["score"]
    return {name: values[index] for name, values in out.items()}


def frame(sc, accounts, tape: KernelTape) -> pd.DataFrame:
    """The tape's rows (accounts x months where the kernel wrote one), with each account's terms: ids,
    product, origination month (0 or less: an existing book's), score band and pd_12m, the
    application's score and features (NaN for an existing book's accounts), all-in APR,
    limit (lines) or principal (loans), term and method (loans) or payer type (lines), fee a period
    (purchases), mean monthly spend and the most the limit may be raised to (lines); month, months on
    book, status (current, M1 .. M6, charged_off, closed), amounts in yuan; prepaid (repaid early in
    full) and closed flags."""
    written = np.flatnonzero(tape.cells[:, T_STATUS] >= 0)
    account = np.searchsorted(tape.offset, written, side="right") - 1
    month = written - tape.row0[account]
    cells = tape.cells[written]
    line = PRODUCT_KIND[accounts.product[account]] == LINE
    start = accounts.start_month[account].astype(np.int64)
    prepaid = cells[:, T_STATUS] == PREPAID_STATUS
    status = np.where(prepaid, CLOSED_STATUS, cells[:, T_STATUS])        # a prepaid account is closed too
    closed = status == CLOSED_STATUS
    mob = month + 1 - start
    band_labels = scoring.band_labels(sc.scorecard.bands)
    applied = applications(sc, accounts.borrower[account])
    return pd.DataFrame({
        "account_id": accounts.account_id[account],
        "borrower_id": accounts.borrower[account],
        "product": pd.Categorical.from_codes(accounts.product[account], PRODUCTS),
        "origination_month": start,
        "score_band": pd.Categorical.from_codes(accounts.band[account], band_labels),
        "pd_12m": accounts.pd_12m[account],
        "score": applied["score"],
        **{name: applied[name] for name in FEATURES},
        "apr": accounts.eir[account] * 12.0,
        "limit": np.where(line, accounts.limit[account] / CENTS, np.nan),
        "principal": np.where(line, np.nan, (accounts.principal[account] - accounts.overdue0[account]) / CENTS),
        "term": np.where(line, 0, accounts.term[account]),
        "method": np.where(line, "", np.asarray(METHODS)[accounts.method[account]]),
        "payer": np.where(line, np.asarray(PAYER_TYPES)[accounts.payer[account]], ""),
        "fee": np.where(line, np.nan, accounts.fee[account] / CENTS),
        "spend": np.where(line, accounts.spend[account] / CENTS, np.nan),
        "line_cap": np.where(line, accounts.line_cap[account] / CENTS, np.nan),
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


def offers_path(tape: Path) -> Path:
    """Where a tape's offers are written: beside it, <stem>_offers with the tape's suffix."""
    return tape.with_name(f"{tape.stem}_offers{tape.suffix}")


def offers_frame(sc, offers: dict[str, np.ndarray]) -> pd.DataFrame:
    """The approved applications of a run (origination.approved_offers) as a table: applicant id,
    product, application month, score, acquisition channel, all-in APR offered, taken (an account
    the tape holds: account_id = applicant_id x 3 + product code)."""
    segments = list(sc.applicants.segments)
    return pd.DataFrame({
        "applicant_id": offers["applicant_id"].astype(np.int64),
        "product": pd.Categorical.from_codes(offers["product"].astype(np.int8), PRODUCTS),
        "month": offers["month"].astype(np.int64),
        "score": offers["score"].astype(np.float64),
        "segment": pd.Categorical.from_codes(offers["segment"].astype(np.int8), segments),
        "apr": offers["apr"].astype(np.float64),
        "taken": offers["taken"].astype(bool),
    })


def write(path: Path, parts) -> None:
    """Write a table atomically, as Parquet or CSV by the file's suffix, from one DataFrame or an
    iterable of parts (written one after the other: memory holds one part)."""
    parts = [parts] if isinstance(parts, pd.DataFrame) else parts

    def fill(tmp: Path) -> None:
        csv, writer = path.suffix.lower() == ".csv", None
        try:
            for k, part in enumerate(parts):
                if csv:
                    part.to_csv(tmp, mode="w" if k == 0 else "a", header=k == 0, index=False)
                    continue
                table = pa.Table.from_pandas(part, preserve_index=False)
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()

    files.write_atomic(path, fill)


def frames(sc, accounts, tape: KernelTape, at_once: int = ACCOUNTS_AT_ONCE):
    """The tape's rows (`frame`) of `at_once` accounts at a time, in account order."""
    n = len(accounts.account_id)
    for a0 in range(0, max(1, n), at_once):
        a1 = min(n, a0 + at_once)
        yield frame(sc, terms.between(accounts, a0, a1), tape.part(a0, a1))

