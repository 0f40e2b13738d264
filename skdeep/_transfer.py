"""Reusing pretrained layers: transfer learning, freezing and fine-tuning.

The chapter's "Reusing Pretrained Layers" the scikit-learn way: a network takes
its lowest hidden layers from a fitted model (``pretrained``,
``n_reused_layers``) and keeps its lowest layers fixed while the rest trains
(``n_frozen_layers``). Weights are copied at the first fit, never shared, so
training the new model never changes the source.
"""

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import Interval

from skdeep import activations

PARAMETERS_DOC = """    pretrained : fitted estimator, PretrainedLayers or None, default=None
        Model whose lowest hidden layers initialize this network at the first
        fit (not at warm starts): a fitted :class:`MLPClassifier` or
        :class:`MLPRegressor` (skdeep's or scikit-learn's), a fitted
        :class:`StackedAutoencoder`, or ``PretrainedLayers(model)``. Pass the
        latter where the estimator is cloned (``GridSearchCV``,
        ``cross_validate``): ``clone`` re-creates an estimator-valued
        parameter unfitted. Weights, biases, PReLU slopes and batch-norm
        parameters and statistics are copied, never shared.
    n_reused_layers : int or None, default=None
        Number of lowest layers taken from ``pretrained``; None takes all its
        hidden layers. They must match this network's input width, layer
        sizes, activation and batch-norm settings.
    n_frozen_layers : int, default=0
        Number of lowest hidden layers that training leaves bitwise unchanged
        (their batch norm runs in inference mode); the backward pass stops
        above them (lbfgs holds them with bounds). For fine-tuning, unfreeze
        and continue with ``set_params(n_frozen_layers=0, warm_start=True)``.
"""

#: Fitted per-layer arrays besides the weights and biases: PReLU slopes (one
#: per hidden layer) and batch norm (the input's first, then one per hidden
#: layer), as the estimators name them without the trailing underscore.
_EXTRA_PARTS = (
    "prelu_alpha",
    "batch_norm_gamma",
    "batch_norm_beta",
    "batch_norm_moving_mean",
    "batch_norm_moving_var",
)
_BATCH_NORM_PARTS = _EXTRA_PARTS[1:]

_CLONE_HINT = (
    "An estimator passed as `pretrained` is re-created unfitted by "
    "sklearn.base.clone (GridSearchCV, cross_validate, ...): pass "
    "skdeep.PretrainedLayers(model), a plain copy of its layers, instead."
)


