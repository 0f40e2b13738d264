"""The composition: forward pass, backward pass, a whole training epoch, predictions.

The entry points called from Python (:func:`train_epoch`, :func:`loss_grad`,
:func:`predict`, :func:`predict_mc`, with :func:`~skdeep.kernels.cpu.layout.layout`)
compose the kernels of the other modules. Hidden layer ``l`` computes
``z = a W + b``; ``a' = act(z)`` (batch norm before the activation replaces
the bias: ``a' = act(BN(a W))``; after it: ``a' = BN(act(z))``); dropout then
masks ``a'`` for the next layer. Backpropagation (Rumelhart, Hinton &
Williams, 1986) runs the chain rule back through the same steps. Inputs come
dense (``Xd``, C-contiguous) or as CSR arrays (``Xv``, ``Xi``, ``Xp``),
``sparse`` says which; rows are addressed through an index array, so
shuffling never copies the data. Matrix products go to BLAS through
``np.dot``; everything else is a loop of the other modules.

Each helper compiles once per dtype: integer arguments are passed as int64
values, never as literal constants (a literal ``0`` would type as
``Literal[int](0)`` and compile a second copy), and row indices are always a
writable int64 array.
"""

import numpy as np
from numba import njit

from skdeep.kernels import codes as C
from skdeep.kernels.cpu._jit import INNER, JIT
from skdeep.kernels.cpu.activations import _activate, _activation_backward, rrelu_slopes
from skdeep.kernels.cpu.batch_norm import _batch_norm, _batch_norm_backward
from skdeep.kernels.cpu.constraints import _clip_gradients, _max_norm, _penalty
from skdeep.kernels.cpu.dropout import _dropout, _row_keys
from skdeep.kernels.cpu.layout import _matrix, _rows, _segment, layout
from skdeep.kernels.cpu.linalg import (
    _add_row,
    _column_sums,
    _copy,
    _gather_rows,
    _multiply,
    _sparse_dot,
    _sparse_t_dot,
    _sum_squares,
)
from skdeep.kernels.cpu.optimizers import _advance, _update
from skdeep.kernels.cpu.outputs import _hidden_output, _output, _output_loss_delta

#: Rows per chunk in :func:`predict` and :func:`predict_mc`.
PREDICT_CHUNK = 1024

