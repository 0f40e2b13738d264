"""Plain NumPy restatements of the optimizer update rules, for testing the kernels.

Written from the update rules Keras 3 documents and implements in
``keras/src/optimizers/*.py`` (``update_step`` of ``SGD``, ``Adagrad``,
``RMSprop``, ``Adam``, ``AdamW``, ``Nadam``, ``Adamax`` and ``Ftrl``; AdamW's
decoupled decay as the base optimizer's ``_apply_weight_decay``), not from
:mod:`skdeep.kernels.cpu`. Keras' names and defaults are kept; one call is one
step of one optimizer on one flat vector.

Every function computes in float64 on copies and returns the new weights; the
optimizer state is a ``dict`` of float64 arrays and scalars that the function
updates in place. ``iterations`` counts the steps already taken (Keras'
``optimizer.iterations``), so the step being taken is ``iterations + 1``.

Pass ``store_dtype`` to round the new weights and slots to that dtype after the
step, as a float32 model stores them between steps.
"""

import numpy as np


def _f64(a):
    return np.array(a, dtype=np.float64, copy=True)


def _store(weights, state, store_dtype):
    if store_dtype is None:
        return weights
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            state[key] = value.astype(store_dtype).astype(np.float64)
    return weights.astype(store_dtype).astype(np.float64)


# ---------------------------------------------------------------------------
# The gradient the optimizers see
# ---------------------------------------------------------------------------


def penalized_gradient(raw, weights, alpha, l1, sw_sum):
    """``(raw + alpha w + l1 sign(w)) / sw_sum``: scikit-learn's L2 scaling, L1 alike.

    ``raw`` is the unnormalized data gradient (``A.T @ delta``, before dividing
    by the sum of the sample weights).
    """
    raw, weights = _f64(raw), _f64(weights)
    return (raw + alpha * weights + l1 * np.sign(weights)) / sw_sum


# ---------------------------------------------------------------------------
# Initial states
# ---------------------------------------------------------------------------


def initial_state(name, n, initial_accumulator_value=0.1):
    """Fresh optimizer state for ``n`` weights (Keras' ``build``)."""
    zeros = lambda: np.zeros(n)
    if name == "sgd":
        return {"iterations": 0, "momentum": zeros()}
    if name == "adagrad":
        return {"iterations": 0, "accumulator": np.full(n, float(initial_accumulator_value))}
    if name == "rmsprop":
        return {"iterations": 0, "velocity": zeros(), "momentum": zeros(), "average_gradient": zeros()}
    if name in ("adam", "adamw", "adamax"):
        return {"iterations": 0, "m": zeros(), "v": zeros()}
    if name == "nadam":
        return {"iterations": 0, "m": zeros(), "v": zeros(), "u_product": 1.0}
    if name == "ftrl":
        return {"iterations": 0, "accumulator": np.full(n, float(initial_accumulator_value)), "linear": zeros()}
    raise ValueError(name)


# ---------------------------------------------------------------------------
# Update rules
# ---------------------------------------------------------------------------


def sgd(weights, gradient, state, learning_rate, momentum=0.0, nesterov=False, store_dtype=None):
    """Keras ``SGD``: ``m <- momentum m - lr g``; ``w <- w + momentum m - lr g`` (Nesterov)
    or ``w <- w + m``; without momentum ``w <- w - lr g``."""
    w, g = _f64(weights), _f64(gradient)
    if momentum != 0:
        m = -g * learning_rate + state["momentum"] * momentum
        state["momentum"] = m
        if nesterov:
            w = w + (-g * learning_rate + m * momentum)
        else:
            w = w + m
    else:
        w = w - g * learning_rate
    state["iterations"] += 1
    return _store(w, state, store_dtype)


