"""Dropout and the counter-based random numbers behind it (and RReLU's slopes).

The number for unit ``j`` of layer ``salt`` of a sample is a hash of the epoch
seed, the sample's values, ``salt`` and ``j`` (SplitMix64's finalizer, Steele,
Lea & Flood, 2014, "Fast splittable pseudorandom number generators"). A sample
therefore gets the same mask wherever it sits in the data, so weighting a row
by 2 equals repeating it, and results do not depend on batch composition.
"""

import numpy as np
from numba import njit

from skdeep.kernels import codes as C
from skdeep.kernels.cpu._jit import INNER, JIT

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


@njit(inline="always", **JIT)
def _mix(x):
    """SplitMix64's finalizer: ``x ^= x >> 30; x *= M1; x ^= x >> 27; x *= M2; x ^= x >> 31``."""
    x = (x ^ (x >> np.uint64(30))) * _MIX_1
    x = (x ^ (x >> np.uint64(27))) * _MIX_2
    return x ^ (x >> np.uint64(31))


@njit(inline="always", **JIT)
def _uniform(key, salt, j):
    """A number in [0, 1) for unit ``j`` of layer ``salt`` of the sample with ``key``: the hash's top 53 bits / 2^53."""
    h = _mix(key + (np.uint64(salt) << np.uint64(40)) + (np.uint64(j) + np.uint64(1)) * _GOLDEN)
    return np.float64(h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(inline="always", **JIT)
def _value_hash(scratch, bits, v, j):
    """Hash of value ``v`` (its float64 bit pattern) in column ``j``."""
    scratch[0] = v
    return _mix(bits[0] ^ ((np.uint64(j) + np.uint64(1)) * _GOLDEN))


@njit(**INNER)
def _row_keys(Xd, Xv, Xi, Xp, sparse, rows, seed, keys):
    """``keys[r]``: hash of the seed and the nonzero values of row ``rows[r]``.

    Dense and CSR input give the same keys.
    """
    scratch = np.empty(1, dtype=np.float64)
    bits = scratch.view(np.uint64)
    for r in range(rows.shape[0]):
        i = rows[r]
        h = np.uint64(0)
        if sparse:
            for p in range(Xp[i], Xp[i + 1]):
                if Xv[p] != 0.0:
                    h += _value_hash(scratch, bits, Xv[p], Xi[p])
        else:
            for j in range(Xd.shape[1]):
                if Xd[i, j] != 0.0:
                    h += _value_hash(scratch, bits, Xd[i, j], j)
        keys[r] = _mix(h ^ np.uint64(seed))


@njit(**INNER)
def _dropout(A, M, rate, alpha_dropout, keys, salt):
    """Mask ``A`` in place; ``M`` receives ``dA_out / dA_in``.

    Inverted dropout keeps a unit with probability ``q = 1 - rate`` and scales
    it by ``1 / q`` (Srivastava et al., 2014, section 10). Alpha dropout (for
    SELU; Klambauer et al., 2017, section "New dropout technique") sets
    dropped units to ``alpha' = -lambda alpha`` and applies ``a x + b`` with
    ``a = (q (1 + rate alpha'^2))^-1/2``, ``b = -a alpha' rate`` so mean and
    variance are kept. The uniform numbers are float64 in every dtype, so
    float32 and float64 models drop the same units.
    """
    n, k = A.shape
    dt = A.dtype.type
    q = 1.0 - rate
    if alpha_dropout:
        saturation = -C.SELU_LAMBDA * C.SELU_ALPHA
        a64 = (q * (1.0 + rate * saturation * saturation)) ** -0.5
        b64 = -a64 * saturation * rate
        a, b, dropped = dt(a64), dt(b64), dt(a64 * saturation + b64)
        for r in range(n):
            for j in range(k):
                keep = _uniform(keys[r], salt, j) < q
                A[r, j] = a * A[r, j] + b if keep else dropped
                M[r, j] = a if keep else dt(0.0)
    else:
        inv_q = dt(1.0 / q)
        for r in range(n):
            for j in range(k):
                M[r, j] = inv_q if _uniform(keys[r], salt, j) < q else dt(0.0)
                A[r, j] *= M[r, j]
