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
ADAGRAD = 3
RMSPROP = 4
NADAM = 5
ADAMAX = 6
ADAMW = 7
FTRL = 8

# Layout of the optimizer vector passed to the kernels: hyperparameters, then
# running scalars the kernels update in place.
HP_NESTEROV = 0
HP_BETA_2 = 1  # also RMSprop's rho
HP_EPSILON = 2
HP_CENTERED = 3
HP_WEIGHT_DECAY = 4
HP_LR_POWER = 5
HP_L1 = 6
HP_L2 = 7
HP_L2_SHRINKAGE = 8
HP_BETA = 9
HP_PRODUCT = 10  # running product of Nadam's momentum schedule
N_HYPERPARAMETERS = 11
