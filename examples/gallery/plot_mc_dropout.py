"""
MC dropout: uncertainty on right and wrong predictions
======================================================

A network trained with dropout can keep dropout on at prediction time and
average many stochastic passes (Gal and Ghahramani's MC dropout, in the
chapter). ``predict_proba_mc`` returns the mean and the standard deviation of
the class probabilities over ``n_samples`` passes, all run in compiled code.
The spread is an uncertainty estimate: it should be larger on the samples the
model gets wrong. :func:`skdeep.plot.plot_mc_uncertainty` draws both
distributions.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skdeep import MLPClassifier
from skdeep.plot import plot_mc_uncertainty

X, y = load_digits(return_X_y=True)
images = X.reshape(-1, 8, 8)
X_train, X_test, y_train, y_test, _, images_test = train_test_split(X, y, images, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    model = MLPClassifier(hidden_layer_sizes=(64, 64), dropout=0.3, max_iter=30, random_state=0).fit(X_train, y_train)
print(f"test accuracy, dropout off: {model.score(X_test, y_test):.3f}")

# %%
# Spread of the predicted class's probability
# -------------------------------------------
ax = plot_mc_uncertainty(model, X_test, y_test, n_samples=100, random_state=0)
spread = ax.uncertainty
print(f"MC dropout, 100 passes: mean std {spread['right'].mean():.4f} on {len(spread['right'])} right predictions, "
      f"{spread['wrong'].mean():.4f} on {len(spread['wrong'])} wrong ones")

# %%
# The most uncertain test digits
# ------------------------------
mean, std = model.predict_proba_mc(X_test, n_samples=100, random_state=0)
predicted = mean.argmax(axis=1)
top_std = std[np.arange(len(predicted)), predicted]
fig, axes = plt.subplots(1, 6, figsize=(10, 2.2))
for ax, i in zip(axes, np.argsort(-top_std)):
    ax.imshow(images_test[i], cmap="gray_r")
    ax.set_title(f"true {y_test[i]}, pred {model.classes_[predicted[i]]}\np = {mean[i].max():.2f} ± {top_std[i]:.2f}", fontsize=8)
    ax.axis("off")
fig.tight_layout()

plt.show()
