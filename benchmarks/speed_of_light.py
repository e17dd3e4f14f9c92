"""Speed of light: the simplest compiled loan kernel, against the full kernel and plain numpy.

The speed-of-light kernel does the least a monthly loan simulation can do. It
takes one default draw and makes one amortisation step per borrower-month, and
nothing else:

- it is compiled with Numba, with `prange` over blocks of BLOCK accounts;
- each path of an account gets the full kernel's counter-based SplitMix64 stream
  (`rng.stream(seed, path, account)`) with the purpose MISS absorbed once, and each
  month one draw, one hash of the month (the full kernel hashes the month, then each
  purpose: two hashes for its first draw);
- the draw is compared with the account's monthly default probability,
  1 - (1 - pd_12m) ** (1/12), computed once on the host as a 53-bit integer threshold
  (`sol_inputs`), the same comparison as the uniform's. There is no factor, no
  arrears, no roll rate, no prepayment;
- otherwise it makes one level-payment step on an integer-cent balance: interest
  is balance x rate rounded to the cent, principal is payment - interest, and the
  last instalment repays the rest;
- it writes only per-thread sums (Numba `prange` reductions of three scalars:
  borrower-months, defaults, cents repaid). There are no per-cell outputs;
- a task steps all paths of its block of accounts month by month, one path's
  accounts at a time (`_month`), with masks instead of branches, so that LLVM runs
  the month 4 accounts to an AVX vector instruction. Accounts are ordered by start
  month and term (`sol_inputs`) so that a block's accounts open and close together;
  the block stops when all have closed. `tests/test_benchmarks.py` checks its sums
  against a plain loop over each path of each account.

An account counts its origination month and then each month until it matures or
defaults (the month it does so included), or until the horizon.

All three run on the same accounts: the loan-only book of
`kernel_throughput.py` section 1a (20,000 applicants a month for 36 months,
horizon 36, 4 paths, product_mix={jiebei=1.0}, also_requests={},
borrower_correlation=0). Each timing covers all 4 paths (long enough that a noisy
machine disturbs it less). The script times, best of 5 each (numpy: best of 3):

1. the speed-of-light kernel, with all Numba threads and with 1 thread;
2. the full kernel, `simulation.run_accounts`, in the same way (its borrower-months are
   counted exactly as in `kernel_throughput.py`);
3. the plain numpy reference of `kernel_throughput.py` (`numpy_reference`, the
   same model as the full kernel, one core). Its outputs are checked to equal the
   full kernel's.

It prints the throughput of each in borrower-months a second, and two ratios:
full / speed of light (the goal is at least 0.25) and full / numpy (the goal is
at least 10). Each throughput uses its own count of borrower-months. The
speed-of-light model closes accounts at a different rate from the full model,
so its count differs.

Run from the project root:

    /tmp/venv/bin/python benchmarks/speed_of_light.py            # full size (about 12 s on 2 cores)
    /tmp/venv/bin/python benchmarks/speed_of_light.py --quick    # small sizes, a smoke test
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numba as nb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))           # kernel_throughput
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))       # the simulator, from a checkout

import kernel_throughput as kt  # noqa: E402
from simulator.engine import simulation
from simulator.model import origination, terms  # noqa: E402
from simulator.model.rng import _S11, MISS, _absorb, stream  # noqa: E402


BLOCK = 512   # accounts a task steps together; their paths' state (3 arrays) stays in the L2 cache


@nb.njit(cache=True)
def _month(t, key, balance, alive, start, term, rate, payment, threshold):
    """Month t for one path of a block of accounts: (accounts open at the month's start, defaults,
    cents repaid, accounts still open or not yet opened). Branch-free, so that LLVM runs it several
    accounts to a vector instruction; it updates `balance` and `alive` in place."""
    opened = defaults = repaid = still = 0
    month = np.uint64(t)
    for a in range(key.shape[0]):
        open_ = alive[a] & np.int64(start[a] < t)
        default = open_ & np.int64((_absorb(key[a], month) >> _S11) < threshold[a])   # draw < p, one hash
        b = balance[a]
        interest = np.int64(np.floor(b * rate[a] + 0.5))
        due = b if t - start[a] >= term[a] else min(max(payment[a] - interest, np.int64(0)), b)
        paying = -(open_ & (1 - default))                  # all ones or zero: a mask, not a branch
        repaid += (due + interest) & paying
        balance[a] = b - (due & paying)
        alive[a] &= (1 - default) & (1 - (-paying & np.int64(b == due)))      # repaid in full: matured
        opened += open_
        defaults += default
        still += alive[a]
    return opened, defaults, repaid, still


@nb.njit(parallel=True, cache=True)
def speed_of_light(seed, paths, account_id, start_month, principal, rate, term, payment, threshold, horizon):
    """(borrower-months, defaults, cents repaid) over all accounts and paths 0 .. paths - 1:
    one hashed draw and one level-payment step a borrower-month. A task takes BLOCK accounts and
    steps all their paths month by month (`_month`), until every one has closed."""
    months = 0
    defaults = 0
    repaid = 0
    for block in nb.prange((account_id.shape[0] + BLOCK - 1) // BLOCK):
        lo = block * BLOCK
        hi = min(lo + BLOCK, account_id.shape[0])
        start = start_month[lo:hi].astype(np.int64)
        term_ = term[lo:hi].astype(np.int64)
        valid = (start >= 1) & (start <= horizon)
        key = np.empty((paths, hi - lo), np.uint64)
        balance = np.empty((paths, hi - lo), np.int64)
        alive = np.empty((paths, hi - lo), np.int64)
        for p in range(paths):
            for a in range(hi - lo):
                key[p, a] = _absorb(stream(seed, p, account_id[lo + a]), MISS)   # MISS absorbed once
                balance[p, a] = principal[lo + a]
                alive[p, a] = valid[a]
        m = paths * np.int64(valid.sum())                  # the origination month
        d = r = np.int64(0)
        first = horizon + 1
        for a in range(hi - lo):
            if valid[a]:
                first = min(first, start[a] + 1)
        for t in range(first, horizon + 1):
            still = 0
            for p in range(paths):
                m_, d_, r_, s_ = _month(t, key[p], balance[p], alive[p], start, term_, rate[lo:hi],
                                        payment[lo:hi], threshold[lo:hi])
                m += m_
                d += d_
                r += r_
                still += s_
            if still == 0:
                break
        months += m
        defaults += d
        repaid += r
    return months, defaults, repaid


def sol_inputs(accounts):
    """The speed-of-light kernel's inputs, in its order: account_id, start_month, principal, rate,
    term, a level payment for every account (whatever its repayment method) and the default
    threshold. Accounts are ordered by start month and term, so that a block's accounts open and
    close together (the sums do not depend on the order). The threshold is the monthly default
    probability p = 1 - (1 - pd_12m) ** (1/12) scaled to the draw's 53 bits: a draw
    u = (hash >> 11) * 2**-53 is below p exactly when hash >> 11 is below ceil(p * 2**53)."""
    order = np.lexsort((accounts.term, accounts.start_month))
    payment = np.zeros(len(accounts.account_id), dtype=np.int64)
    terms.level_payments(accounts.principal, accounts.rate, np.maximum(accounts.term, 1), payment)
    pd12 = np.clip(accounts.pd_12m, 0.0, 1.0)
    p_default = -np.expm1(np.log1p(-np.minimum(pd12, 1.0 - 1e-15)) / 12.0)
    p_default[pd12 >= 1.0] = 1.0
    threshold = np.ceil(p_default * 2.0 ** 53).astype(np.uint64)
    return tuple(np.ascontiguousarray(x[order]) for x in (
        accounts.account_id, accounts.start_month, accounts.principal, accounts.rate, accounts.term, payment,
        threshold))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()
    if args.quick:
        volume, months, horizon, paths, repeat = 2_000, 12, 24, 2, 1
    else:
        volume, months, horizon, paths, repeat = 20_000, 36, 36, 4, 5
    threads = nb.get_num_threads()

    print("== machine")
    print(f"cpu_count={os.cpu_count()}  numba threads={threads} (NUMBA_NUM_THREADS={nb.config.NUMBA_NUM_THREADS})  "
          f"python={platform.python_version()}  numpy={np.__version__}  numba={nb.__version__}")
    snap0 = kt.cpu_snapshot()

    loaded = kt.load(volume, months, horizon, kt.LOAN_ONLY, paths=paths)
    sc = loaded.scenario
    accounts, _ = origination.prepare(sc)
    print(f"\n== loan-only book: {volume:,} applicants/month x {months} months, horizon {horizon}, {paths} paths "
          f"({' '.join(kt.LOAN_ONLY)})")
    print(f"accounts={len(accounts.account_id):,}")

    # 1. Speed of light.
    args_sol = (np.int64(sc.run.seed), np.int64(paths), *sol_inputs(accounts), np.int64(horizon))
    def timed(fn, n_threads):
        nb.set_num_threads(n_threads)          # the speed-of-light kernel's prange threads
        try:
            t0 = time.perf_counter()
            result = fn(n_threads)
            return time.perf_counter() - t0, result
        finally:
            nb.set_num_threads(threads)

    def sol(n_threads):
        return speed_of_light(*args_sol)

    def full(n_threads):
        return simulation.run_accounts(sc, accounts, threads=n_threads)

    t_first_sol, _ = timed(sol, threads)
    t_first_full, _ = timed(full, threads)
    # Interleaved rounds: both kernels are timed within the same seconds, so the drift of a
    # shared machine's speed affects them alike; best of `repeat` each.
    best, result = {}, {}
    for _ in range(repeat):
        for name, fn, n in (("sol", sol, threads), ("full", full, threads), ("sol_1", sol, 1), ("full_1", full, 1)):
            seconds, result[name] = timed(fn, n)
            best[name] = min(best.get(name, math.inf), seconds)
    t_sol, t_sol_1, t_full, t_full_1 = best["sol"], best["sol_1"], best["full"], best["full_1"]
    sol_bm, sol_defaults, _ = result["sol"]
    out = result["full"]
    print("\n== 1. speed-of-light kernel (one default draw + one level-payment step a borrower-month, "
          "prange over accounts, per-thread sums only)")
    print(f"first call (load from cache or compile)={t_first_sol:.2f}s  borrower-months={sol_bm:,}  "
          f"defaults={sol_defaults:,}")
    print(f"best of {repeat}: {t_sol:.4f}s with {threads} threads -> {sol_bm / t_sol / 1e6:.1f} M borrower-months/s")
    print(f"best of {repeat}: {t_sol_1:.4f}s with 1 thread  -> {sol_bm / t_sol_1 / 1e6:.1f} M borrower-months/s")

    # 2. The full kernel on the same accounts (timed in the same rounds).
    full_bm = kt.borrower_months(out)
    print("\n== 2. full kernel (simulation.run_accounts), same accounts, timed in the same rounds")
    print(f"first call (load from cache or compile)={t_first_full:.2f}s  borrower-months={full_bm:,} "
          "(counted as in kernel_throughput.py)")
    print(f"best of {repeat}: {t_full:.4f}s with {threads} threads -> {full_bm / t_full / 1e6:.1f} M borrower-months/s")
    print(f"best of {repeat}: {t_full_1:.4f}s with 1 thread  -> {full_bm / t_full_1 / 1e6:.1f} M borrower-months/s")

    # 3. Plain numpy, the same model as the full kernel (kernel_throughput.numpy_reference).
    t_np, (ref, np_bm) = kt.best_of(lambda: kt.numpy_reference(sc, accounts), max(1, repeat - 2))
    same = all(np.array_equal(out[name], ref[name]) for name in kt.OUTPUT_NAMES)
    print("\n== 3. plain numpy (kernel_throughput.numpy_reference), same accounts, 1 core")
    print(f"best of {max(1, repeat - 2)}: {t_np:.4f}s -> {np_bm / t_np / 1e6:.2f} M borrower-months/s "
          f"(it visited {np_bm:,} borrower-months); outputs equal to the full kernel's: {same}")

    # Ratios of throughputs (each with its own borrower-months).
    full, full_1 = full_bm / t_full, full_bm / t_full_1
    light, light_1, numpy_rate = sol_bm / t_sol, sol_bm / t_sol_1, np_bm / t_np
    print("\n== ratios of throughput (borrower-months/s)")
    print(f"full / speed of light: {full / light:.3f} ({threads} threads each), {full_1 / light_1:.3f} (1 thread each)"
          f"  -> goal >= 0.25: {'met' if full / light >= 0.25 else 'NOT met'}")
    print(f"full / numpy:          {full / numpy_rate:.1f}x ({threads} threads vs 1 core), "
          f"{full_1 / numpy_rate:.1f}x (1 thread vs 1 core)"
          f"  -> goal >= 10: {'met' if full / numpy_rate >= 10 else 'NOT met'}")
    print(f"speed of light / numpy: {light / numpy_rate:.1f}x ({threads} threads vs 1 core)")

    kt.print_other_load(snap0, lead="\n")


if __name__ == "__main__":
    main()
