"""A failed fit never corrupts a model; fitted arrays are checked before compiled code.

Each test reproduces a finding of the crash-proofing issue and failed on the
engine before it.
"""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from threadpoolctl import threadpool_info, threadpool_limits

from skdeep import MLPClassifier, MLPRegressor, _engine, activations
from skdeep.callbacks import Callback, EarlyStopping
from skdeep.initializers import VarianceScaling

rng = np.random.RandomState(0)
X = rng.rand(40, 3)
y_reg = X @ [1.0, -2.0, 0.5]
y_clf = (X[:, 0] > 0.5).astype(int)


def fitted(**params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPRegressor(hidden_layer_sizes=(7,), max_iter=3, random_state=0, **params).fit(X, y_reg)


def snapshot(model):
    return pickle.dumps(model)


def test_failed_refit_with_other_features_leaves_the_model():
    model = fitted()
    before, state = model.predict(X), snapshot(model)
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(rng.rand(40, 5), y_reg, sample_weight=np.ones(39))
    assert model.n_features_in_ == 3
    assert_array_equal(model.predict(X), before)
    assert snapshot(model) == state


def test_failed_refit_with_other_options_leaves_the_model():
    model = fitted()
    before = model.predict(X)
    model.set_params(activation="prelu", kernel_initializer=VarianceScaling(scale=-1.0))
    with pytest.raises(ValueError, match="scale"):
        model.fit(X, y_reg)
    assert model.prelu_alpha_ == []
    assert_array_equal(model.predict(X), before)


def test_failed_first_fit_and_partial_fit_leave_the_model_unfitted():
    model = MLPClassifier()
    with pytest.raises(ValueError):
        model.fit(X, y_clf, sample_weight=np.ones(3))
    with pytest.raises(NotFittedError):
        model.predict(X)
    with pytest.raises(ValueError, match="classes must be passed"):
        model.partial_fit(X, y_clf)
    with pytest.raises(NotFittedError):
        model.predict(X)
    assert not hasattr(model, "classes_")


def test_failed_partial_fit_keeps_the_optimizer_state():
    model = MLPRegressor(hidden_layer_sizes=(5,), random_state=0).partial_fit(X, y_reg)
    state = snapshot(model)
    with pytest.raises(ValueError):
        model.partial_fit(X, y_reg, sample_weight=-np.ones(40) * np.nan)
    assert snapshot(model) == state


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda m: setattr(m, "coefs_", m.coefs_[:1]), "coefs_ must be a list of 2 arrays"),
        (lambda m: m.coefs_.__setitem__(0, np.ones((4, 7))), r"coefs_\[0\] has shape \(4, 7\)"),
        (lambda m: m.coefs_.__setitem__(1, np.ones((7, 1), dtype=np.float16)), "float32 or float64"),
        (lambda m: m.intercepts_.__setitem__(0, [0.0] * 7), "NumPy array"),
        (lambda m: m.coefs_.__setitem__(0, np.ones((3, 7), dtype=np.float32)), "share one dtype"),
        (lambda m: setattr(m, "batch_norm_gamma_", [np.ones(7)]), "batch_norm_gamma_ must be a list of 0"),
    ],
)
def test_inconsistent_fitted_arrays_are_refused(tamper, message):
    model = fitted()
    tamper(model)
    with pytest.raises(ValueError, match=message):
        model.predict(X)
    with pytest.raises(ValueError, match="coefs_|intercepts_|batch_norm_gamma_"):
        model.set_params(warm_start=True).fit(X, y_reg)


def test_consistent_replaced_arrays_are_used():
    model = fitted()
    reference = pickle.loads(pickle.dumps(model))
    model.coefs_[1] = 2 * model.coefs_[1]
    reference.coefs_[1][:] *= 2  # in place, through the views
    assert_array_equal(model.predict(X), reference.predict(X))
    assert_array_equal(model.predict(X[:1]), reference.predict(X[:1]))


def test_pickling_leaves_the_live_object_alone():
    model = fitted()
    pickle.dumps(model)
    assert "_params" in model.__dict__ and model._vectors() is not None


class PickleEveryEpoch(Callback):
    def on_epoch_end(self, estimator, record):
        self.copy_ = pickle.loads(pickle.dumps(estimator))
        return False


def test_pickling_mid_fit_works():
    callback = PickleEveryEpoch()
    model = fitted(callbacks=[callback])
    assert model.n_iter_ == 3
    assert_array_equal(callback.copy_.predict(X), model.predict(X))


@pytest.mark.parametrize("option", [{"batch_norm_input": True}, {"input_dropout": 0.3}])
def test_sparse_prediction_applies_input_batch_norm_and_dropout(option):
    model = fitted(**option)
    X_sparse = sp.csr_matrix(X * (X > 0.3))
    assert_array_equal(model.predict(X_sparse), model.predict(X_sparse.toarray()))
    if "input_dropout" in option:
        _, std = model.predict_mc(X_sparse, n_samples=5, random_state=0)
        assert std.max() > 0


