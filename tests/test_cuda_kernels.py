"""Every CUDA kernel against the readable NumPy references the CPU kernels are tested with.

The kernels of :mod:`skdeep.kernels.cuda.kernels` and ``.batch_norm`` and the matrix product of
:mod:`skdeep.kernels.cuda.matmul`, one launch each on tiny shapes, against
``reference.py``, ``reference_toolkit.py`` and ``reference_optimizers.py``
(float64 to ~1e-12 relative, float32 to ~1e-5). Dropout masks and RReLU slopes
come from the CPU's counter-based generator, so they are compared to the CPU
kernels' own (:func:`skdeep.kernels.cpu._dropout`, ``rrelu_slopes``,
``_row_keys``) exactly. Output buffers start filled with NaN, so a value a
kernel should not write, or failed to write, shows.

This file runs where ``numba.cuda`` is usable: on a GPU, or in Numba's
simulator (``NUMBA_ENABLE_CUDASIM=1 SKDEEP_CUDA_SIMULATOR=1``, set before
Numba is imported), which ``tests/test_cuda.py`` starts in a child process.
Elsewhere it skips. The simulator runs one Python thread per CUDA thread,
hence the tiny shapes.
"""

import sys
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp
import pytest
from numba import njit
from numpy.testing import assert_allclose, assert_array_equal

from skdeep import _device

if not _device.cuda_status()[0]:
    pytest.skip(
        f"numba.cuda is not usable here ({_device.cuda_status()[1]}); tests/test_cuda.py runs this "
        "file under the simulator",
        allow_module_level=True,
    )

import reference as ref  # noqa: E402
import reference_optimizers as refopt  # noqa: E402
import reference_toolkit as reft  # noqa: E402

from skdeep import optimizers as O  # noqa: E402
from skdeep.kernels import codes as C  # noqa: E402
from skdeep.kernels import cpu  # noqa: E402
from skdeep.kernels import cuda_backend as backend  # noqa: E402
from skdeep.kernels.cpu.activations import rrelu_slopes  # noqa: E402
from skdeep.kernels.cuda import batch_norm as BN  # noqa: E402
from skdeep.kernels.cuda import diagnostics as Dg  # noqa: E402
from skdeep.kernels.cuda import kernels as K  # noqa: E402
from skdeep.kernels.cuda import sparse as Sp  # noqa: E402
from skdeep.kernels.cuda import reductions as R  # noqa: E402
from skdeep.kernels.cuda._shim import SIMULATOR, THREADS, cuda  # noqa: E402

import cuda_launches  # noqa: E402

#: ``(kernel, argument types)`` of every launch in this module (the simulator records them).
LAUNCHES = set()
if SIMULATOR:
    cuda_launches.record(LAUNCHES)
    cuda_launches.simulate()
from skdeep.kernels.cuda.matmul import Gemm  # noqa: E402

# The simulator runs the generator's wrapping uint64 arithmetic on NumPy scalars, which warn.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in scalar:RuntimeWarning")

DTYPES = [np.float64, np.float32]
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
NAMES = {
    C.IDENTITY: "identity", C.LOGISTIC: "logistic", C.TANH: "tanh", C.RELU: "relu",
    C.LEAKY_RELU: "leaky_relu", C.RRELU: "rrelu", C.PRELU: "prelu", C.ELU: "elu", C.SELU: "selu",
    C.GELU: "gelu", C.SWISH: "swish",
}
ACT_ALPHA = 0.7  # leaky slope and ELU alpha (not ELU's default 1, so a missing factor shows)
RRELU_BOUNDS = (1 / 8, 1 / 3)
MODES = {"training": C.TRAINING, "inference": C.INFERENCE, "mc_dropout": C.MC_DROPOUT}
DROPOUT = {"no_dropout": (0.0, False), "dropout": (0.4, False), "alpha_dropout": (0.3, True)}


def dtype_id(dtype):
    return np.dtype(dtype).name


def assert_close(actual, expected, dtype, err_msg=""):
    """Equal to ``RTOL[dtype]``, relative to each value and to the array's scale (as ``test_kernels.py``)."""
    rtol = RTOL[np.dtype(dtype)]
    expected = np.asarray(expected, dtype=np.float64)
    scale = np.max(np.abs(expected)) if expected.size else 1.0
    assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=rtol * (scale or 1.0),
                    err_msg=err_msg)


def nans(size, dtype):
    return np.full(size, np.nan, dtype=dtype)


