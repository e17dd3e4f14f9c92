"""The shipped baseline's P&L per product and per view (book, platform) as shares of the average
receivables a year, the table of docs/products.md section 8, beside the public figures it is meant
to resemble: the service fee's yield, the merchant fee and the BNPL merchant discount as shares of
spend, and loss rates.

    python benchmarks/baseline_pnl.py [--paths 16] [--volume 5000]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import simulator

ROOT = Path(__file__).resolve().parent.parent
ROWS = (("revenue", "revenue"), ("of which service fee", "service_fee_income"), ("funding cost", "funding_cost"),
        ("net charge-offs", "net_charge_offs"), ("credit-loss expense", "credit_loss_expense"),
        ("operating costs", "operating_costs"), ("pre-tax income", "pretax_income"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=16)
    parser.add_argument("--volume", type=int, default=5000, help="applicants a month")
    args = parser.parse_args()
    ds = simulator.run(simulator.load(ROOT / "scenarios" / "baseline.toml",
                                      {"run.paths": args.paths, "applicants.monthly_volume": args.volume}))
    table = ds["pnl"]
    annual = 12.0 / ds.sizes["month"] / table.sel(pnl_line="average_balance", view="book")
    products = [str(p) for p in table["pnl_product"].values]
    views = [str(v) for v in table["view"].values]
    print(f"baseline, {args.paths} paths, {args.volume:,} applicants a month, income basis "
          f"{ds.attrs.get('income_basis', 'cash')}: a year, as shares of the book's average receivables")
    print("| line | " + " | ".join(f"{p} ({v})" for v in views for p in products) + " |")
    print("|---|" + "---:|" * (len(views) * len(products)))
    for label, name in ROWS:
        cells = [float((table.sel(pnl_line=name, view=v, pnl_product=p) * annual.sel(pnl_product=p)))
                 for v in views for p in products]
        print(f"| {label} | " + " | ".join(f"{c:.2%}" for c in cells) + " |")
    flows = ds[["drawn", "merchant_fee_income", "originated", "merchant_discount", "charged_off", "recovered"]]
    sums = flows.sum(("month", "score_band")).mean("path")
    line, plan = sums.sel(product="huabei"), sums.sel(product="yuefu")
    balance = table.sel(pnl_line="average_balance", view="book")
    print(f"line: merchant fee {float(line['merchant_fee_income'] / line['drawn']):.2%} of spend; spend "
          f"{float(line['drawn'] * 12 / ds.sizes['month'] / balance.sel(pnl_product='huabei')):.2f} times its "
          f"receivables a year")
    print(f"instalment purchases: merchant discount {float(plan['merchant_discount'] / plan['originated']):.2%} of "
          f"GMV; net charge-offs {float((plan['charged_off'] - plan['recovered']) / plan['originated']):.2%} of GMV")


if __name__ == "__main__":
    main()
