"""Calibration from a loan tape (simulator.calibration, `simulator calibrate`): a hand count, and the
round trip of a tape the simulator wrote with known parameters."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simulator
from simulator.fitting import calibration, scorecard_fit, takeup_fit
from simulator.tape import reader
from simulator.tape import writer
from simulator.config.schema import ScenarioError
from simulator.config.loader import load_scenario

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

ROOT = Path(__file__).resolve().parent.parent
TRUTH = {"roll_rates": [0.45, 0.70, 0.85, 0.90, 0.92, 0.95], "prepay_monthly": 0.02, "recovery_rate": 0.15,
         "collection_cost": 0.25, "recovery_lag_months": 6, "prepay_price_sensitivity": 10.0}


def hand_tape() -> pd.DataFrame:
    """Three accounts: A current, M1, M2, current, prepaid; B current, M1, current, closed; C M4 .. M6,
    charged off, then two recovery months."""
    rows = []
    for account, statuses in (("A", ["current", "M1", "M2", "current", "closed"]),
                              ("B", ["current", "M1", "current", "closed"]),
                              ("C", ["M4", "M5", "M6", "charged_off", "charged_off", "charged_off"])):
        for month, status in enumerate(statuses, start=1):
            rows.append({"account_id": account, "product": "jiebei", "month": month, "months_on_book": month,
                         "status": status, "balance": 100.0, "score_band": "x",
                         "charged_off": 200.0 if (account == "C" and month == 4) else 0.0,
                         "recovered": 30.0 if (account == "C" and month > 4) else 0.0,
                         "prepaid": account == "A" and month == 5})
    return pd.DataFrame(rows)


def test_cohort_estimator_is_a_hand_count():
    found = calibration.calibrate(hand_tape())
    rolls, cures = found["rolls"], found["cures"]
    # M1: A rolls to M2, B cures: 1 of 2 each. M2: A cures. M4, M5: C rolls; M6: C is charged off.
    assert (rolls[0].value, rolls[0].n, cures[0].value) == (0.5, 2, 0.5)
    assert (rolls[1].value, cures[1].value, rolls[1].n) == (0.0, 1.0, 1)
    assert rolls[3].value == rolls[4].value == rolls[5].value == 1.0 and rolls[2].n == 0
    assert rolls[0].se == pytest.approx(math.sqrt(0.25 / 2))
    # Current account-months followed by a month: A months 1 and 4, B months 1 and 3; A prepays after month 4.
    assert (found["prepay"].value, found["prepay"].n) == (0.25, 4)
    assert found["recovery"].value == pytest.approx(60 / 200) and found["lag"] == 2


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    """A tape written by the simulator with known parameters (no factor or borrower correlation, no
    fraud, no prepayment sensitivity), its calibration, and the run's path 0."""
    folder = tmp_path_factory.mktemp("calibrate")
    scenario = folder / "s.toml"
    scenario.write_text('[run]\nname = "truth"\n')
    loaded = load_scenario(scenario, ["run.paths=1", "applicants.monthly_volume=6000", "run.horizon_months=30",
                                      "applicants.origination_months=18", "factor.asset_correlation=0",
                                      "factor.roll_correlation=0", "factor.borrower_correlation=0",
                                      "behaviour.fraud_rate=0", "macro.prepay_sensitivity=0"])
    ds = simulator.run(loaded, tape=folder / "tape.parquet")
    return folder, calibration.calibrate(reader.read(folder / "tape.parquet")[0], loaded.scenario), ds.isel(path=0)


