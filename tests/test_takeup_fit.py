"""Take-up refitted from offers (docs/calibration.md, "Take-up"), at unit level: the offers table read
strictly, the price regressor by hand, a saturated two-price fit whose estimates are known in closed
form, and the cases in which the base is kept or the fit refused."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from simulator.config.schema import ScenarioError
from simulator.config.loader import load_scenario
from simulator.fitting.scorecard_fit import MIN_BADS
from simulator.fitting.takeup_fit import price_term, read, refit


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Policy, scorecard and segments with the values the hand computations use: reference APR 0.15,
    score slope 0.3, base score 600, pdo 20, channels prime 1.0 and near_prime 0.6."""
    path = tmp_path_factory.mktemp("base") / "s.toml"
    path.write_text('[run]\nname = "takeup"\n')
    sc = load_scenario(path).scenario
    policy = sc.policy.model_copy(update={"takeup_reference_apr": 0.15, "sensitivity_score_slope": 0.3})
    card = sc.scorecard.model_copy(update={"base_score": 600.0, "pdo": 20.0})
    segments = {"prime": sc.applicants.segments["prime"].model_copy(update={"price_sensitivity": 1.0}),
                "near_prime": sc.applicants.segments["near_prime"].model_copy(update={"price_sensitivity": 0.6})}
    return policy, card, segments


def two_prices(taken_at_reference: int, taken_dearer: int, n: int = 100, apr: float = 0.15,
               dearer: float = 0.25) -> pd.DataFrame:
    """n offers at `apr` and n at `dearer`, all jiebei at the base score, the first so many taken."""
    return pd.DataFrame({"product": "jiebei", "score": 600.0, "apr": [apr] * n + [dearer] * n,
                         "taken": [i < taken_at_reference for i in range(n)] + [i < taken_dearer for i in range(n)]})


def test_a_missing_column_is_named(tmp_path):
    """The first of product, score, apr, taken that the table lacks."""
    (tmp_path / "o.csv").write_text("product,score,taken\njiebei,600,true\n")
    with pytest.raises(ScenarioError) as info:
        read(tmp_path / "o.csv")
    assert info.value.file == str(tmp_path / "o.csv") and info.value.key == "column apr"
    assert "product, score, apr, taken" in info.value.what and "found no apr" in info.value.what


@pytest.mark.parametrize("column, bad, words", [
    ("product", "visa", "one of huabei, jiebei, yuefu, found 'visa'"),
    ("score", "high", "a number, found 'high'"),
    ("apr", "7", "an APR from 0 to 5"),
    ("apr", "-0.1", "an APR from 0 to 5"),
    ("taken", "yes", "true or false, found 'yes'"),
])
def test_a_bad_value_is_named_by_row_and_column(tmp_path, column, bad, words):
    """The first bad value, by its data row (from 1) and its column."""
    rows = pd.DataFrame({"product": ["jiebei"] * 3, "score": ["600"] * 3, "apr": ["0.2"] * 3, "taken": ["true"] * 3})
    rows.loc[1, column] = bad
    rows.to_csv(tmp_path / "o.csv", index=False)
    with pytest.raises(ScenarioError) as info:
        read(tmp_path / "o.csv")
    assert info.value.key == f"row 2: column {column}" and words in info.value.what


def test_taken_reads_true_false_and_one_zero(tmp_path):
    """true/false in any case and 1/0 (docs: true or false); score and APR as numbers; Parquet alike."""
    table = pd.DataFrame({"product": ["huabei", "jiebei", "yuefu", "jiebei"], "score": ["612.5", "580", "600", "1e3"],
                          "apr": ["0.18", "0", "5", "0.3"], "taken": ["True", "false", "1", "0"], "segment": "prime"})
    table.to_csv(tmp_path / "o.csv", index=False)
    offers = read(tmp_path / "o.csv")
    assert offers["taken"].tolist() == [True, False, True, False]
    assert offers["score"].tolist() == [612.5, 580.0, 600.0, 1000.0] and offers["apr"].tolist() == [0.18, 0.0, 5.0, 0.3]
    offers.to_parquet(tmp_path / "o.parquet")
    again = read(tmp_path / "o.parquet")
    assert again["taken"].tolist() == [True, False, True, False] and again["apr"].tolist() == [0.18, 0.0, 5.0, 0.3]


