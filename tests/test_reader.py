"""A loan tape read back (simulator/tape/reader.py): mapping files, renaming, days past due as buckets,
dates as months, tables from CSV and Parquet, and the bad rows found; every error one line naming
the file and the column (docs/calibration.md)."""
from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest

from simulator.codes import KIND, LINE, LOAN, PRODUCTS
from simulator.config.schema import ScenarioError
from simulator.tape import reader

LINE_PRODUCT, LOAN_PRODUCT = PRODUCTS[KIND.index(LINE)], PRODUCTS[KIND.index(LOAN)]


def frame(rows, **columns) -> pd.DataFrame:
    """A tape in our layout from (account_id, product, month, months_on_book, status, balance) rows."""
    tape = pd.DataFrame(rows, columns=["account_id", "product", "month", "months_on_book", "status", "balance"])
    return tape.assign(charged_off=0.0, recovered=0.0, prepaid=False, score_band="<570", **columns)


def sorted_tape(rows) -> pd.DataFrame:
    """A tape as `read` leaves it before its bad rows are looked for: typed, file rows numbered."""
    tape = frame(rows)
    tape["row"] = np.arange(1, len(tape) + 1)
    return tape.sort_values(["account_id", "month", "row"], kind="stable").reset_index(drop=True)


def one_line(exc: pytest.ExceptionInfo, *words: str) -> str:
    """The error's text, checked to be one line holding each of `words`."""
    text = str(exc.value)
    assert "\n" not in text, text
    for word in words:
        assert word in text, (word, text)
    return text


GOOD = [(1, LOAN_PRODUCT, 1, 0, "current", 1000.0), (1, LOAN_PRODUCT, 2, 1, "M1", 900.0),
        (2, LINE_PRODUCT, 1, 3, "current", 50.0), (2, LINE_PRODUCT, 2, 4, "current", 80.0),
        (1, LOAN_PRODUCT, 3, 2, "M2", 900.0)]


# --- did_you_mean ----------------------------------------------------------------------------------

def test_did_you_mean_names_the_closest():
    assert reader.did_you_mean("colums", ("columns", "status")) == " (did you mean columns?)"
    assert reader.did_you_mean("balanse", reader.REQUIRED) == " (did you mean balance?)"
    assert reader.did_you_mean("months_onbook", reader.REQUIRED) == " (did you mean months_on_book?)"


def test_did_you_mean_is_empty_when_nothing_is_close():
    assert reader.did_you_mean("xyzzy", reader.REQUIRED) == ""
    assert reader.did_you_mean(7, ["status"]) == ""


# --- read_mapping ----------------------------------------------------------------------------------

def test_read_mapping_of_a_good_file(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[columns]\naccount_id = "loan_no"\nstatus = "dpd"\n\n[status]\ndays_past_due = true\n'
                    'codes = { "WO" = "charged_off", "C" = "current" }\n')
    assert reader.read_mapping(path) == {"columns": {"account_id": "loan_no", "status": "dpd"}, "days_past_due": True,
                                         "codes": {"WO": "charged_off", "C": "current"}}


def test_read_mapping_of_an_empty_file_maps_nothing(tmp_path):
    (tmp_path / "m.toml").write_text("")
    assert reader.read_mapping(tmp_path / "m.toml") == {"columns": {}, "days_past_due": False, "codes": {}}


@pytest.mark.parametrize("text, key, words", [
    ('[colums]\naccount_id = "a"\n', "colums", ["unknown key", "did you mean columns?"]),
    ('[columns]\nacount_id = "a"\n', "columns.acount_id", ["unknown column", "did you mean account_id?"]),
    ('[status]\ndays_pastdue = true\n', "status.days_pastdue", ["did you mean days_past_due?"]),
    ('[columns]\nbalance = 5\n', "columns.balance", ["the name of the tape's column", "found 5"]),
    ('[columns]\nbalance = ""\n', "columns.balance", ["the name of the tape's column"]),
    ('[columns]\nbalance = "upb"\nprincipal = "upb"\n', "columns.balance", ["named once", "principal"]),
    ('columns = "x"\n', "columns", ["expected a table", 'found "x"']),
    ('[status]\ndays_past_due = "no"\n', "status.days_past_due", ["expected true or false", 'found "no"']),
    ('[status]\ncodes = "C"\n', "status.codes", ["expected a table"]),
    ('[status]\ncodes = { "X" = "M7" }\n', "status.codes.X", ["a status among current", 'found "M7"']),
    ('[status]\ncodes = { "WO" = "chargedoff" }\n', "status.codes.WO", ["did you mean charged_off?"]),
])
def test_read_mapping_refuses_with_the_key(tmp_path, text, key, words):
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as exc:
        reader.read_mapping(path)
    assert exc.value.key == key
    one_line(exc, f"{path}: {key}: ", *words)


