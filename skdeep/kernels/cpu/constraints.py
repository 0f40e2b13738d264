"""Constraints on gradients and weights: clipping, max-norm and the weight penalties.

Gradient clipping follows Pascanu, Mikolov & Bengio (2013), with Keras'
``clipvalue``/``clipnorm``/``global_clipnorm`` semantics; max-norm follows
Srivastava et al. (2014), section 5.1; the penalties are scikit-learn's L2
(``sklearn/neural_network/_multilayer_perceptron.py``, ``_backprop``) and an
L1 term scaled alike.
"""

import numpy as np
from numba import njit

from skdeep.kernels import codes as C
from skdeep.kernels.cpu._jit import INNER
from skdeep.kernels.cpu.layout import _matrix
from skdeep.kernels.cpu.linalg import _scale, _sum_squares, _sum_squares_abs
from skdeep.kernels.cpu.optimizers import _finalize_gradient


@njit(**INNER)
def _clip_norm(x, clipnorm):
    """Rescale ``x`` to norm at most ``clipnorm``."""
    norm = np.sqrt(_sum_squares(x))
    if norm > clipnorm:
        _scale(x, clipnorm / norm)


@njit(**INNER)
def _clip_gradients(params, grad, offsets, units, n_params, w_first, b_first, x_first, alpha, l1, sw_sum, opt, fopt):
    """Finalize the gradient and clip it (Pascanu et al., 2013; Keras' semantics).

    Frozen parameters get a zero gradient. ``clipvalue`` clips every element;
    ``clipnorm`` rescales each parameter tensor (weight matrix, bias, PReLU
    slopes, gamma, beta) to at most that norm; ``global_clipnorm`` rescales the
    whole gradient.
    """
    n_layers = units.shape[0] - 1
    n_coef = offsets[0, C.L_B]
    bias_end = offsets[n_layers, C.L_X]
    l1_grad = 0.0 if opt == C.FTRL else l1
    grad[:w_first] = 0.0
    grad[n_coef:b_first] = 0.0
    grad[bias_end:x_first] = 0.0
    scale = 1.0 / sw_sum
    _finalize_gradient(params[w_first:n_coef], grad[w_first:n_coef], alpha, l1_grad, scale)
    _scale(grad[b_first:bias_end], scale)
    _scale(grad[x_first:n_params], scale)
    clipvalue = fopt[C.FO_CLIPVALUE]
    if clipvalue > 0.0:
        dt = grad.dtype.type
        upper = dt(clipvalue)
        lower = -upper
        for i in range(n_params):
            grad[i] = min(max(grad[i], lower), upper)
    clipnorm = fopt[C.FO_CLIPNORM]
    if clipnorm > 0.0:
        for layer in range(n_layers + 1):
            if layer < n_layers:
                w = offsets[layer, C.L_W]
                _clip_norm(grad[w : w + units[layer] * units[layer + 1]], clipnorm)
                b = offsets[layer, C.L_B]
                _clip_norm(grad[b : b + units[layer + 1]], clipnorm)
            width = units[layer + 1] if layer < n_layers else units[0]
            p = offsets[layer, C.L_P]
            if p >= 0:
                _clip_norm(grad[p : p + width], clipnorm)
            g = offsets[layer, C.L_G]
            if g >= 0:
                _clip_norm(grad[g : g + width], clipnorm)
                _clip_norm(grad[g + width : g + 2 * width], clipnorm)
    global_clipnorm = fopt[C.FO_GLOBAL_CLIPNORM]
    if global_clipnorm > 0.0:
        _clip_norm(grad[:n_params], global_clipnorm)


@njit(**INNER)
def _max_norm(params, units, offsets, first_trainable, r, norms):
    """Rescale each unit's incoming weight vector to norm at most ``r`` (Srivastava et al., 2014).

    ``norms`` (at least the widest layer) first accumulates the squared norms
    row by row, then holds each column's factor (``r / norm`` or 1).
    """
    dt = params.dtype.type
    for layer in range(first_trainable, units.shape[0] - 1):
        W = _matrix(params, units, offsets, layer)
        k = W.shape[1]
        factors = norms[:k]
        factors[:] = 0.0
        for i in range(W.shape[0]):
            for j in range(k):
                factors[j] += W[i, j] * W[i, j]
        for j in range(k):
            norm = np.sqrt(factors[j])
            factors[j] = dt(r) / norm if norm > r else dt(1.0)
        for i in range(W.shape[0]):
            for j in range(k):
                W[i, j] *= factors[j]


@njit(**INNER)
def _penalty(params, n_coef, alpha, l1):
    """``0.5 * alpha * sum(W^2) + l1 * sum(|W|)`` over the weight matrices."""
    if alpha > 0.0 or l1 > 0.0:
        sumsq, sumabs = _sum_squares_abs(params[:n_coef])
        return 0.5 * alpha * sumsq + l1 * sumabs
    return 0.0
