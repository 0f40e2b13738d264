"""The chapter's toolkit (issue 3): activations, initializers, batch norm, dropout,
MC dropout, max-norm, clipping, the self-normalization guard and diagnostics.

Three layers of checks:

* finite differences of the kernel's own training-mode loss
  (``cpu.loss_grad``) against its gradient, for every activation x batch-norm
  placement and every loss; dropout masks and RReLU slopes are a function of
  the seed and the sample (counter-based generator), so with a fixed seed the
  loss is a deterministic function of the parameters;
* every new kernel against the readable NumPy references of
  ``reference_toolkit.py`` (float32 and float64);
* the estimators' behaviour the chapter (``../shared/reference``) promises.

Squared error with ``k`` outputs: the loss averages over outputs while the
gradient is that of the loss summed over outputs (scikit-learn's convention,
see ``test_gradients.py``), so the finite differences use ``k * loss``.
"""

import itertools
import pickle
import warnings

import numpy as np
import pytest
import reference_toolkit as ref
from reference import central_differences
import scipy.sparse as sp
from numba import njit
from numpy.testing import assert_allclose, assert_array_equal

from skdeep import (
    MLPClassifier,
    MLPRegressor,
    SelfNormalizationWarning,
    activations,
    initializers,
)
from skdeep._engine import KernelInput, Network, _Buffers
from skdeep.activations import ELU, LeakyReLU, PReLU, RReLU
from skdeep.initializers import VarianceScaling
from skdeep.kernels import codes as C
from skdeep.kernels import cpu

ACTIVATIONS = {
    "identity": C.IDENTITY,
    "logistic": C.LOGISTIC,
    "tanh": C.TANH,
    "relu": C.RELU,
    "leaky_relu": C.LEAKY_RELU,
    "rrelu": C.RRELU,
    "prelu": C.PRELU,
    "elu": C.ELU,
    "selu": C.SELU,
    "gelu": C.GELU,
    "swish": C.SWISH,
}
OUTPUTS = {
    "squared_error": C.SQUARED_ERROR,
    "poisson": C.POISSON,
    "binary_log_loss": C.BINARY_LOG_LOSS,
    "multiclass_log_loss": C.MULTICLASS_LOG_LOSS,
}
BN_CODES = {None: C.BN_NONE, "before": C.BN_BEFORE, "after": C.BN_AFTER}
#: Batch-norm placements: (hidden placement, input batch norm).
PLACEMENTS = {
    "none": (None, False),
    "before": ("before", False),
    "after": ("after", False),
    "input": (None, True),
    "input+before": ("before", True),
}
RRELU_BOUNDS = (1 / 8, 1 / 3)


# -- compiled shims ---------------------------------------------------------------
# The kernels' helpers are compiled without Python wrappers (``no_cpython_wrapper``),
# so the tests reach them through these small compiled functions.


@njit
def k_activate(Z, A, act, alpha, slopes, prelu):
    cpu._activate(Z, A, act, alpha, slopes, prelu)


@njit
def k_activation_backward(Z, D, act, alpha, slopes, prelu, prelu_grad):
    cpu._activation_backward(Z, D, act, alpha, slopes, prelu, prelu_grad)


@njit
def k_batch_norm(Z, H, gamma, beta, mean, var, istd, mode, momentum, eps, sw, rows):
    cpu._batch_norm(Z, H, gamma, beta, mean, var, istd, np.empty(Z.shape[1], Z.dtype), mode, momentum, eps, sw, rows)


@njit
def k_batch_norm_backward(D, H, gamma, istd, gamma_grad, beta_grad, sums, sw, rows):
    cpu._batch_norm_backward(D, H, gamma, istd, gamma_grad, beta_grad, sums, sw, rows)


@njit
def k_dropout(A, M, rate, alpha_dropout, keys, salt):
    cpu._dropout(A, M, rate, alpha_dropout, keys, salt)


@njit
def k_row_keys(Xd, Xv, Xi, Xp, sparse, rows, seed, keys):
    cpu._row_keys(Xd, Xv, Xi, Xp, sparse, rows, seed, keys)


@njit
def k_forward(Xd, Xv, Xi, Xp, sparse, rows, sw, params, stats, units, offsets, iopt, fopt, dropout, mode, seed,
            bufs, ibufs, keys, diag):
    cpu._forward(Xd, Xv, Xi, Xp, sparse, rows, sw, params, stats, units, offsets, iopt, fopt, dropout, mode, seed,
                 0, bufs, ibufs, keys, diag)


@njit
def k_clip_gradients(params, grad, offsets, units, n_params, w_first, b_first, x_first, alpha, l1, sw_sum, opt, fopt):
    cpu._clip_gradients(params, grad, offsets, units, n_params, w_first, b_first, x_first, alpha, l1, sw_sum, opt,
                        fopt)


@njit
def k_max_norm(params, units, offsets, first_trainable, r, norms):
    cpu._max_norm(params, units, offsets, first_trainable, r, norms)


def random_keys(n, seed=0):
    """Per-row keys of the kernels' counter-based generator (any uint64 values)."""
    return np.random.default_rng(seed).integers(0, 2**63, size=n, dtype=np.int64).astype(np.uint64)


def options(activation, output, batch_norm=None, input_batch_norm=False, alpha_dropout=False, *,
            momentum=0.99, eps=1e-3, max_norm=0.0, clipvalue=0.0, clipnorm=0.0, global_clipnorm=0.0):
    """``(iopt, fopt)`` with Keras' default activation hyperparameters."""
    code, act_alpha, lower, upper = activations.resolve(activation)._options()
    iopt = np.zeros(C.N_IOPTIONS, dtype=np.int64)
    iopt[C.IO_ACTIVATION] = code
    iopt[C.IO_OUTPUT] = OUTPUTS[output]
    iopt[C.IO_BATCH_NORM] = BN_CODES[batch_norm]
    iopt[C.IO_INPUT_BATCH_NORM] = input_batch_norm
    iopt[C.IO_ALPHA_DROPOUT] = alpha_dropout
    fopt = np.zeros(C.N_FOPTIONS)
    fopt[C.FO_ACT_ALPHA] = act_alpha
    fopt[C.FO_RRELU_LOWER], fopt[C.FO_RRELU_UPPER] = lower, upper
    fopt[C.FO_BN_MOMENTUM] = momentum
    fopt[C.FO_BN_EPSILON] = eps
    fopt[C.FO_MAX_NORM] = max_norm
    fopt[C.FO_CLIPVALUE] = clipvalue
    fopt[C.FO_CLIPNORM] = clipnorm
    fopt[C.FO_GLOBAL_CLIPNORM] = global_clipnorm
    return iopt, fopt


def random_targets(rng, output, n, k):
    if output == "squared_error":
        return rng.normal(size=(n, k))
    if output == "poisson":
        return rng.poisson(1.0, size=(n, k)).astype(float)
    if output == "binary_log_loss":
        return (rng.random((n, k)) < 0.5).astype(float)
    return np.eye(k)[rng.integers(k, size=n)]


def random_vectors(rng, network, activation, batch_norm, input_batch_norm):
    """Parameters and statistics: weights U(-0.8, 0.8), gamma U(0.5, 1.5), PReLU slopes U(0.1, 0.4)."""
    units = network.units
    params = rng.uniform(-0.8, 0.8, network.n_params)
    stats = np.empty(network.n_stats)
    index = ref.unpack(np.arange(network.n_params), np.arange(network.n_stats), units,
                       prelu=activation == "prelu", batch_norm=batch_norm, input_batch_norm=input_batch_norm)
    for slopes in index["prelu"]:
        params[slopes.astype(int)] = rng.uniform(0.1, 0.4, slopes.size)
    for gamma in index["gamma"]:
        params[gamma.astype(int)] = rng.uniform(0.5, 1.5, gamma.size)
    for mean, var in zip(index["moving_mean"], index["moving_var"]):
        stats[mean.astype(int)] = rng.normal(0.0, 0.3, mean.size)
        stats[var.astype(int)] = rng.uniform(0.5, 1.5, var.size)
    return params, stats


def rows(buffer, offsets, units, layer, n):
    """Layer ``layer``'s ``(n, width)`` rows of an activation-shaped kernel buffer."""
    start, width = offsets[layer, C.L_A], units[layer + 1]
    return buffer[start : start + n * width].reshape(n, width)


