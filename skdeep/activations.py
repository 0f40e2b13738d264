"""Hidden-layer activations: names and small objects with hyperparameters.

``activation`` takes a name (``"relu"``, ``"elu"``, ...) or an object
(``LeakyReLU(alpha=0.2)``). Objects are estimator-like, so grid searches reach
``activation__alpha``. Names use Keras' defaults, e.g. ``"leaky_relu"`` is
``LeakyReLU(alpha=0.3)``. The formulas live in
:mod:`skdeep.kernels.cpu.activations`, each value kernel next to its
backward pass.
"""

from numbers import Real

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval

from skdeep.kernels import codes


class Activation(BaseEstimator):
    """Base class: an activation without hyperparameters."""

    code = None
    _parameter_constraints: dict = {}

    def _options(self):
        """``(code, alpha, rrelu_lower, rrelu_upper)`` for the kernels."""
        return self.code, 0.0, 0.0, 0.0


def _simple(name, code, doc):
    return type(name, (Activation,), {"code": code, "__doc__": doc, "__init__": lambda self: None})


Identity = _simple("Identity", codes.IDENTITY, "``f(z) = z``.")
Logistic = _simple("Logistic", codes.LOGISTIC, "``f(z) = 1 / (1 + exp(-z))``.")
Tanh = _simple("Tanh", codes.TANH, "``f(z) = tanh(z)``.")
ReLU = _simple("ReLU", codes.RELU, "``f(z) = max(z, 0)`` (Nair & Hinton, 2010).")
SELU = _simple(
    "SELU", codes.SELU,
    "Scaled ELU, ``lambda * (z if z > 0 else alpha * (exp(z) - 1))`` with Klambauer "
    "et al.'s (2017) lambda ~ 1.0507, alpha ~ 1.6733: self-normalizing with LeCun "
    "initialization and standardized inputs.",
)
GELU = _simple("GELU", codes.GELU, "``f(z) = z * Phi(z)``, Phi the standard normal CDF (Hendrycks & Gimpel, 2016).")
Swish = _simple("Swish", codes.SWISH, "``f(z) = z * sigmoid(z)`` (Ramachandran et al., 2017).")


class LeakyReLU(Activation):
    """``f(z) = z if z >= 0 else alpha * z`` (Maas et al., 2013).

    Parameters
    ----------
    alpha : float, default=0.3
        Slope for ``z < 0`` (Keras' default).
    """

    code = codes.LEAKY_RELU
    _parameter_constraints = {"alpha": [Interval(Real, 0, None, closed="left")]}

    def __init__(self, alpha=0.3):
        self.alpha = alpha

    def _options(self):
        return self.code, float(self.alpha), 0.0, 0.0


class RReLU(Activation):
    """Randomized leaky ReLU (Xu et al., 2015).

    While training, each element's slope for ``z < 0`` is drawn uniformly in
    ``[lower, upper]`` (from the estimator's ``random_state``); at inference
    the slope is their mean.

    Parameters
    ----------
    lower : float, default=1/8
    upper : float, default=1/3
    """

    code = codes.RRELU
    _parameter_constraints = {
        "lower": [Interval(Real, 0, None, closed="left")],
        "upper": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, lower=1 / 8, upper=1 / 3):
        self.lower = lower
        self.upper = upper

    def _options(self):
        if self.lower > self.upper:
            raise ValueError(f"RReLU needs lower <= upper, got lower={self.lower}, upper={self.upper}.")
        return self.code, 0.0, float(self.lower), float(self.upper)


class PReLU(Activation):
    """Parametric leaky ReLU (He et al., 2015): the slope for ``z < 0`` is learned per unit.

    The slopes are trained with the weights by the optimizer (no weight
    decay) and fitted as ``prelu_alpha_``.

    Parameters
    ----------
    alpha_init : float, default=0.25
        Initial slope (He et al.'s choice).
    """

    code = codes.PRELU
    _parameter_constraints = {"alpha_init": [Interval(Real, None, None, closed="neither")]}

    def __init__(self, alpha_init=0.25):
        self.alpha_init = alpha_init


class ELU(Activation):
    """``f(z) = z if z > 0 else alpha * (exp(z) - 1)`` (Clevert et al., 2016).

    Parameters
    ----------
    alpha : float, default=1.0
    """

    code = codes.ELU
    _parameter_constraints = {"alpha": [Interval(Real, 0, None, closed="left")]}

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def _options(self):
        return self.code, float(self.alpha), 0.0, 0.0


#: Activation names and the objects they stand for.
ACTIVATIONS = {
    "identity": Identity,
    "logistic": Logistic,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "rrelu": RReLU,
    "prelu": PReLU,
    "elu": ELU,
    "selu": SELU,
    "gelu": GELU,
    "swish": Swish,
}

#: Output activations (scikit-learn's ``out_activation_``) -> code of the
#: activation fused with its canonical loss.
OUTPUT = {
    "identity": codes.SQUARED_ERROR,
    "exp": codes.POISSON,
    "logistic": codes.BINARY_LOG_LOSS,
    "softmax": codes.MULTICLASS_LOG_LOSS,
}


def resolve(activation):
    """The activation object for a name or an object."""
    if isinstance(activation, str):
        return ACTIVATIONS[activation]()
    activation._validate_params()
    return activation
