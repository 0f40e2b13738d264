"""Validation data (issue 12): validation loss, ``scoring``, monitoring the validation
loss, ``eval_set`` in ``partial_fit`` and in pipelines, the epoch's mean learning rate
(tests/test_optimizers_schedules.py checks that one against the compiled loop's rates).

Tiny data and the configurations the other test files compile (float64, default
activations, adam and sgd).
"""

import math
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification, make_regression
from sklearn.metrics import (
    balanced_accuracy_score, f1_score, log_loss, make_scorer, mean_absolute_error, mean_poisson_deviance,
    mean_squared_error,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skdeep import EvalSetWarning, MLPClassifier, MLPRegressor
from skdeep._validation import check_like_training, output_loss
from skdeep.callbacks import Callback, EarlyStopping, ModelCheckpoint
from skdeep.schedules import ReduceOnPlateau


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Stochastic Optimizer")
        yield


def _classifier(**kw):
    params = {"hidden_layer_sizes": (6,), "learning_rate_init": 0.01, "max_iter": 4, "random_state": 0}
    params.update(kw)
    return MLPClassifier(**params)


def _regressor(**kw):
    params = {"hidden_layer_sizes": (6,), "learning_rate_init": 0.01, "max_iter": 4, "random_state": 0}
    params.update(kw)
    return MLPRegressor(**params)


def _split(n_classes=2, n_samples=120, seed=0):
    X, y = make_classification(n_samples, 5, n_informative=3, n_redundant=0, n_classes=n_classes,
                               random_state=seed)
    return train_test_split(X, y, random_state=seed)


def _regression_split(n_targets=1):
    X, y = make_regression(100, 4, n_targets=n_targets, noise=1.0, random_state=0)
    return train_test_split(X, y / np.abs(y).max(), random_state=0)


class Trace(Callback):
    """At every epoch end: the record, and what the current weights give on ``X``, ``y``."""

    def __init__(self, X, y, metric, sample_weight=None):
        self.X, self.y, self.metric, self.sample_weight = X, y, metric, sample_weight

    def on_train_begin(self, estimator):
        self.records_, self.values_, self.weights_ = [], [], []

    def on_epoch_end(self, estimator, record):
        self.records_.append(dict(record))
        self.values_.append(self.metric(estimator, self.X, self.y, self.sample_weight))
        self.weights_.append([a.copy() for a in estimator.coefs_ + estimator.intercepts_])
        return False


def _log_loss(est, X, y, sw):
    return log_loss(y, est.predict_proba(X), sample_weight=sw, labels=est.classes_)


def _weights(est):
    return [a.copy() for a in est.coefs_ + est.intercepts_]


# -- 1. the validation loss ------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3])
def test_validation_loss_is_the_log_loss_on_the_eval_set(n_classes):
    X, X_val, y, y_val = _split(n_classes)
    sw = np.random.RandomState(0).uniform(0.2, 2.0, len(y_val))
    trace = Trace(X_val, y_val, _log_loss, sw)
    est = _classifier(callbacks=[trace]).fit(X, y, eval_set=(X_val, y_val, sw))
    losses = [r["validation_loss"] for r in est.history_]
    assert_allclose(losses, trace.values_, rtol=1e-12)
    assert [r["validation_score"] for r in est.history_] == est.validation_scores_
    assert len(set(losses)) == len(losses), "one value per epoch, from that epoch's weights"


def test_validation_loss_of_regressors():
    X, X_val, y, y_val = _regression_split(n_targets=2)
    half_mse = lambda est, X, y, sw: 0.5 * mean_squared_error(y, est.predict(X))  # noqa: E731
    trace = Trace(X_val, y_val, half_mse)
    est = _regressor(callbacks=[trace]).fit(X, y, eval_set=(X_val, y_val))
    # half the squared error, averaged over the outputs: the training loss's definition
    assert_allclose([r["validation_loss"] for r in est.history_], trace.values_, rtol=1e-12)

    y_count = np.random.RandomState(0).poisson(2.0, len(y) + len(y_val)).astype(float)
    half_deviance = lambda est, X, y, sw: 0.5 * mean_poisson_deviance(y, est.predict(X))  # noqa: E731
    trace = Trace(X_val, y_count[len(y):], half_deviance)
    est = _regressor(loss="poisson", callbacks=[trace]).fit(X, y_count[: len(y)], eval_set=(X_val, y_count[len(y):]))
    assert_allclose([r["validation_loss"] for r in est.history_], trace.values_, rtol=1e-12)


def test_validation_loss_is_computed_without_dropout_and_with_moving_statistics():
    X, X_val, y, y_val = _split()
    trace = Trace(X_val, y_val, _log_loss)
    est = _classifier(dropout=0.3, batch_norm="after", callbacks=[trace]).fit(X, y, eval_set=(X_val, y_val))
    # predict_proba is inference mode: the same values, deterministic
    assert_allclose([r["validation_loss"] for r in est.history_], trace.values_, rtol=1e-12)


def test_output_loss_matches_the_kernels_training_loss():
    """One full batch of plain gradient steps at learning rate 0: the training loss is the data term."""
    X, _, y, _ = _split(3)
    est = _classifier(solver="sgd", momentum=0.0, learning_rate_init=1e-300, alpha=0.0, batch_size=len(y),
                      max_iter=1, shuffle=False).fit(X, y)
    Y = est._label_binarizer.transform(y)
    assert_allclose(output_loss(est.predict_proba(X), Y, None, "softmax"), est.loss_, rtol=1e-12)


def test_internal_split_records_the_validation_loss():
    X, _, y, _ = _split()
    est = _classifier(early_stopping=True, max_iter=3).fit(X, y)
    losses = [r["validation_loss"] for r in est.history_]
    assert all(isinstance(v, float) and v > 0 for v in losses)
    assert [r["validation_score"] for r in est.history_] == est.validation_scores_


def test_no_validation_data_records_none():
    X, _, y, _ = _split()
    est = _classifier(max_iter=2).fit(X, y)
    assert [r["validation_loss"] for r in est.history_] == [None, None]
    assert est.validation_scores_ is None


# -- 2. scoring --------------------------------------------------------------------------


@pytest.mark.parametrize("scoring, metric", [
    ("balanced_accuracy", balanced_accuracy_score),
    (make_scorer(f1_score), f1_score),
])
def test_scoring_chooses_the_validation_score(scoring, metric):
    X, X_val, y, y_val = _split()
    trace = Trace(X_val, y_val, lambda est, X, y, sw: metric(y, est.predict(X)))
    est = _classifier(scoring=scoring, callbacks=[trace]).fit(X, y, eval_set=(X_val, y_val))
    assert est.validation_scores_ == trace.values_
    assert [r["validation_score"] for r in est.history_] == trace.values_


def test_scoring_of_a_regressor_with_sample_weight():
    X, X_val, y, y_val = _regression_split()
    sw = np.random.RandomState(0).uniform(0.2, 2.0, len(y_val))
    metric = lambda est, X, y, sw: -mean_absolute_error(y, est.predict(X), sample_weight=sw)  # noqa: E731
    trace = Trace(X_val, y_val, metric, sw)
    est = _regressor(scoring="neg_mean_absolute_error", callbacks=[trace]).fit(
        X, y, eval_set=(X_val, y_val, sw))
    assert_allclose(est.validation_scores_, trace.values_, rtol=1e-12)


def test_scoring_drives_early_stopping_and_the_best_weights():
    X, X_val, y, y_val = _split(3)
    trace = Trace(X_val, y_val, lambda est, X, y, sw: balanced_accuracy_score(y, est.predict(X)))
    est = _classifier(scoring="balanced_accuracy", early_stopping=True, n_iter_no_change=2, max_iter=30,
                      callbacks=[trace]).fit(X, y, eval_set=(X_val, y_val))
    assert est.validation_scores_ == trace.values_
    best = int(np.argmax(trace.values_))
    assert est.best_validation_score_ == trace.values_[best]
    for a, b in zip(_weights(est), trace.weights_[best]):
        assert_array_equal(a, b)


def test_scoring_loss_early_stops_on_the_validation_loss():
    X, X_val, y, y_val = _split()
    trace = Trace(X_val, y_val, _log_loss)
    est = _classifier(scoring="loss", early_stopping=True, n_iter_no_change=2, max_iter=60, solver="sgd",
                      learning_rate_init=0.5, callbacks=[trace]).fit(X, y, eval_set=(X_val, y_val))
    losses = [r["validation_loss"] for r in est.history_]
    assert est.validation_scores_ == [-v for v in losses], "HistGradientBoosting's convention: the negative loss"
    best = int(np.argmin(losses))
    assert est.best_validation_score_ == -losses[best]
    assert est.n_iter_ < 60 and est.n_iter_ == best + 1 + 3  # n_iter_no_change + 1 epochs without improvement
    assert_allclose(_log_loss(est, X_val, y_val, None), losses[best], rtol=1e-12)  # best weights restored


def test_scoring_default_is_unchanged_and_validated():
    X, X_val, y, y_val = _split()
    est = _classifier().fit(X, y, eval_set=(X_val, y_val))
    assert est.validation_scores_[-1] == est.score(X_val, y_val)  # accuracy
    with pytest.raises(InvalidParameterError, match="scoring"):
        _classifier(scoring="no_such_scorer").fit(X, y)
    with pytest.raises(ValueError, match="scorer"):
        _classifier(scoring=f1_score).fit(X, y, eval_set=(X_val, y_val))  # a metric, not a scorer


# -- 3. monitoring the validation loss ---------------------------------------------------------


@pytest.mark.parametrize("monitor", ["val_loss", "validation_loss"])
def test_early_stopping_callback_on_the_validation_loss(monitor):
    X, X_val, y, y_val = _split()
    trace = Trace(X_val, y_val, _log_loss)
    stopper = EarlyStopping(monitor=monitor, patience=2, restore_best_weights=True)
    est = _classifier(solver="sgd", learning_rate_init=0.5, max_iter=60, n_iter_no_change=np.inf,
                      callbacks=[trace, stopper]).fit(X, y, eval_set=(X_val, y_val))
    losses = [r["validation_loss"] for r in trace.records_]
    best = int(np.argmin(losses))
    assert stopper.best_ == losses[best] and stopper.best_epoch_ == best + 1, "lower is better"
    assert stopper.stopped_epoch_ == est.n_iter_ == best + 1 + 2 < 60
    for a, b in zip(_weights(est), trace.weights_[best]):
        assert_array_equal(a, b)


def test_early_stopping_mode_and_nan():
    stopper = EarlyStopping(monitor="validation_loss", patience=2, restore_best_weights=False, mode="max")
    stopper.on_train_begin(None)
    stops = [stopper.on_epoch_end(None, {"epoch": e + 1, "validation_loss": v})
             for e, v in enumerate([1.0, 2.0, math.nan, 1.5])]
    assert stopper.best_ == 2.0 and stopper.best_epoch_ == 2 and stops == [False, False, False, True]
    stopper = EarlyStopping(monitor="loss", patience=2, restore_best_weights=False)
    stopper.on_train_begin(None)
    assert not stopper.on_epoch_end(None, {"epoch": 1, "loss": math.nan})
    assert not stopper.on_epoch_end(None, {"epoch": 2, "loss": 3.0}) and stopper.best_ == 3.0
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="lowest").on_train_begin(None)


