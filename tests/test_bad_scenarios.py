"""Scenarios, overrides and sweeps that must be refused in one line (issue 26): run names that are
paths, derived macro shifts out of range, percents for fractions, duplicated or huge sweeps, missing
books, overrides that are not one value, symlink loops, sizes that overflow. Each case runs as real
subprocesses (`validate` and `run`) that write nothing; the Python API raises the same error."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

import simulator
from simulator.config.schema import MAX_SWEEP_CELLS, ScenarioError
from simulator.config.loader import load_scenario, to_toml
from test_bad_input import SMALL, cli, one_error_line

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

ROOT = Path(__file__).resolve().parents[1]
LINK = "link:"   # a file given as LINK + target is a symbolic link to target


def _values(n: int, step: float = 1.0) -> str:
    return "[" + ", ".join(repr(i * step) for i in range(n)) + "]"


SEGMENT = ("share = 0.15\nincome_median = 4000.0\ndti_mean = 0.40\ntenure_mean_years = 1.0\n"
           "past_delinquency_mean = 1.2\nloan_amount_median = 3500.0\nprice_sensitivity = 0.6\n")

# id: (the files, the first being the scenario run; --set items; words the error line must hold besides
# the scenario file's name)
CASES = {
    # 1. A run name is one plain folder name inside reports/.
    "name ..": ({}, ['run.name=".."'], ["run.name", "plain folder name"]),
    "name .": ({}, ['run.name="."'], ["run.name", "plain folder name"]),
    "name ../x": ({}, ['run.name="../x"'], ["run.name", "plain folder name"]),
    "name /abs": ({}, ['run.name="/abs"'], ["run.name", "plain folder name"]),
    "name a/../../b": ({}, ['run.name="a/../../b"'], ["run.name", "plain folder name"]),
    "name with a separator": ({}, ['run.name="a\\\\b"'], ["run.name", "plain folder name"]),
    "name with NUL": ({"s.toml": SMALL.replace('name = "b"', 'name = "a\\u0000b"')}, [], ["run.name"]),
    "name empty": ({}, ['run.name=""'], ["run.name", "plain folder name"]),
    "name too long": ({}, [f'run.name="{"n" * 101}"'], ["run.name", "at most 100"]),
    "income basis unknown": ({}, ['run.income_basis="accrual"'],
                             ["run.income_basis", "'effective_interest' or 'cash'"]),
    "forecast weights": ({}, ["provisions.scenarios={baseline=0.5, severe=0.4}"],
                         ["provisions.scenarios", "sum to 1", "0.9"]),
    "forecast not a path": ({}, ["provisions.scenarios={boom=1.0}"],
                            ["provisions.scenarios", "names of macro.paths", "'boom'"]),
    # 2. The factor shift derived from unemployment stays within +-10 sd.
    "unemployment 100%": ({}, ["macro.paths.jobs.unemployment=[100.0]", 'macro.path="jobs"'],
                          ["macro.paths.jobs.unemployment", "macro.unemployment_sensitivity", "-80.58 sd"]),
    "sensitivity 1e300": ({}, ['macro.path="adverse"', "macro.unemployment_sensitivity=1e300"],
                          ["macro.paths.adverse.unemployment", "macro.unemployment_sensitivity", "1e+300"]),
    "sensitivity swept": ({}, ['macro.path="adverse"', 'sweep."macro.unemployment_sensitivity"=[1.3, 1e300]'],
                          ["macro.paths.adverse.unemployment", "sweep cell unemployment_sensitivity=1e+300"]),
    # 3. Percent where a fraction belongs.
    "max_dti 45": ({}, ["policy.max_dti=45"], ["policy.max_dti", "fraction"]),
    "limit_raise 10": ({}, ["products.huabei.limit_raise=10"], ["products.huabei.limit_raise", "fraction"]),
    "risk_margin 45": ({}, ["policy.risk_margin=45"], ["policy.risk_margin", "fraction"]),
    "dti_sd 15": ({}, ["applicants.dti_sd=15"], ["applicants.dti_sd"]),
    # 4. Sweeps: distinct values as the key holds them, a bounded number of cells, books that exist.
    "sweep 560 and 560.0": ({}, ['sweep."policy.cutoff_score"=[560, 560.0]'],
                            ["sweep.policy.cutoff_score", "distinct", "560.0"]),
    "sweep of a million cells": ({"s.toml": SMALL + f'[sweep]\n"policy.cutoff_score" = {_values(1000)}\n'
                                                    f'"scorecard.coef_age" = {_values(1000, 0.001)}\n'},
                                 [], ["sweep", f"at most {MAX_SWEEP_CELLS:,}", "1,000,000"]),
    "sweep one cell too many": ({}, [f'sweep."policy.cutoff_score"={_values(MAX_SWEEP_CELLS + 1)}'],
                                ["sweep", f"{MAX_SWEEP_CELLS + 1:,}"]),
    "book missing": ({}, ['book.file="nowhere.csv"'], ["book.file", "nowhere.csv"]),
    "book a folder": ({}, ['book.file="."'], ["book.file", "directory"]),
    "swept book missing": ({"s.toml": SMALL, "book.csv": "not read: the other cell fails first\n"},
                           ['sweep."book.file"=["book.csv", "nowhere.csv"]'],
                           ["book.file", "nowhere.csv", 'sweep cell file="nowhere.csv"']),
    # 5. One --set is one key and one value on one line.
    "newline in a value": ({}, ["run.paths=1\nrun.seed=2"], ["run.paths", "line break"]),
    "newline in a key": ({}, ["run.pa\nths=1"], ["run.pa\\nths", "dotted key"]),
    # 7. A loop of symbolic links.
    "extends a symlink loop": ({"c.toml": 'extends = "a.toml"\n', "a.toml": LINK + "b.toml", "b.toml": LINK + "a.toml"},
                               [], ["extends", "a.toml", "symbolic links"]),
    "scenario a symlink loop": ({"a.toml": LINK + "b.toml", "b.toml": LINK + "a.toml"}, [], ["symbolic link"]),
    # 8. Sizes with an upper bound.
    "threads 2**70": ({}, [f"engine.threads={2**70}"], ["engine.threads", "1024"]),
    "threads 2**80": ({}, [f"engine.threads={2**80}"], ["engine.threads", "1024"]),
    "threads 1025": ({}, ["engine.threads=1025"], ["engine.threads", "1024"]),
    "block_size 2**80": ({}, [f"engine.block_size={2**80}"], ["engine.block_size", "2147483647"]),
    "recovery lag 1e11 months": ({}, [f"behaviour.recovery_lag_months={10**11}"], ["behaviour.recovery_lag_months", "600"]),
    "raise after 2**70 months": ({}, [f"products.huabei.raise_after_months={2**70}"],
                                 ["products.huabei.raise_after_months", "600"]),
    "dti_sd 1e300": ({}, ["applicants.dti_sd=1e300"], ["applicants.dti_sd"]),
    # 9. A renamed key under both its names.
    "old and new name": ({"s.toml": SMALL + "[products.yuefu]\nlate_fee_daily = 0.0003\npenalty_daily_rate = 0.0004\n"},
                         [], ["products.yuefu.late_fee_daily", "products.yuefu.penalty_daily_rate", "found both"]),
    "old and new name swept": ({}, ['sweep."products.yuefu.min_price"=[50.0]', 'sweep."products.yuefu.min_amount"=[60.0]'],
                               ["sweep.products.yuefu.min_price", "products.yuefu.min_amount", "found both"]),
}


def _make(folder: Path, files: dict[str, str]) -> Path:
    """Write the files (SMALL as s.toml when none is given); the scenario is the first."""
    files = files or {"s.toml": SMALL}
    for name, text in files.items():
        if text.startswith(LINK):
            (folder / name).symlink_to(text[len(LINK):])
        else:
            (folder / name).write_text(text)
    return folder / next(iter(files))


def _snapshot(folder: Path) -> dict[str, object]:
    """Every entry under the folder: a link's target, a file's bytes, a folder's mark."""
    out = {}
    for top, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = Path(top) / name
            key = str(path.relative_to(folder))
            out[key] = (LINK + os.readlink(path) if path.is_symlink() else "dir" if path.is_dir()
                        else path.read_bytes())
    return out


