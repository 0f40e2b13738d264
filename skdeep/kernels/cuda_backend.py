"""The CUDA backend: the :class:`skdeep._backend.Backend` interface on an NVIDIA GPU.

Data, targets, parameters and optimizer slots are copied to the device once
per fit (:meth:`CUDABackend.to_device`); each epoch is a host loop over its
minibatches that launches, per batch, a gather of the batch's rows from the
shuffled order, for each layer the matrix product and one fused kernel, the
output's loss and delta, the backward products and fused derivatives, and one
update kernel for every parameter (:mod:`skdeep.kernels.cuda.kernels`). The
host reads the device once per epoch (its loss sum and batch count). The
parameters come back to the host after every epoch, so the fitted model holds
only NumPy arrays.

Sparse (CSR) training data goes to the device as its three CSR arrays and
stays sparse; per batch :func:`skdeep.kernels.cuda.sparse.gather_csr` writes
the batch's rows into the dense batch buffer, so the matrix is never densified
as a whole (but L-BFGS's one batch is all rows; prediction densifies chunks of
rows on the host). ``diagnostics=True`` accumulates its per-layer statistics
on the device (:mod:`skdeep.kernels.cuda.diagnostics`) and reads them back
once per epoch.

Batch normalization (before or after the activation, and on the input)
runs on the device too (:mod:`skdeep.kernels.cuda.batch_norm`): the moving
statistics live on the device during a fit and come back with the
parameters after every epoch. Every option of the CPU backend trains here.

Same seed, same model: initialization and batch order are drawn on the host
as for the CPU, and dropout masks and RReLU slopes use the CPU's
counter-based generator on the same row keys (:func:`row_hashes`,
:func:`csr_row_hashes`), so the two backends differ only by floating-point
rounding (summation order of the matrix products and reductions).
"""

import numpy as np

from skdeep import _backend
from skdeep._backend import Backend, EpochResult
from skdeep.kernels import codes as C
from skdeep.kernels.cuda import batch_norm as BN
from skdeep.kernels.cuda import diagnostics as D
from skdeep.kernels.cuda import kernels as K
from skdeep.kernels.cuda import reductions as R
from skdeep.kernels.cuda import sparse as S
from skdeep.kernels.cuda._shim import THREADS, cuda
from skdeep.kernels.cuda.matmul import Gemm

#: Rows per chunk of prediction on the device.
PREDICT_CHUNK = 8192

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def _mix(x):
    """SplitMix64's finalizer on a uint64 array (wrapping arithmetic), as the kernels'."""
    x = (x ^ (x >> np.uint64(30))) * _MIX_1
    x = (x ^ (x >> np.uint64(27))) * _MIX_2
    return x ^ (x >> np.uint64(31))


def row_hashes(X, chunk=4096):
    """Per-row hash of the nonzero values (float64 bit patterns) and their columns.

    The seed-independent part of the CPU's row keys
    (:func:`skdeep.kernels.cpu._row_keys`): ``key = mix(hash ^ seed)``.
    """
    n, d = X.shape
    out = np.empty(n, dtype=np.uint64)
    salt = (np.arange(1, d + 1, dtype=np.uint64) * _GOLDEN)[None, :]
    for start in range(0, n, chunk):
        rows = np.asarray(X[start : start + chunk], dtype=np.float64)
        hashed = _mix(rows.view(np.uint64) ^ salt)
        hashed[rows == 0.0] = 0
        out[start : start + chunk] = hashed.sum(axis=1, dtype=np.uint64)
    return out


def csr_row_hashes(values, indices, indptr, chunk=4096):
    """:func:`row_hashes` of a CSR matrix, from its stored entries, ``chunk`` rows at a time.

    The sum (mod 2^64) over row ``i``'s stored nonzeros ``p`` of
    ``mix(bits(values[p]) ^ (indices[p] + 1) * golden)``, as the CPU's
    ``_row_keys`` on CSR input; the matrix is never densified.
    """
    n = indptr.shape[0] - 1
    out = np.empty(n, dtype=np.uint64)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        first, last = int(indptr[start]), int(indptr[stop])
        stored = np.asarray(values[first:last], dtype=np.float64)
        columns = np.asarray(indices[first:last], dtype=np.uint64) + np.uint64(1)
        hashed = _mix(stored.view(np.uint64) ^ (columns * _GOLDEN))
        hashed[stored == 0.0] = 0
        running = np.zeros(last - first + 1, dtype=np.uint64)
        np.cumsum(hashed, dtype=np.uint64, out=running[1:])
        bounds = indptr[start : stop + 1] - first
        out[start:stop] = running[bounds[1:]] - running[bounds[:-1]]
    return out


