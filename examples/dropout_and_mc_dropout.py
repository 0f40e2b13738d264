"""Dropout, alpha dropout and MC-dropout uncertainty.

Trains with dropout, then uses ``predict_proba_mc`` (many stochastic passes
with dropout on, in compiled code) to get class probabilities with their
standard deviation: the model is less certain on the test digits it gets wrong.
Also trains a self-normalizing network (SELU, LeCun init, alpha dropout).
"""

import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skdeep import MLPClassifier


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(
            hidden_layer_sizes=(64, 64), dropout=0.3, max_iter=30, random_state=0
        ).fit(X_train, y_train)
        snn = MLPClassifier(
            hidden_layer_sizes=(64,) * 4, activation="selu", kernel_initializer="lecun_normal",
            alpha=0.0, dropout=0.1, alpha_dropout=True, max_iter=30, random_state=0,
        ).fit(X_train, y_train)
    print(f"dropout 0.3: test accuracy {model.score(X_test, y_test):.4f}")
    print(f"SELU + alpha dropout: test accuracy {snn.score(X_test, y_test):.4f}")

    mean, std = model.predict_proba_mc(X_test, n_samples=100, random_state=0)
    predicted = model.classes_[mean.argmax(axis=1)]
    top_std = std[np.arange(len(predicted)), mean.argmax(axis=1)]
    right = predicted == y_test
    print(f"MC dropout (100 passes): accuracy {right.mean():.4f}")
    print(f"  std of the predicted class' probability: {top_std[right].mean():.4f} when right, "
          f"{top_std[~right].mean():.4f} when wrong")
    worst = np.argsort(-top_std)[:3]
    for i in worst:
        print(f"  most uncertain test digit {i}: true {y_test[i]}, predicted {predicted[i]} "
              f"with p = {mean[i].max():.2f} ± {top_std[i]:.2f}")


if __name__ == "__main__":
    main()
