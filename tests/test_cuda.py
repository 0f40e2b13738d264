"""The CUDA backend, tested on the CPU with Numba's CUDA simulator (tiny shapes).

The simulator must be switched on before Numba is imported, so the fits on
``device="cuda"`` run in one child process; this process fits the same models
on the CPU and compares. The kernel-level tests (``test_cuda_kernels.py``)
run in another child. The simulator runs one Python thread per CUDA thread:
correct but slow, hence tiny networks. No GPU is needed or used.
"""

import ctypes
import os
import pickle
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

pytest.importorskip("numba.cuda")

from numba import njit  # noqa: E402

from skdeep import MLPClassifier, MLPRegressor, _device  # noqa: E402
from skdeep._backend import Data  # noqa: E402
from skdeep.kernels.cpu import _row_keys  # noqa: E402

rng = np.random.RandomState(0)
X = rng.randn(10, 3)
y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
y_reg = np.c_[np.abs(X[:, 0]), X[:, 1]]
W = rng.rand(10) + 0.5  # sample weights
BASE = dict(hidden_layer_sizes=(4,), max_iter=2, batch_size=4, random_state=0)

#: (estimator, parameters, dtype) fitted on both backends, parameters overriding BASE; ``csr=True``
#: fits on a CSR matrix, ``weighted=True`` with the sample weights ``W`` (see :func:`fit_args`).
CONFIGS = [
    ("MLPClassifier", dict(activation="relu", solver="adam"), "float64"),
    ("MLPClassifier", dict(activation="elu", solver="nadam", l1=0.01, clipnorm=0.1), "float64"),
    ("MLPClassifier", dict(activation="selu", dropout=0.3, alpha_dropout=True, solver="sgd"), "float64"),
    ("MLPRegressor", dict(activation="tanh", solver="rmsprop", max_norm=0.5), "float64"),
    ("MLPRegressor", dict(solver="lbfgs"), "float64"),
    ("MLPClassifier", dict(activation="relu", solver="adam"), "float32"),
    ("MLPClassifier", dict(activation="prelu", input_dropout=0.2, dropout=0.1, solver="adamw"), "float32"),
    ("MLPClassifier", dict(csr=True, hidden_layer_sizes=(4, 3), activation="prelu", dropout=(0.2, 0.3),
                           diagnostics=True, clipvalue=0.5), "float64"),
    ("MLPRegressor", dict(csr=True, activation="rrelu", dropout=0.3, diagnostics=True, solver="sgd"), "float32"),
    ("MLPClassifier", dict(batch_norm="before", hidden_layer_sizes=(4, 3), activation="prelu", solver="adam",
                           max_iter=1, weighted=True), "float64"),
    ("MLPClassifier", dict(batch_norm="after", batch_norm_input=True, dropout=0.3, input_dropout=0.2,
                           activation="tanh", solver="sgd", weighted=True), "float64"),
    ("MLPClassifier", dict(batch_norm="before", batch_norm_input=True, hidden_layer_sizes=(4, 3), n_frozen_layers=1,
                           activation="rrelu", solver="sgd", max_iter=1), "float32"),
    ("MLPRegressor", dict(batch_norm="after", batch_norm_input=True, solver="lbfgs", max_iter=1), "float64"),
]

BATCH_NORM_PARTS = ("batch_norm_gamma_", "batch_norm_beta_", "batch_norm_moving_mean_", "batch_norm_moving_var_")


def fit_args(name, params, dtype):
    """``(estimator parameters, X, y, fit keywords)`` of a config; ``csr`` zeroes small entries of ``X``, as CSR."""
    params = dict(params)
    data = X.astype(dtype)
    if params.pop("csr", False):
        data = sp.csr_matrix(np.where(np.abs(data) > 0.5, data, 0))
    fit = dict(sample_weight=W) if params.pop("weighted", False) else {}
    return params, data, y_reg if name == "MLPRegressor" else y, fit


CHILD = r"""
import pickle, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[2])
import cuda_launches
cuda_launches.simulate()
import skdeep
from skdeep import _device
from skdeep.kernels import cuda_backend
launches = set()
cuda_launches.record(launches)
fits, base, cpu_model = pickle.load(open(sys.argv[1], "rb"))
models, outputs = [], []
for name, params, data, target, fit in fits:
    model = getattr(skdeep, name)(device="cuda", **{**base, **params}).fit(data, target, **fit)
    models.append(model)
# predict on the (simulated) device, in chunks of 4 rows
_device.PREDICT_MIN_ROWS, cuda_backend.PREDICT_CHUNK = 1, 4
for model, (_, _, data, _, _) in zip(models, fits):
    out = {"predict": model.predict(data)}
    if hasattr(model, "predict_proba"):
        out["predict_proba"] = model.predict_proba(data)
    if np.any(model.dropout) and hasattr(model, "predict_proba_mc"):
        out["predict_proba_mc"] = model.predict_proba_mc(data, n_samples=3, random_state=0)
    outputs.append(out)
# a CPU-trained model continues on the device
X, y = fits[0][2:4]
cpu_model.set_params(device="cuda", warm_start=True).fit(X, y)
cpu_model.partial_fit(X, y)
pickle.dump((models, outputs, launches, cpu_model), open(sys.argv[1], "wb"))
"""


