"""The shipped scenarios against the public figures they are calibrated to (docs/products.md
section 7): the baseline's 30+ and 90+ ratios (months 13-36) with and without first-party fraud, the
fraud share of its charge-offs, and the severe and adverse paths' 30+ peak (months 13-36) over the baseline's.

    python benchmarks/delinquency_targets.py [--paths 16] [--volume 5000]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import simulator
from simulator.reporting import summary

ROOT = Path(__file__).resolve().parent.parent


def figures(name: str, overrides: dict) -> dict[str, float]:
    """The headline's 30+ and 90+ means and 30+ peak (of the mean over paths), all over months 13-36,
    and the fraud share of charge-offs."""
    head = summary.headline(simulator.run(simulator.load(ROOT / "scenarios" / f"{name}.toml", overrides)))
    return {"dpd30": head["dpd30_ratio"], "dpd90": head["dpd90_ratio"], "peak": head["dpd30_peak"],
            "fraud_share": head["fraud_share"]}


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
