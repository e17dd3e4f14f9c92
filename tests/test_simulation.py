"""The orchestration of a run at unit level: the task plan covering every (path, borrower) once, the
kernel's threads, the tasks' sums added up (bit for bit whatever the split and the order), the memory
checks refusing a run before any work, a cell's sums, and the tasks of a tiny book run here: the same
totals whatever the threads, block size and tasks, and the cash of riskless loans against a closed-form
annuity."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from simulator import codes
from simulator.engine import simulation
from simulator.engine.checkpoints import Task
from simulator.config.schema import ScenarioError
from simulator.model import tail, terms
from simulator.results.assemble import path_series

from conftest import JIEBEI, identical_book, loaded_scenario

ROLLS = [0.45, 0.70, 0.85, 0.90, 0.92, 0.95]
NO_RISK = ["behaviour.prepay_monthly=0.0", "factor.asset_correlation=0.0", "factor.roll_correlation=0.0"]


def scenario(tmp_path, *overrides: str):
    return loaded_scenario(tmp_path, list(overrides)).scenario


def coverage(tasks: list[Task], paths: int, borrowers: int) -> np.ndarray:
    """How many tasks hold each (path, borrower)."""
    count = np.zeros((paths, borrowers), dtype=int)
    for t in tasks:
        count[t.p0:t.p1, t.b0:t.b1] += 1
    return count


# --- plan_tasks, use_threads -------------------------------------------------------------------------

@pytest.mark.parametrize("paths, task_paths, borrowers, task_borrowers", [
    (1, 16, 10, 250000), (5, 2, 7, 3), (6, 3, 9, 3), (4, 10, 1, 1), (3, 1, 11, 4)])
def test_plan_tasks_cover_every_path_and_borrower_once(tmp_path, paths, task_paths, borrowers, task_borrowers):
    sc = scenario(tmp_path, f"run.paths={paths}", f"engine.task_paths={task_paths}",
                  f"engine.task_borrowers={task_borrowers}")
    tasks = simulation.plan_tasks(sc, borrowers, cell=3)
    assert np.all(coverage(tasks, paths, borrowers) == 1)
    assert len(tasks) == math.ceil(paths / task_paths) * math.ceil(borrowers / task_borrowers)
    assert len(set(tasks)) == len(tasks)
    for t in tasks:
        assert t.cell == 3
        assert 0 < t.p1 - t.p0 <= task_paths and 0 < t.b1 - t.b0 <= task_borrowers
        assert 0 <= t.p0 and t.p1 <= paths and 0 <= t.b0 and t.b1 <= borrowers


def test_plan_tasks_of_no_borrowers_still_cover_the_paths(tmp_path):
    """A book without borrowers: one empty task per block of paths (the run still has its paths)."""
    sc = scenario(tmp_path, "run.paths=5", "engine.task_paths=2")
    tasks = simulation.plan_tasks(sc, 0)
    assert [(t.p0, t.p1, t.b0, t.b1) for t in tasks] == [(0, 2, 0, 0), (2, 4, 0, 0), (4, 5, 0, 0)]


def test_use_threads_asked_then_scenario_then_all_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(simulation.nb.config, "NUMBA_NUM_THREADS", 7)
    two, zero = scenario(tmp_path, "engine.threads=2"), scenario(tmp_path, "engine.threads=0")
    assert simulation.use_threads(3, two) == 3
    assert simulation.use_threads(None, two) == 2
    assert simulation.use_threads(0, two) == 2            # 0 asks for the default
    assert simulation.use_threads(None, zero) == 7
    monkeypatch.setattr(simulation.nb.config, "NUMBA_NUM_THREADS", 0)
    assert simulation.use_threads(None, zero) == 1        # never fewer than one


# --- Totals ---------------------------------------------------------------------------------------

def by_borrower(sc, borrowers: int, seed: int = 5) -> dict[str, np.ndarray]:
    """Random integer sums of each borrower on each path: (borrower, path, ...) for every output and
    population group's series."""
    gen = np.random.default_rng(seed)
    return {name: gen.integers(-10**6, 10**6, size=(borrowers, sc.run.paths) + shape, dtype=np.int64)
            for name, shape in simulation.task_shapes(sc).items()}


def task_sums(data: dict[str, np.ndarray], task: Task) -> dict[str, np.ndarray]:
    return {name: part[task.b0:task.b1, task.p0:task.p1].sum(axis=0) for name, part in data.items()}


