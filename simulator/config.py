"""Scenario schema, loading, `--set` overrides and validation errors that name file and key."""
from __future__ import annotations

import copy
import itertools
import json
import math
import re
import sys
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator
from pydantic_core import PydanticCustomError

from .codes import KIND, KINDS, LINE, LOAN, METHODS, N_STATES, PAYER_TYPES, PRODUCTS
from .units import monthly_rate
INLINE_TABLES = {"applicants.product_mix", "applicants.also_requests"}  # replaced whole, not merged
FREE_TABLES = {"macro.paths", "sweep"}  # tables whose keys the user names
NAMED_TABLES = {"applicants.segments"}  # tables whose entries merge by name; the user may add new names
SWEEP_ALIASES = {"macro": "macro.path"}
RESERVED_DIMS = ("path", "month", "product", "score_band", "state", "quantile", "pnl_line", "pnl_yield_line",
                 "pnl_product", "vintage", "months_on_book", "stage", "transfer")
# Keys of earlier versions and where their figures live now.
MOVED = {
    "products.huabei.daily_rate": "policy.curve_aprs.huabei (the line's APR by score)",
    "products.yuefu.fee_per_period": "policy.curve_aprs.yuefu (the purchase's all-in APR by score)",
    "applicants.income_median": "applicants.segments.<name>.income_median (scorecard.income_reference for the scorecard)",
    "applicants.dti_mean": "applicants.segments.<name>.dti_mean",
    "applicants.tenure_mean_years": "applicants.segments.<name>.tenure_mean_years",
    "applicants.past_delinquency_mean": "applicants.segments.<name>.past_delinquency_mean",
    "applicants.jiebei.amount_median": "applicants.segments.<name>.loan_amount_median",
}
# Keys of earlier versions renamed in their table: still accepted, with a one-line notice.
RENAMED = {
    "products.yuefu.late_fee_daily": "products.yuefu.penalty_daily_rate",
    "products.yuefu.min_price": "products.yuefu.min_amount",
    "products.yuefu.max_price": "products.yuefu.max_amount",
}
# Keys a sweep cannot vary: they change the shape of the results or the random numbers the cells share.
UNSWEPT = {
    "run.paths": "the number of paths sets the path dimension",
    "run.horizon_months": "the horizon sets the month dimension",
    "run.seed": "the cells of a sweep share their random numbers (common random numbers)",
    "run.results": "the results mode sets which variables keep the path dimension",
    "applicants.origination_months": "the origination window sets the vintage dimension",
    "scorecard.bands": "the bands set the score_band dimension",
    "capital.quantiles": "the quantiles set the quantile dimension",
    "capital.importance_quantile": "the cells of a sweep share their factor paths (common random numbers)",
    "capital.month": "the capital month sets the importance-sampling shift the cells share",
}
# Keys a sweep cannot vary under importance sampling: they move the shift of the factor's
# innovations (tail.innovation_shift), so the cells' paths would have different weights.
IMPORTANCE_SHIFT_KEYS = {"factor.autocorrelation": "the factor's autocorrelation sets the importance-sampling shift"}


class ScenarioError(Exception):
    """Bad input: rendered as `error: <file>: <key>: <what>` with exit status 2."""

    def __init__(self, file: str, key: str, what: str):
        super().__init__(_one_line(f"{file}: {key}: {what}"))
        self.file, self.key, self.what = file, key, what


def _one_line(text: str) -> str:
    """Control characters escaped (a newline in a key, a value or a file name): an error is one line."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", lambda m: repr(m.group())[1:-1], text)


# Bounds that keep every amount and every sum of the results inside int64 cents with room to
# spare (docs/scenarios.md section 6): an amount of one account at most MAX_AMOUNT yuan.
MAX_AMOUNT = 1e8
SUMMARY_ABOVE_PATHS = 200   # run.results = "auto": full per-path results up to this many paths, a summary above
MAX_SIGMA = 3.0        # lognormal sigma of a requested amount (exp(3 x 8.3) x median stays finite)
MAX_HORIZON = 600      # months: the longest horizon, and the longest recovery lag and wait for a raise
MAX_SHIFT = 10.0       # standard deviations: a factor shift beyond this is no scenario
MAX_THREADS = 1024     # each thread keeps its own copy of a task's sums
MAX_BLOCK_SIZE = 2**31 - 1   # borrowers in a kernel block: a count that fits in int32
MAX_NAME = 100         # characters of a run name
MAX_SWEEP_CELLS = 10_000     # cells of one sweep: each is validated, prepared and run in turn


def check_count(value: int | None, name: str, least: int, most: int, file: str) -> None:
    """A whole number given outside a scenario (`--threads`, `--paths`), None for not given, in [least, most]."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most):
        raise ScenarioError(file, name, f"expected a whole number from {least} to {most:,}, found {value!r}")