def adagrad(weights, gradient, state, learning_rate, epsilon=1e-7, store_dtype=None):
    """Keras ``Adagrad``: ``acc <- acc + g^2``; ``w <- w - lr g / sqrt(acc + eps)``."""
    w, g = _f64(weights), _f64(gradient)
    state["accumulator"] = state["accumulator"] + np.square(g)
    w = w - (learning_rate * g) / np.sqrt(state["accumulator"] + epsilon)
    state["iterations"] += 1
    return _store(w, state, store_dtype)


def rmsprop(
    weights, gradient, state, learning_rate, rho=0.9, momentum=0.0, epsilon=1e-7,
    centered=False, store_dtype=None,
):
    """Keras ``RMSprop``.

    ``vel <- rho vel + (1 - rho) g^2``; centered: ``avg <- rho avg + (1 - rho) g``,
    ``den = vel - avg^2 + eps``, else ``den = vel + eps``; ``inc = lr g / sqrt(den)``;
    with momentum ``mom <- momentum mom + inc``, ``w <- w - mom``, else ``w <- w - inc``.
    """
    w, g = _f64(weights), _f64(gradient)
    velocity = rho * state["velocity"] + (1 - rho) * np.square(g)
    state["velocity"] = velocity
    if centered:
        average_grad = rho * state["average_gradient"] + (1 - rho) * g
        state["average_gradient"] = average_grad
        denominator = velocity - np.square(average_grad) + epsilon
    else:
        denominator = velocity + epsilon
    increment = learning_rate * g / np.sqrt(denominator)
    if momentum > 0:
        state["momentum"] = momentum * state["momentum"] + increment
        w = w - state["momentum"]
    else:
        w = w - increment
    state["iterations"] += 1
    return _store(w, state, store_dtype)


def adam(weights, gradient, state, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7, store_dtype=None):
    """Keras ``Adam`` (Kingma & Ba 2015, Algorithm 1, with the folded bias correction).

    ``alpha = lr sqrt(1 - b2^t) / (1 - b1^t)``; ``m <- m + (g - m)(1 - b1)``;
    ``v <- v + (g^2 - v)(1 - b2)``; ``w <- w - alpha m / (sqrt(v) + eps)``.
    """
    w, g = _f64(weights), _f64(gradient)
    local_step = state["iterations"] + 1
    alpha = learning_rate * np.sqrt(1 - beta_2**local_step) / (1 - beta_1**local_step)
    state["m"] = state["m"] + (g - state["m"]) * (1 - beta_1)
    state["v"] = state["v"] + (np.square(g) - state["v"]) * (1 - beta_2)
    w = w - (state["m"] * alpha) / (np.sqrt(state["v"]) + epsilon)
    state["iterations"] += 1
    return _store(w, state, store_dtype)


def adamw(
    weights, gradient, state, learning_rate, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
    epsilon=1e-7, store_dtype=None,
):
    """Keras ``AdamW``: ``w <- w - w * weight_decay * lr``, then the Adam step.

    The gradient was computed before the decay (it is an input here).
    """
    w = _f64(weights)
    w = w - w * weight_decay * learning_rate
    return adam(w, gradient, state, learning_rate, beta_1, beta_2, epsilon, store_dtype)


