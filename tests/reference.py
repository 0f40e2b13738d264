"""Readable NumPy reference implementations of the multilayer-perceptron math.

These functions restate, slowly and plainly, what scikit-learn's
``sklearn/neural_network`` package computes (``_base.py``,
``_multilayer_perceptron.py`` and ``_stochastic_optimizers.py``), so the
compiled kernels of :mod:`skdeep.kernels` can be compared against them. They
always compute in float64, allocate freely and never work in place.

Conventions shared with the kernels:

* ``units = [n_features, h_1, ..., n_outputs]`` are the layer widths.
* Weight matrix ``l`` has shape ``(units[l], units[l + 1])`` (fan-in, fan-out).
* The flat parameter vector holds every weight matrix (row-major) first, then
  every bias vector: the layout scikit-learn's L-BFGS solver packs
  (``_pack`` in ``_multilayer_perceptron.py``). The kernels append extra
  parameters (PReLU slopes, batch-norm gamma and beta) after the biases; the
  plain networks here have none (``reference_toolkit.py`` covers those).
* Hidden activations and output activations/losses are named by strings; the
  ``*_NAMES`` dictionaries at the bottom map :mod:`skdeep.kernels.codes` to them.
"""

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, xlogy

# ---------------------------------------------------------------------------
# Hidden activations and their derivatives
# ---------------------------------------------------------------------------


def identity(z):
    """Identity activation, ``f(z) = z``."""
    return np.array(z, dtype=np.float64)


def logistic(z):
    """Logistic sigmoid, ``f(z) = 1 / (1 + exp(-z))`` (scikit-learn uses ``expit``)."""
    return expit(np.asarray(z, dtype=np.float64))


def tanh(z):
    """Hyperbolic tangent, ``f(z) = tanh(z)``."""
    return np.tanh(np.asarray(z, dtype=np.float64))


def relu(z):
    """Rectified linear unit, ``f(z) = max(z, 0)`` (NaN propagates, as ``np.maximum``)."""
    return np.maximum(np.asarray(z, dtype=np.float64), 0.0)


def identity_derivative(a):
    """Derivative of the identity written through its output ``a``: ``1``."""
    return np.ones_like(a, dtype=np.float64)


def logistic_derivative(a):
    """Derivative of the sigmoid through its output: ``f'(z) = a (1 - a)``."""
    return a * (1.0 - a)


def tanh_derivative(a):
    """Derivative of tanh through its output: ``f'(z) = 1 - a^2``."""
    return 1.0 - a**2


def relu_derivative(a):
    """Derivative of ReLU through its output: ``0`` where ``a == 0``, else ``1``.

    scikit-learn's ``inplace_relu_derivative`` zeroes the delta where ``Z == 0``.
    """
    return np.where(a == 0.0, 0.0, 1.0)


HIDDEN_ACTIVATIONS = {"identity": identity, "logistic": logistic, "tanh": tanh, "relu": relu}
DERIVATIVES = {
    "identity": identity_derivative,
    "logistic": logistic_derivative,
    "tanh": tanh_derivative,
    "relu": relu_derivative,
}

# ---------------------------------------------------------------------------
# Output activations
# ---------------------------------------------------------------------------


def exp(z):
    """Exponential output (log link of the Poisson loss), ``f(z) = exp(z)``."""
    return np.exp(np.asarray(z, dtype=np.float64))


def softmax(z):
    """Row-wise softmax, ``p_j = exp(z_j - max z) / sum_k exp(z_k - max z)``.

    Subtracting the row maximum changes nothing mathematically and avoids
    overflow (as scikit-learn's ``inplace_softmax``).
    """
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------
# Losses (weighted mean over samples, as scikit-learn's ``LOSS_FUNCTIONS``)
# ---------------------------------------------------------------------------


def _weights(y, sample_weight):
    if sample_weight is None:
        return np.ones(y.shape[0])
    return np.asarray(sample_weight, dtype=np.float64)


