"""Orchestration: origination -> tasks of the kernel (here, on threads, or on Dask workers) -> Dataset."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import NamedTuple
from importlib.metadata import PackageNotFoundError, version as package_version

import numba as nb
import numpy as np
import xarray as xr
from tqdm import tqdm

from . import hazard, kernel, policy, scoring
from .config import PRODUCTS, STATES, LoadedScenario, Scenario, ScenarioError
from .origination import borrower_starts, pool_pd, prepare, to_cents
from .policy import HUABEI, JIEBEI, YUEFU


def simulator_version() -> str:
    try:
        return package_version("credit-simulator")
    except PackageNotFoundError:
        return "unknown"


def model_terms(sc: Scenario) -> kernel.Terms:
    """The scenario's parameters as the kernel reads them (per-product arrays by product code)."""
    jb, hb, yf, beh, fac = sc.products.jiebei, sc.products.huabei, sc.products.yuefu, sc.behaviour, sc.factor
    penalty = np.zeros(len(PRODUCTS))
    penalty[JIEBEI] = jb.penalty_daily_rate * jb.days_per_year / 12.0
    penalty[HUABEI] = hb.penalty_daily_rate * hb.days_per_period
    penalty[YUEFU] = yf.late_fee_daily * yf.days_per_year / 12.0
    late_fee = np.zeros(len(PRODUCTS), dtype=np.int64)
    late_fee[JIEBEI] = to_cents(jb.late_fee)
    prepayment = np.zeros(len(PRODUCTS), dtype=np.bool_)
    prepayment[JIEBEI], prepayment[YUEFU] = jb.prepayment, yf.prepayment
    bill = policy.bill_instalment_terms(sc)
    return kernel.Terms(
        seed=np.int64(sc.run.seed), sqrt_rho=math.sqrt(fac.asset_correlation),
        sqrt_rho_b=math.sqrt(fac.borrower_correlation),
        inv_sqrt_idio=1.0 / math.sqrt(1.0 - fac.asset_correlation - fac.borrower_correlation),
        funding_rate=sc.funding.cost_of_funds / 12.0,
        recovery_share=beh.recovery_rate * (1.0 - beh.collection_cost), recovery_lag=np.int64(beh.recovery_lag_months),
        penalty_rate=penalty, late_fee=late_fee, prepayment=prepayment,
        min_payment_share=hb.min_payment_share, revolver_pay_share=beh.revolver_pay_share,
        conversion_rate=hb.conversion_rate if len(bill["tenors"]) else 0.0,
        min_conversion=np.int64(to_cents(hb.min_conversion)),
        conversion_tenors=bill["tenors"] if len(bill["tenors"]) else np.ones(1, dtype=np.int64),
        conversion_fee_rate=bill["fee_rate"] if len(bill["tenors"]) else np.zeros(1),
        conversion_cum_shares=bill["cum_shares"] if len(bill["tenors"]) else np.ones(1),
        limit_cut=hb.limit_cut_on_miss, limit_raise=hb.limit_raise, raise_after=np.int64(hb.raise_after_months))


def output_shapes(sc: Scenario) -> dict[str, tuple[int, ...]]:
    """Shape of each kernel output after its (path,) axis: see kernel.simulate."""
    horizon, products, bands = sc.run.horizon_months, len(PRODUCTS), len(sc.scorecard.bands) + 1
    vintages = min(sc.applicants.origination_months, horizon) if sc.applicants.monthly_volume > 0 else 0
    return {
        "stocks": (horizon, products, bands, len(STATES), 2),
        "flows": (horizon, products, bands, kernel.N_FLOWS),
        "rolls": (horizon, products, bands, len(STATES)),
        "cures": (horizon, products, bands, len(STATES)),
        "borrowers": (horizon, bands, len(STATES)),
        "vintage_stocks": (vintages, horizon, products, len(STATES), 2),
        "vintage_flows": (vintages, horizon, products, len(kernel.VINTAGE_FLOWS)),
        "seasoned": (products, bands, 2),
    }


class Task(NamedTuple):
    """One unit of work: paths p0 .. p1 - 1 of borrowers b0 .. b1 - 1 (of one sweep cell)."""
    cell: int
    p0: int
    p1: int
    b0: int
    b1: int


def plan_tasks(sc: Scenario, n_borrowers: int, cell: int = 0) -> list[Task]:
    """Tasks of `engine.task_paths` paths by `engine.task_borrowers` borrowers (no effect on results)."""
    paths, step_p, step_b = sc.run.paths, sc.engine.task_paths, sc.engine.task_borrowers
    return [Task(cell, p0, min(paths, p0 + step_p), b0, min(n_borrowers, b0 + step_b))
            for p0 in range(0, paths, step_p) for b0 in range(0, max(n_borrowers, 1), step_b)]


