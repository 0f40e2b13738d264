"""Finite-difference checks of the gradient ``cpu.loss_grad`` returns.

For every hidden activation and every output/loss code, a small network with
two hidden layers: the central difference ``(L(w + h e_i) - L(w - h e_i)) / 2h``
of the kernel's own loss, for every parameter ``i``, must match the kernel's
gradient (float64, ``h = 1e-6``; the difference's error is about
``h^2 |L'''| + eps |L| / h``, below 1e-9 here).

Squared error with ``k`` outputs: the loss averages over outputs, but
scikit-learn (and so the kernel) backpropagates ``delta = p - y``, the
derivative of the loss *summed* over outputs. The kernel's gradient is thus the
gradient of ``k * data_loss + penalty``, where the penalty
``(0.5 * alpha * sum(W^2) + l1 * sum|W|) / sum(w)`` is not multiplied by ``k``.
That is the objective differentiated below (:meth:`Net.objective`); the
``test_squared_error_*`` tests pin the convention down explicitly. Every weight
is drawn at least ``1e-3`` away from 0, where ``|w|`` is smooth.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import reference as ref
from skdeep.kernels import codes as C

ACTIVATIONS = [C.IDENTITY, C.LOGISTIC, C.TANH, C.RELU]
OUTPUTS = [C.SQUARED_ERROR, C.POISSON, C.BINARY_LOG_LOSS, C.MULTICLASS_LOG_LOSS]
RTOL, ATOL = 1e-6, 1e-8
EPS = float(np.finfo(np.float64).eps)


def act_id(code):
    return ref.ACTIVATION_NAMES[code]


def out_id(code):
    return ref.OUTPUT_NAMES[code]


class Net:
    """A random two-hidden-layer network and data, away from every kink.

    Seeds are tried in turn until every hidden pre-activation and every weight
    is at least ``1e-3`` away from zero, so a step of ``h`` never crosses
    ReLU's kink or that of ``|w|`` in the L1 term.
    """

    def __init__(self, activation, output, *, n_outputs=3, weighted=False, alpha=0.0, l1=0.0,
                 n=9, sparse=False, seed=0):
        self.units = np.array([4, 5, 3, n_outputs], dtype=np.int64)
        self.activation, self.output = activation, output
        self.alpha, self.l1, self.sparse = float(alpha), float(l1), sparse
        self.n_coefs = int(np.sum(self.units[:-1] * self.units[1:]))
        for attempt in range(seed, seed + 100):
            self._draw(np.random.default_rng(attempt), n, weighted)
            smallest_weight = np.abs(self.params[: self.n_coefs]).min()
            if self._min_hidden_preactivation() > 1e-3 and smallest_weight > 1e-3:
                break
        else:  # pragma: no cover
            raise RuntimeError("no draw kept ReLU pre-activations and weights away from 0")
        self.data = ref.kernel_input(self.X, np.float64, sparse)
        self.net = ref.KernelNet(self.units, activation, output, np.float64)

    def _draw(self, rng, n, weighted):
        k = self.units[-1]
        X = rng.normal(size=(n, self.units[0]))
        if self.sparse:
            X[rng.random(X.shape) < 0.4] = 0.0
        if self.output == C.SQUARED_ERROR:
            Y = rng.normal(size=(n, k))
        elif self.output == C.POISSON:
            Y = rng.poisson(1.0, size=(n, k)).astype(float)
        elif self.output == C.BINARY_LOG_LOSS:
            Y = (rng.random((n, k)) < 0.5).astype(float)
        else:
            Y = np.eye(k)[rng.integers(k, size=n)]
        self.X, self.Y = X, np.ascontiguousarray(Y)
        self.sw = rng.uniform(0.0, 3.0, size=n) if weighted else np.ones(n)
        self.params = rng.uniform(-0.8, 0.8, size=ref.n_params(self.units))

    def _min_hidden_preactivation(self):
        coefs, intercepts = ref.unpack(self.params, self.units)
        a, smallest = self.X, np.inf
        for w, b in zip(coefs[:-1], intercepts[:-1]):
            z = a @ w + b
            smallest = min(smallest, np.abs(z).min())
            a = ref.HIDDEN_ACTIVATIONS[act_id(self.activation)](z)
        return smallest

    def loss_grad(self, params):
        """The kernel's ``(loss, gradient)`` at ``params`` (``params`` is not modified)."""
        return self.net.loss_grad(self.data, self.Y, self.sw, params, self.alpha, self.l1)

    def penalty(self, params):
        """``(0.5 * alpha * sum(W^2) + l1 * sum|W|) / sum(w)``."""
        w = params[: self.n_coefs]
        return (0.5 * self.alpha * np.sum(w**2) + self.l1 * np.sum(np.abs(w))) / self.sw.sum()

    def objective(self, params):
        """The function whose gradient scikit-learn's backpropagation computes.

        The kernel's loss, with its data term scaled by ``n_outputs`` for squared
        error (see the module docstring).
        """
        loss, _ = self.loss_grad(params)
        if self.output == C.SQUARED_ERROR:
            penalty = self.penalty(params)
            loss = self.units[-1] * (loss - penalty) + penalty
        return loss


