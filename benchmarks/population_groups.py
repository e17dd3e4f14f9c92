"""What the population groups cost (run.population_groups: a kernel pass each, the other groups'
borrowers skipped): the kernel's time (`simulation.run_accounts`) on the baseline's accounts,
prepared once, for each number of groups, best of --repeat, and its ratio to the fewest. The
results other than the errors do not depend on the groups (tests/test_simulation.py).

    .venv/bin/python benchmarks/population_groups.py [--volume 20000] [--paths 20] [--groups 2 10 20]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from simulator.config.loader import load_scenario
from simulator.engine import simulation
from simulator.model.origination import prepare

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=int, default=20_000, help="applicants a month")
    parser.add_argument("--paths", type=int, default=20)
    parser.add_argument("--groups", type=int, nargs="+", default=[2, 10, 20])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    seconds = {}
    accounts = None
    for groups in args.groups:
        loaded = load_scenario(ROOT / "scenarios" / "baseline.toml",
                               [f"applicants.monthly_volume={args.volume}", f"run.paths={args.paths}",
                                f"run.population_groups={groups}"])
        sc = loaded.scenario
        if accounts is None:
            accounts, _ = prepare(sc, loaded.book_path(sc))
            simulation.run_accounts(sc, accounts)                 # load the compiled kernel
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            simulation.run_accounts(sc, accounts)
            best = min(best, time.perf_counter() - start)
        seconds[groups] = best
    fewest = seconds[min(seconds)]
    print(f"baseline, {args.volume:,} applicants a month, {args.paths} paths: the kernel (run_accounts), best of "
          f"{args.repeat}")
    for groups, s in seconds.items():
        print(f"  population_groups = {groups:3d}: {s:6.2f} s, {s / fewest:5.2f} x that of {min(seconds)}")


if __name__ == "__main__":
    main()