@pytest.mark.parametrize("case", CASES)
def test_refused_in_one_line_writing_nothing(case, tmp_path):
    files, sets, words = CASES[case]
    scenario = _make(tmp_path, files)
    before = _snapshot(tmp_path)
    options = [arg for item in sets for arg in ("--set", item)]
    for command in (["validate"], ["run", "--quiet", "--no-report"]):   # run: the default folder reports/<name>
        done = cli(command[0], str(scenario), *options, *command[1:], cwd=tmp_path)
        one_error_line(done, f"error: {scenario}: ", *words)
        assert _snapshot(tmp_path) == before, command
    with pytest.raises(ScenarioError) as err:
        simulator.load(scenario, sets)
    assert done.stderr == f"error: {err.value}\n"


# Overrides from Python that are not one dotted key and one value of the key's kind.
API_CASES = {
    "key with a newline": ({"a\nb": 1}, "a\\nb"),
    "key holding two keys": ({"a=1\nb": 1}, "a=1\\nb"),
    "key that is no key": ({"run.paths = 3 #": 1}, "run.paths = 3 #"),
    "list where an integer belongs": ({"run.paths": [1, 2]}, "run.paths"),
    "table where an integer belongs": ({"run.paths": {"a": 1}}, "run.paths"),
    "None": ({"run.paths": None}, "run.paths"),
    "bytes": ({"run.name": b"x"}, "run.name"),
    "a set": ({"behaviour.roll_rates": {0.5}}, "behaviour.roll_rates"),
    "float too large for its square": ({"applicants.dti_sd": 1e300}, "applicants.dti_sd"),
    "integer past int64": ({"products.huabei.raise_after_months": 2**70}, "products.huabei.raise_after_months"),
}


