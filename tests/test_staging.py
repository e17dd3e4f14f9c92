"""Impairment staging (provisions.next_stage, docs/model.md section 10) against outside truths: one
account's stages over a hand-computed path of states, the kernel's stage counts and transfers
replayed from its loan tape, stage counts that are the states' with every rule off, transfers that
add up to the change in the stage counts, and a factor shock that moves a current book to stage 2
before any account is 30 days past due."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.codes import ACCOUNTS, N_STATES, STAGES, STATES, T_STATUS
from simulator.engine import simulation
from simulator.model import origination, provisions

from conftest import identical_book, loaded_scenario

OFF = ["provisions.sicr_pd_ratio=0", "provisions.cure_months=0", "provisions.probation_months=0"]


def test_one_accounts_stages_follow_the_documented_months():
    """cure_months = 3, probation_months = 6, by hand: M1 .. M4 (stage 1, 1, 2, 2, 3), a cure to
    current, three months current in stage 3, then stage 2 (its months current counted afresh), a
    miss in the probation (back to 0), six months current, stage 1; a significant increase is stage 2
    however current the account is."""
    states = [0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    want = [0, 0, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    # month ends current after the cure:  1  2  3->0 1  2  M1 1  2  3  4  5  6
    stage, good, got = 0, 0, []
    for state in states:
        stage, good = provisions.next_stage(stage, good, state, False, 3, 6)
        got.append(stage)
    assert got == want
    assert provisions.next_stage(0, 5, 0, True, 3, 6) == (1, 0)
    assert provisions.next_stage(1, 5, 0, False, 3, 6) == (0, 6)
    # With no months of cure or probation and no significant increase, the stage is the state's.
    for state in range(N_STATES):
        for stage in range(len(STAGES)):
            assert provisions.next_stage(stage, 0, state, False, 0, 0)[0] == provisions.stage_of(state)


def _replay(tape, accounts, cure, probation, horizon):
    """Stage counts [month, stage] and transfers [month, from, to] of path 0 from its loan tape, by
    provisions.next_stage with no significant increase."""
    status = tape.dense(T_STATUS)
    counts = np.zeros((horizon, len(STAGES)), dtype=np.int64)
    moves = np.zeros((horizon, len(STAGES), len(STAGES)), dtype=np.int64)
    first = np.maximum(accounts.start_month, 1)
    for i in range(len(first)):
        stage, good = provisions.stage_of(int(accounts.state0[i])), 0
        for t in range(int(first[i]), horizon + 1):
            s = int(status[i, t - 1])                # the tape's column t - 1 is month t
            if s < 0 or s >= N_STATES:          # closed, charged off or prepaid: it leaves from its last stage
                break
            after, good = provisions.next_stage(stage, good, s, False, cure, probation)
            if after != stage and t != accounts.start_month[i]:
                moves[t - 1, stage, after] += 1
            stage = after
            counts[t - 1, stage] += 1
    return counts, moves


@pytest.mark.parametrize("cure, probation", [(2, 3), (0, 0), (3, 6)])
def test_the_kernels_stages_replay_its_tape(tmp_path, cure, probation):
    """Path 0's stage counts and stage transfers, by month, are those of its loan tape's states run
    through next_stage account by account (lines, loans and purchases, new business)."""
    horizon = 18
    sc = loaded_scenario(tmp_path, ["applicants.monthly_volume=300", "applicants.origination_months=10",
                                    f"run.horizon_months={horizon}", "run.paths=1", "provisions.sicr_pd_ratio=0",
                                    f"provisions.cure_months={cure}", f"provisions.probation_months={probation}"]).scenario
    accounts, _ = origination.prepare(sc)
    out = simulation.run_accounts(sc, accounts, tape=True)
    counts, moves = _replay(out["tape"], accounts, cure, probation, horizon)
    np.testing.assert_array_equal(out["stages"][0, ..., ACCOUNTS].sum(axis=(1, 2)), counts)
    np.testing.assert_array_equal(out["transfers"][0].sum(axis=(1, 2)), moves)
    assert moves.sum() > 50 and counts[:, 2].sum() > 0


def test_with_every_rule_off_the_stages_are_the_states(tmp_path):
    """No significant increase, no cure or probation months: the stage counts and balances are those of
    their states (current, M1 | M2, M3 | M4 .. M6) in every cell, and stage 2 holds exactly M2 and M3."""
    ds = simulation.simulate(loaded_scenario(tmp_path, ["applicants.monthly_volume=300", "run.paths=2",
                                                        "run.horizon_months=18", *OFF]))
    for stage, states in enumerate((STATES[:2], STATES[2:4], STATES[4:])):
        name = STAGES[stage]
        np.testing.assert_array_equal(ds["stage_accounts"].sel(stage=name), ds["accounts"].sel(state=list(states)).sum("state"))
        np.testing.assert_array_equal(np.round(ds["stage_balance"].sel(stage=name) * 100),
                                      np.round(ds["balance"].sel(state=list(states)).sum("state") * 100))


def test_transfers_add_up_to_the_change_in_stage_counts(tmp_path):
    """A book that no account leaves in the horizon (36-month loans from current, no prepayment, 6
    months: a charge-off takes 7 misses): each month's stage counts are the last month's plus the
    transfers in less the transfers out, with the default rules (significant increase, cure, probation)."""
    n = 4000
    sc = loaded_scenario(tmp_path, ["run.horizon_months=6", "run.paths=2", "products.jiebei.prepayment=false",
                                    "factor.asset_correlation=0.2", "macro.shift=[-2.0, -2.0, -2.0]"]).scenario
    accounts = identical_book(n, 5000.0, 0.24, 36, "equal_installment", 0.3, sc.behaviour.roll_rates)
    out = simulation.run_accounts(sc, accounts)
    counts = out["stages"][..., ACCOUNTS].sum(axis=(2, 3))                     # path, month, stage
    moves = out["transfers"].sum(axis=(2, 3))                                  # path, month, from, to
    before = np.concatenate([np.broadcast_to([n, 0, 0], (2, 1, 3)), counts[:, :-1]], axis=1)
    np.testing.assert_array_equal(counts, before + moves.sum(axis=2) - moves.sum(axis=3))
    assert counts.sum(axis=2).min() == n and moves.sum() > 100


def test_a_factor_shock_moves_a_current_book_to_stage_2(tmp_path):
    """A homogeneous book of current loans under a factor shock of -4 sd in month 1: point in time its
    lifetime PD is more than 2.5 times its PD at origination, so at month 1's end every account still
    current is in stage 2 with none 30+; with the ratio off, stage 2 holds exactly the M2 and M3
    accounts (none yet), and without the shock none moves."""
    n = 2000
    def stages(*settings):
        sc = loaded_scenario(tmp_path, ["run.horizon_months=3", "run.paths=2", "factor.asset_correlation=0.2",
                                        "provisions.scenarios={baseline=1.0}", *settings]).scenario
        accounts = identical_book(n, 5000.0, 0.24, 12, "equal_installment", 0.03, sc.behaviour.roll_rates)
        out = simulation.run_accounts(sc, accounts)
        return out["stages"][:, 0, ..., ACCOUNTS].sum(axis=(1, 2)), out["stocks"][:, 0, ..., ACCOUNTS].sum(axis=(1, 2))
    shocked, states = stages("macro.shift=[-4.0]")
    assert np.all(states[:, 2:].sum(axis=1) == 0)                  # none 30+ after one month
    assert np.all(shocked[:, 1] >= states[:, 0]) and np.all(shocked[:, 1] > n // 2)
    off, states = stages("macro.shift=[-4.0]", "provisions.sicr_pd_ratio=0")
    np.testing.assert_array_equal(off[:, 1], states[:, 2:4].sum(axis=1))
    calm, states = stages()
    assert np.all(calm[:, 1] == states[:, 1])                      # only the M1 accounts (from their roll rate)
