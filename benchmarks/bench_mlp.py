"""Benchmark skdeep's MLPClassifier against scikit-learn, PyTorch and a GEMM floor.

Usage::

    python benchmarks/bench_mlp.py [--quick] [--out FILE.md] [--skdeep-module NAME]

The report is printed as Markdown. Timings run in this process, start-up and
memory in short-lived subprocesses. A library that cannot be imported, or a
measurement that fails, shows "n/a". See ``benchmarks/README.md``.
"""

import argparse
import importlib
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from functools import partial
from typing import Callable, NamedTuple, Optional

import numpy as np
from sklearn.datasets import make_classification
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.preprocessing import StandardScaler

N_SAMPLES = 20_000
N_FEATURES = 100
N_CLASSES = 10
HIDDEN = (300, 100)
ALPHA = 1e-4
LEARNING_RATE = 1e-3
BATCH_SIZES = (32, 256)
DTYPES = (np.float64, np.float32)
MEMORY_BATCH_SIZE = 256
TORCH_THREADS = 2
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")

SETTINGS = {
    "quick": {"rounds": 5, "budget_s": 25, "predict_calls": 300, "startup_reps": 1},
    "full": {"rounds": 25, "budget_s": 420, "predict_calls": 2000, "startup_reps": 3},
}

STARTUP_FIT = """
import importlib
import numpy as np
MLP = importlib.import_module({module!r}).MLPClassifier
rng = np.random.default_rng(0)
X = rng.standard_normal((256, {n_features}))
y = rng.integers(0, {n_classes}, 256)
MLP(hidden_layer_sizes={hidden!r}, solver="adam", batch_size=32, max_iter=1,
    random_state=0).fit(X, y)
"""