def test_early_stopping_callback_names_what_val_loss_needs():
    X, _, y, _ = _split()
    with pytest.raises(ValueError, match="'val_loss'.*eval_set"):
        _classifier(callbacks=[EarlyStopping(monitor="val_loss")]).fit(X, y)


def test_checkpoint_and_plateau_on_the_validation_loss(tmp_path):
    X, X_val, y, y_val = _split()
    checkpoint = ModelCheckpoint(tmp_path / "best.joblib", monitor="val_loss", save_best_only=True)
    plateau = ReduceOnPlateau(monitor="validation_loss", factor=0.5, patience=0, min_delta=1e9)
    est = _classifier(callbacks=[checkpoint], max_iter=6, solver="sgd", learning_rate=plateau).fit(
        X, y, eval_set=(X_val, y_val))
    losses = [r["validation_loss"] for r in est.history_]
    assert checkpoint.best_epoch_ == int(np.argmin(losses)) + 1
    best = joblib.load(checkpoint.last_path_)
    assert_allclose(_log_loss(best, X_val, y_val, None), min(losses), rtol=1e-12)
    # no epoch improves by min_delta: the rate halves after every epoch but the first
    assert [r["learning_rate"] for r in est.history_] == pytest.approx(0.01 * 0.5 ** np.maximum(np.arange(6) - 1, 0))