class Problem:
    """A small network, data and the kernel's training-mode loss and gradient.

    ``units = [4, 5, 3, k]``. Seeds are tried until every hidden activation's
    input is at least ``1e-3`` away from 0 (the kinks of the ReLU family, ELU
    with alpha != 1 and SELU), so a finite-difference step never crosses one.
    """

    def __init__(self, activation, output, placement="none", *, dropout=(0.0, 0.0, 0.0),
                 alpha_dropout=False, weighted=False, alpha=0.0, l1=0.0, k=3, n=10, seed=0):
        self.activation, self.output = activation, output
        self.batch_norm, self.input_batch_norm = PLACEMENTS[placement]
        self.alpha, self.l1 = alpha, l1
        self.units = np.array([4, 5, 3, k], dtype=np.int64)
        self.dropout = np.asarray(dropout, dtype=float)
        self.alpha_dropout = alpha_dropout
        self.seed = 1234  # with it, the dropout masks and RReLU slopes are fixed
        iopt, fopt = options(activation, output, self.batch_norm, self.input_batch_norm, alpha_dropout)
        self.network = Network(self.units, np.float64, iopt, fopt, self.dropout)
        self.offsets = cpu.layout(self.units, n, iopt)[0]
        for attempt in range(seed, seed + 200):
            rng = np.random.default_rng(attempt)
            self.X = rng.normal(size=(n, 4))
            self.Y = np.ascontiguousarray(random_targets(rng, output, n, k))
            self.sw = rng.uniform(0.2, 3.0, n) if weighted else np.ones(n)
            self.params, self.stats = random_vectors(rng, self.network, activation, self.batch_norm,
                                                     self.input_batch_norm)
            if l1 > 0:  # keep |w| smooth: weights at least 1e-2 from 0
                w = self.params[: self.network.n_coefs]
                w[np.abs(w) < 1e-2] = 1e-2
            self.loss_grad(self.params)
            z = [rows(self.bufs[0], self.offsets, self.units, layer, n) for layer in range(len(self.units) - 2)]
            if min(np.abs(a).min() for a in z) > 1e-3:
                break
        else:  # pragma: no cover
            raise RuntimeError("no draw kept the hidden pre-activations away from 0")

    def loss_grad(self, params):
        """The kernel's ``(loss, gradient, new moving statistics)``; inputs are not modified."""
        buffers = _Buffers(self.network, len(self.Y), False)
        stats = self.stats.copy()
        loss = cpu.loss_grad(
            *KernelInput(self.X, np.float64), self.Y, self.sw, params, stats, buffers.grad,
            self.units, self.network.iopt, self.network.fopt, self.dropout, self.alpha, self.l1,
            self.seed, buffers.bufs, buffers.ibufs, buffers.keys, buffers.dbuf1, buffers.dbuf2,
        )
        self.bufs, self.ibufs = buffers.bufs, buffers.ibufs
        return loss, buffers.grad.copy(), stats

    def objective(self, params):
        loss, _, _ = self.loss_grad(params)
        if self.output == "squared_error":
            penalty = self.penalty(params)
            loss = self.units[-1] * (loss - penalty) + penalty
        return loss

    def penalty(self, params):
        """``(0.5 alpha ||W||^2 + l1 |W|_1) / sum(w)``: weight matrices only (not biases, gamma, beta, PReLU)."""
        w = params[: self.network.n_coefs]
        return (0.5 * self.alpha * np.sum(w**2) + self.l1 * np.sum(np.abs(w))) / self.sw.sum()

    def parts(self, params=None, stats=None):
        return ref.unpack(self.params if params is None else params, self.stats if stats is None else stats,
                          self.units, prelu=self.activation == "prelu", batch_norm=self.batch_norm,
                          input_batch_norm=self.input_batch_norm)

    def kernel_draws(self):
        """RReLU slopes and dropout keep masks the last kernel call used (read from its buffers)."""
        n = len(self.Y)
        hidden = range(len(self.units) - 2)
        slopes = [rows(self.bufs[4], self.offsets, self.units, l, n).copy() for l in hidden] if self.activation == "rrelu" else None
        keeps = [self.ibufs[3][:n] != 0 if self.dropout[0] > 0 else None]
        keeps += [rows(self.bufs[3], self.offsets, self.units, l, n) != 0 if self.dropout[l + 1] > 0 else None
                  for l in hidden]
        return slopes, keeps

    def reference(self):
        """NumPy training-mode forward pass with the kernel's draws: ``(loss, info)`` (see ``ref.forward``)."""
        slopes, keeps = self.kernel_draws()
        fopt = self.network.fopt
        p, info = ref.forward(
            self.X, self.parts(), activation=self.activation, output=self.output, mode="training",
            batch_norm=self.batch_norm, input_batch_norm=self.input_batch_norm,
            alpha=fopt[C.FO_ACT_ALPHA], rrelu=RRELU_BOUNDS, slopes=slopes, dropout=self.dropout,
            keeps=keeps, alpha_dropout_on=self.alpha_dropout, weights=self.sw,
        )
        loss = ref.loss(self.output, self.Y, p, self.sw, np.finfo(np.float64).eps) + self.penalty(self.params)
        return loss, info


def check_problem(problem, rtol=1e-5, atol=1e-7):
    params_before = problem.params.copy()
    loss, grad, stats = problem.loss_grad(problem.params)
    assert_array_equal(problem.params, params_before)  # loss_grad leaves the parameters alone
    # The kernel's loss is the NumPy training-mode loss (batch statistics, same draws) ...
    ref_loss, info = problem.reference()
    assert_allclose(loss, ref_loss, rtol=1e-10)
    # ... its moving statistics moved as m * moving + (1 - m) * batch ...
    new = problem.parts(stats=stats)
    assert_allclose(np.concatenate(new["moving_mean"] + new["moving_var"] + [[]]),
                    np.concatenate(info["moving_mean"] + info["moving_var"] + [[]]), rtol=1e-12, atol=1e-14)
    # ... and its gradient is that loss's gradient.
    fd = central_differences(problem.objective, problem.params)
    assert_allclose(grad, fd, rtol=rtol, atol=atol)
    return grad


# ---------------------------------------------------------------------------
# 1. Finite-difference gradient checks through cpu.loss_grad
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("placement", list(PLACEMENTS))
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_gradient_every_activation_and_batch_norm_placement(activation, placement):
    check_problem(Problem(activation, "multiclass_log_loss", placement))


@pytest.mark.parametrize("placement", ["none", "before", "after", "input+before"])
@pytest.mark.parametrize("output", list(OUTPUTS))
def test_gradient_every_loss(output, placement):
    check_problem(Problem("elu", output, placement, k=2 if output != "multiclass_log_loss" else 3))


@pytest.mark.parametrize("placement", ["none", "after", "input+before"])
def test_gradient_prelu_slopes_and_penalties(placement):
    """Sample weights and L1/L2: the penalties reach the weight matrices only (not biases,
    PReLU slopes, gamma or beta); the slopes' gradient is ``sum dL/da * min(z, 0)``."""
    problem = Problem("prelu", "binary_log_loss", placement, weighted=True, alpha=0.3, l1=0.05)
    grad = check_problem(problem)
    slopes = problem.parts(params=grad)["prelu"]
    assert all(np.abs(s).max() > 1e-6 for s in slopes)


@pytest.mark.parametrize("alpha_dropout", [False, True], ids=["dropout", "alpha_dropout"])
@pytest.mark.parametrize("placement", ["none", "after", "input+before"])
def test_gradient_with_dropout_masks(placement, alpha_dropout):
    """With the generator seeded the masks are fixed, so the loss is a function of the weights."""
    activation = "selu" if alpha_dropout else "relu"
    problem = Problem(activation, "multiclass_log_loss", placement, dropout=(0.3, 0.4, 0.5),
                      alpha_dropout=alpha_dropout, n=12)
    check_problem(problem)
    _, keeps = problem.kernel_draws()
    assert all(0 < k.mean() < 1 for k in keeps)  # some units kept, some dropped in every layer


def test_gradient_rrelu_with_seeded_slopes():
    problem = Problem("rrelu", "squared_error", "before", k=2)
    check_problem(problem)
    slopes, _ = problem.kernel_draws()
    for s in slopes:  # drawn per element in [lower, upper]
        assert RRELU_BOUNDS[0] <= s.min() and s.max() <= RRELU_BOUNDS[1]
        assert np.unique(s).size == s.size


# ---------------------------------------------------------------------------
# 2. Kernels against the NumPy references
# ---------------------------------------------------------------------------

DTYPES = [np.float32, np.float64]


