"""How the headline's standard errors (over paths, for the applicants a run drew) compare with the
spread of the same figures over independent seeds, which also draw other applicants: for each
figure, the standard deviation over seeds, the root-mean-square error the runs printed, their ratio
and the share of seeds whose figure lies within 2 of its errors of the mean over seeds. A ratio
well above 1 is the applicants' own sampling noise, which the errors leave out.

    python benchmarks/seed_spread.py [--volume 500] [--paths 10] [--seeds 24]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import simulator
from simulator.reporting import summary

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("pretax_income", "revenue", "charged_off", "allowance", "coverage", "dpd30_ratio", "dpd30_peak",
           "return_on_assets")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=int, default=500, help="applicants a month")
    parser.add_argument("--paths", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=24)
    args = parser.parse_args()
    values = {key: [] for key in FIGURES}
    errors = {key: [] for key in FIGURES}
    for seed in range(args.seeds):
        overrides = {"run.paths": args.paths, "applicants.monthly_volume": args.volume, "run.seed": 5000 + seed}
        head = summary.headline(simulator.run(simulator.load(ROOT / "scenarios" / "baseline.toml", overrides)))
        for key in FIGURES:
            values[key].append(head[key])
            errors[key].append(head[f"{key}_se"])
    print(f"baseline, {args.volume} applicants a month, {args.paths} paths, {args.seeds} seeds")
    for key in FIGURES:
        v, e = np.array(values[key]), np.array(errors[key])
        spread, rms = v.std(ddof=1), float(np.sqrt(np.mean(e**2)))
        inside = float(np.mean(np.abs(v - v.mean()) <= 2 * e))
        print(f"{key:18s} spread over seeds {spread:12.5g}  error printed {rms:12.5g}  ratio {spread / rms:5.2f}  "
              f"within 2 errors {inside:.0%}")


if __name__ == "__main__":
    main()
