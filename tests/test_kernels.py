"""The compiled CPU kernels against the NumPy references of ``reference.py``.

Every public kernel (``layout``, ``predict``, ``loss_grad``, ``train_epoch``) and
the fused private ones are compared in float64 (relative tolerance ~1e-12) and
float32 (~1e-5), dense and CSR input, every activation and output/loss code,
with and without sample weights, L2/L1 penalties and frozen layers, and for
``train_epoch`` with the SGD (plain, momentum, Nesterov), Adam and NO_UPDATE
codes, shuffled rows and per-batch learning rates and momenta. Work buffers
start filled with NaN, so a read of an unwritten value shows. Shapes stay tiny:
these tests check arithmetic, not speed.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from numba import njit
from numpy.testing import assert_allclose, assert_array_equal

import reference as ref
from skdeep.kernels import codes as C
from skdeep.kernels import cpu

ACTIVATIONS = [C.IDENTITY, C.LOGISTIC, C.TANH, C.RELU]
OUTPUTS = [C.SQUARED_ERROR, C.POISSON, C.BINARY_LOG_LOSS, C.MULTICLASS_LOG_LOSS]
DTYPES = [np.float64, np.float32]
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}

# ``mu`` is the per-batch momentum the kernels take in ``momenta``: SGD's momentum, Adam's beta_1.
OPTIMIZERS = {
    "no_update": dict(code=C.NO_UPDATE, name=None, n_slots=0, mu=0.0),
    "sgd": dict(code=C.SGD, name="sgd", n_slots=1, mu=0.0, nesterov=False),
    "momentum": dict(code=C.SGD, name="sgd", n_slots=1, mu=0.9, nesterov=False),
    "nesterov": dict(code=C.SGD, name="sgd", n_slots=1, mu=0.8, nesterov=True),
    "adam": dict(code=C.ADAM, name="adam", n_slots=2, mu=0.9, beta_2=0.999, epsilon=1e-8),
}


def act_id(code):
    return ref.ACTIVATION_NAMES[code]


def out_id(code):
    return ref.OUTPUT_NAMES[code]


def dtype_id(dtype):
    return np.dtype(dtype).name


def assert_close(actual, expected, dtype, factor=1.0):
    """Equal to ``RTOL[dtype]``, relative to each value and to the array's scale."""
    rtol = factor * RTOL[np.dtype(dtype)]
    expected = np.asarray(expected, dtype=np.float64)
    scale = np.max(np.abs(expected)) if expected.size else 1.0
    assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=rtol * (scale or 1.0))


def eps_of(dtype):
    return float(np.finfo(dtype).eps)


class Problem:
    """A random network and data set, in ``dtype`` and as float64 copies of the same values.

    ``X`` has about 40% zeros so its CSR form is genuinely sparse; targets suit
    the loss (real values, counts with zeros, multi-label 0/1, one-hot); the
    sample weights, when ``weighted``, include a zero.
    """

    def __init__(self, output, dtype, *, weighted=False, n=13, hidden=(4, 3), n_outputs=3,
                 activation=C.TANH, seed=0):
        rng = np.random.default_rng(seed)
        self.dtype = np.dtype(dtype)
        self.activation, self.output = activation, output
        self.units = np.array([5, *hidden, n_outputs], dtype=np.int64)
        X = rng.normal(size=(n, self.units[0]))
        X[rng.random(X.shape) < 0.4] = 0.0
        k = n_outputs
        if output == C.SQUARED_ERROR:
            Y = rng.normal(size=(n, k))
        elif output == C.POISSON:
            Y = rng.poisson(1.5, size=(n, k)).astype(float)
            Y[0] = 0.0
        elif output == C.BINARY_LOG_LOSS:
            Y = (rng.random((n, k)) < 0.5).astype(float)
        else:
            Y = np.eye(k)[rng.integers(k, size=n)]
        sw = rng.uniform(0.2, 3.0, size=n) if weighted else np.ones(n)
        if weighted:
            sw[1] = 0.0
        params = rng.uniform(-0.7, 0.7, size=ref.n_params(self.units))
        # Kernel arrays in ``dtype``; reference arrays hold the very same values in float64.
        self.X = np.ascontiguousarray(X, dtype=dtype)
        self.Y = np.ascontiguousarray(Y, dtype=dtype)
        self.sw = np.ascontiguousarray(sw, dtype=dtype)
        self.params = np.ascontiguousarray(params, dtype=dtype)
        self.X64, self.Y64, self.sw64, self.params64 = (
            a.astype(np.float64) for a in (self.X, self.Y, self.sw, self.params)
        )
        self.weighted = weighted
        self.rng = rng
        self.net = ref.KernelNet(self.units, activation, output, dtype)

    @property
    def n(self):
        return self.X.shape[0]

    @property
    def names(self):
        return ref.ACTIVATION_NAMES[self.activation], ref.OUTPUT_NAMES[self.output]

    def data(self, sparse):
        return ref.kernel_input(self.X, self.dtype, sparse)

    def reference_loss_grad(self, alpha=0.0, l1=0.0):
        return ref.flat_loss_and_gradient(
            self.X64, self.Y64, self.params64, self.units, *self.names, alpha, self.sw64,
            eps_of(self.dtype), l1,
        )

    def kernel_loss_grad(self, sparse, alpha=0.0, l1=0.0):
        return self.net.loss_grad(self.data(sparse), self.Y, self.sw, self.params, alpha, l1)

    def kernel_predict(self, sparse, X=None):
        data = self.data(sparse) if X is None else ref.kernel_input(X, self.dtype, sparse)
        return self.net.predict(data, self.params)