class PretrainedLayers:
    """A copy of a fitted network's layers, to initialize another network.

    A plain object, not an estimator: :func:`sklearn.base.clone` deep-copies
    it, whereas it re-creates an estimator-valued parameter unfitted. Use it as
    ``pretrained`` wherever the new model gets cloned (``GridSearchCV``,
    ``cross_validate``).

    Parameters
    ----------
    model : fitted estimator
        A fitted :class:`MLPClassifier` or :class:`MLPRegressor` (skdeep's or
        scikit-learn's): its hidden layers; or a fitted
        :class:`StackedAutoencoder`: its encoder.
    include_output : bool, default=False
        Also copy the output layer, to start a model with the same outputs
        from the source's weights.

    Attributes
    ----------
    coefs : list of ndarray
        Weight matrices ``(fan_in, fan_out)``, lowest layer first.
    intercepts : list of ndarray
        Bias vectors.
    activation : str or Activation
        Hidden activation of the source.
    n_features_in : int
        Input width of the source.
    out_activation : str or None
        Output activation when the output layer is included.
    batch_norm : {'before', 'after'} or None
        Batch-norm placement in the hidden layers.
    batch_norm_input : bool
        Whether the input is batch-normalized.
    prelu_alpha, batch_norm_gamma, batch_norm_beta, batch_norm_moving_mean, \
batch_norm_moving_var : list of ndarray
        PReLU slopes and batch-norm parameters and statistics, laid out as the
        estimators' fitted attributes of the same names (empty when unused).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skdeep import MLPClassifier, PretrainedLayers
    >>> X, y = load_digits(return_X_y=True)
    >>> source = MLPClassifier((32, 16), max_iter=20, random_state=0).fit(X / 16, y)
    >>> PretrainedLayers(source)
    PretrainedLayers(n_features_in=64, hidden_layer_sizes=(32, 16), activation='relu')
    >>> search = GridSearchCV(
    ...     MLPClassifier((32, 16), pretrained=PretrainedLayers(source), max_iter=20),
    ...     {"n_frozen_layers": [0, 1, 2]},
    ... )
    """

    def __init__(self, model, include_output=False):
        if not hasattr(model, "coefs_"):
            if isinstance(model, BaseEstimator) and hasattr(model, "hidden_layer_sizes"):
                raise ValueError(
                    f"The {type(model).__name__} to take layers from is not fitted. "
                    + _CLONE_HINT
                )
            raise TypeError(
                "pretrained takes the layers of a fitted MLPClassifier, MLPRegressor "
                f"or StackedAutoencoder, got {type(model).__name__}."
            )
        coefs, intercepts = model.coefs_, model.intercepts_
        # An estimator with an output layer says how it activates it; an
        # autoencoder's coefs_ are all encoder layers.
        out_activation = getattr(model, "out_activation_", None)
        if include_output and out_activation is None:
            raise ValueError(f"{type(model).__name__} has no output layer to include.")
        if out_activation is not None and not include_output:
            coefs, intercepts, out_activation = coefs[:-1], intercepts[:-1], None
        self.coefs = [np.array(c) for c in coefs]
        self.intercepts = [np.array(b) for b in intercepts]
        self.activation = clone(model.activation, safe=False)
        self.n_features_in = int(model.n_features_in_)
        self.out_activation = out_activation
        self.batch_norm = getattr(model, "batch_norm", None)
        self.batch_norm_input = bool(getattr(model, "batch_norm_input", False))
        for name in _EXTRA_PARTS:
            setattr(self, name, [np.array(a) for a in getattr(model, name + "_", [])])

    @classmethod
    def _from_arrays(cls, coefs, intercepts, activation, n_features_in, out_activation=None):
        """Layers given as arrays (copied), without batch norm or PReLU slopes;
        ``out_activation`` marks the last one as an output layer."""
        layers = cls.__new__(cls)
        layers.coefs = [np.array(c) for c in coefs]
        layers.intercepts = [np.array(b) for b in intercepts]
        layers.activation = clone(activation, safe=False)
        layers.n_features_in = int(n_features_in)
        layers.out_activation = out_activation
        layers.batch_norm = None
        layers.batch_norm_input = False
        for name in _EXTRA_PARTS:
            setattr(layers, name, [])
        return layers

    @property
    def hidden_layer_sizes(self):
        """Widths of the hidden layers held."""
        n_hidden = len(self.coefs) - (self.out_activation is not None)
        return tuple(int(c.shape[1]) for c in self.coefs[:n_hidden])

    def __repr__(self):
        output = "" if self.out_activation is None else f", out_activation={self.out_activation!r}"
        return (
            f"PretrainedLayers(n_features_in={self.n_features_in}, "
            f"hidden_layer_sizes={self.hidden_layer_sizes}, "
            f"activation={self.activation!r}{output})"
        )


PARAMETER_CONSTRAINTS = {
    "pretrained": [PretrainedLayers, BaseEstimator, None],
    "n_reused_layers": [Interval(Integral, 0, None, closed="left"), None],
    "n_frozen_layers": [Interval(Integral, 0, None, closed="left")],
}


