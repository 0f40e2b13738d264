"""GridSearchCV over 8 skdeep fits: n_jobs=2 against n_jobs=1 (issue 8, BLAS threads).

Each setting runs in a new process (``python grid_search_jobs.py --run N``)
with a warm Numba cache; the time is the search's ``fit`` alone, so it
includes starting joblib's workers (each imports skdeep and loads the cached
kernels) — what a user's first search pays. A second search in the same
process reuses the workers ("warm workers").

Usage: ``python benchmarks/grid_search_jobs.py [--repeats 3]``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def run(n_jobs):
    """One process: two identical searches with ``n_jobs``; prints their seconds as JSON."""
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    from skdeep import MLPClassifier

    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    MLPClassifier(max_iter=1).fit(X, y)  # load the kernels in this process before timing
    grid = {"alpha": [1e-4, 1e-3, 1e-2, 1e-1]}  # 4 candidates x 2 folds = 8 fits
    seconds = []
    for _ in range(2):
        search = GridSearchCV(
            MLPClassifier(max_iter=60, random_state=0), grid, cv=2, n_jobs=n_jobs, refit=False
        )
        start = time.perf_counter()
        search.fit(X, y)
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"n_jobs": n_jobs, "cold_workers": seconds[0], "warm_workers": seconds[1]}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run is not None:
        run(args.run)
        return
    results = {1: [], 2: []}
    for _ in range(args.repeats):
        for n_jobs in (1, 2):  # interleaved, so load changes hit both alike
            out = subprocess.run(
                [sys.executable, __file__, "--run", str(n_jobs)],
                capture_output=True, text=True, check=True, env=os.environ,
            )
            results[n_jobs].append(json.loads(out.stdout.strip().splitlines()[-1]))
    load = os.getloadavg()[0]
    print(f"GridSearchCV, 8 fits of MLPClassifier(max_iter=60) on digits; "
          f"{os.cpu_count()} logical cores; load average {load:.2f}; median of {args.repeats}")
    print("| n_jobs | s, new workers | s, warm workers |")
    print("|---|---|---|")
    medians = {}
    for n_jobs, rows in results.items():
        cold = statistics.median(r["cold_workers"] for r in rows)
        warm = statistics.median(r["warm_workers"] for r in rows)
        medians[n_jobs] = (cold, warm)
        print(f"| {n_jobs} | {cold:.2f} | {warm:.2f} |")
    (cold1, warm1), (cold2, warm2) = medians[1], medians[2]
    print(f"| speed-up n_jobs=2 | {cold1 / cold2:.2f}x | {warm1 / warm2:.2f}x |")


if __name__ == "__main__":
    main()