# Runs `python -c LAUNCHER cmd...`: the launcher is small, so the peak RSS of
# its only child is not masked by the RSS that a big parent leaves behind in
# the child's accounting across fork+exec.
MEMORY_LAUNCHER = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
"""

# Every timed fit runs a single epoch, which sklearn (and a drop-in) warns about.
warnings.filterwarnings("ignore", message=".*Maximum iterations")


class Impl(NamedTuple):
    """One implementation row of the training and latency tables.

    ``setup(X, y, batch_size)`` returns ``(run_epoch, model)`` after one
    untimed warm-up epoch; ``predictor(model)`` returns a function mapping a
    1-row NumPy array to class probabilities. Both are None when unavailable.
    """

    name: str
    dtype: type
    setup: Optional[Callable]
    predictor: Optional[Callable]


def log(message):
    """Print a progress message to stderr."""
    print(f"[bench_mlp] {message}", file=sys.stderr, flush=True)


def cpu_snapshot():
    """Return ``(machine_busy_s, own_cpu_s, wall_s)`` for ``others_cpu_share``."""
    with open("/proc/stat") as f:
        jiffies = [int(v) for v in f.readline().split()[1:]]
    busy = sum(jiffies) - jiffies[3] - jiffies[4]  # all but idle and iowait
    own = sum(os.times()[:4])  # user + system, self and reaped children
    return busy / os.sysconf("SC_CLK_TCK"), own, time.perf_counter()


def others_cpu_share(start):
    """Return the share of all cores used by other processes since ``start``."""
    busy, own, wall = (b - a for a, b in zip(start, cpu_snapshot()))
    return max(busy - own, 0.0) / (wall * os.cpu_count())


def attempt(label, func, *args):
    """Return ``func(*args)``, or None if func is None or raises.

    Failures are logged on stderr so that the report shows "n/a" instead of
    the script crashing.
    """
    if func is None:
        return None
    try:
        return func(*args)
    except Exception as exc:  # noqa: BLE001 - any failure becomes "n/a"
        log(f"{label} failed: {exc!r}")
        return None


def load_skdeep(module_name):
    """Return the MLPClassifier class of ``module_name``, or None."""
    try:
        return importlib.import_module(module_name).MLPClassifier
    except Exception as exc:  # noqa: BLE001 - a half-written package is "absent"
        log(f"cannot use {module_name}.MLPClassifier: {exc!r}")
        return None


def load_torch():
    """Import torch limited to TORCH_THREADS threads, or return None."""
    try:
        import torch
    except ImportError:
        log("torch is not installed")
        return None
    torch.set_num_threads(TORCH_THREADS)
    return torch


def make_data(dtype=np.float64):
    """Return the standardized benchmark data set as ``(X, y)``."""
    X, y = make_classification(
        n_samples=N_SAMPLES,
        n_features=N_FEATURES,
        n_informative=60,
        n_classes=N_CLASSES,
        random_state=0,
    )
    return StandardScaler().fit_transform(X).astype(dtype), y


def mlp_params(batch_size):
    """Return the constructor parameters shared by skdeep and sklearn."""
    return {
        "hidden_layer_sizes": HIDDEN,
        "activation": "relu",
        "solver": "adam",
        "alpha": ALPHA,
        "learning_rate_init": LEARNING_RATE,
        "batch_size": batch_size,
        "shuffle": True,
        "random_state": 0,
        "tol": 0,
        "n_iter_no_change": 10**9,
    }


def setup_sklearn_api(estimator_cls, X, y, batch_size):
    """Prepare one-epoch fits of a sklearn-style MLPClassifier.

    An epoch is ``fit`` with ``warm_start=True, max_iter=1``; the warm-up fit
    also absorbs JIT compilation.
    """
    model = estimator_cls(**mlp_params(batch_size), max_iter=1, warm_start=True)
    model.fit(X, y)
    return partial(model.fit, X, y), model


def build_torch_model(torch, dtype):
    """Return the benchmark network as a torch ``nn.Sequential``."""
    torch.manual_seed(0)
    sizes = (N_FEATURES, *HIDDEN, N_CLASSES)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1]).to(dtype)


def torch_optimizer(torch, model, batch_size):
    """Return Adam with weight decay on the weights that mimics sklearn's L2.

    sklearn adds ``alpha * W / batch_size`` to the weight gradients and leaves
    the biases alone; torch's ``weight_decay`` adds ``weight_decay * W``.
    """
    weights = [p for p in model.parameters() if p.ndim == 2]
    biases = [p for p in model.parameters() if p.ndim == 1]
    return torch.optim.Adam(
        [
            {"params": weights, "weight_decay": ALPHA / batch_size},
            {"params": biases, "weight_decay": 0.0},
        ],
        lr=LEARNING_RATE,
    )


def torch_epoch(torch, model, optimizer, X, y, batch_size):
    """Run one epoch of the usual hand-written torch training loop."""
    loss_fn = torch.nn.CrossEntropyLoss()
    perm = torch.randperm(X.shape[0])
    for start in range(0, X.shape[0], batch_size):
        idx = perm[start : start + batch_size]
        optimizer.zero_grad()
        loss = loss_fn(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()


def setup_torch(torch, X, y, batch_size):
    """Prepare epochs of the torch equivalent; see ``setup_sklearn_api``."""
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    model = build_torch_model(torch, X_t.dtype)
    optimizer = torch_optimizer(torch, model, batch_size)
    run_epoch = partial(torch_epoch, torch, model, optimizer, X_t, y_t, batch_size)
    run_epoch()
    return run_epoch, model


def torch_predictor(torch, model):
    """Return ``row -> softmax(model(torch.from_numpy(row)))`` without autograd."""

    def predict_proba(row):
        with torch.no_grad():
            return torch.softmax(model(torch.from_numpy(row)), dim=1)

    return predict_proba


def setup_gemm_floor(X, batch_size):
    """Prepare epochs of the network's matrix products only.

    Per mini-batch: forward ``X@W1, H1@W2, H2@W3`` and backward
    ``H2.T@D3, D3@W3.T, H1.T@D2, D2@W2.T, X.T@D1``, all with ``np.dot`` into
    preallocated arrays (the last, smaller batch writes into leading views).
    """
    rng = np.random.default_rng(0)
    sizes = (N_FEATURES, *HIDDEN, N_CLASSES)
    W1, W2, W3 = (
        rng.standard_normal(shape).astype(X.dtype)
        for shape in zip(sizes[:-1], sizes[1:])
    )
    G1, G2, G3 = (np.empty_like(W) for W in (W1, W2, W3))
    H1, H2, D3 = (np.empty((batch_size, n), X.dtype) for n in sizes[1:])
    D1, D2 = np.empty_like(H1), np.empty_like(H2)

    def run_epoch():
        for lo in range(0, X.shape[0], batch_size):
            Xb = X[lo : lo + batch_size]
            m = Xb.shape[0]
            h1, h2, d1, d2, d3 = H1[:m], H2[:m], D1[:m], D2[:m], D3[:m]
            np.dot(Xb, W1, out=h1)
            np.dot(h1, W2, out=h2)
            np.dot(h2, W3, out=d3)
            np.dot(h2.T, d3, out=G3)
            np.dot(d3, W3.T, out=d2)
            np.dot(h1.T, d2, out=G2)
            np.dot(d2, W2.T, out=d1)
            np.dot(Xb.T, d1, out=G1)

    run_epoch()
    return run_epoch, None


#: Seconds between two timed calls. After a call, OpenBLAS's worker threads
#: spin for about 0.1 s (``THREAD_TIMEOUT``, 2^28 cycles by default) before
#: they sleep, and NumPy, SciPy (whose BLAS Numba calls) and torch each have
#: their own pool: a call timed right after another library's matrix
#: products shares the cores with those spinning threads (measured: a float64
#: batch-256 epoch of skdeep right after a scikit-learn epoch took 0.15-0.19 s,
#: 0.09 s after a 0.1-0.2 s pause).
PAUSE_S = 0.2


def time_round_robin(runners, max_rounds, budget_s, min_rounds=3):
    """Time calls of each runner, interleaved, and return the times.

    Each round calls every runner once, so slow phases of a shared machine
    hit all of them alike; :data:`PAUSE_S` separates the calls, so that no
    call pays for the one before. Rounds stop after ``max_rounds``, or once
    ``budget_s`` seconds have passed and ``min_rounds`` are done. A runner that
    raises is dropped (empty list).

    Returns
    -------
    times : dict
        Runner key -> list of seconds, one per round.
    """
    times = {key: [] for key in runners}
    start_all = time.perf_counter()
    for done in range(max_rounds):
        if done >= min_rounds and time.perf_counter() - start_all > budget_s:
            break
        for key, run in list(runners.items()):
            time.sleep(PAUSE_S)
            start = time.perf_counter()
            try:
                run()
            except Exception as exc:  # noqa: BLE001 - any failure becomes "n/a"
                log(f"epoch of {key} failed: {exc!r}")
                del runners[key]
                times[key] = []
                continue
            times[key].append(time.perf_counter() - start)
    return times


def single_row_latency(predict_proba, X, calls):
    """Return the median latency in microseconds of ``predict_proba`` on 1 row."""
    for i in range(100):
        predict_proba(X[i : i + 1])
    times = []
    for i in range(calls):
        row = X[i % len(X) : i % len(X) + 1]
        start = time.perf_counter()
        predict_proba(row)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def time_python(code, env):
    """Return the wall time of ``python -c code`` in a new process, or None."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        log(f"subprocess failed: {proc.stderr.strip()[-500:]}")
        return None
    return elapsed


