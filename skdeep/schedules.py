"""Learning-rate schedules as small, grid-searchable objects.

Pass an instance as ``learning_rate`` (``MLPClassifier(learning_rate=OneCycle(0.05))``)
or one of scikit-learn's strings. A schedule turns the estimator's
``learning_rate_init`` (``lr0``) and the training position into the learning
rate of every minibatch of the next epoch; per-batch schedules change it
every step, per-epoch ones once an epoch. Schedules run in Python at epoch
boundaries and hand the compiled loop one array of rates (and of momenta).

The position — steps and epochs done, the current rate of stateful schedules,
plateau counters — belongs to the fitted model: it continues across
``warm_start`` fits, ``partial_fit`` calls and pickling (Keras restarts it at
every ``fit``, scikit-learn at every warm-started ``fit``).

The formulas follow Géron, *Hands-On Machine Learning* (3rd ed., 2022),
chapter 11, "Learning Rate Scheduling", and Smith (2018), "A disciplined
approach to neural network hyper-parameters" (1cycle).
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions

from skdeep.optimizers import SGD


class Schedule(BaseEstimator):
    """Base class: a constant learning rate ``lr0``.

    ``state`` is a dict owned by the fitted model with at least ``"step"``
    (minibatches done), ``"epoch"`` (epochs done) and ``"n_seen"`` (samples
    seen).
    """

    per_batch = False
    _parameter_constraints: dict = {}

    def _start(self, state, lr0, n_batches, max_iter):
        """Called at the start of every fit; sets up missing state entries."""

    def _rate(self, state, lr0, steps):
        """Learning rate at the given step numbers (or epoch numbers)."""
        return np.full(len(steps), float(lr0))

    def _momentum(self, state, steps, momentum):
        """Momentum (``beta_1`` for the Adam family) at the given steps."""
        return np.full(len(steps), float(momentum))

    def _rates(self, state, lr0, n_batches, momentum):
        """``(learning rates, momenta)`` of the ``n_batches`` batches of the next epoch."""
        if self.per_batch:
            steps = state["step"] + np.arange(n_batches)
        else:
            steps = np.full(n_batches, state["epoch"])
        return self._rate(state, lr0, steps), self._momentum(state, steps, momentum)

    def _epoch_end(self, state, record):
        """Called after every epoch with its history record."""

    def _plateau(self, state, msg, verbose):
        """Called when the stopping rule fires; True means stop."""
        if verbose:
            print(msg + " Stopping.")
        return True


class Constant(Schedule):
    """``lr = lr0`` (scikit-learn's ``learning_rate="constant"``)."""


class InvScaling(Schedule):
    """scikit-learn's ``"invscaling"``: ``lr = lr0 / (n_seen + 1) ** power_t``.

    ``n_seen`` counts samples; the first epoch of a new model uses ``lr0``.

    Parameters
    ----------
    power_t : float, default=0.5
    """

    _parameter_constraints = {"power_t": [Interval(Real, 0, None, closed="left")]}

    def __init__(self, power_t=0.5):
        self.power_t = power_t

    def _rate(self, state, lr0, steps):
        n_seen = state["n_seen"]
        rate = float(lr0) if n_seen == 0 else float(lr0) / (n_seen + 1) ** self.power_t
        return np.full(len(steps), rate)


class Adaptive(Schedule):
    """scikit-learn's ``"adaptive"``: divide the rate by 5 when the stopping rule fires.

    Training stops only once the rate is at most 1e-6.
    """

    def _start(self, state, lr0, n_batches, max_iter):
        state.setdefault("learning_rate", float(lr0))

    def _rate(self, state, lr0, steps):
        return np.full(len(steps), state["learning_rate"])

    def _plateau(self, state, msg, verbose):
        if state["learning_rate"] <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        state["learning_rate"] /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % state["learning_rate"])
        return False


class PowerDecay(Schedule):
    """Power scheduling, per batch: ``lr = lr0 / (1 + t / steps) ** power``.

    Parameters
    ----------
    steps : int, default=1000
        Steps over which the rate falls to ``lr0 / 2 ** power``.
    power : float, default=1.0
    """

    per_batch = True
    _parameter_constraints = {
        "steps": [Interval(Integral, 1, None, closed="left")],
        "power": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, steps=1000, power=1.0):
        self.steps = steps
        self.power = power

    def _rate(self, state, lr0, steps):
        return lr0 / (1.0 + steps / self.steps) ** self.power


