"""Bad input and faults: the same clear errors scikit-learn gives.

Every check runs on skdeep's estimators; where scikit-learn behaves the same
way the check also runs on scikit-learn's estimator, so a difference shows
which side changed.
"""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import NotFittedError
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import InvalidParameterError

from skdeep import MLPClassifier, MLPRegressor
from skdeep._backend import Data
from skdeep._mlp import _class_indices, _one_hot

pd = pytest.importorskip("pandas")

SMALL = {"hidden_layer_sizes": (5,), "max_iter": 3, "random_state": 0}

# (skdeep class, scikit-learn class), by kind of estimator.
PAIRS = {
    "classifier": (MLPClassifier, SkMLPClassifier),
    "regressor": (MLPRegressor, SkMLPRegressor),
}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Stochastic Optimizer")
        warnings.filterwarnings("ignore", message="lbfgs failed to converge")
        yield


def _data(kind, n_samples=40, n_features=4):
    if kind == "classifier":
        X, y = make_classification(
            n_samples, n_features, n_informative=2, n_redundant=0, random_state=0
        )
    else:
        X, y = make_regression(n_samples, n_features, random_state=0)
        y = y / np.abs(y).max()
    return X, y


def _fitted(kind, cls=None, **params):
    X, y = _data(kind)
    return (cls or PAIRS[kind][0])(**{**SMALL, **params}).fit(X, y), X, y


def _raises_like_sklearn(kind, call, exc, match, **params):
    """``call(estimator)`` raises ``exc`` matching ``match`` for skdeep and scikit-learn."""
    for cls in PAIRS[kind]:
        with pytest.raises(exc, match=match):
            call(cls(**{**SMALL, **params}))


def _with_value(X, value, sparse_format=None):
    X = X.copy()
    X[1, 2] = value
    if sparse_format is not None:
        X = sp.csr_matrix(X) if sparse_format == "csr" else sp.csc_matrix(X)
    return X


# -- NaN / infinity in X ------------------------------------------------------

BAD_VALUES = [
    (np.nan, "Input X contains NaN"),
    (np.inf, "Input X contains infinity"),
    (-np.inf, "Input X contains infinity"),
]


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("value, match", BAD_VALUES)
@pytest.mark.parametrize("sparse_format", [None, "csr", "csc"])
def test_non_finite_X_in_fit(kind, value, match, sparse_format):
    X, y = _data(kind)
    Xbad = _with_value(X, value, sparse_format)
    _raises_like_sklearn(kind, lambda est: est.fit(Xbad, y), ValueError, match)


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("value, match", BAD_VALUES)
@pytest.mark.parametrize("sparse_format", [None, "csr", "csc"])
def test_non_finite_X_in_predict(kind, value, match, sparse_format):
    X, _ = _data(kind)
    Xbad = _with_value(X, value, sparse_format)
    for cls in PAIRS[kind]:
        est, _, _ = _fitted(kind, cls)
        with pytest.raises(ValueError, match=match):
            est.predict(Xbad)
        if kind == "classifier":
            with pytest.raises(ValueError, match=match):
                est.predict_proba(Xbad)
            with pytest.raises(ValueError, match=match):
                est.predict_log_proba(Xbad)


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda X: X, id="C-float64"),
        pytest.param(np.asfortranarray, id="F-float64"),
        pytest.param(lambda X: X.astype(np.float32), id="float32"),
        pytest.param(lambda X: X.tolist(), id="list"),
        pytest.param(pd.DataFrame, id="DataFrame"),
    ],
)
def test_nan_in_predict_every_layout(convert):
    """The fast path (C-contiguous float64) and the checked path report NaN alike."""
    est, X, _ = _fitted("classifier")
    Xbad = convert(_with_value(X, np.nan))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.predict(Xbad)


