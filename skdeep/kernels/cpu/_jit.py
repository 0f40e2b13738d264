"""Compilation options of the CPU kernels, and the freshness stamp of their on-disk cache.

Numba's cache (``cache=True``) keys a compiled function by its source file and
checks only that file's contents: a cached ``train_epoch`` in ``network.py``
would survive an edit of ``activations.py`` that it inlines. So every module
of this package is cached under one stamp, a hash of all of them and of
:mod:`skdeep.kernels.codes`: an edit anywhere recompiles everything once.
This module is imported before any kernel is decorated, since Numba picks a
function's cache locator when it is decorated.
"""

import hashlib
import os
import warnings

from numba.core import caching
from numba.core.errors import NumbaExperimentalFeatureWarning

# Every kernel: cached on disk, releases the GIL, NumPy's semantics for
# division by zero (no exception checks in the loops).
JIT = dict(cache=True, nogil=True, error_model="numpy")
# Helpers called only from compiled code need no Python wrapper (faster compiles).
INNER = dict(JIT, no_cpython_wrapper=True, no_cfunc_wrapper=True)
# Reductions may reassociate (partial sums per SIMD lane), nothing more.
REDUCTION = {"reassoc", "nsz", "contract"}

# The registries are tuples of (code, kernel) pairs that ``numba.literal_unroll``
# walks: typing the tuple unifies the kernels' dispatcher types once, which
# Numba reports as its experimental first-class function type although every
# call is resolved to its own kernel. Silenced for this package's sources only.
warnings.filterwarnings(
    "ignore", ".*First-class function type", NumbaExperimentalFeatureWarning, r".*skdeep[\\/]kernels[\\/]cpu[\\/]"
)

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_CODES = os.path.join(os.path.dirname(_PACKAGE), "codes.py")


def _sources():
    names = sorted(name for name in os.listdir(_PACKAGE) if name.endswith(".py"))
    return [os.path.join(_PACKAGE, name) for name in names] + [_CODES]


def _digest():
    sha = hashlib.sha256()
    for path in _sources():
        sha.update(os.path.basename(path).encode())
        with open(path, "rb") as f:
            sha.update(f.read())
    return sha.digest()


class PackageStampLocator(caching._CacheLocator):
    """Numba's own cache locator for a kernel, with the package's stamp instead of the file's.

    Wraps the locator Numba would pick (same cache directory, same
    disambiguator) for functions defined in this package; other functions are
    left to Numba.
    """

    _stamp = None

    def __init__(self, inner):
        self._inner = inner

    def ensure_cache_path(self):
        self._inner.ensure_cache_path()

    def get_cache_path(self):
        return self._inner.get_cache_path()

    def get_source_stamp(self):
        if PackageStampLocator._stamp is None:
            PackageStampLocator._stamp = _digest()
        return PackageStampLocator._stamp

    def get_disambiguator(self):
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.dirname(os.path.abspath(py_file)) != _PACKAGE:
            return None
        for other in caching.CacheImpl._locator_classes:
            if other is not cls:
                inner = other.from_function(py_func, py_file)
                if inner is not None:
                    return cls(inner)
        return None


if PackageStampLocator not in caching.CacheImpl._locator_classes:
    caching.CacheImpl._locator_classes.insert(0, PackageStampLocator)
