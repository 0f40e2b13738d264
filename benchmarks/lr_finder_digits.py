"""lr_find's suggestions on digits against a grid over learning_rate_init.

(64,) ReLU network, batch 64, 20 epochs, 70/30 stratified split, test
accuracy averaged over random_state 0, 1, 2; the numbers are in
docs/workflow.md. Run: python benchmarks/lr_finder_digits.py (about a minute).
"""
import time, numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skdeep import MLPClassifier
from skdeep.lr_finder import lr_find
X, y = load_digits(return_X_y=True); X = X / 16.0
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
for solver in ["adam", "sgd"]:
    est = MLPClassifier((64,), solver=solver, max_iter=20, random_state=0, batch_size=64)
    t = time.perf_counter()
    r = lr_find(est, Xtr, ytr, random_state=0)
    print(solver, "lr_find %.2fs steps %d diverged %s lr_min %.3g steepest %.3g suggested %.3g 1cycle %.3g" % (time.perf_counter()-t, len(r.losses), r.diverged, r.lr_min, r.lr_steepest, r.suggested_lr, r.one_cycle_max_lr))
    grid = {}
    for lr in [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]:
        accs = [MLPClassifier((64,), solver=solver, max_iter=20, random_state=s, batch_size=64, learning_rate_init=lr).fit(Xtr, ytr).score(Xte, yte) for s in range(3)]
        grid[lr] = np.mean(accs)
    print(solver, "grid", {k: round(v, 4) for k, v in grid.items()})
    for name, lr in [("suggested", r.suggested_lr), ("steepest", r.lr_steepest)]:
        accs = [MLPClassifier((64,), solver=solver, max_iter=20, random_state=s, batch_size=64, learning_rate_init=lr).fit(Xtr, ytr).score(Xte, yte) for s in range(3)]
        print(solver, name, "%.3g acc %.4f" % (lr, np.mean(accs)))
    from skdeep.schedules import OneCycle
    accs = [MLPClassifier((64,), solver=solver, max_iter=20, random_state=s, batch_size=64, learning_rate_init=r.one_cycle_max_lr/10, learning_rate=OneCycle(r.one_cycle_max_lr)).fit(Xtr, ytr).score(Xte, yte) for s in range(3)]
    print(solver, "1cycle max %.3g acc %.4f" % (r.one_cycle_max_lr, np.mean(accs)))