def tolerance(dtype):
    return dict(rtol=2e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_activate_and_backward_match_numpy(activation, dtype):
    rng = np.random.default_rng(1)
    Z = rng.normal(0.0, 2.0, size=(7, 5)).astype(dtype)
    Z[np.abs(Z) < 1e-3] = 0.5  # the derivative is one-sided at 0 for the ReLU family
    slopes = rng.uniform(*RRELU_BOUNDS, size=Z.shape).astype(dtype)
    prelu = rng.uniform(0.05, 0.5, size=5).astype(dtype)
    alpha = 0.7  # not Keras' default, so a hard-coded constant would show
    kwargs = dict(alpha=alpha, slopes=slopes, prelu=prelu)
    code = ACTIVATIONS[activation]

    A = np.full_like(Z, np.nan)
    k_activate(Z, A, code, alpha, slopes, prelu)
    assert_allclose(A, ref.activate(activation, Z, **kwargs), **tolerance(dtype))

    D = rng.normal(size=Z.shape).astype(dtype)
    prelu_grad = np.full(5, 0.25, dtype=dtype)
    expected_prelu_grad = prelu_grad + (ref.prelu_slope_gradient(Z, D) if activation == "prelu" else 0.0)
    expected = D * ref.derivative(activation, Z, **kwargs)
    k_activation_backward(Z, D, code, alpha, slopes, prelu, prelu_grad)
    assert_allclose(D, expected, **tolerance(dtype))
    assert_allclose(prelu_grad, expected_prelu_grad, **tolerance(dtype))  # adds to the slope gradient


def test_activation_names_use_keras_defaults():
    """Keras' defaults: LeakyReLU alpha 0.3, ELU alpha 1; RReLU's mean slope at inference."""
    assert activations.resolve("leaky_relu")._options()[:2] == (C.LEAKY_RELU, 0.3)
    assert activations.resolve("elu")._options()[:2] == (C.ELU, 1.0)
    assert LeakyReLU(alpha=0.2)._options()[1] == 0.2
    assert ELU(alpha=0.5)._options()[1] == 0.5
    assert RReLU(0.1, 0.2)._options()[2:] == (0.1, 0.2)
    with pytest.raises(ValueError, match="lower <= upper"):
        MLPClassifier(activation=RReLU(0.5, 0.1), max_iter=1).fit([[0.0], [1.0]], [0, 1])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_batch_norm_training_matches_numpy(dtype):
    rng = np.random.default_rng(2)
    n, k = 9, 4
    Z = rng.normal(3.0, 2.0, size=(n, k)).astype(dtype)
    gamma, beta = rng.uniform(0.5, 2, k).astype(dtype), rng.normal(size=k).astype(dtype)
    mean, var = rng.normal(size=k).astype(dtype), rng.uniform(0.5, 2, k).astype(dtype)
    momentum, eps = 0.9, 1e-3
    out, xhat, istd, new_mean, new_var = ref.batch_norm_train(Z, gamma, beta, mean, var, momentum, eps)
    Z0 = Z.copy()

    H, istd_k = np.full_like(Z, np.nan), np.full(k, np.nan, dtype=dtype)
    k_batch_norm(Z, H, gamma, beta, mean, var, istd_k, C.TRAINING, momentum, eps, np.ones(n, dtype=dtype), np.arange(n))
    tol = tolerance(dtype) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    assert_allclose(Z, out, **tol)
    assert_allclose(H, xhat, **tol)
    assert_allclose(istd_k, istd, **tol)
    assert_allclose(mean, new_mean, **tol)  # moving <- m * moving + (1 - m) * batch, biased variance
    assert_allclose(var, new_var, **tol)
    batch_var = Z0.astype(np.float64).var(axis=0)
    assert_allclose(H.mean(axis=0), 0.0, atol=1e-5)
    assert_allclose(H.var(axis=0), batch_var / (batch_var + eps), rtol=1e-4)


@pytest.mark.parametrize("mode", [C.INFERENCE, C.MC_DROPOUT])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_batch_norm_inference_uses_moving_statistics(dtype, mode):
    rng = np.random.default_rng(3)
    Z = rng.normal(3.0, 2.0, size=(6, 4)).astype(dtype)
    gamma, beta = rng.uniform(0.5, 2, 4).astype(dtype), rng.normal(size=4).astype(dtype)
    mean, var = rng.normal(size=4).astype(dtype), rng.uniform(0.5, 2, 4).astype(dtype)
    expected = ref.batch_norm_inference(Z, gamma, beta, mean, var, 1e-3)
    mean0, var0, Z0 = mean.copy(), var.copy(), Z.copy()
    H, istd = np.empty_like(Z), np.empty(4, dtype=dtype)
    k_batch_norm(Z, H, gamma, beta, mean, var, istd, mode, 0.99, 1e-3, np.empty(0, dtype=dtype), np.arange(6))
    assert_allclose(Z, expected, **tolerance(dtype))
    assert_array_equal(mean, mean0)  # not updated outside training
    assert_array_equal(var, var0)
    # Row by row gives the same: no batch statistics outside training.
    for r in range(3):
        row = np.ascontiguousarray(Z0[r : r + 1])
        k_batch_norm(row, np.empty_like(row), gamma, beta, mean, var, istd, mode, 0.99, 1e-3,
                        np.empty(0, dtype=dtype), np.arange(1))
        assert_allclose(row[0], expected[r], **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_batch_norm_backward_matches_numpy(dtype):
    rng = np.random.default_rng(4)
    n, k = 8, 3
    Z = rng.normal(1.0, 2.0, size=(n, k))
    gamma, beta = rng.uniform(0.5, 2, k), rng.normal(size=k)
    _, xhat, istd, _, _ = ref.batch_norm_train(Z, gamma, beta, np.zeros(k), np.ones(k), 0.99, 1e-3)
    dz = rng.normal(size=(n, k))
    dx, dgamma, dbeta = ref.batch_norm_backward(dz, xhat, gamma, istd)

    D = dz.astype(dtype)
    gamma_grad, beta_grad = np.full(k, np.nan, dtype=dtype), np.full(k, np.nan, dtype=dtype)
    sums = np.full(2 * k + 3, np.nan, dtype=dtype)
    k_batch_norm_backward(D, xhat.astype(dtype), gamma.astype(dtype), istd.astype(dtype), gamma_grad, beta_grad,
                             sums, np.ones(n, dtype=dtype), np.arange(n))
    tol = tolerance(dtype) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    assert_allclose(D, dx, **tol)
    assert_allclose(gamma_grad, dgamma, **tol)
    assert_allclose(beta_grad, dbeta, **tol)
    # The reference itself is the derivative of the training-mode output: finite differences.
    f = lambda x: np.sum(dz * ref.batch_norm_train(x.reshape(n, k), gamma, beta, 0, 1, 0.99, 1e-3)[0])
    assert_allclose(dx.ravel(), central_differences(f, Z.ravel()), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_inverted_dropout_keep_rate_and_mean(rate, dtype):
    A = np.ones((400, 250), dtype=dtype)
    M = np.full_like(A, np.nan)
    keys = random_keys(A.shape[0])
    k_dropout(A, M, rate, 0, keys, 1)
    keep = M != 0
    assert abs(keep.mean() - (1 - rate)) < 0.005  # keep-rate 1 - p (100,000 draws: std < 0.0016)
    assert abs(A.mean() - 1.0) < 0.01  # E[out] = in: inverted scaling by 1 / (1 - p)
    assert_allclose(A, ref.inverted_dropout(np.ones(A.shape), keep, rate), rtol=1e-6)
    assert_allclose(M[keep], 1 / (1 - rate), rtol=1e-6)  # the mask is the derivative
    A2, M2 = np.ones_like(A), np.empty_like(A)
    k_dropout(A2, M2, rate, 0, keys, 1)
    assert_array_equal(M2, M)  # same keys, same mask
    k_dropout(A2, M2, rate, 0, keys, 2)  # another layer: an independent mask
    assert abs(np.mean((M2 != 0) == keep) - ((1 - rate) ** 2 + rate**2)) < 0.01


@pytest.mark.parametrize("rate", [0.05, 0.2])
def test_alpha_dropout_keeps_mean_and_variance(rate):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 250))
    A, M = X.copy(), np.empty_like(X)
    keys = random_keys(A.shape[0], seed=1)
    k_dropout(A, M, rate, 1, keys, 0)
    keep = M != 0
    assert abs(keep.mean() - (1 - rate)) < 0.005
    assert abs(A.mean()) < 0.02 and abs(A.var() - 1.0) < 0.03  # Klambauer et al.: mean 0, variance 1 kept
    assert_allclose(A, ref.alpha_dropout(X, keep, rate), rtol=1e-12, atol=1e-12)
    a, _, _ = ref.alpha_dropout_constants(rate)
    assert_allclose(M[keep], a)
    # Ordinary dropout would not keep the variance of the same inputs.
    B = X.copy()
    k_dropout(B, np.empty_like(B), rate, 0, keys, 0)
    assert B.var() > 1.0 + rate / 2


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_forward_draws_one_mask_per_layer_at_its_rate(dtype):
    """Per-layer rates (inputs included) in training mode; none at inference."""
    units = np.array([300, 400, 300, 2], dtype=np.int64)
    dropout = np.array([0.1, 0.3, 0.6])
    iopt, fopt = options("relu", "multiclass_log_loss")
    network = Network(units, dtype, iopt, fopt, dropout)
    n = 40
    buffers = _Buffers(network, n, False)
    offsets = cpu.layout(units, n, iopt)[0]
    rng = np.random.default_rng(6)
    X = rng.normal(size=(n, 300)).astype(dtype)
    params = rng.normal(0, 0.05, network.n_params).astype(dtype)
    stats = np.zeros(max(network.n_stats, 1), dtype=dtype)
    k_forward(X, *KernelInput(X, dtype)[1:], np.arange(n), np.ones(n, dtype=dtype), params, stats, units,
                 offsets, iopt, fopt, dropout, C.TRAINING, 2, buffers.bufs, buffers.ibufs, buffers.keys,
                 np.empty((0, 5)))
    keeps = [(buffers.ibufs[3][:n] != 0).mean()] + [
        (rows(buffers.bufs[3], offsets, units, layer, n) != 0).mean() for layer in range(2)
    ]
    assert_allclose(keeps, 1 - dropout, atol=0.015)
    # The layer input really is masked: the input copy is zero where dropped.
    assert_array_equal(buffers.ibufs[1][:n] == 0, buffers.ibufs[3][:n] == 0)


CONFIGS = {
    "plain-tanh": dict(activation="tanh"),
    "bn-before-elu": dict(activation="elu", batch_norm="before"),
    "bn-after-prelu": dict(activation="prelu", batch_norm="after"),
    "input-bn-rrelu": dict(activation="rrelu", input_batch_norm=True),
    "all-bn-selu-dropout": dict(activation="selu", batch_norm="after", input_batch_norm=True,
                                dropout=(0.2, 0.3, 0.4)),
}


@pytest.mark.parametrize("output", ["multiclass_log_loss", "poisson"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_predict_matches_numpy_inference_forward(config, dtype, output):
    """Inference: moving statistics, no dropout, RReLU's mean slope; chunked over 1024 rows."""
    c = dict(CONFIGS[config])
    activation = c.pop("activation")
    batch_norm, input_bn = c.get("batch_norm"), c.get("input_batch_norm", False)
    dropout = np.asarray(c.get("dropout", (0.0, 0.0, 0.0)))
    units = np.array([4, 6, 5, 3], dtype=np.int64)
    iopt, fopt = options(activation, output, batch_norm, input_bn)
    network = Network(units, dtype, iopt, fopt, dropout)
    rng = np.random.default_rng(7)
    params, stats = random_vectors(rng, network, activation, batch_norm, input_bn)
    params *= 0.5
    X = rng.normal(size=(1100, 4))  # more than one chunk
    parts = ref.unpack(params, stats, units, prelu=activation == "prelu", batch_norm=batch_norm,
                       input_batch_norm=input_bn)
    expected, _ = ref.forward(X, parts, activation=activation, output=output, mode="inference",
                              batch_norm=batch_norm, input_batch_norm=input_bn,
                              alpha=fopt[C.FO_ACT_ALPHA], rrelu=RRELU_BOUNDS, dropout=dropout)
    out = cpu.predict(*KernelInput(X, dtype), params.astype(dtype), stats.astype(dtype), units, iopt, fopt, dropout)
    assert out.dtype == dtype
    assert_allclose(out, expected, **(dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10)))
    # And through the engine's Network with the estimator-style unpack.
    assert_allclose(network.predict(params.astype(dtype), stats.astype(dtype), X[:5]), out[:5], rtol=1e-6)


@pytest.mark.parametrize("placement", list(PLACEMENTS))
@pytest.mark.parametrize("activation", ["relu", "prelu"])
def test_layout_and_network_unpack_match_the_documented_order(activation, placement):
    batch_norm, input_bn = PLACEMENTS[placement]
    units = np.array([4, 6, 5, 3], dtype=np.int64)
    iopt, fopt = options(activation, "squared_error", batch_norm, input_bn)
    network = Network(units, np.float64, iopt, fopt, np.zeros(3))
    n_params, n_stats = ref.n_parameters(units, prelu=activation == "prelu", batch_norm=batch_norm,
                                         input_batch_norm=input_bn)
    assert (network.n_params, network.n_stats) == (n_params, n_stats)
    params, stats = np.arange(n_params, dtype=float), -np.arange(n_stats, dtype=float)
    expected = ref.unpack(params, stats, units, prelu=activation == "prelu", batch_norm=batch_norm,
                          input_batch_norm=input_bn)
    parts = network.unpack(params, stats)
    names = {"coefs": "coefs_", "intercepts": "intercepts_", "prelu": "prelu_alpha_",
             "gamma": "batch_norm_gamma_", "beta": "batch_norm_beta_",
             "moving_mean": "batch_norm_moving_mean_", "moving_var": "batch_norm_moving_var_"}
    for key, name in names.items():
        assert len(parts[name]) == len(expected[key]), name
        for got, want in zip(parts[name], expected[key]):
            assert_array_equal(got, want)
    p2, s2 = network.pack(parts)
    assert_array_equal(p2, params)
    assert_array_equal(s2, stats)


def clip_case(activation="prelu", batch_norm="after", input_bn=True, **clip):
    units = np.array([4, 6, 5, 3], dtype=np.int64)
    iopt, fopt = options(activation, "squared_error", batch_norm, input_bn, **clip)
    network = Network(units, np.float64, iopt, fopt, np.zeros(3))
    rng = np.random.default_rng(8)
    params = rng.normal(size=network.n_params)
    raw = rng.normal(0.0, 3.0, size=network.n_params)
    index = ref.unpack(np.arange(network.n_params), np.arange(network.n_stats), units,
                       prelu=activation == "prelu", batch_norm=batch_norm, input_batch_norm=input_bn)
    tensors = [t.astype(int).ravel() for key in ("coefs", "intercepts", "prelu", "gamma", "beta") for t in index[key]]
    return network, params, raw, tensors


@pytest.mark.parametrize("clip", [dict(clipvalue=0.5), dict(clipnorm=1.0), dict(global_clipnorm=2.0)],
                         ids=["clipvalue", "clipnorm", "global_clipnorm"])
def test_clip_gradients_matches_numpy(clip):
    network, params, raw, tensors = clip_case(**clip)
    alpha, l1, sw_sum = 0.3, 0.1, 2.5
    grad = raw.copy()
    offsets = network.offsets
    n_layers = len(network.units) - 1
    k_clip_gradients(params, grad, offsets, network.units, network.n_params, 0, offsets[0, C.L_B],
                        offsets[n_layers, C.L_X], alpha, l1, sw_sum, C.ADAM, network.fopt)
    # Finalized gradient (before clipping): penalties on the weight matrices only, all divided by sum(w).
    final = raw / sw_sum
    n_coef = network.n_coefs
    final[:n_coef] += (alpha * params[:n_coef] + l1 * np.sign(params[:n_coef])) / sw_sum
    clipped = ref.clip_gradients([final[t] for t in tensors], **clip)
    expected = np.empty_like(final)
    for t, g in zip(tensors, clipped):
        expected[t] = g
    assert_allclose(grad, expected, rtol=1e-12, atol=1e-14)
    assert not np.allclose(grad, final)  # the clip was active


def test_max_norm_kernel_matches_numpy():
    units = np.array([4, 6, 5, 3], dtype=np.int64)
    iopt, fopt = options("relu", "squared_error")
    network = Network(units, np.float64, iopt, fopt, np.zeros(3))
    params = np.random.default_rng(9).normal(size=network.n_params)
    before = params.copy()
    k_max_norm(params, units, network.offsets, 0, 1.5, np.empty(2 * 6))
    coefs_before = ref.unpack(before, np.empty(0), units, prelu=False, batch_norm=None, input_batch_norm=False)
    coefs_after = ref.unpack(params, np.empty(0), units, prelu=False, batch_norm=None, input_batch_norm=False)
    for w0, w1 in zip(coefs_before["coefs"], coefs_after["coefs"]):
        assert_allclose(w1, ref.max_norm(w0, 1.5), rtol=1e-12)
    assert_array_equal(params[network.n_coefs :], before[network.n_coefs :])  # biases untouched


# ---------------------------------------------------------------------------
# 3. Initializers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ref.NAMED_INITIALIZERS))
def test_named_initializers_have_keras_variance(name):
    """``sigma^2 = scale / fan`` within sampling tolerance (80,000 draws: the relative
    std of the sample variance is below 0.5%); truncated normals stay within 2 std."""
    scale, mode, distribution = ref.NAMED_INITIALIZERS[name]
    initializer = initializers.INITIALIZERS[name]
    assert (initializer.scale, initializer.mode, initializer.distribution) == (scale, mode, distribution)
    fan_in, fan_out = 400, 200
    W = initializer.draw(fan_in, fan_out, np.random.RandomState(0))
    assert W.shape == (fan_in, fan_out)
    variance = ref.variance_scaling_variance(scale, mode, fan_in, fan_out)
    assert abs(W.var() / variance - 1) < 0.03
    assert abs(W.mean()) < 0.02 * np.sqrt(variance)
    if distribution == "uniform":
        assert np.abs(W).max() <= np.sqrt(3 * variance)
    else:
        bound = 2 * ref.truncated_normal_std(variance)
        assert np.abs(W).max() <= bound
        assert np.abs(W).max() > 0.95 * bound  # truncated at 2 std, not narrower


@pytest.mark.parametrize("distribution", ["uniform", "normal", "truncated_normal", "untruncated_normal"])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
def test_variance_scaling(mode, distribution):
    fan_in, fan_out = 150, 450
    W = VarianceScaling(3.0, mode, distribution).draw(fan_in, fan_out, np.random.RandomState(1))
    variance = ref.variance_scaling_variance(3.0, mode, fan_in, fan_out)
    assert abs(W.var() / variance - 1) < 0.03
    bound = 2 * ref.truncated_normal_std(variance)
    if distribution == "untruncated_normal":  # tails beyond 2 std exist (4.6% of draws)
        assert 0.03 < np.mean(np.abs(W) > 2 * np.sqrt(variance)) < 0.06
        assert np.abs(W).max() > bound
    elif distribution != "uniform":  # Keras: "normal" is the truncated normal
        assert np.abs(W).max() <= bound


def test_truncation_constant():
    assert_allclose(1 / ref.truncated_normal_std(1.0), initializers._TRUNCATION_STD, rtol=1e-12)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_auto_initializer_follows_the_chapter_table(activation):
    chosen = initializers.resolve("auto", ACTIVATIONS[activation])
    family = ref.TABLE_INITIALIZER.get(activation)
    if family is None:  # gelu, swish: not in the table; ReLU-like, He
        family = "he"
    expected = initializers.INITIALIZERS[f"{family}_normal" if family != "glorot" else "glorot_uniform"]
    scale, mode = {"glorot": (1.0, "fan_avg"), "he": (2.0, "fan_in"), "lecun": (1.0, "fan_in")}[family]
    assert (chosen.scale, chosen.mode) == (scale, mode)
    assert chosen.get_params() == expected.get_params()


def test_estimator_draws_with_its_initializer_and_zero_biases():
    """The weights are the initializer's draws from ``random_state``; biases start at 0."""
    X = np.random.default_rng(0).normal(size=(40, 6))
    y = X[:, 0]
    sizes = (30, 20)
    for kernel_initializer in ["lecun_normal", "auto"]:
        model = MLPRegressor(hidden_layer_sizes=sizes, activation="selu", kernel_initializer=kernel_initializer,
                             alpha=0.0, learning_rate_init=1e-12, max_iter=1, random_state=3).fit(X, y)
        rs = np.random.RandomState(3)
        expected = [initializers.INITIALIZERS["lecun_normal"].draw(a, b, rs)
                    for a, b in zip((6, *sizes), (*sizes, 1))]
        for got, want in zip(model.coefs_, expected):
            assert_allclose(got, want, atol=1e-8)
        for bias in model.intercepts_:
            assert_allclose(bias, 0.0, atol=1e-8)
    default = MLPRegressor(hidden_layer_sizes=sizes, learning_rate_init=1e-12, max_iter=1, random_state=3).fit(X, y)
    assert np.abs(default.intercepts_[0]).max() > 1e-3  # scikit-learn's draws give biases


# ---------------------------------------------------------------------------
# 4. Batch normalization in the estimators
# ---------------------------------------------------------------------------


def classification_data(n=200, n_features=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    y = (X[:, 0] + 0.5 * X[:, 1] ** 2 - 0.5 > 0).astype(int) + (X[:, 2] > 1)
    return X, y


def reference_predict(model, X, output):
    """NumPy inference-mode forward pass from the fitted public attributes."""
    activation = model.activation if isinstance(model.activation, str) else {
        PReLU: "prelu", RReLU: "rrelu", LeakyReLU: "leaky_relu", ELU: "elu"}[type(model.activation)]
    _, act_alpha, lower, upper = activations.resolve(model.activation)._options()
    parts = {"coefs": model.coefs_, "intercepts": model.intercepts_, "prelu": model.prelu_alpha_,
             "gamma": model.batch_norm_gamma_, "beta": model.batch_norm_beta_,
             "moving_mean": model.batch_norm_moving_mean_, "moving_var": model.batch_norm_moving_var_}
    parts = {k: [np.asarray(a, dtype=np.float64) for a in v] for k, v in parts.items()}
    p, _ = ref.forward(X, parts, activation=activation, output=output, mode="inference",
                       batch_norm=model.batch_norm, input_batch_norm=model.batch_norm_input,
                       alpha=act_alpha, rrelu=(lower, upper), eps=model.batch_norm_epsilon)
    return p


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("batch_norm", ["before", "after"])
def test_batch_norm_fitted_attributes_and_inference(batch_norm, dtype):
    X, y = classification_data()
    X = X.astype(dtype)
    model = MLPClassifier(hidden_layer_sizes=(7, 6), activation="elu", batch_norm=batch_norm,
                          batch_norm_input=True, batch_size=50, max_iter=15, random_state=0,
                          learning_rate_init=0.01).fit(X, y)
    widths = [5, 7, 6]  # the input batch norm first
    for name in ["batch_norm_gamma_", "batch_norm_beta_", "batch_norm_moving_mean_", "batch_norm_moving_var_"]:
        arrays = getattr(model, name)
        assert [a.shape for a in arrays] == [(w,) for w in widths], name
        assert all(a.dtype == dtype for a in arrays)
    # Trained and updated: gamma/beta moved off (1, 0), the moving statistics off (0, 1).
    assert not np.allclose(model.batch_norm_gamma_[1], 1.0)
    assert not np.allclose(model.batch_norm_beta_[1], 0.0)
    assert not np.allclose(model.batch_norm_moving_mean_[2], 0.0)  # (layer 1's is ~0 with 'before':
    # its input is batch-normalized, so the batch means of a W are 0)
    assert_allclose(model.batch_norm_moving_mean_[0], X.mean(axis=0), atol=0.5)  # 60 steps at momentum 0.99: ~45% there
    # predict is the NumPy inference pass with the moving statistics ...
    proba = model.predict_proba(X)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-12)
    assert_allclose(proba, reference_predict(model, X, "multiclass_log_loss"), **tol)
    # ... so a row's prediction does not depend on the other rows ...
    assert_allclose(model.predict_proba(X[3:4]), proba[3:4], **tol)
    # ... and it changes when the moving statistics change.
    model.batch_norm_moving_mean_[1][:] += 1.0
    assert not np.allclose(model.predict_proba(X), proba)
    if batch_norm == "before":  # no bias in a dense layer followed by batch norm
        assert all(np.all(b == 0) for b in model.intercepts_[:-1])
        assert np.any(model.intercepts_[-1] != 0)


def test_moving_statistics_follow_keras_momentum_exactly():
    """Input batch norm with full batches: every step sees mean(X), var(X), so after
    ``E`` steps ``moving_mean = (1 - m^E) mean`` and ``moving_var = m^E + (1 - m^E) var``."""
    rng = np.random.default_rng(1)
    X = rng.normal(3.0, 2.0, size=(60, 3))
    y = X.sum(axis=1)
    m, epochs = 0.9, 7
    model = MLPRegressor(hidden_layer_sizes=(4,), batch_norm_input=True, batch_norm_momentum=m,
                         batch_size=60, max_iter=epochs, random_state=0).fit(X, y)
    assert model.n_iter_ == epochs
    assert_allclose(model.batch_norm_moving_mean_[0], (1 - m**epochs) * X.mean(axis=0), rtol=1e-10)
    assert_allclose(model.batch_norm_moving_var_[0], m**epochs + (1 - m**epochs) * X.var(axis=0), rtol=1e-10)


def test_input_batch_norm_makes_standardizing_unnecessary():
    X, y = classification_data(n=400, n_features=6)
    X_std = (X - X.mean(axis=0)) / X.std(axis=0)
    X_raw = X * 1000 + 50
    # 800 steps: the moving statistics (momentum 0.99) have converged.
    kw = dict(hidden_layer_sizes=(32,), batch_norm_input=True, batch_size=20, max_iter=40, random_state=0)
    std_score = MLPClassifier(**kw).fit(X_std, y).score(X_std, y)
    raw_model = MLPClassifier(**kw).fit(X_raw, y)
    assert std_score > 0.85
    assert raw_model.score(X_raw, y) >= std_score - 0.02
    spread = X_raw.std(axis=0)
    assert np.all(np.abs(raw_model.batch_norm_moving_mean_[0] - X_raw.mean(axis=0)) < 0.05 * spread)
    assert_allclose(np.sqrt(raw_model.batch_norm_moving_var_[0]), spread, rtol=0.05)


@pytest.mark.parametrize("batch_norm, batch_norm_input", [(None, True), ("after", False), ("before", True)])
def test_lbfgs_with_batch_norm_leaves_the_statistics_of_its_solution(batch_norm, batch_norm_input):
    """L-BFGS minimizes the full-batch training-mode loss. For ``predict`` to be that
    model, the moving statistics must end as the full batch's statistics at the solution;
    then inference on the training set equals the training-mode forward pass."""
    X, y = classification_data(n=300, n_features=6)
    X = X * 1000 + 50 if batch_norm_input else X
    model = MLPClassifier(hidden_layer_sizes=(16,), activation="tanh", solver="lbfgs", batch_norm=batch_norm,
                          batch_norm_input=batch_norm_input, max_iter=50, random_state=0).fit(X, y)
    parts = {"coefs": model.coefs_, "intercepts": model.intercepts_, "prelu": [],
             "gamma": model.batch_norm_gamma_, "beta": model.batch_norm_beta_,
             "moving_mean": model.batch_norm_moving_mean_, "moving_var": model.batch_norm_moving_var_}
    trained, info = ref.forward(X, parts, activation="tanh", output="multiclass_log_loss", mode="training",
                                batch_norm=batch_norm, input_batch_norm=batch_norm_input, momentum=0.0)
    for moving, batch in zip(model.batch_norm_moving_mean_ + model.batch_norm_moving_var_,
                             info["moving_mean"] + info["moving_var"]):
        assert_allclose(moving, batch, rtol=0.02, atol=0.02)
    assert_allclose(model.predict_proba(X), trained, atol=0.02)


# ---------------------------------------------------------------------------
# 5. Dropout and MC dropout in the estimators
# ---------------------------------------------------------------------------


def coefs_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.coefs_, b.coefs_))


