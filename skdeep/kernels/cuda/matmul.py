"""Matrix products of the CUDA backend: a shared-memory tiled kernel, cuBLAS when available.

:func:`gemm` computes ``C = op(A) @ op(B)`` on flat row-major buffers with
offsets, ``op`` a transpose or not, the three products of a layer:
``Z = A W``, ``dW = A^T D`` and ``D_below = D W^T``.

The tiled kernel is the classic shared-memory blocking (Kirk & Hwu,
*Programming Massively Parallel Processors*, 2010, ch. 6): each block loads a
``TILE x TILE`` tile of both operands into shared memory and accumulates
their product, walking along the inner dimension in order, so the result does
not depend on the tile size. When ``nvmath-python`` is importable, products go
to cuBLAS through its low-level bindings on the device pointers
(``__cuda_array_interface__``); ``SKDEEP_CUDA_GEMM=tiled`` forces the kernel.
"""

import os

import numpy as np
from numba import float32, float64

from skdeep.kernels.cuda._shim import SIMULATOR, TILE, cuda


def _tiled(dtype, nb_type):
    zero = dtype(0.0)

    @cuda.jit
    def tiled(A, a_off, B, b_off, C, c_off, M, N, K, ta, tb):
        """``C[c_off:] (M x N) = op(A) (M x K) @ op(B) (K x N)``; ``ta``/``tb``: stored transposed."""
        sA = cuda.shared.array((TILE, TILE), nb_type)
        sB = cuda.shared.array((TILE, TILE), nb_type)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.y * TILE + ty
        col = cuda.blockIdx.x * TILE + tx
        acc = zero
        for t in range((K + TILE - 1) // TILE):
            k = t * TILE + tx
            if row < M and k < K:
                sA[ty, tx] = A[a_off + (k * M + row if ta else row * K + k)]
            else:
                sA[ty, tx] = zero
            k = t * TILE + ty
            if k < K and col < N:
                sB[ty, tx] = B[b_off + (col * K + k if tb else k * N + col)]
            else:
                sB[ty, tx] = zero
            cuda.syncthreads()
            for q in range(TILE):
                acc += sA[ty, q] * sB[q, tx]
            cuda.syncthreads()
        if row < M and col < N:
            C[c_off + row * N + col] = acc

    return tiled


TILED = {np.dtype(np.float32): _tiled(np.float32, float32), np.dtype(np.float64): _tiled(np.float64, float64)}


def _cublas(kind=None):
    """nvmath-python's cuBLAS bindings, or ``None`` (not installed, simulator, or turned off).

    ``kind`` is ``"tiled"``, ``"cublas"`` or ``None`` (the ``SKDEEP_CUDA_GEMM``
    environment variable, cuBLAS when available by default).
    """
    kind = kind or os.environ.get("SKDEEP_CUDA_GEMM", "cublas")
    if SIMULATOR or kind == "tiled":
        return None
    try:
        from nvmath.bindings import cublas
    except ImportError:
        return None
    return cublas


class Gemm:
    """``C = op(A) @ op(B)`` by cuBLAS when :func:`_cublas` finds it (for ``kind``), else the tiled kernel."""

    def __init__(self, kind=None):
        self.cublas = _cublas(kind)
        self._handle = None

    @property
    def name(self):
        return "cublas" if self.cublas is not None else "tiled"

    def __call__(self, A, a_off, B, b_off, C, c_off, M, N, K, ta, tb):
        if self.cublas is not None:
            return self._cublas_gemm(A, a_off, B, b_off, C, c_off, M, N, K, ta, tb)
        grid = (max(1, -(-N // TILE)), max(1, -(-M // TILE)))
        TILED[A.dtype][grid, (TILE, TILE)](A, a_off, B, b_off, C, c_off, M, N, K, ta, tb)

    def _cublas_gemm(self, A, a_off, B, b_off, C, c_off, M, N, K, ta, tb):
        """Row-major ``C = op(A) op(B)`` as column-major ``C^T = op(B)^T op(A)^T`` (cuBLAS is column-major)."""
        cublas = self.cublas
        if self._handle is None:
            self._handle = cublas.create()
        itemsize = A.dtype.itemsize

        def pointer(array, offset):
            return array.__cuda_array_interface__["data"][0] + offset * itemsize

        one = np.array(1.0, dtype=A.dtype)
        zero = np.array(0.0, dtype=A.dtype)
        op_b = cublas.Operation.T if tb else cublas.Operation.N
        op_a = cublas.Operation.T if ta else cublas.Operation.N
        ld_b = K if tb else N
        ld_a = M if ta else K
        routine = cublas.sgemm if A.dtype == np.float32 else cublas.dgemm
        routine(
            self._handle, op_b, op_a, N, M, K, one.ctypes.data, pointer(B, b_off), ld_b,
            pointer(A, a_off), ld_a, zero.ctypes.data, pointer(C, c_off), N,
        )