def nadam(weights, gradient, state, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7, store_dtype=None):
    """Keras ``Nadam`` (Dozat 2016).

    Before the step ``u_product <- u_product * b1 (1 - 0.5 * 0.96^(t))`` with
    ``t = iterations + 1``; then ``u_t = b1 (1 - 0.5 * 0.96^t)``,
    ``u_{t+1} = b1 (1 - 0.5 * 0.96^(t+1))``, ``m <- m + (g - m)(1 - b1)``,
    ``v <- v + (g^2 - v)(1 - b2)``,
    ``m_hat = u_{t+1} m / (1 - u_product u_{t+1}) + (1 - u_t) g / (1 - u_product)``,
    ``v_hat = v / (1 - b2^t)``, ``w <- w - m_hat lr / (sqrt(v_hat) + eps)``.
    """
    w, g = _f64(weights), _f64(gradient)
    local_step = state["iterations"] + 1
    next_step = state["iterations"] + 2
    state["u_product"] = state["u_product"] * beta_1 * (1.0 - 0.5 * 0.96**local_step)
    u_t = beta_1 * (1.0 - 0.5 * 0.96**local_step)
    u_t_1 = beta_1 * (1.0 - 0.5 * 0.96**next_step)
    u_product_t = state["u_product"]
    u_product_t_1 = u_product_t * u_t_1
    state["m"] = state["m"] + (g - state["m"]) * (1 - beta_1)
    state["v"] = state["v"] + (np.square(g) - state["v"]) * (1 - beta_2)
    m_hat = u_t_1 * state["m"] / (1 - u_product_t_1) + (1 - u_t) * g / (1 - u_product_t)
    v_hat = state["v"] / (1 - beta_2**local_step)
    w = w - (m_hat * learning_rate) / (np.sqrt(v_hat) + epsilon)
    state["iterations"] += 1
    return _store(w, state, store_dtype)


def adamax(weights, gradient, state, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7, store_dtype=None):
    """Keras ``Adamax`` (Kingma & Ba 2015, Algorithm 2).

    ``m <- m + (g - m)(1 - b1)``; ``u <- max(b2 u, |g|)``;
    ``w <- w - lr m / ((1 - b1^t)(u + eps))``.
    """
    w, g = _f64(weights), _f64(gradient)
    local_step = state["iterations"] + 1
    state["m"] = state["m"] + (g - state["m"]) * (1 - beta_1)
    state["v"] = np.maximum(beta_2 * state["v"], np.abs(g))  # Keras' "u"
    w = w - (learning_rate * state["m"]) / ((1 - beta_1**local_step) * (state["v"] + epsilon))
    state["iterations"] += 1
    return _store(w, state, store_dtype)


def ftrl(
    weights, gradient, state, learning_rate, learning_rate_power=-0.5,
    l1_regularization_strength=0.0, l2_regularization_strength=0.0,
    l2_shrinkage_regularization_strength=0.0, beta=0.0, store_dtype=None,
):
    """Keras ``Ftrl`` (McMahan et al. 2013, Algorithm 1, with shrinkage-type L2).

    ``l2 = l2_regularization_strength + beta / (2 lr)``;
    ``g_s = g + 2 l2_shrinkage w``; ``n' = n + g^2`` (the plain gradient);
    ``z <- z + g_s - (n'^(-p) - n^(-p)) / lr * w``;
    ``w <- (clip(z, -l1, l1) - z) / (n'^(-p) / lr + 2 l2)``; ``n <- n'``,
    with ``p = learning_rate_power``.
    """
    w, g = _f64(weights), _f64(gradient)
    lr = learning_rate
    l2_reg = l2_regularization_strength + beta / (2.0 * lr)
    grad_to_use = g + 2 * l2_shrinkage_regularization_strength * w
    accum = state["accumulator"]
    new_accum = accum + np.square(g)
    state["linear"] = state["linear"] + (
        grad_to_use
        - (np.power(new_accum, -learning_rate_power) - np.power(accum, -learning_rate_power)) / lr * w
    )
    quadratic = np.power(new_accum, -learning_rate_power) / lr + 2 * l2_reg
    linear = state["linear"]
    linear_clipped = np.clip(linear, -l1_regularization_strength, l1_regularization_strength)
    w = (linear_clipped - linear) / quadratic
    state["accumulator"] = new_accum
    state["iterations"] += 1
    return _store(w, state, store_dtype)


STEPS = {
    "sgd": sgd,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
    "adamw": adamw,
    "nadam": nadam,
    "adamax": adamax,
    "ftrl": ftrl,
}

#: Name of each rule's momentum-like argument (what a schedule may vary per step).
MOMENTUM_ARGUMENT = {"sgd": "momentum", "rmsprop": "momentum", "adam": "beta_1", "adamw": "beta_1",
                     "nadam": "beta_1", "adamax": "beta_1"}
