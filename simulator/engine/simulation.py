"""Orchestration: the tasks of a run (sweep cell x paths x borrowers) on threads here or on Dask
workers, with checkpoints, and the Dataset at the end. Results do not depend on how the work is split."""
from __future__ import annotations

import logging
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba as nb
import numpy as np
import xarray as xr
from tqdm import tqdm

from . import faults
from ..model import kernel, policy, provisions, risk, scoring, tail, terms
from ..tape import writer
from .._version import __version__
from .checkpoints import Checkpoints, Task
from ..codes import TAPE
from ..config.loader import LoadedScenario
from ..config.schema import Run, Scenario, ScenarioError
from ..model.origination import prepare
from ..model.provisions import EclTable
from ..results.assemble import path_series, series_shapes
from ..model.terms import Accounts, FactorPaths


SCHEDULER_TIMEOUT = 10   # seconds to wait for a Dask scheduler at --scheduler
WORKERS_LOST = ("expected workers that finish their tasks, found the workers lost again and again; finished tasks "
                "are kept: run again with --resume to continue")


def plan_tasks(sc: Scenario, n_borrowers: int, cell: int = 0) -> list[Task]:
    """Tasks of `engine.task_paths` paths by `engine.task_borrowers` borrowers (no effect on results)."""
    paths, step_p, step_b = sc.run.paths, sc.engine.task_paths, sc.engine.task_borrowers
    return [Task(cell, p0, min(paths, p0 + step_p), b0, min(n_borrowers, b0 + step_b))
            for p0 in range(0, paths, step_p) for b0 in range(0, max(n_borrowers, 1), step_b)]


def use_threads(threads: int | None, sc: Scenario) -> int:
    """The kernel's threads: asked for, else the scenario's, else all cores (NUMBA_NUM_THREADS)."""
    return max(1, threads or sc.engine.threads or nb.config.NUMBA_NUM_THREADS)


def n_groups(run: Run) -> int:
    """Population groups of a run: `run.population_groups` of applicants, and the existing book's."""
    return run.population_groups + 1


def task_shapes(sc: Scenario) -> dict[str, tuple[int, ...]]:
    """Shape of each of a task's sums after its (path,) axis: the kernel's outputs
    (`terms.output_shapes`) and each population group's `path_series` (`group_...`)."""
    return terms.output_shapes(sc) | {f"group_{name}": (n_groups(sc.run),) + shape
                                      for name, shape in series_shapes(sc).items()}


def run_task(sc: Scenario, accounts: Accounts, starts: np.ndarray, task: Task, ecl: EclTable, factors: FactorPaths,
             threads: int | None = None, block_size: int | None = None,
             tape: writer.KernelTape | None = None) -> dict[str, np.ndarray]:
    """Integer sums of one task, shaped (task paths, ...) as in `task_shapes`, with the ECL table
    `ecl` of the run's accounts and the cell's factor paths `factors`; with `tape` (the run's
    accounts), the loan tape of the task's accounts on path 0. The kernel runs once per population
    group (`terms.borrower_groups`): the sums are the groups' sums, and each group's `path_series`
    is kept beside them."""
    threads = use_threads(threads, sc)
    z, roll, prepay = (np.ascontiguousarray(x[task.p0:task.p1]) for x in (factors.z, factors.roll, factors.prepay))
    a0, a1 = starts[task.b0], starts[task.b1]
    borrower_start = starts[task.b0:task.b1 + 1] - a0
    task_accounts = terms.between(accounts, a0, a1)
    groups = terms.borrower_groups(task_accounts.borrower, borrower_start, sc.run.population_groups)
    shapes = terms.output_shapes(sc)
    out = {name: np.zeros((threads, task.p1 - task.p0) + shape, dtype=np.int64) for name, shape in shapes.items()}
    part = tape.part(a0, a1) if tape is not None else writer.KernelTape(np.zeros((0, len(TAPE)), dtype=np.int64),
                                                                        np.zeros(a1 - a0, dtype=np.int64), None)
    kernel_terms = terms.kernel_terms(sc, policy.bill_instalment_terms(sc.products, sc.policy), ecl)
    window = tail.capital_window(sc)
    sums = {name: np.zeros((task.p1 - task.p0,) + shape, dtype=np.int64) for name, shape in task_shapes(sc).items()}
    for group in range(n_groups(sc.run)):
        if not np.any(groups == group):
            continue
        for x in out.values():
            x[...] = 0
        kernel.simulate(kernel_terms, task_accounts, borrower_start, groups, group, z, roll, prepay,
                        np.int64(task.p0), np.int64(block_size or sc.engine.block_size),
                        terms.Outputs(**out, tape=part.cells, tape_row0=part.row0))
        found = {name: x.sum(axis=0) for name, x in out.items()}
        for name, x in found.items():
            sums[name] += x
        for name, x in path_series(found, window).items():
            sums[f"group_{name}"][:, group] = x
    return sums


