"""Batch normalization (Ioffe & Szegedy, 2015, Algorithm 1) on the device, with sample weights.

The arithmetic of :mod:`skdeep.kernels.cpu.batch_norm`, in the same order
and the network's dtype, arranged as one thread per column for the
reductions over a batch's ``n`` rows (adjacent threads read adjacent columns
of the row-major ``(n, k)`` buffers, so the reads coalesce) and one thread per
element for the rest:

- :func:`batch_norm_statistics`: per column the weighted batch mean ``mu``
  and biased variance ``s2`` (training; ``w_r`` the rows' sample weights,
  ``W = sum w_r``), the moving statistics ``m <- momentum m + (1 - momentum)
  batch`` (Keras' convention), and ``istd = 1 / sqrt(s2 + eps)``; in
  inference the moving mean and variance instead;
- :func:`batch_norm_forward`: ``xhat = (x - mu) istd``, ``y = gamma xhat +
  beta``, then the activation and dropout of :func:`~skdeep.kernels.cuda.
  kernels.activate_drop` (identity for batch norm after the activation);
- :func:`batch_norm_backward_sums` and :func:`batch_norm_backward`: the
  training-mode backward pass ``dx_r = gamma istd (dy_r - (w_r / W) (sum dy
  + xhat_r sum(dy xhat)))``, with ``sum(dy xhat)`` and ``sum dy`` the gamma
  and beta gradients.

The constants (epsilon, momentum, ``1 - momentum``) come from the vector
``K`` of :mod:`skdeep.kernels.cuda.kernels`, typed like the parameters.
"""

import math

from skdeep.kernels.cuda._shim import cuda
from skdeep.kernels.cuda.kernels import (
    K_BN_EPSILON, K_BN_KEEP, K_BN_NEW, K_ONE, K_ZERO, S_STOPPED, activate_drop,
)


@cuda.jit
def batch_norm_statistics(Y, n, k, sw, order, start, stats, s_off, istd, center, training, state, K):
    """Column ``j``'s centre ``center[j]`` and ``istd[s_off + j] = 1 / sqrt(var + eps)``.

    Training: ``mu = sum_r w_r y_rj / W`` and ``s2 = sum_r w_r (y_rj - mu)^2
    / W`` over the rows ``r`` of ``Y`` (weights ``sw[order[start + r]]``,
    so a weight of 2 equals a repeated row; Ioffe & Szegedy, 2015,
    Algorithm 1), and, unless ``state`` says the epoch stopped, the moving
    mean ``stats[s_off + j]`` and variance ``stats[s_off + k + j]`` updated
    as ``m <- momentum m + (1 - momentum) batch``. Otherwise the moving
    statistics are the centre and variance.
    """
    j = cuda.grid(1)
    if j >= k:
        return
    mean_at, var_at = s_off + j, s_off + k + j
    if training:
        total = K[K_ZERO]
        for r in range(n):
            total += sw[order[start + r]]
        inv_total = K[K_ONE] / total
        mu = K[K_ZERO]
        for r in range(n):
            mu += sw[order[start + r]] * Y[r * k + j]
        mu *= inv_total
        spread = K[K_ZERO]
        for r in range(n):
            d = Y[r * k + j] - mu
            spread += sw[order[start + r]] * d * d
        batch_var = spread * inv_total
        istd[mean_at] = K[K_ONE] / math.sqrt(batch_var + K[K_BN_EPSILON])
        if state[S_STOPPED] == 0.0:
            stats[mean_at] = K[K_BN_KEEP] * stats[mean_at] + K[K_BN_NEW] * mu
            stats[var_at] = K[K_BN_KEEP] * stats[var_at] + K[K_BN_NEW] * batch_var
        center[j] = mu
    else:
        istd[mean_at] = K[K_ONE] / math.sqrt(stats[var_at] + K[K_BN_EPSILON])
        center[j] = stats[mean_at]


@cuda.jit
def batch_norm_forward(Y, H, Out, A, M, S, center, istd, s_off, params, g_off, p_off, keys, K, drop_table,
                       n, k, act, mode, rate, alpha_dropout, d, rrelu_salt, lower, upper):
    """``H = xhat = (Y - center) istd``, ``Out = gamma xhat + beta``, ``A = dropout(act(Out))``.

    ``gamma`` and ``beta`` are ``params[g_off:g_off + k]`` and the next
    ``k`` values; ``istd`` starts at ``s_off``. The activation and dropout
    are :func:`~skdeep.kernels.cuda.kernels.activate_drop`'s (``act``
    identity and ``A`` = ``Out`` for batch norm after the activation or on
    the input; dropout table row and salt ``d``).
    """
    i = cuda.grid(1)
    if i >= n * k:
        return
    r = i // k
    j = i - r * k
    h = (Y[i] - center[j]) * istd[s_off + j]
    H[i] = h
    y = params[g_off + j] * h + params[g_off + k + j]
    Out[i] = y
    A[i] = activate_drop(y, i, r, j, M, S, params, p_off, keys, K, drop_table, act, mode, rate, alpha_dropout,
                         d, rrelu_salt, lower, upper)


@cuda.jit
def batch_norm_backward_sums(D, M, H, n, k, masked, sw, order, start, grad, g_off, sums, K):
    """Column ``j``'s ``sum dy`` and ``sum dy xhat`` (``dy = D``, times ``M`` when ``masked``).

    They are beta's and gamma's gradients (``grad[g_off + k + j]`` and
    ``grad[g_off + j]``) and go to ``sums[j]`` and ``sums[k + j]`` for
    :func:`batch_norm_backward`; thread 0 writes ``1 / W`` (the weights'
    sum over the batch) to ``sums[2 k]``.
    """
    j = cuda.grid(1)
    if j >= k:
        return
    sum_d = K[K_ZERO]
    sum_dh = K[K_ZERO]
    for r in range(n):
        i = r * k + j
        dy = D[i]
        if masked:
            dy *= M[i]
        sum_d += dy
        sum_dh += dy * H[i]
    grad[g_off + j] = sum_dh
    grad[g_off + k + j] = sum_d
    sums[j] = sum_d
    sums[k + j] = sum_dh
    if j == 0:
        total = K[K_ZERO]
        for r in range(n):
            total += sw[order[start + r]]
        sums[2 * k] = K[K_ONE] / total


@cuda.jit
def batch_norm_backward(D, M, H, n, k, masked, sw, order, start, params, g_off, istd, s_off, sums):
    """``D <- gamma istd (dy - (w_r / W) (sum dy + xhat sum(dy xhat)))`` (Ioffe & Szegedy, 2015).

    Training-mode batch norm's input gradient with weighted statistics
    (:func:`skdeep.kernels.cpu.batch_norm._batch_norm_backward`); ``dy = D``,
    times ``M`` when ``masked``; the sums from :func:`batch_norm_backward_sums`.
    """
    i = cuda.grid(1)
    if i >= n * k:
        return
    r = i // k
    j = i - r * k
    dy = D[i]
    if masked:
        dy *= M[i]
    share = sw[order[start + r]] * sums[2 * k]
    D[i] = params[g_off + j] * istd[s_off + j] * (dy - share * (sums[j] + H[i] * sums[k + j]))
