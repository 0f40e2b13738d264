"""Array primitives: row gathers, CSR products, elementwise products and float64 reductions.

Dense matrix products go to BLAS through ``np.dot`` in the composition
(:mod:`skdeep.kernels.cpu.network`); these loops cover what BLAS does not.
"""

import numpy as np
from numba import njit

from skdeep.kernels.cpu._jit import INNER, JIT, REDUCTION


@njit(**INNER)
def _gather_rows(Xd, rows, out):
    """``out[r] = Xd[rows[r]]`` for the dense minibatch buffer (one contiguous copy per row)."""
    k = out.shape[1]
    for r in range(rows.shape[0]):
        i = rows[r]
        for j in range(k):
            out[r, j] = Xd[i, j]


@njit(inline="always", **JIT)
def _copy(src, out):
    """``out[:, :] = src`` for two arrays of one shape.

    A loop, not a slice assignment: Numba's slice assignment from an array
    compiles a formatted shape-mismatch message, seconds of a cold start.
    """
    for r in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[r, j] = src[r, j]


@njit(**INNER)
def _sparse_dot(Xv, Xi, Xp, rows, W, out):
    """``out = X[rows] @ W`` for CSR ``X``: ``out[r] = sum_p Xv[p] W[Xi[p]]`` over row ``rows[r]``'s nonzeros."""
    out[:, :] = 0.0
    for r in range(rows.shape[0]):
        i = rows[r]
        for p in range(Xp[i], Xp[i + 1]):
            v = Xv[p]
            w = W[Xi[p]]
            for j in range(out.shape[1]):
                out[r, j] += v * w[j]


@njit(**INNER)
def _sparse_t_dot(Xv, Xi, Xp, rows, D, out):
    """``out = X[rows].T @ D`` for CSR ``X``: ``out[Xi[p]] += Xv[p] D[r]`` over the nonzeros."""
    out[:, :] = 0.0
    for r in range(rows.shape[0]):
        i = rows[r]
        d = D[r]
        for p in range(Xp[i], Xp[i + 1]):
            v = Xv[p]
            o = out[Xi[p]]
            for j in range(out.shape[1]):
                o[j] += v * d[j]


@njit(**INNER)
def _multiply(D, M):
    """``D <- D * M`` elementwise (a dropout mask's backward pass)."""
    n, k = D.shape
    for r in range(n):
        for j in range(k):
            D[r, j] *= M[r, j]


@njit(**INNER)
def _add_row(Z, b):
    """``Z[r] <- Z[r] + b`` for every row (the bias)."""
    n, k = Z.shape
    for r in range(n):
        for j in range(k):
            Z[r, j] += b[j]


@njit(**INNER)
def _column_sums(D, out):
    """``out[j] = sum_r D[r, j]`` (a bias gradient), accumulated row by row."""
    out[:] = 0.0
    for r in range(D.shape[0]):
        for j in range(D.shape[1]):
            out[j] += D[r, j]


@njit(**INNER)
def _scale(x, factor):
    """``x <- factor x`` with ``factor`` in the dtype of ``x``."""
    dt = x.dtype.type
    f = dt(factor)
    for i in range(x.shape[0]):
        x[i] *= f


@njit(fastmath=REDUCTION, **INNER)
def _sum_squares_abs(x):
    """``(sum(x^2), sum(|x|))`` in float64.

    Compiled with reassociation allowed, so the sums vectorize (partial sums
    per SIMD lane): the order is fixed by the compiled code, so a result is
    the same on every run.
    """
    squares = 0.0
    absolute = 0.0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        squares += v * v
        absolute += abs(v)
    return squares, absolute


@njit(fastmath=REDUCTION, **INNER)
def _sum_squares(x):
    """``sum(x^2)`` in float64 (vectorized like :func:`_sum_squares_abs`)."""
    total = 0.0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        total += v * v
    return total
