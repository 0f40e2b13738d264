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
HIDDEN_ACTIVATION = 4  # prediction only: the output layer applies the hidden activation

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

# More hidden activations (the chapter's toolkit).
LEAKY_RELU = 4
RRELU = 5
PRELU = 6
ELU = 7
SELU = 8
GELU = 9
SWISH = 10
RELU_FAMILY = (RELU, LEAKY_RELU, RRELU, PRELU)

# Batch-normalization placement in hidden layers.
BN_NONE = 0
BN_BEFORE = 1  # dense (no bias) -> batch norm -> activation
BN_AFTER = 2  # dense -> activation -> batch norm

# Forward modes.
INFERENCE = 0  # moving statistics, no dropout, mean RReLU slope
TRAINING = 1  # batch statistics (moving ones updated), dropout, random RReLU slopes
MC_DROPOUT = 2  # moving statistics, dropout on, mean RReLU slope

# Integer options vector.
IO_ACTIVATION = 0
IO_OUTPUT = 1
IO_BATCH_NORM = 2
IO_INPUT_BATCH_NORM = 3
IO_ALPHA_DROPOUT = 4
N_IOPTIONS = 5

# Float options vector.
FO_ACT_ALPHA = 0  # leaky slope, ELU alpha
FO_RRELU_LOWER = 1
FO_RRELU_UPPER = 2
FO_BN_MOMENTUM = 3
FO_BN_EPSILON = 4
FO_MAX_NORM = 5  # 0: off
FO_CLIPVALUE = 6  # 0: off
FO_CLIPNORM = 7  # 0: off
FO_GLOBAL_CLIPNORM = 8  # 0: off
FO_LOG_EPS = 9  # probabilities are clipped to [eps, 1 - eps] in the log loss
N_FOPTIONS = 10

# Columns of the layout table; row l < n_layers is weight layer l, row
# n_layers the input features.
L_W = 0  # start of the weight matrix
L_B = 1  # start of the bias
L_A = 2  # start of the layer's rows in the activation buffers
L_P = 3  # start of the PReLU slopes (-1: none)
L_G = 4  # start of batch-norm gamma, beta follows (-1: none)
L_S = 5  # start of batch-norm moving mean in the statistics, variance follows (-1: none)
L_X = 6  # start of this layer's extra parameters (PReLU, gamma, beta)
N_LAYOUT = 7

SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