def squared_error(y, p, sample_weight=None, eps=None):
    """Half squared error, averaged over outputs, weighted mean over samples.

    ``L = 0.5 * sum_i w_i * mean_j (y_ij - p_ij)^2 / sum_i w_i``
    (scikit-learn's ``squared_loss``). ``eps`` is unused.
    """
    w = _weights(y, sample_weight)
    return 0.5 * np.average((y - p) ** 2, weights=w, axis=0).mean()


def poisson(y, p, sample_weight=None, eps=None):
    """Half Poisson deviance, summed over outputs, weighted mean over samples.

    ``L = sum_i w_i * sum_j [y log(y / p) - y + p]_ij / sum_i w_i`` with
    ``0 log 0 = 0`` (scikit-learn's ``poisson_loss``; McCullagh & Nelder,
    *Generalized Linear Models*, 1989, table 2.1: half the unit deviance).
    ``eps`` is unused.
    """
    w = _weights(y, sample_weight)
    return np.average(xlogy(y, y / p) - y + p, weights=w, axis=0).sum()


def binary_log_loss(y, p, sample_weight=None, eps=None):
    """Binary cross-entropy of every output, summed over outputs.

    ``L = -sum_i w_i sum_j [y log q + (1 - y) log(1 - q)]_ij / sum_i w_i`` with
    ``q = clip(p, eps, 1 - eps)`` (scikit-learn's ``binary_log_loss``).
    """
    w = _weights(y, sample_weight)
    eps = np.finfo(np.float64).eps if eps is None else eps
    q = np.clip(p, eps, 1.0 - eps)
    return -np.average(xlogy(y, q) + xlogy(1.0 - y, 1.0 - q), weights=w, axis=0).sum()


def multiclass_log_loss(y, p, sample_weight=None, eps=None):
    """Categorical cross-entropy, ``L = -sum_i w_i sum_j y_ij log q_ij / sum_i w_i``.

    ``q = clip(p, eps, 1 - eps)`` (scikit-learn's ``log_loss`` for more than
    one output column).
    """
    w = _weights(y, sample_weight)
    eps = np.finfo(np.float64).eps if eps is None else eps
    q = np.clip(p, eps, 1.0 - eps)
    return -np.average(xlogy(y, q), weights=w, axis=0).sum()


OUTPUT_ACTIVATIONS = {
    "squared_error": identity,
    "poisson": exp,
    "binary_log_loss": logistic,
    "multiclass_log_loss": softmax,
}
LOSSES = {
    "squared_error": squared_error,
    "poisson": poisson,
    "binary_log_loss": binary_log_loss,
    "multiclass_log_loss": multiclass_log_loss,
}

# ---------------------------------------------------------------------------
# Flat parameter vector
# ---------------------------------------------------------------------------


def n_params(units):
    """Number of weights plus number of biases."""
    units = list(units)
    return sum(a * b for a, b in zip(units[:-1], units[1:])) + sum(units[1:])


def pack(coefs, intercepts):
    """Flat vector: every weight matrix raveled row-major, then every bias."""
    return np.concatenate([np.ravel(w) for w in coefs] + [np.ravel(b) for b in intercepts])


def unpack(params, units):
    """Inverse of :func:`pack`: ``(coefs, intercepts)`` as float64 copies."""
    params = np.asarray(params, dtype=np.float64)
    units = [int(u) for u in units]
    coefs, intercepts = [], []
    start = 0
    for fan_in, fan_out in zip(units[:-1], units[1:]):
        coefs.append(params[start : start + fan_in * fan_out].reshape(fan_in, fan_out).copy())
        start += fan_in * fan_out
    for fan_out in units[1:]:
        intercepts.append(params[start : start + fan_out].copy())
        start += fan_out
    assert start == params.size, "parameter vector does not match the layer widths"
    return coefs, intercepts


def layout(units, capacity):
    """Offsets ``[w_start, b_start, a_start]`` of each layer.

    Weights start where the previous layers' weights end; biases start after
    all weights; layer ``l`` owns ``capacity * units[l + 1]`` activation values.
    """
    units = [int(u) for u in units]
    sizes_w = [a * b for a, b in zip(units[:-1], units[1:])]
    rows = []
    for layer in range(len(units) - 1):
        w_start = sum(sizes_w[:layer])
        b_start = sum(sizes_w) + sum(units[1 : layer + 1])
        a_start = capacity * sum(units[1 : layer + 1])
        rows.append([w_start, b_start, a_start])
    return np.array(rows, dtype=np.int64).reshape(len(units) - 1, 3)