def test_dropout_masks_come_from_random_state():
    X, y = classification_data()
    kw = dict(hidden_layer_sizes=(10, 8), dropout=0.3, input_dropout=0.1, max_iter=5, random_state=0)
    first, again = MLPClassifier(**kw).fit(X, y), MLPClassifier(**kw).fit(X, y)
    assert coefs_equal(first, again)  # same seed, same model
    assert not coefs_equal(first, MLPClassifier(**{**kw, "random_state": 1}).fit(X, y))
    assert not coefs_equal(first, MLPClassifier(**{**kw, "dropout": 0.0, "input_dropout": 0.0}).fit(X, y))


def updated_units(before, after):
    """Hidden units whose outgoing weights changed: with one sample and plain SGD, those not dropped."""
    return np.any(after.coefs_[1] != before, axis=1)


def test_partial_fit_draws_new_dropout_masks_every_call():
    """Each call is one epoch; with an int random_state the masks must still change between
    epochs, as they do between the epochs of ``fit`` (else every sample keeps one thinned network)."""
    X, y = np.array([[1.0, 2.0, 3.0]]), np.array([5.0])
    kw = dict(hidden_layer_sizes=(20,), activation="tanh", dropout=0.5, solver="sgd", momentum=0.0, alpha=0.0,
              batch_size=1, learning_rate_init=1e-3, random_state=0)
    epochs = [MLPRegressor(**kw, max_iter=i).fit(X, y) for i in (1, 2, 3)]
    fit_masks = [updated_units(a.coefs_[1], b) for a, b in itertools.pairwise(epochs)]
    assert not np.array_equal(*fit_masks)
    model = MLPRegressor(**kw).partial_fit(X, y)
    masks = []
    for _ in range(3):
        before = model.coefs_[1].copy()
        masks.append(updated_units(before, model.partial_fit(X, y)))
    assert not (np.array_equal(masks[0], masks[1]) and np.array_equal(masks[1], masks[2]))


