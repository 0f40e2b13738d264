"""CPU kernels compiled with Numba: arrays in, arrays out.

A network with layer widths ``units = [n_features, h_1, ..., n_outputs]`` keeps
all its parameters in one flat vector laid out as scikit-learn's L-BFGS packs
them: every weight matrix (row-major, ``(fan_in, fan_out)``) first, then every
bias vector. Inputs come either dense (``Xd``, C-contiguous) or as the three
CSR arrays (``Xv``, ``Xi``, ``Xp``); ``sparse`` says which. Rows are always
addressed through an index array, so shuffling never copies the data.

Matrix products go to BLAS through ``np.dot``; everything else is a fused loop:
bias + activation in one pass, output activation + loss + output delta in one
pass, and gradient finalization + optimizer step over all parameters in one
pass. Each public kernel is compiled once per floating dtype.

References
----------
Rumelhart, Hinton & Williams (1986), "Learning representations by
back-propagating errors" (backpropagation); Kingma & Ba (2015), "Adam: a method
for stochastic optimization", Algorithm 1; Sutskever et al. (2013), "On the
importance of initialization and momentum in deep learning", eq. 1-4 (momentum
and Nesterov momentum, in scikit-learn's formulation).
"""

import numpy as np
from numba import njit

from skdeep.kernels import codes as C

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_JIT)
def _n_coefs(units):
    n = 0
    for layer in range(units.shape[0] - 1):
        n += units[layer] * units[layer + 1]
    return n


@njit(**_JIT)
def _bias_activation(Z, b, act):
    """``Z <- act(Z + b)`` in place, one pass (scikit-learn's ``ACTIVATIONS``)."""
    n, k = Z.shape
    if act == C.RELU:
        for r in range(n):
            for j in range(k):
                Z[r, j] = max(Z[r, j] + b[j], 0.0)
    elif act == C.TANH:
        for r in range(n):
            for j in range(k):
                Z[r, j] = np.tanh(Z[r, j] + b[j])
    elif act == C.LOGISTIC:
        for r in range(n):
            for j in range(k):
                Z[r, j] = 1.0 / (1.0 + np.exp(-(Z[r, j] + b[j])))
    else:
        for r in range(n):
            for j in range(k):
                Z[r, j] += b[j]


@njit(**_JIT)
def _activation_backward(A, D, act):
    """``D <- D * act'(.)`` in place, the derivative written through the output ``A``."""
    n, k = A.shape
    if act == C.RELU:
        for r in range(n):
            for j in range(k):
                if A[r, j] == 0.0:
                    D[r, j] = 0.0
    elif act == C.TANH:
        for r in range(n):
            for j in range(k):
                a = A[r, j]
                D[r, j] *= 1.0 - a * a
    elif act == C.LOGISTIC:
        for r in range(n):
            for j in range(k):
                a = A[r, j]
                D[r, j] *= a * (1.0 - a)


@njit(**_JIT)
def _gather_rows(Xd, rows, out):
    """``out[r] = Xd[rows[r]]`` for the dense minibatch buffer."""
    for r in range(rows.shape[0]):
        out[r, :] = Xd[rows[r], :]


@njit(**_JIT)
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


@njit(**_JIT)
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


@njit(**_JIT)
def layout(units, capacity):
    """Offsets of each layer: rows ``[w_start, b_start, a_start]``.

    ``w_start``/``b_start`` index the flat parameter vector; ``a_start`` indexes
    the activation buffer, where layer ``l`` owns ``capacity * units[l + 1]``
    values.
    """
    n_layers = units.shape[0] - 1
    offsets = np.empty((n_layers, 3), dtype=np.int64)
    w_start = 0
    b_start = _n_coefs(units)
    a_start = 0
    for layer in range(n_layers):
        offsets[layer, 0] = w_start
        offsets[layer, 1] = b_start
        offsets[layer, 2] = a_start
        w_start += units[layer] * units[layer + 1]
        b_start += units[layer + 1]
        a_start += capacity * units[layer + 1]
    return offsets


