"""Optimizers, learning-rate schedules, callbacks, history, eval_set and l1.

* The update rules of :func:`skdeep.kernels.cpu._update`, step by step, and of
  whole training epochs (the compiled epoch loop, driven through a warm-started
  estimator) against the NumPy restatement of Keras 3's rules in
  ``reference_optimizers.py`` (float64 tight, float32 ~1e-5).
* Every schedule's learning rates (and OneCycle's momenta), as the compiled
  loop receives them, against the schedule's formula.
* Continuity: warm starts, ``partial_fit`` and pickling continue the schedule;
  ``partial_fit`` continues the optimizer slots, a warm-started ``fit`` resets them.
* The string-solver rule, ``clone``/``GridSearchCV`` on optimizer objects.
* FTRL's proximal L1 (exact zeros), L1 with Adam, divergence, callbacks, eval_set.
"""

import csv
import pickle
import warnings

import numpy as np
from numba import njit
import pytest
import reference as ref
import reference_optimizers as refopt
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.model_selection import GridSearchCV, train_test_split

from skdeep import MLPClassifier, MLPRegressor, optimizers
from skdeep.callbacks import Callback, CSVLogger, EarlyStopping
from skdeep.kernels import codes as C
from skdeep.kernels import cpu
from skdeep.optimizers import (
    SGD,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Ftrl,
    Nadam,
    OptimizerState,
    RMSprop,
)
from skdeep.schedules import (
    Adaptive,
    Constant,
    CosineDecay,
    ExponentialDecay,
    InvScaling,
    OneCycle,
    PiecewiseConstant,
    PowerDecay,
    ReduceOnPlateau,
)

DTYPES = [np.float64, np.float32]
STRING_SOLVERS = ["sgd", "adam", "nadam", "adamax", "adamw", "adagrad", "rmsprop", "ftrl"]


@njit
def k_update(params, grad, slots, start, stop, alpha, l1, sw_sum, opt, lr, mu, hp, step):
    """``cpu._update`` is compiled without a Python wrapper: call it from compiled code."""
    return cpu._update(params, grad, slots, start, stop, alpha, l1, sw_sum, opt, lr, mu, hp, step)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Stochastic Optimizer")
        yield


@pytest.fixture
def spy(monkeypatch):
    """Records ``(lrs, momenta)`` of every ``train_epoch`` call the engine makes."""
    calls = []
    original = cpu.train_epoch

    def train_epoch(*args):
        calls.append((np.array(args[9], dtype=float), np.array(args[10], dtype=float)))
        return original(*args)

    monkeypatch.setattr(cpu, "train_epoch", train_epoch)
    return calls


def _tol(dtype):
    if np.dtype(dtype) == np.float64:
        return {"rtol": 1e-11, "atol": 1e-13}
    return {"rtol": 1e-5, "atol": 1e-6}


def _weights(est):
    return [a.copy() for a in est.coefs_ + est.intercepts_]


def _assert_bitwise(a, b):
    assert len(a.coefs_) == len(b.coefs_)
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert_array_equal(x, y)


def _regression(n_samples=20, n_features=3, seed=0):
    X, y = make_regression(n_samples, n_features, noise=1.0, random_state=seed)
    return X, y / np.abs(y).max()


def _binary(n_samples=60, seed=0):
    return make_classification(n_samples, 5, n_informative=3, n_redundant=0, random_state=seed)


# ---------------------------------------------------------------------------
# 1. Update rules against the Keras reference
# ---------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": SGD(),
    "sgd_momentum": SGD(momentum=0.9),
    "sgd_nesterov": SGD(momentum=0.8, nesterov=True),
    "adagrad": Adagrad(),
    "adagrad_custom": Adagrad(initial_accumulator_value=0.5, epsilon=1e-3),
    "rmsprop": RMSprop(),
    "rmsprop_momentum": RMSprop(rho=0.8, momentum=0.7),
    "rmsprop_centered": RMSprop(centered=True),
    "rmsprop_centered_momentum": RMSprop(rho=0.95, momentum=0.5, epsilon=1e-5, centered=True),
    "adam": Adam(),
    "adam_custom": Adam(beta_1=0.8, beta_2=0.99, epsilon=1e-4),
    "nadam": Nadam(),
    "nadam_custom": Nadam(beta_1=0.85, beta_2=0.98, epsilon=1e-5),
    "adamax": Adamax(),
    "adamax_custom": Adamax(beta_1=0.7, beta_2=0.9, epsilon=1e-3),
    "adamw": AdamW(),
    "adamw_strong": AdamW(weight_decay=0.5, beta_1=0.8),
    "ftrl": Ftrl(),
    "ftrl_l1": Ftrl(l1_regularization_strength=0.05),
    "ftrl_l2": Ftrl(l2_regularization_strength=0.3),
    "ftrl_shrinkage": Ftrl(l2_shrinkage_regularization_strength=0.2),
    "ftrl_beta": Ftrl(beta=0.5),
    "ftrl_power": Ftrl(learning_rate_power=-0.3, initial_accumulator_value=0.4),
    "ftrl_fixed_rate": Ftrl(learning_rate_power=0.0),
    "ftrl_all": Ftrl(
        l1_regularization_strength=0.02, l2_regularization_strength=0.1,
        l2_shrinkage_regularization_strength=0.05, beta=0.2,
    ),
}
REFERENCE_NAME = {
    SGD: "sgd", Adagrad: "adagrad", RMSprop: "rmsprop", Adam: "adam", Nadam: "nadam",
    Adamax: "adamax", AdamW: "adamw", Ftrl: "ftrl",
}
PENALTIES = {"none": (0.0, 0.0), "l2": (0.3, 0.0), "l1": (0.0, 0.2), "l2_l1": (0.1, 0.05)}


class ReferenceRun:
    """Drives one ``reference_optimizers`` rule the way the estimator configures it."""

    def __init__(self, optimizer, n, store_dtype=None):
        self.name = REFERENCE_NAME[type(optimizer)]
        self.kwargs = optimizer.get_params()
        initial = self.kwargs.pop("initial_accumulator_value", 0.1)
        self.state = refopt.initial_state(self.name, n, initial)
        self.store_dtype = None if np.dtype(store_dtype) == np.float64 else store_dtype

    def step(self, weights, raw, lr, mu, alpha, l1, sw_sum, is_weight=None):
        """One update; ``alpha``/``l1`` act on the entries where ``is_weight`` (default: all)."""
        weights = np.asarray(weights, dtype=np.float64)
        if is_weight is None:
            is_weight = np.ones(weights.shape, dtype=bool)
        kwargs = dict(self.kwargs)
        alpha_v = np.where(is_weight, alpha, 0.0)
        if self.name == "ftrl":
            # FTRL takes the estimator's l1 proximally, scaled like alpha.
            g = refopt.penalized_gradient(raw, weights, alpha_v, 0.0, sw_sum)
            kwargs["l1_regularization_strength"] = (
                kwargs["l1_regularization_strength"] + np.where(is_weight, l1 / sw_sum, 0.0)
            )
        else:
            g = refopt.penalized_gradient(raw, weights, alpha_v, np.where(is_weight, l1, 0.0), sw_sum)
            if self.name in refopt.MOMENTUM_ARGUMENT:
                kwargs[refopt.MOMENTUM_ARGUMENT[self.name]] = mu
        return refopt.STEPS[self.name](weights, g, self.state, lr, store_dtype=self.store_dtype, **kwargs)


def _momenta(optimizer, n_steps, rng):
    """Per-step momenta: the optimizer's own, varied as OneCycle would (ignored ones: noise)."""
    if optimizer.momentum_name is None:
        return rng.uniform(0.2, 0.9, n_steps)  # Adagrad and FTRL must ignore mu
    base = optimizer._momentum()
    return np.clip(base * rng.uniform(0.9, 1.05, n_steps), 0.0, 0.99)


