"""The one import of Numba's CUDA target, behind which every kernel is written.

NVIDIA's ``numba-cuda`` provides ``numba.cuda`` (it went into maintenance in
June 2026); its successor ``numba-cuda-mlir`` is the same API under
``from numba_cuda_mlir import cuda`` but has no simulator. The kernels use
only the subset both provide: ``cuda.jit``, ``cuda.grid``, the thread and
block indices, ``cuda.shared.array``, ``cuda.syncthreads`` and device arrays.

Raises ``ImportError`` (naming the install command) when neither is installed.
"""

from numba import config

INSTALL = 'pip install ".[cuda]"'

try:
    import numba_cuda  # noqa: F401  (the package that provides numba.cuda)
    from numba import cuda
except ImportError:
    try:
        from numba_cuda_mlir import cuda
    except ImportError:
        raise ImportError(
            f"device='cuda' needs NVIDIA's numba-cuda: {INSTALL} (or pip install numba-cuda)."
        ) from None

#: Whether the kernels run in Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``):
#: one Python thread per CUDA thread, for tests on tiny shapes.
SIMULATOR = bool(config.ENABLE_CUDASIM)

#: Threads per block of the elementwise kernels and edge of the matmul tile;
#: small in the simulator, where every thread is a Python thread.
THREADS = 32 if SIMULATOR else 256
TILE = 4 if SIMULATOR else 16