#: Rows per chunk in :func:`predict` and :func:`predict_mc`.
@njit(**INNER)
def _forward(
    Xd, Xv, Xi, Xp, sparse, rows, sw, params, stats, units, offsets, iopt, fopt, dropout,
    mode, seed, first_trainable, bufs, ibufs, keys, diag,
):
    """Forward pass of ``rows`` up to the output layer's pre-activation.

    ``bufs = (z, a, xhat, mask, slopes, istd, sums)`` and ``ibufs = (x, x_in,
    x_hat, x_mask)`` are work buffers (see :func:`layout`); unused ones may be
    empty. ``sw`` weighs the batch statistics of training-mode batch norm;
    ``seed`` and ``keys`` (one per row) drive dropout and RReLU. Batch norm in
    the frozen layers below ``first_trainable`` runs in inference mode. ``Xd`` holds the dense input rows (gathered when ``mode`` is
    training). The output layer's rows of ``z`` hold ``a W`` without the bias.
    With a non-empty ``diag`` (training), row ``l`` accumulates for hidden
    layer ``l`` ``[sum a, sum a^2, count, sum |grad W|, batches]`` (``a`` the
    activation's output) and the last row each hidden unit's maximum output.
    """
    zbuf, abuf, hbuf, mbuf, rbuf, istd, work = bufs
    Xb, xin, xhat, xmask = ibufs
    n = rows.shape[0]
    n_layers = units.shape[0] - 1
    act = iopt[C.IO_ACTIVATION]
    bn = iopt[C.IO_BATCH_NORM]
    momentum = fopt[C.FO_BN_MOMENTUM]
    bn_eps = fopt[C.FO_BN_EPSILON]
    training = mode == C.TRAINING
    dropping = mode != C.INFERENCE
    if (dropping and dropout.any()) or (training and act == C.RRELU):
        _row_keys(Xd, Xv, Xi, Xp, sparse, rows, seed, keys)

    if sparse:
        Ain = Xb[:0]
    else:
        if training:
            _gather_rows(Xd, rows, Xb[:n])
            Ain = Xb[:n]
        else:
            Ain = Xd[rows[0] : rows[0] + n]
        input_bn = iopt[C.IO_INPUT_BATCH_NORM] != 0
        if input_bn or (dropping and dropout[0] > 0.0):
            X_in = xin[:n]
            _copy(Ain, X_in)
            if input_bn:
                g = offsets[n_layers, C.L_G]
                s = offsets[n_layers, C.L_S]
                width = units[0]
                _batch_norm(
                    X_in, xhat[:n], _segment(params, g, width), _segment(params, g + width, width),
                    _segment(stats, s, width), _segment(stats, s + width, width),
                    _segment(istd, s, width), work, mode if first_trainable == 0 else C.INFERENCE,
                    momentum, bn_eps, sw, rows,
                )
            if dropping and dropout[0] > 0.0:
                _dropout(X_in, xmask[:n], dropout[0], iopt[C.IO_ALPHA_DROPOUT], keys, np.int64(0))
            Ain = X_in

    for layer in range(n_layers):
        W = _matrix(params, units, offsets, layer)
        Z = _rows(zbuf, units, offsets, layer, n)
        if layer == 0 and sparse:
            _sparse_dot(Xv, Xi, Xp, rows, W, Z)
        else:
            np.dot(Ain, W, Z)
        if layer == n_layers - 1:
            break
        width = units[layer + 1]
        A = _rows(abuf, units, offsets, layer, n)
        bn_mode = mode if layer >= first_trainable else C.INFERENCE
        g = offsets[layer, C.L_G]
        s = offsets[layer, C.L_S]
        if bn == C.BN_BEFORE:
            _batch_norm(
                Z, _rows(hbuf, units, offsets, layer, n), _segment(params, g, width),
                _segment(params, g + width, width), _segment(stats, s, width),
                _segment(stats, s + width, width), _segment(istd, s, width), work, bn_mode, momentum,
                bn_eps, sw, rows,
            )
        else:
            _add_row(Z, _segment(params, offsets[layer, C.L_B], width))
        slopes = Z[:0]
        if act == C.RRELU:
            slopes = _rows(rbuf, units, offsets, layer, n)
            rrelu_slopes(
                slopes, keys, 2 * n_layers + layer, fopt[C.FO_RRELU_LOWER], fopt[C.FO_RRELU_UPPER], training
            )
        p = offsets[layer, C.L_P]
        prelu = _segment(params, p, width) if p >= 0 else params[:0]
        _activate(Z, A, act, fopt[C.FO_ACT_ALPHA], slopes, prelu)
        if diag.shape[0] > 0:
            _accumulate_activations(A, diag, layer, offsets[layer, C.L_B] - offsets[0, C.L_B])
        if bn == C.BN_AFTER:
            _batch_norm(
                A, _rows(hbuf, units, offsets, layer, n), _segment(params, g, width),
                _segment(params, g + width, width), _segment(stats, s, width),
                _segment(stats, s + width, width), _segment(istd, s, width), work, bn_mode, momentum,
                bn_eps, sw, rows,
            )
        if dropping and dropout[layer + 1] > 0.0:
            _dropout(A, _rows(mbuf, units, offsets, layer, n), dropout[layer + 1], iopt[C.IO_ALPHA_DROPOUT], keys, layer + 1)
        Ain = A


@njit(**INNER)
def _accumulate_activations(A, diag, layer, unit_start):
    """Diagnostics of hidden layer ``layer``: ``sum a``, ``sum a^2``, count, and each unit's maximum."""
    n, k = A.shape
    s = 0.0
    s2 = 0.0
    peak = diag[-1]
    for r in range(n):
        for j in range(k):
            a = A[r, j]
            s += a
            s2 += a * a
            if a > peak[unit_start + j]:
                peak[unit_start + j] = a
    diag[layer, 0] += s
    diag[layer, 1] += s2
    diag[layer, 2] += n * k