# --- renamed ---------------------------------------------------------------------------------------

def test_renamed_gives_our_names_and_keeps_the_rest(tmp_path):
    tape = pd.DataFrame({"loan_no": [7, 8], "dpd": [0, 31], "extra": ["a", "b"]})
    out = reader.renamed(tape, {"account_id": "loan_no", "status": "dpd"}, tmp_path / "t.csv", tmp_path / "m.toml")
    assert list(out.columns) == ["account_id", "status", "extra"]
    assert out["account_id"].tolist() == [7, 8] and out["status"].tolist() == [0, 31]


def test_renamed_may_swap_names(tmp_path):
    """A column of the tape with one of our names may itself be mapped away."""
    tape = pd.DataFrame({"loan_no": [7], "account_id": [1]})
    out = reader.renamed(tape, {"account_id": "loan_no", "borrower_id": "account_id"}, tmp_path / "t.csv", None)
    assert out["account_id"].tolist() == [7] and out["borrower_id"].tolist() == [1]


def test_renamed_refuses_a_column_not_in_the_tape(tmp_path):
    tape = pd.DataFrame({"loan_no": [7]})
    with pytest.raises(ScenarioError) as exc:
        reader.renamed(tape, {"account_id": "loan_nr"}, tmp_path / "t.csv", tmp_path / "m.toml")
    one_line(exc, f"{tmp_path / 'm.toml'}: columns.account_id:", f"a column of {tmp_path / 't.csv'}", "'loan_nr'",
             "did you mean loan_no?")


def test_renamed_refuses_a_name_the_tape_already_has(tmp_path):
    tape = pd.DataFrame({"loan_no": [7], "account_id": [1]})
    with pytest.raises(ScenarioError) as exc:
        reader.renamed(tape, {"account_id": "loan_no"}, tmp_path / "t.csv", tmp_path / "m.toml")
    one_line(exc, "columns.account_id:", "found a column 'account_id'", "map or drop one")


# --- bucket ----------------------------------------------------------------------------------------

# docs/calibration.md and docs/model.md: 0 current, 1-30 M1, 31-60 M2, ..., 151-180 M6, beyond 180 charged_off.
EDGES = [("current", 0, 0), ("M1", 1, 30), ("M2", 31, 60), ("M3", 61, 90), ("M4", 91, 120), ("M5", 121, 150),
         ("M6", 151, 180)]


@pytest.mark.parametrize("status, low, high", EDGES)
def test_bucket_edges_and_a_day_either_side(status, low, high):
    names = [s for s, _, _ in EDGES] + ["charged_off"]
    k = names.index(status)
    days = pd.Series([low - 1, low, high, high + 1], index=[10, 11, 12, 13])
    out = reader.bucket(days)
    expected = [names[k - 1] if low > 0 else "current", status, status, names[k + 1]]
    assert out.tolist() == expected and out.index.tolist() == [10, 11, 12, 13]


def test_bucket_beyond_180_is_charged_off_and_floats_round_up():
    assert reader.bucket(pd.Series([181.0, 400.0, 10_000.0, 0.5, 30.5])).tolist() == [
        "charged_off", "charged_off", "charged_off", "M1", "M2"]


# --- as_month_numbers ------------------------------------------------------------------------------

def test_month_text_as_month_numbers():
    out = reader.as_month_numbers(pd.Series(["2024-01", "2024-02", "2023-12", "2024-01-31"]))
    assert out.tolist() == [2024 * 12, 2024 * 12 + 1, 2023 * 12 + 11, 2024 * 12]


def test_dates_as_month_numbers():
    dates = pd.Series(pd.to_datetime(["2020-03-15", "2021-01-01"]))
    assert reader.as_month_numbers(dates).tolist() == [2020 * 12 + 2, 2021 * 12]
    objects = pd.Series([datetime.date(2022, 12, 1), datetime.date(2023, 1, 1)])
    assert reader.as_month_numbers(objects).tolist() == [2022 * 12 + 11, 2023 * 12]


