"""The training engine: network layout, training loops and their state.

The engine sits between the estimators (API and validation, no math) and the
kernels (arrays in, arrays out). It owns the flat parameter vector, the
buffers of a fit, the epoch loop (shuffling, learning rate, early stopping,
history) and L-BFGS. Python runs once per epoch; every minibatch runs inside
one compiled call.
"""

import time
import warnings

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import ThreadpoolController

from skdeep._progress import Progress
from skdeep.kernels import codes
from skdeep.kernels import cpu as kernels

DIVERGED = (
    "Solver produced non-finite parameter weights. The input data may contain "
    "large values and need to be preprocessed."
)


class Diverged(ValueError):
    """Training stopped on a non-finite loss; the model keeps its last finite weights."""


#: Fitted attributes holding the network's arrays, in the order the kernels'
#: layout stores them, and the vector each lives in.
PARAMETER_PARTS = ("coefs_", "intercepts_", "prelu_alpha_", "batch_norm_gamma_", "batch_norm_beta_")
STATISTICS_PARTS = ("batch_norm_moving_mean_", "batch_norm_moving_var_")


class Network:
    """Layer widths, activation codes and options of a multilayer perceptron.

    Parameters
    ----------
    units : sequence of int
        ``[n_features, hidden_1, ..., n_outputs]``.
    dtype : numpy dtype
        Floating dtype of parameters and data.
    iopt, fopt : array-like
        Integer and float option vectors (``skdeep.kernels.codes.IO_*``/``FO_*``).
    dropout : array-like of shape (n_layers,)
        Dropout rate on the input of each weight layer.
    """

    def __init__(self, units, dtype, iopt, fopt, dropout):
        self.units = np.asarray(units, dtype=np.int64)
        self.dtype = np.dtype(dtype)
        self.iopt = np.asarray(iopt, dtype=np.int64)
        self.fopt = np.array(fopt, dtype=np.float64)
        self.fopt[codes.FO_LOG_EPS] = np.finfo(self.dtype).eps
        self.dropout = np.asarray(dropout, dtype=np.float64)
        self.offsets, self.n_params, self.n_stats = kernels.layout(self.units, 1, self.iopt)

    @property
    def n_coefs(self):
        return int(self.offsets[0, codes.L_B])

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

    def _kernel_args(self):
        return self.units, self.iopt, self.fopt, self.dropout

    def predict(self, params, stats, X):
        """Output layer for ``X`` (dense or sparse), or ``None`` if ``X`` is not finite."""
        data = KernelInput(X, self.dtype)
        out = kernels.predict(*data, params, stats, *self._kernel_args())
        return out if out.shape[0] == data.n_samples else None

    def predict_mc(self, params, stats, X, n_passes, seed):
        """Mean and std of the output over MC-dropout passes, or ``None`` if ``X`` is not finite."""
        data = KernelInput(X, self.dtype)
        mean, std = kernels.predict_mc(*data, params, stats, *self._kernel_args(), n_passes, seed)
        return (mean, std) if mean.shape[0] == data.n_samples else None


_NO_INDEX = np.empty(0, dtype=np.int64)
_NO_VALUES = {np.dtype(t): np.empty(0, dtype=t) for t in (np.float32, np.float64)}


#: A product of fewer multiply-adds than this runs on one BLAS thread: waking a
#: second thread costs more than it saves (a batch-32 epoch of the benchmark
#: network ran 6x slower with two threads on a busy 2-core machine).
SINGLE_THREAD_FLOPS = 4_000_000


def blas_threads(network, batch_size):
    """Limit the BLAS threads of a fit: one for small products, never more than set.

    Returns a :class:`threadpoolctl.threadpool_limits` context (call its
    ``restore_original_limits`` at the end). The limit is the smaller of what
    the problem size calls for and the current setting, so a user's (or a
    joblib worker's) explicit limit is respected.
    """
    global _BLAS
    if _BLAS is None:  # scanning the loaded libraries takes milliseconds: once per process
        _BLAS = ThreadpoolController().select(user_api="blas")
    units = network.units
    largest = int(batch_size * (units[:-1] * units[1:]).max())
    current = min((info["num_threads"] for info in _BLAS.info()), default=1)
    wanted = 1 if largest < SINGLE_THREAD_FLOPS else current
    return _BLAS.limit(limits=min(wanted, current))


_BLAS = None