def _not_percent(limit: float, example: str):
    """A rate that is a fraction: a value above `limit` is only plausible as a percent."""
    def check(value: float) -> float:
        if value > limit:
            raise PydanticCustomError("percent", f"expected a fraction such as {example} (rates and shares are "
                                                 f"fractions, not percent), found {value!r}")
        return value
    return AfterValidator(check)


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]
Amount = Annotated[float, Field(ge=0.0, le=MAX_AMOUNT)]            # yuan
PositiveAmount = Annotated[float, Field(gt=0.0, le=MAX_AMOUNT)]    # yuan
Sigma = Annotated[float, Field(ge=0.0, le=MAX_SIGMA)]
Shift = Annotated[float, Field(ge=-MAX_SHIFT, le=MAX_SHIFT)]       # standard deviations of the factor
MAX_ANNUAL_RATE = 5.0   # a year (500%): above this a rate is only plausible as a percent
MAX_DAILY_RATE = 0.01   # a day (1%)
MAX_PERIOD_FEE = 0.2    # a period, as a share of the price (20%)
AnnualRate = Annotated[float, Field(ge=0.0), _not_percent(MAX_ANNUAL_RATE, "0.36")]
DailyRate = Annotated[float, Field(ge=0.0), _not_percent(MAX_DAILY_RATE, "0.0005")]
PeriodFee = Annotated[float, Field(ge=0.0), _not_percent(MAX_PERIOD_FEE, "0.0075")]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class ByProductSection(Section):
    """A section with one entry per product (`_by_product`)."""

    def of_kind(self, kind: int) -> list:
        """The entries of the products of `kind` (codes.KINDS), in codes.PRODUCTS order."""
        return [getattr(self, name) for name, k in zip(PRODUCTS, KIND) if k == kind]

    def line(self):
        """The revolving line's entry: the kernel runs one line product, whose terms it holds as scalars."""
        (line,) = self.of_kind(LINE)
        return line


def _by_product(name: str, doc: str, of_kind: tuple, base: type[Section] = ByProductSection) -> type[Section]:
    """A section (a subclass of `base`) with one key per product, in codes.PRODUCTS order, each of
    the type `of_kind[kind]` of the product's kind: a product of an existing kind needs no new class."""
    return create_model(name, __base__=base, __doc__=doc, __module__=__name__,
                        **{product: (of_kind[kind], ...) for product, kind in zip(PRODUCTS, KIND)})


class Run(Section):
    name: str
    seed: Annotated[int, Field(ge=0, lt=2**63)]
    paths: Annotated[int, Field(ge=1)]
    horizon_months: Annotated[int, Field(ge=1, le=MAX_HORIZON)]
    results: Literal["auto", "full", "summary"]

    @model_validator(mode="after")
    def _check(self):
        # The default output folder is reports/<name>: "..", "/abs" or "a/b" would put it elsewhere.
        if self.name in (".", "..") or not re.fullmatch(rf"[A-Za-z0-9_.-]{{1,{MAX_NAME}}}", self.name):
            raise ValueError(f"name: expected one plain folder name inside reports/ (letters, digits, _ - and ., "
                             f"at most {MAX_NAME} characters, not . or ..), found {show_value(self.name)}")
        return self

    def summary(self) -> bool:
        """Whether the results keep per path only what the tail needs (`results`; auto: above
        SUMMARY_ABOVE_PATHS paths)."""
        return self.results == "summary" or (self.results == "auto" and self.paths > SUMMARY_ABOVE_PATHS)


class Engine(Section):
    block_size: Annotated[int, Field(ge=1, le=MAX_BLOCK_SIZE)]
    threads: Annotated[int, Field(ge=0, le=MAX_THREADS)]
    task_paths: Annotated[int, Field(ge=1)]
    task_borrowers: Annotated[int, Field(ge=1)]


class LoanRequests(Section):
    """What applicants ask for of a cash loan (the amount's median is by segment)."""
    amount_sigma: Sigma
    terms: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]
    term_shares: list[Fraction]
    methods: Annotated[list[Literal[METHODS]], Field(min_length=1)]
    method_shares: list[Fraction]

    @model_validator(mode="after")
    def _shares(self):
        _check_shares("terms", self.terms, "term_shares", self.term_shares)
        _check_shares("methods", self.methods, "method_shares", self.method_shares)
        return self


def _check_shares(name: str, values: list, share_name: str, shares: list[float]) -> None:
    if len(values) != len(shares):
        raise ValueError(f"{share_name}: expected {len(values)} values (one per entry of {name}), found {len(shares)}")
    if not math.isclose(sum(shares), 1.0, abs_tol=1e-9):
        raise ValueError(f"{share_name}: expected shares summing to 1, found {sum(shares):g}")


class LineRequests(Section):
    """What a revolving line's holders spend."""
    spend_median: PositiveAmount
    spend_sigma: Sigma


class PlanRequests(Section):
    """What applicants ask for of an instalment purchase plan."""
    price_median: PositiveAmount
    price_sigma: Sigma
    tenors: Annotated[list[Annotated[int, Field(ge=1, le=360)]], Field(min_length=1)]
    tenor_shares: list[Fraction]
    promotion_share: Fraction

    @model_validator(mode="after")
    def _shares(self):
        _check_shares("tenors", self.tenors, "tenor_shares", self.tenor_shares)
        return self


class Segment(Section):
    """Applicants of one acquisition channel: their share and the marginals that differ by channel."""
    share: Fraction
    income_median: PositiveAmount
    dti_mean: Annotated[float, Field(gt=0.0, lt=1.0)]
    tenure_mean_years: Positive
    past_delinquency_mean: NonNegative
    loan_amount_median: PositiveAmount
    price_sensitivity: NonNegative


