"""The public Python API: load, run, write, read, report, compare, quote, calibrate, backtest. The
package face (`simulator/__init__.py`) re-exports it; the command line is a thin layer over it. Bad
input raises `ScenarioError`, whose message is the command line's `error:` line; imports of the heavy
libraries wait until a function needs them."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .config.schema import MAX_BLOCK_SIZE, MAX_THREADS, ScenarioError, check_count
from .config.loader import LoadedScenario, load_scenario

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr


def load(path: str | Path, overrides: dict[str, Any] | list[str] | None = None) -> LoadedScenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path : str or Path
        The scenario file (TOML; `extends` followed).
    overrides : dict or list of str, optional
        Keys to change, as {"dotted.key": value} or as `--set` strings ("dotted.key=value").

    Returns
    -------
    LoadedScenario
        The validated scenario, its sweep cells, the files it was read from.

    Raises
    ------
    ScenarioError
        A file, key or value that is not valid (the message names the file and the key).
    """
    return load_scenario(path, overrides)


RUN_FILES = ("results.nc", "report.html")   # what a run writes into its folder besides figures/


def _check_run_inputs(loaded: LoadedScenario, out: str | Path | None, tape: Path | None,
                      threads: int | None) -> None:
    """Everything a run reads and writes, checked before it makes anything: its outputs are none of
    its inputs and can be written, its results fit in memory, every cell's book is a valid book."""
    from .model import book
    from .engine import simulation
    from .config import files

    inputs = [*loaded.sources, *loaded.book_paths()]
    if out is not None:
        files.check_output(Path(out), "--out", inputs, folder=True)
        for name in RUN_FILES:
            files.check_output(Path(out) / name, "--out", inputs)
    if tape is not None:
        from .tape import writer

        files.check_output(tape, "--tape", inputs)
        files.check_output(writer.offers_path(tape), "--tape", inputs)
    simulation.check_memory(loaded, threads)
    book.check_books(loaded)


def run(scenario: LoadedScenario | str | Path, *, out: str | Path | None = None, threads: int | None = None,
        block_size: int | None = None, workers: int | None = None, scheduler: str | None = None,
        resume: bool = False, progress: bool = False, tape: str | Path | None = None) -> xr.Dataset:
    """Run a scenario and return its results Dataset.

    Parameters
    ----------
    scenario : LoadedScenario, str or Path
        A loaded scenario, or a scenario file's path.
    out : str or Path, optional
        A folder: results.nc is written there atomically, and finished tasks are checkpointed in
        out/.checkpoint while the run goes on. Checked before any work (never one of the inputs).
    threads, block_size : int, optional
        Kernel threads (0: all cores) and borrowers per block; they never change the results.
    workers : int, optional
        Run on a local Dask cluster of this many workers (or `scheduler`: a Dask address).
    resume : bool
        Continue the interrupted run in `out` from its checkpoints.
    progress : bool
        Show a progress bar on stderr.
    tape : str or Path, optional
        Also write the loan tape of path 0 (Parquet or CSV by the suffix); a single scenario run
        here: not a sweep, not on Dask, not resumed.

    Returns
    -------
    xarray.Dataset
        The results (docs/results.md), with the scenario and seed in its attributes.

    Raises
    ------
    ScenarioError
        Bad input or an output that cannot be written; nothing is written then.
    """
    from .engine import simulation, lock
    from .results import dataset
    from .engine.checkpoints import Checkpoints

    loaded = scenario if isinstance(scenario, LoadedScenario) else load(scenario)
    file = str(loaded.path)
    check_count(threads, "--threads", 0, MAX_THREADS, file)
    check_count(block_size, "--block-size", 1, MAX_BLOCK_SIZE, file)
    check_count(workers, "--workers", 1, MAX_THREADS, file)
    if workers is not None and scheduler is not None:
        raise ScenarioError(file, "--scheduler", "expected either --workers or --scheduler, found both")
    if tape is not None:
        from .tape import writer

        tape = Path(tape)
        writer.check_path(tape)
        if loaded.dims:
            raise ScenarioError(str(tape), "--tape", "expected a scenario without a sweep (a tape is one scenario's "
                                                     "path 0), found a sweep")
        if workers is not None or scheduler is not None or resume:
            raise ScenarioError(str(tape), "--tape", "expected a run here from the start, found --workers, "
                                                     "--scheduler or --resume")
    _check_run_inputs(loaded, out, tape, threads)
    if out is None:
        if resume:
            raise ScenarioError(file, "--resume", "expected --out, the folder of the interrupted run, found none")
        return simulation.simulate(loaded, threads=threads, block_size=block_size, progress=progress, workers=workers,
                               scheduler=scheduler, tape=tape)
    checkpoint = Path(out) / ".checkpoint"
    if resume and not checkpoint.is_dir():
        raise ScenarioError(str(checkpoint), "--resume", "expected the checkpoints of an interrupted run, found none")
    with lock.hold(Path(out)):
        ds = simulation.simulate(loaded, threads=threads, block_size=block_size, progress=progress, workers=workers,
                             scheduler=scheduler, checkpoint=checkpoint, resume=resume, tape=tape)
        dataset.write(ds, Path(out) / "results.nc")
        Checkpoints.remove_folder(checkpoint)
    return ds


