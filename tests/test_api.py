"""Behaviour users rely on: fitted attributes, outputs, weights, persistence, tooling."""

import io
import pickle
import warnings
from contextlib import redirect_stdout
from copy import deepcopy

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import (
    load_iris,
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

import skdeep
from skdeep import MLPClassifier, MLPRegressor, _backend

SMALL = {"hidden_layer_sizes": (6,), "max_iter": 5, "random_state": 0}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Stochastic Optimizer")
        warnings.filterwarnings("ignore", message="lbfgs failed to converge")
        yield


def _binary(n_samples=60, n_features=5, weights=None):
    return make_classification(
        n_samples, n_features, n_informative=3, n_redundant=0, weights=weights, random_state=0
    )


def _iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X)[::3], y[::3]  # 50 samples, 3 classes


def _regression(n_samples=60, n_features=5, n_targets=1):
    X, y = make_regression(n_samples, n_features, n_targets=n_targets, random_state=0)
    return X, y / np.abs(y).max()


def _multilabel():
    return make_multilabel_classification(60, 5, n_classes=3, random_state=0)


def _assert_same_weights(a, b, rtol=1e-7, atol=0.0):
    assert len(a.coefs_) == len(b.coefs_)
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def _weights_differ(a, b, atol=1e-6):
    return any(
        not np.allclose(x, y, rtol=0, atol=atol)
        for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_)
    )


# -- the public surface --------------------------------------------------------------