class Totals:
    """The tasks' integer sums added up. Full mode: per path. Summary mode (run.results): per path
    only `assemble.path_series`; every output as its weighted mean over paths, folded path by path in
    path order (so the floating sums depend neither on the order tasks finish nor on how they are
    split) once a block of paths has all its borrower tasks: memory follows the blocks in flight,
    not the paths."""

    def __init__(self, sc: Scenario, tasks: list[Task], summary: bool, weight: np.ndarray):
        self.summary = summary
        shapes = terms.output_shapes(sc)
        self.groups = {name: np.zeros((sc.run.paths,) + shape, dtype=np.int64)
                       for name, shape in task_shapes(sc).items() if name.startswith("group_")}
        if not self.summary:
            self.totals = {name: np.zeros((sc.run.paths,) + shape, dtype=np.int64) for name, shape in shapes.items()}
            return
        self.weights = weight
        self.window = tail.capital_window(sc)
        self.means = {name: np.zeros((1,) + shape) for name, shape in shapes.items()}
        self.series = {name: np.zeros((sc.run.paths,) + shape, dtype=np.int64)
                       for name, shape in series_shapes(sc).items()}
        self.blocks = sorted({(t.p0, t.p1) for t in tasks})
        self.waiting = {block: sum(1 for t in tasks if (t.p0, t.p1) == block) for block in self.blocks}
        self.partial: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        self.folded = 0                                   # blocks folded into the means, in order

    def add(self, task: Task, sums: dict[str, np.ndarray]) -> None:
        for name in self.groups:
            self.groups[name][task.p0:task.p1] += sums[name]
        sums = {name: part for name, part in sums.items() if name not in self.groups}
        if not self.summary:
            for name, part in sums.items():
                self.totals[name][task.p0:task.p1] += part
            return
        for name, part in path_series(sums, self.window).items():
            self.series[name][task.p0:task.p1] += part
        block = (task.p0, task.p1)
        held = self.partial.setdefault(block, {name: np.zeros_like(part) for name, part in sums.items()})
        for name, part in sums.items():
            held[name] += part
        self.waiting[block] -= 1
        while self.folded < len(self.blocks) and self.waiting[self.blocks[self.folded]] == 0:
            p0, p1 = self.blocks[self.folded]
            for name, part in self.partial.pop((p0, p1)).items():
                for p in range(p0, p1):   # path by path, in order: the same bits whatever the task split
                    self.means[name][0] += self.weights[p] * part[p - p0]
            self.folded += 1

    def result(self) -> dict[str, np.ndarray]:
        """Full mode: the per-path sums. Summary mode: the weighted means (a path axis of 1) and "series".
        Both: "groups", each population group's `path_series` per path."""
        groups = {"groups": {name.removeprefix("group_"): part for name, part in self.groups.items()}}
        if not self.summary:
            return self.totals | groups
        total = self.weights.sum()
        return {name: part / total for name, part in self.means.items()} | {"series": self.series} | groups


