"""One compiled specialization per kernel entry point and dtype, whatever the input.

The CPU backend canonicalizes every argument (read-only views of the data,
int64 indices, Python scalars), so writable, read-only, memory-mapped,
pandas and sparse inputs, fits, ``partial_fit``, L-BFGS, predictions and MC
dropout all reuse one specialization per dtype, and so does every helper
they compile. Counted in a fresh process:
the test session's other tests call the kernels with their own arguments.
"""

import json
import subprocess
import sys

import pytest

SCRIPT = r"""
import inspect, json, logging, tempfile, warnings
import numpy as np, pandas as pd, scipy.sparse as sp
from skdeep import MLPClassifier, MLPRegressor
from skdeep.kernels import cpu

messages = []
logging.getLogger("skdeep").addHandler(type("H", (logging.Handler,), {"emit": lambda self, r: messages.append(r.getMessage())})())
warnings.simplefilter("ignore")
rng = np.random.RandomState(0)
X64 = rng.uniform(size=(40, 5))
y = np.arange(40) % 3
for dtype in (np.float64, np.float32):
    X = X64.astype(dtype)
    read_only = X.copy()
    read_only.flags.writeable = False
    path = tempfile.mktemp()
    np.save(path + ".npy", X)
    inputs = [X, read_only, np.load(path + ".npy", mmap_mode="r"), pd.DataFrame(X), sp.csr_matrix(X)]
    for data in inputs:
        model = MLPClassifier((6,), max_iter=2, batch_size=16, random_state=0).fit(data, y)
        model.partial_fit(data, y)
        model.predict(data)
        model.predict_proba(X[:1])
        MLPClassifier((6,), solver="lbfgs", max_iter=3, random_state=0).fit(data, y).predict(data)
        reg = MLPRegressor(hidden_layer_sizes=(6,), dropout=0.2, max_iter=2, early_stopping=True,
                           random_state=0).fit(data, y.astype(dtype))
        reg.predict_mc(data, n_samples=2)
    MLPClassifier((6,), activation="elu", batch_norm="before", dropout=0.1, solver="nadam",
                  max_iter=2, random_state=0).fit(X, y).predict(X)

import pkgutil, importlib
from numba.core.registry import CPUDispatcher
import skdeep.kernels.cpu as package

def dtype_key(signature):
    for t in signature:
        if hasattr(t, "dtype") and str(t.dtype).startswith("float"):
            return str(t.dtype)
    return "any"

helpers = {}
for info in pkgutil.iter_modules(package.__path__):
    module = importlib.import_module("skdeep.kernels.cpu." + info.name)
    for name, obj in vars(module).items():
        if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module.__name__:
            per_dtype = {}
            for signature in obj.signatures:
                per_dtype[dtype_key(signature)] = per_dtype.get(dtype_key(signature), 0) + 1
            helpers[module.__name__ + "." + name] = per_dtype

counts = {}
for name in ("layout", "train_epoch", "loss_grad", "predict", "predict_mc"):
    dispatcher = getattr(cpu, name)
    names = list(inspect.signature(dispatcher.py_func).parameters)
    index = names.index("params") if "params" in names else None
    per_dtype = {}
    for signature in dispatcher.signatures:
        key = str(signature[index].dtype) if index is not None else "any"
        per_dtype[key] = per_dtype.get(key, 0) + 1
    counts[name] = per_dtype
print(json.dumps({"counts": counts, "helpers": helpers, "messages": messages}))
"""


@pytest.fixture(scope="module")
def report():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("entry_point", ["layout", "train_epoch", "loss_grad", "predict", "predict_mc"])
def test_one_specialization_per_entry_point_and_dtype(report, entry_point):
    counts = report["counts"][entry_point]
    assert counts, f"{entry_point} was never called"
    assert all(n == 1 for n in counts.values()), counts
    if entry_point != "layout":
        assert set(counts) == {"float32", "float64"}


def test_helpers_compiled_once_per_dtype(report):
    """No helper compiles twice for one dtype (literal constants, writable vs read-only arrays).

    Helpers only compile when their entry point does: with a warm cache this
    checks the entry points alone, with a cold one (a fresh CI run) every helper.
    """
    duplicated = {name: counts for name, counts in report["helpers"].items() if any(n > 1 for n in counts.values())}
    assert not duplicated, duplicated


def test_compile_message_at_most_once_per_dtype(report):
    from skdeep.kernels.cpu_backend import COMPILING

    assert all(message == COMPILING for message in report["messages"])
    assert len(report["messages"]) <= 2


def test_compile_detection_sees_memory_and_disk(tmp_path):
    """The check behind the compile message: not compiled, then in memory, then on disk."""
    (tmp_path / "tiny_kernel.py").write_text(
        "from numba import njit\n\n@njit(cache=True)\ndef double(x):\n    return 2.0 * x\n"
    )
    check = (
        "import sys; sys.path.insert(0, %r)\n"
        "from tiny_kernel import double\n"
        "from skdeep.kernels.cpu_backend import _compiled\n"
        "before = _compiled(double, (1.0,))\n"
        "double(1.0)\n"
        "print(before, _compiled(double, (1.0,)), _compiled(double, (1,)))\n" % str(tmp_path)
    )
    first = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    second = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert first.stdout.split() == ["False", "True", "False"], first.stderr
    assert second.stdout.split() == ["True", "True", "False"], second.stderr
