"""Hidden-layer activations: each value ``A = f(Z)`` next to its backward pass ``D <- D * f'(Z)``.

Every activation is one loop over a batch ``Z`` of shape ``(n, k)`` with its
constants in the dtype of ``Z``, so float32 layers compute in float32 and the
loops vectorize. All share one signature, ``value(Z, A, alpha, slopes,
prelu)`` and ``backward(Z, D, alpha, slopes, prelu, prelu_grad)``: ``alpha``
is the activation's hyperparameter (leaky slope, ELU alpha), ``slopes`` RReLU's
per-element slopes, ``prelu`` PReLU's per-unit slopes and ``prelu_grad`` their
gradient. ``A`` may be ``Z`` (in place).

Adding an activation: its two kernels below, one line in :data:`ACTIVATIONS`,
a code in :mod:`skdeep.kernels.codes`, its object in :mod:`skdeep.activations`
and its NumPy reference in ``tests/reference_toolkit.py``.
"""

import math

import numpy as np
from numba import literal_unroll, njit

from skdeep.kernels import codes as C
from skdeep.kernels.cpu._jit import INNER
from skdeep.kernels.cpu.dropout import _uniform


@njit(**INNER)
def identity(Z, A, alpha, slopes, prelu):
    """``f(z) = z``."""
    n, k = Z.shape
    for r in range(n):
        for j in range(k):
            A[r, j] = Z[r, j]


@njit(**INNER)
def identity_backward(Z, D, alpha, slopes, prelu, prelu_grad):
    """``f'(z) = 1``: ``D`` is left as it is."""


@njit(**INNER)
def logistic(Z, A, alpha, slopes, prelu):
    """``f(z) = 1 / (1 + exp(-z))``; also the output of the binary log loss."""
    n, k = Z.shape
    one = Z.dtype.type(1.0)
    for r in range(n):
        for j in range(k):
            A[r, j] = one / (one + np.exp(-Z[r, j]))


@njit(**INNER)
def logistic_backward(Z, D, alpha, slopes, prelu, prelu_grad):
    """``f'(z) = f(z) (1 - f(z))``."""
    n, k = Z.shape
    one = Z.dtype.type(1.0)
    for r in range(n):
        for j in range(k):
            a = one / (one + np.exp(-Z[r, j]))
            D[r, j] *= a * (one - a)


@njit(**INNER)
def tanh(Z, A, alpha, slopes, prelu):
    """``f(z) = tanh(z)``."""
    n, k = Z.shape
    for r in range(n):
        for j in range(k):
            A[r, j] = np.tanh(Z[r, j])


@njit(**INNER)
def tanh_backward(Z, D, alpha, slopes, prelu, prelu_grad):
    """``f'(z) = 1 - tanh(z)^2``."""
    n, k = Z.shape
    one = Z.dtype.type(1.0)
    for r in range(n):
        for j in range(k):
            a = np.tanh(Z[r, j])
            D[r, j] *= one - a * a


@njit(**INNER)
def relu(Z, A, alpha, slopes, prelu):
    """``f(z) = max(z, 0)`` (Nair & Hinton, 2010)."""
    n, k = Z.shape
    zero = Z.dtype.type(0.0)
    for r in range(n):
        for j in range(k):
            A[r, j] = max(Z[r, j], zero)


@njit(**INNER)
def relu_backward(Z, D, alpha, slopes, prelu, prelu_grad):
    """``f'(z) = 1 if z > 0 else 0`` (scikit-learn's choice at 0)."""
    n, k = Z.shape
    zero = Z.dtype.type(0.0)
    for r in range(n):
        for j in range(k):
            D[r, j] = zero if Z[r, j] <= zero else D[r, j]


@njit(**INNER)
def leaky_relu(Z, A, alpha, slopes, prelu):
    """``f(z) = z if z >= 0 else alpha z`` (Maas et al., 2013)."""
    n, k = Z.shape
    dt = Z.dtype.type
    zero, a = dt(0.0), dt(alpha)
    for r in range(n):
        for j in range(k):
            z = Z[r, j]
            A[r, j] = z if z >= zero else a * z


