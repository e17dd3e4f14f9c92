"""Loading a scenario (simulator/config/loader.py): renamed keys still read (with a one-line notice),
both names refused, in files, overrides, parents and sweeps."""
from __future__ import annotations

import pytest

from simulator.config import loader
from simulator.config.loader import RENAMED, load_scenario
from simulator.config.schema import ScenarioError

RUN = '[run]\nname = "t"\n'
OLD = {"products.yuefu.late_fee_daily": 0.0007, "products.yuefu.min_price": 50.0, "products.yuefu.max_price": 9000.0}
NEW = {RENAMED[key]: value for key, value in OLD.items()}


def _table(keys: dict) -> str:
    """The keys as one [products.yuefu] table."""
    return "[products.yuefu]\n" + "".join(f"{key.rsplit('.', 1)[1]} = {value!r}\n" for key, value in keys.items())


def _notices(old: list[str], file) -> str:
    return "".join(f"notice: {file}: {key} is now {RENAMED[key]}\n" for key in old)


@pytest.fixture
def new_scenario(scenario_file):
    """The scenario with the keys under their new names, resolved."""
    return load_scenario(scenario_file(RUN + _table(NEW), "new.toml")).resolved()


def test_old_names_in_a_file_give_the_same_scenario_with_a_notice(scenario_file, new_scenario, capsys):
    path = scenario_file(RUN + _table(OLD))
    loaded = load_scenario(path)
    assert capsys.readouterr().err == _notices(list(OLD), path)
    assert loaded.resolved() == new_scenario
    assert loaded.scenario.products.yuefu.penalty_daily_rate == 0.0007


def test_old_names_in_overrides_give_the_same_scenario(scenario_file, new_scenario, capsys):
    path = scenario_file(RUN)
    for overrides in ([f"{key}={value!r}" for key, value in OLD.items()], OLD):
        assert load_scenario(path, overrides).resolved() == new_scenario
        assert capsys.readouterr().err == _notices(list(OLD), path)


def test_an_override_by_the_old_name_replaces_the_new_name_of_the_file(scenario_file, capsys):
    path = scenario_file(RUN + _table({"products.yuefu.penalty_daily_rate": 0.0001}))
    loaded = load_scenario(path, ["products.yuefu.late_fee_daily=0.0009"])
    assert loaded.scenario.products.yuefu.penalty_daily_rate == 0.0009
    assert capsys.readouterr().err == _notices(["products.yuefu.late_fee_daily"], path)


def test_a_table_given_whole_by_an_override_is_renamed_too(scenario_file, capsys):
    path = scenario_file(RUN)
    loaded = load_scenario(path, {"products.yuefu": {"late_fee_daily": 0.0002}})
    assert loaded.scenario.products.yuefu.penalty_daily_rate == 0.0002
    assert capsys.readouterr().err == _notices(["products.yuefu.late_fee_daily"], path)


def test_a_child_gives_the_new_name_of_its_parents_old_one(scenario_file, capsys):
    parent = scenario_file(RUN + _table({"products.yuefu.late_fee_daily": 0.0003}), "parent.toml")
    child = scenario_file('extends = "parent.toml"\n' + _table({"products.yuefu.penalty_daily_rate": 0.0004}))
    assert load_scenario(child).scenario.products.yuefu.penalty_daily_rate == 0.0004
    assert capsys.readouterr().err == _notices(["products.yuefu.late_fee_daily"], parent)


def test_a_swept_old_name_sweeps_the_new_key(scenario_file, capsys):
    path = scenario_file(RUN + '[sweep]\n"products.yuefu.late_fee_daily" = [0.0003, 0.0006]\n')
    loaded = load_scenario(path)
    assert loaded.dims == [("penalty_daily_rate", "products.yuefu.penalty_daily_rate", [0.0003, 0.0006])]
    assert [cell.products.yuefu.penalty_daily_rate for cell in loaded.cells] == [0.0003, 0.0006]
    assert capsys.readouterr().err == _notices(["products.yuefu.late_fee_daily"], path)


BOTH = "expected either products.yuefu.late_fee_daily or products.yuefu.penalty_daily_rate (its new name), found both"


@pytest.mark.parametrize("text, overrides, key", [
    (_table({"products.yuefu.late_fee_daily": 0.0003, "products.yuefu.penalty_daily_rate": 0.0004}), [],
     "products.yuefu.late_fee_daily"),
    ("", {"products.yuefu": {"late_fee_daily": 0.0003, "penalty_daily_rate": 0.0004}}, "products.yuefu.late_fee_daily"),
    ('[sweep]\n"products.yuefu.late_fee_daily" = [0.0003]\n"products.yuefu.penalty_daily_rate" = [0.0004]\n', [],
     "sweep.products.yuefu.late_fee_daily"),
], ids=["file", "override", "sweep"])
def test_both_names_are_refused_in_one_line(scenario_file, capsys, text, overrides, key):
    path = scenario_file(RUN + text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path, overrides)
    assert str(err.value) == f"{path}: {key}: {BOTH}"
    assert capsys.readouterr().err == ""


def test_renamed_keys_are_renamed_within_their_table():
    defaults = loader.defaults()
    for old, new in RENAMED.items():
        table, key = old.rsplit(".", 1)
        new_table, new_key = new.rsplit(".", 1)
        node = defaults
        for part in table.split("."):
            node = node[part]
        assert new_table == table and new_key in node and key not in node
