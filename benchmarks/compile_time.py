"""Cold and warm start: a new process that imports, fits on digits and predicts (issue 8).

Every row is a new Python process; skdeep's use ``NUMBA_CACHE_DIR`` set to a
fresh empty directory for the cold rows, then the same directory (warm):

1. scikit-learn: import, fit the default ``MLPClassifier`` on digits, predict;
2. skdeep, cold cache: the same with ``skdeep.MLPClassifier``;
3. skdeep, a second configuration on that cache (ELU + batch norm + dropout
   + Nadam);
4. skdeep, warm cache: row 2 again; 5. row 3 again, warm: rows 3 - 5 is what
   the second configuration adds.

Each prints import, fit and predict seconds; the wall time of the whole
process is measured from outside. Usage:
``python benchmarks/compile_time.py [--repeats 1]``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, time, warnings
start = time.perf_counter()
if {sklearn!r}:
    from sklearn.neural_network import MLPClassifier
else:
    from skdeep import MLPClassifier
from sklearn.datasets import load_digits
imported = time.perf_counter()
X, y = load_digits(return_X_y=True)
X = X / 16.0
warnings.simplefilter("ignore")
model = MLPClassifier(random_state=0, **{params!r}).fit(X, y)
fitted = time.perf_counter()
model.predict(X)
model.predict_proba(X[:1])
predicted = time.perf_counter()
print(json.dumps({{"import": imported - start, "fit": fitted - imported, "predict": predicted - fitted}}))
"""

SECOND = {"activation": "elu", "batch_norm": "before", "dropout": 0.2, "solver": "nadam"}


def child(sklearn, params, cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(sklearn=sklearn, params=params)],
        capture_output=True, text=True, check=True, env=env,
    )
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["process"] = time.perf_counter() - start
    row["compile_message"] = "compiling skdeep kernels" in out.stderr
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    rows = {name: [] for name in ("sklearn", "cold", "second", "warm", "second_warm")}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            rows["sklearn"].append(child(True, {}, cache))
            rows["cold"].append(child(False, {}, cache))
            rows["second"].append(child(False, SECOND, cache))
            rows["warm"].append(child(False, {}, cache))
            rows["second_warm"].append(child(False, SECOND, cache))
    print(f"{os.cpu_count()} logical cores; load average {os.getloadavg()[0]:.2f}; "
          f"median of {args.repeats}")
    print("| process | import s | fit s | predict s | process s | vs scikit-learn | message |")
    print("|---|---|---|---|---|---|---|")
    base = statistics.median(r["process"] for r in rows["sklearn"])
    labels = {
        "sklearn": "scikit-learn MLPClassifier",
        "cold": "skdeep, empty cache",
        "second": "skdeep, 2nd configuration (ELU+BN+dropout+Nadam) on that cache",
        "warm": "skdeep, warm cache",
        "second_warm": "skdeep, 2nd configuration, warm cache",
    }
    for name, runs in rows.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("import", "fit", "predict", "process")}
        message = "yes" if any(r["compile_message"] for r in runs) else "no"
        print(f"| {labels[name]} | {med['import']:.2f} | {med['fit']:.2f} | {med['predict']:.2f} | "
              f"{med['process']:.2f} | {med['process'] / base:.2f}x | {message} |")
    added = [a["process"] - b["process"] for a, b in zip(rows["second"], rows["second_warm"])]
    print(f"\nThe 2nd configuration adds {statistics.median(added):.2f} s to a process "
          "whose cache holds the first (its process on that cache minus on a warm one).")


if __name__ == "__main__":
    main()
