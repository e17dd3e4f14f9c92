"""Existing books read from CSV or Parquet: columns, conversions and errors naming file, row and column."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.model import book, terms
from simulator.codes import LINE, METHOD_CODES, METHODS, PAYER_TYPES, PRODUCTS, STATES
from simulator.config.schema import Scenario, ScenarioError
from simulator.config.loader import load_scenario


def scenario(tmp_path: Path, *overrides: str) -> Scenario:
    file = tmp_path / "s.toml"
    file.write_text('[run]\nname = "t"\n')
    return load_scenario(file, list(overrides)).scenario


def read_book(path: Path, sc: Scenario) -> dict[str, np.ndarray]:
    """The book at `path` as the scenario reads it: its lines' default spend and its scorecard."""
    return book.read_book(path, terms.of_kind(sc.applicants, "spend_median", LINE), sc.scorecard)


def good_book() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product": ["jiebei", "jiebei", "jiebei"],
            "principal": [10000.0, 2500.5, 800.0],
            "apr": [0.146, 0.0, 0.219],
            "term_months": [12, 6, 3],
            "method": ["equal_installment", "equal_principal", "interest_first"],
            "months_on_book": [0, 5, 2],
            "state": ["current", "M1", "M6"],
            "overdue": [0.0, 400.0, 800.0],
            "pd_12m": [0.02, 0.0, 1.0],
        }
    )


def check_good(book: dict[str, np.ndarray]) -> None:
    dtypes = {
        "product": np.int8, "principal": np.float64, "overdue": np.float64, "apr": np.float64, "term": np.int32,
        "method": np.int8, "fee": np.float64, "limit": np.float64, "payer": np.int8, "spend": np.float64,
        "state": np.int8, "pd_12m": np.float64,
    }
    assert set(book) == set(dtypes)
    for key, dtype in dtypes.items():
        assert book[key].dtype == dtype, key
    np.testing.assert_array_equal(book["product"], [1, 1, 1])
    np.testing.assert_array_equal(book["principal"], [10000.0, 2500.5, 800.0])
    np.testing.assert_array_equal(book["apr"], [0.146, 0.0, 0.219])
    np.testing.assert_array_equal(book["term"], [12, 1, 1])
    np.testing.assert_array_equal(book["overdue"], [0.0, 400.0, 800.0])
    np.testing.assert_array_equal(book["method"], [METHOD_CODES[m] for m in METHODS])
    np.testing.assert_array_equal(book["state"], [0, 1, 6])
    np.testing.assert_array_equal(book["pd_12m"], [0.02, 0.0, 1.0])


def test_read_book_csv(tmp_path):
    path = tmp_path / "book.csv"
    good_book().to_csv(path, index=False)
    check_good(read_book(path, scenario(tmp_path)))


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_read_book_parquet(tmp_path, suffix):
    path = tmp_path / f"book{suffix}"
    good_book().to_parquet(path, index=False)
    check_good(read_book(path, scenario(tmp_path)))


def test_score_replaces_pd(tmp_path):
    sc = scenario(tmp_path)
    s = sc.scorecard
    frame = good_book().drop(columns="pd_12m")
    frame["score"] = [s.base_score, s.base_score + s.pdo, 500.0]
    path = tmp_path / "book.csv"
    frame.to_csv(path, index=False)
    pd_12m = read_book(path, sc)["pd_12m"]
    assert math.isclose(pd_12m[0], 1 / (1 + s.base_odds))
    assert math.isclose(pd_12m[1], 1 / (1 + 2 * s.base_odds))
    factor = s.pdo / math.log(2)
    odds = math.exp((500.0 - (s.base_score - factor * math.log(s.base_odds))) / factor)
    assert math.isclose(pd_12m[2], 1 / (1 + odds))


BAD = [
    ("product", "visa", "one of huabei, jiebei, yuefu"),
    ("principal", "0", "> 0"),
    ("principal", "-5", "> 0"),
    ("principal", "abc", "> 0"),
    ("principal", "", "> 0"),
    ("apr", "-0.01", ">= 0"),
    ("apr", "nan", ">= 0"),
    ("term_months", "0", "integer >= 1"),
    ("term_months", "6.5", "integer >= 1"),
    ("method", "balloon", "one of equal_installment"),
    ("months_on_book", "-1", "integer >= 0"),
    ("months_on_book", "1.5", "integer >= 0"),
    ("months_on_book", "6", "months_on_book < term_months"),
    ("state", "M7", "one of current, M1"),
    ("state", "charged_off", "one of current, M1"),
    ("pd_12m", "1.5", "[0, 1]"),
    ("pd_12m", "-0.1", "[0, 1]"),
    ("pd_12m", "x", "[0, 1]"),
]


@pytest.mark.parametrize("column, value, expected", BAD)
def test_bad_values_name_file_row_and_column(tmp_path, column, value, expected):
    frame = good_book().astype(str)
    frame.loc[1, column] = value  # data row 2 (term_months there is 6)
    path = tmp_path / "book.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ScenarioError) as info:
        read_book(path, scenario(tmp_path))
    err = info.value
    assert err.file == str(path)
    assert err.key == f"row 2: column {column}"
    assert expected in err.what and repr(value) in err.what
    assert str(path) in str(err) and "row 2" in str(err) and column in str(err)


def test_bad_value_parquet(tmp_path):
    frame = good_book()
    frame.loc[2, "apr"] = -1.0
    path = tmp_path / "book.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(ScenarioError) as info:
        read_book(path, scenario(tmp_path))
    assert info.value.key == "row 3: column apr"
    assert "-1.0" in info.value.what