def added_up(sc, data, borrowers: int, summary: bool, weight: np.ndarray, order_seed: int | None = None):
    tasks = simulation.plan_tasks(sc, borrowers)
    totals = simulation.Totals(sc, tasks, summary, weight)
    if order_seed is not None:
        random.Random(order_seed).shuffle(tasks)
    for task in tasks:
        totals.add(task, task_sums(data, task))
    return totals.result()


def test_totals_of_the_tasks_are_the_whole_per_path(tmp_path):
    """Full mode: whatever the split and the order, each path's sums are those of all its borrowers."""
    sc = scenario(tmp_path, "run.paths=5", "run.horizon_months=4", "engine.task_paths=2", "engine.task_borrowers=3")
    data = by_borrower(sc, 7)
    out = added_up(sc, data, 7, False, np.ones(5), order_seed=1)
    groups = out.pop("groups")
    assert set(out) | {f"group_{name}" for name in groups} == set(data)
    for name, part in data.items():
        found = groups[name.removeprefix("group_")] if name.startswith("group_") else out[name]
        assert found.dtype == np.int64
        np.testing.assert_array_equal(found, part.sum(axis=0))


def test_summary_totals_are_weighted_means_the_same_bits_whatever_the_split(tmp_path):
    """Summary mode: every output is the weighted mean over paths (numpy on the whole), to the bit the
    same for another split of paths and borrowers and any order tasks finish in; the series are the
    whole's per path."""
    common = ["run.paths=6", "run.horizon_months=4"]
    split = scenario(tmp_path, *common, "engine.task_paths=2", "engine.task_borrowers=3")
    other = scenario(tmp_path, *common, "engine.task_paths=4", "engine.task_borrowers=2")
    single = scenario(tmp_path, *common, "engine.task_paths=1", "engine.task_borrowers=100")
    data = by_borrower(split, 7)
    weight = np.random.default_rng(2).uniform(0.3, 1.7, 6)    # not dyadic: the order of the sums shows
    runs = [added_up(split, data, 7, True, weight, seed) for seed in (None, 1, 2)]
    runs += [added_up(sc, data, 7, True, weight, 3) for sc in (other, single)]
    whole = {name: part.sum(axis=0) for name, part in data.items() if not name.startswith("group_")}
    first = runs[0]
    assert set(first) == set(whole) | {"series", "groups"}
    for name, part in data.items():
        if name.startswith("group_"):         # each population group's series, per path
            for out in runs:
                np.testing.assert_array_equal(out["groups"][name.removeprefix("group_")], part.sum(axis=0))
    for name, part in whole.items():
        assert first[name].shape == (1,) + part.shape[1:]
        np.testing.assert_allclose(first[name][0], np.average(part, axis=0, weights=weight), rtol=1e-12, atol=1e-6)
        for out in runs[1:]:
            assert np.array_equal(out[name], first[name]), f"{name}: not the same bits"
    for name, part in path_series(whole, simulation.tail.capital_window(split)).items():
        for out in runs:
            np.testing.assert_array_equal(out["series"][name], part)


def test_summary_totals_fold_a_block_only_once_complete(tmp_path):
    """A block of paths waits for all its borrower tasks: until then the means hold nothing of it."""
    sc = scenario(tmp_path, "run.paths=2", "run.horizon_months=4", "engine.task_paths=2", "engine.task_borrowers=2")
    data = by_borrower(sc, 4)
    tasks = simulation.plan_tasks(sc, 4)
    totals = simulation.Totals(sc, tasks, True, np.ones(2))
    totals.add(tasks[0], task_sums(data, tasks[0]))
    assert not totals.result()["flows"].any()
    totals.add(tasks[1], task_sums(data, tasks[1]))
    np.testing.assert_allclose(totals.result()["flows"][0], data["flows"].sum(axis=0).mean(axis=0))


# --- memory checks --------------------------------------------------------------------------------

def outputs_by_hand(horizon: int, bands: int, forecasts: int = 3, every: int = 3) -> int:
    """The kernel's outputs of one path (no new business: no vintages); the allowance under the
    weighted forecast and each of `forecasts` scenarios at every `every`-th month and the last."""
    products, states, stages = len(codes.PRODUCTS), len(codes.STATES), len(codes.STAGES)
    cells = horizon * products * bands
    sensitivity_months = len(set(range(every, horizon + 1, every)) | {horizon})
    return (cells * states * 2 + cells * len(codes.FLOWS) + 2 * cells * states + horizon * bands * states + cells
            + products * bands * 2 + cells * stages * codes.STAGE_STOCK + cells * stages * stages
            + cells * len(codes.ACCOUNTING) + products * bands * stages
            + sensitivity_months * products * stages * (1 + forecasts))


