"""Activations and initializers: a deep network trains only with the right pair.

Fits a 10-hidden-layer network on the digits data with several activation /
initializer pairs from the chapter's table (Glorot for tanh, He for the ReLU
family and ELU, LeCun for SELU) and with scikit-learn's default initialization,
and prints test accuracy with the mean and standard deviation of the last
hidden layer's activations after the first epoch (``diagnostics=True``).
"""

import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skdeep import MLPClassifier, SelfNormalizationWarning
from skdeep.activations import LeakyReLU

DEPTH = 10
PAIRS = [
    ("logistic", None),
    ("tanh", "glorot_uniform"),
    ("relu", "he_normal"),
    (LeakyReLU(alpha=0.2), "he_normal"),
    ("prelu", "he_normal"),
    ("elu", "he_normal"),
    ("selu", "lecun_normal"),
    ("gelu", "auto"),
    ("swish", "auto"),
]


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    print(f"{'activation':>22} {'initializer':>15} {'test acc':>9} {'last layer mean/std (epoch 1)':>31}")
    for activation, initializer in PAIRS:
        model = MLPClassifier(
            hidden_layer_sizes=(32,) * DEPTH, activation=activation, kernel_initializer=initializer,
            alpha=0.0, max_iter=10, batch_size=64, random_state=0, diagnostics=True,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", SelfNormalizationWarning)
            model.fit(X_train, y_train)
        first = model.history_[0]
        stats = f"{first[f'activation_mean_{DEPTH}']:+.3f} / {first[f'activation_std_{DEPTH}']:.3f}"
        print(f"{str(activation):>22} {str(initializer):>15} {model.score(X_test, y_test):9.4f} {stats:>31}")


if __name__ == "__main__":
    main()