@njit(**INNER)
def _loss_raw_grad(
    Xd, Xv, Xi, Xp, sparse, Y, sw, rows, params, stats, grad, units, offsets, iopt,
    fopt, dropout, first_trainable, seed, bufs, ibufs, keys, dbuf1, dbuf2, diag,
):
    """Training-mode forward and backward pass over ``rows``.

    Writes the unnormalized gradient (before penalties and before dividing by
    the weight sum) of layers ``first_trainable`` and above into ``grad`` and
    returns ``(weighted loss sum, weight sum)``.
    """
    zbuf, abuf, hbuf, mbuf, rbuf, istd, sums = bufs
    Xb, xin, xhat, xmask = ibufs
    n = rows.shape[0]
    n_layers = units.shape[0] - 1
    last = n_layers - 1
    act = iopt[C.IO_ACTIVATION]
    bn = iopt[C.IO_BATCH_NORM]
    _forward(
        Xd, Xv, Xi, Xp, sparse, rows, sw, params, stats, units, offsets, iopt, fopt, dropout,
        C.TRAINING, seed, first_trainable, bufs, ibufs, keys, diag,
    )
    delta = dbuf1[: n * units[last + 1]].reshape((n, units[last + 1]))
    total, sw_sum = _output_loss_delta(
        _rows(zbuf, units, offsets, last, n), _segment(params, offsets[last, C.L_B], units[last + 1]),
        Y, sw, rows, iopt[C.IO_OUTPUT], fopt[C.FO_LOG_EPS], delta,
    )
    input_bn = iopt[C.IO_INPUT_BATCH_NORM] != 0 and first_trainable == 0
    input_changed = iopt[C.IO_INPUT_BATCH_NORM] != 0 or dropout[0] > 0.0
    spare, used = dbuf2, dbuf1
    for layer in range(last, first_trainable - 1, -1):
        gW = _matrix(grad, units, offsets, layer)
        if layer > 0:
            np.dot(_rows(abuf, units, offsets, layer - 1, n).T, delta, gW)
        elif sparse:
            _sparse_t_dot(Xv, Xi, Xp, rows, delta, gW)
        else:
            np.dot((xin if input_changed else Xb)[:n].T, delta, gW)
        gb = _segment(grad, offsets[layer, C.L_B], units[layer + 1])
        if layer < last and bn == C.BN_BEFORE:
            gb[:] = 0.0
        else:
            _column_sums(delta, gb)
        if diag.shape[0] > 0 and layer < last:
            start = offsets[layer, C.L_W]
            diag[layer, 3] += np.sqrt(_sum_squares(grad[start : start + units[layer] * units[layer + 1]])) / sw_sum
            diag[layer, 4] += 1.0
        if layer == first_trainable and not (layer == 0 and input_bn):
            break
        width = units[layer]
        below = spare[: n * width].reshape((n, width))
        np.dot(delta, _matrix(params, units, offsets, layer).T, below)
        if layer == 0:
            if dropout[0] > 0.0:
                _multiply(below, xmask[:n])
            g = offsets[n_layers, C.L_G]
            _batch_norm_backward(
                below, xhat[:n], _segment(params, g, width), _segment(istd, offsets[n_layers, C.L_S], width),
                _segment(grad, g, width), _segment(grad, g + width, width), sums, sw, rows,
            )
            break
        hidden = layer - 1
        if dropout[layer] > 0.0:
            _multiply(below, _rows(mbuf, units, offsets, hidden, n))
        g = offsets[hidden, C.L_G]
        s = offsets[hidden, C.L_S]
        H = _rows(hbuf, units, offsets, hidden, n) if bn != C.BN_NONE else below[:0]
        if bn == C.BN_AFTER:
            _batch_norm_backward(
                below, H, _segment(params, g, width), _segment(istd, s, width),
                _segment(grad, g, width), _segment(grad, g + width, width), sums, sw, rows,
            )
        p = offsets[hidden, C.L_P]
        prelu = _segment(params, p, width) if p >= 0 else params[:0]
        prelu_grad = _segment(grad, p, width) if p >= 0 else grad[:0]
        prelu_grad[:] = 0.0
        slopes = _rows(rbuf, units, offsets, hidden, n) if act == C.RRELU else below[:0]
        _activation_backward(
            _rows(zbuf, units, offsets, hidden, n), below, act, fopt[C.FO_ACT_ALPHA], slopes, prelu, prelu_grad
        )
        if bn == C.BN_BEFORE:
            _batch_norm_backward(
                below, H, _segment(params, g, width), _segment(istd, s, width),
                _segment(grad, g, width), _segment(grad, g + width, width), sums, sw, rows,
            )
        spare, used = used, spare
        delta = below
    return total, sw_sum


