"""The flat parameter vector: offsets of every layer and views into it.

A network with widths ``units = [n_features, h_1, ..., n_outputs]`` keeps all
its trainable parameters in one flat vector: every weight matrix (row-major,
``(fan_in, fan_out)``), then every bias — scikit-learn's L-BFGS packing
(``_pack`` in ``sklearn/neural_network/_multilayer_perceptron.py``) — then
each layer's extra parameters (batch-norm gamma and beta of the inputs, then
per hidden layer the PReLU slopes and batch-norm gamma and beta). Batch-norm
moving statistics live in a second vector.
"""

import numpy as np
from numba import njit

from skdeep.kernels import codes as C
from skdeep.kernels.cpu._jit import INNER, JIT


@njit(**JIT)
def layout(units, capacity, iopt):
    """Offsets of every layer, and the sizes of the parameter and statistics vectors.

    Returns ``(offsets, n_params, n_stats)``; ``offsets`` has one row per weight
    layer and a last row for the input, with the ``codes.L_*`` columns.
    Activation buffers give layer ``l`` ``capacity * units[l + 1]`` values.
    """
    n_layers = units.shape[0] - 1
    act = iopt[C.IO_ACTIVATION]
    bn = iopt[C.IO_BATCH_NORM]
    offsets = np.full((n_layers + 1, C.N_LAYOUT), -1, dtype=np.int64)
    start = 0
    for layer in range(n_layers):
        offsets[layer, C.L_W] = start
        start += units[layer] * units[layer + 1]
    a_start = 0
    for layer in range(n_layers):
        offsets[layer, C.L_B] = start
        offsets[layer, C.L_A] = a_start
        start += units[layer + 1]
        a_start += capacity * units[layer + 1]
    s_start = 0
    offsets[n_layers, C.L_X] = start
    if iopt[C.IO_INPUT_BATCH_NORM]:
        offsets[n_layers, C.L_G] = start
        offsets[n_layers, C.L_S] = s_start
        start += 2 * units[0]
        s_start += 2 * units[0]
    for layer in range(n_layers):
        offsets[layer, C.L_X] = start
        if layer == n_layers - 1:
            continue
        width = units[layer + 1]
        if act == C.PRELU:
            offsets[layer, C.L_P] = start
            start += width
        if bn != C.BN_NONE:
            offsets[layer, C.L_G] = start
            offsets[layer, C.L_S] = s_start
            start += 2 * width
            s_start += 2 * width
    return offsets, start, s_start


@njit(**INNER)
def _matrix(vector, units, offsets, layer):
    """Weight matrix ``layer`` of a parameter-shaped ``vector``, ``(units[layer], units[layer + 1])``."""
    start = offsets[layer, C.L_W]
    return vector[start : start + units[layer] * units[layer + 1]].reshape((units[layer], units[layer + 1]))


@njit(**INNER)
def _segment(vector, start, width):
    """``vector[start:start + width]``."""
    return vector[start : start + width]


@njit(**INNER)
def _rows(buffer, units, offsets, layer, n):
    """Layer ``layer``'s ``(n, units[layer + 1])`` rows of an activation-shaped buffer."""
    start = offsets[layer, C.L_A]
    return buffer[start : start + n * units[layer + 1]].reshape((n, units[layer + 1]))
