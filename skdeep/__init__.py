"""scikit-deep: deep multilayer perceptrons the scikit-learn way, on Numba kernels."""

from skdeep._mlp import MLPClassifier, MLPRegressor, SelfNormalizationWarning
from skdeep._transfer import PretrainedLayers
from skdeep.autoencoder import StackedAutoencoder
from skdeep.lr_finder import LRFinderResult, lr_find
from skdeep.precompile import precompile

__version__ = "0.1.0"

__all__ = [
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
