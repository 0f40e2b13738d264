"""Robustness fuzzer for skdeep's estimators.

Hypothesis draws a *case*: parameters (mostly valid, sometimes not) x data
(dtypes, C/F order, strided arrays, lists, pandas, sparse formats, NaN/inf/huge
values, odd labels and sample weights) x a call sequence (fits, failed refits,
warm starts, ``partial_fit``, transfer through ``pretrained=``, tampered fitted
arrays, pickling, other containers of the same rows). A case is plain JSON, so
a failing one can be replayed (``--replay``).

Each case runs in a child process (a worker serving many cases one at a time,
so a segfault or a hang is attributed to the case that caused it; the worker is
then restarted). A case ends in one of these outcomes:

* ``ok``: every call returned a result that passes the invariants (finite
  predictions of the right shape, equal to a NumPy forward pass of the fitted
  arrays; ``predict_proba`` rows summing to 1; ``classes_`` taken from ``y``;
  the same model from the same seed; the same predictions for every container
  of the same rows; a failed call leaves the model as it was; inputs never
  modified);
* ``clear_error``: a call raised ``ValueError``/``TypeError`` (scikit-learn's
  ``NotFittedError`` and ``InvalidParameterError`` are both) from an explicit
  ``raise`` in skdeep or from scikit-learn's validation, with a message;

and every other outcome is a failure: ``crash`` (the worker died), ``hang``,
``leaked`` (another exception type, or a ``ValueError``/``TypeError`` that
escaped from NumPy or another library's internals) and ``wrong`` (an invariant
broke).

Run ``python tests/fuzz.py --cases 5000`` for a long run; it prints the counts
by outcome and every failing case. ``tests/test_fuzz.py`` runs a fixed small
budget in the test suite.
"""

import argparse
import collections
import copy
import json
import linecache
import os
import pickle
import select
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAILURES = ("crash", "hang", "leaked", "wrong")

# ---------------------------------------------------------------------------
# Cases (hypothesis strategies; everything JSON)
# ---------------------------------------------------------------------------


def cases():
    """Hypothesis strategy of fuzz cases (JSON-able dicts)."""
    from hypothesis import strategies as st

    def maybe_invalid(valid, invalid, p_invalid=0.04):
        return st.one_of(valid, invalid) if invalid is not None else valid

    obj = lambda name, **kwargs: ["obj", name, kwargs]  # noqa: E731
    small = st.integers(1, 6)
    params = st.fixed_dictionaries(
        {},
        optional={
            "hidden_layer_sizes": st.one_of(
                st.lists(small, min_size=1, max_size=3).map(tuple), small,
                st.sampled_from([0, (0,), (), (3, -1), "abc", (2.5,), [4, 2]]),
            ),
            "activation": st.one_of(
                st.sampled_from(["identity", "logistic", "tanh", "relu", "leaky_relu", "rrelu",
                                 "prelu", "elu", "selu", "gelu", "swish"]),
                st.sampled_from([
                    obj("ReLU"), obj("Tanh"), obj("Identity"), obj("SELU"), obj("GELU"),
                    obj("Swish"), obj("Logistic"), obj("LeakyReLU", alpha=0.1),
                    obj("ELU", alpha=0.5), obj("PReLU", alpha_init=0.1),
                    obj("RReLU", lower=0.1, upper=0.4), obj("RReLU", lower=0.5, upper=0.1),
                    obj("LeakyReLU", alpha=-1.0),
                ]),
                st.just("bogus"),
            ),
            "solver": st.sampled_from(["adam", "sgd", "lbfgs", "nadam", "adamax", "adamw",
                                       "adagrad", "rmsprop", "ftrl", "bogus"]),
            "alpha": st.sampled_from([0.0, 1e-4, 0.1, 10.0, -1.0]),
            "l1": st.sampled_from([0.0, 1e-3, 0.1]),
            "batch_size": st.one_of(st.just("auto"), st.integers(1, 70), st.just(0)),
            "learning_rate": st.sampled_from(["constant", "invscaling", "adaptive"]),
            "learning_rate_init": st.sampled_from([1e-3, 0.01, 0.1, 1.0, 10.0, 0.0]),
            "max_iter": st.integers(1, 6),
            "shuffle": st.booleans(),
            "tol": st.sampled_from([0.0, 1e-4, 0.5]),
            "momentum": st.sampled_from([0.0, 0.9, 1.0]),
            "nesterovs_momentum": st.booleans(),
            "early_stopping": st.booleans(),
            "validation_fraction": st.sampled_from([0.1, 0.3, 0.5, 0.0, 1.0]),
            "n_iter_no_change": st.integers(1, 3),
            "batch_norm": st.sampled_from([None, "before", "after", True]),
            "batch_norm_input": st.booleans(),
            "batch_norm_momentum": st.sampled_from([0.0, 0.9, 0.99, 1.0]),
            "dropout": st.one_of(st.sampled_from([0.0, 0.2, 0.5, 1.0, -0.1]),
                                 st.lists(st.sampled_from([0.0, 0.3]), min_size=1, max_size=3)),
            "input_dropout": st.sampled_from([0.0, 0.2]),
            "alpha_dropout": st.booleans(),
            "max_norm": st.sampled_from([None, 0.5, 3.0]),
            "clipvalue": st.sampled_from([None, 0.1]),
            "clipnorm": st.sampled_from([None, 1.0]),
            "global_clipnorm": st.sampled_from([None, 1.0]),
            "kernel_initializer": st.one_of(
                st.sampled_from([None, "auto", "glorot_uniform", "he_normal", "lecun_normal", "bogus"]),
                st.sampled_from([obj("VarianceScaling", scale=2.0, mode="fan_avg", distribution="uniform"),
                                 obj("VarianceScaling", distribution="normal"),
                                 obj("VarianceScaling", distribution="untruncated_normal"),
                                 obj("VarianceScaling", scale=-1.0)]),
            ),
            "diagnostics": st.booleans(),
            "class_weight": st.sampled_from([None, "balanced", {"0": 2.0}, {"zzz": 1.0}]),
            "loss": st.sampled_from(["squared_error", "poisson"]),
            "random_state": st.one_of(st.integers(0, 3), st.none()),
            "n_frozen_layers": st.sampled_from([0, 1, 5]),
        },
    )
    data = st.fixed_dictionaries(
        {
            "n_samples": st.sampled_from([1, 2, 3, 5, 12, 30, 60]),
            "n_features": st.sampled_from([1, 2, 3, 5]),
            "dtype": st.sampled_from(["float64"] * 4 + ["float32"] * 3 + ["int64", "bool", "float16",
                                      "object", "complex", "str"]),
            "container": st.sampled_from(["C"] * 4 + ["F", "strided", "list", "pandas", "pandas_int_names",
                                          "pandas_nullable", "csr", "csc", "coo", "csr_array", "lil",
                                          "csr_int64", "csr_unsorted", "1d", "3d"]),
            "special": st.sampled_from([None] * 6 + ["nan", "inf", "huge", "tiny", "constant", "zeros"]),
            "n_classes": st.sampled_from([1, 2, 2, 3, 4]),
            "labels": st.sampled_from(["int"] * 3 + ["str", "bool", "float_int", "negative", "object_mixed",
                                       "continuous", "multilabel", "column", "series", "categorical",
                                       "nan", "short", "list", "sparse"]),
            "n_outputs": st.sampled_from([1, 1, 2]),
            "weights": st.sampled_from([None] * 5 + ["ones", "random", "int", "zeros", "some_zeros",
                                        "negative", "nan", "inf", "short", "2d", "list", "scalar", "huge"]),
            "eval_set": st.sampled_from([None] * 6 + ["good", "bad_width", "bad_length"]),
        }
    )
    step = st.one_of(
        st.sampled_from(["fit", "refit_bad_weights", "refit_bad_params", "warm_start",
                         "warm_start_switch", "partial_fit", "partial_fit_no_classes", "pickle",
                         "variants", "mc", "determinism", "transfer", "transfer_layers",
                         "predict_single_row"]),
        st.sampled_from(["shorter", "longer", "wrong_shape", "float16", "list", "int", "dtype_mix",
                         "scaled", "fortran", "strided", "bn_missing", "none"]).map(lambda k: "tamper:" + k),
    )
    return st.fixed_dictionaries(
        {
            "seed": st.integers(0, 2**31 - 1),
            "estimator": st.sampled_from(["classifier", "regressor"]),
            "params": params,
            "data": data,
            "steps": st.lists(step, min_size=0, max_size=4).map(lambda s: ["fit", *s]),
        }
    )


