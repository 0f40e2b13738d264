"""Compare optimizers and learning-rate schedules on the digits data.

Trains the same network with every optimizer, and with adam under several
schedules, prints final training loss and test accuracy, and plots the
learning curves when matplotlib is installed (``pip install ".[plot]"``).

Run: ``python examples/optimizers_and_schedules.py [--plot curves.png]``
"""

import argparse
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skdeep import MLPClassifier
from skdeep.optimizers import SGD, RMSprop
from skdeep.schedules import CosineDecay, ExponentialDecay, OneCycle, ReduceOnPlateau

EPOCHS = 15

OPTIMIZERS = {
    "sgd (momentum 0.9)": dict(solver=SGD(momentum=0.9), learning_rate_init=0.01),
    "sgd + nesterov": dict(solver=SGD(momentum=0.9, nesterov=True), learning_rate_init=0.01),
    "adagrad": dict(solver="adagrad", learning_rate_init=0.05),
    "rmsprop": dict(solver=RMSprop(rho=0.9), learning_rate_init=0.001),
    "adam": dict(solver="adam", learning_rate_init=0.001),
    "nadam": dict(solver="nadam", learning_rate_init=0.001),
    "adamax": dict(solver="adamax", learning_rate_init=0.002),
    "adamw": dict(solver="adamw", learning_rate_init=0.001),
    "ftrl": dict(solver="ftrl", learning_rate_init=0.1),
}

SCHEDULES = {
    "constant": "constant",
    "exponential": ExponentialDecay(steps=400),
    "cosine": CosineDecay(steps=EPOCHS * 34),
    "reduce on plateau": ReduceOnPlateau(patience=1),
    "1cycle": OneCycle(max_learning_rate=0.01),
}


def fit(X, y, **params):
    model = MLPClassifier(hidden_layer_sizes=(64, 32), batch_size=40, max_iter=EPOCHS, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", help="save the learning curves to this image file")
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

    curves = {}
    print(f"{'optimizer':>20} {'final loss':>11} {'test acc':>9}")
    for name, params in OPTIMIZERS.items():
        model = fit(X_train, y_train, **params)
        curves[("optimizer", name)] = model
        print(f"{name:>20} {model.loss_:11.4f} {model.score(X_test, y_test):9.4f}")
    print(f"\n{'adam + schedule':>20} {'final loss':>11} {'test acc':>9} {'last lr':>9}")
    for name, schedule in SCHEDULES.items():
        model = fit(X_train, y_train, solver="adam", learning_rate=schedule)
        curves[("schedule", name)] = model
        last_lr = model.history_[-1]["learning_rate"]
        print(f"{name:>20} {model.loss_:11.4f} {model.score(X_test, y_test):9.4f} {last_lr:9.2e}")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        for (group, name), model in curves.items():
            epochs = [r["epoch"] for r in model.history_]
            if group == "optimizer":
                axes[0].plot(epochs, model.loss_curve_, label=name)
            else:
                axes[1].plot(epochs, model.loss_curve_, label=name)
                axes[2].plot(epochs, [r["learning_rate"] for r in model.history_], label=name)
        for ax, title in zip(axes, ["optimizers (loss)", "adam + schedules (loss)", "learning rate"]):
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.legend(fontsize=7)
        axes[0].set_yscale("log")
        axes[1].set_yscale("log")
        axes[2].set_yscale("log")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"\nlearning curves saved to {args.plot}")


if __name__ == "__main__":
    main()
