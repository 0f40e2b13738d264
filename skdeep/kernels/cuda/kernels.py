"""Fused elementwise kernels and reductions of the CUDA backend.

The same arithmetic as the CPU kernels (:mod:`skdeep.kernels.cpu`, whose
docstrings cite every formula), arranged for the device: each kernel fuses
what the CPU does in consecutive loops (bias + activation + dropout; output
activation + loss + delta; dropout mask + activation derivative; penalized
gradient + optimizer update), and works on flat buffers with offsets, so no
view is created per batch.

Every arithmetic constant that must follow the model's dtype comes from the
vector ``K`` (:data:`K_ZERO` ... :data:`K_BN_NEW`), typed like the
parameters, so float32 models compute in float32 on the device. Losses,
penalties and the norms of gradient clipping are summed in float64, as on
the CPU.

A device-side ``state`` vector (:data:`S_LOSS_SUM` ...) carries the epoch's
loss sum and batch count and a stop flag: the batch whose loss is not finite
sets it and every later update kernel returns at once, so an epoch runs
without a host synchronization per batch and still stops, as on the CPU,
before the update of that batch.

Dropout masks and RReLU slopes use the CPU's counter-based generator
(SplitMix64's finalizer, Steele et al., 2014) on the same per-row keys, so a
given ``random_state`` draws the same masks on both devices.
"""

import math

import numpy as np

from skdeep.kernels import codes as C
from skdeep.kernels.cuda._shim import THREADS, cuda

# -- constants vector K (model dtype) -------------------------------------------

K_ZERO = 0
K_ONE = 1
K_HALF = 2
K_ACT_ALPHA = 3  # leaky slope, ELU alpha
K_SELU_SCALE = 4
K_SELU_ALPHA = 5
K_INV_SQRT2 = 6
K_GELU_C = 7  # 1 / sqrt(2 pi)
K_RRELU_MEAN = 8
K_CLIPVALUE = 9
K_ALPHA = 10  # L2 penalty
K_L1 = 11
K_MAX_NORM = 12
K_BN_EPSILON = 13
K_BN_KEEP = 14  # batch norm's momentum
K_BN_NEW = 15  # 1 - momentum
N_K = 16

# -- state vector (float64) --------------------------------------------------------

S_LOSS_SUM = 0  # sum over completed batches of loss times batch size
S_N_BATCHES = 1
S_STOPPED = 2  # 1 after a non-finite loss
S_LOSS = 3  # the last batch's loss (finite or not)
S_SW_SUM = 4
N_STATE = 5

# -- optimizer coefficients, one row per batch (model dtype) ---------------------
N_COEF = 8

# Columns of the dropout table, one row per dropout rate (model dtype).
D_INV_Q = 0
D_A = 1
D_B = 2
D_DROPPED = 3
N_DROP = 4

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_U30, _U27, _U31, _U11, _U40, _U1 = (np.uint64(v) for v in (30, 27, 31, 11, 40, 1))
_INV_2_53 = 1.0 / 9007199254740992.0


# -- device functions ------------------------------------------------------------


@cuda.jit(device=True)
def mix(x):
    """SplitMix64's finalizer (Steele et al., 2014), as :func:`skdeep.kernels.cpu._mix`."""
    x = (x ^ (x >> _U30)) * _MIX_1
    x = (x ^ (x >> _U27)) * _MIX_2
    return x ^ (x >> _U31)


@cuda.jit(device=True)
def uniform(key, salt, j):
    """A float64 in [0, 1) for unit ``j`` of layer ``salt``, as :func:`skdeep.kernels.cpu._uniform`."""
    h = mix(key + (np.uint64(salt) << _U40) + (np.uint64(j) + _U1) * _GOLDEN)
    return np.float64(h >> _U11) * _INV_2_53


