"""Saving models: public type paths, the skops trust list, sizes, the deployment copy."""

import importlib
import inspect
import itertools
import pickle
import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skdeep
from skdeep import MLPClassifier, MLPRegressor, PretrainedLayers, StackedAutoencoder
from skdeep import activations, callbacks, initializers, optimizers, schedules
from skdeep.persistence import TRUSTED_TYPES, for_deployment, trusted_types

RNG = np.random.RandomState(0)
X = RNG.rand(60, 5)
Y_CLASS = (X[:, 0] + X[:, 1] > 1).astype(int)
Y_REG = X[:, 0] - 2 * X[:, 2]

BASES = (optimizers.Optimizer, schedules.Schedule, activations.Activation, callbacks.Callback)


def _name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _public_classes():
    """Every concrete class of the modules whose objects a model can hold, and the top-level ones."""
    found = {_name(obj) for obj in vars(skdeep).values() if inspect.isclass(obj) and not issubclass(obj, Warning)}
    found.discard("skdeep.lr_finder.LRFinderResult")  # a result of lr_find, never held by a model
    for module in (optimizers, schedules, activations, initializers, callbacks):
        for obj in vars(module).values():
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and obj not in BASES:
                found.add(_name(obj))
    return found


def _fit(model, X=X, y=Y_CLASS):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y) if y is not None else model.fit(X)


def test_trusted_types_is_exactly_the_public_classes():
    assert len(set(TRUSTED_TYPES)) == len(TRUSTED_TYPES)
    assert set(TRUSTED_TYPES) == _public_classes()


@pytest.mark.parametrize("name", TRUSTED_TYPES)
def test_trusted_type_names_are_public_import_paths(name):
    module, _, attribute = name.rpartition(".")
    assert not any(part.startswith("_") for part in module.split("."))
    cls = getattr(importlib.import_module(module), attribute)
    assert _name(cls) == name


def test_old_pickles_naming_the_private_module_still_load():
    model = _fit(MLPClassifier((3,), max_iter=2, random_state=0))
    data = pickle.dumps(model, protocol=2)
    assert b"skdeep._mlp" not in data
    old = data.replace(b"cskdeep\nMLPClassifier\n", b"cskdeep._mlp\nMLPClassifier\n")
    assert old != data
    assert_array_equal(pickle.loads(old).predict_proba(X), model.predict_proba(X))


# One fitted model per activation object, cycling through every optimizer and
# schedule, plus the other kinds: lbfgs, a regressor, an initializer object,
# callbacks, pretrained layers, a fitted model as ``pretrained``, a pipeline,
# the autoencoder.
ACTIVATIONS = [
    activations.Identity(), activations.Logistic(), activations.Tanh(), activations.ReLU(),
    activations.LeakyReLU(0.1), activations.RReLU(), activations.PReLU(), activations.ELU(),
    activations.SELU(), activations.GELU(), activations.Swish(),
]
OPTIMIZERS = [
    optimizers.SGD(momentum=0.9), optimizers.Adagrad(), optimizers.RMSprop(), optimizers.Adam(),
    optimizers.Nadam(), optimizers.Adamax(), optimizers.AdamW(), optimizers.Ftrl(),
]
SCHEDULES = [
    schedules.Constant(), schedules.InvScaling(), schedules.Adaptive(), schedules.PowerDecay(),
    schedules.ExponentialDecay(), schedules.PiecewiseConstant(), schedules.ReduceOnPlateau(),
    schedules.OneCycle(), schedules.CosineDecay(),
]


def _models(tmp_path):
    source = _fit(MLPClassifier((4,), max_iter=3, random_state=0))
    models = [
        _fit(MLPClassifier((4, 3), activation=a, solver=o, learning_rate=s, max_iter=3, random_state=0))
        for a, o, s in zip(ACTIVATIONS, itertools.cycle(OPTIMIZERS), itertools.cycle(SCHEDULES))
    ]
    models += [
        _fit(MLPClassifier((4,), solver="lbfgs", max_iter=5, random_state=0)),
        _fit(MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", max_iter=3, random_state=0), y=Y_REG),
        _fit(MLPClassifier((4,), kernel_initializer=initializers.VarianceScaling(2.0), max_iter=3, random_state=0)),
        _fit(MLPClassifier(
            (4,), max_iter=3, random_state=0, callbacks=[
                callbacks.EarlyStopping(monitor="loss"), callbacks.CSVLogger(str(tmp_path / "log.csv")),
                callbacks.ModelCheckpoint(str(tmp_path / "ckpt.joblib"), monitor="loss"),
            ],
        )),
        _fit(MLPClassifier((4,), pretrained=PretrainedLayers(source), max_iter=3, random_state=0)),
        _fit(MLPClassifier((4,), pretrained=source, max_iter=3, random_state=0)),
        _fit(make_pipeline(StandardScaler(), MLPClassifier((4,), solver="sgd", max_iter=3, random_state=0))),
        _fit(StackedAutoencoder((4, 3), activation=activations.ELU(), solver=optimizers.Nadam(),
                                learning_rate=schedules.OneCycle(), max_iter=3, random_state=0), y=None),
    ]
    return models


def _outputs(model):
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)
    if hasattr(model, "transform"):
        return model.transform(X)
    return model.predict(X)