@pytest.mark.parametrize(
    "ours, theirs", [(MLPClassifier, SkMLPClassifier), (MLPRegressor, SkMLPRegressor)]
)
def test_same_parameters_and_defaults_as_sklearn(ours, theirs):
    """Every scikit-learn parameter exists with the same default (extras are allowed)."""
    params = ours().get_params()
    expected = theirs().get_params()
    assert {name: params.get(name, "<missing>") for name in expected} == expected
    if ours is MLPClassifier:
        assert params["class_weight"] is None
    # scikit-learn's positional parameters keep their positions
    import inspect

    ours_sig = [p.name for p in inspect.signature(ours).parameters.values() if p.kind == p.POSITIONAL_OR_KEYWORD]
    theirs_sig = [p.name for p in inspect.signature(theirs).parameters.values() if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert ours_sig == theirs_sig


def test_public_names():
    assert {"MLPClassifier", "MLPRegressor", "__version__"} <= set(skdeep.__all__)
    assert all(hasattr(skdeep, name) for name in skdeep.__all__)
    assert isinstance(skdeep.__version__, str)


def test_set_params_and_repr():
    est = MLPClassifier().set_params(hidden_layer_sizes=(3, 2), alpha=0.5, class_weight="balanced")
    assert est.get_params()["hidden_layer_sizes"] == (3, 2)
    assert "class_weight='balanced'" in repr(est)


# -- fitted attributes -----------------------------------------------------------------


def test_binary_attributes():
    X, y = _binary()
    est = MLPClassifier(**SMALL, solver="sgd").fit(X, y)
    np.testing.assert_array_equal(est.classes_, [0, 1])
    assert est.n_outputs_ == 1
    assert est.out_activation_ == "logistic"
    assert est.n_layers_ == 3
    assert est.n_features_in_ == 5
    assert [c.shape for c in est.coefs_] == [(5, 6), (6, 1)]
    assert [b.shape for b in est.intercepts_] == [(6,), (1,)]
    assert est.n_iter_ == 5
    assert est.t_ == 5 * 60
    assert len(est.loss_curve_) == 5
    assert est.loss_ == est.loss_curve_[-1]
    assert est.best_loss_ == min(est.loss_curve_)
    assert est.validation_scores_ is None and est.best_validation_score_ is None
    assert est.predict_proba(X).shape == (60, 2)
    assert est.predict(X).shape == (60,)


def test_multiclass_attributes():
    X, y = _iris()
    est = MLPClassifier(**SMALL).fit(X, y)
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    assert est.n_outputs_ == 3
    assert est.out_activation_ == "softmax"
    assert est.coefs_[-1].shape == (6, 3)
    assert est.predict_proba(X).shape == (50, 3)


def test_string_labels():
    X, y = _iris()
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    est = MLPClassifier(**SMALL).fit(X, names)
    np.testing.assert_array_equal(est.classes_, ["setosa", "versicolor", "virginica"])
    pred = est.predict(X)
    assert set(pred) <= set(est.classes_)
    np.testing.assert_array_equal(pred, est.classes_[est.predict_proba(X).argmax(axis=1)])
    # binary strings
    est = MLPClassifier(**SMALL).fit(X, np.where(y == 0, "yes", "no"))
    np.testing.assert_array_equal(est.classes_, ["no", "yes"])
    assert est.out_activation_ == "logistic" and est.n_outputs_ == 1


def test_lbfgs_attributes():
    X, y = _binary()
    est = MLPClassifier(**SMALL, solver="lbfgs").fit(X, y)
    assert 1 <= est.n_iter_ <= 5
    assert np.isfinite(est.loss_)
    assert not hasattr(est, "loss_curve_")


def test_early_stopping_attributes():
    X, y = _binary(n_samples=100)
    est = MLPClassifier(**{**SMALL, "max_iter": 8}, early_stopping=True).fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.best_loss_ is None
    assert len(est.loss_curve_) == est.n_iter_


@pytest.mark.parametrize("sizes, expected", [(4, [4]), ((), []), ([3, 2], [3, 2]), (np.array([3, 2]), [3, 2])])
def test_hidden_layer_sizes_forms(sizes, expected):
    X, y = _regression()
    est = MLPRegressor(hidden_layer_sizes=sizes, max_iter=3, random_state=0).fit(X, y)
    assert [c.shape[1] for c in est.coefs_[:-1]] == expected
    assert est.n_layers_ == len(expected) + 2
    assert est.predict(X).shape == (60,)


def test_regressor_attributes():
    X, y = _regression()
    est = MLPRegressor(**SMALL).fit(X, y)
    assert est.n_outputs_ == 1
    assert est.out_activation_ == "identity"
    assert est.predict(X).shape == (60,)
    assert not hasattr(est, "classes_")
    est = MLPRegressor(**SMALL, loss="poisson").fit(X, np.abs(y))
    assert est.out_activation_ == "exp"
    assert (est.predict(X) > 0).all()


def test_multi_output_regression():
    X, Y = _regression(n_targets=3)
    for solver in ("lbfgs", "adam"):
        est = MLPRegressor(**SMALL, solver=solver).fit(X, Y)
        assert est.n_outputs_ == 3
        assert est.coefs_[-1].shape == (6, 3)
        assert est.predict(X).shape == (60, 3)
        assert est.predict(X[:1]).shape == (1, 3)
        assert np.isfinite(est.score(X, Y))


def test_multilabel_classification():
    X, Y = _multilabel()
    for solver in ("lbfgs", "sgd"):
        est = MLPClassifier(**SMALL, solver=solver).fit(X, Y)
        assert est.n_outputs_ == 3
        assert est.out_activation_ == "logistic"
        np.testing.assert_array_equal(est.classes_, [0, 1, 2])
        pred = est.predict(X)
        assert pred.shape == (60, 3)
        assert set(np.unique(pred)) <= {0, 1}
        proba = est.predict_proba(X)
        assert proba.shape == (60, 3)
        assert ((proba >= 0) & (proba <= 1)).all()
        np.testing.assert_array_equal(pred, (proba > 0.5).astype(pred.dtype))
    est = MLPClassifier(hidden_layer_sizes=(20,), solver="lbfgs", max_iter=300, random_state=0).fit(X, Y)
    assert est.score(X, Y) > 0.5


# -- probabilities ---------------------------------------------------------------------


@pytest.mark.parametrize("data", [_binary, _iris])
def test_probabilities(data):
    X, y = data()
    est = MLPClassifier(**SMALL).fit(X, y)
    proba = est.predict_proba(X)
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(proba), rtol=1e-12)
    np.testing.assert_array_equal(est.predict(X), est.classes_[proba.argmax(axis=1)])
    assert est.score(X, y) == np.mean(est.predict(X) == y)


