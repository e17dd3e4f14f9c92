"""A whole run split into its stages (issue 17): preparing the applicants, the kernel, the Dataset, the
summary and the report, for the baseline at a given number of applicants, in one process. Prints each
stage's seconds, its share, the ratio of end-to-end time to kernel time, and the peak memory.

    .venv/bin/python benchmarks/end_to_end.py [--applicants 10000008] [--paths 1] [--threads 2]
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from simulator import __version__
from simulator.engine import simulation
from simulator.reporting import pages, summary
from simulator.results import assemble
from simulator.results import dataset
from simulator.model import scoring, terms
from simulator.config.loader import load_scenario
from simulator.reporting.figures import figures
from simulator.model.origination import prepare

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applicants", type=int, default=10_000_008, help="applicants over the 36 months")
    parser.add_argument("--paths", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    volume = -(-args.applicants // 36)
    loaded = load_scenario(ROOT / "scenarios" / "baseline.toml",
                           [f"applicants.monthly_volume={volume}", f"run.paths={args.paths}",
                            f"engine.threads={args.threads}", 'run.results="full"'])
    sc = loaded.scenario
    small = load_scenario(ROOT / "scenarios" / "baseline.toml", ["applicants.monthly_volume=100", "run.paths=1"])
    simulation.simulate(small)                                                  # compile and warm the caches
    seconds = {}
    start = time.perf_counter()
    accounts, counts = prepare(sc, loaded.book_path(sc))
    seconds["prepare the applicants"] = time.perf_counter() - start
    start = time.perf_counter()
    totals = simulation.run_accounts(sc, accounts, threads=args.threads)
    seconds["kernel (run_accounts)"] = time.perf_counter() - start
    start = time.perf_counter()
    weight = terms.factors(sc).weight
    sums = simulation.cell_sums(sc, accounts, counts, totals, weight)
    ds = assemble.combine_cells(loaded, [assemble.build_dataset(loaded, sc, scoring.band_labels(sc.scorecard.bands),
                                                              sums, __version__)], weight)
    seconds["Dataset"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        dataset.write(ds, Path(folder) / "results.nc")
        seconds["results.nc"] = time.perf_counter() - start
        start = time.perf_counter()
        summary.render(ds, Path(folder) / "results.nc", 0.0)
        seconds["summary"] = time.perf_counter() - start
        start = time.perf_counter()
        drawings = figures(ds)
        Path(folder, "report.html").write_text(pages.render_html(ds, drawings))
        seconds["report"] = time.perf_counter() - start
    total = sum(seconds.values())
    print(f"baseline, {volume * 36:,} applicants, {len(accounts.account_id):,} accounts, {args.paths} path(s), "
          f"{args.threads} threads")
    for name, s in seconds.items():
        print(f"  {name:<24} {s:8.2f} s  {s / total:6.1%}")
    print(f"  {'end to end':<24} {total:8.2f} s")
    print(f"end to end / kernel: {total / seconds['kernel (run_accounts)']:.2f}; "
          f"preparation / kernel: {seconds['prepare the applicants'] / seconds['kernel (run_accounts)']:.2f}")
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