@cuda.jit(device=True)
def activate(z, act, s, K):
    """``act(z)``; ``s`` is the negative slope of the ReLU family (leaky, RReLU, PReLU)."""
    zero, one = K[K_ZERO], K[K_ONE]
    if act == C.RELU:
        return max(z, zero)
    if act == C.TANH:
        return math.tanh(z)
    if act == C.LOGISTIC:
        return one / (one + math.exp(-z))
    if act == C.LEAKY_RELU or act == C.RRELU or act == C.PRELU:
        return z if z >= zero else s * z
    if act == C.ELU:
        return z if z > zero else K[K_ACT_ALPHA] * (math.exp(z) - one)
    if act == C.SELU:
        return K[K_SELU_SCALE] * (z if z > zero else K[K_SELU_ALPHA] * (math.exp(z) - one))
    if act == C.GELU:
        return K[K_HALF] * z * (one + math.erf(z * K[K_INV_SQRT2]))
    if act == C.SWISH:
        return z / (one + math.exp(-z))
    return z


@cuda.jit(device=True)
def derivative(z, act, s, K):
    """``act'(z)`` (ReLU's is handled by the caller: the CPU zeroes, not multiplies)."""
    zero, one, half = K[K_ZERO], K[K_ONE], K[K_HALF]
    if act == C.TANH:
        a = math.tanh(z)
        return one - a * a
    if act == C.LOGISTIC:
        a = one / (one + math.exp(-z))
        return a * (one - a)
    if act == C.LEAKY_RELU or act == C.RRELU or act == C.PRELU:
        return one if z >= zero else s
    if act == C.ELU:
        return one if z > zero else K[K_ACT_ALPHA] * math.exp(z)
    if act == C.SELU:
        scale = K[K_SELU_SCALE]
        return scale if z > zero else scale * K[K_SELU_ALPHA] * math.exp(z)
    if act == C.GELU:
        return half * (one + math.erf(z * K[K_INV_SQRT2])) + z * K[K_GELU_C] * math.exp(-half * z * z)
    if act == C.SWISH:
        sig = one / (one + math.exp(-z))
        return sig * (one + z * (one - sig))
    return one


@cuda.jit(device=True)
def drop(a, u, rate, alpha_dropout, drop_table, d, K):
    """``(a', mask)``: inverted or alpha dropout of ``a`` given its uniform number ``u``."""
    keep = u < 1.0 - rate
    base = d * N_DROP
    if alpha_dropout:
        if keep:
            return a * drop_table[base + D_A] + drop_table[base + D_B], drop_table[base + D_A]
        return drop_table[base + D_DROPPED], K[K_ZERO]
    m = drop_table[base + D_INV_Q] if keep else K[K_ZERO]
    return a * m, m


@cuda.jit(device=True)
def sign(w, K):
    zero, one = K[K_ZERO], K[K_ONE]
    return one if w > zero else (-one if w < zero else zero)


@cuda.jit(device=True)
def tree_sum(shared, t):
    """Sum ``shared[:THREADS]`` into ``shared[0]``, then return it to every thread.

    Thread ``t`` has written ``shared[t]``; each step halves the active
    threads (tree reduction in shared memory; Harris, *Optimizing Parallel
    Reduction in CUDA*, NVIDIA, 2007). Every thread of the block must call it.
    """
    cuda.syncthreads()
    width = THREADS // 2
    while width > 0:
        if t < width:
            shared[t] += shared[t + width]
        cuda.syncthreads()
        width //= 2
    return shared[0]


@cuda.jit(device=True)
def block_sum_squares(values, start, stop, shared, t):
    """``sum values[start:stop] ** 2`` in float64 over one block's threads, returned to every thread."""
    total = 0.0
    for i in range(start + t, stop, THREADS):
        v = np.float64(values[i])
        total += v * v
    shared[t] = total
    return tree_sum(shared, t)


# -- data -----------------------------------------------------------------------


@cuda.jit
def gather(X, order, start, n, Xb, hashes, seed, keys, with_keys):
    """``Xb[r] = X[order[start + r]]`` and the rows' random keys ``mix(hash ^ seed)``."""
    i = cuda.grid(1)
    d = X.shape[1]
    if i < n * d:
        r = i // d
        j = i - r * d
        Xb[i] = X[order[start + r], j]
    if with_keys and i < n:
        keys[i] = mix(hashes[order[start + i]] ^ np.uint64(seed))


# -- forward ----------------------------------------------------------------------


