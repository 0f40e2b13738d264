"""The hot update loop compiles to packed (SIMD) instructions, not scalar ones.

Read from the assembly Numba generates (issue 8: "verify in the generated
code"). x86-64 only: the mnemonics are x86's.
"""

import platform
import re

import numpy as np
import pytest
from numba import njit

from skdeep.kernels.cpu import optimizers

pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 assembly")


@njit
def _adam_step(p, g, slots, hp):  # the kernels have no CPython wrapper: call them from a jitted one
    optimizers.adam(p, g, slots, 0, 0.0, 0.0, 1.0, 0.0, 0.1, 0.9, hp, 1)


@pytest.mark.parametrize("dtype, suffix", [(np.float32, "ps"), (np.float64, "pd")])
def test_adam_update_uses_packed_instructions_in_the_models_dtype(dtype, suffix):
    n = 64
    _adam_step(np.zeros(n, dtype), np.ones(n, dtype), np.zeros((2, n), dtype), np.zeros(16))
    signature = [s for s in _adam_step.signatures if str(s[0].dtype) == np.dtype(dtype).name][0]
    asm = _adam_step.inspect_asm(signature)
    packed = re.findall(rf"\bv?(?:mul|add|sub|div|sqrt|fmadd\d*){suffix}\b", asm)
    assert len(packed) >= 8, f"no packed {suffix} arithmetic in the Adam update"
