"""The training engine: training loops and their state.

The engine sits between the estimators (API and validation, no math) and a
backend (:mod:`skdeep._backend`: arrays in, arrays out). It translates the
estimators' options into the kernels' codes (:func:`network`), runs the epoch
loop (shuffling, learning rate, early stopping, history) and L-BFGS, and
returns its results — the trained vectors, a :class:`History`, counters — for
the estimator to assign. Python runs once per epoch; the backend runs the
minibatches.
"""

import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import ThreadpoolController

from skdeep._backend import (  # noqa: F401 (PARAMETER_PARTS, STATISTICS_PARTS: re-exported)
    PARAMETER_PARTS,
    STATISTICS_PARTS,
    Data,
    Epoch,
    Network,
    Optimizer,
    Parameters,
    Targets,
)
from skdeep._progress import Progress
from skdeep.activations import OUTPUT
from skdeep.kernels import codes

DIVERGED = (
    "Solver produced non-finite parameter weights. The input data may contain "
    "large values and need to be preprocessed."
)


class Diverged(ValueError):
    """Training stopped on a non-finite loss; the model keeps its last finite weights."""


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


#: Output activations by name, as kernel codes (each fused with its canonical
#: loss); 'hidden' applies the hidden activation (an autoencoder's codes).
OUTPUTS = {**OUTPUT, "hidden": codes.HIDDEN_ACTIVATION}
_BATCH_NORM = {None: codes.BN_NONE, "before": codes.BN_BEFORE, "after": codes.BN_AFTER}


def architecture(
    activation, output, *, batch_norm=None, batch_norm_input=False, batch_norm_momentum=0.99,
    batch_norm_epsilon=1e-3, dropout=(0.0,), alpha_dropout=False, max_norm=None,
    clipvalue=None, clipnorm=None, global_clipnorm=None,
):
    """The options of a network as plain values, what an estimator stores.

    Parameters
    ----------
    activation : tuple
        ``(code, alpha, rrelu_lower, rrelu_upper)`` of the hidden activation
        (``Activation._options()``).
    output : str
        Output activation, a key of :data:`OUTPUTS`.
    dropout : sequence of float
        Dropout rate on the input of each weight layer (the input's first).
    """
    return {
        "activation": tuple(float(v) if i else int(v) for i, v in enumerate(activation)),
        "output": output,
        "batch_norm": batch_norm,
        "batch_norm_input": bool(batch_norm_input),
        "batch_norm_momentum": float(batch_norm_momentum),
        "batch_norm_epsilon": float(batch_norm_epsilon),
        "dropout": tuple(float(rate) for rate in dropout),
        "alpha_dropout": bool(alpha_dropout),
        "max_norm": max_norm,
        "clipvalue": clipvalue,
        "clipnorm": clipnorm,
        "global_clipnorm": global_clipnorm,
    }


def network(units, dtype, options, backend="cpu"):
    """The :class:`~skdeep._backend.Network` of ``units`` and :func:`architecture` ``options``.

    The one place where the estimators' options become kernel codes and
    option vectors.
    """
    act, act_alpha, lower, upper = options["activation"]
    iopt = np.zeros(codes.N_IOPTIONS, dtype=np.int64)
    iopt[codes.IO_ACTIVATION] = act
    iopt[codes.IO_OUTPUT] = OUTPUTS[options["output"]]
    iopt[codes.IO_BATCH_NORM] = _BATCH_NORM[options["batch_norm"]]
    iopt[codes.IO_INPUT_BATCH_NORM] = options["batch_norm_input"]
    iopt[codes.IO_ALPHA_DROPOUT] = options["alpha_dropout"]
    fopt = np.zeros(codes.N_FOPTIONS)
    fopt[codes.FO_ACT_ALPHA] = act_alpha
    fopt[codes.FO_RRELU_LOWER] = lower
    fopt[codes.FO_RRELU_UPPER] = upper
    fopt[codes.FO_BN_MOMENTUM] = options["batch_norm_momentum"]
    fopt[codes.FO_BN_EPSILON] = options["batch_norm_epsilon"]
    fopt[codes.FO_MAX_NORM] = options["max_norm"] or 0.0
    fopt[codes.FO_CLIPVALUE] = options["clipvalue"] or 0.0
    fopt[codes.FO_CLIPNORM] = options["clipnorm"] or 0.0
    fopt[codes.FO_GLOBAL_CLIPNORM] = options["global_clipnorm"] or 0.0
    return Network(units, dtype, iopt, fopt, options["dropout"], backend)


def is_random(options):
    """Whether a network with these options trains with random masks (dropout, RReLU)."""
    return any(options["dropout"]) or options["activation"][0] == codes.RRELU


@dataclass
class History:
    """What a stochastic fit carries between epochs and calls.

    The engine updates it; the estimator mirrors it in its fitted attributes
    (``n_iter_``, ``t_``, ``loss_``, ``loss_curve_``, ``history_``,
    ``best_loss_``, ``validation_scores_``, ``best_validation_score_``) and
    keeps ``no_improvement_count`` and the schedule ``position`` for the
    next call.
    """

    n_iter: int
    t: int
    loss: object
    loss_curve: list
    history: list
    best_loss: object
    validation_scores: object
    best_validation_score: object
    no_improvement_count: int
    position: dict