def test_dropout_per_layer_rates():
    X, y = classification_data()
    kw = dict(hidden_layer_sizes=(10, 8), max_iter=5, random_state=0)
    none = MLPClassifier(**kw).fit(X, y)
    assert coefs_equal(none, MLPClassifier(**kw, dropout=[0.0, 0.0]).fit(X, y))
    first = MLPClassifier(**kw, dropout=[0.5, 0.0]).fit(X, y)
    second = MLPClassifier(**kw, dropout=[0.0, 0.5]).fit(X, y)
    assert not coefs_equal(first, none) and not coefs_equal(second, none) and not coefs_equal(first, second)
    # The rate after hidden layer 2 only reaches the weights above it and their gradients:
    # with dropout=[0.5, 0] the mask on layer 1's output changes layer 2's inputs.
    assert first.predict_proba_mc(X[:5], n_samples=50, random_state=0)[1][:, 0].max() > 0


@pytest.mark.parametrize("dropout", [[0.1, 0.2], [0.1, 0.2, 0.3, 0.4], [0.1]])
def test_dropout_rates_must_match_hidden_layers(dropout):
    X, y = classification_data(n=30)
    with pytest.raises(ValueError, match=f"dropout has {len(dropout)} rates for 3 hidden layers"):
        MLPClassifier(hidden_layer_sizes=(4, 4, 4), dropout=dropout, max_iter=1).fit(X, y)