def test_round_trip_recovers_the_parameters(round_trip):
    """Every roll, cure, prepayment and recovery estimate is within 3 standard errors of the truth, and
    the standard errors are the binomial formula's."""
    _, found, _ = round_trip
    for k, (roll, cure) in enumerate(zip(found["rolls"], found["cures"])):
        truth = TRUTH["roll_rates"][k]
        assert roll.n > 300 and abs(roll.value - truth) < 3 * roll.se, (k, roll, truth)
        assert abs(cure.value - (1 - truth)) < 3 * cure.se, (k, cure, truth)
        assert roll.se == pytest.approx(math.sqrt(roll.value * (1 - roll.value) / roll.n))
    prepay, sensitivity = found["prepay"], found["prepay_sensitivity"]     # at the reference APR, and by price
    assert abs(prepay.value - TRUTH["prepay_monthly"]) < 3 * prepay.se and prepay.n > 50_000
    assert abs(sensitivity.value - TRUTH["prepay_price_sensitivity"]) < 3 * sensitivity.se, sensitivity
    assert sensitivity.se < 2.5                                               # the tape's prices tell them apart
    share = TRUTH["recovery_rate"] * (1 - TRUTH["collection_cost"])
    assert found["recovery"].value == pytest.approx(share, abs=1e-4)         # recoveries are exact cents of it
    assert found["lag"] == TRUTH["recovery_lag_months"]


def test_realised_bad_rate_by_band_is_the_runs_own(round_trip):
    """The tape's 12-month bad rate by score band counts what the kernel counts on path 0 (accounts
    originated with 12 months on book inside the horizon, and those that reached 90+ within them)."""
    _, found, path0 = round_trip
    accounts = path0["accounts_seasoned_12m"].sum("product")
    bads = path0["bads_12m"].sum("product")
    for band, estimate in found["pd_by_band"].items():
        assert estimate.n == int(accounts.sel(score_band=band))
        assert estimate.value == pytest.approx(int(bads.sel(score_band=band)) / estimate.n, abs=1e-12)
    assert sum(e.n for e in found["pd_by_band"].values()) == int(accounts.sum()) > 10_000