def fit_lbfgs(
    network, parameters, data, targets, *, alpha, l1, max_iter, max_fun, tol, verbose,
    first_trainable=0,
):
    """Minimize the full-batch loss with SciPy's L-BFGS-B, as scikit-learn does.

    Layers below ``first_trainable`` are frozen by bounds (lower = upper = the
    current value), the parameters ``train_epoch`` leaves unchanged.
    ``parameters`` (host arrays) receive the solution.

    Returns
    -------
    loss : float
    n_iter : int
    """
    backend = network.backend
    workspace = backend.workspace(network, data.n_samples, data.sparse)
    device = _to_device(backend, data, targets, parameters)
    data, targets, trained = device

    def loss_and_grad(x):
        np.copyto(parameters.params, x, casting="unsafe")
        backend.copy(parameters.params, trained.params)
        loss, grad = backend.loss_grad(network, data, targets, trained, workspace, alpha, l1)
        return loss, grad.astype(np.float64)

    def report(intermediate_result):
        report.n_iter += 1
        print("Iteration %d, loss = %.8f" % (report.n_iter, intermediate_result.fun))

    report.n_iter = 0
    x0 = parameters.params.astype(np.float64)
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
    np.copyto(parameters.params, result.x, casting="unsafe")
    if not np.isfinite(parameters.params).all():
        raise ValueError(DIVERGED)
    backend.copy(parameters.params, trained.params)
    if network.n_stats:
        # Batch-norm statistics of the solution: one training pass, momentum 0.
        backend.loss_grad(
            network.with_options(FO_BN_MOMENTUM=0.0), data, targets, trained, workspace, alpha, l1
        )
        backend.copy(trained.stats, parameters.stats)
        if not np.isfinite(parameters.stats).all():
            raise ValueError(DIVERGED)
    n_iter = min(result.nit, max_iter)
    if result.status != 0:
        warnings.warn(
            f"lbfgs failed to converge after {n_iter} iteration(s) "
            f"(status={result.status}): {result.message}. Increase max_iter or "
            "max_fun, or scale the data.",
            ConvergenceWarning,
        )
    return float(result.fun), n_iter


def _to_device(backend, data, targets, parameters):
    """``(data, targets, parameters)`` as device structures of ``backend``."""
    return (
        Data(*(backend.to_device(a) if isinstance(a, np.ndarray) else a for a in data)),
        Targets(*map(backend.to_device, targets)),
        Parameters(*map(backend.to_device, parameters)),
    )


