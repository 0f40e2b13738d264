"""The backend interface: what the engine asks of the code that does the arithmetic.

The engine (``skdeep/_engine.py``) runs the epoch loop, shuffling, learning
rates, early stopping and L-BFGS in Python; a backend does everything per
batch. The engine hands a backend pinned, named structures — never long
positional tuples:

=================  ==========================================================
:class:`Network`    widths, dtype, kernel codes and option vectors, layout
:class:`Data`       the input matrix, dense or CSR
:class:`Targets`    targets and sample weights
:class:`Parameters` the flat parameter vector and the batch-norm statistics
:class:`Optimizer`  update-rule code, hyperparameters, slots
:class:`Epoch`      one chunk of minibatches: row order, rates, seed, penalty
=================  ==========================================================

and gets back plain results (:class:`EpochResult`, arrays, floats). A fit
goes through the interface as

1. ``layout`` (once per network), ``workspace`` (once per fit);
2. ``to_device`` on the data, targets, parameters and optimizer slots;
3. per epoch ``train_epoch`` (stochastic solvers) or per L-BFGS evaluation
   ``loss_grad``; after each, ``copy`` of the parameters back to the host
   arrays that the estimator's fitted attributes view;
4. ``predict`` and ``predict_mc`` for inference (host arrays in and out).

The CPU backend (:mod:`skdeep.kernels.cpu_backend`) implements
``train_epoch`` as one compiled call per epoch and its device arrays *are*
the host arrays (``to_device`` and ``copy`` do nothing). A GPU backend can
implement the same methods with a host loop over the epoch's batches,
keeping device arrays between calls. Backends are registered by name in
:data:`BACKENDS` and loaded on first use by :func:`get`.
"""

import importlib
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from skdeep.kernels import codes

#: Fitted attributes holding the network's arrays, in the order the layout
#: stores them, and the vector each lives in.
PARAMETER_PARTS = ("coefs_", "intercepts_", "prelu_alpha_", "batch_norm_gamma_", "batch_norm_beta_")
STATISTICS_PARTS = ("batch_norm_moving_mean_", "batch_norm_moving_var_")

#: Registered backends: name -> ``"module:attribute"`` of the backend object,
#: imported on first use so an unused backend costs nothing.
BACKENDS = {
    "cpu": "skdeep.kernels.cpu_backend:BACKEND",
    "cuda": "skdeep.kernels.cuda_backend:BACKEND",
}