# ---------------------------------------------------------------------------
# Forward and backward passes
# ---------------------------------------------------------------------------


def _dense(X):
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)


def forward(X, coefs, intercepts, activation, output):
    """Activations of every layer, ``[X, a_1, ..., p]``.

    ``a_l = f(a_{l-1} @ W_l + b_l)`` with the hidden activation ``f`` on hidden
    layers and the output activation of ``output`` on the last layer
    (Rumelhart, Hinton & Williams 1986; scikit-learn's ``_forward_pass``).
    """
    a = _dense(X)
    activations = [a]
    last = len(coefs) - 1
    for layer, (w, b) in enumerate(zip(coefs, intercepts)):
        z = a @ np.asarray(w, dtype=np.float64) + np.asarray(b, dtype=np.float64)
        a = OUTPUT_ACTIVATIONS[output](z) if layer == last else HIDDEN_ACTIVATIONS[activation](z)
        activations.append(a)
    return activations


def predict(X, coefs, intercepts, activation, output):
    """Network output ``p`` for every row of ``X``."""
    return forward(X, coefs, intercepts, activation, output)[-1]


def l2_penalty(coefs, alpha, sw_sum):
    """scikit-learn's L2 term, ``0.5 * alpha * sum_l ||W_l||_F^2 / sum(w)`` (biases excluded)."""
    return 0.5 * alpha * sum(np.sum(np.asarray(w, dtype=np.float64) ** 2) for w in coefs) / sw_sum


def l1_penalty(coefs, l1, sw_sum):
    """skdeep's L1 term, scaled like the L2 one: ``l1 * sum_l |W_l|_1 / sum(w)`` (biases excluded)."""
    return l1 * sum(np.sum(np.abs(np.asarray(w, dtype=np.float64))) for w in coefs) / sw_sum


def loss_and_gradient(
    X, Y, coefs, intercepts, activation, output, alpha=0.0, sample_weight=None, eps=None, l1=0.0
):
    """Loss and gradient exactly as scikit-learn's ``_backprop`` defines them.

    * ``loss = LOSS(Y, p, w) + 0.5 * alpha * sum ||W||^2 / sum(w)``
      (``+ l1 * sum |W| / sum(w)`` with skdeep's L1 penalty, whose gradient is
      the subgradient ``l1 * sign(W) / sum(w)``, ``sign(0) = 0``)
    * ``delta_out = (p - Y) * w[:, None]`` (canonical link: Bishop 2006, eq. 4.91
      and 5.18). For squared error with ``k`` outputs this is ``k`` times the
      derivative of the output-averaged loss: scikit-learn's convention.
    * ``dW_l = (a_{l-1}.T @ delta_l + alpha * W_l + l1 * sign(W_l)) / sum(w)``,
      ``db_l = sum_i delta_l / sum(w)``
    * ``delta_{l-1} = (delta_l @ W_l.T) * f'(a_{l-1})`` (backpropagation,
      Rumelhart, Hinton & Williams 1986).

    Returns
    -------
    loss : float
    coef_grads, intercept_grads : list of ndarray
    """
    Y = np.asarray(Y, dtype=np.float64)
    w = _weights(Y, sample_weight)
    sw_sum = w.sum()
    coefs = [np.asarray(c, dtype=np.float64) for c in coefs]
    activations = forward(X, coefs, intercepts, activation, output)
    p = activations[-1]
    loss = LOSSES[output](Y, p, w, eps) + l2_penalty(coefs, alpha, sw_sum) + l1_penalty(coefs, l1, sw_sum)

    delta = (p - Y) * w[:, None]
    coef_grads = [None] * len(coefs)
    intercept_grads = [None] * len(coefs)
    for layer in range(len(coefs) - 1, -1, -1):
        a_below = activations[layer]
        penalty = alpha * coefs[layer] + l1 * np.sign(coefs[layer])
        coef_grads[layer] = (a_below.T @ delta + penalty) / sw_sum
        intercept_grads[layer] = delta.sum(axis=0) / sw_sum
        if layer > 0:
            delta = (delta @ coefs[layer].T) * DERIVATIVES[activation](a_below)
    return loss, coef_grads, intercept_grads