# ---------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("units", [[3, 1], [5, 4, 3], [2, 7, 1, 6, 3], [1, 1, 1, 1]])
@pytest.mark.parametrize("capacity", [1, 4, 9])
def test_layout(units, capacity):
    units = np.array(units, dtype=np.int64)
    n_layers = len(units) - 1
    offsets, n_params, n_stats = ref.KernelNet(units, C.TANH, C.SQUARED_ERROR, np.float64).layout(capacity)
    assert offsets.dtype == np.int64
    assert offsets.shape == (n_layers + 1, C.N_LAYOUT)
    assert_array_equal(offsets[:n_layers, [C.L_W, C.L_B, C.L_A]], ref.layout(units, capacity))
    # A plain MLP: no PReLU slopes, no batch norm, no statistics, no extra parameters.
    assert n_params == ref.n_params(units) and n_stats == 0
    assert (offsets[:, [C.L_P, C.L_G, C.L_S]] == -1).all()
    assert (offsets[:, C.L_X] == n_params).all()
    offsets = offsets[:n_layers, [C.L_W, C.L_B, C.L_A]]

    # The offsets address the same slices as ``reference.pack`` lays out.
    rng = np.random.default_rng(0)
    coefs = [rng.normal(size=(a, b)) for a, b in zip(units[:-1], units[1:])]
    intercepts = [rng.normal(size=b) for b in units[1:]]
    flat = ref.pack(coefs, intercepts)
    assert flat.size == ref.n_params(units)
    for layer, (w, b) in enumerate(zip(coefs, intercepts)):
        w_start, b_start, _ = offsets[layer]
        assert_array_equal(flat[w_start : w_start + w.size].reshape(w.shape), w)
        assert_array_equal(flat[b_start : b_start + b.size], b)
    # Activation blocks are contiguous and exactly fill capacity * sum(units[1:]).
    sizes = capacity * units[1:]
    assert_array_equal(offsets[:, 2], np.concatenate([[0], np.cumsum(sizes)[:-1]]))


def test_pack_unpack_roundtrip():
    units = [4, 3, 2]
    flat = np.arange(ref.n_params(units), dtype=np.float64)
    coefs, intercepts = ref.unpack(flat, units)
    assert [c.shape for c in coefs] == [(4, 3), (3, 2)]
    assert_array_equal(coefs[0].ravel(), np.arange(12))
    assert_array_equal(intercepts[0], [18, 19, 20])
    assert_array_equal(ref.pack(coefs, intercepts), flat)