class Network:
    """A network as every backend sees it: widths, dtype, kernel codes, layout.

    Built by the engine (:func:`skdeep._engine.network` translates the
    estimators' options into the codes); pinned by ``__slots__``.

    Parameters
    ----------
    units : sequence of int
        ``[n_features, hidden_1, ..., n_outputs]``.
    dtype : numpy dtype
        float32 or float64: of parameters, data and arithmetic.
    iopt : array-like of int, shape (codes.N_IOPTIONS,)
        Integer options (``skdeep.kernels.codes.IO_*``): activation, output
        and loss, batch-norm placement, input batch norm, alpha dropout.
    fopt : array-like of float, shape (codes.N_FOPTIONS,)
        Float options (``codes.FO_*``): activation alpha, RReLU bounds,
        batch-norm momentum and epsilon, max-norm, clipping; the log-loss
        epsilon is set here from ``dtype``.
    dropout : array-like of float, shape (n_layers,)
        Dropout rate on the input of each weight layer.
    backend : str, default="cpu"
        Name of the backend (:data:`BACKENDS`) that computes with it.

    Attributes
    ----------
    offsets : ndarray of int64, shape (n_layers + 1, codes.N_LAYOUT)
        Where each layer's arrays start in the flat vectors (``codes.L_*``).
    n_params, n_stats : int
        Lengths of the parameter and statistics vectors.
    """

    __slots__ = ("units", "dtype", "iopt", "fopt", "dropout", "backend", "offsets", "n_params", "n_stats")

    def __init__(self, units, dtype, iopt, fopt, dropout, backend="cpu"):
        self.units = np.asarray(units, dtype=np.int64)
        self.dtype = np.dtype(dtype)
        self.iopt = np.asarray(iopt, dtype=np.int64)
        self.fopt = np.array(fopt, dtype=np.float64)
        self.fopt[codes.FO_LOG_EPS] = np.finfo(self.dtype).eps
        self.dropout = np.asarray(dropout, dtype=np.float64)
        self.backend = get(backend)
        offsets, n_params, n_stats = self.backend.layout(self.units, self.iopt)
        self.offsets, self.n_params, self.n_stats = offsets, int(n_params), int(n_stats)

    @property
    def n_coefs(self):
        """Number of weights (the first ``n_coefs`` parameters)."""
        return int(self.offsets[0, codes.L_B])

    def with_options(self, **fopt):
        """A copy with float options changed, e.g. ``with_options(FO_BN_MOMENTUM=0.0)``."""
        changed = self.fopt.copy()
        for name, value in fopt.items():
            changed[getattr(codes, name)] = value
        return Network(self.units, self.dtype, self.iopt, changed, self.dropout, self.backend.name)

    def parts(self):
        """``(attribute, vector index (0: params, 1: stats), start, shape)`` of every array."""
        units, offsets, n_layers = self.units, self.offsets, len(self.units) - 1
        for layer in range(n_layers):
            fan_in, fan_out = int(units[layer]), int(units[layer + 1])
            yield "coefs_", 0, offsets[layer, codes.L_W], (fan_in, fan_out)
        for layer in range(n_layers):
            yield "intercepts_", 0, offsets[layer, codes.L_B], (int(units[layer + 1]),)
        for layer in range(n_layers - 1):
            if offsets[layer, codes.L_P] >= 0:
                yield "prelu_alpha_", 0, offsets[layer, codes.L_P], (int(units[layer + 1]),)
        for layer in (n_layers, *range(n_layers - 1)):
            if offsets[layer, codes.L_G] >= 0:
                width = int(units[layer + 1] if layer < n_layers else units[0])
                yield "batch_norm_gamma_", 0, offsets[layer, codes.L_G], (width,)
                yield "batch_norm_beta_", 0, offsets[layer, codes.L_G] + width, (width,)
                yield "batch_norm_moving_mean_", 1, offsets[layer, codes.L_S], (width,)
                yield "batch_norm_moving_var_", 1, offsets[layer, codes.L_S] + width, (width,)

    def unpack(self, params, stats):
        """``{attribute: list of views}`` of the parameter and statistics vectors."""
        parts = {name: [] for name in (*PARAMETER_PARTS, *STATISTICS_PARTS)}
        vectors = (params, stats)
        for name, vector, start, shape in self.parts():
            parts[name].append(vectors[vector][start : start + int(np.prod(shape))].reshape(shape))
        return parts

    def pack(self, parts):
        """New ``(params, stats)`` vectors holding copies of ``parts`` (as from :meth:`unpack`)."""
        vectors = (np.zeros(self.n_params, dtype=self.dtype), np.zeros(self.n_stats, dtype=self.dtype))
        seen = {}
        for name, vector, start, shape in self.parts():
            index = seen[name] = seen.get(name, -1) + 1
            vectors[vector][start : start + int(np.prod(shape))] = np.ravel(parts[name][index])
        return vectors

    def predict(self, params, stats, X):
        """Output layer for ``X`` (dense or sparse), or ``None`` if ``X`` is not finite."""
        return self.backend.predict(self, Parameters(params, stats), Data.from_matrix(X, self.dtype))

    def predict_mc(self, params, stats, X, n_passes, seed):
        """Mean and std of the output over MC-dropout passes, or ``None`` if ``X`` is not finite."""
        data = Data.from_matrix(X, self.dtype)
        return self.backend.predict_mc(self, Parameters(params, stats), data, n_passes, seed)


