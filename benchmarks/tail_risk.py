"""Time to a 99.9% VaR of the baseline book with a relative standard error of at most 5%: importance
sampling of the factor against plain Monte Carlo, measured in one run of this script, plus the
results file size and peak memory of 10,000 plain paths in the summary results mode.

    python benchmarks/tail_risk.py [--plain-paths 10000] [--target 0.05]

Each simulation runs as `simulator run` in its own process (summary results mode, no report).
Importance sampling doubles its paths from 50 until the VaR's bootstrap standard error is at most
the target share of the VaR with at least 10 paths beyond it. Plain Monte Carlo runs once with
--plain-paths paths; if its error is still above the target, the paths it would need are
extrapolated as n x (error / target)^2 (the error of a quantile falls as 1 / sqrt(n)) and the time as
that many paths at the measured time a path. Prints the times and their ratio.
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import simulator

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.toml"
LEVEL = 0.999


def run(paths: int, importance: bool, out: Path) -> dict:
    """One `simulator run` of the baseline: wall seconds, the 99.9% VaR, its error, tail paths, file size."""
    args = [sys.executable, "-m", "simulator", "run", str(BASELINE), "--out", str(out), "--quiet", "--no-report",
            "--set", f"run.paths={paths}", "--set", 'run.results="summary"']
    if importance:
        args += ["--set", f"capital.importance_quantile={LEVEL}"]
    started = time.perf_counter()
    subprocess.run(args, check=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    ds = simulator.read(out)
    var = float(ds["value_at_risk"].sel(quantile=LEVEL, view="book"))
    se = float(ds["value_at_risk_se"].sel(quantile=LEVEL, view="book"))
    return {"paths": paths, "seconds": seconds, "var": var, "se": se, "relative": se / var,
            "tail": int(ds["tail_paths"].sel(quantile=LEVEL, view="book")), "bytes": (out / "results.nc").stat().st_size,
            "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def show(label: str, r: dict) -> None:
    print(f"{label:>9} {r['paths']:>7,} paths {r['seconds']:>7.1f} s  VaR {r['var'] / 1e6:7.2f} M yuan  "
          f"se {r['se'] / 1e6:5.2f} M ({r['relative']:.1%})  {r['tail']:>5} paths beyond  "
          f"file {r['bytes'] / 1e6:6.1f} MB  peak memory so far {r['peak_mb']:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain-paths", type=int, default=10_000)
    parser.add_argument("--target", type=float, default=0.05, help="relative standard error to reach")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"== importance sampling toward the {LEVEL:.1%} loss (baseline, summary results)")
        paths, spent = 50, 0.0
        while True:
            r = run(paths, True, Path(tmp) / f"is{paths}")
            spent += r["seconds"]
            show("IS", r)
            if r["relative"] <= args.target and r["tail"] >= 10:
                break
            paths *= 2
        is_seconds = r["seconds"]
        print(f"== plain Monte Carlo, {args.plain_paths:,} paths")
        p = run(args.plain_paths, False, Path(tmp) / "plain")
        show("plain", p)
        if p["relative"] <= args.target and p["tail"] >= 10:
            plain_seconds, how = p["seconds"], "measured"
        else:
            need = args.plain_paths * max(1.0, (p["relative"] / args.target) ** 2)
            plain_seconds = p["seconds"] / args.plain_paths * need
            how = f"extrapolated to {need:,.0f} paths at {p['seconds'] / args.plain_paths * 1000:.1f} ms a path"
        print(f"time to a {LEVEL:.1%} VaR with relative error <= {args.target:.0%}: importance sampling "
              f"{is_seconds:.1f} s ({r['paths']} paths; {spent:.1f} s with the smaller tries), plain Monte Carlo "
              f"{plain_seconds:.0f} s ({how}); ratio {plain_seconds / is_seconds:.0f}x")


if __name__ == "__main__":
    main()
