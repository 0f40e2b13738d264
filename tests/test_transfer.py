"""Transfer learning, freezing, fine-tuning and the stacked autoencoder."""

import copy
import pickle

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from sklearn.pipeline import make_pipeline

from skdeep import MLPClassifier, MLPRegressor, PretrainedLayers, StackedAutoencoder

PARTS = (
    "coefs_",
    "intercepts_",
    "prelu_alpha_",
    "batch_norm_gamma_",
    "batch_norm_beta_",
    "batch_norm_moving_mean_",
    "batch_norm_moving_var_",
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16, y[:300]


@pytest.fixture(scope="module")
def source(digits):
    X, y = digits
    return MLPClassifier((16, 12), max_iter=15, random_state=0).fit(X, y)


def snapshot(model):
    return {name: [np.array(a) for a in getattr(model, name)] for name in PARTS if hasattr(model, name)}


def assert_layers_equal(a, b, layers):
    for name in ("coefs_", "intercepts_"):
        for layer in layers:
            assert_array_equal(getattr(a, name)[layer], getattr(b, name)[layer])


@pytest.mark.parametrize("wrap", [False, True], ids=["estimator", "PretrainedLayers"])
def test_copied_weights_equal_source(digits, source, wrap):
    X, y = digits
    pretrained = PretrainedLayers(source) if wrap else source
    clf = MLPClassifier((16, 12, 8), pretrained=pretrained, n_frozen_layers=2, max_iter=2, random_state=1)
    clf.fit(X, y)
    assert_layers_equal(clf, source, [0, 1])
    assert clf.coefs_[2].shape == (12, 8)


def test_reused_layers_are_copies_in_the_new_dtype(digits, source):
    X, y = digits
    reg = MLPRegressor(hidden_layer_sizes=(16,), pretrained=source, n_reused_layers=1, n_frozen_layers=1, max_iter=2)
    reg.fit(X.astype(np.float32), y.astype(np.float32))
    assert reg.coefs_[0].dtype == np.float32
    assert_array_equal(reg.coefs_[0], source.coefs_[0].astype(np.float32))
    assert not np.shares_memory(reg.coefs_[0], source.coefs_[0])


def test_source_unchanged_by_training(digits, source):
    X, y = digits
    before = snapshot(source)
    layers = PretrainedLayers(source)
    MLPClassifier((16, 12), pretrained=source, max_iter=5, random_state=1).fit(X, y)
    MLPClassifier((16, 12), pretrained=layers, max_iter=5, random_state=1).fit(X, y)
    for name, arrays in before.items():
        for a, b in zip(arrays, getattr(source, name)):
            assert_array_equal(a, b)
    assert_array_equal(layers.coefs[0], before["coefs_"][0])


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("n_frozen", [1, 2])
def test_frozen_layers_bitwise_unchanged(digits, source, solver, n_frozen):
    X, y = digits
    clf = MLPClassifier(
        (16, 12, 8), solver=solver, alpha=0.01, pretrained=source, n_frozen_layers=n_frozen,
        learning_rate_init=0.05, max_iter=5, random_state=1,
    ).fit(X, y)
    assert_layers_equal(clf, source, range(n_frozen))
    for layer in range(n_frozen, 2):  # reused but trainable
        assert not np.array_equal(clf.coefs_[layer], source.coefs_[layer])


def test_frozen_random_layers_and_partial_fit(digits):
    X, y = digits
    clf = MLPClassifier((16, 8), n_frozen_layers=1, random_state=0)
    clf.partial_fit(X, y, classes=np.unique(y))
    first = clf.coefs_[0].copy()
    top = clf.coefs_[1].copy()
    clf.partial_fit(X, y)
    assert_array_equal(clf.coefs_[0], first)
    assert not np.array_equal(clf.coefs_[1], top)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_unfreeze_and_warm_start_continue_from_current_weights(digits, source, solver):
    X, y = digits
    clf = MLPClassifier(
        (16, 12), solver=solver, pretrained=source, n_frozen_layers=2,
        learning_rate_init=0.01, max_iter=10, random_state=1,
    ).fit(X, y)
    trained = snapshot(clf)
    n_epochs = len(clf.loss_curve_)
    clf.set_params(n_frozen_layers=0, learning_rate_init=1e-6, warm_start=True, max_iter=1)
    clf.fit(X, y)
    assert len(clf.loss_curve_) == n_epochs + 1
    for name in ("coefs_", "intercepts_"):
        for before, after in zip(trained[name], getattr(clf, name)):
            assert_allclose(after, before, atol=1e-4)
            assert not np.array_equal(after, before)
    # A new fit (no warm start) starts again from the pretrained layers.
    clf.set_params(warm_start=False, n_frozen_layers=2).fit(X, y)
    assert_layers_equal(clf, source, [0, 1])


def test_grid_search_over_reused_and_frozen_layers(digits, source):
    X, y = digits
    search = GridSearchCV(
        MLPClassifier((16, 12), pretrained=PretrainedLayers(source), max_iter=5, random_state=0),
        {"n_reused_layers": [0, 1, 2], "n_frozen_layers": [0, 1]},
        cv=2,
        error_score="raise",
    ).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert_layers_equal(search.best_estimator_, source, range(search.best_params_["n_frozen_layers"]))


def test_cloned_estimator_source_asks_for_pretrained_layers(digits, source):
    X, y = digits
    clf = clone(MLPClassifier((16, 12), pretrained=source, max_iter=2))
    with pytest.raises(ValueError, match=r"not fitted.*PretrainedLayers\(model\)"):
        clf.fit(X, y)


def test_scikit_learn_mlp_as_source(digits):
    X, y = digits
    sk = SklearnMLPClassifier((16,), max_iter=5, random_state=0).fit(X, y)
    clf = MLPClassifier((16,), pretrained=sk, n_frozen_layers=1, max_iter=2).fit(X, y)
    assert_array_equal(clf.coefs_[0], sk.coefs_[0])


def test_include_output_reuses_the_whole_network(digits):
    X, y = digits
    source = MLPRegressor(hidden_layer_sizes=(16,), max_iter=20, random_state=0).fit(X, y)
    layers = PretrainedLayers(source, include_output=True)
    assert layers.hidden_layer_sizes == (16,)
    reg = MLPRegressor(hidden_layer_sizes=(16,), pretrained=layers, solver="sgd", momentum=0.0, learning_rate_init=1e-12, max_iter=1)
    reg.fit(X, y)
    assert_allclose(reg.predict(X), source.predict(X), atol=1e-8)


def test_batch_norm_and_prelu_are_copied(digits):
    X, y = digits
    options = dict(activation="prelu", batch_norm="after", batch_norm_input=True)
    source = MLPClassifier((16, 12), max_iter=5, random_state=0, **options).fit(X, y)
    clf = MLPClassifier((16, 12, 8), pretrained=source, n_frozen_layers=2, max_iter=3, random_state=1, **options)
    clf.fit(X, y)
    assert_layers_equal(clf, source, [0, 1])
    for name in ("prelu_alpha_", "batch_norm_gamma_", "batch_norm_beta_"):
        for a, b in zip(getattr(source, name), getattr(clf, name)):  # input, hidden 1, hidden 2
            assert_array_equal(a, b)
    with pytest.raises(ValueError, match="batch_norm"):
        MLPClassifier((16, 12), pretrained=source, activation="prelu", max_iter=1).fit(X, y)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_frozen_batch_norm_runs_in_inference_mode(digits, solver):
    X, y = digits
    options = dict(batch_norm="before", batch_norm_input=True)
    source = MLPClassifier((16, 12), max_iter=5, random_state=0, **options).fit(X, y)
    clf = MLPClassifier((16, 12, 8), solver=solver, pretrained=source, n_frozen_layers=2, max_iter=3, **options)
    clf.fit(X, y)
    for name in ("batch_norm_moving_mean_", "batch_norm_moving_var_", "batch_norm_gamma_"):
        for a, b in zip(getattr(source, name), getattr(clf, name)):  # input, hidden 1, hidden 2
            assert_array_equal(a, b)
    assert not np.array_equal(clf.batch_norm_moving_mean_[3], np.zeros(8))  # the new layer's trained
    with pytest.raises(ValueError, match="stochastic solver"):
        clf.set_params(solver="lbfgs", warm_start=True).fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(hidden_layer_sizes=(12, 12)), r"hidden_layer_sizes must begin with \(16, 12\)"),
        (dict(hidden_layer_sizes=(16, 12), activation="tanh"), "activation"),
        (dict(hidden_layer_sizes=(16, 12), n_reused_layers=3), "only 2 layers"),
        (dict(hidden_layer_sizes=(16, 12), n_frozen_layers=3), "2 hidden layers"),
        (dict(hidden_layer_sizes=(16,)), "output layer"),
    ],
)
def test_mismatch_errors(digits, source, params, match):
    X, y = digits
    with pytest.raises(ValueError, match=match):
        MLPClassifier(pretrained=source, max_iter=1, **params).fit(X, y)