def test_the_price_term_is_the_documented_regressor(base):
    """x = -s x channel x (APR - reference), s = max(0, 1 + 0.3 x (score - 600) / 20), channel the
    segment's (1 for none or an unknown one), by hand."""
    offers = pd.DataFrame({"score": [600.0, 640.0, 300.0, 620.0, 600.0], "apr": [0.25, 0.35, 0.05, 0.10, 0.15],
                           "segment": ["prime", "near_prime", "affiliate", None, "near_prime"]})
    expected = [-0.1, -1.6 * 0.6 * 0.2, 0.0, 1.3 * 0.05, 0.0]
    np.testing.assert_allclose(price_term(offers, *base), expected, atol=1e-12)
    np.testing.assert_allclose(price_term(offers.drop(columns="segment"), *base),
                               [-0.1, -1.6 * 0.2, 0.0, 1.3 * 0.05, 0.0], atol=1e-12)


def test_two_prices_fit_exactly(base):
    """With offers at two prices the logistic fit is saturated: the take-up at the reference APR is
    its share taken (60 of 100), the sensitivity (logit 0.6 - logit 0.3) / 0.1, their standard errors
    sqrt(0.6 x 0.4 / 100) (the binomial's, by the delta method) and sqrt(1/24 + 1/21) / 0.1; each
    APR bin's fitted mean is its share taken."""
    found = refit(two_prices(60, 30), *base)
    takeup, slope = found["keys"]["takeup_base"], found["keys"]["price_sensitivity"]
    assert math.isclose(takeup.value, 0.6, rel_tol=1e-6) and math.isclose(takeup.se, math.sqrt(0.0024), rel_tol=1e-5)
    assert math.isclose(slope.value, (logit(0.6) - logit(0.3)) / 0.1, rel_tol=1e-6)
    assert math.isclose(slope.se, math.sqrt(1 / 24 + 1 / 21) / 0.1, rel_tol=1e-5)
    assert takeup.n == slope.n == found["n"] == 200 and found["note"] == ""
    by = found["by_product"]
    assert list(by) == ["jiebei"] and by["jiebei"].value == 0.45 and by["jiebei"].n == 200
    bins = found["bins"]
    assert bins["offers"].tolist() == [100, 100] and bins["apr"].tolist() == [0.15, 0.25]
    np.testing.assert_allclose(bins["taken"], [0.6, 0.3])
    np.testing.assert_allclose(bins["fitted"], bins["taken"], rtol=1e-6)


def test_too_few_taken_keeps_the_base_and_says_why(base):
    """Fewer than 10 offers taken: no keys, a note with the counts, the rates by product still given."""
    assert MIN_BADS == 10
    offers = two_prices(6, 3).assign(product=["huabei"] * 100 + ["yuefu"] * 100)
    found = refit(offers, *base)
    assert found["keys"] == {} and "bins" not in found
    assert found["note"].startswith("take-up: not refitted (9 offers taken and 191 not; at least 10 of each")
    assert "takeup_base and price_sensitivity are kept" in found["note"]
    assert found["by_product"]["huabei"].value == 0.06 and found["by_product"]["yuefu"].value == 0.03
    assert refit(two_prices(7, 3), *base)["note"] == ""       # ten of each is enough


def test_a_takeup_that_rounds_to_one_is_refused_naming_the_file(base, tmp_path):
    """Half taken at APR 1.0 and 1 in 100 at 1.1 extrapolate to a take-up of 1 - 1e-17 at the reference
    APR 0.15: an error naming the offers' file and column taken."""
    two_prices(50, 1, apr=1.0, dearer=1.1).to_csv(tmp_path / "o.csv", index=False)
    with pytest.raises(ScenarioError) as info:
        refit(read(tmp_path / "o.csv"), *base)
    assert info.value.file == str(tmp_path / "o.csv") and info.value.key == "column taken"
    assert "expected a take-up between 0 and 1" in info.value.what and "1 to 1.1" in info.value.what


@pytest.mark.parametrize("taken_at_reference, taken_dearer", [(10, 0), (100, 40), (0, 10)])
def test_offers_separated_by_price_keep_the_base_and_say_why(base, taken_at_reference, taken_dearer):
    """Taken and not-taken offers that do not overlap in price (none taken at one price, or all) have
    no finite estimate of the price sensitivity: the base is kept with a note, no estimate is given
    (a solver would stop at a sensitivity in the hundreds with a huge standard error)."""
    found = refit(two_prices(taken_at_reference, taken_dearer), *base)
    assert found["keys"] == {}
    assert found["note"].startswith("take-up: not refitted (the offers taken and not taken do not overlap in price")


def test_a_bad_number_is_shown_as_a_number(tmp_path):
    """A numeric bad value is shown as the number it is, not as numpy's repr."""
    two_prices(60, 30).assign(apr=7.0).to_csv(tmp_path / "o.csv", index=False)
    with pytest.raises(ScenarioError) as info:
        read(tmp_path / "o.csv")
    assert info.value.what.endswith("found 7.0")