def median_or_none(values):
    """Return the median, or None if ``values`` is empty or holds a None."""
    if not values or None in values:
        return None
    return statistics.median(values)


def startup_times(skdeep_module, skdeep_ok, reps):
    """Return ``(description, median seconds or None)`` rows of new-process times.

    Rows: importing sklearn.neural_network; importing sklearn and fitting a
    tiny model for one epoch; the same with skdeep and a cold Numba cache (a
    fresh NUMBA_CACHE_DIR); then again with that cache warm.
    """
    sizes = {"n_features": N_FEATURES, "n_classes": N_CLASSES, "hidden": HIDDEN}
    env = dict(os.environ)
    baseline, sk_fit, cold, warm = [], [], [], []
    for _ in range(reps):
        baseline.append(time_python("import sklearn.neural_network", env))
        sk_fit.append(
            time_python(
                STARTUP_FIT.format(module="sklearn.neural_network", **sizes), env
            )
        )
        if skdeep_ok:
            code = STARTUP_FIT.format(module=skdeep_module, **sizes)
            with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
                cache_env = {**env, "NUMBA_CACHE_DIR": cache}
                cold.append(time_python(code, cache_env))
                warm.append(time_python(code, cache_env))
    return [
        (
            "`python -c 'import sklearn.neural_network'` (baseline)",
            median_or_none(baseline),
        ),
        ("sklearn: import + 1-epoch fit of a tiny model", median_or_none(sk_fit)),
        (f"{skdeep_module}: same, cold Numba cache", median_or_none(cold)),
        (f"{skdeep_module}: same, warm Numba cache", median_or_none(warm)),
    ]