def coefficients(opt, hp, learning_rates, momenta, step, dtype):
    """Per-batch scalars of update rule ``opt``, rows of ``kernels.N_COEF`` values, and Nadam's products.

    The step-dependent factors :func:`skdeep.kernels.cpu._update`'s rules
    compute before their loops (bias corrections, Nadam's momentum schedule,
    FTRL's terms), for batch ``b`` at step ``step + b + 1``. Returns
    ``(table, products)``; ``products[b]`` is Nadam's running product after
    batch ``b``.
    """
    n_batches = len(learning_rates)
    table = np.zeros((n_batches, K.N_COEF))
    products = np.empty(n_batches)
    product = hp[C.HP_PRODUCT]
    b2, eps = hp[C.HP_BETA_2], hp[C.HP_EPSILON]
    for b in range(n_batches):
        lr, mu, t = float(learning_rates[b]), float(momenta[b]), float(step + b + 1)
        if opt == C.NADAM:
            product *= mu * (1.0 - 0.5 * 0.96**t)
        products[b] = product
        if opt == C.SGD:
            nesterov = hp[C.HP_NESTEROV] != 0.0
            row = (lr, mu, mu if nesterov else 1.0, lr if nesterov else 0.0)
        elif opt in (C.ADAM, C.ADAMW):
            lr_t = lr * np.sqrt(1.0 - b2**t) / (1.0 - mu**t)
            row = (lr_t, lr * hp[C.HP_WEIGHT_DECAY], eps, mu, 1.0 - mu, b2, 1.0 - b2)
        elif opt == C.ADAGRAD:
            row = (lr, eps)
        elif opt == C.RMSPROP:
            row = (lr, mu, eps, b2, 1.0 - b2, float(hp[C.HP_CENTERED] != 0.0))
        elif opt == C.NADAM:
            u_t = mu * (1.0 - 0.5 * 0.96**t)
            u_next = mu * (1.0 - 0.5 * 0.96 ** (t + 1.0))
            row = (u_next / (1.0 - product * u_next), (1.0 - u_t) / (1.0 - product),
                   1.0 / (1.0 - b2**t), lr, eps, 1.0 - mu, 1.0 - b2)
        elif opt == C.ADAMAX:
            row = (lr / (1.0 - mu**t), b2, eps, 1.0 - mu)
        elif opt == C.FTRL:
            active = lr > 0.0
            power = -hp[C.HP_LR_POWER]
            row = (2.0 * hp[C.HP_L2_SHRINKAGE],
                   2.0 * (hp[C.HP_L2] + hp[C.HP_BETA] / (2.0 * lr)) if active else 0.0,
                   hp[C.HP_L1], 1.0 / lr if active else 0.0, power, float(active), float(power == 0.5))
        else:
            raise ValueError(f"unknown optimizer code {opt}")
        table[b, : len(row)] = row
    return table.astype(dtype), products


def _constants(network, alpha=0.0, l1=0.0):
    """The kernels' constants vector ``K`` in the network's dtype."""
    fopt = network.fopt
    values = np.zeros(K.N_K)
    values[K.K_ONE] = 1.0
    values[K.K_HALF] = 0.5
    values[K.K_ACT_ALPHA] = fopt[C.FO_ACT_ALPHA]
    values[K.K_SELU_SCALE] = C.SELU_LAMBDA
    values[K.K_SELU_ALPHA] = C.SELU_ALPHA
    values[K.K_INV_SQRT2] = 1.0 / np.sqrt(2.0)
    values[K.K_GELU_C] = 1.0 / np.sqrt(2.0 * np.pi)
    values[K.K_RRELU_MEAN] = 0.5 * (fopt[C.FO_RRELU_LOWER] + fopt[C.FO_RRELU_UPPER])
    values[K.K_CLIPVALUE] = fopt[C.FO_CLIPVALUE]
    values[K.K_ALPHA] = alpha
    values[K.K_L1] = l1
    values[K.K_MAX_NORM] = fopt[C.FO_MAX_NORM]
    values[K.K_BN_EPSILON] = fopt[C.FO_BN_EPSILON]
    values[K.K_BN_KEEP] = fopt[C.FO_BN_MOMENTUM]
    values[K.K_BN_NEW] = 1.0 - fopt[C.FO_BN_MOMENTUM]
    return values.astype(network.dtype)


def _dropout_table(network):
    """Per dropout rate: ``1 / q`` and alpha dropout's ``a``, ``b`` and dropped value (Klambauer et al., 2017)."""
    table = np.zeros((len(network.dropout), K.N_DROP))
    saturation = -C.SELU_LAMBDA * C.SELU_ALPHA
    for d, rate in enumerate(network.dropout):
        q = 1.0 - rate
        a = (q * (1.0 + rate * saturation * saturation)) ** -0.5
        b = -a * saturation * rate
        table[d] = (1.0 / q, a, b, a * saturation + b)
    return table.astype(network.dtype).ravel()