@cuda.jit(device=True)
def activate_drop(z, i, r, j, M, S, params, p_off, keys, K, drop_table, act, mode, rate, alpha_dropout,
                  d, rrelu_salt, lower, upper):
    """``dropout(act(z))`` of element ``i`` (row ``r``, unit ``j``): its mask to ``M``, RReLU slope to ``S``.

    ``mode`` is a ``codes`` forward mode; dropout (rate and table row ``d``,
    layer salt ``d``) runs outside inference when ``rate > 0``; RReLU draws
    slopes (salt ``rrelu_salt``) in training and uses their mean otherwise.
    """
    s = K[K_ZERO]
    if act == C.LEAKY_RELU:
        s = K[K_ACT_ALPHA]
    elif act == C.RRELU:
        if mode == C.TRAINING:
            S[i] = lower + (upper - lower) * uniform(keys[r], rrelu_salt, j)
            s = S[i]
        else:
            s = K[K_RRELU_MEAN]
    elif act == C.PRELU:
        s = params[p_off + j]
    a = activate(z, act, s, K)
    if mode != C.INFERENCE and rate > 0.0:
        a, m = drop(a, uniform(keys[r], d, j), rate, alpha_dropout, drop_table, d, K)
        M[i] = m
    return a


@cuda.jit
def hidden_forward(Z, A, M, S, params, b_off, p_off, keys, K, drop_table, n, k, act, mode,
                   rate, alpha_dropout, layer, n_layers, lower, upper):
    """``Z <- Z + b``; ``A = dropout(act(Z))`` (:func:`activate_drop`), its mask to ``M``, RReLU slopes to ``S``."""
    i = cuda.grid(1)
    if i >= n * k:
        return
    r = i // k
    j = i - r * k
    z = Z[i] + params[b_off + j]
    Z[i] = z
    A[i] = activate_drop(z, i, r, j, M, S, params, p_off, keys, K, drop_table, act, mode, rate, alpha_dropout,
                         layer + 1, 2 * n_layers + layer, lower, upper)


@cuda.jit
def input_dropout(Xb, X_in, Mx, keys, K, drop_table, n, k, rate, alpha_dropout):
    """``X_in = dropout(Xb)`` with layer salt 0, its mask to ``Mx``."""
    i = cuda.grid(1)
    if i >= n * k:
        return
    r = i // k
    j = i - r * k
    a, m = drop(Xb[i], uniform(keys[r], 0, j), rate, alpha_dropout, drop_table, 0, K)
    X_in[i] = a
    Mx[i] = m


@cuda.jit(device=True)
def output_row(Z, base, k, code, act, K):
    """Output activation of one row ``Z[base:base + k]`` (bias already added), in place."""
    one = K[K_ONE]
    if code == C.MULTICLASS_LOG_LOSS:
        m = Z[base]
        for j in range(1, k):
            m = max(m, Z[base + j])
        total = K[K_ZERO]
        for j in range(k):
            e = math.exp(Z[base + j] - m)
            Z[base + j] = e
            total += e
        for j in range(k):
            Z[base + j] /= total
    elif code == C.POISSON:
        for j in range(k):
            Z[base + j] = math.exp(Z[base + j])
    elif code == C.BINARY_LOG_LOSS:
        for j in range(k):
            Z[base + j] = one / (one + math.exp(-Z[base + j]))
    elif code == C.HIDDEN_ACTIVATION:
        hidden = C.LEAKY_RELU if act == C.RRELU else act
        s = K[K_RRELU_MEAN] if act == C.RRELU else K[K_ACT_ALPHA]
        for j in range(k):
            Z[base + j] = activate(Z[base + j], hidden, s, K)


@cuda.jit
def output_activate(Z, params, b_off, n, k, code, act, K):
    """``Z <- out(Z + b)`` row by row (inference)."""
    r = cuda.grid(1)
    if r >= n:
        return
    base = r * k
    for j in range(k):
        Z[base + j] += params[b_off + j]
    output_row(Z, base, k, code, act, K)