def peak_rss_mib(library, skdeep_module):
    """Return the peak resident set (MiB) of a new process doing one fit, or None.

    The fit runs in ``child_fit``; ``MEMORY_LAUNCHER`` reads its peak with
    ``getrusage(RUSAGE_CHILDREN).ru_maxrss``.
    """
    child = [
        sys.executable,
        os.path.abspath(__file__),
        "--child-fit",
        library,
        "--skdeep-module",
        skdeep_module,
    ]
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_LAUNCHER, *child], capture_output=True, text=True
    )
    if proc.returncode != 0:
        log(f"{library} memory child failed: {proc.stderr.strip()[-500:]}")
        return None
    return int(proc.stdout.split()[-1]) / 1024  # Linux reports KiB


def child_fit(library, skdeep_module):
    """Fit one float64 epoch at MEMORY_BATCH_SIZE (run by ``peak_rss_mib``).

    ``library`` is "skdeep", "sklearn", "torch", or "data" to only build the
    data set, as a baseline.
    """
    X, y = make_data()
    if library == "torch":
        setup_torch(load_torch(), X, y, MEMORY_BATCH_SIZE)
    elif library != "data":
        module = skdeep_module if library == "skdeep" else "sklearn.neural_network"
        estimator_cls = importlib.import_module(module).MLPClassifier
        estimator_cls(**mlp_params(MEMORY_BATCH_SIZE), max_iter=1).fit(X, y)


def fmt(value, spec):
    """Format a number with ``spec``, or return "n/a" for None."""
    return "n/a" if value is None else format(value, spec)


def ratio(num, den):
    """Return ``num / den`` formatted like "1.23×", or "n/a"."""
    return "n/a" if num is None or den is None else f"{num / den:.2f}×"


def md_table(headers, rows):
    """Return a Markdown table as a list of lines."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def version(dist):
    """Return the installed version of distribution ``dist``, or "n/a"."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "n/a"


def machine_info(mode, skdeep_module, skdeep_cls, torch):
    """Return the report's header lines: machine, versions, BLAS, env vars."""
    from threadpoolctl import threadpool_info

    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    skdeep_version = "n/a"
    if skdeep_cls is not None:
        top_level = sys.modules[skdeep_module.split(".")[0]]
        skdeep_version = getattr(top_level, "__version__", "n/a")
    lines = [
        "# MLPClassifier benchmark",
        "",
        f"- mode: {mode}; skdeep slot: `{skdeep_module}` (version {skdeep_version})",
        f"- CPU: {cpu}; {os.cpu_count()} logical cores; {platform.platform()}",
        f"- Python {platform.python_version()}; numpy {version('numpy')}; "
        f"scikit-learn {version('scikit-learn')}; numba {version('numba')}; "
        f"torch {torch.__version__ if torch else 'n/a'} ({TORCH_THREADS} threads)",
        f"- load average at start: {os.getloadavg()[0]:.2f} (1 min)",
        "- env: " + "; ".join(f"{v}={os.environ.get(v, '(unset)')}" for v in ENV_VARS),
        "- threadpools (threadpoolctl):",
    ]
    for pool in threadpool_info():
        lines.append(
            f"  - {pool['user_api']}/{pool['internal_api']} {pool.get('version')} "
            f"{pool.get('architecture', '')} threads={pool['num_threads']} "
            f"({os.path.basename(pool['filepath'])})"
        )
    return lines + [""]


