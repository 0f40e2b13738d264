"""
Saturation: sigmoid with N(0, 1) weights against He, ELU and SELU
=================================================================

The chapter opens with the reason deep networks were hard to train: with the
logistic activation and weights drawn from N(0, 1), the variance of each
layer's outputs is much larger than that of its inputs, so the top layers
saturate at 0 or 1 and their gradients vanish. Initializations scaled to the
fan-in (He for ReLU and ELU, LeCun for SELU) keep the activations spread out
layer after layer.

Each network below has eight hidden layers of 64 units and is trained on the
standardized digits with ``diagnostics=True``, which records, for every hidden
layer and every epoch, the mean and standard deviation of its activations and
the norm of its weight gradient in ``history_``.
"""

# %%
# Four configurations of the same deep network
# --------------------------------------------
# The digits have 64 features and every hidden layer has 64 units, so
# ``VarianceScaling(scale=64, mode="fan_in", distribution="untruncated_normal")``
# draws every weight from N(0, 1).
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skdeep import MLPClassifier
from skdeep.initializers import VarianceScaling
from skdeep.plot import plot_diagnostics

DEPTH = 8
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

normal_01 = VarianceScaling(scale=64.0, mode="fan_in", distribution="untruncated_normal")
configurations = {
    "logistic, N(0, 1)": dict(activation="logistic", kernel_initializer=normal_01),
    "ReLU, He normal": dict(activation="relu", kernel_initializer="he_normal"),
    "ELU, He normal": dict(activation="elu", kernel_initializer="he_normal"),
    "SELU, LeCun normal": dict(activation="selu", kernel_initializer="lecun_normal"),
}
models = {}
for name, params in configurations.items():
    model = MLPClassifier(
        hidden_layer_sizes=(64,) * DEPTH, alpha=0.0, batch_size=64, max_iter=10,
        diagnostics=True, random_state=0, **params,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        models[name] = model.fit(X_train, y_train)
    print(f"{name:>20}: test accuracy {model.score(X_test, y_test):.3f}")

# %%
# Per-layer statistics in the first epoch
# ---------------------------------------
# With N(0, 1) weights the logistic units are pushed towards 0 and 1: their
# mean stays near 0.5 and their standard deviation near 0.5, the value it
# takes when every output is exactly 0 or 1, in every layer. Their gradient
# norm shrinks from the top layer down to the first one (the printed ratio),
# and after the same number of epochs the network is the least accurate of
# the four. With the scaled initializations the gradient norm stays roughly
# level across the depth, and SELU keeps its activations near mean 0 and
# standard deviation 1, as self-normalization predicts.
layers = np.arange(1, DEPTH + 1)
fig, (ax_std, ax_grad) = plt.subplots(1, 2, figsize=(10, 3.8))
for name, model in models.items():
    first = model.history_[0]
    ax_std.plot(layers, [first[f"activation_std_{k}"] for k in layers], "o-", label=name)
    ax_grad.plot(layers, [first[f"gradient_norm_{k}"] for k in layers], "o-", label=name)
ax_std.set(xlabel="hidden layer", ylabel="activation std", title="Activations, epoch 1")
ax_grad.set(xlabel="hidden layer", ylabel="mean gradient norm", title="Gradients, epoch 1", yscale="log")
ax_std.legend(fontsize=8)
fig.tight_layout()

for name, model in models.items():
    first = model.history_[0]
    ratio = first["gradient_norm_1"] / first[f"gradient_norm_{DEPTH}"]
    print(f"{name:>20}: activation mean/std layer 1 {first['activation_mean_1']:+.2f}/{first['activation_std_1']:.2f}, "
          f"layer {DEPTH} {first[f'activation_mean_{DEPTH}']:+.2f}/{first[f'activation_std_{DEPTH}']:.2f}; "
          f"gradient norm layer 1 / layer {DEPTH} = {ratio:.3g}")

# %%
# Over the epochs: :func:`skdeep.plot.plot_diagnostics`
# -----------------------------------------------------
# The same statistics for every epoch, one line per layer, for the saturating
# network and for the SELU one.
for name in ("logistic, N(0, 1)", "SELU, LeCun normal"):
    axes = plot_diagnostics(models[name])
    axes[0].figure.suptitle(name)
    axes[0].figure.tight_layout()

plt.show()