def test_nan_in_last_row_of_large_predict():
    """The finiteness check covers every chunk of a long input, not just the first."""
    est, X, _ = _fitted("regressor")
    Xbig = np.tile(X, (60, 1))  # 2400 rows: more than one prediction chunk
    Xbig[-1, -1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.predict(Xbig)


def test_float32_model_predict_on_float64_beyond_float32_range():
    """Finite float64 input must not be reported as NaN/infinity by a float32 model.

    scikit-learn computes with the float64 input (X @ float32 coefs -> float64)
    and returns predictions; the input is finite, so "contains NaN or infinity"
    is wrong.
    """
    X, y = _data("classifier")
    est = MLPClassifier(**SMALL).fit(X.astype(np.float32), y)
    sk = SkMLPClassifier(**SMALL).fit(X.astype(np.float32), y)
    Xlarge = X * 1e39  # finite in float64, overflows float32
    assert np.isfinite(Xlarge).all()
    assert sk.predict(Xlarge).shape == (X.shape[0],)
    assert est.predict(Xlarge).shape == (X.shape[0],)


# -- shapes, empty data, dtypes -------------------------------------------------


@pytest.mark.parametrize("kind", PAIRS)
def test_1d_X(kind):
    X, y = _data(kind)
    _raises_like_sklearn(kind, lambda est: est.fit(X[:, 0], y), ValueError, "Expected 2D array, got 1D array")
    for cls in PAIRS[kind]:
        est, _, _ = _fitted(kind, cls)
        with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
            est.predict(X[0])


@pytest.mark.parametrize("kind", PAIRS)
def test_3d_X(kind):
    X, y = _data(kind)
    match = "Found array with dim 3"
    _raises_like_sklearn(kind, lambda est: est.fit(X[:, :, None], y), ValueError, match)
    for cls in PAIRS[kind]:
        est, _, _ = _fitted(kind, cls)
        with pytest.raises(ValueError, match=match):
            est.predict(X[:, :, None])


@pytest.mark.parametrize("kind", PAIRS)
def test_zero_samples(kind):
    X, y = _data(kind)
    match = re.escape("Found array with 0 sample(s)")
    _raises_like_sklearn(kind, lambda est: est.fit(X[:0], y[:0]), ValueError, match)
    for cls in PAIRS[kind]:
        est, _, _ = _fitted(kind, cls)
        with pytest.raises(ValueError, match=match):
            est.predict(X[:0])  # C-contiguous float64: the fast path's shape


@pytest.mark.parametrize("kind", PAIRS)
def test_zero_features(kind):
    X, y = _data(kind)
    match = re.escape("Found array with 0 feature(s)")
    _raises_like_sklearn(kind, lambda est: est.fit(X[:, :0], y), ValueError, match)


@pytest.mark.parametrize("kind", PAIRS)
def test_strings_in_X(kind):
    X, y = _data(kind)
    Xstr = X.astype(object)
    Xstr[0, 0] = "a"
    match = "could not convert string to float"
    _raises_like_sklearn(kind, lambda est: est.fit(Xstr, y), ValueError, match)
    _raises_like_sklearn(kind, lambda est: est.fit(np.full(X.shape, "a"), y), ValueError, match)
    for cls in PAIRS[kind]:
        est, _, _ = _fitted(kind, cls)
        with pytest.raises(ValueError, match=match):
            est.predict(Xstr)


@pytest.mark.parametrize("kind", PAIRS)
def test_complex_X(kind):
    X, y = _data(kind)
    match = "Complex data not supported"
    _raises_like_sklearn(kind, lambda est: est.fit(X + 1j, y), ValueError, match)
    for cls in PAIRS[kind]:
        est, _, _ = _fitted(kind, cls)
        with pytest.raises(ValueError, match=match):
            est.predict(X + 1j)


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("sparse_format", [None, "csr"])
def test_feature_count_mismatch(kind, sparse_format):
    for cls in PAIRS[kind]:
        est, X, _ = _fitted(kind, cls)
        Xfew = X[:, :3] if sparse_format is None else sp.csr_matrix(X[:, :3])
        Xmany = np.hstack([X, X]) if sparse_format is None else sp.csr_matrix(np.hstack([X, X]))
        with pytest.raises(ValueError, match=f"X has 3 features, but {cls.__name__} is expecting 4"):
            est.predict(Xfew)
        with pytest.raises(ValueError, match=f"X has 8 features, but {cls.__name__} is expecting 4"):
            est.predict(Xmany)


@pytest.mark.parametrize("kind", PAIRS)
def test_feature_count_mismatch_in_warm_start_and_partial_fit(kind):
    X, y = _data(kind)
    for cls in PAIRS[kind]:
        est = cls(**SMALL, warm_start=True, solver="sgd").fit(X, y)
        with pytest.raises(ValueError, match="X has 3 features"):
            est.fit(X[:, :3], y)
        with pytest.raises(ValueError, match="X has 3 features"):
            est.partial_fit(X[:, :3], y)


# -- not fitted -----------------------------------------------------------------


@pytest.mark.parametrize("kind", PAIRS)
def test_not_fitted(kind):
    X, _ = _data(kind)
    methods = ["predict", "score"]
    if kind == "classifier":
        methods += ["predict_proba", "predict_log_proba"]
    for cls in PAIRS[kind]:
        for method in methods:
            args = (X, np.zeros(len(X))) if method == "score" else (X,)
            with pytest.raises(NotFittedError, match=f"This {cls.__name__} instance is not fitted yet"):
                getattr(cls(), method)(*args)


# -- invalid parameters -----------------------------------------------------------

INVALID = [
    ("hidden_layer_sizes", 0),
    ("hidden_layer_sizes", -3),
    ("activation", "foo"),
    ("solver", "foo"),
    ("alpha", -1),
    ("batch_size", 0),
    ("learning_rate", "foo"),
    ("learning_rate_init", 0),
    ("learning_rate_init", -0.1),
    ("power_t", -1),
    ("max_iter", 0),
    ("tol", -1),
    ("momentum", 2),
    ("momentum", -0.5),
    ("validation_fraction", 1),
    ("validation_fraction", -0.1),
    ("beta_1", 1),
    ("beta_2", 1.5),
    ("epsilon", 0),
    ("n_iter_no_change", 0),
    ("max_fun", 0),
    ("shuffle", "yes"),
    ("warm_start", "yes"),
    ("early_stopping", 1.5),
]


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("name, value", INVALID)
def test_invalid_parameter_named(kind, name, value):
    X, y = _data(kind)
    match = f"The '{name}' parameter of MLP(Classifier|Regressor) must be"
    _raises_like_sklearn(kind, lambda est: est.set_params(**{name: value}).fit(X, y), InvalidParameterError, match)


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("sizes", [[3, -1], [0], (4, 0, 2), np.array([2, -2])])
def test_non_positive_hidden_layer_sizes(kind, sizes):
    X, y = _data(kind)
    _raises_like_sklearn(
        kind, lambda est: est.set_params(hidden_layer_sizes=sizes).fit(X, y),
        ValueError, "hidden_layer_sizes must be",
    )


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("sizes", [[2.5], (3, 2.0), ["3"]])
def test_non_integer_hidden_layer_sizes(kind, sizes):
    """scikit-learn fails later with an obscure error; skdeep names the parameter."""
    X, y = _data(kind)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be positive integers"):
        PAIRS[kind][0](**{**SMALL, "hidden_layer_sizes": sizes}).fit(X, y)


def test_invalid_regressor_loss():
    X, y = _data("regressor")
    _raises_like_sklearn(
        "regressor", lambda est: est.set_params(loss="foo").fit(X, y),
        InvalidParameterError, "The 'loss' parameter of MLPRegressor must be",
    )


@pytest.mark.parametrize("class_weight", ["foo", 3, 1.5])
def test_invalid_class_weight(class_weight):
    X, y = _data("classifier")
    with pytest.raises(InvalidParameterError, match="The 'class_weight' parameter of MLPClassifier"):
        MLPClassifier(**SMALL, class_weight=class_weight).fit(X, y)


def test_class_weight_for_unknown_class():
    X, y = _data("classifier")
    with pytest.raises(ValueError, match="not in class_weight"):
        MLPClassifier(**SMALL, class_weight={0: 1.0, 7: 2.0}).fit(X, y)


def test_batch_size_larger_than_data_warns_and_clips():
    X, y = _data("classifier")
    for cls in PAIRS["classifier"]:
        with pytest.warns(UserWarning, match="Got `batch_size` less than 1 or larger than sample size"):
            cls(**SMALL, batch_size=1000).fit(X, y)


def test_validation_set_too_small():
    X, y = _data("regressor", n_samples=10)
    _raises_like_sklearn(
        "regressor", lambda est: est.set_params(early_stopping=True, validation_fraction=0.1).fit(X, y),
        ValueError, "The validation set is too small",
    )


# -- bad targets and weights ---------------------------------------------------------


def test_negative_y_with_poisson_loss():
    X, y = _data("regressor")
    with pytest.raises(ValueError, match="Some value\\(s\\) of y are negative which is not allowed for Poisson"):
        MLPRegressor(**SMALL, loss="poisson").fit(X, y - 2.0)
    with pytest.raises(ValueError, match="negative"):
        MLPRegressor(**SMALL, loss="poisson", solver="sgd").partial_fit(X, y - 2.0)
    MLPRegressor(**SMALL, loss="poisson").fit(X, np.abs(y))  # zeros and positives are fine


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("value, match", [(np.nan, "Input y contains NaN"), (np.inf, "Input y contains infinity")])
def test_non_finite_y(kind, value, match):
    X, y = _data(kind)
    y = y.astype(float)
    y[3] = value
    _raises_like_sklearn(kind, lambda est: est.fit(X, y), ValueError, match)


@pytest.mark.parametrize("kind", PAIRS)
def test_y_length_mismatch(kind):
    X, y = _data(kind)
    _raises_like_sklearn(
        kind, lambda est: est.fit(X, y[:-1]), ValueError, "inconsistent numbers of samples"
    )


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("length", [3, 41])
def test_sample_weight_wrong_length(kind, length):
    X, y = _data(kind)
    match = re.escape(f"sample_weight.shape == ({length},), expected (40,)!")
    _raises_like_sklearn(kind, lambda est: est.fit(X, y, sample_weight=np.ones(length)), ValueError, match)
    est = PAIRS[kind][0](**SMALL, solver="sgd")
    extra = {"classes": np.unique(y)} if kind == "classifier" else {}
    with pytest.raises(ValueError, match=match):
        est.partial_fit(X, y, sample_weight=np.ones(length), **extra)


@pytest.mark.parametrize("kind", PAIRS)
def test_sample_weight_2d(kind):
    X, y = _data(kind)
    _raises_like_sklearn(
        kind, lambda est: est.fit(X, y, sample_weight=np.ones((40, 2))), ValueError,
        "Sample weights must be 1D array or scalar",
    )


def test_column_vector_y_warns_like_sklearn():
    from sklearn.exceptions import DataConversionWarning

    X, y = _data("classifier")
    for cls in PAIRS["classifier"]:
        with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
            est = cls(**SMALL).fit(X, y[:, None])
        assert est.predict(X).shape == (40,)


# -- warm start and partial_fit misuse -----------------------------------------------


def test_warm_start_with_different_classes():
    X, y = _data("classifier")
    y3 = y.copy()
    y3[:5] = 2
    for cls in PAIRS["classifier"]:
        est = cls(**SMALL, warm_start=True).fit(X, y)
        with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same classes"):
            est.fit(X, y3)
        with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same classes"):
            est.fit(X[y == 0], y[y == 0])


def test_warm_start_with_different_architecture():
    X, y = _data("classifier")
    est = MLPClassifier(**SMALL, warm_start=True).fit(X, y)
    before = [c.copy() for c in est.coefs_]
    est.set_params(hidden_layer_sizes=(6,))
    with pytest.raises(ValueError, match="coefs_ and intercepts_ do not match the network"):
        est.fit(X, y)
    for a, b in zip(before, est.coefs_):
        np.testing.assert_array_equal(a, b)


def test_partial_fit_without_classes_on_first_call():
    X, y = _data("classifier")
    _raises_like_sklearn(
        "classifier", lambda est: est.set_params(solver="sgd").partial_fit(X, y),
        ValueError, "classes must be passed on the first call to partial_fit",
    )


def test_partial_fit_changed_classes():
    X, y = _data("classifier")
    _raises_like_sklearn(
        "classifier",
        lambda est: est.partial_fit(X, y, classes=[0, 1]).partial_fit(X, y, classes=[0, 1, 2]),
        ValueError, "is not the same as on last call to partial_fit",
    )


@pytest.mark.parametrize(
    "fitted, labels, found",
    [
        ([0, 1, 1, 0], [1, 1, 0], True),  # binary: one column
        ([3, 1, 2, 1], [2, 3, 3, 1], True),
        ([0, 1, 2], [2.0, 0.0], True),  # float labels of integer classes
        (["b", "a", "c"], ["c", "c", "a"], True),
        ([True, False], [False, False, True], True),
        ([0, 1, 2], [1, 5], False),  # an unknown label: scikit-learn's checks decide
        ([0, 1, 2], [0.5, 1.0], False),
        ([1, 1], [1], False),  # one class
        (["a", "b"], [0, 1], False),  # strings against numbers
        ([[0, 1], [1, 1]], [[1, 0]], False),  # multilabel
    ],
)
def test_known_labels_encode_as_label_binarizer_does(fitted, labels, found):
    binarizer = LabelBinarizer().fit(np.asarray(fitted))
    y = np.asarray(labels)
    indices = _class_indices(y, binarizer)
    assert (indices is not None) == found
    if found:
        expected = binarizer.transform(y).astype(np.float32)
        got = _one_hot(indices, len(binarizer.classes_), np.float32)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)


