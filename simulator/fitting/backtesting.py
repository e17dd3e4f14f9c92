"""Backtest (`simulator backtest`): a scenario run on a loan tape's own accounts over the months the
tape covers, and what the tape shows against the band the paths give (docs/calibration.md).

The accounts the tape originates (an account's row with months_on_book 0) are replayed from their
terms: product, pd_12m, APR, principal or limit, term and method, payer type, fee, spend. Each
enters the simulation in its origination month; the scenario's behaviour (hazard, rolls, cures,
prepayment, recovery, factor paths) decides the rest. Accounts the tape holds from before its first
month are left out of both sides. A tape does not say which borrowers were first-party fraudsters: a
replayed borrower is one with the share of fraudsters among the borrowers the scenario books.

Each figure is computed by one formula (`series`) from the same sums, for every path and for the
tape: the 30+ and 90+ ratios of balances by month, the roll rates current->M1, M1->M2 and M2->M3 by
month, and the cumulative charge-off rate of the vintages by months on book. With `from_month` M
(out of time), the months up to M and the vintages originated up to M are left out of the comparison.

The roll rates are shares of accounts, so the tape's rate each month also has its Wilson score
interval at the band's level (events: the accounts that rolled; trials: those at risk), and a rate
from no events says so. The ratios and the charge-off curve are shares of amounts (yuan), which are
not binomial trials: they have the band only.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..engine import simulation
from .calibration import wilson_interval
from ..model import origination, policy, products, rng, scoring, terms
from ..tape import reader
from ..model.book import MAX_TERM, NO_PAYER
from ..codes import (ACCOUNTS, BALANCE, DPD30, DPD90, EQUAL_PRINCIPAL, LINE, LOAN, METHODS, N_STATES, PAYER_TYPES,
                     PLAN, PREPAID_STATUS, PRODUCTS, PRODUCT_KIND, STATES, TAPE_STATUS, V_CHARGED_OFF, V_ORIGINAL)
from ..config.schema import MAX_AMOUNT, MAX_ANNUAL_RATE, MAX_THREADS, Products, Scenario, ScenarioError, check_count
from ..config.loader import LoadedScenario, load_scenario
from ..model.terms import Accounts

ROLLS_DRAWN = ("current", "M1", "M2")      # roll rates drawn: from these states to the next
FIGURES = {   # name: (label, x dimension, units, description)
    "dpd30_ratio": ("30+ ratio", "month", "fraction", "balance 30+ days past due (M2 and worse) / balance at the "
                                                      "month end (NaN without balance)"),
    "dpd90_ratio": ("90+ ratio", "month", "fraction", "balance 90+ days past due (M4 and worse) / balance at the "
                                                      "month end (NaN without balance)"),
    **{f"roll_{s}": (f"roll {s}->{STATES[k + 1]}", "month", "fraction a month",
                     f"accounts in {s} at the previous month end that are in {STATES[k + 1]} at this one / accounts "
                     f"in {s} at the previous month end (NaN without them)")
       for k, s in enumerate(ROLLS_DRAWN)},
    "charge_off_curve": ("cumulative charge-off rate", "months_on_book", "fraction of original amount",
                         "principal charged off up to the month on book / original amount (principal of loans, "
                         "limit of lines), the vintages seen that many months pooled"),
}
SHARES_OF_ACCOUNTS = tuple(f"roll_{s}" for s in ROLLS_DRAWN)    # figures whose tape rates are binomial shares
STATUS_CODE = {name: k for k, name in enumerate(TAPE_STATUS[:PREPAID_STATUS])}   # a tape's statuses as read


def tape_months(tape: pd.DataFrame) -> tuple[int, int]:
    """The tape's first and last month."""
    return int(tape["month"].min()), int(tape["month"].max())


def has_features(rows: pd.DataFrame) -> bool:
    """Whether every row has the application's features."""
    return all(name in rows and np.isfinite(pd.to_numeric(rows[name], errors="coerce")).all()
               for name in scoring.SCORECARD_TERMS)


def has_score(rows: pd.DataFrame) -> bool:
    """Whether every row has the application's score."""
    return "score" in rows and bool(np.isfinite(pd.to_numeric(rows["score"], errors="coerce")).all())


