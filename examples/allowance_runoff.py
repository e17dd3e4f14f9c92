"""The allowance against what follows: run a scenario on past its origination window, so that the book
at its end runs off, and set the expected-credit-loss allowance at that month against the losses
the book then makes. A scenario script using the Python API.

    python examples/allowance_runoff.py [--scenario FILE] [--paths N] [--set KEY=VALUE ...]

The allowance holds 12-month ECL in stage 1 and lifetime ECL in stages 2 and 3: the losses of the
defaults of the next 12 months, and of the delinquent accounts' runs of misses, which are charged off
within 15 months (docs/model.md section 10). So the check sets it against the charge-offs of the 15
months that follow, each valued as the allowance values it: less its recoveries valued at the
charge-off, discounted to the month from its month at the product's mean all-in APR / 12. Stage 2 and
3 accounts that cure and default again later, beyond 15 months, are in the allowance and not in the
check (a small share). Prints, by product, the mean over paths of both and their ratio, with the
standard error of the losses.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import simulator
from simulator.model import provisions
from simulator.model.provisions import TWELVE_MONTHS

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "baseline.toml")
    parser.add_argument("--paths", type=int, default=40)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    base = simulator.load(args.scenario, args.overrides).scenario
    month = base.applicants.origination_months
    loaded = simulator.load(args.scenario, [*args.overrides, f"run.paths={args.paths}",
                                            f"run.horizon_months={month + TWELVE_MONTHS}"])
    ds = simulator.run(loaded)
    sc = loaded.scenario
    print(f"{sc.run.name}: the allowance at the end of month {month} (new business stops then) against the "
          f"charge-offs of months {month + 1} .. {month + TWELVE_MONTHS}, net of recoveries and discounted, "
          f"{args.paths} paths, basis {sc.provisions.basis}")
    print(f"{'product':<8} {'allowance':>14} {'losses':>14} {'+- se':>10} {'ratio':>7}")
    taken = ds["takeups"].sum("month")
    for product in ds["product"].values:
        apr = float((ds["mean_apr"].sel(product=product).fillna(0) * taken.sel(product=product)).sum()
                    / max(1, int(taken.sel(product=product).sum())))
        rate = apr / 12
        lost = float(provisions.loss_given_charge_off(sc.behaviour, np.array([rate]))[0])
        discount = (1 + rate) ** -np.arange(1, TWELVE_MONTHS + 1)
        later = ds["charged_off"].sel(product=product, month=slice(month + 1, month + TWELVE_MONTHS)).sum("score_band")
        losses = (later * discount).sum("month") * lost
        held = ds["allowance"].sel(product=product, month=month).sum(("score_band", "stage"))
        se = float(losses.std()) / np.sqrt(losses.sizes["path"])
        print(f"{product:<8} {float(held.mean()):>14,.0f} {float(losses.mean()):>14,.0f} {se:>10,.0f} "
              f"{float(held.mean() / losses.mean()):>7.3f}")


if __name__ == "__main__":
    main()
