"""scikit-learn's own MLP tests, run on skdeep's estimators.

The installed scikit-learn's ``neural_network/tests/test_mlp.py`` is read, its
import of ``MLPClassifier``/``MLPRegressor`` is swapped for skdeep's, and its
tests become this module's. Tests that read or write scikit-learn's private
attributes or methods are skipped, each with the reason (also listed in
docs/estimators.md).
"""

import types
from pathlib import Path

import pytest
import sklearn

SOURCE = Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"

SKIPPED = {
    "test_gradient": "calls scikit-learn's private _loss_grad_lbfgs; "
    "tests/test_gradients.py checks skdeep's gradients by finite differences",
    "test_learning_rate_warmstart": "reads scikit-learn's private _optimizer.learning_rate",
    "test_adaptive_learning_rate": "reads scikit-learn's private _optimizer.learning_rate",
}


def _load():
    if not SOURCE.exists():
        return None
    source = SOURCE.read_text()
    if IMPORT not in source:
        raise AssertionError(f"{SOURCE} no longer imports the MLPs as {IMPORT!r}")
    module = types.ModuleType("sklearn_test_mlp_on_skdeep")
    module.__file__ = str(SOURCE)
    exec(compile(source.replace(IMPORT, "from skdeep import MLPClassifier, MLPRegressor"), str(SOURCE), "exec"), module.__dict__)
    return module


_module = _load()
if _module is None:
    pytest.skip(f"scikit-learn's tests are not installed ({SOURCE})", allow_module_level=True)

for _name, _test in vars(_module).items():
    if _name.startswith("test_") and callable(_test):
        if _name in SKIPPED:
            _test = pytest.mark.skip(reason=SKIPPED[_name])(_test)
        globals()[_name] = _test


@pytest.fixture
def global_random_seed():
    """scikit-learn's fixture at its default value (SKLEARN_TESTS_GLOBAL_RANDOM_SEED=42)."""
    return 42


def test_the_swap_reached_every_test():
    import skdeep

    assert _module.MLPClassifier is skdeep.MLPClassifier
    assert _module.MLPRegressor is skdeep.MLPRegressor
    assert set(SKIPPED) <= {name for name in vars(_module) if name.startswith("test_")}
