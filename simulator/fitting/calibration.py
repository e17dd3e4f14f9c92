"""Calibration from a loan tape (`simulator calibrate`): the behavioural parameters a scenario types in
by hand, estimated from the account-months of a tape (docs/calibration.md), each with its standard
error and the number of observations, written as a scenario that extends a base.

Estimators (cohort, over consecutive account-months of the same account):
- roll rate Mk -> Mk+1 (M6 -> charged off) and cure rate Mk -> current: the share of the accounts in
  Mk at a month end that are in the next state (current, or closed by the payment) at the next month
  end;
- prepayment: the share of current loans (cash loans and purchases) prepaid in full the next month;
  with a base scenario and the tape's APRs, its rate at the base's reference APR and its price
  sensitivity, by maximum likelihood of prepayment.price_scale's form (Fisher-information errors);
- pd_12m by score band: of the accounts originated early enough to be seen 12 months on book, the
  share that reached 90+ (M4) within 12 months on book;
- recovery: recoveries over principal charged off, of charge-offs whose recovery months the tape
  covers; the lag: the months after a charge-off that bring recoveries.
Standard errors are binomial, sqrt(p (1 - p) / n), but the recovery share's (a ratio of sums: the
standard error of the mean share across charge-offs, weighted by amount).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import expit, ndtri

from ..config import files
from ..model import policy
from ..tape import reader
from ..model.book import NO_PAYER
from ..codes import DPD90, KIND, LINE, N_STATES, PAYER_TYPES, PD_MONTHS, PRODUCTS, STATES
from ..config.schema import MAX_AMOUNT, MAX_SIGMA, Behaviour, Scenario, ScenarioError
from ..config.loader import load_scenario

CHARGED_OFF, CLOSED = "charged_off", "closed"
IPF_ROUNDS = 200     # rounds of iterative proportional fitting of the payer shares


@dataclass
class Estimate:
    """An estimated figure: value, standard error, observations (accounts, account-months or amounts);
    a share of events has its count of `events` and an interval of its own (`binomial`)."""
    value: float
    se: float
    n: int
    events: int | None = None
    bounds: tuple[float, float] | None = None

    def interval(self) -> tuple[float, float]:
        """The 95% confidence interval: a share's Wilson score interval (`binomial`), else value +- 1.96
        standard errors."""
        if self.bounds is not None:
            return self.bounds
        return self.value - 1.96 * self.se, self.value + 1.96 * self.se


def wilson_interval(events: np.ndarray | int, trials: np.ndarray | int,
                    level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval at `level` of each share events / trials: it stays inside [0, 1] and
    keeps a width with no events or all (NaN without trials)."""
    z = float(ndtri((1.0 + level) / 2.0))
    events, trials = np.asarray(events, dtype=np.float64), np.asarray(trials, dtype=np.float64)
    n = np.where(trials > 0, trials, np.nan)
    p = events / n
    z2 = z * z / n
    centre = (p + z2 / 2.0) / (1.0 + z2)
    half = z * np.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n)) / (1.0 + z2)
    return np.maximum(0.0, centre - half), np.minimum(1.0, centre + half)


def binomial(events: int, trials: int) -> Estimate:
    """The share events / trials, its binomial standard error and its 95% Wilson score interval
    (`wilson_interval`; NaN without trials)."""
    if trials <= 0:
        return Estimate(float("nan"), float("nan"), 0)
    p = events / trials
    low, high = wilson_interval(events, trials)
    return Estimate(p, math.sqrt(p * (1.0 - p) / trials), trials, events, (float(low), float(high)))


def transitions(tape: pd.DataFrame) -> pd.DataFrame:
    """Each account-month with the account's next month's status (`next`), where the tape has it."""
    same = tape["account_id"].shift(-1) == tape["account_id"]
    following = tape["month"].shift(-1) == tape["month"] + 1
    out = tape.assign(next=tape["status"].shift(-1), next_prepaid=tape["prepaid"].shift(-1))
    return out[same & following]


def roll_and_cure(moves: pd.DataFrame) -> tuple[list[Estimate], list[Estimate]]:
    """The roll rates M1 -> M2 .. M6 -> charged off and the cure rates from M1 .. M6 (to current)."""
    rolls, cures = [], []
    for k in range(1, N_STATES):
        at = moves[moves["status"] == STATES[k]]
        worse = CHARGED_OFF if k == N_STATES - 1 else STATES[k + 1]
        rolls.append(binomial(int((at["next"] == worse).sum()), len(at)))
        cures.append(binomial(int(at["next"].isin([STATES[0], CLOSED]).sum()), len(at)))   # a cure may close it
    return rolls, cures