class ExponentialDecay(Schedule):
    """Exponential scheduling, per batch: ``lr = lr0 * 0.1 ** (t / steps)``.

    Parameters
    ----------
    steps : int, default=1000
        Steps over which the rate falls tenfold.
    """

    per_batch = True
    _parameter_constraints = {"steps": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, steps=1000):
        self.steps = steps

    def _rate(self, state, lr0, steps):
        return lr0 * 0.1 ** (steps / self.steps)


class PiecewiseConstant(Schedule):
    """Piecewise constant scheduling, per epoch.

    ``lr = values[i]`` for epochs ``boundaries[i - 1] <= epoch < boundaries[i]``
    (absolute rates; ``lr0`` is not used).

    Parameters
    ----------
    boundaries : list of int
        Increasing epoch numbers where the rate changes.
    values : list of float
        ``len(boundaries) + 1`` learning rates.
    """

    _parameter_constraints = {"boundaries": [list, tuple], "values": [list, tuple]}

    def __init__(self, boundaries=(10, 20), values=(0.01, 0.005, 0.001)):
        self.boundaries = boundaries
        self.values = values

    def _start(self, state, lr0, n_batches, max_iter):
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                f"PiecewiseConstant needs len(values) == len(boundaries) + 1, got "
                f"{len(self.values)} values and {len(self.boundaries)} boundaries."
            )
        if list(self.boundaries) != sorted(self.boundaries):
            raise ValueError(f"PiecewiseConstant boundaries must increase, got {self.boundaries}.")

    def _rate(self, state, lr0, steps):
        return np.asarray(self.values, dtype=float)[np.searchsorted(self.boundaries, steps, side="right")]


class ReduceOnPlateau(Schedule):
    """Performance scheduling, per epoch: multiply the rate by ``factor`` on a plateau.

    When the monitored value has not improved by ``min_delta`` for ``patience``
    epochs, ``lr <- max(factor * lr, min_learning_rate)``.

    Parameters
    ----------
    factor : float, default=0.5
    patience : int, default=5
    monitor : {'loss', 'validation_loss', 'validation_score'}, default='loss'
        Training loss, validation loss (lower is better) or validation score
        (higher is better); the validation values need ``early_stopping=True``
        or an ``eval_set``.
    min_delta : float, default=1e-4
    min_learning_rate : float, default=0.0
    """

    _parameter_constraints = {
        "factor": [Interval(Real, 0, 1, closed="neither")],
        "patience": [Interval(Integral, 0, None, closed="left")],
        "monitor": [StrOptions({"loss", "validation_loss", "validation_score"})],
        "min_delta": [Interval(Real, 0, None, closed="left")],
        "min_learning_rate": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, factor=0.5, patience=5, monitor="loss", min_delta=1e-4, min_learning_rate=0.0):
        self.factor = factor
        self.patience = patience
        self.monitor = monitor
        self.min_delta = min_delta
        self.min_learning_rate = min_learning_rate

    def _start(self, state, lr0, n_batches, max_iter):
        state.setdefault("learning_rate", float(lr0))
        state.setdefault("best", None)
        state.setdefault("wait", 0)

    def _rate(self, state, lr0, steps):
        return np.full(len(steps), state["learning_rate"])

    def _epoch_end(self, state, record):
        value = record.get(self.monitor)
        if value is None:
            raise ValueError(
                f"ReduceOnPlateau monitors {self.monitor!r}, which this fit does not "
                f"compute; use early_stopping=True or eval_set for {self.monitor!r}."
            )
        sign = 1.0 if self.monitor.endswith("loss") else -1.0
        if state["best"] is None or sign * (state["best"] - value) > self.min_delta:
            state["best"] = value
            state["wait"] = 0
            return
        state["wait"] += 1
        if state["wait"] >= self.patience:
            state["learning_rate"] = max(state["learning_rate"] * self.factor, self.min_learning_rate)
            state["wait"] = 0