def test_predict_many_rows_in_chunks():
    """Predictions of a long input equal predictions of its pieces (kernel chunking)."""
    X, y = _iris()
    est = MLPClassifier(**SMALL).fit(X, y)
    rng = np.random.RandomState(0)
    Xbig = rng.normal(size=(2500, X.shape[1]))
    whole = est.predict_proba(Xbig)
    pieces = np.vstack([est.predict_proba(Xbig[i : i + 300]) for i in range(0, 2500, 300)])
    np.testing.assert_allclose(whole, pieces, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(est.predict_proba(Xbig[7:8]), whole[7:8], rtol=1e-12, atol=1e-15)


# -- sparse input and dtypes ----------------------------------------------------------------


@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_sparse_gives_the_dense_model(solver, fmt, task):
    X, y = {"binary": _binary, "multiclass": _iris, "regression": _regression}[task]()
    X = np.where(np.abs(X) < 0.5, 0.0, X)  # real zeros
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    cls = MLPRegressor if task == "regression" else MLPClassifier
    dense = cls(**SMALL, solver=solver).fit(X, y)
    sparse = cls(**SMALL, solver=solver).fit(Xs, y)
    _assert_same_weights(dense, sparse, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(sparse.predict(Xs) if task == "regression" else sparse.predict_proba(Xs),
                               dense.predict(X) if task == "regression" else dense.predict_proba(X),
                               rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("cls, data", [(MLPClassifier, _iris), (MLPRegressor, _regression), (MLPClassifier, _binary)])
@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_float32_stays_float32(cls, data, solver):
    X, y = data()
    X32 = X.astype(np.float32)
    est = cls(**SMALL, solver=solver).fit(X32, y)
    assert all(a.dtype == np.float32 for a in est.coefs_ + est.intercepts_)
    out = est.predict_proba(X32) if cls is MLPClassifier else est.predict(X32)
    assert out.dtype == np.float32
    if solver != "lbfgs":
        assert all(isinstance(v, float) for v in est.loss_curve_)
    # the same from sparse float32
    est_sparse = cls(**SMALL, solver=solver).fit(sp.csr_matrix(X32), y)
    assert est_sparse.coefs_[0].dtype == np.float32
    # and float64 stays float64
    est = cls(**SMALL, solver=solver).fit(X, y)
    assert all(a.dtype == np.float64 for a in est.coefs_ + est.intercepts_)
    out = est.predict_proba(X) if cls is MLPClassifier else est.predict(X)
    assert out.dtype == np.float64


def test_float32_model_close_to_float64_model():
    X, y = _regression()
    est64 = MLPRegressor(**SMALL, solver="sgd").fit(X, y)
    est32 = MLPRegressor(**SMALL, solver="sgd").fit(X.astype(np.float32), y)
    _assert_same_weights(est64, est32, rtol=1e-3, atol=1e-4)


def test_int_X_is_float64():
    X, y = _binary()
    Xint = np.round(X * 10).astype(np.int64)
    est = MLPClassifier(**SMALL).fit(Xint, y)
    assert est.coefs_[0].dtype == np.float64
    ref = MLPClassifier(**SMALL).fit(Xint.astype(np.float64), y)
    _assert_same_weights(est, ref, rtol=0)


# -- class and sample weights ------------------------------------------------------------


def test_class_weight_changes_the_model():
    X, y = _binary(weights=[0.8])
    base = MLPClassifier(**SMALL).fit(X, y)
    assert _weights_differ(base, MLPClassifier(**SMALL, class_weight={0: 1.0, 1: 5.0}).fit(X, y))
    assert _weights_differ(base, MLPClassifier(**SMALL, class_weight="balanced").fit(X, y))
    # unit weights change nothing
    _assert_same_weights(base, MLPClassifier(**SMALL, class_weight={0: 1.0, 1: 1.0}).fit(X, y), rtol=0)


def test_class_weight_favours_the_weighted_class():
    X, y = _binary(n_samples=80, weights=[0.85])
    params = {"hidden_layer_sizes": (8,), "solver": "lbfgs", "max_iter": 200, "random_state": 0}
    base = MLPClassifier(**params).fit(X, y).predict_proba(X)[:, 1].mean()
    heavy = MLPClassifier(**params, class_weight={0: 1.0, 1: 20.0}).fit(X, y).predict_proba(X)[:, 1].mean()
    assert heavy > base


@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
@pytest.mark.parametrize("data", [_binary, _iris])
def test_balanced_equals_its_sample_weight(solver, data):
    X, y = data()
    if data is _binary:
        X, y = _binary(weights=[0.75])
    balanced = MLPClassifier(**SMALL, solver=solver, class_weight="balanced").fit(X, y)
    weighted = MLPClassifier(**SMALL, solver=solver).fit(
        X, y, sample_weight=compute_sample_weight("balanced", y)
    )
    _assert_same_weights(balanced, weighted, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_class_weight_dict_multiplies_sample_weight(solver):
    X, y = _iris()
    class_weight = {0: 0.5, 1: 2.0, 2: 3.0}
    sw = np.linspace(0.2, 3.0, len(y))
    combined = MLPClassifier(**SMALL, solver=solver, class_weight=class_weight).fit(X, y, sample_weight=sw)
    product = MLPClassifier(**SMALL, solver=solver).fit(
        X, y, sample_weight=sw * np.array([class_weight[c] for c in y])
    )
    _assert_same_weights(combined, product, rtol=1e-10, atol=1e-12)


def test_class_weight_with_string_labels():
    X, y = _binary(weights=[0.7])
    labels = np.where(y == 1, "pos", "neg")
    a = MLPClassifier(**SMALL, class_weight={"neg": 1.0, "pos": 4.0}).fit(X, labels)
    b = MLPClassifier(**SMALL).fit(X, y, sample_weight=np.where(y == 1, 4.0, 1.0))
    _assert_same_weights(a, b, rtol=1e-10, atol=1e-12)


def test_balanced_class_weight_with_sample_weight():
    """'balanced' times sample_weight: class totals are counted with the weights."""
    X, y = _binary(weights=[0.7])
    sw = np.linspace(0.5, 2.0, len(y))
    a = MLPClassifier(**SMALL, class_weight="balanced").fit(X, y, sample_weight=sw)
    cw = compute_class_weight("balanced", classes=np.unique(y), y=y, sample_weight=sw)
    b = MLPClassifier(**SMALL).fit(X, y, sample_weight=sw * cw[y])
    _assert_same_weights(a, b, rtol=1e-10, atol=1e-12)
    assert _weights_differ(a, MLPClassifier(**SMALL, class_weight="balanced").fit(X, y))


def test_multilabel_class_weight():
    X, Y = _multilabel()
    class_weight = [{0: 1.0, 1: 2.0}, {0: 1.0, 1: 0.5}, {0: 3.0, 1: 1.0}]
    a = MLPClassifier(**SMALL, class_weight=class_weight).fit(X, Y)
    b = MLPClassifier(**SMALL).fit(X, Y, sample_weight=compute_sample_weight(class_weight, Y))
    _assert_same_weights(a, b, rtol=1e-10, atol=1e-12)


def _duplicate_rows(X, y, rows):
    return np.concatenate([X, X[rows]]), np.concatenate([y, y[rows]])


@pytest.mark.parametrize(
    "cls, data, params",
    [
        (MLPClassifier, _iris, {}),
        (MLPClassifier, _binary, {"class_weight": "balanced"}),
        (MLPRegressor, _regression, {}),
    ],
)
def test_sample_weight_two_equals_duplicated_rows(cls, data, params):
    X, y = data()
    rows = np.arange(0, len(y), 3)
    sw = np.ones(len(y))
    sw[rows] = 2.0
    kw = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=30, random_state=0, tol=0.0, **params)
    weighted = cls(**kw).fit(X, y, sample_weight=sw)
    duplicated = cls(**kw).fit(*_duplicate_rows(X, y, rows))
    _assert_same_weights(weighted, duplicated, rtol=1e-6, atol=1e-8)
    assert _weights_differ(weighted, cls(**kw).fit(X, y))


def test_sample_weight_ones_equals_none():
    X, y = _iris()
    for solver in ("lbfgs", "sgd", "adam"):
        a = MLPClassifier(**SMALL, solver=solver).fit(X, y)
        b = MLPClassifier(**SMALL, solver=solver).fit(X, y, sample_weight=np.ones(len(y)))
        _assert_same_weights(a, b, rtol=0)


def test_zero_sample_weight_ignores_rows():
    X, y = _regression()
    sw = np.ones(len(y))
    sw[::4] = 0.0
    kw = {"hidden_layer_sizes": (5,), "solver": "lbfgs", "max_iter": 30, "random_state": 0}
    a = MLPRegressor(**kw).fit(X, y, sample_weight=sw)
    b = MLPRegressor(**kw).fit(X[sw > 0], y[sw > 0])
    _assert_same_weights(a, b, rtol=1e-6, atol=1e-8)


# -- warm start ------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_warm_start_continues(solver):
    X, y = _iris()
    est = MLPClassifier(**SMALL, solver=solver, warm_start=True).fit(X, y)
    first = [a.copy() for a in est.coefs_ + est.intercepts_]
    est.set_params(max_iter=1)
    est.fit(X, y)
    fresh = MLPClassifier(**{**SMALL, "max_iter": 1}, solver=solver).fit(X, y)
    assert _weights_differ(est, fresh)
    # it moved from the first fit's weights, by less than a fresh start is away from them
    step = max(np.abs(a - b).max() for a, b in zip(est.coefs_ + est.intercepts_, first))
    away = max(np.abs(a - b).max() for a, b in zip(fresh.coefs_ + fresh.intercepts_, first))
    assert 0 < step < away
    # the same second fit, started by hand from the first fit's weights, is identical
    other = MLPClassifier(**{**SMALL, "max_iter": 1}, solver=solver, warm_start=True).fit(X, y)
    other.coefs_ = [a.copy() for a in first[: len(est.coefs_)]]
    other.intercepts_ = [a.copy() for a in first[len(est.coefs_) :]]
    other.fit(X, y)
    _assert_same_weights(est, other, rtol=0)


def test_warm_start_false_restarts():
    X, y = _iris()
    est = MLPClassifier(**SMALL).fit(X, y)
    again = clone(est).fit(X, y)
    est.fit(X, y)
    _assert_same_weights(est, again, rtol=0)


@pytest.mark.parametrize("cls, data", [(MLPClassifier, _iris), (MLPRegressor, _regression)])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_warm_start_from_assigned_weights(cls, data, solver):
    X, y = data()
    est = cls(**SMALL, solver=solver, warm_start=True).fit(X, y)
    rng = np.random.RandomState(42)
    coefs = [rng.uniform(-1, 1, c.shape) for c in est.coefs_]
    intercepts = [rng.uniform(-1, 1, b.shape) for b in est.intercepts_]
    est.coefs_, est.intercepts_ = [c.copy() for c in coefs], [b.copy() for b in intercepts]
    # predictions use the assigned weights
    hidden = np.maximum(X @ coefs[0] + intercepts[0], 0)
    raw = hidden @ coefs[1] + intercepts[1]
    if cls is MLPRegressor:
        np.testing.assert_allclose(est.predict(X), raw.ravel(), rtol=1e-12)
    else:
        proba = np.exp(raw - raw.max(axis=1, keepdims=True))
        np.testing.assert_allclose(est.predict_proba(X), proba / proba.sum(axis=1, keepdims=True), rtol=1e-10)
    if solver == "lbfgs":
        est.set_params(max_iter=1, max_fun=2)
    else:
        est.set_params(max_iter=1, learning_rate_init=1e-8)
    est.fit(X, y)
    for new, old in zip(est.coefs_ + est.intercepts_, coefs + intercepts):
        if solver == "lbfgs":
            assert np.abs(new - old).max() < 0.5
        else:
            np.testing.assert_allclose(new, old, rtol=0, atol=1e-6)


# -- partial_fit -----------------------------------------------------------------------------


def test_partial_fit_classifier():
    X, y = _iris()
    est = MLPClassifier(**SMALL, solver="sgd", learning_rate_init=0.1)
    first = y != 2
    est.partial_fit(X[first], y[first], classes=[0, 1, 2])
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    assert est.out_activation_ == "softmax"
    assert est.predict_proba(X).shape == (50, 3)
    assert est.n_iter_ == 1 and est.t_ == first.sum()
    losses = []
    for _ in range(20):
        est.partial_fit(X, y)
        losses.append(est.loss_)
        assert est.n_iter_ == 1
    assert est.t_ == first.sum() + 20 * len(y)
    assert losses[-1] < losses[0]
    assert len(est.loss_curve_) == 21


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_equals_fit_epochs(solver):
    X, y = _iris()
    kw = dict(SMALL, solver=solver, shuffle=False, tol=0.0, n_iter_no_change=100)
    fitted = MLPClassifier(**{**kw, "max_iter": 4}).fit(X, y)
    est = MLPClassifier(**kw)
    for _ in range(4):
        est.partial_fit(X, y, classes=[0, 1, 2])
    _assert_same_weights(fitted, est, rtol=1e-12)
    # one shuffled epoch too
    fitted = MLPClassifier(**{**SMALL, "max_iter": 1}, solver=solver).fit(X, y)
    est = MLPClassifier(**SMALL, solver=solver).partial_fit(X, y, classes=np.unique(y))
    _assert_same_weights(fitted, est, rtol=1e-12)


def test_partial_fit_regressor():
    X, y = _regression()
    est = MLPRegressor(**SMALL, solver="sgd", learning_rate_init=0.01)
    losses = []
    for _ in range(15):
        est.partial_fit(X, y)
        losses.append(est.loss_)
    assert est.n_outputs_ == 1 and est.out_activation_ == "identity"
    assert losses[-1] < losses[0]
    assert est.predict(X).shape == (60,)
    X2, Y2 = _regression(n_targets=2)
    est = MLPRegressor(**SMALL, solver="adam").partial_fit(X2, Y2)
    assert est.predict(X2).shape == (60, 2)


def test_partial_fit_after_fit_continues():
    X, y = _regression()
    est = MLPRegressor(**{**SMALL, "max_iter": 30}, solver="sgd", learning_rate_init=0.01).fit(X, y)
    before = [a.copy() for a in est.coefs_]
    loss = est.loss_
    est.partial_fit(X, y)
    assert est.loss_ < 2 * loss
    for a, b in zip(est.coefs_, before):
        np.testing.assert_allclose(a, b, atol=0.1)


# -- persistence -------------------------------------------------------------------------------


def _weights_nbytes(est):
    return sum(a.nbytes for a in est.coefs_ + est.intercepts_)


@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
def test_pickle_round_trip(solver):
    X, y = _binary(n_features=40)
    est = MLPClassifier(hidden_layer_sizes=(300,), solver=solver, max_iter=2, random_state=0).fit(X, y)
    data = pickle.dumps(est)
    loaded = pickle.loads(data)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert all(type(a) is np.ndarray for a in loaded.coefs_ + loaded.intercepts_)
    _assert_same_weights(loaded, est, rtol=0)
    # the pickle holds the weights once, plus the optimizer's slots (momentum,
    # moments) that partial_fit continues from, and little else
    n_slots = {"lbfgs": 0, "sgd": 1, "adam": 2}[solver]
    size, weights = len(data), _weights_nbytes(est)
    assert size < (1 + n_slots) * weights * 1.05 + 20_000, f"pickle is {size} bytes for {weights} bytes of weights"
    # an unpickled model keeps working: new weights, refit, partial_fit
    loaded.coefs_[0][:] = 0.0
    assert np.allclose(loaded.predict_proba(X), loaded.predict_proba(X[::-1])[::-1])
    np.testing.assert_array_equal(est.predict_proba(X), pickle.loads(data).predict_proba(X))
    if solver != "lbfgs":
        loaded = pickle.loads(data)
        loaded.partial_fit(X, y)
        assert np.isfinite(loaded.predict_proba(X)).all()


def test_deepcopy_is_independent():
    X, y = _iris()
    est = MLPClassifier(**SMALL).fit(X, y)
    expected = est.predict_proba(X)
    copy = deepcopy(est)
    np.testing.assert_array_equal(copy.predict_proba(X), expected)
    copy.coefs_[0][:] = 0.0
    copy.intercepts_[-1][:] = 1.0
    np.testing.assert_array_equal(est.predict_proba(X), expected)
    assert not np.allclose(copy.predict_proba(X), expected)


def test_pickle_regressor_and_unfitted():
    X, y = _regression(n_targets=2)
    est = MLPRegressor(**SMALL).fit(X, y)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    unfitted = pickle.loads(pickle.dumps(MLPRegressor(alpha=0.3)))
    assert unfitted.alpha == 0.3 and not hasattr(unfitted, "coefs_")


def test_pickle_float32():
    X, y = _iris()
    est = MLPClassifier(**SMALL).fit(X.astype(np.float32), y)
    loaded = pickle.loads(pickle.dumps(est))
    assert loaded.coefs_[0].dtype == np.float32
    np.testing.assert_array_equal(loaded.predict_proba(X.astype(np.float32)), est.predict_proba(X.astype(np.float32)))


def test_joblib_round_trip(tmp_path):
    X, y = _iris()
    est = MLPClassifier(**SMALL).fit(X, y)
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    assert all(isinstance(a, np.ndarray) for a in loaded.coefs_)
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict(X), est.predict(X))


# -- scikit-learn tooling ------------------------------------------------------------------


def test_clone():
    X, y = _iris()
    est = MLPClassifier(**SMALL, class_weight="balanced").fit(X, y)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "coefs_")
    copy.fit(X, y)
    _assert_same_weights(copy, est, rtol=0)


def test_grid_search_parallel():
    X, y = _iris()
    search = GridSearchCV(
        MLPClassifier(solver="lbfgs", max_iter=20, random_state=0),
        {"hidden_layer_sizes": [(3,), (6,)], "alpha": [1e-4, 1e-1]},
        cv=2,
        n_jobs=2,
    )
    search.fit(X, y)
    assert search.best_params_["hidden_layer_sizes"] in [(3,), (6,)]
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert best.coefs_[0].shape[1] == best.hidden_layer_sizes[0]
    assert search.predict(X).shape == (50,)
    # the same search in one process gives the same scores
    serial = clone(search).set_params(n_jobs=1).fit(X, y)
    np.testing.assert_allclose(serial.cv_results_["mean_test_score"], search.cv_results_["mean_test_score"])


def test_pipeline():
    X, y = _iris()
    X = X * 100 + 5
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(10,), solver="lbfgs", max_iter=200, random_state=0))
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.9
    assert pipe.predict_proba(X).shape == (50, 3)
    Xr, yr = _regression()
    pipe = make_pipeline(StandardScaler(), MLPRegressor(**SMALL)).fit(Xr * 10, yr)
    assert pipe.predict(Xr * 10).shape == (60,)
    pipe.set_params(mlpregressor__alpha=0.5)
    assert pipe.get_params()["mlpregressor__alpha"] == 0.5


