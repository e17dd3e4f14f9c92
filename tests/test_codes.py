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
    assert codes.KIND.count(codes.LINE) == 1      # the kernel holds the one line product's terms as scalars


PAY_IN_4 = {
    "applicants": '[applicants.payin4]\nprice_median = 400.0\nprice_sigma = 0.6\ntenors = [4]\ntenor_shares = [1.0]\n'
                  'promotion_share = 1.0\n\n',
    "products": '[products.payin4]\nmin_amount = 50.0\nmax_amount = 2000.0\ntenors = [4]\nmerchant_discount = 0.04\n'
                'penalty_daily_rate = 0.0\ndays_per_year = 365.0\nprepayment = true\nrisk_multiplier = 1.2\n\n',
}
RUN = """
import numpy as np
from simulator.engine import simulation
from simulator.config.loader import load_scenario
ds = simulation.simulate(load_scenario("s.toml", ["applicants.monthly_volume=400", "run.paths=1", "run.horizon_months=12",
                                              "applicants.origination_months=6"]))
totals = ds.sum(("path", "month", "score_band"))
print([str(p) for p in ds["product"].values])
print(int(totals["originated_accounts"].sel(product="payin4")), float(totals["merchant_discount"].sel(product="payin4")),
      float(totals["fee_income"].sel(product="payin4")))
"""


@pytest.mark.slow   # a copy of the package compiles its kernels afresh
def test_a_product_of_an_existing_kind_needs_codes_and_defaults_only(tmp_path):
    """A pay-in-4 plan (a fourth product of kind plan, fee-free: the merchant pays 4%) added to
    codes.py and defaults.toml of a copy of the package, nothing else, runs end to end: its accounts
    are originated, the merchant's discount booked and no fee charged."""
    package = tmp_path / "simulator"
    shutil.copytree(ROOT / "simulator", package, ignore=shutil.ignore_patterns("__pycache__"))
    text = (package / "codes.py").read_text()
    text = text.replace('PRODUCTS = ("huabei", "jiebei", "yuefu")', 'PRODUCTS = ("huabei", "jiebei", "yuefu", "payin4")')
    text = text.replace("HUABEI, JIEBEI, YUEFU = range(len(PRODUCTS))", "HUABEI, JIEBEI, YUEFU, PAYIN4 = range(len(PRODUCTS))")
    text = text.replace("KIND = (LINE, LOAN, PLAN)", "KIND = (LINE, LOAN, PLAN, PLAN)")
    assert "PLAN, PLAN)" in text and '"payin4")' in text
    (package / "codes.py").write_text(text)
    defaults = (package / "config" / "defaults.toml").read_text()
    defaults = defaults.replace("[book]\n", PAY_IN_4["applicants"] + "[book]\n", 1)
    defaults = defaults.replace("[products.jiebei]\n", PAY_IN_4["products"] + "[products.jiebei]\n", 1)
    defaults = re.sub(r"(\n(?:product_mix|also_requests|acquisition|servicing|collection) = \{[^}]*yuefu = [0-9.]+) \}",
                      r"\1, payin4 = 0.05 }", defaults)
    defaults = defaults.replace('limit_order = ["jiebei", "yuefu", "huabei"]', 'limit_order = ["jiebei", "yuefu", "payin4", "huabei"]')
    curve = re.search(r"\nyuefu = (\[[^\]]*\])", defaults)
    defaults = defaults.replace(curve.group(0), curve.group(0) + "\npayin4 = " + re.sub(r"[0-9.]+", "0.0", curve.group(1)))
    defaults = defaults.replace("huabei = 0.55, jiebei = 0.25, yuefu = 0.20, payin4 = 0.05",
                                "huabei = 0.50, jiebei = 0.25, yuefu = 0.20, payin4 = 0.05")   # shares sum to 1
    (package / "config" / "defaults.toml").write_text(defaults)
    (tmp_path / "s.toml").write_text('[run]\nname = "payin4"\n')
    done = subprocess.run([sys.executable, "-c", RUN], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    names, counts = done.stdout.strip().splitlines()
    assert names == "['huabei', 'jiebei', 'yuefu', 'payin4']"
    accounts, discount, fee = counts.split()
    assert int(accounts) > 0 and float(discount) > 0 and float(fee) == 0.0
