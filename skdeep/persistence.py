"""Saving fitted models: what skops must trust, and a lighter copy for deployment.

A fitted skdeep model pickles (``pickle``, ``joblib``) and saves with
``skops.io.dump``. ``skops.io.load`` rebuilds only the types it is told to
trust; :data:`TRUSTED_TYPES` names every skdeep type a saved model can hold, by
its public import path, and :func:`trusted_types` the ones one model holds::

    import skops.io
    from skdeep.persistence import TRUSTED_TYPES

    skops.io.dump(model, "model.skops")
    model = skops.io.load("model.skops", trusted=TRUSTED_TYPES)

``load`` raises if the file holds any type outside the list, so a file that
needs more than skdeep's own types (a callback class of yours, a NumPy
``RandomState`` given as ``random_state``) is refused until you have checked
``skops.io.get_untrusted_types(file=...)`` yourself.

A model trained by a stochastic solver keeps its optimizer state (``sgd``
momentum: one vector the size of the weights; the Adam family: two) so that
``partial_fit`` continues exactly. :func:`for_deployment` gives a copy without
it, to save a model that only serves predictions. See ``docs/deploy.md``.
"""

import copy

import numpy as np

from skdeep._mlp import BaseMultilayerPerceptron

#: Every skdeep type a saved model can hold, by public import path: the
#: estimators, the state a stochastic solver keeps, and the objects that can
#: be passed as parameters (optimizers, schedules, activations, initializers,
#: callbacks, pretrained layers).
TRUSTED_TYPES = (
    "skdeep.MLPClassifier",
    "skdeep.MLPRegressor",
    "skdeep.PretrainedLayers",
    "skdeep.autoencoder.StackedAutoencoder",
    "skdeep.optimizers.OptimizerState",
    "skdeep.optimizers.SGD",
    "skdeep.optimizers.Adagrad",
    "skdeep.optimizers.RMSprop",
    "skdeep.optimizers.Adam",
    "skdeep.optimizers.Nadam",
    "skdeep.optimizers.Adamax",
    "skdeep.optimizers.AdamW",
    "skdeep.optimizers.Ftrl",
    "skdeep.schedules.Constant",
    "skdeep.schedules.InvScaling",
    "skdeep.schedules.Adaptive",
    "skdeep.schedules.PowerDecay",
    "skdeep.schedules.ExponentialDecay",
    "skdeep.schedules.PiecewiseConstant",
    "skdeep.schedules.ReduceOnPlateau",
    "skdeep.schedules.OneCycle",
    "skdeep.schedules.CosineDecay",
    "skdeep.activations.Identity",
    "skdeep.activations.Logistic",
    "skdeep.activations.Tanh",
    "skdeep.activations.ReLU",
    "skdeep.activations.LeakyReLU",
    "skdeep.activations.RReLU",
    "skdeep.activations.PReLU",
    "skdeep.activations.ELU",
    "skdeep.activations.SELU",
    "skdeep.activations.GELU",
    "skdeep.activations.Swish",
    "skdeep.initializers.VarianceScaling",
    "skdeep.callbacks.EarlyStopping",
    "skdeep.callbacks.CSVLogger",
    "skdeep.callbacks.ModelCheckpoint",
)


def trusted_types(model):
    """The skdeep types saving ``model`` with skops puts in the file, sorted.

    Each is named by its public import path, as
    ``skops.io.get_untrusted_types`` lists it. ``model`` may be any object
    holding skdeep estimators (a ``Pipeline``, a ``GridSearchCV``); types that
    are not skdeep's are not listed.

    Parameters
    ----------
    model : object
        The object to save.

    Returns
    -------
    list of str
    """
    return sorted({_type_name(obj) for obj in _reachable(model) if _type_name(obj).startswith("skdeep.")})


def for_deployment(model):
    """A copy of ``model`` without the optimizer state, to save for predictions.

    Every skdeep MLP inside ``model`` (itself, a pipeline step, a
    ``pretrained`` source) loses the moment and accumulator vectors of its
    stochastic solver; its weights, fitted attributes and predictions are
    unchanged, and ``model`` itself is left as it is. A ``partial_fit`` on the
    copy starts a new optimizer state (Adam's moments and bias correction from
    zero) from the current weights and learning-rate schedule.

    Parameters
    ----------
    model : object
        A fitted estimator, or any object holding some.

    Returns
    -------
    object
        The copy.
    """
    light = copy.deepcopy(model)
    for obj in _reachable(light):
        if isinstance(obj, BaseMultilayerPerceptron):
            obj.__dict__.pop("_optimizer", None)
    return light


def _type_name(obj):
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _reachable(root):
    """Every object ``root`` pickles: through containers and the instances' saved state."""
    seen, stack = set(), [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, complex, bool, type(None), np.ndarray, np.generic)):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        else:
            state = obj.__getstate__() if hasattr(obj, "__getstate__") else None
            if isinstance(state, dict):
                stack.extend(state.values())
