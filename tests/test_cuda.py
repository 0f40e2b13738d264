"""The CUDA backend, tested on the CPU with Numba's CUDA simulator (tiny shapes).

The simulator must be switched on before Numba is imported, so the fits on
``device="cuda"`` run in one child process; this process fits the same models
on the CPU and compares. The simulator runs one Python thread per CUDA thread:
correct but slow, hence tiny networks. No GPU is needed or used.
"""

import os
import pickle
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
BASE = dict(hidden_layer_sizes=(4,), max_iter=2, batch_size=4, random_state=0)

#: (estimator, parameters, dtype) fitted on both backends; ``csr=True`` fits on
#: a CSR matrix (see :func:`fit_args`).
CONFIGS = [
    ("MLPClassifier", dict(activation="relu", solver="adam"), "float64"),
    ("MLPClassifier", dict(activation="elu", solver="nadam", l1=0.01, clipnorm=0.1), "float64"),
    ("MLPClassifier", dict(activation="selu", dropout=0.3, alpha_dropout=True, solver="sgd"), "float64"),
    ("MLPRegressor", dict(activation="tanh", solver="rmsprop", max_norm=0.5), "float64"),
    ("MLPRegressor", dict(solver="lbfgs"), "float64"),
    ("MLPClassifier", dict(activation="relu", solver="adam"), "float32"),
    ("MLPClassifier", dict(csr=True, hidden_layer_sizes=(4, 3), activation="prelu", dropout=(0.2, 0.3),
                           diagnostics=True, clipvalue=0.5), "float64"),
    ("MLPRegressor", dict(csr=True, activation="rrelu", dropout=0.3, diagnostics=True, solver="sgd"), "float32"),
]


def fit_args(name, params, dtype):
    """``(estimator parameters, X, y)`` of a config; ``csr`` zeroes small entries of ``X``, stored as CSR."""
    params = dict(params)
    data = X.astype(dtype)
    if params.pop("csr", False):
        data = sp.csr_matrix(np.where(np.abs(data) > 0.5, data, 0))
    return params, data, y_reg if name == "MLPRegressor" else y

CHILD = r"""
import pickle, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
import skdeep
fits, base = pickle.load(open(sys.argv[1], "rb"))
models = []
for name, params, data, target in fits:
    model = getattr(skdeep, name)(device="cuda", **{**base, **params}).fit(data, target)
    models.append(model)
pickle.dump(models, open(sys.argv[1], "wb"))
"""


@pytest.fixture(scope="module")
def cuda_models(tmp_path_factory):
    path = tmp_path_factory.mktemp("cuda") / "models.pkl"
    with open(path, "wb") as f:
        pickle.dump(([(c[0], *fit_args(*c)) for c in CONFIGS], BASE), f)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", SKDEEP_CUDA_SIMULATOR="1")
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(path, "rb") as f:
        return pickle.load(f)


@pytest.mark.parametrize("index", range(len(CONFIGS)),
                         ids=[f"{c[0]}-{c[2]}-{'-'.join(map(str, c[1].values()))}" for c in CONFIGS])
def test_cuda_fit_matches_the_cpu_backend(cuda_models, index):
    name, params, dtype = CONFIGS[index]
    gpu = cuda_models[index]
    params, data, target = fit_args(name, params, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}[name](
            device="cpu", **{**BASE, **params}).fit(data, target)
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == "float32" else dict(rtol=1e-9, atol=1e-12)
    for got, want in zip(gpu.coefs_ + gpu.intercepts_, cpu.coefs_ + cpu.intercepts_):
        assert type(got) is np.ndarray and got.dtype == np.dtype(dtype)
        assert_allclose(got, want, **tol)
    # the per-epoch history, with diagnostics=True its per-layer statistics
    gpu_history, cpu_history = getattr(gpu, "history_", []), getattr(cpu, "history_", [])  # none for lbfgs
    assert [record.keys() for record in gpu_history] == [record.keys() for record in cpu_history]
    for got, want in zip(gpu_history, cpu_history):
        for key, value in want.items():
            if key != "time" and value is not None:
                assert_allclose(got[key], value, **tol, err_msg=key)
    # trained on the (simulated) GPU, unpickled and predicting here on the CPU
    assert_allclose(gpu.predict(data), cpu.predict(data), **tol)


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