def implementations(skdeep_module, skdeep_cls, torch):
    """Return the Impl rows; the first two are skdeep float64 and float32."""
    impls = []
    for name, cls, dtypes in [
        (skdeep_module, skdeep_cls, DTYPES),
        ("sklearn", SklearnMLP, (np.float64,)),
    ]:
        for dtype in dtypes:
            if cls is None:
                impls.append(Impl(name, dtype, None, None))
            else:
                impls.append(
                    Impl(
                        name,
                        dtype,
                        partial(setup_sklearn_api, cls),
                        lambda m: m.predict_proba,
                    )
                )
    for dtype in DTYPES:
        if torch is None:
            impls.append(Impl("torch (≈)", dtype, None, None))
        else:
            impls.append(
                Impl(
                    "torch (≈)",
                    dtype,
                    partial(setup_torch, torch),
                    partial(torch_predictor, torch),
                )
            )
    return impls


def training_sections(impls, data, max_rounds, budget_s):
    """Time all training loops and GEMM floors; return report lines and models.

    Returns
    -------
    lines : list of str
        The training and GEMM-floor tables.
    models : dict
        Impl -> model fitted at the largest batch size, for latency.
    """
    runners, models = {}, {}
    for b in BATCH_SIZES:
        for dtype in DTYPES:
            log(f"warm-up GEMM floor {dtype.__name__} B={b}")
            runners["floor", dtype, b] = setup_gemm_floor(data[dtype][0], b)[0]
        for impl in impls:
            if impl.setup is None:
                continue
            label = f"{impl.name} {impl.dtype.__name__} B={b}"
            log(f"warm-up {label}")
            ready = attempt(label, impl.setup, *data[impl.dtype], b)
            if ready is not None:
                runners[impl, b], models[impl] = ready
    log(f"timing up to {max_rounds} interleaved rounds of {len(runners)} epoch loops")
    cpu_start = cpu_snapshot()
    times = time_round_robin(runners, max_rounds, budget_s)
    others = others_cpu_share(cpu_start)
    if others > 0.1:
        log(f"other processes used {others:.0%} of the CPU: timings are unreliable")
    seconds = {key: statistics.median(t) for key, t in times.items() if t}
    epochs = max(len(t) for t in times.values())
    spreads = [max(t) / min(t) for t in times.values() if t]
    per_epoch = {(i, b): seconds.get((i, b)) for i in impls for b in BATCH_SIZES}
    skdeep = {(i.dtype, b): per_epoch[i, b] for i in impls[:2] for b in BATCH_SIZES}
    floor = {(d, b): seconds.get(("floor", d, b)) for d in DTYPES for b in BATCH_SIZES}

    lines = [
        f"## Training: seconds per epoch (median of {epochs} epochs)",
        "",
        f"{N_SAMPLES} × {N_FEATURES} → {HIDDEN[0]} → {HIDDEN[1]} → {N_CLASSES} "
        "classes, ReLU, adam, lr=1e-3, alpha=1e-4. Ratio = time / skdeep time at "
        "the same dtype (> 1: slower than skdeep).",
        "",
        *md_table(
            ["implementation", "dtype"]
            + [f"s/epoch B={b}" for b in BATCH_SIZES]
            + [f"vs skdeep B={b}" for b in BATCH_SIZES],
            [
                [i.name, i.dtype.__name__]
                + [fmt(per_epoch[i, b], ".3g") for b in BATCH_SIZES]
                + [ratio(per_epoch[i, b], skdeep[i.dtype, b]) for b in BATCH_SIZES]
                for i in impls
            ],
        ),
        "",
        "skdeep and sklearn: one warm-started `fit(max_iter=1)` per epoch after a "
        "warm-up fit. torch (≈): approximately the same work — nn.Sequential, "
        "CrossEntropyLoss, Adam with weight decay alpha/batch_size on the weights, "
        "a plain Python loop over `torch.randperm` batches. All loops are timed "
        f"interleaved, one epoch each per round, {PAUSE_S} s apart (see `PAUSE_S`). Spread (slowest / fastest epoch "
        f"of a loop) ranged from {min(spreads):.2f}× to {max(spreads):.2f}×; "
        f"large values mean the machine was noisy. Other processes used {others:.0%} "
        "of the CPU while this was timed (0% on an idle machine).",
        "",
        f"## GEMM floor: matrix products only, seconds per epoch (median of {epochs})",
        "",
        *md_table(
            ["dtype"]
            + [f"floor B={b}" for b in BATCH_SIZES]
            + [f"skdeep / floor B={b}" for b in BATCH_SIZES],
            [
                [d.__name__]
                + [fmt(floor[d, b], ".3g") for b in BATCH_SIZES]
                + [ratio(skdeep[d, b], floor[d, b]) for b in BATCH_SIZES]
                for d in DTYPES
            ],
        ),
        "",
        "NumPy `np.dot(..., out=...)` into preallocated arrays: forward X@W1, H1@W2, "
        "H2@W3; backward H2.T@D3, D3@W3.T, H1.T@D2, D2@W2.T, X.T@D1.",
        "",
    ]
    return lines, models