class _Applicants(ByProductSection):
    """The keys of `[applicants]` but its sections by product (`Applicants` adds those)."""
    monthly_volume: Annotated[int, Field(ge=0, le=100_000_000)]
    origination_months: Annotated[int, Field(ge=1)]
    verification_fail_rate: Fraction
    product_mix: dict[Literal[PRODUCTS], Fraction]
    also_requests: dict[Literal[PRODUCTS], Fraction]
    segments: Annotated[dict[str, Segment], Field(min_length=1)]
    income_sigma: Sigma
    dti_sd: Annotated[float, Field(gt=0.0, lt=0.5)]   # the sd of a beta marginal on (0, 1) is below 0.5
    age_mean: Positive
    age_sd: NonNegative
    age_min: NonNegative
    age_max: Positive
    correlation: list[list[Annotated[float, Field(ge=-1.0, le=1.0)]]]

    @model_validator(mode="after")
    def _check(self):
        if not math.isclose(sum(self.product_mix.values()), 1.0, abs_tol=1e-9):
            raise ValueError(f"product_mix: expected shares summing to 1, found {sum(self.product_mix.values()):g}")
        if len(self.correlation) != 5 or any(len(row) != 5 for row in self.correlation):
            raise ValueError("correlation: expected a 5 x 5 matrix (income, dti, age, tenure, past delinquencies)")
        import numpy as np

        c = np.array(self.correlation)
        if not np.allclose(c, c.T) or not np.allclose(np.diag(c), 1.0):
            raise ValueError("correlation: expected a symmetric matrix with ones on the diagonal")
        if np.linalg.eigvalsh(c).min() <= 0:
            raise ValueError("correlation: expected a positive definite matrix")
        shares = sum(s.share for s in self.segments.values())
        if not math.isclose(shares, 1.0, abs_tol=1e-9):
            raise ValueError(f"segments: expected shares summing to 1, found {shares:g}")
        for name, seg in self.segments.items():
            if self.dti_sd**2 >= seg.dti_mean * (1 - seg.dti_mean):
                raise ValueError(f"dti_sd: expected dti_sd^2 < dti_mean * (1 - dti_mean) of every segment "
                                 f"(a beta distribution), found {self.dti_sd:g} against segments.{name}.dti_mean")
        if self.age_min >= self.age_max:
            raise ValueError("age_min: expected age_min < age_max")
        return self


Applicants = _by_product("Applicants", "The applicants, and what they ask for of each product (by its kind).",
                         (LineRequests, LoanRequests, PlanRequests), _Applicants)


class Book(Section):
    file: str


class Scorecard(Section):
    base_score: float
    base_odds: Positive
    pdo: Positive
    income_reference: PositiveAmount
    intercept: float
    coef_income: float
    coef_dti: float
    coef_age: float
    coef_tenure: float
    coef_past_delinquencies: float
    model_error_sd: NonNegative
    bands: Annotated[list[float], Field(min_length=1)]

    @model_validator(mode="after")
    def _check(self):
        if any(b <= a for a, b in zip(self.bands, self.bands[1:])):
            raise ValueError("bands: expected strictly increasing cut points")
        return self


CurveAprs = _by_product("CurveAprs", "Each product's price (all-in APR) at the curve scores.",
                        (Annotated[list[AnnualRate], Field(min_length=1)],) * len(KINDS))


class Policy(Section):
    cutoff_score: float
    max_dti: Annotated[float, Field(ge=0.0), _not_percent(1.0, "0.65")]
    max_past_delinquencies: Annotated[int, Field(ge=0)]
    pricing: Literal["curve", "risk_based"]
    curve_scores: Annotated[list[float], Field(min_length=1)]
    curve_aprs: CurveAprs
    risk_margin: Annotated[float, Field(ge=-MAX_ANNUAL_RATE), _not_percent(MAX_ANNUAL_RATE, "0.04")]   # a year
    apr_cap: AnnualRate
    on_cap: Literal["cap", "reject"]
    limit_income_multiple: Positive
    limit_score_slope: float
    max_total_limit: PositiveAmount
    limit_order: list[Literal[PRODUCTS]]
    takeup_base: Annotated[float, Field(gt=0.0, lt=1.0)]
    takeup_reference_apr: AnnualRate
    price_sensitivity: NonNegative
    sensitivity_score_slope: float
    takeup_risk_tilt: float

    @model_validator(mode="after")
    def _check(self):
        for product in PRODUCTS:
            n = len(getattr(self.curve_aprs, product))
            if n not in (1, len(self.curve_scores)):
                raise ValueError(f"curve_aprs.{product}: expected {len(self.curve_scores)} values (one per curve "
                                 f"score) or one (a flat price), found {n}")
        if any(b <= a for a, b in zip(self.curve_scores, self.curve_scores[1:])):
            raise ValueError("curve_scores: expected strictly increasing scores")
        if sorted(self.limit_order) != sorted(PRODUCTS):
            raise ValueError(f"limit_order: expected each of {', '.join(PRODUCTS)} once, found {self.limit_order}")
        return self


def _check_order(model: BaseModel, low: str, high: str) -> None:
    if getattr(model, low) > getattr(model, high):
        raise ValueError(f"{low}: expected {low} <= {high}")


class Line(Section):
    """A revolving line's terms (`[products.<line>]`)."""
    min_limit: PositiveAmount
    max_limit: PositiveAmount
    initial_limit_share: Annotated[float, Field(gt=0.0, le=1.0)]
    days_per_year: Positive
    min_payment_share: Annotated[float, Field(gt=0.0, le=1.0)]
    min_payment_floor: Amount
    spend_probability: Fraction
    attrition: Fraction
    penalty_daily_rate: DailyRate
    instalment_tenors: Annotated[list[Annotated[int, Field(ge=2, le=60)]], Field(min_length=1)]
    instalment_fees: list[PeriodFee]
    instalment_tenor_shares: list[Fraction]
    conversion_rate: Fraction
    min_conversion: Amount
    limit_cut_on_miss: Fraction
    limit_raise: Annotated[float, Field(ge=0.0), _not_percent(1.0, "0.10")]
    raise_after_months: Annotated[int, Field(ge=1, le=MAX_HORIZON)]
    risk_multiplier: Positive

    @model_validator(mode="after")
    def _check(self):
        _check_order(self, "min_limit", "max_limit")
        if len(self.instalment_fees) != len(self.instalment_tenors):
            raise ValueError(f"instalment_fees: expected {len(self.instalment_tenors)} values (one per tenor), "
                             f"found {len(self.instalment_fees)}")
        _check_shares("instalment_tenors", self.instalment_tenors, "instalment_tenor_shares",
                      self.instalment_tenor_shares)
        return self