# -- 4. eval_set in partial_fit -------------------------------------------------------------


def test_partial_fit_records_the_eval_set_per_call():
    X, X_val, y, y_val = _split()
    est = _classifier()
    for call in range(3):
        est.partial_fit(X, y, classes=[0, 1], eval_set=(X_val, y_val))
        assert_allclose(est.history_[-1]["validation_loss"], _log_loss(est, X_val, y_val, None), rtol=1e-12)
        assert est.history_[-1]["validation_score"] == est.score(X_val, y_val)
    est.partial_fit(X, y)  # without validation data: no values
    est.partial_fit(X, y, X_val=X_val, y_val=y_val)
    assert len(est.history_) == 5
    assert [r["validation_loss"] is None for r in est.history_] == [False] * 3 + [True, False]
    assert est.validation_scores_ == [est.history_[i]["validation_score"] for i in (0, 1, 2, 4)]


def test_partial_fit_regressor_eval_set_with_weights():
    X, X_val, y, y_val = _regression_split()
    sw = np.random.RandomState(0).uniform(0.2, 2.0, len(y_val))
    est = _regressor().partial_fit(X, y, eval_set=(X_val, y_val, sw))
    expected = 0.5 * mean_squared_error(y_val, est.predict(X_val), sample_weight=sw)
    assert_allclose(est.history_[-1]["validation_loss"], expected, rtol=1e-12)
    assert est.validation_scores_ == [est.score(X_val, y_val, sample_weight=sw)]