# ---------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("output", OUTPUTS, ids=out_id)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=act_id)
def test_predict(activation, output, dtype):
    prob = Problem(output, dtype, activation=activation)
    coefs, intercepts = ref.unpack(prob.params64, prob.units)
    expected = ref.predict(prob.X64, coefs, intercepts, *prob.names)
    params_before = prob.params.copy()
    results = {}
    for sparse in (False, True):
        out = prob.kernel_predict(sparse)
        assert out.dtype == prob.dtype
        assert out.shape == (prob.n, prob.units[-1])
        assert_close(out, expected, dtype)
        results[sparse] = out
    assert_close(results[True], results[False], dtype)
    assert_array_equal(prob.params, params_before)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_predict_in_several_chunks(sparse):
    """More rows than ``PREDICT_CHUNK``: the output is stitched from chunks."""
    n = 2 * cpu.PREDICT_CHUNK + 7
    prob = Problem(C.MULTICLASS_LOG_LOSS, np.float64, n=n, activation=C.RELU, hidden=(3,))
    coefs, intercepts = ref.unpack(prob.params64, prob.units)
    expected = ref.predict(prob.X64, coefs, intercepts, *prob.names)
    out = prob.kernel_predict(sparse)
    assert_close(out, expected, np.float64)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_predict_non_finite_input_returns_empty(dtype, sparse, value):
    prob = Problem(C.SQUARED_ERROR, dtype, n=9)
    X = prob.X.copy()
    X[6, 2] = value  # a non-zero, so CSR keeps it
    out = prob.kernel_predict(sparse, X)
    assert out.shape == (0, 0)
    assert out.dtype == prob.dtype


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_predict_no_rows(sparse):
    """Zero rows in, a ``(0, n_outputs)`` array out (no chunk to run)."""
    prob = Problem(C.SQUARED_ERROR, np.float64)
    out = prob.kernel_predict(sparse, np.empty((0, prob.units[0])))
    assert out.shape == (0, prob.units[-1])


# ---------------------------------------------------------------------------
# loss_grad (full batch, for L-BFGS)
# ---------------------------------------------------------------------------


PENALTIES = {"none": (0.0, 0.0), "l2": (0.3, 0.0), "l1": (0.0, 0.05), "l2_l1": (0.3, 0.05)}