class InstalmentTerms(Section):
    """Terms shared by the products repaid in monthly instalments (a cash loan, a purchase plan)."""
    days_per_year: Positive
    prepayment: bool
    risk_multiplier: Positive


class Plan(InstalmentTerms):
    """An instalment purchase plan's terms (`[products.<plan>]`); its amount is the price."""
    min_amount: PositiveAmount
    max_amount: PositiveAmount
    tenors: Annotated[list[Annotated[int, Field(ge=1, le=60)]], Field(min_length=1)]
    merchant_discount: Fraction
    penalty_daily_rate: DailyRate

    @model_validator(mode="after")
    def _check(self):
        _check_order(self, "min_amount", "max_amount")
        return self


class Loan(InstalmentTerms):
    """A cash loan's terms (`[products.<loan>]`)."""
    min_amount: PositiveAmount
    max_amount: PositiveAmount
    terms: Annotated[list[Annotated[int, Field(ge=1, le=360)]], Field(min_length=1)]
    daily_rate_min: DailyRate
    daily_rate_max: DailyRate
    penalty_daily_rate: DailyRate
    late_fee: Amount

    @model_validator(mode="after")
    def _check(self):
        _check_order(self, "min_amount", "max_amount")
        _check_order(self, "daily_rate_min", "daily_rate_max")
        return self


Products = _by_product("Products", "Each product's terms, by its kind.", (Line, Loan, Plan))


class Behaviour(Section):
    roll_rates: Annotated[list[Fraction], Field(min_length=N_STATES - 1, max_length=N_STATES - 1)]  # M1->M2 .. M6->off
    prepay_monthly: Fraction
    recovery_rate: Fraction
    recovery_lag_months: Annotated[int, Field(ge=1, le=MAX_HORIZON)]
    collection_cost: Fraction
    fraud_rate: Fraction
    payer_shares: Annotated[list[Fraction], Field(min_length=len(PAYER_TYPES), max_length=len(PAYER_TYPES))]
    payer_reference_pd: Annotated[float, Field(gt=0.0, lt=1.0)]
    payer_risk_slope: float
    revolver_pay_share: Fraction

    @model_validator(mode="after")
    def _check(self):
        _check_shares("payer types", list(PAYER_TYPES), "payer_shares", self.payer_shares)
        return self


class Factor(Section):
    asset_correlation: Annotated[float, Field(ge=0.0, lt=1.0)]
    roll_correlation: Annotated[float, Field(ge=0.0, lt=1.0)]
    autocorrelation: Annotated[float, Field(ge=-1.0, le=1.0)]
    borrower_correlation: Annotated[float, Field(ge=0.0, lt=1.0)]

    @model_validator(mode="after")
    def _check(self):
        if self.asset_correlation + self.borrower_correlation >= 1.0:
            raise ValueError("borrower_correlation: expected asset_correlation + borrower_correlation < 1")
        return self


class MacroPath(Section):
    shift: list[Shift] = []
    unemployment: list[Annotated[float, Field(ge=0.0, le=100.0)]] = []
    prepay_sensitivity: Annotated[float, Field(ge=-5.0, le=5.0)] | None = None   # None: macro.prepay_sensitivity

    @model_validator(mode="after")
    def _check(self):
        if self.shift and self.unemployment:
            raise ValueError("unemployment: expected either shift or unemployment, found both")
        return self


class Macro(Section):
    path: str
    shift: list[Shift]
    prepay_sensitivity: Annotated[float, Field(ge=-5.0, le=5.0)]
    unemployment_reference: Annotated[float, Field(ge=0.0, le=100.0)]
    unemployment_sensitivity: float
    paths: dict[str, MacroPath]

    @model_validator(mode="after")
    def _check(self):
        if self.path and self.path not in self.paths:
            raise ValueError(f"path: expected one of the named paths {sorted(self.paths)}, found {self.path!r}")
        if self.path and self.shift:
            raise ValueError("shift: expected either macro.path or macro.shift, found both")
        shift = self.monthly_shift()
        worst = max(range(len(shift)), key=lambda t: abs(shift[t]), default=None)
        if worst is not None and not abs(shift[worst]) <= MAX_SHIFT:   # only unemployment is not bounded already
            u = self.paths[self.path].unemployment[worst]
            raise ValueError(f"paths.{self.path}.unemployment: expected unemployment that maps to a factor shift "
                             f"within +-{MAX_SHIFT:g} sd, found {shift[worst]:.4g} sd in month {worst + 1} "
                             f"(-macro.unemployment_sensitivity x (unemployment - macro.unemployment_reference) = "
                             f"-{self.unemployment_sensitivity:g} x ({u:g} - {self.unemployment_reference:g}))")
        return self

    def monthly_shift(self) -> list[float]:
        """The factor shift a month (standard deviations) of the path in force; unemployment u maps to
        -unemployment_sensitivity x (u - unemployment_reference). A named path longer than the
        horizon is cut by the caller."""
        if not self.path:
            return list(self.shift)
        named = self.paths[self.path]
        if named.unemployment:
            return [-self.unemployment_sensitivity * (u - self.unemployment_reference) for u in named.unemployment]
        return list(named.shift)

    def prepay_in_force(self) -> float:
        """The prepayment sensitivity of the path in force: the named path's own, else prepay_sensitivity."""
        named = self.paths.get(self.path) if self.path else None
        if named is not None and named.prepay_sensitivity is not None:
            return named.prepay_sensitivity
        return self.prepay_sensitivity