@pytest.fixture(scope="module")
def mc_classifier():
    X, y = classification_data(n=300)
    model = MLPClassifier(hidden_layer_sizes=(16, 16), activation="relu", dropout=0.2, input_dropout=0.1,
                          batch_norm="after", batch_norm_momentum=0.9, max_iter=20, random_state=0).fit(X, y)
    return model, X[:20]


def test_predict_proba_mc_mean_and_std(mc_classifier):
    model, X = mc_classifier
    mean, std = model.predict_proba_mc(X, n_samples=2000, random_state=0)
    assert mean.shape == std.shape == (20, 3)
    assert_allclose(mean.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(std >= 0) and np.median(std) > 1e-3  # dropout on: the passes differ
    # Close to a smaller sample's mean ...
    mean200, std200 = model.predict_proba_mc(X, n_samples=200, random_state=1)
    assert np.all(np.abs(mean200 - mean) <= 5 * std * np.sqrt(1 / 200 + 1 / 2000) + 1e-3)
    # a standard deviation from 200 draws of a (possibly bimodal) probability is itself noisy:
    # compare elementwise loosely and on average tightly
    assert_allclose(std200, std, rtol=0.5, atol=2e-3)
    assert abs(std200.mean() / std.mean() - 1) < 0.1
    # ... and to the average of 200 single stochastic passes (n_samples=1, each its own seed).
    passes = np.array([model.predict_proba_mc(X, n_samples=1, random_state=s)[0] for s in range(200)])
    assert np.all(np.abs(passes.mean(axis=0) - mean) <= 5 * std * np.sqrt(1 / 200 + 1 / 2000) + 1e-3)
    assert_allclose(passes.std(axis=0), std, rtol=0.5, atol=2e-3)
    assert abs(passes.std(axis=0).mean() / std.mean() - 1) < 0.1
    assert np.abs(model.predict_proba_mc(X, n_samples=1, random_state=0)[1]).max() < 1e-6
    # The passes are not the deterministic prediction, but they scatter around it.
    proba = model.predict_proba(X)
    assert not np.allclose(passes[0], proba)
    assert np.mean(np.abs(mean - proba)) < 0.1


def test_predict_proba_mc_is_reproducible(mc_classifier):
    model, X = mc_classifier
    a = model.predict_proba_mc(X, n_samples=30, random_state=5)
    b = model.predict_proba_mc(X, n_samples=30, random_state=5)
    c = model.predict_proba_mc(X, n_samples=30, random_state=6)
    assert_array_equal(a[0], b[0])
    assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_mc_dropout_keeps_batch_norm_in_inference_mode():
    """The chapter's MCDropout: dropout on, batch norm with its moving statistics. With a
    vanishing rate the passes are the deterministic prediction (batch statistics would differ)."""
    X, y = classification_data(n=200)
    model = MLPRegressor(hidden_layer_sizes=(8, 8), batch_norm="after", batch_norm_input=True,
                         dropout=1e-12, batch_norm_momentum=0.5, max_iter=10, random_state=0).fit(X, y)
    mean, std = model.predict_mc(X[:7], n_samples=20, random_state=0)
    assert_allclose(mean, model.predict(X[:7]), rtol=1e-9, atol=1e-9)
    assert np.abs(std).max() < 1e-6
    parts = {"coefs": model.coefs_, "intercepts": model.intercepts_, "prelu": [],
             "gamma": model.batch_norm_gamma_, "beta": model.batch_norm_beta_,
             "moving_mean": model.batch_norm_moving_mean_, "moving_var": model.batch_norm_moving_var_}
    batch_stats, _ = ref.forward(X[:7], parts, activation="relu", output="squared_error", mode="training",
                                 batch_norm="after", input_batch_norm=True, dropout=np.zeros(3))
    assert not np.allclose(batch_stats.ravel(), mean, atol=1e-3)


def test_predict_mc_regressor():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 4))
    Y = np.column_stack([X[:, 0] + X[:, 1] ** 2, X[:, 2]])
    kw = dict(hidden_layer_sizes=(16, 16), activation="selu", kernel_initializer="lecun_normal", alpha=0.0,
              alpha_dropout=True, dropout=0.1, max_iter=20, random_state=0)
    model = MLPRegressor(**kw).fit(X, Y[:, 0])
    mean, std = model.predict_mc(X[:10], n_samples=300, random_state=0)
    assert mean.shape == std.shape == (10,)
    assert np.all(std > 0)
    assert np.mean(np.abs(mean - model.predict(X[:10]))) < 0.5 * np.std(Y[:, 0])
    again = model.predict_mc(X[:10], n_samples=300, random_state=0)
    assert_array_equal(again[0], mean)
    multi = MLPRegressor(**kw).fit(X, Y)
    mean, std = multi.predict_mc(X[:10], n_samples=50, random_state=0)
    assert mean.shape == std.shape == (10, 2)


def test_predict_proba_mc_binary():
    X, y = classification_data(n=100)
    model = MLPClassifier(hidden_layer_sizes=(8,), dropout=0.3, max_iter=5, random_state=0).fit(X, y > 0)
    mean, std = model.predict_proba_mc(X[:6], n_samples=100, random_state=0)
    assert mean.shape == std.shape == (6, 2)
    assert_allclose(mean.sum(axis=1), 1.0)
    assert_array_equal(std[:, 0], std[:, 1])
    assert np.all(std > 0)


def test_mc_dropout_errors():
    X, y = classification_data(n=60)
    plain = MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="MC dropout needs a model trained with dropout"):
        plain.predict_proba_mc(X)
    with pytest.raises(ValueError, match="MC dropout needs a model trained with dropout"):
        MLPRegressor(hidden_layer_sizes=(5,), max_iter=2).fit(X, y).predict_mc(X)
    dropped = MLPClassifier(hidden_layer_sizes=(5,), dropout=0.1, max_iter=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        dropped.predict_proba_mc(X, n_samples=0)
    only_input = MLPClassifier(hidden_layer_sizes=(5,), input_dropout=0.2, max_iter=2, random_state=0).fit(X, y)
    assert only_input.predict_proba_mc(X[:3], n_samples=20, random_state=0)[1].max() > 0


# ---------------------------------------------------------------------------
# 6. The chapter's claim: self-normalization vs saturation
# ---------------------------------------------------------------------------


def layer_statistics(activation, kernel_initializer, X, y):
    """History of one epoch with a negligible learning rate: the initial network's
    per-layer activation means, stds and gradient norms (30 hidden layers of 50)."""
    model = MLPRegressor(hidden_layer_sizes=(50,) * 30, activation=activation, kernel_initializer=kernel_initializer,
                         alpha=0.0, solver="sgd", momentum=0.0, learning_rate_init=1e-10, batch_size=len(X),
                         max_iter=1, diagnostics=True, random_state=0).fit(X, y)
    record = model.history_[-1]
    mean, std, grad = (np.array([record[f"{key}_{k}"] for k in range(1, 31)])
                       for key in ("activation_mean", "activation_std", "gradient_norm"))
    return model, mean, std, grad


def test_selu_self_normalizes_while_logistic_saturates():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 50))  # standardized inputs
    y = X[:, 0] - X[:, 1]
    # SELU + LeCun normal: mean ~0 and std ~1 in every one of 30 layers, gradients neither vanish nor explode.
    with warnings.catch_warnings():
        warnings.simplefilter("error", SelfNormalizationWarning)
        _, mean, std, grad = layer_statistics("selu", "lecun_normal", X, y)
    assert np.abs(mean).max() < 0.2
    assert np.abs(std - 1).max() < 0.15
    assert grad.min() / grad.max() > 0.1
    # Logistic with N(0, 1) weights (variance scale / fan_in = 1): activations pile up at 0
    # and 1, the mean derivative E[s (1 - s)] = m (1 - m) - std^2 is a fraction of s'(0) = 1/4,
    # and the gradients vanish towards the input (the chapter's vanishing gradients).
    model, mean, std, grad = layer_statistics("logistic", VarianceScaling(50.0, "fan_in", "untruncated_normal"), X, y)
    assert abs(np.std(model.coefs_[5]) - 1) < 0.05
    assert np.all(std[1:] > 0.35)
    assert np.all(mean * (1 - mean) - std**2 < 0.12)
    assert grad[0] / grad[-1] < 1e-2
    parts = {"coefs": model.coefs_, "intercepts": model.intercepts_}
    _, info = ref.forward(X, parts, activation="logistic", output="squared_error", mode="inference")
    top = info["a"][-1]
    assert np.mean((top < 0.05) | (top > 0.95)) > 0.4
    assert_allclose(top.mean(), mean[-1], rtol=1e-6)  # the diagnostics are those activations


