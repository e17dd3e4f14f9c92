"""A loan tape read back, ours or a lender's through a mapping file, with its bad rows found
(docs/calibration.md)."""
from __future__ import annotations

import difflib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..codes import CHARGED_OFF_STATUS, KIND, LINE, N_STATES, PREPAID_STATUS, PRODUCTS, TAPE_STATUS
from ..config.loader import read_toml
from ..config.schema import MAX_AMOUNT, ScenarioError, show_value
from ..model.book import Checker, columns_once
from .writer import FEATURES

# --- reading a tape: ours, or a lender's through a mapping file ---------------------------------------

REQUIRED = ("account_id", "product", "month", "months_on_book", "status", "balance", "charged_off", "recovered",
            "prepaid", "score_band")
# An account's terms, read from its first row (months_on_book 0) by `simulator backtest` to replay it.
TERMS = ("borrower_id", "pd_12m", "apr", "principal", "limit", "term", "method", "payer", "fee", "spend", "line_cap")
MAPPED = REQUIRED + TERMS + ("origination_month", "score") + FEATURES     # the columns a mapping may name
STATUSES = TAPE_STATUS[:PREPAID_STATUS]      # a tape's statuses (a prepayment is its `prepaid` flag)
DAYS_A_BUCKET = 30
MAX_MONTHS = 600    # months a tape may span (and an account may be on book): run.horizon_months' most
AMOUNT = f"an amount >= 0 and at most {MAX_AMOUNT:.0e}"
BAD_KINDS = ("duplicate account-month", "status jumps more than one bucket", "balance grows on a loan")
SHOWN = 20          # bad rows listed one by one; the rest are counted
MAPPING_TABLES = {"columns": 'a table of our column = "the tape\'s column"',
                  "status": "a table with days_past_due or codes",
                  "status.codes": 'a table of "the tape\'s code" = "our status"'}


