"""Plots of training: learning curves, schedules, per-layer diagnostics, MC-dropout
uncertainty and the learning-rate finder.

Needs matplotlib (``pip install ".[plot]"``), imported only when a
function is called. Every function draws on ``ax`` (a new figure's Axes when
None) and returns the Axes (an array of Axes for the multi-panel ones).
"""

import numpy as np


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "skdeep.plot needs matplotlib: pip install '.[plot]' (or pip install matplotlib)."
        ) from error
    return plt


def _history(model_or_history):
    history = getattr(model_or_history, "history_", model_or_history)
    if not isinstance(history, (list, tuple)) or not history:
        raise ValueError(
            "Nothing to plot: pass a model fitted with a stochastic solver (it has history_) "
            "or its history_ list."
        )
    return history


def _column(history, key):
    values = [record.get(key) for record in history]
    if all(v is None for v in values):
        return None
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _axes(ax, n=1):
    if ax is not None:
        return ax
    plt = _pyplot()
    if n == 1:
        return plt.subplots()[1]
    return plt.subplots(1, n, figsize=(4.5 * n, 3.5))[1]


def plot_learning_curves(model, ax=None):
    """Training loss, validation loss (where recorded) and validation score per epoch.

    Losses on ``ax`` (left axis), the validation score on a twin right axis.

    Parameters
    ----------
    model : fitted estimator or list of dict
        A model with ``history_`` or the history itself.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes
        The loss axes; the score axes is ``ax.score_axes`` (None without
        validation scores).
    """
    history = _history(model)
    ax = _axes(ax)
    epochs = _column(history, "epoch")
    lines = ax.plot(epochs, _column(history, "loss"), label="loss")
    validation_loss = _column(history, "validation_loss")
    if validation_loss is not None:
        lines += ax.plot(epochs, validation_loss, label="validation_loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    score = _column(history, "validation_score")
    ax.score_axes = None
    if score is not None:
        twin = ax.twinx()
        lines += twin.plot(epochs, score, color="tab:green", label="validation_score")
        twin.set_ylabel("validation score")
        ax.score_axes = twin
    ax.legend(lines, [line.get_label() for line in lines], loc="best")
    ax.set_title("Learning curves")
    return ax


def plot_schedule(model, ax=None):
    """Learning rate (and momentum, where recorded) per epoch from ``history_``.

    ``history_['learning_rate']`` is the mean rate of each epoch's minibatches
    (see docs/workflow.md); per-batch schedules change within an epoch.

    Returns
    -------
    ax : matplotlib Axes
        The rate axes (log scale); the momentum axes is ``ax.momentum_axes``
        (None when the history records no ``momentum``).
    """
    history = _history(model)
    ax = _axes(ax)
    epochs = _column(history, "epoch")
    rate = _column(history, "learning_rate")
    lines = ax.plot(epochs, rate, label="learning_rate")
    if rate is not None and np.all(rate[np.isfinite(rate)] > 0):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.momentum_axes = None
    momentum = _column(history, "momentum")
    if momentum is not None:
        twin = ax.twinx()
        lines += twin.plot(epochs, momentum, color="tab:orange", label="momentum")
        twin.set_ylabel("momentum")
        ax.momentum_axes = twin
    ax.legend(lines, [line.get_label() for line in lines], loc="best")
    ax.set_title("Schedule")
    return ax


DIAGNOSTICS = (
    ("activation_mean", "activation mean"),
    ("activation_std", "activation std"),
    ("gradient_norm", "gradient norm"),
    ("dead_fraction", "dead fraction"),
)


def plot_diagnostics(model, axes=None):
    """Per-layer diagnostics per epoch, one panel each, one line per hidden layer.

    Activation mean and standard deviation, gradient norm (log scale) and,
    for the ReLU family, the fraction of dead units: the chapter's picture of
    vanishing and exploding gradients. Needs a model fitted with
    ``diagnostics=True``.

    Parameters
    ----------
    model : fitted estimator or list of dict
    axes : sequence of matplotlib Axes, default=None
        One per panel drawn (3, or 4 with dead fractions).

    Returns
    -------
    axes : ndarray of matplotlib Axes
    """
    history = _history(model)
    keys = history[-1].keys()
    layers = sorted(int(k.rsplit("_", 1)[1]) for k in keys if k.startswith("activation_mean_"))
    if not layers:
        raise ValueError("No per-layer diagnostics in history_: fit with diagnostics=True.")
    panels = [(key, label) for key, label in DIAGNOSTICS if f"{key}_{layers[0]}" in keys]
    axes = np.ravel(_axes(axes, len(panels)))
    epochs = _column(history, "epoch")
    for ax, (key, label) in zip(axes, panels):
        for layer in layers:
            ax.plot(epochs, _column(history, f"{key}_{layer}"), label=f"layer {layer}")
        if key == "gradient_norm":
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(label)
    axes[0].legend(loc="best")
    return axes


def plot_mc_uncertainty(model, X, y, n_samples=50, random_state=0, ax=None, bins=30):
    """MC-dropout uncertainty on right vs wrong predictions (classifiers).

    Histograms of the standard deviation, over ``n_samples`` dropout passes
    (``predict_proba_mc``), of the probability of the predicted class, for
    the samples predicted right and those predicted wrong. A useful
    uncertainty is larger on the wrong ones.

    Returns
    -------
    ax : matplotlib Axes
        With ``ax.uncertainty`` = ``{"right": std array, "wrong": std array}``.
    """
    mean, std = model.predict_proba_mc(X, n_samples=n_samples, random_state=random_state)
    predicted = np.argmax(mean, axis=1)
    spread = std[np.arange(len(predicted)), predicted]
    right = np.asarray(model.classes_)[predicted] == np.asarray(y)
    ax = _axes(ax)
    edges = np.linspace(0.0, max(float(spread.max()), 1e-12), bins + 1)
    for mask, label, color in ((right, "right", "tab:blue"), (~right, "wrong", "tab:red")):
        if mask.any():
            ax.hist(
                spread[mask], bins=edges, alpha=0.6, density=True, color=color,
                label=f"{label} (n={int(mask.sum())}, mean std={spread[mask].mean():.3f})",
            )
    ax.set_xlabel("std of the predicted class's probability over MC-dropout passes")
    ax.set_ylabel("density")
    ax.set_title("MC-dropout uncertainty")
    ax.legend(loc="best")
    ax.uncertainty = {"right": spread[right], "wrong": spread[~right]}
    return ax


def plot_lr_find(result, ax=None, show_raw=True):
    """Loss against learning rate (log scale) from :func:`skdeep.lr_find`.

    The smoothed loss, the raw minibatch losses (faint), and vertical lines at
    the suggested rate, the steepest descent and the 1cycle maximum.
    """
    ax = _axes(ax)
    rates = result.learning_rates
    if show_raw:
        ax.plot(rates, result.losses, color="0.75", linewidth=0.8, label="minibatch loss")
    ax.plot(rates, result.smoothed_losses, label="smoothed loss")
    marks = (
        (result.suggested_lr, "tab:red", f"suggested {result.suggested_lr:.2g}"),
        (result.lr_steepest, "tab:purple", f"steepest {result.lr_steepest:.2g}"),
        (result.one_cycle_max_lr, "tab:green", f"1cycle max {result.one_cycle_max_lr:.2g}"),
    )
    for rate, color, label in marks:
        ax.axvline(rate, color=color, linestyle="--", linewidth=1, label=label)
    ax.set_xscale("log")
    top = np.nanmax(result.smoothed_losses[: max(1, len(rates) // 10)])
    low = np.nanmin(result.smoothed_losses)
    ax.set_ylim(low - 0.1 * (top - low + 1e-12), top + 0.5 * (top - low + 1e-12))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("Learning-rate finder")
    ax.legend(loc="best")
    return ax