@njit(**_JIT)
def _weights(params, units, offsets, layer):
    fan_in, fan_out = units[layer], units[layer + 1]
    start = offsets[layer, 0]
    return params[start : start + fan_in * fan_out].reshape((fan_in, fan_out))


@njit(**_JIT)
def _bias(params, units, offsets, layer):
    start = offsets[layer, 1]
    return params[start : start + units[layer + 1]]


@njit(**_JIT)
def _activations(abuf, units, offsets, layer, n):
    start = offsets[layer, 2]
    k = units[layer + 1]
    return abuf[start : start + n * k].reshape((n, k))


@njit(**_JIT)
def _forward(Xb, Xv, Xi, Xp, sparse, rows, params, units, offsets, act, abuf):
    """Forward pass of ``rows`` into the activation buffer.

    ``Xb`` holds the dense input rows of the batch (unused for CSR input).
    Hidden layers hold ``act(A @ W + b)``. The output layer holds its
    pre-activation without the bias: the caller fuses bias, output activation
    and loss.
    """
    n = rows.shape[0]
    n_layers = units.shape[0] - 1
    for layer in range(n_layers):
        W = _weights(params, units, offsets, layer)
        A = _activations(abuf, units, offsets, layer, n)
        if layer > 0:
            np.dot(_activations(abuf, units, offsets, layer - 1, n), W, A)
        elif sparse:
            _sparse_dot(Xv, Xi, Xp, rows, W, A)
        else:
            np.dot(Xb, W, A)
        if layer < n_layers - 1:
            _bias_activation(A, _bias(params, units, offsets, layer), act)


@njit(**_JIT)
def _output(Z, b, out_act):
    """``Z <- out_act(Z + b)`` in place (the output activation)."""
    n, k = Z.shape
    for r in range(n):
        if out_act == C.MULTICLASS_LOG_LOSS:
            m = -np.inf
            for j in range(k):
                Z[r, j] += b[j]
                m = max(m, Z[r, j])
            s = 0.0
            for j in range(k):
                Z[r, j] = np.exp(Z[r, j] - m)
                s += Z[r, j]
            for j in range(k):
                Z[r, j] /= s
        else:
            for j in range(k):
                z = Z[r, j] + b[j]
                if out_act == C.POISSON:
                    z = np.exp(z)
                elif out_act == C.BINARY_LOG_LOSS:
                    z = 1.0 / (1.0 + np.exp(-z))
                Z[r, j] = z


