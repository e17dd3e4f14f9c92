"""credit-simulator: a Monte Carlo simulator of platform consumer-credit portfolios.

The public Python API; the command line (`simulator ...`) is a thin layer over it:

    import simulator
    scenario = simulator.load("scenarios/baseline.toml", {"run.paths": 4})
    ds = simulator.run(scenario, out="reports/try")   # xarray Dataset; also writes reports/try/results.nc
    simulator.report("reports/try")                   # reports/try/report.html
    table = simulator.compare(["reports/try", "reports/baseline"])
    q = simulator.quote("jiebei", 10_000, 12, daily_rate=0.0004)   # q.apr, q.schedule (DataFrame)
    fit = simulator.calibrate("tape.parquet", "fitted.toml", "scenarios/baseline.toml")   # fit.scenario
    bt = simulator.backtest("tape.parquet", "fitted.toml", out="reports/bt")            # bt.dataset, bt.table

Bad input raises `ScenarioError`, whose message is the command line's `error:` line.
Imports of the heavy libraries wait until a function needs them.
"""
from __future__ import annotations

from ._version import __version__
from .api import Backtest, Calibration, Quote, backtest, calibrate, compare, load, quote, read, report, run, write
from .config.loader import LoadedScenario
from .config.schema import ScenarioError

__all__ = ["ScenarioError", "LoadedScenario", "Quote", "Calibration", "Backtest", "load", "run", "write", "read", "report",
           "compare", "quote", "calibrate", "backtest", "__version__"]