def test_partial_fit_unknown_class():
    X, y = _data("classifier")
    y3 = y.copy()
    y3[0] = 5
    _raises_like_sklearn(
        "classifier",
        lambda est: est.partial_fit(X, y, classes=[0, 1]).partial_fit(X, y3),
        ValueError, "`y` has classes not in `self.classes_`",
    )


@pytest.mark.parametrize(
    "cls, params, reason",
    [
        (MLPClassifier, {"solver": "lbfgs"}, "only available for stochastic optimizers"),
        (MLPRegressor, {"solver": "lbfgs"}, "only available for stochastic optimizers"),
        (MLPClassifier, {"class_weight": "balanced"}, "does not support class_weight='balanced'"),
        (MLPClassifier, {"solver": "sgd", "class_weight": "balanced"}, "class_weight='balanced'"),
    ],
)
def test_partial_fit_unavailable(cls, params, reason):
    est = cls(**params)
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as info:
        est.partial_fit  # noqa: B018 -- the attribute access is what raises
    # the reason is kept as the cause
    assert isinstance(info.value.__cause__, AttributeError)
    assert reason in str(info.value.__cause__)


def test_sklearn_partial_fit_lbfgs_classifier_also_unavailable():
    assert not hasattr(SkMLPClassifier(solver="lbfgs"), "partial_fit")