def values_by_hand(horizon: int, bands: int, full: bool, groups: int = 10) -> int:
    """Values of one path (no new business: no vintages): 10 factor inputs a month, the outputs (full)
    or the series (summary), and the series of each population group (and the book's)."""
    products, stages = len(codes.PRODUCTS), len(codes.STAGES)
    # 7 monthly series by product; the capital year's flows by product: revenue lines, funding, charged off,
    # accrued interest written off, recovered and the accounting lines; the horizon's flows (the same and
    # originated and fraud charged off) and the balance and allowance by stage at the end, by product.
    capital_flows = len(codes.REVENUE) + 4 + len(codes.ACCOUNTING)
    series = 7 * horizon * products + products * capital_flows + products * (capital_flows + 2) + 2 * products * stages
    return 10 * horizon + (outputs_by_hand(horizon, bands) if full else series) + (groups + 1) * series


def test_per_path_values_count_the_factor_inputs_and_the_results(tmp_path):
    full = scenario(tmp_path, "run.horizon_months=7", 'run.results="full"')
    summary = scenario(tmp_path, "run.horizon_months=7", 'run.results="summary"')
    bands = terms.n_bands(full)
    assert simulation.per_path_values(full) == values_by_hand(7, bands, True)
    assert simulation.per_path_values(summary) == values_by_hand(7, bands, False)


def memory_need(sc, cells: int, threads: int) -> int:
    """Bytes check_memory asks for: four copies of every cell's results, and each thread's sums of a task."""
    bands = terms.n_bands(sc)
    outputs = outputs_by_hand(sc.run.horizon_months, bands)
    results = cells * 4 * 8 * sc.run.paths * values_by_hand(sc.run.horizon_months, bands, not sc.run.summary())
    return results + 8 * threads * min(sc.engine.task_paths, sc.run.paths) * outputs


@pytest.mark.parametrize("overrides, cells", [
    (["run.paths=40", 'run.results="full"'], 1),
    (["run.paths=40", 'run.results="summary"', "engine.task_paths=16"], 1),
    (["run.paths=3", 'run.results="full"', 'sweep."policy.cutoff_score"=[560, 600]'], 2)])
def test_check_memory_refuses_a_run_needing_more_than_available(tmp_path, monkeypatch, overrides, cells):
    loaded = loaded_scenario(tmp_path, ["run.horizon_months=6", *overrides])
    assert len(loaded.cells) == cells
    need = memory_need(loaded.scenario, cells, threads=3)
    monkeypatch.setattr(simulation, "available_memory", lambda: need)
    simulation.check_memory(loaded, threads=3)                      # exactly enough
    monkeypatch.setattr(simulation, "available_memory", lambda: None)
    simulation.check_memory(loaded, threads=3)                      # unknown: no refusal
    monkeypatch.setattr(simulation, "available_memory", lambda: need - 1)
    with pytest.raises(ScenarioError) as info:
        simulation.check_memory(loaded, threads=3)
    error = info.value
    assert (error.file, error.key) == (str(loaded.path), "run.paths")
    assert "\n" not in str(error) and "GiB" in error.what and "fewer paths" in error.what
    assert ('run.results = "summary"' in error.what) == (not loaded.scenario.run.summary())


def test_check_memory_counts_each_threads_sums(tmp_path, monkeypatch):
    """More kernel threads need more memory: enough for one thread is too little for four."""
    loaded = loaded_scenario(tmp_path, ["run.horizon_months=6", "run.paths=2"])
    monkeypatch.setattr(simulation, "available_memory", lambda: memory_need(loaded.scenario, 1, threads=1))
    simulation.check_memory(loaded, threads=1)
    with pytest.raises(ScenarioError):
        simulation.check_memory(loaded, threads=4)


def test_check_tape_memory_refuses_a_tape_bigger_than_available(tmp_path, monkeypatch):
    """Cells: a book's account from month 1, a new one from its start month; 6 int64 fields, 2 copies."""
    start, horizon = np.array([0, 1, 5], dtype=np.int32), 10
    need = 2 * 8 * len(codes.TAPE) * (10 + 10 + 6)
    path = tmp_path / "t.parquet"
    monkeypatch.setattr(simulation, "available_memory", lambda: need)
    simulation.check_tape_memory(path, start, horizon)
    monkeypatch.setattr(simulation, "available_memory", lambda: need - 1)
    with pytest.raises(ScenarioError) as info:
        simulation.check_tape_memory(path, start, horizon)
    assert (info.value.file, info.value.key) == (str(path), "--tape")
    assert "3 accounts x 10 months" in info.value.what and "\n" not in str(info.value)
    assert not path.exists()


