"""Counter-based random numbers: every draw a pure function of (seed, path, account, month, purpose).

SplitMix64 finalisers chained over the five keys; the top 53 bits give a
uniform in [0, 1). No state is shared, so any thread, block or worker that
asks for the same key gets the same number.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np
from scipy.special import ndtri

# Purposes: one stream per kind of draw. Never renumber (results would change).
FACTOR = 1
PREPAY = 2
MISS = 3
FEATURES = 10  # 10 .. 14: the five population features
PRODUCT = 15
AMOUNT = 16
TERM = 17
METHOD = 18
VERIFY = 19
FRAUD = 20
TAKEUP = 21
MODEL_ERROR = 22
ALSO_REQUEST = 23  # 23 .. 25: one per product
SPEND_MEAN = 26
PRICE = 27
TENOR = 28
PROMOTION = 29
PAYER_TYPE = 30
SPEND = 31
CONVERT = 32
CONVERT_TENOR = 33
BORROWER = 34
ACTIVE = 35
ATTRITION = 36
SEGMENT = 37
REPLAY_FRAUD = 38  # a backtest's replayed borrower is a fraudster: apart from FRAUD, which made the tape
PRODUCT_STRIDE = 1 << 16   # purposes of the k-th product of a kind: purpose + k x PRODUCT_STRIDE (`of_product`)


def of_product(purpose: int, k: int) -> int:
    """The purpose of a draw for the k-th product of its kind (k = 0: `purpose` itself), apart from
    every other purpose."""
    return purpose + k * PRODUCT_STRIDE


def also_request(product: int) -> int:
    """The purpose of the draw by which an applicant also asks for `product`: ALSO_REQUEST + product for
    the first three products (as in earlier versions), apart from every other purpose after them."""
    return ALSO_REQUEST + product if product < 3 else of_product(ALSO_REQUEST, product)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
INV53 = 1.0 / 9007199254740992.0  # 2**-53


@nb.njit(inline="always", cache=True)
def _mix(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@nb.njit(inline="always", cache=True)
def _absorb(h, key):
    return _mix(h ^ (np.uint64(key) + _GOLDEN))


@nb.njit(inline="always", cache=True)
def stream(seed, path, account):
    """The hash state after (seed, path, account): hoisted out of an account's monthly loop."""
    h = _mix(np.uint64(seed) + _GOLDEN)
    h = _absorb(h, path)
    return _absorb(h, account)


@nb.njit(inline="always", cache=True)
def month_key(key, month):
    """The hash state after (seed, path, account, month): shared by the month's draws."""
    return _absorb(key, month)


@nb.njit(inline="always", cache=True)
def draw_at(month_state, purpose) -> float:
    """The uniform of `purpose` in a month's hash state: draw_at(month_key(key, m), k) == draw(key, m, k)."""
    return np.float64(_absorb(month_state, purpose) >> _S11) * INV53


@nb.njit(inline="always", cache=True)
def draw(key, month, purpose) -> float:
    """The uniform of (month, purpose) in the stream `key`: draw(stream(s, p, a), m, k) == uniform(s, p, a, m, k)."""
    return draw_at(month_key(key, month), purpose)


@nb.njit(inline="always", cache=True)
def uniform(seed, path, account, month, purpose) -> float:
    """A uniform in [0, 1) keyed by (seed, path, account, month, purpose); all keys are int64."""
    return draw(stream(seed, path, account), month, purpose)


@nb.njit(cache=True, nogil=True)
def _uniforms(seed, path, accounts, month, purpose, out):
    for i in range(accounts.shape[0]):
        out[i] = uniform(seed, path, accounts[i], month, purpose)


def uniforms(seed: int, path: int, accounts: np.ndarray, month: int, purpose: int) -> np.ndarray:
    """Vectorised `uniform` over an array of account ids."""
    accounts = np.ascontiguousarray(accounts, dtype=np.int64)
    out = np.empty(accounts.shape[0], dtype=np.float64)
    _uniforms(np.int64(seed), np.int64(path), accounts, np.int64(month), np.int64(purpose), out)
    return out


def normals(seed: int, path: int, accounts: np.ndarray, month: int, purpose: int) -> np.ndarray:
    """Standard normals by inversion of `uniforms` (the uniform 0 maps to the smallest positive)."""
    u = uniforms(seed, path, accounts, month, purpose)
    return ndtri(np.maximum(u, INV53))


@nb.njit(cache=True)
def inverse_normal(p: float) -> float:
    """Phi^-1(p), Wichura's AS241 (PPND16), relative accuracy about 1e-16."""
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * (((((((2509.0809287301226727 * r + 33430.575583588128105) * r + 67265.770927008700853) * r
                        + 45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r
                     + 133.14166789178437745) * r + 3.387132872796366608) / \
            (((((((5226.495278852545925 * r + 28729.085735721942674) * r + 39307.89580009271061) * r
                 + 21213.794301586595867) * r + 5394.1960214247511077) * r + 687.1870074920579083) * r
              + 42.313330701600911252) * r + 1.0)
    r = p if q < 0.0 else 1.0 - p
    if r <= 0.0:
        return -np.inf if q < 0.0 else np.inf
    r = math.sqrt(-math.log(r))
    if r <= 5.0:
        r -= 1.6
        val = (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r + 0.24178072517745061177) * r
                   + 1.27045825245236838258) * r + 3.64784832476320460504) * r + 5.7694972214606914055) * r
                + 4.6303378461565452959) * r + 1.42343711074968357734) / \
            (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r
                 + 0.14810397642748007459) * r + 0.68976733498510000455) * r + 1.6763848301838038494) * r
              + 2.05319162663775882187) * r + 1.0)
    else:
        r -= 5.0
        val = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r
                   + 0.026532189526576123093) * r + 0.29656057182850489123) * r + 1.7848265399172913358) * r
                + 5.4637849111641143699) * r + 6.6579046435011037772) / \
            (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r
                 + 7.868691311456132591e-4) * r + 0.0148753612908506148525) * r + 0.13692988092273580531) * r
              + 0.59983220655588793769) * r + 1.0)
    return -val if q < 0.0 else val


@nb.njit(inline="always", cache=True)
def normal(key, month, purpose) -> float:
    """A standard normal of (month, purpose) in the stream `key` (by inversion; 0 maps to 2**-53)."""
    return inverse_normal(max(draw(key, month, purpose), INV53))