@pytest.fixture(scope="module")
def cuda_models(tmp_path_factory):
    path = tmp_path_factory.mktemp("cuda") / "models.pkl"
    with open(path, "wb") as f:
        pickle.dump(([(c[0], *fit_args(*c)) for c in CONFIGS], BASE, _cpu_model()), f)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", SKDEEP_CUDA_SIMULATOR="1")
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), os.path.dirname(__file__)], env=env,
                          capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(path, "rb") as f:
        return pickle.load(f)  # (models, device outputs, kernel launches, CPU model continued on the device)


def _cpu_model():
    """The first configuration fitted on the CPU."""
    return MLPClassifier(device="cpu", **BASE, **CONFIGS[0][1]).fit(X, y)


@pytest.mark.parametrize("index", range(len(CONFIGS)),
                         ids=[f"{c[0]}-{c[2]}-{'-'.join(map(str, c[1].values()))}" for c in CONFIGS])
def test_cuda_fit_matches_the_cpu_backend(cuda_models, index):
    name, params, dtype = CONFIGS[index]
    gpu = cuda_models[0][index]
    params, data, target, fit = fit_args(name, params, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}[name](
            device="cpu", **{**BASE, **params}).fit(data, target, **fit)
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == "float32" else dict(rtol=1e-9, atol=1e-12)
    arrays = ("coefs_", "intercepts_", "prelu_alpha_", *BATCH_NORM_PARTS)
    got_all = [a for attribute in arrays for a in getattr(gpu, attribute, [])]
    want_all = [a for attribute in arrays for a in getattr(cpu, attribute, [])]
    assert len(got_all) == len(want_all)
    for got, want in zip(got_all, want_all):
        assert type(got) is np.ndarray and got.dtype == np.dtype(dtype)
        assert_allclose(got, want, **tol)
    if params.get("batch_norm") or params.get("batch_norm_input"):  # the statistics moved during the fit
        assert not np.allclose(np.concatenate(gpu.batch_norm_moving_var_), 1.0)
    # the per-epoch history, with diagnostics=True its per-layer statistics
    gpu_history, cpu_history = getattr(gpu, "history_", []), getattr(cpu, "history_", [])  # none for lbfgs
    assert [record.keys() for record in gpu_history] == [record.keys() for record in cpu_history]
    for got, want in zip(gpu_history, cpu_history):
        for key, value in want.items():
            if key != "time" and value is not None:
                assert_allclose(got[key], value, **tol, err_msg=key)
    # trained on the (simulated) GPU, unpickled and predicting here on the CPU
    assert_allclose(gpu.predict(data), cpu.predict(data), **tol)
    # predicted on the device, in chunks
    device = cuda_models[1][index]
    assert_allclose(device["predict"], cpu.predict(data), **tol)
    if "predict_proba" in device:
        assert_allclose(device["predict_proba"], cpu.predict_proba(data), **tol)
    if "predict_proba_mc" in device:
        mean, std = cpu.predict_proba_mc(data, n_samples=3, random_state=0)
        assert_allclose(device["predict_proba_mc"][0], mean, **tol)
        # the std is sqrt(E[p^2] - E[p]^2): the rounding of the difference shows at its square root
        assert_allclose(device["predict_proba_mc"][1], std, rtol=tol["rtol"], atol=np.sqrt(tol["atol"]))