def reuse_layers(estimator):
    """Copy the pretrained layers into a freshly initialized network.

    Called at the first fit, after the initial weights are drawn; writes the
    weights, biases, PReLU slopes and batch-norm parameters and statistics of
    the reused layers into the estimator's fitted arrays in place (their dtype
    is kept).
    """
    first_trainable(estimator)
    source = estimator.pretrained
    if source is None:
        if estimator.n_reused_layers:
            raise ValueError(
                f"n_reused_layers={estimator.n_reused_layers} needs `pretrained`, a "
                "model to take the layers from."
            )
        return
    if not isinstance(source, PretrainedLayers):
        source = PretrainedLayers(source)
    n_available = len(source.coefs)
    n_reused = n_available if estimator.n_reused_layers is None else estimator.n_reused_layers
    if n_reused > n_available:
        raise ValueError(
            f"n_reused_layers={n_reused}, but the pretrained model has only "
            f"{n_available} layers to reuse."
        )
    if n_reused == 0:
        return
    if source.n_features_in != estimator.n_features_in_:
        raise ValueError(
            f"X has {estimator.n_features_in_} features, but the pretrained layers take "
            f"{source.n_features_in}. Transform the input to the source's features first."
        )
    if _activation_options(source.activation) != _activation_options(estimator.activation):
        raise ValueError(
            f"The pretrained layers use activation={source.activation!r}, this network "
            f"activation={estimator.activation!r}; they must match."
        )
    if (source.batch_norm, source.batch_norm_input) != (estimator.batch_norm, estimator.batch_norm_input):
        raise ValueError(
            f"The pretrained layers use batch_norm={source.batch_norm!r}, "
            f"batch_norm_input={source.batch_norm_input}; this network "
            f"batch_norm={estimator.batch_norm!r}, "
            f"batch_norm_input={estimator.batch_norm_input}. They must match."
        )
    coefs, intercepts = estimator.coefs_, estimator.intercepts_
    into_output = n_reused >= len(coefs)
    from_output = source.out_activation is not None and n_reused == n_available
    if into_output and not from_output:
        raise ValueError(
            f"n_reused_layers={n_reused} would overwrite this network's output layer with "
            "a hidden layer: reuse fewer layers or add hidden layers."
        )
    if from_output and not into_output:
        raise ValueError(
            "The pretrained output layer can only become this network's output layer: "
            f"reuse fewer than {n_available} layers or give this network "
            f"{n_available - 1} hidden layers."
        )
    if into_output and source.out_activation != estimator.out_activation_:
        raise ValueError(
            f"The pretrained output layer uses out_activation={source.out_activation!r}, "
            f"this network {estimator.out_activation_!r}."
        )
    expected = [c.shape for c in source.coefs[:n_reused]]
    found = [c.shape for c in coefs[:n_reused]]
    if found != expected:
        raise ValueError(
            f"The {n_reused} reused layers have weight shapes {expected}, this network's "
            f"lowest layers {found}: hidden_layer_sizes must begin with "
            f"{tuple(s[1] for s in expected)}."
        )
    for layer in range(n_reused):
        coefs[layer][...] = source.coefs[layer]
        intercepts[layer][...] = source.intercepts[layer]
    n_hidden = min(n_reused, len(coefs) - 1)
    for layer in range(n_hidden if source.prelu_alpha else 0):
        estimator.prelu_alpha_[layer][...] = source.prelu_alpha[layer]
    # Batch-norm lists hold the input's first (it goes with the first layer),
    # then one per hidden layer; source and network are laid out alike.
    n_batch_norm = int(source.batch_norm_input) + (n_hidden if source.batch_norm else 0)
    for name in _BATCH_NORM_PARTS:
        for index in range(n_batch_norm):
            getattr(estimator, name + "_")[index][...] = getattr(source, name)[index]


def _activation_options(activation):
    """What the kernels see of an activation: names and objects compare alike."""
    return activations.resolve(clone(activation, safe=False))._options()


def first_trainable(estimator):
    """The validated ``n_frozen_layers``: the index of the lowest trainable layer."""
    n_hidden = len(estimator.coefs_) - 1
    if estimator.n_frozen_layers > n_hidden:
        raise ValueError(
            f"n_frozen_layers={estimator.n_frozen_layers}, but the network has "
            f"{n_hidden} hidden layers; the output layer always trains."
        )
    if estimator.n_frozen_layers and estimator.solver == "lbfgs" and (
        estimator.batch_norm or estimator.batch_norm_input
    ):
        raise ValueError(
            "Frozen layers with batch norm need a stochastic solver: lbfgs runs batch "
            "norm in training mode, which would change the frozen layers' statistics."
        )
    return estimator.n_frozen_layers
