"""Tapes, mapping files, books and offers are read as strictly as scenarios (issue 26): each bad one
ends in one `error:` line naming the file and the key or column (and the row), with exit status 2,
no traceback, nothing written and every input unchanged (real subprocesses)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from test_bad_input import SMALL, cli, one_error_line

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

CALIBRATE = ("calibrate", "t.csv", "--out", "cal.toml", "--extends", "small.toml")
MAPPED = CALIBRATE + ("--mapping", "m.toml")
BACKTEST = ("backtest", "t.csv", "small.toml", "--paths", "2", "--out", "bt", "--quiet")
VALIDATE = ("validate", "booked.toml")


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A small tape and its offers, 12 months long with most delinquent accounts rolling on to a
    charge-off (so that every state has accounts to calibrate), beside the scenario that made them."""
    folder = tmp_path_factory.mktemp("tape")
    (folder / "small.toml").write_text(SMALL)
    done = cli("run", "small.toml", "--set", "run.horizon_months=12", "--set", "behaviour.roll_rates=[0.95, 0.95, "
               "0.95, 0.95, 0.95, 0.95]", "--tape", "t.csv", "--out", "run", "--quiet", "--no-report", cwd=folder)
    assert done.returncode == 0, done.stderr
    shutil.rmtree(folder / "run")
    return folder


# Each maker writes a case's inputs into `folder` from the good tape and offers, and returns the words
# (beyond the file and key of its row) that the error line must hold, such as the row.

def _tape(folder: Path, tape: pd.DataFrame) -> None:
    tape.to_csv(folder / "t.csv", index=False)


def mapping(text: str):
    def make(folder, tape, offers):
        _tape(folder, tape)
        (folder / "m.toml").write_text(text)
        return []
    return make


def changed(column: str, change):
    """The tape with `change(tape)` -> the index of the row changed; the error names that row and column."""
    def make(folder, tape, offers):
        tape = tape.astype({column: object})
        i = change(tape)
        _tape(folder, tape)
        return [f"row {i + 1}: column {column}"]
    return make


def visa(tape):
    tape.loc[5, "product"] = "visa"
    return 5


def set_mob(months):
    def change(tape):
        i = int(tape.index[tape["months_on_book"] == 3][0])      # an account the tape originates, 3 months on
        tape.loc[i, "months_on_book"] = months
        return i
    return change


def far_month(tape):
    tape.loc[len(tape) - 1, "month"] = 10**15
    return len(tape) - 1


def text_ids(folder, tape, offers):
    _tape(folder, tape.assign(account_id="A" + tape["account_id"].astype(str)))
    return ["row ", "'A"]


def more_recovered(folder, tape, offers):
    _tape(folder, tape.assign(recovered=tape["recovered"] * 200))
    return ["recoveries exceed charge-offs"]


def spend_in_millions(folder, tape, offers):
    _tape(folder, tape.assign(spend=tape["spend"] * 1e6))
    return ["row ", "at most 1e+08"]


def wide_text_month(folder, tape, offers):
    """A text month in the last row of a CSV wide enough to be typed chunk by chunk by a low-memory reader."""
    wide = pd.concat([tape] * 4, ignore_index=True)
    wide = pd.concat([wide, pd.DataFrame(0, index=wide.index, columns=[f"x{k}" for k in range(300)])], axis=1)
    wide = wide.astype({"month": object})
    wide.loc[len(wide) - 1, "month"] = "x"
    _tape(folder, wide)
    return [f"row {len(wide)}: column month", "'x'"]