def current_loans(moves: pd.DataFrame) -> pd.DataFrame:
    """The account-months of current loans, of the products whose loans prepay in the tape."""
    prepaying = moves.loc[moves["next_prepaid"].astype(bool), "product"].unique()
    return moves[(moves["status"] == STATES[0]) & moves["product"].isin(prepaying)]


def prepayment(moves: pd.DataFrame) -> Estimate:
    """The monthly prepayment rate of current loans, of the products whose loans prepay in the tape."""
    current = current_loans(moves)
    return binomial(int(current["next_prepaid"].astype(bool).sum()), len(current))


def prepayment_by_price(moves: pd.DataFrame, reference_apr: float) -> tuple[Estimate, Estimate] | None:
    """(the monthly prepayment rate at `reference_apr`, the price sensitivity): the maximum-likelihood
    fit of P(prepaid next month | current, APR a) = p0 x 2 / (1 + exp(-k (a - reference))) to the
    current loans of the products that prepay, with errors from the Fisher information; None when the
    tape has no APRs or they do not vary."""
    current = current_loans(moves)
    if "apr" not in current or len(current) == 0 or float(current["apr"].std()) < 1e-6:
        return None
    gap = current["apr"].to_numpy(dtype=np.float64) - reference_apr
    y = current["next_prepaid"].astype(bool).to_numpy()

    def terms(theta):
        p0, k = theta
        sigma = expit(k * gap)
        p = np.clip(p0 * 2.0 * sigma, 1e-12, 1.0 - 1e-12)
        grad = np.stack([2.0 * sigma, p0 * 2.0 * sigma * (1.0 - sigma) * gap])     # dp / (p0, k)
        return p, grad

    def loss(theta):
        p, grad = terms(theta)
        ll = np.where(y, np.log(p), np.log1p(-p)).sum()
        score = (grad * np.where(y, 1.0 / p, -1.0 / (1.0 - p))).sum(axis=1)
        return -ll, -score

    start = np.array([max(y.mean(), 1e-6), 1.0])
    fit = optimize.minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(1e-9, 0.5), (0.0, 100.0)])
    p, grad = terms(fit.x)
    info = (grad[:, None, :] * grad[None, :, :] / (p * (1.0 - p))).sum(axis=2)
    se = np.sqrt(np.diag(np.linalg.pinv(info)))
    return Estimate(float(fit.x[0]), float(se[0]), len(y)), Estimate(float(fit.x[1]), float(se[1]), len(y))


def seasoned(tape: pd.DataFrame) -> pd.DataFrame:
    """One row per account originated at least 12 months before the tape's last month (its
    origination row's columns), with `bad`: it reached 90+ (M4) or was charged off within 12 months
    on book."""
    last = int(tape["month"].max())
    born = tape[(tape["months_on_book"] == 0) & (tape["month"] + PD_MONTHS <= last)].drop_duplicates("account_id")
    seen = tape[tape["account_id"].isin(born["account_id"]) & (tape["months_on_book"] <= PD_MONTHS)]
    bad_states = list(STATES[DPD90:]) + [CHARGED_OFF]
    bad = seen["status"].astype(str).isin(bad_states).groupby(seen["account_id"]).any()
    return born.assign(bad=born["account_id"].map(bad).fillna(False).astype(bool).to_numpy()).reset_index(drop=True)


def pd_by_band(tape: pd.DataFrame) -> tuple[dict[str, Estimate], dict[str, float]]:
    """The realised 12-month bad rate by score band (`seasoned` accounts), and the mean pd_12m the
    tape gives the same accounts (when it has the column), by band."""
    accounts = seasoned(tape)
    band = tape["score_band"]
    names = list(band.cat.categories) if isinstance(band.dtype, pd.CategoricalDtype) else sorted(band.unique())
    band = accounts["score_band"].astype(str)
    out, means = {}, {}
    for name in map(str, names):
        members = accounts[band == name]
        if len(members):
            out[name] = binomial(int(members["bad"].sum()), len(members))
            if "pd_12m" in members:
                means[name] = float(members["pd_12m"].mean())
    return out, means


