"""CPU kernels compiled with Numba: arrays in, arrays out.

A network with widths ``units = [n_features, h_1, ..., n_outputs]`` keeps all
its trainable parameters in one flat vector: every weight matrix (row-major,
``(fan_in, fan_out)``), then every bias — scikit-learn's L-BFGS packing — then
each layer's extra parameters (batch-norm gamma and beta of the inputs, then
per hidden layer the PReLU slopes and batch-norm gamma and beta). Batch-norm
moving statistics live in a second vector. :func:`layout` gives every offset.

Inputs come dense (``Xd``, C-contiguous) or as CSR arrays (``Xv``, ``Xi``,
``Xp``), ``sparse`` says which; rows are addressed through an index array, so
shuffling never copies the data. Matrix products go to BLAS through
``np.dot``; everything else is a fused loop. Activations, losses, optimizers
and options arrive as integer codes and small option vectors
(:mod:`skdeep.kernels.codes`), so each kernel compiles once per dtype.

Hidden layer ``l`` computes ``z = a W + b``; ``a' = act(z)`` (batch norm
before the activation replaces the bias: ``a' = act(BN(a W))``; after it:
``a' = BN(act(z))``); dropout then masks ``a'`` for the next layer.

References
----------
Rumelhart, Hinton & Williams (1986), backpropagation. Ioffe & Szegedy (2015),
batch normalization, Algorithm 1 and its backward pass. Srivastava et al.
(2014), dropout (inverted scaling). Klambauer et al. (2017), SELU and alpha
dropout. Maas et al. (2013) leaky ReLU; Xu et al. (2015) RReLU; He et al.
(2015) PReLU; Clevert et al. (2016) ELU; Hendrycks & Gimpel (2016) GELU;
Ramachandran et al. (2017) swish. Pascanu et al. (2013) gradient clipping;
Srivastava et al. (2014) max-norm. Optimizers: see :func:`_update`.
"""

import math

import numpy as np
from numba import njit

from skdeep.kernels import codes as C

_JIT = dict(cache=True, nogil=True, error_model="numpy")
# Helpers called only from compiled code need no Python wrapper (faster compiles).
_INNER = dict(_JIT, no_cpython_wrapper=True, no_cfunc_wrapper=True)
# Reductions may reassociate (partial sums per SIMD lane), nothing more.
_REDUCTION = {"reassoc", "nsz", "contract"}


# -- layout -----------------------------------------------------------------


@njit(**_JIT)
def layout(units, capacity, iopt):
    """Offsets of every layer, and the sizes of the parameter and statistics vectors.

    Returns ``(offsets, n_params, n_stats)``; ``offsets`` has one row per weight
    layer and a last row for the input, with the ``codes.L_*`` columns.
    Activation buffers give layer ``l`` ``capacity * units[l + 1]`` values.
    """
    n_layers = units.shape[0] - 1
    act = iopt[C.IO_ACTIVATION]
    bn = iopt[C.IO_BATCH_NORM]
    offsets = np.full((n_layers + 1, C.N_LAYOUT), -1, dtype=np.int64)
    start = 0
    for layer in range(n_layers):
        offsets[layer, C.L_W] = start
        start += units[layer] * units[layer + 1]
    a_start = 0
    for layer in range(n_layers):
        offsets[layer, C.L_B] = start
        offsets[layer, C.L_A] = a_start
        start += units[layer + 1]
        a_start += capacity * units[layer + 1]
    s_start = 0
    offsets[n_layers, C.L_X] = start
    if iopt[C.IO_INPUT_BATCH_NORM]:
        offsets[n_layers, C.L_G] = start
        offsets[n_layers, C.L_S] = s_start
        start += 2 * units[0]
        s_start += 2 * units[0]
    for layer in range(n_layers):
        offsets[layer, C.L_X] = start
        if layer == n_layers - 1:
            continue
        width = units[layer + 1]
        if act == C.PRELU:
            offsets[layer, C.L_P] = start
            start += width
        if bn != C.BN_NONE:
            offsets[layer, C.L_G] = start
            offsets[layer, C.L_S] = s_start
            start += 2 * width
            s_start += 2 * width
    return offsets, start, s_start


@njit(**_INNER)
def _matrix(vector, units, offsets, layer):
    start = offsets[layer, C.L_W]
    return vector[start : start + units[layer] * units[layer + 1]].reshape((units[layer], units[layer + 1]))


@njit(**_INNER)
def _segment(vector, start, width):
    return vector[start : start + width]


@njit(**_INNER)
def _rows(buffer, units, offsets, layer, n):
    """Layer ``layer``'s ``(n, units[layer + 1])`` rows of an activation-shaped buffer."""
    start = offsets[layer, C.L_A]
    return buffer[start : start + n * units[layer + 1]].reshape((n, units[layer + 1]))


# -- activations --------------------------------------------------------------
#
# One loop per activation, chosen before the loop; constants in the dtype of
# ``Z`` so float32 layers compute in float32.


