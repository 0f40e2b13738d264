"""Registries of activations by name: hidden layers and output layer + loss."""

from skdeep.kernels import codes

#: Hidden-layer activations: name -> kernel code.
HIDDEN = {
    "identity": codes.IDENTITY,
    "logistic": codes.LOGISTIC,
    "tanh": codes.TANH,
    "relu": codes.RELU,
}

#: Output activations (scikit-learn's ``out_activation_``) -> code of the
#: activation fused with its canonical loss.
OUTPUT = {
    "identity": codes.SQUARED_ERROR,
    "exp": codes.POISSON,
    "logistic": codes.BINARY_LOG_LOSS,
    "softmax": codes.MULTICLASS_LOG_LOSS,
}