def _kernel_steps(optimizer, w0, raws, lrs, mus, alpha, l1, sw_sum, dtype):
    n = w0.size
    state = OptimizerState(optimizer, n, dtype)
    params = w0.astype(dtype)
    results = []
    for k, (raw, lr, mu) in enumerate(zip(raws, lrs, mus)):
        step = k + 1
        if optimizer.code == C.NADAM:  # train_epoch's job: P_t = u_1 ... u_t before step t
            state.hyperparameters[C.HP_PRODUCT] *= mu * (1.0 - 0.5 * 0.96**step)
        sums = k_update(
            params, raw.astype(dtype), state.slots, 0, n, alpha, l1, sw_sum, optimizer.code,
            float(lr), float(mu), state.hyperparameters, step,
        )
        results.append((params.copy(), sums))
    return results, state


def _problem(n=17, n_steps=6, seed=0):
    rng = np.random.RandomState(seed)
    w0 = rng.uniform(-1, 1, n)
    w0[3] = 0.0  # sign(0) = 0
    raws = [rng.normal(0, 2, n) for _ in range(n_steps)]
    lrs = rng.uniform(0.005, 0.05, n_steps)
    return rng, w0, raws, lrs


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_update_one_step(name, dtype):
    optimizer = OPTIMIZERS[name]
    rng, w0, raws, lrs = _problem(n_steps=1)
    mus = _momenta(optimizer, 1, rng)
    sw_sum = 3.0
    results, _ = _kernel_steps(optimizer, w0, raws, lrs, mus, 0.0, 0.0, sw_sum, dtype)
    params = results[0][0]
    reference = ReferenceRun(optimizer, w0.size, dtype)
    expected = reference.step(w0.astype(dtype), raws[0].astype(dtype), lrs[0], mus[0], 0.0, 0.0, sw_sum)
    assert params.dtype == dtype
    assert_allclose(params, expected, **_tol(dtype))
    assert not np.array_equal(params, w0.astype(dtype)), "the step changed nothing"


@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_update_several_steps(name, dtype, penalty):
    optimizer = OPTIMIZERS[name]
    alpha, l1 = PENALTIES[penalty]
    rng, w0, raws, lrs = _problem(n_steps=6, seed=1)
    mus = _momenta(optimizer, 6, rng)
    sw_sum = 2.5
    results, state = _kernel_steps(optimizer, w0, raws, lrs, mus, alpha, l1, sw_sum, dtype)
    reference = ReferenceRun(optimizer, w0.size, dtype)
    w = w0.astype(dtype).astype(np.float64)
    for k, ((params, (sumsq, sumabs)), raw, lr, mu) in enumerate(zip(results, raws, lrs, mus)):
        w = reference.step(w, raw.astype(dtype), lr, mu, alpha, l1, sw_sum)
        assert_allclose(params, w, **_tol(dtype), err_msg=f"step {k + 1}")
        if alpha > 0 or l1 > 0:  # _update reports the new weights' penalty sums
            assert_allclose(sumsq, np.sum(params.astype(np.float64) ** 2), rtol=1e-6 if dtype == np.float32 else 1e-12)
            assert_allclose(sumabs, np.sum(np.abs(params.astype(np.float64))), rtol=1e-6 if dtype == np.float32 else 1e-12)
    if reference.name == "nadam":
        assert_allclose(state.hyperparameters[C.HP_PRODUCT], reference.state["u_product"], rtol=1e-14)


def test_update_touches_only_its_range():
    optimizer = Adam()
    _rng, w0, raws, _lrs = _problem(n=12, n_steps=1)
    state = OptimizerState(optimizer, 12, np.float64)
    params = w0.copy()
    k_update(params, raws[0], state.slots, 4, 9, 0.1, 0.1, 2.0, optimizer.code, 0.01, 0.9, state.hyperparameters, 1)
    assert_array_equal(params[:4], w0[:4])
    assert_array_equal(params[9:], w0[9:])
    assert_array_equal(state.slots[:, :4], 0.0)
    assert_array_equal(state.slots[:, 9:], 0.0)
    assert np.all(params[4:9] != w0[4:9])


def test_ftrl_l1_gives_exact_zeros_in_update():
    """A proximal L1 threshold above |z| puts the weight at exactly 0."""
    _rng, w0, raws, lrs = _problem(n=50, n_steps=3, seed=2)
    results, _ = _kernel_steps(Ftrl(), w0, raws, lrs, np.zeros(3), 0.0, 2.0, 1.0, np.float64)
    params = results[-1][0]
    assert 0 < np.mean(params == 0.0) < 1
    results, _ = _kernel_steps(Adam(), w0, raws, lrs, np.full(3, 0.9), 0.0, 2.0, 1.0, np.float64)
    assert np.mean(results[-1][0] == 0.0) == 0.0  # Adam's subgradient L1 does not zero


def test_optimizer_state_initial_slots():
    assert_array_equal(OptimizerState(Adagrad(initial_accumulator_value=0.3), 5, np.float32).slots, np.full((1, 5), 0.3, np.float32))
    slots = OptimizerState(Ftrl(initial_accumulator_value=0.2), 4, np.float64).slots
    assert_array_equal(slots, [[0.2] * 4, [0.0] * 4])
    for optimizer, n_slots in [(SGD(), 1), (RMSprop(), 3), (Adam(), 2), (Nadam(), 2), (Adamax(), 2), (AdamW(), 2)]:
        state = OptimizerState(optimizer, 3, np.float32)
        assert state.slots.shape == (n_slots, 3) and state.slots.dtype == np.float32
        assert_array_equal(state.slots, 0.0)
        assert state.step == 0
    assert OptimizerState(Nadam(), 3, np.float64).hyperparameters[C.HP_PRODUCT] == 1.0
    assert OptimizerState(Adam(beta_1=0.7), 1, np.float64).momentum == 0.7
    assert OptimizerState(SGD(momentum=0.3), 1, np.float64).momentum == 0.3
    assert OptimizerState(Adagrad(), 1, np.float64).momentum == 0.0


# -- the whole epoch loop, through the estimator -----------------------------------------------
#
# A warm-started fit starts a fresh optimizer state from weights we assign, so the
# reference can replay it batch by batch. The rates and momenta come from the engine
# (recorded by ``spy``); the schedules' own formulas are tested in section 2.

EPOCH_SAMPLES, EPOCH_BATCH, EPOCH_BATCHES = 10, 4, 3


def _epoch_problem(dtype, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(EPOCH_SAMPLES, 3)).astype(dtype)
    Y = rng.normal(size=(EPOCH_SAMPLES, 2)).astype(dtype)
    coefs = [rng.uniform(-0.8, 0.8, (3, 4)).astype(dtype), rng.uniform(-0.8, 0.8, (4, 2)).astype(dtype)]
    intercepts = [rng.uniform(-0.5, 0.5, 4).astype(dtype), rng.uniform(-0.5, 0.5, 2).astype(dtype)]
    sw = rng.uniform(0.5, 2.0, EPOCH_SAMPLES).astype(dtype)
    return X, Y, sw, coefs, intercepts