@njit(**JIT)
def train_epoch(
    Xd, Xv, Xi, Xp, sparse, Y, sw, order, batch_size, lrs, momenta, params, stats,
    grad, slots, units, iopt, fopt, dropout, alpha, l1, opt, hp, step, first_trainable,
    seed, bufs, ibufs, keys, dbuf1, dbuf2, diag,
):
    """One pass of minibatch training over ``order``.

    Batch ``b`` covers ``order[b * batch_size:(b + 1) * batch_size]`` and uses
    learning rate ``lrs[b]`` and momentum (``beta_1`` for the Adam family)
    ``momenta[b]``. Its loss is the weighted mean loss plus
    ``(0.5 * alpha * sum(W^2) + l1 * sum(|W|)) / sum(w)`` (scikit-learn's L2
    scaling). Layers below ``first_trainable`` are frozen: the backward pass
    stops above them and their parameters are not updated. Dropout masks and
    RReLU slopes are drawn from ``seed`` and each sample's values (see
    :func:`skdeep.kernels.cpu.dropout._uniform`). Training stops before the update of the first batch whose
    loss is not finite.

    Returns
    -------
    loss_sum : float
        Sum over completed batches of batch loss times batch size.
    n_batches : int
        Number of completed batches.
    step : int
        Update counter after the epoch.
    """
    n_samples = order.shape[0]
    n_layers = units.shape[0] - 1
    offsets, n_params, _ = layout(units, batch_size, iopt)
    n_coef = offsets[0, C.L_B]
    w_first = offsets[first_trainable, C.L_W]
    b_first = offsets[first_trainable, C.L_B]
    x_first = offsets[first_trainable if first_trainable > 0 else n_layers, C.L_X]
    clipping = fopt[C.FO_CLIPVALUE] > 0.0 or fopt[C.FO_CLIPNORM] > 0.0 or fopt[C.FO_GLOBAL_CLIPNORM] > 0.0
    max_norm = fopt[C.FO_MAX_NORM]
    frozen_penalty = _penalty(params, w_first, alpha, l1)
    penalty = _penalty(params, n_coef, alpha, l1)
    loss_sum = 0.0
    n_batches = 0
    batch_rows = np.empty(batch_size, dtype=np.int64)  # writable, as in loss_grad and predict
    for start in range(0, n_samples, batch_size):
        stop = min(start + batch_size, n_samples)
        rows = batch_rows[: stop - start]
        for r in range(stop - start):
            rows[r] = order[start + r]
        total, sw_sum = _loss_raw_grad(
            Xd, Xv, Xi, Xp, sparse, Y, sw, rows, params, stats, grad, units, offsets,
            iopt, fopt, dropout, first_trainable, seed, bufs, ibufs, keys, dbuf1, dbuf2, diag,
        )
        loss = total / sw_sum + penalty / sw_sum
        if not np.isfinite(loss):
            break
        loss_sum += loss * (stop - start)
        step += 1
        lr = lrs[n_batches]
        mu = momenta[n_batches]
        _advance(opt, hp, mu, step)
        divisor = sw_sum
        if clipping:
            _clip_gradients(params, grad, offsets, units, n_params, w_first, b_first, x_first, alpha, l1, sw_sum, opt, fopt)
            divisor = -sw_sum
        sumsq, sumabs = _update(params, grad, slots, w_first, n_coef, alpha, l1, divisor, opt, lr, mu, hp, step)
        _update(params, grad, slots, b_first, offsets[n_layers, C.L_X], 0.0, 0.0, divisor, opt, lr, mu, hp, step)
        _update(params, grad, slots, x_first, n_params, 0.0, 0.0, divisor, opt, lr, mu, hp, step)
        if max_norm > 0.0:
            _max_norm(params, units, offsets, first_trainable, max_norm, bufs[6])
            penalty = _penalty(params, n_coef, alpha, l1)
        elif clipping:
            penalty = _penalty(params, n_coef, alpha, l1)
        else:
            penalty = frozen_penalty + 0.5 * alpha * sumsq + l1 * sumabs
        n_batches += 1
    return loss_sum, n_batches, step


