"""GPU throughput: skdeep's CUDA backend against its CPU backend and PyTorch CUDA (issue 10).

float32, adam, seconds per epoch (median of ``--epochs`` warm-started
``fit(max_iter=1)`` calls after an untimed warm-up fit), for

- 784 -> 1024 -> 1024 -> 10 at batch 256 and 4096 (60,000 rows);
- 100 -> 300 -> 100 -> 10 at batch 256 (20,000 rows), where launch overhead dominates.

skdeep's CUDA backend is timed with its tiled matrix product and, when
``nvmath-python`` is installed (``pip install ".[cublas]"``), with cuBLAS.

Exits 0 with a message when no CUDA GPU is usable. Usage:
``python benchmarks/gpu.py [--epochs 5] [--no-cpu]``.
"""

import argparse
import statistics
import sys
import time
import warnings

import numpy as np

CASES = [
    ((784, 1024, 1024, 10), 60_000, 256),
    ((784, 1024, 1024, 10), 60_000, 4096),
    ((100, 300, 100, 10), 20_000, 256),
]


def skdeep_epoch(units, X, y, batch, device, epochs, gemm=None):
    from skdeep import MLPClassifier

    if gemm is not None:
        from skdeep.kernels.cuda.matmul import Gemm
        from skdeep.kernels.cuda_backend import BACKEND

        BACKEND.gemm = Gemm(gemm)
        if BACKEND.gemm.name != gemm:
            return None  # cuBLAS asked for, nvmath-python not installed

    model = MLPClassifier(hidden_layer_sizes=units[1:-1], batch_size=batch, max_iter=1, device=device,
                          warm_start=True, random_state=0, tol=0, n_iter_no_change=10**9)
    model.fit(X, y)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(X, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_epoch(units, X, y, batch, epochs):
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    layers = []
    for a, b in zip(units[:-1], units[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X).cuda(), torch.from_numpy(y).long().cuda()

    def epoch():
        order = torch.randperm(len(Xt), device="cuda")
        for i in range(0, len(Xt), batch):
            rows = order[i:i + batch]
            optimizer.zero_grad()
            loss(model(Xt[rows]), yt[rows]).backward()
            optimizer.step()
        torch.cuda.synchronize()

    epoch()
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--no-cpu", action="store_true", help="skip the (slow) CPU rows")
    args = parser.parse_args()
    from skdeep import _device

    usable, reason = _device.cuda_status()
    if not usable:
        print(f"no usable CUDA GPU ({reason}); nothing to measure")
        return 0
    warnings.simplefilter("ignore")
    rng = np.random.RandomState(0)
    print("| network | batch | skdeep cuda tiled s/epoch | skdeep cuda cuBLAS s/epoch | skdeep cpu s/epoch "
          "| torch cuda s/epoch | cpu / cuda | torch / skdeep cuda (tiled, cuBLAS) |")
    print("|---|---|---|---|---|---|---|---|")
    for units, n, batch in CASES:
        X = rng.standard_normal((n, units[0])).astype(np.float32)
        y = rng.randint(units[-1], size=n)
        tiled = skdeep_epoch(units, X, y, batch, "cuda", args.epochs, gemm="tiled")
        cublas = skdeep_epoch(units, X, y, batch, "cuda", args.epochs, gemm="cublas")
        cuda = cublas if cublas is not None else tiled
        cpu = None if args.no_cpu else skdeep_epoch(units, X, y, batch, "cpu", max(1, args.epochs // 2))
        torch_s = torch_epoch(units, X, y, batch, args.epochs)
        fmt = lambda v: "n/a" if v is None else f"{v:.4g}"  # noqa: E731
        ratio = lambda a, b: "n/a" if a is None or b is None else f"{a / b:.2f}x"  # noqa: E731
        print(f"| {' -> '.join(map(str, units))} | {batch} | {fmt(tiled)} | {fmt(cublas)} | {fmt(cpu)} "
              f"| {fmt(torch_s)} | {ratio(cpu, cuda)} | {ratio(torch_s, tiled)}, {ratio(torch_s, cublas)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