@njit(**INNER)
def leaky_relu_backward(Z, D, alpha, slopes, prelu, prelu_grad):
    """``f'(z) = 1 if z >= 0 else alpha``."""
    n, k = Z.shape
    dt = Z.dtype.type
    zero, one, a = dt(0.0), dt(1.0), dt(alpha)
    for r in range(n):
        for j in range(k):
            D[r, j] *= one if Z[r, j] >= zero else a


@njit(**INNER)
def rrelu(Z, A, alpha, slopes, prelu):
    """``f(z) = z if z >= 0 else s z``, ``s = slopes[r, j]`` (Xu et al., 2015; see :func:`rrelu_slopes`)."""
    n, k = Z.shape
    zero = Z.dtype.type(0.0)
    for r in range(n):
        for j in range(k):
            z = Z[r, j]
            A[r, j] = z if z >= zero else slopes[r, j] * z


@njit(**INNER)
def rrelu_backward(Z, D, alpha, slopes, prelu, prelu_grad):
    """``f'(z) = 1 if z >= 0 else slopes[r, j]``."""
    n, k = Z.shape
    dt = Z.dtype.type
    zero, one = dt(0.0), dt(1.0)
    for r in range(n):
        for j in range(k):
            D[r, j] *= one if Z[r, j] >= zero else slopes[r, j]


@njit(**INNER)
def prelu(Z, A, alpha, slopes, prelu):
    """``f(z) = z if z >= 0 else p_j z`` with a learned slope per unit (He et al., 2015)."""
    n, k = Z.shape
    zero = Z.dtype.type(0.0)
    for r in range(n):
        for j in range(k):
            z = Z[r, j]
            A[r, j] = z if z >= zero else prelu[j] * z


@njit(**INNER)
def prelu_backward(Z, D, alpha, slopes, prelu, prelu_grad):
    """``df/dz = 1 if z >= 0 else p_j``; ``df/dp_j = z if z < 0 else 0``, summed into ``prelu_grad``."""
    n, k = Z.shape
    dt = Z.dtype.type
    zero, one = dt(0.0), dt(1.0)
    for r in range(n):
        for j in range(k):
            z = Z[r, j]
            negative = z < zero
            prelu_grad[j] += D[r, j] * z if negative else zero
            D[r, j] *= prelu[j] if negative else one


@njit(**INNER)
def _scaled_elu(Z, A, scale, a):
    """``f(z) = scale (z if z > 0 else a (exp(z) - 1))``."""
    n, k = Z.shape
    dt = Z.dtype.type
    zero, one = dt(0.0), dt(1.0)
    for r in range(n):
        for j in range(k):
            z = Z[r, j]
            A[r, j] = scale * (z if z > zero else a * (np.exp(z) - one))


@njit(**INNER)
def _scaled_elu_backward(Z, D, scale, a):
    """``f'(z) = scale if z > 0 else scale a exp(z)``."""
    n, k = Z.shape
    zero = Z.dtype.type(0.0)
    for r in range(n):
        for j in range(k):
            z = Z[r, j]
            D[r, j] *= scale if z > zero else scale * a * np.exp(z)


@njit(**INNER)
def elu(Z, A, alpha, slopes, prelu):
    """``f(z) = z if z > 0 else alpha (exp(z) - 1)`` (Clevert et al., 2016)."""
    dt = Z.dtype.type
    _scaled_elu(Z, A, dt(1.0), dt(alpha))


@njit(**INNER)
def elu_backward(Z, D, alpha, slopes, prelu, prelu_grad):
    """``f'(z) = 1 if z > 0 else alpha exp(z)``."""
    dt = Z.dtype.type
    _scaled_elu_backward(Z, D, dt(1.0), dt(alpha))


@njit(**INNER)
def selu(Z, A, alpha, slopes, prelu):
    """``f(z) = lambda elu_alpha(z)`` with Klambauer et al.'s (2017) ``lambda``, ``alpha`` (eq. 2)."""
    dt = Z.dtype.type
    _scaled_elu(Z, A, dt(C.SELU_LAMBDA), dt(C.SELU_ALPHA))


@njit(**INNER)
def selu_backward(Z, D, alpha, slopes, prelu, prelu_grad):
    """``f'(z) = lambda if z > 0 else lambda alpha exp(z)``."""
    dt = Z.dtype.type
    _scaled_elu_backward(Z, D, dt(C.SELU_LAMBDA), dt(C.SELU_ALPHA))