SUPPORTED_ACTIVATIONS = (
    C.IDENTITY, C.LOGISTIC, C.TANH, C.RELU, C.LEAKY_RELU, C.RRELU, C.PRELU, C.ELU, C.SELU, C.GELU, C.SWISH,
)
SUPPORTED_OUTPUTS = (C.SQUARED_ERROR, C.POISSON, C.BINARY_LOG_LOSS, C.MULTICLASS_LOG_LOSS, C.HIDDEN_ACTIVATION)


def check_network(network):
    """Raise ``ValueError`` for what the CUDA backend refuses (see the module's docstring)."""
    iopt = network.iopt
    if iopt[C.IO_ACTIVATION] not in SUPPORTED_ACTIVATIONS:
        raise ValueError(f"unknown activation code {iopt[C.IO_ACTIVATION]}")
    if iopt[C.IO_OUTPUT] not in SUPPORTED_OUTPUTS:
        raise ValueError(f"unknown output code {iopt[C.IO_OUTPUT]}")


class Workspace:
    """Device buffers for batches of up to ``capacity`` rows, allocated once per fit.

    Per hidden layer ``z`` (pre-activation), ``a`` (output after dropout),
    ``mask`` and RReLU ``slopes`` (empty when not needed); the output's ``z``;
    the gathered batch ``x``, its dropped-out copy ``x_in`` and mask; the rows'
    keys; two delta buffers; per-row losses and weights; the partial sums of
    the column and penalty reductions (:mod:`skdeep.kernels.cuda.reductions`);
    the gradient; the epoch ``state`` and batch ``scale``; the constants and
    dropout table; batch norm's buffers (:meth:`_batch_norm_buffers`).
    """

    def __init__(self, network, capacity):
        dtype, units = network.dtype, [int(u) for u in network.units]
        n_layers = len(units) - 1
        act = network.iopt[C.IO_ACTIVATION]

        def empty(size, kind=dtype):
            return cuda.device_array(max(int(size), 1), dtype=kind)

        self.capacity = capacity
        self.z = [empty(capacity * units[l + 1]) for l in range(n_layers)]
        self.a = [empty(capacity * units[l + 1]) for l in range(n_layers - 1)]
        self.mask = [empty(capacity * units[l + 1] if network.dropout[l + 1] > 0 else 1) for l in range(n_layers - 1)]
        self.slopes = [empty(capacity * units[l + 1] if act == C.RRELU else 1) for l in range(n_layers - 1)]
        self.x = empty(capacity * units[0])
        input_dropout = network.dropout[0] > 0
        input_bn = bool(network.iopt[C.IO_INPUT_BATCH_NORM])
        self.x_in = empty(capacity * units[0] if input_dropout or input_bn else 1)
        self.x_mask = empty(capacity * units[0] if input_dropout else 1)
        self._batch_norm_buffers(network, capacity, empty)
        self.keys = empty(capacity, np.uint64)
        self.deltas = [empty(capacity * max(units)), empty(capacity * max(units))]
        self.row_loss = empty(capacity, np.float64)
        self.row_w = empty(capacity, dtype)
        self.columns = empty(R.n_chunks(capacity) * max(units))
        self.penalty = cuda.device_array(2 * R.PENALTY_BLOCKS, dtype=np.float64)
        # zeros: the bias gradients of batch norm before the activation are never written
        self.grad = cuda.to_device(np.zeros(network.n_params, dtype=dtype))
        self.host_grad = np.empty(network.n_params, dtype=dtype)
        self.state = cuda.to_device(np.zeros(K.N_STATE))
        self.never_stopped = cuda.to_device(np.zeros(K.N_STATE))
        self.scale = empty(2)
        self.constants = cuda.to_device(_constants(network))
        self.drop_table = cuda.to_device(_dropout_table(network))
        self.factors = empty(5 * n_layers + 2)
        self.bounds = cuda.to_device(_tensor_bounds(network))
        self.everything = cuda.to_device(np.array([0, network.n_params], dtype=np.int64))
        self.arange = None
        self.weight_bounds = None

    def _batch_norm_buffers(self, network, capacity, empty):
        """Batch norm's ``xhat`` per hidden layer and of the input, ``istd`` (as the statistics), centre and sums."""
        units = [int(u) for u in network.units]
        hidden_bn = network.iopt[C.IO_BATCH_NORM] != C.BN_NONE
        self.xhat = [empty(capacity * units[l + 1] if hidden_bn else 1) for l in range(len(units) - 2)]
        self.x_hat = empty(capacity * units[0] if network.iopt[C.IO_INPUT_BATCH_NORM] else 1)
        self.istd = empty(network.n_stats)
        self.bn_center = empty(max(units))
        self.bn_sums = empty(2 * max(units) + 1)