class KernelInput(tuple):
    """``(Xd, Xv, Xi, Xp, sparse)``: a dense or CSR matrix as the kernels take it."""

    __slots__ = ()

    def __new__(cls, X, dtype):
        if sp.issparse(X):
            X = X.tocsr()
            X.check_format(full_check=True)
            return super().__new__(
                cls,
                (
                    np.empty((0, X.shape[1]), dtype=dtype),
                    np.ascontiguousarray(X.data, dtype=dtype),
                    X.indices.astype(np.int64),
                    X.indptr.astype(np.int64),
                    True,
                ),
            )
        X = np.ascontiguousarray(X, dtype=dtype)
        return super().__new__(cls, (X, _NO_VALUES[X.dtype], _NO_INDEX, _NO_INDEX, False))

    @property
    def n_samples(self):
        return self[3].shape[0] - 1 if self[4] else self[0].shape[0]


class _Buffers:
    """Work arrays for batches of up to ``capacity`` rows, allocated once per fit."""

    def __init__(self, network, capacity, sparse):
        dtype, units, iopt = network.dtype, network.units, network.iopt
        size = capacity * int(units[1:].sum())
        hidden_dropout = bool((network.dropout[1:] > 0).any())

        def empty(n, needed=True):
            return np.empty(n if needed else 0, dtype=dtype)

        self.grad = empty(network.n_params)
        self.bufs = (
            empty(size),
            empty(size),
            empty(size, iopt[codes.IO_BATCH_NORM] != codes.BN_NONE),
            empty(size, hidden_dropout),
            empty(size, iopt[codes.IO_ACTIVATION] == codes.RRELU),
            empty(max(network.n_stats, 1)),
            empty(2 * int(units.max())),
        )
        input_work = bool(iopt[codes.IO_INPUT_BATCH_NORM]) or network.dropout[0] > 0
        n_features = int(units[0])
        self.ibufs = (
            np.empty((0 if sparse else capacity, n_features), dtype=dtype),
            *(np.empty((capacity if input_work else 0, n_features), dtype=dtype) for _ in range(3)),
        )
        self.keys = np.empty(capacity, dtype=np.uint64)
        self.dbuf1 = empty(capacity * int(units.max()))
        self.dbuf2 = np.empty_like(self.dbuf1)


def fit_lbfgs(
    network, params, stats, data, Y, sw, *, alpha, l1, max_iter, max_fun, tol, verbose,
    first_trainable=0,
):
    """Minimize the full-batch loss with SciPy's L-BFGS-B, as scikit-learn does.

    Layers below ``first_trainable`` are frozen by bounds (lower = upper = the
    current value), the parameters ``train_epoch`` leaves unchanged.
    Returns ``(loss, n_iter)``; ``params`` holds the solution.
    """
    buffers = _Buffers(network, data.n_samples, data[4])

    def loss_and_grad(x):
        np.copyto(params, x, casting="unsafe")
        loss = kernels.loss_grad(
            *data, Y, sw, params, stats, buffers.grad, *network._kernel_args(), alpha, l1,
            0, buffers.bufs, buffers.ibufs, buffers.keys, buffers.dbuf1, buffers.dbuf2,
        )
        return loss, buffers.grad.astype(np.float64)

    def report(intermediate_result):
        report.n_iter += 1
        print("Iteration %d, loss = %.8f" % (report.n_iter, intermediate_result.fun))

    report.n_iter = 0
    x0 = params.astype(np.float64)
    bounds = None
    if first_trainable:
        offsets, n_layers = network.offsets, len(network.units) - 1
        frozen = np.zeros(network.n_params, dtype=bool)
        frozen[: offsets[first_trainable, codes.L_W]] = True
        frozen[network.n_coefs : offsets[first_trainable, codes.L_B]] = True
        frozen[offsets[n_layers, codes.L_X] : offsets[first_trainable, codes.L_X]] = True
        bounds = scipy.optimize.Bounds(np.where(frozen, x0, -np.inf), np.where(frozen, x0, np.inf))
    result = scipy.optimize.minimize(
        loss_and_grad,
        x0,
        method="L-BFGS-B",
        jac=True,
        bounds=bounds,
        callback=report if verbose else None,
        options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol},
    )
    np.copyto(params, result.x, casting="unsafe")
    if not np.isfinite(params).all():
        raise ValueError(DIVERGED)
    if network.n_stats:
        # Batch-norm statistics of the solution: one training pass, momentum 0.
        fopt = network.fopt.copy()
        fopt[codes.FO_BN_MOMENTUM] = 0.0
        kernels.loss_grad(
            *data, Y, sw, params, stats, buffers.grad, network.units, network.iopt, fopt,
            network.dropout, alpha, l1, 0, buffers.bufs, buffers.ibufs, buffers.keys,
            buffers.dbuf1, buffers.dbuf2,
        )
    n_iter = min(result.nit, max_iter)
    if result.status != 0:
        warnings.warn(
            f"lbfgs failed to converge after {n_iter} iteration(s) "
            f"(status={result.status}): {result.message}. Increase max_iter or "
            "max_fun, or scale the data.",
            ConvergenceWarning,
        )
    return float(result.fun), n_iter