def recovery(tape: pd.DataFrame) -> tuple[Estimate, int]:
    """The recovery share of charged-off principal and the lag (months after a charge-off that bring
    recoveries, the longest seen), from the charge-offs at least that lag before the tape's end; a
    ScenarioError when the recoveries exceed the principal charged off (the share is a fraction)."""
    off = tape[tape["charged_off"] > 0][["account_id", "month", "charged_off"]]
    if off.empty:
        return Estimate(float("nan"), float("nan"), 0), 0
    later = tape[(tape["status"] == CHARGED_OFF) & (tape["recovered"] > 0)].merge(
        off, on="account_id", suffixes=("", "_off"))
    lag = int((later["month"] - later["month_off"]).max()) if len(later) else 0
    done = off[off["month"] + lag <= int(tape["month"].max())]
    got = later[later["account_id"].isin(done["account_id"])].groupby("account_id")["recovered"].sum()
    share = (got.reindex(done["account_id"]).fillna(0.0).values / done["charged_off"].values)
    weights = done["charged_off"].values
    mean = float(np.sum(share * weights) / np.sum(weights))
    if mean > 1.0:
        worst = int(np.argmax(share))
        raise ScenarioError(*reader.where(tape, "recovered"), f"expected recoveries of at most the principal charged "
                            f"off (behaviour.recovery_rate is a share), found recoveries exceed charge-offs: "
                            f"{got.sum():,.2f} recovered of {weights.sum():,.2f} charged off ({mean:.2f} times; "
                            f"account {done['account_id'].iat[worst]}: {share[worst]:.2f} times its charge-off of "
                            f"month {done['month'].iat[worst]})")
    n = len(done)
    se = float(math.sqrt(np.sum(weights**2 * (share - mean) ** 2)) / np.sum(weights)) if n > 1 else float("nan")
    return Estimate(mean, se, n), lag


def line_terms(tape: pd.DataFrame, behaviour: Behaviour) -> dict:
    """Of the lines the tape originates: the share of each payer type (binomial), and the base's
    `payer_shares` that give those shares at the lines' pd_12m under the tilt of the base's
    `behaviour` (by iterative proportional fitting; standard error: the tape's share's, relative); by
    line product (`spend`: {product: {key: estimate}}), the lognormal median and sigma of their mean
    monthly spend (standard errors median x sigma / sqrt(n) and sigma / sqrt(2 (n - 1))). Empty where
    the tape lacks the columns or the lines."""
    line = tape["product"].astype(str).map(dict(zip(PRODUCTS, KIND))) == LINE
    lines = tape[(tape["months_on_book"] == 0) & line]
    lines = lines.drop_duplicates("account_id")
    check = reader.checker(lines)
    out = {}
    code = (check.choice("payer", PAYER_TYPES, f"one of {', '.join(PAYER_TYPES)} or empty", ~check.blank("payer"),
                         NO_PAYER) if "payer" in lines else np.full(len(lines), NO_PAYER))
    if len(lines) and (code != NO_PAYER).all():
        out["payer"] = [binomial(int((code == k).sum()), len(code)) for k in range(len(PAYER_TYPES))]
        if "pd_12m" in lines and np.isfinite(lines["pd_12m"]).all() and min(e.value for e in out["payer"]) > 0:
            pd_12m, shares = lines["pd_12m"].to_numpy(dtype=np.float64), np.asarray(behaviour.payer_shares, float)
            target = np.array([e.value for e in out["payer"]])
            for _ in range(IPF_ROUNDS):
                weights = policy.payer_weights(pd_12m, behaviour, shares)
                shares = shares * target / (weights / weights.sum(axis=1, keepdims=True)).mean(axis=0)
                shares = shares / shares.sum()
            # A share moves in proportion to the tape's share of its type: the same relative error.
            out["payer_shares"] = [Estimate(float(v), float(v * e.se / e.value), e.n) for v, e in zip(shares, out["payer"])]
    if len(lines) > 2 and "spend" in lines:
        given = ~check.blank("spend")
        spend = check.number("spend", "an amount >= 0 (mean monthly spend) or empty", given)
        check.fail("spend", given & ((spend < 0) | (spend > MAX_AMOUNT)), reader.AMOUNT)
        product = lines["product"].astype(str).to_numpy()
        for name in (name for name, kind in zip(PRODUCTS, KIND) if kind == LINE):
            mine = spend[given & (spend > 0) & (product == name)]
            if len(mine) > 2:
                out.setdefault("spend", {})[name] = _lognormal(mine, tape, name)
    return out