def test_validation_data_arguments():
    X, X_val, y, y_val = _split()
    est = _classifier(max_iter=2)
    with pytest.raises(ValueError, match="not both"):
        est.fit(X, y, eval_set=(X_val, y_val), X_val=X_val, y_val=y_val)
    with pytest.raises(ValueError, match="together"):
        est.fit(X, y, X_val=X_val)
    with pytest.raises(ValueError, match="classes not seen"):
        est.fit(X, y, eval_set=(X_val, y_val + 5))
    with pytest.raises(ValueError, match="outputs"):
        _regressor(max_iter=1).fit(X, y.astype(float), eval_set=(X_val, np.c_[y_val, y_val]))
    assert not hasattr(est, "coefs_"), "a failed fit leaves the estimator as it was"


# -- 5. eval_set in pipelines --------------------------------------------------------------


def _raw_split():
    X, X_val, y, y_val = _split(n_samples=160)
    return 40 + 8 * X, 40 + 8 * X_val, y, y_val


def test_untransformed_eval_set_in_a_pipeline_warns():
    X, X_val, y, y_val = _raw_split()
    pipe = make_pipeline(StandardScaler(), _classifier())
    with pytest.warns(EvalSetWarning, match="transform_input"):
        pipe.fit(X, y, mlpclassifier__eval_set=(X_val, y_val))
    # the scaled validation set is what the model should have been scored on
    scaled = _log_loss(pipe[-1], pipe[0].transform(X_val), y_val, None)
    assert pipe[-1].history_[-1]["validation_loss"] > 2 * scaled


