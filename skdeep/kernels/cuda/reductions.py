"""Sums over many values as two passes of many threads, in a fixed order.

A sum over ``n`` values in one thread costs ``n`` dependent steps; the GPU
runs best with thousands of short threads. Each sum here is split into
chunks: a first kernel sums every chunk in its own thread (or block), a
second sums the chunks' partial sums in chunk order. No atomics, so a sum
is the same on every run (two-pass reduction; Harris, *Optimizing Parallel
Reduction in CUDA*, NVIDIA, 2007).

- Column sums of a batch ``D`` (``n x k``, row-major), the bias gradients
  ``sum_r D[r, j]``: :func:`column_partials` then :func:`column_totals`.
- The penalty sums ``sum W^2`` and ``sum |W|`` over the weights, in float64
  as on the CPU: :func:`penalty_partials`, whose :data:`PENALTY_BLOCKS`
  pairs of partial sums :func:`skdeep.kernels.cuda.kernels.loss_reduce` adds.
"""

import numpy as np

from skdeep.kernels.cuda._shim import SIMULATOR, THREADS, cuda
from skdeep.kernels.cuda.kernels import K_ZERO, tree_sum

#: Rows summed by one thread of :func:`column_partials` (few in the simulator, so tests see several chunks).
CHUNK_ROWS = 2 if SIMULATOR else 64

#: Blocks of :func:`penalty_partials`, each writing one pair of partial sums.
PENALTY_BLOCKS = 2 if SIMULATOR else 128


def n_chunks(n):
    """Chunks of :data:`CHUNK_ROWS` rows covering ``n`` rows."""
    return max(1, -(-int(n) // CHUNK_ROWS))


@cuda.jit
def column_partials(D, n, k, partial, K):
    """``partial[c k + j] = sum of D[r, j]`` over the rows ``r`` of chunk ``c`` (``blockIdx.y``), in row order."""
    j = cuda.grid(1)
    c = cuda.blockIdx.y
    if j >= k:
        return
    stop = min(n, (c + 1) * CHUNK_ROWS)
    total = K[K_ZERO]
    for r in range(c * CHUNK_ROWS, stop):
        total += D[r * k + j]
    partial[c * k + j] = total


@cuda.jit
def column_totals(partial, chunks, k, out, o_off, K):
    """``out[o_off + j] = sum_c partial[c k + j]``, in chunk order."""
    j = cuda.grid(1)
    if j >= k:
        return
    total = K[K_ZERO]
    for c in range(chunks):
        total += partial[c * k + j]
    out[o_off + j] = total


@cuda.jit
def penalty_partials(params, n_coef, partial):
    """``partial[2 b] = sum W^2`` and ``partial[2 b + 1] = sum |W|`` over block ``b``'s stride of the weights.

    Block ``b`` of :data:`PENALTY_BLOCKS` sums the weights ``p`` with
    ``p // THREADS = b (mod PENALTY_BLOCKS)``, in float64, then reduces its
    threads' sums in shared memory.
    """
    t = cuda.threadIdx.x
    b = cuda.blockIdx.x
    s_sq = cuda.shared.array(THREADS, np.float64)
    s_abs = cuda.shared.array(THREADS, np.float64)
    sq = 0.0
    ab = 0.0
    for p in range(b * THREADS + t, n_coef, PENALTY_BLOCKS * THREADS):
        v = np.float64(params[p])
        sq += v * v
        ab += abs(v)
    s_sq[t] = sq
    s_abs[t] = ab
    sq_sum = tree_sum(s_sq, t)
    abs_sum = tree_sum(s_abs, t)
    if t == 0:
        partial[2 * b] = sq_sum
        partial[2 * b + 1] = abs_sum