def _lognormal(spend: np.ndarray, tape: pd.DataFrame, name: str) -> dict[str, Estimate]:
    """The lognormal median and sigma of the line `name`'s spends (of `tape`), with their standard errors."""
    logs = np.log(spend)
    sigma = float(logs.std(ddof=1))
    if sigma > MAX_SIGMA:
        raise ScenarioError(*reader.where(tape, "spend"), f"expected the lines' spend spread as a lognormal of "
                            f"sigma at most {MAX_SIGMA} (applicants.{name}.spend_sigma), found sigma "
                            f"{sigma:.3f} (spends from {spend.min():,.2f} to {spend.max():,.2f})")
    median = float(np.exp(logs.mean()))
    return {"spend_median": Estimate(median, median * sigma / math.sqrt(len(spend)), len(spend)),
            "spend_sigma": Estimate(sigma, sigma / math.sqrt(2 * (len(spend) - 1)), len(spend))}


def against_base(found: dict, base: Scenario) -> list[tuple[str, Estimate, float]]:
    """Each scalar estimate written to the scenario, with the base scenario's value of the same key
    (the fit report's table of the tape against the base): it reads the base's behaviour, applicants,
    policy and scorecard."""
    beh = base.behaviour
    rows = [("behaviour.roll_rates[%d]" % k, e, beh.roll_rates[k]) for k, e in enumerate(found["rolls"])]
    rows += [("behaviour.prepay_monthly", found["prepay"], beh.prepay_monthly)]
    if "prepay_sensitivity" in found:
        rows += [("behaviour.prepay_price_sensitivity", found["prepay_sensitivity"], beh.prepay_price_sensitivity)]
    rows += [("recovery share, net (recovery_rate x (1 - collection_cost))", found["recovery"],
              beh.recovery_rate * (1.0 - beh.collection_cost))]
    line = found.get("lines", {})
    rows += [(f"behaviour.payer_shares[{k}] ({name})", e, beh.payer_shares[k])
             for k, (name, e) in enumerate(zip(PAYER_TYPES, line.get("payer_shares", [])))]
    rows += [(f"applicants.{name}.{key}", e, getattr(getattr(base.applicants, name), key))
             for name, spend in line.get("spend", {}).items() for key, e in spend.items()]
    takeup = found.get("takeup") or {"keys": {}}
    rows += [(f"policy.{key}", e, getattr(base.policy, key)) for key, e in takeup["keys"].items()]
    card = found.get("scorecard") or {"keys": {}}
    rows += [(f"scorecard.{key}", e, getattr(base.scorecard, key)) for key, e in card["keys"].items()]
    return [(name, e, value) for name, e, value in rows if math.isfinite(e.value)]


def _row(name: str, estimate: Estimate) -> str:
    lo, hi = estimate.interval()
    row = f"{name:<34} {estimate.value:>10.5f} {estimate.se:>10.5f}  [{lo:.5f}, {hi:.5f}]  n={estimate.n:,}"
    if estimate.events is not None and estimate.n and estimate.events in (0, estimate.n):
        row += f"  ({'no' if estimate.events == 0 else 'all'} events: the interval is Wilson's)"
    return row


def calibrate(tape: pd.DataFrame, base: Scenario | None = None) -> dict:
    """Every estimate of the tape: roll and cure rates (pooled, by product and by score band),
    prepayment, the realised 12-month bad rate by band (and the mean pd_12m the tape gives those
    accounts), recovery share and lag; with a `base`, the lines' payer shares and spend."""
    moves = transitions(tape)
    rolls, cures = roll_and_cure(moves)
    by_product = {str(p): roll_and_cure(m) for p, m in moves.groupby("product", observed=True)}
    by_band = {str(b): roll_and_cure(m) for b, m in moves.groupby("score_band", observed=True)}
    share, lag = recovery(tape)
    bad_rates, given = pd_by_band(tape)
    by_price = prepayment_by_price(moves, base.behaviour.prepay_reference_apr) if base is not None else None
    prepay, sensitivity = by_price if by_price else (prepayment(moves), None)
    return {"rolls": rolls, "cures": cures, "by_product": by_product, "by_band": by_band,
            "lines": line_terms(tape, base.behaviour) if base is not None else {}, "prepay": prepay,
            **({"prepay_sensitivity": sensitivity} if sensitivity else {}),
            "pd_by_band": bad_rates, "given_pd_by_band": given, "recovery": share, "lag": lag,
            "account_months": len(tape),
            "accounts": int(tape["account_id"].nunique())}