@pytest.mark.parametrize("penalty", list(PENALTIES))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("output", OUTPUTS, ids=out_id)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=act_id)
def test_loss_grad(activation, output, dtype, weighted, penalty):
    alpha, l1 = PENALTIES[penalty]
    prob = Problem(output, dtype, weighted=weighted, activation=activation)
    expected_loss, expected_grad = prob.reference_loss_grad(alpha, l1)
    params_before = prob.params.copy()
    results = {}
    for sparse in (False, True):
        loss, grad = prob.kernel_loss_grad(sparse, alpha, l1)
        assert grad.dtype == prob.dtype
        assert_close(loss, expected_loss, dtype)
        assert_close(grad, expected_grad, dtype)
        assert_array_equal(prob.params, params_before)  # parameters are only read
        results[sparse] = loss, grad
    assert_close(results[True][0], results[False][0], dtype)
    assert_close(results[True][1], results[False][1], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("output", OUTPUTS, ids=out_id)
def test_loss_grad_ignores_row_order(output, dtype):
    """Permuting the samples (with their targets and weights) changes nothing."""
    prob = Problem(output, dtype, weighted=True, activation=C.LOGISTIC)
    loss, grad = prob.kernel_loss_grad(False, 0.1)
    perm = prob.rng.permutation(prob.n)
    prob.X, prob.Y, prob.sw = (np.ascontiguousarray(a[perm]) for a in (prob.X, prob.Y, prob.sw))
    for sparse in (False, True):
        loss_p, grad_p = prob.kernel_loss_grad(sparse, 0.1)
        assert_close(loss_p, loss, dtype)
        assert_close(grad_p, grad, dtype)


def test_loss_grad_penalties_skip_biases():
    """With all weights zero the L2 and L1 terms vanish, whatever the biases."""
    prob = Problem(C.SQUARED_ERROR, np.float64, weighted=True)
    n_coefs = int(np.sum(prob.units[:-1] * prob.units[1:]))
    prob.params[:n_coefs] = 0.0
    loss_0, grad_0 = prob.kernel_loss_grad(False)
    loss_a, grad_a = prob.kernel_loss_grad(False, 5.0, 2.0)
    assert_close(loss_a, loss_0, np.float64)
    assert_close(grad_a, grad_0, np.float64)


@pytest.mark.parametrize("output", OUTPUTS, ids=out_id)
@pytest.mark.parametrize(
    "hidden, n_outputs",
    [((), 3), ((4,), 1), ((4, 3, 2, 6), 2), ((6, 1), 3)],
    ids=["no_hidden", "one_output", "deep", "bottleneck"],
)
def test_network_shapes(hidden, n_outputs, output):
    """No hidden layer, one output, deeper networks: predict, loss_grad and train_epoch."""
    prob = Problem(output, np.float64, weighted=True, hidden=hidden, n_outputs=n_outputs,
                   activation=C.LOGISTIC, seed=9)
    coefs, intercepts = ref.unpack(prob.params64, prob.units)
    expected = ref.predict(prob.X64, coefs, intercepts, *prob.names)
    expected_loss, expected_grad = prob.reference_loss_grad(0.2)
    for sparse in (False, True):
        out = prob.kernel_predict(sparse)
        assert_close(out, expected, np.float64)
        loss, grad = prob.kernel_loss_grad(sparse, 0.2)
        assert_close(loss, expected_loss, np.float64)
        assert_close(grad, expected_grad, np.float64)
    opt = OPTIMIZERS["adam"]
    order = prob.rng.permutation(prob.n).astype(np.int64)
    slots = initial_slots(opt, prob.params.size, prob.rng)
    expected_epoch, results = run_epochs(prob, opt, order, 5, np.full(3, 0.01), 0.2, 2, slots)
    check_epoch(prob, opt, expected_epoch, results)


# ---------------------------------------------------------------------------
# train_epoch
# ---------------------------------------------------------------------------


def hyperparameters(opt):
    hp = np.zeros(C.N_HYPERPARAMETERS)
    hp[C.HP_NESTEROV] = float(opt.get("nesterov", False))
    hp[C.HP_BETA_2] = opt.get("beta_2", 0.0)
    hp[C.HP_EPSILON] = opt.get("epsilon", 0.0)
    return hp


def initial_slots(opt, n_params, rng, zero=False):
    """Optimizer state as if earlier steps had run: velocity, or first and second moments."""
    slots = np.zeros((opt["n_slots"], n_params))
    if not zero:
        if opt["n_slots"] >= 1:
            slots[0] = rng.normal(scale=0.05, size=n_params)
        if opt["n_slots"] == 2:
            slots[1] = rng.uniform(0.01, 0.05, size=n_params)
    return slots


def run_epochs(prob, opt, order, batch_size, lrs, alpha, step, slots, sparse_modes=(False, True),
               *, momenta=None, l1=0.0, first_trainable=0):
    """Run the kernel (dense and CSR) and the reference on one epoch; return all results.

    ``momenta`` defaults to ``opt["mu"]`` for every batch.
    """
    momenta = np.full(len(lrs), opt["mu"]) if momenta is None else np.asarray(momenta, dtype=float)
    expected = ref.train_epoch(
        prob.X64, prob.Y64, prob.sw64, order, batch_size, lrs, momenta, prob.params64,
        prob.units, *prob.names, alpha, opt["name"], slots, step,
        nesterov=opt.get("nesterov", False), beta_2=opt.get("beta_2", 0.999),
        epsilon=opt.get("epsilon", 1e-8), eps=eps_of(prob.dtype), l1=l1,
        first_trainable=first_trainable,
    )
    results = {}
    for sparse in sparse_modes:
        params = prob.params.copy()
        kslots = np.array(slots, dtype=prob.dtype, order="C", copy=True)
        loss_sum, n_batches, new_step, grad = prob.net.train_epoch(
            prob.data(sparse), prob.Y, prob.sw, order, batch_size, lrs, momenta, params, kslots,
            alpha=alpha, l1=l1, opt=opt["code"], hp=hyperparameters(opt), step=step,
            first_trainable=first_trainable,
        )
        results[sparse] = dict(
            loss_sum=loss_sum, n_batches=n_batches, step=new_step, params=params,
            slots=kslots, grad=grad,
        )
    return expected, results


def check_epoch(prob, opt, expected, results, factor=1.0, first_trainable=0):
    dtype = prob.dtype
    frozen = ~ref.trainable(prob.units, first_trainable)
    for got in results.values():
        assert got["n_batches"] == expected["n_batches"]
        assert got["step"] == expected["step"]
        assert got["params"].dtype == dtype
        assert_close(got["loss_sum"], expected["loss_sum"], dtype, factor)
        assert_close(got["params"], expected["params"], dtype, factor)
        for got_slot, expected_slot in zip(got["slots"], expected["slots"]):
            assert_close(got_slot, expected_slot, dtype, factor)
        if opt["code"] == C.NO_UPDATE:
            # Parameters untouched; ``grad`` holds the last batch's finalized gradient.
            assert_array_equal(got["params"], prob.params)
            assert_close(got["grad"][~frozen], expected["grad"][~frozen], dtype, factor)
        # Frozen layers keep their parameters and optimizer state bit for bit.
        assert_array_equal(got["params"][frozen], prob.params[frozen])
    if len(results) == 2:
        dense, csr = results[False], results[True]
        assert_close(csr["loss_sum"], dense["loss_sum"], dtype, factor)
        assert_close(csr["params"], dense["params"], dtype, factor)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("output", OUTPUTS, ids=out_id)
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_train_epoch_one_batch(optimizer, output, dtype):
    """One batch covering all rows, in order, from fresh optimizer state."""
    opt = OPTIMIZERS[optimizer]
    prob = Problem(output, dtype, weighted=True, activation=C.TANH)
    order = np.arange(prob.n, dtype=np.int64)
    slots = initial_slots(opt, prob.params.size, prob.rng, zero=True)
    expected, results = run_epochs(prob, opt, order, prob.n, np.array([0.05]), 0.01, 0, slots)
    assert expected["n_batches"] == 1 and expected["step"] == 1
    check_epoch(prob, opt, expected, results)
    # One batch of everything: loss_sum / n is loss_grad's full-batch loss.
    full_loss, _ = prob.reference_loss_grad(0.01)
    assert_close(results[False]["loss_sum"] / prob.n, full_loss, dtype)


SETTINGS = {
    # weighted, alpha, l1, first_trainable
    "plain": (False, 0.0, 0.0, 0),
    "weighted_l2": (True, 0.05, 0.0, 0),
    "l1_frozen": (True, 0.02, 0.03, 1),
}


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("output", OUTPUTS, ids=out_id)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=act_id)
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_train_epoch_several_batches(optimizer, activation, output, dtype, setting):
    """Shuffled rows, a short last batch, per-batch learning rates and momenta, warm state."""
    opt = OPTIMIZERS[optimizer]
    weighted, alpha, l1, first_trainable = SETTINGS[setting]
    prob = Problem(output, dtype, weighted=weighted, activation=activation, n=17, seed=1)
    order = prob.rng.permutation(prob.n).astype(np.int64)
    batch_size = 5  # batches of 5, 5, 5, 2
    lrs = np.array([0.05, 0.02, 0.08, 0.03])
    momenta = opt["mu"] * np.array([1.0, 0.9, 0.95, 0.8])
    slots = initial_slots(opt, prob.params.size, prob.rng)
    expected, results = run_epochs(
        prob, opt, order, batch_size, lrs, alpha, 3, slots, momenta=momenta, l1=l1,
        first_trainable=first_trainable,
    )
    assert expected["n_batches"] == 4 and expected["step"] == 7
    check_epoch(prob, opt, expected, results, first_trainable=first_trainable)