class Data(NamedTuple):
    """An input matrix as the kernels take it; build it with :func:`skdeep._engine.data`.

    Attributes
    ----------
    dense : ndarray of shape (n_samples, n_features), or (0, n_features) when sparse
        C-contiguous rows in the network's dtype.
    values : ndarray of shape (nnz,)
        CSR values (empty when dense).
    indices, indptr : ndarray of int64
        CSR column indices and row pointers (empty when dense).
    sparse : bool
        Which of the two representations holds the rows.
    """

    dense: np.ndarray
    values: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    sparse: bool

    @classmethod
    def from_matrix(cls, X, dtype):
        """``X`` (a dense array or any SciPy sparse matrix) in ``dtype``, CSR when sparse."""
        if sp.issparse(X):
            X = X.tocsr()
            X.check_format(full_check=True)
            return cls(
                np.empty((0, X.shape[1]), dtype=dtype),
                np.ascontiguousarray(X.data, dtype=dtype),
                X.indices.astype(np.int64),
                X.indptr.astype(np.int64),
                True,
            )
        X = np.ascontiguousarray(X, dtype=dtype)
        return cls(X, _NO_VALUES[X.dtype], _NO_INDEX, _NO_INDEX, False)

    @property
    def n_samples(self):
        return self.indptr.shape[0] - 1 if self.sparse else self.dense.shape[0]

    def take(self, rows):
        """The rows ``rows`` (int64 indices) of host data, as new :class:`Data`."""
        if not self.sparse:
            return self._replace(dense=self.dense[rows])
        starts, lengths = self.indptr[rows], self.indptr[rows + 1] - self.indptr[rows]
        indptr = np.concatenate(([0], np.cumsum(lengths)))
        entries = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return self._replace(values=self.values[entries], indices=self.indices[entries], indptr=indptr)


_NO_INDEX = np.empty(0, dtype=np.int64)
_NO_VALUES = {np.dtype(t): np.empty(0, dtype=t) for t in (np.float32, np.float64)}


class Targets(NamedTuple):
    """Training targets ``Y`` of shape (n_samples, n_outputs) and ``sample_weight`` (n_samples,)."""

    Y: np.ndarray
    sample_weight: np.ndarray


class Parameters(NamedTuple):
    """The flat parameter vector ``params`` and batch-norm moving statistics ``stats``.

    The layout is ``Network.offsets``: every weight matrix (row-major), every
    bias, then each layer's PReLU slopes and batch-norm gamma and beta.
    """

    params: np.ndarray
    stats: np.ndarray


class Optimizer(NamedTuple):
    """An update rule and what it carries between batches.

    Attributes
    ----------
    code : int
        ``skdeep.kernels.codes`` update rule (``SGD``, ``ADAM``, ...).
    hyperparameters : ndarray of float64, shape (codes.N_HYPERPARAMETERS,)
        Host array; the backend updates its running scalars (Nadam's
        momentum product) in place.
    slots : ndarray of shape (n_slots, n_params)
        Moment estimates and accumulators (a device array between
        ``to_device`` and the final ``copy``).
    """

    code: int
    hyperparameters: np.ndarray
    slots: np.ndarray


class Epoch(NamedTuple):
    """One chunk of minibatches for :meth:`Backend.train_epoch`.

    Batch ``b`` covers rows ``order[b * batch_size:(b + 1) * batch_size]``,
    with learning rate ``learning_rates[b]`` and momentum (``beta_1`` for the
    Adam family) ``momenta[b]``.

    Attributes
    ----------
    order : ndarray of int64
        Row indices, in training order.
    batch_size : int
    learning_rates, momenta : ndarray of float64, shape (n_batches,)
    step : int
        Update counter before the first batch.
    seed : int
        Seeds the dropout masks and RReLU slopes of this epoch.
    alpha, l1 : float
        L2 and L1 penalties (scikit-learn's scaling by ``sum(sample_weight)``).
    first_trainable : int
        Layers below it are frozen.
    diagnostics : ndarray of float64, shape (n_hidden + 1, width) or (0, 5)
        Per-layer activation statistics accumulated when not empty.
    """

    order: np.ndarray
    batch_size: int
    learning_rates: np.ndarray
    momenta: np.ndarray
    step: int
    seed: int
    alpha: float
    l1: float
    first_trainable: int
    diagnostics: np.ndarray