def report(found: dict, by_band: bool = False) -> str:
    """The estimates as a table: value, standard error, 95% interval, observations (the roll rates
    pooled, then by product, and with `by_band` by score band)."""
    lines = [f"{'estimate':<34} {'value':>10} {'std err':>10}  95% interval  observations",
             *(_row(f"roll {STATES[k + 1]}->{STATES[k + 2] if k < N_STATES - 2 else CHARGED_OFF}", e)
               for k, e in enumerate(found["rolls"])),
             *(_row(f"cure {STATES[k + 1]}->current", e) for k, e in enumerate(found["cures"])),
             *(_row(f"  {product}: roll {STATES[k + 1]}", e) for product, (rolls, _) in found["by_product"].items()
               for k, e in enumerate(rolls) if e.n),
             *(_row(f"  band {band}: roll {STATES[k + 1]}", e) for band, (rolls, _) in
               (found["by_band"].items() if by_band else []) for k, e in enumerate(rolls) if e.n),
             _row("prepayment a month", found["prepay"]),
             *([_row("prepayment price sensitivity", found["prepay_sensitivity"])] if "prepay_sensitivity" in found
               else []),
             *(_row(f"pd_12m band {band}", e) for band, e in found["pd_by_band"].items()),
             _row("recovery share (net)", found["recovery"]) + f"  lag {found['lag']} months"]
    lines_found = found["lines"]
    lines += [_row(f"line payer share {name}", e) for name, e in zip(PAYER_TYPES, lines_found.get("payer", []))]
    lines += [_row(f"{name} spend {key.split('_')[1]}", e) for name, spend in lines_found.get("spend", {}).items()
              for key, e in spend.items()]
    takeup = found.get("takeup")
    if takeup:
        lines += [_row(f"take-up {name}", e) for name, e in takeup["by_product"].items()]
        lines += [_row(f"policy.{key}", e) for key, e in takeup["keys"].items()]
        if takeup.get("note"):
            lines.append(takeup["note"])
    card = found.get("scorecard")
    if card:
        if card["recalibrated"] is not None:
            lines += [_row(f"scorecard recalibration {'a' if k == 'intercept' else 'b'}", e)
                      for k, e in card["recalibrated"].items()]
        lines += [_row(f"scorecard.{k}", e) for k, e in card["keys"].items() if math.isfinite(e.se)]
        lines += [f"{'discrimination ' + model:<34} AUC {d['auc']:.4f}  Gini {d['gini']:.4f}  KS {d['ks']:.4f}"
                  for model, d in card["discrimination"].items()]
    if found.get("scorecard_note"):
        lines.append(found["scorecard_note"])
    return "\n".join(lines)