def factor_inputs(sc: Scenario) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per path and month: the factor plus the macro shift, the six roll rates, the prepayment rate."""
    horizon = sc.run.horizon_months
    z = hazard.factor_paths(sc.run.seed, sc.run.paths, horizon, sc.factor.autocorrelation,
                            sc.macro.monthly_shift()[:horizon])
    roll = hazard.roll_paths(sc.behaviour.roll_rates, sc.factor.roll_correlation, z)
    prepay = np.minimum(1.0, sc.behaviour.prepay_monthly * np.exp(sc.macro.prepay_sensitivity * z))
    return z, roll, prepay


def use_threads(threads: int | None, sc: Scenario) -> int:
    """The kernel's threads: asked for, else the scenario's, else all cores (NUMBA_NUM_THREADS)."""
    return max(1, threads or sc.engine.threads or nb.config.NUMBA_NUM_THREADS)


def run_task(sc: Scenario, accounts: kernel.Accounts, starts: np.ndarray, task: Task, threads: int | None = None,
             block_size: int | None = None, trace: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Integer sums of one task, shaped (task paths, ...) as in `output_shapes`."""
    threads = use_threads(threads, sc)
    z, roll, prepay = (np.ascontiguousarray(x[task.p0:task.p1]) for x in factor_inputs(sc))
    a0, a1 = starts[task.b0], starts[task.b1]
    out = {name: np.zeros((threads, task.p1 - task.p0) + shape, dtype=np.int64)
           for name, shape in output_shapes(sc).items()}
    no_trace = np.zeros((0, sc.run.horizon_months), dtype=np.int64)
    kernel.simulate(
        model_terms(sc), kernel.Accounts(*(column[a0:a1] for column in accounts)),
        starts[task.b0:task.b1 + 1] - a0, z, roll, prepay, np.int64(task.p0),
        np.int64(block_size or sc.engine.block_size),
        kernel.Outputs(**out, trace=trace[a0:a1] if trace is not None else no_trace))
    return {name: part.sum(axis=0) for name, part in out.items()}


def add_task(totals: dict[str, np.ndarray], task: Task, sums: dict[str, np.ndarray]) -> None:
    for name, part in sums.items():
        totals[name][task.p0:task.p1] += part


def empty_totals(sc: Scenario) -> dict[str, np.ndarray]:
    return {name: np.zeros((sc.run.paths,) + shape, dtype=np.int64) for name, shape in output_shapes(sc).items()}


def run_kernel(sc: Scenario, accounts: kernel.Accounts, threads: int | None = None, block_size: int | None = None,
               progress: bool = False, trace: bool = False) -> dict[str, np.ndarray]:
    """Run every path over every account here: integer sums by name (see `output_shapes`), and
    with `trace` the month-end balance of each account on path 0 (for tests)."""
    starts = borrower_starts(accounts.borrower)
    totals = empty_totals(sc)
    trace_out = np.zeros((len(accounts.account_id), sc.run.horizon_months), dtype=np.int64) if trace else None
    tasks = plan_tasks(sc, len(starts) - 1)
    for task in tqdm(tasks, unit="task", disable=not progress, file=sys.stderr, leave=False, dynamic_ncols=True):
        add_task(totals, task, run_task(sc, accounts, starts, task, threads, block_size, trace_out))
    if trace:
        totals["trace"] = trace_out
    return totals


class Checkpoints:
    """Finished tasks saved under a folder (one .npz each, written atomically), so that an
    interrupted run resumes where it stopped. A fingerprint of the scenario and the task plan
    guards against resuming another run's tasks."""

    def __init__(self, folder: Path, loaded: LoadedScenario, resume: bool):
        self.folder = folder
        plan = [(c.engine.task_paths, c.engine.task_borrowers) for c in loaded.cells]
        text = json.dumps({"cells": [c.model_dump(mode="json") for c in loaded.cells], "plan": plan,
                           "version": simulator_version()}, sort_keys=True)
        self.digest = hashlib.sha256(text.encode()).hexdigest()
        stamp = folder / "fingerprint"
        if resume and stamp.exists() and stamp.read_text() != self.digest:
            raise ScenarioError(str(folder), "--resume", "expected checkpoints of the same scenario and task plan, "
                                                         "found another run's")
        if not resume:
            shutil.rmtree(folder, ignore_errors=True)

    def _path(self, task: Task) -> Path:
        return self.folder / f"cell{task.cell}-p{task.p0}-{task.p1}-b{task.b0}-{task.b1}.npz"

    def load(self, task: Task) -> dict[str, np.ndarray] | None:
        path = self._path(task)
        if not path.exists():
            return None
        with np.load(path) as saved:
            return {name: saved[name] for name in saved.files}

    def save(self, task: Task, sums: dict[str, np.ndarray]) -> None:
        if not self.folder.is_dir():  # made at the first finished task: bad input writes nothing
            self.folder.mkdir(parents=True)
            (self.folder / "fingerprint").write_text(self.digest)
        path = self._path(task)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **sums)
        os.replace(tmp, path)
        if os.environ.get("SIMULATOR_TASK_DELAY"):  # seconds to wait after each task: lets tests interrupt midway
            time.sleep(float(os.environ["SIMULATOR_TASK_DELAY"]))

    @staticmethod
    def remove_folder(folder: Path) -> None:
        """Drop the checkpoints once the results are written."""
        shutil.rmtree(folder, ignore_errors=True)