def flat_loss_and_gradient(
    X, Y, params, units, activation, output, alpha=0.0, sample_weight=None, eps=None, l1=0.0
):
    """:func:`loss_and_gradient` on a flat parameter vector; returns ``(loss, grad)``."""
    coefs, intercepts = unpack(params, units)
    loss, coef_grads, intercept_grads = loss_and_gradient(
        X, Y, coefs, intercepts, activation, output, alpha, sample_weight, eps, l1
    )
    return loss, pack(coef_grads, intercept_grads)


# ---------------------------------------------------------------------------
# Optimizer steps (scikit-learn's ``_stochastic_optimizers.py``)
# ---------------------------------------------------------------------------


def sgd_step(params, grads, velocities, learning_rate, momentum, nesterov):
    """One step of SGD with (Nesterov) momentum, as ``SGDOptimizer._get_updates``.

    ``v <- momentum * v - lr * g``; the update is ``v`` or, with Nesterov's
    momentum, ``momentum * v - lr * g`` (Sutskever et al. 2013, eq. 1-4 in
    scikit-learn's formulation). All arguments are lists of arrays (a flat
    vector is a list of one).

    Returns
    -------
    params, velocities : list of ndarray
    """
    updates = [momentum * velocity - learning_rate * grad for velocity, grad in zip(velocities, grads)]
    velocities = updates
    if nesterov:
        updates = [momentum * velocity - learning_rate * grad for velocity, grad in zip(velocities, grads)]
    params = [param + update for param, update in zip(params, updates)]
    return params, velocities


def adam_step(params, grads, ms, vs, t, learning_rate_init, beta_1, beta_2, epsilon):
    """One step of Adam, as ``AdamOptimizer._get_updates`` (Kingma & Ba 2015, Alg. 1).

    ``t <- t + 1``; ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
    ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``; ``w <- w - lr_t m / (sqrt(v) + eps)``
    (the bias correction folded into the step size, Kingma & Ba 2015, sec. 2).

    Returns
    -------
    params, ms, vs : list of ndarray
    t : int
    """
    t += 1
    ms = [beta_1 * m + (1 - beta_1) * grad for m, grad in zip(ms, grads)]
    vs = [beta_2 * v + (1 - beta_2) * (grad**2) for v, grad in zip(vs, grads)]
    learning_rate = learning_rate_init * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
    updates = [-learning_rate * m / (np.sqrt(v) + epsilon) for m, v in zip(ms, vs)]
    params = [param + update for param, update in zip(params, updates)]
    return params, ms, vs, t


def trainable(units, first_trainable):
    """Boolean mask of the flat vector: the weights and biases of layers ``>= first_trainable``."""
    coefs, intercepts = unpack(np.zeros(n_params(units)), units)
    for layer in range(first_trainable, len(coefs)):
        coefs[layer][...] = 1.0
        intercepts[layer][...] = 1.0
    return pack(coefs, intercepts) == 1.0


