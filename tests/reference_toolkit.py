"""Readable NumPy references for the chapter's toolkit (issue 3).

Slow, plain float64 restatements of what :mod:`skdeep.kernels.cpu` computes for
the activations, batch normalization, dropout, the network's forward pass and
loss in its three modes, gradient clipping, max-norm and the initializers. Each
formula cites where it comes from; ``chapter`` is
``../shared/reference/training-deep-nets.md`` and ``tables`` is
``../shared/reference/chapter-tables.md``. Nothing here works in place.

This module is self-contained on purpose (it does not import ``reference.py``,
whose kernel conventions are being ported separately).

Parameter layout (``skdeep/kernels/cpu.py``, module docstring and ``layout``):
every weight matrix ``(fan_in, fan_out)`` row-major, then every bias, then the
input batch norm's gamma and beta, then per hidden layer its PReLU slopes and
its batch norm's gamma and beta. The statistics vector holds the moving mean
then the moving variance of each batch-norm layer, the input one first.
"""

import itertools
import math

import numpy as np
from scipy.special import erf, expit, xlogy

#: Klambauer et al. (2017), "Self-Normalizing Neural Networks", eq. 2 and the
#: constants below it (lambda_01, alpha_01).
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717

# ---------------------------------------------------------------------------
# Hidden activations f(z) and their derivatives f'(z)
# ---------------------------------------------------------------------------


def activate(name, z, *, alpha=0.0, slopes=None, prelu=None):
    """``f(z)`` for a hidden activation ``name``.

    * identity ``z``; logistic ``1 / (1 + e^-z)``; tanh; relu ``max(z, 0)``.
    * leaky_relu ``z if z >= 0 else alpha z`` (Maas et al., 2013; chapter:
      ``LeakyReLU_alpha(z) = max(alpha z, z)``).
    * rrelu: as leaky, with a per-element slope ``slopes`` (drawn in
      ``[lower, upper]`` while training, their mean at inference; Xu et al., 2015).
    * prelu: as leaky, with a learned slope ``prelu[j]`` per unit (He et al., 2015).
    * elu ``z if z > 0 else alpha (e^z - 1)`` (Clevert et al., 2016; chapter's ELU).
    * selu ``lambda * elu_alpha01(z)`` (Klambauer et al., 2017, eq. 2).
    * gelu ``z Phi(z) = z (1 + erf(z / sqrt 2)) / 2`` (Hendrycks & Gimpel, 2016, exact form).
    * swish ``z sigmoid(z)`` (Ramachandran et al., 2017, beta = 1).
    """
    z = np.asarray(z, dtype=np.float64)
    neg = z < 0
    if name == "identity":
        return z.copy()
    if name == "logistic":
        return expit(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(neg, alpha * z, z)
    if name == "rrelu":
        return np.where(neg, np.asarray(slopes, dtype=np.float64) * z, z)
    if name == "prelu":
        return np.where(neg, np.asarray(prelu, dtype=np.float64)[None, :] * z, z)
    if name == "elu":
        return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))
    if name == "selu":
        return SELU_LAMBDA * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0.0)))
    if name == "gelu":
        return 0.5 * z * (1.0 + erf(z / math.sqrt(2.0)))
    if name == "swish":
        return z * expit(z)
    raise ValueError(name)


def derivative(name, z, *, alpha=0.0, slopes=None, prelu=None):
    """``f'(z)`` (at the kinks the kernels' one-sided choice: ReLU 0 at ``z = 0``, the leaky family 1).

    * logistic ``s (1 - s)``; tanh ``1 - tanh^2``.
    * elu ``alpha e^z`` for ``z <= 0``; selu ``lambda alpha01 e^z``.
    * gelu ``Phi(z) + z phi(z)``, ``phi`` the standard normal density.
    * swish ``s + z s (1 - s) = s (1 + z (1 - s))``, ``s = sigmoid(z)``.
    """
    z = np.asarray(z, dtype=np.float64)
    neg = z < 0
    if name == "identity":
        return np.ones_like(z)
    if name == "logistic":
        s = expit(z)
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(neg, alpha, 1.0)
    if name == "rrelu":
        return np.where(neg, np.asarray(slopes, dtype=np.float64), 1.0)
    if name == "prelu":
        return np.where(neg, np.asarray(prelu, dtype=np.float64)[None, :], 1.0)
    if name == "elu":
        return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0.0)))
    if name == "selu":
        return SELU_LAMBDA * np.where(z > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(z, 0.0)))
    if name == "gelu":
        pdf = np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)
        return 0.5 * (1.0 + erf(z / math.sqrt(2.0))) + z * pdf
    if name == "swish":
        s = expit(z)
        return s * (1.0 + z * (1.0 - s))
    raise ValueError(name)