def scenario_pd(rows: pd.DataFrame, sc: Scenario) -> np.ndarray:
    """The pd_12m the scenario gives each row's account: its scorecard on the application's features
    (with its model error, drawn by borrower, as origination draws it), else the pd of the score;
    the product's pd from it by the product's risk multiplier. An orchestrator of the module: it reads
    the scorecard, applicants, run and products sections."""
    if has_features(rows):
        features = {name: rows[name].to_numpy(dtype=np.float64) for name in scoring.SCORECARD_TERMS}
        ids = pd.to_numeric(rows["borrower_id"] if "borrower_id" in rows else rows["account_id"])
        borrower = scoring.score_applicants(features | {"id": ids.to_numpy(dtype=np.int64)}, sc.scorecard,
                                            sc.applicants, sc.run.seed)["true_pd_12m"]
    else:
        borrower = scoring.pd_from_score(rows["score"].to_numpy(dtype=np.float64), sc.scorecard)
    return scoring.product_pd(borrower, risk_multipliers(rows, sc.products))


def risk_multipliers(rows: pd.DataFrame, products: Products) -> np.ndarray:
    """Each row's product risk multiplier in a scenario's `products` (a product's odds are the
    borrower's times it)."""
    return rows["product"].astype(str).map(
        {name: getattr(products, name).risk_multiplier for name in PRODUCTS}).to_numpy(dtype=np.float64)