def train_epoch(
    X, Y, sample_weight, order, batch_size, learning_rates, momenta, params, units,
    activation, output, alpha, optimizer, slots, step, nesterov=False, beta_2=0.999,
    epsilon=1e-8, eps=None, l1=0.0, first_trainable=0,
):
    """One epoch of minibatch training, as scikit-learn's ``_fit_stochastic`` loop.

    Batch ``b`` holds the rows ``order[b * batch_size:(b + 1) * batch_size]``
    and uses learning rate ``learning_rates[b]`` and momentum ``momenta[b]``
    (SGD's momentum, Adam's ``beta_1``). Its loss and gradient are those of
    :func:`loss_and_gradient` on the batch (penalties divided by the batch's
    weight sum). Training stops before updating on the first batch whose loss
    is not finite; the step counter counts completed batches. ``optimizer`` is
    ``"sgd"``, ``"adam"`` or ``None`` (no update: only the last batch's
    gradient is returned). ``slots`` holds the velocity (SGD) or the first and
    second moments (Adam) as flat vectors. Layers below ``first_trainable`` are
    frozen: neither their parameters nor their slots change.

    Returns
    -------
    result : dict
        ``loss_sum`` (sum of batch loss times batch size), ``n_batches``,
        ``step``, ``params``, ``slots`` and ``grad`` (the last gradient).
    """
    params = np.array(params, dtype=np.float64)
    slots = [np.array(s, dtype=np.float64) for s in slots]
    mask = trainable(units, first_trainable)
    Xd = _dense(X)
    Y = np.asarray(Y, dtype=np.float64)
    sw = _weights(Y, sample_weight)
    loss_sum, n_batches, grad = 0.0, 0, None
    for start in range(0, len(order), batch_size):
        rows = np.asarray(order[start : start + batch_size])
        loss, grad = flat_loss_and_gradient(
            Xd[rows], Y[rows], params, units, activation, output, alpha, sw[rows], eps, l1
        )
        if not np.isfinite(loss):
            break
        loss_sum += loss * len(rows)
        lr, mu = learning_rates[n_batches], momenta[n_batches]
        if optimizer == "sgd":
            (new,), (velocity,) = sgd_step(
                [params[mask]], [grad[mask]], [slots[0][mask]], lr, mu, nesterov
            )
            params[mask], slots[0][mask] = new, velocity
            step += 1
        elif optimizer == "adam":
            (new,), (m,), (v,), step = adam_step(
                [params[mask]], [grad[mask]], [slots[0][mask]], [slots[1][mask]], step, lr,
                mu, beta_2, epsilon,
            )
            params[mask], slots[0][mask], slots[1][mask] = new, m, v
        else:
            step += 1
        n_batches += 1
    return dict(
        loss_sum=loss_sum, n_batches=n_batches, step=step, params=params, slots=slots, grad=grad
    )


# ---------------------------------------------------------------------------
# Kernel codes -> reference names
# ---------------------------------------------------------------------------

from skdeep.kernels import codes as _codes  # noqa: E402
from skdeep.kernels import cpu as _cpu  # noqa: E402

ACTIVATION_NAMES = {
    _codes.IDENTITY: "identity",
    _codes.LOGISTIC: "logistic",
    _codes.TANH: "tanh",
    _codes.RELU: "relu",
}
OUTPUT_NAMES = {
    _codes.SQUARED_ERROR: "squared_error",
    _codes.POISSON: "poisson",
    _codes.BINARY_LOG_LOSS: "binary_log_loss",
    _codes.MULTICLASS_LOG_LOSS: "multiclass_log_loss",
}


# ---------------------------------------------------------------------------
# Test helpers: the kernels' calling conventions
# ---------------------------------------------------------------------------
#
# Everything the tests need to know about the kernels' argument lists lives
# here, so a change of signature touches this section only. The networks are
# plain multilayer perceptrons: no batch norm, no dropout, no extra parameters.


def kernel_input(X, dtype, sparse):
    """``(Xd, Xv, Xi, Xp, sparse)`` as the kernels take a dense or CSR matrix."""
    dtype = np.dtype(dtype)
    no_index = np.empty(0, dtype=np.int64)
    if sparse:
        X = sp.csr_matrix(X)
        return (
            np.empty((0, X.shape[1]), dtype=dtype),
            np.ascontiguousarray(X.data, dtype=dtype),
            X.indices.astype(np.int64),
            X.indptr.astype(np.int64),
            True,
        )
    X = _dense(X)
    return (np.ascontiguousarray(X, dtype=dtype), np.empty(0, dtype=dtype), no_index, no_index, False)


