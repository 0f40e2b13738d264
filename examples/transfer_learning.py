"""Transfer learning on the digits: reuse, freeze, unfreeze and fine-tune.

The chapter's recipe with scikit-learn estimators. Task A: classify the digits
0-4, with every image labelled. Task B: classify the digits 5-9 from 5 labelled
images per class. The network for B takes its hidden layers from A's model:
first with the reused layers frozen (only the new output layer learns), then
unfrozen and fine-tuned with a 10x lower learning rate from the current
weights (``set_params(..., warm_start=True)``). ``GridSearchCV`` then picks how
many layers to reuse and to freeze, 0 included (from scratch), by
cross-validation on B's few labels — ``PretrainedLayers`` makes the source
survive ``clone``. Prints B's test accuracy for each approach, mean ± std.

Run: ``python examples/transfer_learning.py [--seeds 10]``
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from threadpoolctl import threadpool_limits

from skdeep import MLPClassifier, PretrainedLayers

LAYERS = (64, 32)
LABELS_PER_CLASS = 5


def run(seed, X, y):
    in_b = y >= 5
    X_a, y_a = X[~in_b], y[~in_b]
    X_b, X_test, y_b, y_test = train_test_split(
        X[in_b], y[in_b], train_size=5 * LABELS_PER_CLASS, stratify=y[in_b], random_state=seed
    )
    model_a = MLPClassifier(LAYERS, max_iter=300, random_state=seed).fit(X_a, y_a)
    weights_a = [w.copy() for w in model_a.coefs_]
    network = dict(hidden_layer_sizes=LAYERS, random_state=seed)
    scores = {"from scratch": MLPClassifier(max_iter=500, **network).fit(X_b, y_b).score(X_test, y_test)}

    # Reuse both hidden layers, frozen: only the new output layer trains.
    b_on_a = MLPClassifier(
        pretrained=model_a, n_frozen_layers=2, learning_rate_init=0.01, max_iter=1000, **network
    ).fit(X_b, y_b)
    scores["reused, frozen"] = b_on_a.score(X_test, y_test)
    # Unfreeze and continue from the current weights with a lower learning rate.
    b_on_a.set_params(n_frozen_layers=0, learning_rate_init=0.001, max_iter=200, warm_start=True)
    scores["then fine-tuned"] = b_on_a.fit(X_b, y_b).score(X_test, y_test)

    search = GridSearchCV(
        MLPClassifier(pretrained=PretrainedLayers(model_a), max_iter=500, **network),
        {"n_reused_layers": [0, 1, 2], "n_frozen_layers": [0, 1]},
        cv=3,
    ).fit(X_b, y_b)
    scores["grid search"] = search.score(X_test, y_test)
    assert all(np.array_equal(w, v) for w, v in zip(weights_a, model_a.coefs_))  # copied, never shared
    return scores, search.best_params_


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="number of random splits (default 3)")
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    start = time.perf_counter()
    results = []
    # Small matrices: one BLAS thread is faster here, and the numbers do not
    # depend on the machine's thread count.
    with threadpool_limits(1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for seed in range(args.seeds):
            scores, best = run(seed, X, y)
            results.append(scores)
            print(
                f"seed {seed}: "
                + ", ".join(f"{name} {score:.4f}" for name, score in scores.items())
                + f"; grid search chose n_reused_layers={best['n_reused_layers']}, "
                f"n_frozen_layers={best['n_frozen_layers']}"
            )
    print(
        f"\ntask B (digits 5-9, {LABELS_PER_CLASS} labels per class), network {LAYERS}, "
        f"{args.seeds} seeds, test accuracy mean ± std:"
    )
    for name in results[0]:
        values = [scores[name] for scores in results]
        print(f"  {name:<16} {np.mean(values):.4f} ± {np.std(values):.4f}")
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