def replay_accounts(tape: pd.DataFrame, path: Path, sc: Scenario, fraud_share: float) -> Accounts:
    """The accounts the tape originates (their months_on_book 0 rows), with their terms, entering in
    their origination month (month 1: the tape's first), sorted by borrower; their pd_12m the
    scenario's (`scenario_pd`) where the tape has the features or the score, else the tape's; each borrower a
    first-party fraudster with probability `fraud_share`, drawn on each path by the kernel. Missing or out-of-range terms are errors
    naming the file's row and the column. An orchestrator of the module: it reads the applicants,
    scorecard, run, products, behaviour and factor sections."""
    first, _ = tape_months(tape)
    rows = tape[tape["months_on_book"] == 0].drop_duplicates("account_id").reset_index(drop=True)
    if rows.empty:
        raise ScenarioError(str(path), "column months_on_book", "expected accounts originated in the tape (rows with "
                                                               "months_on_book 0), found none")
    check = reader.checker(rows, path)
    account_id = check.ids("account_id", "a whole number (the account's id)")
    borrower = check.ids("borrower_id", "a whole number (the borrower's id)") if "borrower_id" in rows else account_id
    product = check.choice("product", PRODUCTS, f"one of {', '.join(PRODUCTS)}")
    kind = PRODUCT_KIND[product]
    line, loan, buy = kind == LINE, kind == LOAN, kind == PLAN
    instalments = loan | buy
    if has_features(rows) or has_score(rows):
        pd_12m = scenario_pd(rows, sc)
    else:
        pd_12m = check.number("pd_12m", "a number in [0, 1] (the account's 12-month PD)")
        check.fail("pd_12m", (pd_12m < 0) | (pd_12m > 1), "a number in [0, 1] (the account's 12-month PD)")
    apr = check.number("apr", "an APR >= 0 (a fraction a year)", line | loan | (buy & ~check.blank("apr")), 0.0)
    check.fail("apr", (apr < 0) | (apr > MAX_ANNUAL_RATE), "an APR >= 0 as a fraction a year, such as 0.146")
    principal = check.number("principal", "an amount > 0 (the amount lent)", instalments, 0.0)
    check.fail("principal", instalments & ((principal <= 0) | (principal > MAX_AMOUNT)),
               f"an amount > 0 and at most {MAX_AMOUNT:.0e} (the amount lent)")
    term = check.number("term", "a whole number of months >= 1", instalments, 0.0)
    check.fail("term", instalments & ((term != np.floor(term)) | (term < 1) | (term > MAX_TERM)),
               f"a whole number of months from 1 to {MAX_TERM}")
    method = check.choice("method", METHODS, f"one of {', '.join(METHODS)}", loan, EQUAL_PRINCIPAL)
    limit = check.number("limit", "an amount > 0 (the line's limit)", line, 0.0)
    check.fail("limit", line & ((limit <= 0) | (limit > MAX_AMOUNT)), f"an amount > 0 and at most {MAX_AMOUNT:.0e}")
    payer = check.choice("payer", PAYER_TYPES, f"one of {', '.join(PAYER_TYPES)} or empty",
                         line & ~check.blank("payer"), NO_PAYER)
    spend = check.number("spend", "an amount >= 0 (mean monthly spend) or empty", line & ~check.blank("spend"),
                         terms.of_kind(sc.applicants, "spend_median", LINE)[product])
    cap = check.number("line_cap", "an amount >= limit or empty", line & ~check.blank("line_cap"), np.nan)
    fee = check.number("fee", "an amount >= 0 a period or empty", buy & ~check.blank("fee"), np.nan)
    for name, values in (("spend", spend), ("fee", fee), ("line_cap", cap)):
        check.fail(name, (values < 0) | (values > MAX_AMOUNT), reader.AMOUNT)
    check.fail("line_cap", line & (cap < limit), "an amount >= limit or empty")
    # A purchase's fee a period, where the tape lacks it: the flat fee of its all-in APR.
    fee = np.where(buy & np.isnan(fee), products.fee_rate_for_apr(apr, np.maximum(term, 1)) * principal, fee)
    order = np.lexsort((account_id, borrower))
    labels = scoring.band_labels(sc.scorecard.bands)
    given = rows["score_band"].astype(str)
    band = (given.map({b: k for k, b in enumerate(labels)}).to_numpy() if given.isin(labels).all()
            else scoring.score_band(scoring.score_from_pd(pd_12m, sc.scorecard), sc.scorecard.bands))
    drawn = rng.uniforms(sc.run.seed, 0, borrower, 0, rng.PAYER_TYPE)
    payer = np.where(payer == NO_PAYER, policy.payer_type(pd_12m, drawn, sc.behaviour), payer)
    fields = dict(
        account_id=account_id, borrower=borrower, product=product, band=band,
        start_month=rows["month"].to_numpy(dtype=np.int64) - first + 1, principal=np.where(line, 0.0, principal),
        apr=np.where(buy, 0.0, apr), term=np.where(line, 0, term).astype(np.int64),
        method=np.select([loan, buy], [method, EQUAL_PRINCIPAL], 0),
        fee=np.where(buy, np.nan_to_num(fee), 0.0),
        discount_rate=terms.of_kind(sc.products, "merchant_discount", PLAN)[product],
        limit=np.where(line, limit, 0.0), line_cap=np.where(line, np.where(np.isnan(cap), limit, cap), 0.0),
        payer=np.where(line, payer, 0), spend=np.where(line, spend, 0.0), pd_12m=pd_12m,
        fraud_share=fraud_share)
    return terms.accounts(len(rows), sc.behaviour.roll_rates, sc.factor,
                          **{k: np.asarray(v)[order] if np.ndim(v) else v for k, v in fields.items()})


def fraud_share(sc: Scenario) -> float:
    """The share of first-party fraudsters among the borrowers the scenario books (its fraud rate
    when it books none). An orchestrator: it runs the scenario's origination (`origination.prepare`)."""
    accounts, _ = origination.prepare(sc)
    borrowers, first = np.unique(accounts.borrower, return_index=True)
    return float(accounts.fraud[first].mean()) if len(borrowers) else sc.behaviour.fraud_rate