class KernelNet:
    """A plain MLP as the kernels take it: widths, option vectors and work buffers.

    Parameters
    ----------
    units : sequence of int
    activation, output : int
        ``skdeep.kernels.codes`` of the hidden activation and the output/loss.
    dtype : numpy dtype
        The log loss clips probabilities to ``[eps, 1 - eps]`` with this
        dtype's machine epsilon, as the estimators do.
    """

    def __init__(self, units, activation, output, dtype):
        self.units = np.asarray(units, dtype=np.int64)
        self.dtype = np.dtype(dtype)
        self.iopt = np.zeros(_codes.N_IOPTIONS, dtype=np.int64)
        self.iopt[_codes.IO_ACTIVATION] = activation
        self.iopt[_codes.IO_OUTPUT] = output
        self.fopt = np.zeros(_codes.N_FOPTIONS)
        self.fopt[_codes.FO_LOG_EPS] = np.finfo(self.dtype).eps
        self.dropout = np.zeros(len(self.units) - 1)
        self.stats = np.empty(0, dtype=self.dtype)

    def layout(self, capacity):
        """``cpu.layout``: ``(offsets, n_params, n_stats)``."""
        return _cpu.layout(self.units, capacity, self.iopt)

    def buffers(self, capacity, sparse):
        """``(grad, bufs, ibufs, keys, dbuf1, dbuf2)`` for batches of up to ``capacity`` rows.

        Filled with NaN, so a kernel that reads a value it did not write shows it.
        """
        units, dtype = self.units, self.dtype

        def nans(*shape):
            return np.full(shape, np.nan, dtype=dtype)

        size = capacity * int(units[1:].sum())
        grad = nans(n_params(units))
        bufs = (nans(size), nans(size), nans(0), nans(0), nans(0), nans(1), nans(2 * int(units.max())))
        ibufs = (nans(0 if sparse else capacity, units[0]), *(nans(0, units[0]) for _ in range(3)))
        keys = np.zeros(capacity, dtype=np.uint64)
        dbuf1 = nans(capacity * int(units.max()))
        return grad, bufs, ibufs, keys, dbuf1, nans(dbuf1.size)

    def predict(self, data, params):
        """``cpu.predict`` (inference mode)."""
        return _cpu.predict(*data, params, self.stats, self.units, self.iopt, self.fopt, self.dropout)

    def loss_grad(self, data, Y, sw, params, alpha=0.0, l1=0.0):
        """``cpu.loss_grad``: ``(loss, gradient)``; ``params`` is only read."""
        grad, bufs, ibufs, keys, dbuf1, dbuf2 = self.buffers(len(Y), data[4])
        loss = _cpu.loss_grad(
            *data, Y, sw, params, self.stats, grad, self.units, self.iopt, self.fopt,
            self.dropout, float(alpha), float(l1), 0, bufs, ibufs, keys, dbuf1, dbuf2,
        )
        return loss, grad

    def train_epoch(self, data, Y, sw, order, batch_size, lrs, momenta, params, slots, *,
                    alpha, l1, opt, hp, step, first_trainable=0):
        """``cpu.train_epoch``, updating ``params`` and ``slots`` in place.

        Returns ``(loss_sum, n_batches, step, grad)``; ``grad`` is the gradient
        buffer as the kernel left it.
        """
        grad, bufs, ibufs, keys, dbuf1, dbuf2 = self.buffers(batch_size, data[4])
        loss_sum, n_batches, step = _cpu.train_epoch(
            *data, Y, sw, order, batch_size, np.asarray(lrs, dtype=np.float64),
            np.asarray(momenta, dtype=np.float64), params, self.stats, grad, slots, self.units,
            self.iopt, self.fopt, self.dropout, float(alpha), float(l1), opt, hp, step,
            first_trainable, 0, bufs, ibufs, keys, dbuf1, dbuf2, np.empty((0, 5)),
        )
        return loss_sum, n_batches, step, grad


def central_differences(f, x, h=1e-6):
    """``(f(x + h e_i) - f(x - h e_i)) / 2h`` for every coordinate ``i``."""
    fd = np.empty_like(x)
    for i in range(x.size):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        fd[i] = (f(up) - f(down)) / (2 * h)
    return fd