@njit(**_JIT)
def _output_loss_delta(Z, b, Y, sw, rows, out_act, eps, D):
    """Output activation, weighted loss and output delta in one pass.

    With the canonical link of each loss, ``dL/dz = p - y`` (Bishop, *Pattern
    Recognition and Machine Learning*, 2006, eq. 4.91 and 5.18); the delta is
    scaled by the sample weight as in scikit-learn. Returns
    ``(sum_i w_i * loss_i, sum_i w_i)``; ``loss_i`` is half the squared error
    averaged over outputs, half the Poisson deviance summed over outputs, or the
    cross-entropy with probabilities clipped to ``[eps, 1 - eps]``.
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
        for j in range(k):
            p = Z[r, j]
            y = Y[i, j]
            if out_act == C.SQUARED_ERROR:
                row_loss += 0.5 * (y - p) ** 2 / k
            elif out_act == C.POISSON:
                if y > 0:
                    row_loss += y * np.log(y / p)
                row_loss += p - y
            else:
                q = min(max(p, eps), 1.0 - eps)
                if y != 0:
                    row_loss -= y * np.log(q)
                if out_act == C.BINARY_LOG_LOSS and y != 1:
                    row_loss -= (1.0 - y) * np.log(1.0 - q)
            D[r, j] = (p - y) * w
        total += w * row_loss
    return total, sw_sum


@njit(**_JIT)
def _column_sums(D, out):
    out[:] = 0.0
    for r in range(D.shape[0]):
        for j in range(D.shape[1]):
            out[j] += D[r, j]


@njit(**_JIT)
def _loss_raw_grad(
    Xd, Xv, Xi, Xp, sparse, Y, sw, rows, params, grad, units, offsets, act, out_act,
    eps, first_trainable, xbuf, abuf, dbuf1, dbuf2,
):
    """Forward and backward pass over ``rows``.

    Writes the unnormalized data gradient (``A.T @ delta`` and column sums of
    ``delta``, before the penalties and before dividing by the weight sum) of
    layers ``first_trainable`` and above into ``grad`` and returns
    ``(weighted loss sum, weight sum)``.
    """
    n = rows.shape[0]
    last = units.shape[0] - 2
    Xb = xbuf[:n]
    if not sparse:
        _gather_rows(Xd, rows, Xb)
    _forward(Xb, Xv, Xi, Xp, sparse, rows, params, units, offsets, act, abuf)
    delta = dbuf1[: n * units[last + 1]].reshape((n, units[last + 1]))
    total, sw_sum = _output_loss_delta(
        _activations(abuf, units, offsets, last, n),
        _bias(params, units, offsets, last), Y, sw, rows, out_act, eps, delta,
    )
    spare, used = dbuf2, dbuf1
    for layer in range(last, first_trainable - 1, -1):
        gW = _weights(grad, units, offsets, layer)
        if layer > 0:
            np.dot(_activations(abuf, units, offsets, layer - 1, n).T, delta, gW)
        elif sparse:
            _sparse_t_dot(Xv, Xi, Xp, rows, delta, gW)
        else:
            np.dot(Xb.T, delta, gW)
        _column_sums(delta, _bias(grad, units, offsets, layer))
        if layer > first_trainable:
            below = spare[: n * units[layer]].reshape((n, units[layer]))
            np.dot(delta, _weights(params, units, offsets, layer).T, below)
            _activation_backward(_activations(abuf, units, offsets, layer - 1, n), below, act)
            spare, used = used, spare
            delta = below
    return total, sw_sum


@njit(inline="always", **_JIT)
def _gradient(raw, w, alpha, l1, sw_sum):
    """Finalized gradient of one weight: ``(raw + alpha w + l1 sign(w)) / sw_sum``."""
    penalty = alpha * w
    if l1 > 0.0:
        penalty += l1 * np.sign(w)
    return (raw + penalty) / sw_sum


@njit(**_JIT)
def _update(params, grad, slots, start, stop, alpha, l1, sw_sum, opt, lr, mu, hp, step):
    """Finalize the gradient of ``params[start:stop]`` and apply one update.

    The gradient is ``g = (raw + alpha w + l1 sign(w)) / sw_sum`` (scikit-learn's
    L2 scaling; L1 scaled alike). ``mu`` is the momentum of SGD and RMSprop and
    ``beta_1`` of the Adam family; ``t = step``. Update rules, as Keras 3
    documents them (``keras/src/optimizers``), with scikit-learn's order of
    operations for SGD and Adam:

    * SGD: ``v <- mu v - lr g``; ``w <- w + mu v - lr g`` (Nesterov) or ``w <- w + v``.
    * Adagrad (Duchi et al., 2011): ``a <- a + g^2``; ``w <- w - lr g / sqrt(a + eps)``.
    * RMSprop (Tieleman & Hinton, 2012): ``s <- rho s + (1 - rho) g^2``; centered:
      ``c <- rho c + (1 - rho) g`` and ``d = s - c^2 + eps``, else ``d = s + eps``;
      ``u = lr g / sqrt(d)``; ``m <- mu m + u``, ``w <- w - m``.
    * Adam (Kingma & Ba, 2015, Alg. 1): ``m <- mu m + (1 - mu) g``;
      ``v <- b2 v + (1 - b2) g^2``; ``w <- w - lr sqrt(1 - b2^t) / (1 - mu^t) m / (sqrt(v) + eps)``.
      AdamW (Loshchilov & Hutter, 2019) first applies ``w <- w - lr wd w``.
    * Nadam (Dozat, 2016): ``u_t = mu (1 - 0.5 * 0.96^t)``, ``P_t = prod u_1..u_t``;
      ``m_hat = u_{t+1} m / (1 - P_t u_{t+1}) + (1 - u_t) g / (1 - P_t)``;
      ``w <- w - lr m_hat / (sqrt(v / (1 - b2^t)) + eps)``.
    * Adamax (Kingma & Ba, 2015, Alg. 2): ``u <- max(b2 u, |g|)``;
      ``w <- w - lr m / ((1 - mu^t) (u + eps))``.
    * FTRL-proximal (McMahan et al., 2013, Alg. 1), with ``p = -lr_power``:
      ``n' = n + g^2``; ``z <- z + g + 2 l2s w - (n'^p - n^p) / lr w``;
      ``w <- (clip(z, -l1', l1') - z) / (n'^p / lr + 2 (l2 + beta / (2 lr)))``,
      ``l1' = l1_ftrl + l1 / sw_sum``: L1 acts proximally, so weights become exactly 0.
    * NO_UPDATE: ``grad <- g``.

    Returns ``(sum(w^2), sum(|w|))`` of the updated weights.
    """
    ftrl = opt == C.FTRL
    l1_grad = 0.0 if ftrl else l1
    t = float(step)
    if opt == C.SGD:
        nesterov = hp[C.HP_NESTEROV] != 0.0
        v = slots[0]
        for i in range(start, stop):
            g = _gradient(grad[i], params[i], alpha, l1_grad, sw_sum)
            v[i] = mu * v[i] - lr * g
            if nesterov:
                params[i] += mu * v[i] - lr * g
            else:
                params[i] += v[i]
    elif opt == C.ADAM or opt == C.ADAMW:
        b2 = hp[C.HP_BETA_2]
        eps = hp[C.HP_EPSILON]
        decay = lr * hp[C.HP_WEIGHT_DECAY] if opt == C.ADAMW else 0.0
        lr_t = lr * np.sqrt(1.0 - b2**t) / (1.0 - mu**t)
        m = slots[0]
        v = slots[1]
        for i in range(start, stop):
            g = _gradient(grad[i], params[i], alpha, l1_grad, sw_sum)
            if decay != 0.0:
                params[i] -= params[i] * decay
            m[i] = mu * m[i] + (1.0 - mu) * g
            v[i] = b2 * v[i] + (1.0 - b2) * g * g
            params[i] += -lr_t * m[i] / (np.sqrt(v[i]) + eps)
    elif opt == C.ADAGRAD:
        eps = hp[C.HP_EPSILON]
        a = slots[0]
        for i in range(start, stop):
            g = _gradient(grad[i], params[i], alpha, l1_grad, sw_sum)
            a[i] += g * g
            params[i] -= lr * g / np.sqrt(a[i] + eps)
    elif opt == C.RMSPROP:
        rho = hp[C.HP_BETA_2]
        eps = hp[C.HP_EPSILON]
        centered = hp[C.HP_CENTERED] != 0.0
        s, m, c = slots[0], slots[1], slots[2]
        for i in range(start, stop):
            g = _gradient(grad[i], params[i], alpha, l1_grad, sw_sum)
            s[i] = rho * s[i] + (1.0 - rho) * g * g
            if centered:
                c[i] = rho * c[i] + (1.0 - rho) * g
                denominator = s[i] - c[i] * c[i] + eps
            else:
                denominator = s[i] + eps
            m[i] = mu * m[i] + lr * g / np.sqrt(denominator)
            params[i] -= m[i]
    elif opt == C.NADAM:
        b2 = hp[C.HP_BETA_2]
        eps = hp[C.HP_EPSILON]
        u_t = mu * (1.0 - 0.5 * 0.96**t)
        u_next = mu * (1.0 - 0.5 * 0.96 ** (t + 1.0))
        product = hp[C.HP_PRODUCT]
        product_next = product * u_next
        v_scale = 1.0 - b2**t
        m = slots[0]
        v = slots[1]
        for i in range(start, stop):
            g = _gradient(grad[i], params[i], alpha, l1_grad, sw_sum)
            m[i] += (g - m[i]) * (1.0 - mu)
            v[i] += (g * g - v[i]) * (1.0 - b2)
            m_hat = u_next * m[i] / (1.0 - product_next) + (1.0 - u_t) * g / (1.0 - product)
            params[i] -= m_hat * lr / (np.sqrt(v[i] / v_scale) + eps)
    elif opt == C.ADAMAX:
        b2 = hp[C.HP_BETA_2]
        eps = hp[C.HP_EPSILON]
        scale = lr / (1.0 - mu**t)
        m = slots[0]
        u = slots[1]
        for i in range(start, stop):
            g = _gradient(grad[i], params[i], alpha, l1_grad, sw_sum)
            m[i] += (g - m[i]) * (1.0 - mu)
            u[i] = max(b2 * u[i], abs(g))
            params[i] -= scale * m[i] / (u[i] + eps)
    elif ftrl:
        power = -hp[C.HP_LR_POWER]
        l1_prox = hp[C.HP_L1] + l1 / sw_sum
        shrink = 2.0 * hp[C.HP_L2_SHRINKAGE]
        l2_term = 2.0 * (hp[C.HP_L2] + hp[C.HP_BETA] / (2.0 * lr))
        n = slots[0]
        z = slots[1]
        for i in range(start, stop):
            g = _gradient(grad[i], params[i], alpha, l1_grad, sw_sum)
            w = params[i]
            n_new = n[i] + g * g
            new_power = n_new**power
            z[i] += g + shrink * w - (new_power - n[i] ** power) / lr * w
            params[i] = (min(max(z[i], -l1_prox), l1_prox) - z[i]) / (new_power / lr + l2_term)
            n[i] = n_new
    else:
        for i in range(start, stop):
            grad[i] = _gradient(grad[i], params[i], alpha, l1_grad, sw_sum)
    sumsq = 0.0
    sumabs = 0.0
    if alpha > 0.0 or l1 > 0.0:
        for i in range(start, stop):
            sumsq += params[i] * params[i]
            sumabs += abs(params[i])
    return sumsq, sumabs


@njit(**_JIT)
def _penalty(params, n_coef, alpha, l1):
    """``0.5 * alpha * sum(W^2) + l1 * sum(|W|)`` over the weight matrices."""
    sumsq = 0.0
    sumabs = 0.0
    if alpha > 0.0 or l1 > 0.0:
        for i in range(n_coef):
            sumsq += params[i] * params[i]
            sumabs += abs(params[i])
    return 0.5 * alpha * sumsq + l1 * sumabs


@njit(**_JIT)
def train_epoch(
    Xd, Xv, Xi, Xp, sparse, Y, sw, order, batch_size, lrs, momenta, params, grad,
    slots, units, act, out_act, eps, alpha, l1, opt, hp, step, first_trainable,
    xbuf, abuf, dbuf1, dbuf2,
):
    """One pass of minibatch training over ``order``.

    Batch ``b`` covers ``order[b * batch_size:(b + 1) * batch_size]`` and uses
    learning rate ``lrs[b]`` and momentum (``beta_1`` for the Adam family)
    ``momenta[b]``. Its loss is the weighted mean loss plus
    ``(0.5 * alpha * sum(W^2) + l1 * sum(|W|)) / sum(w)`` (scikit-learn's L2
    scaling). Layers below ``first_trainable`` are frozen: the backward pass
    stops above them and their parameters are not updated. Training stops
    before the update of the first batch whose loss is not finite.

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
    n_coef = _n_coefs(units)
    offsets = layout(units, batch_size)
    w_first = offsets[first_trainable, 0]
    b_first = offsets[first_trainable, 1]
    frozen_penalty = _penalty(params, w_first, alpha, l1)
    penalty = _penalty(params, n_coef, alpha, l1)
    loss_sum = 0.0
    n_batches = 0
    for start in range(0, n_samples, batch_size):
        stop = min(start + batch_size, n_samples)
        rows = order[start:stop]
        total, sw_sum = _loss_raw_grad(
            Xd, Xv, Xi, Xp, sparse, Y, sw, rows, params, grad, units, offsets, act,
            out_act, eps, first_trainable, xbuf, abuf, dbuf1, dbuf2,
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
        sumsq, sumabs = _update(
            params, grad, slots, w_first, n_coef, alpha, l1, sw_sum, opt, lr, mu, hp, step
        )
        penalty = frozen_penalty + 0.5 * alpha * sumsq + l1 * sumabs
        _update(params, grad, slots, b_first, params.shape[0], 0.0, 0.0, sw_sum, opt, lr, mu, hp, step)
        n_batches += 1
    return loss_sum, n_batches, step


@njit(**_JIT)
def loss_grad(
    Xd, Xv, Xi, Xp, sparse, Y, sw, params, grad, units, act, out_act, eps, alpha, l1,
    xbuf, abuf, dbuf1, dbuf2,
):
    """Full-batch loss and gradient (for L-BFGS); the gradient goes to ``grad``."""
    n_samples = Y.shape[0]
    n_coef = _n_coefs(units)
    total, sw_sum = _loss_raw_grad(
        Xd, Xv, Xi, Xp, sparse, Y, sw, np.arange(n_samples), params, grad, units,
        layout(units, n_samples), act, out_act, eps, 0, xbuf, abuf, dbuf1, dbuf2,
    )
    penalty = _penalty(params, n_coef, alpha, l1)
    no_slots = np.empty((0, 0), dtype=params.dtype)
    no_hp = np.empty(0)
    _update(params, grad, no_slots, 0, n_coef, alpha, l1, sw_sum, C.NO_UPDATE, 0.0, 0.0, no_hp, 0)
    _update(params, grad, no_slots, n_coef, params.shape[0], 0.0, 0.0, sw_sum, C.NO_UPDATE, 0.0, 0.0, no_hp, 0)
    return total / sw_sum + penalty / sw_sum


PREDICT_CHUNK = 1024


@njit(**_JIT)
def predict(Xd, Xv, Xi, Xp, sparse, params, units, act, out_act):
    """Network output for every row, ``(n_samples, n_outputs)``.

    Rows go through in chunks of ``PREDICT_CHUNK`` so memory stays bounded.
    Returns an empty ``(0, 0)`` array when the input holds a non-finite value.
    """
    values = Xv if sparse else Xd.reshape(-1)
    for i in range(values.shape[0]):
        if not np.isfinite(values[i]):
            return np.empty((0, 0), dtype=params.dtype)
    n_samples = Xp.shape[0] - 1 if sparse else Xd.shape[0]
    capacity = min(n_samples, PREDICT_CHUNK)
    offsets = layout(units, capacity)
    last = units.shape[0] - 2
    n_act = 0
    for layer in range(1, units.shape[0]):
        n_act += capacity * units[layer]
    abuf = np.empty(n_act, dtype=params.dtype)
    out = np.empty((n_samples, units[last + 1]), dtype=params.dtype)
    for start in range(0, n_samples, capacity):
        stop = min(start + capacity, n_samples)
        rows = np.arange(start, stop)
        _forward(Xd[start:stop], Xv, Xi, Xp, sparse, rows, params, units, offsets, act, abuf)
        A = _activations(abuf, units, offsets, last, rows.shape[0])
        _output(A, _bias(params, units, offsets, last), out_act)
        out[start : start + rows.shape[0]] = A
    return out
