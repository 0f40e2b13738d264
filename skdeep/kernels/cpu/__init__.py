"""CPU kernels compiled with Numba: arrays in, arrays out, one module per concept.

======================  ==========================================================
module                  concept
======================  ==========================================================
:mod:`.layout`          the flat parameter vector: offsets and views
:mod:`.activations`     hidden activations, value and backward pass, and their registry
:mod:`.outputs`         output activations fused with their losses, and their registry
:mod:`.optimizers`      update rules, each with its slots, and their registry
:mod:`.batch_norm`      batch normalization and its backward pass
:mod:`.dropout`         dropout, alpha dropout and the counter-based mask hash
:mod:`.constraints`     gradient clipping, max-norm and weight penalties
:mod:`.linalg`          row gathers, CSR products, elementwise products, reductions
:mod:`.network`         the composition: forward, backward, epoch, predictions
:mod:`.subnormals`      subnormal numbers flushed to zero while the kernels run
======================  ==========================================================

Activations, losses, optimizers and options arrive as integer codes and small
option vectors (:mod:`skdeep.kernels.codes`), so each entry point compiles once
per dtype. The CPU backend (:mod:`skdeep.kernels.cpu_backend`) calls the entry
points re-exported here; the helpers the tests reach are re-exported too.
"""

from skdeep.kernels.cpu.activations import ACTIVATIONS, _activate, _activation_backward
from skdeep.kernels.cpu.batch_norm import _batch_norm, _batch_norm_backward
from skdeep.kernels.cpu.constraints import _clip_gradients, _max_norm
from skdeep.kernels.cpu.dropout import _dropout, _row_keys
from skdeep.kernels.cpu.layout import layout
from skdeep.kernels.cpu.linalg import _sparse_dot, _sparse_t_dot
from skdeep.kernels.cpu.network import PREDICT_CHUNK, _forward, loss_grad, predict, predict_mc, train_epoch
from skdeep.kernels.cpu.optimizers import OPTIMIZERS, _update
from skdeep.kernels.cpu.outputs import LOSSES, _output, _output_loss_delta

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "OPTIMIZERS",
    "PREDICT_CHUNK",
    "layout",
    "loss_grad",
    "predict",
    "predict_mc",
    "train_epoch",
]