def run(kernel, n_threads, *args):
    """Launch ``kernel`` on enough blocks of ``THREADS`` for ``n_threads``; host arrays go to the device.

    Returns the arguments with every array copied back to the host.
    """
    moved = [cuda.to_device(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a for a in args]
    kernel[K.blocks(n_threads), THREADS](*moved)
    return [m.copy_to_host() if hasattr(m, "copy_to_host") else m for m in moved]


def constants(dtype, alpha=0.0, l1=0.0, clipvalue=0.0, max_norm=0.0):
    """The kernels' constants vector, built by the backend from a network's float options."""
    fopt = np.zeros(C.N_FOPTIONS)
    fopt[C.FO_ACT_ALPHA] = ACT_ALPHA
    fopt[C.FO_RRELU_LOWER], fopt[C.FO_RRELU_UPPER] = RRELU_BOUNDS
    fopt[C.FO_CLIPVALUE] = clipvalue
    fopt[C.FO_MAX_NORM] = max_norm
    return backend._constants(SimpleNamespace(fopt=fopt, dtype=np.dtype(dtype)), alpha, l1)


def dropout_table(rates, dtype):
    return backend._dropout_table(SimpleNamespace(dropout=np.asarray(rates, dtype=float), dtype=np.dtype(dtype)))


def random_keys(n, seed=0):
    """Per-row keys of the counter-based generator (any uint64 values)."""
    return np.random.default_rng(seed).integers(0, 2**63, size=n, dtype=np.int64).astype(np.uint64)


def state(stopped=False):
    s = np.zeros(K.N_STATE)
    s[K.S_STOPPED] = float(stopped)
    return s


# -- the CPU's generator, through compiled shims (its helpers have no Python wrapper) --


@njit
def _cpu_dropout(A, M, rate, alpha_dropout, keys, salt):
    cpu._dropout(A, M, rate, alpha_dropout, keys, salt)


@njit
def _cpu_rrelu_slopes(slopes, keys, salt, lower, upper, training):
    rrelu_slopes(slopes, keys, salt, lower, upper, training)


@njit
def _cpu_row_keys(Xd, Xv, Xi, Xp, sparse, rows, seed, keys):
    cpu._row_keys(Xd, Xv, Xi, Xp, sparse, rows, seed, keys)


def cpu_mask(keys, k, rate, alpha_dropout, salt, dtype):
    """The CPU's dropout mask ``dA_out / dA_in`` of layer ``salt`` for rows with ``keys``."""
    M = np.empty((len(keys), k), dtype=dtype)
    _cpu_dropout(np.ones_like(M), M, rate, np.int64(alpha_dropout), keys, np.int64(salt))
    return M


def dropped(h, M, keys, rate, alpha_dropout, salt, dtype):
    """``h`` after the CPU's dropout of layer ``salt``, once the kernel's mask ``M`` is checked against the CPU's."""
    n, k = h.shape
    if rate == 0:
        assert np.isnan(M).all(), "mask written without dropout"
        return h
    mask = cpu_mask(keys, k, rate, alpha_dropout, salt, dtype)
    assert_array_equal(M.reshape(n, k), mask)
    keep = mask != 0
    return reft.alpha_dropout(h, keep, rate) if alpha_dropout else reft.inverted_dropout(h, keep, rate)


def cpu_slopes(keys, k, salt, dtype):
    slopes = np.empty((len(keys), k), dtype=dtype)
    _cpu_rrelu_slopes(slopes, keys, np.int64(salt), *RRELU_BOUNDS, True)
    return slopes


# -- data -------------------------------------------------------------------------------


@pytest.mark.parametrize("with_keys", [True, False], ids=["keys", "no_keys"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_gather(dtype, with_keys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 4)).astype(dtype)
    X[rng.random(X.shape) < 0.3] = 0.0
    order = rng.permutation(6).astype(np.int64)
    start, n, seed = 2, 3, 12345
    hashes = backend.row_hashes(X)
    keys = np.full(n, 7, dtype=np.uint64)
    _, _, _, _, Xb, _, _, keys, _ = run(
        K.gather, n * 4, X, order, start, n, nans(n * 4, dtype), hashes, seed, keys, with_keys
    )
    rows = order[start : start + n]
    assert_array_equal(Xb, X[rows].ravel())
    if with_keys:
        expected = np.zeros(n, dtype=np.uint64)
        no_index = np.empty(0, dtype=np.int64)
        _cpu_row_keys(X, X[0, :0], no_index, no_index, False, rows, np.int64(seed), expected)
        assert_array_equal(keys, expected)
    else:
        assert_array_equal(keys, np.full(n, 7, dtype=np.uint64))


@pytest.mark.parametrize("with_keys", [True, False], ids=["keys", "no_keys"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_gather_csr(dtype, with_keys):
    rng = np.random.default_rng(1)
    n_rows, d = 6, 40  # wider than the simulator's block, so threads loop over columns
    X = rng.normal(size=(n_rows, d)).astype(dtype)
    X[rng.random(X.shape) < 0.8] = 0.0
    X[3] = 0.0  # an empty row
    matrix = sp.csr_matrix(X)
    # a duplicate entry: CSR semantics add it to the stored one
    indptr = matrix.indptr.astype(np.int64)
    row = 1
    at = indptr[row]
    values = np.insert(matrix.data, at, dtype(0.5))
    indices = np.insert(matrix.indices.astype(np.int64), at, 7)
    indptr[row + 1 :] += 1
    X[row, 7] += dtype(0.5)
    order = np.array([4, 3, 1, 0, 5, 2], dtype=np.int64)
    start, n, seed = 1, 3, 999
    hashes = backend.row_hashes(X)
    keys = np.full(n, 7, dtype=np.uint64)
    Xb, _, _, keys = run(
        Sp.gather_csr, n * THREADS, values, indices, indptr, order, start, n, d, nans(n * d + 3, dtype), hashes,
        seed, keys, with_keys, constants(dtype),
    )[7:11]
    rows = order[start : start + n]
    assert_close(Xb[: n * d].reshape(n, d), X[rows].astype(np.float64), dtype)
    assert np.isnan(Xb[n * d :]).all()
    want = backend._mix(hashes[rows] ^ np.uint64(seed)) if with_keys else np.full(n, 7, dtype=np.uint64)
    assert_array_equal(keys, want)


# -- forward ----------------------------------------------------------------------------


#: Every activation in every mode, without and with dropout; alpha dropout (the
#: same arithmetic whatever the activation) with SELU, the activation it is for.
FORWARD_CASES = [
    (act, mode, dropout) for act in backend.SUPPORTED_ACTIVATIONS for mode in MODES for dropout in DROPOUT
    if dropout != "alpha_dropout" or act == C.SELU
]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize(("activation", "mode", "dropout"), FORWARD_CASES,
                         ids=[f"{NAMES[a]}-{m}-{d}" for a, m, d in FORWARD_CASES])
def test_hidden_forward(activation, mode, dropout, dtype):
    rate, alpha_dropout = DROPOUT[dropout]
    n, k, layer, n_layers, b_off, p_off = 3, 4, 1, 3, 5, 11
    rng = np.random.default_rng(activation)
    params = rng.uniform(-0.8, 0.8, 16).astype(dtype)
    params[p_off : p_off + k] = rng.uniform(0.05, 0.5, k)  # PReLU slopes
    Z = rng.normal(0, 1.5, (n, k)).astype(dtype)
    Z[0, 0] = -params[b_off]  # z = 0 exactly: the kink
    keys = random_keys(n, seed=activation)
    table = dropout_table([0.1, 0.0, rate, 0.0], dtype)  # hidden layer 1 has dropout row 2
    Zout, A, M, S = run(
        K.hidden_forward, n * k, Z.ravel(), nans(n * k, dtype), nans(n * k, dtype), nans(n * k, dtype),
        params, b_off, p_off, keys, constants(dtype), table, n, k, activation, MODES[mode], rate,
        alpha_dropout, layer, n_layers, *RRELU_BOUNDS,
    )[:4]
    z = Z.astype(np.float64) + params[b_off : b_off + k].astype(np.float64)
    assert_close(Zout.reshape(n, k), z, dtype)
    kwargs = dict(alpha=ACT_ALPHA, prelu=params[p_off : p_off + k])
    if activation == C.RRELU and MODES[mode] == C.TRAINING:
        slopes = cpu_slopes(keys, k, 2 * n_layers + layer, dtype)
        assert_array_equal(S.reshape(n, k), slopes)
        kwargs["slopes"] = slopes
    else:
        assert np.isnan(S).all(), "slopes written outside RReLU training"
        kwargs["slopes"] = np.full((n, k), np.mean(RRELU_BOUNDS))
    h = reft.activate(NAMES[activation], z, **kwargs)
    training_rate = rate if MODES[mode] != C.INFERENCE else 0
    h = dropped(h, M, keys, training_rate, alpha_dropout, layer + 1, dtype)
    assert_close(A.reshape(n, k), h, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("alpha_dropout", [False, True], ids=["dropout", "alpha_dropout"])
def test_input_dropout(alpha_dropout, dtype):
    n, d, rate = 3, 5, 0.35
    rng = np.random.default_rng(1)
    Xb = rng.normal(size=(n, d)).astype(dtype)
    keys = random_keys(n, seed=1)
    _, X_in, Mx = run(
        K.input_dropout, n * d, Xb.ravel(), nans(n * d, dtype), nans(n * d, dtype), keys, constants(dtype),
        dropout_table([rate, 0.2], dtype), n, d, rate, alpha_dropout,
    )[:3]
    mask = cpu_mask(keys, d, rate, alpha_dropout, 0, dtype)
    assert_array_equal(Mx.reshape(n, d), mask)
    keep = mask != 0
    assert keep.any() and not keep.all()
    x = Xb.astype(np.float64)
    expected = reft.alpha_dropout(x, keep, rate) if alpha_dropout else reft.inverted_dropout(x, keep, rate)
    assert_close(X_in.reshape(n, d), expected, dtype)


#: (output code, hidden activation): the four losses' outputs, and the hidden
#: activation as output for every activation the CPU allows there (not PReLU).
OUTPUT_CASES = [(code, C.TANH) for code in ref.OUTPUT_NAMES] + [
    (C.HIDDEN_ACTIVATION, act) for act in backend.SUPPORTED_ACTIVATIONS if act != C.PRELU
]


def output_id(case):
    code, act = case
    return ref.OUTPUT_NAMES.get(code, f"hidden_{NAMES[act]}")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", OUTPUT_CASES, ids=output_id)
def test_output_activate(case, dtype):
    code, act = case
    n, k, b_off = 3, 3, 2
    rng = np.random.default_rng(2)
    Z = rng.normal(0, 1.5, (n, k)).astype(dtype)
    params = rng.uniform(-0.5, 0.5, 7).astype(dtype)
    Zout = run(K.output_activate, n, Z.ravel(), params, b_off, n, k, code, act, constants(dtype))[0]
    z = Z.astype(np.float64) + params[b_off : b_off + k].astype(np.float64)
    if code == C.HIDDEN_ACTIVATION:
        expected = reft.activate(NAMES[act], z, alpha=ACT_ALPHA, slopes=np.full(z.shape, np.mean(RRELU_BOUNDS)))
    else:
        expected = reft.OUTPUTS[ref.OUTPUT_NAMES[code]](z)
    assert_close(Zout.reshape(n, k), expected, dtype)


def targets(code, shape, rng):
    """Targets that suit the loss, as ``test_kernels.Problem``'s."""
    if code == C.SQUARED_ERROR:
        return rng.normal(size=shape)
    if code == C.POISSON:
        Y = rng.poisson(1.5, size=shape).astype(float)
        Y[0] = 0.0
        return Y
    if code == C.BINARY_LOG_LOSS:
        return (rng.random(shape) < 0.5).astype(float)
    return np.eye(shape[1])[rng.integers(shape[1], size=shape[0])]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("code", list(ref.OUTPUT_NAMES), ids=ref.OUTPUT_NAMES.get)
def test_output_loss_delta(code, dtype):
    """Every loss (``HIDDEN_ACTIVATION`` is an output for prediction only, it has no loss)."""
    n, k, b_off, start = 3, 3, 1, 2
    rng = np.random.default_rng(code)
    Y = targets(code, (6, k), rng).astype(dtype)
    sw = rng.uniform(0.2, 3.0, 6).astype(dtype)
    order = rng.permutation(6).astype(np.int64)
    rows = order[start : start + n]
    sw[rows[1]] = 0.0
    params = rng.uniform(-0.5, 0.5, 5).astype(dtype)
    Z = rng.normal(0, 1.0, (n, k)).astype(dtype)
    if code in (C.BINARY_LOG_LOSS, C.MULTICLASS_LOG_LOSS):
        Z[0] = [40.0, -40.0, 0.0]  # saturated probabilities: the log loss clips them
        Y[rows[0]] = [0.0, 1.0, 0.0]
    eps = float(np.finfo(dtype).eps)
    out = run(
        K.output_loss_delta, n, Z.ravel(), params, b_off, Y, sw, order, start, n, k, code, eps,
        nans(n * k, dtype), nans(n, np.float64), nans(n, dtype), constants(dtype),
    )
    P, D, row_loss, row_w = out[0], out[11], out[12], out[13]
    name = ref.OUTPUT_NAMES[code]
    p = reft.OUTPUTS[name](Z.astype(np.float64) + params[b_off : b_off + k].astype(np.float64))
    y, w = Y[rows].astype(np.float64), sw[rows].astype(np.float64)
    assert_close(P.reshape(n, k), p, dtype)
    assert_close(D.reshape(n, k), (p - y) * w[:, None], dtype)
    losses = [w[r] * reft.loss(name, y[r : r + 1], p[r : r + 1], np.ones(1), eps) for r in range(n)]
    assert np.isfinite(losses).all()
    assert_close(row_loss, losses, dtype)
    assert_array_equal(row_w, sw[rows])


PENALTIES = {"none": (0.0, 0.0), "l2": (0.3, 0.0), "l1": (0.0, 0.2), "l2_l1": (0.1, 0.05)}


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("penalty", PENALTIES)
def test_loss_reduce(penalty, dtype):
    alpha, l1 = PENALTIES[penalty]
    n, n_coef = 40, 150  # more rows than threads in a block, more weights than threads in all penalty blocks
    rng = np.random.default_rng(3)
    row_w = rng.uniform(0.2, 2.0, n).astype(dtype)
    row_loss = row_w * rng.uniform(0.0, 3.0, n)
    params = rng.uniform(-1, 1, n_coef + 6).astype(dtype)
    partial = run(R.penalty_partials, R.PENALTY_BLOCKS * THREADS, params, n_coef, nans(2 * R.PENALTY_BLOCKS, np.float64))[2]
    before = state()
    before[K.S_LOSS_SUM], before[K.S_N_BATCHES] = 2.0, 3.0
    s, scale = run(
        K.loss_reduce, 1, row_loss, row_w, n, partial, R.PENALTY_BLOCKS, alpha, l1, before, nans(2, dtype)
    )[7:]
    W = float(np.sum(row_w.astype(np.float64)))
    coefs = [params[:n_coef].astype(np.float64)]
    loss = row_loss.sum() / W + ref.l2_penalty(coefs, alpha, W) + ref.l1_penalty(coefs, l1, W)
    # Everything is summed in float64, whatever the dtype: float64's tolerance.
    assert_close(s, [2.0 + loss * n, 4.0, 0.0, loss, W], np.float64)
    assert_close(scale, [1.0 / W, l1 / W], dtype)


@pytest.mark.parametrize("case", ["non_finite", "already_stopped"])
def test_loss_reduce_stops(case):
    n = 3
    row_loss = np.array([1.0, np.inf, 0.5]) if case == "non_finite" else np.ones(n)
    before = state(stopped=case == "already_stopped")
    s, scale = run(K.loss_reduce, 1, row_loss, np.ones(n), n, np.ones(2), 1, 0.1, 0.0, before,
                   nans(2, np.float64))[7:]
    if case == "non_finite":
        assert_array_equal(s, [0.0, 0.0, 1.0, np.inf, 0.0])
    else:
        assert_array_equal(s, before)
    assert np.isnan(scale).all()


# -- backward -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_column_sums(dtype):
    n, k, o_off = 5, 3, 2
    chunks = R.n_chunks(n)
    assert chunks > 1  # the simulator's chunks are short, so both passes are tested
    D = cuda.to_device(np.random.default_rng(4).normal(size=(n, k)).astype(dtype).ravel())
    partial, out = cuda.to_device(nans(chunks * k, dtype)), cuda.to_device(nans(8, dtype))
    R.column_partials[(K.blocks(k), chunks), THREADS](D, n, k, partial, cuda.to_device(constants(dtype)))
    R.column_totals[K.blocks(k), THREADS](partial, chunks, k, out, o_off, cuda.to_device(constants(dtype)))
    out = out.copy_to_host()
    assert_close(out[o_off : o_off + k], D.copy_to_host().reshape(n, k).astype(np.float64).sum(axis=0), dtype)
    assert np.isnan(np.r_[out[:o_off], out[o_off + k :]]).all()


def masks_and_slopes(n, k, rng, dtype):
    M = np.where(rng.random((n, k)) < 0.3, 0.0, 1.0 / 0.7).astype(dtype)
    S = rng.uniform(*RRELU_BOUNDS, (n, k)).astype(dtype)
    return M, S


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("activation", [a for a in backend.SUPPORTED_ACTIVATIONS if a != C.PRELU], ids=NAMES.get)
def test_activation_backward(activation, masked, dtype):
    n, k = 3, 4
    rng = np.random.default_rng(activation)
    D = rng.normal(size=(n, k)).astype(dtype)
    Z = rng.normal(0, 1.5, (n, k)).astype(dtype)
    Z[0, 0] = 0.0  # the kinks' one-sided choice
    M, S = masks_and_slopes(n, k, rng, dtype)
    out = run(K.activation_backward, n * k, D.ravel(), Z.ravel(), M.ravel(), S.ravel(), n, k, activation, masked,
              constants(dtype))[0]
    upstream = D.astype(np.float64) * (M if masked else 1.0)
    derivative = reft.derivative(NAMES[activation], Z, alpha=ACT_ALPHA, slopes=S)
    assert_close(out.reshape(n, k), upstream * derivative, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_prelu_backward(masked, dtype):
    n, k, p_off = 3, 4, 3
    rng = np.random.default_rng(6)
    D = rng.normal(size=(n, k)).astype(dtype)
    Z = rng.normal(0, 1.5, (n, k)).astype(dtype)
    Z[0, 0] = 0.0
    M, _ = masks_and_slopes(n, k, rng, dtype)
    params = rng.uniform(0.05, 0.5, 9).astype(dtype)
    out, _, _, _, _, grad = run(K.prelu_backward, k, D.ravel(), Z.ravel(), M.ravel(), params, p_off,
                                nans(9, dtype), n, k, masked, constants(dtype))[:6]
    upstream = D.astype(np.float64) * (M if masked else 1.0)
    slopes = params[p_off : p_off + k]
    assert_close(out.reshape(n, k), upstream * reft.derivative("prelu", Z, prelu=slopes), dtype)
    assert_close(grad[p_off : p_off + k], reft.prelu_slope_gradient(Z, upstream), dtype)
    assert np.isnan(np.r_[grad[:p_off], grad[p_off + k :]]).all()


# -- gradients, clipping, updates ----------------------------------------------------------

#: A 3 -> 4 -> 2 PReLU network: 20 weights, 6 biases, 4 slopes. Trainable
#: regions ``(w_first, b_first, x_first)`` by first trainable layer.
UNITS = (3, 4, 2)
N_COEF, BIAS_END, N_PARAMS = 20, 26, 30
REGIONS = {0: (0, 20, 26), 1: (12, 24, 30)}


def trainable(first):
    """The reference's trainable entries, and the PReLU slopes (hidden layer 0's) unless frozen."""
    return np.r_[ref.trainable(UNITS, first), np.full(N_PARAMS - BIAS_END, first == 0)]


def is_weight():
    return np.arange(N_PARAMS) < N_COEF


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("clip", [False, True], ids=["no_clip", "clipvalue"])
@pytest.mark.parametrize("l1_on", [True, False], ids=["l1", "proximal_l1"])
@pytest.mark.parametrize("first", REGIONS, ids=["all", "frozen"])
def test_finalize_gradient(first, l1_on, clip, dtype):
    alpha, l1, W, clipvalue = 0.1, 0.05, 2.5, 0.3
    rng = np.random.default_rng(7)
    params = rng.uniform(-1, 1, N_PARAMS).astype(dtype)
    params[3] = 0.0  # sign(0) = 0
    raw = rng.normal(0, 1.5, N_PARAMS).astype(dtype)
    scale = np.array([1.0 / W, l1 / W], dtype=dtype)
    grad = run(K.finalize_gradient, N_PARAMS, params, raw, N_PARAMS, N_COEF, BIAS_END, *REGIONS[first], l1_on,
               clip, scale, state(), constants(dtype, alpha, l1, clipvalue=clipvalue))[1]
    weight = is_weight()
    expected = np.where(
        weight,
        refopt.penalized_gradient(raw, params, alpha * weight, (l1 if l1_on else 0.0) * weight, W),
        raw.astype(np.float64) / W,
    )
    expected = np.where(trainable(first), expected, 0.0)
    if clip:
        (expected,) = reft.clip_gradients([expected], clipvalue=clipvalue)
        assert np.isclose(np.abs(expected), clipvalue).any(), "nothing was clipped"
    assert_close(grad, expected, dtype)


def test_finalize_gradient_after_a_stop_changes_nothing():
    raw = np.random.default_rng(8).normal(size=N_PARAMS)
    grad = run(K.finalize_gradient, N_PARAMS, np.ones(N_PARAMS), raw, N_PARAMS, N_COEF, BIAS_END, *REGIONS[0],
               True, True, np.array([0.5, 0.0]), state(stopped=True), constants(np.float64, clipvalue=0.1))[1]
    assert_array_equal(grad, raw)


#: Gradient tensors for clipping: longer than the simulator's block, below the clip, all zero.
TENSOR_SIZES = (37, 4, 8, 3)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("scale_blocks", [1, 2])
@pytest.mark.parametrize("kind", ["clipnorm", "global_clipnorm"])
def test_segment_factors_and_scale(kind, scale_blocks, dtype):
    clip = 1.5
    rng = np.random.default_rng(9)
    tensors = [rng.normal(0, 1.0, size) for size in TENSOR_SIZES]
    tensors[1] *= 0.1  # norm below the clip: factor 1
    tensors[3][:] = 0.0  # norm 0: factor 1
    grad = np.concatenate(tensors).astype(dtype)
    stops = np.cumsum(TENSOR_SIZES)
    if kind == "clipnorm":
        bounds = np.ravel(np.c_[stops - TENSOR_SIZES, stops]).astype(np.int64)
    else:
        bounds = np.array([0, stops[-1]], dtype=np.int64)
    n_tensors = len(bounds) // 2
    device = [cuda.to_device(a) for a in (grad, bounds, nans(n_tensors, dtype), state(), constants(dtype))]
    g, b, factors, s, k = device
    K.segment_factors[n_tensors, THREADS](g, b, clip, factors, s)
    K.segment_scale[(scale_blocks, n_tensors), THREADS](g, b, factors, k)
    tensors = [t.astype(dtype).astype(np.float64) for t in tensors]
    expected = reft.clip_gradients(tensors, **{kind: clip})
    assert_close(g.copy_to_host(), np.concatenate(expected), dtype)
    if kind == "clipnorm":
        assert_array_equal(factors.copy_to_host()[[1, 3]], [1.0, 1.0])


def test_segment_factors_after_a_stop_are_one():
    grad = np.full(40, 3.0)
    bounds = np.array([0, 30, 30, 40], dtype=np.int64)
    factors = cuda.to_device(nans(2, np.float64))
    K.segment_factors[2, THREADS](cuda.to_device(grad), cuda.to_device(bounds), 0.5, factors,
                                  cuda.to_device(state(stopped=True)))
    assert_array_equal(factors.copy_to_host(), [1.0, 1.0])


#: Every update rule, with the branches of its kernel (momentum, Nesterov,
#: centering, FTRL's square-root and general powers).
OPTIMIZERS = {
    "sgd": O.SGD(),
    "sgd_momentum": O.SGD(momentum=0.9),
    "sgd_nesterov": O.SGD(momentum=0.8, nesterov=True),
    "adam": O.Adam(),
    "adamw": O.AdamW(weight_decay=0.5, beta_1=0.8),
    "adagrad": O.Adagrad(initial_accumulator_value=0.5, epsilon=1e-3),
    "rmsprop": O.RMSprop(),
    "rmsprop_centered_momentum": O.RMSprop(rho=0.95, momentum=0.5, epsilon=1e-5, centered=True),
    "nadam": O.Nadam(beta_1=0.85, beta_2=0.98, epsilon=1e-5),
    "adamax": O.Adamax(beta_1=0.7, beta_2=0.9, epsilon=1e-3),
    "ftrl": O.Ftrl(l1_regularization_strength=0.02, l2_regularization_strength=0.1,
                   l2_shrinkage_regularization_strength=0.05, beta=0.2),
    "ftrl_power": O.Ftrl(learning_rate_power=-0.3, initial_accumulator_value=0.4),
}
REFERENCE_NAME = {
    O.SGD: "sgd", O.Adagrad: "adagrad", O.RMSprop: "rmsprop", O.Adam: "adam", O.Nadam: "nadam",
    O.Adamax: "adamax", O.AdamW: "adamw", O.Ftrl: "ftrl",
}


def reference_step(optimizer, reference_state, weights, raw, lr, mu, alpha, l1, W, weight, dtype):
    """One ``reference_optimizers`` step as the estimator configures the rule (``test_optimizers_schedules.py``).

    The penalties act on the weights only; FTRL takes ``l1`` proximally, scaled like ``alpha``.
    """
    name = REFERENCE_NAME[type(optimizer)]
    kwargs = optimizer.get_params()
    kwargs.pop("initial_accumulator_value", None)
    if name == "ftrl":
        g = refopt.penalized_gradient(raw, weights, alpha * weight, 0.0, W)
        kwargs["l1_regularization_strength"] = kwargs["l1_regularization_strength"] + np.where(weight, l1 / W, 0.0)
    else:
        g = refopt.penalized_gradient(raw, weights, alpha * weight, l1 * weight, W)
        if name in refopt.MOMENTUM_ARGUMENT:
            kwargs[refopt.MOMENTUM_ARGUMENT[name]] = mu
    store = None if np.dtype(dtype) == np.float64 else dtype
    return refopt.STEPS[name](weights, g, reference_state, lr, store_dtype=store, **kwargs)


def test_cases_cover_every_output_and_update_rule():
    """The parametrizations name every output code the backend takes and every update rule the CPU has."""
    assert {code for code, _ in OUTPUT_CASES} == set(backend.SUPPORTED_OUTPUTS)
    assert {o.code for o in OPTIMIZERS.values()} == {code for code, _ in cpu.OPTIMIZERS} - {C.NO_UPDATE}


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("final", [False, True], ids=["raw", "finalized"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_update(name, final, dtype):
    """Two epochs of two batches, each against the reference step.

    Per epoch one coefficient table, from the optimizer's step so far, and Nadam's
    running product carried over, as ``CUDABackend.train_epoch`` does.
    """
    optimizer = OPTIMIZERS[name]
    alpha, l1, W, epochs, first = 0.1, 0.05, 2.5, (2, 2), 1
    rng = np.random.default_rng(10)
    params = rng.uniform(-1, 1, N_PARAMS).astype(dtype)
    params[14] = 0.0  # sign(0) = 0
    opt_state = O.OptimizerState(optimizer, N_PARAMS, dtype)
    slots0 = opt_state.slots.copy()
    weight, frozen = is_weight(), ~trainable(first)
    reference_state = refopt.initial_state(REFERENCE_NAME[type(optimizer)], N_PARAMS,
                                           getattr(optimizer, "initial_accumulator_value", 0.1))
    p, s, scale, st, k = (cuda.to_device(a) for a in (params, opt_state.slots, np.array([1 / W, l1 / W], dtype),
                                                      state(), constants(dtype, alpha, l1)))
    expected = params.astype(np.float64)
    step = 0
    for n_batches in epochs:
        lrs = rng.uniform(0.005, 0.05, n_batches)
        mus = np.clip(optimizer._momentum() * rng.uniform(0.9, 1.05, n_batches), 0.0, 0.99)
        table, products = backend.coefficients(optimizer.code, opt_state.hyperparameters, lrs, mus, step, dtype)
        coef = cuda.to_device(table.ravel())
        for b in range(n_batches):
            raw = rng.normal(0, 2, N_PARAMS).astype(dtype)
            grad = raw
            if final:  # finalize_gradient's output (tested above)
                l1_grad = 0.0 if optimizer.code == C.FTRL else l1
                grad = refopt.penalized_gradient(raw, p.copy_to_host(), alpha * weight, l1_grad * weight, W)
                grad = np.where(weight, grad, raw / W).astype(dtype)
            K.update[K.blocks(N_PARAMS), THREADS](
                p, cuda.to_device(grad), s, N_PARAMS, N_COEF, BIAS_END, *REGIONS[first], optimizer.code, coef, b,
                final, scale, st, k,
            )
            new = reference_step(optimizer, reference_state, expected, raw, lrs[b], mus[b], alpha, l1, W, weight,
                                 dtype)
            expected = np.where(frozen, expected, new)
            assert_close(p.copy_to_host(), expected, dtype, err_msg=f"step {step + b + 1}")
        step += n_batches
        opt_state.hyperparameters[C.HP_PRODUCT] = products[-1]
    assert not np.array_equal(p.copy_to_host()[~frozen], params[~frozen]), "the updates changed nothing"
    assert_array_equal(p.copy_to_host()[frozen], params[frozen])
    assert_array_equal(s.copy_to_host()[:, frozen], slots0[:, frozen])
    if optimizer.code == C.NADAM:
        assert_allclose(products[-1], reference_state["u_product"], rtol=1e-14)


def test_update_after_a_stop_changes_nothing():
    optimizer = O.Adam()
    params = np.random.default_rng(11).uniform(-1, 1, N_PARAMS)
    slots = O.OptimizerState(optimizer, N_PARAMS, np.float64)
    table, _ = backend.coefficients(optimizer.code, slots.hyperparameters, [0.01], [0.9], 0, np.float64)
    after, _, after_slots = run(
        K.update, N_PARAMS, params, np.ones(N_PARAMS), slots.slots, N_PARAMS, N_COEF, BIAS_END, *REGIONS[0],
        optimizer.code, table.ravel(), 0, False, np.array([0.5, 0.0]), state(stopped=True), constants(np.float64),
    )[:3]
    assert_array_equal(after, params)
    assert_array_equal(after_slots, slots.slots)


@pytest.mark.parametrize("stopped", [False, True], ids=["running", "stopped"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_max_norm(dtype, stopped):
    fan_in, fan_out, w_off, r = 3, 4, 5, 1.0
    rng = np.random.default_rng(12)
    params = rng.uniform(-1, 1, 20).astype(dtype)
    params[w_off : w_off + fan_in * fan_out] *= np.array([0.3, 1.5, 0.5, 2.0])[None, :].repeat(fan_in, 0).ravel()
    out = run(K.max_norm, fan_out, params, w_off, fan_in, fan_out, state(stopped), constants(dtype, max_norm=r))[0]
    W = params[w_off : w_off + fan_in * fan_out].reshape(fan_in, fan_out)
    outside = np.r_[:w_off, w_off + fan_in * fan_out : 20]
    assert_array_equal(out[outside], params[outside])
    if stopped:
        assert_array_equal(out, params)
        return
    norms = np.linalg.norm(W.astype(np.float64), axis=0)
    assert (norms > r).any() and (norms < r).any()
    assert_close(out[w_off : w_off + fan_in * fan_out].reshape(fan_in, fan_out), reft.max_norm(W, r), dtype)


# -- batch normalization ----------------------------------------------------------------------

BN_MOMENTUM, BN_EPSILON = 0.75, 1e-3


def bn_constants(dtype):
    """:func:`constants` with batch norm's momentum and epsilon."""
    fopt = np.zeros(C.N_FOPTIONS)
    fopt[C.FO_ACT_ALPHA] = ACT_ALPHA
    fopt[C.FO_RRELU_LOWER], fopt[C.FO_RRELU_UPPER] = RRELU_BOUNDS
    fopt[C.FO_BN_MOMENTUM], fopt[C.FO_BN_EPSILON] = BN_MOMENTUM, BN_EPSILON
    return backend._constants(SimpleNamespace(fopt=fopt, dtype=np.dtype(dtype)), 0.0, 0.0)


def bn_batch(dtype, n=5, k=3, start=2):
    """A batch ``Y`` of rows ``order[start:start + n]`` with their sample weights ``sw`` (indexed by row)."""
    rng = np.random.default_rng(k)
    order = rng.permutation(n + start + 1).astype(np.int64)
    sw = rng.uniform(0.5, 2.0, n + start + 1).astype(dtype)
    Y = rng.normal(0.3, 1.7, (n, k)).astype(dtype)
    return Y, sw, order, start, sw[order[start : start + n]]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", ["training", "stopped", "inference"])
def test_batch_norm_statistics(case, dtype):
    n, k, s_off = 5, 3, 2
    Y, sw, order, start, weights = bn_batch(dtype, n, k)
    rng = np.random.default_rng(5)
    stats = np.r_[rng.normal(size=s_off), rng.normal(size=k), rng.uniform(0.5, 2.0, k), 0.0].astype(dtype)
    mean, var = stats[s_off : s_off + k].copy(), stats[s_off + k : s_off + 2 * k].copy()
    training = case != "inference"
    out = run(
        BN.batch_norm_statistics, k, Y.ravel(), n, k, sw, order, start, stats, s_off,
        nans(s_off + 2 * k, dtype), nans(k, dtype), training, state(case == "stopped"), bn_constants(dtype),
    )
    out_stats, istd, center = out[6], out[8], out[9]
    assert np.isnan(np.r_[istd[:s_off], istd[s_off + k :]]).all()
    if training:
        _, _, want_istd, new_mean, new_var = reft.batch_norm_train(
            Y, 1.0, 0.0, mean, var, BN_MOMENTUM, BN_EPSILON, weights
        )
        assert_close(center, np.average(Y.astype(np.float64), axis=0, weights=weights), dtype)
        if case == "stopped":
            assert_array_equal(out_stats, stats)
        else:
            assert_close(out_stats[s_off : s_off + k], new_mean, dtype)
            assert_close(out_stats[s_off + k : s_off + 2 * k], new_var, dtype)
    else:
        want_istd = 1.0 / np.sqrt(var.astype(np.float64) + BN_EPSILON)
        assert_array_equal(center, mean)
        assert_array_equal(out_stats, stats)
    assert_close(istd[s_off : s_off + k], want_istd, dtype)


#: (activation, mode, dropout) of batch_norm_forward: identity for batch norm after the activation or on the input.
BN_FORWARD_CASES = [
    (C.IDENTITY, "training", "dropout"),
    (C.TANH, "inference", "dropout"),
    (C.RRELU, "training", "alpha_dropout"),
    (C.PRELU, "mc_dropout", "dropout"),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize(("activation", "mode", "dropout"), BN_FORWARD_CASES,
                         ids=[f"{NAMES[a]}-{m}-{d}" for a, m, d in BN_FORWARD_CASES])
def test_batch_norm_forward(activation, mode, dropout, dtype):
    """``xhat``, ``gamma xhat + beta``, then the activation and dropout of ``activate_drop``."""
    rate, alpha_dropout = DROPOUT[dropout]
    rate = rate if MODES[mode] != C.INFERENCE else 0.0
    n, k, s_off, g_off, p_off, d, layer, n_layers = 3, 4, 1, 2, 11, 2, 1, 3
    rng = np.random.default_rng(activation)
    Y = rng.normal(0.2, 1.5, (n, k)).astype(dtype)
    center = rng.normal(size=k).astype(dtype)
    istd = np.r_[9.0, rng.uniform(0.5, 2.0, k)].astype(dtype)
    params = rng.uniform(-0.8, 0.8, 16).astype(dtype)
    params[p_off : p_off + k] = rng.uniform(0.05, 0.5, k)  # PReLU slopes
    keys = random_keys(n, seed=activation)
    table = dropout_table([0.1, 0.0, rate, 0.0], dtype)
    H, Out, A, M, S = run(
        BN.batch_norm_forward, n * k, Y.ravel(), nans(n * k, dtype), nans(n * k, dtype), nans(n * k, dtype),
        nans(n * k, dtype), nans(n * k, dtype), center, istd, s_off, params, g_off, p_off, keys, constants(dtype),
        table, n, k, activation, MODES[mode], rate, alpha_dropout, d, 2 * n_layers + layer, *RRELU_BOUNDS,
    )[1:6]
    xhat = (Y.astype(np.float64) - center) * istd[s_off:].astype(np.float64)
    assert_close(H.reshape(n, k), xhat, dtype)
    gamma, beta = params[g_off : g_off + k].astype(np.float64), params[g_off + k : g_off + 2 * k].astype(np.float64)
    y = gamma * xhat + beta
    assert_close(Out.reshape(n, k), y, dtype)
    kwargs = dict(alpha=ACT_ALPHA, prelu=params[p_off : p_off + k], slopes=np.full((n, k), np.mean(RRELU_BOUNDS)))
    if activation == C.RRELU and MODES[mode] == C.TRAINING:
        kwargs["slopes"] = cpu_slopes(keys, k, 2 * n_layers + layer, dtype)
        assert_array_equal(S.reshape(n, k), kwargs["slopes"])
    else:
        assert np.isnan(S).all(), "slopes written outside RReLU training"
    h = reft.activate(NAMES[activation], y, **kwargs)
    h = dropped(h, M, keys, rate, alpha_dropout, d, dtype)
    assert_close(A.reshape(n, k), h, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_batch_norm_backward(masked, dtype):
    """The sums kernel (gamma's and beta's gradients) then the input gradient, with sample weights."""
    n, k, g_off, s_off = 5, 3, 4, 1
    dY, sw, order, start, weights = bn_batch(dtype, n, k)
    rng = np.random.default_rng(7)
    H = rng.normal(size=(n, k)).astype(dtype)
    M = (rng.uniform(size=(n, k)) < 0.6).astype(dtype) * dtype(1.5)
    params = rng.uniform(-0.8, 0.8, g_off + 2 * k + 1).astype(dtype)
    istd = np.r_[9.0, rng.uniform(0.5, 2.0, k)].astype(dtype)
    D = cuda.to_device(dY.ravel())
    grad, sums = cuda.to_device(nans(g_off + 2 * k + 1, dtype)), cuda.to_device(nans(2 * k + 1, dtype))
    dev = [cuda.to_device(np.ascontiguousarray(a)) for a in (M.ravel(), H.ravel(), sw, order, params, istd)]
    BN.batch_norm_backward_sums[K.blocks(k), THREADS](
        D, dev[0], dev[1], n, k, masked, dev[2], dev[3], start, grad, g_off, sums, constants(dtype)
    )
    BN.batch_norm_backward[K.blocks(n * k), THREADS](
        D, dev[0], dev[1], n, k, masked, dev[2], dev[3], start, dev[4], g_off, dev[5], s_off, sums
    )
    dz = dY.astype(np.float64) * (M if masked else 1.0)
    gamma = params[g_off : g_off + k].astype(np.float64)
    dx, dgamma, dbeta = reft.batch_norm_backward(dz, H.astype(np.float64), gamma, istd[s_off:], weights)
    out = grad.copy_to_host()
    assert_close(out[g_off : g_off + k], dgamma, dtype)
    assert_close(out[g_off + k : g_off + 2 * k], dbeta, dtype)
    assert np.isnan(np.r_[out[:g_off], out[g_off + 2 * k :]]).all()
    assert_close(D.copy_to_host().reshape(n, k), dx, dtype)


# -- matrix products -------------------------------------------------------------------------

GEMM_PATHS = ["tiled"] + (["cublas"] if Gemm().cublas is not None else [])


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("tb", [False, True], ids=["B", "Bt"])
@pytest.mark.parametrize("ta", [False, True], ids=["A", "At"])
def test_gemm(ta, tb, path, dtype):
    """``C = op(A) op(B)`` on flat buffers with offsets; shapes not multiples of the tile."""
    M, N, Kd, a_off, b_off, c_off = 5, 6, 7, 3, 2, 4
    rng = np.random.default_rng(13)
    A = rng.normal(size=(M, Kd))
    B = rng.normal(size=(Kd, N))
    stored_a = A.T if ta else A
    stored_b = B.T if tb else B
    a = np.r_[rng.normal(size=a_off), stored_a.ravel(), rng.normal(size=2)].astype(dtype)
    b = np.r_[rng.normal(size=b_off), stored_b.ravel(), rng.normal(size=3)].astype(dtype)
    gemm = Gemm()
    if path == "tiled":
        gemm.cublas = None
    c = cuda.to_device(nans(c_off + M * N + 3, dtype))
    gemm(cuda.to_device(a), a_off, cuda.to_device(b), b_off, c, c_off, M, N, Kd, ta, tb)
    cuda.synchronize()
    out = c.copy_to_host()
    assert gemm.name == path
    expected = A.astype(dtype).astype(np.float64) @ B.astype(dtype).astype(np.float64)
    assert_close(out[c_off : c_off + M * N].reshape(M, N), expected, dtype)
    assert np.isnan(np.r_[out[:c_off], out[c_off + M * N :]]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("activation", [C.RELU, C.PRELU, C.RRELU, C.TANH], ids=lambda a: NAMES[a])
def test_activation_stats(activation, dtype):
    n, k, layer, unit_start, p_off = 3, 40, 1, 2, 4  # two blocks of units in the simulator
    rng = np.random.default_rng(activation)
    Z = rng.normal(size=(n, k)).astype(dtype)
    S = rng.uniform(*RRELU_BOUNDS, (n, k)).astype(dtype)
    params = rng.uniform(0.05, 0.5, p_off + k).astype(dtype)
    diag = rng.uniform(0, 1, (3, unit_start + k + 1))
    diag[-1] = -1.0  # the unit maxima so far
    diag[-1, unit_start] = 50.0  # a maximum the batch does not beat
    before = diag.copy()
    out = run(Dg.activation_stats, k, Z.ravel(), S.ravel(), params, p_off, n, k, activation, diag, layer,
              unit_start, constants(dtype), state())[7]
    slopes = S if activation == C.RRELU else np.full((n, k), np.mean(RRELU_BOUNDS))
    a = reft.activate(NAMES[activation], Z.astype(np.float64), alpha=ACT_ALPHA, prelu=params[p_off:], slopes=slopes)
    a = a.astype(dtype).astype(np.float64)
    want = before.copy()
    want[layer, :3] += [a.sum(), (a * a).sum(), n * k]
    want[-1, unit_start : unit_start + k] = np.maximum(before[-1, unit_start : unit_start + k], a.max(axis=0))
    assert_close(out, want, np.float64 if dtype == np.float64 else dtype)
    stopped = run(Dg.activation_stats, k, Z.ravel(), S.ravel(), params, p_off, n, k, activation, before.copy(),
                  layer, unit_start, constants(dtype), state(stopped=True))[7]
    assert_array_equal(stopped, before)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_gradient_norms(dtype):
    rng = np.random.default_rng(5)
    grad = rng.normal(size=120).astype(dtype)
    bounds = np.array([0, 12, 12, 90, 95, 110], dtype=np.int64)  # three layers' weights; layer 0 frozen
    diag = rng.uniform(0, 1, (4, 6))
    before = diag.copy()
    s = state()
    s[K.S_SW_SUM] = 2.5
    out = cuda.to_device(diag)
    Dg.gradient_norms[2, THREADS](cuda.to_device(grad), cuda.to_device(bounds), 1, out, cuda.to_device(s))
    want = before.copy()
    for layer in (1, 2):
        g = grad[bounds[2 * layer] : bounds[2 * layer + 1]].astype(np.float64)
        want[layer, 3] += np.sqrt(g @ g) / 2.5
        want[layer, 4] += 1.0
    assert_close(out.copy_to_host(), want, np.float64)
    out = cuda.to_device(before)
    Dg.gradient_norms[2, THREADS](cuda.to_device(grad), cuda.to_device(bounds), 1, out,
                                  cuda.to_device(state(stopped=True)))
    assert_array_equal(out.copy_to_host(), before)


def test_every_kernel_has_a_test(request):
    """Runs last: every kernel of ``skdeep.kernels.cuda`` was launched by a test above (simulator only)."""
    if not SIMULATOR:
        pytest.skip("launches are recorded in the simulator")
    if request.config.getoption("keyword") or request.config.getoption("markexpr"):
        pytest.skip("only some of the tests ran")
    assert {location for location, _ in LAUNCHES} == set(cuda_launches.kernels())
