"""Quickstart: skdeep's MLPClassifier as a drop-in for scikit-learn's.

Fits the same network with scikit-learn and with skdeep on the digits data
shipped with scikit-learn, and prints accuracy, fit time and whether the two
models agree.
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdeep import MLPClassifier


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    params = dict(hidden_layer_sizes=(128, 64), batch_size=32, max_iter=30, random_state=0)

    # The kernels compile on the first fit after installing (then load from the
    # cache); fit once on a few rows so the timings below compare training.
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=1).fit(X_train[:20], y_train[:20])
    print(f"skdeep kernels ready in {time.perf_counter() - start:.1f} s (compiled once, then cached)")
    results = {}
    for name, estimator in [("scikit-learn", SklearnMLP(**params)), ("skdeep", MLPClassifier(**params))]:
        model = make_pipeline(StandardScaler(), estimator)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        results[name] = model
        print(
            f"{name:>12}: test accuracy {model.score(X_test, y_test):.4f}, "
            f"fit {seconds:.2f} s ({model[-1].n_iter_} epochs)"
        )
    gap = np.abs(
        results["skdeep"].predict_proba(X_test) - results["scikit-learn"].predict_proba(X_test)
    ).max()
    print(f"largest difference between the two models' probabilities: {gap:.1e}")


if __name__ == "__main__":
    main()