class OneCycle(Schedule):
    """1cycle scheduling, per batch (Smith, 2018).

    Over ``total_epochs`` epochs: the rate rises linearly from ``lr0`` to
    ``max_learning_rate`` during the first half of the cycle, falls back to
    ``lr0`` during the second half, and during the last
    ``annihilation_fraction`` of training falls linearly to
    ``final_learning_rate``; it stays there afterwards. Momentum (``beta_1``
    for the Adam family) moves the opposite way, ``max_momentum`` →
    ``min_momentum`` → ``max_momentum``, unless ``cycle_momentum=False``.

    Parameters
    ----------
    max_learning_rate : float, default=0.01
    total_epochs : int or None, default=None
        Length of the schedule; None uses the estimator's ``max_iter`` of the
        first fit.
    annihilation_fraction : float, default=0.1
    final_learning_rate : float or None, default=None
        None means ``lr0 / 1000``.
    cycle_momentum : bool, default=True
    max_momentum, min_momentum : float, default=0.95, 0.85
    """

    per_batch = True
    _parameter_constraints = {
        "max_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "total_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "annihilation_fraction": [Interval(Real, 0, 1, closed="left")],
        "final_learning_rate": [Interval(Real, 0, None, closed="left"), None],
        "cycle_momentum": ["boolean"],
        "max_momentum": [Interval(Real, 0, 1, closed="left")],
        "min_momentum": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        max_learning_rate=0.01,
        total_epochs=None,
        annihilation_fraction=0.1,
        final_learning_rate=None,
        cycle_momentum=True,
        max_momentum=0.95,
        min_momentum=0.85,
    ):
        self.max_learning_rate = max_learning_rate
        self.total_epochs = total_epochs
        self.annihilation_fraction = annihilation_fraction
        self.final_learning_rate = final_learning_rate
        self.cycle_momentum = cycle_momentum
        self.max_momentum = max_momentum
        self.min_momentum = min_momentum

    def _start(self, state, lr0, n_batches, max_iter):
        state.setdefault("total_steps", (self.total_epochs or max_iter) * n_batches)

    def _phases(self, state, steps):
        """Position in the cycle: ``(rise, fall, annihilation)`` fractions in [0, 1]."""
        total = state["total_steps"]
        cycle = max(total * (1.0 - self.annihilation_fraction), 1.0)
        half = cycle / 2.0
        rise = np.clip(steps / half, 0.0, 1.0)
        fall = np.clip((steps - half) / half, 0.0, 1.0)
        end = np.clip((steps - cycle) / max(total - cycle, 1.0), 0.0, 1.0)
        return rise, fall, end

    def _rate(self, state, lr0, steps):
        rise, fall, end = self._phases(state, steps)
        final = lr0 / 1000.0 if self.final_learning_rate is None else self.final_learning_rate
        rate = lr0 + (self.max_learning_rate - lr0) * (rise - fall)
        return rate + (final - lr0) * end

    def _momentum(self, state, steps, momentum):
        if not self.cycle_momentum:
            return super()._momentum(state, steps, momentum)
        rise, fall, _ = self._phases(state, steps)
        return self.max_momentum + (self.min_momentum - self.max_momentum) * (rise - fall)


class CosineDecay(Schedule):
    """Cosine decay, per batch (Loshchilov & Hutter, 2017, without restarts).

    ``lr = lr0 * ((1 - alpha) * (1 + cos(pi * min(t, steps) / steps)) / 2 + alpha)``.

    Parameters
    ----------
    steps : int, default=1000
    alpha : float, default=0.0
        Final rate as a fraction of ``lr0``.
    """

    per_batch = True
    _parameter_constraints = {
        "steps": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, steps=1000, alpha=0.0):
        self.steps = steps
        self.alpha = alpha

    def _rate(self, state, lr0, steps):
        progress = np.minimum(steps, self.steps) / self.steps
        return lr0 * ((1.0 - self.alpha) * 0.5 * (1.0 + np.cos(np.pi * progress)) + self.alpha)


def resolve(estimator):
    """The schedule an estimator's ``learning_rate`` describes.

    scikit-learn's strings keep scikit-learn's meaning: ``"invscaling"`` and
    ``"adaptive"`` act only with SGD (``"sgd"`` or an ``SGD`` object).
    """
    learning_rate = estimator.learning_rate
    if not isinstance(learning_rate, str):
        learning_rate._validate_params()
        return learning_rate
    sgd = isinstance(estimator.solver, SGD) or estimator.solver == "sgd"
    if learning_rate == "invscaling" and sgd:
        return InvScaling(power_t=estimator.power_t)
    if learning_rate == "adaptive" and sgd:
        return Adaptive()
    return Constant()
