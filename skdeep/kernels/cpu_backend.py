"""The CPU backend: the :class:`skdeep._backend.Backend` interface over the compiled kernels.

A thin layer: it allocates the work arrays, canonicalizes every argument and
calls the compiled entry points of :mod:`skdeep.kernels.cpu` (``layout``,
``train_epoch`` — a whole epoch in one call —, ``loss_grad``, ``predict``,
``predict_mc``), each with subnormal numbers flushed to zero
(:mod:`skdeep.kernels.cpu.subnormals`). Device arrays are the host arrays, so
``to_device`` and ``copy`` cost nothing.

Canonical arguments keep Numba to one specialization per entry point and
dtype: the arrays the kernels only read (data, targets, row order, options)
always as C-contiguous read-only views, so a writable array, a read-only one,
a memory map and a pandas 3 array share one type; parameters and work arrays
always writable; index arrays as int64, integers as Python ints (int64) and
floats as Python floats (float64).
"""

import logging
from typing import NamedTuple

import numpy as np

from skdeep._backend import Backend, EpochResult
from skdeep.kernels import codes
from skdeep.kernels import cpu as kernels
from skdeep.kernels.cpu.subnormals import flushing

_LOG = logging.getLogger("skdeep")

#: The message a first compile prints, once per process and dtype.
COMPILING = (
    "compiling skdeep kernels for this configuration, once… (then cached on disk; "
    "`python -m skdeep.precompile` compiles ahead of time)"
)


def _read_only(array):
    """A read-only view of ``array``: writable and read-only inputs share one Numba type."""
    view = array.view()
    view.flags.writeable = False
    return view


class Workspace(NamedTuple):
    """Work arrays of the CPU kernels, allocated once per fit (see ``kernels.cpu.network._forward``).

    ``grad`` receives the gradient; ``bufs = (z, a, xhat, mask, slopes, istd,
    sums)`` and ``ibufs = (x, x_in, x_hat, x_mask)`` hold the activations of
    the hidden layers and of the input; ``keys`` the rows' random keys;
    ``dbuf1``, ``dbuf2`` the deltas. Buffers an option does not need are empty.
    """

    grad: np.ndarray
    bufs: tuple
    ibufs: tuple
    keys: np.ndarray
    dbuf1: np.ndarray
    dbuf2: np.ndarray

    @classmethod
    def allocate(cls, network, capacity, sparse):
        """Buffers for batches of up to ``capacity`` rows of ``network``."""
        dtype, units, iopt = network.dtype, network.units, network.iopt
        size = capacity * int(units[1:].sum())
        hidden_dropout = bool((network.dropout[1:] > 0).any())

        def empty(n, needed=True):
            return np.empty(n if needed else 0, dtype=dtype)

        input_work = bool(iopt[codes.IO_INPUT_BATCH_NORM]) or network.dropout[0] > 0
        n_features = int(units[0])
        dbuf1 = empty(capacity * int(units.max()))
        return cls(
            grad=empty(network.n_params),
            bufs=(
                empty(size),
                empty(size),
                empty(size, iopt[codes.IO_BATCH_NORM] != codes.BN_NONE),
                empty(size, hidden_dropout),
                empty(size, iopt[codes.IO_ACTIVATION] == codes.RRELU),
                empty(max(network.n_stats, 1)),
                empty(2 * int(units.max())),
            ),
            ibufs=(
                np.empty((0 if sparse else capacity, n_features), dtype=dtype),
                *(np.empty((capacity if input_work else 0, n_features), dtype=dtype) for _ in range(3)),
            ),
            keys=np.empty(capacity, dtype=np.uint64),
            dbuf1=dbuf1,
            dbuf2=np.empty_like(dbuf1),
        )


