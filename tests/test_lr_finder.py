"""lr_find: an exponentially growing rate on a clone, never on the user's model."""

import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_regression

import skdeep
from skdeep import MLPClassifier, MLPRegressor, lr_find
from skdeep.optimizers import SGD
from skdeep.schedules import OneCycle


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


def test_rates_grow_exponentially_and_loss_explodes(digits):
    X, y = digits
    result = lr_find(MLPClassifier((32,), random_state=0, batch_size=32), X, y, random_state=0)
    rates = result.learning_rates
    assert rates[0] == pytest.approx(1e-6)
    np.testing.assert_allclose(np.diff(np.log(rates)), np.log(1e7) / 99)
    assert len(result.losses) == len(result.smoothed_losses) == len(rates) <= 100
    assert result.diverged and len(rates) < 100
    smoothed = result.smoothed_losses
    assert smoothed[-1] > min(4 * smoothed.min(), smoothed[0])
    assert result.suggested_lr == pytest.approx(result.lr_min / 10)
    assert result.one_cycle_max_lr == pytest.approx(result.lr_min / 3)
    assert rates[0] <= result.lr_steepest <= result.lr_min
    # the loss falls from its start before it explodes
    assert result.smoothed_losses.min() < 0.5 * result.losses[0]


def test_never_touches_the_estimator(digits):
    X, y = digits
    unfitted = MLPClassifier((16,), random_state=0, learning_rate=OneCycle(0.1))
    params = unfitted.get_params()
    lr_find(unfitted, X, y, num_steps=20)
    assert not hasattr(unfitted, "coefs_") and unfitted.get_params() == params
    fitted = MLPClassifier((16,), random_state=0, max_iter=3).fit(X, y)
    before = pickle.dumps(fitted)
    lr_find(fitted, X, y, num_steps=20)
    assert pickle.dumps(fitted) == before


@pytest.mark.parametrize("solver", ["sgd", "adam", "nadam", "adamax", "adamw", "adagrad", "rmsprop", "ftrl", SGD(momentum=0.9)])
def test_every_stochastic_solver(digits, solver):
    X, y = digits
    result = lr_find(MLPClassifier((16,), solver=solver, random_state=0), X, y, num_steps=30, random_state=0)
    assert np.isfinite(result.smoothed_losses).all() and result.suggested_lr > 0


def test_regressor_sample_weight_and_steepest_rule():
    X, y = make_regression(n_samples=300, n_features=8, noise=1.0, random_state=0)
    y = y / y.std()
    result = lr_find(
        MLPRegressor(hidden_layer_sizes=(16,), random_state=0), X, y, sample_weight=np.ones(300), suggestion="steepest",
        num_steps=40,
    )
    assert result.suggested_lr == result.lr_steepest


def test_lbfgs_and_bad_arguments_raise(digits):
    X, y = digits
    with pytest.raises(ValueError, match="lbfgs"):
        lr_find(MLPClassifier(solver="lbfgs"), X, y)
    with pytest.raises(ValueError, match="start_lr"):
        lr_find(MLPClassifier(), X, y, start_lr=1.0, end_lr=0.1)
    with pytest.raises(ValueError, match="suggestion"):
        lr_find(MLPClassifier(), X, y, suggestion="valley")


def test_exported():
    assert skdeep.lr_find is lr_find and "lr_find" in skdeep.__all__
