"""Throughput and memory of the monthly kernel, against a plain-numpy version of the loan step.

What it measures, in one run on this machine:

1. Kernel throughput, in borrower-months a second, on two books built by
   `origination.prepare` for the default scenario with more volume (20,000 applicants a
   month for 36 months, horizon 36, one path):
   a. a cash-loan-only book (overrides `applicants.product_mix={jiebei=1.0}`,
      `applicants.also_requests={}`, `factor.borrower_correlation=0.0`: one cash
      loan per borrower, no borrower-level draw);
   b. the default three-product book (revolving lines, cash loans, instalment
      purchases; borrowers may hold several; borrower-level draw on).
   `simulation.run_accounts` runs once to load or compile, then is timed (best of 3; it builds the
   ECL table of the accounts, `provisions.ecl_table`, timed apart too),
   with all threads and with one thread. A borrower-month is one month that
   one account is open in (its origination month, each month it ends open, and the
   month it closes or is charged off), counted exactly from the kernel's output:
   sum of stocks[..., accounts] + prepaid + matured + charged-off accounts. Months
   after charge-off that only book a recovery are not counted. With several
   accounts per borrower this is really account-months; the script also prints
   the borrower month-ends from the kernel's `borrowers` output.
2. The loan step in plain numpy (vectorised over accounts, a Python loop over
   months, live accounts compacted each month), on the loan-only book: the same
   counter-based SplitMix64 draws (re-implemented with numpy uint64 operations),
   prepayment, the miss with the Vasicek-conditional hazard (scipy.special.erfc, the
   kernel's formula), roll or cure with the conditional roll rates, the three
   repayment methods, interest in cents with its rounding carry, the per-period
   fee, merchant discount at origination, penalty, late fees, charge-off and
   recoveries, and sums by (month, product, band, state) with np.bincount into the
   kernel's output layout (codes.FLOWS columns). It is timed on the same accounts
   (best of 3, one core: numpy does not thread these operations). It follows the
   kernel's `_loan` exactly, so its integer outputs are compared with the kernel's
   for equality. It has no revolving line and no borrower-level draw, and it
   derives `borrowers` from the stocks, so it refuses books with lines, with
   borrower_correlation > 0 or with more than one account per borrower.
3. End to end: `simulation.simulate` for 1 million applicants over 36 months
   (27,778 a month for 36 months, horizon 36, one path) on the default
   three-product scenario and on the loan-only scenario, each in a subprocess
   that first warms up on a scenario 100 times smaller (compiled code comes from
   Numba's cache), with that subprocess's peak resident memory (ru_maxrss) and a
   breakdown of the time into prepare / run_accounts / Dataset (timed again after
   the peak is taken).
4. Start-up, each in a fresh process: the time of `import simulator.engine`, of the
   first `origination.prepare` and `simulation.run_accounts` calls (which load the compiled code
   from Numba's cache) and of a second `run_accounts` call, on a small default scenario.
   One process first makes sure the cache is warm, then three are measured. With
   --big, one more process runs with NUMBA_CACHE_DIR set to an empty temporary folder,
   so its first calls compile (the cold compile time; the project's cache is untouched).
5. With --big, two big end-to-end runs of `simulation.simulate` on the default
   three-product scenario, each in its own subprocess (which first warms up on a tiny
   scenario), with the process's peak RSS (ru_maxrss) and the time of the call, split
   into prepare, kernel tasks and the rest:
   a. 10,000,008 applicants (277,778 a month for 36 months, horizon 36, 1 path);
   b. 1,000,008 applicants (27,778 a month for 36 months, horizon 36) on 100 paths.
   The parent samples each child's VmRSS and kills it (by its pid) above 12 GiB, or
   after 15 minutes (a) or 10 minutes (b), and reports what it saw.
6. The threads Numba uses and the machine's CPU count, and the CPU-seconds other
   processes used during the run.

Run from the project root:

    .venv/bin/python benchmarks/kernel_throughput.py            # full (about 55 s on 2 cores)
    .venv/bin/python benchmarks/kernel_throughput.py --quick    # small smoke test (about 25 s)
    .venv/bin/python benchmarks/kernel_throughput.py --big      # full, plus the cold compile and the big runs
    .venv/bin/python benchmarks/kernel_throughput.py --quick --big   # a smoke test of all sections
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba as nb
import numpy as np
from scipy.special import erfc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout as well

import simulator  # noqa: E402
from simulator import codes
from simulator.engine import simulation
from simulator.model import hazard, origination, policy, provisions, rng, scoring, terms  # noqa: E402
from simulator.codes import EQUAL_INSTALLMENT, EQUAL_PRINCIPAL, PRODUCTS, STATES  # noqa: E402
from simulator.config.loader import load_scenario  # noqa: E402
from simulator.results.assemble import build_dataset, combine_cells  # noqa: E402

N_STATES = codes.N_STATES
CHARGED_OFF, CLOSED = N_STATES, N_STATES + 1   # states after the open ones (the reference keeps them)
OUTPUT_NAMES = ("stocks", "flows", "rolls", "cures", "borrowers")

# The cash-loan-only book: every applicant comes for a cash loan and asks for nothing else,
# so each borrower has one account, and no borrower-level draw.
LOAN_ONLY = ["applicants.product_mix={jiebei=1.0}", "applicants.also_requests={}", "factor.borrower_correlation=0.0"]
BOOKS = {"loan-only": LOAN_ONLY, "default": []}


# --------------------------------------------------------------------------- scenarios

def load(volume: int, months: int, horizon: int, extra: list[str] = (), paths: int = 1):
    """A default scenario (a TOML with only [run]) with the given volume and window, plus `extra` overrides."""
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        path = Path(directory) / "bench.toml"
        path.write_text('[run]\nname = "bench"\n')
        return load_scenario(path, [
            f"applicants.monthly_volume={volume}", f"applicants.origination_months={months}",
            f"run.horizon_months={horizon}", f"run.paths={paths}", *extra,
        ])


def borrower_months(out: dict[str, np.ndarray]) -> int:
    """Months an account is open in: end-of-month open stocks (origination month included)
    plus the one month each prepaid, matured or charged-off account leaves in."""
    exits = out["flows"][..., [codes.N_PREPAID, codes.N_MATURED, codes.N_CHARGED_OFF]].sum()
    return int(out["stocks"][..., 0].sum() + exits)


def cpu_snapshot() -> tuple[float, float, float] | None:
    """(wall, CPU-seconds busy on the whole machine, CPU-seconds of this process and its children);
    None where /proc/stat is missing. The difference tells whether other work shared the cores."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    busy = (sum(fields) - fields[3] - fields[4]) / tick          # all but idle and iowait
    t = os.times()
    return time.monotonic(), busy, t.user + t.system + t.children_user + t.children_system