@pytest.mark.parametrize("penalty", ["none", "l2_l1"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_training_epochs_match_reference(spy, name, dtype, penalty):
    """Two epochs of 3 minibatches (the last one partial) with per-batch rates and momenta."""
    optimizer = OPTIMIZERS[name]
    alpha, l1 = PENALTIES[penalty]
    X, Y, sw, coefs, intercepts = _epoch_problem(dtype)
    est = MLPRegressor(
        hidden_layer_sizes=(4,), activation="tanh", solver=clone(optimizer), alpha=alpha, l1=l1,
        batch_size=EPOCH_BATCH, shuffle=False, random_state=0, tol=0.0, n_iter_no_change=np.inf,
        learning_rate=OneCycle(max_learning_rate=0.05, total_epochs=4, min_momentum=0.5, max_momentum=0.9)
        if optimizer.momentum_name else ExponentialDecay(steps=4),
        learning_rate_init=0.01, max_iter=1, warm_start=True,
    ).fit(X, Y, sample_weight=sw)  # sets up the model; its weights are replaced below
    est.coefs_ = [c.copy() for c in coefs]
    est.intercepts_ = [b.copy() for b in intercepts]
    del spy[:]
    est.set_params(max_iter=2).fit(X, Y, sample_weight=sw)
    assert est.coefs_[0].dtype == dtype

    units = [3, 4, 2]
    w = ref.pack(coefs, intercepts).astype(np.float64)
    n_coef = 3 * 4 + 4 * 2
    is_weight = np.arange(w.size) < n_coef
    reference = ReferenceRun(optimizer, w.size, dtype)
    Xf, Yf, swf = X.astype(np.float64), Y.astype(np.float64), sw.astype(np.float64)
    assert len(spy) == 2
    losses = []
    for lrs, momenta in spy:
        assert len(lrs) == EPOCH_BATCHES
        loss_sum = 0.0
        for b in range(EPOCH_BATCHES):
            rows = np.arange(b * EPOCH_BATCH, min((b + 1) * EPOCH_BATCH, EPOCH_SAMPLES))
            sw_sum = float(swf[rows].sum())
            loss, g = ref.flat_loss_and_gradient(
                Xf[rows], Yf[rows], w, units, "tanh", "squared_error", sample_weight=swf[rows]
            )
            loss += 0.5 * alpha * np.sum(w[:n_coef] ** 2) / sw_sum + l1 * np.sum(np.abs(w[:n_coef])) / sw_sum
            loss_sum += loss * len(rows)
            w = reference.step(w, g * sw_sum, lrs[b], momenta[b], alpha, l1, sw_sum, is_weight)
        losses.append(loss_sum / EPOCH_SAMPLES)
    expected_coefs, expected_intercepts = ref.unpack(w, units)
    tol = _tol(dtype)
    for got, want in zip(est.coefs_ + est.intercepts_, expected_coefs + expected_intercepts):
        assert_allclose(got, want, **tol)
    assert_allclose(est.loss_curve_[-2:], losses, rtol=max(tol["rtol"], 1e-10))
    assert est._optimizer.step == 2 * EPOCH_BATCHES
    if reference.name == "nadam":
        assert_allclose(est._optimizer.hyperparameters[C.HP_PRODUCT], reference.state["u_product"], rtol=1e-13)


# ---------------------------------------------------------------------------
# 2. Schedules: the rates (and momenta) the compiled loop receives
# ---------------------------------------------------------------------------


N_SAMPLES, BATCH, N_BATCHES, LR0 = 20, 5, 4, 0.01


def _schedule_fit(learning_rate, solver=None, max_iter=6, cls=MLPRegressor, **kw):
    X, y = _regression(N_SAMPLES)
    params = {
        "hidden_layer_sizes": (4,), "solver": SGD() if solver is None else solver,
        "learning_rate": learning_rate, "learning_rate_init": LR0, "batch_size": BATCH,
        "max_iter": max_iter, "shuffle": False, "random_state": 0, "n_iter_no_change": 1000,
    }
    params.update(kw)
    return cls(**params).fit(X, y)


def _per_batch(spy):
    return np.concatenate([lrs for lrs, _ in spy]), np.concatenate([m for _, m in spy])


def _check_history(est, spy):
    assert len(est.history_) == len(spy) == est.n_iter_
    for e, (record, (lrs, _)) in enumerate(zip(est.history_, spy)):
        assert record["epoch"] == e + 1
        # the mean rate of the epoch's minibatches; exactly the rate when constant
        assert record["learning_rate"] == pytest.approx(np.mean(lrs), rel=1e-14)
        if np.all(lrs == lrs[0]):
            assert record["learning_rate"] == lrs[0]
        assert record["loss"] == est.loss_curve_[e]
        assert record["time"] >= 0
        assert record["validation_score"] is None and record["validation_loss"] is None
        assert len(lrs) == N_BATCHES


@pytest.mark.parametrize("schedule", [Constant, Adaptive, InvScaling, PowerDecay, ExponentialDecay,
                                      PiecewiseConstant, ReduceOnPlateau, OneCycle, CosineDecay])
def test_every_schedule_object_validates_its_parameters(schedule):
    """``schedules.resolve`` calls ``_validate_params`` on every schedule object."""
    schedule()._validate_params()


@pytest.mark.parametrize("learning_rate", ["constant", Constant()], ids=["string", "object"])
def test_constant(spy, learning_rate):
    est = _schedule_fit(learning_rate)
    lrs, momenta = _per_batch(spy)
    assert_array_equal(lrs, LR0)
    assert_array_equal(momenta, 0.0)  # SGD() has no momentum
    _check_history(est, spy)


@pytest.mark.parametrize("learning_rate, solver, power_t", [
    ("invscaling", "sgd", 0.5),
    ("invscaling", "sgd", 0.25),
    (InvScaling(power_t=0.3), Adam(), None),
    (InvScaling(power_t=0.3), SGD(), None),
])
def test_invscaling(spy, learning_rate, solver, power_t):
    kw = {} if power_t is None else {"power_t": power_t}
    est = _schedule_fit(learning_rate, solver=solver, **kw)
    p = power_t if power_t is not None else learning_rate.power_t
    # scikit-learn: the first epoch uses lr0, then lr0 / (samples seen + 1) ** power_t
    expected = [LR0 if e == 0 else LR0 / (e * N_SAMPLES + 1) ** p for e in range(6)]
    for e, (lrs, _) in enumerate(spy):
        assert_allclose(lrs, expected[e], rtol=1e-15)
    _check_history(est, spy)


@pytest.mark.parametrize("learning_rate", ["invscaling", "adaptive"])
def test_sklearn_strings_are_constant_without_sgd(spy, learning_rate):
    """scikit-learn's meaning: 'invscaling' and 'adaptive' act with solver='sgd' only."""
    _schedule_fit(learning_rate, solver="adam", tol=1e9, n_iter_no_change=1)
    assert_array_equal(_per_batch(spy)[0], LR0)


def test_sgd_string_passes_momentum(spy):
    _schedule_fit("constant", solver="sgd", momentum=0.7)
    assert_array_equal(_per_batch(spy)[1], 0.7)


@pytest.mark.parametrize("steps, power", [(3, 1.0), (10, 0.5), (1, 2.0)])
def test_power_decay(spy, steps, power):
    est = _schedule_fit(PowerDecay(steps=steps, power=power))
    lrs, _ = _per_batch(spy)
    t = np.arange(6 * N_BATCHES)
    assert_allclose(lrs, LR0 / (1 + t / steps) ** power, rtol=1e-14)
    assert np.all(np.diff(spy[0][0]) < 0), "per batch: changes within an epoch"
    _check_history(est, spy)


@pytest.mark.parametrize("steps", [1, 7, 100])
def test_exponential_decay(spy, steps):
    est = _schedule_fit(ExponentialDecay(steps=steps))
    lrs, _ = _per_batch(spy)
    t = np.arange(6 * N_BATCHES)
    assert_allclose(lrs, LR0 * 0.1 ** (t / steps), rtol=1e-14)
    # falls tenfold every `steps` batches
    if steps < len(lrs):
        assert_allclose(lrs[steps], lrs[0] / 10, rtol=1e-14)
    _check_history(est, spy)


@pytest.mark.parametrize("steps, alpha", [(10, 0.0), (10, 0.2), (50, 0.0)])
def test_cosine_decay(spy, steps, alpha):
    est = _schedule_fit(CosineDecay(steps=steps, alpha=alpha))
    lrs, _ = _per_batch(spy)
    t = np.minimum(np.arange(6 * N_BATCHES), steps)
    assert_allclose(lrs, LR0 * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * t / steps)) + alpha), rtol=1e-13, atol=1e-18)
    if steps < len(lrs):
        assert_allclose(lrs[steps:], LR0 * alpha, atol=1e-18)  # stays at its floor
    _check_history(est, spy)


