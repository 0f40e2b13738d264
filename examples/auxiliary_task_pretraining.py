"""Pretraining on an auxiliary task whose labels come from the data itself.

As in the pretraining example, 5 % of the training digits keep their labels.
Two self-supervised tasks are generated from all training images, no labels
needed:

* halves: is this image whole, or the top half of one digit on the bottom half
  of another? (an MLPClassifier, half of the examples spliced)
* inpainting: given an image with its top or bottom half blanked, predict the
  whole image (an MLPRegressor).

The digit classifier then reuses the lowest 1, 2 or 3 hidden layers of the
auxiliary network: frozen while the layers above train, then unfrozen and
fine-tuned with a 10x lower learning rate. Baseline: the same network trained
from scratch on the labelled 5 %. Prints test accuracy, mean ± std over seeds.

Run: ``python examples/auxiliary_task_pretraining.py [--seeds 10]`` (one seed,
about 15 s, by default).
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from skdeep import MLPClassifier, MLPRegressor

LAYERS = (256, 128, 64)
HALF = 32  # pixels in the top half of an 8x8 image


def halves_task(X, random_state):
    """Whole images (label 1) and top halves spliced onto other images' bottom halves (0)."""
    n = len(X)
    other = (np.arange(n) + random_state.randint(1, n, size=n)) % n
    spliced = np.hstack([X[:, :HALF], X[other, HALF:]])
    return np.vstack([X, spliced]), np.r_[np.ones(n), np.zeros(n)]


def inpainting_task(X):
    """Images with the top or the bottom half blanked, and the whole images to predict."""
    top, bottom = X.copy(), X.copy()
    top[:, HALF:] = 0.0
    bottom[:, :HALF] = 0.0
    return np.vstack([top, bottom]), np.vstack([X, X])


def run(seed, X, y):
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    X_few, _, y_few, _ = train_test_split(X_train, y_train, train_size=0.05, stratify=y_train, random_state=seed)
    network = dict(hidden_layer_sizes=LAYERS, random_state=seed)
    auxiliary = {
        "halves": MLPClassifier(max_iter=200, **network).fit(*halves_task(X_train, np.random.RandomState(seed))),
        "inpainting": MLPRegressor(max_iter=200, **network).fit(*inpainting_task(X_train)),
    }
    scores = {"from scratch": MLPClassifier(max_iter=500, **network).fit(X_few, y_few).score(X_test, y_test)}
    for task, model in auxiliary.items():
        for n_layers in range(1, len(LAYERS) + 1):
            clf = MLPClassifier(
                pretrained=model, n_reused_layers=n_layers, n_frozen_layers=n_layers, max_iter=500, **network
            ).fit(X_few, y_few)
            clf.set_params(n_frozen_layers=0, learning_rate_init=1e-4, warm_start=True, max_iter=200)
            scores[f"{task}, {n_layers} reused"] = clf.fit(X_few, y_few).score(X_test, y_test)
    return scores


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="number of random splits (default 1)")
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    start = time.perf_counter()
    # Small matrices: one BLAS thread is faster here, and the numbers do not
    # depend on the machine's thread count.
    with threadpool_limits(1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        results = [run(seed, X, y) for seed in range(args.seeds)]
    print(f"network {LAYERS}, 5% labels, {args.seeds} seed(s), test accuracy after fine-tuning:")
    for name in results[0]:
        values = [scores[name] for scores in results]
        print(f"  {name:<24} {np.mean(values):.4f} ± {np.std(values):.4f}")
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