# ---------------------------------------------------------------------------
# Building a case's objects (in the worker)
# ---------------------------------------------------------------------------


def _decode(value):
    """Parameter values from JSON: ``["obj", "Name", kwargs]`` becomes the skdeep object."""
    from skdeep import activations, initializers

    if isinstance(value, list) and len(value) == 3 and value[0] == "obj":
        module = initializers if value[1] == "VarianceScaling" else activations
        return getattr(module, value[1])(**value[2])
    if isinstance(value, list):
        return value
    return value


def build_params(case):
    params = {name: _decode(value) for name, value in case["params"].items()}
    if case["estimator"] == "classifier":
        params.pop("loss", None)
        if isinstance(params.get("class_weight"), dict):
            params["class_weight"] = {(int(k) if k.isdigit() else k): v for k, v in params["class_weight"].items()}
    else:
        params.pop("class_weight", None)
    return params


def make_X(rng, spec, n=None):
    """The case's X in its dtype and container, and the float64 dense C copy of its values."""
    import numpy as np
    import scipy.sparse as sp

    n = spec["n_samples"] if n is None else n
    d = spec["n_features"]
    values = rng.normal(size=(n, d))
    values[rng.rand(n, d) < 0.3] = 0.0  # something for the sparse formats to skip
    special = spec["special"]
    if special == "nan":
        values[rng.randint(n), rng.randint(d)] = np.nan
    elif special == "inf":
        values[rng.randint(n), rng.randint(d)] = -np.inf
    elif special == "huge":
        values *= 1e150
    elif special == "tiny":
        values *= 1e-300
    elif special == "constant":
        values[:] = 1.0
    elif special == "zeros":
        values[:] = 0.0
    dtype = spec["dtype"]
    if dtype in ("int64", "bool"):
        values = np.round(values)
    if dtype == "bool":
        values = values != 0
    typed = {
        "float64": lambda v: v.astype(np.float64),
        "float32": lambda v: v.astype(np.float32),
        "int64": lambda v: np.nan_to_num(v).astype(np.int64),
        "bool": lambda v: v.astype(bool),
        "float16": lambda v: v.astype(np.float16),
        "object": lambda v: v.astype(object),
        "complex": lambda v: v.astype(np.complex128) + 1j,
        "str": lambda v: v.astype(str),
    }[dtype](values)
    if dtype == "int64":  # the values the model sees: NaN/inf replaced, then cast
        values = typed.astype(np.float64)
    container = spec["container"]
    sparse_ok = dtype not in ("object", "str", "float16")
    if container == "F":
        X = np.asfortranarray(typed)
    elif container == "strided":
        X = np.repeat(typed, 2, axis=1)[:, ::2]
    elif container == "list":
        X = typed.tolist()
    elif container.startswith("pandas"):
        import pandas as pd

        columns = list(range(d)) if container == "pandas_int_names" else [f"f{j}" for j in range(d)]
        X = pd.DataFrame(typed, columns=columns)
        if container == "pandas_nullable" and dtype.startswith("float"):
            X = X.astype("Float64")
    elif container in ("csr", "csc", "coo", "lil", "csr_array", "csr_int64", "csr_unsorted") and sparse_ok:
        make = {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "coo": sp.coo_matrix, "lil": sp.lil_matrix,
                "csr_array": sp.csr_array}.get(container, sp.csr_matrix)
        X = make(typed)
        if container == "csr_int64":
            X.indices = X.indices.astype(np.int64)
            X.indptr = X.indptr.astype(np.int64)
        if container == "csr_unsorted":
            X = sp.csr_matrix(X)  # the same rows, column indices reversed within each row
            for i in range(n):
                row = slice(X.indptr[i], X.indptr[i + 1])
                X.indices[row], X.data[row] = X.indices[row][::-1].copy(), X.data[row][::-1].copy()
            X.has_sorted_indices = False
    elif container == "1d":
        X = typed[:, 0]
    elif container == "3d":
        X = typed[:, :, None]
    else:
        X = np.ascontiguousarray(typed)
    return X, values