def did_you_mean(word: str, names) -> str:
    """' (did you mean X?)' with the name of `names` closest to a mistyped `word`, or ''."""
    close = difflib.get_close_matches(str(word), [str(name) for name in names], n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _table(tree: dict, key: str, file: str) -> dict:
    """The mapping file's table `key` (dotted), {} when absent."""
    value = tree.get(key.rsplit(".", 1)[-1], {})
    if not isinstance(value, dict):
        raise ScenarioError(file, key, f"expected {MAPPING_TABLES[key]}, found {show_value(value)}")
    return value


def _known_keys(table: dict, known: tuple[str, ...], file: str, prefix: str, what: str) -> None:
    unknown = [key for key in table if key not in known]
    if unknown:
        raise ScenarioError(file, prefix + unknown[0], f"unknown {what}{did_you_mean(unknown[0], known)}; expected "
                                                       f"{', '.join(known)}")


def read_mapping(path: Path) -> dict:
    """A mapping file (TOML): [columns] our name = the tape's column; [status] days_past_due = true (the
    status column's numbers are days past due: 0 current, 1-30 M1 .. 151-180 M6, beyond charged_off)
    and/or codes = { the tape's code = our status }. Checked as strictly as a scenario: unknown keys
    (with the closest known one), types, names and statuses."""
    path = Path(path)
    file = str(path)
    mapping, _ = read_toml(path, file)
    _known_keys(mapping, ("columns", "status"), file, "", "key")
    columns, status = _table(mapping, "columns", file), _table(mapping, "status", file)
    _known_keys(columns, MAPPED, file, "columns.", "column")
    for ours, theirs in columns.items():
        if not isinstance(theirs, str) or not theirs:
            raise ScenarioError(file, f"columns.{ours}", f"expected the name of the tape's column (text in quotes), "
                                                         f"found {show_value(theirs)}")
        also = [other for other, name in columns.items() if name == theirs and other != ours]
        if also:
            raise ScenarioError(file, f"columns.{ours}", f"expected each of the tape's columns named once, found "
                                                         f"{theirs!r} for {also[0]} too")
    _known_keys(status, ("days_past_due", "codes"), file, "status.", "key")
    days = status.get("days_past_due", False)
    if not isinstance(days, bool):
        raise ScenarioError(file, "status.days_past_due", f"expected true or false, found {show_value(days)}")
    codes = _table(status, "status.codes", file)
    for code, ours in codes.items():
        if ours not in STATUSES:
            raise ScenarioError(file, f"status.codes.{code}", f"expected a status among {', '.join(STATUSES)}, found "
                                                              f"{show_value(ours)}{did_you_mean(ours, STATUSES)}")
    return {"columns": columns, "days_past_due": days, "codes": codes}


def renamed(tape: pd.DataFrame, columns: dict[str, str], path: Path, mapping: Path | None) -> pd.DataFrame:
    """The tape with its columns named ours (`columns`: our name = the tape's): a column mapped must be
    in the tape, and a column of the tape must not already have the name it is mapped to."""
    for ours, theirs in columns.items():
        if theirs not in tape.columns:
            raise ScenarioError(str(mapping), f"columns.{ours}", f"expected a column of {path}, found no column "
                                                                 f"{theirs!r}{did_you_mean(theirs, tape.columns)}")
    names = {theirs: ours for ours, theirs in columns.items()}
    for ours, theirs in columns.items():
        if ours in tape.columns and ours not in names:          # the tape's own `ours` is not renamed away
            raise ScenarioError(str(mapping), f"columns.{ours}", f"expected {theirs!r} to be the tape's only {ours}, "
                                                                 f"found a column {ours!r} in {path} too (map or drop "
                                                                 f"one of them)")
    return tape.rename(columns=names)


def where(tape: pd.DataFrame, column: str) -> tuple[str, str]:
    """The file a tape (or an offers table) was read from and `column C`, C as the file names our
    column: the first two arguments of a ScenarioError about the column as a whole."""
    return tape.attrs.get("file", "the tape"), f"column {tape.attrs.get('columns', {}).get(column, column)}"


def checker(rows: pd.DataFrame, path: Path | None = None) -> Checker:
    """A Checker of a tape's rows as read (`read`): its errors name the tape's file (or `path`), each
    row's data row in the file and the column as the file names it."""
    return Checker(path or where(rows, "-")[0], rows, rows["row"].to_numpy() if "row" in rows else None,
                   rows.attrs.get("columns"))


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
    """A table from Parquet or CSV (by the suffix), each column named once, its file in `attrs["file"]`;
    a ScenarioError naming the file when it is missing or cannot be read (`what`: what it should be,
    for the message)."""
    if not Path(path).is_file():
        raise ScenarioError(str(path), "-", f"expected {what} (.parquet or .csv), found no such file")
    try:
        columns_once(path)
        if Path(path).suffix.lower() == ".csv":
            # Each column typed from all its rows, not chunk by chunk (no DtypeWarning); the copy joins
            # read_csv's one block a column (a wide tape's columns added later would warn it is fragmented).
            table = pd.read_csv(path, low_memory=False).copy()
        else:
            table = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ScenarioError(str(path), "-", f"expected {what} (.parquet or .csv), found a file that cannot be "
                                            f"read ({exc.__class__.__name__})") from None
    table.attrs["file"] = str(path)
    return table


def read(path: Path, mapping: Path | None = None, on_bad_rows: str = "stop") -> tuple[pd.DataFrame, str]:
    """A tape (Parquet or CSV) in our layout, renamed and recoded by `mapping` if given, every column
    it needs checked row by row; its bad rows (`BAD_KINDS`) stop the reading with a ScenarioError
    naming the first's row and column, or with on_bad_rows = "drop" are dropped. Returns the tape
    sorted by account and month, and a report of the bad rows ("" when none). Column `row` is each
    row's data row in the file (from 1); `attrs` hold the file and the mapping's column names (`where`)."""
    path = Path(path)
    tape = read_table(path, "a loan tape")
    rules = read_mapping(mapping) if mapping is not None else {"columns": {}, "days_past_due": False, "codes": {}}
    tape = renamed(tape, rules["columns"], path, mapping)
    tape.attrs["columns"] = dict(rules["columns"])
    missing = [c for c in REQUIRED if c not in tape.columns]
    if missing:
        theirs = rules["columns"].get(missing[0], missing[0])
        raise ScenarioError(str(path), f"column {theirs}", f"expected the tape's columns {', '.join(REQUIRED)} (or a "
                                                           f"mapping naming them), found no {theirs}")
    if tape.empty:
        raise ScenarioError(str(path), "-", "expected a loan tape with rows, found none")
    tape["row"] = np.arange(1, len(tape) + 1)                      # the file's data row, for reports
    check = checker(tape)
    months = as_month_numbers(tape["month"])
    if months is not None:                                         # dates: month numbers from the first
        check.fail("month", months.isna(), "a month: a whole number or a date such as 2024-01")
        origin = as_month_numbers(tape["origination_month"]) if "origination_month" in tape else None
        if origin is not None:
            tape["origination_month"] = origin - months.min() + 1
        months = months - months.min() + 1
    else:
        months = pd.to_numeric(tape["month"], errors="coerce")
        check.fail("month", ~(months >= 0) | (months % 1 != 0), "a whole number >= 0 or a date such as 2024-01")
    first = tape["month"].iat[int(np.argmin(months.to_numpy()))]
    first = first.item() if isinstance(first, np.generic) else first
    check.fail("month", months >= months.min() + MAX_MONTHS, f"a month less than {MAX_MONTHS} months after the "
                                                             f"tape's first ({first!r})")
    tape["month"] = months.astype(np.int64)
    for column, high, expected in (("months_on_book", MAX_MONTHS, f"a whole number from 0 to {MAX_MONTHS}"),
                                   ("balance", MAX_AMOUNT, AMOUNT), ("charged_off", MAX_AMOUNT, AMOUNT),
                                   ("recovered", MAX_AMOUNT, AMOUNT)):
        values = pd.to_numeric(tape[column], errors="coerce")
        whole = column == "months_on_book"
        check.fail(column, ~values.between(0, high) | ((values % 1 != 0) if whole else False), expected)
        tape[column] = values.astype(np.int64) if whole else values.astype(float)
    tape["product"] = pd.Categorical.from_codes(check.choice("product", PRODUCTS, f"a product among "
                                                                                  f"{', '.join(PRODUCTS)}"), PRODUCTS)
    flags = tape["prepaid"].astype(str).str.lower().map({"true": True, "false": False, "1": True, "0": False})
    check.fail("prepaid", flags.isna(), "true or false")
    tape["prepaid"] = flags.astype(bool)
    text = tape["status"].astype(str)
    status = text.replace(rules["codes"])                          # the tape's codes
    if rules["days_past_due"]:                                     # its other numbers are days past due
        days = pd.to_numeric(text, errors="coerce").where(~text.isin(list(rules["codes"])))
        check.fail("status", days < 0, "days past due >= 0 or a status")
        status = status.where(days.isna(), bucket(days))
    tape["status"] = status
    check.fail("status", ~tape["status"].isin(STATUSES), f"a status among {', '.join(STATUSES)} (or a mapping of the "
                                                         f"tape's codes)")
    tape = tape.sort_values(["account_id", "month", "row"], kind="stable").reset_index(drop=True)
    tape, report = without_bad_rows(tape, path, on_bad_rows)
    in_step(tape)
    return tape, report


def without_bad_rows(tape: pd.DataFrame, path: Path, on_bad_rows: str) -> tuple[pd.DataFrame, str]:
    """The tape (sorted by account and month) without its bad rows and a report of them ("" when none);
    with on_bad_rows = "stop" the first bad row is a ScenarioError."""
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


def in_step(tape: pd.DataFrame) -> None:
    """Refuse a row whose months_on_book does not advance with its month from the account's first row
    (sorted by account and month): it would book the account to another vintage, or to none."""
    account = tape["account_id"]
    first_month = tape["month"].groupby(account, sort=False).transform("first")
    first_mob = tape["months_on_book"].groupby(account, sort=False).transform("first")
    expected = first_mob + tape["month"] - first_month
    wrong = (tape["months_on_book"] != expected).to_numpy()
    if wrong.any():
        j = int(np.flatnonzero(wrong)[0])
        checker(tape).fail("months_on_book", wrong, f"{expected.iat[j]} (months on book advance with the months: "
                                                    f"{first_mob.iat[j]} in month {first_month.iat[j]}, the "
                                                    f"account's first row)")


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
    loan = (tape["product"].astype(str).map(dict(zip(PRODUCTS, KIND))) != LINE).to_numpy()   # or a purchase plan
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