def test_eval_set_through_a_pipeline_with_metadata_routing():
    X, X_val, y, y_val = _raw_split()
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("error", EvalSetWarning)
        pipe = Pipeline(
            [("scale", StandardScaler()), ("mlp", _classifier().set_fit_request(X_val=True, y_val=True))],
            transform_input=["X_val"],
        ).fit(X, y, X_val=X_val, y_val=y_val)
        assert_allclose(pipe[-1].history_[-1]["validation_loss"], log_loss(y_val, pipe.predict_proba(X_val)),
                        rtol=1e-12)
        assert pipe[-1].validation_scores_[-1] == pipe.score(X_val, y_val)


def test_eval_set_with_other_features_names_the_pipeline_case():
    X, X_val, y, y_val = _split()
    with pytest.raises(ValueError, match="4 features.*Pipeline.*transform_input"):
        _classifier(max_iter=1).fit(X, y, eval_set=(X_val[:, :4], y_val))


def test_check_like_training_flags_untransformed_columns():
    rng = np.random.RandomState(0)
    X = rng.randn(200, 6)
    scaled = {"shifted": X + 5, "spread": 4 * X, "shrunk": X / 4}
    for name, X_val in scaled.items():
        with pytest.warns(EvalSetWarning):
            check_like_training(X, X_val[:50])
    with pytest.warns(EvalSetWarning):
        check_like_training(sp.csr_matrix(X[:100]), sp.csr_matrix(X[100:] * 5))


def test_check_like_training_avoids_false_alarms():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 6)
    binary = (rng.rand(300, 20) < 0.02).astype(float)  # rare one-hot-like columns
    heavy = rng.standard_cauchy((300, 6))
    shifted = X.copy()
    shifted[:, :2] += 10  # a real shift in 2 of 6 columns: not a missing transform
    with warnings.catch_warnings():
        warnings.simplefilter("error", EvalSetWarning)
        check_like_training(X[:200], X[200:])  # same distribution
        check_like_training(binary[:200], binary[200:])
        check_like_training(heavy[:200], heavy[200:])
        check_like_training(X[:200], shifted[200:])
        check_like_training(X[:200], 10 * X[200:219])  # too few rows to judge
        check_like_training(np.ones((50, 3)), X[:50, :3])  # nothing varies in training


# -- 6. the epoch's mean learning rate -------------------------------------------------------


def test_history_records_the_epochs_mean_learning_rate():
    from skdeep.schedules import ExponentialDecay

    X, _, y, _ = _regression_split()  # 75 rows, batches of 20: 4 updates per epoch
    est = _regressor(solver="sgd", batch_size=20, max_iter=3, learning_rate=ExponentialDecay(steps=3)).fit(X, y)
    steps = np.arange(12).reshape(3, 4)  # update t of the fit: 0.01 * 0.1 ** (t / 3)
    assert_allclose([r["learning_rate"] for r in est.history_], (0.01 * 0.1 ** (steps / 3)).mean(axis=1), rtol=1e-13)
    constant = _regressor(solver="sgd", batch_size=20, max_iter=2).fit(X, y)
    assert [r["learning_rate"] for r in constant.history_] == [0.01, 0.01], "exactly the rate when constant"


# -- plots ---------------------------------------------------------------------------------


def test_learning_curves_plot_the_validation_loss():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from skdeep.plot import plot_learning_curves

    X, X_val, y, y_val = _split()
    est = _classifier().fit(X, y, eval_set=(X_val, y_val))
    ax = plot_learning_curves(est)
    assert [line.get_label() for line in ax.lines] == ["loss", "validation_loss"]
    assert_allclose(ax.lines[1].get_ydata(), [r["validation_loss"] for r in est.history_])
    matplotlib.pyplot.close("all")