def test_piecewise_constant(spy):
    values = [0.05, 0.02, 0.004]
    est = _schedule_fit(PiecewiseConstant(boundaries=[2, 4], values=values), max_iter=6)
    per_epoch = []
    for lrs, _ in spy:
        assert np.all(lrs == lrs[0]), "per epoch: constant within an epoch"
        per_epoch.append(lrs[0])
    # epochs are counted from 0: boundaries[i - 1] <= epoch < boundaries[i]
    assert per_epoch == [0.05, 0.05, 0.02, 0.02, 0.004, 0.004]
    _check_history(est, spy)


def test_piecewise_constant_validates():
    with pytest.raises(ValueError, match="len"):
        _schedule_fit(PiecewiseConstant(boundaries=[2], values=[0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="increase"):
        _schedule_fit(PiecewiseConstant(boundaries=[4, 2], values=[0.1, 0.2, 0.3]))


def _one_cycle_expected(lr0, max_lr, final, total, fraction, steps):
    cycle = total * (1 - fraction)
    half = cycle / 2
    rates = np.interp(steps, [0, half, cycle, total], [lr0, max_lr, lr0, final])
    return rates


@pytest.mark.parametrize("total_epochs, fraction, final", [(6, 0.1, None), (4, 0.25, 1e-5), (5, 0.5, 0.002)])
def test_one_cycle_rates_and_momenta(spy, total_epochs, fraction, final):
    schedule = OneCycle(
        max_learning_rate=0.1, total_epochs=total_epochs, annihilation_fraction=fraction,
        final_learning_rate=final, max_momentum=0.95, min_momentum=0.8,
    )
    est = _schedule_fit(schedule, solver=Adam(beta_1=0.5), max_iter=6)
    lrs, momenta = _per_batch(spy)
    total = total_epochs * N_BATCHES
    t = np.arange(6 * N_BATCHES)
    final_lr = LR0 / 1000 if final is None else final
    assert_allclose(lrs, _one_cycle_expected(LR0, 0.1, final_lr, total, fraction, t), rtol=1e-12, atol=1e-17)
    cycle = total * (1 - fraction)
    expected_momenta = np.interp(t, [0, cycle / 2, cycle], [0.95, 0.8, 0.95])
    assert_allclose(momenta, expected_momenta, rtol=1e-12)
    # the momentum moves opposite to the rate during the cycle
    inside = t < cycle
    d_lr, d_mu = np.diff(lrs[inside]), np.diff(momenta[inside])
    assert np.all(np.sign(d_lr) == -np.sign(d_mu))
    assert LR0 < lrs.max() <= 0.1 and lrs[0] == LR0
    assert est._schedule_state["total_steps"] == total
    _check_history(est, spy)


def test_one_cycle_defaults_to_max_iter_and_keeps_momentum_when_asked(spy):
    est = _schedule_fit(OneCycle(max_learning_rate=0.05, cycle_momentum=False), solver=SGD(momentum=0.6), max_iter=5)
    assert est._schedule_state["total_steps"] == 5 * N_BATCHES
    lrs, momenta = _per_batch(spy)
    assert_array_equal(momenta, 0.6)
    assert_allclose(lrs[-1], _one_cycle_expected(LR0, 0.05, LR0 / 1000, 20, 0.1, 19), rtol=1e-12)


@pytest.mark.parametrize("solver, momentum", [
    (Nadam(beta_1=0.85), 0.85), (RMSprop(momentum=0.3), 0.3), (Adamax(beta_1=0.6), 0.6),
    ("adam", 0.9), (Adagrad(), 0.0), (Ftrl(), 0.0),
])
def test_momenta_are_the_optimizers_without_one_cycle(spy, solver, momentum):
    _schedule_fit(ExponentialDecay(steps=5), solver=solver, max_iter=2)
    assert_array_equal(_per_batch(spy)[1], momentum)


# -- ReduceOnPlateau -------------------------------------------------------------------------


def _plateau_rates(schedule, values, monitor="loss", lr0=1.0):
    """Rates used at each epoch when the monitored value follows ``values``."""
    state = {"step": 0, "epoch": 0, "n_seen": 0}
    schedule._start(state, lr0, 1, 100)
    rates = []
    for value in values:
        rates.append(float(schedule._rates(state, lr0, 1, 0.0)[0][0]))
        state["epoch"] += 1
        schedule._epoch_end(state, {"loss": None, "validation_score": None, monitor: value})
    return rates


def test_reduce_on_plateau_not_triggered_while_improving():
    rates = _plateau_rates(ReduceOnPlateau(patience=1, min_delta=0.01), [1.0, 0.9, 0.8, 0.7, 0.6, 0.5])
    assert rates == [1.0] * 6


def test_reduce_on_plateau_after_patience_epochs():
    """Reduces once ``patience`` epochs in a row missed a ``min_delta`` improvement."""
    schedule = ReduceOnPlateau(factor=0.5, patience=2, min_delta=0.01)
    # epoch 1 sets the best; epochs 2, 3 improve by less than min_delta: two epochs without
    # improvement -> the rate falls before epoch 4; again after epochs 4, 5 -> before epoch 6
    rates = _plateau_rates(schedule, [1.0, 0.995, 0.999, 0.995, 0.992, 0.991, 0.992])
    assert_allclose(rates, [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25], err_msg="rate used at each epoch")


def test_reduce_on_plateau_improvement_resets_the_wait():
    schedule = ReduceOnPlateau(factor=0.5, patience=2, min_delta=0.01)
    rates = _plateau_rates(schedule, [1.0, 1.0, 0.5, 0.5, 0.5, 0.5])
    # epoch 3 improves; epochs 4, 5 do not -> reduced before epoch 6
    assert_allclose(rates, [1.0, 1.0, 1.0, 1.0, 1.0, 0.5], err_msg="rate used at each epoch")


def test_reduce_on_plateau_respects_min_learning_rate():
    schedule = ReduceOnPlateau(factor=0.1, patience=0, min_learning_rate=0.05)
    rates = _plateau_rates(schedule, [1.0] * 5)
    # patience=0: every epoch without improvement reduces the rate of the next one
    assert rates == pytest.approx([1.0, 1.0, 0.1, 0.05, 0.05])


def test_reduce_on_plateau_validation_score_higher_is_better():
    schedule = ReduceOnPlateau(factor=0.5, patience=1, monitor="validation_score", min_delta=0.0)
    rates = _plateau_rates(schedule, [0.5, 0.6, 0.7, 0.7, 0.8, 0.8], monitor="validation_score")
    # a rising score is an improvement; each flat epoch is one epoch without improvement
    assert_allclose(rates, [1.0, 1.0, 1.0, 1.0, 0.5, 0.5], err_msg="rate used at each epoch")


def test_reduce_on_plateau_in_a_fit(spy):
    """No epoch improves by min_delta: the rate halves after every ``patience`` epochs."""
    est = _schedule_fit(ReduceOnPlateau(factor=0.5, patience=2, min_delta=1e9), max_iter=8)
    rates = [float(lrs[0]) for lrs, _ in spy]
    assert_allclose(rates, LR0 * np.array([1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.125]), err_msg="rate used at each epoch")
    assert [r["learning_rate"] for r in est.history_] == rates


def test_reduce_on_plateau_in_a_fit_not_triggered(spy):
    X, y = _regression(N_SAMPLES)
    est = MLPRegressor(
        hidden_layer_sizes=(3,), activation="identity", solver=SGD(), batch_size=N_SAMPLES,
        learning_rate=ReduceOnPlateau(factor=0.5, patience=0, min_delta=0.0),
        learning_rate_init=0.01, max_iter=8, shuffle=False, random_state=0, tol=0.0,
    ).fit(X, y)
    assert np.all(np.diff(est.loss_curve_) < 0), "precondition: full-batch GD improves every epoch"
    assert [lrs[0] for lrs, _ in spy] == [0.01] * 8


def test_reduce_on_plateau_min_learning_rate_in_a_fit(spy):
    _schedule_fit(ReduceOnPlateau(factor=0.1, patience=0, min_delta=1e9, min_learning_rate=LR0 / 20), max_iter=5)
    assert [lrs[0] for lrs, _ in spy] == pytest.approx([LR0, LR0, LR0 / 10, LR0 / 20, LR0 / 20])


def test_reduce_on_plateau_validation_score_needs_a_score():
    with pytest.raises(ValueError, match="validation_score"):
        _schedule_fit(ReduceOnPlateau(monitor="validation_score"), max_iter=2)
    X, y = _regression(N_SAMPLES)
    est = MLPRegressor(
        hidden_layer_sizes=(4,), solver=SGD(), max_iter=3, random_state=0, learning_rate_init=LR0,
        learning_rate=ReduceOnPlateau(monitor="validation_score", patience=0, min_delta=1e9),
    ).fit(X, y, eval_set=(X, y))
    assert [r["learning_rate"] for r in est.history_] == pytest.approx([LR0, LR0, LR0 / 2])


def test_adaptive_divides_by_five_on_plateau(spy):
    est = _schedule_fit("adaptive", solver="sgd", momentum=0.0, tol=1e9, n_iter_no_change=1, max_iter=8)
    # epoch 1 sets best_loss_; from epoch 2 every epoch misses tol; the rule fires when the
    # count exceeds n_iter_no_change (after epochs 3, 5, 7), then the count restarts
    rates = [lrs[0] for lrs, _ in spy]
    assert rates == pytest.approx(LR0 * np.array([1, 1, 1, 0.2, 0.2, 0.04, 0.04, 0.008]))
    assert est.n_iter_ == 8


def test_history_records_the_mean_rate_of_each_epoch(spy):
    est = _schedule_fit(ExponentialDecay(steps=3), max_iter=3)
    assert [r["learning_rate"] for r in est.history_] == pytest.approx([np.mean(lrs) for lrs, _ in spy], rel=1e-14)
    # step t of the epochs: lr0 * 0.1 ** (t / 3), N_BATCHES steps per epoch
    steps = np.arange(3 * N_BATCHES).reshape(3, N_BATCHES)
    assert [r["learning_rate"] for r in est.history_] == pytest.approx((LR0 * 0.1 ** (steps / 3)).mean(axis=1))
    assert est._schedule_state["step"] == 3 * N_BATCHES
    assert est._schedule_state["epoch"] == 3


# ---------------------------------------------------------------------------
# 3. Continuity: warm starts, partial_fit, pickling
# ---------------------------------------------------------------------------

CONTINUOUS_SCHEDULES = {
    "exponential": ExponentialDecay(steps=7),
    "power": PowerDecay(steps=5, power=0.7),
    "cosine": CosineDecay(steps=30, alpha=0.1),
    "piecewise": PiecewiseConstant(boundaries=[3, 7], values=[0.02, 0.01, 0.005]),
    "one_cycle": OneCycle(max_learning_rate=0.05, total_epochs=10, cycle_momentum=False),
    "plateau": ReduceOnPlateau(factor=0.5, patience=1, min_delta=1e9),
}


def _continuity_estimator(learning_rate, solver, max_iter, cls=MLPRegressor, **kw):
    return cls(
        hidden_layer_sizes=(5,), solver=solver, learning_rate=learning_rate,
        learning_rate_init=0.01, batch_size=6, max_iter=max_iter, shuffle=False,
        random_state=0, tol=0.0, n_iter_no_change=np.inf, **kw,
    )


@pytest.mark.parametrize("name", CONTINUOUS_SCHEDULES)
def test_warm_start_continues_the_schedule_bitwise(name):
    """Stateless SGD: 10 epochs in one fit equal 5 + 5 warm-started epochs, bit for bit."""
    X, y = _regression(20)
    schedule = CONTINUOUS_SCHEDULES[name]
    once = _continuity_estimator(clone(schedule), SGD(), 10).fit(X, y)
    twice = _continuity_estimator(clone(schedule), SGD(), 5, warm_start=True).fit(X, y)
    assert twice._schedule_state["epoch"] == 5
    twice.fit(X, y)
    _assert_bitwise(once, twice)
    assert twice._schedule_state == once._schedule_state
    assert [r["learning_rate"] for r in twice.history_] == [r["learning_rate"] for r in once.history_]
    assert twice.loss_curve_ == once.loss_curve_
    assert twice.t_ == once.t_ == 200


@pytest.mark.parametrize("learning_rate", ["invscaling", "adaptive"])
def test_sklearn_schedules_continue_across_warm_starts(learning_rate):
    """Deliberately unlike scikit-learn, which restarts them at every warm-started fit."""
    X, y = _regression(20)
    kw = {"momentum": 0.0}  # 'sgd' with momentum 0 is stateless
    if learning_rate == "adaptive":
        kw.update(tol=1e9, n_iter_no_change=1)
    once = _continuity_estimator(learning_rate, "sgd", 10).set_params(**kw).fit(X, y)
    twice = _continuity_estimator(learning_rate, "sgd", 5, warm_start=True).set_params(**kw).fit(X, y)
    twice.fit(X, y)
    _assert_bitwise(once, twice)
    rates = [r["learning_rate"] for r in twice.history_]
    assert rates == [r["learning_rate"] for r in once.history_]
    assert rates[5] < rates[0]  # the second fit did not restart at learning_rate_init
    if learning_rate == "invscaling":
        assert rates[5] == pytest.approx(0.01 / (5 * 20 + 1) ** 0.5)
    else:  # divided by 5 after epochs 3, 5, 7, 9 (see test_adaptive_divides_by_five_on_plateau)
        assert rates == pytest.approx(0.01 * np.array([1, 1, 1, 0.2, 0.2, 0.04, 0.04, 0.008, 0.008, 0.0016]))


def _ten_versus_five_pickle_five(a, b, X, y):
    """10 ``partial_fit`` calls on ``a``; 5, a pickle round trip and 5 on ``b``: bit for bit equal."""
    for _ in range(10):
        a.partial_fit(X, y)
    for _ in range(5):
        b.partial_fit(X, y)
    b = pickle.loads(pickle.dumps(b))
    for _ in range(5):
        b.partial_fit(X, y)
    _assert_bitwise(a, b)
    assert a._schedule_state == b._schedule_state
    return a, b


def test_one_cycle_with_momentum_continues_through_partial_fit():
    X, y = _regression(20)
    schedule = OneCycle(max_learning_rate=0.05, total_epochs=10)
    a = _continuity_estimator(clone(schedule), SGD(), 1)
    b = _continuity_estimator(clone(schedule), SGD(), 1)
    a, b = _ten_versus_five_pickle_five(a, b, X, y)


PARTIAL_FIT_SOLVERS = [*STRING_SOLVERS, SGD(momentum=0.9, nesterov=True), RMSprop(centered=True, momentum=0.5),
                       Ftrl(l1_regularization_strength=0.001, beta=0.1)]


@pytest.mark.parametrize("solver", PARTIAL_FIT_SOLVERS, ids=lambda s: s if isinstance(s, str) else repr(s))
def test_partial_fit_pickle_round_trip_is_seamless(solver):
    """10 partial_fit calls equal 5, a pickle round trip and 5 more, bit for bit."""
    X, y = _regression(20)
    schedule = OneCycle(max_learning_rate=0.02, total_epochs=10)
    kw = {"l1": 1e-3} if solver == "ftrl" else {}
    a = _continuity_estimator(clone(schedule), clone(solver) if not isinstance(solver, str) else solver, 1, **kw)
    b = clone(a)
    a, b = _ten_versus_five_pickle_five(a, b, X, y)
    assert a._optimizer.step == b._optimizer.step == 10 * 4
    assert_array_equal(a._optimizer.slots, b._optimizer.slots)
    assert_array_equal(a._optimizer.hyperparameters, b._optimizer.hyperparameters)
    assert a.loss_curve_ == b.loss_curve_
    assert all(np.isfinite(w).all() for w in a.coefs_)


def test_partial_fit_classifier_pickle_round_trip():
    X, y = _binary(40)
    kw = {"hidden_layer_sizes": (5,), "solver": "nadam", "learning_rate": ExponentialDecay(steps=10),
              "batch_size": 8, "shuffle": False, "random_state": 0}
    a, b = MLPClassifier(**kw), MLPClassifier(**kw)
    for _ in range(6):
        a.partial_fit(X, y, classes=[0, 1])
    for _ in range(3):
        b.partial_fit(X, y, classes=[0, 1])
    b = pickle.loads(pickle.dumps(b))
    for _ in range(3):
        b.partial_fit(X, y)
    _assert_bitwise(a, b)


@pytest.mark.parametrize("solver", ["adam", "nadam", "rmsprop", SGD(momentum=0.9)], ids=str)
def test_warm_start_fit_resets_the_slots_partial_fit_keeps_them(solver):
    X, y = _regression(24)
    warm = _continuity_estimator("constant", solver, 3, warm_start=True).fit(X, y)
    first_state = warm._optimizer
    assert first_state.step == 3 * 4
    warm.fit(X, y)
    assert warm._optimizer is not first_state
    assert warm._optimizer.step == 3 * 4, "a new fit starts a fresh optimizer state"
    assert warm._schedule_state["epoch"] == 6, "... but continues the schedule"
    # = a new model started by hand from the first fit's weights (fresh slots, step 0)
    first = _continuity_estimator("constant", solver, 3).fit(X, y)
    by_hand = _continuity_estimator("constant", solver, 1, warm_start=True).fit(X, y)
    by_hand.coefs_ = [c.copy() for c in first.coefs_]
    by_hand.intercepts_ = [b.copy() for b in first.intercepts_]
    by_hand.set_params(max_iter=3).fit(X, y)
    _assert_bitwise(warm, by_hand)

    incremental = _continuity_estimator("constant", solver, 1)
    for _ in range(6):
        incremental.partial_fit(X, y)
    assert incremental._optimizer.step == 6 * 4
    single = _continuity_estimator("constant", solver, 6).fit(X, y)
    _assert_bitwise(incremental, single)  # partial_fit keeps the slots: = one 6-epoch fit
    assert any(not np.array_equal(a, b) for a, b in zip(warm.coefs_, single.coefs_))


def test_schedule_state_survives_pickle_and_warm_start():
    X, y = _regression(20)
    est = _continuity_estimator(ReduceOnPlateau(factor=0.5, patience=0, min_delta=1e9), SGD(), 3, warm_start=True).fit(X, y)
    state = dict(est._schedule_state)
    assert state["learning_rate"] == pytest.approx(0.01 / 4)
    loaded = pickle.loads(pickle.dumps(est))
    assert loaded._schedule_state == state
    loaded.fit(X, y)
    assert loaded.history_[3]["learning_rate"] == pytest.approx(0.01 / 4)
    assert loaded._schedule_state["learning_rate"] == pytest.approx(0.01 / 32)
    # a fit without warm_start starts a new schedule
    est.set_params(warm_start=False).fit(X, y)
    assert est.history_[0]["learning_rate"] == 0.01 and len(est.history_) == 3


# ---------------------------------------------------------------------------
# 4. String solvers and estimator-level hyperparameters
# ---------------------------------------------------------------------------


def test_string_solvers_take_the_estimator_level_hyperparameters():
    est = MLPClassifier(solver="nadam", beta_1=0.8, beta_2=0.99, epsilon=1e-6, momentum=0.3)
    opt = optimizers.resolve(est)
    assert type(opt) is Nadam
    assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.8, 0.99, 1e-6)
    opt = optimizers.resolve(MLPClassifier(solver="sgd", momentum=0.4, nesterovs_momentum=False))
    assert type(opt) is SGD and (opt.momentum, opt.nesterov) == (0.4, False)
    opt = optimizers.resolve(MLPClassifier(solver="adagrad", epsilon=1e-5, beta_1=0.5))
    assert type(opt) is Adagrad and opt.epsilon == 1e-5 and opt.initial_accumulator_value == 0.1
    opt = optimizers.resolve(MLPClassifier(solver="rmsprop", epsilon=1e-5, momentum=0.5))
    assert type(opt) is RMSprop and opt.epsilon == 1e-5 and opt.momentum == 0.0
    for name in ("adam", "adamax", "adamw"):
        opt = optimizers.resolve(MLPClassifier(solver=name, beta_1=0.7, beta_2=0.9, epsilon=1e-4))
        assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.7, 0.9, 1e-4)
    assert optimizers.resolve(MLPClassifier(solver="adamw")).weight_decay == 0.004
    assert optimizers.resolve(MLPClassifier(solver="ftrl", momentum=0.1)).get_params() == Ftrl().get_params()
    # scikit-learn's defaults for the strings, Keras' for the objects
    assert optimizers.resolve(MLPClassifier(solver="adam")).epsilon == 1e-8
    assert Adam().epsilon == 1e-7


