"""Parameter updates: each optimizer is one loop with its own slots.

Every rule takes ``(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp,
t)``: the slices ``p = params[start:stop]`` and ``g = grad[start:stop]`` (raw
gradient), the optimizer's slot rows ``slots[k, start:stop]``, the penalty
strengths and gradient scale of :func:`_gradient`, FTRL's proximal L1
``l1_prox``, the learning rate, the momentum ``mu`` (``beta_1`` for the Adam
family), the hyperparameter vector ``hp`` (``codes.HP_*``, running scalars
included) and the step ``t``. Each loop indexes its slices from 0 so the
compiler knows every index is in bounds and non-negative, has no test inside
the loop and keeps every constant in the model's dtype: the loops compile to
packed (SIMD) instructions, in float32 for float32 models. Update rules as
Keras 3 documents them (``keras/src/optimizers``), with scikit-learn's order
of operations for SGD and Adam (``sklearn/neural_network/_stochastic_optimizers.py``).

Adding an optimizer: its rule below, one line in :data:`OPTIMIZERS`, a code in
:mod:`skdeep.kernels.codes`, its object in :mod:`skdeep.optimizers` and its
NumPy reference in ``tests/reference_optimizers.py``.
"""

import numpy as np
from numba import literal_unroll, njit

from skdeep.kernels import codes as C
from skdeep.kernels.cpu._jit import INNER, JIT
from skdeep.kernels.cpu.linalg import _sum_squares_abs


@njit(inline="always", **JIT)
def _gradient(raw, w, alpha, l1, scale):
    """Finalized gradient of one weight: ``(raw + alpha w + l1 sign(w)) * scale``."""
    return (raw + alpha * w + l1 * np.sign(w)) * scale