#: skdeep options timed against plain adam (issue rows: the chapter's toolkit
#: and every optimizer), float64.
VARIANTS = {
    "adam (plain)": {},
    "batch norm before activation": {"batch_norm": "before"},
    "batch norm after activation": {"batch_norm": "after"},
    "dropout 0.2": {"dropout": 0.2},
    "batch norm + dropout 0.2": {"batch_norm": "before", "dropout": 0.2},
    "sgd (momentum, Nesterov)": {"solver": "sgd"},
    "adagrad": {"solver": "adagrad"},
    "rmsprop": {"solver": "rmsprop"},
    "nadam": {"solver": "nadam"},
    "adamax": {"solver": "adamax"},
    "adamw": {"solver": "adamw"},
    "ftrl": {"solver": "ftrl"},
}


def variants_section(skdeep_cls, data, max_rounds, budget_s):
    """Seconds per epoch of skdeep with each of ``VARIANTS``, relative to plain adam."""
    if skdeep_cls is None or "batch_norm" not in skdeep_cls().get_params():
        return ["## skdeep options and optimizers", "", "n/a (needs skdeep)", ""]
    X, y = data[np.float64]
    runners = {}
    for b in BATCH_SIZES:
        for name, options in VARIANTS.items():
            log(f"warm-up variant {name} B={b}")
            model = skdeep_cls(**{**mlp_params(b), **options}, max_iter=1, warm_start=True)
            ready = attempt(name, model.fit, X, y)
            if ready is not None:
                runners[name, b] = partial(model.fit, X, y)
    log(f"timing up to {max_rounds} interleaved rounds of {len(runners)} variant loops")
    cpu_start = cpu_snapshot()
    times = time_round_robin(runners, max_rounds, budget_s)
    others = others_cpu_share(cpu_start)
    seconds = {key: statistics.median(t) for key, t in times.items() if t}
    base = {b: seconds.get(("adam (plain)", b)) for b in BATCH_SIZES}
    return [
        "## skdeep options and optimizers: seconds per epoch, float64",
        "",
        "Same network and data; ratio = time / plain adam at the same batch size.",
        "",
        *md_table(
            ["variant"]
            + [f"s/epoch B={b}" for b in BATCH_SIZES]
            + [f"vs adam B={b}" for b in BATCH_SIZES],
            [
                [name]
                + [fmt(seconds.get((name, b)), ".3g") for b in BATCH_SIZES]
                + [ratio(seconds.get((name, b)), base[b]) for b in BATCH_SIZES]
                for name in VARIANTS
            ],
        ),
        "",
        f"Timed interleaved; other processes used {others:.0%} of the CPU.",
        "",
    ]