@pytest.mark.parametrize("first_trainable", [1, 2])
@pytest.mark.parametrize("optimizer", ["nesterov", "adam"])
def test_train_epoch_frozen_layers(optimizer, first_trainable):
    """Frozen layers: their weights, biases and slots stay exactly as they were."""
    opt = OPTIMIZERS[optimizer]
    prob = Problem(C.MULTICLASS_LOG_LOSS, np.float64, weighted=True, activation=C.RELU, n=12)
    order = prob.rng.permutation(prob.n).astype(np.int64)
    slots = initial_slots(opt, prob.params.size, prob.rng)
    expected, results = run_epochs(
        prob, opt, order, 4, np.full(3, 0.05), 0.1, 0, slots, l1=0.01,
        first_trainable=first_trainable,
    )
    check_epoch(prob, opt, expected, results, first_trainable=first_trainable)
    frozen = ~ref.trainable(prob.units, first_trainable)
    assert frozen.sum() == sum(
        prob.units[layer] * prob.units[layer + 1] + prob.units[layer + 1] for layer in range(first_trainable)
    )
    for got in results.values():
        assert_array_equal(got["slots"][:, frozen], slots[:, frozen])
        assert not np.allclose(got["params"][~frozen], prob.params[~frozen])


def test_train_epoch_uses_each_batch_learning_rate():
    """Plain SGD: the change of the parameters in batch b scales with ``lrs[b]``."""
    opt = OPTIMIZERS["sgd"]
    prob = Problem(C.SQUARED_ERROR, np.float64, n=6)
    order = np.arange(prob.n, dtype=np.int64)
    slots = initial_slots(opt, prob.params.size, prob.rng, zero=True)
    lrs_a = np.array([0.1, 0.0])
    lrs_b = np.array([0.0, 0.1])
    assert opt["mu"] == 0.0
    exp_a, res_a = run_epochs(prob, opt, order, 3, lrs_a, 0.0, 0, slots, (False,))
    exp_b, res_b = run_epochs(prob, opt, order, 3, lrs_b, 0.0, 0, slots, (False,))
    check_epoch(prob, opt, exp_a, res_a)
    check_epoch(prob, opt, exp_b, res_b)
    assert not np.allclose(res_a[False]["params"], res_b[False]["params"])