def test_a_stray_text_among_dates_is_nan():
    out = reader.as_month_numbers(pd.Series(["2024-01", "soon", "2024-03"]))
    assert out.iloc[0] == 2024 * 12 and np.isnan(out.iloc[1]) and out.iloc[2] == 2024 * 12 + 2


@pytest.mark.parametrize("column", [pd.Series([1, 2, 3]), pd.Series([1.0, 2.5]), pd.Series(["1", "2", "x"]),
                                    pd.Series([True, False]), pd.Series(["soon", "later"])],
                         ids=["ints", "floats", "numbers as text", "bools", "no date at all"])
def test_numbers_or_no_dates_are_not_months(column):
    assert reader.as_month_numbers(column) is None


# --- read_table ------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_read_table_of_csv_and_parquet(tmp_path, suffix):
    table = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [0.5, 1.5, np.nan]})
    path = tmp_path / f"t{suffix}"
    table.to_csv(path, index=False) if suffix == ".csv" else table.to_parquet(path)
    out = reader.read_table(path, "a table")
    pd.testing.assert_frame_equal(out, table)
    assert out.attrs["file"] == str(path)


def test_read_table_refuses_a_missing_file(tmp_path):
    with pytest.raises(ScenarioError) as exc:
        reader.read_table(tmp_path / "none.csv", "a loan tape")
    one_line(exc, f"{tmp_path / 'none.csv'}: -: expected a loan tape (.parquet or .csv), found no such file")


def test_read_table_refuses_an_unreadable_file(tmp_path):
    (tmp_path / "t.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ScenarioError) as exc:
        reader.read_table(tmp_path / "t.parquet", "a loan tape")
    one_line(exc, f"{tmp_path / 't.parquet'}: -:", "cannot be read")


def test_read_table_refuses_a_column_named_twice(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,a\n1,2,3\n")
    with pytest.raises(ScenarioError) as exc:
        reader.read_table(tmp_path / "t.csv", "a loan tape")
    one_line(exc, f"{tmp_path / 't.csv'}: column a:", "2 columns")


# --- read ------------------------------------------------------------------------------------------

def test_read_sorts_types_and_numbers_the_rows(tmp_path):
    path = tmp_path / "t.csv"
    frame(GOOD).to_csv(path, index=False)
    tape, report = reader.read(path)
    assert report == ""
    assert tape["account_id"].tolist() == [1, 1, 1, 2, 2] and tape["month"].tolist() == [1, 2, 3, 1, 2]
    assert tape["row"].tolist() == [1, 2, 5, 3, 4]                   # the file's data rows
    assert list(tape["product"].cat.categories) == list(PRODUCTS) and tape["prepaid"].dtype == bool
    assert tape["status"].tolist() == ["current", "M1", "M2", "current", "current"]
    assert tape.attrs["file"] == str(path) and tape["months_on_book"].dtype == np.int64


def test_read_parquet_with_dates_counts_months_from_the_first(tmp_path):
    tape = frame(GOOD)
    tape["month"] = tape["month"].map({1: "2023-11", 2: "2023-12", 3: "2024-01"})
    tape["origination_month"] = "2023-11"
    tape.to_parquet(tmp_path / "t.parquet")
    out, _ = reader.read(tmp_path / "t.parquet")
    assert out["month"].tolist() == [1, 2, 3, 1, 2] and out["origination_month"].tolist() == [1] * 5


def test_read_through_a_mapping_with_days_past_due_and_codes(tmp_path):
    tape = frame(GOOD).rename(columns={"account_id": "loan_no", "status": "dpd", "balance": "upb"})
    tape["dpd"] = ["0", "15", "0", "PD", "45"]                       # file rows 1 .. 5
    tape.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "m.toml").write_text('[columns]\naccount_id = "loan_no"\nstatus = "dpd"\nbalance = "upb"\n'
                                     '[status]\ndays_past_due = true\ncodes = { "PD" = "closed" }\n')
    out, _ = reader.read(tmp_path / "t.csv", tmp_path / "m.toml")
    assert out.set_index("row")["status"].to_dict() == {1: "current", 2: "M1", 3: "current", 4: "closed", 5: "M2"}
    assert out.attrs["columns"] == {"account_id": "loan_no", "status": "dpd", "balance": "upb"}


def test_read_errors_name_the_tapes_own_column(tmp_path):
    tape = frame(GOOD).rename(columns={"balance": "upb"})
    tape.loc[3, "upb"] = -5.0
    tape.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "m.toml").write_text('[columns]\nbalance = "upb"\n')
    with pytest.raises(ScenarioError) as exc:
        reader.read(tmp_path / "t.csv", tmp_path / "m.toml")
    one_line(exc, f"{tmp_path / 't.csv'}: row 4: column upb: expected an amount >= 0", "found -5.0")