def write(ds: xr.Dataset, path: str | Path) -> None:
    """Write a results Dataset to NetCDF atomically (never a half-written file).

    Parameters
    ----------
    ds : xarray.Dataset
        Results of `run`.
    path : str or Path
        The file to write.
    """
    from .results import dataset

    dataset.write(ds, Path(path))


def read(path: str | Path) -> xr.Dataset:
    """Read a results file, or the results.nc of a run's folder.

    Parameters
    ----------
    path : str or Path
        A results file or a run's folder.

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    ScenarioError
        The file is missing, unreadable or not what this version writes (`readback.check`).
    """
    from .reporting import readback

    return readback.open_run(Path(path))[1]


def report(folder: str | Path, ds: xr.Dataset | None = None, processes: int | None = None) -> Path:
    """Draw the figures of folder/results.nc into folder/figures/ and write folder/report.html.

    Parameters
    ----------
    folder : str or Path
        A run's folder.
    ds : xarray.Dataset, optional
        The results `run` just wrote there (drawn as they are, not read back).
    processes : int, optional
        How many processes draw the figures (default: the cores).

    Returns
    -------
    Path
        The page.

    Raises
    ------
    ScenarioError
        A results file that does not read, or a folder that cannot be written (refused before
        anything is drawn).
    """
    from .reporting import pages

    return pages.build(Path(folder), ds, processes)


def compare(folders: list[str | Path], out: str | Path | None = None, reference: str | None = None,
            accept_differences: bool = False) -> pd.DataFrame:
    """Headline figures of runs side by side, with their standard errors, and each figure's change
    against the reference with its (paired) error.

    Parameters
    ----------
    folders : list of str or Path
        Runs' folders (or results files).
    out : str or Path, optional
        Also draw them into out/compare.html (checked before any run is read).
    reference : str, optional
        The label (or part of it) of the run or cell the changes (and compare.html) are against
        (default: the first).
    accept_differences : bool
        Compare runs that differ in seed, paths, horizon, applicants, results mode or version
        (refused by default: their changes are not the policy's alone); a warning is issued.

    Returns
    -------
    pandas.DataFrame
        One row per run (or sweep cell): each headline figure, its standard error (`<figure>_se`),
        and against the reference `<figure>_change` and `<figure>_change_se`.

    Raises
    ------
    ScenarioError
        A run that does not read, runs that are not comparable, or an `out` that cannot be written.
    """
    import pandas as pd

    from .reporting import summary

    folders = [Path(f) for f in folders]
    if out is not None:
        from .reporting import pages

        pages.check_compare(folders, Path(out))
    columns, cells = summary.compared(folders)
    at = summary.reference_index(columns, reference)
    for line in summary.check_comparable(columns, cells, accept_differences):
        warnings.warn(line.removeprefix("warning: "), stacklevel=2)
    errors = summary.difference_errors(cells, at) if len(columns) > 1 else None
    if out is not None:
        pages.compare(folders, Path(out), reference)
    table = pd.DataFrame({label: figures for label, figures in columns}).T
    for label, found in summary.changes(columns, at, errors):
        for key, change in found.items():
            table.loc[label, f"{key}_change"] = change.change
            table.loc[label, f"{key}_change_se"] = change.se
    return table