class CPUBackend(Backend):
    """Numba kernels on the CPU; matrix products through BLAS (``np.dot``)."""

    name = "cpu"

    def __init__(self):
        self._checked = set()  # (entry point, dtype) pairs looked up
        self._announced = set()  # dtypes the compile message was given for

    def layout(self, units, iopt):
        return kernels.layout(_read_only(units), 1, _read_only(iopt))

    def to_device(self, array):
        return array

    def copy(self, source, target):
        if source is not target:
            np.copyto(target, source)

    def workspace(self, network, capacity, sparse):
        return Workspace.allocate(network, int(capacity), bool(sparse))

    def train_epoch(self, network, data, targets, parameters, optimizer, workspace, epoch):
        args = (
            *self._data(data), *self._targets(targets), _read_only(epoch.order),
            int(epoch.batch_size), _read_only(epoch.learning_rates), _read_only(epoch.momenta),
            parameters.params, parameters.stats, workspace.grad, optimizer.slots,
            *self._network(network), float(epoch.alpha), float(epoch.l1), int(optimizer.code),
            optimizer.hyperparameters, int(epoch.step), int(epoch.first_trainable), int(epoch.seed),
            *workspace[1:], epoch.diagnostics,
        )
        loss_sum, n_batches, step = self._run(kernels.train_epoch, args, network.dtype)
        return EpochResult(float(loss_sum), int(n_batches), int(step))

    def loss_grad(self, network, data, targets, parameters, workspace, alpha, l1):
        args = (
            *self._data(data), *self._targets(targets), parameters.params, parameters.stats,
            workspace.grad, *self._network(network), float(alpha), float(l1), 0, *workspace[1:],
        )
        return float(self._run(kernels.loss_grad, args, network.dtype)), workspace.grad

    def predict(self, network, parameters, data):
        args = (*self._data(data), *self._parameters(parameters), *self._network(network))
        out = self._run(kernels.predict, args, network.dtype)
        return out if out.shape[0] == data.n_samples else None

    def predict_mc(self, network, parameters, data, n_passes, seed):
        args = (
            *self._data(data), *self._parameters(parameters), *self._network(network),
            int(n_passes), int(seed),
        )
        mean, std = self._run(kernels.predict_mc, args, network.dtype)
        return (mean, std) if mean.shape[0] == data.n_samples else None

    # -- canonical arguments --------------------------------------------------

    @staticmethod
    def _data(data):
        return (
            _read_only(data.dense), _read_only(data.values), _read_only(data.indices),
            _read_only(data.indptr), bool(data.sparse),
        )

    @staticmethod
    def _targets(targets):
        return _read_only(targets.Y), _read_only(targets.sample_weight)

    @staticmethod
    def _parameters(parameters):
        # Writable as in training: the kernels share their helpers between modes.
        return tuple(a if a.flags.writeable else a.copy() for a in parameters)

    @staticmethod
    def _network(network):
        return (
            _read_only(network.units), _read_only(network.iopt), _read_only(network.fopt),
            _read_only(network.dropout),
        )

    def _run(self, dispatcher, args, dtype):
        """``dispatcher(*args)`` with subnormals flushed to zero (:mod:`skdeep.kernels.cpu.subnormals`)."""
        self._announce(dispatcher, args, dtype)
        with flushing():
            return dispatcher(*args)

    def _announce(self, dispatcher, args, dtype):
        """Say once per dtype when ``dispatcher`` must compile for ``args``.

        The first call per entry point and dtype looks the signature up in
        memory and in Numba's on-disk cache; later calls cost a set lookup.
        """
        if (dispatcher, dtype) in self._checked:
            return
        self._checked.add((dispatcher, dtype))
        if dtype not in self._announced and not _compiled(dispatcher, args):
            self._announced.add(dtype)
            _LOG.warning(COMPILING)


def _compiled(dispatcher, args):
    """Whether ``dispatcher`` is compiled for ``args``, in memory or in Numba's on-disk cache.

    Anything but a Numba dispatcher (a wrapped entry point, e.g. a test's spy)
    counts as compiled: it has nothing to announce.
    """
    if not hasattr(dispatcher, "typeof_pyval"):
        return True
    signature = tuple(dispatcher.typeof_pyval(a) for a in args)
    if signature in dispatcher.overloads:
        return True
    cache = dispatcher._cache
    try:  # Numba's cache index, keyed as Cache.load_overload keys it
        key = cache._index_key(signature, dispatcher.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # a Numba without this layout: stay silent
        return True


BACKEND = CPUBackend()