@njit(**INNER)
def gelu(Z, A, alpha, slopes, prelu):
    """``f(z) = z Phi(z) = z (1 + erf(z / sqrt 2)) / 2`` (Hendrycks & Gimpel, 2016), exact form."""
    n, k = Z.shape
    dt = Z.dtype.type
    one, half, inv_sqrt2 = dt(1.0), dt(0.5), dt(1.0 / math.sqrt(2.0))
    for r in range(n):
        for j in range(k):
            z = Z[r, j]
            A[r, j] = half * z * (one + math.erf(z * inv_sqrt2))


@njit(**INNER)
def gelu_backward(Z, D, alpha, slopes, prelu, prelu_grad):
    """``f'(z) = Phi(z) + z phi(z)``, ``phi(z) = exp(-z^2 / 2) / sqrt(2 pi)``."""
    n, k = Z.shape
    dt = Z.dtype.type
    one, half = dt(1.0), dt(0.5)
    c = dt(1.0 / math.sqrt(2.0 * math.pi))
    inv_sqrt2 = dt(1.0 / math.sqrt(2.0))
    for r in range(n):
        for j in range(k):
            z = Z[r, j]
            D[r, j] *= half * (one + math.erf(z * inv_sqrt2)) + z * c * np.exp(-half * z * z)


@njit(**INNER)
def swish(Z, A, alpha, slopes, prelu):
    """``f(z) = z sigmoid(z)`` (Ramachandran et al., 2017)."""
    n, k = Z.shape
    one = Z.dtype.type(1.0)
    for r in range(n):
        for j in range(k):
            z = Z[r, j]
            A[r, j] = z / (one + np.exp(-z))


@njit(**INNER)
def swish_backward(Z, D, alpha, slopes, prelu, prelu_grad):
    """``f'(z) = s (1 + z (1 - s))``, ``s = sigmoid(z)``."""
    n, k = Z.shape
    one = Z.dtype.type(1.0)
    for r in range(n):
        for j in range(k):
            z = Z[r, j]
            s = one / (one + np.exp(-z))
            D[r, j] *= s * (one + z * (one - s))


#: The registry: ``(code, value kernel, backward kernel)`` per activation.
ACTIVATIONS = (
    (C.IDENTITY, identity, identity_backward),
    (C.LOGISTIC, logistic, logistic_backward),
    (C.TANH, tanh, tanh_backward),
    (C.RELU, relu, relu_backward),
    (C.LEAKY_RELU, leaky_relu, leaky_relu_backward),
    (C.RRELU, rrelu, rrelu_backward),
    (C.PRELU, prelu, prelu_backward),
    (C.ELU, elu, elu_backward),
    (C.SELU, selu, selu_backward),
    (C.GELU, gelu, gelu_backward),
    (C.SWISH, swish, swish_backward),
)


@njit(**INNER)
def _activate(Z, A, act, alpha, slopes, prelu):
    """``A = f(Z)`` for the activation with code ``act``; an unknown code raises ``ValueError``."""
    found = False
    for entry in literal_unroll(ACTIVATIONS):
        if entry[0] == act:
            entry[1](Z, A, alpha, slopes, prelu)
            found = True
    if not found:
        raise ValueError("unknown activation code")


@njit(**INNER)
def _activation_backward(Z, D, act, alpha, slopes, prelu, prelu_grad):
    """``D <- D * f'(Z)`` in place for code ``act``; PReLU adds its slopes' gradient to ``prelu_grad``."""
    found = False
    for entry in literal_unroll(ACTIVATIONS):
        if entry[0] == act:
            entry[2](Z, D, alpha, slopes, prelu, prelu_grad)
            found = True
    if not found:
        raise ValueError("unknown activation code")


@njit(**INNER)
def rrelu_slopes(slopes, keys, salt, lower, upper, training):
    """RReLU's slopes: uniform in ``[lower, upper]`` while training, their mean otherwise (Xu et al., 2015).

    The uniform numbers come from the rows' keys (:func:`skdeep.kernels.cpu.dropout._uniform`).
    """
    n, k = slopes.shape
    if training:
        for r in range(n):
            for j in range(k):
                slopes[r, j] = lower + (upper - lower) * _uniform(keys[r], salt, j)
    else:
        slopes[:, :] = 0.5 * (lower + upper)