def prelu_slope_gradient(z, upstream):
    """``dL/d alpha_j = sum_r upstream[r, j] * min(z[r, j], 0)`` (He et al., 2015, eq. 2-4)."""
    z = np.asarray(z, dtype=np.float64)
    return np.sum(np.asarray(upstream, dtype=np.float64) * np.where(z < 0, z, 0.0), axis=0)


# ---------------------------------------------------------------------------
# Batch normalization (Ioffe & Szegedy, 2015; chapter, "Batch normalization")
# ---------------------------------------------------------------------------


def batch_norm_train(x, gamma, beta, moving_mean, moving_var, momentum, eps, weights=None):
    """Training-mode batch norm and the moving-statistics update.

    Chapter: ``mu_B = mean_i x_i``, ``sigma_B^2 = mean_i (x_i - mu_B)^2`` (biased),
    ``xhat = (x - mu_B) / sqrt(sigma_B^2 + eps)``, ``z = gamma xhat + beta``;
    moving averages ``v <- momentum v + (1 - momentum) v_batch`` (Keras'
    convention, the chapter's "Hyperparameters for BN"). With sample
    ``weights`` the means are weighted, ``sum_i w_i x_i / sum_i w_i`` (a
    weight of 2 counts a row twice, as repeating it would).

    Returns ``(z, xhat, istd, new_moving_mean, new_moving_var)``.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.ones(x.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    mu = np.average(x, axis=0, weights=w)
    var = np.average((x - mu) ** 2, axis=0, weights=w)
    istd = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu) * istd
    z = gamma * xhat + beta
    new_mean = momentum * np.asarray(moving_mean, dtype=np.float64) + (1.0 - momentum) * mu
    new_var = momentum * np.asarray(moving_var, dtype=np.float64) + (1.0 - momentum) * var
    return z, xhat, istd, new_mean, new_var


def batch_norm_inference(x, gamma, beta, moving_mean, moving_var, eps):
    """Inference-mode batch norm: ``gamma (x - mu) / sqrt(var + eps) + beta`` with the moving statistics.

    Ioffe & Szegedy (2015), Algorithm 2, step 10; the chapter: "mu and sigma
    are estimated during training but used after training".
    """
    x = np.asarray(x, dtype=np.float64)
    return gamma * (x - moving_mean) / np.sqrt(np.asarray(moving_var, dtype=np.float64) + eps) + beta


def batch_norm_backward(dz, xhat, gamma, istd, weights=None):
    """Backward pass of training-mode batch norm (Ioffe & Szegedy, 2015, section 3).

    ``dgamma = sum_i dz_i xhat_i``; ``dbeta = sum_i dz_i``;
    ``dx_i = gamma istd (dz_i - (w_i / W) (dbeta + xhat_i dgamma))`` with
    ``W = sum_i w_i`` (the chain rule through the weighted ``mu_B`` and
    ``sigma_B^2``; unweighted, ``w_i / W = 1 / m``, the paper's formula).

    Returns ``(dx, dgamma, dbeta)``.
    """
    dz = np.asarray(dz, dtype=np.float64)
    w = np.ones(dz.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    share = (w / w.sum())[:, None]
    dgamma = np.sum(dz * xhat, axis=0)
    dbeta = np.sum(dz, axis=0)
    dx = gamma * istd * (dz - share * (dbeta + xhat * dgamma))
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------


def inverted_dropout(a, keep, rate):
    """``a * keep / (1 - rate)``: inverted dropout (Srivastava et al., 2014; the chapter:
    "divide each neuron's output by the keep probability during training")."""
    return np.asarray(a, dtype=np.float64) * np.asarray(keep, dtype=np.float64) / (1.0 - rate)


def alpha_dropout_constants(rate):
    """``(a, b, saturation)`` of alpha dropout (Klambauer et al., 2017, section "New Dropout Technique").

    Dropped units are set to ``alpha' = -lambda alpha01``, then ``a x + b`` with
    ``q = 1 - rate``, ``a = (q + alpha'^2 q (1 - q))^-1/2``, ``b = -a (1 - q) alpha'``
    restores zero mean and unit variance.
    """
    q = 1.0 - rate
    saturation = -SELU_LAMBDA * SELU_ALPHA
    a = (q + saturation**2 * q * (1.0 - q)) ** -0.5
    b = -a * (1.0 - q) * saturation
    return a, b, saturation


def alpha_dropout(a_in, keep, rate):
    """Alpha dropout: ``a (x if kept else alpha') + b`` (see :func:`alpha_dropout_constants`)."""
    a, b, saturation = alpha_dropout_constants(rate)
    return a * np.where(keep, np.asarray(a_in, dtype=np.float64), saturation) + b


# ---------------------------------------------------------------------------
# Network parameters
# ---------------------------------------------------------------------------


def unpack(params, stats, units, *, prelu, batch_norm, input_batch_norm):
    """Split the flat vectors (layout in the module docstring) into named lists.

    Returns a dict with ``coefs``, ``intercepts``, ``prelu`` (per hidden layer),
    ``gamma``, ``beta``, ``moving_mean``, ``moving_var`` (input first when
    ``input_batch_norm``, then each hidden layer when ``batch_norm``), all float64 copies.
    """
    params = np.asarray(params, dtype=np.float64)
    stats = np.asarray(stats, dtype=np.float64)
    units = [int(u) for u in units]
    hidden = units[1:-1]
    out = {k: [] for k in ("coefs", "intercepts", "prelu", "gamma", "beta", "moving_mean", "moving_var")}
    p = 0

    def take(n):
        nonlocal p
        p += n
        return params[p - n : p].copy()

    for fan_in, fan_out in itertools.pairwise(units):
        out["coefs"].append(take(fan_in * fan_out).reshape(fan_in, fan_out))
    for fan_out in units[1:]:
        out["intercepts"].append(take(fan_out))
    widths = [units[0]] if input_batch_norm else []
    if input_batch_norm:
        out["gamma"].append(take(units[0]))
        out["beta"].append(take(units[0]))
    for width in hidden:
        if prelu:
            out["prelu"].append(take(width))
        if batch_norm:
            out["gamma"].append(take(width))
            out["beta"].append(take(width))
            widths.append(width)
    assert p == params.size, "parameter vector does not match the layout"
    s = 0
    for width in widths:
        out["moving_mean"].append(stats[s : s + width].copy())
        out["moving_var"].append(stats[s + width : s + 2 * width].copy())
        s += 2 * width
    assert s == stats.size, "statistics vector does not match the layout"
    return out


def n_parameters(units, *, prelu, batch_norm, input_batch_norm):
    """``(n_params, n_stats)`` of the layout in the module docstring."""
    units = [int(u) for u in units]
    hidden = sum(units[1:-1])
    n = sum(a * b for a, b in itertools.pairwise(units)) + sum(units[1:])
    n_stats = 0
    if input_batch_norm:
        n += 2 * units[0]
        n_stats += 2 * units[0]
    if prelu:
        n += hidden
    if batch_norm:
        n += 2 * hidden
        n_stats += 2 * hidden
    return n, n_stats


# ---------------------------------------------------------------------------
# Output activations and losses (the kernels' conventions, scikit-learn's)
# ---------------------------------------------------------------------------


def softmax(z):
    """Row-wise ``exp(z_j - max z) / sum_k exp(z_k - max z)``."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


OUTPUTS = {
    "squared_error": lambda z: z,
    "poisson": np.exp,
    "binary_log_loss": expit,
    "multiclass_log_loss": softmax,
}


def loss(output, y, p, sw, eps):
    """Weighted mean loss ``sum_i w_i l_i / sum_i w_i`` (scikit-learn's ``LOSS_FUNCTIONS``).

    ``l_i``: half the squared error *averaged* over outputs; half the Poisson
    deviance ``y log(y / p) - y + p`` summed over outputs (McCullagh & Nelder,
    1989, table 2.1); binary cross-entropy summed over outputs; categorical
    cross-entropy, probabilities clipped to ``[eps, 1 - eps]``.
    """
    y = np.asarray(y, dtype=np.float64)
    if output == "squared_error":
        rows = 0.5 * np.mean((y - p) ** 2, axis=1)
    elif output == "poisson":
        rows = np.sum(xlogy(y, y / p) - y + p, axis=1)
    else:
        q = np.clip(p, eps, 1.0 - eps)
        rows = -np.sum(xlogy(y, q), axis=1)
        if output == "binary_log_loss":
            rows -= np.sum(xlogy(1.0 - y, 1.0 - q), axis=1)
    return float(np.sum(sw * rows) / np.sum(sw))


# ---------------------------------------------------------------------------
# Forward pass in the three modes
# ---------------------------------------------------------------------------


def forward(X, parts, *, activation, output, mode, batch_norm=None, input_batch_norm=False,
            alpha=0.0, rrelu=(0.0, 0.0), slopes=None, dropout=None, keeps=None,
            alpha_dropout_on=False, momentum=0.99, eps=1e-3, weights=None):
    """The network's output, and what happened inside, in one of three modes.

    Hidden layer ``l``: ``z = a W + b``; ``a' = f(z)``; batch norm ``"before"``
    replaces the bias: ``a' = f(BN(a W))`` (chapter: "you can remove the bias
    term ... use_bias=False"); ``"after"``: ``a' = BN(f(z))``; then dropout on
    ``a'`` (rate ``dropout[l + 1]``, ``dropout[0]`` on the inputs, after the
    input batch norm). Modes:

    * ``"training"``: batch statistics (weighted by the sample ``weights``;
      moving ones updated), dropout with the
      given keep masks ``keeps[l]`` (boolean, ``None`` where the rate is 0),
      RReLU with the given ``slopes[l]``.
    * ``"inference"``: moving statistics, no dropout, RReLU slope
      ``(lower + upper) / 2``.
    * ``"mc_dropout"``: moving statistics *and* dropout (the chapter's
      ``MCDropout``: BN stays in inference mode), RReLU's mean slope.

    Returns ``(p, info)``; ``info`` holds per hidden layer the activation's
    input ``z`` and output ``a`` (before batch norm after it and dropout), and
    the updated moving statistics.
    """
    n_layers = len(parts["coefs"])
    dropout = np.zeros(n_layers) if dropout is None else np.asarray(dropout, dtype=np.float64)
    training = mode == "training"
    dropping = mode != "inference"
    bn_index = 0
    info = {"z": [], "a": [], "moving_mean": [], "moving_var": []}

    def bn(x):
        nonlocal bn_index
        g, b = parts["gamma"][bn_index], parts["beta"][bn_index]
        mm, mv = parts["moving_mean"][bn_index], parts["moving_var"][bn_index]
        bn_index += 1
        if training:
            out, _, _, new_mean, new_var = batch_norm_train(x, g, b, mm, mv, momentum, eps, weights)
            info["moving_mean"].append(new_mean)
            info["moving_var"].append(new_var)
            return out
        return batch_norm_inference(x, g, b, mm, mv, eps)

    def drop(x, index):
        if not dropping or dropout[index] == 0.0:
            return x
        keep = keeps[index]
        if alpha_dropout_on:
            return alpha_dropout(x, keep, dropout[index])
        return inverted_dropout(x, keep, dropout[index])

    a = np.asarray(X, dtype=np.float64)
    if input_batch_norm:
        a = bn(a)
    a = drop(a, 0)
    for layer in range(n_layers - 1):
        W, b = parts["coefs"][layer], parts["intercepts"][layer]
        z = a @ W if batch_norm == "before" else a @ W + b
        if batch_norm == "before":
            z = bn(z)
        kwargs = {"alpha": alpha}
        if activation == "rrelu":
            kwargs["slopes"] = slopes[layer] if training else np.full(z.shape, 0.5 * (rrelu[0] + rrelu[1]))
        if activation == "prelu":
            kwargs["prelu"] = parts["prelu"][layer]
        h = activate(activation, z, **kwargs)
        info["z"].append(z)
        info["a"].append(h)
        if batch_norm == "after":
            h = bn(h)
        a = drop(h, layer + 1)
    z = a @ parts["coefs"][-1] + parts["intercepts"][-1]
    return OUTPUTS[output](z), info


# ---------------------------------------------------------------------------
# Gradient clipping and max-norm
# ---------------------------------------------------------------------------


def clip_gradients(tensors, *, clipvalue=None, clipnorm=None, global_clipnorm=None):
    """Clip a list of gradient tensors (Pascanu et al., 2013; Keras' optimizer arguments).

    * ``clipvalue``: every element to ``[-c, c]`` (chapter: "clip every
      component of the gradient vector to a value between -1 and 1").
    * ``clipnorm``: each tensor ``g <- g * c / ||g||`` where ``||g|| > c``
      (Keras clips each variable's gradient separately).
    * ``global_clipnorm``: the concatenation of all tensors alike
      (``tf.clip_by_global_norm``).

    Applied in that order (the kernels' order; the tests use one at a time,
    where Keras agrees).
    """
    out = [np.array(t, dtype=np.float64) for t in tensors]
    if clipvalue:
        out = [np.clip(t, -clipvalue, clipvalue) for t in out]
    if clipnorm:
        out = [t * min(1.0, clipnorm / np.linalg.norm(t)) if np.linalg.norm(t) > 0 else t for t in out]
    if global_clipnorm:
        norm = math.sqrt(sum(float(np.sum(t**2)) for t in out))
        if norm > global_clipnorm:
            out = [t * global_clipnorm / norm for t in out]
    return out


def max_norm(W, r):
    """Max-norm (Srivastava et al., 2014, section 5.1; chapter "Max-norm regularization").

    Each neuron's incoming weight vector (a column of ``W``) is rescaled
    ``w <- w r / ||w||_2`` when ``||w||_2 > r``.
    """
    W = np.asarray(W, dtype=np.float64)
    norms = np.linalg.norm(W, axis=0)
    return W * np.where(norms > r, r / np.where(norms > 0, norms, 1.0), 1.0)


# ---------------------------------------------------------------------------
# Initializers (Keras' VarianceScaling; tables, "Initialization per activation")
# ---------------------------------------------------------------------------

#: Keras' named initializers as ``(scale, mode, distribution)``; the tables:
#: Glorot ``1 / fan_avg``, He ``2 / fan_in``, LeCun ``1 / fan_in``; Keras'
#: ``*_normal`` draw from the truncated normal.
NAMED_INITIALIZERS = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}

#: The tables' "Initialization per activation": Glorot for none/tanh/logistic
#: (softmax), He for the ReLU family and ELU, LeCun for SELU.
TABLE_INITIALIZER = {
    "identity": "glorot",
    "logistic": "glorot",
    "tanh": "glorot",
    "relu": "he",
    "leaky_relu": "he",
    "rrelu": "he",
    "prelu": "he",
    "elu": "he",
    "selu": "lecun",
}


def variance_scaling_variance(scale, mode, fan_in, fan_out):
    """``sigma^2 = scale / fan``, ``fan`` = ``fan_in``, ``fan_out`` or ``(fan_in + fan_out) / 2``."""
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    return scale / fan


def truncated_normal_std(variance):
    """Std of the untruncated normal whose 2-sigma truncation has ``variance`` (Keras' 0.8796... factor).

    ``Var(N(0, s^2) | |x| < 2s) = s^2 (1 - 4 phi(2) / (2 Phi(2) - 1))``; its square root
    is 0.87962566103423978.
    """
    phi2 = math.exp(-2.0) / math.sqrt(2.0 * math.pi)
    mass = math.erf(2.0 / math.sqrt(2.0))
    factor = math.sqrt(1.0 - 4.0 * phi2 / mass)
    return math.sqrt(variance) / factor
