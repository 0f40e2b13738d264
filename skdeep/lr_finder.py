"""Learning-rate finder: a short run with an exponentially growing rate.

Smith (2017), "Cyclical Learning Rates for Training Neural Networks", §3.3;
Géron, *Hands-On Machine Learning* (3rd ed.), chapter 11, "Learning Rate
Scheduling": train a fresh copy of the model for a few hundred minibatches
while the learning rate grows from tiny to huge, watch the loss, and pick a
rate below the point where the loss starts to climb.
"""

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.utils import check_random_state
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _num_samples

from skdeep._engine import DIVERGED

SUGGESTIONS = ("min/10", "steepest")


@dataclass
class LRFinderResult:
    """What :func:`lr_find` measured.

    Attributes
    ----------
    learning_rates : ndarray
        Rate of each minibatch step run.
    losses : ndarray
        Training loss of each step's minibatch (computed before its update).
    smoothed_losses : ndarray
        Bias-corrected exponential moving average of ``losses``.
    lr_min : float
        Rate at the lowest smoothed loss.
    lr_steepest : float
        Rate where the smoothed loss falls fastest per decade of rate
        (before its minimum).
    suggested_lr : float
        The rate to use as a constant ``learning_rate_init``: ``lr_min / 10``
        (Géron: about ten times lower than where the loss turns up) or
        ``lr_steepest``, as ``suggestion`` asked.
    one_cycle_max_lr : float
        ``max_learning_rate`` for :class:`skdeep.schedules.OneCycle`:
        ``lr_min / 3`` — 1cycle's warm-up and annealing tolerate a peak close
        to the largest rate that still trains (Smith, 2018); start the cycle
        at ``one_cycle_max_lr / 10`` (``learning_rate_init``).
    diverged : bool
        Whether the run stopped because the smoothed loss exploded (or turned
        non-finite) before the last rate.
    suggestion : str
        Which rule gave ``suggested_lr``.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    lr_min: float
    lr_steepest: float
    suggested_lr: float
    one_cycle_max_lr: float
    diverged: bool
    suggestion: str = "min/10"
    estimator_name: str = field(default="", repr=False)

    def plot(self, ax=None, **kwargs):
        """:func:`skdeep.plot.plot_lr_find` of this result; returns the Axes."""
        from skdeep.plot import plot_lr_find

        return plot_lr_find(self, ax=ax, **kwargs)


def lr_find(
    estimator, X, y, *, start_lr=1e-6, end_lr=10.0, num_steps=100, batch_size=None,
    smoothing=0.9, diverge_threshold=4.0, suggestion="min/10", sample_weight=None,
    random_state=None,
):
    """Grow the learning rate exponentially over minibatch steps and record the loss.

    A clone of ``estimator`` (same architecture, solver and hyperparameters,
    fresh weights) is trained with ``partial_fit`` on ``num_steps``
    successive minibatches of ``X``, ``y``; step ``i`` uses the rate
    ``start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))`` as a
    constant ``learning_rate_init`` (the estimator's schedule is replaced by
    a constant rate; the optimizer state — moments, step — carries over
    between steps). The run stops when the smoothed loss exceeds
    ``diverge_threshold`` times its minimum or climbs back above its start,
    or the weights diverge.

    ``estimator`` itself is never fitted or modified.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        With a stochastic solver (every solver but 'lbfgs').
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    start_lr, end_lr : float, default=1e-6, 10.0
        Géron's range (chapter 11): wide enough that the loss explodes before
        ``end_lr`` for every optimizer.
    num_steps : int, default=100
        Minibatch steps, cycling over shuffled passes of the data.
    batch_size : int or None, default=None
        Minibatch size; None uses the estimator's (``'auto'``: ``min(200, n_samples)``).
    smoothing : float, default=0.9
        Weight ``beta`` of the moving average of the loss, in [0, 1) (about a
        ten-step window; fastai's 0.98 lags too much over 100 steps).
    diverge_threshold : float, default=4.0
        Stop once the smoothed loss exceeds this multiple of its minimum, or,
        after it fell by 10 %, climbs back above its first value (a bounded
        loss such as the log loss saturates before reaching 4× its minimum).
    suggestion : {'min/10', 'steepest'}, default='min/10'
        Rule for ``suggested_lr``.
    sample_weight : array-like of shape (n_samples,), default=None
    random_state : int, RandomState instance or None, default=None
        Seeds the minibatch draws; the clone keeps the estimator's
        ``random_state`` for its weights.

    Returns
    -------
    LRFinderResult
    """
    if estimator.solver == "lbfgs":
        raise ValueError(
            "lr_find needs a stochastic solver: 'lbfgs' has no learning rate (its line "
            "search chooses every step). Use solver='adam', 'sgd', ... or an optimizer "
            "object from skdeep.optimizers."
        )
    if not 0 < start_lr < end_lr:
        raise ValueError(f"lr_find needs 0 < start_lr < end_lr, got {start_lr} and {end_lr}.")
    if int(num_steps) < 5:
        raise ValueError(f"lr_find needs num_steps >= 5, got {num_steps}.")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}.")
    if suggestion not in SUGGESTIONS:
        raise ValueError(f"suggestion must be one of {SUGGESTIONS}, got {suggestion!r}.")
    num_steps = int(num_steps)
    n_samples = _num_samples(X)
    if batch_size is None:
        batch_size = estimator.batch_size
    batch_size = min(200, n_samples) if batch_size == "auto" else int(min(batch_size, n_samples))

    model = clone(estimator).set_params(
        learning_rate="constant", early_stopping=False, warm_start=False, callbacks=None,
        verbose=False, batch_size=batch_size, shuffle=False, max_iter=1,
    )
    extra = {}
    if is_classifier(model):
        y_array = np.asarray(y)
        extra["classes"] = np.unique(y_array) if y_array.ndim == 1 else np.arange(y_array.shape[1])
    rng = check_random_state(random_state)
    rates = start_lr * (end_lr / start_lr) ** (np.arange(num_steps) / (num_steps - 1))
    losses, smoothed = [], []
    average, best, diverged = 0.0, np.inf, False
    order, position = rng.permutation(n_samples), 0
    for step, rate in enumerate(rates):
        if position + batch_size > n_samples:
            order, position = rng.permutation(n_samples), 0
        rows = order[position : position + batch_size]
        position += batch_size
        fit_params = dict(extra)
        if sample_weight is not None:
            fit_params["sample_weight"] = _safe_indexing(np.asarray(sample_weight), rows)
        model.set_params(learning_rate_init=float(rate))
        try:
            model.partial_fit(_safe_indexing(X, rows), _safe_indexing(y, rows), **fit_params)
        except ValueError as error:
            if str(error) != DIVERGED:
                raise
            diverged = True
            break
        extra.pop("classes", None)
        loss = float(model.loss_)
        if not np.isfinite(loss):
            diverged = True
            break
        average = smoothing * average + (1.0 - smoothing) * loss
        value = average / (1.0 - smoothing ** (step + 1))
        losses.append(loss)
        smoothed.append(value)
        best = min(best, value)
        first = smoothed[0]
        if step > 0 and (value > diverge_threshold * best or (best < 0.9 * first and value > first)):
            diverged = step < num_steps - 1
            break
    if len(losses) < 3:
        raise ValueError(
            f"lr_find: the loss diverged after {len(losses)} step(s), from start_lr={start_lr}; "
            "lower start_lr."
        )
    rates = rates[: len(losses)]
    smoothed = np.asarray(smoothed)
    i_min = int(np.argmin(smoothed))
    lr_min = float(rates[i_min])
    lr_steepest = _steepest(rates, smoothed, i_min)
    suggested = lr_min / 10.0 if suggestion == "min/10" else lr_steepest
    return LRFinderResult(
        learning_rates=rates,
        losses=np.asarray(losses),
        smoothed_losses=smoothed,
        lr_min=lr_min,
        lr_steepest=lr_steepest,
        suggested_lr=float(suggested),
        one_cycle_max_lr=lr_min / 3.0,
        diverged=diverged,
        suggestion=suggestion,
        estimator_name=type(estimator).__name__,
    )


def _steepest(rates, smoothed, i_min):
    """Rate of the most negative slope of the smoothed loss against log10(rate), up to its minimum."""
    # Skip the first steps: the moving average is still warming up there.
    skip = min(len(smoothed) // 10, max(i_min - 1, 0))
    end = max(i_min + 1, skip + 2)
    slope = np.gradient(smoothed[skip:end], np.log10(rates[skip:end]))
    return float(rates[skip + int(np.argmin(slope))])