@pytest.mark.parametrize("column", book.COLUMNS)
def test_missing_column(tmp_path, column):
    path = tmp_path / "book.csv"
    good_book().drop(columns=column).to_csv(path, index=False)
    with pytest.raises(ScenarioError) as info:
        read_book(path, scenario(tmp_path))
    assert (info.value.file, info.value.key, info.value.what) == (str(path), f"column {column}", "missing")


def test_unknown_extension(tmp_path):
    path = tmp_path / "book.xlsx"
    path.write_text("x")
    with pytest.raises(ScenarioError) as info:
        read_book(path, scenario(tmp_path))
    assert info.value.file == str(path) and ".xlsx" in info.value.what


def test_missing_and_unreadable_files(tmp_path):
    sc = scenario(tmp_path)
    with pytest.raises(ScenarioError, match="not found"):
        read_book(tmp_path / "nope.csv", sc)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not a parquet file")
    with pytest.raises(ScenarioError, match="cannot read"):
        read_book(bad, sc)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ScenarioError, match="cannot read"):
        read_book(empty, sc)


def test_states_cover_all(tmp_path):
    frame = pd.concat([good_book().iloc[[0]]] * len(STATES), ignore_index=True)
    frame["state"] = list(STATES)
    frame["overdue"] = [0.0] + [100.0] * (len(STATES) - 1)
    path = tmp_path / "book.csv"
    frame.to_csv(path, index=False)
    np.testing.assert_array_equal(read_book(path, scenario(tmp_path))["state"], np.arange(len(STATES)))


@pytest.mark.parametrize("column", ["apr", "term_months", "method", "months_on_book"])
def test_missing_loan_column(tmp_path, column):
    path = tmp_path / "book.csv"
    good_book().drop(columns=column).to_csv(path, index=False)
    with pytest.raises(ScenarioError) as info:
        read_book(path, scenario(tmp_path))
    assert (info.value.key, info.value.what) == (f"column {column}", "missing")


MIXED = """product,principal,apr,term_months,method,months_on_book,state,overdue,pd_12m,fee_per_period,price,limit,payer,spend
jiebei,5000,0.146,12,equal_installment,3,current,,0.02,,,,,
yuefu,1000,,6,,2,M2,333.34,0.05,0.0075,1500,,,
huabei,1200,,,,,current,,0.03,,,4000,revolver,600
huabei,300,,,,,M1,100,0.08,,,2000,,
"""


def test_mixed_book_of_the_three_products(tmp_path):
    path = tmp_path / "book.csv"
    path.write_text(MIXED)
    sc = scenario(tmp_path)
    got = read_book(path, sc)
    np.testing.assert_array_equal(got["product"], [PRODUCTS.index(p) for p in ("jiebei", "yuefu", "huabei", "huabei")])
    np.testing.assert_array_equal(got["term"][:2], [9, 4])                  # remaining instalments
    np.testing.assert_allclose(got["fee"], [0.0, 1500 * 0.0075, 0.0, 0.0])   # yuan a period
    np.testing.assert_array_equal(got["limit"], [0.0, 0.0, 4000.0, 2000.0])
    np.testing.assert_array_equal(got["payer"][2:], [PAYER_TYPES.index("revolver"), book.NO_PAYER])
    np.testing.assert_allclose(got["spend"], [0.0, 0.0, 600.0, sc.applicants.huabei.spend_median])
    np.testing.assert_allclose(got["overdue"], [0.0, 333.34, 0.0, 100.0])
    np.testing.assert_array_equal(got["method"][1], METHOD_CODES["equal_principal"])


@pytest.mark.parametrize("row, column, value, expected", [
    (3, "limit", "1000", ">= principal"),
    (3, "limit", "", "line's limit"),
    (2, "price", "", "original price"),
    (2, "overdue", "0", "delinquent row"),
    (2, "overdue", "2000", "delinquent row"),
    (1, "overdue", "5", "current row"),
    (3, "payer", "spender", "one of transactor"),
    # Percent where a fraction belongs, and values that would overflow the integer cents.
    (1, "apr", "14.6", "fraction such as 0.146"),
    (1, "principal", "1e17", "at most 1e+08"),
    (1, "term_months", "1e10", "at most 360"),
    (2, "fee_per_period", "0.75", "fraction such as 0.0075"),
    (3, "limit", "1e12", "at most 1e+08"),
])
def test_bad_mixed_book_rows(tmp_path, row, column, value, expected):
    frame = pd.read_csv(io.StringIO(MIXED), dtype=str, keep_default_na=False)
    frame.loc[row - 1, column] = value
    path = tmp_path / "book.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ScenarioError) as info:
        read_book(path, scenario(tmp_path))
    assert info.value.key == f"row {row}: column {column}" and expected in info.value.what


def test_delinquent_rows_need_their_overdue_principal(tmp_path):
    path = tmp_path / "book.csv"
    good_book().drop(columns="overdue").to_csv(path, index=False)
    with pytest.raises(ScenarioError) as info:
        read_book(path, scenario(tmp_path))
    assert info.value.key == "column overdue" and "row 2 is delinquent" in info.value.what


def test_parquet_column_of_dates_is_not_a_principal(tmp_path):
    frame = good_book()
    frame["principal"] = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"])
    path = tmp_path / "book.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(ScenarioError) as info:
        read_book(path, scenario(tmp_path))
    assert info.value.key == "column principal" and "expected numbers" in info.value.what