@pytest.mark.parametrize("params", [{}, {"class_weight": {0: 1.0, 1: 2.0}}])
def test_partial_fit_available(params):
    assert hasattr(MLPClassifier(solver="sgd", **params), "partial_fit")
    assert hasattr(MLPClassifier(solver="adam", **params), "partial_fit")
    assert hasattr(MLPRegressor(solver="sgd"), "partial_fit")


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_balanced_class_weight_with_zero_weight_class():
    X, y = _data("classifier")
    sw = np.where(y == 1, 0.0, 1.0)
    with pytest.raises(ValueError, match="class_weight='balanced' needs a positive total sample weight"):
        MLPClassifier(**SMALL, class_weight="balanced").fit(X, y, sample_weight=sw)


# -- divergence ------------------------------------------------------------------------


def _diverging_data():
    X, y = make_regression(100, 5, random_state=0)
    return X, y / np.abs(y).max() * 1e6


def _diverging(**params):
    defaults = {
        "hidden_layer_sizes": (10,), "solver": "sgd", "learning_rate_init": 10, "max_iter": 20, "random_state": 0
    }
    return MLPRegressor(**{**defaults, **params})


def _assert_finite_predictions(est, X):
    pred = est.predict(X)
    largest = max(np.abs(a).max() for a in est.coefs_ + est.intercepts_)
    assert np.isfinite(pred).all(), (
        f"{np.sum(~np.isfinite(pred))} of {pred.size} predictions are not finite; "
        f"largest kept weight {largest:.3g}, n_iter_={est.n_iter_}"
    )