def scenario_text(found: dict, base: Path, out: Path, tape_path: Path, by_band: bool = False) -> str:
    """A scenario that extends `base` with the tape's behavioural estimates, each commented with its
    standard error, 95% interval and observations, and named after its file (run.name). The recovery
    share is net of collection cost, so collection_cost is set to 0 and recovery_rate to the share."""
    def note(e: Estimate) -> str:
        lo, hi = e.interval()
        return f"se {e.se:.5f}, 95% [{lo:.5f}, {hi:.5f}], n {e.n:,}"

    extends = os.path.relpath(Path(base).resolve(), Path(out).resolve().parent)
    rolls = found["rolls"]
    if any(not math.isfinite(e.value) for e in rolls):
        raise ScenarioError(str(tape_path), "status", "expected accounts in every state M1 .. M6 to estimate the roll "
                                                      "rates, found a state with none")
    lines = [f"# Calibrated from {tape_path} ({found['accounts']:,} accounts, "
             f"{found['account_months']:,} account-months)",
             "# by `simulator calibrate`: each estimate with its standard error, 95% interval and observations.",
             f'extends = "{extends}"', "", "[run]", f'name = "{Path(out).stem}"', "", "[behaviour]", "roll_rates = ["]
    lines += [f"    {e.value:.6f},   # {note(e)}" for e in rolls]
    lines += ["]"]
    if math.isfinite(found["prepay"].value):
        lines.append(f"prepay_monthly = {found['prepay'].value:.6f}   # {note(found['prepay'])}")
    if "prepay_sensitivity" in found:
        lines.append(f"prepay_price_sensitivity = {found['prepay_sensitivity'].value:.4f}   # at the base's "
                     f"prepay_reference_apr; {note(found['prepay_sensitivity'])}")
    line = found["lines"]
    if "payer_shares" in line:
        rounded = [round(e.value, 6) for e in line["payer_shares"][:-1]]
        shares = ", ".join(f"{v:.6f}" for v in rounded + [1.0 - sum(rounded)])     # the written shares sum to 1
        seen = "; ".join(f"{name} {e.value:.4f} ({note(e)})" for name, e in zip(PAYER_TYPES, line["payer"]))
        lines.append(f"payer_shares = [{shares}]   # at payer_reference_pd; the tape's lines: {seen}")
    if math.isfinite(found["recovery"].value):
        lines.append(f"recovery_rate = {found['recovery'].value:.6f}   # net share; {note(found['recovery'])}")
        lines.append("collection_cost = 0.0   # the tape's recoveries are net of collection cost")
        lines.append(f"recovery_lag_months = {max(1, found['lag'])}   # the longest run of recoveries seen")
    for name, spend in line.get("spend", {}).items():
        lines += ["", f"[applicants.{name}]",
                  f"spend_median = {spend['spend_median'].value:.2f}   # {note(spend['spend_median'])}",
                  f"spend_sigma = {spend['spend_sigma'].value:.6f}   # {note(spend['spend_sigma'])}"]
    if by_band:
        lines += ["", "# Roll rates by score band (the scenario has one set; for reading):"]
        lines += [f"#   {band}: " + ", ".join(f"{e.value:.4f}" if e.n else "-" for e in rolls) + "  (n "
                  + ", ".join(f"{e.n:,}" for e in rolls) + ")" for band, (rolls, _) in found["by_band"].items()]
    takeup = found.get("takeup")
    if takeup and takeup["keys"]:
        rates = "; ".join(f"{name} {e.value:.4f} ({note(e)})" for name, e in takeup["by_product"].items())
        lines += ["", "[policy]", f"# take-up of the offers, by product: {rates}"]
        lines += [f"{key} = {e.value:.6f}   # {note(e)}" for key, e in takeup["keys"].items()]
    elif takeup and takeup.get("note"):
        lines += ["", f"# {takeup['note']}"]
    card = found.get("scorecard")
    if card and card["keys"]:
        lines += ["", "[scorecard]"]
        how = ("refitted on the application features" if card["tape"]["features"] is not None
               else "the base's, recalibrated on the score: log-odds = a + b x the base's")
        lines.append(f"# {how}; each is the base's moved by the tape's fit minus the same fit on the tape's accounts "
                     f"simulated under the base")
        if card["recalibrated"] is not None:
            a, b = card["recalibrated"]["intercept"], card["recalibrated"]["slope"]
            lines.append(f"# recalibration: a = {a.value:.4f} ({note(a)}), b = {b.value:.4f} ({note(b)})")
        for key, e in card["keys"].items():
            lines.append(f"{key} = {e.value:.6f}" + (f"   # {note(e)}" if math.isfinite(e.se) else ""))
    lines += ["", "# Realised 12-month bad rate (90+ within 12 months on book) by score band:"]
    lines += [f"#   {band}: {e.value:.5f} ({note(e)})" for band, e in found["pd_by_band"].items()]
    return "\n".join(lines) + "\n"


def write_scenario(path: Path, text: str) -> None:
    """Write the calibrated scenario atomically, loaded (checked valid) before it is renamed into place:
    a scenario that is not valid is a ScenarioError naming `path` and the key, and nothing is written."""
    def fill(tmp: Path) -> None:
        tmp.write_text(text)
        try:
            load_scenario(tmp)
        except ScenarioError as exc:
            raise ScenarioError(str(path), exc.key, exc.what) from None

    files.write_atomic(Path(path), fill)
