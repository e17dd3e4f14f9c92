"""The scenario schema (simulator/config/schema.py): the per-product sections built from
codes.PRODUCTS, each of the type of its product's kind, and the named macro paths."""
from __future__ import annotations

import pytest

from simulator.codes import KIND, LINE, LOAN, PLAN, PRODUCTS
from simulator.config import loader, schema
from simulator.config.loader import load_scenario


def test_per_product_sections_follow_the_products_and_their_kinds():
    sc = schema.Scenario.model_validate(loader.defaults())
    section_of_kind = {LINE: schema.Line, LOAN: schema.Loan, PLAN: schema.Plan}
    requests_of_kind = {LINE: schema.LineRequests, LOAN: schema.LoanRequests, PLAN: schema.PlanRequests}
    for table in (schema.Products, schema.CurveAprs, schema.ByProduct):
        assert list(table.model_fields) == list(PRODUCTS)
    assert list(schema.Applicants.model_fields)[-len(PRODUCTS):] == list(PRODUCTS)
    for name, kind in zip(PRODUCTS, KIND):
        assert type(getattr(sc.products, name)) is section_of_kind[kind]
        assert type(getattr(sc.applicants, name)) is requests_of_kind[kind]


def test_named_macro_paths_and_unemployment(scenario_file):
    sc = load_scenario(scenario_file(), ["macro.path=adverse"]).scenario
    shift = sc.macro.monthly_shift()
    assert shift[:12] == [0.0] * 12
    assert min(shift) == pytest.approx(-sc.macro.unemployment_sensitivity * (6.2 - 5.2))
    user = load_scenario(scenario_file(), ["macro.paths.mine={unemployment=[6.0]}", "macro.path=mine",
                                           "macro.unemployment_sensitivity=0.5"]).scenario
    assert user.macro.monthly_shift() == [pytest.approx(-0.4)]
    with pytest.raises(Exception, match="macro.path: expected one of the named paths"):
        load_scenario(scenario_file(), ["macro.path=nowhere"])