@pytest.mark.parametrize("string, obj, kw", [
    ("nadam", Nadam(beta_1=0.8, beta_2=0.99, epsilon=1e-6), {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}),
    ("sgd", SGD(momentum=0.5, nesterov=True), {"momentum": 0.5}),
    ("adam", Adam(epsilon=1e-8), {}),
])
def test_string_solver_equals_its_object(string, obj, kw):
    X, y = _binary()
    common = {"hidden_layer_sizes": (4,), "max_iter": 3, "random_state": 0}
    a = MLPClassifier(solver=string, **kw, **common).fit(X, y)
    b = MLPClassifier(solver=obj, **common).fit(X, y)
    _assert_bitwise(a, b)


@pytest.mark.parametrize("solver, kw, names", [
    (SGD(momentum=0.5), {"momentum": 0.8}, ["momentum=0.8", "momentum=0.5"]),
    (SGD(nesterov=True), {"nesterovs_momentum": False}, ["nesterovs_momentum=False", "nesterov"]),
    (Adam(beta_1=0.95), {"beta_1": 0.8}, ["beta_1=0.8", "beta_1=0.95"]),
    (Nadam(), {"epsilon": 1e-5}, ["epsilon=1e-05", "Nadam"]),
    (AdamW(beta_2=0.9), {"beta_2": 0.99}, ["beta_2=0.99", "beta_2=0.9"]),
    (RMSprop(momentum=0.1), {"momentum": 0.2}, ["momentum=0.2", "RMSprop"]),
])
def test_object_and_contradicting_estimator_value_raise(solver, kw, names):
    X, y = _binary()
    est = MLPClassifier(hidden_layer_sizes=(3,), solver=solver, max_iter=1, **kw)
    with pytest.raises(ValueError) as info:
        est.fit(X, y)
    for name in names:
        assert name in str(info.value)