class Funding(Section):
    cost_of_funds: AnnualRate


class Capital(Section):
    quantiles: Annotated[list[Annotated[float, Field(gt=0.0, lt=1.0)]], Field(min_length=1)]
    economic_capital_level: Annotated[float, Field(gt=0.0, lt=1.0)]
    importance_quantile: float
    month: Annotated[int, Field(ge=0)]
    line_ccf: Fraction
    irb_confidence: Annotated[float, Field(gt=0.0, lt=1.0)]
    irb_revolving_correlation: Annotated[float, Field(gt=0.0, lt=1.0)]
    pd_floor: Fraction

    @model_validator(mode="after")
    def _check(self):
        if self.importance_quantile != 0.0 and not 0.5 <= self.importance_quantile < 1.0:
            raise ValueError(f"importance_quantile: expected 0 (plain Monte Carlo) or a quantile from 0.5 to below 1, "
                             f"found {self.importance_quantile:g}")
        return self


ByProduct = _by_product("ByProduct", "An amount in yuan for each product.", (Amount,) * len(KINDS))


class Costs(Section):
    acquisition: ByProduct       # yuan per account booked
    servicing: ByProduct         # yuan per open account a month
    collection: ByProduct        # yuan per delinquent (M1 .. M6) account a month


class Provisions(Section):
    basis: Literal["through_the_cycle", "point_in_time"]
    line_life_months: Annotated[int, Field(ge=12, le=120)]


class Scenario(Section):
    run: Run
    engine: Engine
    applicants: Applicants
    book: Book
    scorecard: Scorecard
    policy: Policy
    products: Products
    behaviour: Behaviour
    factor: Factor
    macro: Macro
    funding: Funding
    capital: Capital
    provisions: Provisions
    costs: Costs
    sweep: dict[str, Annotated[list[Any], Field(min_length=1)]]

    @model_validator(mode="after")
    def _check(self):
        if len(self.macro.shift) > self.run.horizon_months:
            raise ValueError(f"macro.shift: expected at most horizon_months = {self.run.horizon_months} values, "
                             f"found {len(self.macro.shift)}")
        pol = self.policy
        for name in [name for name, kind in zip(PRODUCTS, KIND) if kind == LINE]:
            line, top = getattr(self.products, name), max(getattr(pol.curve_aprs, name))
            monthly = monthly_rate(min(top, pol.apr_cap) if pol.on_cap == "cap" else top)
            if line.min_payment_share < monthly / (1 + monthly):
                # A smaller minimum would repay a minimum payer's principal more slowly than interest accrues on it.
                raise ValueError(f"products.{name}.min_payment_share: expected at least the highest monthly revolving "
                                 f"rate r / (1 + r) = {monthly / (1 + monthly):.4f} (policy.curve_aprs.{name}), "
                                 f"found {line.min_payment_share:g}")
        if self.capital.month >= max(1, self.run.horizon_months):
            raise ValueError(f"capital.month: expected 0 (the default month) or a month before the horizon's last, "
                             f"1 .. {self.run.horizon_months - 1}, found {self.capital.month}")
        for name, kind in zip(PRODUCTS, KIND):
            if kind == LINE:        # a line has no schedule
                continue
            key = "terms" if kind == LOAN else "tenors"
            offered = getattr(getattr(self.products, name), key)
            bad = [t for t in getattr(getattr(self.applicants, name), key) if t not in offered]
            if bad:
                raise ValueError(f"applicants.{name}.{key}: expected {key} offered in products.{name}.{key}, "
                                 f"found {bad[0]}")
        return self


class LoadedScenario:
    """A validated scenario with where it came from: file, text, overrides, the resolved values,
    and its sweep: `dims` (name, scenario key, values) and one validated scenario per cell."""

    def __init__(self, scenario: Scenario, path: Path, text: str, overrides: list[str],
                 dims: list[tuple[str, str, list]] | None = None, cells: list[Scenario] | None = None,
                 sources: list[Path] | None = None):
        self.scenario, self.path, self.text, self.overrides = scenario, path, text, overrides
        self.dims = dims or []
        self.cells = cells or [scenario]
        self.sources = sources or [path]   # the scenario file and every file it extends

    def resolved(self) -> dict:
        return self.scenario.model_dump(mode="json", exclude_none=True)

    def book_path(self, scenario: Scenario | None = None) -> Path | None:
        """The existing book's file of the scenario (or of one sweep cell), relative to the scenario file."""
        file = (scenario or self.scenario).book.file
        if not file:
            return None
        p = Path(file)
        return p if p.is_absolute() else (self.path.parent / p)

    def book_paths(self) -> list[Path]:
        """The book files of all the sweep's cells, each once."""
        return list(dict.fromkeys(p for p in map(self.book_path, self.cells) if p is not None))


def defaults() -> dict:
    """The default scenario as a nested dict (from the shipped defaults.toml)."""
    text = resources.files("simulator").joinpath("defaults.toml").read_text()
    return tomllib.loads(text)


