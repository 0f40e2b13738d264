"""ModelCheckpoint: saved mid-fit, loaded, and trained on from where it was saved."""

import pickle

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits

from skdeep import MLPClassifier
from skdeep.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


def _model(**params):
    base = dict(hidden_layer_sizes=(16,), max_iter=6, shuffle=False, random_state=0)
    return MLPClassifier(**{**base, **params})


def _weights(model):
    return [*model.coefs_, *model.intercepts_]


def _assert_same_weights(a, b):
    for x, y in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-9)


def test_pickling_mid_fit_leaves_the_fit_unchanged(digits, tmp_path):
    X, y = digits
    plain = _model().fit(X, y)
    saved = _model(callbacks=[ModelCheckpoint(tmp_path / "m.joblib")]).fit(X, y)
    _assert_same_weights(plain, saved)
    assert saved.callbacks[0].saved_ == [str(tmp_path / "m.joblib")] * 6


def test_every_n_epochs_with_epoch_in_the_path(digits, tmp_path):
    X, y = digits
    checkpoint = ModelCheckpoint(str(tmp_path / "ckpt-{epoch:02d}.joblib"), every_n_epochs=2)
    model = _model(callbacks=[checkpoint]).fit(X, y)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-02.joblib", "ckpt-04.joblib", "ckpt-06.joblib"]
    last = joblib.load(tmp_path / "ckpt-06.joblib")
    np.testing.assert_array_equal(last.predict(X), model.predict(X))
    middle = joblib.load(tmp_path / "ckpt-04.joblib")
    assert middle.n_iter_ == 4 and len(middle.history_) == 4
    assert middle.loss_ == model.history_[3]["loss"]


def test_partial_fit_from_a_checkpoint_continues_the_same_training(digits, tmp_path):
    # adam keeps its moments in the checkpoint: 3 epochs, save, 3 partial_fit = 6 epochs.
    X, y = digits
    model = _model(callbacks=[ModelCheckpoint(str(tmp_path / "{epoch}.joblib"))]).fit(X, y)
    resumed = joblib.load(tmp_path / "3.joblib").set_params(callbacks=None)
    for _ in range(3):
        resumed.partial_fit(X, y)
    _assert_same_weights(resumed, model)
    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(resumed.loss_curve_, model.loss_curve_, rtol=1e-6)


def test_warm_start_from_a_checkpoint_continues_the_same_training(digits, tmp_path):
    # A stateless optimizer: a warm-started fit from epoch 3 equals the uninterrupted fit.
    X, y = digits
    params = dict(solver="sgd", momentum=0.0, learning_rate_init=0.1)
    model = _model(callbacks=[ModelCheckpoint(str(tmp_path / "{epoch}.joblib"))], **params).fit(X, y)
    resumed = joblib.load(tmp_path / "3.joblib")
    resumed.set_params(callbacks=None, warm_start=True, max_iter=3).fit(X, y)
    _assert_same_weights(resumed, model)
    assert resumed.history_[-1]["epoch"] == 6


def test_save_best_only_keeps_the_best_epoch(digits, tmp_path):
    X, y = digits
    X_val, y_val = load_digits(return_X_y=True)[0][1000:1300] / 16.0, load_digits(return_X_y=True)[1][1000:1300]
    checkpoint = ModelCheckpoint(tmp_path / "best.joblib", save_best_only=True)
    model = _model(max_iter=15, learning_rate_init=0.05, callbacks=[checkpoint]).fit(X, y, eval_set=(X_val, y_val))
    scores = [r["validation_score"] for r in model.history_]
    best_epoch = int(np.argmax(scores)) + 1
    assert checkpoint.best_epoch_ == best_epoch and checkpoint.best_ == max(scores)
    best = joblib.load(tmp_path / "best.joblib")
    assert best.n_iter_ == best_epoch
    assert best.score(X_val, y_val) == max(scores)
    # one save per improvement only
    improvements = sum(s > max(scores[:i], default=-1) for i, s in enumerate(scores))
    assert len(checkpoint.saved_) == improvements


def test_monitor_loss_minimizes_and_missing_key_raises(digits, tmp_path):
    X, y = digits
    checkpoint = ModelCheckpoint(tmp_path / "best.joblib", monitor="loss", save_best_only=True)
    model = _model(callbacks=[checkpoint]).fit(X, y)
    assert checkpoint.best_ == min(model.loss_curve_)
    with pytest.raises(ValueError, match="validation_score"):
        _model(callbacks=[ModelCheckpoint(tmp_path / "x.joblib", save_best_only=True)]).fit(X, y)
    with pytest.raises(ValueError, match="mode"):
        _model(callbacks=[ModelCheckpoint(tmp_path / "x.joblib", mode="up")]).fit(X, y)


def test_checkpoint_with_other_callbacks_pickles(digits, tmp_path):
    # CSVLogger's open file is not pickled into the checkpoint.
    X, y = digits
    callbacks = [CSVLogger(tmp_path / "log.csv"), EarlyStopping(monitor="loss"), ModelCheckpoint(tmp_path / "m.joblib")]
    _model(max_iter=2, callbacks=callbacks).fit(X, y)
    loaded = joblib.load(tmp_path / "m.joblib")
    assert not hasattr(loaded.callbacks[0], "_file")
    pickle.loads(pickle.dumps(loaded))


def test_skops_backend(digits, tmp_path):
    skops_io = pytest.importorskip("skops.io")
    X, y = digits
    _model(max_iter=2, callbacks=[ModelCheckpoint(tmp_path / "m.skops", backend="skops")]).fit(X, y)
    path = tmp_path / "m.skops"
    loaded = skops_io.load(path, trusted=skops_io.get_untrusted_types(file=path))
    assert loaded.n_iter_ == 2
