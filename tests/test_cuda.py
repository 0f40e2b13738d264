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
from numpy.testing import assert_allclose

pytest.importorskip("numba.cuda")

from skdeep import MLPClassifier, MLPRegressor, _device  # noqa: E402

rng = np.random.RandomState(0)
X = rng.randn(10, 3)
y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
y_reg = np.c_[np.abs(X[:, 0]), X[:, 1]]
W = rng.rand(10) + 0.5  # sample weights
BASE = dict(hidden_layer_sizes=(4,), max_iter=2, batch_size=4, random_state=0)

#: (estimator, parameters, dtype[, fit keywords]) fitted on both backends; parameters override BASE.
CONFIGS = [
    ("MLPClassifier", dict(activation="relu", solver="adam"), "float64"),
    ("MLPClassifier", dict(activation="elu", solver="nadam", l1=0.01, clipnorm=0.1), "float64"),
    ("MLPClassifier", dict(activation="selu", dropout=0.3, alpha_dropout=True, solver="sgd"), "float64"),
    ("MLPRegressor", dict(activation="tanh", solver="rmsprop", max_norm=0.5), "float64"),
    ("MLPRegressor", dict(solver="lbfgs"), "float64"),
    ("MLPClassifier", dict(activation="relu", solver="adam"), "float32"),
    ("MLPClassifier", dict(batch_norm="before", hidden_layer_sizes=(4, 3), activation="prelu", solver="adam",
                           max_iter=1), "float64", dict(sample_weight=W)),
    ("MLPClassifier", dict(batch_norm="after", batch_norm_input=True, dropout=0.3, input_dropout=0.2,
                           activation="tanh", solver="sgd"), "float64", dict(sample_weight=W)),
    ("MLPClassifier", dict(batch_norm="before", batch_norm_input=True, hidden_layer_sizes=(4, 3), n_frozen_layers=1,
                           activation="rrelu", solver="sgd", max_iter=1), "float32"),
    ("MLPRegressor", dict(batch_norm="after", batch_norm_input=True, solver="lbfgs", max_iter=1), "float64"),
]

#: Indices of CONFIGS whose models also predict on the (simulated) device in the child.
DEVICE_PREDICT = [7, 9]
BATCH_NORM_PARTS = ("batch_norm_gamma_", "batch_norm_beta_", "batch_norm_moving_mean_", "batch_norm_moving_var_")

CHILD = r"""
import pickle, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
import skdeep
configs, X, y, y_reg, base, device_predict = pickle.load(open(sys.argv[1], "rb"))
models = []
for name, params, dtype, *fit in configs:
    target = y_reg if name == "MLPRegressor" else y
    model = getattr(skdeep, name)(device="cuda", **{**base, **params}).fit(X.astype(dtype), target, **(fit or [{}])[0])
    models.append(model)
skdeep._device.PREDICT_MIN_ROWS = 1  # predict on the device
predictions = {}
for index in device_predict:
    model, Xd = models[index], X.astype(configs[index][2])
    if configs[index][0] == "MLPRegressor":
        predictions[index] = (model.predict(Xd),)
    else:
        predictions[index] = (model.predict_proba(Xd), *model.predict_proba_mc(Xd, n_samples=3, random_state=0))
pickle.dump((models, predictions), open(sys.argv[1], "wb"))
"""


@pytest.fixture(scope="module")
def cuda_models(tmp_path_factory):
    path = tmp_path_factory.mktemp("cuda") / "models.pkl"
    with open(path, "wb") as f:
        pickle.dump((CONFIGS, X, y, y_reg, BASE, DEVICE_PREDICT), f)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", SKDEEP_CUDA_SIMULATOR="1")
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(path, "rb") as f:
        return pickle.load(f)


@pytest.mark.parametrize("index", range(len(CONFIGS)),
                         ids=[f"{c[0]}-{c[2]}-{'-'.join(map(str, c[1].values()))}" for c in CONFIGS])
def test_cuda_fit_matches_the_cpu_backend(cuda_models, index):
    name, params, dtype, *fit = CONFIGS[index]
    gpu = cuda_models[0][index]
    target = y_reg if name == "MLPRegressor" else y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}[name](
            device="cpu", **{**BASE, **params}).fit(X.astype(dtype), target, **(fit or [{}])[0])
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
    # trained on the (simulated) GPU, unpickled and predicting here on the CPU
    assert_allclose(gpu.predict(X.astype(dtype)), cpu.predict(X.astype(dtype)), **tol)


@pytest.mark.parametrize("index", DEVICE_PREDICT)
def test_cuda_predictions_match_the_cpu_backend(cuda_models, index):
    """predict / predict_proba / predict_proba_mc of a batch-norm model on the device, against the same model on the CPU."""
    models, predictions = cuda_models
    name, params, dtype = CONFIGS[index][:3]
    model, Xd = models[index], X.astype(dtype)
    if name == "MLPRegressor":
        want = (model.predict(Xd),)
    else:
        want = (model.predict_proba(Xd), *model.predict_proba_mc(Xd, n_samples=3, random_state=0))
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == "float32" else dict(rtol=1e-9, atol=1e-12)
    for got, expected in zip(predictions[index][:2], want[:2], strict=True):
        assert_allclose(got, expected, **tol)
    if len(want) == 3:  # the MC std, sqrt(E[p^2] - E[p]^2): rounding of the difference shows at its square root
        assert_allclose(predictions[index][2], want[2], atol=np.sqrt(tol["atol"]))


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