def print_other_load(snap0: tuple[float, float, float] | None, lead: str = "") -> None:
    """How much CPU other processes took since `snap0` (a `cpu_snapshot`): timings are only
    clean when that is near 0."""
    snap1 = cpu_snapshot()
    if snap0 and snap1:
        wall, busy, mine = (b - a for a, b in zip(snap0, snap1))
        print(f"{lead}during this run ({wall:.0f}s wall, {wall * (os.cpu_count() or 1):.0f} CPU-s available): "
              f"this benchmark used {mine:.0f} CPU-s, other processes about {max(busy - mine, 0):.0f} CPU-s "
              "(timings are only clean when that is near 0)")


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# --------------------------------------------------------------------------- numpy reference

_GOLDEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_INV53 = 1.0 / 9007199254740992.0
_SQRT2 = math.sqrt(2.0)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array, in place (multiplication wraps mod 2**64)."""
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def _absorb(h: np.ndarray, key: int) -> np.ndarray:
    return _mix(h ^ np.uint64((key + _GOLDEN) & _MASK))


def account_prefix(seed: int, path: int, account_id: np.ndarray) -> np.ndarray:
    """The hash after (seed, path, account): computed once per account, as a compiler hoists it."""
    h = _mix(np.array([(seed + _GOLDEN) & _MASK], dtype=np.uint64))
    h = _absorb(h, path)
    return _mix(h ^ (account_id.astype(np.uint64) + np.uint64(_GOLDEN)))


def draw(prefix: np.ndarray, month: int, purpose: int) -> np.ndarray:
    """rng.uniform(seed, path, account, month, purpose) for each account's prefix."""
    h = _absorb(prefix, month)
    h = _absorb(h, purpose)
    return (h >> np.uint64(11)).astype(np.float64) * _INV53


def round_cents(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5).astype(np.int64)