@cuda.jit
def output_loss_delta(Z, params, b_off, Y, sw, order, start, n, k, code, eps, D, row_loss, row_w, K):
    """Output activation, the row's weighted loss (float64) and the delta ``(p - y) w``.

    As :func:`skdeep.kernels.cpu._output_loss_delta`: half squared error
    averaged over outputs, half Poisson deviance, or cross-entropy with
    probabilities clipped to ``[eps, 1 - eps]``.
    """
    r = cuda.grid(1)
    if r >= n:
        return
    base = r * k
    for j in range(k):
        Z[base + j] += params[b_off + j]
    output_row(Z, base, k, code, 0, K)
    i = order[start + r]
    w = sw[i]
    loss = 0.0
    for j in range(k):
        p = np.float64(Z[base + j])
        y = np.float64(Y[i, j])
        if code == C.SQUARED_ERROR:
            loss += 0.5 * (y - p) ** 2 / k
        elif code == C.POISSON:
            if y > 0:
                loss += y * math.log(y / p)
            loss += p - y
        else:
            q = min(max(p, eps), 1.0 - eps)
            if y != 0:
                loss -= y * math.log(q)
            if code == C.BINARY_LOG_LOSS and y != 1:
                loss -= (1.0 - y) * math.log(1.0 - q)
        D[base + j] = (Z[base + j] - Y[i, j]) * w
    row_loss[r] = np.float64(w) * loss
    row_w[r] = w


@cuda.jit
def loss_reduce(row_loss, row_w, n, penalty, n_partials, alpha, l1, state, scale):
    """One block: the batch loss ``sum(w loss) / W + penalty / W`` and its bookkeeping.

    ``penalty = 0.5 alpha sum(W^2) + l1 sum(|W|)`` over the weights
    (scikit-learn's scaling by the weight sum ``W``), from the ``n_partials``
    pairs of partial sums of :func:`skdeep.kernels.cuda.reductions.penalty_partials`
    (not read when ``alpha`` and ``l1`` are zero). Records the loss in
    ``state``; a finite one adds to the epoch's sums and sets
    ``scale = (1 / W, l1 / W)``, a non-finite one sets the stop flag.
    """
    t = cuda.threadIdx.x
    s_loss = cuda.shared.array(THREADS, np.float64)
    s_w = cuda.shared.array(THREADS, np.float64)
    s_sq = cuda.shared.array(THREADS, np.float64)
    s_abs = cuda.shared.array(THREADS, np.float64)
    a = 0.0
    b = 0.0
    for r in range(t, n, THREADS):
        a += row_loss[r]
        b += np.float64(row_w[r])
    c = 0.0
    e = 0.0
    if alpha > 0.0 or l1 > 0.0:
        for p in range(t, n_partials, THREADS):
            c += penalty[2 * p]
            e += penalty[2 * p + 1]
    s_loss[t] = a
    s_w[t] = b
    s_sq[t] = c
    s_abs[t] = e
    loss_sum = tree_sum(s_loss, t)
    total = tree_sum(s_w, t)
    sq_sum = tree_sum(s_sq, t)
    abs_sum = tree_sum(s_abs, t)
    if t == 0 and state[S_STOPPED] == 0.0:
        loss = loss_sum / total + (0.5 * alpha * sq_sum + l1 * abs_sum) / total
        state[S_LOSS] = loss
        if math.isnan(loss) or math.isinf(loss):
            state[S_STOPPED] = 1.0
        else:
            state[S_LOSS_SUM] += loss * n
            state[S_N_BATCHES] += 1.0
            state[S_SW_SUM] = total
            scale[0] = 1.0 / total
            scale[1] = l1 / total


# -- backward ---------------------------------------------------------------------


@cuda.jit
def activation_backward(D, Z, M, S, n, k, act, masked, K):
    """``D <- (D * M) * act'(Z)`` (``M`` only when ``masked``); PReLU: :func:`prelu_backward`."""
    i = cuda.grid(1)
    if i >= n * k:
        return
    d = D[i]
    if masked:
        d *= M[i]
    z = Z[i]
    if act == C.RELU:
        d = K[K_ZERO] if z <= K[K_ZERO] else d
    elif act != C.IDENTITY:
        s = K[K_ACT_ALPHA]
        if act == C.RRELU:
            s = S[i]
        d *= derivative(z, act, s, K)
    D[i] = d


