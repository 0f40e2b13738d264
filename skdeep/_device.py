"""Which backend an estimator's ``device`` parameter selects.

``"cpu"`` is the compiled CPU backend; ``"cuda"`` the CUDA one
(:mod:`skdeep.kernels.cuda_backend`), an error when it cannot run; ``"auto"``
CUDA when it can run, otherwise the CPU, silently. Nothing here imports CUDA
until a device other than ``"cpu"`` is asked for, and the answer is kept for
the process.

Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) counts as usable only when
``SKDEEP_CUDA_SIMULATOR=1`` is also set (the test suite sets both), so a user
never trains on the simulator by accident.
"""

import os

DEVICES = ("cpu", "cuda", "auto")

INSTALL = 'pip install ".[cuda]"'

#: Rows from which prediction runs on the device when the model's device is CUDA.
PREDICT_MIN_ROWS = 4096

_USABLE = None  # (bool, reason), once per process


def cuda_status():
    """``(usable, reason)``: whether the CUDA backend can run here, and why not."""
    global _USABLE
    if _USABLE is None:
        _USABLE = _probe()
    return _USABLE


def _probe():
    from numba import config

    if config.ENABLE_CUDASIM and os.environ.get("SKDEEP_CUDA_SIMULATOR") != "1":
        return False, "NUMBA_ENABLE_CUDASIM=1 selects Numba's simulator, which skdeep uses only in its tests"
    try:
        from skdeep.kernels.cuda._shim import cuda
    except ImportError:
        return False, f"numba-cuda is not installed ({INSTALL})"
    try:
        if not cuda.is_available():
            return False, "no CUDA GPU with a working driver was found"
    except Exception as error:  # a broken driver or toolkit: report, never crash "auto"
        return False, f"CUDA could not start ({error})"
    return True, ""


def backend(device):
    """The backend name (``"cpu"`` or ``"cuda"``) for fitting with ``device``.

    Raises ``RuntimeError`` for ``device="cuda"`` when CUDA cannot run here.
    """
    if device == "cpu":
        return "cpu"
    usable, reason = cuda_status()
    if usable:
        return "cuda"
    if device == "auto":
        return "cpu"
    raise RuntimeError(
        f"device='cuda' needs an NVIDIA GPU and the CUDA extra: {reason}. Install it with "
        f"{INSTALL} (numba-cuda), or use device='auto' to fall back to the CPU."
    )


def predict_backend(device, n_rows):
    """The backend for predicting ``n_rows`` rows: the device for large inputs when CUDA can run.

    A model fitted on the GPU predicts on any machine: without CUDA it uses the CPU.
    """
    if device == "cpu" or n_rows < PREDICT_MIN_ROWS or not cuda_status()[0]:
        return "cpu"
    return "cuda"
