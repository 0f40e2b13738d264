"""Every CUDA kernel of skdeep, and the argument types of its launches.

``tests/test_cuda.py`` fits and predicts on Numba's CUDA simulator in a child
process that records, with :func:`record`, the Numba types of every kernel
launch; the parent compiles each kernel to PTX for exactly those types
(:func:`kernels` finds them), which needs NVIDIA's compiler libraries (NVRTC,
NVVM) but no GPU, and catches typing errors the simulator lets through.
"""

import importlib
import pkgutil
import sys
import threading

#: The simulator runs each CUDA thread as a Python thread while the launching
#: thread polls them; with Python's default GIL switch interval (5 ms) every
#: hand-over waits for it to expire. :func:`simulate` sets
#: ``sys.setswitchinterval(SWITCH_INTERVAL)``, which runs them about 5x faster.
SWITCH_INTERVAL = 1e-4


def simulate():
    """Prepare this process for the simulator: a short GIL switch interval and race-free shared arrays.

    The simulator finds a block's ``cuda.shared.array`` by the calling line
    and creates it when it is missing, without a lock (numba-cuda 0.30): two
    threads of a block can each create one and then reduce into different
    arrays. One fit in six on a 2-core machine summed a layer's diagnostics
    wrongly. This replaces the lookup by one under a lock.
    """
    import numpy as np
    from numba.cuda import types
    from numba.cuda.np.numpy_support import as_dtype
    from numba.cuda.simulator.kernelapi import FakeCUDAShared

    sys.setswitchinterval(SWITCH_INTERVAL)
    allocate, lock = FakeCUDAShared.array, threading.Lock()

    def array(shared, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:  # dynamic shared memory, or an error: the simulator's own
            return allocate(shared, shape, dtype, alignment)
        frame = sys._getframe(1)
        caller = (frame.f_code.co_filename, frame.f_lineno)
        with lock:
            found = shared._allocations.get(caller)
            if found is None:
                dtype = as_dtype(dtype) if isinstance(dtype, types.Type) else dtype
                found = shared._allocations[caller] = np.empty(shape, dtype)
        return found

    FakeCUDAShared.array = array


def kernels():
    """``{location: kernel}`` of every launchable kernel defined in ``skdeep.kernels.cuda``.

    A location is ``"module.name"``, or ``"module.name[key]"`` for kernels
    kept in a dict (the tiled matrix product per dtype); device functions are
    left out (they compile inside the kernels that call them).
    """
    import skdeep.kernels.cuda as package

    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, value in vars(module).items():
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for key, item in items:
                if _is_kernel(item) and item.py_func.__module__ == module.__name__:
                    found[f"{info.name}.{name}" + ("" if key is None else f"[{key}]")] = item
    return found


def _is_kernel(item):
    """A launchable ``cuda.jit`` kernel: a GPU dispatcher, or the simulator's stand-in."""
    if hasattr(item, "_device") and hasattr(item, "py_func"):  # the simulator's FakeCUDAKernel
        return not item._device
    options = getattr(item, "targetoptions", None)
    return isinstance(options, dict) and not options.get("device", False)


def record(launches):
    """Add ``(location, argument types)`` of every simulated kernel launch to the set ``launches``."""
    from numba import typeof
    from numba.cuda.simulator.kernel import FakeCUDAKernel

    where = {id(kernel): location for location, kernel in kernels().items()}
    launch = FakeCUDAKernel.__call__

    def recording(kernel, *args):
        if id(kernel) in where:
            launches.add((where[id(kernel)], tuple(typeof(getattr(a, "_ary", a)) for a in args)))
        return launch(kernel, *args)

    FakeCUDAKernel.__call__ = recording