# ---------------------------------------------------------------------------
# 7. Max-norm and gradient clipping in training
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "prelu"])
def test_max_norm_bounds_every_incoming_weight_vector(activation):
    X, y = classification_data()
    r = 0.5
    model = MLPClassifier(hidden_layer_sizes=(12, 8), activation=activation, max_norm=r, batch_norm="after",
                          learning_rate_init=0.05, max_iter=10, random_state=0).fit(X, y)
    norms = [np.linalg.norm(W, axis=0) for W in model.coefs_]
    assert all(np.all(n <= r + 1e-6) for n in norms)
    assert max(n.max() for n in norms) > r - 1e-3  # the constraint was active
    free = MLPClassifier(hidden_layer_sizes=(12, 8), activation=activation, batch_norm="after",
                         learning_rate_init=0.05, max_iter=10, random_state=0).fit(X, y)
    assert max(np.linalg.norm(W, axis=0).max() for W in free.coefs_) > 1.5 * r


@pytest.mark.parametrize("clip", [dict(clipvalue=1.0), dict(clipnorm=1.0), dict(global_clipnorm=1.0)],
                         ids=["clipvalue", "clipnorm", "global_clipnorm"])
def test_clipping_keeps_a_huge_learning_rate_finite(clip):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 5))
    y = 1e4 * (X @ rng.normal(size=5)) + rng.normal(size=200)  # large targets: SGD at lr 0.05 explodes
    kw = dict(hidden_layer_sizes=(20, 20), solver="sgd", momentum=0.0, learning_rate_init=0.05, max_iter=20,
              random_state=0)
    with pytest.raises(ValueError, match="non-finite"):
        MLPRegressor(**kw).fit(X, y)
    model = MLPRegressor(**kw, **clip).fit(X, y)
    assert np.all(np.isfinite(model.loss_curve_))
    assert all(np.all(np.isfinite(W)) for W in model.coefs_)
    # One step moves each weight by at most lr * clipvalue, or the whole vector by lr * clipnorm.
    first = MLPRegressor(**{**kw, "max_iter": 1, "batch_size": 200}, **clip).fit(X, y)
    start = MLPRegressor(**{**kw, "max_iter": 1, "batch_size": 200, "learning_rate_init": 1e-300}).fit(X, y)
    step = np.concatenate([(a - b).ravel() for a, b in zip(first.coefs_ + first.intercepts_,
                                                           start.coefs_ + start.intercepts_)])
    bound = 0.05 * 1.0
    if "clipvalue" in clip:
        assert np.abs(step).max() <= bound * (1 + 1e-9)
    elif "clipnorm" in clip:
        n_tensors = 2 * 3
        assert np.linalg.norm(step) <= bound * np.sqrt(n_tensors) * (1 + 1e-9)
    else:
        assert np.linalg.norm(step) <= bound * (1 + 1e-9)
        assert np.linalg.norm(step) > 0.99 * bound  # the clip was active


# ---------------------------------------------------------------------------
# 8. The self-normalization guard
# ---------------------------------------------------------------------------


def selu_data():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(80, 4))
    return X, X[:, 0] - X[:, 1]


GOOD_SELU = dict(hidden_layer_sizes=(6,), activation="selu", kernel_initializer="lecun_normal", alpha=0.0,
                 max_iter=2, random_state=0)


@pytest.mark.parametrize("change, named", [
    (dict(kernel_initializer="he_normal"), "LeCun normal"),
    (dict(kernel_initializer=None), "LeCun normal"),
    (dict(kernel_initializer="lecun_uniform"), "LeCun normal"),
    (dict(batch_norm="after"), "batch norm"),
    (dict(batch_norm_input=True), "batch norm"),
    (dict(l1=0.01), "l1/l2"),
    (dict(alpha=0.01), "l1/l2"),
    (dict(max_norm=3.0), "max-norm"),
    (dict(dropout=0.1), "ordinary dropout"),
    (dict(input_dropout=0.1), "ordinary dropout"),
    ("unstandardized", "not standardized"),
])
def test_self_normalization_warning_names_the_problem(change, named):
    X, y = selu_data()
    params = dict(GOOD_SELU)
    if change == "unstandardized":
        X = X * 10 + 5
    else:
        params.update(change)
    with pytest.warns(SelfNormalizationWarning, match=named) as record:
        MLPRegressor(**params).fit(X, y)
    assert sum(issubclass(w.category, SelfNormalizationWarning) for w in record) == 1  # once per fit


@pytest.mark.parametrize("change", [
    dict(), dict(kernel_initializer="auto"), dict(kernel_initializer=VarianceScaling(1.0, "fan_in", "truncated_normal")),
    dict(alpha_dropout=True, dropout=0.1), dict(alpha_dropout=True, input_dropout=0.1), dict(alpha=1e-4),
])
def test_no_self_normalization_warning_for_the_chapter_configuration(change):
    X, y = selu_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SelfNormalizationWarning)
        MLPRegressor(**{**GOOD_SELU, **change}).fit(X, y)
        MLPClassifier(**{**GOOD_SELU, **change}).fit(X, y > 0)


def test_no_self_normalization_warning_for_other_activations():
    X, y = selu_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SelfNormalizationWarning)
        MLPRegressor(**{**GOOD_SELU, "activation": "elu", "batch_norm": "after", "dropout": 0.1}).fit(X * 10, y)


# ---------------------------------------------------------------------------
# 9. Diagnostics
# ---------------------------------------------------------------------------