def _remote_task(sc: Scenario, accounts: kernel.Accounts, starts: np.ndarray, task: Task, threads: int,
                 block_size: int | None) -> dict[str, np.ndarray]:
    """A task on a Dask worker. SIMULATOR_CRASH_ONCE=<file> makes the first task to see no such
    file create it and kill its worker (fault-injection for tests)."""
    marker = os.environ.get("SIMULATOR_CRASH_ONCE")
    if marker and not os.path.exists(marker):
        Path(marker).write_text(str(task))
        os._exit(1)
    return run_task(sc, accounts, starts, task, threads, block_size)


class Executor:
    """Runs tasks here, or on a Dask cluster: a LocalCluster of `workers` processes, or the
    scheduler at `scheduler`. Kernel threads per worker are set so workers do not oversubscribe."""

    def __init__(self, threads: int | None, block_size: int | None, workers: int | None = None,
                 scheduler: str | None = None):
        self.threads, self.block_size = threads, block_size
        self.client = self.cluster = None
        if workers or scheduler:
            from dask.distributed import Client, LocalCluster

            if scheduler:
                self.client = Client(scheduler)
                self.worker_threads = threads or 1
            else:
                cores = os.cpu_count() or 1
                self.worker_threads = threads or max(1, cores // workers)
                self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                            dashboard_address=None, silence_logs=logging.ERROR)
                self.client = Client(self.cluster)

    def run(self, sc: Scenario, accounts: kernel.Accounts, starts: np.ndarray, tasks: list[Task]):
        """Yield (task, sums) as tasks finish (any order; sums are integers, so order does not matter)."""
        if self.client is None:
            for task in tasks:
                yield task, run_task(sc, accounts, starts, task, self.threads, self.block_size)
            return
        from dask.distributed import as_completed

        shared = self.client.scatter([sc, accounts, starts], broadcast=True)
        futures = {self.client.submit(_remote_task, *shared, task, self.worker_threads, self.block_size,
                                      pure=False, retries=2): task for task in tasks}
        for future in as_completed(futures):
            yield futures[future], future.result()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def simulate(loaded: LoadedScenario, threads: int | None = None, block_size: int | None = None,
             progress: bool = False, workers: int | None = None, scheduler: str | None = None,
             checkpoint: Path | None = None, resume: bool = False) -> xr.Dataset:
    """A whole run: a pure function of the scenario (and its seed), whatever the threads, block
    size, tasks or workers. A sweep runs every cell on the same applicants and factor paths
    (common random numbers) and adds a dimension per key."""
    from .results import build_dataset, combine_cells

    labels = scoring.band_labels(loaded.scenario.scorecard.bands)
    store = Checkpoints(checkpoint, loaded, resume) if checkpoint is not None else None
    executor = Executor(threads, block_size, workers, scheduler)
    try:
        cells = []
        for index, sc in enumerate(loaded.cells):
            accounts, counts = prepare(sc, loaded.book_path(sc))
            starts = borrower_starts(accounts.borrower)
            totals, todo = empty_totals(sc), []
            for task in plan_tasks(sc, len(starts) - 1, index):
                saved = store.load(task) if store else None
                if saved is None:
                    todo.append(task)
                else:
                    add_task(totals, task, saved)
            bar = tqdm(total=len(todo), unit="task", disable=not progress, file=sys.stderr, leave=False,
                       dynamic_ncols=True, desc=f"cell {index + 1}/{len(loaded.cells)}")
            for task, sums in executor.run(sc, accounts, starts, todo):
                if store:
                    store.save(task, sums)
                add_task(totals, task, sums)
                bar.update()
            bar.close()
            sums = totals | counts | {"pool_pd": pool_pd(accounts, len(sc.scorecard.bands) + 1)}
            cells.append(build_dataset(loaded, sc, labels, sums, simulator_version()))
    finally:
        executor.close()
    return combine_cells(loaded, cells)
