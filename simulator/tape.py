"""The loan tape: ours written from a run (one row per account and month of path 0, in the layout of a
lender's monthly tape: docs/results.md section 15, from the kernel's codes.TAPE and the accounts'
terms), and a tape read back, ours or a lender's through a mapping file, with its bad rows found
(docs/calibration.md)."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import files, population, scoring, terms
from .codes import (CHARGED_OFF_STATUS, CLOSED_STATUS, HUABEI, METHODS, N_STATES, PAYER_TYPES, PREPAID_STATUS, PRODUCTS,
                    T_BALANCE, T_CHARGED_OFF, T_DUE, T_PAID, T_RECOVERED, T_STATUS, TAPE, TAPE_STATUS)
from .config import ScenarioError
from .origination import BOOK_ID_OFFSET

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
        apps = population.applicants_by_id(sc, ids[new])
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
    line = accounts.product[account] == HUABEI
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


# --- reading a tape: ours, or a lender's through a mapping file ---------------------------------------

REQUIRED = ("account_id", "product", "month", "months_on_book", "status", "balance", "charged_off", "recovered",
            "prepaid", "score_band")
# An account's terms, read from its first row (months_on_book 0) by `simulator backtest` to replay it.
TERMS = ("borrower_id", "pd_12m", "apr", "principal", "limit", "term", "method", "payer", "fee", "spend", "line_cap")
DAYS_A_BUCKET = 30
BAD_KINDS = ("duplicate account-month", "status jumps more than one bucket", "balance grows on a loan")
SHOWN = 20          # bad rows listed one by one; the rest are counted


def read_mapping(path: Path) -> dict:
    """A mapping file (TOML): [columns] our name = the tape's column; [status] either
    days_past_due = true (the status column holds days past due: 0 current, 1-30 M1 .. 151-180 M6,
    beyond charged_off) or codes = { the tape's code = our status }."""
    import tomllib

    path = Path(path)
    try:
        mapping = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(str(path), "-", f"expected a mapping file (TOML), found one that cannot be read "
                                            f"({exc.__class__.__name__})") from None
    unknown = [k for k in mapping if k not in ("columns", "status")]
    if unknown:
        raise ScenarioError(str(path), unknown[0], "unknown key; expected [columns] and [status]")
    columns, status = mapping.get("columns", {}), mapping.get("status", {})
    bad = [k for k in columns if k not in REQUIRED + TERMS]
    if bad:
        raise ScenarioError(str(path), f"columns.{bad[0]}", f"unknown column; expected one of "
                                                            f"{', '.join(REQUIRED + TERMS)}")
    codes = status.get("codes", {})
    wrong = [v for v in codes.values() if v not in TAPE_STATUS[:PREPAID_STATUS]]
    if wrong:
        raise ScenarioError(str(path), "status.codes", f"expected statuses among {', '.join(TAPE_STATUS[:PREPAID_STATUS])}, "
                                                       f"found {wrong[0]!r}")
    return {"columns": columns, "days_past_due": bool(status.get("days_past_due", False)), "codes": codes}


def bucket(days: pd.Series) -> pd.Series:
    """Days past due as a status: 0 current, 1-30 M1, ..., 151-180 M6, beyond charged_off."""
    k = np.ceil(days.astype(float).fillna(0.0) / DAYS_A_BUCKET).astype(int)
    names = np.asarray(TAPE_STATUS)
    return pd.Series(np.where(k > N_STATES - 1, "charged_off", names[np.clip(k, 0, N_STATES - 1)]), index=days.index)


def as_month_numbers(column: pd.Series) -> pd.Series | None:
    """A column of dates (Parquet dates, or text such as 2024-01 or 2024-01-31) as months counted
    from year 0 (year x 12 + month; NaN where a value is not a date); None when it holds any number
    or no date at all (the whole-number check then names the row)."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return None
    if not pd.api.types.is_datetime64_any_dtype(column):
        if pd.to_numeric(column, errors="coerce").notna().any():     # numbers: a stray text is a bad row
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)           # pandas guessing the format
            column = pd.to_datetime(column.astype(str), errors="coerce", format="mixed")
        if column.isna().all():
            return None
    return column.dt.year * 12 + column.dt.month - 1


def read_table(path: Path, what: str) -> pd.DataFrame:
    """A table from Parquet or CSV (by the suffix); a ScenarioError naming the file when it is missing or
    cannot be read (`what`: what it should be, for the message)."""
    if not Path(path).is_file():
        raise ScenarioError(str(path), "-", f"expected {what} (.parquet or .csv), found no such file")
    try:
        return pd.read_csv(path) if Path(path).suffix.lower() == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ScenarioError(str(path), "-", f"expected {what} (.parquet or .csv), found a file that cannot be "
                                            f"read ({exc.__class__.__name__})") from None


def read(path: Path, mapping: Path | None = None, on_bad_rows: str = "stop") -> tuple[pd.DataFrame, str]:
    """A tape (Parquet or CSV) in our layout, renamed and recoded by `mapping` if given; its bad rows
    (`BAD_KINDS`) stop the reading with a ScenarioError naming the first's row and column, or with
    on_bad_rows = "drop" are dropped. Returns the tape sorted by account and month, and a report of
    the bad rows ("" when none). Column `row` is each row's data row in the file (from 1)."""
    path = Path(path)
    tape = read_table(path, "a loan tape")
    rules = read_mapping(mapping) if mapping is not None else {"columns": {}, "days_past_due": False, "codes": {}}
    tape = tape.rename(columns={theirs: ours for ours, theirs in rules["columns"].items()})
    missing = [c for c in REQUIRED if c not in tape.columns]
    if missing:
        theirs = rules["columns"].get(missing[0], missing[0])
        raise ScenarioError(str(path), f"column {theirs}", f"expected the tape's columns {', '.join(REQUIRED)} (or a "
                                                           f"mapping naming them), found no {theirs}")
    if tape.empty:
        raise ScenarioError(str(path), "-", "expected a loan tape with rows, found none")
    tape["row"] = np.arange(1, len(tape) + 1)                      # the file's data row, for reports
    months = as_month_numbers(tape["month"])
    if months is not None:                                         # dates: month numbers from the first
        if months.isna().any():
            first = tape[months.isna()].iloc[0]
            raise ScenarioError(str(path), f"row {first['row']}: column {rules['columns'].get('month', 'month')}",
                                f"expected a month: a whole number or a date such as 2024-01, found {first['month']!r}")
        start = int(months.min())
        tape["month"] = (months - start + 1).astype(np.int64)
        origin = as_month_numbers(tape["origination_month"]) if "origination_month" in tape else None
        if origin is not None:
            tape["origination_month"] = origin - start + 1
    for column, whole in (("month", True), ("months_on_book", True), ("balance", False), ("charged_off", False),
                          ("recovered", False)):
        values = pd.to_numeric(tape[column], errors="coerce")
        wrong = values.isna() | ~np.isfinite(values.fillna(0.0)) | (values < 0) if column != "months_on_book" else \
            values.isna()
        if whole:
            wrong |= values.fillna(0.0) % 1 != 0
        if wrong.any():
            first = tape[wrong].iloc[0]
            theirs = rules["columns"].get(column, column)
            raise ScenarioError(str(path), f"row {first['row']}: column {theirs}",
                                f"expected {'a whole number' if whole else 'an amount >= 0'}, found {first[column]!r}")
        tape[column] = values.astype(np.int64) if whole else values.astype(float)
    flags = tape["prepaid"].astype(str).str.lower().map({"true": True, "false": False, "1": True, "0": False})
    if flags.isna().any():
        first = tape[flags.isna()].iloc[0]
        raise ScenarioError(str(path), f"row {first['row']}: column {rules['columns'].get('prepaid', 'prepaid')}",
                            f"expected true or false, found {first['prepaid']!r}")
    tape["prepaid"] = flags.astype(bool)
    if rules["days_past_due"]:           # numbers are days past due; words (closed, charged_off) stay
        days = pd.to_numeric(tape["status"], errors="coerce")
        tape["status"] = bucket(days).where(days.notna(), tape["status"].astype(str))
    elif rules["codes"]:
        tape["status"] = tape["status"].astype(str).map(rules["codes"]).fillna(tape["status"].astype(str))
    tape["status"] = tape["status"].astype(str)
    unknown = ~tape["status"].isin(TAPE_STATUS[:PREPAID_STATUS])
    if unknown.any():
        first = tape[unknown].iloc[0]
        raise ScenarioError(str(path), f"row {first['row']}: column {rules['columns'].get('status', 'status')}",
                            f"expected a status among {', '.join(TAPE_STATUS[:PREPAID_STATUS])} (or a mapping of the "
                            f"tape's codes), found {first['status']!r}")
    tape = tape.sort_values(["account_id", "month", "row"], kind="stable").reset_index(drop=True)
    bad = bad_rows(tape)
    if bad.empty:
        return tape, ""
    counts = bad["kind"].value_counts()
    summary = "; ".join(f"{counts.get(kind, 0)} {kind}" for kind in BAD_KINDS if counts.get(kind, 0))
    if on_bad_rows == "stop":
        first = bad.iloc[0]
        raise ScenarioError(str(path), f"row {first['row']}: column {first['column']}",
                            f"{first['what']} ({len(bad)} bad rows: {summary}; --on-bad-rows drop drops them)")
    lines = [f"{path}: {len(bad)} bad rows dropped: {summary}"]
    lines += [f"  row {r.row}: column {r.column}: {r.what}" for r in bad.head(SHOWN).itertuples()]
    if len(bad) > SHOWN:
        lines.append(f"  ... and {len(bad) - SHOWN} more")
    return tape[~tape["row"].isin(bad["row"])].reset_index(drop=True), "\n".join(lines)


def until(tape: pd.DataFrame, path: Path, month: int) -> pd.DataFrame:
    """The tape's rows up to `month` (out of time: calibrate on them, backtest on the rest)."""
    first, last = int(tape["month"].min()), int(tape["month"].max())
    if not first <= month < last:
        raise ScenarioError(str(path), "--until-month", f"expected a month from {first} to {last - 1} (the tape's "
                                                        f"months but its last), found {month}")
    return tape[tape["month"] <= month].reset_index(drop=True)


def bad_rows(tape: pd.DataFrame) -> pd.DataFrame:
    """The tape's bad rows (sorted by account and month), by file row: a second row for an account and
    month; a status more than one bucket worse than the month before; a loan's balance above the
    month before's. Columns row, kind, column, what."""
    same = (tape["account_id"].shift(1) == tape["account_id"]).to_numpy()
    gap = (tape["month"] - tape["month"].shift(1)).to_numpy()
    status, balance = tape["status"].to_numpy(), tape["balance"].to_numpy(dtype=float)
    rank = {name: k for k, name in enumerate(TAPE_STATUS[:CHARGED_OFF_STATUS])}
    now = tape["status"].map(rank).to_numpy(dtype=float)
    before = np.concatenate([[np.nan], now[:-1]])
    loan = (tape["product"].astype(str) != "huabei").to_numpy()
    found = []
    for j in np.flatnonzero(same & (gap == 0)):
        found.append((BAD_KINDS[0], "month", f"expected one row an account and month, found another for month "
                                             f"{tape['month'].iat[j]}", j))
    for j in np.flatnonzero(same & (gap == 1) & (now - before > 1)):
        found.append((BAD_KINDS[1], "status", f"expected at most one bucket worse a month, found {status[j - 1]} then "
                                              f"{status[j]}", j))
    grows = same & (gap == 1) & loan & ~np.isnan(now) & ~np.isnan(before)
    grows[1:] &= balance[1:] > balance[:-1] + 0.005
    grows[0] = False
    for j in np.flatnonzero(grows):
        found.append((BAD_KINDS[2], "balance", f"expected a loan's balance not to grow, found {balance[j - 1]:,.2f} "
                                               f"then {balance[j]:,.2f}", j))
    out = pd.DataFrame([(int(tape["row"].iat[j]), kind, column, what) for kind, column, what, j in found],
                       columns=["row", "kind", "column", "what"])
    return out.sort_values("row", kind="stable").drop_duplicates("row").reset_index(drop=True)