def test_available_memory_is_a_plausible_byte_count():
    have = simulation.available_memory()
    assert have is None or 2**20 < have < 2**50


# --- cell_sums ------------------------------------------------------------------------------------

def two_loan_book(roll_rates):
    """Two cash loans in band 0: 1,000 at PD 0.02 and 3,000 at PD 0.10."""
    return terms.accounts(2, roll_rates, account_id=np.arange(2), product=JIEBEI, principal=np.array([1000.0, 3000.0]),
                          apr=0.12, term=12, method=0, pd_12m=np.array([0.02, 0.10]))


def test_cell_sums_join_totals_counts_pool_pd_and_weights(tmp_path):
    sc = scenario(tmp_path, "run.horizon_months=6", "run.paths=2")
    accounts = two_loan_book(ROLLS)
    totals, counts = {"flows": np.arange(3)}, {"funnel": np.arange(4)}
    weight = np.array([0.5, 1.5])
    out = simulation.cell_sums(sc, accounts, counts, totals, weight)
    assert {"flows", "funnel", "pool_pd", "state_pd", "seasoned_pd", "seasoned_fraud", "path_weight"} <= set(out)
    np.testing.assert_array_equal(out["flows"], np.arange(3))
    np.testing.assert_array_equal(out["funnel"], np.arange(4))
    np.testing.assert_array_equal(out["path_weight"], weight)
    pool = np.zeros((len(codes.PRODUCTS), terms.n_bands(sc)))
    pool[JIEBEI, 0] = (1000 * 0.02 + 3000 * 0.10) / 4000            # exposure-weighted
    np.testing.assert_allclose(out["pool_pd"], pool, rtol=1e-12)
    np.testing.assert_allclose(out["state_pd"][..., 0], pool, rtol=1e-12)       # current: the pool's pd_12m
    summary = simulation.cell_sums(sc, accounts, counts, totals | {"series": {}}, weight)
    np.testing.assert_array_equal(summary["path_weight"], [1.0])   # the means are already weighted


# --- run_accounts on a tiny book ------------------------------------------------------------------