@cuda.jit
def prelu_backward(D, Z, M, params, p_off, grad, n, k, masked, K):
    """PReLU's backward, one thread per unit: ``D <- D * act'(Z)``; slope gradient ``sum(D z [z < 0])``."""
    j = cuda.grid(1)
    if j >= k:
        return
    zero, one = K[K_ZERO], K[K_ONE]
    slope = params[p_off + j]
    g = zero
    for r in range(n):
        i = r * k + j
        d = D[i]
        if masked:
            d *= M[i]
        z = Z[i]
        negative = z < zero
        g += d * z if negative else zero
        D[i] = d * (slope if negative else one)
    grad[p_off + j] = g


# -- gradients, clipping, updates -----------------------------------------------------


@cuda.jit(device=True)
def _trainable(i, n_coef, bias_end, w_first, b_first, x_first):
    if i < n_coef:
        return i >= w_first
    if i < bias_end:
        return i >= b_first
    return i >= x_first


@cuda.jit
def finalize_gradient(params, grad, n_params, n_coef, bias_end, w_first, b_first, x_first,
                      l1_on, clip_on, scale, state, K):
    """Finalized, clipped-by-value gradient (:func:`skdeep.kernels.cpu._clip_gradients`' first part).

    Frozen entries are zeroed; weights get ``(g + alpha w + l1 sign(w)) / W``
    (``l1`` only when ``l1_on``: FTRL's L1 is proximal), the rest ``g / W``;
    with ``clip_on`` every entry is clipped to ``[-clipvalue, clipvalue]``.
    """
    i = cuda.grid(1)
    if i >= n_params or state[S_STOPPED] != 0.0:
        return
    g = grad[i]
    if not _trainable(i, n_coef, bias_end, w_first, b_first, x_first):
        g = K[K_ZERO]
    elif i < n_coef:
        w = params[i]
        l1 = K[K_L1] if l1_on else K[K_ZERO]
        g = (g + K[K_ALPHA] * w + l1 * sign(w, K)) * scale[0]
    else:
        g = g * scale[0]
    if clip_on:
        c = K[K_CLIPVALUE]
        g = min(max(g, -c), c)
    grad[i] = g


@cuda.jit
def segment_factors(grad, bounds, clip, factors, state):
    """One block per tensor ``grad[bounds[2t]:bounds[2t + 1]]``: ``factors[t] = min(1, clip / norm)``."""
    t = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    partial = cuda.shared.array(THREADS, np.float64)
    total = block_sum_squares(grad, bounds[2 * t], bounds[2 * t + 1], partial, tid)
    if tid == 0:
        norm = math.sqrt(total)
        factors[t] = clip / norm if norm > clip and state[S_STOPPED] == 0.0 else 1.0


@cuda.jit
def segment_scale(grad, bounds, factors, K):
    """``grad[tensor t] *= factors[t]``; grid ``(blocks, n_tensors)``."""
    t = cuda.blockIdx.y
    f = factors[t]
    if f == K[K_ONE]:
        return
    stride = cuda.gridDim.x * cuda.blockDim.x
    for i in range(bounds[2 * t] + cuda.grid(1), bounds[2 * t + 1], stride):
        grad[i] *= f


