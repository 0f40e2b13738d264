"""Output layers: each output activation fused with its canonical loss.

With the canonical link of each loss, the output delta is ``dL/dz = p - y``
(Bishop, *Pattern Recognition and Machine Learning*, 2006, eq. 4.91 and 5.18),
scaled by the sample weight as in scikit-learn. Losses follow scikit-learn's
``sklearn/neural_network/_base.py`` (``LOSS_FUNCTIONS``); the loss sums are
float64 in every dtype.

Adding a loss: its output kernel ``(Z)`` (in place) and its loss kernel
``(Z, Y, sw, rows, eps) -> sum_i w_i loss_i``, one line in :data:`LOSSES`, a
code in :mod:`skdeep.kernels.codes` and its NumPy reference in
``tests/reference.py``.
"""

import numpy as np
from numba import literal_unroll, njit

from skdeep.kernels import codes as C
from skdeep.kernels.cpu._jit import INNER
from skdeep.kernels.cpu.activations import _activate, logistic
from skdeep.kernels.cpu.linalg import _add_row


@njit(**INNER)
def identity_output(Z, b):
    """``p = z`` (regression)."""


@njit(**INNER)
def exp_output(Z, b):
    """``p = exp(z)`` (Poisson regression, log link)."""
    n, k = Z.shape
    for r in range(n):
        for j in range(k):
            Z[r, j] = np.exp(Z[r, j])


@njit(**INNER)
def logistic_output(Z, b):
    """``p = 1 / (1 + exp(-z))`` per output: the hidden logistic kernel, in place."""
    logistic(Z, Z, 0.0, Z[:0], b[:0])


@njit(**INNER)
def softmax_output(Z, b):
    """``p_j = exp(z_j - m) / sum_l exp(z_l - m)``, ``m = max_l z_l`` (shifted for stability)."""
    n, k = Z.shape
    dt = Z.dtype.type
    for r in range(n):
        m = Z[r, 0]
        for j in range(1, k):
            m = max(m, Z[r, j])
        s = dt(0.0)
        for j in range(k):
            Z[r, j] = np.exp(Z[r, j] - m)
            s += Z[r, j]
        for j in range(k):
            Z[r, j] /= s


@njit(**INNER)
def squared_error(Z, Y, sw, rows, eps):
    """``sum_i w_i sum_j (y_ij - p_ij)^2 / (2 k)``: half the squared error, averaged over outputs."""
    n, k = Z.shape
    total = 0.0
    for r in range(n):
        i = rows[r]
        row_loss = 0.0
        for j in range(k):
            row_loss += 0.5 * (Y[i, j] - Z[r, j]) ** 2 / k
        total += sw[i] * row_loss
    return total


@njit(**INNER)
def poisson(Z, Y, sw, rows, eps):
    """``sum_i w_i sum_j (y log(y / p) - y + p)``: half the Poisson deviance, summed over outputs."""
    n, k = Z.shape
    total = 0.0
    for r in range(n):
        i = rows[r]
        row_loss = 0.0
        for j in range(k):
            p = Z[r, j]
            y = Y[i, j]
            if y > 0:
                row_loss += y * np.log(y / p)
            row_loss += p - y
        total += sw[i] * row_loss
    return total


@njit(**INNER)
def binary_log_loss(Z, Y, sw, rows, eps):
    """``-sum_i w_i sum_j (y log q + (1 - y) log(1 - q))``, ``q = clip(p, eps, 1 - eps)``."""
    n, k = Z.shape
    total = 0.0
    for r in range(n):
        i = rows[r]
        row_loss = 0.0
        for j in range(k):
            y = Y[i, j]
            q = min(max(Z[r, j], eps), 1.0 - eps)
            if y != 0:
                row_loss -= y * np.log(q)
            if y != 1:
                row_loss -= (1.0 - y) * np.log(1.0 - q)
        total += sw[i] * row_loss
    return total


@njit(**INNER)
def multiclass_log_loss(Z, Y, sw, rows, eps):
    """``-sum_i w_i sum_j y_ij log q_ij``, ``q = clip(p, eps, 1 - eps)`` (categorical cross-entropy)."""
    n, k = Z.shape
    total = 0.0
    for r in range(n):
        i = rows[r]
        row_loss = 0.0
        for j in range(k):
            y = Y[i, j]
            q = min(max(Z[r, j], eps), 1.0 - eps)
            if y != 0:
                row_loss -= y * np.log(q)
        total += sw[i] * row_loss
    return total


#: The registry: ``(code, output kernel, loss kernel)`` per output layer.
LOSSES = (
    (C.SQUARED_ERROR, identity_output, squared_error),
    (C.POISSON, exp_output, poisson),
    (C.BINARY_LOG_LOSS, logistic_output, binary_log_loss),
    (C.MULTICLASS_LOG_LOSS, softmax_output, multiclass_log_loss),
)


@njit(**INNER)
def _output(Z, b, out_act):
    """``Z <- out(Z + b)`` in place for the output layer with code ``out_act``; an unknown code raises."""
    _add_row(Z, b)
    found = False
    for entry in literal_unroll(LOSSES):
        if entry[0] == out_act:
            entry[1](Z, b)
            found = True
    if not found:
        raise ValueError("unknown output code")


@njit(**INNER)
def _loss(Z, Y, sw, rows, out_act, eps):
    """``sum_i w_i loss_i`` of the outputs ``Z`` for code ``out_act``; an unknown code raises."""
    total = 0.0
    found = False
    for entry in literal_unroll(LOSSES):
        if entry[0] == out_act:
            total = entry[2](Z, Y, sw, rows, eps)
            found = True
    if not found:
        raise ValueError("unknown output code")
    return total


@njit(**INNER)
def _output_loss_delta(Z, b, Y, sw, rows, out_act, eps, D):
    """Output activation, weighted loss and output delta ``D = w (p - y)``.

    Returns ``(sum_i w_i loss_i, sum_i w_i)`` in float64.
    """
    _output(Z, b, out_act)
    total = _loss(Z, Y, sw, rows, out_act, eps)
    n, k = Z.shape
    sw_sum = 0.0
    for r in range(n):
        i = rows[r]
        w = sw[i]
        sw_sum += w
        for j in range(k):
            D[r, j] = (Z[r, j] - Y[i, j]) * w
    return total, sw_sum


@njit(**INNER)
def _hidden_output(Z, b, iopt, fopt):
    """``Z <- act(Z + b)`` with the hidden activation at inference (an output layer with a layer's codes).

    RReLU uses its mean slope; PReLU has no slopes in an output layer and is not supported.
    """
    act = iopt[C.IO_ACTIVATION]
    alpha = fopt[C.FO_ACT_ALPHA]
    if act == C.RRELU:
        act, alpha = C.LEAKY_RELU, 0.5 * (fopt[C.FO_RRELU_LOWER] + fopt[C.FO_RRELU_UPPER])
    _add_row(Z, b)
    _activate(Z, Z, act, alpha, Z[:0], b[:0])
