"""Weight initializers, as Keras defines them.

``kernel_initializer`` takes ``None`` (scikit-learn's Glorot-uniform draws, so
results match scikit-learn), a name, ``"auto"`` (by activation, following the
chapter's table: Glorot for none/tanh/logistic/softmax, He for the ReLU family
and ELU, LeCun for SELU) or a :class:`VarianceScaling` object. Every name is a
``VarianceScaling`` with Keras' settings; biases then start at zero.
"""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions

from skdeep.kernels import codes

#: Keras' correction: a normal truncated at two standard deviations has
#: standard deviation 0.87962566103423978 times that of the untruncated one.
_TRUNCATION_STD = 0.87962566103423978


class VarianceScaling(BaseEstimator):
    """Draw weights with variance ``scale / fan``.

    ``fan`` is ``fan_in``, ``fan_out`` or their mean (``mode``). ``"uniform"``
    draws from ``U(-r, r)`` with ``r = sqrt(3 * scale / fan)``;
    ``"truncated_normal"`` (or its Keras alias ``"normal"``) from a normal
    truncated at two standard deviations, rescaled so the variance is still
    ``scale / fan``; ``"untruncated_normal"`` from ``N(0, scale / fan)``
    (Keras' ``VarianceScaling``).

    Parameters
    ----------
    scale : float, default=1.0
    mode : {'fan_in', 'fan_out', 'fan_avg'}, default='fan_in'
    distribution : {'uniform', 'truncated_normal', 'normal', 'untruncated_normal'}, default='truncated_normal'
    """

    _parameter_constraints = {
        "scale": [Interval(Real, 0, None, closed="neither")],
        "mode": [StrOptions({"fan_in", "fan_out", "fan_avg"})],
        "distribution": [StrOptions({"uniform", "normal", "truncated_normal", "untruncated_normal"})],
    }

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal"):
        self.scale = scale
        self.mode = mode
        self.distribution = distribution

    def draw(self, fan_in, fan_out, random_state):
        """A ``(fan_in, fan_out)`` float64 weight matrix."""
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, fan)
        shape = (fan_in, fan_out)
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * variance)
            return random_state.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return random_state.normal(0.0, np.sqrt(variance), shape)
        std = np.sqrt(variance) / _TRUNCATION_STD
        weights = random_state.normal(0.0, std, shape)
        outside = np.abs(weights) > 2 * std
        while outside.any():
            weights[outside] = random_state.normal(0.0, std, outside.sum())
            outside = np.abs(weights) > 2 * std
        return weights


#: Keras' named initializers.
INITIALIZERS = {
    "glorot_uniform": VarianceScaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": VarianceScaling(1.0, "fan_avg", "truncated_normal"),
    "he_uniform": VarianceScaling(2.0, "fan_in", "uniform"),
    "he_normal": VarianceScaling(2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": VarianceScaling(1.0, "fan_in", "uniform"),
    "lecun_normal": VarianceScaling(1.0, "fan_in", "truncated_normal"),
}

_AUTO = {
    codes.IDENTITY: "glorot_uniform",
    codes.LOGISTIC: "glorot_uniform",
    codes.TANH: "glorot_uniform",
    codes.SELU: "lecun_normal",
}


def resolve(kernel_initializer, activation_code):
    """The initializer object for ``kernel_initializer``, or None for scikit-learn's."""
    if kernel_initializer is None:
        return None
    if isinstance(kernel_initializer, str):
        if kernel_initializer == "auto":
            kernel_initializer = _AUTO.get(activation_code, "he_normal")
        return INITIALIZERS[kernel_initializer]
    kernel_initializer._validate_params()
    return kernel_initializer