def test_divergence_raises_and_keeps_finite_weights():
    X, y = _diverging_data()
    with pytest.raises(ValueError, match="non-finite"), np.errstate(all="ignore"):
        SkMLPRegressor(
            hidden_layer_sizes=(10,), solver="sgd", learning_rate_init=10, max_iter=20, random_state=0
        ).fit(X, y)
    est = _diverging()
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        est.fit(X, y)
    for a in est.coefs_ + est.intercepts_:
        assert np.isfinite(a).all()
    assert np.isfinite(est.loss_curve_).all()


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("batch_norm", ["before", "after"])
def test_overflowing_batch_norm_statistics_raise_and_keep_the_model_finite(batch_norm, solver):
    # Finite inputs whose squares overflow: the batch variance, hence the moving one, is infinite
    # while the normalized values (and the loss) stay finite.
    X = np.array([[1e200, 0.0], [-1e200, 1.0], [3.0, 2.0], [4.0, -1.0]])
    y = np.arange(4.0)
    est = MLPRegressor(hidden_layer_sizes=(3,), batch_norm=batch_norm, solver=solver, max_iter=3, random_state=0)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"), np.errstate(all="ignore"):
        est.fit(X, y)
    if solver == "lbfgs":  # a failed L-BFGS fit leaves the model unfitted
        assert "coefs_" not in est.__dict__
        return
    for a in est.coefs_ + est.intercepts_ + est.batch_norm_moving_mean_ + est.batch_norm_moving_var_:
        assert np.isfinite(a).all()
    assert np.isfinite(est.predict(X[2:])).all()


