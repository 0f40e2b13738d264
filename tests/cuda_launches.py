"""Every CUDA kernel of skdeep, and the argument types of its launches.

``tests/test_cuda.py`` fits and predicts on Numba's CUDA simulator in a child
process that records, with :func:`record`, the Numba types of every kernel
launch; the parent compiles each kernel to PTX for exactly those types
(:func:`kernels` finds them), which needs NVIDIA's compiler libraries (NVRTC,
NVVM) but no GPU, and catches typing errors the simulator lets through.
"""

import importlib
import pkgutil

#: The simulator runs each CUDA thread as a Python thread while the launching
#: thread polls them; with Python's default GIL switch interval (5 ms) every
#: hand-over waits for it to expire. Simulated processes set
#: ``sys.setswitchinterval(SWITCH_INTERVAL)``, which runs them about 5x faster.
SWITCH_INTERVAL = 1e-4


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