@cuda.jit
def update(params, grad, slots, n_params, n_coef, bias_end, w_first, b_first, x_first, opt,
           coef, batch, final, scale, state, K):
    """Finalize the gradient and apply one update of rule ``opt`` to every trainable entry.

    As :func:`skdeep.kernels.cpu._update` and the rules it calls (Kingma &
    Ba, 2015; Duchi et al., 2011; Tieleman & Hinton, 2012; Dozat, 2016;
    McMahan et al., 2013; as Keras 3 computes them): the host precomputes,
    per batch, each rule's step-dependent scalars in ``coef[batch]``
    (:func:`skdeep.kernels.cuda_backend.coefficients`). ``final``: the
    gradient is already finalized (clipping).
    """
    i = cuda.grid(1)
    if i >= n_params or state[S_STOPPED] != 0.0:
        return
    if not _trainable(i, n_coef, bias_end, w_first, b_first, x_first):
        return
    zero = K[K_ZERO]
    weight = i < n_coef
    w = params[i]
    g = grad[i]
    if not final:
        alpha = K[K_ALPHA] if weight else zero
        l1 = K[K_L1] if weight and opt != C.FTRL else zero
        g = (g + alpha * w + l1 * sign(w, K)) * scale[0]
    c = batch * N_COEF
    if opt == C.SGD:  # coef: lr, mu, a, b
        v = coef[c + 1] * slots[0, i] - coef[c] * g
        slots[0, i] = v
        params[i] = w + (coef[c + 2] * v - coef[c + 3] * g)
    elif opt == C.ADAM or opt == C.ADAMW:  # lr_t, decay, eps, mu, 1 - mu, b2, 1 - b2
        w -= w * coef[c + 1]
        m = coef[c + 3] * slots[0, i] + coef[c + 4] * g
        v = coef[c + 5] * slots[1, i] + coef[c + 6] * g * g
        slots[0, i] = m
        slots[1, i] = v
        params[i] = w + -coef[c] * m / (math.sqrt(v) + coef[c + 2])
    elif opt == C.ADAGRAD:  # lr, eps
        a = slots[0, i] + g * g
        slots[0, i] = a
        params[i] = w - coef[c] * g / math.sqrt(a + coef[c + 1])
    elif opt == C.RMSPROP:  # lr, mu, eps, rho, 1 - rho, centered
        s = coef[c + 3] * slots[0, i] + coef[c + 4] * g * g
        slots[0, i] = s
        if coef[c + 5] != zero:
            cg = coef[c + 3] * slots[2, i] + coef[c + 4] * g
            slots[2, i] = cg
            s = s - cg * cg
        m = coef[c + 1] * slots[1, i] + coef[c] * g / math.sqrt(s + coef[c + 2])
        slots[1, i] = m
        params[i] = w - m
    elif opt == C.NADAM:  # m_scale, g_scale, v_scale, lr, eps, 1 - mu, 1 - b2
        m = slots[0, i]
        m += (g - m) * coef[c + 5]
        v = slots[1, i]
        v += (g * g - v) * coef[c + 6]
        slots[0, i] = m
        slots[1, i] = v
        params[i] = w - (coef[c] * m + coef[c + 1] * g) * coef[c + 3] / (math.sqrt(v * coef[c + 2]) + coef[c + 4])
    elif opt == C.ADAMAX:  # step, b2, eps, 1 - mu
        m = slots[0, i]
        m += (g - m) * coef[c + 3]
        u = max(coef[c + 1] * slots[1, i], abs(g))
        slots[0, i] = m
        slots[1, i] = u
        params[i] = w - coef[c] * m / (u + coef[c + 2])
    elif opt == C.FTRL:  # shrink, l2_term, l1_ftrl, 1 / lr, power, active, square root
        if coef[c + 5] == zero:
            return
        bound = coef[c + 2] + (scale[1] if weight else zero)
        n_old = slots[0, i]
        if coef[c + 6] != zero:
            new = math.sqrt(n_old + g * g)
            old = math.sqrt(n_old)
        else:
            new = (n_old + g * g) ** coef[c + 4]
            old = n_old ** coef[c + 4]
        z = slots[1, i] + g + coef[c] * w - (new - old) * coef[c + 3] * w
        slots[1, i] = z
        params[i] = (min(max(z, -bound), bound) - z) / (new * coef[c + 3] + coef[c + 1])
        slots[0, i] = n_old + g * g


@cuda.jit
def max_norm(params, w_off, fan_in, fan_out, state, K):
    """Rescale unit ``j``'s incoming weights to norm at most ``K[K_MAX_NORM]`` (Srivastava et al., 2014)."""
    j = cuda.grid(1)
    if j >= fan_out or state[S_STOPPED] != 0.0:
        return
    total = K[K_ZERO]
    for r in range(fan_in):
        w = params[w_off + r * fan_out + j]
        total += w * w
    norm = math.sqrt(total)
    limit = K[K_MAX_NORM]
    if norm > limit:
        factor = limit / norm
        for r in range(fan_in):
            params[w_off + r * fan_out + j] *= factor


def blocks(n):
    """Blocks of :data:`THREADS` threads covering ``n`` threads (at least one)."""
    return max(1, -(-int(n) // THREADS))