@njit(**JIT)
def loss_grad(
    Xd, Xv, Xi, Xp, sparse, Y, sw, params, stats, grad, units, iopt, fopt, dropout,
    alpha, l1, seed, bufs, ibufs, keys, dbuf1, dbuf2,
):
    """Full-batch loss and gradient (for L-BFGS); the gradient goes to ``grad``."""
    n_samples = Y.shape[0]
    offsets, n_params, _ = layout(units, n_samples, iopt)
    n_coef = offsets[0, C.L_B]
    total, sw_sum = _loss_raw_grad(
        Xd, Xv, Xi, Xp, sparse, Y, sw, np.arange(n_samples), params, stats, grad, units,
        offsets, iopt, fopt, dropout, np.int64(0), seed, bufs, ibufs, keys, dbuf1, dbuf2, np.empty((0, 5)),
    )
    penalty = _penalty(params, n_coef, alpha, l1)
    no_slots = np.empty((0, 0), dtype=params.dtype)
    no_hp = np.zeros(C.N_HYPERPARAMETERS)
    zero = np.int64(0)
    _update(params, grad, no_slots, zero, n_coef, alpha, l1, sw_sum, C.NO_UPDATE, 0.0, 0.0, no_hp, zero)
    _update(params, grad, no_slots, n_coef, n_params, 0.0, 0.0, sw_sum, C.NO_UPDATE, 0.0, 0.0, no_hp, zero)
    return total / sw_sum + penalty / sw_sum


@njit(**INNER)
def _predict_buffers(units, capacity, n_stats, dtype_like):
    """Work buffers of :func:`~skdeep.kernels.cpu.network._forward` for chunks of ``capacity`` rows."""
    size = 0
    for layer in range(1, units.shape[0]):
        size += capacity * units[layer]
    width = 0
    for layer in range(units.shape[0]):
        width = max(width, units[layer])
    bufs = (
        np.empty(size, dtype=dtype_like.dtype), np.empty(size, dtype=dtype_like.dtype),
        np.empty(size, dtype=dtype_like.dtype), np.empty(size, dtype=dtype_like.dtype),
        np.empty(size, dtype=dtype_like.dtype), np.empty(max(n_stats, 1), dtype=dtype_like.dtype),
        np.empty(2 * width, dtype=dtype_like.dtype),
    )
    ibufs = (
        np.empty((0, units[0]), dtype=dtype_like.dtype), np.empty((capacity, units[0]), dtype=dtype_like.dtype),
        np.empty((capacity, units[0]), dtype=dtype_like.dtype), np.empty((capacity, units[0]), dtype=dtype_like.dtype),
    )
    return bufs, ibufs


@njit(**INNER)
def _all_finite(Xd, Xv, sparse):
    """Whether every stored value of the input is finite."""
    values = Xv if sparse else Xd.reshape(-1)
    for i in range(values.shape[0]):
        if not np.isfinite(values[i]):
            return False
    return True