def test_train_epoch_adam_first_steps_from_zero_state():
    """Adam from ``t = 0`` with zero moments: the bias correction of the first steps."""
    opt = OPTIMIZERS["adam"]
    prob = Problem(C.BINARY_LOG_LOSS, np.float64, n=12, activation=C.LOGISTIC)
    order = np.arange(prob.n, dtype=np.int64)
    slots = initial_slots(opt, prob.params.size, prob.rng, zero=True)
    expected, results = run_epochs(prob, opt, order, 4, np.full(3, 0.01), 0.0, 0, slots)
    check_epoch(prob, opt, expected, results)


@pytest.mark.parametrize("bad_batch", [0, 2])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("output", OUTPUTS, ids=out_id)
@pytest.mark.parametrize("activation", [C.TANH, C.RELU], ids=act_id)
def test_train_epoch_stops_before_non_finite_batch(activation, output, dtype, sparse, bad_batch):
    """A NaN in one row: the epoch stops before updating on that row's batch."""
    opt = OPTIMIZERS["momentum"]
    prob = Problem(output, dtype, activation=activation, n=16, seed=2)
    order = prob.rng.permutation(prob.n).astype(np.int64)
    batch_size = 4
    bad_row = order[bad_batch * batch_size + 1]
    prob.X[bad_row, :] = 1.0
    prob.X[bad_row, 3] = np.nan
    prob.X64 = prob.X.astype(np.float64)
    slots = initial_slots(opt, prob.params.size, prob.rng)
    with np.errstate(invalid="ignore"):
        expected, results = run_epochs(
            prob, opt, order, batch_size, np.full(4, 0.05), 0.01, 5, slots, (sparse,)
        )
    assert expected["n_batches"] == bad_batch
    check_epoch(prob, opt, expected, results)
    got = results[sparse]
    assert got["n_batches"] == bad_batch and got["step"] == 5 + bad_batch
    assert np.isfinite(got["params"]).all() and np.isfinite(got["slots"]).all()
    if bad_batch == 0:
        assert_array_equal(got["params"], prob.params)
        assert_array_equal(got["slots"], slots.astype(dtype))
        assert got["loss_sum"] == 0.0


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_train_epoch_stops_on_overflowing_loss(dtype):
    """Poisson output: exp overflows on a huge row with zero targets, so the loss is +inf (not NaN)."""
    opt = OPTIMIZERS["adam"]
    prob = Problem(C.POISSON, dtype, activation=C.IDENTITY, n=12, seed=3)
    order = np.arange(prob.n, dtype=np.int64)
    prob.X[9, :] = 1e30 if dtype == np.float64 else 1e15
    prob.Y[9, :] = 0.0  # y log(y / p) = 0: the row's loss is p - y = inf
    prob.params[:] = np.abs(prob.params)  # every output grows with the inputs
    prob.X64, prob.Y64, prob.params64 = (a.astype(np.float64) for a in (prob.X, prob.Y, prob.params))
    slots = initial_slots(opt, prob.params.size, prob.rng)
    with np.errstate(over="ignore", invalid="ignore"):
        rows = order[8:12]
        bad_loss, _ = ref.flat_loss_and_gradient(
            prob.X64[rows], prob.Y64[rows], prob.params64, prob.units, *prob.names
        )
        expected, results = run_epochs(prob, opt, order, 4, np.full(3, 1e-3), 0.0, 0, slots)
    assert bad_loss == np.inf
    assert expected["n_batches"] == 2
    check_epoch(prob, opt, expected, results)


# ---------------------------------------------------------------------------
# Private fused kernels
# ---------------------------------------------------------------------------
#
# The helpers are compiled without a Python wrapper (``no_cpython_wrapper``), so
# calling them from Python would crash: compiled trampolines call them instead.


@njit
def k_activate(Z, A, act, alpha, slopes, prelu):
    cpu._activate(Z, A, act, alpha, slopes, prelu)


@njit
def k_activation_backward(Z, D, act, alpha, slopes, prelu, prelu_grad):
    cpu._activation_backward(Z, D, act, alpha, slopes, prelu, prelu_grad)


@njit
def k_output_loss_delta(Z, b, Y, sw, rows, out_act, eps, D):
    return cpu._output_loss_delta(Z, b, Y, sw, rows, out_act, eps, D)