def test_trust_lists_are_what_skops_asks_for(tmp_path):
    sio = pytest.importorskip("skops.io")
    covered = set()
    for model in _models(tmp_path):
        data = sio.dumps(model)
        untrusted = sio.get_untrusted_types(data=data)
        assert untrusted == trusted_types(model), model
        covered.update(untrusted)
        loaded = sio.loads(data, trusted=TRUSTED_TYPES)
        assert_array_equal(_outputs(loaded), _outputs(model))
        loaded = sio.loads(data, trusted=trusted_types(model))
        assert_array_equal(_outputs(loaded), _outputs(model))
    assert set(TRUSTED_TYPES) - covered == set()  # every listed type was needed by some model


def test_skops_load_refuses_types_outside_the_list():
    sio = pytest.importorskip("skops.io")
    model = _fit(MLPClassifier((3,), solver=optimizers.Nadam(), max_iter=2, random_state=0))
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match="Nadam"):
        sio.loads(sio.dumps(model), trusted=["skdeep.MLPClassifier", "skdeep.optimizers.OptimizerState"])


def test_skops_round_trip_continues_partial_fit_exactly():
    sio = pytest.importorskip("skops.io")
    model = MLPClassifier((4,), solver=optimizers.Adam(), random_state=0)
    for _ in range(2):
        model.partial_fit(X, Y_CLASS, classes=[0, 1])
    loaded = sio.loads(sio.dumps(model), trusted=TRUSTED_TYPES)
    for m in (model, loaded):
        m.partial_fit(X, Y_CLASS)
    for a, b in zip(model.coefs_ + model.intercepts_, loaded.coefs_ + loaded.intercepts_):
        assert_array_equal(a, b)


def _weight_bytes(model):
    return sum(a.nbytes for a in model.coefs_ + model.intercepts_)


@pytest.mark.parametrize(("solver", "n_slots"), [("lbfgs", 0), ("sgd", 1), ("adam", 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizer_state_is_what_for_deployment_drops(solver, n_slots, dtype):
    model = _fit(MLPClassifier((64, 32), solver=solver, max_iter=2, random_state=0), X=X.astype(dtype))
    light = for_deployment(model)
    weights = _weight_bytes(model)
    full, small = len(pickle.dumps(model)), len(pickle.dumps(light))
    assert 0 <= full - small - n_slots * weights < 300  # the slots, and a few hundred bytes of framing
    assert small < weights + 6000  # weights, plus hyperparameters and a short history
    assert_array_equal(light.predict_proba(X.astype(dtype)), model.predict_proba(X.astype(dtype)))
    assert ("_optimizer" in model.__dict__) == (n_slots > 0)  # the original keeps its state
    assert "_optimizer" not in light.__dict__


def test_for_deployment_reaches_into_pipelines_and_keeps_training_possible():
    pipe = _fit(make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=3, random_state=0)))
    light = for_deployment(pipe)
    assert "_optimizer" in pipe[-1].__dict__ and "_optimizer" not in light[-1].__dict__
    assert_array_equal(light.predict_proba(X), pipe.predict_proba(X))
    before = light[-1].coefs_[0].copy()
    light[-1].partial_fit(light[0].transform(X), Y_CLASS)
    assert "_optimizer" in light[-1].__dict__
    assert not np.array_equal(light[-1].coefs_[0], before)


def test_joblib_file_of_deployment_copy(tmp_path):
    model = _fit(MLPClassifier((64, 32), max_iter=2, random_state=0))
    full, light = tmp_path / "full.joblib", tmp_path / "light.joblib"
    joblib.dump(model, full)
    joblib.dump(for_deployment(model), light)
    assert full.stat().st_size - light.stat().st_size >= 2 * _weight_bytes(model)
    assert_array_equal(joblib.load(light).predict_proba(X), model.predict_proba(X))
