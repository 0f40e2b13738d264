"""Registry completeness: every code has its kernel, its public object and its NumPy reference.

The kernels dispatch on the registries of :mod:`skdeep.kernels.cpu`
(``ACTIVATIONS``, ``LOSSES``, ``OPTIMIZERS``); the estimators reach them
through :mod:`skdeep.activations`, :mod:`skdeep.optimizers` and
:mod:`skdeep.initializers`; the tests compare them with ``tests/reference*.py``.
A code missing from one of the three is caught here, and a code the kernels
do not know raises instead of falling through. Cheap: the registries are read
in Python, and the unknown-code checks reuse the float64 dense
specializations of ``predict`` and ``train_epoch`` that ``test_kernels.py``
compiles.
"""

import numpy as np
import pytest
from numba.core.registry import CPUDispatcher

import reference as ref
import reference_optimizers as ref_opt
import reference_toolkit as ref_tk
from skdeep import activations, initializers, optimizers
from skdeep.kernels import codes as C
from skdeep.kernels import cpu
from skdeep.kernels.cpu import activations as activation_kernels
from skdeep.kernels.cpu import optimizers as optimizer_kernels
from skdeep.kernels.cpu import outputs as output_kernels


def _codes(registry):
    codes = [entry[0] for entry in registry]
    assert len(codes) == len(set(codes)), f"a code is registered twice: {codes}"
    return set(codes)


def _kernel_name(kernel):
    assert isinstance(kernel, CPUDispatcher), kernel
    return kernel.py_func.__name__


# -- activations ---------------------------------------------------------------


def test_every_activation_code_has_a_kernel_pair_and_an_object():
    public = {cls.code: name for name, cls in activations.ACTIVATIONS.items()}
    assert len(public) == len(activations.ACTIVATIONS), "two activation names share a code"
    assert _codes(cpu.ACTIVATIONS) == set(public)
    for code, value, backward in cpu.ACTIVATIONS:
        assert _kernel_name(value) == public[code]
        assert _kernel_name(backward) == public[code] + "_backward"
        assert getattr(activation_kernels, public[code]) is value


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_every_activation_has_a_numpy_reference(name):
    z = np.linspace(-2.0, 2.0, 6).reshape(2, 3)
    options = dict(alpha=0.3, slopes=np.full(z.shape, 0.2), prelu=np.full(3, 0.25))
    for function in (ref_tk.activate, ref_tk.derivative):
        out = function(name, z, **options)
        assert out.shape == z.shape and np.isfinite(out).all()


# -- losses ----------------------------------------------------------------------


def test_every_loss_code_has_its_kernels_an_output_and_a_reference():
    assert _codes(cpu.LOSSES) == set(activations.OUTPUT.values())
    assert set(ref.OUTPUT_NAMES) == _codes(cpu.LOSSES)
    for code, output, loss in cpu.LOSSES:
        name = ref.OUTPUT_NAMES[code]
        assert _kernel_name(loss) == name and getattr(output_kernels, name) is loss
        assert _kernel_name(output).endswith("_output")
        assert name in ref.LOSSES and name in ref.OUTPUT_ACTIVATIONS


# -- optimizers --------------------------------------------------------------------


def test_every_optimizer_code_has_a_kernel_an_object_and_a_reference():
    public = {cls.code: name for name, (cls, _) in optimizers.SOLVERS.items()}
    assert len(public) == len(optimizers.SOLVERS), "two solver names share a code"
    assert _codes(cpu.OPTIMIZERS) == set(public) | {C.NO_UPDATE}
    kernels = dict(cpu.OPTIMIZERS)
    for code, name in public.items():
        # AdamW is Adam's kernel with its decoupled weight decay.
        expected = "adam" if name == "adamw" else name
        assert _kernel_name(kernels[code]) == expected
        assert getattr(optimizer_kernels, expected) is kernels[code]
        assert name in ref_opt.STEPS
    assert _kernel_name(kernels[C.NO_UPDATE]) == "finalize"


# -- initializers ----------------------------------------------------------------


def test_every_initializer_has_an_object_and_a_reference():
    """Initializers are drawn in NumPy at fit time (no compiled kernel): each name, its object, its reference."""
    assert set(initializers.INITIALIZERS) == set(ref_tk.NAMED_INITIALIZERS)
    for name, initializer in initializers.INITIALIZERS.items():
        assert isinstance(initializer, initializers.VarianceScaling)
        settings = (initializer.scale, initializer.mode, initializer.distribution)
        assert settings == ref_tk.NAMED_INITIALIZERS[name], name
    for code, name in initializers._AUTO.items():
        assert code in _codes(cpu.ACTIVATIONS) and name in initializers.INITIALIZERS


# -- unknown codes raise ---------------------------------------------------------------

UNKNOWN = 97


def _tiny_net(activation, output):
    rng = np.random.RandomState(0)
    net = ref.KernelNet([3, 2, 2], activation, output, np.float64)
    X = rng.uniform(size=(4, 3))
    return net, ref.kernel_input(X, np.float64, False), rng.normal(size=ref.n_params(net.units))


@pytest.mark.parametrize(
    "activation, output, message",
    [(UNKNOWN, C.SQUARED_ERROR, "unknown activation code"), (C.RELU, UNKNOWN, "unknown output code")],
)
def test_unknown_activation_or_output_code_raises(activation, output, message):
    net, data, params = _tiny_net(activation, output)
    with pytest.raises(ValueError, match=message):
        net.predict(data, params)


def test_unknown_optimizer_code_raises():
    net, data, params = _tiny_net(C.RELU, C.SQUARED_ERROR)
    n = len(data[0])
    with pytest.raises(ValueError, match="unknown optimizer code"):
        net.train_epoch(
            data, np.zeros((n, 2)), np.ones(n), np.arange(n), n, [1e-3], [0.9], params,
            np.zeros((2, params.size)), alpha=0.0, l1=0.0, opt=UNKNOWN, hp=np.zeros(C.N_HYPERPARAMETERS), step=0,
        )