class Quote(NamedTuple):
    """A quoted loan: all-in APR (monthly IRR x 12, fees included), total paid, and the schedule
    (one row a period: payment, principal, interest, fee, balance after, in yuan)."""
    apr: float
    total_payment: float
    schedule: pd.DataFrame


def quote(product: str, amount: float, term: int, *, apr: float | None = None, daily_rate: float | None = None,
          days_per_year: float | None = None, fee_per_period: float | None = None, method: str | None = None) -> Quote:
    """The repayment schedule and all-in APR of one loan, as `simulator quote` prints it.

    Parameters
    ----------
    product : str
        A product's name (codes.PRODUCTS).
    amount : float
        The amount lent or the purchase price, in yuan.
    term : int
        Periods (months).
    apr, daily_rate : float, optional
        The contract rate, a year or a day (fractions, held to the scenario's limits).
    days_per_year : float, optional
        Day count of a daily rate (the cash loan only; default 365).
    fee_per_period : float, optional
        A flat fee a period, as a fraction of the amount (instalment plans).
    method : str, optional
        Repayment method of a cash loan (codes.METHODS).

    Returns
    -------
    Quote
        The all-in APR, the total paid and the schedule.

    Raises
    ------
    ScenarioError
        Bad input, with the command line's `error:` line as its message.
    """
    import pandas as pd

    from .model import quotes

    q = quotes.quote(product, amount, term, apr, method, daily_rate, days_per_year, fee_per_period)
    schedule = pd.DataFrame(q["schedule"]).set_index("period")
    return Quote(q["apr"], q["total_payment"], schedule)


ON_BAD_ROWS = ("stop", "drop")


def _on_bad_rows(value: str, file: str) -> None:
    if value not in ON_BAD_ROWS:
        raise ScenarioError(file, "--on-bad-rows", f"expected one of {', '.join(ON_BAD_ROWS)}, found {value!r}")


class Calibration(NamedTuple):
    """A calibration written: the scenario, its fit report, the estimates' table as printed, and the
    report of the tape's dropped bad rows ("" when none)."""
    scenario: Path
    fit_report: Path
    table: str
    dropped: str


def calibrate(tape: str | Path, out: str | Path, extends: str | Path, *, mapping: str | Path | None = None,
              on_bad_rows: str = "stop", offers: str | Path | None = None, by_band: bool = False,
              until_month: int | None = None) -> Calibration:
    """Estimate the behaviour from a loan tape and write a scenario with what the tape shows.

    Parameters
    ----------
    tape : str or Path
        The loan tape (Parquet or CSV; docs/calibration.md).
    out : str or Path
        The scenario to write (.toml), extending `extends`; its fit report is written beside it.
        Never one of the inputs.
    extends : str or Path
        The base scenario.
    mapping : str or Path, optional
        A mapping file from a lender's columns and codes to the tape's.
    on_bad_rows : {"stop", "drop"}
        Stop at the first bad row, or drop bad rows and report them.
    offers : str or Path, optional
        Approved offers, for the take-up refit (default: the tape's offers file, if there).
    by_band : bool
        Also estimate roll rates by score band (for reading).
    until_month : int, optional
        Use the tape's months up to this one only.

    Returns
    -------
    Calibration
        The files written, the estimates' table and the report of dropped rows.

    Raises
    ------
    ScenarioError
        Bad input or an output that cannot be written; every input and output is checked before
        anything is read or written.
    """
    from .fitting import calibration, scorecard_fit, takeup_fit
    from .config import files
    from .reporting import pages
    from .tape import reader
    from .tape import writer

    tape, out, extends = Path(tape), Path(out), Path(extends)
    mapping = None if mapping is None else Path(mapping)
    _on_bad_rows(on_bad_rows, str(tape))
    check_count(until_month, "--until-month", 1, 10**6, str(tape))
    based = load_scenario(extends)                                 # the base must be a valid scenario
    if out.suffix.lower() != ".toml":
        raise ScenarioError(str(out), "--out", f"expected a scenario file name ending in .toml, found "
                                               f"{out.suffix or 'no suffix'}")
    offers_file = Path(offers) if offers is not None else writer.offers_path(tape)
    use_offers = offers is not None or offers_file.is_file()
    fit_page = out.with_name(out.stem + "_fit.html")
    inputs = [tape, mapping, offers_file if use_offers else None, *based.sources]
    for output in (out, fit_page):
        files.check_output(output, "--out", inputs)
    rows, dropped = reader.read(tape, mapping, on_bad_rows)
    if until_month is not None:
        rows = reader.until(rows, tape, until_month)
    base = based.scenario
    found = calibration.calibrate(rows, base)
    found["scorecard"], found["scorecard_note"] = scorecard_fit.from_tape(rows, tape, extends, base)
    if use_offers:
        found["takeup"] = takeup_fit.refit(takeup_fit.read(offers_file), base.policy, base.scorecard,
                                            base.applicants.segments)
    text = calibration.scenario_text(found, extends, out, tape, by_band)
    table = calibration.report(found, by_band)
    calibration.write_scenario(out, text)                         # checked valid before it is renamed into place
    page = pages.fit_report(fit_page, found, base, tape, found["given_pd_by_band"], table)
    return Calibration(out, page, table, dropped)


