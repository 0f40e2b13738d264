"""
Optimizers and learning-rate schedules
======================================

The chapter's faster optimizers (momentum, Nesterov, AdaGrad, RMSProp, Adam,
Nadam) and its learning-rate schedules (exponential, performance, 1cycle),
each a value of ``solver=`` or ``learning_rate=``, on the same network and the
same digits. The learning rate actually used is recorded per epoch in
``history_`` and drawn by :func:`skdeep.plot.plot_schedule`.
"""

# %%
# Optimizers
# ----------
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skdeep import MLPClassifier
from skdeep.optimizers import SGD
from skdeep.plot import plot_schedule
from skdeep.schedules import ExponentialDecay, OneCycle, ReduceOnPlateau

EPOCHS = 15
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)


def fit(**params):
    model = MLPClassifier(hidden_layer_sizes=(64, 32), batch_size=40, max_iter=EPOCHS, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X_train, y_train)


optimizers = {
    "SGD, momentum 0.9": dict(solver=SGD(momentum=0.9), learning_rate_init=0.01),
    "SGD, Nesterov": dict(solver=SGD(momentum=0.9, nesterov=True), learning_rate_init=0.01),
    "AdaGrad": dict(solver="adagrad", learning_rate_init=0.05),
    "RMSProp": dict(solver="rmsprop", learning_rate_init=0.001),
    "Adam": dict(solver="adam", learning_rate_init=0.001),
    "Nadam": dict(solver="nadam", learning_rate_init=0.001),
}
by_optimizer = {name: fit(**params) for name, params in optimizers.items()}
for name, model in by_optimizer.items():
    print(f"{name:>18}: final loss {model.loss_:.4f}, test accuracy {model.score(X_test, y_test):.3f}")

# %%
# Schedules, with Adam
# --------------------
steps_per_epoch = -(-len(X_train) // 40)
schedules = {
    "constant": "constant",
    "exponential": ExponentialDecay(steps=EPOCHS * steps_per_epoch),
    "performance (plateau)": ReduceOnPlateau(factor=0.5, patience=1, min_delta=0.01),
    "1cycle": OneCycle(max_learning_rate=0.01),
}
by_schedule = {name: fit(solver="adam", learning_rate=schedule) for name, schedule in schedules.items()}
for name, model in by_schedule.items():
    print(f"{name:>22}: final loss {model.loss_:.4f}, test accuracy {model.score(X_test, y_test):.3f}, "
          f"last learning rate {model.history_[-1]['learning_rate']:.2e}")

# %%
# Loss curves and the learning rates used
# ---------------------------------------
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for name, model in by_optimizer.items():
    axes[0].plot(range(1, EPOCHS + 1), model.loss_curve_, label=name)
for name, model in by_schedule.items():
    axes[1].plot(range(1, EPOCHS + 1), model.loss_curve_, label=name)
axes[0].set(title="Optimizers", xlabel="epoch", ylabel="training loss", yscale="log")
axes[1].set(title="Adam + schedules", xlabel="epoch", ylabel="training loss", yscale="log")
for ax in axes[:2]:
    ax.legend(fontsize=8)
plot_schedule(by_schedule["1cycle"], ax=axes[2])
axes[2].set_title("1cycle: learning rate and momentum (beta_1)")
fig.tight_layout()

plt.show()