def test_calibrate_writes_a_scenario_that_runs(round_trip, tmp_path):
    """`simulator calibrate TAPE --out FILE --extends BASE` prints the estimates and writes a scenario that
    loads, carries the estimates, and names their intervals and observations in comments."""
    folder, found, _ = round_trip
    out = tmp_path / "calibrated.toml"
    done = subprocess.run([sys.executable, "-m", "simulator", "calibrate", str(folder / "tape.parquet"), "--out",
                           str(out), "--extends", str(folder / "s.toml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "roll M1->M2" in done.stdout and "95%" in out.read_text() and "n " in out.read_text()
    page = (tmp_path / "calibrated_fit.html").read_text()                      # the fit report beside it
    assert page.count("data:image/png;base64,") == 4 and "roll M1-&gt;M2" in page     # rolls, bands, score, take-up
    assert "[scorecard]" in out.read_text() and "discrimination features" in done.stdout
    assert "The tape against the base" in page and "<code>policy.takeup_base</code>" in page
    sc = load_scenario(out).scenario
    np.testing.assert_allclose(sc.behaviour.roll_rates, [e.value for e in found["rolls"]], atol=1e-6)
    assert sc.behaviour.prepay_monthly == pytest.approx(found["prepay"].value, abs=1e-6)
    assert sc.behaviour.prepay_price_sensitivity == pytest.approx(found["prepay_sensitivity"].value, abs=1e-4)
    assert sc.run.name == "calibrated"                                          # results go to reports/calibrated
    base = load_scenario(folder / "s.toml").scenario                           # the rest from the base
    assert sc.factor == base.factor and sc.scorecard.pdo == base.scorecard.pdo
    spend = {"spend_median": sc.applicants.huabei.spend_median, "spend_sigma": sc.applicants.huabei.spend_sigma}
    assert sc.applicants == base.applicants.model_copy(update={
        "huabei": base.applicants.huabei.model_copy(update=spend)})       # only the lines' spend is estimated there


def test_bad_tapes_and_arguments(tmp_path):
    with pytest.raises(ScenarioError) as info:
        reader.read(tmp_path / "none.parquet")
    assert "no such file" in info.value.what
    path = tmp_path / "t.csv"
    hand_tape().drop(columns=["status"]).to_csv(path, index=False)
    with pytest.raises(ScenarioError) as info:
        reader.read(path)
    assert info.value.key == "column status"
    hand_tape().head(0).to_csv(path, index=False)
    with pytest.raises(ScenarioError) as info:
        reader.read(path)
    assert "with rows" in info.value.what
    quiet = hand_tape()
    quiet["status"] = "current"                                                # no delinquency: no roll rates
    quiet.to_csv(path, index=False)
    done = subprocess.run([sys.executable, "-m", "simulator", "calibrate", str(path), "--out", str(tmp_path / "o.toml"),
                           "--extends", str(ROOT / "scenarios" / "baseline.toml")], capture_output=True, text=True)
    assert done.returncode == 2 and "every state M1 .. M6" in done.stderr and not (tmp_path / "o.toml").exists()
    done = subprocess.run([sys.executable, "-m", "simulator", "calibrate", str(path), "--out", str(tmp_path / "o.txt"),
                           "--extends", str(path)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1


DPD = {"current": 0, "M1": 12, "M2": 45, "M3": 61, "M4": 100, "M5": 130, "M6": 175}


def test_a_lenders_tape_through_a_mapping_calibrates_the_same(round_trip, tmp_path):
    """Renamed columns, statuses as days past due in a CSV: the same estimates as the canonical tape."""
    folder, found, _ = round_trip
    base = load_scenario(folder / "s.toml").scenario
    ours = pd.read_parquet(folder / "tape.parquet")
    theirs = ours.rename(columns={"account_id": "loan_no", "month": "snapshot", "status": "dpd", "balance": "upb"})
    theirs["dpd"] = theirs["dpd"].astype(str).map(lambda s: DPD.get(s, s))
    theirs.to_csv(tmp_path / "lender.csv", index=False)
    (tmp_path / "map.toml").write_text('[columns]\naccount_id = "loan_no"\nmonth = "snapshot"\nstatus = "dpd"\n'
                                       'balance = "upb"\n[status]\ndays_past_due = true\n')
    rows, dropped = reader.read(tmp_path / "lender.csv", tmp_path / "map.toml")
    again = calibration.calibrate(rows, base)
    assert dropped == ""
    assert [e.value for e in again["rolls"]] == [e.value for e in found["rolls"]]
    assert again["prepay"].value == found["prepay"].value and again["recovery"].value == found["recovery"].value
    assert again["prepay_sensitivity"].value == found["prepay_sensitivity"].value


def test_bad_rows_are_reported_and_stopped_or_dropped(tmp_path):
    """Each kind of bad row is found by row and column; stop (default) names the first, drop drops them
    all and reports each."""
    rows = hand_tape()
    rows = pd.concat([rows, rows.iloc[[1]]])                                  # a duplicate account-month (A, 2)
    rows.loc[rows.index == 6, "status"] = "M3"                                # B: current, then M3 in month 2
    rows.loc[rows.index == 10, "balance"] = 150.0                            # C: a loan's balance grows
    path = tmp_path / "bad.csv"
    rows.to_csv(path, index=False)
    with pytest.raises(ScenarioError) as info:
        reader.read(path)
    assert info.value.key.startswith("row ") and "3 bad rows" in info.value.what and "--on-bad-rows" in info.value.what
    kept, report = reader.read(path, on_bad_rows="drop")
    assert len(kept) == len(rows) - 3
    for kind in reader.BAD_KINDS:
        assert f"1 {kind}" in report
    assert "column status: expected at most one bucket worse a month, found current then M3" in report
    done = subprocess.run([sys.executable, "-m", "simulator", "calibrate", str(path), "--out", str(tmp_path / "o.toml"),
                           "--extends", str(path)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1


def test_the_shipped_tape_is_what_its_scenario_makes(tmp_path):
    """examples/tape.parquet is path 0 of examples/tape.toml (regenerate it when the model changes:
    the command is in the scenario's header)."""
    loaded = load_scenario(ROOT / "examples" / "tape.toml")
    simulator.run(loaded, tape=tmp_path / "tape.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "tape.parquet"),
                                  pd.read_parquet(ROOT / "examples" / "tape.parquet"))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "tape_offers.parquet"),
                                  pd.read_parquet(ROOT / "examples" / "tape_offers.parquet"))


@pytest.mark.parametrize("column, value, expected", [
    ("month", "2026-01", "a whole number"),
    ("balance", "-5", "an amount >= 0"),
    ("recovered", "n/a", "an amount >= 0"),
    ("prepaid", "maybe", "true or false"),
    ("status", "M9", "a status among"),
])
def test_bad_values_name_the_row_and_column(tmp_path, column, value, expected):
    rows = hand_tape().astype({column: object})
    rows.loc[3, column] = value
    path = tmp_path / "t.csv"
    rows.to_csv(path, index=False)
    with pytest.raises(ScenarioError) as info:
        reader.read(path)
    assert info.value.key == f"row 4: column {column}" and expected in info.value.what


TRUTH_BASE = """[run]
name = "truth"
[factor]
asset_correlation = 0.0
roll_correlation = 0.0
borrower_correlation = 0.0
[behaviour]
fraud_rate = 0.0
[macro]
prepay_sensitivity = 0.0
"""


@pytest.mark.parametrize("wrong", ["", "[scorecard]\nintercept = -4.0\ncoef_dti = 1.5\n"])
def test_the_scorecard_refit_recovers_the_truth(round_trip, tmp_path, wrong):
    """The tape's scorecard (intercept and every coefficient), refitted with the true scenario as base
    or a wrong one (intercept -4.0 for -4.6, coef_dti 1.5 for 2.2), is within 3 standard errors of the
    truth; so is the recalibration of the score (a = 0, b = 1) with the true base. A naive fit of the
    realised bad flags, without the base's own simulation, misses the intercept: realised bad rates
    sit below pd_12m."""
    folder, _, _ = round_trip
    base_path = tmp_path / "base.toml"
    base_path.write_text(TRUTH_BASE + wrong.replace("[scorecard]", "[scorecard]", 1))
    base = load_scenario(base_path).scenario
    truth = load_scenario(folder / "s.toml").scenario.scorecard
    rows = reader.read(folder / "tape.parquet")[0]
    card, note = scorecard_fit.from_tape(rows, folder / "tape.parquet", base_path, base)
    assert note == "" and card["n"] > 50_000 and card["bads"] > 500
    for key, estimate in card["keys"].items():
        assert abs(estimate.value - getattr(truth, key)) < 3 * estimate.se, (key, estimate, getattr(truth, key))
    if not wrong:
        a, b = card["recalibrated"]["intercept"], card["recalibrated"]["slope"]
        assert abs(a.value) < 3 * a.se and abs(b.value - 1.0) < 3 * b.se, (a, b)
    naive = card["tape"]["features"]["intercept"]
    assert abs(naive.value - truth.intercept) > 3 * naive.se
    assert card["discrimination"]["features"]["auc"] > 0.65


def test_line_payer_shares_and_spend_come_back(round_trip):
    """The lines' payer-type shares (solved back to the base's payer_shares at the reference pd) and the
    lognormal median and sigma of their spend are within 3 standard errors of the scenario's."""
    folder, _, _ = round_trip
    truth = load_scenario(folder / "s.toml").scenario
    found = calibration.line_terms(reader.read(folder / "tape.parquet")[0], truth.behaviour)
    for k, share in enumerate(truth.behaviour.payer_shares):
        assert abs(found["payer_shares"][k].value - share) < 3 * found["payer_shares"][k].se, (k, found, share)
    hb, spend = truth.applicants.huabei, found["spend"]["huabei"]
    assert abs(spend["spend_median"].value - hb.spend_median) < 3 * spend["spend_median"].se
    assert abs(spend["spend_sigma"].value - hb.spend_sigma) < 3 * spend["spend_sigma"].se
    assert spend["spend_median"].n > 5_000


def test_roll_rates_by_band_add_up_to_the_pooled(round_trip):
    """By score band, the roll counts and observations add up to the pooled ones."""
    folder, found, _ = round_trip
    for k, pooled in enumerate(found["rolls"]):
        parts = [rolls[k] for rolls, _ in found["by_band"].values() if rolls[k].n]
        assert sum(p.n for p in parts) == pooled.n
        assert sum(round(p.value * p.n) for p in parts) == round(pooled.value * pooled.n)


def test_months_as_dates_calibrate_the_same(tmp_path):
    """Months given as dates (2024-11, 2024-12, ...) become month numbers from the tape's first: the same
    estimates; a value that is not a date is named by row and column."""
    rows = hand_tape()
    dated = rows.assign(month=[f"{2024 + (10 + m) // 12}-{(10 + m) % 12 + 1:02d}" for m in rows["month"]])
    dated.to_csv(tmp_path / "dated.csv", index=False)
    read, _ = reader.read(tmp_path / "dated.csv")
    assert read["month"].tolist() == rows["month"].tolist()
    again, found = calibration.calibrate(read), calibration.calibrate(rows)
    np.testing.assert_array_equal([e.value for e in again["rolls"]], [e.value for e in found["rolls"]])
    dated.loc[3, "month"] = "sometime"
    dated.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ScenarioError) as info:
        reader.read(tmp_path / "bad.csv")
    assert info.value.key == "row 4: column month" and "a date such as" in info.value.what


def test_takeup_comes_back_from_the_offers(round_trip, tmp_path):
    """A run's tape comes with its offers (every approved application); refitted, the take-up curve's
    base and price sensitivity are within 3 standard errors of the scenario's, and the take-up rate by
    product is the share of offers taken that the tape holds as accounts."""
    folder, _, _ = round_trip
    truth = load_scenario(folder / "s.toml").scenario
    offers = takeup_fit.read(writer.offers_path(folder / "tape.parquet"))
    found = takeup_fit.refit(offers, truth.policy, truth.scorecard, truth.applicants.segments)
    for key in ("takeup_base", "price_sensitivity"):
        e = found["keys"][key]
        assert abs(e.value - getattr(truth.policy, key)) < 3 * e.se and e.n > 50_000, (key, e)
    rows = pd.read_parquet(folder / "tape.parquet")
    taken = offers[offers["taken"]]
    accounts = taken["applicant_id"] * 3 + taken["product"].cat.codes.astype(np.int64)
    assert set(accounts) == set(rows["account_id"])
    broken = offers.astype({"apr": object})
    broken.loc[5, "apr"] = "12%"
    broken.to_csv(tmp_path / "offers.csv", index=False)
    with pytest.raises(ScenarioError) as info:
        takeup_fit.read(tmp_path / "offers.csv")
    assert info.value.key == "row 6: column apr"


@pytest.mark.parametrize("events, trials", [(0, 537), (1, 40), (3, 10), (250, 1000), (40, 40)])
def test_a_shares_interval_is_wilsons(events, trials):
    """A share's 95% interval is the Wilson score interval (statsmodels' own), inside [0, 1] and of
    some width with no events or all, where the Wald interval leaves [0, 1] or collapses."""
    from statsmodels.stats.proportion import proportion_confint

    estimate = calibration.binomial(events, trials)
    np.testing.assert_allclose(estimate.interval(), proportion_confint(events, trials, alpha=0.05, method="wilson"),
                               rtol=1e-9, atol=1e-15)
    lo, hi = estimate.interval()
    assert 0.0 <= lo <= estimate.value <= hi <= 1.0 and hi > lo
    row = calibration._row("rate", estimate)
    assert ("no events" in row) == (events == 0) and ("all events" in row) == (events == trials)
