"""scikit-deep: deep multilayer perceptrons the scikit-learn way, on Numba kernels."""

from skdeep._mlp import MLPClassifier, MLPRegressor, SelfNormalizationWarning
from skdeep._transfer import PretrainedLayers
from skdeep._validation import EvalSetWarning
from skdeep.autoencoder import StackedAutoencoder
from skdeep.lr_finder import LRFinderResult, lr_find
from skdeep.precompile import precompile

__version__ = "0.1.0"

# Public import paths for the classes defined in private modules: pickles, skops
# trust lists and reprs of types name skdeep.MLPClassifier, not skdeep._mlp.
for _public in (MLPClassifier, MLPRegressor, PretrainedLayers):
    _public.__module__ = __name__
del _public

__all__ = [
    "EvalSetWarning",
    "LRFinderResult",
    "MLPClassifier",
    "MLPRegressor",
    "PretrainedLayers",
    "SelfNormalizationWarning",
    "StackedAutoencoder",
    "__version__",
    "lr_find",
    "precompile",
]
