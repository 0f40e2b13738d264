"""Batch normalization (Ioffe & Szegedy, 2015, Algorithm 1) and its backward pass, with sample weights.

In place on a batch ``Z`` of shape ``(n, k)``, row by row, so every inner
loop runs over contiguous columns in the dtype of ``Z``.
"""

import numpy as np
from numba import njit

from skdeep.kernels import codes as C
from skdeep.kernels.cpu._jit import INNER


@njit(**INNER)
def _batch_norm(Z, H, gamma, beta, mean, var, istd, batch_mean, mode, momentum, eps, sw, rows):
    """``Z <- gamma * xhat + beta`` in place, ``H <- xhat``.

    Training: the batch's mean and (biased) variance, weighted by the sample
    weights ``sw[rows]`` (so a weight of 2 equals a repeated row), and moving
    statistics updated as ``m <- momentum m + (1 - momentum) batch`` (Keras'
    convention); ``batch_mean`` (one value per column) receives the batch
    mean. Otherwise the moving statistics normalize. Every pass runs row by
    row, so the inner loop is over contiguous columns.
    """
    n, k = Z.shape
    dt = Z.dtype.type
    if mode == C.TRAINING:
        total = dt(0.0)
        for r in range(n):
            total += sw[rows[r]]
        inv_total = dt(1.0) / total
        keep, new = dt(momentum), dt(1.0 - momentum)
        center = batch_mean[:k]
        center[:] = 0.0
        for r in range(n):
            w = sw[rows[r]]
            for j in range(k):
                center[j] += w * Z[r, j]
        for j in range(k):
            center[j] *= inv_total
        istd[:] = 0.0
        for r in range(n):
            w = sw[rows[r]]
            for j in range(k):
                d = Z[r, j] - center[j]
                istd[j] += w * d * d
        for j in range(k):
            batch_var = istd[j] * inv_total
            istd[j] = dt(1.0) / np.sqrt(batch_var + dt(eps))
            mean[j] = keep * mean[j] + new * center[j]
            var[j] = keep * var[j] + new * batch_var
    else:
        center = mean
        for j in range(k):
            istd[j] = dt(1.0) / np.sqrt(var[j] + dt(eps))
    for r in range(n):
        for j in range(k):
            h = (Z[r, j] - center[j]) * istd[j]
            H[r, j] = h
            Z[r, j] = gamma[j] * h + beta[j]


@njit(**INNER)
def _batch_norm_backward(D, H, gamma, istd, gamma_grad, beta_grad, sums, sw, rows):
    """Backward through training-mode batch norm, in place on ``D``.

    ``dz_r = gamma istd (dy_r - (w_r / W) sum(dy) - xhat_r (w_r / W) sum(dy xhat))``
    with sample weights ``w`` summing to ``W`` (Ioffe & Szegedy, 2015, with
    weighted statistics); writes ``sum(dy xhat)`` and ``sum(dy)`` to the gamma
    and beta gradients.
    """
    n, k = D.shape
    dt = D.dtype.type
    total = dt(0.0)
    for r in range(n):
        total += sw[rows[r]]
    inv_total = dt(1.0) / total
    sum_d = sums[:k]
    sum_dh = sums[k : 2 * k]
    sum_d[:] = 0.0
    sum_dh[:] = 0.0
    for r in range(n):
        for j in range(k):
            sum_d[j] += D[r, j]
            sum_dh[j] += D[r, j] * H[r, j]
    for j in range(k):
        gamma_grad[j] = sum_dh[j]
        beta_grad[j] = sum_d[j]
    for r in range(n):
        share = sw[rows[r]] * inv_total
        for j in range(k):
            D[r, j] = gamma[j] * istd[j] * (D[r, j] - share * (sum_d[j] + H[r, j] * sum_dh[j]))