def test_diagnostics_are_the_layers_statistics():
    """One full batch with a negligible learning rate: the entries equal the NumPy
    forward pass's activations and the kernel's gradient of each weight matrix."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(64, 5))
    y = X[:, 0] ** 2 + X[:, 1]
    model = MLPRegressor(hidden_layer_sizes=(9, 7), activation="tanh", alpha=0.0, solver="sgd", momentum=0.0,
                         learning_rate_init=1e-12, batch_size=64, max_iter=1, diagnostics=True,
                         random_state=0).fit(X, y)
    record = model.history_[-1]
    parts = {"coefs": model.coefs_, "intercepts": model.intercepts_}
    _, info = ref.forward(X, parts, activation="tanh", output="squared_error", mode="inference")
    for k, a in enumerate(info["a"], start=1):
        assert_allclose(record[f"activation_mean_{k}"], a.mean(), rtol=1e-6)
        assert_allclose(record[f"activation_std_{k}"], a.std(), rtol=1e-6)
        assert f"dead_fraction_{k}" not in record  # only for the ReLU family
    units = np.array([5, 9, 7, 1], dtype=np.int64)
    iopt, fopt = options("tanh", "squared_error")
    network = Network(units, np.float64, iopt, fopt, np.zeros(3))
    params, stats = network.pack(model.__dict__)
    buffers = _Buffers(network, 64, False)
    cpu.loss_grad(*KernelInput(X, np.float64), y[:, None].copy(), np.ones(64), params, stats, buffers.grad,
                  units, iopt, fopt, np.zeros(3), 0.0, 0.0, 0, buffers.bufs, buffers.ibufs, buffers.keys,
                  buffers.dbuf1, buffers.dbuf2)
    for k, grad_W in enumerate(network.unpack(buffers.grad, stats)["coefs_"][:-1], start=1):
        assert record[f"gradient_norm_{k}"] > 0
        assert_allclose(record[f"gradient_norm_{k}"], np.linalg.norm(grad_W), rtol=1e-6)


def test_dead_fraction_of_relu_with_hugely_negative_biases():
    X, y = classification_data(n=100)
    model = MLPClassifier(hidden_layer_sizes=(10, 6), max_iter=1, random_state=0).fit(X, y)
    healthy = model.set_params(warm_start=True, diagnostics=True).fit(X, y).history_[-1]
    assert healthy["dead_fraction_1"] < 0.5
    assert healthy["gradient_norm_1"] > 0 and healthy["gradient_norm_2"] > 0
    for bias in model.intercepts_[:-1]:
        bias[:] = -100.0
    record = model.fit(X, y).history_[-1]
    assert record["dead_fraction_1"] == 1.0 and record["dead_fraction_2"] == 1.0
    assert record["activation_mean_1"] == 0.0 and record["activation_std_2"] == 0.0
    assert record["gradient_norm_1"] == 0.0  # dead ReLUs pass no gradient


@pytest.mark.parametrize("activation", ["leaky_relu", "prelu", "rrelu"])
def test_dead_fraction_for_the_relu_family(activation):
    X, y = classification_data(n=60)
    record = MLPClassifier(hidden_layer_sizes=(5,), activation=activation, diagnostics=True, max_iter=2,
                           random_state=0).fit(X, y).history_[-1]
    assert 0.0 <= record["dead_fraction_1"] <= 1.0


# ---------------------------------------------------------------------------
# 10. Persistence, warm start and input errors
# ---------------------------------------------------------------------------


def test_pickle_round_trip_keeps_predictions():
    X, y = classification_data()
    model = MLPClassifier(hidden_layer_sizes=(8, 6), activation="prelu", batch_norm="before", batch_norm_input=True,
                          dropout=[0.2, 0.1], max_iter=5, random_state=0).fit(X, y)
    assert [a.shape for a in model.prelu_alpha_] == [(8,), (6,)]
    assert not np.allclose(model.prelu_alpha_[0], 0.25)  # the slopes were learned
    clone = pickle.loads(pickle.dumps(model))
    assert_array_equal(clone.predict_proba(X), model.predict_proba(X))
    for a, b in zip(clone.predict_proba_mc(X[:9], n_samples=10, random_state=0),
                    model.predict_proba_mc(X[:9], n_samples=10, random_state=0)):
        assert_array_equal(a, b)
    for name in ["prelu_alpha_", "batch_norm_gamma_", "batch_norm_moving_var_"]:
        for a, b in zip(getattr(clone, name), getattr(model, name)):
            assert_array_equal(a, b)
    # Training continues from the restored state.
    clone.set_params(warm_start=True, max_iter=1).fit(X, y)


@pytest.mark.parametrize("before, after", [
    (dict(batch_norm=None), dict(batch_norm="after")),
    (dict(batch_norm="before"), dict(batch_norm=None)),
    (dict(batch_norm_input=False), dict(batch_norm_input=True)),
    (dict(activation="prelu"), dict(activation="relu")),
    (dict(batch_norm="before"), dict(batch_norm="after")),  # same sizes, another network
])
def test_warm_start_after_changing_the_architecture_raises(before, after):
    X, y = classification_data(n=60)
    model = MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0, **before).fit(X, y)
    model.set_params(warm_start=True, **after)
    with pytest.raises(ValueError, match="batch_norm and batch_norm_input must stay"):
        model.fit(X, y)


@pytest.mark.parametrize("option", [dict(batch_norm_input=True), dict(input_dropout=0.1)])
def test_sparse_input_with_input_batch_norm_or_dropout_raises(option):
    X, y = classification_data(n=40)
    with pytest.raises(ValueError, match="sparse"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, **option).fit(sp.csr_matrix(X), y)
    # Hidden batch norm and dropout work with sparse input.
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, batch_norm="after", dropout=0.1).fit(sp.csr_matrix(X), y)


@pytest.mark.parametrize("option", [dict(batch_norm_input=True), dict(input_dropout=0.1)])
def test_sparse_tag_and_message_follow_the_input_options(option):
    """scikit-learn's check_estimator_sparse_* need the ``sparse`` tag to be False when
    sparse X is refused, and the error to say "sparse"."""
    from sklearn.utils import get_tags

    assert get_tags(MLPClassifier()).input_tags.sparse
    assert not get_tags(MLPClassifier(**option)).input_tags.sparse
    assert not get_tags(MLPRegressor(**option)).input_tags.sparse
    X, y = classification_data(n=40)
    with pytest.raises(ValueError, match="[Ss]parse"):
        MLPRegressor(hidden_layer_sizes=(4,), max_iter=1, **option).fit(sp.csr_matrix(X), y)


@pytest.mark.parametrize("option", [dict(dropout=0.1), dict(input_dropout=0.1), dict(activation="rrelu")])
def test_lbfgs_with_a_random_loss_raises(option):
    X, y = classification_data(n=40)
    with pytest.raises(ValueError, match="use a stochastic solver"):
        MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", **option).fit(X, y)


def test_sparse_and_dense_agree_with_hidden_batch_norm_and_dropout():
    X, y = classification_data(n=80)
    X[np.abs(X) < 0.7] = 0.0
    kw = dict(hidden_layer_sizes=(6,), batch_norm="after", dropout=0.2, max_iter=3, random_state=0)
    dense = MLPClassifier(**kw).fit(X, y)
    sparse = MLPClassifier(**kw).fit(sp.csr_matrix(X), y)
    for a, b in zip(dense.coefs_, sparse.coefs_):
        assert_allclose(a, b, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------
# 11. Masks keyed by the sample: weights equal repetitions, no batch dependence
# ---------------------------------------------------------------------------


def toolkit_network(n_features=4, activation="rrelu", batch_norm="after", input_bn=True, dropout=(0.2, 0.3, 0.3)):
    units = np.array([n_features, 6, 5, 3], dtype=np.int64)
    iopt, fopt = options(activation, "multiclass_log_loss", batch_norm, input_bn)
    network = Network(units, np.float64, iopt, fopt, np.asarray(dropout, dtype=float))
    params, stats = random_vectors(np.random.default_rng(11), network, activation, batch_norm, input_bn)
    return network, params, stats


def kernel_loss_grad(network, params, stats, X, Y, sw, seed=7):
    buffers = _Buffers(network, len(Y), sp.issparse(X))
    stats = stats.copy()
    loss = cpu.loss_grad(*KernelInput(X, np.float64), Y, sw, params, stats, buffers.grad, *network._kernel_args(),
                         0.1, 0.0, seed, buffers.bufs, buffers.ibufs, buffers.keys, buffers.dbuf1, buffers.dbuf2)
    return loss, buffers.grad.copy(), stats


def test_weight_two_equals_a_repeated_row_with_batch_norm_dropout_and_rrelu():
    """Batch statistics weighted by ``sw`` and per-sample masks: the same loss, gradient
    and moving statistics (scikit-learn's sample-weight equivalence)."""
    rng = np.random.default_rng(12)
    X = rng.normal(size=(8, 4))
    Y = np.eye(3)[rng.integers(3, size=8)]
    sw = np.array([1.0, 2.0, 1.0, 3.0, 1.0, 1.0, 2.0, 1.0])
    repeat = np.repeat(np.arange(8), sw.astype(int))
    network, params, stats = toolkit_network()
    weighted = kernel_loss_grad(network, params, stats, X, Y, sw)
    repeated = kernel_loss_grad(network, params, stats, X[repeat], Y[repeat], np.ones(repeat.size))
    for a, b in zip(weighted, repeated):
        assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_masks_do_not_depend_on_the_row_position():
    rng = np.random.default_rng(13)
    X = rng.normal(size=(10, 4))
    Y = np.eye(3)[rng.integers(3, size=10)]
    network, params, stats = toolkit_network()
    order = rng.permutation(10)
    a = kernel_loss_grad(network, params, stats, X, Y, np.ones(10))
    b = kernel_loss_grad(network, params, stats, X[order], Y[order], np.ones(10))
    for x, y in zip(a, b):
        assert_allclose(x, y, rtol=1e-10, atol=1e-12)
    c = kernel_loss_grad(network, params, stats, X, Y, np.ones(10), seed=8)  # another epoch: other masks
    assert not np.isclose(a[0], c[0])


def test_row_keys_dense_and_sparse_agree_and_separate_rows():
    rng = np.random.default_rng(14)
    X = rng.normal(size=(200, 6))
    X[rng.random(X.shape) < 0.5] = 0.0
    X[1] = X[0]
    X[2] = X[0]
    X[2, 0] += 1e-3  # a nearby sample
    keys_dense, keys_sparse = np.empty(200, dtype=np.uint64), np.empty(200, dtype=np.uint64)
    k_row_keys(*KernelInput(X, np.float64), np.arange(200), 5, keys_dense)
    k_row_keys(*KernelInput(sp.csr_matrix(X), np.float64), np.arange(200), 5, keys_sparse)
    assert_array_equal(keys_dense, keys_sparse)
    assert keys_dense[0] == keys_dense[1] and keys_dense[0] != keys_dense[2]
    assert np.unique(keys_dense).size == np.unique(X, axis=0).shape[0]  # one key per distinct row
    # Masks drawn from these keys keep 1 - p of the units, independently across rows.
    A, M = np.ones((200, 300)), np.empty((200, 300))
    k_dropout(A, M, 0.4, 0, keys_dense, 1)
    keep = M != 0
    assert abs(keep.mean() - 0.6) < 0.01
    assert abs(np.mean(keep[2] == keep[0]) - (0.6**2 + 0.4**2)) < 0.1


@pytest.mark.parametrize("scale", [1e-9, 1e-7, 1e-3, 1e6, 1e14, 1e20])
def test_row_keys_separate_distinct_rows_at_any_scale(scale):
    """Unstandardized features (what batch_norm_input is for) must not make distinct samples
    share a key, or every sample in a batch would get the same dropout mask."""
    X = np.random.default_rng(15).normal(size=(100, 3)) * scale
    keys = np.empty(100, dtype=np.uint64)
    k_row_keys(*KernelInput(X, np.float64), np.arange(100), 5, keys)
    assert np.unique(keys).size == 100


def test_mc_dropout_of_a_row_does_not_depend_on_the_other_rows(mc_classifier):
    model, X = mc_classifier
    mean, std = model.predict_proba_mc(X, n_samples=40, random_state=3)
    mean1, std1 = model.predict_proba_mc(X[5:6], n_samples=40, random_state=3)
    assert_allclose(mean1, mean[5:6], rtol=1e-12)
    assert_allclose(std1, std[5:6], rtol=1e-9, atol=1e-12)