def latency_section(impls, models, data, calls):
    """Measure single-row predict_proba latency; return report lines."""
    latency = {}
    for impl in impls:
        if impl in models:
            log(f"predict_proba latency {impl.name} {impl.dtype.__name__}")
            latency[impl] = attempt(
                f"{impl.name} latency",
                single_row_latency,
                impl.predictor(models[impl]),
                data[impl.dtype][0],
                calls,
            )
    skdeep = {i.dtype: latency.get(i) for i in impls[:2]}
    return [
        f"## Single-row predict_proba latency, µs (median of {calls} calls)",
        "",
        *md_table(
            ["implementation", "dtype", "µs / call", "vs skdeep"],
            [
                [
                    i.name,
                    i.dtype.__name__,
                    fmt(latency.get(i), ".1f"),
                    ratio(latency.get(i), skdeep[i.dtype]),
                ]
                for i in impls
            ],
        ),
        "",
        "torch: `softmax(model(torch.from_numpy(row)))` under `torch.no_grad()`.",
        "",
    ]


def startup_section(skdeep_module, skdeep_ok, reps):
    """Measure first fits in new processes; return report lines."""
    log("start-up subprocesses")
    rows = startup_times(skdeep_module, skdeep_ok, reps)
    return [
        f"## First fit in a new process, wall seconds (median of {reps})",
        "",
        *md_table(["what", "seconds"], [[what, fmt(s, ".2f")] for what, s in rows]),
        "",
    ]


def memory_section(skdeep_module, skdeep_ok, torch_ok):
    """Measure the peak RSS of one fit per library; return report lines."""
    log("peak memory subprocesses")
    rows = [
        ("data only (baseline)", peak_rss_mib("data", skdeep_module)),
        (skdeep_module, peak_rss_mib("skdeep", skdeep_module) if skdeep_ok else None),
        ("sklearn", peak_rss_mib("sklearn", skdeep_module)),
        ("torch (≈)", peak_rss_mib("torch", skdeep_module) if torch_ok else None),
    ]
    return [
        f"## Peak resident memory, new process, one float64 fit "
        f"(1 epoch, B={MEMORY_BATCH_SIZE}), MiB",
        "",
        *md_table(["process", "peak RSS MiB"], [[w, fmt(m, ".0f")] for w, m in rows]),
        "",
    ]


def main():
    """Run the benchmark and print (and optionally save) the Markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and calls")
    parser.add_argument("--out", help="also write the report to this Markdown file")
    parser.add_argument(
        "--skdeep-module",
        default="skdeep",
        help="module whose MLPClassifier fills the skdeep slot (default: skdeep)",
    )
    parser.add_argument("--child-fit", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_fit:
        child_fit(args.child_fit, args.skdeep_module)
        return

    cpu_start = cpu_snapshot()
    mode = "quick" if args.quick else "full"
    cfg = SETTINGS[mode]
    skdeep_cls = load_skdeep(args.skdeep_module)
    torch = load_torch()
    report = []

    def emit(lines):
        report.extend(lines)
        print("\n".join(lines), flush=True)

    emit(machine_info(mode, args.skdeep_module, skdeep_cls, torch))
    data = {dtype: make_data(dtype) for dtype in DTYPES}
    impls = implementations(args.skdeep_module, skdeep_cls, torch)
    lines, models = training_sections(impls, data, cfg["rounds"], cfg["budget_s"])
    emit(lines)
    emit(variants_section(skdeep_cls, data, min(cfg["rounds"], 5), cfg["budget_s"] // 3))
    emit(latency_section(impls, models, data, cfg["predict_calls"]))
    emit(
        startup_section(args.skdeep_module, skdeep_cls is not None, cfg["startup_reps"])
    )
    emit(memory_section(args.skdeep_module, skdeep_cls is not None, torch is not None))
    emit(
        [
            f"Total benchmark wall time: {time.perf_counter() - cpu_start[2]:.0f} s; "
            f"other processes used {others_cpu_share(cpu_start):.0%} of the CPU.",
        ]
    )
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