def test_cuda_trained_model_continues_on_the_cpu(cuda_models):
    gpu = pickle.loads(pickle.dumps(cuda_models[0][0]))
    cpu = _cpu_model()
    for model in (gpu, cpu):
        model.set_params(device="cpu", warm_start=True).fit(X, y)
        model.partial_fit(X, y)
    for got, want in zip(gpu.coefs_ + gpu.intercepts_, cpu.coefs_ + cpu.intercepts_):
        assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_cpu_trained_model_continues_on_the_cuda_device(cuda_models):
    continued = cuda_models[3]
    cpu = _cpu_model()
    cpu.set_params(warm_start=True).fit(X, y)
    cpu.partial_fit(X, y)
    assert continued.device == "cuda"
    for got, want in zip(continued.coefs_ + continued.intercepts_, cpu.coefs_ + cpu.intercepts_):
        assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_cuda_trained_model_round_trips_through_skops(cuda_models):
    sio = pytest.importorskip("skops.io")
    from skdeep.persistence import trusted_types

    for model in cuda_models[0]:
        loaded = sio.loads(sio.dumps(model), trusted=trusted_types(model))
        assert loaded.device == "cuda"
        assert_allclose(loaded.predict(X.astype(loaded.coefs_[0].dtype)), model.predict(X.astype(model.coefs_[0].dtype)))


def _ptx_compiler():
    """``numba.cuda.compile_ptx``, or a reason to skip: NVRTC and NVVM must be installed (no GPU needed)."""
    from numba import cuda, float64

    def probe(a):
        a[0] = 1.0

    try:
        cuda.compile_ptx(probe, (float64[:],), cc=PTX_CC)
    except Exception as error:  # the compiler libraries are missing: cuda.pathfinder's or NVVM's error
        pytest.skip(f"NVIDIA's compiler libraries are not installed: {error}")
    return cuda.compile_ptx


#: Compute capability the PTX is generated for (Hopper, as the H100/H200).
PTX_CC = (9, 0)

#: Kernels whose float32 versions compute in float64 on purpose, and why.
FLOAT64_BY_DESIGN = {
    "kernels.hidden_forward": "dropout and RReLU draws are float64, as the CPU's, so masks match bit for bit",
    "kernels.input_dropout": "dropout draws are float64, as the CPU's",
    "batch_norm.batch_norm_forward": "dropout and RReLU draws are float64, as the CPU's",
    "kernels.output_loss_delta": "per-row losses are float64, as the CPU's",
    "kernels.loss_reduce": "the loss and penalty sums are float64, as the CPU's",
    "reductions.penalty_partials": "the penalty sums are float64, as the CPU's",
    "diagnostics.activation_stats": "diagnostics are float64 sums, as the CPU's",
    "diagnostics.gradient_norms": "diagnostics are float64 sums, as the CPU's",
}

#: PTX arithmetic on float64 operands.
FLOAT64_ARITHMETIC = re.compile(r"^\s*(?:add|sub|mul|fma|div|rcp|sqrt|neg|abs|min|max)\.[\w.]*f64\b", re.M)


def test_every_kernel_compiles_to_ptx_for_the_types_it_is_launched_with(cuda_models, monkeypatch):
    from types import SimpleNamespace

    import cuda_launches
    from numba import float32
    from numba.cuda import dispatcher

    compile_ptx = _ptx_compiler()
    # numba-cuda compiles the device functions a kernel calls for the current GPU; without one, stand in one of PTX_CC
    if not _device.cuda_status()[0]:
        monkeypatch.setattr(dispatcher, "get_current_device", lambda: SimpleNamespace(compute_capability=PTX_CC))
    launches = cuda_models[2]
    kernels = cuda_launches.kernels()
    assert {location for location, _ in launches} == set(kernels), "every kernel runs in the simulator child"
    failures = []
    for location, argtypes in sorted(launches, key=str):
        try:
            ptx, _ = compile_ptx(kernels[location].py_func, argtypes, cc=PTX_CC)
        except Exception as error:
            failures.append(f"{location}{argtypes}: {type(error).__name__}: {error}")
            continue
        single = any(getattr(t, "dtype", None) == float32 for t in argtypes)
        if single and location not in FLOAT64_BY_DESIGN and FLOAT64_ARITHMETIC.search(ptx):
            failures.append(f"{location}{argtypes}: float64 arithmetic in a float32 kernel")
    assert not failures, "\n".join(failures)