def test_score_with_sample_weight():
    X, y = _regression()
    est = MLPRegressor(**SMALL).fit(X, y)
    sw = np.linspace(0, 1, len(y))
    from sklearn.metrics import r2_score

    assert est.score(X, y, sample_weight=sw) == pytest.approx(r2_score(y, est.predict(X), sample_weight=sw))


def test_random_state_instance():
    X, y = _iris()
    a = MLPClassifier(**{**SMALL, "random_state": np.random.RandomState(0)}).fit(X, y)
    b = MLPClassifier(**SMALL).fit(X, y)
    _assert_same_weights(a, b, rtol=0)
    # the instance is consumed: fitting again gives another model, as in scikit-learn
    assert _weights_differ(a, clone(a, safe=False).fit(X, y))


def test_n_iter_no_change_infinite_runs_every_epoch():
    X, y = _iris()
    est = MLPClassifier(**{**SMALL, "max_iter": 12}, tol=1e3, n_iter_no_change=np.inf).fit(X, y)
    assert est.n_iter_ == 12
    est = MLPClassifier(**{**SMALL, "max_iter": 12}, tol=1e3, n_iter_no_change=2).fit(X, y)
    assert est.n_iter_ < 12


def test_predict_from_threads():
    from concurrent.futures import ThreadPoolExecutor

    X, y = _iris()
    est = MLPClassifier(**SMALL).fit(X, y)
    rng = np.random.RandomState(0)
    inputs = [rng.normal(size=(300, X.shape[1])) for _ in range(8)]
    expected = [est.predict_proba(x) for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(est.predict_proba, inputs))
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_verbose_prints_progress():
    X, y = _iris()
    out = io.StringIO()
    with redirect_stdout(out):
        MLPClassifier(**SMALL, verbose=True).fit(X, y)
    assert "Iteration 1, loss = " in out.getvalue()
    assert out.getvalue().count("Iteration") == 5