@pytest.mark.parametrize("column, value, expected", [
    ("product", "car_loan", "a product among"), ("prepaid", "maybe", "true or false"),
    ("status", "M9", "a status among"), ("months_on_book", 1.5, "a whole number from 0"),
    ("month", -1, "a whole number >= 0")])
def test_read_refuses_a_bad_value_by_row_and_column(tmp_path, column, value, expected):
    tape = frame(GOOD).astype({column: object})
    tape.loc[2, column] = value
    tape.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ScenarioError) as exc:
        reader.read(tmp_path / "t.csv")
    one_line(exc, f"{tmp_path / 't.csv'}: row 3: column {column}: expected {expected}")


def test_read_refuses_a_missing_column_by_the_mappings_name(tmp_path):
    frame(GOOD).drop(columns="balance").assign(upb_x=1.0).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ScenarioError) as exc:
        reader.read(tmp_path / "t.csv")
    one_line(exc, f"{tmp_path / 't.csv'}: column balance:", "found no balance")


def test_read_refuses_a_tape_of_no_rows(tmp_path):
    frame(GOOD).iloc[:0].to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ScenarioError) as exc:
        reader.read(tmp_path / "t.csv")
    one_line(exc, f"{tmp_path / 't.csv'}: -:", "found none")


def test_read_stops_at_a_bad_row_or_drops_it(tmp_path):
    rows = GOOD + [(2, LINE_PRODUCT, 2, 4, "current", 80.0)]          # file row 6: account 2's month 2 again
    frame(rows).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ScenarioError) as exc:
        reader.read(tmp_path / "t.csv")
    one_line(exc, f"{tmp_path / 't.csv'}: row 6: column month:", "1 bad rows: 1 duplicate account-month",
             "--on-bad-rows drop")
    tape, report = reader.read(tmp_path / "t.csv", on_bad_rows="drop")
    assert sorted(tape["row"]) == [1, 2, 3, 4, 5]
    assert report.splitlines() == [f"{tmp_path / 't.csv'}: 1 bad rows dropped: 1 duplicate account-month",
                                   "  row 6: column month: expected one row an account and month, found another "
                                   "for month 2"]


def test_read_refuses_months_on_book_out_of_step(tmp_path):
    rows = [r if r[:3] != (1, LOAN_PRODUCT, 3) else (1, LOAN_PRODUCT, 3, 5, "M2", 900.0) for r in GOOD]
    frame(rows).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ScenarioError) as exc:
        reader.read(tmp_path / "t.csv")
    one_line(exc, f"{tmp_path / 't.csv'}: row 5: column months_on_book: expected 2", "found 5")


# --- without_bad_rows, in_step, until, bad_rows -----------------------------------------------------

def test_without_bad_rows_lists_the_first_and_counts_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "SHOWN", 2)
    rows = [(1, LOAN_PRODUCT, 1, 0, "current", 100.0)] + [(1, LOAN_PRODUCT, 1, 0, "current", 100.0)] * 3 \
        + [(2, LOAN_PRODUCT, 1, 0, "current", 100.0), (2, LOAN_PRODUCT, 2, 1, "current", 120.0)]
    tape, report = reader.without_bad_rows(sorted_tape(rows), tmp_path / "t.csv", "drop")
    lines = report.splitlines()
    assert lines[0] == f"{tmp_path / 't.csv'}: 4 bad rows dropped: 3 duplicate account-month; 1 balance grows on a loan"
    assert [line.split(":")[0] for line in lines[1:3]] == ["  row 2", "  row 3"] and lines[3] == "  ... and 2 more"
    assert tape["row"].tolist() == [1, 5]


def test_without_bad_rows_leaves_a_good_tape_alone(tmp_path):
    tape = sorted_tape(GOOD)
    out, report = reader.without_bad_rows(tape, tmp_path / "t.csv", "stop")
    assert report == "" and out is tape


