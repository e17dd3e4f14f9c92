"""The scenario's schema: every section and key with its type, bounds and checks (pydantic), and
the one-line error that names file and key (`ScenarioError`). Keys: docs/scenarios.md."""
from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic_core import PydanticCustomError

from ..codes import INCOME_BASES, KIND, KINDS, LINE, LOAN, METHODS, N_STATES, PAYER_TYPES, PRODUCTS
from ..units import monthly_rate



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
MAX_POPULATION_GROUPS = 64     # run.population_groups: a kernel pass each
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


def _by_product(name: str, doc: str, of_kind: tuple, base: type[Section] = ByProductSection) -> type[Section]:
    """A section (a subclass of `base`) with one key per product, in codes.PRODUCTS order, each of
    the type `of_kind[kind]` of the product's kind: a product of an existing kind needs no new class."""
    return create_model(name, __base__=base, __doc__=doc, __module__=__name__,
                        **{product: (of_kind[kind], ...) for product, kind in zip(PRODUCTS, KIND)})


class Run(Section):
    name: str
    seed: Annotated[int, Field(ge=0, lt=2**63)]
    paths: Annotated[int, Field(ge=1)]
    population_groups: Annotated[int, Field(ge=2, le=MAX_POPULATION_GROUPS)]
    horizon_months: Annotated[int, Field(ge=1, le=MAX_HORIZON)]
    results: Literal["auto", "full", "summary"]
    income_basis: Literal[INCOME_BASES]

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
    merchant_fee: Annotated[float, Field(ge=0.0), _not_percent(0.2, "0.008")]
    loan_equivalent_factor: Fraction
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
    prepay_price_sensitivity: Annotated[float, Field(ge=0.0, le=100.0)]   # per unit of APR (prepayment.price_scale)
    prepay_reference_apr: AnnualRate
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
        return self.named_shift(self.path) if self.path else list(self.shift)

    def named_shift(self, name: str) -> list[float]:
        """The factor shift a month of the named path `name`."""
        named = self.paths[name]
        if named.unemployment:
            return [-self.unemployment_sensitivity * (u - self.unemployment_reference) for u in named.unemployment]
        return list(named.shift)

    def prepay_in_force(self) -> float:
        """The prepayment sensitivity of the path in force: the named path's own, else prepay_sensitivity."""
        return self.named_prepay(self.path) if self.path else self.prepay_sensitivity

    def named_prepay(self, name: str) -> float:
        """The prepayment sensitivity of the named path `name`: its own, else prepay_sensitivity."""
        own = self.paths[name].prepay_sensitivity
        return self.prepay_sensitivity if own is None else own


SharesByProduct = _by_product("SharesByProduct", "A fraction for each product.", (Fraction,) * len(KINDS))


class Funding(Section):
    cost_of_funds: AnnualRate
    platform_share: SharesByProduct        # of each loan's principal, funded by the platform itself
    service_fee_share: SharesByProduct     # of the partner banks' interest and fee income, paid to the platform
    guarantee: bool                        # the platform carries the partners' credit losses too


class Capital(Section):
    quantiles: Annotated[list[Annotated[float, Field(gt=0.0, lt=1.0)]], Field(min_length=1)]
    economic_capital_level: Annotated[float, Field(gt=0.0, lt=1.0)]
    importance_quantile: float
    month: Annotated[int, Field(ge=0)]
    irb_confidence: Annotated[float, Field(gt=0.0, lt=1.0)]
    irb_revolving_correlation: Annotated[float, Field(gt=0.0, lt=1.0)]
    pd_floor: Fraction
    pd_floor_revolving: Fraction

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


MAX_FORECASTS = 8    # provisions.scenarios: a column of the ECL table each


class Provisions(Section):
    basis: Literal["through_the_cycle", "point_in_time"]
    scenarios: dict[str, Fraction]
    sensitivity_months: Annotated[int, Field(ge=1, le=120)]
    sicr_pd_ratio: Annotated[float, Field(ge=0.0, le=1000.0)]
    sicr_pd_increase: Fraction
    cure_months: Annotated[int, Field(ge=0, le=36)]
    probation_months: Annotated[int, Field(ge=0, le=36)]
    overlay: Annotated[float, Field(ge=-1.0, le=10.0)]
    line_life_months: Annotated[int, Field(ge=12, le=120)]

    @model_validator(mode="after")
    def _check(self):
        if not 1 <= len(self.scenarios) <= MAX_FORECASTS:
            raise ValueError(f"scenarios: expected 1 to {MAX_FORECASTS} named macro paths with weights, "
                             f"found {len(self.scenarios)}")
        if 0.0 < self.sicr_pd_ratio <= 1.0:
            raise ValueError(f"sicr_pd_ratio: expected 0 (off) or a ratio above 1, found {self.sicr_pd_ratio:g}")
        total = sum(self.scenarios.values())
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"scenarios: expected weights that sum to 1, found {total:.10g}")
        return self


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
        unknown = [name for name in self.provisions.scenarios if name not in self.macro.paths]
        if unknown:
            raise ValueError(f"provisions.scenarios: expected names of macro.paths {sorted(self.macro.paths)}, "
                             f"found {unknown[0]!r}")
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


def show_value(value: Any) -> str:
    """A value as an error message shows it (strings quoted, TOML-like)."""
    return json.dumps(value) if isinstance(value, (str, list, dict, bool)) else repr(value)

