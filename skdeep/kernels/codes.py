"""Integer codes shared by the estimators' registries and every kernel backend.

Kernels receive plain integers instead of Python objects, so one compiled
specialization per dtype serves every activation, loss and optimizer.
"""

# Hidden-layer activations.
IDENTITY = 0
LOGISTIC = 1
TANH = 2
RELU = 3

# Output activation fused with its canonical loss.
SQUARED_ERROR = 0  # identity output, half squared error
POISSON = 1  # exp output, half Poisson deviance
BINARY_LOG_LOSS = 2  # logistic output, binary cross-entropy per output
MULTICLASS_LOG_LOSS = 3  # softmax output, categorical cross-entropy

# Parameter updates.
NO_UPDATE = 0  # only finalize the gradient (used by L-BFGS)
SGD = 1
ADAM = 2

# Layout of the optimizer hyperparameter vector passed to the kernels.
HP_MOMENTUM = 0
HP_NESTEROV = 1
HP_BETA_1 = 2
HP_BETA_2 = 3
HP_EPSILON = 4
N_HYPERPARAMETERS = 5
