"""Stochastic optimizers: their hyperparameters, slots and learning rate.

An optimizer is a small object the kernels read through an integer ``code``,
a hyperparameter vector and ``n_slots`` state arrays of the parameters' size.
The update formulas live in the kernels (``skdeep.kernels.cpu._update``); the
learning-rate bookkeeping between epochs lives here.
"""

import numpy as np

from skdeep.kernels import codes


class Optimizer:
    """Base class: slots, update counter and current learning rate.

    Parameters
    ----------
    learning_rate_init : float
        Initial step size.
    n_params : int
        Size of the flat parameter vector.
    dtype : numpy dtype
        Dtype of the parameters (and of the slots).
    """

    code = None
    n_slots = 0

    def __init__(self, learning_rate_init, n_params, dtype):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.slots = np.zeros((self.n_slots, n_params), dtype=dtype)
        self.step = 0

    def hyperparameters(self):
        """Vector laid out as ``skdeep.kernels.codes.HP_*``."""
        return np.zeros(codes.N_HYPERPARAMETERS)

    def epoch_end(self, n_seen):
        """Called after every epoch with the number of samples seen so far."""

    def plateau(self, msg, verbose):
        """Called when the monitored value stopped improving; True means stop."""
        if verbose:
            print(msg + " Stopping.")
        return True


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as in scikit-learn.

    ``v <- momentum * v - lr * g``, then ``w <- w + momentum * v - lr * g``
    with Nesterov's momentum or ``w <- w + v`` without (Sutskever et al., 2013).
    ``schedule`` is scikit-learn's ``learning_rate``: ``"constant"``,
    ``"invscaling"`` (``lr = lr0 / (t + 1) ** power_t`` after each epoch, ``t``
    the number of samples seen) or ``"adaptive"`` (divide by 5 on a plateau).
    """

    code = codes.SGD
    n_slots = 1

    def __init__(self, learning_rate_init, n_params, dtype, *, momentum, nesterov, schedule, power_t):
        super().__init__(learning_rate_init, n_params, dtype)
        self.momentum = momentum
        self.nesterov = nesterov
        self.schedule = schedule
        self.power_t = power_t

    def hyperparameters(self):
        hp = super().hyperparameters()
        hp[codes.HP_MOMENTUM] = self.momentum
        hp[codes.HP_NESTEROV] = float(self.nesterov)
        return hp

    def epoch_end(self, n_seen):
        if self.schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (n_seen + 1) ** self.power_t

    def plateau(self, msg, verbose):
        if self.schedule != "adaptive":
            return super().plateau(msg, verbose)
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015, Algorithm 1), as in scikit-learn.

    ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
    ``w <- w - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``.
    """

    code = codes.ADAM
    n_slots = 2

    def __init__(self, learning_rate_init, n_params, dtype, *, beta_1, beta_2, epsilon):
        super().__init__(learning_rate_init, n_params, dtype)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def hyperparameters(self):
        hp = super().hyperparameters()
        hp[codes.HP_BETA_1] = self.beta_1
        hp[codes.HP_BETA_2] = self.beta_2
        hp[codes.HP_EPSILON] = self.epsilon
        return hp


def make_optimizer(estimator, n_params, dtype):
    """The optimizer an estimator's ``solver`` and hyperparameters describe."""
    if estimator.solver == "sgd":
        return SGD(
            estimator.learning_rate_init, n_params, dtype,
            momentum=estimator.momentum, nesterov=estimator.nesterovs_momentum,
            schedule=estimator.learning_rate, power_t=estimator.power_t,
        )
    return Adam(
        estimator.learning_rate_init, n_params, dtype,
        beta_1=estimator.beta_1, beta_2=estimator.beta_2, epsilon=estimator.epsilon,
    )
