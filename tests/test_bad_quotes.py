"""`simulator quote` and `simulator.quote` held to the one-line promise: a percent written for a fraction
(--apr 6.5 for 6.5%), and an amount, term or rate that is text, None or a bool, end in one `error: quote:
--option: expected ..., found ...` line (exit 2), the API raising the same ScenarioError; the limits are the
scenario schema's own."""
from __future__ import annotations

import pytest

import simulator
from test_bad_input import cli, one_error_line

JIEBEI = ["--product", "jiebei", "--amount", "1000", "--term", "12"]
YUEFU = ["--product", "yuefu", "--amount", "1000", "--term", "6"]
HUABEI = ["--product", "huabei", "--amount", "1000", "--term", "6"]
LOAN = {"product": "jiebei", "amount": 1000, "term": 12, "apr": 0.1}

# (case, the command line's arguments or None, the API's arguments or None, words of the error line). Text,
# None and bools reach only the API: the command line reads numbers (argparse says "expected a number, found
# 'x'" for text, tests/test_quotes.py).
CASES = [
    ("apr in percent", [*JIEBEI, "--apr", "6.5"], LOAN | {"apr": 6.5}, ["--apr", "fraction", "found 6.5"]),
    ("daily rate in percent", [*JIEBEI, "--daily-rate", "0.02"], LOAN | {"apr": None, "daily_rate": 0.02},
     ["--daily-rate", "fraction", "found 0.02"]),
    ("yuefu fee in percent", [*YUEFU, "--fee-per-period", "0.5"], {"product": "yuefu", "amount": 1000, "term": 6,
                                                                    "fee_per_period": 0.5},
     ["--fee-per-period", "fraction", "found 0.5"]),
    ("huabei fee in percent", [*HUABEI, "--fee-per-period", "0.25"], {"product": "huabei", "amount": 1000, "term": 6,
                                                                       "fee_per_period": 0.25},
     ["--fee-per-period", "fraction", "found 0.25"]),
    ("apr not finite", [*JIEBEI, "--apr", "inf"], LOAN | {"apr": float("inf")}, ["--apr", "finite"]),
    ("days per year for huabei", [*HUABEI, "--days-per-year", "360"], {"product": "huabei", "amount": 1000, "term": 6,
                                                                        "days_per_year": 360}, ["--days-per-year"]),
    ("amount None", None, LOAN | {"amount": None}, ["--amount", "expected a number, found None"]),
    ("amount True", None, LOAN | {"amount": True}, ["--amount", "expected a number, found True"]),
    ("amount as text", None, LOAN | {"amount": "1000"}, ["--amount", "expected a number", "'1000'"]),
    ("term None", None, LOAN | {"term": None}, ["--term", "expected a number, found None"]),
    ("term as text", None, LOAN | {"term": "12"}, ["--term", "expected a number", "'12'"]),
    ("apr as text", None, LOAN | {"apr": "0.1"}, ["--apr", "expected a number", "'0.1'"]),
    ("daily rate True", None, LOAN | {"apr": None, "daily_rate": True},
     ["--daily-rate", "expected a number, found True"]),
    ("days per year as text", None, LOAN | {"days_per_year": "365"}, ["--days-per-year", "expected a number"]),
    ("fee as text", None, {"product": "yuefu", "amount": 1000, "term": 6, "fee_per_period": "0.01"},
     ["--fee-per-period", "expected a number"]),
]


@pytest.mark.parametrize("argv, kwargs, words", [row[1:] for row in CASES], ids=[row[0] for row in CASES])
def test_bad_quote(tmp_path, argv, kwargs, words):
    if kwargs is not None:
        with pytest.raises(simulator.ScenarioError) as err:
            simulator.quote(**kwargs)
        assert str(err.value).startswith("quote: ") and all(word in str(err.value) for word in words), err.value
    if argv is not None:
        done = cli("quote", *argv, cwd=tmp_path)
        one_error_line(done, "quote", *words)
        assert done.stdout == "" and list(tmp_path.iterdir()) == []
        if kwargs is not None:
            assert done.stderr == f"error: {err.value}\n"


# A quote's rate and a scenario key of the same kind: the same verdict and the same words, above the limit and at it.
SAME_RULES = [
    ({"apr": 6.5}, {"policy.apr_cap": 6.5}),
    ({"apr": 5.0}, {"policy.apr_cap": 5.0}),
    ({"apr": None, "daily_rate": 0.02}, {"products.jiebei.daily_rate_max": 0.02}),
    ({"apr": None, "daily_rate": 0.01}, {"products.jiebei.daily_rate_max": 0.01}),
    ({"product": "huabei", "term": 6, "apr": None, "fee_per_period": 0.5},
     {"products.huabei.instalment_fees": [0.5, 0.5, 0.5, 0.5]}),
    ({"product": "huabei", "term": 6, "apr": None, "fee_per_period": 0.2},
     {"products.huabei.instalment_fees": [0.2, 0.2, 0.2, 0.2]}),
]


@pytest.mark.parametrize("kwargs, overrides", SAME_RULES)
def test_the_quote_holds_rates_to_the_scenarios_limits(tmp_path, kwargs, overrides):
    (tmp_path / "s.toml").write_text('[run]\nname = "q"\n')
    try:
        simulator.load(tmp_path / "s.toml", overrides)
        scenario = None
    except simulator.ScenarioError as exc:
        scenario = exc
    try:
        simulator.quote(**(LOAN | kwargs))
        quoted = None
    except simulator.ScenarioError as exc:
        quoted = exc
    assert (scenario is None) == (quoted is None), (scenario, quoted)
    if scenario is not None:
        assert "not percent" in quoted.what and quoted.what == scenario.what