@pytest.mark.parametrize("sparse", [False, True])
def test_a_last_update_whose_outputs_overflow_raises_and_keeps_the_model_finite(sparse):
    # A batch's loss is checked before each update, so nothing followed a call's last one: this
    # partial_fit succeeded and its model predicted inf (exp of a large output).
    rng = np.random.RandomState(0)
    X, y = rng.randn(20, 3), rng.poisson(2.0, 20).astype(float)
    est = MLPRegressor(loss="poisson", learning_rate_init=10, activation="selu", hidden_layer_sizes=(5,),
                       solver="sgd", random_state=0)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        est.partial_fit(sp.csr_matrix(X) if sparse else X, y)
    assert np.isfinite(est.predict(X)).all()


@pytest.mark.parametrize("rows", [[3, 0, 3, 5], [1], [], [2, 4]])
def test_data_take_returns_the_rows_scipy_slicing_returns(rows):
    dense = np.random.RandomState(0).rand(6, 4)
    dense[dense < 0.5] = 0.0
    dense[2] = 0.0  # a row without entries
    rows = np.asarray(rows, dtype=np.int64)
    for X in (dense, sp.csr_matrix(dense)):
        taken = Data.from_matrix(X, np.float64).take(rows)
        if taken.sparse:
            matrix = sp.csr_matrix((taken.values, taken.indices, taken.indptr), shape=(len(rows), 4))
            assert taken.indptr.dtype == taken.indices.dtype == np.int64
            np.testing.assert_array_equal(matrix.toarray(), X[rows].toarray())
        else:
            np.testing.assert_array_equal(taken.dense, dense[rows])
        assert taken.n_samples == len(rows)


def test_no_callback_sees_an_epoch_whose_last_update_overflows_the_outputs():
    from skdeep.callbacks import Callback

    class Predicts(Callback):
        def on_train_begin(self, estimator):
            self.finite = []

        def on_epoch_end(self, estimator, record):
            self.finite.append(bool(np.isfinite(estimator.predict(X)).all()))

    rng = np.random.RandomState(0)
    X, y = rng.randn(20, 3), rng.poisson(2.0, 20).astype(float)
    seen = Predicts()
    est = MLPRegressor(loss="poisson", learning_rate_init=10, activation="selu", hidden_layer_sizes=(5,),
                       solver="sgd", max_iter=5, random_state=0, callbacks=[seen])
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        est.fit(X, y)
    assert all(seen.finite)
    assert np.isfinite(est.predict(X)).all()