@pytest.mark.parametrize("case", API_CASES)
def test_api_overrides_raise_scenario_error(case, tmp_path):
    overrides, key = API_CASES[case]
    scenario = _make(tmp_path, {})
    with pytest.raises(ScenarioError) as err:
        simulator.load(scenario, overrides)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{scenario}: {key}: "), message


QUOTED = {
    "segment names that need quotes": (
        SMALL + '[applicants.segments.prime]\nshare = 0.4\n[applicants.segments.near_prime]\nshare = 0.3\n'
        f'[applicants.segments."near prime"]\n{SEGMENT}[applicants.segments."é.\\"x\\" \\u007f"]\n{SEGMENT}'),
    "a macro path with a dotted name": SMALL + '[macro]\npath = "my.path 2"\n[macro.paths."my.path 2"]\nshift = [-1.5]\n',
}
SHIPPED = sorted(p.name for p in (ROOT / "scenarios").glob("*.toml"))


@pytest.mark.parametrize("case", SHIPPED + sorted(QUOTED))
def test_printed_scenario_reads_back_the_same(case, tmp_path):
    if case in QUOTED:
        path = _make(tmp_path, {"q.toml": QUOTED[case]})
    else:
        path = ROOT / "scenarios" / case
    done = cli("validate", str(path), "--print")
    assert done.returncode == 0, done.stderr
    assert done.stdout == to_toml(load_scenario(path).resolved())
    tomllib.loads(done.stdout)
    printed = tmp_path / "printed.toml"
    printed.write_text(done.stdout)
    assert load_scenario(printed).resolved() == load_scenario(path).resolved()


def test_renamed_key_read_with_a_one_line_notice(tmp_path):
    scenario = _make(tmp_path, {"s.toml": SMALL + "[products.yuefu]\nlate_fee_daily = 0.0003\n"})
    done = cli("validate", str(scenario), "--print")
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"notice: {scenario}: products.yuefu.late_fee_daily is now products.yuefu.penalty_daily_rate\n"
    assert tomllib.loads(done.stdout)["products"]["yuefu"]["penalty_daily_rate"] == 0.0003


def test_what_is_still_accepted(tmp_path):
    """The checks refuse only what they are for: a plain dotted name, a swept integer on a float key
    (held as a float), a derived shift at the bound, a book that exists."""
    scenario = _make(tmp_path, {"s.toml": SMALL, "book.csv": "product,principal,state,pd_12m\n"})
    loaded = simulator.load(scenario, {"run.name": "a.b-c_1", "sweep": {"policy.cutoff_score": [560, 600.0]},
                                       "macro.paths.x.unemployment": [13.0], "macro.path": "x",
                                       "macro.unemployment_reference": 5.0, "macro.unemployment_sensitivity": 1.25,
                                       "book.file": "book.csv",
                                       "policy.max_dti": 1.0})
    assert loaded.dims == [("cutoff_score", "policy.cutoff_score", [560.0, 600.0])]
    assert [type(v) for v in loaded.dims[0][2]] == [float, float]
    assert loaded.scenario.macro.monthly_shift() == pytest.approx([-10.0])
    assert loaded.book_paths() == [tmp_path / "book.csv"]