def observed_sums(tape: pd.DataFrame, accounts: Accounts, first: int, horizon: int) -> dict[str, np.ndarray]:
    """The tape's sums for `series` (a path axis of 1), of the replayed accounts' rows: balances and
    accounts by month and state, rolls by month and the state rolled from, accounts at risk of each
    roll (in the state at the previous month end, with a row at this one), charge-offs by vintage
    and months on book, original amounts by vintage."""
    rows = tape[tape["account_id"].isin(accounts.account_id)]
    month = rows["month"].to_numpy() - first
    code = rows["status"].astype(str).map(STATUS_CODE).to_numpy()
    open_ = code < N_STATES
    balance = np.zeros((1, horizon, N_STATES))
    count = np.zeros((1, horizon, N_STATES))
    np.add.at(balance[0], (month[open_], code[open_]), rows["balance"].to_numpy()[open_])
    np.add.at(count[0], (month[open_], code[open_]), 1)
    same = (rows["account_id"].shift(1) == rows["account_id"]).to_numpy()
    follows = same & (np.diff(month, prepend=-2) == 1)
    before = np.concatenate([[-1], code[:-1]])
    at = follows & (before >= 0) & (before < N_STATES)
    at_risk = np.zeros((1, horizon, N_STATES))
    rolls = np.zeros((1, horizon, N_STATES))
    np.add.at(at_risk[0], (month[at], before[at]), 1)
    rolled = at & (code == before + 1)
    np.add.at(rolls[0], (month[rolled], before[rolled]), 1)
    start = accounts.start_month - 1
    charged = np.zeros((1, horizon, horizon))
    vintage = month - rows["months_on_book"].to_numpy()
    off = rows["charged_off"].to_numpy() > 0
    np.add.at(charged[0], (vintage[off], (month - vintage)[off]), rows["charged_off"].to_numpy()[off])
    original = np.zeros(horizon)
    np.add.at(original, start, np.where(PRODUCT_KIND[accounts.product] == LINE, accounts.limit, accounts.principal) / 100.0)
    return {"balance": balance, "accounts": count, "at_risk": at_risk, "rolls": rolls, "charged": charged,
            "original": original}


def simulated_sums(totals: dict[str, np.ndarray], horizon: int) -> dict[str, np.ndarray]:
    """The same sums from the kernel's totals (path axis first, cents as yuan)."""
    stocks = totals["stocks"].sum(axis=(2, 3))
    count = stocks[..., ACCOUNTS].astype(float)
    at_risk = np.concatenate([np.zeros_like(count[:, :1]), count[:, :-1]], axis=1)   # no book before month 1
    vintages = totals["vintage_flows"].sum(axis=3)                                  # path, vintage, mob, flow
    charged = np.zeros((count.shape[0], horizon, horizon))
    charged[:, :vintages.shape[1]] = vintages[..., V_CHARGED_OFF] / 100.0
    original = np.zeros(horizon)
    original[:vintages.shape[1]] = vintages[0, :, 0, V_ORIGINAL] / 100.0
    return {"balance": stocks[..., BALANCE] / 100.0, "accounts": count, "at_risk": at_risk,
            "rolls": totals["rolls"].sum(axis=(2, 3)).astype(float), "charged": charged, "original": original}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def series(sums: dict[str, np.ndarray], from_index: int = 0) -> dict[str, np.ndarray]:
    """Every figure of `FIGURES` per path ([path, month] or [path, months on book]) from `sums`;
    NaN where a figure is not compared: before month index `from_index`, for vintages before it,
    where a vintage is not seen that many months on book, or where a denominator is 0."""
    balance, horizon = sums["balance"], sums["balance"].shape[1]
    total = balance.sum(axis=-1)
    out = {"dpd30_ratio": _ratio(balance[..., DPD30:].sum(axis=-1), total),
           "dpd90_ratio": _ratio(balance[..., DPD90:].sum(axis=-1), total)}
    for k, state in enumerate(ROLLS_DRAWN):
        out[f"roll_{state}"] = _ratio(sums["rolls"][..., k], sums["at_risk"][..., k])
    for name in list(out):
        out[name][:, :from_index] = np.nan
    v, m = np.arange(horizon)[:, None], np.arange(horizon)[None, :]
    seen = (v + m <= horizon - 1) & (v >= from_index) & (sums["original"][:, None] > 0)
    charged = np.cumsum(sums["charged"], axis=-1)
    out["charge_off_curve"] = _ratio((charged * seen).sum(axis=1), (sums["original"][:, None] * seen).sum(axis=0))
    return out