def test_other_errors(digits, source):
    X, y = digits
    with pytest.raises(ValueError, match="features"):
        MLPClassifier((16, 12), pretrained=source, max_iter=1).fit(X[:, :32], y)
    with pytest.raises(ValueError, match="needs `pretrained`"):
        MLPClassifier((16,), n_reused_layers=1, max_iter=1).fit(X, y)
    with pytest.raises(TypeError, match="pretrained takes"):
        PretrainedLayers(make_pipeline(StackedAutoencoder()))
    with pytest.raises(ValueError, match="no output layer"):
        PretrainedLayers(StackedAutoencoder((4,), max_iter=1).fit(X), include_output=True)
    layers = PretrainedLayers(MLPClassifier((8, 4), max_iter=2).fit(X, y), include_output=True)
    with pytest.raises(ValueError, match="can only become this network's output layer"):
        MLPClassifier((8, 4, 4), pretrained=layers, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="out_activation"):
        MLPClassifier((8, 4), pretrained=layers, max_iter=1).fit(X, y % 2)


def test_pretrained_layers_clone_and_repr(source):
    clf = MLPClassifier((16, 12), pretrained=PretrainedLayers(source))
    cloned = clone(clf)
    assert cloned.pretrained is not clf.pretrained
    assert_array_equal(cloned.pretrained.coefs[0], source.coefs_[0])
    assert "PretrainedLayers(n_features_in=64, hidden_layer_sizes=(16, 12)" in repr(clf)
    assert isinstance(copy.deepcopy(clf.pretrained), PretrainedLayers)