@pytest.mark.parametrize("solver, kw", [
    (SGD(momentum=0.5), {}),                               # estimator default: no contradiction
    (SGD(momentum=0.5), {"momentum": 0.5}),               # same value
    (Adam(epsilon=1e-7), {"epsilon": 1e-7}),
    (Adagrad(), {"beta_1": 0.5, "momentum": 0.1}),           # hyperparameters Adagrad lacks
    (Ftrl(), {"beta_2": 0.5}),
])
def test_object_without_contradiction_fits(solver, kw):
    X, y = _binary()
    est = MLPClassifier(hidden_layer_sizes=(3,), solver=solver, max_iter=1, **kw).fit(X, y)
    assert est.n_iter_ == 1


def test_clone_grid_search_and_deep_params():
    X, y = _binary()
    adam = Adam(beta_2=0.99)
    est = MLPClassifier(hidden_layer_sizes=(4,), solver=adam, learning_rate=ExponentialDecay(steps=50), max_iter=3, random_state=0)
    params = est.get_params(deep=True)
    assert params["solver__beta_1"] == 0.9 and params["solver__beta_2"] == 0.99
    assert params["learning_rate__steps"] == 50
    cloned = clone(est)
    assert cloned.solver is not adam and cloned.solver.get_params() == adam.get_params()
    assert cloned.learning_rate is not est.learning_rate
    cloned.set_params(solver__beta_1=0.7)
    assert cloned.solver.beta_1 == 0.7 and adam.beta_1 == 0.9

    search = GridSearchCV(MLPClassifier(hidden_layer_sizes=(4,), solver=Adam(), max_iter=3, random_state=0),
                          {"solver__beta_1": [0.8, 0.9]}, cv=2).fit(X, y)
    assert [p["solver__beta_1"] for p in search.cv_results_["params"]] == [0.8, 0.9]
    assert search.best_estimator_.solver.beta_1 in (0.8, 0.9)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.estimator.solver.beta_1 == 0.9  # the template is untouched


