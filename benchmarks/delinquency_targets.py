"""The shipped scenarios against the public figures they are calibrated to (docs/products.md
section 7): the baseline's 30+ and 90+ ratios (months 13-36) with and without first-party fraud, the
fraud share of its charge-offs, and the severe and adverse paths' 30+ peak over the baseline's.

    python benchmarks/delinquency_targets.py [--paths 16] [--volume 5000]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import simulator
from simulator.results import dataset

ROOT = Path(__file__).resolve().parent.parent


def figures(name: str, overrides: dict) -> dict[str, float]:
    """30+ and 90+ over months 13-36, the 30+ peak of the mean over paths, the fraud share of charge-offs."""
    ds = simulator.run(simulator.load(ROOT / "scenarios" / f"{name}.toml", overrides))
    dpd30, dpd90 = dataset.delinquency_ratio(ds, "M2"), dataset.delinquency_ratio(ds, "M4")
    steady = dict(month=slice(13, None))
    return {"dpd30": float(dpd30.sel(**steady).mean()), "dpd90": float(dpd90.sel(**steady).mean()),
            "peak": float(dpd30.mean("path").max()),
            "fraud_share": float(ds["fraud_charged_off"].sum() / ds["charged_off"].sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=16)
    parser.add_argument("--volume", type=int, default=5000, help="applicants a month")
    args = parser.parse_args()
    size = {"run.paths": args.paths, "applicants.monthly_volume": args.volume}
    base = figures("baseline", size)
    clean = figures("baseline", size | {"behaviour.fraud_rate": 0.0})
    print(f"baseline: 30+ {base['dpd30']:.2%}, 90+ {base['dpd90']:.2%}, fraud share of charge-offs "
          f"{base['fraud_share']:.1%} (platforms 2019: 1.56%, 1.05%; fraud 5% .. 20%)")
    print(f"baseline without fraud: 30+ {clean['dpd30']:.2%}, 90+ {clean['dpd90']:.2%}")
    for name, target in (("severe", "2 .. 3"), ("adverse", "about 1.7")):
        print(f"{name}: 30+ peak {figures(name, size)['peak'] / base['peak']:.2f} times the baseline's ({target})")


if __name__ == "__main__":
    main()
