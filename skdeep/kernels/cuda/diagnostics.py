"""Per-layer training diagnostics on the device (``diagnostics=True``).

The statistics the CPU's ``_accumulate_activations`` and ``_loss_raw_grad``
(:mod:`skdeep.kernels.cpu.network`) add up per batch, in the same float64
array ``diag`` of shape ``(n_hidden + 1, width)``: row ``l`` holds, for hidden
layer ``l``, ``[sum a, sum a^2, count, sum_batches ||grad W_l|| / sum(w),
batches]`` with ``a = act(z)`` the activation's output before dropout, and
the last row each hidden unit's maximum ``a`` (a unit whose maximum is
``<= 0`` is dead; Lu et al., 2019, "Dying ReLU and initialization").
``diag`` stays on the device for an epoch and is read back once. A batch
after a non-finite loss (``state[S_STOPPED]``) adds nothing.
"""

import math

import numpy as np

from skdeep.kernels import codes as C
from skdeep.kernels.cuda._shim import THREADS, cuda
from skdeep.kernels.cuda.kernels import (
    K_ACT_ALPHA,
    K_ZERO,
    S_STOPPED,
    S_SW_SUM,
    activate,
    block_sum_squares,
    tree_sum,
)


@cuda.jit
def activation_stats(Z, S, params, p_off, n, k, act, diag, layer, unit_start, K, state):
    """Add hidden layer ``layer``'s ``sum a``, ``sum a^2``, count and unit maxima to ``diag``.

    One thread per unit ``j``: ``a = act(Z[r, j])`` over the batch's ``n``
    rows (``Z`` holds ``a W + b``; ``S`` RReLU's training slopes, PReLU's
    slope ``params[p_off + j]``); its sums go to a block reduction and one
    ``cuda.atomic.add`` per block, its maximum to ``diag[-1, unit_start + j]``.
    """
    j = cuda.grid(1)
    t = cuda.threadIdx.x
    s_sum = cuda.shared.array(THREADS, np.float64)
    s_sq = cuda.shared.array(THREADS, np.float64)
    stopped = state[S_STOPPED] != 0.0
    total = 0.0
    total_sq = 0.0
    if j < k and not stopped:
        peak_row = diag.shape[0] - 1
        peak = diag[peak_row, unit_start + j]
        s = K[K_ZERO]
        if act == C.LEAKY_RELU:
            s = K[K_ACT_ALPHA]
        elif act == C.PRELU:
            s = params[p_off + j]
        for r in range(n):
            i = r * k + j
            if act == C.RRELU:
                s = S[i]
            a = activate(Z[i], act, s, K)
            a64 = np.float64(a)
            total += a64
            total_sq += a64 * a64
            peak = max(peak, a64)
        diag[peak_row, unit_start + j] = peak
    s_sum[t] = total
    s_sq[t] = total_sq
    block_sum = tree_sum(s_sum, t)
    block_sq = tree_sum(s_sq, t)
    if t == 0 and not stopped:
        cuda.atomic.add(diag, (layer, 0), block_sum)
        cuda.atomic.add(diag, (layer, 1), block_sq)
        if cuda.blockIdx.x == 0:
            diag[layer, 2] += np.float64(n * k)


@cuda.jit
def gradient_norms(grad, bounds, first, diag, state):
    """Per hidden layer ``l >= first`` (one block each): ``diag[l, 3] += ||grad W_l|| / sum(w)``, ``diag[l, 4] += 1``.

    ``grad[bounds[2l]:bounds[2l + 1]]`` is layer ``l``'s raw weight
    gradient (before penalties and the division by the batch's weight sum
    ``state[S_SW_SUM]``); its squares are summed in float64.
    """
    layer = first + cuda.blockIdx.x
    tid = cuda.threadIdx.x
    partial = cuda.shared.array(THREADS, np.float64)
    total = block_sum_squares(grad, bounds[2 * layer], bounds[2 * layer + 1], partial, tid)
    if tid == 0 and state[S_STOPPED] == 0.0:
        diag[layer, 3] += math.sqrt(total) / state[S_SW_SUM]
        diag[layer, 4] += 1.0