# -- StackedAutoencoder ------------------------------------------------------------


@pytest.fixture(scope="module")
def autoencoder(digits):
    X, _ = digits
    return StackedAutoencoder((24, 12), learning_rate_init=0.01, max_iter=50, random_state=0).fit(X)


def test_autoencoder_transform_and_reconstruction(digits, autoencoder):
    X, _ = digits
    codes = autoencoder.transform(X)
    assert codes.shape == (len(X), 12) and (codes >= 0).all()
    reconstruction = autoencoder.inverse_transform(codes)
    assert reconstruction.shape == X.shape
    baseline = np.mean((X - X.mean(axis=0)) ** 2)
    assert np.mean((X - reconstruction) ** 2) < 0.5 * baseline
    assert len(autoencoder.layer_losses_) == 2 and autoencoder.fine_tune_loss_ is not None
    assert_allclose(autoencoder.transform(sp.csr_matrix(X)), codes)
    with pytest.raises(ValueError, match="codes of this autoencoder have 12"):
        autoencoder.inverse_transform(codes[:, :5])


def test_fine_tuning_lowers_the_reconstruction_error(digits, autoencoder):
    X, _ = digits
    greedy = clone(autoencoder).set_params(fine_tune=False).fit(X)
    assert greedy.fine_tune_loss_ is None

    def error(ae):
        return np.mean((X - ae.inverse_transform(ae.transform(X))) ** 2)

    assert error(autoencoder) < error(greedy)


@pytest.mark.filterwarnings("ignore::skdeep.SelfNormalizationWarning")
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "elu", "selu", "gelu", "swish", "leaky_relu"])
def test_one_layer_autoencoder_is_an_mlp_regressor(digits, activation):
    X, _ = digits
    ae = StackedAutoencoder((8,), activation=activation, max_iter=3, random_state=0).fit(X)
    reg = MLPRegressor(hidden_layer_sizes=(8,), activation=activation, max_iter=3, random_state=0).fit(X, X)
    assert_allclose(ae.inverse_transform(ae.transform(X)), reg.predict(X), atol=1e-12)
    assert_array_equal(ae.coefs_[0], reg.coefs_[0])


def test_autoencoder_as_pretrained_source(digits, autoencoder):
    X, y = digits
    clf = MLPClassifier((24, 12), pretrained=autoencoder, n_frozen_layers=2, max_iter=5, random_state=0)
    clf.fit(X[:50], y[:50])
    assert_layers_equal(clf, autoencoder, [0, 1])


def test_denoising_autoencoder(digits):
    X, _ = digits
    ae = StackedAutoencoder((16, 8), noise=0.3, max_iter=5, random_state=0)
    assert ae.fit_transform(sp.csr_matrix(X)).shape == (len(X), 8)
    with pytest.raises(ValueError, match="stochastic solver"):
        ae.set_params(solver="lbfgs").fit(X)
    with pytest.raises(ValueError, match="prelu"):
        StackedAutoencoder(activation="prelu").fit(X)


def test_pipeline_joblib_round_trip(digits, autoencoder, tmp_path):
    X, y = digits
    pipe = make_pipeline(StackedAutoencoder((16,), max_iter=10, random_state=0), MLPClassifier((8,), max_iter=20, random_state=0))
    pretrained = MLPClassifier((24, 12), pretrained=autoencoder, n_frozen_layers=1, max_iter=20, random_state=0)
    for model in (pipe.fit(X, y), pretrained.fit(X, y)):
        path = tmp_path / "model.joblib"
        joblib.dump(model, path)
        assert_array_equal(joblib.load(path).predict_proba(X), model.predict_proba(X))


def test_autoencoder_pickles_small(autoencoder):
    n_bytes = sum(a.nbytes for name in ("coefs_", "intercepts_", "decoder_coefs_", "decoder_intercepts_") for a in getattr(autoencoder, name))
    assert len(pickle.dumps(autoencoder)) < n_bytes + 4000
