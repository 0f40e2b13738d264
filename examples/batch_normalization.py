"""Batch normalization: train on raw, unscaled features.

The breast-cancer features shipped with scikit-learn span five orders of
magnitude (from ~0.001 to ~4000). With ``batch_norm_input=True`` the network
normalizes its inputs itself, and ``batch_norm='before'``/``'after'`` adds batch
norm to every hidden layer. Compares a deep ReLU network with and without
batch norm on the raw features, and shows the moving statistics used at
inference.
"""

import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skdeep import MLPClassifier


def main():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    configs = {
        "no batch norm": dict(),
        "input batch norm": dict(batch_norm_input=True),
        "input + before activation": dict(batch_norm_input=True, batch_norm="before"),
        "input + after activation": dict(batch_norm_input=True, batch_norm="after"),
    }
    print(f"feature ranges: {X.min():.4f} .. {X.max():.0f}")
    print(f"{'configuration':>28} {'test acc':>9} {'final loss':>11}")
    for name, params in configs.items():
        model = MLPClassifier(
            hidden_layer_sizes=(64, 64, 64), kernel_initializer="he_normal", max_iter=40,
            batch_size=32, random_state=0, **params,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        print(f"{name:>28} {model.score(X_test, y_test):9.4f} {model.loss_:11.4f}")
    mean, var = model.batch_norm_moving_mean_[0], model.batch_norm_moving_var_[0]
    print("\ninput batch norm, first 4 features:")
    print(f"  moving mean {np.round(mean[:4], 2)}  vs training mean {np.round(X_train[:, :4].mean(0), 2)}")
    print(f"  moving std  {np.round(np.sqrt(var[:4]), 2)}  vs training std  {np.round(X_train[:, :4].std(0), 2)}")


if __name__ == "__main__":
    main()