def numpy_reference(sc, acc: terms.Accounts):
    """The kernel's loan step (`kernel._loan`) in plain numpy; returns (outputs, borrower-months) with
    outputs {"stocks", "flows", "rolls", "cures", "borrowers"} shaped as `simulation.run_accounts` returns them.
    Loans only (no revolving line), no borrower-level draw, one account per borrower."""
    if np.any(codes.PRODUCT_KIND[acc.product] == codes.LINE):
        raise ValueError("numpy_reference: loans only (the book has revolving lines)")
    if sc.factor.borrower_correlation > 0.0:
        raise ValueError("numpy_reference: no borrower-level draw (set factor.borrower_correlation=0.0)")
    if len(acc.borrower) > 1 and np.any(np.diff(acc.borrower) == 0):
        raise ValueError("numpy_reference: one account per borrower")
    seed, paths, horizon = sc.run.seed, sc.run.paths, sc.run.horizon_months
    n_bands = len(sc.scorecard.bands) + 1
    n_cells = len(PRODUCTS) * n_bands
    fac, beh = sc.factor, sc.behaviour
    z = hazard.factor_paths(hazard.factor_innovations(seed, paths, horizon), fac.autocorrelation, sc.macro.shift)
    roll = hazard.roll_paths(beh.roll_rates, fac.roll_correlation, z)
    params = terms.kernel_terms(sc, policy.bill_instalment_terms(sc.products, sc.policy),
                                provisions.ecl_table(sc, acc, n_bands, z))
    sqrt_rho, inv_sqrt_idio = params.sqrt_rho, params.inv_sqrt_idio
    funding_rate, recovery_share, lag = params.funding_rate, params.recovery_share, int(params.recovery_lag)
    prepay_ok, late_fee, penalty_rate = params.prepayment, params.late_fee, params.penalty_rate

    cell_shape = (horizon, len(PRODUCTS), n_bands)
    stocks = np.zeros((paths,) + cell_shape + (N_STATES, 2), dtype=np.int64)
    flows = np.zeros((paths,) + cell_shape + (len(codes.FLOWS),), dtype=np.int64)
    rolls = np.zeros((paths,) + cell_shape + (N_STATES,), dtype=np.int64)
    cures = np.zeros_like(rolls)
    visited = 0

    def add(out, index, weights=None, size=n_cells):
        """out[index] += weights, summed with bincount (float64: exact for sums below 2**53 cents)."""
        out += np.rint(np.bincount(index, weights, minlength=size)).astype(np.int64)

    start = np.asarray(acc.start_month)
    order = np.argsort(start, kind="stable")
    first = np.searchsorted(start[order], np.arange(horizon + 2))   # accounts starting in month t
    static_cell = acc.product.astype(np.int64) * n_bands + acc.band

    for p in range(paths):
        st_flows = flows[p].reshape(horizon, n_cells, len(codes.FLOWS))
        st_stocks = stocks[p].reshape(horizon, n_cells * N_STATES, 2)
        st_rolls = rolls[p].reshape(horizon, n_cells * N_STATES)
        st_cures = cures[p].reshape(horizon, n_cells * N_STATES)
        recovery = np.zeros((horizon + lag + 2, n_cells), dtype=np.int64)  # recoveries falling due
        prefix_all = account_prefix(seed, p, acc.account_id)
        live: dict[str, np.ndarray] = {}

        def join(idx: np.ndarray) -> None:
            """Append accounts `idx` to the live set, with their initial dynamic state."""
            new = {
                "prefix": prefix_all[idx], "cell": static_cell[idx], "product": acc.product[idx],
                "rate": acc.rate[idx], "term": acc.term[idx].astype(np.int64), "fee": acc.fee[idx],
                "method": acc.method[idx], "payment": acc.payment[idx], "original": acc.principal[idx],
                "q": acc.hazard_q[idx], "fraud": acc.fraud[idx],
                "balance": acc.principal[idx].copy(), "scheduled": acc.principal[idx].copy(),
                "carry": np.zeros(len(idx)), "overdue_interest": np.zeros(len(idx), dtype=np.int64),
                "penalty_due": np.zeros(len(idx), dtype=np.int64), "fees_due": np.zeros(len(idx), dtype=np.int64),
                "state": acc.state0[idx].astype(np.int64), "k": np.zeros(len(idx), dtype=np.int64),
            }
            for key, value in new.items():
                live[key] = np.concatenate([live[key], value]) if key in live else value

        join(order[: first[1]])                        # an existing book (start month 0) runs from month 1
        for t in range(1, horizon + 1):
            ti = t - 1
            fl = st_flows[ti]
            fl[:, codes.RECOVERED] += recovery[t]
            n_live = len(live["state"])
            visited += n_live
            if n_live:
                a = live
                cell, state, balance, scheduled = a["cell"], a["state"], a["balance"], a["scheduled"]
                add(fl[:, codes.FUNDING], cell, round_cents(balance * funding_rate))
                a["k"] += 1
                k, n = a["k"], a["term"]
                in_term = k <= n
                exact = scheduled * a["rate"] + a["carry"]      # interest on the principal not yet due
                interest = np.where(in_term, round_cents(exact), 0)
                new_carry = np.where(in_term, exact - interest, a["carry"])
                meth = a["method"]
                due = np.where(meth == EQUAL_INSTALLMENT, a["payment"] - interest,
                               np.where(meth == EQUAL_PRINCIPAL, a["original"] // n, 0))
                due = np.minimum(np.maximum(due, 0), scheduled)
                due = np.where(in_term, np.where(k >= n, scheduled, due), 0)
                fee_due = np.where(in_term, a["fee"], 0)      # flat fee a period, none past maturity

                # Draws: prepayment (current accounts of products that allow it), then the miss.
                current = state == 0
                fraud = a["fraud"]
                prepaid = current & prepay_ok[a["product"]] & ~fraud
                cand = np.flatnonzero(prepaid)
                prepaid[cand] = draw(a["prefix"][cand], t, rng.PREPAY) < beh.prepay_monthly
                x = a["q"] - sqrt_rho * z[p, ti]
                p_miss = 0.5 * erfc(-x * inv_sqrt_idio / _SQRT2)
                p_roll = roll[p, ti][np.maximum(state - 1, 0)]
                p_event = np.where(fraud, 1.0, np.where(current, p_miss, p_roll))
                missed = (draw(a["prefix"], t, rng.MISS) < p_event) & ~prepaid
                paid = ~missed & ~prepaid
                a["carry"] = new_carry

                cell_state = cell * N_STATES + state
                add(st_rolls[ti], cell_state[missed], size=n_cells * N_STATES)
                cured = paid & (state > 0)
                add(st_cures[ti], cell_state[cured], size=n_cells * N_STATES)

                # Charge-off from M6, with recoveries spread over `lag` months.
                off = missed & (state == N_STATES - 1)
                if off.any():
                    c_off, b_off = cell[off], balance[off]
                    add(fl[:, codes.CHARGED_OFF_AMT], c_off, b_off)
                    add(fl[:, codes.N_CHARGED_OFF], c_off)
                    add(fl[:, codes.WRITTEN_OFF], c_off,
                        (a["overdue_interest"] + a["fees_due"] + a["penalty_due"])[off])
                    total = round_cents(b_off * recovery_share)
                    each = total // lag
                    last = total - each * (lag - 1)
                    for j in range(1, lag + 1):
                        add(recovery[t + j], c_off, last if j == lag else each)
                # Roll forward to Mk+1.
                rolled = missed & ~off
                a["overdue_interest"] = np.where(rolled, a["overdue_interest"] + interest, a["overdue_interest"])
                a["scheduled"] = scheduled = np.where(rolled, scheduled - due, scheduled)
                a["fees_due"] = np.where(rolled, a["fees_due"] + fee_due + late_fee[a["product"]], a["fees_due"])
                # Pay what is due (or cure: all arrears, penalty and fees); a prepayment pays the month's
                # interest and fee with the balance.
                repaid = np.where(paid, balance - scheduled + due, 0)
                add(fl[:, codes.REPAID], cell, repaid)
                add(fl[:, codes.INTEREST], cell,
                    np.where(paid, a["overdue_interest"] + interest, np.where(prepaid, interest, 0)))
                add(fl[:, codes.PENALTY], cell, np.where(paid, a["penalty_due"], 0))
                add(fl[:, codes.FEES], cell, np.where(paid, a["fees_due"] + fee_due, np.where(prepaid, fee_due, 0)))
                if prepaid.any():
                    add(fl[:, codes.PREPAID], cell[prepaid], balance[prepaid])
                    add(fl[:, codes.N_PREPAID], cell[prepaid])
                balance = np.where(prepaid | off, 0, balance - repaid)
                a["scheduled"] = np.where(paid, balance, scheduled)
                for key in ("overdue_interest", "penalty_due", "fees_due"):
                    a[key] = np.where(paid, 0, a[key])
                matured = paid & (balance == 0)
                add(fl[:, codes.N_MATURED], cell[matured])
                state = np.where(rolled, state + 1, np.where(paid, 0, state))
                state = np.where(prepaid | matured, CLOSED, np.where(off, CHARGED_OFF, state))
                a["balance"], a["state"] = balance, state

                # Penalty on overdue amounts; end-of-month stocks; drop accounts that left.
                open_ = state < N_STATES
                late = open_ & (state > 0)
                a["penalty_due"] = np.where(
                    late, a["penalty_due"] + round_cents((balance - a["scheduled"]) * penalty_rate[a["product"]]),
                    a["penalty_due"])
                idx = (cell * N_STATES + state)[open_]
                add(st_stocks[ti, :, 0], idx, size=n_cells * N_STATES)
                add(st_stocks[ti, :, 1], idx, balance[open_], size=n_cells * N_STATES)
                if not open_.all():
                    for key in live:
                        live[key] = live[key][open_]

            # This month's vintage: originated now (with the merchant discount), first stepped next month.
            idx = order[first[t]: first[t + 1]]
            if len(idx):
                visited += len(idx)
                c_new, b_new = static_cell[idx], acc.principal[idx]
                add(fl[:, codes.ORIGINATED], c_new, b_new)
                add(fl[:, codes.N_ORIGINATED], c_new)
                add(fl[:, codes.DISCOUNT], c_new, acc.discount[idx])
                s_new = c_new * N_STATES + acc.state0[idx]
                add(st_stocks[ti, :, 0], s_new, size=n_cells * N_STATES)
                add(st_stocks[ti, :, 1], s_new, b_new, size=n_cells * N_STATES)
                join(idx)
    # One account per borrower: a borrower's worst open state is its account's state.
    borrowers = stocks[..., 0].sum(axis=2)
    return {"stocks": stocks, "flows": flows, "rolls": rolls, "cures": cures, "borrowers": borrowers}, visited


# --------------------------------------------------------------------------- end to end (subprocess)

def e2e_child(volume: int, months: int, horizon: int, book: str) -> None:
    """Run in a fresh process: warm up small, time simulation.simulate, print a JSON line."""
    extra = BOOKS[book]
    t0 = time.perf_counter()
    simulation.simulate(load(max(volume // 100, 100), months, horizon, extra))
    warm = time.perf_counter() - t0
    rss_warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    loaded = load(volume, months, horizon, extra)
    t0 = time.perf_counter()
    ds = simulation.simulate(loaded)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n_accounts = int(ds["originated_accounts"].sum())
    del ds
    # Where the time goes: the same three stages as simulation.simulate, timed one by one (after the peak).
    sc = loaded.scenario
    t0 = time.perf_counter()
    accounts, counts = origination.prepare(loaded.scenario)
    t1 = time.perf_counter()
    sums = simulation.run_accounts(sc, accounts)
    t2 = time.perf_counter()
    weight = terms.factors(sc).weight
    sums = simulation.cell_sums(sc, accounts, counts, sums, weight)
    combine_cells(loaded, [build_dataset(loaded, sc, scoring.band_labels(sc.scorecard.bands), sums,
                                         simulator.__version__)], weight)
    t3 = time.perf_counter()
    print(json.dumps({
        "book": book, "applicants": volume * months, "accounts": n_accounts,
        "borrowers": int(len(np.unique(accounts.borrower))), "seconds": seconds, "warmup_seconds": warm,
        "rss_after_warmup_kib": rss_warm, "peak_rss_kib": rss,
        "prepare_seconds": t1 - t0, "kernel_seconds": t2 - t1, "dataset_seconds": t3 - t2,
    }))


def e2e(volume: int, months: int, horizon: int, book: str) -> dict:
    cmd = [sys.executable, __file__, "--e2e-child", str(volume), str(months), str(horizon), "--book", book]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# --------------------------------------------------------------------------- start-up and big runs (subprocesses)

# Run with `python -c` in a fresh process: how long `import simulator.engine` takes, then the first
# calls of `origination.prepare` and `simulation.run_accounts` (these load the compiled code from Numba's cache,
# or compile it when the cache is empty), then a second `run_accounts` (the same work, code loaded).
STARTUP_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import simulator.engine.simulation as simulation
t_import = time.perf_counter() - t0
sys.path.insert(0, {bench!r})
import kernel_throughput as kt
sc = kt.load({volume}, {months}, {horizon}).scenario
t0 = time.perf_counter()
accounts, _ = simulation.prepare(sc)
t1 = time.perf_counter()
simulation.run_accounts(sc, accounts)
t2 = time.perf_counter()
simulation.run_accounts(sc, accounts)
t3 = time.perf_counter()
print(json.dumps({{"import": t_import, "prepare": t1 - t0, "first_kernel": t2 - t1, "second_kernel": t3 - t2}}))
"""
STARTUP_SIZE = (2_000, 12, 24)                 # the --quick size: the calls themselves take little time
BIG_RSS_LIMIT_KIB = 12 * 1024 * 1024           # stop a big run whose resident memory passes 12 GiB
BIG_RUNS = {                                   # name: (volume, months, horizon, paths, time limit in s)
    "a": (277_778, 36, 36, 1, 900),            # 10,000,008 applicants, 1 path
    "b": (27_778, 36, 36, 100, 600),           # 1,000,008 applicants, 100 paths
}


def run_watched(cmd: list[str], env: dict | None = None, rss_limit_kib: int | None = None,
                time_limit: float | None = None) -> dict:
    """Run `cmd`, sampling its resident memory (VmRSS) every 0.2 s, and kill it (by its pid) if it
    passes `rss_limit_kib` or `time_limit`. Returns its wall time, the largest RSS seen, why it was
    stopped (or None), its return code and the last line of its output."""
    root = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=root, env=env)
        seen, stopped = 0, None
        while proc.poll() is None:
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                seen = max(seen, int(status.split("VmRSS:")[1].split()[0]))
            except (OSError, IndexError, ValueError):
                pass
            elapsed = time.monotonic() - t0
            if rss_limit_kib and seen > rss_limit_kib:
                stopped = f"RSS reached {seen / 1024:,.0f} MiB after {elapsed:.0f}s"
            elif time_limit and elapsed > time_limit:
                stopped = f"still running after {elapsed:.0f}s (RSS seen {seen / 1024:,.0f} MiB)"
            if stopped:
                proc.kill()
                break
            time.sleep(0.2)
        proc.wait()
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        lines = out.read().strip().splitlines()
        error = err.read().strip()
    return {"wall": wall, "rss_seen_kib": seen, "stopped": stopped, "returncode": proc.returncode,
            "result": json.loads(lines[-1]) if lines and not stopped and proc.returncode == 0 else None,
            "stderr_tail": error[-2000:]}


def startup(cold: bool) -> None:
    """Section 4: import time and first-call times in fresh processes, with the cache warm (three
    processes, after one that makes sure the cache is warm) and, with `cold`, an empty cache."""
    code = STARTUP_CHILD.format(bench=str(Path(__file__).resolve().parent), volume=STARTUP_SIZE[0],
                                months=STARTUP_SIZE[1], horizon=STARTUP_SIZE[2])
    cmd = [sys.executable, "-c", code]
    v, m, h = STARTUP_SIZE
    print(f"\n== 4. start-up, each in a fresh process (default scenario, {v:,} applicants/month x {m} months, "
          f"horizon {h})")
    print(f"  {'cache':<32}{'process':>9}{'import':>9}{'prepare':>9}{'1st run_accounts':>18}{'2nd run_accounts':>18}")

    def row(label: str, r: dict) -> None:
        if r["result"] is None:
            print(f"  {label:<32} failed (return code {r['returncode']}): {r['stderr_tail'][-500:]}")
            return
        x = r["result"]
        print(f"  {label:<32}{r['wall']:>8.2f}s{x['import']:>8.2f}s{x['prepare']:>8.2f}s"
              f"{x['first_kernel']:>17.2f}s{x['second_kernel']:>17.2f}s")

    row("warm (priming run, not counted)", run_watched(cmd))
    for i in range(3):
        row(f"warm, run {i + 1}", run_watched(cmd))
    if cold:
        with tempfile.TemporaryDirectory(prefix="numba-cold-") as cache:
            row("cold (empty NUMBA_CACHE_DIR)", run_watched(cmd, env=os.environ | {"NUMBA_CACHE_DIR": cache}))
    print("  process = the whole process's wall time (interpreter start-up and exit included); "
          "import = `import simulator.engine`;")
    print("  1st run_accounts = load (or compile) and run; 2nd run_accounts = the same run with the code loaded")


def big_child(volume: int, months: int, horizon: int, paths: int) -> None:
    """Run in a fresh process: a tiny warm-up (loads the compiled code from the cache), then
    simulation.simulate once, with its prepare and kernel tasks timed inside the call; print a JSON line."""
    t0 = time.perf_counter()
    simulation.simulate(load(100, 2, horizon))
    warm = time.perf_counter() - t0
    rss_warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stages = {"prepare": 0.0, "tasks": 0.0}
    sizes = {}
    prepare, run_task = simulation.prepare, simulation.run_task

    def timed_prepare(*args, **kwargs):
        t = time.perf_counter()
        accounts, counts = prepare(*args, **kwargs)
        stages["prepare"] += time.perf_counter() - t
        sizes["accounts"] = len(accounts.borrower)
        sizes["borrowers"] = int(np.count_nonzero(np.diff(accounts.borrower))) + (len(accounts.borrower) > 0)
        return accounts, counts

    def timed_run_task(*args, **kwargs):
        t = time.perf_counter()
        sums = run_task(*args, **kwargs)
        stages["tasks"] += time.perf_counter() - t
        return sums

    simulation.prepare, simulation.run_task = timed_prepare, timed_run_task   # simulation.simulate looks them up by name
    loaded = load(volume, months, horizon, paths=paths)
    t0 = time.perf_counter()
    simulation.simulate(loaded)
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "applicants": volume * months, "paths": paths, **sizes, "seconds": seconds, "warmup_seconds": warm,
        "prepare_seconds": stages["prepare"], "kernel_seconds": stages["tasks"],
        "rss_after_warmup_kib": rss_warm, "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


def big(quick: bool) -> None:
    """Section 5: the two big end-to-end runs, each in its own watched subprocess (with `quick`,
    100 times fewer applicants and at most 4 paths: a smoke test of this section)."""
    print(f"\n== 5. big runs: simulation.simulate, default three-product scenario, own subprocess each "
          f"(stopped above {BIG_RSS_LIMIT_KIB / 1024 ** 2:.0f} GiB RSS or the time limit)")
    for name, (volume, months, horizon, paths, limit) in BIG_RUNS.items():
        if quick:
            volume, paths = volume // 100, min(paths, 4)
        cmd = [sys.executable, __file__, "--big-child", str(volume), str(months), str(horizon), str(paths)]
        r = run_watched(cmd, rss_limit_kib=BIG_RSS_LIMIT_KIB, time_limit=limit)
        head = (f"({name}) {volume * months:,} applicants ({volume:,}/month x {months} months), horizon {horizon}, "
                f"{paths} path{'s' if paths > 1 else ''}")
        if r["result"] is None:
            why = r["stopped"] or f"failed (return code {r['returncode']}): {r['stderr_tail'][-800:]}"
            print(f"{head}: STOPPED, {why}")
            continue
        x = r["result"]
        print(f"{head}: accounts={x['accounts']:,} borrowers={x['borrowers']:,}")
        print(f"    simulate={x['seconds']:.1f}s (prepare {x['prepare_seconds']:.1f}s, kernel tasks "
              f"{x['kernel_seconds']:.1f}s, the rest {x['seconds'] - x['prepare_seconds'] - x['kernel_seconds']:.1f}s)"
              f"  process wall={r['wall']:.1f}s (imports and a {x['warmup_seconds']:.1f}s warm-up included)")
        print(f"    peak RSS (ru_maxrss)={x['peak_rss_kib'] / 1024:,.0f} MiB = {x['peak_rss_kib'] * 1024 / 1e9:.2f} GB "
              f"(after imports and warm-up {x['rss_after_warmup_kib'] / 1024:,.0f} MiB; "
              f"largest VmRSS sampled {r['rss_seen_kib'] / 1024:,.0f} MiB)")


# --------------------------------------------------------------------------- main

def kernel_throughput(book: str, volume: int, months: int, horizon: int, repeat: int):
    """Section 1 for one book: prepare, load/compile, best-of timings; returns what section 2 needs."""
    loaded = load(volume, months, horizon, BOOKS[book])
    sc = loaded.scenario
    t0 = time.perf_counter()
    accounts, _ = origination.prepare(loaded.scenario)
    t_prepare = time.perf_counter() - t0
    n_accounts = len(accounts.account_id)
    n_borrowers = len(np.unique(accounts.borrower))
    by_product = np.bincount(accounts.product, minlength=len(PRODUCTS))
    t0 = time.perf_counter()
    simulation.run_accounts(sc, accounts)
    t_first = time.perf_counter() - t0
    t_kernel, out = best_of(lambda: simulation.run_accounts(sc, accounts), repeat)
    threads = nb.get_num_threads()
    bm = borrower_months(out)
    start = np.maximum(accounts.start_month, 1)
    upper = int(np.clip(horizon - start + 1, 0, None).sum())
    t_kernel_1, _ = best_of(lambda: simulation.run_accounts(sc, accounts, threads=1), repeat)
    nb.set_num_threads(nb.config.NUMBA_NUM_THREADS)
    z = terms.factors(sc).z
    t_table, _ = best_of(lambda: provisions.ecl_table(sc, accounts, terms.n_bands(sc), z), repeat)
    mix = ", ".join(f"{name} {count:,}" for name, count in zip(PRODUCTS, by_product))
    print(f"\n== 1{'a' if book == 'loan-only' else 'b'}. kernel, {book} book: {volume:,} applicants/month x "
          f"{months} months, horizon {horizon}, 1 path"
          + (f" ({' '.join(BOOKS[book])})" if BOOKS[book] else " (three products, borrower_correlation "
             f"{sc.factor.borrower_correlation:g})"))
    print(f"accounts={n_accounts:,} ({mix}) borrowers={n_borrowers:,}  prepare={t_prepare:.2f}s  "
          f"first run_accounts (load/compile)={t_first:.2f}s")
    print(f"borrower-months={bm:,} (open account-months incl. origination and exit months; "
          f"upper bound accounts x months to horizon = {upper:,}; "
          f"borrower month-ends in the `borrowers` output = {int(out['borrowers'].sum()):,})")
    print(f"run_accounts best of {repeat}: {t_kernel:.3f}s with {threads} threads -> "
          f"{bm / t_kernel / 1e6:.1f} M borrower-months/s")
    print(f"run_accounts best of {repeat}: {t_kernel_1:.3f}s with 1 thread  -> "
          f"{bm / t_kernel_1 / 1e6:.1f} M borrower-months/s")
    print(f"of which the ECL table (provisions.ecl_table, once a cell, {threads} threads): {t_table:.3f}s; without it "
          f"{bm / (t_kernel - t_table) / 1e6:.1f} M borrower-months/s ({threads} threads)")
    return sc, accounts, out, t_kernel, t_kernel_1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--big", action="store_true",
                        help="also the long runs: 10 million applicants, 1 million x 100 paths, a cold compile")
    parser.add_argument("--e2e-child", nargs=3, type=int, metavar=("VOLUME", "MONTHS", "HORIZON"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--big-child", nargs=4, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--book", choices=sorted(BOOKS), default="default", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.e2e_child:
        e2e_child(*args.e2e_child, args.book)
        return
    if args.big_child:
        big_child(*args.big_child)
        return

    if args.quick:
        volume, months, horizon, repeat = 2_000, 12, 24, 1
        e2e_size = (2_000, 12, 24)
    else:
        volume, months, horizon, repeat = 20_000, 36, 36, 3
        e2e_size = (27_778, 36, 36)

    print("== machine")
    print(f"cpu_count={os.cpu_count()}  numba threads={nb.get_num_threads()} "
          f"(NUMBA_NUM_THREADS={nb.config.NUMBA_NUM_THREADS})  python={platform.python_version()}  "
          f"numpy={np.__version__}  numba={nb.__version__}")
    snap0 = cpu_snapshot()

    # 1. Kernel throughput: the loan-only book (compared with numpy below), then the default book.
    sc, accounts, out, t_kernel, t_kernel_1 = kernel_throughput("loan-only", volume, months, horizon, repeat)
    kernel_throughput("default", volume, months, horizon, repeat)

    # 2. The numpy reference on the loan-only accounts.
    assert draw(account_prefix(sc.run.seed, 0, accounts.account_id[:1000]), 7, rng.MISS).tolist() == \
        rng.uniforms(sc.run.seed, 0, accounts.account_id[:1000], 7, rng.MISS).tolist(), "hash mismatch"
    t_numpy, (ref, visited) = best_of(lambda: numpy_reference(sc, accounts), repeat)
    print("\n== 2. plain numpy loan step (vectorised over accounts, Python loop over months), loan-only accounts")
    print(f"numpy best of {repeat}: {t_numpy:.3f}s (1 core) -> {visited / t_numpy / 1e6:.2f} M borrower-months/s "
          f"(it visited {visited:,} borrower-months)")
    print(f"kernel / numpy throughput: {t_numpy / t_kernel:.1f}x ({nb.get_num_threads()} threads), "
          f"{t_numpy / t_kernel_1:.1f}x (1 thread vs 1 core)")
    print(f"accounts by state at month {horizon} (path 0, all products and bands):")
    print(f"  {'state':<8}{'kernel':>12}{'numpy':>12}")
    k_last = out["stocks"][0, -1, ..., 0].sum(axis=(0, 1))
    r_last = ref["stocks"][0, -1, ..., 0].sum(axis=(0, 1))
    for s, name in enumerate(STATES):
        print(f"  {name:<8}{k_last[s]:>12,}{r_last[s]:>12,}")
    same = {name: bool(out[name].shape == ref[name].shape and np.array_equal(out[name], ref[name]))
            for name in OUTPUT_NAMES}
    print("identical to the kernel's integer outputs: " + ", ".join(f"{k}={v}" for k, v in same.items()))
    flow_same = np.all(out["flows"] == ref["flows"], axis=tuple(range(out["flows"].ndim - 1)))
    print("flow columns (codes.FLOWS order; * = differs): " + ", ".join(
        f"{name}{'' if ok else '*'}" for name, ok in zip(codes.FLOWS, flow_same)))
    totals = out["flows"][0].sum(axis=(0, 1, 2))
    print("loan-only flow totals, path 0 (kernel): " + ", ".join(
        f"{name}={totals[j] / 100 if j < codes.N_ORIGINATED else totals[j]:,.0f}" for j, name in enumerate(codes.FLOWS)))

    # 3. End to end, each book in its own process.
    print("\n== 3. end to end: simulation.simulate (prepare + kernel + Dataset), 1 path, own subprocess each")
    results = {}
    v, m, h = e2e_size
    for book in ("default", "loan-only"):
        r = results[book] = e2e(v, m, h, book)
        print(f"{book:<9} applicants={r['applicants']:,}  accounts={r['accounts']:,}  borrowers={r['borrowers']:,}  "
              f"horizon={h}  simulate={r['seconds']:.2f}s (prepare {r['prepare_seconds']:.2f}s, run_accounts "
              f"{r['kernel_seconds']:.2f}s, Dataset {r['dataset_seconds']:.2f}s)  "
              f"peak RSS={r['peak_rss_kib'] / 1024:.0f} MiB (after imports + warm-up "
              f"{r['rss_after_warmup_kib'] / 1024:.0f} MiB)")
    a, b = results["default"], results["loan-only"]
    print(f"default vs loan-only: {a['accounts'] / b['accounts']:.2f}x accounts, time {a['seconds'] / b['seconds']:.2f}x, "
          f"peak RSS {(a['peak_rss_kib'] - b['peak_rss_kib']) / 1024:+.0f} MiB")

    # 4. Start-up; 5. the big runs (with --big, which also measures a cold compile in section 4).
    startup(cold=args.big)
    if args.big:
        big(args.quick)

    print("\n== 6. threads")
    print(f"numba.get_num_threads()={nb.get_num_threads()}  os.cpu_count()={os.cpu_count()}")
    print_other_load(snap0)


if __name__ == "__main__":
    main()
