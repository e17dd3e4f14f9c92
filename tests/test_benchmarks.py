"""The benchmarks' own kernels compute what their docstrings say (their speed is measured, not tested)."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import speed_of_light as sol  # noqa: E402
from simulator.model import products  # noqa: E402
from simulator.model.rng import INV53, MISS, _absorb, stream  # noqa: E402

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end


def one_path_at_a_time(seed, paths, accounts, horizon):
    """The speed-of-light model as a plain loop: each path of each account in its original order,
    the draw as a float compared with the monthly default probability."""
    months = defaults = repaid = 0
    for i in range(len(accounts.account_id)):
        start, n, r = int(accounts.start_month[i]), int(accounts.term[i]), float(accounts.rate[i])
        if not 1 <= start <= horizon:
            continue
        pay = products.level_payment(int(accounts.principal[i]), r, max(n, 1))
        p = 1.0 if accounts.pd_12m[i] >= 1.0 else 1.0 - (1.0 - float(accounts.pd_12m[i])) ** (1.0 / 12.0)
        for path in range(paths):
            key = _absorb(np.uint64(stream(seed, path, int(accounts.account_id[i]))), MISS)
            balance = int(accounts.principal[i])
            months += 1
            for t in range(start + 1, horizon + 1):
                months += 1
                if float(_absorb(np.uint64(key), np.uint64(t)) >> np.uint64(11)) * INV53 < p:
                    defaults += 1
                    break
                interest = int(np.floor(balance * r + 0.5))
                due = balance if t - start >= n else min(max(pay - interest, 0), balance)
                repaid += due + interest
                balance -= due
                if balance == 0:
                    break
    return months, defaults, repaid


@pytest.mark.parametrize("paths", [1, 3])
def test_speed_of_light_sums_equal_a_plain_loop(paths):
    rng = np.random.default_rng(7)
    n = sol.BLOCK + 300                      # a full block and a partial one
    accounts = SimpleNamespace(
        account_id=rng.permutation(10 * n)[:n].astype(np.int64),
        start_month=rng.integers(0, 14, n).astype(np.int32),       # 0 and 13: outside a 12-month horizon
        principal=rng.integers(50_000, 5_000_000, n).astype(np.int64),
        rate=rng.choice([0.0, 0.005, 0.015], n),
        term=rng.choice([1, 3, 6, 12], n).astype(np.int32),
        pd_12m=rng.choice([0.0, 0.05, 0.6, 1.0], n))
    horizon = 12
    got = sol.speed_of_light(np.int64(11), np.int64(paths), *sol.sol_inputs(accounts), np.int64(horizon))
    want = one_path_at_a_time(11, paths, accounts, horizon)
    assert tuple(int(x) for x in got) == want
    assert want[1] > 0 and want[2] > 0
