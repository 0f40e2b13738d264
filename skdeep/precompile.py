"""Compile skdeep's kernels ahead of time, into Numba's on-disk cache.

The kernels compile on first use, once per dtype (20 to 40 s on a cold
cache), then load from disk in every new process. Run this where that time
should not be spent later — while building a Docker image, or once on each
kind of Dask worker machine::

    python -m skdeep.precompile                 # float64 and float32
    python -m skdeep.precompile float32         # one dtype

or call :func:`precompile` from Python. The cache lives next to the installed
package, or in ``NUMBA_CACHE_DIR`` when set; it is specific to the CPU model
(Numba compiles for the host CPU), so build it on the machine type that runs
the fits, and point ``NUMBA_CACHE_DIR`` at the same writable directory when
building and when running.
"""

import sys
import time
import warnings

import numpy as np

#: One tiny model per entry point of the backend: a stochastic fit and
#: ``partial_fit`` (``train_epoch``), L-BFGS (``loss_grad``), predictions
#: (``predict``) and MC dropout (``predict_mc``). Options are values, not
#: types, so these cover every configuration of a dtype.
_MODELS = (
    ("MLPClassifier", {"max_iter": 1}),
    ("MLPClassifier", {"solver": "lbfgs", "max_iter": 1}),
    ("MLPRegressor", {"dropout": 0.5, "max_iter": 1}),
)


def precompile(dtypes=("float64", "float32"), verbose=True):
    """Compile (or load from the disk cache) every kernel entry point for ``dtypes``.

    Parameters
    ----------
    dtypes : sequence of {'float64', 'float32'}, default=('float64', 'float32')
        Model dtypes to prepare (a model computes in the dtype of its ``X``).
    verbose : bool, default=True
        Print the time each dtype took.

    Returns
    -------
    seconds : dict
        Wall seconds per dtype.
    """
    import skdeep  # the package imports this module: resolve its estimators at call time

    rng = np.random.RandomState(0)
    seconds = {}
    for name in dtypes:
        dtype = np.dtype(name)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtypes must be 'float64' or 'float32', got {name!r}.")
        start = time.perf_counter()
        X = rng.uniform(size=(8, 3)).astype(dtype)
        y = np.arange(8) % 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for cls, params in _MODELS:
                model = getattr(skdeep, cls)(hidden_layer_sizes=(4,), random_state=0, **params).fit(X, y)
                model.predict(X)
                if "dropout" in params:
                    model.predict_mc(X, n_samples=2)
        seconds[name] = time.perf_counter() - start
        if verbose:
            print(f"skdeep kernels for {name}: ready in {seconds[name]:.1f} s")
    return seconds


def main(argv=None):
    """``python -m skdeep.precompile [dtype ...]``."""
    argv = sys.argv[1:] if argv is None else argv
    precompile(tuple(argv) or ("float64", "float32"))


if __name__ == "__main__":
    main()
