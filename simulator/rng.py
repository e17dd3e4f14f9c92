"""Counter-based random numbers: every draw a pure function of (seed, path, account, month, purpose).

SplitMix64 finalisers chained over the five keys; the top 53 bits give a
uniform in [0, 1). No state is shared, so any thread, block or worker that
asks for the same key gets the same number.
"""
from __future__ import annotations

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

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@nb.njit(inline="always", cache=True)
def _mix(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@nb.njit(inline="always", cache=True)
def _absorb(h, key):
    return _mix(h ^ (np.uint64(key) + _GOLDEN))


@nb.njit(inline="always", cache=True)
def uniform(seed, path, account, month, purpose) -> float:
    """A uniform in [0, 1) keyed by (seed, path, account, month, purpose); all keys are int64."""
    h = _mix(np.uint64(seed) + _GOLDEN)
    h = _absorb(h, path)
    h = _absorb(h, account)
    h = _absorb(h, month)
    h = _absorb(h, purpose)
    return np.float64(h >> _S11) * _INV53


@nb.njit(cache=True)
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
    return ndtri(np.maximum(u, _INV53))