N, PRINCIPAL, APR, TERM = 5, 6000.0, 0.12, 12
RUN = NO_RISK + ["run.horizon_months=14", "run.paths=3", 'run.results="full"']


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The riskless book run once in one task on one thread: (scenario, accounts, outputs)."""
    folder = tmp_path_factory.mktemp("tiny")
    sc = scenario(folder, *RUN)
    accounts = identical_book(N, PRINCIPAL, APR, TERM, "equal_installment", 0.0, ROLLS)
    return sc, accounts, simulation.run_accounts(sc, accounts, threads=1)


RISKY = ["run.horizon_months=14", "run.paths=3", 'run.results="full"']


@pytest.fixture(scope="module")
def risky(tmp_path_factory):
    """A book with defaults, prepayment and a correlated factor (paths that differ), run once in one
    task on one thread: (scenario, accounts, outputs)."""
    folder = tmp_path_factory.mktemp("risky")
    sc = scenario(folder, *RISKY)
    accounts = identical_book(40, 3000.0, 0.24, 12, "equal_principal", 0.15, ROLLS)
    out = simulation.run_accounts(sc, accounts, threads=1)
    charged_off = out["flows"][..., codes.CHARGED_OFF_AMT].sum(axis=(1, 2, 3))
    assert charged_off.all() and len(set(charged_off)) == 3, "the book's paths should differ"
    return sc, accounts, out


def annuity_cents(principal: float, apr: float, term: int) -> float:
    """Level payment of an annuity, in cents (closed form)."""
    r = apr / 12
    return 100 * principal * r / (1 - (1 + r) ** -term)


def test_riskless_loans_pay_back_principal_and_the_annuitys_interest(tiny):
    """pd 0, no prepayment: every path collects exactly the principal, and the interest of the
    closed-form annuity (term x payment - principal) within the cents of rounding."""
    _, _, out = tiny
    flows = out["flows"].sum(axis=3)[:, :, JIEBEI]                  # (path, month, flow)
    repaid, interest = flows[..., codes.REPAID].sum(axis=1), flows[..., codes.INTEREST].sum(axis=1)
    assert np.all(repaid == N * PRINCIPAL * 100)
    want = N * (TERM * annuity_cents(PRINCIPAL, APR, TERM) - PRINCIPAL * 100)
    assert np.all(np.abs(interest - want) <= N * 1.0), (interest, want)
    payment = round(annuity_cents(PRINCIPAL, APR, TERM))
    collected = flows[:, :TERM - 1, codes.REPAID] + flows[:, :TERM - 1, codes.INTEREST]
    assert np.all(collected == N * payment)                        # the level payment every month but the last
    assert np.all(flows[..., codes.N_MATURED].sum(axis=1) == N)
    assert not flows[..., codes.CHARGED_OFF_AMT].any()


@pytest.mark.parametrize("threads, block_size, split", [
    (2, 1, []), (3, 7, ["engine.task_paths=1", "engine.task_borrowers=9"]), (1, 4, ["engine.task_paths=2"])])
def test_run_accounts_same_bits_whatever_threads_blocks_and_tasks(risky, tmp_path, threads, block_size, split):
    sc, accounts, reference = risky
    out = simulation.run_accounts(scenario(tmp_path, *RISKY, *split), accounts, threads=threads, block_size=block_size)
    assert set(out) == set(reference)
    for name, part in reference.items():
        if name == "groups":
            for series, values in part.items():
                assert np.array_equal(out[name][series], values), series
        else:
            assert np.array_equal(out[name], part), name


def test_results_but_the_errors_do_not_depend_on_the_population_groups(risky, tmp_path):
    """Another number of groups: every kernel sum the same bits, and each group's series add up to the
    path's series (integers: exactly)."""
    sc, accounts, reference = risky
    other = scenario(tmp_path, *RISKY, "run.population_groups=3")
    out = simulation.run_accounts(other, accounts, threads=2)
    for name, part in reference.items():
        if name != "groups":
            assert np.array_equal(out[name], part), name
    whole = path_series({name: part for name, part in out.items() if name != "groups"}, tail.capital_window(other))
    assert {name: g.shape[1] for name, g in out["groups"].items()} == {name: 4 for name in whole}
    for name, values in whole.items():
        assert np.array_equal(out["groups"][name].sum(axis=1), values), name
    assert not out["groups"]["path_month_balance"][:, -1].any()         # no existing book: its group is empty
    assert all(out["groups"]["path_month_balance"][:, g].any() for g in range(3))


def test_run_accounts_summary_is_the_weighted_mean_of_the_full_run(risky):
    sc, accounts, full = risky
    weight = np.array([0.5, 2.0, 1.0])
    factors = terms.factors(sc)._replace(weight=weight)
    out = simulation.run_accounts(sc, accounts, threads=1, summary=True, factors=factors)
    for name in ("flows", "stocks", "stages"):
        np.testing.assert_allclose(out[name][0], np.average(full[name], axis=0, weights=weight), rtol=1e-12)
    np.testing.assert_array_equal(out["series"]["path_month_balance"],
                                  full["stocks"][..., codes.BALANCE].sum(axis=(3, 4)))


class Store:
    """A checkpoint store in memory: `held` tasks load back, every save is recorded."""

    def __init__(self, held: dict[Task, dict[str, np.ndarray]] | None = None):
        self.held, self.saved = dict(held or {}), {}

    def load(self, task: Task):
        return self.held.get(task)

    def save(self, task: Task, sums: dict[str, np.ndarray]) -> None:
        self.saved[task] = sums


def test_run_accounts_takes_saved_tasks_and_saves_the_others(risky, tmp_path):
    """A task in the store is not run again (its saved sums count, even doubled ones); the others are
    run and saved."""
    _, accounts, reference = risky
    sc = scenario(tmp_path, *RISKY, "engine.task_paths=1", "engine.task_borrowers=15")
    first = Store()
    simulation.run_accounts(sc, accounts, threads=1, store=first)
    tasks = simulation.plan_tasks(sc, len(accounts.borrower))
    assert set(first.saved) == set(tasks)
    kept = tasks[1]
    doubled = {name: 2 * part for name, part in first.saved[kept].items()}
    second = Store({kept: doubled})
    out = simulation.run_accounts(sc, accounts, threads=1, store=second)
    assert set(second.saved) == set(tasks) - {kept}
    extra = out["flows"] - reference["flows"]
    np.testing.assert_array_equal(extra[kept.p0:kept.p1], first.saved[kept]["flows"])
    assert not np.delete(extra, range(kept.p0, kept.p1), axis=0).any()