def _remote_task(sc: Scenario, accounts: Accounts, starts: np.ndarray, ecl: EclTable, factors: FactorPaths,
                 task: Task, threads: int, block_size: int | None) -> dict[str, np.ndarray]:
    """A task on a Dask worker (see `faults` for the crash that tests inject)."""
    faults.on_worker_task(task)
    return run_task(sc, accounts, starts, task, ecl, factors, threads, block_size)


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
                started = time.monotonic()
                try:
                    self.client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
                except (OSError, TimeoutError, ValueError) as exc:
                    raise ScenarioError(scheduler, "--scheduler", f"expected a Dask scheduler at this address, found "
                                                                  f"none after {time.monotonic() - started:.0f} s "
                                                                  f"({exc.__class__.__name__})") from None
                self.worker_threads = threads or 1
            else:
                cores = os.cpu_count() or 1
                self.worker_threads = threads or max(1, cores // workers)
                # No dashboard, and the scheduler's HTTP routes on a free loopback port: a default 8787
                # already taken (a notebook's dashboard) would print distributed's warning.
                self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                            dashboard_address=None, silence_logs=logging.CRITICAL,
                                            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
                self.client = Client(self.cluster)
                self.client.wait_for_workers(workers)   # so that scattered inputs reach every worker

    def run(self, sc: Scenario, accounts: Accounts, starts: np.ndarray, ecl: EclTable, factors: FactorPaths,
            tasks: list[Task], tape: np.ndarray | None = None):
        """Yield (task, sums) as tasks finish (any order; sums are integers, so order does not matter)."""
        if self.client is None:
            for task in tasks:
                yield task, run_task(sc, accounts, starts, task, ecl, factors, self.threads, self.block_size, tape)
            return
        if tape is not None:
            raise ValueError("a loan tape is only kept for runs here, not on Dask workers")
        from concurrent.futures import CancelledError

        from dask.distributed import as_completed
        from distributed import KilledWorker

        shared = self.client.scatter([sc, accounts, starts, ecl, factors], broadcast=True)

        def submit(task: Task):
            return self.client.submit(_remote_task, *shared, task, self.worker_threads, self.block_size,
                                      pure=False, retries=2)

        futures = {submit(task): task for task in tasks}
        lost = 0
        running = as_completed(futures)
        for future in running:
            task = futures.pop(future)
            try:
                sums = future.result()
            except KilledWorker:
                raise ScenarioError("dask", "--workers", WORKERS_LOST) from None
            except CancelledError:
                # A worker died holding the only copy of the scattered inputs: scatter them again.
                lost += 1
                if lost > 2 * len(tasks):
                    raise ScenarioError("dask", "--workers", WORKERS_LOST) from None
                shared = self.client.scatter([sc, accounts, starts, ecl, factors], broadcast=True)
                retry = submit(task)
                futures[retry] = task
                running.add(retry)
                continue
            yield task, sums

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def run_accounts(sc: Scenario, accounts: Accounts, threads: int | None = None, block_size: int | None = None,
                 executor: Executor | None = None, store: Checkpoints | None = None, cell: int = 0,
                 progress: bool = False, label: str = "", tape: bool = False,
                 summary: bool = False, factors: FactorPaths | None = None) -> dict[str, np.ndarray]:
    """Every task of one scenario (or sweep cell) over `accounts`: integer sums by name (shapes of
    `terms.output_shapes` after a path axis). Tasks run on `executor` (default: here, with `threads`
    and `block_size`); finished ones are taken from and saved to `store`. With `tape`, also
    "tape": the loan tape of path 0 (a tape.KernelTape; status -1: no row). With `summary`, the
    weighted means and per-path series of `Totals` instead of per-path sums. `factors`: the cell's
    factor paths (`terms.factors`), made here when not given."""
    local = executor is None
    executor = executor or Executor(threads, block_size)
    factors = terms.factors(sc) if factors is None else factors
    starts = terms.borrower_starts(accounts.borrower)
    tasks = plan_tasks(sc, len(starts) - 1, cell)
    totals, todo = Totals(sc, tasks, summary, factors.weight), []
    ecl = provisions.ecl_table(sc, accounts, terms.n_bands(sc), factors.z)
    for task in tasks:
        saved = store.load(task) if store else None
        if saved is None:
            todo.append(task)
        else:
            totals.add(task, saved)
    tape_out = writer.new_kernel_tape(accounts.start_month, sc.run.horizon_months) if tape else None
    bar = tqdm(total=len(todo), unit="task", disable=not progress, file=sys.stderr, leave=False, dynamic_ncols=True,
               desc=label or None)
    # Finished tasks are saved on a thread of their own while the next ones run (a save waits on the
    # disk); every save is atomic, and the run ends only when they are all on disk.
    saver = ThreadPoolExecutor(max_workers=1) if store else None
    saves = []
    try:
        for task, sums in executor.run(sc, accounts, starts, ecl, factors, todo, tape_out):
            if store:
                saves.append(saver.submit(store.save, task, sums))
            totals.add(task, sums)
            bar.update()
            faults.after_task()
        for save in saves:
            save.result()           # a save that failed fails the run
    finally:
        if saver:
            saver.shutdown(wait=True, cancel_futures=True)
        bar.close()
        if local:
            executor.close()
    out = totals.result()
    if tape:
        out["tape"] = tape_out
    return out


RESULT_COPIES = 4   # the kernel's totals, the cell's Dataset, the combined Dataset and its derived figures


def available_memory() -> int | None:
    """Bytes of memory available now (Linux MemAvailable), or None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def per_path_values(sc: Scenario) -> int:
    """Values a path keeps in memory: its factor inputs (factor, six roll rates, prepayment, draws and
    weight by month), and its results: every output in full mode, the tail's series in summary mode,
    and each population group's series."""
    factor = 10 * sc.run.horizon_months
    shapes = series_shapes(sc) if sc.run.summary() else terms.output_shapes(sc)
    groups = n_groups(sc.run) * sum(math.prod(shape) for shape in series_shapes(sc).values())
    return factor + groups + sum(math.prod(shape) for shape in shapes.values())


def check_memory(loaded: LoadedScenario, threads: int | None = None) -> None:
    """Refuse, before any work, a run whose results alone would not fit in the memory available (with
    each kernel thread's own sums of a task)."""
    need = sum(RESULT_COPIES * 8 * per_path_values(sc) * sc.run.paths for sc in loaded.cells)
    need += max(8 * use_threads(threads, sc) * min(sc.engine.task_paths, sc.run.paths)
                * sum(math.prod(shape) for shape in terms.output_shapes(sc).values()) for sc in loaded.cells)
    have = available_memory()
    hint = "" if loaded.scenario.run.summary() else ', or run.results = "summary"'
    if have is not None and need > have:
        raise ScenarioError(str(loaded.path), "run.paths", f"expected a run whose results fit in memory: they need "
                                                           f"about {need / 2**30:,.1f} GiB, {have / 2**30:,.1f} GiB "
                                                           f"is available (fewer paths, months or sweep cells{hint})")


def cell_sums(sc: Scenario, accounts: Accounts, counts: dict[str, np.ndarray], totals: dict[str, np.ndarray],
              path_weight: np.ndarray) -> dict[str, np.ndarray]:
    """Everything a cell's Dataset is built from: the kernel's totals, the host-side counts of
    origination, the pools' PDs, and the paths' weights (`path_weight`, the cell's `terms.factors`
    weight)."""
    seasoned_pd, seasoned_fraud = risk.seasoned_pools(accounts, terms.n_bands(sc), sc.run.horizon_months)
    # Summary mode: the kernel's sums are already weighted means (one "path" of weight 1).
    weights = np.ones(1) if "series" in totals else path_weight
    return totals | counts | {"pool_pd": risk.pool_pd(accounts, terms.n_bands(sc)),
                              "state_pd": risk.state_pds(accounts, terms.n_bands(sc), sc.behaviour.roll_rates, sc.factor),
                              "seasoned_pd": seasoned_pd,
                              "seasoned_fraud": seasoned_fraud, "path_weight": weights}


def simulate(loaded: LoadedScenario, threads: int | None = None, block_size: int | None = None,
             progress: bool = False, workers: int | None = None, scheduler: str | None = None,
             checkpoint: Path | None = None, resume: bool = False, tape: Path | None = None) -> xr.Dataset:
    """A whole run: a pure function of the scenario (and its seed), whatever the threads, block
    size, tasks or workers. A sweep runs every cell on the same applicants and factor paths
    (common random numbers) and adds a dimension per key. With `tape` (a single scenario), its loan
    tape of path 0 is written there once the run is done, and its approved offers beside it
    (`writer.offers_path`)."""
    from ..results.assemble import build_dataset, combine_cells

    check_memory(loaded, threads)
    labels = scoring.band_labels(loaded.scenario.scorecard.bands)
    shapes = [task_shapes(sc) for sc in loaded.cells]
    store = Checkpoints(checkpoint, loaded, resume, shapes) if checkpoint is not None else None
    executor = Executor(threads, block_size, workers, scheduler)
    try:
        cells = []
        for index, sc in enumerate(loaded.cells):
            accounts, counts = prepare(sc, loaded.book_path(sc), offers=tape is not None)
            offers = counts.pop("offers", None)
            if tape is not None:
                check_tape_memory(tape, accounts.start_month, sc.run.horizon_months)
            factors = terms.factors(sc)
            totals = run_accounts(sc, accounts, executor=executor, store=store, cell=index, progress=progress,
                                  label=f"cell {index + 1}/{len(loaded.cells)}", summary=sc.run.summary(),
                                  tape=tape is not None, factors=factors)
            if tape is not None:
                taped = (sc, accounts, totals.pop("tape"))
            sums = cell_sums(sc, accounts, counts, totals, factors.weight)
            cells.append(build_dataset(loaded, sc, labels, sums, __version__, sums.pop("series", None)))
    finally:
        executor.close()
    # The cells of a sweep share their path weights: it cannot vary what they depend on (loader.UNSWEPT,
    # loader.IMPORTANCE_SHIFT_KEYS), so the last cell's are the file's.
    ds = combine_cells(loaded, cells, factors.weight)
    if tape is not None:
        writer.write(tape, writer.frames(*taped))
        writer.write(writer.offers_path(tape), writer.offers_frame(loaded.scenario, offers))
    return ds


TAPE_COPIES = 2   # the kernel's tape, and the rows of a part of it (writer.ACCOUNTS_AT_ONCE accounts) as written


def check_tape_memory(path: Path, start_month: np.ndarray, horizon: int) -> None:
    """Refuse, before the kernel runs, a tape that would not fit in the memory available."""
    accounts = len(start_month)
    need = TAPE_COPIES * writer.BYTES_A_CELL * writer.cells_needed(start_month, horizon)
    have = available_memory()
    if have is not None and need > have:
        raise ScenarioError(str(path), "--tape", f"expected a tape that fits in memory: {accounts:,} accounts x "
                                                 f"{horizon} months need about {need / 2**30:,.1f} GiB, "
                                                 f"{have / 2**30:,.1f} GiB is available (fewer applicants a month, "
                                                 f"origination months or months)")