def check_gradient(net):
    params_before = net.params.copy()
    _, grad = net.loss_grad(net.params)
    np.testing.assert_array_equal(net.params, params_before)
    fd = ref.central_differences(net.objective, net.params)
    assert np.abs(fd).max() > 1e-3  # a real gradient, not a trivially flat loss
    assert_allclose(grad, fd, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("output", OUTPUTS, ids=out_id)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=act_id)
def test_gradient_matches_finite_differences(activation, output):
    check_gradient(Net(activation, output))


CASES = {
    # weighted, alpha, l1
    "l2": (False, 0.7, 0.0),
    "weighted": (True, 0.0, 0.0),
    "weighted_l2": (True, 0.7, 0.0),
    "weighted_l2_l1": (True, 0.7, 0.1),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("output", OUTPUTS, ids=out_id)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=act_id)
def test_gradient_with_penalties_and_sample_weights(activation, output, case):
    weighted, alpha, l1 = CASES[case]
    check_gradient(Net(activation, output, alpha=alpha, l1=l1, weighted=weighted, seed=10))


@pytest.mark.parametrize("output", OUTPUTS, ids=out_id)
def test_gradient_csr_input(output):
    check_gradient(Net(C.TANH, output, alpha=0.2, l1=0.05, weighted=True, sparse=True, seed=20))


@pytest.mark.parametrize("output", [C.SQUARED_ERROR, C.POISSON, C.BINARY_LOG_LOSS], ids=out_id)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=act_id)
def test_gradient_single_output(activation, output):
    """One output (e.g. binary classification); squared error then needs no rescaling."""
    net = Net(activation, output, n_outputs=1, alpha=0.3, l1=0.05, weighted=True, seed=30)
    _, grad = net.loss_grad(net.params)
    fd = ref.central_differences(lambda p: net.loss_grad(p)[0], net.params)
    assert_allclose(grad, fd, rtol=RTOL, atol=ATOL)


def test_squared_error_gradient_is_n_outputs_times_the_loss_gradient():
    """scikit-learn's convention, pinned: ``grad = k * d(loss)`` with ``k`` outputs, no L2."""
    net = Net(C.TANH, C.SQUARED_ERROR, n_outputs=3, weighted=True, seed=40)
    _, grad = net.loss_grad(net.params)
    fd = ref.central_differences(lambda p: net.loss_grad(p)[0], net.params)
    assert_allclose(grad, 3 * fd, rtol=RTOL, atol=ATOL)
    assert not np.allclose(grad, fd, rtol=1e-2)


def test_squared_error_penalty_gradient_is_not_rescaled():
    """With only the penalties (zero data gradient): ``(alpha W + l1 sign(W)) / sum(w)``."""
    net = Net(C.IDENTITY, C.SQUARED_ERROR, n_outputs=3, alpha=0.5, l1=0.2, weighted=True, seed=50)
    # Targets equal to the predictions: the data term and its gradient vanish.
    coefs, intercepts = ref.unpack(net.params, net.units)
    net.Y = ref.predict(net.X, coefs, intercepts, "identity", "squared_error")
    loss, grad = net.loss_grad(net.params)
    assert_allclose(loss, net.penalty(net.params), rtol=1e-12)
    expected = np.zeros_like(net.params)
    w = net.params[: net.n_coefs]
    expected[: net.n_coefs] = (net.alpha * w + net.l1 * np.sign(w)) / net.sw.sum()
    assert_allclose(grad, expected, rtol=1e-10, atol=1e-14)
    fd = ref.central_differences(lambda p: net.loss_grad(p)[0], net.params)
    assert_allclose(grad, fd, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("output", OUTPUTS, ids=out_id)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=act_id)
def test_reference_gradient_matches_finite_differences(activation, output):
    """The NumPy reference passes the same check, so kernel and reference agree for a reason."""
    net = Net(activation, output, alpha=0.4, l1=0.1, weighted=True, seed=60)
    names = act_id(activation), out_id(output)

    def reference(params):
        return ref.flat_loss_and_gradient(
            net.X, net.Y, params, net.units, *names, net.alpha, net.sw, EPS, net.l1
        )

    loss, grad = reference(net.params)

    def objective(params):
        value = reference(params)[0]
        if output == C.SQUARED_ERROR:
            penalty = net.penalty(params)
            value = net.units[-1] * (value - penalty) + penalty
        return value

    assert_allclose(grad, ref.central_differences(objective, net.params), rtol=RTOL, atol=ATOL)
    kernel_loss, kernel_grad = net.loss_grad(net.params)
    assert_allclose(kernel_loss, loss, rtol=1e-12)
    assert_allclose(kernel_grad, grad, rtol=1e-12, atol=1e-14)
