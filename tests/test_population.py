"""Population model: synthetic applicants."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtr

from simulator.model import population
from simulator.codes import METHOD_CODES, PRODUCTS

# The line's, the cash loan's and the purchase's columns.
LINE, LOAN, PLAN = PRODUCTS.index("huabei"), PRODUCTS.index("jiebei"), PRODUCTS.index("yuefu")
PER_PRODUCT = ("requests", "amount", "term", "method", "promotion", "spend")   # [applicant, product] arrays
from simulator.config.schema import Scenario
from simulator.config.loader import load_scenario


FEATURES = ("income", "dti", "age", "tenure", "past_delinquencies")
NEW_KEYS = ("requests", "spend", "promotion")
RANDOM_KEYS = FEATURES + ("product", "amount", "term", "method", "verification_failed") + NEW_KEYS
N_BIG = 200_000


def scenario(tmp_path: Path, *overrides: str) -> Scenario:
    file = tmp_path / "s.toml"
    file.write_text('[run]\nname = "t"\n')
    return load_scenario(file, list(overrides)).scenario


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[Scenario, dict[str, np.ndarray]]:
    """200k applicants in one month, with the age bounds wide so every copula marginal is continuous."""
    sc = scenario(
        tmp_path_factory.mktemp("big"),
        f"applicants.monthly_volume={N_BIG}",
        "applicants.origination_months=1",
        "applicants.age_min=0.0",
        "applicants.age_max=200.0",
    )
    return sc, population.applicants(sc)


def within_se(observed: float, expected: float, se: float, k: float = 4.0) -> bool:
    return abs(observed - expected) <= k * se


def share_within_se(flags: np.ndarray, p: float) -> bool:
    """The share of True in `flags` within 4 binomial standard errors of p."""
    return within_se(float(np.mean(flags)), p, math.sqrt(p * (1 - p) / flags.size))


def log_median_within_se(values: np.ndarray, median: float, sigma: float) -> bool:
    """Sample median of a lognormal within 4 standard errors (sqrt(pi / 2) sigma / sqrt(n) on the log scale)."""
    se = math.sqrt(math.pi / 2) * sigma / math.sqrt(values.size)
    return within_se(float(np.median(np.log(values))), math.log(median), se)


# ---------------------------------------------------------------------------
# Applicants


def test_keys_dtypes_and_layout(tmp_path):
    sc = scenario(tmp_path, "applicants.monthly_volume=7", "applicants.origination_months=3")
    a = population.applicants(sc)
    dtypes = {
        "id": np.int64, "month": np.int32, "segment": np.int8, "product": np.int8, "income": np.float64, "dti": np.float64,
        "age": np.float64, "tenure": np.float64, "past_delinquencies": np.int32, "amount": np.float64,
        "term": np.int32, "method": np.int8, "verification_failed": np.bool_,
        "requests": np.bool_, "spend": np.float64, "promotion": np.bool_,
    }
    assert set(a) == set(dtypes)
    for key, dtype in dtypes.items():
        assert a[key].dtype == dtype, key
        assert a[key].shape == ((21, len(PRODUCTS)) if key in PER_PRODUCT else (21,)), key
    np.testing.assert_array_equal(a["id"], np.arange(21))
    np.testing.assert_array_equal(a["month"], np.repeat([1, 2, 3], 7))


def test_empty_volume(tmp_path):
    a = population.applicants(scenario(tmp_path, "applicants.monthly_volume=0"))
    assert len(a) == 16
    assert all(v.shape == (0,) for k, v in a.items() if k not in PER_PRODUCT)
    assert all(a[k].shape == (0, len(PRODUCTS)) for k in PER_PRODUCT) and a["requests"].dtype == np.bool_
    assert a["id"].dtype == np.int64 and a["term"].dtype == np.int32


@pytest.mark.parametrize("horizon, window, months", [(4, 12, 4), (36, 12, 12), (5, 5, 5), (1, 3, 1)])
def test_origination_window_clipped_at_horizon(tmp_path, horizon, window, months):
    sc = scenario(
        tmp_path,
        "applicants.monthly_volume=6",
        f"applicants.origination_months={window}",
        f"run.horizon_months={horizon}",
    )
    a = population.applicants(sc)
    np.testing.assert_array_equal(a["id"], np.arange(6 * months))
    np.testing.assert_array_equal(a["month"], np.repeat(np.arange(1, months + 1), 6))
    assert a["requests"].shape == (6 * months, len(PRODUCTS))


def by_segment(sc, a):
    """(segment, that segment's applicants) for each segment."""
    for k, seg in enumerate(sc.applicants.segments.values()):
        mine = a["segment"] == k
        yield seg, {key: value[mine] for key, value in a.items()}


def test_rank_correlation_matches_copula(big):
    """Within a segment the features follow the Gaussian copula: Spearman's rho = 6/pi asin(r/2)."""
    sc, a = big
    corr = np.asarray(sc.applicants.correlation)
    continuous = [0, 1, 2, 3]  # income, dti, age, tenure (past delinquencies is a count)
    for _, s in by_segment(sc, a):
        for i in continuous:
            for j in continuous:
                if i < j:
                    rho_s = stats.spearmanr(s[FEATURES[i]], s[FEATURES[j]]).statistic
                    expected = 6.0 / math.pi * math.asin(corr[i, j] / 2.0)
                    assert abs(rho_s - expected) < 0.02, (FEATURES[i], FEATURES[j], rho_s, expected)


def test_segment_shares(big):
    sc, a = big
    segments = list(sc.applicants.segments.values())
    assert len(segments) >= 2
    for k, seg in enumerate(segments):
        assert share_within_se(a["segment"] == k, seg.share)


def test_marginals(big):
    sc, a = big
    p = sc.applicants
    for seg, s in by_segment(sc, a):
        n = s["id"].size
        assert log_median_within_se(s["income"], seg.income_median, p.income_sigma)
        assert abs(np.std(np.log(s["income"])) - p.income_sigma) < 0.01
        assert within_se(s["dti"].mean(), seg.dti_mean, p.dti_sd / math.sqrt(n))
        assert abs(s["dti"].std() - p.dti_sd) < 0.003
        assert s["dti"].min() > 0 and s["dti"].max() < 1
        assert within_se(s["tenure"].mean(), seg.tenure_mean_years, seg.tenure_mean_years / math.sqrt(n))
        assert s["tenure"].min() >= 0
        mu = seg.past_delinquency_mean
        assert within_se(s["past_delinquencies"].mean(), mu, math.sqrt(mu / n))
        p0 = math.exp(-mu)
        assert within_se(np.mean(s["past_delinquencies"] == 0), p0, math.sqrt(p0 * (1 - p0) / n))
        assert log_median_within_se(s["amount"][:, LOAN], seg.loan_amount_median, p.jiebei.amount_sigma)
    n = a["id"].size
    assert within_se(a["age"].mean(), p.age_mean, p.age_sd / math.sqrt(n))
    assert abs(a["age"].std() - p.age_sd) < 0.05
    np.testing.assert_array_equal(a["amount"], np.round(a["amount"]))
    assert np.all(a["amount"][:, PRODUCTS.index("huabei")] == 0.0)     # a line asks for no amount


def test_a_new_segment_and_a_segment_with_no_share(tmp_path):
    """A scenario may add a segment of its own (all keys) and switch one off with share 0."""
    new = ("{share = 0.3, income_median = 9000.0, dti_mean = 0.2, tenure_mean_years = 8.0, "
           "past_delinquency_mean = 0.1, loan_amount_median = 9000.0, price_sensitivity = 1.5}")
    sc = scenario(tmp_path, "applicants.monthly_volume=20000", "applicants.origination_months=1",
                  f"applicants.segments.salaried={new}", "applicants.segments.near_prime.share=0.0",
                  "applicants.segments.prime.share=0.7")
    assert list(sc.applicants.segments) == ["prime", "near_prime", "salaried"]
    a = population.applicants(sc)
    assert not np.any(a["segment"] == 1)
    assert share_within_se(a["segment"] == 2, 0.3)


def test_age_clipped(tmp_path):
    sc = scenario(tmp_path, "applicants.monthly_volume=20000", "applicants.origination_months=1")
    age = population.applicants(sc)["age"]
    p = sc.applicants
    assert age.min() == p.age_min and age.max() <= p.age_max
    share_low = np.mean(age == p.age_min)
    expected = stats.norm.cdf((p.age_min - p.age_mean) / p.age_sd)
    assert within_se(share_low, expected, math.sqrt(expected * (1 - expected) / age.size))


def test_shares_of_terms_methods_and_verification(big):
    sc, a = big
    n = a["id"].size
    r = sc.applicants.jiebei
    for term, share in zip(r.terms, r.term_shares):
        assert within_se(np.mean(a["term"][:, LOAN] == term), share, math.sqrt(share * (1 - share) / n)), term
    assert set(np.unique(a["term"][:, LOAN])) <= set(r.terms)
    for method, share in zip(r.methods, r.method_shares):
        observed = np.mean(a["method"][:, LOAN] == METHOD_CODES[method])
        assert within_se(observed, share, math.sqrt(share * (1 - share) / n)), method
    f = sc.applicants.verification_fail_rate
    assert within_se(a["verification_failed"].mean(), f, math.sqrt(f * (1 - f) / n))


def test_product_mix_shares(big):
    sc, a = big
    mix = sc.applicants.product_mix
    assert set(np.unique(a["product"])) <= set(range(len(PRODUCTS)))
    for p, name in enumerate(PRODUCTS):
        assert share_within_se(a["product"] == p, mix.get(name, 0.0)), name


def test_single_product_mix(tmp_path):
    sc = scenario(
        tmp_path,
        "applicants.monthly_volume=3000",
        "applicants.origination_months=1",
        "applicants.product_mix={ jiebei = 1.0 }",
    )
    a = population.applicants(sc)
    jiebei = PRODUCTS.index("jiebei")
    assert np.all(a["product"] == jiebei)
    assert np.all(a["requests"][:, jiebei])


def test_main_product_always_requested(big):
    _, a = big
    n = a["id"].size
    assert np.all(a["requests"][np.arange(n), a["product"]])


def test_also_request_shares(big):
    sc, a = big
    also = sc.applicants.also_requests
    for p, name in enumerate(PRODUCTS):
        others = a["product"] != p
        assert others.sum() > 10_000, name
        assert share_within_se(a["requests"][others, p], also.get(name, 0.0)), name


def test_no_also_requests_means_main_product_only(tmp_path):
    sc = scenario(
        tmp_path,
        "applicants.monthly_volume=3000",
        "applicants.origination_months=1",
        "applicants.also_requests={}",
    )
    a = population.applicants(sc)
    expected = a["product"][:, None] == np.arange(len(PRODUCTS))[None, :]
    np.testing.assert_array_equal(a["requests"], expected)


def test_spend_and_price_medians(big):
    sc, a = big
    h, y = sc.applicants.huabei, sc.applicants.yuefu
    assert a["spend"][:, LINE].min() > 0 and a["amount"][:, PLAN].min() > 0
    assert log_median_within_se(a["spend"][:, LINE], h.spend_median, h.spend_sigma)
    assert log_median_within_se(a["amount"][:, PLAN], y.price_median, y.price_sigma)
    assert abs(np.std(np.log(a["spend"][:, LINE])) - h.spend_sigma) < 0.01
    assert abs(np.std(np.log(a["amount"][:, PLAN])) - y.price_sigma) < 0.01
    np.testing.assert_array_equal(a["spend"], np.round(a["spend"], 2))  # cents
    assert not a["spend"][:, [LOAN, PLAN]].any()                          # only a line has spend
    np.testing.assert_array_equal(a["amount"][:, PLAN], np.round(a["amount"][:, PLAN]))  # whole yuan


def test_tenor_and_promotion_shares(big):
    sc, a = big
    y = sc.applicants.yuefu
    assert set(np.unique(a["term"][:, PLAN])) <= set(y.tenors)
    for tenor, share in zip(y.tenors, y.tenor_shares):
        assert share_within_se(a["term"][:, PLAN] == tenor, share), tenor
    assert share_within_se(a["promotion"][:, PLAN], y.promotion_share)
    assert not a["promotion"][:, LOAN].any()


def test_zero_share_categories_never_drawn(tmp_path):
    sc = scenario(
        tmp_path,
        "applicants.monthly_volume=5000",
        "applicants.origination_months=1",
        "applicants.jiebei.term_shares=[0.0, 1.0, 0.0]",
        "applicants.jiebei.method_shares=[0.0, 0.0, 1.0]",
        "applicants.yuefu.tenor_shares=[0.0, 0.0, 1.0, 0.0]",
        "applicants.yuefu.promotion_share=0.0",
        "applicants.product_mix={ huabei = 0.0, jiebei = 0.5, yuefu = 0.5 }",
    )
    a = population.applicants(sc)
    assert np.all(a["term"][:, LOAN] == sc.applicants.jiebei.terms[1])
    assert np.all(a["method"][:, LOAN] == METHOD_CODES["interest_first"])
    assert np.all(a["term"][:, PLAN] == sc.applicants.yuefu.tenors[2])
    assert not a["promotion"][:, PLAN].any()
    assert not np.any(a["product"] == PRODUCTS.index("huabei"))
    everyone = population.applicants(
        scenario(
            tmp_path,
            "applicants.monthly_volume=500",
            "applicants.origination_months=1",
            "applicants.yuefu.promotion_share=1.0",
        )
    )
    assert everyone["promotion"][:, PLAN].all()


def test_quantile_helpers_match_scipy():
    a, b = population.beta_parameters(0.3, 0.15)
    assert math.isclose(a / (a + b), 0.3) and math.isclose(math.sqrt(stats.beta.var(a, b)), 0.15)
    z = np.linspace(-6, 6, 10_001)
    np.testing.assert_allclose(population._beta_from_normal(z, a, b), stats.beta.ppf(ndtr(z), a, b), atol=1e-6)
    u = np.random.default_rng(0).random(10_000)
    for mu in (0.0, 0.4, 3.0):
        expected = stats.poisson.ppf(u, mu)
        assert np.mean(population._poisson_from_uniform(u, mu) == expected) == 1.0, mu


def test_fast_table_look_ups_are_numpys_to_the_bit():
    """The even-node interpolation and the short-table search give np.interp's and np.searchsorted's
    answers exactly: inside, at and halfway between nodes, beyond both ends, NaN."""
    nodes, values = population._beta_table(*population.beta_parameters(0.3, 0.15))
    rng = np.random.default_rng(3)
    z = np.concatenate([rng.normal(size=200_000), 4 * rng.normal(size=20_000), nodes, nodes[:-1] + np.diff(nodes) / 2,
                        [-40.0, 40.0, nodes[0], nodes[-1], np.nan]])
    out = np.empty_like(z)
    population._interp_even(z, nodes, values, out)
    np.testing.assert_array_equal(out, np.interp(z, nodes, values))
    table = np.array([0.1, 0.25, 0.25, 0.7, 1.0])
    x = np.concatenate([rng.random(10_000) * 1.2 - 0.1, table, [np.nan]])
    for side in ("left", "right"):
        np.testing.assert_array_equal(population._searchsorted(table, x, side), np.searchsorted(table, x, side=side))


def test_reproducible(tmp_path):
    sc = scenario(tmp_path, "applicants.monthly_volume=50", "applicants.origination_months=2")
    a1, a2 = population.applicants(sc), population.applicants(sc)
    for key in a1:
        np.testing.assert_array_equal(a1[key], a2[key])
    other = population.applicants(
        scenario(tmp_path, "applicants.monthly_volume=50", "applicants.origination_months=2", "run.seed=2")
    )
    assert not np.array_equal(a1["income"], other["income"])


def test_features_depend_only_on_id(tmp_path):
    small = population.applicants(scenario(tmp_path, "applicants.monthly_volume=40", "applicants.origination_months=3"))
    large = population.applicants(
        scenario(tmp_path, "applicants.monthly_volume=100", "applicants.origination_months=2", "engine.block_size=7")
    )
    n = small["id"].size
    np.testing.assert_array_equal(large["id"][:n], small["id"])
    for key in RANDOM_KEYS:
        np.testing.assert_array_equal(large[key][:n], small[key], err_msg=key)


def test_new_fields_depend_only_on_id(tmp_path):
    """The same id gets the same requests, spend and promotion whatever the monthly volume
    (and so whatever month it falls in)."""
    spread = population.applicants(
        scenario(tmp_path, "applicants.monthly_volume=30", "applicants.origination_months=4")
    )
    packed = population.applicants(
        scenario(tmp_path, "applicants.monthly_volume=500", "applicants.origination_months=1")
    )
    n = spread["id"].size
    np.testing.assert_array_equal(packed["id"][:n], spread["id"])
    assert not np.array_equal(packed["month"][:n], spread["month"])
    for key in ("product",) + NEW_KEYS:
        np.testing.assert_array_equal(packed[key][:n], spread[key], err_msg=key)
