"""Same parameters and seed as scikit-learn's MLP give the same model.

Each test fits scikit-learn's estimator and ours and compares the weights,
the loss curve and the predictions.
"""

import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn import neural_network as sk
from sklearn.datasets import load_digits, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

import skdeep


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=200, n_features=8, n_targets=2, noise=1.0, random_state=0)
    return X, y / 100.0


def _fit_both(name, X, y, sample_weight=None, **params):
    models = []
    for module in (sk, skdeep):
        model = getattr(module, name)(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y, sample_weight=sample_weight)
        models.append(model)
    return models


def assert_same_model(ours, theirs, atol=1e-6, rtol=1e-6):
    assert len(ours.coefs_) == len(theirs.coefs_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, atol=atol, rtol=rtol)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=rtol)


SGD_VARIANTS = [
    dict(momentum=0.0),
    dict(momentum=0.9, nesterovs_momentum=False),
    dict(momentum=0.9, nesterovs_momentum=True),
    dict(learning_rate="invscaling", power_t=0.25, learning_rate_init=0.1),
    dict(learning_rate="adaptive", n_iter_no_change=2, tol=0.5),
]


@pytest.mark.parametrize("variant", SGD_VARIANTS)
def test_sgd_classifier(digits, variant):
    X, y = digits
    params = dict(hidden_layer_sizes=(20, 10), solver="sgd", max_iter=12, batch_size=32, random_state=0)
    ours, theirs = _fit_both("MLPClassifier", X, y, **{**params, **variant})
    assert_same_model(ours, theirs)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-8)


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_adam_classifier(digits, activation):
    X, y = digits
    ours, theirs = _fit_both(
        "MLPClassifier", X, y, hidden_layer_sizes=(16, 8), activation=activation,
        max_iter=10, batch_size=50, alpha=1e-3, random_state=1,
    )
    assert_same_model(ours, theirs)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_binary_without_shuffle_with_sample_weight(digits):
    X, y = digits
    y = (y > 4).astype(int)
    sample_weight = np.random.RandomState(0).uniform(0.5, 2.0, size=len(y))
    ours, theirs = _fit_both(
        "MLPClassifier", X, y, sample_weight=sample_weight, hidden_layer_sizes=(12,),
        shuffle=False, max_iter=8, batch_size=64, random_state=2,
    )
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    assert_same_model(ours, theirs)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_early_stopping(digits, solver):
    X, y = digits
    ours, theirs = _fit_both(
        "MLPClassifier", X, y, hidden_layer_sizes=(15,), solver=solver, early_stopping=True,
        validation_fraction=0.2, n_iter_no_change=3, max_iter=60, learning_rate_init=0.05,
        random_state=3,
    )
    assert theirs.n_iter_ < 60, "the scenario must stop early"
    assert_same_model(ours, theirs)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_)


def test_multilabel():
    X, Y = make_multilabel_classification(n_samples=150, n_features=10, n_classes=4, random_state=0)
    ours, theirs = _fit_both(
        "MLPClassifier", X, Y, hidden_layer_sizes=(10,), max_iter=15, batch_size=30, random_state=0
    )
    assert_same_model(ours, theirs)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor(regression, solver, loss):
    X, y = regression
    if loss == "poisson":
        y = np.abs(y[:, 0])
    ours, theirs = _fit_both(
        "MLPRegressor", X, y, loss=loss, solver=solver, hidden_layer_sizes=(12, 6),
        learning_rate_init=0.01, max_iter=15, batch_size=40, random_state=4,
    )
    assert_same_model(ours, theirs)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-6, atol=1e-8)


def test_sparse_input(digits):
    X, y = digits
    ours, theirs = _fit_both(
        "MLPClassifier", sparse.csr_matrix(X), y, hidden_layer_sizes=(10,), max_iter=5, random_state=0
    )
    assert_same_model(ours, theirs)


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_lbfgs_reaches_sklearn_loss(digits, regression, name):
    X, y = digits if name == "MLPClassifier" else regression
    ours, theirs = _fit_both(name, X, y, solver="lbfgs", hidden_layer_sizes=(10,), max_iter=50, random_state=0)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-5)
    assert ours.n_iter_ == theirs.n_iter_


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_float32(digits, solver):
    X, y = digits
    X = X.astype(np.float32)
    ours, theirs = _fit_both(
        "MLPClassifier", X, y, solver=solver, hidden_layer_sizes=(16,), max_iter=5,
        learning_rate_init=0.01, random_state=0,
    )
    assert ours.coefs_[0].dtype == np.float32
    assert ours.predict_proba(X).dtype == np.float32
    assert_same_model(ours, theirs, atol=1e-4, rtol=1e-3)


def test_partial_fit_and_warm_start(digits):
    X, y = digits
    params = dict(hidden_layer_sizes=(10,), random_state=0, batch_size=50)
    ours, theirs = skdeep.MLPClassifier(**params), sk.MLPClassifier(**params)
    for model in (ours, theirs):
        for _ in range(3):
            model.partial_fit(X, y, classes=np.unique(y))
    assert_same_model(ours, theirs)
    for model in (ours, theirs):
        model.set_params(warm_start=True, max_iter=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
    assert_same_model(ours, theirs)