def test_invalid_optimizer_and_schedule_parameters_raise():
    X, y = _binary()
    with pytest.raises(ValueError, match="beta_1"):
        MLPClassifier(solver=Adam(beta_1=1.5), max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="steps"):
        MLPClassifier(learning_rate=ExponentialDecay(steps=0), max_iter=1).fit(X, y)


# ---------------------------------------------------------------------------
# 5. L1: FTRL's exact zeros, subgradient L1 with Adam
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, random_state=0, stratify=y)


def test_ftrl_l1_sparsifies_digits(digits):
    X_train, X_test, y_train, y_test = digits
    kw = {"hidden_layer_sizes": (32,), "solver": "ftrl", "learning_rate_init": 0.3, "max_iter": 30, "random_state": 0}
    sparse = MLPClassifier(l1=3.0, **kw).fit(X_train, y_train)
    dense = MLPClassifier(**kw).fit(X_train, y_train)
    fraction, score = sparse.zero_weight_fraction_, sparse.score(X_test, y_test)
    report = f"ftrl l1=3: zero_weight_fraction_={fraction:.3f}, test accuracy={score:.3f}; " \
             f"l1=0: {dense.zero_weight_fraction_:.3f}, {dense.score(X_test, y_test):.3f}"
    print(report)
    counted = np.mean(np.concatenate([c.ravel() for c in sparse.coefs_]) == 0.0)
    assert fraction == pytest.approx(counted), report
    assert fraction > 0.5, report
    assert score > 0.85, report
    assert dense.zero_weight_fraction_ < 0.05, report


def test_l1_with_adam_penalizes(digits):
    X_train, X_test, y_train, y_test = digits
    kw = {"hidden_layer_sizes": (32,), "solver": "adam", "learning_rate_init": 0.01, "max_iter": 15, "random_state": 0}
    plain = MLPClassifier(**kw).fit(X_train, y_train)
    l1 = MLPClassifier(l1=1.0, **kw).fit(X_train, y_train)
    norm = lambda est: sum(np.abs(c).sum() for c in est.coefs_)
    assert norm(l1) < 0.5 * norm(plain), (norm(l1), norm(plain))
    assert l1.score(X_test, y_test) > 0.85
    # the loss reports the L1 term: the same weights under l1 have a larger loss
    assert l1.loss_ > plain.loss_


# ---------------------------------------------------------------------------
# 6. Divergence
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("solver", [*STRING_SOLVERS, RMSprop(momentum=0.9, centered=True)], ids=str)
def test_divergence_raises_and_keeps_finite_weights(solver):
    rng = np.random.RandomState(0)
    X = rng.randn(40, 4)
    y = rng.randn(40) * 1e6
    est = MLPRegressor(hidden_layer_sizes=(8,), solver=solver, learning_rate_init=1e100, max_iter=20,
                       batch_size=10, random_state=0)
    with pytest.raises(ValueError, match="non-finite"):
        est.fit(X, y)
    assert all(np.isfinite(a).all() for a in est.coefs_ + est.intercepts_)
    assert np.isfinite(est.predict(X)).all()


class Snapshots(Callback):
    def __init__(self):
        pass

    def on_train_begin(self, estimator):
        self.weights_ = []

    def on_epoch_end(self, estimator, record):
        self.weights_.append(_weights(estimator))
        return False


def test_divergence_in_a_later_epoch_keeps_a_finite_model():
    """The weights go back to an epoch start whose losses were finite (the last or the one before)."""
    rng = np.random.RandomState(0)
    X = rng.randn(40, 4)
    y = rng.randn(40) * 1e6
    snapshots = Snapshots()
    est = MLPRegressor(hidden_layer_sizes=(8,), solver="adamw", learning_rate_init=1e10, max_iter=20,
                       batch_size=10, random_state=0, callbacks=[snapshots])
    with pytest.raises(ValueError, match="non-finite"):
        est.fit(X, y)
    assert len(snapshots.weights_) >= 2, "precondition: diverges after the second epoch"
    weights = _weights(est)
    candidates = snapshots.weights_[-2:]
    assert any(all(np.array_equal(a, b) for a, b in zip(weights, c)) for c in candidates)
    assert all(np.isfinite(a).all() for a in weights)


@pytest.mark.parametrize("learning_rate", [
    CosineDecay(steps=3),                                           # alpha=0: reaches 0
    OneCycle(max_learning_rate=0.05, total_epochs=1, final_learning_rate=0.0),
    PiecewiseConstant(boundaries=[1], values=[0.01, 0.0]),
], ids=["cosine", "one_cycle", "piecewise"])
def test_ftrl_with_a_zero_learning_rate(learning_rate):
    """Schedules may reach a rate of exactly 0; FTRL divides by the rate."""
    X, y = _binary(40)
    est = MLPClassifier(hidden_layer_sizes=(4,), solver="ftrl", learning_rate=learning_rate, max_iter=3,
                        batch_size=10, learning_rate_init=0.01, random_state=0).fit(X, y)
    assert all(np.isfinite(a).all() for a in est.coefs_ + est.intercepts_)
    assert est.n_iter_ == 3


# ---------------------------------------------------------------------------
# 7. Callbacks, history, eval_set
# ---------------------------------------------------------------------------


def _classifier(**kw):
    params = {"hidden_layer_sizes": (6,), "solver": "adam", "learning_rate_init": 0.01, "max_iter": 30, "random_state": 0}
    params.update(kw)
    return MLPClassifier(**params)


def test_early_stopping_on_loss_stops_and_restores_best_weights():
    X, y = _binary()
    snapshots = Snapshots()
    stopper = EarlyStopping(monitor="loss", patience=3, min_delta=1e9)
    est = _classifier(callbacks=[snapshots, stopper]).fit(X, y)
    # only epoch 1 counts as an improvement by 1e9; three epochs without -> stop after epoch 4
    assert est.n_iter_ == 4 < est.max_iter
    assert stopper.best_epoch_ == 1 and stopper.stopped_epoch_ == 4
    assert stopper.best_ == est.loss_curve_[0]
    for a, b in zip(_weights(est), snapshots.weights_[0]):
        assert_array_equal(a, b)


def test_early_stopping_on_loss_picks_the_lowest_loss():
    X, y = _binary()
    snapshots = Snapshots()
    stopper = EarlyStopping(monitor="loss", patience=2)
    est = _classifier(callbacks=[snapshots, stopper], learning_rate_init=0.5, solver="sgd", momentum=0.9,
                      max_iter=60).fit(X, y)
    best = int(np.argmin(est.loss_curve_))
    assert stopper.best_epoch_ == best + 1
    if est.n_iter_ < 60:
        assert stopper.stopped_epoch_ == est.n_iter_ == best + 1 + 2
    for a, b in zip(_weights(est), snapshots.weights_[best]):
        assert_array_equal(a, b)