@njit(**JIT)
def predict(Xd, Xv, Xi, Xp, sparse, params, stats, units, iopt, fopt, dropout):
    """Network output for every row, ``(n_samples, n_outputs)``, in inference mode.

    Rows go through in chunks of ``PREDICT_CHUNK`` so memory stays bounded.
    Returns an empty ``(0, 0)`` array when the input holds a non-finite value.
    """
    if not _all_finite(Xd, Xv, sparse):
        return np.empty((0, 0), dtype=params.dtype)
    n_samples = Xp.shape[0] - 1 if sparse else Xd.shape[0]
    capacity = max(1, min(n_samples, PREDICT_CHUNK))
    offsets, _, n_stats = layout(units, capacity, iopt)
    bufs, ibufs = _predict_buffers(units, capacity, n_stats, params)
    last = units.shape[0] - 2
    out = np.empty((n_samples, units[last + 1]), dtype=params.dtype)
    no_diag = np.empty((0, 5))
    no_weights = Xv[:0]  # read-only, as the sample weights in training
    no_keys = np.empty(0, dtype=np.uint64)
    for start in range(0, n_samples, capacity):
        stop = min(start + capacity, n_samples)
        rows = np.arange(start, stop)
        _forward(
            Xd, Xv, Xi, Xp, sparse, rows, no_weights, params, stats, units, offsets, iopt,
            fopt, dropout, C.INFERENCE, np.int64(0), np.int64(0), bufs, ibufs, no_keys, no_diag,
        )
        Z = _rows(bufs[0], units, offsets, last, stop - start)
        b = _segment(params, offsets[last, C.L_B], units[last + 1])
        if iopt[C.IO_OUTPUT] == C.HIDDEN_ACTIVATION:
            _hidden_output(Z, b, iopt, fopt)
        else:
            _output(Z, b, iopt[C.IO_OUTPUT])
        _copy(Z, out[start:stop])
    return out


@njit(**JIT)
def predict_mc(Xd, Xv, Xi, Xp, sparse, params, stats, units, iopt, fopt, dropout, n_passes, seed):
    """Mean and standard deviation of the output over ``n_passes`` MC-dropout passes.

    Dropout stays on, batch norm uses its moving statistics (Gal & Ghahramani,
    2016). Returns ``(mean, std)``, each ``(n_samples, n_outputs)``; empty
    arrays when the input holds a non-finite value.
    """
    if not _all_finite(Xd, Xv, sparse):
        return np.empty((0, 0), dtype=params.dtype), np.empty((0, 0), dtype=params.dtype)
    n_samples = Xp.shape[0] - 1 if sparse else Xd.shape[0]
    capacity = max(1, min(n_samples, PREDICT_CHUNK))
    offsets, _, n_stats = layout(units, capacity, iopt)
    bufs, ibufs = _predict_buffers(units, capacity, n_stats, params)
    last = units.shape[0] - 2
    k = units[last + 1]
    total = np.zeros((n_samples, k))
    total_sq = np.zeros((n_samples, k))
    no_diag = np.empty((0, 5))
    no_weights = Xv[:0]
    keys = np.empty(capacity, dtype=np.uint64)
    for pass_ in range(n_passes):
        for start in range(0, n_samples, capacity):
            stop = min(start + capacity, n_samples)
            rows = np.arange(start, stop)
            _forward(
                Xd, Xv, Xi, Xp, sparse, rows, no_weights, params, stats, units, offsets, iopt,
                fopt, dropout, C.MC_DROPOUT, seed + 7919 * pass_, np.int64(0), bufs, ibufs, keys, no_diag,
            )
            Z = _rows(bufs[0], units, offsets, last, stop - start)
            _output(Z, _segment(params, offsets[last, C.L_B], k), iopt[C.IO_OUTPUT])
            for r in range(stop - start):
                for j in range(k):
                    total[start + r, j] += Z[r, j]
                    total_sq[start + r, j] += Z[r, j] * Z[r, j]
    mean = total / n_passes
    var = np.maximum(total_sq / n_passes - mean * mean, 0.0)
    return mean.astype(params.dtype), np.sqrt(var).astype(params.dtype)
