"""Start-up time of the light commands (issue 17): `simulator --help`, `validate` and `quote` import only
what they need. Prints, for each command, the median wall time of a few runs in fresh processes and
its ratio to a bare `python -c pass`, and the heavy libraries the command imported.

    .venv/bin/python benchmarks/startup.py [--runs 7]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numba", "scipy.optimize", "scipy.stats", "pandas", "xarray", "matplotlib", "dask", "statsmodels")
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "simulator --help": [sys.executable, "-m", "simulator", "--help"],
    "simulator validate": [sys.executable, "-m", "simulator", "validate", "scenarios/baseline.toml"],
    "simulator quote": [sys.executable, "-m", "simulator", "quote", "--product", "jiebei", "--amount", "10000",
                        "--term", "12", "--apr", "0.18"],
    "import simulator.engine": [sys.executable, "-c", "import simulator.engine"],
}
PROBE = ("import runpy, sys\nsys.argv = ['simulator'] + sys.argv[1:]\ntry:\n"
         "    runpy.run_module('simulator', run_name='__main__')\nexcept SystemExit:\n    pass\n"
         f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n")


def wall(command: list[str], runs: int) -> float:
    """Median wall time of `runs` runs of `command` (output discarded), after one warm-up run."""
    subprocess.run(command, cwd=ROOT, capture_output=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    bare = None
    print(f"{'command':<26} {'median s':>9} {'x python':>9}  heavy libraries imported")
    for name, command in COMMANDS.items():
        seconds = wall(command, args.runs)
        bare = bare or seconds
        heavy = ""
        if name.startswith("simulator "):
            probe = subprocess.run([sys.executable, "-c", PROBE, *command[3:]], cwd=ROOT, capture_output=True,
                                   text=True)
            heavy = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else "-"
        print(f"{name:<26} {seconds:>9.3f} {seconds / bare:>9.1f}  {heavy}")


if __name__ == "__main__":
    main()