def fit_stochastic(
    network, parameters, data, targets, history, *, optimizer, schedule,
    learning_rate_init, alpha, l1, batch_size, max_iter, shuffle, random_state, tol,
    n_iter_no_change, incremental, validation, early_stopping, callbacks,
    verbose, model=None, publish=None, diagnostics=False, first_trainable=0,
):
    """Run minibatch epochs until convergence, ``max_iter`` or a stop.

    Follows scikit-learn's ``BaseMultilayerPerceptron._fit_stochastic``: the
    same shuffling draws, the same loss bookkeeping and the same stopping
    rules, so the same seed gives the same model.

    Parameters
    ----------
    network : Network
    parameters : Parameters
        Host vectors (the fitted attributes' views), trained in place: they
        hold the current weights at every epoch end.
    data : Data
    targets : Targets
    history : History
        Updated in place and returned.
    optimizer : skdeep.optimizers.OptimizerState
        Update rule code, slots and step counter, updated in place.
    schedule : skdeep.schedules.Schedule
    validation : callable or None
        ``validation(params) -> (score, loss)`` on the validation data
        (:class:`skdeep._validation.Validation`), evaluated after every epoch.
    early_stopping : bool
        Stop on the validation score (else on the training loss) and restore
        the best weights.
    callbacks : list of skdeep.callbacks.Callback
        Called with ``model``, after ``publish(history)`` has let it show the
        history so far.
    diagnostics : bool
        Record each hidden layer's activation mean and standard deviation,
        gradient norm and fraction of dead units in the history.
    first_trainable : int
        Layers below it are frozen.

    Returns
    -------
    history : History
    """
    backend = network.backend
    publish = publish or (lambda history: None)
    n_samples = data.n_samples
    workspace = backend.workspace(network, batch_size, data.sparse)
    host_data = data
    data, targets, trained = _to_device(backend, data, targets, parameters)
    slots = Optimizer(optimizer.code, optimizer.hyperparameters, backend.to_device(optimizer.slots))
    params, stats = parameters
    order = np.arange(n_samples, dtype=np.int64)
    n_batches = -(-n_samples // batch_size)
    # Weights and batch-norm statistics at the start of this epoch and of the
    # previous one: when a loss turns non-finite on an epoch's first batch, the
    # previous start is the last model known to give finite losses.
    snapshots = [(params.copy(), stats.copy()), (params.copy(), stats.copy())]
    best = (params.copy(), stats.copy()) if early_stopping else None
    position = history.position
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
        callback.on_train_begin(model)
    history.n_iter = 0
    try:
        for _ in range(max_iter):
            start = time.perf_counter()
            if shuffle:
                permutation = np.arange(n_samples)
                random_state.shuffle(permutation)
                order = order[permutation]
            position["n_seen"] = history.t
            lrs, momenta = schedule._rates(position, learning_rate_init, n_batches, optimizer.momentum)
            snapshots.reverse()
            np.copyto(snapshots[0][0], params)
            np.copyto(snapshots[0][1], stats)
            seed = (base_seed + 1_000_003 * position["epoch"]) % 2**62
            if diagnostics:
                diag[:-1] = 0.0
                diag[-1] = -np.inf
            epoch = Epoch(
                order, batch_size, np.asarray(lrs, dtype=np.float64),
                np.asarray(momenta, dtype=np.float64), optimizer.step, seed, alpha, l1,
                first_trainable, diag,
            )
            loss_sum, done, optimizer.step = backend.train_epoch(
                network, data, targets, trained, slots, workspace, epoch
            )
            backend.copy(trained.params, params)
            backend.copy(trained.stats, stats)
            # Each batch's loss checked the update before it; the outputs of the epoch's last
            # batch check its last update, before the history, validation or a callback sees it.
            last_batch = order[(n_batches - 1) * batch_size:]
            if (
                done < n_batches
                or not (np.isfinite(params).all() and np.isfinite(stats).all())
                or not _finite_outputs(network, parameters, host_data, last_batch)
            ):
                kept_params, kept_stats = snapshots[1] if done == 0 else snapshots[0]
                np.copyto(params, kept_params)
                np.copyto(stats, kept_stats)
                backend.copy(params, trained.params)
                backend.copy(stats, trained.stats)
                if not early_stopping:
                    raise Diverged(DIVERGED)
                # scikit-learn 1.9: a NaN validation score, and the best epoch's model.
                history.validation_scores.append(np.nan)
                warnings.warn(
                    "Training diverged (non-finite loss) in epoch %d; the model keeps "
                    "the weights of its best validation epoch." % (position["epoch"] + 1),
                    ConvergenceWarning,
                )
                break
            history.n_iter += 1
            history.loss = loss_sum / n_samples
            history.t += n_samples
            history.loss_curve.append(history.loss)
            position["step"] += n_batches
            position["epoch"] += 1
            score, validation_loss = (None, None) if validation is None else validation(params)
            record = {
                "epoch": position["epoch"],
                "loss": history.loss,
                "validation_loss": validation_loss,
                "validation_score": score,
                "learning_rate": mean_rate(lrs),
                "time": time.perf_counter() - start,
            }
            if diagnostics:
                record.update(_diagnostics(network, diag))
            history.history.append(record)
            progress.update(record)
            if early_stopping:
                _track_validation(history, score, (params, stats), best, tol)
            else:
                _track_loss(history, tol)
                if score is not None:
                    history.validation_scores.append(score)
            schedule._epoch_end(position, record)
            publish(history)
            stop = [callback.on_epoch_end(model, record) for callback in callbacks]
            backend.copy(params, trained.params)  # a callback may have changed the weights
            if history.no_improvement_count > n_iter_no_change:
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
                history.no_improvement_count = 0
            if any(stop) or incremental:
                break
            if history.n_iter == max_iter:
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
        backend.copy(slots.slots, optimizer.slots)
        if best is not None:
            np.copyto(params, best[0])
            np.copyto(stats, best[1])
        publish(history)
        for callback in callbacks:
            callback.on_train_end(model)
    return history


def _finite_outputs(network, parameters, data, rows):
    """Whether the model's outputs (inference mode) for ``rows`` of the host ``data`` are all finite."""
    return bool(np.isfinite(network.backend.predict(network, parameters, data.take(rows))).all())


def mean_rate(rates):
    """The mean learning rate of an epoch's updates, exactly the rate when it is constant.

    Written as ``r_0 + mean(r - r_0)``: a constant schedule's mean is then its
    rate bit for bit (a plain mean of equal floats can round off by one unit).
    """
    rates = np.asarray(rates, dtype=np.float64)
    return float(rates[0] + np.mean(rates - rates[0]))


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


def _track_validation(history, score, current, best, tol):
    """Record the validation score; copy the ``(params, stats)`` of a new best epoch into ``best``."""
    history.validation_scores.append(score)
    if score < history.best_validation_score + tol:
        history.no_improvement_count += 1
    else:
        history.no_improvement_count = 0
    if score > history.best_validation_score:
        history.best_validation_score = score
        for target, source in zip(best, current):
            np.copyto(target, source)


def _track_loss(history, tol):
    loss = history.loss_curve[-1]
    if loss > history.best_loss - tol:
        history.no_improvement_count += 1
    else:
        history.no_improvement_count = 0
    if loss < history.best_loss:
        history.best_loss = loss