def _tensor_bounds(network):
    """``[start, stop]`` of every parameter tensor (clipnorm's unit), flattened."""
    bounds = []
    for _, vector, start, shape in network.parts():
        if vector == 0:
            bounds += [int(start), int(start) + int(np.prod(shape))]
    return np.array(bounds, dtype=np.int64)


def _weight_bounds(network):
    """``[start, stop]`` of every hidden layer's weight matrix ``W_l`` (below the output layer), flattened."""
    units, offsets = network.units, network.offsets
    bounds = []
    for layer in range(len(units) - 2):
        start = int(offsets[layer, C.L_W])
        bounds += [start, start + int(units[layer]) * int(units[layer + 1])]
    return np.array(bounds, dtype=np.int64)


def _is_device(array):
    return hasattr(array, "copy_to_host")


class CUDABackend(Backend):
    """Numba-CUDA kernels on the GPU, one host loop per epoch (see the module's docstring)."""

    name = "cuda"

    def __init__(self):
        self.gemm = Gemm()

    def layout(self, units, iopt):
        return _backend.get("cpu").layout(units, iopt)

    def to_device(self, array):
        if array.size == 0:
            return array
        device = cuda.to_device(np.ascontiguousarray(array))
        device.host = array  # the row hashes of the training data are computed from it
        return device

    def copy(self, source, target):
        if source is target:
            return
        if _is_device(target):
            target.copy_to_device(source)
        elif _is_device(source):
            source.copy_to_host(target)
        else:
            np.copyto(target, source)

    def workspace(self, network, capacity, sparse):
        check_network(network)
        return Workspace(network, int(capacity))

    # -- training ----------------------------------------------------------------

    def train_epoch(self, network, data, targets, parameters, optimizer, workspace, epoch):
        ws, order = workspace, cuda.to_device(epoch.order)
        n_samples, batch_size = len(epoch.order), int(epoch.batch_size)
        table, products = coefficients(
            optimizer.code, optimizer.hyperparameters, epoch.learning_rates, epoch.momenta,
            epoch.step, network.dtype,
        )
        coef = cuda.to_device(table.ravel())
        ws.constants.copy_to_device(_constants(network, epoch.alpha, epoch.l1))
        ws.state.copy_to_device(np.zeros(K.N_STATE))
        hashes = self._hashes(network, data)
        first = int(epoch.first_trainable)
        clipping = any(network.fopt[c] > 0 for c in (C.FO_CLIPVALUE, C.FO_CLIPNORM, C.FO_GLOBAL_CLIPNORM))
        diag = cuda.to_device(epoch.diagnostics) if epoch.diagnostics.shape[0] else None
        for b, start in enumerate(range(0, n_samples, batch_size)):
            n = min(batch_size, n_samples - start)
            self._loss_grad(network, data, targets, parameters.params, ws, order, start, n,
                            C.TRAINING, int(epoch.seed), hashes, first, epoch.alpha, epoch.l1, ws.state,
                            stats=parameters.stats)
            if diag is not None:
                self._diagnose(network, parameters.params, ws, n, first, diag)
            final = False
            if clipping:
                self._clip(network, parameters.params, ws, first, int(optimizer.code))
                final = True
            w_first, b_first, x_first, n_coef, bias_end = self._regions(network, first)
            K.update[K.blocks(network.n_params), THREADS](
                parameters.params, ws.grad, optimizer.slots, network.n_params, n_coef, bias_end,
                w_first, b_first, x_first, int(optimizer.code), coef, b, final, ws.scale, ws.state,
                ws.constants,
            )
            if network.fopt[C.FO_MAX_NORM] > 0:
                units = network.units
                for layer in range(first, len(units) - 1):
                    K.max_norm[K.blocks(units[layer + 1]), THREADS](
                        parameters.params, int(network.offsets[layer, C.L_W]), int(units[layer]),
                        int(units[layer + 1]), ws.state, ws.constants,
                    )
        state = ws.state.copy_to_host()
        if diag is not None:
            diag.copy_to_host(epoch.diagnostics)
        done = int(state[K.S_N_BATCHES])
        if optimizer.code == C.NADAM and done:
            optimizer.hyperparameters[C.HP_PRODUCT] = products[done - 1]
        return EpochResult(float(state[K.S_LOSS_SUM]), done, int(epoch.step) + done)

    def loss_grad(self, network, data, targets, parameters, workspace, alpha, l1):
        ws = workspace
        n = data.n_samples
        if ws.arange is None:
            ws.arange = cuda.to_device(np.arange(n, dtype=np.int64))
        ws.constants.copy_to_device(_constants(network, alpha, l1))
        ws.state.copy_to_device(np.zeros(K.N_STATE))
        self._loss_grad(network, data, targets, parameters.params, ws, ws.arange, 0, n, C.TRAINING, 0,
                        None, 0, alpha, l1, ws.state, stats=parameters.stats)
        _, _, _, n_coef, bias_end = self._regions(network, 0)
        K.finalize_gradient[K.blocks(network.n_params), THREADS](
            parameters.params, ws.grad, network.n_params, n_coef, bias_end, 0, 0, bias_end, True, False,
            ws.scale, ws.never_stopped, ws.constants,
        )
        ws.grad.copy_to_host(ws.host_grad)
        return float(ws.state.copy_to_host()[K.S_LOSS]), ws.host_grad

    @staticmethod
    def _regions(network, first):
        offsets, n_layers = network.offsets, len(network.units) - 1
        x_first = offsets[first if first > 0 else n_layers, C.L_X]
        return (int(offsets[first, C.L_W]), int(offsets[first, C.L_B]), int(x_first),
                int(offsets[0, C.L_B]), int(offsets[n_layers, C.L_X]))

    def _hashes(self, network, data):
        """Device row hashes of the training data when the network draws masks, else ``None``."""
        random = network.dropout.any() or network.iopt[C.IO_ACTIVATION] == C.RRELU
        if not random:
            return None
        if data.sparse:
            return self._csr_hashes(data)
        dense = data.dense
        if getattr(dense, "hashes", None) is None:
            dense.hashes = cuda.to_device(row_hashes(dense.host))
        return dense.hashes

    @staticmethod
    def _csr_hashes(data):
        """Device row hashes of CSR training data (:func:`csr_row_hashes`), kept on its ``indptr``."""
        indptr = data.indptr
        if getattr(indptr, "hashes", None) is None:
            host = (getattr(a, "host", a) for a in (data.values, data.indices, indptr))
            indptr.hashes = cuda.to_device(csr_row_hashes(*host))
        return indptr.hashes

    @staticmethod
    def _gather(X, order, start, n, ws, seed, hashes):
        """Rows ``order[start:start + n]`` of ``X`` into ``ws.x`` and, with ``hashes``, their keys.

        ``X`` is a dense device matrix, or the :class:`~skdeep._backend.Data`
        of CSR training data (gathered by :func:`skdeep.kernels.cuda.sparse.gather_csr`).
        """
        with_keys = hashes is not None
        hashes = hashes if with_keys else ws.keys
        if isinstance(X, _backend.Data):
            d = int(X.dense.shape[1])
            # an all-zero matrix stores no entries: its empty arrays stayed on the host
            values, indices = (
                a if _is_device(a) else cuda.device_array(1, a.dtype) for a in (X.values, X.indices)
            )
            S.gather_csr[max(n, 1), THREADS](
                values, indices, X.indptr, order, start, n, d, ws.x, hashes, seed, ws.keys, with_keys, ws.constants
            )
        else:
            d = int(X.shape[1])
            K.gather[K.blocks(n * d), THREADS](X, order, start, n, ws.x, hashes, seed, ws.keys, with_keys)

    def _diagnose(self, network, params, ws, n, first, diag):
        """Add one batch's diagnostics to the device array ``diag`` (:mod:`skdeep.kernels.cuda.diagnostics`).

        Runs after the batch's backward pass and before its update: ``ws.z``
        holds the hidden layers' ``a W + b`` and ``ws.grad`` the raw gradient.
        """
        units, offsets = network.units, network.offsets
        act = int(network.iopt[C.IO_ACTIVATION])
        n_hidden = len(units) - 2
        for layer in range(n_hidden):
            width = int(units[layer + 1])
            D.activation_stats[K.blocks(width), THREADS](
                ws.z[layer], ws.slopes[layer], params, int(offsets[layer, C.L_P]), n, width, act, diag, layer,
                int(offsets[layer, C.L_B] - offsets[0, C.L_B]), ws.constants, ws.state,
            )
        if first < n_hidden:
            if ws.weight_bounds is None:
                ws.weight_bounds = cuda.to_device(_weight_bounds(network))
            D.gradient_norms[n_hidden - first, THREADS](ws.grad, ws.weight_bounds, first, diag, ws.state)

    def _forward(self, network, X, params, ws, order, start, n, mode, seed, hashes,
                 stats=None, sw=None, first=0, state=None):
        """Forward pass of rows ``order[start:start + n]`` of ``X`` to the output layer's ``a W``.

        Batch norm uses the moving statistics ``stats``, and in training the
        sample weights ``sw`` of the rows; layers below ``first`` normalize
        in inference mode; ``state``'s stop flag freezes the statistics.
        """
        units, offsets, dropout = network.units, network.offsets, network.dropout
        n_layers = len(units) - 1
        act = int(network.iopt[C.IO_ACTIVATION])
        alpha_dropout = bool(network.iopt[C.IO_ALPHA_DROPOUT])
        d = int(units[0])
        self._gather(X, order, start, n, ws, seed, hashes)
        source = ws.x
        if network.iopt[C.IO_INPUT_BATCH_NORM]:
            source = self._input_batch_norm(network, params, ws, order, start, n, mode, stats, sw, first, state)
        elif mode != C.INFERENCE and dropout[0] > 0:
            K.input_dropout[K.blocks(n * d), THREADS](
                ws.x, ws.x_in, ws.x_mask, ws.keys, ws.constants, ws.drop_table, n, d, float(dropout[0]),
                alpha_dropout,
            )
            source = ws.x_in
        lower, upper = float(network.fopt[C.FO_RRELU_LOWER]), float(network.fopt[C.FO_RRELU_UPPER])
        for layer in range(n_layers):
            fan_in, fan_out = int(units[layer]), int(units[layer + 1])
            self.gemm(source, 0, params, int(offsets[layer, C.L_W]), ws.z[layer], 0, n, fan_out, fan_in, False, False)
            if layer == n_layers - 1:
                break
            rate = float(dropout[layer + 1]) if mode != C.INFERENCE else 0.0
            if network.iopt[C.IO_BATCH_NORM] != C.BN_NONE:
                self._hidden_batch_norm(network, layer, params, ws, order, start, n, mode, rate, stats, sw,
                                        first, state)
                source = ws.a[layer]
                continue
            K.hidden_forward[K.blocks(n * fan_out), THREADS](
                ws.z[layer], ws.a[layer], ws.mask[layer], ws.slopes[layer], params,
                int(offsets[layer, C.L_B]), int(offsets[layer, C.L_P]), ws.keys, ws.constants, ws.drop_table,
                n, fan_out, act, int(mode), rate, alpha_dropout, layer, n_layers, lower, upper,
            )
            source = ws.a[layer]

    def _loss_grad(self, network, data, targets, params, ws, order, start, n, mode, seed, hashes,
                   first, alpha, l1, state, stats=None):
        """Forward, loss and backward of one batch: the raw gradient of layers ``first`` and above in ``ws.grad``."""
        units, offsets, dropout = network.units, network.offsets, network.dropout
        last = len(units) - 2
        act = int(network.iopt[C.IO_ACTIVATION])
        bn = network.iopt[C.IO_BATCH_NORM]
        input_bn = bool(network.iopt[C.IO_INPUT_BATCH_NORM])
        sw = targets.sample_weight
        self._forward(network, data if data.sparse else data.dense, params, ws, order, start, n, mode, seed,
                      hashes, stats=stats, sw=sw, first=first, state=state)
        k = int(units[-1])
        delta, spare = ws.deltas
        K.output_loss_delta[K.blocks(n), THREADS](
            ws.z[last], params, int(offsets[last, C.L_B]), targets.Y, targets.sample_weight, order, start, n, k,
            int(network.iopt[C.IO_OUTPUT]), float(network.fopt[C.FO_LOG_EPS]), delta, ws.row_loss, ws.row_w,
            ws.constants,
        )
        if alpha > 0 or l1 > 0:
            R.penalty_partials[R.PENALTY_BLOCKS, THREADS](params, int(offsets[0, C.L_B]), ws.penalty)
        K.loss_reduce[1, THREADS](
            ws.row_loss, ws.row_w, n, ws.penalty, R.PENALTY_BLOCKS, float(alpha), float(l1), state, ws.scale
        )
        for layer in range(last, first - 1, -1):
            fan_in, fan_out = int(units[layer]), int(units[layer + 1])
            if layer > 0:
                below_a = ws.a[layer - 1]
            else:
                below_a = ws.x_in if dropout[0] > 0 or input_bn else ws.x
            self.gemm(below_a, 0, delta, 0, ws.grad, int(offsets[layer, C.L_W]), fan_in, fan_out, n, True, False)
            if layer == last or bn != C.BN_BEFORE:  # else the bias is unused: its gradient stays 0
                self._column_sums(delta, n, fan_out, ws, int(offsets[layer, C.L_B]))
            if layer == first and not (layer == 0 and input_bn):
                break
            self.gemm(delta, 0, params, int(offsets[layer, C.L_W]), spare, 0, n, fan_in, fan_out, False, True)
            if layer == 0:
                n_layers = len(units) - 1
                self._batch_norm_backward(spare, ws.x_mask, ws.x_hat, fan_in, bool(dropout[0] > 0), n_layers,
                                          network, params, ws, sw, order, start, n)
                break
            hidden = layer - 1
            masked = bool(dropout[layer] > 0)
            if bn == C.BN_AFTER:  # dropout, batch norm, then the activation, backwards
                self._batch_norm_backward(spare, ws.mask[hidden], ws.xhat[hidden], fan_in, masked, hidden,
                                          network, params, ws, sw, order, start, n)
                masked = False
            if act == C.PRELU:
                K.prelu_backward[K.blocks(fan_in), THREADS](
                    spare, ws.z[hidden], ws.mask[hidden], params, int(offsets[hidden, C.L_P]), ws.grad, n, fan_in,
                    masked, ws.constants,
                )
            else:
                K.activation_backward[K.blocks(n * fan_in), THREADS](
                    spare, ws.z[hidden], ws.mask[hidden], ws.slopes[hidden], n, fan_in, act, masked, ws.constants
                )
            if bn == C.BN_BEFORE:
                self._batch_norm_backward(spare, ws.mask[hidden], ws.xhat[hidden], fan_in, False, hidden,
                                          network, params, ws, sw, order, start, n)
            delta, spare = spare, delta

    @staticmethod
    def _column_sums(D, n, k, ws, out_offset):
        """``ws.grad[out_offset + j] = sum_r D[r, j]`` (a bias gradient), in two passes over row chunks."""
        chunks = R.n_chunks(n)
        R.column_partials[(K.blocks(k), chunks), THREADS](D, n, k, ws.columns, ws.constants)
        R.column_totals[K.blocks(k), THREADS](ws.columns, chunks, k, ws.grad, out_offset, ws.constants)

    # -- batch normalization ------------------------------------------------------

    def _input_batch_norm(self, network, params, ws, order, start, n, mode, stats, sw, first, state):
        """Batch norm of the gathered input, then input dropout: ``ws.x`` -> ``ws.x_in`` (returned).

        Training mode only when no layer is frozen, as on the CPU.
        """
        d, n_layers = int(network.units[0]), len(network.units) - 1
        g, s = int(network.offsets[n_layers, C.L_G]), int(network.offsets[n_layers, C.L_S])
        BN.batch_norm_statistics[K.blocks(d), THREADS](
            ws.x, n, d, sw, order, start, stats, s, ws.istd, ws.bn_center, mode == C.TRAINING and first == 0,
            state, ws.constants,
        )
        rate = float(network.dropout[0]) if mode != C.INFERENCE else 0.0
        BN.batch_norm_forward[K.blocks(n * d), THREADS](
            ws.x, ws.x_hat, ws.x_in, ws.x_in, ws.x_mask, ws.x_mask, ws.bn_center, ws.istd, s, params, g, -1,
            ws.keys, ws.constants, ws.drop_table, n, d, C.IDENTITY, int(mode), rate,
            bool(network.iopt[C.IO_ALPHA_DROPOUT]), 0, 0, 0.0, 0.0,
        )
        return ws.x_in

    def _hidden_batch_norm(self, network, layer, params, ws, order, start, n, mode, rate, stats, sw, first, state):
        """Hidden layer ``layer`` after its product, with batch norm before or after the activation.

        Before: ``a = dropout(act(BN(z)))`` (no bias), ``ws.z`` holds ``BN(z)``;
        after: ``a = dropout(BN(act(z + b)))``. Inference mode below ``first``.
        """
        units, offsets = network.units, network.offsets
        n_layers, k = len(units) - 1, int(units[layer + 1])
        g, s, p = (int(offsets[layer, c]) for c in (C.L_G, C.L_S, C.L_P))
        act = int(network.iopt[C.IO_ACTIVATION])
        alpha_dropout = bool(network.iopt[C.IO_ALPHA_DROPOUT])
        lower, upper = float(network.fopt[C.FO_RRELU_LOWER]), float(network.fopt[C.FO_RRELU_UPPER])
        z, a, mask, slopes = ws.z[layer], ws.a[layer], ws.mask[layer], ws.slopes[layer]
        training = mode == C.TRAINING and layer >= first
        if network.iopt[C.IO_BATCH_NORM] == C.BN_AFTER:
            K.hidden_forward[K.blocks(n * k), THREADS](
                z, a, mask, slopes, params, int(offsets[layer, C.L_B]), p, ws.keys, ws.constants, ws.drop_table,
                n, k, act, int(mode), 0.0, alpha_dropout, layer, n_layers, lower, upper,
            )
            source, normalized, act = a, a, C.IDENTITY
        else:
            source, normalized = z, z
        BN.batch_norm_statistics[K.blocks(k), THREADS](
            source, n, k, sw, order, start, stats, s, ws.istd, ws.bn_center, training, state, ws.constants
        )
        BN.batch_norm_forward[K.blocks(n * k), THREADS](
            source, ws.xhat[layer], normalized, a, mask, slopes, ws.bn_center, ws.istd, s, params, g, p,
            ws.keys, ws.constants, ws.drop_table, n, k, act, int(mode), rate, alpha_dropout, layer + 1,
            2 * n_layers + layer, lower, upper,
        )

    def _batch_norm_backward(self, D, M, H, k, masked, layer, network, params, ws, sw, order, start, n):
        """``D`` (times ``M`` when ``masked``) back through layer ``layer``'s training-mode batch norm, in place.

        ``layer`` is the offsets' row: a hidden layer, or ``n_layers`` for the
        input; gamma's and beta's gradients go to ``ws.grad``.
        """
        g, s = int(network.offsets[layer, C.L_G]), int(network.offsets[layer, C.L_S])
        BN.batch_norm_backward_sums[K.blocks(k), THREADS](
            D, M, H, n, k, masked, sw, order, start, ws.grad, g, ws.bn_sums, ws.constants
        )
        BN.batch_norm_backward[K.blocks(n * k), THREADS](
            D, M, H, n, k, masked, sw, order, start, params, g, ws.istd, s, ws.bn_sums
        )

    def _clip(self, network, params, ws, first, opt):
        """Finalize and clip the gradient (Pascanu et al., 2013; Keras' semantics, as the CPU)."""
        fopt = network.fopt
        w_first, b_first, x_first, n_coef, bias_end = self._regions(network, first)
        K.finalize_gradient[K.blocks(network.n_params), THREADS](
            params, ws.grad, network.n_params, n_coef, bias_end, w_first, b_first, x_first, opt != C.FTRL,
            bool(fopt[C.FO_CLIPVALUE] > 0), ws.scale, ws.state, ws.constants,
        )
        for clip, bounds in ((fopt[C.FO_CLIPNORM], ws.bounds), (fopt[C.FO_GLOBAL_CLIPNORM], ws.everything)):
            if clip > 0:
                n_tensors = bounds.shape[0] // 2
                K.segment_factors[n_tensors, THREADS](ws.grad, bounds, float(clip), ws.factors, ws.state)
                K.segment_scale[(K.blocks(min(network.n_params, 64 * THREADS)), n_tensors), THREADS](
                    ws.grad, bounds, ws.factors, ws.constants
                )

    # -- inference -----------------------------------------------------------------

    def predict(self, network, parameters, data):
        return self._predict(network, parameters, data, 1, 0)

    def predict_mc(self, network, parameters, data, n_passes, seed):
        return self._predict(network, parameters, data, int(n_passes), int(seed), mc=True)

    def _predict(self, network, parameters, data, n_passes, seed, mc=False):
        """Output of every row (``mc``: mean and std over MC-dropout passes), in device chunks.

        Batch norm normalizes with the moving statistics (also in MC dropout).
        """
        check_network(network)
        values = data.values if data.sparse else data.dense
        if not np.isfinite(values).all():
            return None
        n_samples = data.n_samples
        capacity = max(1, min(n_samples, PREDICT_CHUNK))
        ws = Workspace(network, capacity)
        params = cuda.to_device(parameters.params)
        stats = cuda.to_device(parameters.stats) if parameters.stats.size else parameters.stats
        order = cuda.to_device(np.arange(capacity, dtype=np.int64))
        units, offsets = network.units, network.offsets
        last, k = len(units) - 2, int(units[-1])
        code = int(network.iopt[C.IO_OUTPUT])
        dtype = network.dtype
        if mc:
            total, total_sq = np.zeros((n_samples, k)), np.zeros((n_samples, k))
        else:
            out = np.empty((n_samples, k), dtype=dtype)
        matrix = _csr(data) if data.sparse else data.dense
        for start in range(0, n_samples, capacity):
            stop = min(start + capacity, n_samples)
            rows = matrix[start:stop]
            rows = np.ascontiguousarray(rows.toarray() if data.sparse else rows, dtype=dtype)
            X = cuda.to_device(rows)
            hashes = cuda.to_device(row_hashes(rows)) if mc else None
            for pass_ in range(n_passes):
                self._forward(network, X, params, ws, order, 0, stop - start,
                              C.MC_DROPOUT if mc else C.INFERENCE, seed + 7919 * pass_, hashes,
                              stats=stats, sw=ws.row_w, state=ws.never_stopped)
                K.output_activate[K.blocks(stop - start), THREADS](
                    ws.z[last], params, int(offsets[last, C.L_B]), stop - start, k, code,
                    int(network.iopt[C.IO_ACTIVATION]), ws.constants,
                )
                Z = ws.z[last][: (stop - start) * k].copy_to_host().reshape(stop - start, k)
                if mc:
                    total[start:stop] += Z
                    total_sq[start:stop] += Z * Z
                else:
                    out[start:stop] = Z
        if not mc:
            return out
        mean = total / n_passes
        std = np.sqrt(np.maximum(total_sq / n_passes - mean * mean, 0.0))
        return mean.astype(dtype), std.astype(dtype)


def _csr(data):
    import scipy.sparse as sp

    n = data.indptr.shape[0] - 1
    return sp.csr_matrix((data.values, data.indices, data.indptr), shape=(n, data.dense.shape[1]))


BACKEND = CUDABackend()