def twice(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """`frame` with a second column of the name `column` (holding other values), first."""
    out = pd.concat([frame[[column]].iloc[::-1].reset_index(drop=True), frame], axis=1)
    assert list(out.columns).count(column) == 2
    return out


def two_principals(folder, tape, offers):
    _tape(folder, twice(tape, "principal"))
    return []


def two_principals_parquet(folder, tape, offers):
    table = twice(tape, "principal")
    pq.write_table(pa.Table.from_arrays([pa.array(table.iloc[:, k]) for k in range(table.shape[1])],
                                        names=list(table.columns)), folder / "t.parquet")
    return []


def two_taken(folder, tape, offers):
    _tape(folder, tape)
    twice(offers, "taken").to_csv(folder / "o.csv", index=False)
    return []


def dearer_taken_more(folder, tape, offers):
    """Offers taken with a chance from 0.1 for the cheapest to 0.9 for the dearest."""
    _tape(folder, tape)
    chance = 0.1 + 0.8 * offers["apr"].rank(pct=True)
    offers.assign(taken=np.random.default_rng(1).random(len(offers)) < chance).to_csv(folder / "o.csv", index=False)
    return ["more often"]


BOOK = "product,principal,state,pd_12m,limit\nhuabei,100,current,0.02,5000\n"


def booked(text: bytes):
    def make(folder, tape, offers):
        (folder / "book.csv").write_bytes(text)
        (folder / "booked.toml").write_text('[run]\nname = "b"\n[book]\nfile = "book.csv"\n')
        return []
    return make


CASES = [   # id, maker, command, words the error line holds
    # 1. mapping files, as strictly as scenarios
    ("mapped-column-the-tape-lacks", mapping('[columns]\nbalance = "upb"\n'), MAPPED,
     ["m.toml", "columns.balance", "'upb'"]),
    ("column-name-a-number", mapping("[columns]\nbalance = 3\n"), MAPPED, ["m.toml", "columns.balance", "found 3"]),
    ("days-past-due-a-string", mapping('[status]\ndays_past_due = "no"\n'), MAPPED,
     ["m.toml", "status.days_past_due", "true or false"]),
    ("status-a-number", mapping("status = 3\n"), MAPPED, ["m.toml", ": status: ", "a table"]),
    ("codes-a-number", mapping("[status]\ncodes = 3\n"), MAPPED, ["m.toml", "status.codes", "a table"]),
    ("columns-a-number", mapping("columns = 3\n"), MAPPED, ["m.toml", ": columns: ", "a table"]),
    ("rename-onto-a-column-the-tape-has", mapping('[columns]\naccount_id = "borrower_id"\n'), MAPPED,
     ["m.toml", "columns.account_id", "'account_id'"]),
    ("unknown-table", mapping('[colums]\naccount_id = "loan_no"\n'), MAPPED,
     ["m.toml", "colums", "did you mean columns"]),
    ("unknown-column", mapping('[columns]\nacount_id = "loan_no"\n'), MAPPED,
     ["m.toml", "columns.acount_id", "did you mean account_id"]),
    ("unknown-status-code", mapping('[status]\ncodes = { "C" = "curent" }\n'), MAPPED,
     ["m.toml", "status.codes.C", "did you mean current"]),
    # 2. products
    ("unknown-product", changed("product", visa), CALIBRATE, ["t.csv", "'visa'", "huabei, jiebei, yuefu"]),
    # 4. columns named twice, unreadable files, library warnings
    ("tape-with-two-principal-columns", two_principals, CALIBRATE, ["t.csv", "column principal"]),
    ("parquet-tape-with-two-principal-columns", two_principals_parquet,
     ("calibrate", "t.parquet", "--out", "cal.toml", "--extends", "small.toml"), ["t.parquet", "column principal"]),
    ("offers-with-two-taken-columns", two_taken, CALIBRATE + ("--offers", "o.csv"), ["o.csv", "column taken"]),
    ("book-with-two-principal-columns", booked(BOOK.replace("limit", "principal").encode()), VALIDATE,
     ["book.csv", "column principal"]),
    ("binary-book", booked(b"a,b\n1,2\n\x00\x01\x02,3,4,5\n"), VALIDATE, ["book.csv", "cannot read the file"]),
    ("text-month-in-a-wide-csv", wide_text_month, CALIBRATE, ["t.csv"]),
    # 5. months, months on book and ids
    ("months-on-book-beyond-the-tape", changed("months_on_book", set_mob(40)), BACKTEST, ["t.csv", "found 40"]),
    ("months-on-book-ahead-of-its-month", changed("months_on_book", set_mob(4)), BACKTEST, ["t.csv", "found 4"]),
    ("text-account-ids", text_ids, BACKTEST, ["t.csv", "column account_id"]),
    ("month-ten-to-the-fifteenth", changed("month", far_month), CALIBRATE, ["t.csv", "600 months"]),
    # 6. derived quantities, named by the input that caused them, before anything is written
    ("recoveries-exceed-charge-offs", more_recovered, CALIBRATE, ["t.csv", "column recovered"]),
    ("line-spend-in-millions", spend_in_millions, CALIBRATE, ["t.csv", "column spend"]),
    ("take-up-rising-with-the-apr", dearer_taken_more, CALIBRATE + ("--offers", "o.csv"), ["o.csv", "column taken"]),
]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("make, command, words", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_error_line(made, tmp_path, make, command, words):
    shutil.copy(made / "small.toml", tmp_path)
    tape, offers = pd.read_csv(made / "t.csv"), pd.read_csv(made / "t_offers.csv")
    words = words + make(tmp_path, tape, offers)
    before = snapshot(tmp_path)
    one_error_line(cli(*command, cwd=tmp_path), *words)
    assert snapshot(tmp_path) == before                  # nothing written, no input changed


def test_offers_all_taken_keep_the_bases_takeup_and_say_so(made, tmp_path):
    shutil.copy(made / "small.toml", tmp_path)
    _tape(tmp_path, pd.read_csv(made / "t.csv"))
    pd.read_csv(made / "t_offers.csv").assign(taken=True).to_csv(tmp_path / "o.csv", index=False)
    done = cli(*CALIBRATE, "--offers", "o.csv", cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    said = [line for line in done.stdout.splitlines() if line.startswith("take-up: not refitted")]
    assert len(said) == 1 and "kept" in said[0], done.stdout
    written = (tmp_path / "cal.toml").read_text()
    assert f"# {said[0]}" in written and "takeup_base" not in written.replace(said[0], "")


def test_a_mapping_may_give_days_past_due_and_codes_together(made, tmp_path):
    """Days past due with the lender's own word for a charge-off: the same tape as ours, read back."""
    ours = pd.read_csv(made / "t.csv")
    days = {"current": 0, "M1": 12, "M2": 45, "M3": 61, "M4": 100, "M5": 130, "M6": 175, "charged_off": "WO"}
    theirs = ours.rename(columns={"status": "dpd"}).assign(dpd=ours["status"].map(lambda s: days.get(s, s)))
    theirs.to_csv(tmp_path / "lender.csv", index=False)
    (tmp_path / "m.toml").write_text('[columns]\nstatus = "dpd"\n[status]\ndays_past_due = true\n'
                                     'codes = { "WO" = "charged_off" }\n')
    from simulator.tape import reader

    read, _ = reader.read(tmp_path / "lender.csv", tmp_path / "m.toml")
    again, _ = reader.read(made / "t.csv")
    assert (read["status"] == "charged_off").any()
    np.testing.assert_array_equal(read["status"].to_numpy(), again["status"].to_numpy())
