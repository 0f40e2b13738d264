"""Optimizers: update rules as small, grid-searchable objects.

Pass an instance as ``solver`` (``MLPClassifier(solver=Nadam(beta_2=0.99))``)
or use its name as a string. Each object holds the hyperparameters of its
rule — never the learning rate, which is the estimator's
``learning_rate_init`` shaped by its ``learning_rate`` schedule — and exposes
``get_params``/``set_params``, so ``clone`` works and ``GridSearchCV`` can tune
``solver__beta_1``. Defaults are Keras 3's. The formulas are in
:mod:`skdeep.kernels.cpu.optimizers`, where one fused loop per rule applies
them to every parameter.

String solvers and estimator-level hyperparameters
--------------------------------------------------
A string solver takes from the estimator the hyperparameters scikit-learn
defines there: ``"sgd"`` takes ``momentum`` and ``nesterovs_momentum``;
``"adam"``, ``"nadam"``, ``"adamax"`` and ``"adamw"`` take ``beta_1``,
``beta_2`` and ``epsilon``; ``"adagrad"`` and ``"rmsprop"`` take ``epsilon``.
Everything else keeps the class default. An optimizer object brings its own
hyperparameters; setting the same hyperparameter on the estimator to a
non-default value that differs from the object's is a contradiction and
raises ``ValueError``.
"""

import copy
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval

from skdeep.kernels import codes


class Optimizer(BaseEstimator):
    """Base class of the update rules."""

    code = None
    n_slots = 0
    #: Name of the hyperparameter the kernels receive per batch as ``mu`` (cycled
    #: by :class:`skdeep.schedules.OneCycle`), or None.
    momentum_name = None

    def _hyperparameters(self):
        """``{codes.HP_*: value}`` for the kernels."""
        return {}

    def _initial_slots(self, n_params, dtype):
        return np.zeros((self.n_slots, n_params), dtype=dtype)

    def _momentum(self):
        return float(getattr(self, self.momentum_name)) if self.momentum_name else 0.0


class SGD(Optimizer):
    """Stochastic gradient descent with (Nesterov) momentum.

    ``v <- momentum v - lr g``; ``w <- w + momentum v - lr g`` with Nesterov's
    momentum (Sutskever et al., 2013), ``w <- w + v`` without (Polyak, 1964).

    Parameters
    ----------
    momentum : float, default=0.0
    nesterov : bool, default=False
    """

    code = codes.SGD
    n_slots = 1
    momentum_name = "momentum"
    _parameter_constraints = {"momentum": [Interval(Real, 0, 1, closed="both")], "nesterov": ["boolean"]}

    def __init__(self, momentum=0.0, nesterov=False):
        self.momentum = momentum
        self.nesterov = nesterov

    def _hyperparameters(self):
        return {codes.HP_NESTEROV: float(self.nesterov)}


