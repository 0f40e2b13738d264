"""skdeep.plot renders with the Agg backend and returns Axes."""

import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skdeep import MLPClassifier, lr_find
from skdeep.schedules import OneCycle

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from skdeep import plot  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:500] / 16.0, y[:500]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_learning_curves(digits, tmp_path):
    X, y = digits
    model = MLPClassifier((16,), max_iter=5, random_state=0, early_stopping=True, n_iter_no_change=50).fit(X, y)
    ax = plot.plot_learning_curves(model)
    assert isinstance(ax, Axes) and isinstance(ax.score_axes, Axes)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), model.loss_curve_)
    np.testing.assert_allclose(ax.score_axes.lines[0].get_ydata(), model.validation_scores_)
    ax.figure.savefig(tmp_path / "curves.png")
    # validation_loss when the history records it
    history = [dict(r, validation_loss=r["loss"] * 1.1) for r in model.history_]
    ax = plot.plot_learning_curves(history)
    assert [line.get_label() for line in ax.lines] == ["loss", "validation_loss"]


def test_schedule_with_momentum(digits):
    X, y = digits
    model = MLPClassifier((16,), max_iter=6, random_state=0, learning_rate=OneCycle(0.05)).fit(X, y)
    ax = plot.plot_schedule(model)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [r["learning_rate"] for r in model.history_])
    assert ax.momentum_axes is None
    history = [dict(r, momentum=0.9) for r in model.history_]
    assert isinstance(plot.plot_schedule(history).momentum_axes, Axes)


def test_diagnostics(digits):
    X, y = digits
    model = MLPClassifier((16, 8), max_iter=3, random_state=0, diagnostics=True).fit(X, y)
    axes = plot.plot_diagnostics(model)
    assert len(axes) == 4 and all(isinstance(a, Axes) for a in axes)
    assert len(axes[2].lines) == 2 and axes[2].get_yscale() == "log"
    with pytest.raises(ValueError, match="diagnostics=True"):
        plot.plot_diagnostics(MLPClassifier((4,), max_iter=1).fit(X, y))


def test_mc_uncertainty(digits):
    X, y = digits
    model = MLPClassifier((32,), max_iter=10, random_state=0, dropout=0.3).fit(X[:300], y[:300])
    ax = plot.plot_mc_uncertainty(model, X[300:], y[300:], n_samples=20)
    right, wrong = ax.uncertainty["right"], ax.uncertainty["wrong"]
    assert len(right) + len(wrong) == 200 and len(wrong) > 0
    mean, std = model.predict_proba_mc(X[300:], n_samples=20, random_state=0)
    spread = std[np.arange(200), mean.argmax(axis=1)]
    np.testing.assert_allclose(np.sort(np.concatenate([right, wrong])), np.sort(spread))
    assert len(ax.patches) > 0


def test_lr_find_plot(digits):
    X, y = digits
    result = lr_find(MLPClassifier((16,), random_state=0), X, y, num_steps=40)
    ax = result.plot()
    assert isinstance(ax, Axes) and ax.get_xscale() == "log"
    np.testing.assert_allclose(ax.lines[1].get_ydata(), result.smoothed_losses)


def test_clear_error_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"\.\[plot\]"):
        plot.plot_learning_curves([{"epoch": 1, "loss": 1.0, "validation_score": None}])