@njit
def k_sparse_dot(Xv, Xi, Xp, rows, W, out):
    cpu._sparse_dot(Xv, Xi, Xp, rows, W, out)


@njit
def k_sparse_t_dot(Xv, Xi, Xp, rows, D, out):
    cpu._sparse_t_dot(Xv, Xi, Xp, rows, D, out)



def no_slopes(dtype):
    """``(alpha, slopes, prelu)`` arguments of the activation kernels for the classic activations."""
    return 0.0, np.empty((0, 0), dtype=dtype), np.empty(0, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=act_id)
def test_activate(activation, dtype):
    rng = np.random.default_rng(4)
    Z = rng.normal(scale=2.0, size=(7, 5)).astype(dtype)
    Z[0, :2] = 0.0, -0.0  # ReLU's kink
    A = np.full_like(Z, np.nan)
    Z_before = Z.copy()
    expected = ref.HIDDEN_ACTIVATIONS[act_id(activation)](Z.astype(np.float64))
    k_activate(Z, A, activation, *no_slopes(dtype))
    assert_close(A, expected, dtype)
    assert_array_equal(Z, Z_before)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_relu_propagates_nan(dtype):
    """As ``np.maximum`` in scikit-learn: a NaN pre-activation stays NaN."""
    Z = np.array([[np.nan, -1.0, 2.0]], dtype=dtype)
    A = np.empty_like(Z)
    k_activate(Z, A, C.RELU, *no_slopes(dtype))
    assert np.isnan(A[0, 0])
    assert_array_equal(A[0, 1:], [0.0, 2.0])


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=act_id)
def test_activation_backward(activation, dtype):
    """``D <- D * f'(z)``, against scikit-learn's derivative written through ``a = f(z)``."""
    rng = np.random.default_rng(5)
    name = act_id(activation)
    Z = rng.normal(scale=2.0, size=(6, 4)).astype(dtype)
    Z[0, :2] = 0.0, -0.0  # ReLU: f'(0) = 0, as scikit-learn's ``delta[a == 0] = 0``
    D = rng.normal(size=(6, 4)).astype(dtype)
    A = ref.HIDDEN_ACTIVATIONS[name](Z.astype(np.float64))
    expected = D.astype(np.float64) * ref.DERIVATIVES[name](A)
    Z_before = Z.copy()
    k_activation_backward(Z, D, activation, *no_slopes(dtype), np.empty(0, dtype=dtype))
    assert_close(D, expected, dtype)
    assert_array_equal(Z, Z_before)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("output", OUTPUTS, ids=out_id)