def test_in_step_allows_gaps_in_the_months(tmp_path):
    tape = sorted_tape([(1, LOAN_PRODUCT, 3, 0, "current", 9.0), (1, LOAN_PRODUCT, 4, 1, "current", 8.0),
                        (1, LOAN_PRODUCT, 7, 4, "current", 7.0), (2, LOAN_PRODUCT, 5, 10, "current", 1.0)])
    tape.attrs["file"] = str(tmp_path / "t.csv")
    reader.in_step(tape)


def test_in_step_refuses_months_on_book_that_stand_still(tmp_path):
    tape = sorted_tape([(1, LOAN_PRODUCT, 3, 0, "current", 9.0), (1, LOAN_PRODUCT, 4, 1, "current", 8.0),
                        (1, LOAN_PRODUCT, 5, 1, "current", 7.0)])
    tape.attrs["file"] = str(tmp_path / "t.csv")
    with pytest.raises(ScenarioError) as exc:
        reader.in_step(tape)
    one_line(exc, f"{tmp_path / 't.csv'}: row 3: column months_on_book: expected 2", "0 in month 3", "found 1")


def test_until_keeps_the_months_up_to_it(tmp_path):
    tape = sorted_tape(GOOD)
    out = reader.until(tape, tmp_path / "t.csv", 2)
    assert sorted(out["row"]) == [1, 2, 3, 4] and out["month"].max() == 2


@pytest.mark.parametrize("month", [0, 3, 4])
def test_until_refuses_a_month_outside_the_tape_but_its_last(tmp_path, month):
    with pytest.raises(ScenarioError) as exc:
        reader.until(sorted_tape(GOOD), tmp_path / "t.csv", month)
    one_line(exc, f"{tmp_path / 't.csv'}: --until-month: expected a month from 1 to 2", f"found {month}")


def test_bad_rows_of_a_good_tape_are_none():
    bad = reader.bad_rows(sorted_tape(GOOD))
    assert bad.empty and list(bad.columns) == ["row", "kind", "column", "what"]


def test_bad_rows_status_jumps_only_between_consecutive_months():
    bad = reader.bad_rows(sorted_tape([
        (1, LOAN_PRODUCT, 1, 0, "current", 9.0), (1, LOAN_PRODUCT, 2, 1, "M2", 9.0),     # jump: bad
        (2, LOAN_PRODUCT, 1, 0, "current", 9.0), (2, LOAN_PRODUCT, 3, 2, "M2", 9.0),     # a month apart: not
        (3, LOAN_PRODUCT, 1, 0, "M3", 9.0), (3, LOAN_PRODUCT, 2, 1, "current", 9.0),     # a cure: not
        (4, LOAN_PRODUCT, 1, 0, "M1", 9.0), (4, LOAN_PRODUCT, 2, 1, "M2", 9.0),          # one bucket: not
        (5, LOAN_PRODUCT, 1, 0, "M6", 9.0), (5, LOAN_PRODUCT, 2, 1, "charged_off", 0.0)]))
    assert bad[["row", "kind", "column"]].values.tolist() == [[2, "status jumps more than one bucket", "status"]]
    assert bad["what"].iat[0] == "expected at most one bucket worse a month, found current then M2"


def test_bad_rows_balance_grows_on_loans_not_on_lines():
    bad = reader.bad_rows(sorted_tape([
        (1, LOAN_PRODUCT, 1, 0, "current", 100.0), (1, LOAN_PRODUCT, 2, 1, "current", 100.004),   # within a cent
        (1, LOAN_PRODUCT, 3, 2, "current", 100.5),                                               # grows: bad
        (2, LINE_PRODUCT, 1, 0, "current", 100.0), (2, LINE_PRODUCT, 2, 1, "current", 500.0),
        (3, LOAN_PRODUCT, 1, 0, "current", 10.0), (4, LOAN_PRODUCT, 1, 0, "current", 90.0)]))     # new accounts
    assert bad[["row", "kind", "column"]].values.tolist() == [[3, "balance grows on a loan", "balance"]]
    assert bad["what"].iat[0] == "expected a loan's balance not to grow, found 100.00 then 100.50"


def test_bad_rows_name_a_row_once_by_its_first_kind():
    bad = reader.bad_rows(sorted_tape([(1, LOAN_PRODUCT, 1, 0, "current", 100.0),
                                       (1, LOAN_PRODUCT, 2, 1, "M3", 200.0)]))              # jumps and grows
    assert bad[["row", "kind"]].values.tolist() == [[2, "status jumps more than one bucket"]]