def compare(observed: np.ndarray, simulated: np.ndarray, level: float) -> dict[str, np.ndarray | int]:
    """The band of `simulated` [path, x] at `level` (quantiles (1 - level) / 2 and (1 + level) / 2
    over paths), its median, and the points where `observed` [x] falls inside it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # all-NaN points: nothing to compare
        low, median, high = np.nanquantile(simulated, [(1 - level) / 2, 0.5, (1 + level) / 2], axis=0)
    valid = np.isfinite(observed) & np.isfinite(low)
    tol = 1e-12
    inside = valid & (observed >= low - tol) & (observed <= high + tol)
    return {"low": low, "median": median, "high": high, "compared": int(valid.sum()), "inside": int(inside.sum())}


def backtest_scenario(path: Path, overrides: list[str], horizon: int, paths: int) -> LoadedScenario:
    """The scenario as the backtest runs it: over the tape's months, `paths` plain Monte Carlo paths
    with full results."""
    loaded = load_scenario(path, list(overrides) + [
        f"run.horizon_months={horizon}", f"applicants.origination_months={horizon}", f"run.paths={paths}",
        'run.results="full"', "capital.importance_quantile=0.0"])
    if len(loaded.cells) > 1:
        raise ScenarioError(str(path), "sweep", "expected a single scenario to backtest, found a sweep (backtest one "
                                                "cell: --set its keys)")
    return loaded


def run(tape: pd.DataFrame, tape_path: Path, scenario: Path, overrides: list[str], paths: int = 100,
        level: float = 0.95, from_month: int | None = None, threads: int | None = None,
        progress: bool = False) -> xr.Dataset:
    """The backtest of `scenario` on the tape: every figure observed, its band at `level` over
    `paths` paths and median, per path, and the points compared and inside the band (attributes)."""
    first, last = tape_months(tape)
    horizon = last - first + 1
    if from_month is not None and not first <= from_month < last:
        raise ScenarioError(str(tape_path), "--from-month", f"expected a month from {first} to {last - 1} (the tape's "
                                                            f"months but its last), found {from_month}")
    if not 0 < level < 1:
        raise ScenarioError(str(tape_path), "--level", f"expected a band level between 0 and 1, found {level}")
    check_count(paths, "--paths", 2, 10**9, str(tape_path))        # a band needs two paths
    check_count(threads, "--threads", 0, MAX_THREADS, str(scenario))
    loaded = backtest_scenario(scenario, overrides, horizon, paths)
    try:
        simulation.check_memory(loaded, threads)
    except ScenarioError as exc:   # the paths are the backtest's --paths, not the scenario's
        raise ScenarioError(exc.file, "--paths", exc.what) from None
    sc = loaded.scenario
    accounts = replay_accounts(tape, tape_path, sc, fraud_share(sc))
    totals = simulation.run_accounts(sc, accounts, threads=threads, progress=progress, label="backtest")
    from_index = 0 if from_month is None else from_month - first + 1
    tape_sums = observed_sums(tape, accounts, first, horizon)
    seen = series(tape_sums, from_index)
    simulated = series(simulated_sums(totals, horizon), from_index)
    ds = xr.Dataset(coords={"month": np.arange(first, last + 1), "months_on_book": np.arange(horizon),
                            "path": np.arange(paths)})
    for name, (label, dim, units, description) in FIGURES.items():
        found = compare(seen[name][0], simulated[name], level)
        attrs = {"units": units, "description": description, "long_name": label}
        ds[f"{name}_observed"] = xr.DataArray(seen[name][0], dims=dim, attrs=attrs | {
            "points_compared": found["compared"], "points_in_band": found["inside"]})
        ds[f"{name}_simulated"] = xr.DataArray(simulated[name], dims=("path", dim), attrs=attrs)
        for bound in ("low", "median", "high"):
            ds[f"{name}_{bound}"] = xr.DataArray(found[bound], dims=dim, attrs=attrs)
    for k, name in enumerate(SHARES_OF_ACCOUNTS):
        ds = ds.merge(tape_interval(name, tape_sums["rolls"][0, :, k], tape_sums["at_risk"][0, :, k],
                                    np.isfinite(seen[name][0]), level))
        ds[f"{name}_observed"].attrs["points_without_events"] = int(ds[f"{name}_no_events"].sum())
    left_out = int(tape.loc[tape["months_on_book"] == 0, "account_id"].nunique())
    ds.attrs.update({
        "title": f"Backtest of '{sc.run.name}' on the loan tape {tape_path}",
        "seed": sc.run.seed, "scenario_file": str(loaded.path), "scenario_text": loaded.text,
        "scenario_overrides": json.dumps(loaded.overrides),
        "scenario_resolved": json.dumps(loaded.resolved(), sort_keys=True),
        "tape": str(tape_path), "paths": paths, "band_level": level,
        "from_month": -1 if from_month is None else from_month, "first_month": first, "last_month": last,
        "accounts_replayed": len(accounts.account_id),
        "accounts_left_out": int(tape["account_id"].nunique()) - left_out,
    })
    return ds


def tape_interval(name: str, events: np.ndarray, trials: np.ndarray, compared: np.ndarray,
                  level: float) -> xr.Dataset:
    """The tape's figure `name` (a share of accounts) by month as counts and its Wilson score interval at
    `level`: `{name}_events` (accounts that rolled), `{name}_trials` (accounts at risk),
    `{name}_observed_low` and `_high` (NaN where not `compared`), and `{name}_no_events`, the points
    compared whose rate rests on no events (0 of n: its interval is 0 to an upper bound)."""
    low, high = wilson_interval(events, trials, level)
    label = FIGURES[name][0]
    bound = {"units": "fraction a month", "long_name": f"{label}, the tape's {level:.0%} Wilson score interval"}
    count = {"units": "1"}
    return xr.Dataset({
        f"{name}_events": ("month", events.astype(np.int64), count | {
            "description": f"accounts of the tape that rolled ({label}) in the month"}),
        f"{name}_trials": ("month", trials.astype(np.int64), count | {
            "description": f"accounts of the tape at risk of that roll (the denominator of {label})"}),
        f"{name}_observed_low": ("month", np.where(compared, low, np.nan), bound | {
            "description": f"lower end of the tape's {level:.0%} Wilson score interval (NaN where not compared)"}),
        f"{name}_observed_high": ("month", np.where(compared, high, np.nan), bound | {
            "description": f"upper end of the tape's {level:.0%} Wilson score interval (NaN where not compared)"}),
        f"{name}_no_events": ("month", compared & (events == 0), {
            "description": "the tape's rate is 0 from no events (its interval: 0 to the upper end)"}),
    })


def table(ds: xr.Dataset) -> str:
    """Each figure's points compared and inside the band, and of the roll rates the points from no
    events; then each of those (and each from all events) with its interval: as printed and in the
    report."""
    level = float(ds.attrs["band_level"])
    lines = [f"{'figure':<28} {'in band':>9} {'of':>4}  share  no events"]
    for name, (label, *_rest) in FIGURES.items():
        attrs = ds[f"{name}_observed"].attrs
        n, k = int(attrs["points_compared"]), int(attrs["points_in_band"])
        share = f"{k / n:6.1%}" if n else "     -"
        none = str(attrs["points_without_events"]) if name in SHARES_OF_ACCOUNTS else "-"
        lines.append(f"{label:<28} {k:>9} {n:>4}  {share}  {none:>9}")
    notes = []
    for name in SHARES_OF_ACCOUNTS:
        events, trials = ds[f"{name}_events"].values, ds[f"{name}_trials"].values
        low, high = ds[f"{name}_observed_low"].values, ds[f"{name}_observed_high"].values
        for month, e, t, lo, hi in zip(ds["month"].values, events, trials, low, high):
            if np.isfinite(lo) and e in (0, t):
                what = "no events" if e == 0 else "all events"
                notes.append(f"  {FIGURES[name][0]}, month {month}: {what}, {e:,} of {t:,} "
                             f"(interval {lo:.3f} to {hi:.3f})")
    lines += ["", f"Roll rates are shares of accounts: each month's rate of the tape has its {level:.0%} Wilson score",
              "interval in backtest.nc (roll_*_observed_low, _high). The ratios and the charge-off curve are",
              "shares of amounts (yuan), not of accounts: they have no binomial interval."]
    if notes:
        lines += ["Roll rates of the tape from no events (or all):", *notes]
    return "\n".join(lines)