# -- Ctrl-C --------------------------------------------------------------------------------------


def _interrupt_on_call(monkeypatch, n):
    backend = _backend.get("cpu")
    original = backend.train_epoch
    calls = []

    def train_epoch(*args):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(backend, "train_epoch", train_epoch)
    return calls


@pytest.mark.parametrize(
    "cls, data, params",
    [
        (MLPClassifier, _iris, {}),
        (MLPRegressor, _regression, {"solver": "sgd"}),
        (MLPClassifier, _binary, {"early_stopping": True}),
    ],
)
def test_keyboard_interrupt_stops_fit(monkeypatch, cls, data, params):
    X, y = data()
    calls = _interrupt_on_call(monkeypatch, 3)
    est = cls(**{**SMALL, "max_iter": 50}, **params)
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        returned = est.fit(X, y)
    assert returned is est
    assert len(calls) == 3
    assert est.n_iter_ == 2
    assert len(est.loss_curve_) == 2
    assert all(np.isfinite(a).all() for a in est.coefs_ + est.intercepts_)
    pred = est.predict(X)
    assert pred.shape == y.shape
    if cls is MLPClassifier:
        np.testing.assert_allclose(est.predict_proba(X).sum(axis=1), 1.0)
    # and the model can keep training afterwards
    monkeypatch.undo()
    est.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert est.n_iter_ == 2
