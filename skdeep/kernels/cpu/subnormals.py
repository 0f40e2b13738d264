"""Subnormal numbers flushed to zero while the CPU kernels run.

A subnormal number is a nonzero magnitude below the dtype's smallest normal
number ``np.finfo(dtype).tiny`` (1.2e-38 in float32, 2.2e-308 in float64).
x86 processors handle them in microcode, at tens to hundreds of cycles per
operation instead of one (Intel, *64 and IA-32 Architectures Optimization
Reference Manual*, "Floating-point modes and exceptions"). Training makes
them in bulk in float32: Adam's moments and the weights of dead units decay
geometrically towards zero, and a confident softmax's small probabilities
underflow. Then every later product with them pays, and a float32 epoch grew
up to six times slower as training went on (``docs/performance.md``).

:func:`flushing` sets two bits of the calling thread's MXCSR register for the
duration of a block: FTZ (results that would be subnormal become zero) and DAZ
(subnormal inputs count as zero). It restores the register afterwards, also
when the block raises, so NumPy code running in the same thread before and after
keeps IEEE arithmetic. TensorFlow runs its CPU kernels the same way
(``tensorflow/core/platform/denormal.h``, ``ScopedFlushDenormal``); the result
differs from IEEE arithmetic only by values below ``tiny``. Other
processors keep IEEE arithmetic (the block changes nothing).
"""

import platform

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from skdeep.kernels.cpu._jit import JIT

#: MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6) bits.
FTZ_DAZ = 0x8040

#: Whether this processor has MXCSR (x86-64).
X86 = platform.machine().lower() in {"x86_64", "amd64"}


def _call_mxcsr(builder, name, slot):
    """Emit ``llvm.x86.sse.{name}`` (``stmxcsr``/``ldmxcsr``) on the 32-bit ``slot``."""
    pointer = ir.IntType(8).as_pointer()
    function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [pointer]), name)
    builder.call(function, [builder.bitcast(slot, pointer)])


@intrinsic
def _load_mxcsr(typingctx):
    """The calling thread's MXCSR register."""

    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        _call_mxcsr(builder, "llvm.x86.sse.stmxcsr", slot)
        return builder.zext(builder.load(slot), ir.IntType(64))

    return types.int64(), codegen


@intrinsic
def _store_mxcsr(typingctx, value):
    """Set the calling thread's MXCSR register to ``value``."""

    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        builder.store(builder.trunc(args[0], ir.IntType(32)), slot)
        _call_mxcsr(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()

    return types.none(types.int64), codegen


@njit(**JIT)
def mxcsr():
    """The calling thread's MXCSR register (x86-64 only)."""
    return _load_mxcsr()


@njit(**JIT)
def set_mxcsr(value):
    """Set the calling thread's MXCSR register (x86-64 only)."""
    _store_mxcsr(value)


class flushing:
    """Within the ``with`` block, this thread's arithmetic flushes subnormal numbers to zero (x86-64).

    A class rather than a ``contextlib`` generator: it wraps every kernel
    call, single-row predictions included, and entering and leaving it costs
    0.7 µs against the generator's 1.1 µs (measured on this project's machine).
    """

    def __enter__(self):
        if X86:
            self._saved = mxcsr()
            set_mxcsr(self._saved | FTZ_DAZ)

    def __exit__(self, *exc_info):
        if X86:
            set_mxcsr(self._saved)
