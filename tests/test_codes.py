"""The vocabulary (simulator/codes.py), and the promise of docs/architecture.md section 5: a product of
an existing kind is added in codes.py and defaults.toml alone."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simulator import codes

ROOT = Path(__file__).resolve().parent.parent


def test_every_product_has_a_kind():
    assert len(codes.KIND) == len(codes.PRODUCTS) and set(codes.KIND) <= set(range(len(codes.KINDS)))


def package_with(tmp_path: Path, name: str, kind: str) -> str:
    """A copy of the package in tmp_path with a fourth product `name` of `kind` (a codes.py name) in
    codes.py; the copy's defaults.toml, returned, to be given the product's sections."""
    package = tmp_path / "simulator"
    shutil.copytree(ROOT / "simulator", package, ignore=shutil.ignore_patterns("__pycache__"))
    text = (package / "codes.py").read_text()
    text = text.replace('PRODUCTS = ("huabei", "jiebei", "yuefu")',
                        f'PRODUCTS = ("huabei", "jiebei", "yuefu", "{name}")')
    text = text.replace("HUABEI, JIEBEI, YUEFU = range(len(PRODUCTS))",
                        f"HUABEI, JIEBEI, YUEFU, {name.upper()} = range(len(PRODUCTS))")
    text = text.replace("KIND = (LINE, LOAN, PLAN)", f"KIND = (LINE, LOAN, PLAN, {kind})")
    assert f"PLAN, {kind})" in text and f'"{name}")' in text
    (package / "codes.py").write_text(text)
    return (package / "config" / "defaults.toml").read_text()


def in_tables(defaults: str, name: str, value: float) -> str:
    """`defaults` with the product `name` given `value` in every per-product inline table."""
    return re.sub(r"(\n(?:product_mix|also_requests|acquisition|servicing|collection|platform_share|service_fee_share) = \{[^}]*yuefu = [0-9.]+) \}",
                  rf"\1, {name} = {value} }}", defaults)


def run_copy(tmp_path: Path, defaults: str, name: str, script: str) -> list[str]:
    """Run `script` beside the copy of the package given `defaults`, on a scenario named `name`: its output lines."""
    (tmp_path / "simulator" / "config" / "defaults.toml").write_text(defaults)
    (tmp_path / "s.toml").write_text(f'[run]\nname = "{name}"\n')
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()


PAY_IN_4 = {
    "applicants": '[applicants.payin4]\nprice_median = 400.0\nprice_sigma = 0.6\ntenors = [4]\ntenor_shares = [1.0]\n'
                  'promotion_share = 1.0\n\n',
    "products": '[products.payin4]\nmin_amount = 50.0\nmax_amount = 2000.0\ntenors = [4]\nmerchant_discount = 0.04\n'
                'penalty_daily_rate = 0.0\ndays_per_year = 365.0\nprepayment = true\nrisk_multiplier = 1.2\n\n',
}
SIMULATE = """
import numpy as np
from simulator.engine import simulation
from simulator.config.loader import load_scenario
ds = simulation.simulate(load_scenario("s.toml", ["applicants.monthly_volume=400", "run.paths=1", "run.horizon_months=12",
                                              "applicants.origination_months=6"]))
totals = ds.sum(("path", "month", "score_band"))
print([str(p) for p in ds["product"].values])
"""
RUN = SIMULATE + """
print(int(totals["originated_accounts"].sel(product="payin4")), float(totals["merchant_discount"].sel(product="payin4")),
      float(totals["fee_income"].sel(product="payin4")))
