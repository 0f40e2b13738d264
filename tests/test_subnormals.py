"""Subnormal numbers are flushed to zero inside the CPU kernels, and only there."""

import numpy as np
import pytest

from skdeep import MLPClassifier
from skdeep.kernels.cpu.subnormals import X86, flushing

pytestmark = pytest.mark.skipif(not X86, reason="flush-to-zero is set on x86-64 only")

TINY = np.finfo(np.float32).tiny


def _underflows():
    """NumPy arithmetic in this thread: does a product below ``tiny`` give zero, and does a subnormal count as zero?"""
    product = np.float32(1e-30) * np.float32(1e-10)
    subnormal = np.float32(1e-40) * np.float32(1.0)
    return product == 0, subnormal == 0


def test_flushing_sets_ftz_and_daz_and_restores_them():
    assert _underflows() == (False, False)
    with flushing():
        assert _underflows() == (True, True)
    assert _underflows() == (False, False)


def test_flushing_restores_when_the_block_raises():
    with pytest.raises(RuntimeError, match="inside"):
        with flushing():
            raise RuntimeError("inside")
    assert _underflows() == (False, False)


def test_fit_and_predict_leave_the_thread_ieee():
    X = np.random.RandomState(0).uniform(size=(30, 4)).astype(np.float32)
    model = MLPClassifier((5,), max_iter=3, random_state=0).fit(X, np.arange(30) % 2)
    model.predict_proba(X)
    assert _underflows() == (False, False)


def test_training_flushes_subnormal_weights_to_zero():
    # Hidden unit 0 is dead (a large negative bias, a ReLU): its incoming
    # weights get zero gradient, and plain SGD keeps them at 1e-40 in IEEE arithmetic.
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(40, 3)).astype(np.float32)
    y = np.arange(40) % 2
    model = MLPClassifier((4,), solver="sgd", momentum=0.0, alpha=0.0, max_iter=1, random_state=0).fit(X, y)
    model.coefs_[0][:, 0] = 1e-40
    model.intercepts_[0][0] = -1e3
    assert np.all(model.coefs_[0][:, 0] != 0)
    model.partial_fit(X, y)
    assert np.all(model.coefs_[0][:, 0] == 0)
    weights = np.concatenate([c.ravel() for c in model.coefs_])
    assert not np.any((weights != 0) & (np.abs(weights) < TINY))