@njit(**INNER)
def sgd(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """``v <- mu v - lr g``; ``w <- w + mu v - lr g`` (Nesterov) or ``w <- w + v``.

    Both as one rule ``w <- w + a v - b g`` with ``(a, b) = (mu, lr)`` for
    Nesterov, ``(1, 0)`` without (scikit-learn's order of operations).
    """
    dt = p.dtype.type
    lr, mu, alpha, l1, scale = dt(lr), dt(mu), dt(alpha), dt(l1), dt(scale)
    nesterov = hp[C.HP_NESTEROV] != 0.0
    a = mu if nesterov else dt(1.0)
    b = lr if nesterov else dt(0.0)
    v = _slot(slots, 0, start, p)
    for i in range(p.shape[0]):
        gi = _gradient(g[i], p[i], alpha, l1, scale)
        v[i] = mu * v[i] - lr * gi
        p[i] += a * v[i] - b * gi


@njit(**INNER)
def adam(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """Adam (Kingma & Ba, 2015, Alg. 1), AdamW's decay first (Loshchilov & Hutter, 2019).

    ``w <- w - lr wd w`` (AdamW; ``wd = 0`` for Adam); ``m <- mu m + (1 - mu) g``;
    ``v <- b2 v + (1 - b2) g^2``; ``w <- w - lr sqrt(1 - b2^t) / (1 - mu^t) m / (sqrt(v) + eps)``.
    """
    dt = p.dtype.type
    b2 = hp[C.HP_BETA_2]
    lr_t = dt(lr * np.sqrt(1.0 - b2**t) / (1.0 - mu**t))
    decay = dt(lr * hp[C.HP_WEIGHT_DECAY])
    eps = dt(hp[C.HP_EPSILON])
    mu_, one_mu, b2_, one_b2 = dt(mu), dt(1.0 - mu), dt(b2), dt(1.0 - b2)
    alpha, l1, scale = dt(alpha), dt(l1), dt(scale)
    m = _slot(slots, 0, start, p)
    v = _slot(slots, 1, start, p)
    for i in range(p.shape[0]):
        w = p[i]
        gi = _gradient(g[i], w, alpha, l1, scale)
        w -= w * decay
        m[i] = mu_ * m[i] + one_mu * gi
        v[i] = b2_ * v[i] + one_b2 * gi * gi
        p[i] = w + -lr_t * m[i] / (np.sqrt(v[i]) + eps)


@njit(**INNER)
def adagrad(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """AdaGrad (Duchi et al., 2011): ``a <- a + g^2``; ``w <- w - lr g / sqrt(a + eps)``."""
    dt = p.dtype.type
    lr, eps, alpha, l1, scale = dt(lr), dt(hp[C.HP_EPSILON]), dt(alpha), dt(l1), dt(scale)
    a = _slot(slots, 0, start, p)
    for i in range(p.shape[0]):
        gi = _gradient(g[i], p[i], alpha, l1, scale)
        a[i] += gi * gi
        p[i] -= lr * gi / np.sqrt(a[i] + eps)


@njit(**INNER)
def rmsprop(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """RMSprop (Tieleman & Hinton, 2012), as Keras 3 computes it.

    ``s <- rho s + (1 - rho) g^2``; centered: ``c <- rho c + (1 - rho) g`` and
    ``d = s - c^2 + eps``, else ``d = s + eps``; ``m <- mu m + lr g / sqrt(d)``;
    ``w <- w - m``. One loop per variant, chosen outside the loop.
    """
    dt = p.dtype.type
    rho = hp[C.HP_BETA_2]
    lr, mu, eps, rho_, one_rho = dt(lr), dt(mu), dt(hp[C.HP_EPSILON]), dt(rho), dt(1.0 - rho)
    alpha, l1, scale = dt(alpha), dt(l1), dt(scale)
    s, m = _slot(slots, 0, start, p), _slot(slots, 1, start, p)
    if hp[C.HP_CENTERED] != 0.0:
        c = _slot(slots, 2, start, p)
        for i in range(p.shape[0]):
            gi = _gradient(g[i], p[i], alpha, l1, scale)
            s[i] = rho_ * s[i] + one_rho * gi * gi
            c[i] = rho_ * c[i] + one_rho * gi
            m[i] = mu * m[i] + lr * gi / np.sqrt(s[i] - c[i] * c[i] + eps)
            p[i] -= m[i]
    else:
        for i in range(p.shape[0]):
            gi = _gradient(g[i], p[i], alpha, l1, scale)
            s[i] = rho_ * s[i] + one_rho * gi * gi
            m[i] = mu * m[i] + lr * gi / np.sqrt(s[i] + eps)
            p[i] -= m[i]


@njit(**INNER)
def nadam(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """Nadam (Dozat, 2016), as Keras 3 computes it.

    ``u_t = mu (1 - 0.5 * 0.96^t)``, ``P_t = u_1 ... u_t`` (``hp[HP_PRODUCT]``,
    advanced once per step by :func:`_advance`);
    ``m_hat = u_{t+1} m / (1 - P_t u_{t+1}) + (1 - u_t) g / (1 - P_t)``;
    ``w <- w - lr m_hat / (sqrt(v / (1 - b2^t)) + eps)``.
    """
    dt = p.dtype.type
    b2 = hp[C.HP_BETA_2]
    u_t = mu * (1.0 - 0.5 * 0.96**t)
    u_next = mu * (1.0 - 0.5 * 0.96 ** (t + 1.0))
    product = hp[C.HP_PRODUCT]
    m_scale = dt(u_next / (1.0 - product * u_next))
    g_scale = dt((1.0 - u_t) / (1.0 - product))
    v_scale = dt(1.0 / (1.0 - b2**t))
    lr, eps, one_mu, one_b2 = dt(lr), dt(hp[C.HP_EPSILON]), dt(1.0 - mu), dt(1.0 - b2)
    alpha, l1, scale = dt(alpha), dt(l1), dt(scale)
    m = _slot(slots, 0, start, p)
    v = _slot(slots, 1, start, p)
    for i in range(p.shape[0]):
        gi = _gradient(g[i], p[i], alpha, l1, scale)
        m[i] += (gi - m[i]) * one_mu
        v[i] += (gi * gi - v[i]) * one_b2
        p[i] -= (m_scale * m[i] + g_scale * gi) * lr / (np.sqrt(v[i] * v_scale) + eps)


@njit(**INNER)
def adamax(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """Adamax (Kingma & Ba, 2015, Alg. 2): ``m <- mu m + (1 - mu) g``;
    ``u <- max(b2 u, |g|)``; ``w <- w - lr m / ((1 - mu^t) (u + eps))``."""
    dt = p.dtype.type
    step = dt(lr / (1.0 - mu**t))
    b2, eps, one_mu = dt(hp[C.HP_BETA_2]), dt(hp[C.HP_EPSILON]), dt(1.0 - mu)
    alpha, l1, scale = dt(alpha), dt(l1), dt(scale)
    m = _slot(slots, 0, start, p)
    u = _slot(slots, 1, start, p)
    for i in range(p.shape[0]):
        gi = _gradient(g[i], p[i], alpha, l1, scale)
        m[i] += (gi - m[i]) * one_mu
        u[i] = max(b2 * u[i], abs(gi))
        p[i] -= step * m[i] / (u[i] + eps)


@njit(**INNER)
def ftrl(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """FTRL-proximal (McMahan et al., 2013, Alg. 1), as Keras 3 computes it.

    With ``q = -lr_power``: ``n' = n + g^2``; ``z <- z + g + 2 l2s w - (n'^q - n^q) / lr w``;
    ``w <- (clip(z, -l1', l1') - z) / (n'^q / lr + 2 (l2 + beta / (2 lr)))`` with
    ``l1' = l1_ftrl + l1_prox``: L1 acts proximally, so weights become exactly 0.
    ``q = 0.5`` (Keras' default) takes square roots, much cheaper than powers.
    A zero learning rate leaves the weights as they are.
    """
    if lr <= 0.0:
        return
    dt = p.dtype.type
    power = -hp[C.HP_LR_POWER]
    shrink = dt(2.0 * hp[C.HP_L2_SHRINKAGE])
    l2_term = dt(2.0 * (hp[C.HP_L2] + hp[C.HP_BETA] / (2.0 * lr)))
    bound = dt(hp[C.HP_L1] + l1_prox)
    inv_lr, alpha, l1, scale = dt(1.0 / lr), dt(alpha), dt(l1), dt(scale)
    n = _slot(slots, 0, start, p)
    z = _slot(slots, 1, start, p)
    if power == 0.5:
        for i in range(p.shape[0]):
            w = p[i]
            gi = _gradient(g[i], w, alpha, l1, scale)
            new_root = np.sqrt(n[i] + gi * gi)
            z[i] += gi + shrink * w - (new_root - np.sqrt(n[i])) * inv_lr * w
            p[i] = (min(max(z[i], -bound), bound) - z[i]) / (new_root * inv_lr + l2_term)
            n[i] += gi * gi
    else:
        q = dt(power)
        for i in range(p.shape[0]):
            w = p[i]
            gi = _gradient(g[i], w, alpha, l1, scale)
            new_power = (n[i] + gi * gi) ** q
            z[i] += gi + shrink * w - (new_power - n[i] ** q) * inv_lr * w
            p[i] = (min(max(z[i], -bound), bound) - z[i]) / (new_power * inv_lr + l2_term)
            n[i] += gi * gi


@njit(**INNER)
def _finalize_gradient(p, g, alpha, l1, scale):
    """``g <- (g + alpha w + l1 sign(w)) * scale``."""
    dt = p.dtype.type
    alpha, l1, scale = dt(alpha), dt(l1), dt(scale)
    for i in range(p.shape[0]):
        g[i] = _gradient(g[i], p[i], alpha, l1, scale)


@njit(**INNER)
def finalize(p, g, slots, start, alpha, l1, scale, l1_prox, lr, mu, hp, t):
    """NO_UPDATE: only finalize the gradient (L-BFGS)."""
    _finalize_gradient(p, g, alpha, l1, scale)


@njit(inline="always", **JIT)
def _slot(slots, k, start, p):
    """Slot ``k`` of the parameters ``p``, which start at ``start``."""
    return slots[k, start : start + p.shape[0]]


#: The registry: ``(code, update rule)`` per optimizer (AdamW is Adam with its decay).
OPTIMIZERS = (
    (C.NO_UPDATE, finalize),
    (C.SGD, sgd),
    (C.ADAM, adam),
    (C.ADAMW, adam),
    (C.ADAGRAD, adagrad),
    (C.RMSPROP, rmsprop),
    (C.NADAM, nadam),
    (C.ADAMAX, adamax),
    (C.FTRL, ftrl),
)


@njit(**INNER)
def _advance(opt, hp, mu, step):
    """Advance the running scalars of rule ``opt`` once per step (before the updates of that step).

    Nadam: ``P_t = P_{t-1} u_t`` with ``u_t = mu (1 - 0.5 * 0.96^t)`` (Dozat, 2016; Keras 3).
    """
    if opt == C.NADAM:
        hp[C.HP_PRODUCT] *= mu * (1.0 - 0.5 * 0.96 ** float(step))


@njit(**INNER)
def _update(params, grad, slots, start, stop, alpha, l1, sw_sum, opt, lr, mu, hp, step):
    """Finalize the gradient of ``params[start:stop]`` and apply one update of rule ``opt``.

    The gradient is ``g = (raw + alpha w + l1 sign(w)) / sw_sum`` (scikit-learn's
    L2 scaling; L1 scaled alike). ``mu`` is the momentum of SGD and RMSprop and
    ``beta_1`` of the Adam family; ``t = step``. FTRL's L1 is proximal:
    ``l1 / sw_sum`` joins its own L1 strength instead of the gradient.

    A negative ``sw_sum`` means the gradient is already final (clipping):
    ``g = raw``, while FTRL's ``l1'`` uses ``-sw_sum``. An unknown ``opt``
    raises ``ValueError``.

    Returns ``(sum(w^2), sum(|w|))`` of the updated weights when ``alpha`` or
    ``l1`` is positive, else ``(0, 0)``.
    """
    ftrl_rule = opt == C.FTRL
    final = sw_sum < 0.0
    l1_prox = l1 / abs(sw_sum) if ftrl_rule else 0.0
    l1_grad = 0.0 if ftrl_rule or final else l1
    alpha_grad = 0.0 if final else alpha
    scale = 1.0 if final else 1.0 / sw_sum
    t = float(step)
    p = params[start:stop]
    g = grad[start:stop]
    found = False
    for entry in literal_unroll(OPTIMIZERS):
        if entry[0] == opt:
            entry[1](p, g, slots, start, alpha_grad, l1_grad, scale, l1_prox, lr, mu, hp, t)
            found = True
    if not found:
        raise ValueError("unknown optimizer code")
    if alpha > 0.0 or l1 > 0.0:
        return _sum_squares_abs(p)
    return 0.0, 0.0
