"""credit-simulator: a Monte Carlo simulator of platform consumer-credit portfolios.

The public Python API; the command line (`simulator ...`) is a thin layer over it:

    import simulator
    scenario = simulator.load("scenarios/baseline.toml", {"run.paths": 4})
    ds = simulator.run(scenario, out="reports/try")   # xarray Dataset; also writes reports/try/results.nc
    simulator.report("reports/try")                   # reports/try/report.html
    table = simulator.compare(["reports/try", "reports/baseline"])
    q = simulator.quote("jiebei", 10_000, 12, daily_rate=0.0004)   # q.apr, q.schedule (DataFrame)

Bad input raises `ScenarioError`, whose message is the command line's `error:` line.
Imports of the heavy libraries wait until a function needs them.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .config import LoadedScenario, ScenarioError, load_scenario

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

try:
    __version__ = _package_version("credit-simulator")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "unknown"

__all__ = ["ScenarioError", "LoadedScenario", "Quote", "load", "run", "write", "read", "report", "compare", "quote",
           "__version__"]


def load(path: str | Path, overrides: dict[str, Any] | list[str] | None = None) -> LoadedScenario:
    """Read and validate a scenario file, with overrides as {"dotted.key": value} (or `--set` strings)."""
    return load_scenario(path, overrides)


def _count(value: int | None, name: str, least: int, file: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
        raise ScenarioError(file, name, f"expected a whole number >= {least}, found {value!r}")


def run(scenario: LoadedScenario | str | Path, *, out: str | Path | None = None, threads: int | None = None,
        block_size: int | None = None, workers: int | None = None, scheduler: str | None = None,
        resume: bool = False, progress: bool = False, tape: str | Path | None = None) -> xr.Dataset:
    """Run a scenario (loaded, or a file's path) and return its results Dataset.

    With `out`, results.nc is written there atomically, finished tasks are checkpointed in
    out/.checkpoint while the run goes on, and `resume=True` continues an interrupted run from
    them. `threads` (0: all cores), `block_size`, `workers` (a local Dask cluster) and
    `scheduler` (a Dask address) change how the work is split, never the results. With `tape`, the
    loan tape of path 0 is also written there (Parquet or CSV by its suffix; a single scenario run
    here, not a sweep, not on Dask, not resumed).
    """
    from . import engine, lock, results
    from .checkpoints import Checkpoints

    loaded = scenario if isinstance(scenario, LoadedScenario) else load(scenario)
    file = str(loaded.path)
    _count(threads, "--threads", 0, file)
    _count(block_size, "--block-size", 1, file)
    _count(workers, "--workers", 1, file)
    if workers is not None and scheduler is not None:
        raise ScenarioError(file, "--scheduler", "expected either --workers or --scheduler, found both")
    if tape is not None:
        from . import tape as tapes

        tape = Path(tape)
        tapes.check_path(tape)
        if loaded.dims:
            raise ScenarioError(str(tape), "--tape", "expected a scenario without a sweep (a tape is one scenario's "
                                                     "path 0), found a sweep")
        if workers is not None or scheduler is not None or resume:
            raise ScenarioError(str(tape), "--tape", "expected a run here from the start, found --workers, "
                                                     "--scheduler or --resume")
    if out is None:
        if resume:
            raise ScenarioError(file, "--resume", "expected --out, the folder of the interrupted run, found none")
        return engine.simulate(loaded, threads=threads, block_size=block_size, progress=progress, workers=workers,
                               scheduler=scheduler, tape=tape)
    checkpoint = Path(out) / ".checkpoint"
    if resume and not checkpoint.is_dir():
        raise ScenarioError(str(checkpoint), "--resume", "expected the checkpoints of an interrupted run, found none")
    with lock.hold(Path(out)):
        ds = engine.simulate(loaded, threads=threads, block_size=block_size, progress=progress, workers=workers,
                             scheduler=scheduler, checkpoint=checkpoint, resume=resume, tape=tape)
        results.write(ds, Path(out) / "results.nc")
        Checkpoints.remove_folder(checkpoint)
    return ds


def write(ds: xr.Dataset, path: str | Path) -> None:
    """Write a results Dataset to NetCDF atomically (never a half-written file)."""
    from . import results

    results.write(ds, Path(path))


def read(path: str | Path) -> xr.Dataset:
    """Read a results file, or the results.nc of a run's folder (a ScenarioError if missing or unreadable)."""
    from . import results

    return results.open_run(Path(path))[1]


def report(folder: str | Path, ds: xr.Dataset | None = None, processes: int | None = None) -> Path:
    """Draw the figures of folder/results.nc and write folder/report.html; returns the page's path.
    `ds`: the results just written there by `run` (drawn as they are, not read back); `processes`:
    how many draw the figures (default: the cores)."""
    from . import pages

    try:
        return pages.build(Path(folder), ds, processes)
    except KeyError as exc:  # a variable this version draws is missing
        raise ScenarioError(str(Path(folder) / "results.nc"), "-", f"expected a results file of this simulator "
                                                                   f"version, found one without {exc}") from None


def compare(folders: list[str | Path], out: str | Path | None = None) -> pd.DataFrame:
    """Headline figures of runs side by side, one row per run (or sweep cell); with `out`, also
    draws them into out/compare.html."""
    import pandas as pd

    from . import summary

    rows = summary.runs([Path(f) for f in folders])
    if out is not None:
        from . import pages

        pages.compare([Path(f) for f in folders], Path(out))
    return pd.DataFrame({label: figures for label, figures in rows}).T


class Quote(NamedTuple):
    """A quoted loan: all-in APR (monthly IRR x 12, fees included), total paid, and the schedule
    (one row a period: payment, principal, interest, fee, balance after, in yuan)."""
    apr: float
    total_payment: float
    schedule: pd.DataFrame


def quote(product: str, amount: float, term: int, *, apr: float | None = None, daily_rate: float | None = None,
          days_per_year: float = 365.0, fee_per_period: float | None = None, method: str | None = None) -> Quote:
    """The repayment schedule and all-in APR of one loan, as `simulator quote` prints it."""
    import pandas as pd

    from . import quotes

    q = quotes.quote(product, amount, term, apr, method, daily_rate, days_per_year, fee_per_period)
    schedule = pd.DataFrame(q["schedule"]).set_index("period")
    return Quote(q["apr"], q["total_payment"], schedule)
