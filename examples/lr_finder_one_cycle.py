"""Find the learning rate, then train with 1cycle at the rate found.

On the digits data shipped with scikit-learn: ``skdeep.lr_find`` sweeps the
learning rate from 1e-6 upwards on a clone of the model until the loss
explodes, and suggests a constant rate and a 1cycle maximum. The model is then
trained twice for the same number of epochs — at the suggested constant rate
and with ``OneCycle`` peaking at the suggested maximum — and the finder's
curve, the learning curves and the 1cycle schedule are drawn into one PNG
(with matplotlib, ``pip install ".[plot]"``; pass ``--plot PATH`` to
choose the file, otherwise it goes to a temporary folder).
"""

import argparse
import os
import tempfile
import time
import warnings

from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skdeep import MLPClassifier, lr_find
from skdeep.schedules import OneCycle


def main(plot_path=None):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    model = MLPClassifier(hidden_layer_sizes=(64,), batch_size=64, max_iter=20, random_state=0)

    start = time.perf_counter()
    found = lr_find(model, X_train, y_train, random_state=0)
    print(
        f"lr_find: {len(found.losses)} steps in {time.perf_counter() - start:.2f} s"
        f"{' (stopped: loss exploded)' if found.diverged else ''}; lowest smoothed loss "
        f"at {found.lr_min:.3g}, steepest descent at {found.lr_steepest:.3g}"
    )
    print(f"suggested constant rate {found.suggested_lr:.3g}, 1cycle maximum {found.one_cycle_max_lr:.3g}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        constant = clone(model).set_params(learning_rate_init=found.suggested_lr)
        constant.fit(X_train, y_train, eval_set=(X_test, y_test))
        one_cycle = clone(model).set_params(
            learning_rate_init=found.one_cycle_max_lr / 10,
            learning_rate=OneCycle(max_learning_rate=found.one_cycle_max_lr),
        ).fit(X_train, y_train, eval_set=(X_test, y_test))
    print(f"constant {found.suggested_lr:.3g}: test accuracy {constant.score(X_test, y_test):.4f}")
    print(f"1cycle up to {found.one_cycle_max_lr:.3g}: test accuracy {one_cycle.score(X_test, y_test):.4f}")

    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed (pip install '.[plot]'): no plot.")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skdeep import plot

    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    found.plot(ax=axes[0])
    plot.plot_learning_curves(one_cycle, ax=axes[1])
    axes[1].set_title("1cycle: learning curves")
    plot.plot_schedule(one_cycle, ax=axes[2])
    axes[2].set_title("1cycle: learning rate (mean of each epoch)")
    figure.tight_layout()
    if plot_path is None:
        plot_path = os.path.join(tempfile.mkdtemp(prefix="skdeep-"), "lr_finder_one_cycle.png")
    figure.savefig(plot_path, dpi=80)
    plt.close(figure)
    print(f"plot: {plot_path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", help="PNG file to write")
    main(parser.parse_args().plot)