def _renamed(key: str, file: str) -> str:
    """A dotted key by its name in this version: a key RENAMED lists gets its new name, with a
    one-line notice on stderr."""
    new = RENAMED.get(key, key)
    if new != key:
        print(_one_line(f"notice: {file}: {key} is now {new}"), file=sys.stderr)
    return new


def rename_keys(tree: dict, file: str, notice: bool = True) -> None:
    """The keys of a scenario's tree that RENAMED lists, under their new names (with `notice`, each
    said on stderr: `_renamed`); a table that gives both names is an error naming both."""
    for old, new in RENAMED.items():
        *tables, key = old.split(".")
        table = tree
        for part in tables:
            table = table.get(part) if isinstance(table, dict) else None
        if isinstance(table, dict) and key in table:
            renamed = new.rsplit(".", 1)[1]      # a key is renamed within its table
            if renamed in table:
                raise ScenarioError(file, old, f"expected either {old} or {new} (its new name), found both")
            table[renamed] = table.pop(key)
            if notice:
                _renamed(old, file)


def _merge(base: dict, update: dict, prefix: str, file: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if prefix.rstrip(".") in FREE_TABLES:  # user-named entries replace a default of that name
            out[key] = copy.deepcopy(value)
            continue
        if prefix.rstrip(".") in NAMED_TABLES and key not in out:  # a new entry, checked by the schema
            out[key] = copy.deepcopy(value)
            continue
        if key not in out:
            raise ScenarioError(file, dotted, f"unknown key; now {MOVED[dotted]}" if dotted in MOVED else "unknown key")
        if isinstance(out[key], dict) and f"{prefix}{key}" not in INLINE_TABLES:
            if not isinstance(value, dict):
                raise ScenarioError(file, dotted, f"expected a table, found {show_value(value)}")
            out[key] = _merge(out[key], value, dotted + ".", file)
        else:
            out[key] = value
    return out


def show_value(value: Any) -> str:
    """A value as an error message shows it (strings quoted, TOML-like)."""
    return json.dumps(value) if isinstance(value, (str, list, dict, bool)) else repr(value)


def parse_override(item: str, file: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (["a","b","c"], value): key and value in TOML syntax (quoted key parts
    such as sweep."policy.apr_cap" allowed); a value that is not TOML is taken as a string."""
    if "=" not in item:
        raise ScenarioError(file, item, "expected --set KEY=VALUE")
    key, raw = (part.strip() for part in item.split("=", 1))
    parts = _key_parts(key, file)
    if "\n" in raw or "\r" in raw:   # TOML would read the next line as a key of its own, and it would be lost
        raise ScenarioError(file, key, f"expected one TOML value on one line (one --set for each key), found a "
                                       f"line break in {show_value(raw)}")
    try:
        tree = tomllib.loads(f"{key} = {raw}")
    except tomllib.TOMLDecodeError:
        try:
            tree = tomllib.loads(f"{key} = {_toml_value(raw)}")   # not TOML: a bare word, taken as a string
        except tomllib.TOMLDecodeError:
            raise ScenarioError(file, key, f"expected a TOML value, found {show_value(raw)}") from None
    for part in parts:
        tree = tree[part]
    return parts, tree


KEY_PROBE = 0x5CE0A1   # a value no key's text can end in: `KEY = 0x5CE0A1` reads back as one key and this value


def _key_parts(key: str, file: str) -> list[str]:
    """The parts of one TOML dotted key on one line (quoted parts such as "policy.apr_cap" allowed)."""
    try:
        node = tomllib.loads(f"{key} = {KEY_PROBE:#x}") if "\n" not in key and "\r" not in key else None
    except tomllib.TOMLDecodeError:
        node = None
    parts = []
    while isinstance(node, dict) and len(node) == 1:
        (part, node), = node.items()
        parts.append(part)
    if node != KEY_PROBE:
        raise ScenarioError(file, key or '""', "expected a dotted key such as run.paths")
    return parts


def _apply_override(tree: dict, parts: list[str], value: Any) -> None:
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ScenarioError("", ".".join(parts), "not a table")
    node[parts[-1]] = value


def pydantic_message(err: dict) -> tuple[str, str]:
    """(dotted key, what was expected and found) of a pydantic validation error."""
    loc = [str(p) for p in err["loc"] if not isinstance(p, int) and p != "[key]"]
    idx = [p for p in err["loc"] if isinstance(p, int)]
    key = ".".join(loc)
    msg = err["msg"]
    if msg.startswith("Value error, "):
        # Our own validators say "<key>: expected ..., found ..."
        text = msg[len("Value error, "):]
        sub, _, what = text.partition(": ")
        return (f"{key}.{sub}" if key else sub), what
    if idx:
        key = f"{key}[{idx[0]}]"
    if err["type"] == "extra_forbidden":
        return key, "unknown key"
    if err["type"] == "percent":
        return key, msg
    if err["type"] == "missing":
        return key, "missing"
    if err["type"] in ("too_short", "too_long"):
        ctx = err.get("ctx", {})
        n = ctx.get("min_length") if err["type"] == "too_short" else ctx.get("max_length")
        bound = "at least" if err["type"] == "too_short" else "at most"
        return key, f"expected {bound} {n} values, found {ctx.get('actual_length', len(err.get('input') or []))}"
    expected = msg[len("Input should be "):] if msg.startswith("Input should be ") else msg[0].lower() + msg[1:]
    return key, f"expected {expected}, found {show_value(err.get('input'))}"


MAX_SCENARIO_BYTES = 1 << 20   # a scenario file larger than this is not a scenario
MAX_EXTENDS = 16               # files in one chain of `extends`


def read_toml(path: Path, file: str) -> tuple[dict, str]:
    """A TOML file's tree and text (a scenario or a mapping file); every way it can be unreadable is
    a one-line ScenarioError naming `file`."""
    try:
        if not path.exists():
            if path.is_symlink():
                raise ScenarioError(file, "-", "expected a scenario file, found a symbolic link that leads to no file "
                                               "(a loop of links, or a missing target)")
            raise ScenarioError(file, "-", "file not found")
        if not path.is_file():
            raise ScenarioError(file, "-", "expected a regular file, found a directory or a device")
        if path.stat().st_size > MAX_SCENARIO_BYTES:
            raise ScenarioError(file, "-", f"expected a file of at most {MAX_SCENARIO_BYTES:,} bytes, found "
                                           f"{path.stat().st_size:,}")
        raw = path.read_bytes()
    except (OSError, ValueError) as exc:   # no permission, a name too long, a NUL character
        raise ScenarioError(file, "-", f"cannot read the file ({exc.__class__.__name__})") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ScenarioError(file, "-", "expected UTF-8 TOML without a byte-order mark, found one (save the file "
                                       "as UTF-8 without BOM)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(file, "-", "expected UTF-8 text, found bytes that are not") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(file, "-", f"expected valid TOML, found a syntax error ({exc})") from None


def _read_with_parents(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict, str, list[Path]]:
    """The file's tree merged over the file it `extends` (recursively), the texts of all, and their paths."""
    file = str(path)
    tree, text = read_toml(path, file)
    rename_keys(tree, file)
    parent = tree.pop("extends", None)
    if parent is None:
        return tree, text, [path]
    if not isinstance(parent, str) or not parent:
        raise ScenarioError(file, "extends", f"expected the path of a scenario file, found {show_value(parent)}")
    try:
        parent_path, here = (path.parent / parent).resolve(), path.resolve()
    except (OSError, RuntimeError, ValueError):   # a loop of symbolic links (RuntimeError before Python 3.13), a NUL
        raise ScenarioError(file, "extends", f"expected a scenario file, found {show_value(parent)}, a path that cannot be "
                                             f"followed (a loop of symbolic links?)") from None
    if parent_path in seen or parent_path == here:
        raise ScenarioError(file, "extends", f"expected no cycle of extends, found {parent} again")
    if len(seen) + 1 >= MAX_EXTENDS:
        raise ScenarioError(file, "extends", f"expected a chain of at most {MAX_EXTENDS} files, found a longer one")
    if not parent_path.is_file():
        raise ScenarioError(file, "extends", f"expected a scenario file, found no file {parent!r} relative to "
                                             f"{path.parent.resolve()}")
    base, base_text, sources = _read_with_parents(parent_path, seen + (here,))
    merged = _merge_user(base, tree)
    return merged, f"{text}\n# ---- extends {parent} ----\n{base_text}", [path, *sources]


def _merge_user(base: dict, update: dict, prefix: str = "") -> dict:
    """A child scenario's tables over its parent's (no schema check: that comes after the defaults)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(out.get(key), dict) and dotted not in INLINE_TABLES \
                and dotted != "sweep":
            out[key] = _merge_user(out[key], value, dotted + ".")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _validate(tree: dict, file: str, where: str = "") -> Scenario:
    try:
        return Scenario.model_validate(tree)
    except ValidationError as exc:
        key, what = pydantic_message(exc.errors()[0])
        raise ScenarioError(file, key, f"{what}{where}") from None


def sweep_dimension(key: str) -> str:
    """The results dimension of a swept key: its last part (`policy.apr_cap` -> `apr_cap`)."""
    return key.rsplit(".", 1)[-1]


def _override_items(overrides: list[str] | dict[str, Any] | None, file: str) -> list[tuple[str, list[str], Any]]:
    """(as `--set` writes it, key parts, value) of each override: `--set` strings, or a mapping of
    dotted keys to values."""
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        items = []
        for key, value in overrides.items():
            parts = _key_parts(str(key), file)
            try:  # through TOML, as `--set` would read it: numpy scalars become numbers, tuples lists
                written = _toml_value(list(value) if isinstance(value, tuple) else value)
                value = tomllib.loads(f"x = {written}")["x"]
            except (tomllib.TOMLDecodeError, TypeError, AttributeError):
                raise ScenarioError(file, key, f"expected a TOML value (number, string, bool, list or table), "
                                               f"found {value!r}") from None
            items.append((f"{key}={written}", parts, value))
        return items
    if isinstance(overrides, str):
        raise ScenarioError(file, "overrides", "expected a list of KEY=VALUE strings or a dict, found one string")
    return [(item, *parse_override(item, file)) for item in overrides]


def load_scenario(path: str | Path, overrides: list[str] | dict[str, Any] | None = None) -> LoadedScenario:
    """Read (with the files it extends), merge over the defaults, apply overrides (`--set` strings
    such as "run.paths=50", or a dict such as {"run.paths": 50}), validate, and validate every cell
    of its sweep."""
    path = Path(path)
    file = str(path)
    user, text, sources = _read_with_parents(path)
    items = _override_items(overrides, file)
    overrides = [item for item, _, _ in items]
    for _, parts, value in items:
        if ".".join(parts) in RENAMED:
            parts = _renamed(".".join(parts), file).split(".")
        try:
            _apply_override(user, parts, value)
        except ScenarioError as exc:
            raise ScenarioError(file, exc.key, exc.what) from None
    rename_keys(user, file)      # in a table given whole by an override
    tree = _merge(defaults(), user, "", file)
    sweep = tree.pop("sweep")
    scenario = _validate(tree | {"sweep": {}}, file)
    if sweep:
        _validate(tree | {"sweep": sweep}, file)  # shapes of the sweep table itself
        n_cells = math.prod(len(values) for values in sweep.values())
        if n_cells > MAX_SWEEP_CELLS:
            raise ScenarioError(file, "sweep", f"expected at most {MAX_SWEEP_CELLS:,} sweep cells, found {n_cells:,} "
                                               f"({' x '.join(str(len(v)) for v in sweep.values())} values)")
    held = scenario.model_dump()
    dims, names = [], set()
    for key, values in sweep.items():
        target = SWEEP_ALIASES.get(key, key)
        if RENAMED.get(target) in sweep:
            raise ScenarioError(file, f"sweep.{key}", f"expected either {target} or {RENAMED[target]} (its new name), "
                                                      f"found both")
        target = _renamed(target, file)
        node, typed = tree, held
        for part in target.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ScenarioError(file, f"sweep.{key}", f"expected a scenario key such as policy.apr_cap, found {key!r}")
            node, typed = node[part], typed[part]
        if isinstance(node, dict):
            raise ScenarioError(file, f"sweep.{key}", "expected a key holding a value, found a table")
        if target in UNSWEPT:
            raise ScenarioError(file, f"sweep.{key}", f"expected a key that keeps the results' shape and random "
                                                      f"numbers; {UNSWEPT[target]}: run it as separate runs")
        if target in IMPORTANCE_SHIFT_KEYS and scenario.capital.importance_quantile > 0:
            raise ScenarioError(file, f"sweep.{key}", f"expected a key that keeps the paths' weights: with "
                                                      f"capital.importance_quantile > 0, {IMPORTANCE_SHIFT_KEYS[target]}, "
                                                      f"which the cells share (one path_weight): run it as separate runs")
        if any(isinstance(v, (list, dict)) for v in values):
            raise ScenarioError(file, f"sweep.{key}", "expected single values (numbers, strings or booleans), "
                                                      "found a list or table among them")
        given, values = values, [_as_held(v, typed) for v in values]
        seen = set()
        for v in values:
            if json.dumps(v) in seen:
                raise ScenarioError(file, f"sweep.{key}", f"expected distinct values, found {show_value(v)} more than once "
                                                          f"in {show_value(list(given))}")
            seen.add(json.dumps(v))
        if target == "applicants.monthly_volume" and 0 in values and any(v != 0 for v in values):
            raise ScenarioError(file, f"sweep.{key}", "expected volumes all above 0 (a volume of 0 has no vintages, "
                                                      "so the cells' shapes differ)")
        name = sweep_dimension(target) if key not in SWEEP_ALIASES else key
        if name in names or name in RESERVED_DIMS:
            raise ScenarioError(file, f"sweep.{key}", f"expected a dimension name not used already, found {name}")
        names.add(name)
        dims.append((name, target, values))
    cells, wheres = [], []
    for combo in itertools.product(*(values for _, _, values in dims)) if dims else ():
        cell = copy.deepcopy(tree)
        for (name, target, _), value in zip(dims, combo):
            _apply_override(cell, target.split("."), value)
        wheres.append(" (sweep cell " + ", ".join(f"{n}={show_value(v)}" for (n, _, _), v in zip(dims, combo)) + ")")
        cells.append(_validate(cell | {"sweep": {}}, file, wheres[-1]))
    loaded = LoadedScenario(scenario, path, text, overrides, dims, cells or None, sources)
    for sc, where in zip(loaded.cells, wheres or [""]):
        _check_book(loaded.book_path(sc), file, where)
    return loaded


def _as_held(value: Any, held: Any) -> Any:
    """A swept value as its key holds it once validated: an integer swept over a float key is that
    float (560 and 560.0 are one cutoff)."""
    if isinstance(held, float) and isinstance(value, int) and not isinstance(value, bool) \
            and abs(value) <= sys.float_info.max:
        return float(value)
    return value


def _check_book(path: Path | None, file: str, where: str) -> None:
    """The book file of a scenario or sweep cell is there, a regular file (its rows are read later)."""
    if path is None:
        return
    try:
        found = "" if path.is_file() else "a directory or a device" if path.exists() else "no file"
    except (OSError, ValueError):   # a name too long, a NUL character
        found = "a path that cannot be opened"
    if found:
        raise ScenarioError(file, "book.file", f"expected a book file (CSV or Parquet) that exists, found {found} "
                                               f"at {path}{where}")


def to_toml(tree: dict, prefix: tuple[str, ...] = ()) -> str:
    """A small TOML writer for the resolved scenario (tables, scalars, lists, inline dicts): it reads
    back as the same tree, whatever the names of its tables and keys."""
    scalars, tables = [], []
    for key, value in tree.items():
        if isinstance(value, dict) and ".".join((*prefix, key)) not in INLINE_TABLES:
            tables.append((key, value))
        else:
            scalars.append(f"{_toml_key(key)} = {_toml_value(value)}")
    out = []
    if scalars:
        if prefix:
            out.append(f"[{'.'.join(map(_toml_key, prefix))}]")
        out.extend(scalars)
        out.append("")
    for key, value in tables:
        out.append(to_toml(value, (*prefix, key)))
    return "\n".join(out)


def _toml_key(key: str) -> str:
    """A key as TOML writes it: bare when it can be, else quoted (so "policy.apr_cap" stays one key)."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes, and DEL and lone surrogates escaped too (TOML takes
    neither as they are; a surrogate's escape is refused when read back, as it should be)."""
    return re.sub("[\x7f\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", json.dumps(text, ensure_ascii=False))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)
