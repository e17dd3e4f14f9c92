"""The loan tape (`simulator run --tape`): its rows add up to the run's own sums on path 0, to the cent."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import simulator
from simulator.engine import simulation
from simulator.config.schema import ScenarioError
from simulator.config.loader import load_scenario

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

SMALL = ["run.paths=2", "applicants.monthly_volume=400", "run.horizon_months=20", "applicants.origination_months=10"]


@pytest.fixture(scope="module")
def taped(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tape")
    scenario = folder / "s.toml"
    scenario.write_text('[run]\nname = "t"\n')
    loaded = load_scenario(scenario, SMALL)
    ds = simulator.run(loaded, tape=folder / "tape.parquet")
    return loaded, ds, pd.read_parquet(folder / "tape.parquet"), folder


def cents(x) -> np.ndarray:
    return np.round(np.asarray(x, dtype=float) * 100).astype(np.int64)


def test_tape_adds_up_to_path_0(taped):
    """Open rows are the accounts and balances by state; charge-offs, recoveries and payments are the
    flows (payments: principal repaid and prepaid, interest, fees and penalty) of path 0."""
    _, ds, tape, _ = taped
    path0 = ds.isel(path=0)
    opened = tape[tape["status"].isin(list(ds["state"].values))]
    by_state = opened.groupby(["month", "product", "status"], observed=True).agg(
        accounts=("account_id", "size"), balance=("balance", "sum"))
    for (month, product, state), row in by_state.iterrows():
        cell = path0.sel(month=month, product=product, state=state).sum("score_band")
        assert row["accounts"] == int(cell["accounts"]) and cents(row["balance"]) == cents(cell["balance"])
    assert len(opened) == int(path0["accounts"].sum())
    sums = tape.groupby("month")[["charged_off", "recovered", "amount_paid"]].sum()
    flows = path0.sum(("product", "score_band"))
    months = sums.index.values
    assert np.array_equal(cents(sums["charged_off"]), cents(flows["charged_off"].sel(month=months)))
    assert np.array_equal(cents(sums["recovered"]), cents(flows["recovered"].sel(month=months)))
    paid = (flows["repaid"] + flows["prepaid"] + flows["interest_income"] + flows["fee_income"]
            + flows["penalty_income"]).sel(month=months)
    assert np.abs(cents(sums["amount_paid"]) - cents(paid)).max() <= 2     # sums of rounded yuan
    closed = tape[tape["closed"]].groupby("month").size()
    exits = (flows["prepaid_accounts"] + flows["matured_accounts"] + flows["closed_accounts"]).sel(month=closed.index)
    assert np.array_equal(closed.values, exits.values)
    assert int(tape["prepaid"].sum()) == int(flows["prepaid_accounts"].sum())
    # An account that pays on time pays what fell due (a loan) or at least it (a line's minimum).
    paying = tape[(tape["status"] == "current") & (tape["months_on_book"] > 0) & (tape["amount_due"] > 0)]
    loans = paying["product"] != "huabei"
    assert len(paying) > 1000 and loans.any() and (~loans).any()
    assert np.array_equal(cents(paying.loc[loans, "amount_paid"]), cents(paying.loc[loans, "amount_due"]))
    assert (cents(paying.loc[~loans, "amount_paid"]) >= cents(paying.loc[~loans, "amount_due"])).all()


def test_tape_rows_follow_each_account(taped):
    """Each account has one row a month from its origination until it closes or is charged off (and
    recovery rows after), months on book counting from 0, its terms the same on every row."""
    _, _, tape, _ = taped
    for _, rows in tape.groupby("account_id"):
        months = rows["month"].values
        assert np.array_equal(months, np.arange(months[0], months[0] + len(months)))
        assert np.array_equal(rows["months_on_book"].values, months - rows["origination_month"].values)
        assert rows[["product", "apr", "score_band"]].nunique().max() == 1
        if rows["charged_off"].sum() > 0:
            after = rows[rows["month"] > rows.loc[rows["charged_off"] > 0, "month"].iloc[0]]
            assert (after["status"] == "charged_off").all() and (after["balance"] == 0).all()


def test_tape_is_the_same_whatever_the_threads(taped, tmp_path):
    loaded, _, tape, _ = taped
    simulator.run(loaded, tape=tmp_path / "one.parquet", threads=1, block_size=7)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one.parquet"), tape)


def test_bad_tape_requests_say_so(taped, tmp_path):
    loaded, _, _, folder = taped
    for path, what in ((tmp_path / "tape.txt", "ending in .parquet or .csv"),
                       (tmp_path / "no" / "tape.csv", "existing folder")):
        with pytest.raises(ScenarioError) as info:
            simulator.run(loaded, tape=path)
        assert info.value.key == "--tape" and what in info.value.what
    swept = load_scenario(folder / "s.toml", SMALL + ['sweep."policy.cutoff_score"=[560, 600]'])
    with pytest.raises(ScenarioError) as info:
        simulator.run(swept, tape=tmp_path / "t.parquet")
    assert "without a sweep" in info.value.what
    with pytest.raises(ScenarioError) as info:
        simulation.check_tape_memory(tmp_path / "t.parquet", np.ones(10**6, dtype=np.int32), 360)   # 33 GiB
    assert "GiB" in info.value.what and not (tmp_path / "t.parquet").exists()


def test_tape_from_the_command_line(taped, tmp_path):
    """`simulator run --tape FILE.csv` writes the CSV; a bad suffix is a one-line error, exit 2."""
    _, _, tape, folder = taped
    base = [sys.executable, "-m", "simulator", "run", str(folder / "s.toml"), "--quiet", "--no-report",
            "--out", str(tmp_path / "run"), *[a for s in SMALL for a in ("--set", s)]]
    done = subprocess.run(base + ["--tape", str(tmp_path / "tape.csv")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(tmp_path / "tape.csv")) == len(tape)
    done = subprocess.run(base + ["--tape", str(tmp_path / "tape.json")], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--tape" in done.stderr


def test_tape_carries_each_applications_features_and_score(taped):
    """A borrower's features and score on the tape are its application's (the applicants drawn by the run),
    and the score falls in the tape's score band."""
    from simulator.model import population, scoring

    loaded, _, tape, _ = taped
    sc = loaded.scenario
    apps = population.applicants(sc)
    scores = scoring.score_applicants(apps, sc.scorecard, sc.applicants, sc.run.seed)["score"]
    first = tape.drop_duplicates("account_id")
    where = np.searchsorted(apps["id"], first["borrower_id"].to_numpy())
    assert np.array_equal(apps["id"][where], first["borrower_id"].to_numpy())
    for name in population.FEATURE_NAMES:
        np.testing.assert_array_equal(first[name].to_numpy(), apps[name][where], err_msg=name)
    np.testing.assert_array_equal(first["score"].to_numpy(), scores[where])
    labels = np.asarray(scoring.band_labels(sc.scorecard.bands))
    assert (labels[scoring.score_band(first["score"].to_numpy(), sc.scorecard.bands)]
            == first["score_band"].astype(str).to_numpy()).all()


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_tape_written_in_parts_is_the_whole(taped, tmp_path, suffix):
    """The tape is built and written a few accounts at a time (memory holds one part): the file is the
    same as the whole table written at once."""
    from simulator.tape import writer
    from simulator.model.origination import prepare

    loaded, _, _, _ = taped
    sc = loaded.scenario
    accounts, _ = prepare(sc)
    kernel_tape = simulation.run_accounts(sc, accounts, tape=True)["tape"]
    writer.write(tmp_path / f"parts{suffix}", writer.frames(sc, accounts, kernel_tape, at_once=97))
    writer.write(tmp_path / f"whole{suffix}", writer.frame(sc, accounts, kernel_tape))
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    pd.testing.assert_frame_equal(read(tmp_path / f"parts{suffix}"), read(tmp_path / f"whole{suffix}"))
    assert len(read(tmp_path / f"whole{suffix}")) > 1000
