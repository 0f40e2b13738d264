"""Streaming: milliseconds per ``partial_fit`` on small chunks, skdeep against scikit-learn.

A chunk of 256 rows is one batch, so each call's fixed cost (parameter and
input validation, label encoding, the engine's set-up and its check of the
last update) weighs as much as the compiled epoch. The network and data are
``bench_mlp.py``'s (100 → 300 → 100 → 10, ReLU, adam); each library streams
the 20,000 rows in chunks, after an untimed first call (``classes=``) that
also compiles. The figures are medians over all calls.

Usage: ``python benchmarks/partial_fit.py [--calls 400] [--chunk 256]``.
"""

import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_mlp import PAUSE_S, make_data, mlp_params  # noqa: E402

#: Each library streams in this many blocks of consecutive calls, the two
#: alternating block by block: OpenBLAS's threads spin for a while after a
#: call, so alternating call by call would time each library with the other's
#: threads still busy (skdeep's float64 calls took 9.5 ms that way, 6.5 ms alone).
BLOCKS = 4


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--chunk", type=int, default=256)
    args = parser.parse_args()

    from sklearn.neural_network import MLPClassifier as SklearnMLP

    from skdeep import MLPClassifier

    warnings.simplefilter("ignore")
    print("| dtype | skdeep ms | scikit-learn ms | speed-up |\n|---|---|---|---|")
    for dtype in (np.float64, np.float32):
        X, y = make_data(dtype)
        classes = np.unique(y)
        models = {name: cls(**mlp_params(args.chunk)) for name, cls in (("skdeep", MLPClassifier),
                                                                        ("sklearn", SklearnMLP))}
        for model in models.values():
            model.partial_fit(X[: args.chunk], y[: args.chunk], classes=classes)
        times = {name: [] for name in models}
        n_chunks = len(X) // args.chunk
        for block in range(BLOCKS):  # ABAB: each block is one library's stream, after a pause
            for name, model in models.items():
                time.sleep(PAUSE_S)
                for call in range(block * args.calls // BLOCKS, (block + 1) * args.calls // BLOCKS):
                    rows = slice(args.chunk * (call % n_chunks), args.chunk * (call % n_chunks + 1))
                    start = time.perf_counter()
                    model.partial_fit(X[rows], y[rows])
                    times[name].append(time.perf_counter() - start)
        ours, theirs = (statistics.median(times[name]) * 1e3 for name in ("skdeep", "sklearn"))
        print(f"| {np.dtype(dtype).name} | {ours:.2f} | {theirs:.2f} | {theirs / ours:.2f}× |")


if __name__ == "__main__":
    main()
