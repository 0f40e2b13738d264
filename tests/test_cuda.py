"""The CUDA backend, tested on the CPU with Numba's CUDA simulator (tiny shapes).

The simulator must be switched on before Numba is imported, so the fits on
``device="cuda"`` run in one child process; this process fits the same models
on the CPU and compares. The kernel-level tests (``test_cuda_kernels.py``)
run in another child. The simulator runs one Python thread per CUDA thread:
correct but slow, hence tiny networks. No GPU is needed or used.
"""

import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

pytest.importorskip("numba.cuda")

from skdeep import MLPClassifier, MLPRegressor, _device  # noqa: E402

rng = np.random.RandomState(0)
X = rng.randn(10, 3)
y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
y_reg = np.c_[np.abs(X[:, 0]), X[:, 1]]
BASE = dict(hidden_layer_sizes=(4,), max_iter=2, batch_size=4, random_state=0)

#: (estimator, parameters, dtype) fitted on both backends.
CONFIGS = [
    ("MLPClassifier", dict(activation="relu", solver="adam"), "float64"),
    ("MLPClassifier", dict(activation="elu", solver="nadam", l1=0.01, clipnorm=0.1), "float64"),
    ("MLPClassifier", dict(activation="selu", dropout=0.3, alpha_dropout=True, solver="sgd"), "float64"),
    ("MLPRegressor", dict(activation="tanh", solver="rmsprop", max_norm=0.5), "float64"),
    ("MLPRegressor", dict(solver="lbfgs"), "float64"),
    ("MLPClassifier", dict(activation="relu", solver="adam"), "float32"),
]

CHILD = r"""
import pickle, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
import skdeep
configs, X, y, y_reg, base = pickle.load(open(sys.argv[1], "rb"))
models = []
for name, params, dtype in configs:
    target = y_reg if name == "MLPRegressor" else y
    model = getattr(skdeep, name)(device="cuda", **base, **params).fit(X.astype(dtype), target)
    models.append(model)
pickle.dump(models, open(sys.argv[1], "wb"))
"""


@pytest.fixture(scope="module")
def cuda_models(tmp_path_factory):
    path = tmp_path_factory.mktemp("cuda") / "models.pkl"
    with open(path, "wb") as f:
        pickle.dump((CONFIGS, X, y, y_reg, BASE), f)
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
    target = y_reg if name == "MLPRegressor" else y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}[name](
            device="cpu", **BASE, **params).fit(X.astype(dtype), target)
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == "float32" else dict(rtol=1e-9, atol=1e-12)
    for got, want in zip(gpu.coefs_ + gpu.intercepts_, cpu.coefs_ + cpu.intercepts_):
        assert type(got) is np.ndarray and got.dtype == np.dtype(dtype)
        assert_allclose(got, want, **tol)
    # trained on the (simulated) GPU, unpickled and predicting here on the CPU
    assert_allclose(gpu.predict(X.astype(dtype)), cpu.predict(X.astype(dtype)), **tol)


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
