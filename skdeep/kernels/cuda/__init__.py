"""CUDA kernels for the ``"cuda"`` backend (:mod:`skdeep.kernels.cuda_backend`).

Importing this package costs nothing; :mod:`._shim` imports Numba's CUDA
target, and only the backend, the device check (:mod:`skdeep._device`) and the
tests import it. ``kernels`` holds the fused elementwise kernels and the
reductions, ``matmul`` the tiled matrix product (and the optional cuBLAS path),
``sparse`` the minibatch gather of CSR training data, ``diagnostics`` the
per-layer statistics of ``diagnostics=True``.
"""