def test_early_stopping_without_restoring():
    X, y = _binary()
    snapshots = Snapshots()
    est = _classifier(callbacks=[snapshots, EarlyStopping(monitor="loss", patience=2, min_delta=1e9,
                                                          restore_best_weights=False)]).fit(X, y)
    assert est.n_iter_ == 3
    for a, b in zip(_weights(est), snapshots.weights_[-1]):
        assert_array_equal(a, b)


def test_early_stopping_on_validation_score_with_eval_set():
    X, y = _binary(120)
    X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=0)
    snapshots = Snapshots()
    stopper = EarlyStopping(monitor="validation_score", patience=2, min_delta=1.0)
    est = _classifier(callbacks=[snapshots, stopper]).fit(X_train, y_train, eval_set=(X_val, y_val))
    assert est.n_iter_ == 3
    assert stopper.best_epoch_ == 1 and stopper.best_ == est.validation_scores_[0]
    assert est.score(X_val, y_val) == stopper.best_
    for a, b in zip(_weights(est), snapshots.weights_[0]):
        assert_array_equal(a, b)


def test_early_stopping_callback_needs_its_monitor():
    X, y = _binary()
    with pytest.raises(ValueError, match="validation_score"):
        _classifier(callbacks=[EarlyStopping()]).fit(X, y)


def test_csv_logger(tmp_path):
    X, y = _binary()
    path = tmp_path / "log.csv"
    est = _classifier(max_iter=4, callbacks=[CSVLogger(path)]).fit(X, y)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "loss", "validation_loss", "validation_score", "learning_rate", "time"]
    assert len(rows) == 1 + 4
    assert [int(r[0]) for r in rows[1:]] == [1, 2, 3, 4]
    assert [float(r[1]) for r in rows[1:]] == est.loss_curve_
    assert [float(r[4]) for r in rows[1:]] == [0.01] * 4
    # a new fit overwrites; append=True adds rows without a second header
    est.set_params(max_iter=2).fit(X, y)
    with open(path, newline="") as f:
        assert len(list(csv.reader(f))) == 1 + 2
    est.set_params(callbacks=[CSVLogger(path, append=True)], warm_start=True).fit(X, y, eval_set=(X, y))
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 1 + 4 and rows[0][0] == "epoch"
    assert rows[-1][0] == "4" and float(rows[-1][3]) == est.validation_scores_[-1]


class StopAt(Callback):
    def __init__(self, epoch=3):
        self.epoch = epoch

    def on_train_begin(self, estimator):
        self.calls_ = ["begin"]

    def on_epoch_end(self, estimator, record):
        self.calls_.append(record["epoch"])
        return record["epoch"] == self.epoch

    def on_train_end(self, estimator):
        self.calls_.append("end")


def test_custom_callback_stops_after_its_epoch():
    X, y = _binary()
    callback = StopAt(3)
    est = _classifier(callbacks=[callback]).fit(X, y)
    assert est.n_iter_ == 3 and len(est.history_) == 3 and len(est.loss_curve_) == 3
    assert callback.calls_ == ["begin", 1, 2, 3, "end"]
    # callbacks clone and show in get_params
    cloned = clone(est)
    assert cloned.callbacks[0] is not callback and cloned.callbacks[0].epoch == 3


class ZeroFirstLayer(Callback):
    def on_epoch_end(self, estimator, record):
        estimator.coefs_[0][...] = 0.0
        return False


def test_callback_can_change_weights_in_place():
    X, y = _binary()
    est = _classifier(max_iter=3, callbacks=[ZeroFirstLayer()]).fit(X, y)
    assert_array_equal(est.coefs_[0], 0.0)
    assert est.zero_weight_fraction_ >= est.coefs_[0].size / sum(c.size for c in est.coefs_)


class ScoreEval(Callback):
    def __init__(self, X, y, sample_weight=None):
        self.X, self.y, self.sample_weight = X, y, sample_weight

    def on_train_begin(self, estimator):
        self.scores_ = []

    def on_epoch_end(self, estimator, record):
        self.scores_.append(estimator.score(self.X, self.y, sample_weight=self.sample_weight))
        assert record["validation_score"] == self.scores_[-1]
        return False


def test_eval_set_fills_validation_scores_without_early_stopping():
    X, y = _binary(120)
    X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=0)
    check = ScoreEval(X_val, y_val)
    est = _classifier(max_iter=5, callbacks=[check]).fit(X_train, y_train, eval_set=(X_val, y_val))
    assert est.validation_scores_ == check.scores_
    assert len(est.validation_scores_) == est.n_iter_ == 5
    assert [r["validation_score"] for r in est.history_] == check.scores_
    assert est.best_loss_ == min(est.loss_curve_)  # stopping still follows the training loss
    assert est.t_ == 5 * len(y_train)
    # no eval_set: no scores
    assert _classifier(max_iter=2).fit(X_train, y_train).validation_scores_ is None


def test_eval_set_with_sample_weight_regressor():
    X, y = _regression(60)
    sw = np.random.RandomState(0).uniform(0.1, 2, 20)
    check = ScoreEval(X[:20], y[:20], sw)
    est = MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0, learning_rate_init=0.01,
                       callbacks=[check]).fit(X[20:], y[20:], eval_set=(X[:20], y[:20], sw))
    assert est.validation_scores_ == check.scores_


def test_eval_set_replaces_the_internal_split_with_early_stopping():
    X, y = _binary(120)
    X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=0)
    check = ScoreEval(X_val, y_val)
    est = _classifier(max_iter=40, early_stopping=True, n_iter_no_change=3, callbacks=[check])
    est.fit(X_train, y_train, eval_set=(X_val, y_val))
    assert est.t_ == est.n_iter_ * len(y_train), "trained on all of X_train: no internal split"
    assert est.validation_scores_ == check.scores_
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.score(X_val, y_val) == est.best_validation_score_  # best weights restored
    # without eval_set the internal split holds out validation_fraction of X_train
    internal = _classifier(max_iter=3, early_stopping=True).fit(X_train, y_train)
    assert internal.t_ == 3 * (len(y_train) - int(np.ceil(0.1 * len(y_train))))


def test_eval_set_validation():
    X, y = _binary()
    with pytest.raises(ValueError, match="eval_set"):
        _classifier(max_iter=1).fit(X, y, eval_set=(X,))
    with pytest.raises(ValueError, match="samples"):
        _classifier(max_iter=1).fit(X, y, eval_set=(X, y[:-1]))


# ---------------------------------------------------------------------------
# 8. Every schedule with every stochastic solver
# ---------------------------------------------------------------------------

ALL_SCHEDULES = {
    "constant": "constant",
    "invscaling": "invscaling",
    "adaptive": "adaptive",
    "Constant": Constant(),
    "InvScaling": InvScaling(),
    "Adaptive": Adaptive(),
    "PowerDecay": PowerDecay(steps=3),
    "ExponentialDecay": ExponentialDecay(steps=3),
    "PiecewiseConstant": PiecewiseConstant(boundaries=[1], values=[0.01, 0.001]),
    "ReduceOnPlateau": ReduceOnPlateau(patience=0),
    "OneCycle": OneCycle(max_learning_rate=0.02, total_epochs=2),
    "CosineDecay": CosineDecay(steps=5),
}


@pytest.mark.parametrize("solver", STRING_SOLVERS)
@pytest.mark.parametrize("schedule", ALL_SCHEDULES)
def test_every_schedule_with_every_solver(schedule, solver):
    X, y = _binary(40)
    learning_rate = ALL_SCHEDULES[schedule]
    est = MLPClassifier(hidden_layer_sizes=(4,), solver=solver, max_iter=2, batch_size=16, random_state=0,
                        learning_rate=learning_rate if isinstance(learning_rate, str) else clone(learning_rate),
                        learning_rate_init=0.01)
    est.fit(X, y)
    assert est.n_iter_ == 2 and len(est.history_) == 2
    assert all(np.isfinite(a).all() for a in est.coefs_ + est.intercepts_)
    assert all(r["learning_rate"] > 0 for r in est.history_)
    assert est.predict(X).shape == (40,)
