"""
Batch normalization on raw features
===================================

The breast-cancer features shipped with scikit-learn are left unscaled: they
span from about 0.001 to about 4000. A deep ReLU network trained on them
directly struggles; ``batch_norm_input=True`` normalizes the inputs inside the
network with the statistics of each minibatch, and ``batch_norm="before"`` or
``"after"`` adds a batch-norm layer to every hidden layer, before or after its
activation. At prediction time the moving averages of those statistics are
used.
"""

# %%
# Train the same network with and without batch norm
# ---------------------------------------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skdeep import MLPClassifier

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
print(f"feature range: {X.min():.4f} .. {X.max():.0f}")

configurations = {
    "no batch norm": dict(),
    "inputs only": dict(batch_norm_input=True),
    "inputs + before activation": dict(batch_norm_input=True, batch_norm="before"),
    "inputs + after activation": dict(batch_norm_input=True, batch_norm="after"),
}
models = {}
for name, params in configurations.items():
    model = MLPClassifier(
        hidden_layer_sizes=(64,) * 4, kernel_initializer="he_normal", batch_size=32,
        max_iter=30, random_state=0, **params,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        models[name] = model.fit(X_train, y_train)
    print(f"{name:>28}: final training loss {model.loss_:.4f}, test accuracy {model.score(X_test, y_test):.3f}")

# %%
# Learning curves and test accuracy
# ---------------------------------
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
for name, model in models.items():
    ax_loss.plot(np.arange(1, model.n_iter_ + 1), model.loss_curve_, label=name)
ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Training loss")
ax_loss.legend(fontsize=8)
names = list(models)
ax_acc.barh(names, [models[n].score(X_test, y_test) for n in names])
ax_acc.set(xlabel="test accuracy", xlim=(0.5, 1.0), title="Test accuracy")
fig.tight_layout()

# %%
# What the input layer learned
# ----------------------------
# The moving mean and variance of the input batch-norm layer estimate the
# training set's per-feature statistics.
model = models["inputs + before activation"]
mean, var = model.batch_norm_moving_mean_[0], model.batch_norm_moving_var_[0]
print("first 4 features, moving mean:", np.round(mean[:4], 2), " training mean:", np.round(X_train[:, :4].mean(0), 2))
print("first 4 features, moving std: ", np.round(np.sqrt(var[:4]), 2), " training std: ", np.round(X_train[:, :4].std(0), 2))

plt.show()
