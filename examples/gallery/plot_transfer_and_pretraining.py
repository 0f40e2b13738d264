"""
Transfer learning and unsupervised pretraining with few labels
==============================================================

Task A: classify the digits 0 to 4, every image labelled. Task B: classify
the digits 5 to 9 from 10 labelled images per class. Following the chapter,
the network for B is trained

- from scratch on its few labels;
- from A's hidden layers, frozen, so that only a new output layer learns
  (``pretrained=model_a, n_frozen_layers=2``), then unfrozen and fine-tuned
  from the current weights with a lower learning rate (``warm_start=True``);
- from the encoder of a :class:`skdeep.StackedAutoencoder` trained greedily,
  layer by layer, on all of B's images without their labels.
"""

# %%
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skdeep import MLPClassifier, StackedAutoencoder

LAYERS = (64, 32)
X, y = load_digits(return_X_y=True)
X = X / 16.0
in_b = y >= 5
X_a, y_a = X[~in_b], y[~in_b]
X_b, X_test, y_b, y_test = train_test_split(X[in_b], y[in_b], train_size=50, stratify=y[in_b], random_state=0)
network = dict(hidden_layer_sizes=LAYERS, random_state=0)
scores = {}

with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    scratch = MLPClassifier(max_iter=300, **network).fit(X_b, y_b)
    scores["from scratch"] = scratch.score(X_test, y_test)

    # %%
    # Reuse task A's layers: freeze, then fine-tune
    # ---------------------------------------------
    model_a = MLPClassifier(max_iter=200, **network).fit(X_a, y_a)
    model_b = MLPClassifier(pretrained=model_a, n_frozen_layers=2, learning_rate_init=0.01, max_iter=300, **network)
    scores["A's layers, frozen"] = model_b.fit(X_b, y_b).score(X_test, y_test)
    model_b.set_params(n_frozen_layers=0, learning_rate_init=0.001, max_iter=100, warm_start=True)
    scores["A's layers, fine-tuned"] = model_b.fit(X_b, y_b).score(X_test, y_test)

    # %%
    # Pretrain an autoencoder on the unlabelled images
    # ------------------------------------------------
    X_unlabelled = X[in_b]  # every image of B, labels dropped (the test images too: no labels are used)
    autoencoder = StackedAutoencoder(LAYERS, noise=0.2, max_iter=100, random_state=0).fit(X_unlabelled)
    model_ae = MLPClassifier(pretrained=autoencoder, n_frozen_layers=2, learning_rate_init=0.01, max_iter=300, **network)
    model_ae.fit(X_b, y_b)
    model_ae.set_params(n_frozen_layers=0, learning_rate_init=0.001, max_iter=100, warm_start=True)
    scores["autoencoder, fine-tuned"] = model_ae.fit(X_b, y_b).score(X_test, y_test)

for name, score in scores.items():
    print(f"{name:>24}: test accuracy on B {score:.3f}")
print(f"autoencoder reconstruction loss per stage: {[round(v, 4) for v in autoencoder.layer_losses_]}")

# %%
# Test accuracy on task B
# -----------------------
# One split and one seed, so small differences mean little. On this small
# dense network the features learnt on the other digits transfer poorly, as
# the chapter warns and as the user guide's transfer page measures over ten
# splits (``examples/transfer_learning.py --seeds 10``); pretraining on task
# B's own unlabelled images is the variant that can help.
fig, ax = plt.subplots(figsize=(7, 3))
ax.barh(list(scores), list(scores.values()))
ax.set(xlabel="test accuracy", xlim=(0.0, 1.0), title=f"Task B, {len(y_b)} labels")
fig.tight_layout()

plt.show()
