"""scikit-deep: deep multilayer perceptrons the scikit-learn way, on Numba kernels."""

from skdeep._mlp import MLPClassifier, MLPRegressor

__version__ = "0.1.0"

__all__ = ["MLPClassifier", "MLPRegressor", "__version__"]