def make_y(rng, spec, estimator, values):
    """Targets of the case's kind (labels for the classifier)."""
    import numpy as np
    import scipy.sparse as sp

    n = values.shape[0]
    score = np.nan_to_num(values.sum(axis=1), nan=0.0, posinf=1.0, neginf=-1.0)
    k = spec["n_classes"]
    kind = spec["labels"]
    if estimator == "regressor":
        Y = np.c_[score, np.tanh(score)][:, : spec["n_outputs"]]
        Y = Y + 0.1 * rng.normal(size=Y.shape)
        if kind == "nan":
            Y[0, 0] = np.nan
        elif kind == "multilabel":
            Y = Y * 1e200  # huge targets
        elif kind == "float_int" or kind == "int":
            Y = np.round(Y * 3).astype(np.int64)
        y = Y[:, 0] if Y.shape[1] == 1 and kind != "column" else Y
        if kind == "short":
            y = y[:-1]
        elif kind == "list":
            y = y.tolist()
        elif kind == "sparse":
            y = sp.csr_matrix(np.atleast_2d(np.asarray(y).T).T)
        elif kind == "series":
            import pandas as pd

            y = pd.Series(np.asarray(y)[:, 0] if np.ndim(y) == 2 else y, name="target")
        return y
    codes_ = (np.argsort(np.argsort(score)) * k // max(n, 1)).astype(int)  # balanced classes by rank
    codes_ = np.clip(codes_, 0, k - 1)
    if kind == "multilabel":
        return (rng.rand(n, max(k, 2)) < 0.5).astype(int)
    if kind == "str":
        return np.array(["cat", "dog", "emu", "fox"])[codes_]
    if kind == "bool":
        return codes_ % 2 == 1
    if kind == "float_int":
        return codes_.astype(float) + 1.0
    if kind == "negative":
        return codes_ * 100 - 7
    if kind == "object_mixed":
        return np.array([0, "a", 1, "b"], dtype=object)[codes_]
    if kind == "continuous":
        return score + 0.5
    if kind == "column":
        return codes_[:, None]
    if kind == "series":
        import pandas as pd

        return pd.Series(codes_, name="label")
    if kind == "categorical":
        import pandas as pd

        return pd.Series(pd.Categorical(np.array(["lo", "mid", "hi", "top"])[codes_]))
    if kind == "nan":
        y = codes_.astype(float)
        y[0] = np.nan
        return y
    if kind == "short":
        return codes_[:-1]
    if kind == "list":
        return codes_.tolist()
    if kind == "sparse":
        return sp.csr_matrix(codes_[:, None])
    return codes_


def make_weights(rng, kind, n):
    import numpy as np

    return {
        None: lambda: None,
        "ones": lambda: np.ones(n),
        "random": lambda: rng.uniform(0.1, 3.0, n),
        "int": lambda: rng.randint(1, 4, n),
        "zeros": lambda: np.zeros(n),
        "some_zeros": lambda: (np.arange(n) % 2).astype(float),
        "negative": lambda: -np.ones(n),
        "nan": lambda: np.r_[np.nan, np.ones(n - 1)],
        "inf": lambda: np.r_[np.inf, np.ones(n - 1)],
        "short": lambda: np.ones(max(n - 1, 0)),
        "2d": lambda: np.ones((n, 2)),
        "list": lambda: [1.0] * n,
        "scalar": lambda: 2.0,
        "huge": lambda: np.full(n, 1e300),
    }[kind]()


# ---------------------------------------------------------------------------
# Judging results and exceptions
# ---------------------------------------------------------------------------


class Wrong(Exception):
    """An invariant broke: a silent wrong result."""


def _skdeep_dir():
    import skdeep

    return str(Path(skdeep.__file__).resolve().parent)


def _package_dir(name):
    module = __import__(name)
    return str(Path(module.__file__).resolve().parent)


def judge_exception(exc):
    """``("clear_error", text)`` for an error about the user's input, else ``("leaked", text)``."""
    import sklearn.exceptions

    text = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    if isinstance(exc, Wrong):
        return "wrong", str(exc)
    if not isinstance(exc, (ValueError, TypeError)) or type(exc).__module__.startswith("numba"):
        return "leaked", text + _where(exc)
    if not str(exc).strip():
        return "leaked", text + " (empty message)" + _where(exc)
    if isinstance(exc, sklearn.exceptions.NotFittedError):
        return "clear_error", text
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "clear_error", text
    last = frames[-1]
    filename = str(Path(last.filename).resolve())
    if filename.startswith(_package_dir("sklearn")):
        return "clear_error", text  # scikit-learn's own input validation
    line = (last.line or linecache.getline(last.filename, last.lineno)).strip()
    if filename.startswith(_skdeep_dir()) and line.startswith("raise"):
        return "clear_error", text
    return "leaked", text + _where(exc)


def _where(exc):
    frames = traceback.extract_tb(exc.__traceback__)
    return "".join(f"\n    at {Path(f.filename).name}:{f.lineno} {f.line}" for f in frames[-3:])


def _equal(a, b):
    import numpy as np

    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def _row_tolerance(dtype):
    """``allclose`` tolerances between two predictions of the same rows (alone or in a batch).

    BLAS takes other kernels (and, with other memory alignment, other
    summation orders) for one row than for many. In float32 the two differ
    by a few units in the last place of the sums: seen, 2e-6 relative and
    6e-8 absolute where a sum nearly cancels.
    """
    import numpy as np

    if np.dtype(dtype) == np.float32:
        return {"rtol": 1e-5, "atol": 1e-6}
    return {"rtol": 1e-6, "atol": 1e-12}


def _check(condition, message):
    if not condition:
        raise Wrong(message)


# ---------------------------------------------------------------------------
# Running a case
# ---------------------------------------------------------------------------


class Runner:
    """Plays one case's steps on one estimator, checking invariants after each call."""

    def __init__(self, case):
        import numpy as np

        import skdeep

        self.case = case
        self.rng = np.random.RandomState(case["seed"])
        spec = case["data"]
        self.Estimator = skdeep.MLPClassifier if case["estimator"] == "classifier" else skdeep.MLPRegressor
        self.params = build_params(case)
        self.X, self.values = make_X(self.rng, spec)
        self.y = make_y(self.rng, spec, case["estimator"], self.values)
        self.sw = make_weights(self.rng, spec["weights"], spec["n_samples"])
        self.eval_set = None
        if spec["eval_set"]:
            width = spec["n_features"] + (spec["eval_set"] == "bad_width")
            X_val = self.rng.normal(size=(8, width))
            y_val = make_y(self.rng, dict(spec, labels="int", n_samples=8), case["estimator"],
                           X_val[:, : spec["n_features"]])
            if spec["eval_set"] == "bad_length":
                y_val = y_val[:-1]
            self.eval_set = (X_val, y_val)
        self.inputs = copy.deepcopy((self.X, self.y, self.sw, self.eval_set))
        # fit converts numeric strings, predict refuses them (both as scikit-learn)
        self.X_pred = self.X.astype(float) if spec["dtype"] == "str" and hasattr(self.X, "astype") else (
            np.asarray(self.X, dtype=float) if spec["dtype"] == "str" else self.X)
        self.model = self.Estimator(**self.params)
        self.fitted = False
        self.fit_kwargs = None  # sample weights and eval set of a plain fit that succeeded
        self.notes = []

    # -- invariants --------------------------------------------------------

    def check_inputs_unmodified(self):
        import numpy as np
        import scipy.sparse as sp

        def same(a, b):
            if sp.issparse(a):
                return sp.issparse(b) and a.shape == b.shape and (a != b).nnz == 0 if a.dtype.kind not in "fc" else \
                    np.array_equal(a.toarray(), b.toarray(), equal_nan=True)
            if hasattr(a, "equals"):
                return a.equals(b)
            if isinstance(a, (tuple, list)):
                return len(a) == len(b) and all(same(u, v) for u, v in zip(a, b))
            if isinstance(a, np.ndarray) and a.dtype == object:  # NaN-aware, element by element
                return b.dtype == object and a.shape == b.shape and all(map(same, a.ravel(), b.ravel()))
            if isinstance(a, np.ndarray):
                return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
            return a == b or (a != a and b != b)

        _check(same((self.X, self.y, self.sw, self.eval_set), self.inputs), "an input was modified")

    def dense_X(self, model):
        """The X rows a fitted model predicts, as a float64 C array (None if X has no such form)."""
        import numpy as np

        values = self.values
        if self.case["data"]["dtype"] in ("float32", "float16"):
            values = values.astype(self.case["data"]["dtype"]).astype(np.float64)
        return np.ascontiguousarray(values, dtype=np.float64)

    def outputs(self, model, X):
        """Raw network outputs (probabilities / predictions) as float64 2-D."""
        import numpy as np

        if self.case["estimator"] == "classifier":
            proba = model.predict_proba(X)
            if model.n_outputs_ == 1 and proba.shape[1] == 2 and len(model.classes_) <= 2:
                return proba[:, 1:].astype(np.float64)
            return proba.astype(np.float64)
        return np.asarray(model.predict(X), dtype=np.float64).reshape(np.shape(X)[0], -1)

    def check_model(self, model, X=None, y_train=None):
        """Invariants of a fitted model's predictions on the training rows."""
        import numpy as np

        X = self.X_pred if X is None else X
        n = np.shape(X)[0] if not hasattr(X, "shape") else X.shape[0]
        moderate = self.case["data"]["special"] not in ("huge",)
        pred = model.predict(X)
        if self.case["estimator"] == "classifier":
            multilabel = np.ndim(model.classes_[0]) > 0 if isinstance(model.classes_, list) else \
                (model.n_outputs_ > 1 and model._label_binarizer.y_type_.startswith("multilabel"))
            proba = model.predict_proba(X)
            _check(np.all(np.isfinite(proba)), "predict_proba is not finite")
            _check(np.all((proba >= 0) & (proba <= 1)), "predict_proba outside [0, 1]")
            if multilabel:
                _check(pred.shape == (n, model.n_outputs_), f"multilabel predict has shape {pred.shape}")
            else:
                _check(pred.shape == (n,), f"predict has shape {pred.shape}, expected ({n},)")
                width = max(2, len(model.classes_))  # one class: scikit-learn's (n, 2) too
                _check(proba.shape == (n, width), f"predict_proba has shape {proba.shape}")
                _check(np.allclose(proba.sum(axis=1), 1, atol=1e-4), "predict_proba rows do not sum to 1")
                _check(np.isin(pred, model.classes_).all(), "predict returned a label not in classes_")
                top = np.sort(proba, axis=1)
                clear = top[:, -1] - top[:, -2] > 1e-6
                if len(model.classes_) > 1:
                    _check(np.array_equal(pred[clear], model.classes_[proba.argmax(axis=1)][clear]),
                           "predict disagrees with the argmax of predict_proba")
                if y_train is not None:
                    _check(set(np.unique(np.asarray(y_train))) >= set(model.classes_.tolist()),
                           "classes_ has labels y does not have")
        else:
            out = np.asarray(pred)
            expected = (n,) if model.n_outputs_ == 1 else (n, model.n_outputs_)
            _check(out.shape == expected, f"predict has shape {out.shape}, expected {expected}")
            if moderate:
                _check(np.all(np.isfinite(out)), "predictions are not finite")
        if moderate:
            self.check_reference(model, X)

    def check_reference(self, model, X):
        """Predictions equal a float64 NumPy forward pass of the fitted arrays."""
        import numpy as np

        sys.path.insert(0, str(HERE))
        import reference_toolkit as ref

        from skdeep import activations
        from skdeep.kernels import codes

        activation = activations.resolve(model.activation)
        code, act_alpha, lower, upper = activation._options()
        name = next(n for n, cls in activations.ACTIVATIONS.items() if cls().code == code)
        output = {"identity": "squared_error", "exp": "poisson", "logistic": "binary_log_loss",
                  "softmax": "multiclass_log_loss"}[model.out_activation_]
        parts = {
            "coefs": [c.astype(np.float64) for c in model.coefs_],
            "intercepts": [b.astype(np.float64) for b in model.intercepts_],
            "prelu": [a.astype(np.float64) for a in model.prelu_alpha_],
            "gamma": [a.astype(np.float64) for a in model.batch_norm_gamma_],
            "beta": [a.astype(np.float64) for a in model.batch_norm_beta_],
            "moving_mean": [a.astype(np.float64) for a in model.batch_norm_moving_mean_],
            "moving_var": [a.astype(np.float64) for a in model.batch_norm_moving_var_],
        }
        with np.errstate(all="ignore"):
            expected, _ = ref.forward(
                self.dense_X(model), parts, activation=name, output=output, mode="inference",
                batch_norm=model.batch_norm, input_batch_norm=model.batch_norm_input, alpha=act_alpha,
                rrelu=(lower, upper), eps=model.batch_norm_epsilon,
            )
        if not np.all(np.isfinite(expected)):
            return  # overflow in the reference itself: nothing to compare
        got = self.outputs(model, X)
        float32 = model.coefs_[0].dtype == np.float32
        rtol, atol = (2e-3, 2e-4) if float32 else (1e-6, 1e-9)
        _check(got.shape == expected.shape, f"output shape {got.shape}, reference {expected.shape}")
        scale = max(1.0, float(np.abs(expected).max()))
        _check(np.allclose(got, expected, rtol=rtol, atol=atol * scale),
               f"predictions differ from the NumPy forward pass by {np.abs(got - expected).max():.3g}")

    def snapshot(self):
        """What must not change when a call fails: pickled state and predictions."""
        import numpy as np

        if not self.fitted:
            return None
        with np.errstate(all="ignore"):
            return pickle.dumps(self.model), self.outputs(self.model, self.X_pred)

    def check_unchanged(self, before, what):
        import numpy as np
        from sklearn.exceptions import NotFittedError

        if before is None:
            try:
                self.model.predict(self.X_pred)
            except NotFittedError:
                return
            except Exception as exc:  # noqa: BLE001
                raise Wrong(f"after a failed first {what}, predict raised {type(exc).__name__}: {exc} "
                            "instead of NotFittedError") from exc
            raise Wrong(f"after a failed first {what}, the model predicts")
        state, outputs = before
        _check(_equal(self.outputs(self.model, self.X_pred), outputs), f"a failed {what} changed the predictions")
        _check(pickle.dumps(self.model) == state, f"a failed {what} changed the model's state")

    # -- calls -------------------------------------------------------------

    def call(self, what, function, expect_error=False):
        """Run ``function``; judge its exception; check the model is as before on failure."""
        before = self.snapshot()
        try:
            result = function()
        except Wrong:
            raise
        except Exception as exc:  # noqa: BLE001
            outcome, text = judge_exception(exc)
            if outcome != "clear_error":
                raise _Leaked(f"{what}: {text}") from exc
            self.notes.append(f"{what}: {text[:200]}")
            if type(exc).__name__ == "Diverged":
                # by design a diverging fit raises and keeps the last finite weights
                self.fitted = self.fitted or "coefs_" in self.model.__dict__
                if self.fitted:
                    self.check_model(self.model)
                return False, None
            self.check_unchanged(before, what)
            self.check_inputs_unmodified()
            return False, None
        self.check_inputs_unmodified()
        _check(not expect_error, f"{what} should have raised ValueError/TypeError but returned")
        return True, result

    def fit(self):
        kwargs = {} if self.sw is None else {"sample_weight": self.sw}
        if self.eval_set is not None:
            kwargs["eval_set"] = self.eval_set
        ok, _ = self.call("fit", lambda: self.model.fit(self.X, self.y, **kwargs))
        if ok:
            self.fitted = True
            self.fit_kwargs = kwargs
            self.check_model(self.model, y_train=self.y)
        return ok

    def step(self, name):
        import numpy as np

        if name == "fit":
            return self.fit()
        if name.startswith("tamper:"):
            return self.tamper(name.split(":")[1])
        if name == "refit_bad_weights":
            import numpy as np

            X2 = self.rng.normal(size=(self.case["data"]["n_samples"], self.case["data"]["n_features"] + 1))
            self.call("refit with other features and wrong sample weights",
                      lambda: self.model.fit(X2, self.y, sample_weight=np.ones(X2.shape[0] + 1)),
                      expect_error=True)
            return
        if name == "refit_bad_params":
            from skdeep.initializers import VarianceScaling

            bad = [{"kernel_initializer": VarianceScaling(scale=-1.0), "activation": "prelu"},
                   {"dropout": [0.1] * 7, "hidden_layer_sizes": (3,)},
                   {"batch_norm": "sideways"}, {"alpha": -3.0}, {"hidden_layer_sizes": (4, 0)},
                   {"n_frozen_layers": 9}][self.rng.randint(6)]
            saved = self.model.get_params()
            self.model.set_params(**bad)
            self.call(f"refit with {sorted(bad)}", lambda: self.model.fit(self.X, self.y), expect_error=True)
            self.model.set_params(**{k: saved[k] for k in bad})
            return
        if name in ("warm_start", "warm_start_switch"):
            change = {"warm_start": True, "max_iter": int(self.rng.randint(1, 4))}
            if name == "warm_start_switch":
                change.update([[("early_stopping", not self.model.early_stopping),
                               ("solver", "sgd"), ("solver", "lbfgs"), ("learning_rate_init", 1e-4),
                               ("hidden_layer_sizes", (2,)), ("batch_norm", "after")][self.rng.randint(6)]])
            self.model.set_params(**change)
            ok, _ = self.call(f"warm start with {change}", lambda: self.model.fit(self.X, self.y))
            if ok:
                self.fitted = True
                self.check_model(self.model, y_train=self.y)
            return
        if name in ("partial_fit", "partial_fit_no_classes"):
            if not hasattr(self.model, "partial_fit"):
                _check(self.model.solver == "lbfgs" or self.model.get_params().get("class_weight") == "balanced",
                       "partial_fit is missing")
                return
            kwargs = {}
            if self.case["estimator"] == "classifier" and name == "partial_fit":
                try:
                    kwargs["classes"] = np.unique(np.asarray(self.y))
                except TypeError:
                    kwargs["classes"] = np.asarray(self.y)
            ok, _ = self.call(name, lambda: self.model.partial_fit(self.X, self.y, **kwargs))
            if ok:
                self.fitted = True
                self.check_model(self.model)
            return
        if not self.fitted:
            return
        if name == "pickle":
            copy_ = pickle.loads(pickle.dumps(self.model))
            _check(_equal(self.outputs(copy_, self.X_pred), self.outputs(self.model, self.X_pred)),
                   "the unpickled model predicts differently")
            return
        if name == "predict_single_row":
            row = self.dense_X(self.model)[:1].astype(self.model.coefs_[0].dtype)
            if hasattr(self.model, "feature_names_in_") or self.case["data"]["container"] in ("1d", "3d"):
                return
            many = self.outputs(self.model, np.ascontiguousarray(np.repeat(row, 3, axis=0)))
            _check(np.allclose(self.outputs(self.model, row), many[:1], **_row_tolerance(row.dtype)),
                   "single-row prediction differs from the same row in a batch")
            return
        if name == "variants":
            return self.variants()
        if name == "mc":
            method = getattr(self.model, "predict_proba_mc", None) or self.model.predict_mc
            ok, result = self.call("MC dropout", lambda: method(self.X_pred, n_samples=3, random_state=0))
            if ok:
                mean, std = result
                _check(np.all(np.isfinite(mean)) or self.case["data"]["special"] == "huge", "MC mean not finite")
                _check(np.all(std >= 0), "MC std negative")
            return
        if name == "determinism":
            if self.fit_kwargs is None or not isinstance(self.params.get("random_state"), int):
                return
            other = self.Estimator(**self.params)
            fresh = self.Estimator(**self.params)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    other.fit(self.X, self.y, **self.fit_kwargs)
                    fresh.fit(self.X, self.y, **self.fit_kwargs)
            except Exception:  # noqa: BLE001  (fit succeeded before; judged there)
                raise Wrong("a fit that succeeded once failed with the same seed")
            _check(_equal(self.outputs(other, self.X_pred), self.outputs(fresh, self.X_pred)),
                   "two fits with the same random_state differ")
            return
        if name in ("transfer", "transfer_layers"):
            from skdeep import PretrainedLayers

            source = self.model if name == "transfer" else PretrainedLayers(self.model)
            hidden = list(np.atleast_1d(self.model.hidden_layer_sizes))
            params = dict(self.params, hidden_layer_sizes=tuple(hidden[: self.rng.randint(0, len(hidden) + 1)]) + (3,),
                          pretrained=source, n_reused_layers=[None, 1, 2, 7][self.rng.randint(4)],
                          n_frozen_layers=int(self.rng.randint(0, 3)), warm_start=False)
            new = self.Estimator(**params)
            before = self.outputs(self.model, self.X_pred)
            ok, _ = self.call("transfer fit", lambda: new.fit(self.X, self.y))
            _check(_equal(self.outputs(self.model, self.X_pred), before), "transfer changed the source model")
            if ok:
                self.check_model(new, y_train=self.y)
            return
        raise AssertionError(name)

    def variants(self):
        """The same rows in every container predict the same."""
        import numpy as np
        import scipy.sparse as sp

        model = self.model
        if hasattr(model, "feature_names_in_") or self.case["data"]["special"] in ("nan", "inf", "huge"):
            return
        dtype = model.coefs_[0].dtype
        base = self.dense_X(model).astype(dtype)
        reference = self.outputs(model, base)
        sparse_ok = not (model.batch_norm_input or model.input_dropout > 0) or True
        forms = {"F": np.asfortranarray(base), "list": base.tolist(), "strided": np.repeat(base, 2, axis=1)[:, ::2]}
        if sparse_ok:
            forms.update(csr=sp.csr_matrix(base), csc=sp.csc_matrix(base))
        import pandas as pd

        forms["pandas"] = pd.DataFrame(base)
        for label, X in forms.items():
            if label == "list" and dtype == np.float32:
                continue  # a list becomes float64: computed in float64
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ok, got = self.call(f"predict on {label}", lambda: self.outputs(model, X))
            if not ok:
                raise Wrong(f"predict on a {label} copy of valid X raised")
            tol = 1e-4 if dtype == np.float32 else 1e-9
            _check(np.allclose(got, reference, rtol=tol, atol=tol),
                   f"predict on a {label} copy differs by {np.abs(got - reference).max():.3g}")

    def tamper(self, kind):
        """Replace fitted arrays; inconsistent ones are refused, consistent ones are used."""
        import numpy as np

        if not self.fitted:
            return
        model = pickle.loads(pickle.dumps(self.model))
        X = self.dense_X(model).astype(model.coefs_[0].dtype)
        dtype = model.coefs_[0].dtype
        consistent = kind in ("scaled", "fortran", "strided", "none")
        if kind == "shorter":
            model.coefs_ = model.coefs_[:-1]
        elif kind == "longer":
            model.intercepts_ = model.intercepts_ + [np.zeros(3, dtype)]
        elif kind == "wrong_shape":
            shape = model.coefs_[0].shape
            model.coefs_[0] = np.ones((shape[0] + 1, shape[1]), dtype)
        elif kind == "float16":
            model.coefs_[-1] = model.coefs_[-1].astype(np.float16)
        elif kind == "list":
            model.intercepts_[0] = model.intercepts_[0].tolist()
        elif kind == "int":
            model.coefs_[0] = np.ones(model.coefs_[0].shape, dtype=np.int64)
        elif kind == "dtype_mix":
            model.coefs_[0] = model.coefs_[0].astype(np.float32 if dtype == np.float64 else np.float64)
        elif kind == "scaled":
            model.coefs_[-1] = model.coefs_[-1] * 2
        elif kind == "fortran":
            model.coefs_[0] = np.asfortranarray(model.coefs_[0])
        elif kind == "strided":
            model.coefs_[0] = np.repeat(model.coefs_[0], 2, axis=1)[:, ::2]
        elif kind == "bn_missing":
            if not model.batch_norm_gamma_:
                return
            model.batch_norm_moving_var_ = model.batch_norm_moving_var_[:-1]
        expected = None
        if consistent:
            reference = pickle.loads(pickle.dumps(self.model))
            if kind == "scaled":
                reference.coefs_[-1][:] *= 2
            with np.errstate(all="ignore"):
                expected = self.outputs(reference, X)
        for what, function in (("predict", lambda: self.outputs(model, X)),
                               ("single-row predict", lambda: self.outputs(model, X[:1]))):
            with np.errstate(all="ignore"):
                ok, got = self.call(f"{what} after tampering ({kind})", function, expect_error=not consistent)
            if consistent and ok:
                rows = expected if what == "predict" else expected[:1]
                _check(np.allclose(got, rows, equal_nan=True, **_row_tolerance(dtype)),
                       f"{what} with consistent replaced arrays ({kind}) differs")
        if not consistent:
            model.set_params(warm_start=True)
            ok, _ = self.call(f"warm start after tampering ({kind})", lambda: model.fit(self.X, self.y),
                              expect_error=True)

    def run(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import numpy as np

            with np.errstate(all="ignore"):
                for name in self.case["steps"]:
                    self.step(name)
        # The kernels flush subnormals to zero only while they run (skdeep.kernels.cpu.subnormals).
        _check(np.float32(1e-30) * np.float32(1e-10) != 0, "the case left flush-to-zero on in this thread")
        return "clear_error" if self.notes and not self.fitted else "ok"


class _Leaked(Exception):
    pass


def run_case(case):
    """``{"outcome", "detail"}`` of one case, in this process."""
    try:
        runner = Runner(case)
    except Exception as exc:  # noqa: BLE001
        return {"outcome": "harness", "detail": "building the case: " + "".join(traceback.format_exception(exc))[-1500:]}
    try:
        outcome = runner.run()
        return {"outcome": outcome, "detail": "; ".join(runner.notes)[:500]}
    except Wrong as exc:
        return {"outcome": "wrong", "detail": str(exc) + _where(exc) + " | " + "; ".join(runner.notes)[:300]}
    except _Leaked as exc:
        return {"outcome": "leaked", "detail": str(exc)[:1500]}
    except Exception as exc:  # noqa: BLE001
        outcome, text = judge_exception(exc)
        return {"outcome": "leaked" if outcome != "wrong" else "wrong",
                "detail": "uncaught in a check: " + text[:1200]}


# ---------------------------------------------------------------------------
# Child processes
# ---------------------------------------------------------------------------


def worker_main():
    """Serve cases from stdin, one JSON line each; answer on the original stdout."""
    protocol = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    import skdeep  # noqa: F401  (load the kernels before the first case)

    protocol.write(json.dumps({"ready": True}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        case = json.loads(line)
        start = time.perf_counter()
        result = run_case(case)
        result["seconds"] = round(time.perf_counter() - start, 3)
        protocol.write(json.dumps(result) + "\n")
        protocol.flush()


class Worker:
    """A child process running cases one by one; restarted when a case kills it."""

    def __init__(self, log=None):
        self.log = log
        self.process = None

    def start(self):
        env = dict(os.environ)
        root = str(HERE.parent)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        stderr = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=root, text=True, bufsize=1,
        )
        ready = self._read(600)
        if ready is None or not ready.get("ready"):
            raise RuntimeError("the fuzz worker did not start")

    def _read(self, timeout):
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.process.stdout.readline()
        return json.loads(line) if line else None

    def run(self, case, timeout=300):
        if self.process is None or self.process.poll() is not None:
            self.start()
        self.process.stdin.write(json.dumps(case) + "\n")
        self.process.stdin.flush()
        result = self._read(timeout)
        if result is None:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
                result = {"outcome": "hang", "detail": f"no answer in {timeout} s"}
            else:
                code = self.process.wait()
                result = {"outcome": "crash", "detail": f"the worker died with exit status {code}"}
            self.process = None
        return result

    def close(self):
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait()
            self.process = None


def fuzz(n_cases, seed=None, log=None, report=print, derandomize=False):
    """Run ``n_cases`` hypothesis-drawn cases; return (counts, failures)."""
    from hypothesis import HealthCheck, Phase, given, settings

    counts = collections.Counter()
    failures = []
    times = []
    worker = Worker(log)
    start = time.time()

    @settings(max_examples=n_cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=derandomize)
    @given(case=cases())
    def one(case):
        result = worker.run(case)
        counts[result["outcome"]] += 1
        times.append((result.get("seconds", 0.0), json.dumps(case)))
        if result["outcome"] not in ("ok", "clear_error"):
            failures.append((case, result))
            report(f"[{result['outcome']}] {result['detail']}\n  case: {json.dumps(case)}")
        total = sum(counts.values())
        if total % 250 == 0:
            report(f"{total} cases in {time.time() - start:.0f} s: {dict(counts)}")

    if seed is not None:
        from hypothesis import seed as hypothesis_seed

        one = hypothesis_seed(seed)(one)
    try:
        one()
    finally:
        worker.close()
    times.sort(reverse=True)
    seconds = [t for t, _ in times]
    if seconds:
        report(f"case time: median {seconds[len(seconds) // 2]:.3f} s, max {seconds[0]:.2f} s; slowest: {times[0][1]}")
    return counts, failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=int(os.environ.get("SKDEEP_FUZZ_CASES", 5000)))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--log", default=None, help="file for the workers' stderr")
    parser.add_argument("--replay", default=None, help="a case as JSON, run here (not in a child)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main()
    if args.replay:
        print(json.dumps(run_case(json.loads(args.replay)), indent=1))
        return 0
    start = time.time()
    counts, failures = fuzz(args.cases, seed=args.seed, log=args.log, report=lambda s: print(s, flush=True))
    print(f"\n{sum(counts.values())} cases in {time.time() - start:.0f} s")
    for outcome in ("ok", "clear_error", *FAILURES, "harness"):
        print(f"  {outcome:12s} {counts.get(outcome, 0)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main())