def test_cuda_kernels_under_the_simulator():
    """``tests/test_cuda_kernels.py`` (every kernel against the NumPy references) in a simulator child."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", SKDEEP_CUDA_SIMULATOR="1")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", os.path.join(here, "test_cuda_kernels.py")],
        cwd=os.path.dirname(here), env=env, capture_output=True, text=True, timeout=600,
    )
    tail = (done.stdout + done.stderr)[-6000:]
    assert done.returncode == 0, tail
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, tail


@njit
def cpu_row_keys(Xd, Xv, Xi, Xp, sparse, rows, seed, keys):
    _row_keys(Xd, Xv, Xi, Xp, sparse, rows, seed, keys)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_csr_row_hashes_give_the_cpu_row_keys(dtype):
    from skdeep.kernels import cuda_backend

    dense = np.random.RandomState(1).randn(37, 11).astype(dtype)
    dense[np.abs(dense) < 1.0] = 0.0
    dense[5] = 0.0  # an empty row
    matrix = sp.csr_matrix(dense)
    matrix.data[0] = 0.0  # an explicit zero, skipped as in the dense rows
    data = Data.from_matrix(matrix, dtype)
    hashes = cuda_backend.csr_row_hashes(data.values, data.indices, data.indptr, chunk=8)
    assert np.array_equal(hashes, cuda_backend.row_hashes(matrix.toarray()))
    keys = np.empty(37, dtype=np.uint64)
    cpu_row_keys(*data, np.arange(37), 12345, keys)
    assert np.array_equal(cuda_backend._mix(hashes ^ np.uint64(12345)), keys)


def test_cuda_without_a_gpu_names_the_install_command():
    if _device.cuda_status()[0]:
        pytest.skip("a CUDA GPU is usable here")
    with pytest.raises(RuntimeError, match=r'pip install "\.\[cuda\]"'):
        MLPClassifier(device="cuda", **BASE).fit(X, y)


def test_auto_falls_back_to_the_cpu_silently():
    if _device.cuda_status()[0]:
        pytest.skip("a CUDA GPU is usable here")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        auto = MLPClassifier(device="auto", **BASE).fit(X, y)
    cpu = MLPClassifier(device="cpu", **BASE).fit(X, y)
    for a, b in zip(auto.coefs_, cpu.coefs_):
        assert np.array_equal(a, b)


def test_invalid_device_is_refused():
    with pytest.raises(ValueError, match="device"):
        MLPClassifier(device="gpu").fit(X, y)


class _HostArray(np.ndarray):
    """A NumPy array that shows its host pointer as ``__cuda_array_interface__``."""

    @property
    def __cuda_array_interface__(self):
        return self.__array_interface__


class _ReferenceBLAS:
    """cuBLAS's ``gemm`` by its definition, on host pointers: column-major ``C = alpha op(A) op(B) + beta C``.

    The reference BLAS's semantics (``sgemm``/``dgemm``, netlib), which cuBLAS keeps: matrices are
    column-major with leading dimensions ``ld*``, and ``C`` is not read when ``beta`` is zero.
    """

    class Operation:
        N, T = 0, 1

    def create(self):
        return 1

    def sgemm(self, *args):
        self._gemm(np.float32, *args)

    def dgemm(self, *args):
        self._gemm(np.float64, *args)

    @staticmethod
    def _gemm(dtype, handle, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        size = np.dtype(dtype).itemsize

        def matrix(pointer, ld, rows, cols):  # column-major, leading dimension ld
            flat = np.ctypeslib.as_array((ctypes.c_byte * (size * (ld * (cols - 1) + rows))).from_address(pointer))
            return np.lib.stride_tricks.as_strided(flat.view(dtype), (rows, cols), (size, ld * size))

        def scalar(pointer):
            return matrix(pointer, 1, 1, 1)[0, 0]

        op_a = matrix(a, lda, *((k, m) if transa else (m, k)))
        op_b = matrix(b, ldb, *((n, k) if transb else (k, n)))
        C = matrix(c, ldc, m, n)
        product = scalar(alpha) * ((op_a.T if transa else op_a) @ (op_b.T if transb else op_b))
        C[...] = product if scalar(beta) == 0 else product + scalar(beta) * C  # beta = 0: C is not read


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_cublas_call_computes_the_row_major_product(dtype, ta, tb):
    from skdeep.kernels.cuda.matmul import Gemm

    M, N, K, a_off, b_off, c_off = 3, 5, 4, 2, 3, 1
    A = rng.randn(a_off + M * K).astype(dtype).view(_HostArray)
    B = rng.randn(b_off + K * N).astype(dtype).view(_HostArray)
    C = np.full(c_off + M * N + 2, np.nan, dtype=dtype).view(_HostArray)
    gemm = Gemm()
    gemm.cublas = _ReferenceBLAS()
    gemm(A, a_off, B, b_off, C, c_off, M, N, K, ta, tb)
    op_a = A[a_off:].reshape((K, M) if ta else (M, K))
    op_b = B[b_off:].reshape((N, K) if tb else (K, N))
    want = (op_a.T if ta else op_a) @ (op_b.T if tb else op_b)
    assert_allclose(C[c_off : c_off + M * N].reshape(M, N), want, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert np.isnan(C[:c_off]).all() and np.isnan(C[c_off + M * N :]).all()  # nothing outside C is written
