"""scikit-deep: deep multilayer perceptrons the scikit-learn way, on Numba kernels."""

from skdeep._mlp import MLPClassifier, MLPRegressor, SelfNormalizationWarning
from skdeep._transfer import PretrainedLayers
from skdeep.autoencoder import StackedAutoencoder

__version__ = "0.1.0"

__all__ = [
    "MLPClassifier",
    "MLPRegressor",
    "PretrainedLayers",
    "SelfNormalizationWarning",
    "StackedAutoencoder",
    "__version__",
]