@njit(**_INNER)
def _activate(Z, A, act, alpha, slopes, prelu):
    """``A = act(Z)``. ``slopes`` holds RReLU's slopes, ``prelu`` PReLU's per unit.

    An unknown ``act`` raises ``ValueError``.
    """
    n, k = Z.shape
    dt = Z.dtype.type
    zero, one, half = dt(0.0), dt(1.0), dt(0.5)
    if act == C.RELU:
        for r in range(n):
            for j in range(k):
                A[r, j] = max(Z[r, j], zero)
    elif act == C.TANH:
        for r in range(n):
            for j in range(k):
                A[r, j] = np.tanh(Z[r, j])
    elif act == C.LOGISTIC:
        for r in range(n):
            for j in range(k):
                A[r, j] = one / (one + np.exp(-Z[r, j]))
    elif act == C.LEAKY_RELU:
        a = dt(alpha)
        for r in range(n):
            for j in range(k):
                z = Z[r, j]
                A[r, j] = z if z >= zero else a * z
    elif act == C.RRELU:
        for r in range(n):
            for j in range(k):
                z = Z[r, j]
                A[r, j] = z if z >= zero else slopes[r, j] * z
    elif act == C.PRELU:
        for r in range(n):
            for j in range(k):
                z = Z[r, j]
                A[r, j] = z if z >= zero else prelu[j] * z
    elif act == C.ELU or act == C.SELU:
        scale = dt(C.SELU_LAMBDA) if act == C.SELU else one
        a = dt(C.SELU_ALPHA) if act == C.SELU else dt(alpha)
        for r in range(n):
            for j in range(k):
                z = Z[r, j]
                A[r, j] = scale * (z if z > zero else a * (np.exp(z) - one))
    elif act == C.GELU:
        inv_sqrt2 = dt(1.0 / math.sqrt(2.0))
        for r in range(n):
            for j in range(k):
                z = Z[r, j]
                A[r, j] = half * z * (one + math.erf(z * inv_sqrt2))
    elif act == C.SWISH:
        for r in range(n):
            for j in range(k):
                z = Z[r, j]
                A[r, j] = z / (one + np.exp(-z))
    elif act == C.IDENTITY:
        for r in range(n):
            for j in range(k):
                A[r, j] = Z[r, j]
    else:
        raise ValueError("unknown activation code")


@njit(**_INNER)
def _activation_backward(Z, D, act, alpha, slopes, prelu, prelu_grad):
    """``D <- D * act'(Z)`` in place; adds PReLU's slope gradient to ``prelu_grad``."""
    n, k = Z.shape
    dt = Z.dtype.type
    zero, one, half = dt(0.0), dt(1.0), dt(0.5)
    if act == C.RELU:
        for r in range(n):
            for j in range(k):
                D[r, j] = zero if Z[r, j] <= zero else D[r, j]
    elif act == C.TANH:
        for r in range(n):
            for j in range(k):
                a = np.tanh(Z[r, j])
                D[r, j] *= one - a * a
    elif act == C.LOGISTIC:
        for r in range(n):
            for j in range(k):
                a = one / (one + np.exp(-Z[r, j]))
                D[r, j] *= a * (one - a)
    elif act == C.LEAKY_RELU:
        a = dt(alpha)
        for r in range(n):
            for j in range(k):
                D[r, j] *= one if Z[r, j] >= zero else a
    elif act == C.RRELU:
        for r in range(n):
            for j in range(k):
                D[r, j] *= one if Z[r, j] >= zero else slopes[r, j]
    elif act == C.PRELU:
        for r in range(n):
            for j in range(k):
                z = Z[r, j]
                negative = z < zero
                prelu_grad[j] += D[r, j] * z if negative else zero
                D[r, j] *= prelu[j] if negative else one
    elif act == C.ELU or act == C.SELU:
        scale = dt(C.SELU_LAMBDA) if act == C.SELU else one
        a = dt(C.SELU_ALPHA) if act == C.SELU else dt(alpha)
        for r in range(n):
            for j in range(k):
                z = Z[r, j]
                D[r, j] *= scale if z > zero else scale * a * np.exp(z)
    elif act == C.GELU:
        c = dt(1.0 / math.sqrt(2.0 * math.pi))
        inv_sqrt2 = dt(1.0 / math.sqrt(2.0))
        for r in range(n):
            for j in range(k):
                z = Z[r, j]
                D[r, j] *= half * (one + math.erf(z * inv_sqrt2)) + z * c * np.exp(-half * z * z)
    elif act == C.SWISH:
        for r in range(n):
            for j in range(k):
                z = Z[r, j]
                s = one / (one + np.exp(-z))
                D[r, j] *= s * (one + z * (one - s))
    elif act != C.IDENTITY:
        raise ValueError("unknown activation code")


# -- randomness ----------------------------------------------------------------
#
# Dropout masks and RReLU slopes come from a counter-based generator: the
# number for unit ``j`` of layer ``salt`` of a sample is a hash of the epoch
# seed, the sample's values, ``salt`` and ``j`` (SplitMix64's finalizer,
# Steele et al., 2014). A sample therefore gets the same mask wherever it sits
# in the data, so weighting a row by 2 equals repeating it, and results do not
# depend on batch composition.

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


@njit(inline="always", **_JIT)
def _mix(x):
    x = (x ^ (x >> np.uint64(30))) * _MIX_1
    x = (x ^ (x >> np.uint64(27))) * _MIX_2
    return x ^ (x >> np.uint64(31))