class Adagrad(Optimizer):
    """AdaGrad (Duchi, Hazan & Singer, 2011).

    ``a <- a + g^2``; ``w <- w - lr g / sqrt(a + epsilon)``.

    Parameters
    ----------
    initial_accumulator_value : float, default=0.1
    epsilon : float, default=1e-7
    """

    code = codes.ADAGRAD
    n_slots = 1
    _parameter_constraints = {
        "initial_accumulator_value": [Interval(Real, 0, None, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, initial_accumulator_value=0.1, epsilon=1e-7):
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def _hyperparameters(self):
        return {codes.HP_EPSILON: self.epsilon}

    def _initial_slots(self, n_params, dtype):
        return np.full((1, n_params), self.initial_accumulator_value, dtype=dtype)


class RMSprop(Optimizer):
    """RMSProp (Tieleman & Hinton, 2012), optionally centered, with momentum.

    ``s <- rho s + (1 - rho) g^2``; ``m <- momentum m + lr g / sqrt(s + epsilon)``;
    ``w <- w - m``. Centered: ``s - c^2`` replaces ``s``, with
    ``c <- rho c + (1 - rho) g``.

    Parameters
    ----------
    rho : float, default=0.9
    momentum : float, default=0.0
    epsilon : float, default=1e-7
    centered : bool, default=False
    """

    code = codes.RMSPROP
    n_slots = 3
    momentum_name = "momentum"
    _parameter_constraints = {
        "rho": [Interval(Real, 0, 1, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "centered": ["boolean"],
    }

    def __init__(self, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def _hyperparameters(self):
        return {codes.HP_BETA_2: self.rho, codes.HP_EPSILON: self.epsilon, codes.HP_CENTERED: float(self.centered)}


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015, Algorithm 1).

    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
    ``w <- w - lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + epsilon)``.

    Parameters
    ----------
    beta_1 : float, default=0.9
    beta_2 : float, default=0.999
    epsilon : float, default=1e-7
    """

    code = codes.ADAM
    n_slots = 2
    momentum_name = "beta_1"
    _parameter_constraints = {
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def _hyperparameters(self):
        return {codes.HP_BETA_2: self.beta_2, codes.HP_EPSILON: self.epsilon}


class Nadam(Adam):
    """Nadam: Adam with Nesterov momentum (Dozat, 2016), as Keras 3 computes it.

    With ``u_t = b1 (1 - 0.5 * 0.96^t)`` and ``P_t = u_1 ... u_t``:
    ``m_hat = u_{t+1} m / (1 - P_t u_{t+1}) + (1 - u_t) g / (1 - P_t)``,
    ``w <- w - lr m_hat / (sqrt(v / (1 - b2^t)) + epsilon)``.

    Parameters
    ----------
    beta_1 : float, default=0.9
    beta_2 : float, default=0.999
    epsilon : float, default=1e-7
    """

    code = codes.NADAM

    def _hyperparameters(self):
        return {**super()._hyperparameters(), codes.HP_PRODUCT: 1.0}


class Adamax(Adam):
    """Adamax, Adam with the infinity norm (Kingma & Ba, 2015, Algorithm 2).

    ``u <- max(b2 u, |g|)``; ``w <- w - lr / (1 - b1^t) m / (u + epsilon)``.

    Parameters
    ----------
    beta_1 : float, default=0.9
    beta_2 : float, default=0.999
    epsilon : float, default=1e-7
    """

    code = codes.ADAMAX


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    Before each Adam step: ``w <- w - lr weight_decay w``.

    Parameters
    ----------
    weight_decay : float, default=0.004
    beta_1 : float, default=0.9
    beta_2 : float, default=0.999
    epsilon : float, default=1e-7
    """

    code = codes.ADAMW
    _parameter_constraints = {**Adam._parameter_constraints, "weight_decay": [Interval(Real, 0, None, closed="left")]}

    def __init__(self, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        self.weight_decay = weight_decay

    def _hyperparameters(self):
        return {**super()._hyperparameters(), codes.HP_WEIGHT_DECAY: self.weight_decay}


class Ftrl(Optimizer):
    """FTRL-proximal (McMahan et al., 2013, Algorithm 1), as Keras 3 computes it.

    With ``p = -learning_rate_power``: ``n' = n + g^2``;
    ``z <- z + g + 2 l2s w - (n'^p - n^p) / lr w``;
    ``w <- (clip(z, -l1, l1) - z) / (n'^p / lr + 2 (l2 + beta / (2 lr)))``.
    The L1 term acts proximally, so weights become exactly zero; the
    estimator's ``l1`` is added to ``l1_regularization_strength`` (scaled like
    ``alpha``, by ``1 / sum(sample_weight)`` of the batch).

    Parameters
    ----------
    learning_rate_power : float, default=-0.5
    initial_accumulator_value : float, default=0.1
    l1_regularization_strength : float, default=0.0
    l2_regularization_strength : float, default=0.0
    l2_shrinkage_regularization_strength : float, default=0.0
    beta : float, default=0.0
    """

    code = codes.FTRL
    n_slots = 2
    _parameter_constraints = {
        "learning_rate_power": [Interval(Real, None, 0, closed="right")],
        "initial_accumulator_value": [Interval(Real, 0, None, closed="left")],
        "l1_regularization_strength": [Interval(Real, 0, None, closed="left")],
        "l2_regularization_strength": [Interval(Real, 0, None, closed="left")],
        "l2_shrinkage_regularization_strength": [Interval(Real, 0, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        learning_rate_power=-0.5,
        initial_accumulator_value=0.1,
        l1_regularization_strength=0.0,
        l2_regularization_strength=0.0,
        l2_shrinkage_regularization_strength=0.0,
        beta=0.0,
    ):
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta

    def _hyperparameters(self):
        return {
            codes.HP_LR_POWER: self.learning_rate_power,
            codes.HP_L1: self.l1_regularization_strength,
            codes.HP_L2: self.l2_regularization_strength,
            codes.HP_L2_SHRINKAGE: self.l2_shrinkage_regularization_strength,
            codes.HP_BETA: self.beta,
        }

    def _initial_slots(self, n_params, dtype):
        slots = np.zeros((2, n_params), dtype=dtype)
        slots[0] = self.initial_accumulator_value
        return slots


#: String solvers: name -> (class, estimator-level hyperparameters it takes).
SOLVERS = {
    "sgd": (SGD, {"momentum": "momentum", "nesterovs_momentum": "nesterov"}),
    "adam": (Adam, {"beta_1": "beta_1", "beta_2": "beta_2", "epsilon": "epsilon"}),
    "nadam": (Nadam, {"beta_1": "beta_1", "beta_2": "beta_2", "epsilon": "epsilon"}),
    "adamax": (Adamax, {"beta_1": "beta_1", "beta_2": "beta_2", "epsilon": "epsilon"}),
    "adamw": (AdamW, {"beta_1": "beta_1", "beta_2": "beta_2", "epsilon": "epsilon"}),
    "adagrad": (Adagrad, {"epsilon": "epsilon"}),
    "rmsprop": (RMSprop, {"epsilon": "epsilon"}),
    "ftrl": (Ftrl, {}),
}

#: Estimator-level hyperparameters, their defaults and the optimizer
#: attribute of the same meaning.
_ESTIMATOR_LEVEL = {
    "momentum": (0.9, "momentum"),
    "nesterovs_momentum": (True, "nesterov"),
    "beta_1": (0.9, "beta_1"),
    "beta_2": (0.999, "beta_2"),
    "epsilon": (1e-8, "epsilon"),
}


def resolve(estimator):
    """The optimizer object an estimator's ``solver`` and hyperparameters describe."""
    solver = estimator.solver
    if isinstance(solver, str):
        cls, taken = SOLVERS[solver]
        return cls(**{name: getattr(estimator, attr) for attr, name in taken.items()})
    solver._validate_params()
    for attr, (default, name) in _ESTIMATOR_LEVEL.items():
        value = getattr(estimator, attr)
        if value != default and hasattr(solver, name) and getattr(solver, name) != value:
            raise ValueError(
                f"{attr}={value!r} contradicts solver={solver!r}, whose {name} is "
                f"{getattr(solver, name)!r}. With an optimizer object, set {name} on the "
                f"object and leave {attr} at its default."
            )
    return solver


class OptimizerState:
    """What an optimizer carries between batches: slots, step and running scalars.

    Belongs to the fitted model: ``partial_fit`` continues it, a new ``fit``
    (``warm_start`` included) starts a fresh one, pickling keeps it.
    """

    def __init__(self, optimizer, n_params, dtype):
        self.code = optimizer.code
        self.slots = optimizer._initial_slots(n_params, dtype)
        self.step = 0
        self.hyperparameters = np.zeros(codes.N_HYPERPARAMETERS)
        for index, value in optimizer._hyperparameters().items():
            self.hyperparameters[index] = value
        self.momentum = optimizer._momentum()

    def copy(self):
        """An independent copy (slots and running scalars copied)."""
        state = copy.copy(self)
        state.slots = self.slots.copy()
        state.hyperparameters = self.hyperparameters.copy()
        return state
