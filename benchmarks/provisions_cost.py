"""What the allowance's forecasts cost (docs/model.md section 10), side by side in one run on the
baseline's accounts, prepared once (20,000 applicants a month, 36 months, one path, one thread):

1. the ECL table (`provisions.ecl_table`, once a run and a sweep cell) through the cycle (staged by
   state alone, and with the default significant-increase, cure and probation rules), point in
   time with one forecast (the baseline path) and with the shipped three;
2. the kernel (`simulation.run_task` with the table made beforehand) under the same tables and, with
   three forecasts, the allowance under each forecast alone kept every month, every 3rd month (the
   default) and every 12th, and staged by state alone: each variant timed in turn, `--repeat`
   rounds, best of each, and its ratio to the first (through the cycle, staged by state: the
   allowance before issue 30).

    .venv/bin/python benchmarks/provisions_cost.py [--volume 20000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numba as nb

from simulator.config.loader import load_scenario
from simulator.engine import simulation
from simulator.model import provisions, terms
from simulator.model.origination import prepare

ROOT = Path(__file__).resolve().parent.parent
ONE = 'provisions.scenarios={baseline=1.0}'
BY_STATE = ["provisions.sicr_pd_ratio=0", "provisions.cure_months=0", "provisions.probation_months=0"]
VARIANTS = {
    "through the cycle, staged by state": ['provisions.basis="through_the_cycle"', *BY_STATE],
    "through the cycle": ['provisions.basis="through_the_cycle"'],
    "point in time, one forecast": ['provisions.basis="point_in_time"', ONE],
    "three forecasts, each alone every 12th month": ['provisions.basis="point_in_time"',
                                                     "provisions.sensitivity_months=12"],
    "three forecasts, every 3rd month, staged by state": ['provisions.basis="point_in_time"', *BY_STATE],
    "three forecasts, each alone every 3rd month (default)": ['provisions.basis="point_in_time"'],
    "three forecasts, each alone every month": ['provisions.basis="point_in_time"', "provisions.sensitivity_months=1"],
}


def best_of(run, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=int, default=20_000, help="applicants a month")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    nb.set_num_threads(1)
    common = [f"applicants.monthly_volume={args.volume}", "run.paths=1", "engine.threads=1"]
    scenarios = {name: load_scenario(ROOT / "scenarios" / "baseline.toml", common + keys).scenario
                 for name, keys in VARIANTS.items()}
    first = next(iter(scenarios.values()))
    accounts, _ = prepare(first)
    starts = terms.borrower_starts(accounts.borrower)
    factors = terms.factors(first)
    jobs = {}
    print(f"{len(accounts.account_id):,} accounts; the ECL table, best of 3:")
    for name, sc in scenarios.items():
        seconds = best_of(lambda: provisions.ecl_table(sc, accounts, terms.n_bands(sc), factors.z), 3)
        table = provisions.ecl_table(sc, accounts, terms.n_bands(sc), factors.z)
        print(f"  {name:55s} {seconds:6.3f} s  {table.table.nbytes / 1e6:7.1f} MB")
        task = simulation.plan_tasks(sc, len(starts) - 1)[0]
        jobs[name] = (lambda sc=sc, task=task, table=table:
                      simulation.run_task(sc, accounts, starts, task, table, factors, threads=1))
        jobs[name]()                              # load the compiled kernel
    times = {name: float("inf") for name in jobs}
    for _ in range(args.repeat):                  # interleaved: each round runs every variant once
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            times[name] = min(times[name], time.perf_counter() - start)
    reference = times["through the cycle, staged by state"]
    print(f"the kernel, one thread, best of {args.repeat} interleaved rounds:")
    for name, seconds in times.items():
        print(f"  {name:55s} {seconds:6.3f} s  {seconds / reference:5.3f} x the first")


if __name__ == "__main__":
    main()