def test_early_stopping_restores_every_array_of_the_best_epoch():
    X_val, y_val = rng.rand(30, 3), rng.rand(30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPRegressor(
            hidden_layer_sizes=(9,), activation="prelu", batch_norm="after", early_stopping=True,
            n_iter_no_change=3, max_iter=30, learning_rate_init=0.05, random_state=0,
        ).fit(X, y_reg, eval_set=(X_val, y_val))
    assert model.score(X_val, y_val) == pytest.approx(model.best_validation_score_, abs=1e-12)


def test_early_stopping_callback_restores_every_array():
    X_val, y_val = rng.rand(30, 3), rng.rand(30)
    callback = EarlyStopping(patience=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPRegressor(
            hidden_layer_sizes=(9,), activation="prelu", batch_norm="before", max_iter=30,
            learning_rate_init=0.05, random_state=0, callbacks=[callback],
        ).fit(X, y_reg, eval_set=(X_val, y_val))
    assert model.score(X_val, y_val) == pytest.approx(callback.best_, abs=1e-12)


@pytest.mark.parametrize("name", ["Identity", "Logistic", "Tanh", "ReLU", "SELU", "GELU", "Swish"])
def test_activation_objects_without_hyperparameters_fit(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fitted(activation=getattr(activations, name)())
    assert np.isfinite(model.predict(X)).all()


def test_warm_start_may_switch_early_stopping_and_solver():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = fitted(solver="lbfgs")
        model.set_params(warm_start=True, solver="adam").fit(X, y_reg)
        model.set_params(early_stopping=True).fit(X, y_reg)
        assert model.best_validation_score_ is not None and len(model.validation_scores_) > 0
        model.set_params(early_stopping=False).fit(X, y_reg)
    assert np.isfinite(model.best_loss_)


def test_sparse_targets_for_the_regressor():
    Y = np.c_[y_reg, y_reg * (y_reg > 0)]
    dense = fitted().fit(X, Y).predict(X)
    assert_array_equal(fitted().fit(X, sp.csr_matrix(Y)).predict(X), dense)


def test_partial_fit_validates_parameters_every_call():
    model = MLPRegressor(hidden_layer_sizes=(5,)).partial_fit(X, y_reg)
    model.set_params(batch_norm=True)
    with pytest.raises(ValueError, match="batch_norm"):
        model.partial_fit(X, y_reg)


def test_partial_fit_with_early_stopping_raises_like_scikit_learn():
    model = MLPRegressor(early_stopping=True)
    assert hasattr(model, "partial_fit")
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        model.partial_fit(X, y_reg)


def test_divergence_with_early_stopping_returns_the_best_model():
    huge = X * 1e150
    with pytest.warns(ConvergenceWarning, match="diverged"):
        model = MLPRegressor(
            solver="sgd", learning_rate_init=10.0, early_stopping=True, max_iter=5, random_state=0,
        ).fit(huge, y_reg)
    assert np.isnan(model.validation_scores_[-1])
    assert all(np.isfinite(c).all() for c in model.coefs_)


def test_divergence_keeps_the_last_finite_weights():
    with pytest.raises(ValueError, match="non-finite"):
        MLPRegressor(solver="sgd", learning_rate_init=10.0, max_iter=5, random_state=0).fit(X * 1e150, y_reg)


def test_blas_threads_only_lowered():
    small = _engine.network([3, 7, 1], np.float64, fitted()._architecture)
    big = _engine.network([2000, 2000, 1], np.float64, fitted()._architecture)
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    with threadpool_limits(limits=2, user_api="blas"):
        limit = _engine.blas_threads(small, 32)
        assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {1}
        limit.restore_original_limits()
        limit = _engine.blas_threads(big, 256)
        assert max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas") <= 2
        limit.restore_original_limits()
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == [
        i["num_threads"] for i in blas
    ]


ISSUE_REPRODUCTIONS = """
import numpy as np
from skdeep import MLPRegressor
from skdeep.initializers import VarianceScaling
X = np.random.rand(5, 1); y = X[:, 0]
m = MLPRegressor(hidden_layer_sizes=(2_000_000,), max_iter=1).fit(X, y)
X2 = np.random.rand(5, 2)
try: m.fit(X2, y, sample_weight=np.ones(4))
except ValueError: pass
try: m.predict(X2)
except ValueError as exc: assert "features" in str(exc), exc
else: raise AssertionError("predicted on 2 features with a 1-feature model")
assert np.isfinite(m.predict(X)).all()
m = MLPRegressor(hidden_layer_sizes=(2_000_000,), max_iter=1).fit(X, y)
before = m.predict(X)
try: m.set_params(activation="prelu", kernel_initializer=VarianceScaling(scale=-1.0)).fit(X, y)
except ValueError: pass
assert np.array_equal(m.predict(X), before)
print("survived")
"""


def test_the_issues_segfault_reproductions_in_a_child_process():
    """Both reproductions of the crash-proofing issue (SIGSEGV before), verbatim, in a child."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-W", "ignore", "-c", ISSUE_REPRODUCTIONS],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "survived" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("labels, message", [
    (["a", 1, "b", 2], "Mix of label input types"),
    ([None, 1, 2, None], "sortable"),
])
def test_unsortable_labels_raise_a_clear_error(labels, message):
    y = np.array(labels * 10, dtype=object)
    with pytest.raises(ValueError, match=message):
        MLPClassifier(max_iter=1).fit(X, y)


def test_unsortable_labels_in_partial_fit_raise_a_clear_error():
    y = np.array(["a", 1, "b", 2] * 10, dtype=object)
    with pytest.raises(ValueError, match="Mix of label input types"):
        MLPClassifier().partial_fit(X, y, classes=np.unique(y.astype(str)))
    with pytest.raises(ValueError, match="Mix of label input types"):
        MLPClassifier().partial_fit(X, y_clf, classes=np.array([0, "a"], dtype=object))