def fit_stochastic(
    state, network, params, stats, data, Y, sw, *, optimizer, schedule,
    learning_rate_init, alpha, l1, batch_size, max_iter, shuffle, random_state, tol,
    n_iter_no_change, incremental, validation_score, early_stopping, callbacks,
    verbose, diagnostics=False, first_trainable=0,
):
    """Run minibatch epochs until convergence, ``max_iter`` or a stop.

    Follows scikit-learn's ``BaseMultilayerPerceptron._fit_stochastic``: the
    same shuffling draws, the same loss bookkeeping and the same stopping
    rules, so the same seed gives the same model.

    Parameters
    ----------
    state : object
        The estimator; its history is updated in place: ``n_iter_``, ``t_``,
        ``loss_``, ``loss_curve_``, ``history_``, ``best_loss_``,
        ``validation_scores_``, ``best_validation_score_``,
        ``_no_improvement_count`` and the schedule position
        ``_schedule_state``.
    network : Network
    params, stats : ndarray
        Flat parameters and batch-norm statistics, trained in place.
    data : KernelInput
    Y, sw : ndarray
        Targets ``(n_samples, n_outputs)`` and sample weights.
    optimizer : skdeep.optimizers.OptimizerState
        Update rule code, slots and step counter, updated in place.
    schedule : skdeep.schedules.Schedule
    validation_score : callable or None
        ``validation_score(params) -> float``, evaluated after every epoch.
    early_stopping : bool
        Stop on the validation score (else on the training loss) and restore
        the best weights.
    callbacks : list of skdeep.callbacks.Callback
    diagnostics : bool
        Record each hidden layer's activation mean and standard deviation,
        gradient norm and fraction of dead units in the history.
    first_trainable : int
        Layers below it are frozen.
    """
    n_samples = data.n_samples
    buffers = _Buffers(network, batch_size, data[4])
    order = np.arange(n_samples, dtype=np.int64)
    n_batches = -(-n_samples // batch_size)
    # Weights at the start of this epoch and of the previous one: when a loss
    # turns non-finite on an epoch's first batch, the previous start is the last
    # model known to give finite losses.
    snapshots = [params.copy(), params.copy()]
    best = (params.copy(), stats.copy()) if early_stopping else None
    position = state._schedule_state
    schedule._start(position, learning_rate_init, n_batches, max_iter)
    random_masks = bool(network.dropout.any()) or network.iopt[codes.IO_ACTIVATION] == codes.RRELU
    # One draw per fit, mixed with the epoch number: the masks do not depend on
    # how many draws shuffling took, so weighting a row by 2 equals repeating it.
    base_seed = random_state.randint(np.iinfo(np.int32).max) if random_masks else 0
    n_hidden = len(network.units) - 2
    diag = np.zeros((n_hidden + 1, max(5, int(network.units[1:-1].sum()))) if diagnostics else (0, 5))
    progress = Progress(verbose, max_iter)
    blas_limit = blas_threads(network, batch_size)
    for callback in callbacks:
        callback.on_train_begin(state)
    state.n_iter_ = 0
    try:
        for _ in range(max_iter):
            start = time.perf_counter()
            if shuffle:
                permutation = np.arange(n_samples)
                random_state.shuffle(permutation)
                order = order[permutation]
            position["n_seen"] = state.t_
            lrs, momenta = schedule._rates(position, learning_rate_init, n_batches, optimizer.momentum)
            snapshots.reverse()
            np.copyto(snapshots[0], params)
            seed = (base_seed + 1_000_003 * position["epoch"]) % 2**62
            if diagnostics:
                diag[:-1] = 0.0
                diag[-1] = -np.inf
            loss_sum, done, optimizer.step = kernels.train_epoch(
                *data, Y, sw, order, batch_size, lrs, momenta, params, stats, buffers.grad,
                optimizer.slots, *network._kernel_args(), alpha, l1, optimizer.code,
                optimizer.hyperparameters, optimizer.step, first_trainable, seed,
                buffers.bufs, buffers.ibufs, buffers.keys, buffers.dbuf1, buffers.dbuf2, diag,
            )
            if done < n_batches or not np.isfinite(params).all():
                np.copyto(params, snapshots[1] if done == 0 else snapshots[0])
                if not early_stopping:
                    raise Diverged(DIVERGED)
                # scikit-learn 1.9: a NaN validation score, and the best epoch's model.
                state.validation_scores_.append(np.nan)
                warnings.warn(
                    "Training diverged (non-finite loss) in epoch %d; the model keeps "
                    "the weights of its best validation epoch." % (position["epoch"] + 1),
                    ConvergenceWarning,
                )
                break
            state.n_iter_ += 1
            state.loss_ = loss_sum / n_samples
            state.t_ += n_samples
            state.loss_curve_.append(state.loss_)
            position["step"] += n_batches
            position["epoch"] += 1
            score = None if validation_score is None else validation_score(params)
            record = {
                "epoch": position["epoch"],
                "loss": state.loss_,
                "validation_score": score,
                "learning_rate": float(lrs[0]),
                "time": time.perf_counter() - start,
            }
            if diagnostics:
                record.update(_diagnostics(network, diag))
            state.history_.append(record)
            progress.update(record)
            if early_stopping:
                _track_validation(state, score, (params, stats), best, tol)
            else:
                _track_loss(state, tol)
                if score is not None:
                    state.validation_scores_.append(score)
            schedule._epoch_end(position, record)
            stop = [callback.on_epoch_end(state, record) for callback in callbacks]
            if state._no_improvement_count > n_iter_no_change:
                if early_stopping:
                    msg = (
                        "Validation score did not improve more than tol=%f for %d "
                        "consecutive epochs." % (tol, n_iter_no_change)
                    )
                else:
                    msg = (
                        "Training loss did not improve more than tol=%f for %d "
                        "consecutive epochs." % (tol, n_iter_no_change)
                    )
                if schedule._plateau(position, msg, verbose):
                    break
                state._no_improvement_count = 0
            if any(stop) or incremental:
                break
            if state.n_iter_ == max_iter:
                warnings.warn(
                    "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                    "optimization hasn't converged yet." % max_iter,
                    ConvergenceWarning,
                )
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.")
    finally:
        blas_limit.restore_original_limits()
        progress.close()
        if best is not None:
            np.copyto(params, best[0])
            np.copyto(stats, best[1])
        for callback in callbacks:
            callback.on_train_end(state)


def _diagnostics(network, diag):
    """History entries from the accumulated per-layer statistics of one epoch."""
    entries = {}
    relu_family = network.iopt[codes.IO_ACTIVATION] in codes.RELU_FAMILY
    start = 0
    for layer, width in enumerate(network.units[1:-1]):
        total, total_sq, count, grad_norms, n_batches = diag[layer, :5]
        mean = float(total / count)
        entries[f"activation_mean_{layer + 1}"] = mean
        entries[f"activation_std_{layer + 1}"] = float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
        entries[f"gradient_norm_{layer + 1}"] = float(grad_norms / n_batches) if n_batches else 0.0
        if relu_family:
            entries[f"dead_fraction_{layer + 1}"] = float(np.mean(diag[-1, start : start + width] <= 0.0))
        start += width
    return entries


def _track_validation(state, score, current, best, tol):
    """Record the validation score; copy the ``(params, stats)`` of a new best epoch into ``best``."""
    state.validation_scores_.append(score)
    if score < state.best_validation_score_ + tol:
        state._no_improvement_count += 1
    else:
        state._no_improvement_count = 0
    if score > state.best_validation_score_:
        state.best_validation_score_ = score
        for target, source in zip(best, current):
            np.copyto(target, source)


def _track_loss(state, tol):
    loss = state.loss_curve_[-1]
    if loss > state.best_loss_ - tol:
        state._no_improvement_count += 1
    else:
        state._no_improvement_count = 0
    if loss < state.best_loss_:
        state.best_loss_ = loss
