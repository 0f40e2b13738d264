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

from skdeep._progress import Progress
from skdeep.kernels import cpu as kernels

DIVERGED = (
    "Solver produced non-finite parameter weights. The input data may contain "
    "large values and need to be preprocessed."
)


class Network:
    """Layer widths and activation codes of a multilayer perceptron.

    Parameters
    ----------
    units : sequence of int
        ``[n_features, hidden_1, ..., n_outputs]``.
    activation : int
        Hidden activation code (``skdeep.kernels.codes``).
    output : int
        Output activation and loss code.
    dtype : numpy dtype
        Floating dtype of parameters and data.
    """

    def __init__(self, units, activation, output, dtype):
        self.units = np.asarray(units, dtype=np.int64)
        self.activation = int(activation)
        self.output = int(output)
        self.dtype = np.dtype(dtype)

    @property
    def n_coefs(self):
        return int(np.sum(self.units[:-1] * self.units[1:]))

    @property
    def n_params(self):
        return self.n_coefs + int(np.sum(self.units[1:]))

    def pack(self, coefs, intercepts):
        """One new flat vector holding all weights, then all biases."""
        return np.concatenate(
            [np.ravel(a) for a in (*coefs, *intercepts)]
        ).astype(self.dtype, copy=False)

    def unpack(self, params):
        """Views of ``params`` as ``(coefs, intercepts)`` lists."""
        coefs, intercepts = [], []
        w_start, b_start = 0, self.n_coefs
        for fan_in, fan_out in zip(self.units[:-1], self.units[1:]):
            coefs.append(params[w_start : w_start + fan_in * fan_out].reshape(fan_in, fan_out))
            intercepts.append(params[b_start : b_start + fan_out])
            w_start += fan_in * fan_out
            b_start += fan_out
        return coefs, intercepts

    def predict(self, params, X):
        """Output layer for ``X`` (dense or sparse), or ``None`` if ``X`` is not finite."""
        data = KernelInput(X, self.dtype)
        out = kernels.predict(*data, params, self.units, self.activation, self.output)
        return out if out.shape[0] == data.n_samples else None


_NO_INDEX = np.empty(0, dtype=np.int64)
_NO_VALUES = {np.dtype(t): np.empty(0, dtype=t) for t in (np.float32, np.float64)}


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
        dtype, units = network.dtype, network.units
        self.grad = np.empty(network.n_params, dtype=dtype)
        self.xbuf = np.empty((0 if sparse else capacity, units[0]), dtype=dtype)
        self.abuf = np.empty(capacity * int(units[1:].sum()), dtype=dtype)
        self.dbuf1 = np.empty(capacity * int(units[1:].max()), dtype=dtype)
        self.dbuf2 = np.empty_like(self.dbuf1)


def _eps(dtype):
    return float(np.finfo(dtype).eps)


def fit_lbfgs(network, params, data, Y, sw, *, alpha, l1, max_iter, max_fun, tol, verbose):
    """Minimize the full-batch loss with SciPy's L-BFGS-B, as scikit-learn does.

    Returns ``(loss, n_iter)``; ``params`` holds the solution.
    """
    buffers = _Buffers(network, data.n_samples, data[4])

    def loss_and_grad(x):
        np.copyto(params, x, casting="unsafe")
        loss = kernels.loss_grad(
            *data, Y, sw, params, buffers.grad, network.units, network.activation,
            network.output, _eps(network.dtype), alpha, l1, buffers.xbuf, buffers.abuf,
            buffers.dbuf1, buffers.dbuf2,
        )
        return loss, buffers.grad.astype(np.float64)

    def report(intermediate_result):
        report.n_iter += 1
        print("Iteration %d, loss = %.8f" % (report.n_iter, intermediate_result.fun))

    report.n_iter = 0
    result = scipy.optimize.minimize(
        loss_and_grad,
        params.astype(np.float64),
        method="L-BFGS-B",
        jac=True,
        callback=report if verbose else None,
        options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol},
    )
    np.copyto(params, result.x, casting="unsafe")
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
    state, network, params, data, Y, sw, *, optimizer, schedule, learning_rate_init,
    alpha, l1, batch_size, max_iter, shuffle, random_state, tol, n_iter_no_change,
    incremental, validation_score, early_stopping, callbacks, verbose,
    first_trainable=0,
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
    params : ndarray
        Flat parameters, trained in place.
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
    best_params = params.copy() if early_stopping else None
    position = state._schedule_state
    schedule._start(position, learning_rate_init, n_batches, max_iter)
    eps = _eps(network.dtype)
    progress = Progress(verbose, max_iter)
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
            loss_sum, done, optimizer.step = kernels.train_epoch(
                *data, Y, sw, order, batch_size, lrs, momenta, params, buffers.grad,
                optimizer.slots, network.units, network.activation, network.output,
                eps, alpha, l1, optimizer.code, optimizer.hyperparameters,
                optimizer.step, first_trainable, buffers.xbuf, buffers.abuf,
                buffers.dbuf1, buffers.dbuf2,
            )
            if done < n_batches or not np.isfinite(params).all():
                np.copyto(params, snapshots[1] if done == 0 else snapshots[0])
                raise ValueError(DIVERGED)
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
            state.history_.append(record)
            progress.update(record)
            if early_stopping:
                _track_validation(state, score, params, best_params, tol)
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
        progress.close()
    if best_params is not None:
        np.copyto(params, best_params)
    for callback in callbacks:
        callback.on_train_end(state)


def _track_validation(state, score, params, best_params, tol):
    state.validation_scores_.append(score)
    if score < state.best_validation_score_ + tol:
        state._no_improvement_count += 1
    else:
        state._no_improvement_count = 0
    if score > state.best_validation_score_:
        state.best_validation_score_ = score
        np.copyto(best_params, params)


def _track_loss(state, tol):
    loss = state.loss_curve_[-1]
    if loss > state.best_loss_ - tol:
        state._no_improvement_count += 1
    else:
        state._no_improvement_count = 0
    if loss < state.best_loss_:
        state.best_loss_ = loss
