"""Joint lending (simulator.results.joint_lending): the platform's view of a book it funds in part,
by hand and on a run against the book's own lines."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import simulator
from simulator.codes import PRODUCTS
from simulator.results import joint_lending, pnl

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"applicants.monthly_volume": 1500, "run.paths": 3, "run.horizon_months": 24,
         "applicants.origination_months": 12}
LOSS_LINES = ("funding_cost", "net_charge_offs", "allowance_change", "credit_loss_expense", "closing_allowance")
CREDIT_LINES = ("interest_income", "interest_accrual", "fee_income", "penalty_income")
FULL_LINES = ("merchant_discount", "merchant_fee_income", "acquisition_cost", "servicing_cost", "collection_cost",
              "operating_costs", "average_balance")


def flows() -> dict[str, np.ndarray]:
    """Hand-made flows of three products (yuan)."""
    return {"interest_income": np.array([100.0, 200.0, 0.0]), "interest_accrual": np.array([6.0, -4.0, 2.0]),
            "fee_income": np.array([10.0, 0.0, 50.0]), "accrued_written_off": np.array([3.0, 1.0, 0.0]),
            "penalty_income": np.array([5.0, 4.0, 1.0]), "merchant_discount": np.array([0.0, 0.0, 30.0]),
            "merchant_fee_income": np.array([40.0, 0.0, 0.0]), "funding_cost": np.array([60.0, 80.0, 20.0]),
            "charged_off": np.array([70.0, 90.0, 10.0]), "recovered": np.array([7.0, 9.0, 1.0]),
            "allowance_originated": np.array([20.0, 30.0, 5.0]), "allowance_remeasured": np.array([1.0, -2.0, 0.0]),
            "allowance_released": np.array([3.0, 4.0, 1.0]), "allowance_used": np.array([6.0, 8.0, 1.0]),
            "acquisition_cost": np.array([12.0, 24.0, 6.0]), "servicing_cost": np.array([2.0, 2.0, 2.0]),
            "collection_cost": np.array([1.0, 3.0, 0.0])}


def test_the_platform_view_by_hand():
    x = flows()
    s, fee = np.array([0.3, 0.5, 0.2]), np.array([0.18, 0.1, 0.0])
    out = joint_lending.platform(x, joint_lending.Shares(s, s, fee))
    np.testing.assert_allclose(out["interest_income"], [30.0, 100.0, 0.0])
    np.testing.assert_allclose(out["funding_cost"], [18.0, 40.0, 4.0])
    np.testing.assert_allclose(out["charged_off"], [21.0, 45.0, 2.0])
    np.testing.assert_allclose(out["interest_accrual"], [1.8, -2.0, 0.4])
    np.testing.assert_allclose(out["accrued_written_off"], [0.9, 0.5, 0.0])
    np.testing.assert_allclose(out["allowance_used"], [1.8, 4.0, 0.2])
    np.testing.assert_array_equal(out["merchant_fee_income"], x["merchant_fee_income"])
    np.testing.assert_array_equal(out["acquisition_cost"], x["acquisition_cost"])
    # The partners hold 70%, 50% and 80% of the credit income 121, 200 and 53.
    np.testing.assert_allclose(out["service_fee_income"], [0.18 * 0.7 * 121, 0.1 * 0.5 * 200, 0.0])
    # Pre-tax income of the first product: 0.3 * 121 + 40 + 0.18 * 0.7 * 121 - 18 - 0.3 * (66 + 12) - 15.
    assert pnl.pretax_income(out)[0] == pytest.approx(0.3 * 121 + 40 + 0.18 * 0.7 * 121 - 18 - 0.3 * 78 - 15)


def test_a_guarantee_puts_every_loss_on_the_platform():
    x = flows()
    s = np.array([0.3, 0.3, 0.3])
    out = joint_lending.platform(x, joint_lending.Shares(s, np.ones(3), np.zeros(3)))
    for name in ("charged_off", "accrued_written_off", "recovered", "allowance_originated", "allowance_used"):
        np.testing.assert_array_equal(out[name], x[name])
    np.testing.assert_allclose(out["funding_cost"], 0.3 * x["funding_cost"])


def test_a_platform_that_funds_all_is_the_book():
    x = flows()
    out = joint_lending.platform(x, joint_lending.Shares(np.ones(3), np.ones(3), np.full(3, 0.18)))
    book = joint_lending.book(x)
    assert out.keys() == book.keys()
    for name in out:
        np.testing.assert_array_equal(out[name], book[name])


def test_shares_follow_the_funding_section():
    sc = simulator.load(ROOT / "scenarios" / "baseline.toml", {"funding.platform_share.jiebei": 0.5,
                                                                "funding.guarantee": True}).scenario
    shares = joint_lending.shares(sc.funding)
    assert shares.funded[PRODUCTS.index("jiebei")] == 0.5 and shares.funded[PRODUCTS.index("huabei")] == 0.3
    np.testing.assert_array_equal(shares.losses, np.ones(len(PRODUCTS)))


@pytest.fixture(scope="module")
def shared_run():
    """A small baseline run funded 30% / 50% / 20% by the platform, fee 18% / 10% / 25%, no guarantee."""
    shares = dict(zip(PRODUCTS, (0.3, 0.5, 0.2)))
    fees = dict(zip(PRODUCTS, (0.18, 0.1, 0.25)))
    overrides = SMALL | {f"funding.platform_share.{p}": v for p, v in shares.items()} \
        | {f"funding.service_fee_share.{p}": v for p, v in fees.items()}
    return shares, fees, simulator.run(simulator.load(ROOT / "scenarios" / "baseline.toml", overrides))


def test_each_loss_and_funding_line_of_the_platform_is_its_share_of_the_book(shared_run):
    shares, fees, ds = shared_run
    book, platform = ds["pnl"].sel(view="book"), ds["pnl"].sel(view="platform")
    for product in PRODUCTS:
        s, b, p = shares[product], book.sel(pnl_product=product), platform.sel(pnl_product=product)
        for line in LOSS_LINES + CREDIT_LINES:
            assert float(p.sel(pnl_line=line)) == pytest.approx(s * float(b.sel(pnl_line=line)), rel=1e-12, abs=1e-6)
        for line in FULL_LINES:
            assert float(p.sel(pnl_line=line)) == float(b.sel(pnl_line=line))
        credit = sum(float(b.sel(pnl_line=line)) for line in CREDIT_LINES)
        assert float(p.sel(pnl_line="service_fee_income")) == pytest.approx(fees[product] * (1 - s) * credit, rel=1e-12)
        assert float(b.sel(pnl_line="service_fee_income")) == 0.0
    assert float(book.sel(pnl_product="huabei", pnl_line="merchant_fee_income")) > 0
    total = platform.sel(pnl_product="total")
    assert float(total.sel(pnl_line="pretax_income")) == pytest.approx(
        float(total.sel(pnl_line="revenue") - total.sel(pnl_line="funding_cost")
              - total.sel(pnl_line="credit_loss_expense") - total.sel(pnl_line="operating_costs")))


def test_the_platform_carries_capital_for_its_own_exposure(shared_run):
    shares, _, ds = shared_run
    s = np.array([shares[p] for p in PRODUCTS])
    own = (ds["capital_loss"] * s).sum("product")
    assert float(ds["capital_expected_loss"].sel(view="platform")) == pytest.approx(float(own.mean("path")), rel=1e-12)
    irb = float((ds["irb_capital"].sum("score_band") * s).sum())
    assert float(ds["irb_capital_total"].sel(view="platform")) == pytest.approx(irb, rel=1e-12)


def test_full_funding_and_no_fee_give_the_book_to_the_bit():
    overrides = SMALL | {f"funding.platform_share.{p}": 1.0 for p in PRODUCTS} \
        | {f"funding.service_fee_share.{p}": 0.0 for p in PRODUCTS}
    ds = simulator.run(simulator.load(ROOT / "scenarios" / "baseline.toml", overrides))
    for name in ("pnl", "pnl_yield", "capital_expected_loss", "value_at_risk", "economic_capital", "raroc",
                 "irb_capital_total"):
        np.testing.assert_array_equal(ds[name].sel(view="platform").values, ds[name].sel(view="book").values)
    np.testing.assert_array_equal(ds["platform_capital_profit"].values, ds["capital_profit"].values)


def test_a_guarantee_gives_the_platform_the_whole_loss():
    overrides = SMALL | {"funding.guarantee": True}
    ds = simulator.run(simulator.load(ROOT / "scenarios" / "baseline.toml", overrides))
    book, platform = ds["pnl"].sel(view="book"), ds["pnl"].sel(view="platform")
    for line in ("net_charge_offs", "allowance_change", "credit_loss_expense", "closing_allowance"):
        np.testing.assert_allclose(platform.sel(pnl_line=line).values, book.sel(pnl_line=line).values, rtol=1e-12)
    np.testing.assert_allclose(platform.sel(pnl_line="funding_cost").values,
                               0.3 * book.sel(pnl_line="funding_cost").values, rtol=1e-12)
    assert float(ds["capital_expected_loss"].sel(view="platform")) == float(ds["capital_expected_loss"].sel(view="book"))