"""


@pytest.mark.slow   # a copy of the package compiles its kernels afresh
def test_a_product_of_an_existing_kind_needs_codes_and_defaults_only(tmp_path):
    """A pay-in-4 plan (a fourth product of kind plan, fee-free: the merchant pays 4%) added to
    codes.py and defaults.toml of a copy of the package, nothing else, runs end to end: its accounts
    are originated, the merchant's discount booked and no fee charged."""
    defaults = package_with(tmp_path, "payin4", "PLAN")
    defaults = defaults.replace("[book]\n", PAY_IN_4["applicants"] + "[book]\n", 1)
    defaults = defaults.replace("[products.jiebei]\n", PAY_IN_4["products"] + "[products.jiebei]\n", 1)
    defaults = in_tables(defaults, "payin4", 0.05)
    defaults = defaults.replace('limit_order = ["jiebei", "yuefu", "huabei"]', 'limit_order = ["jiebei", "yuefu", "payin4", "huabei"]')
    curve = re.search(r"\nyuefu = (\[[^\]]*\])", defaults)
    defaults = defaults.replace(curve.group(0), curve.group(0) + "\npayin4 = " + re.sub(r"[0-9.]+", "0.0", curve.group(1)))
    defaults = defaults.replace("huabei = 0.55, jiebei = 0.25, yuefu = 0.20, payin4 = 0.05",
                                "huabei = 0.50, jiebei = 0.25, yuefu = 0.20, payin4 = 0.05")   # shares sum to 1
    names, counts = run_copy(tmp_path, defaults, "payin4", RUN)
    assert names == "['huabei', 'jiebei', 'yuefu', 'payin4']"
    accounts, discount, fee = counts.split()
    assert int(accounts) > 0 and float(discount) > 0 and float(fee) == 0.0


# A card's terms where they differ from the line it is copied from: every statement is its minimum,
# paid in full (no revolving interest), and its bill instalments run to 24 months.
CARD_TERMS = {"min_payment_share": "1.0", "instalment_tenors": "[3, 6, 12, 18, 24]",
              "instalment_fees": "[0.02, 0.04, 0.08, 0.12, 0.16]",
              "instalment_tenor_shares": "[0.2, 0.2, 0.2, 0.2, 0.2]", "conversion_rate": "0.5"}
CARD_RUN = SIMULATE + """
for name in ("huabei", "card"):
    line = totals.sel(product=name)
    print(name, int(line["originated_accounts"]), float(line["drawn"]), float(line["interest_income"]),
          float(line["fee_income"]), float(ds["irb_exposure"].sel(product=name).sum()))
"""


@pytest.mark.slow   # a copy of the package compiles its kernels afresh
def test_a_second_line_needs_codes_and_defaults_only(tmp_path):
    """A card (a fourth product of kind line, its sections copied from huabei's with a minimum payment
    of the whole statement and longer bill instalments taken more often) added to codes.py and
    defaults.toml of a copy of the package, nothing else, runs end to end under its own terms: its
    lines are originated and spend; every statement is paid in full, so it earns no revolving interest
    where huabei (a minimum of 10%) does; its statements convert to bill instalments, which earn fees;
    its undrawn limits count toward its IRB exposure."""
    defaults = package_with(tmp_path, "card", "LINE")
    applicants = re.search(r"\[applicants\.huabei\]\n(?:[^\[\n][^\n]*\n)*", defaults).group(0)
    defaults = defaults.replace("[book]\n", applicants.replace("huabei", "card") + "\n[book]\n", 1)
    section = re.search(r"\[products\.huabei\]\n(?:[^\[\n][^\n]*\n|\n(?!\[))*", defaults).group(0)
    card = section.replace("[products.huabei]", "[products.card]")
    for key, value in CARD_TERMS.items():
        card, n = re.subn(rf"\n{key} = [^\n#]*", f"\n{key} = {value} ", card)
        assert n == 1, key
    defaults = defaults.replace("[products.yuefu]\n", card + "\n[products.yuefu]\n", 1)
    defaults = in_tables(defaults, "card", 0.10)
    defaults = defaults.replace('limit_order = ["jiebei", "yuefu", "huabei"]',
                                'limit_order = ["jiebei", "yuefu", "card", "huabei"]')
    curve = re.search(r"\nhuabei = (\[[^\]]*\])", defaults)
    defaults = defaults.replace(curve.group(0), curve.group(0) + "\ncard = " + curve.group(1))
    defaults = defaults.replace("huabei = 0.55, jiebei = 0.25, yuefu = 0.20, card = 0.1",
                                "huabei = 0.45, jiebei = 0.25, yuefu = 0.20, card = 0.1")   # shares sum to 1
    names, *lines = run_copy(tmp_path, defaults, "card", CARD_RUN)
    assert names == "['huabei', 'jiebei', 'yuefu', 'card']"
    found = {name: [float(v) for v in rest] for name, *rest in (line.split() for line in lines)}
    for name, (accounts, drawn, interest, fees, exposure) in found.items():
        assert accounts > 0 and drawn > 0 and fees > 0 and exposure > 0, name
    assert found["huabei"][2] > 0 and found["card"][2] == 0.0
