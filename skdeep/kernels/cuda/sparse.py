"""CSR input on the device: the minibatch gather of sparse training data.

The training matrix stays on the device in CSR form (``values``,
``indices``, ``indptr``; Saad, 2003, "Iterative Methods for Sparse Linear
Systems", section 3.4) and is never densified as a whole: per batch,
:func:`gather_csr` writes the batch's rows, in the shuffled order, into the
dense batch buffer, after which the dense kernels run unchanged.
"""

import numpy as np

from skdeep.kernels.cuda._shim import THREADS, cuda
from skdeep.kernels.cuda.kernels import K_ZERO, mix


@cuda.jit
def gather_csr(values, indices, indptr, order, start, n, d, Xb, hashes, seed, keys, with_keys, K):
    """``Xb[r, :] = X[order[start + r], :]`` for CSR ``X``, one block per batch row ``r``.

    The block zeroes the row, synchronizes, then adds each stored entry,
    ``Xb[r, indices[p]] += values[p]`` for ``p`` in ``indptr[i]:indptr[i + 1]``
    (an atomic add, so duplicate entries sum as in the CPU's CSR products).
    With ``with_keys``, the row's random key ``mix(hashes[i] ^ seed)``.
    """
    r = cuda.blockIdx.x
    t = cuda.threadIdx.x
    if r >= n:
        return
    i = order[start + r]
    base = r * d
    for j in range(t, d, THREADS):
        Xb[base + j] = K[K_ZERO]
    cuda.syncthreads()
    for p in range(indptr[i] + t, indptr[i + 1], THREADS):
        cuda.atomic.add(Xb, base + indices[p], values[p])
    if with_keys and t == 0:
        keys[r] = mix(hashes[i] ^ np.uint64(seed))
