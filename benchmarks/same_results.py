"""Whether a change of speed left the results as they were: write the results of three scenarios (the
baseline, severe and the cutoff sweep, small) with the simulator importable here, or compare two such
folders variable by variable, to the bit.

    python benchmarks/same_results.py write DIR        # run from outside the repository with
    python benchmarks/same_results.py compare DIR DIR  #   PYTHONPATH=<a worktree> for an older commit
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RUNS = {"baseline": ["applicants.monthly_volume=20000", "run.paths=4"],
        "severe": ["applicants.monthly_volume=3000", "run.paths=3"],
        "cutoff_sweep": ["applicants.monthly_volume=1000", "run.paths=2"]}


def write(folder: Path) -> None:
    import simulator
    from simulator.engine import simulation
    from simulator.results import dataset
    from simulator.config.loader import load_scenario

    folder.mkdir(parents=True, exist_ok=True)
    for name, overrides in RUNS.items():
        ds = simulation.simulate(load_scenario(ROOT / "scenarios" / f"{name}.toml", overrides + ["engine.threads=2"]))
        dataset.write(ds, folder / f"{name}.nc")
    print(f"wrote {len(RUNS)} results files with {simulator.__file__}")


def _shown(ds, key: str) -> str:
    """An attribute as compared: the resolved scenario with keys of earlier versions under their new
    names (a renamed key is the same scenario), every other attribute as it is."""
    from simulator.reporting import readback

    value = ds.attrs.get(key)
    if key == "scenario_resolved" and isinstance(value, str):
        return json.dumps(readback.scenario_tree(value), sort_keys=True)
    return str(value)


def compare(a: Path, b: Path) -> bool:
    from simulator.results import dataset

    same = True
    for name in RUNS:
        x, y = dataset.read(a / f"{name}.nc"), dataset.read(b / f"{name}.nc")
        differ = [k for k in sorted(set(x.data_vars) | set(y.data_vars))
                  if k not in x or k not in y or not np.array_equal(x[k].values, y[k].values,
                                                                   equal_nan=x[k].dtype.kind == "f")]
        attrs = [k for k in sorted(set(x.attrs) | set(y.attrs)) if _shown(x, k) != _shown(y, k)]
        print(f"{name}: {len(x.data_vars)} variables, differing: {differ or 'none'}; attributes differing: "
              f"{attrs or 'none'}")
        same = same and not differ and not attrs
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["write", "compare"])
    parser.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args()
    if args.action == "write":
        write(args.folders[0])
    else:
        raise SystemExit(0 if compare(*args.folders[:2]) else 1)


if __name__ == "__main__":
    main()
