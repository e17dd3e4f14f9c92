"""Results read back, at unit level: the schema this version writes passes its own check, and each
departure the check names is named by file and key, without a run (the schema is built from zero
sums)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.reporting import readback
from simulator.config.schema import ScenarioError
from simulator.config.loader import load_scenario


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> str:
    """The resolved scenario (JSON) of a small default scenario, as a results file holds it."""
    path = tmp_path_factory.mktemp("scenario") / "s.toml"
    path.write_text('[run]\nname = "rb"\nhorizon_months = 6\n')
    return json.dumps(load_scenario(path).resolved(), sort_keys=True)


@pytest.fixture(scope="module")
def schema(resolved):
    return readback.written(resolved, "full")


def refused(ds, path: Path = Path("r/results.nc")) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        readback.check(ds, path)
    assert info.value.file == str(path)
    return info.value


def test_what_this_version_writes_passes_its_own_check(resolved, schema, tmp_path):
    """In both results modes."""
    assert schema.attrs["results_mode"] == "full" and schema.sizes["path"] == 1
    readback.check(schema, tmp_path / "x.nc")
    summary = readback.written(resolved, "summary")
    assert summary.attrs["results_mode"] == "summary"
    readback.check(summary, tmp_path / "x.nc")


def test_the_results_path_of_a_folder_or_a_file():
    assert readback.results_path(Path("reports/base")) == Path("reports/base/results.nc")
    assert readback.results_path(Path("reports/base/other.nc")) == Path("reports/base/other.nc")


def test_a_folder_without_results_is_named(tmp_path):
    with pytest.raises(ScenarioError) as info:
        readback.open_run(tmp_path / "never_run")
    assert info.value.file == str(tmp_path / "never_run" / "results.nc") and "no such file" in info.value.what


def test_the_resolved_scenario_is_described_as_found(schema):
    """Missing: none; a number: the number; a JSON value of another kind: what kind."""
    assert "found none" in refused(schema.drop_attrs(deep=False).assign_attrs(
        {k: v for k, v in schema.attrs.items() if k != "scenario_resolved"})).what
    error = refused(schema.assign_attrs(scenario_resolved=42))
    assert error.key == "scenario_resolved" and error.what.startswith("expected the resolved scenario as a JSON table")
    assert "found 42" in error.what
    error = refused(schema.assign_attrs(scenario_overrides='{"run.paths": 4}'))
    assert error.key == "scenario_overrides" and "expected a JSON list" in error.what and "a JSON table" in error.what


@pytest.mark.parametrize("sweep, key, words", [
    ([["cutoff", "policy.cutoff_score"]], "sweep", "[name, key, values] for each swept key"),
    ([[3, "policy.cutoff_score", [560]]], "sweep", "[name, key, values] for each swept key"),
    ([["month", "run.horizon_months", [6]]], "month", "a dimension the results use already"),
    ([["cutoff", "policy.cutoff_score", [560]]], "cutoff", "found none"),
])
def test_a_sweep_attribute_that_does_not_fit_the_file(schema, sweep, key, words):
    """Each swept key is [name, key, values], with a dimension of its own that the file has."""
    error = refused(schema.assign_attrs(sweep=json.dumps(sweep)))
    assert error.key == key and words in error.what


def test_paths_are_whole_numbers_and_labels_as_written(schema):
    """The path coordinate: whole numbers (any count from one); a labelled coordinate: the labels the
    scenario gives, listed in the error."""
    error = refused(schema.assign_coords(path=[0.5]))
    assert error.key == "path" and "whole number" in error.what and "float64" in error.what
    readback.check(schema.reindex(path=[0, 1, 2], fill_value=0), Path("r/results.nc"))
    products = schema["product"].values
    error = refused(schema.assign_coords(product=products[::-1]))
    assert error.key == "product" and f"expected [{', '.join(map(str, products))}]" in error.what


def test_a_variable_of_text_or_with_a_swept_dimension_too_many(schema):
    """Variables hold numbers; a dimension beyond the written ones must be a swept key's."""
    error = refused(schema.assign(approvals=schema["approvals"].astype(str)))
    assert error.key == "approvals" and "numbers" in error.what
    extra = schema.assign(approvals=schema["approvals"].expand_dims(cutoff=[560]))
    error = refused(extra)
    assert error.key == "approvals" and "and any swept ones" in error.what
    swept = extra.assign_attrs(sweep=json.dumps([["cutoff", "policy.cutoff_score", [560]]]))
    readback.check(swept, Path("r/results.nc"))


def test_another_versions_file_says_so(schema):
    """The refusal of a file another simulator version wrote ends by naming that version; this
    version's own refusals do not."""
    error = refused(schema.assign_attrs(results_mode="sampled"))
    assert error.key == "results_mode" and "'sampled'" in error.what and "the file is of simulator" not in error.what
    error = refused(schema.assign_attrs(results_mode="sampled", simulator_version="0.0.1"))
    assert error.what.endswith("; the file is of simulator 0.0.1")