def test_output_loss_delta(output, dtype, weighted):
    """Shuffled subset of rows: ``Z`` becomes ``p``, ``D = (p - y) * w``, loss summed by weight."""
    prob = Problem(output, dtype, weighted=weighted, n=11)
    rows = prob.rng.permutation(prob.n)[:8].astype(np.int64)
    k = prob.units[-1]
    Z = prob.rng.normal(size=(rows.size, k)).astype(dtype)
    b = prob.rng.normal(size=k).astype(dtype)
    D = np.full((rows.size, k), np.nan, dtype=dtype)
    name = out_id(output)
    p = ref.OUTPUT_ACTIVATIONS[name](Z.astype(np.float64) + b)
    Y, sw = prob.Y64[rows], prob.sw64[rows]
    expected_loss = ref.LOSSES[name](Y, p, sw, eps_of(dtype))

    total, sw_sum = k_output_loss_delta(Z, b, prob.Y, prob.sw, rows, output, eps_of(dtype), D)
    assert_close(Z, p, dtype)
    assert_close(D, (p - Y) * sw[:, None], dtype)
    assert_close(sw_sum, sw.sum(), dtype)
    assert_close(total / sw_sum, expected_loss, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("output", [C.BINARY_LOG_LOSS, C.MULTICLASS_LOG_LOSS], ids=out_id)
def test_output_loss_delta_soft_targets(output, dtype):
    """Targets strictly between 0 and 1 (label smoothing): both cross-entropy terms count."""
    rng = np.random.default_rng(11)
    n, k = 6, 3
    Y = rng.uniform(0.05, 0.95, size=(n, k))
    if output == C.MULTICLASS_LOG_LOSS:
        Y /= Y.sum(axis=1, keepdims=True)
    Y = Y.astype(dtype)
    sw = rng.uniform(0.5, 2.0, size=n).astype(dtype)
    Z = rng.normal(size=(n, k)).astype(dtype)
    b = rng.normal(size=k).astype(dtype)
    rows = np.arange(n, dtype=np.int64)
    D = np.full((n, k), np.nan, dtype=dtype)
    name = out_id(output)
    p = ref.OUTPUT_ACTIVATIONS[name](Z.astype(np.float64) + b)
    expected_loss = ref.LOSSES[name](Y.astype(np.float64), p, sw.astype(np.float64), eps_of(dtype))
    total, sw_sum = k_output_loss_delta(Z, b, Y, sw, rows, output, eps_of(dtype), D)
    assert_close(total / sw_sum, expected_loss, dtype)
    assert_close(D, (p - Y) * sw[:, None].astype(np.float64), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("output", [C.BINARY_LOG_LOSS, C.MULTICLASS_LOG_LOSS], ids=out_id)
def test_output_loss_delta_saturated_probabilities(output, dtype):
    """Huge logits: softmax stays finite and the log loss uses clipped probabilities."""
    k = 3
    Z = np.array([[800.0, -800.0, 0.0], [-60.0, 60.0, 5.0], [0.0, 0.0, 0.0]], dtype=dtype)
    b = np.array([0.0, 1.0, -1.0], dtype=dtype)
    Y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)
    sw = np.array([1.0, 2.0, 0.5], dtype=dtype)
    rows = np.arange(3, dtype=np.int64)
    D = np.empty((3, k), dtype=dtype)
    name = out_id(output)
    with np.errstate(over="ignore"):
        p = ref.OUTPUT_ACTIVATIONS[name](Z.astype(np.float64) + b)
    expected_loss = ref.LOSSES[name](Y.astype(np.float64), p, sw.astype(np.float64), eps_of(dtype))
    with np.errstate(over="ignore"):
        total, sw_sum = k_output_loss_delta(Z, b, Y, sw, rows, output, eps_of(dtype), D)
    assert np.isfinite(Z).all() and np.isfinite(total)
    assert_close(Z, p, dtype)
    assert_close(total / sw_sum, expected_loss, dtype)
    # Clipping bounds each term: no loss above -log(eps) per output (per row for softmax).
    assert total / sw_sum <= -np.log(eps_of(dtype)) * (k if output == C.BINARY_LOG_LOSS else 1)


def noncanonical_csr(rng, n, m, dtype):
    """A CSR matrix with unsorted column indices, a duplicate entry and empty rows."""
    X = rng.normal(size=(n, m)) * (rng.random((n, m)) < 0.4)
    X[2] = 0.0
    X = sp.csr_matrix(X)
    indices, data, indptr = [], [], [0]
    for i in range(n):
        row = X[i]
        idx, val = row.indices[::-1].tolist(), row.data[::-1].tolist()
        if i == 4 and idx:  # split one stored value into two duplicate entries
            idx.append(idx[0])
            val[0] *= 0.25
            val.append(val[0] * 3.0)
        indices += idx
        data += val
        indptr.append(len(indices))
    Xv = np.array(data, dtype=dtype)
    Xi = np.array(indices, dtype=np.int64)
    Xp = np.array(indptr, dtype=np.int64)
    dense = sp.csr_matrix((Xv.astype(np.float64), Xi, Xp), shape=(n, m)).toarray()
    return Xv, Xi, Xp, dense


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_sparse_dot(dtype):
    rng = np.random.default_rng(7)
    Xv, Xi, Xp, dense = noncanonical_csr(rng, 9, 6, dtype)
    rows = np.array([4, 0, 2, 8, 4, 3], dtype=np.int64)  # shuffled, a repeat, an empty row
    W = rng.normal(size=(6, 3)).astype(dtype)
    out = np.full((rows.size, 3), np.nan, dtype=dtype)
    k_sparse_dot(Xv, Xi, Xp, rows, W, out)
    assert_close(out, dense[rows] @ W.astype(np.float64), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_sparse_t_dot(dtype):
    rng = np.random.default_rng(8)
    Xv, Xi, Xp, dense = noncanonical_csr(rng, 9, 6, dtype)
    rows = np.array([4, 0, 2, 8, 4, 3], dtype=np.int64)
    D = rng.normal(size=(rows.size, 3)).astype(dtype)
    out = np.full((6, 3), np.nan, dtype=dtype)
    k_sparse_t_dot(Xv, Xi, Xp, rows, D, out)
    assert_close(out, dense[rows].T @ D.astype(np.float64), dtype)
