"""The counter-based generator: the hash docs/model.md section 7 writes out, its hoisted states, the
vectorised draws keyed by id, the inverse normal and the fixed purpose numbers."""
from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri
from scipy.stats import norm

from simulator.model import rng

MASK = 2**64 - 1
G = 0x9E3779B97F4A7C15


def mix(x: int) -> int:
    """The SplitMix64 finaliser in Python integers, as docs/model.md section 7 writes it."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def reference_uniform(seed: int, path: int, account: int, month: int, purpose: int) -> float:
    """The documented uniform: state = mix(seed + G), then mix(state ^ (key + G)) for each key in turn,
    (state >> 11) x 2^-53; keys as unsigned 64-bit (two's complement for -1)."""
    state = mix((seed + G) & MASK)
    for key in (path, account, month, purpose):
        state = mix(state ^ ((key + G) & MASK))
    return (state >> 11) * 2.0**-53


KEYS = [(0, 0, 0, 0, 0), (20_240_101, 0, -1, 7, rng.FACTOR), (5, 3, 2**40 + 17, 12, rng.MISS),
        (2**62 + 1, 999, 123_456_789, 600, rng.of_product(rng.AMOUNT, 2)), (-3, 1, 4, 1, rng.REPLAY_FRAUD)]


def test_the_mix_is_the_splitmix64_finaliser():
    """mix(k x G) for k = 1, 2, 3, 4 are SplitMix64's first four outputs from seed 0 (the published
    sequence)."""
    published = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F, 0xF88BB8A8724C81EC]
    assert [int(rng._mix(np.uint64((k * G) & MASK))) for k in (1, 2, 3, 4)] == published
    assert [mix((k * G) & MASK) for k in (1, 2, 3, 4)] == published


def test_a_uniform_is_the_documented_hash_of_its_five_keys():
    """Bit for bit, including the factor shocks' account -1 and a book's ids from 2^40."""
    for key in KEYS:
        assert rng.uniform(*key) == reference_uniform(*key), key


def test_the_hoisted_states_give_the_same_draws():
    """draw(stream(s, p, a), m, k) == uniform(s, p, a, m, k), draw_at(month_key(key, m), k) ==
    draw(key, m, k), and normal is the inverse normal of the draw floored at 2^-53 (the states as the
    kernel holds them, uint64)."""
    for seed, path, account, month, purpose in KEYS:
        key = np.uint64(rng.stream(seed, path, account))
        u = rng.draw(key, month, purpose)
        assert u == rng.uniform(seed, path, account, month, purpose)
        assert rng.draw_at(np.uint64(rng.month_key(key, month)), purpose) == u
        assert rng.normal(key, month, purpose) == rng.inverse_normal(max(u, rng.INV53))


def test_vectorised_draws_are_keyed_by_id_not_by_position():
    """uniforms over an array are the scalar uniforms of its ids, whatever else the array holds, its
    order, dtype or strides; normals are their inverse normals."""
    ids = np.array([0, 7, 2**40 + 3, 41, -1], dtype=np.int64)
    u = rng.uniforms(11, 2, ids, 5, rng.PREPAY)
    assert u.tolist() == [rng.uniform(11, 2, int(a), 5, rng.PREPAY) for a in ids]
    assert rng.uniforms(11, 2, ids[::-1], 5, rng.PREPAY).tolist() == u[::-1].tolist()
    assert rng.uniforms(11, 2, ids[1:2], 5, rng.PREPAY).tolist() == [u[1]]
    small = np.arange(20, dtype=np.int32)[::2]                  # int32, not contiguous
    assert rng.uniforms(11, 2, small, 5, rng.PREPAY).tolist() == [rng.uniform(11, 2, a, 5, rng.PREPAY) for a in
                                                                 range(0, 20, 2)]
    np.testing.assert_allclose(rng.normals(11, 2, ids, 5, rng.PREPAY), norm.ppf(u), rtol=1e-12)


def test_uniforms_are_uniform_on_the_unit_interval():
    """200,000 draws: all in [0, 1), and the counts in ten equal bins pass a chi-square test at
    99.99% (33.7 for 9 degrees of freedom)."""
    u = rng.uniforms(1, 0, np.arange(200_000), 3, rng.SPEND)
    assert u.min() >= 0.0 and u.max() < 1.0
    counts = np.bincount((u * 10).astype(int), minlength=10)
    expected = len(u) / 10
    assert ((counts - expected) ** 2 / expected).sum() < 33.7
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / len(u))


def test_inverse_normal_is_phi_inverse():
    """Against scipy's ndtri to a few units in 1e-16 from 1e-300 to 1 - 1e-16, exactly 0 at 1/2,
    odd about 1/2, and -inf / +inf at 0 and 1."""
    p = np.concatenate([np.linspace(1e-6, 1 - 1e-6, 2001), 10.0 ** -np.arange(1, 301, 7.0),
                        1 - 10.0 ** -np.arange(1, 16.0)])
    mine = np.array([rng.inverse_normal(x) for x in p])
    np.testing.assert_allclose(mine, ndtri(p), rtol=2e-15, atol=1e-300)
    assert rng.inverse_normal(0.5) == 0.0
    for x in (1e-3, 0.1, 0.3):
        assert math.isclose(rng.inverse_normal(1 - x), -rng.inverse_normal(x), rel_tol=1e-14)
    assert rng.inverse_normal(0.0) == -math.inf and rng.inverse_normal(1.0) == math.inf


def test_purpose_numbers_are_the_documented_ones():
    """docs/model.md section 7: factor 1, prepayment 2, miss 3, features 10 .. 14, main product 15,
    amount 16, term 17, method 18, identity 19, fraud 20, take-up 21, model error 22, also-requests 23 ..
    25, mean spend 26, price 27, tenor 28, promotion 29, payer type 30, spend 31, conversion 32,
    conversion tenor 33, borrower 34, segment 37; a second product of a kind adds k x 2^16."""
    documented = {"FACTOR": 1, "PREPAY": 2, "MISS": 3, "FEATURES": 10, "PRODUCT": 15, "AMOUNT": 16, "TERM": 17,
                  "METHOD": 18, "VERIFY": 19, "FRAUD": 20, "TAKEUP": 21, "MODEL_ERROR": 22, "ALSO_REQUEST": 23,
                  "SPEND_MEAN": 26, "PRICE": 27, "TENOR": 28, "PROMOTION": 29, "PAYER_TYPE": 30, "SPEND": 31,
                  "CONVERT": 32, "CONVERT_TENOR": 33, "BORROWER": 34, "SEGMENT": 37}
    assert {name: getattr(rng, name) for name in documented} == documented
    assert rng.PRODUCT_STRIDE == 2**16
    assert [rng.of_product(rng.AMOUNT, k) for k in range(3)] == [16, 16 + 2**16, 16 + 2 * 2**16]
    assert [rng.also_request(p) for p in range(5)] == [23, 24, 25, 23 + 3 * 2**16, 23 + 4 * 2**16]


def test_every_products_purposes_are_apart():
    """The purposes of up to eight products of a kind and the also-requests of up to 24 products never
    coincide (one stream each)."""
    named = {value for name, value in vars(rng).items() if name.isupper() and not name.startswith("_")
             and isinstance(value, int) and name not in ("PRODUCT_STRIDE", "ALSO_REQUEST")}
    named |= {rng.FEATURES + i for i in range(5)}
    purposes = [rng.of_product(p, k) for p in sorted(named) for k in range(8)]
    purposes += [rng.also_request(p) for p in range(24)]
    assert len(set(purposes)) == len(purposes)