def test_predict_warns_when_the_output_overflows():
    rng = np.random.RandomState(0)
    X, y = rng.randn(30, 3), rng.poisson(2.0, 30)
    est = MLPRegressor(loss="poisson", dropout=0.1, max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(est.predict(X)).all()
    with pytest.warns(RuntimeWarning, match="overflow"):
        assert np.isinf(est.predict(X * 1e6)).any()
    with pytest.warns(RuntimeWarning, match="overflow"):
        est.predict_mc(X * 1e6, n_samples=2)


@pytest.mark.parametrize("batch_size", [20, "auto"])
def test_divergence_leaves_a_model_that_predicts_finite_values(batch_size):
    """After the error, the kept weights give finite predictions on the training data.

    With full batches ('auto' is 100 here) the first batch of the failing epoch
    already has a non-finite loss, so rolling back to the start of that epoch
    keeps weights that overflow.
    """
    X, y = _diverging_data()
    est = _diverging(batch_size=batch_size)
    with pytest.raises(ValueError, match="non-finite"):
        est.fit(X, y)
    _assert_finite_predictions(est, X)


def test_warm_start_after_divergence_predicts_finite_values():
    X, y = _diverging_data()
    est = _diverging(warm_start=True)
    with pytest.raises(ValueError, match="non-finite"):
        est.fit(X, y)
    est.set_params(learning_rate_init=1e-6, max_iter=2)
    try:
        est.fit(X, y / 1e6)
    except ValueError as exc:
        assert "non-finite" in str(exc)
    for a in est.coefs_ + est.intercepts_:
        assert np.isfinite(a).all()
    _assert_finite_predictions(est, X)


def test_warm_start_from_good_model_then_divergence_keeps_good_model():
    X, y = _diverging_data()
    est = _diverging(warm_start=True, learning_rate_init=1e-3, batch_size=20, max_iter=5)
    est.fit(X, y / 1e6)
    good = est.predict(X)
    est.set_params(learning_rate_init=10)
    with pytest.raises(ValueError, match="non-finite"):
        est.fit(X, y)
    pred = est.predict(X)
    assert np.isfinite(pred).all()
    np.testing.assert_allclose(pred, good)


# -- nothing the user gave is modified -------------------------------------------


def _assert_same(original, copy):
    if sp.issparse(original):
        for attr in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(getattr(original, attr), getattr(copy, attr))
        assert original.format == copy.format and original.shape == copy.shape
    else:
        np.testing.assert_array_equal(original, copy)
        assert original.dtype == copy.dtype


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
@pytest.mark.parametrize("layout", ["C", "F", "float32", "csr", "csc"])
def test_inputs_not_modified(kind, solver, layout):
    X, y = _data(kind)
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "float32":
        X = X.astype(np.float32)
    elif layout in ("csr", "csc"):
        X = sp.csr_matrix(X) if layout == "csr" else sp.csc_matrix(X)
    sw = np.linspace(0.5, 2.0, X.shape[0])
    copies = (X.copy(), y.copy(), sw.copy())
    params = {"solver": solver, "early_stopping": solver != "lbfgs"}
    if kind == "classifier":
        params["class_weight"] = "balanced"
    est = PAIRS[kind][0](**{**SMALL, **params}).fit(X, y, sample_weight=sw)
    est.predict(X)
    for original, copy in zip((X, y, sw), copies):
        _assert_same(original, copy)


def test_partial_fit_inputs_not_modified():
    X, y = _data("regressor")
    sw = np.linspace(0.5, 2.0, X.shape[0])
    copies = (X.copy(), y.copy(), sw.copy())
    est = MLPRegressor(**SMALL, solver="sgd")
    for _ in range(2):
        est.partial_fit(X, y, sample_weight=sw)
    for original, copy in zip((X, y, sw), copies):
        _assert_same(original, copy)


@pytest.mark.parametrize("kind", PAIRS)
def test_assigned_coefs_not_modified_by_warm_start(kind):
    est, X, y = _fitted(kind, solver="sgd", warm_start=True)
    rng = np.random.RandomState(1)
    coefs = [rng.uniform(-0.5, 0.5, c.shape) for c in est.coefs_]
    intercepts = [rng.uniform(-0.5, 0.5, b.shape) for b in est.intercepts_]
    saved = [a.copy() for a in coefs + intercepts]
    est.coefs_, est.intercepts_ = coefs, intercepts
    est.fit(X, y)
    for original, copy in zip(coefs + intercepts, saved):
        np.testing.assert_array_equal(original, copy)
    # and the model did train from them
    assert not all(np.array_equal(a, b) for a, b in zip(est.coefs_, coefs))


def test_readonly_inputs():
    X, y = _data("classifier")
    sw = np.ones(len(y))
    for a in (X, y, sw):
        a.setflags(write=False)
    est = MLPClassifier(**SMALL).fit(X, y, sample_weight=sw)
    assert est.predict(X).shape == y.shape


# -- the predict fast path and its alternatives ---------------------------------------


@pytest.mark.parametrize("kind", PAIRS)
def test_predict_same_for_every_input_form(kind):
    X, y = _data(kind)
    Xr = np.round(X, 2)  # exact in float32 and with a fixed int version below
    est = PAIRS[kind][0](**SMALL).fit(Xr, y)
    method = est.predict_proba if kind == "classifier" else est.predict
    expected = method(Xr)
    assert expected.dtype == np.float64
    np.testing.assert_array_equal(method(np.asfortranarray(Xr)), expected)
    np.testing.assert_array_equal(method(Xr.tolist()), expected)
    np.testing.assert_array_equal(method(pd.DataFrame(Xr)), expected)
    np.testing.assert_allclose(method(sp.csr_matrix(Xr)), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(method(sp.csc_matrix(Xr)), expected, rtol=1e-12, atol=1e-14)
    # a non-contiguous view
    Xwide = np.repeat(Xr, 2, axis=1)
    np.testing.assert_array_equal(method(Xwide[:, ::2]), expected)
    # float32 input to a float64 model: the same as its float64 values
    X32 = Xr.astype(np.float32)
    np.testing.assert_array_equal(method(X32), method(X32.astype(np.float64)))
    np.testing.assert_allclose(method(X32), expected, rtol=1e-5, atol=1e-6)
    # integers
    Xint = np.round(Xr * 10).astype(np.int64)
    np.testing.assert_array_equal(method(Xint), method(Xint.astype(np.float64)))
    np.testing.assert_array_equal(est.predict(Xr), est.predict(pd.DataFrame(Xr)))


def test_predict_after_coefs_reassigned_and_modified_in_place():
    """The fast path must use the current weights, however they were changed."""
    est, X, _ = _fitted("regressor")
    before = est.predict(X)
    est.coefs_[-1][:] = 0.0
    np.testing.assert_allclose(est.predict(X), np.full(len(X), est.intercepts_[-1][0]))
    est.coefs_[0] = est.coefs_[0] * 2.0  # replace one element of the list
    Xh = np.maximum(X @ est.coefs_[0] + est.intercepts_[0], 0)
    np.testing.assert_allclose(est.predict(X), (Xh @ est.coefs_[1] + est.intercepts_[1]).ravel())
    est.coefs_ = [c + 0.1 for c in est.coefs_]
    after = est.predict(X)
    assert not np.allclose(after, before)
    Xh = np.maximum(X @ est.coefs_[0] + est.intercepts_[0], 0)
    np.testing.assert_allclose(after, (Xh @ est.coefs_[1] + est.intercepts_[1]).ravel())


def test_sparse_with_duplicate_and_unsorted_entries():
    """A CSR matrix with every entry split in two, columns unsorted: sums as scipy does."""
    est, X, _ = _fitted("regressor")
    n, d = X.shape
    data = np.hstack([X[:, ::-1] / 2, X / 2]).ravel()
    indices = np.tile(np.r_[np.arange(d)[::-1], np.arange(d)], n)
    Xs = sp.csr_matrix((data, indices, np.arange(0, 2 * n * d + 1, 2 * d)), shape=X.shape)
    assert not Xs.has_canonical_format
    np.testing.assert_allclose(Xs.toarray(), X, rtol=1e-15)
    np.testing.assert_allclose(est.predict(Xs), est.predict(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(est.predict(Xs.tocsc()), est.predict(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(est.predict(sp.coo_matrix(Xs)), est.predict(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", PAIRS)
def test_feature_names_like_sklearn(kind):
    X, y = _data(kind)
    columns = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=columns)
    for cls in PAIRS[kind]:
        # fitted with names, predict without: warning, same predictions
        est = cls(**SMALL).fit(df, y)
        np.testing.assert_array_equal(est.feature_names_in_, columns)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            expected = est.predict(df)
        with pytest.warns(UserWarning, match="X does not have valid feature names, but"):
            np.testing.assert_array_equal(est.predict(X), expected)
        with pytest.warns(UserWarning, match="X does not have valid feature names, but"):
            est.predict(np.ascontiguousarray(X, dtype=np.float64))  # fast-path shape
        # columns in another order: error
        with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
            est.predict(df[columns[::-1]])
        # fitted without names, predict with: warning
        est = cls(**SMALL).fit(X, y)
        assert not hasattr(est, "feature_names_in_")
        with pytest.warns(UserWarning, match="X has feature names, but"):
            np.testing.assert_array_equal(est.predict(df), est.predict(X))
        # non-string column names are not feature names
        est = cls(**SMALL).fit(pd.DataFrame(X), y)
        assert not hasattr(est, "feature_names_in_")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            est.predict(X)


def _fit_peak_bytes(X, y):
    import tracemalloc

    model = MLPRegressor(hidden_layer_sizes=(4,), max_iter=1, batch_size=500, random_state=0)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_fit_copies_non_c_layouts_at_most_once():
    """Fortran-ordered X was copied twice during fit; CSR data never is."""
    X = np.random.RandomState(0).rand(4000, 100).astype(np.float32)
    y = X[:, 0].copy()
    _fit_peak_bytes(X, y)  # load the compiled kernels outside the measurement
    base = _fit_peak_bytes(X, y)
    assert _fit_peak_bytes(np.asfortranarray(X), y) - base < 1.5 * X.nbytes
    csr = sp.csr_matrix(X)
    # the CSR arrays are used as given except the column indices, widened to
    # int64 (8 bytes a nonzero); a copy of the float32 values would add 4 more
    assert _fit_peak_bytes(csr, y) - base < csr.nnz * (8 + 2)