@njit(inline="always", **_JIT)
def _uniform(key, salt, j):
    """A number in [0, 1) for unit ``j`` of layer ``salt`` of the sample with ``key``."""
    h = _mix(key + (np.uint64(salt) << np.uint64(40)) + (np.uint64(j) + np.uint64(1)) * _GOLDEN)
    return np.float64(h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(inline="always", **_JIT)
def _value_hash(scratch, bits, v, j):
    """Hash of value ``v`` (its float64 bit pattern) in column ``j``."""
    scratch[0] = v
    return _mix(bits[0] ^ ((np.uint64(j) + np.uint64(1)) * _GOLDEN))


@njit(**_INNER)
def _row_keys(Xd, Xv, Xi, Xp, sparse, rows, seed, keys):
    """``keys[r]``: hash of the seed and the nonzero values of row ``rows[r]``.

    Dense and CSR input give the same keys.
    """
    scratch = np.empty(1, dtype=np.float64)
    bits = scratch.view(np.uint64)
    for r in range(rows.shape[0]):
        i = rows[r]
        h = np.uint64(0)
        if sparse:
            for p in range(Xp[i], Xp[i + 1]):
                if Xv[p] != 0.0:
                    h += _value_hash(scratch, bits, Xv[p], Xi[p])
        else:
            for j in range(Xd.shape[1]):
                if Xd[i, j] != 0.0:
                    h += _value_hash(scratch, bits, Xd[i, j], j)
        keys[r] = _mix(h ^ np.uint64(seed))


# -- batch normalization and dropout -------------------------------------------


@njit(**_INNER)
def _batch_norm(Z, H, gamma, beta, mean, var, istd, batch_mean, mode, momentum, eps, sw, rows):
    """``Z <- gamma * xhat + beta`` in place, ``H <- xhat``.

    Training: the batch's mean and (biased) variance, weighted by the sample
    weights ``sw[rows]`` (so a weight of 2 equals a repeated row), and moving
    statistics updated as ``m <- momentum m + (1 - momentum) batch`` (Keras'
    convention); ``batch_mean`` (one value per column) receives the batch
    mean. Otherwise the moving statistics normalize. Every pass runs row by
    row, so the inner loop is over contiguous columns.
    """
    n, k = Z.shape
    dt = Z.dtype.type
    if mode == C.TRAINING:
        total = dt(0.0)
        for r in range(n):
            total += sw[rows[r]]
        inv_total = dt(1.0) / total
        keep, new = dt(momentum), dt(1.0 - momentum)
        center = batch_mean[:k]
        center[:] = 0.0
        for r in range(n):
            w = sw[rows[r]]
            for j in range(k):
                center[j] += w * Z[r, j]
        for j in range(k):
            center[j] *= inv_total
        istd[:] = 0.0
        for r in range(n):
            w = sw[rows[r]]
            for j in range(k):
                d = Z[r, j] - center[j]
                istd[j] += w * d * d
        for j in range(k):
            batch_var = istd[j] * inv_total
            istd[j] = dt(1.0) / np.sqrt(batch_var + dt(eps))
            mean[j] = keep * mean[j] + new * center[j]
            var[j] = keep * var[j] + new * batch_var
    else:
        center = mean
        for j in range(k):
            istd[j] = dt(1.0) / np.sqrt(var[j] + dt(eps))
    for r in range(n):
        for j in range(k):
            h = (Z[r, j] - center[j]) * istd[j]
            H[r, j] = h
            Z[r, j] = gamma[j] * h + beta[j]


@njit(**_INNER)
def _batch_norm_backward(D, H, gamma, istd, gamma_grad, beta_grad, sums, sw, rows):
    """Backward through training-mode batch norm, in place on ``D``.

    ``dz_r = gamma istd (dy_r - (w_r / W) sum(dy) - xhat_r (w_r / W) sum(dy xhat))``
    with sample weights ``w`` summing to ``W`` (Ioffe & Szegedy, 2015, with
    weighted statistics); writes ``sum(dy xhat)`` and ``sum(dy)`` to the gamma
    and beta gradients.
    """
    n, k = D.shape
    dt = D.dtype.type
    total = dt(0.0)
    for r in range(n):
        total += sw[rows[r]]
    inv_total = dt(1.0) / total
    sum_d = sums[:k]
    sum_dh = sums[k : 2 * k]
    sum_d[:] = 0.0
    sum_dh[:] = 0.0
    for r in range(n):
        for j in range(k):
            sum_d[j] += D[r, j]
            sum_dh[j] += D[r, j] * H[r, j]
    for j in range(k):
        gamma_grad[j] = sum_dh[j]
        beta_grad[j] = sum_d[j]
    for r in range(n):
        share = sw[rows[r]] * inv_total
        for j in range(k):
            D[r, j] = gamma[j] * istd[j] * (D[r, j] - share * (sum_d[j] + H[r, j] * sum_dh[j]))


@njit(**_INNER)
def _dropout(A, M, rate, alpha_dropout, keys, salt):
    """Mask ``A`` in place; ``M`` receives ``dA_out / dA_in``.

    Inverted dropout keeps a unit with probability ``q = 1 - rate`` and scales
    it by ``1 / q`` (Srivastava et al., 2014). Alpha dropout (for SELU;
    Klambauer et al., 2017) sets dropped units to ``-lambda * alpha`` and
    applies ``a x + b`` with ``a = (q (1 + rate alpha'^2))^-1/2``,
    ``b = -a alpha' rate`` so mean and variance are kept. The uniform numbers
    are float64 in every dtype, so float32 and float64 models drop the same units.
    """
    n, k = A.shape
    dt = A.dtype.type
    q = 1.0 - rate
    if alpha_dropout:
        saturation = -C.SELU_LAMBDA * C.SELU_ALPHA
        a64 = (q * (1.0 + rate * saturation * saturation)) ** -0.5
        b64 = -a64 * saturation * rate
        a, b, dropped = dt(a64), dt(b64), dt(a64 * saturation + b64)
        for r in range(n):
            for j in range(k):
                keep = _uniform(keys[r], salt, j) < q
                A[r, j] = a * A[r, j] + b if keep else dropped
                M[r, j] = a if keep else dt(0.0)
    else:
        inv_q = dt(1.0 / q)
        for r in range(n):
            for j in range(k):
                M[r, j] = inv_q if _uniform(keys[r], salt, j) < q else dt(0.0)
                A[r, j] *= M[r, j]


@njit(**_INNER)
def _multiply(D, M):
    n, k = D.shape
    for r in range(n):
        for j in range(k):
            D[r, j] *= M[r, j]


# -- sparse input ------------------------------------------------------------


@njit(**_INNER)
def _gather_rows(Xd, rows, out):
    """``out[r] = Xd[rows[r]]`` for the dense minibatch buffer."""
    k = out.shape[1]
    for r in range(rows.shape[0]):
        i = rows[r]
        for j in range(k):
            out[r, j] = Xd[i, j]


@njit(**_INNER)
def _sparse_dot(Xv, Xi, Xp, rows, W, out):
    """``out = X[rows] @ W`` for CSR ``X``."""
    out[:, :] = 0.0
    for r in range(rows.shape[0]):
        i = rows[r]
        for p in range(Xp[i], Xp[i + 1]):
            v = Xv[p]
            w = W[Xi[p]]
            for j in range(out.shape[1]):
                out[r, j] += v * w[j]


@njit(**_INNER)
def _sparse_t_dot(Xv, Xi, Xp, rows, D, out):
    """``out = X[rows].T @ D`` for CSR ``X``."""
    out[:, :] = 0.0
    for r in range(rows.shape[0]):
        i = rows[r]
        d = D[r]
        for p in range(Xp[i], Xp[i + 1]):
            v = Xv[p]
            o = out[Xi[p]]
            for j in range(out.shape[1]):
                o[j] += v * d[j]


# -- forward -----------------------------------------------------------------


@njit(**_INNER)
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
            X_in[:, :] = Ain
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
                _dropout(X_in, xmask[:n], dropout[0], iopt[C.IO_ALPHA_DROPOUT], keys, 0)
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
            b = _segment(params, offsets[layer, C.L_B], width)
            for r in range(n):
                for j in range(width):
                    Z[r, j] += b[j]
        slopes = Z[:0]
        if act == C.RRELU:
            slopes = _rows(rbuf, units, offsets, layer, n)
            lower, upper = fopt[C.FO_RRELU_LOWER], fopt[C.FO_RRELU_UPPER]
            if training:
                for r in range(n):
                    for j in range(width):
                        slopes[r, j] = lower + (upper - lower) * _uniform(keys[r], 2 * n_layers + layer, j)
            else:
                slopes[:, :] = 0.5 * (lower + upper)
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


@njit(**_INNER)
def _accumulate_activations(A, diag, layer, unit_start):
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


@njit(**_INNER)
def _output(Z, b, out_act):
    """``Z <- out_act(Z + b)`` in place (the output activation).

    Identity (squared error), exp (Poisson), logistic (binary log loss) or
    softmax (multiclass log loss, shifted by the row maximum). An unknown
    code raises ``ValueError``.
    """
    n, k = Z.shape
    dt = Z.dtype.type
    one = dt(1.0)
    for r in range(n):
        for j in range(k):
            Z[r, j] += b[j]
    if out_act == C.MULTICLASS_LOG_LOSS:
        for r in range(n):
            m = Z[r, 0]
            for j in range(1, k):
                m = max(m, Z[r, j])
            s = dt(0.0)
            for j in range(k):
                Z[r, j] = np.exp(Z[r, j] - m)
                s += Z[r, j]
            for j in range(k):
                Z[r, j] /= s
    elif out_act == C.POISSON:
        for r in range(n):
            for j in range(k):
                Z[r, j] = np.exp(Z[r, j])
    elif out_act == C.BINARY_LOG_LOSS:
        for r in range(n):
            for j in range(k):
                Z[r, j] = one / (one + np.exp(-Z[r, j]))
    elif out_act != C.SQUARED_ERROR:
        raise ValueError("unknown output code")


@njit(**_INNER)
def _hidden_output(Z, b, iopt, fopt):
    """``Z <- act(Z + b)`` with the hidden activation at inference (the codes of a layer).

    RReLU uses its mean slope; PReLU has no slopes in an output layer and is not supported.
    """
    act = iopt[C.IO_ACTIVATION]
    alpha = fopt[C.FO_ACT_ALPHA]
    if act == C.RRELU:
        act, alpha = C.LEAKY_RELU, 0.5 * (fopt[C.FO_RRELU_LOWER] + fopt[C.FO_RRELU_UPPER])
    n, k = Z.shape
    for r in range(n):
        for j in range(k):
            Z[r, j] += b[j]
    _activate(Z, Z, act, alpha, Z[:0], b[:0])


@njit(**_INNER)
def _output_loss_delta(Z, b, Y, sw, rows, out_act, eps, D):
    """Output activation, weighted loss and output delta in one pass.

    With the canonical link of each loss, ``dL/dz = p - y`` (Bishop, *Pattern
    Recognition and Machine Learning*, 2006, eq. 4.91 and 5.18); the delta is
    scaled by the sample weight as in scikit-learn. Returns
    ``(sum_i w_i * loss_i, sum_i w_i)`` in float64; ``loss_i`` is half the
    squared error averaged over outputs, half the Poisson deviance summed over
    outputs, or the cross-entropy with probabilities clipped to ``[eps, 1 - eps]``.
    """
    _output(Z, b, out_act)
    n, k = Z.shape
    total = 0.0
    sw_sum = 0.0
    for r in range(n):
        i = rows[r]
        w = sw[i]
        sw_sum += w
        row_loss = 0.0
        if out_act == C.SQUARED_ERROR:
            for j in range(k):
                row_loss += 0.5 * (Y[i, j] - Z[r, j]) ** 2 / k
        elif out_act == C.POISSON:
            for j in range(k):
                p = Z[r, j]
                y = Y[i, j]
                if y > 0:
                    row_loss += y * np.log(y / p)
                row_loss += p - y
        else:
            binary = out_act == C.BINARY_LOG_LOSS
            for j in range(k):
                y = Y[i, j]
                q = min(max(Z[r, j], eps), 1.0 - eps)
                if y != 0:
                    row_loss -= y * np.log(q)
                if binary and y != 1:
                    row_loss -= (1.0 - y) * np.log(1.0 - q)
        for j in range(k):
            D[r, j] = (Z[r, j] - Y[i, j]) * w
        total += w * row_loss
    return total, sw_sum


@njit(**_INNER)
def _column_sums(D, out):
    out[:] = 0.0
    for r in range(D.shape[0]):
        for j in range(D.shape[1]):
            out[j] += D[r, j]


# -- backward ------------------------------------------------------------------


@njit(**_INNER)
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


# -- updates -----------------------------------------------------------------
#
# Each optimizer is one loop over the slices ``p = params[start:stop]``,
# ``g = grad[start:stop]`` and its slots, indexed from 0 so the compiler knows
# every index is in bounds and non-negative, with no test inside the loop and
# every constant in the model's dtype: the loops compile to packed (SIMD)
# instructions, in float32 for float32 models.


@njit(inline="always", **_JIT)
def _gradient(raw, w, alpha, l1, scale):
    """Finalized gradient of one weight: ``(raw + alpha w + l1 sign(w)) * scale``."""
    return (raw + alpha * w + l1 * np.sign(w)) * scale


@njit(**_INNER)
def _sgd(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """``v <- mu v - lr g``; ``w <- w + mu v - lr g`` (Nesterov) or ``w <- w + v``.

    Both as one rule ``w <- w + a v - b g`` with ``(a, b) = (mu, lr)`` for
    Nesterov, ``(1, 0)`` without (scikit-learn's order of operations).
    """
    dt = p.dtype.type
    lr, mu, alpha, l1, scale = dt(lr), dt(mu), dt(alpha), dt(l1), dt(scale)
    nesterov = hp[C.HP_NESTEROV] != 0.0
    a = mu if nesterov else dt(1.0)
    b = lr if nesterov else dt(0.0)
    v = _slot(slots, 0, start, p)
    for i in range(p.shape[0]):
        gi = _gradient(g[i], p[i], alpha, l1, scale)
        v[i] = mu * v[i] - lr * gi
        p[i] += a * v[i] - b * gi


@njit(**_INNER)
def _adam(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """Adam (Kingma & Ba, 2015, Alg. 1), AdamW's decay first (Loshchilov & Hutter, 2019).

    ``w <- w - lr wd w`` (AdamW; ``wd = 0`` for Adam); ``m <- mu m + (1 - mu) g``;
    ``v <- b2 v + (1 - b2) g^2``; ``w <- w - lr sqrt(1 - b2^t) / (1 - mu^t) m / (sqrt(v) + eps)``.
    """
    dt = p.dtype.type
    b2 = hp[C.HP_BETA_2]
    lr_t = dt(lr * np.sqrt(1.0 - b2**t) / (1.0 - mu**t))
    decay = dt(lr * hp[C.HP_WEIGHT_DECAY])
    eps = dt(hp[C.HP_EPSILON])
    mu_, one_mu, b2_, one_b2 = dt(mu), dt(1.0 - mu), dt(b2), dt(1.0 - b2)
    alpha, l1, scale = dt(alpha), dt(l1), dt(scale)
    m = _slot(slots, 0, start, p)
    v = _slot(slots, 1, start, p)
    for i in range(p.shape[0]):
        w = p[i]
        gi = _gradient(g[i], w, alpha, l1, scale)
        w -= w * decay
        m[i] = mu_ * m[i] + one_mu * gi
        v[i] = b2_ * v[i] + one_b2 * gi * gi
        p[i] = w + -lr_t * m[i] / (np.sqrt(v[i]) + eps)


@njit(**_INNER)
def _adagrad(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """AdaGrad (Duchi et al., 2011): ``a <- a + g^2``; ``w <- w - lr g / sqrt(a + eps)``."""
    dt = p.dtype.type
    lr, eps, alpha, l1, scale = dt(lr), dt(hp[C.HP_EPSILON]), dt(alpha), dt(l1), dt(scale)
    a = _slot(slots, 0, start, p)
    for i in range(p.shape[0]):
        gi = _gradient(g[i], p[i], alpha, l1, scale)
        a[i] += gi * gi
        p[i] -= lr * gi / np.sqrt(a[i] + eps)


@njit(**_INNER)
def _rmsprop(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """RMSprop (Tieleman & Hinton, 2012), as Keras 3 computes it.

    ``s <- rho s + (1 - rho) g^2``; centered: ``c <- rho c + (1 - rho) g`` and
    ``d = s - c^2 + eps``, else ``d = s + eps``; ``m <- mu m + lr g / sqrt(d)``;
    ``w <- w - m``. One loop per variant, chosen outside the loop.
    """
    dt = p.dtype.type
    rho = hp[C.HP_BETA_2]
    lr, mu, eps, rho_, one_rho = dt(lr), dt(mu), dt(hp[C.HP_EPSILON]), dt(rho), dt(1.0 - rho)
    alpha, l1, scale = dt(alpha), dt(l1), dt(scale)
    s, m = _slot(slots, 0, start, p), _slot(slots, 1, start, p)
    if hp[C.HP_CENTERED] != 0.0:
        c = _slot(slots, 2, start, p)
        for i in range(p.shape[0]):
            gi = _gradient(g[i], p[i], alpha, l1, scale)
            s[i] = rho_ * s[i] + one_rho * gi * gi
            c[i] = rho_ * c[i] + one_rho * gi
            m[i] = mu * m[i] + lr * gi / np.sqrt(s[i] - c[i] * c[i] + eps)
            p[i] -= m[i]
    else:
        for i in range(p.shape[0]):
            gi = _gradient(g[i], p[i], alpha, l1, scale)
            s[i] = rho_ * s[i] + one_rho * gi * gi
            m[i] = mu * m[i] + lr * gi / np.sqrt(s[i] + eps)
            p[i] -= m[i]


@njit(**_INNER)
def _nadam(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """Nadam (Dozat, 2016), as Keras 3 computes it.

    ``u_t = mu (1 - 0.5 * 0.96^t)``, ``P_t = u_1 ... u_t`` (``hp[HP_PRODUCT]``,
    advanced once per step by :func:`_nadam_step`);
    ``m_hat = u_{t+1} m / (1 - P_t u_{t+1}) + (1 - u_t) g / (1 - P_t)``;
    ``w <- w - lr m_hat / (sqrt(v / (1 - b2^t)) + eps)``.
    """
    dt = p.dtype.type
    b2 = hp[C.HP_BETA_2]
    u_t = mu * (1.0 - 0.5 * 0.96**t)
    u_next = mu * (1.0 - 0.5 * 0.96 ** (t + 1.0))
    product = hp[C.HP_PRODUCT]
    m_scale = dt(u_next / (1.0 - product * u_next))
    g_scale = dt((1.0 - u_t) / (1.0 - product))
    v_scale = dt(1.0 / (1.0 - b2**t))
    lr, eps, one_mu, one_b2 = dt(lr), dt(hp[C.HP_EPSILON]), dt(1.0 - mu), dt(1.0 - b2)
    alpha, l1, scale = dt(alpha), dt(l1), dt(scale)
    m = _slot(slots, 0, start, p)
    v = _slot(slots, 1, start, p)
    for i in range(p.shape[0]):
        gi = _gradient(g[i], p[i], alpha, l1, scale)
        m[i] += (gi - m[i]) * one_mu
        v[i] += (gi * gi - v[i]) * one_b2
        p[i] -= (m_scale * m[i] + g_scale * gi) * lr / (np.sqrt(v[i] * v_scale) + eps)


@njit(**_INNER)
def _adamax(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """Adamax (Kingma & Ba, 2015, Alg. 2): ``m <- mu m + (1 - mu) g``;
    ``u <- max(b2 u, |g|)``; ``w <- w - lr m / ((1 - mu^t) (u + eps))``."""
    dt = p.dtype.type
    step = dt(lr / (1.0 - mu**t))
    b2, eps, one_mu = dt(hp[C.HP_BETA_2]), dt(hp[C.HP_EPSILON]), dt(1.0 - mu)
    alpha, l1, scale = dt(alpha), dt(l1), dt(scale)
    m = _slot(slots, 0, start, p)
    u = _slot(slots, 1, start, p)
    for i in range(p.shape[0]):
        gi = _gradient(g[i], p[i], alpha, l1, scale)
        m[i] += (gi - m[i]) * one_mu
        u[i] = max(b2 * u[i], abs(gi))
        p[i] -= step * m[i] / (u[i] + eps)


@njit(**_INNER)
def _ftrl(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """FTRL-proximal (McMahan et al., 2013, Alg. 1), as Keras 3 computes it.

    With ``q = -lr_power``: ``n' = n + g^2``; ``z <- z + g + 2 l2s w - (n'^q - n^q) / lr w``;
    ``w <- (clip(z, -l1', l1') - z) / (n'^q / lr + 2 (l2 + beta / (2 lr)))`` with
    ``l1' = l1_ftrl + l1_prox``: L1 acts proximally, so weights become exactly 0.
    ``q = 0.5`` (Keras' default) takes square roots, much cheaper than powers.
    A zero learning rate leaves the weights as they are.
    """
    if lr <= 0.0:
        return
    dt = p.dtype.type
    power = -hp[C.HP_LR_POWER]
    shrink = dt(2.0 * hp[C.HP_L2_SHRINKAGE])
    l2_term = dt(2.0 * (hp[C.HP_L2] + hp[C.HP_BETA] / (2.0 * lr)))
    bound = dt(hp[C.HP_L1] + l1_prox)
    inv_lr, alpha, l1, scale = dt(1.0 / lr), dt(alpha), dt(l1), dt(scale)
    n = _slot(slots, 0, start, p)
    z = _slot(slots, 1, start, p)
    if power == 0.5:
        for i in range(p.shape[0]):
            w = p[i]
            gi = _gradient(g[i], w, alpha, l1, scale)
            new_root = np.sqrt(n[i] + gi * gi)
            z[i] += gi + shrink * w - (new_root - np.sqrt(n[i])) * inv_lr * w
            p[i] = (min(max(z[i], -bound), bound) - z[i]) / (new_root * inv_lr + l2_term)
            n[i] += gi * gi
    else:
        q = dt(power)
        for i in range(p.shape[0]):
            w = p[i]
            gi = _gradient(g[i], w, alpha, l1, scale)
            new_power = (n[i] + gi * gi) ** q
            z[i] += gi + shrink * w - (new_power - n[i] ** q) * inv_lr * w
            p[i] = (min(max(z[i], -bound), bound) - z[i]) / (new_power * inv_lr + l2_term)
            n[i] += gi * gi


@njit(**_INNER)
def _finalize_gradient(p, g, alpha, l1, scale):
    """``g <- (g + alpha w + l1 sign(w)) * scale``."""
    dt = p.dtype.type
    alpha, l1, scale = dt(alpha), dt(l1), dt(scale)
    for i in range(p.shape[0]):
        g[i] = _gradient(g[i], p[i], alpha, l1, scale)


@njit(**_INNER)
def _finalize(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """NO_UPDATE: only finalize the gradient (L-BFGS)."""
    _finalize_gradient(p, g, alpha, l1, scale)


@njit(inline="always", **_JIT)
def _slot(slots, k, start, p):
    """Slot ``k`` of the parameters ``p``, which start at ``start``."""
    return slots[k, start : start + p.shape[0]]


@njit(**_INNER)
def _update(params, grad, slots, start, stop, alpha, l1, sw_sum, opt, lr, mu, hp, step):
    """Finalize the gradient of ``params[start:stop]`` and apply one update of rule ``opt``.

    The gradient is ``g = (raw + alpha w + l1 sign(w)) / sw_sum`` (scikit-learn's
    L2 scaling; L1 scaled alike). ``mu`` is the momentum of SGD and RMSprop and
    ``beta_1`` of the Adam family; ``t = step``. Update rules as Keras 3
    documents them (``keras/src/optimizers``), with scikit-learn's order of
    operations for SGD and Adam; see each rule's function. FTRL's L1 is
    proximal: ``l1 / sw_sum`` joins its own L1 strength instead of the gradient.

    A negative ``sw_sum`` means the gradient is already final (clipping):
    ``g = raw``, while FTRL's ``l1'`` uses ``-sw_sum``. An unknown ``opt``
    raises ``ValueError``.

    Returns ``(sum(w^2), sum(|w|))`` of the updated weights when ``alpha`` or
    ``l1`` is positive, else ``(0, 0)``.
    """
    ftrl = opt == C.FTRL
    final = sw_sum < 0.0
    l1_prox = l1 / abs(sw_sum) if ftrl else 0.0
    l1_grad = 0.0 if ftrl or final else l1
    alpha_grad = 0.0 if final else alpha
    scale = 1.0 if final else 1.0 / sw_sum
    t = float(step)
    p = params[start:stop]
    g = grad[start:stop]
    args = (p, g, slots, start, alpha_grad, l1_grad, scale, l1_prox, lr, mu, hp, t)
    if opt == C.SGD:
        _sgd(*args)
    elif opt == C.ADAM or opt == C.ADAMW:
        _adam(*args)
    elif opt == C.ADAGRAD:
        _adagrad(*args)
    elif opt == C.RMSPROP:
        _rmsprop(*args)
    elif opt == C.NADAM:
        _nadam(*args)
    elif opt == C.ADAMAX:
        _adamax(*args)
    elif opt == C.FTRL:
        _ftrl(*args)
    elif opt == C.NO_UPDATE:
        _finalize(*args)
    else:
        raise ValueError("unknown optimizer code")
    if alpha > 0.0 or l1 > 0.0:
        return _sum_squares_abs(p)
    return 0.0, 0.0


@njit(fastmath=_REDUCTION, **_INNER)
def _sum_squares_abs(x):
    """``(sum(x^2), sum(|x|))`` in float64.

    Compiled with reassociation allowed, so the sums vectorize (partial sums
    per SIMD lane): the order is fixed by the compiled code, so a result is
    the same on every run.
    """
    squares = 0.0
    absolute = 0.0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        squares += v * v
        absolute += abs(v)
    return squares, absolute


@njit(fastmath=_REDUCTION, **_INNER)
def _sum_squares(x):
    """``sum(x^2)`` in float64 (vectorized like :func:`_sum_squares_abs`)."""
    total = 0.0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        total += v * v
    return total


@njit(**_INNER)
def _scale(x, factor):
    dt = x.dtype.type
    f = dt(factor)
    for i in range(x.shape[0]):
        x[i] *= f


@njit(**_INNER)
def _clip_norm(x, clipnorm):
    """Rescale ``x`` to norm at most ``clipnorm``."""
    norm = np.sqrt(_sum_squares(x))
    if norm > clipnorm:
        _scale(x, clipnorm / norm)


@njit(**_INNER)
def _clip_gradients(params, grad, offsets, units, n_params, w_first, b_first, x_first, alpha, l1, sw_sum, opt, fopt):
    """Finalize the gradient and clip it (Pascanu et al., 2013; Keras' semantics).

    Frozen parameters get a zero gradient. ``clipvalue`` clips every element;
    ``clipnorm`` rescales each parameter tensor (weight matrix, bias, PReLU
    slopes, gamma, beta) to at most that norm; ``global_clipnorm`` rescales the
    whole gradient.
    """
    n_layers = units.shape[0] - 1
    n_coef = offsets[0, C.L_B]
    bias_end = offsets[n_layers, C.L_X]
    l1_grad = 0.0 if opt == C.FTRL else l1
    grad[:w_first] = 0.0
    grad[n_coef:b_first] = 0.0
    grad[bias_end:x_first] = 0.0
    scale = 1.0 / sw_sum
    _finalize_gradient(params[w_first:n_coef], grad[w_first:n_coef], alpha, l1_grad, scale)
    _scale(grad[b_first:bias_end], scale)
    _scale(grad[x_first:n_params], scale)
    clipvalue = fopt[C.FO_CLIPVALUE]
    if clipvalue > 0.0:
        dt = grad.dtype.type
        upper = dt(clipvalue)
        lower = -upper
        for i in range(n_params):
            grad[i] = min(max(grad[i], lower), upper)
    clipnorm = fopt[C.FO_CLIPNORM]
    if clipnorm > 0.0:
        for layer in range(n_layers + 1):
            if layer < n_layers:
                w = offsets[layer, C.L_W]
                _clip_norm(grad[w : w + units[layer] * units[layer + 1]], clipnorm)
                b = offsets[layer, C.L_B]
                _clip_norm(grad[b : b + units[layer + 1]], clipnorm)
            width = units[layer + 1] if layer < n_layers else units[0]
            p = offsets[layer, C.L_P]
            if p >= 0:
                _clip_norm(grad[p : p + width], clipnorm)
            g = offsets[layer, C.L_G]
            if g >= 0:
                _clip_norm(grad[g : g + width], clipnorm)
                _clip_norm(grad[g + width : g + 2 * width], clipnorm)
    global_clipnorm = fopt[C.FO_GLOBAL_CLIPNORM]
    if global_clipnorm > 0.0:
        _clip_norm(grad[:n_params], global_clipnorm)


@njit(**_INNER)
def _max_norm(params, units, offsets, first_trainable, r, norms):
    """Rescale each unit's incoming weight vector to norm at most ``r`` (Srivastava et al., 2014).

    ``norms`` (at least the widest layer) first accumulates the squared norms
    row by row, then holds each column's factor (``r / norm`` or 1).
    """
    dt = params.dtype.type
    for layer in range(first_trainable, units.shape[0] - 1):
        W = _matrix(params, units, offsets, layer)
        k = W.shape[1]
        factors = norms[:k]
        factors[:] = 0.0
        for i in range(W.shape[0]):
            for j in range(k):
                factors[j] += W[i, j] * W[i, j]
        for j in range(k):
            norm = np.sqrt(factors[j])
            factors[j] = dt(r) / norm if norm > r else dt(1.0)
        for i in range(W.shape[0]):
            for j in range(k):
                W[i, j] *= factors[j]


@njit(**_INNER)
def _penalty(params, n_coef, alpha, l1):
    """``0.5 * alpha * sum(W^2) + l1 * sum(|W|)`` over the weight matrices."""
    if alpha > 0.0 or l1 > 0.0:
        sumsq, sumabs = _sum_squares_abs(params[:n_coef])
        return 0.5 * alpha * sumsq + l1 * sumabs
    return 0.0


# -- entry points ------------------------------------------------------------


@njit(**_JIT)
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
    :func:`_uniform`). Training stops before the update of the first batch whose
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
    for start in range(0, n_samples, batch_size):
        stop = min(start + batch_size, n_samples)
        rows = order[start:stop]
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
        if opt == C.NADAM:
            hp[C.HP_PRODUCT] *= mu * (1.0 - 0.5 * 0.96 ** float(step))
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


@njit(**_JIT)
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
        offsets, iopt, fopt, dropout, 0, seed, bufs, ibufs, keys, dbuf1, dbuf2, np.empty((0, 5)),
    )
    penalty = _penalty(params, n_coef, alpha, l1)
    no_slots = np.empty((0, 0), dtype=params.dtype)
    no_hp = np.zeros(C.N_HYPERPARAMETERS)
    _update(params, grad, no_slots, 0, n_coef, alpha, l1, sw_sum, C.NO_UPDATE, 0.0, 0.0, no_hp, 0)
    _update(params, grad, no_slots, n_coef, n_params, 0.0, 0.0, sw_sum, C.NO_UPDATE, 0.0, 0.0, no_hp, 0)
    return total / sw_sum + penalty / sw_sum


PREDICT_CHUNK = 1024


@njit(**_INNER)
def _predict_buffers(units, capacity, n_stats, dtype_like):
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


@njit(**_INNER)
def _all_finite(Xd, Xv, sparse):
    values = Xv if sparse else Xd.reshape(-1)
    for i in range(values.shape[0]):
        if not np.isfinite(values[i]):
            return False
    return True


@njit(**_JIT)
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
    no_weights = np.empty(0, dtype=params.dtype)
    no_keys = np.empty(0, dtype=np.uint64)
    for start in range(0, n_samples, capacity):
        stop = min(start + capacity, n_samples)
        rows = np.arange(start, stop)
        _forward(
            Xd, Xv, Xi, Xp, sparse, rows, no_weights, params, stats, units, offsets, iopt,
            fopt, dropout, C.INFERENCE, 0, 0, bufs, ibufs, no_keys, no_diag,
        )
        Z = _rows(bufs[0], units, offsets, last, stop - start)
        b = _segment(params, offsets[last, C.L_B], units[last + 1])
        if iopt[C.IO_OUTPUT] == C.HIDDEN_ACTIVATION:
            _hidden_output(Z, b, iopt, fopt)
        else:
            _output(Z, b, iopt[C.IO_OUTPUT])
        out[start:stop] = Z
    return out


@njit(**_JIT)
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
    no_weights = np.empty(0, dtype=params.dtype)
    keys = np.empty(capacity, dtype=np.uint64)
    for pass_ in range(n_passes):
        for start in range(0, n_samples, capacity):
            stop = min(start + capacity, n_samples)
            rows = np.arange(start, stop)
            _forward(
                Xd, Xv, Xi, Xp, sparse, rows, no_weights, params, stats, units, offsets, iopt,
                fopt, dropout, C.MC_DROPOUT, seed + 7919 * pass_, 0, bufs, ibufs, keys, no_diag,
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