class Backtest(NamedTuple):
    """A backtest: its Dataset (the tape's figures against the simulated band), the table of points
    inside the band as printed, the report of dropped bad rows ("" when none), and with `out` the
    files written (else None)."""
    dataset: xr.Dataset
    table: str
    dropped: str
    results: Path | None
    report: Path | None


def backtest(tape: str | Path, scenario: str | Path, overrides: dict[str, Any] | list[str] | None = None, *,
             out: str | Path | None = None, paths: int = 100, level: float = 0.95, from_month: int | None = None,
             mapping: str | Path | None = None, on_bad_rows: str = "stop", threads: int | None = None,
             progress: bool = False) -> Backtest:
    """Run a scenario on a loan tape's own accounts over its months and compare with the tape.

    Parameters
    ----------
    tape : str or Path
        The loan tape (docs/calibration.md, Backtest).
    scenario : str or Path
        The scenario to test (for example one `calibrate` wrote).
    overrides : dict or list of str, optional
        Keys of the scenario to change, as in `load`.
    out : str or Path, optional
        A folder for backtest.nc and backtest.html (checked before any work).
    paths : int
        Simulated paths of the band.
    level : float
        The band's coverage (0.95: the 2.5% and 97.5% quantiles of the paths).
    from_month : int, optional
        Out of time: the months up to this one and the vintages originated up to it are left out
        of the comparison.
    mapping, on_bad_rows
        As in `calibrate`.
    threads : int, optional
        Kernel threads (never change the results).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Backtest
        The Dataset, the table of points inside the band, dropped rows, the files written.

    Raises
    ------
    ScenarioError
        Bad input or an output that cannot be written.
    """
    from .fitting import backtesting
    from .config import files
    from .reporting import pages
    from .results import dataset
    from .tape import reader

    tape, scenario = Path(tape), Path(scenario)
    mapping = None if mapping is None else Path(mapping)
    _on_bad_rows(on_bad_rows, str(tape))
    loaded = load_scenario(scenario, overrides)                  # the scenario's errors first
    if out is not None:
        out = Path(out)
        inputs = [tape, mapping, *loaded.sources, *loaded.book_paths()]
        files.check_output(out, "--out", inputs, folder=True)
        for name in ("backtest.nc", "backtest.html"):
            files.check_output(out / name, "--out", inputs)
    rows, dropped = reader.read(tape, mapping, on_bad_rows)
    ds = backtesting.run(rows, tape, scenario, loaded.overrides, paths=paths, level=level, from_month=from_month,
                       threads=threads, progress=progress)
    table = backtesting.table(ds)
    if out is None:
        return Backtest(ds, table, dropped, None, None)
    dataset.write(ds, out / "backtest.nc")
    page = pages.backtest_report(out, ds, table)
    return Backtest(ds, table, dropped, out / "backtest.nc", page)