class EpochResult(NamedTuple):
    """What :meth:`Backend.train_epoch` reports.

    ``loss_sum`` is the sum over completed batches of batch loss times batch
    size; ``n_batches`` the number of completed batches (fewer than planned
    when a loss turned non-finite: training stopped before that batch's
    update); ``step`` the update counter after them.
    """

    loss_sum: float
    n_batches: int
    step: int


class Backend:
    """The operations the engine needs from a backend; subclass and register by name.

    Arrays the engine passes in are host NumPy arrays in the network's dtype
    (C-contiguous; index arrays int64), except those it obtained from
    :meth:`to_device`. Results are host arrays unless stated.
    """

    #: Name under which :data:`BACKENDS` registers the backend.
    name = ""

    def layout(self, units, iopt):
        """``(offsets, n_params, n_stats)`` of a network: the flat vectors' format.

        Shared by all backends (the fitted attributes are views of these
        vectors), so a backend normally delegates to the CPU one.
        """
        raise NotImplementedError

    def to_device(self, array):
        """A device array holding ``array`` (a host array); the CPU returns it unchanged."""
        raise NotImplementedError

    def copy(self, source, target):
        """Copy ``source`` into ``target``, either on the host or the device (nothing if the same array)."""
        raise NotImplementedError

    def workspace(self, network, capacity, sparse):
        """Work arrays for batches of up to ``capacity`` rows, allocated once per fit.

        The result is opaque to the engine; it is passed back to
        :meth:`train_epoch` and :meth:`loss_grad`.
        """
        raise NotImplementedError

    def train_epoch(self, network, data, targets, parameters, optimizer, workspace, epoch):
        """Train on the minibatches of ``epoch``; returns an :class:`EpochResult`.

        ``data``, ``targets``, ``parameters`` and ``optimizer.slots`` are
        device structures (from :meth:`to_device`); ``parameters`` and the
        slots are updated in place.
        """
        raise NotImplementedError

    def loss_grad(self, network, data, targets, parameters, workspace, alpha, l1):
        """Full-batch loss and gradient at ``parameters`` (for L-BFGS): ``(loss, grad)``.

        ``grad`` is a host array of ``n_params`` values in the network's
        dtype, valid until the next call. Batch-norm statistics in
        ``parameters.stats`` are updated with the network's momentum.
        """
        raise NotImplementedError

    def predict(self, network, parameters, data):
        """Output layer for every row of ``data`` (host structures), in inference mode.

        Returns an ``(n_samples, n_outputs)`` host array, or ``None`` when the
        input holds a non-finite value.
        """
        raise NotImplementedError

    def predict_mc(self, network, parameters, data, n_passes, seed):
        """Mean and standard deviation of the output over ``n_passes`` MC-dropout passes.

        Dropout on, batch norm with its moving statistics (Gal & Ghahramani,
        2016). Returns ``(mean, std)`` host arrays, or ``None`` when the input
        holds a non-finite value.
        """
        raise NotImplementedError


_LOADED = {}


def get(name):
    """The backend registered as ``name``, imported on first use."""
    if name not in _LOADED:
        if name not in BACKENDS:
            raise ValueError(f"Unknown backend {name!r}; available: {sorted(BACKENDS)}.")
        module, attribute = BACKENDS[name].split(":")
        _LOADED[name] = getattr(importlib.import_module(module), attribute)
    return _LOADED[name]
