"""The results variables' names, descriptions and units (simulator/results/variables.py), held to
docs/results.md: every variable of a Dataset described, its units those of its row, mapped to CF."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from simulator.codes import ACCOUNTING, FLOWS, FUNNEL, REVENUE, STAGES
from simulator.config.loader import load_scenario
from simulator.model.scoring import band_labels
from simulator.results import assemble, pnl, variables
from test_assemble import SMALL, cell_sums

ROOT = Path(__file__).resolve().parents[1]
RESULTS = (ROOT / "docs" / "results.md").read_text()
# docs/results.md's units column says "1" for path_weight, a ratio; display_units says "fraction"
# (both dimensionless, units = "1").
SAID_OTHERWISE = {"path_weight": ("1", "fraction")}


def documented_units() -> dict[str, str]:
    """The units column of each variable's row in docs/results.md (the column before the meaning)."""
    found = {}
    for line in RESULTS.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if len(cells) >= 3:
                for name in re.findall(r"`(\w+)`", cells[0]):
                    found.setdefault(name, cells[-2])
    return found


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results Dataset of one cell, combined from random sums (no run)."""
    path = tmp_path_factory.mktemp("variables") / "s.toml"
    path.write_text('[run]\nname = "t"\n')
    loaded = load_scenario(path, SMALL)
    sc = loaded.scenario
    sums = cell_sums(sc, 2, np.random.default_rng(0))
    cell = assemble.build_dataset(loaded, sc, band_labels(sc.scorecard.bands), sums, "9.9")
    return assemble.combine_cells(loaded, [cell], np.ones(2))


def test_every_description_is_a_sentence_of_text():
    for name, text in variables.DESCRIPTIONS.items():
        assert isinstance(text, str) and len(text) > 5 and text == text.strip(), name


def test_descriptions_name_each_variable_once_in_the_source():
    """A dict literal keeps the last of a repeated key silently: the source must not repeat one."""
    tree = ast.parse(Path(variables.__file__).read_text())
    literal = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                   and any(getattr(t, "id", None) == "DESCRIPTIONS" for t in node.targets))
    keys = [k.value for k in literal.keys]
    assert len(keys) == len(set(keys)) == len(variables.DESCRIPTIONS)


def test_the_datasets_variables_are_exactly_those_described(results):
    assert set(results.data_vars) == set(variables.DESCRIPTIONS)


def test_every_variable_has_a_description_and_units(results):
    for name, var in results.data_vars.items():
        assert var.attrs["description"] and var.attrs["display_units"] and var.attrs["units"], name


def test_display_units_are_the_units_column_of_docs(results):
    documented = documented_units()
    wrong = {}
    for name, var in results.data_vars.items():
        said = variables.display_units(name, var)
        if name in ("pnl", "pnl_yield"):                   # section 10 says them in its text
            continue
        if documented.get(name) != said and SAID_OTHERWISE.get(name) != (documented.get(name), said):
            wrong[name] = (documented.get(name), said)
    assert not wrong, f"docs/results.md units column vs display_units: {wrong}"
    assert variables.display_units("pnl", results["pnl"]) == "yuan" and "in yuan" in RESULTS.split("## 10.")[1][:400]
    assert variables.display_units("pnl_yield", results["pnl_yield"]) == "fraction a year"


@pytest.mark.parametrize("name, dtype, said", [
    ("balance", "f8", "yuan"), ("irb_capital", "f8", "yuan"), ("accounts", "i8", "accounts"),
    ("takeups", "i8", "accounts"), ("borrowers", "i8", "borrowers"), ("approved_applicants", "i8", "applicants"),
    ("cap_bound", "i8", "applications"), ("tail_paths", "i8", "paths"), ("pd_12m", "f8", "fraction"),
    ("raroc", "f8", "fraction a year"), ("mean_apr", "f8", "fraction a year")])
def test_display_units_by_kind(name, dtype, said):
    assert variables.display_units(name, xr.DataArray(np.zeros(2, dtype=dtype))) == said


def test_cf_units_money_is_dimensionless_with_a_currency():
    """UDUNITS has no currency: yuan is units 1 with currency CNY (docs/results.md, section 1)."""
    assert variables.cf_units("yuan") == {"display_units": "yuan", "units": "1", "currency": "CNY"}
    assert "currency = \"CNY\"" in RESULTS and "UDUNITS has no currency" in RESULTS


def test_cf_units_fractions_and_rates():
    assert variables.cf_units("fraction") == {"display_units": "fraction", "units": "1"}
    assert variables.cf_units("fraction a year") == {"display_units": "fraction a year", "units": "year-1"}


@pytest.mark.parametrize("count", ["accounts", "borrowers", "applicants", "applications", "paths"])
def test_cf_units_counts_say_what_they_count(count):
    assert variables.cf_units(count) == {"display_units": count, "units": "1", "count_of": count}


def test_cf_units_are_udunits_spellings(results):
    """Every units attribute is "1" or a power of a time unit, as UDUNITS spells them."""
    for name, var in results.data_vars.items():
        assert re.fullmatch(r"1|year-1", var.attrs["units"]), name
        assert ("currency" in var.attrs) == (var.attrs["display_units"] == "yuan"), name


def test_unit_tables_name_described_variables_and_do_not_overlap():
    tables = [set(variables.COUNT_UNITS), variables.FRACTIONS, variables.ANNUAL_FRACTIONS]
    for table in tables:
        assert table <= set(variables.DESCRIPTIONS), table - set(variables.DESCRIPTIONS)
    assert sum(map(len, tables)) == len(set().union(*tables))


def test_coordinates_are_dimensionless_as_documented():
    assert set(variables.COORDINATES) == {"path", "month", "vintage", "months_on_book", "quantile", "population_group",
                                         "sensitivity_month"}
    assert all(units == "1" and long_name for long_name, units in variables.COORDINATES.values())


def test_transfers_are_the_documented_labels():
    assert variables.TRANSFERS == ("stage_1_to_2", "stage_2_to_3", "stage_2_to_1", "stage_3_to_1", "stage_3_to_2")
    assert len(set(variables.TRANSFERS)) == len(variables.TRANSFERS)
    for label in variables.TRANSFERS:
        assert f"`{label}`" in RESULTS, label
    assert all(0 <= a < len(STAGES) and 0 <= b < len(STAGES) and a != b for a, b in variables.TRANSFER_STAGES)


def test_the_flows_and_the_pnls_inputs_are_described():
    """Every name the Dataset takes from the kernel, and every variable pnl reads, has a description."""
    read_by_pnl = set(REVENUE) | {"funding_cost", "charged_off", "recovered", "balance", "allowance", "path_weight"}
    made = {"net_revenue", "credit_loss_expense", "operating_costs", "pretax_income", "pnl", "pnl_yield"}
    needed = set(FLOWS) | set(ACCOUNTING) | set(FUNNEL) | read_by_pnl | made
    assert needed <= set(variables.DESCRIPTIONS), needed - set(variables.DESCRIPTIONS)
    assert {name for name in pnl.LINES if name in FLOWS or name in ACCOUNTING} <= set(variables.DESCRIPTIONS)


def test_conventions_state_the_documented_buckets():
    text = variables.CONVENTIONS["states"]
    assert "M1 1-30 days past due" in text and "M6 151-180" in text
    for key in variables.CONVENTIONS:
        assert f"| `convention_{key}` |" in RESULTS, key
