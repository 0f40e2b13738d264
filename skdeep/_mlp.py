"""Multilayer perceptron estimators: scikit-learn's API, validation, no math."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from skdeep import _engine, optimizers, schedules
from skdeep._activations import HIDDEN, OUTPUT
from skdeep.optimizers import Optimizer, OptimizerState
from skdeep.schedules import Schedule



class BaseMultilayerPerceptron(BaseEstimator):
    """Shared fitting and prediction logic of :class:`MLPClassifier` and :class:`MLPRegressor`."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(HIDDEN))],
        "solver": [StrOptions({"lbfgs", *optimizers.SOLVERS}), Optimizer],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"}), Schedule],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "l1": [Interval(Real, 0, None, closed="left")],
        "callbacks": [list, None],
    }

    # -- fitting -----------------------------------------------------------

    def _fit(self, X, y, sample_weight, incremental, eval_set=None):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if not all(isinstance(size, Integral) and size > 0 for size in hidden_layer_sizes):
            raise ValueError(
                "hidden_layer_sizes must be positive integers, got %s." % hidden_layer_sizes
            )
        stochastic = self.solver != "lbfgs"
        optimizer = optimizers.resolve(self) if stochastic else None
        schedule = schedules.resolve(self) if stochastic else None

        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y, y = self._validate_input(X, y, incremental, reset=first_pass)
        sw = self._sample_weight(sample_weight, X, y)
        units = [X.shape[1], *hidden_layer_sizes, Y.shape[1]]
        random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(Y, units, X.dtype, random_state)
        else:
            self._check_warm_start_shapes(units)

        network = self._network(units, X.dtype)
        self._set_params_vector(network, network.pack(self.coefs_, self.intercepts_))
        if not stochastic:
            self.loss_, self.n_iter_ = _engine.fit_lbfgs(
                network, self._params, _engine.KernelInput(X, X.dtype), Y, sw,
                alpha=self.alpha, l1=self.l1, max_iter=self.max_iter,
                max_fun=self.max_fun, tol=self.tol, verbose=self.verbose,
            )
        else:
            state = self.__dict__.get("_optimizer")
            if not incremental or state is None or state.slots.shape[1] != network.n_params or state.code != optimizer.code:
                self._optimizer = OptimizerState(optimizer, network.n_params, X.dtype)
            self._fit_stochastic(network, X, Y, y, sw, random_state, incremental, schedule, eval_set)
        self.zero_weight_fraction_ = float(np.mean(self._params[: network.n_coefs] == 0))
        return self

    def _fit_stochastic(self, network, X, Y, y, sw, random_state, incremental, schedule, eval_set):
        validation_score = None
        if eval_set is not None:
            validation_score = self._eval_set_score(network, eval_set, X.dtype)
        elif self.early_stopping:
            X, Y, sw, validation_score = self._validation_split(network, X, Y, y, sw, random_state)
        if validation_score is not None and self.validation_scores_ is None:
            self.validation_scores_ = []
        n_samples = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going "
                    "to be clipped"
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        _engine.fit_stochastic(
            self, network, self._params, _engine.KernelInput(X, X.dtype), Y, sw,
            optimizer=self._optimizer, schedule=schedule,
            learning_rate_init=self.learning_rate_init, alpha=self.alpha, l1=self.l1,
            batch_size=batch_size, max_iter=self.max_iter, shuffle=self.shuffle,
            random_state=random_state, tol=self.tol,
            n_iter_no_change=self.n_iter_no_change, incremental=incremental,
            validation_score=validation_score, early_stopping=self.early_stopping,
            callbacks=list(self.callbacks or []), verbose=self.verbose,
        )

    def _scorer(self, network, X_val, y_val, sw_val):
        """``params -> score`` on a held-out set, NaN when the output is not finite."""

        def validation_score(params):
            output = network.predict(params, X_val)
            if output is None or not np.isfinite(output).all():
                return np.nan
            return self._score_function(y_val, self._output_to_prediction(output), sample_weight=sw_val)

        return validation_score

    def _eval_set_score(self, network, eval_set, dtype):
        """Validation scorer for a user-given ``(X_val, y_val[, sample_weight_val])``."""
        if not isinstance(eval_set, (tuple, list)) or len(eval_set) not in (2, 3):
            raise ValueError(
                "eval_set must be a tuple (X_val, y_val) or (X_val, y_val, sample_weight_val)."
            )
        X_val = validate_data(self, eval_set[0], accept_sparse=["csr", "csc"], reset=False, dtype=dtype)
        y_val = np.asarray(eval_set[1])
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = column_or_1d(y_val)
        if len(y_val) != X_val.shape[0]:
            raise ValueError(
                f"eval_set has {X_val.shape[0]} samples in X_val but {len(y_val)} in y_val."
            )
        sw_val = None
        if len(eval_set) == 3 and eval_set[2] is not None:
            sw_val = _check_sample_weight(eval_set[2], X_val)
        return self._scorer(network, X_val, y_val, sw_val)

    def _validation_split(self, network, X, Y, y, sw, random_state):
        """Hold out ``validation_fraction`` of the data, drawn as scikit-learn draws it."""
        stratify = y if is_classifier(self) and Y.shape[1] == 1 else None
        X, X_val, Y, _, sw, sw_val, _, y_val = train_test_split(
            X, Y, sw, y, random_state=random_state, test_size=self.validation_fraction,
            stratify=stratify,
        )
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the "
                "size of your dataset."
            )
        return X, Y, sw, self._scorer(network, X_val, y_val, sw_val)

    def _initialize(self, Y, units, dtype, random_state):
        """Set the fitted attributes and draw the initial weights as scikit-learn does.

        Glorot & Bengio (2010) uniform initialization, ``U(-r, r)`` with
        ``r = sqrt(6 / (fan_in + fan_out))`` (``sqrt(2 / ...)`` for logistic).
        """
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(units)
        self.out_activation_ = self._output_activation()
        factor = 2.0 if self.activation == "logistic" else 6.0
        coefs, intercepts = [], []
        for fan_in, fan_out in zip(units[:-1], units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coefs.append(random_state.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype, copy=False))
            intercepts.append(random_state.uniform(-bound, bound, fan_out).astype(dtype, copy=False))
        self.coefs_, self.intercepts_ = coefs, intercepts
        if self.solver != "lbfgs":
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self.history_ = []
            self._schedule_state = {"step": 0, "epoch": 0, "n_seen": 0}
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _check_warm_start_shapes(self, units):
        expected = list(zip(units[:-1], units[1:]))
        found = [np.shape(c) for c in self.coefs_]
        biases = [np.shape(b) for b in self.intercepts_]
        if found != expected or biases != [(n,) for n in units[1:]]:
            raise ValueError(
                f"coefs_ and intercepts_ do not match the network: expected weight "
                f"shapes {expected}, got {found} and bias shapes {biases}. Fit with "
                "warm_start=False to start a new network."
            )

    def _network(self, units, dtype):
        return _engine.Network(units, HIDDEN[self.activation], OUTPUT[self.out_activation_], dtype)

    def _set_params_vector(self, network, params):
        """Store ``params`` and expose ``coefs_``/``intercepts_`` as views of it."""
        self._params = params
        self.coefs_, self.intercepts_ = network.unpack(params)

    def _sample_weight(self, sample_weight, X, y):
        """Sample weights (ones when not given) in the dtype of ``X``."""
        if sample_weight is None:
            return np.ones(X.shape[0], dtype=X.dtype)
        return np.ascontiguousarray(_check_sample_weight(sample_weight, X, dtype=X.dtype))

    # -- prediction ---------------------------------------------------------

    def _forward(self, X):
        """Output layer for ``X``: scikit-learn's input checks, with a fast path."""
        if "coefs_" not in self.__dict__:
            check_is_fitted(self)
        params = self.__dict__.get("_params")
        if params is None or not all(
            a.base is params for a in (*self.coefs_, *self.intercepts_)
        ):
            params = None
        dtype = self.coefs_[0].dtype
        if not (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype == dtype
            and X.flags.c_contiguous
            and X.shape[0] > 0
            and X.shape[1] == self.n_features_in_
            and not hasattr(self, "feature_names_in_")
        ):
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
            if X.dtype == np.float64 and dtype == np.float32:
                # float64 input to a float32 model: compute in float64, as scikit-learn
                dtype, params = X.dtype, None
        units = [self.n_features_in_, *(b.shape[0] for b in self.intercepts_)]
        network = self._network(units, dtype)
        if params is None:
            params = network.pack(self.coefs_, self.intercepts_)
        output = network.predict(params, X)
        if output is None:
            validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
            raise ValueError("Input X contains NaN or infinity.")
        return output

    # -- persistence -------------------------------------------------------

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_params", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "coefs_" in state:
            units = [self.n_features_in_, *(b.shape[0] for b in self.intercepts_)]
            network = self._network(units, self.coefs_[0].dtype)
            self._set_params_vector(network, network.pack(self.coefs_, self.intercepts_))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _check_solver(self):
        """``partial_fit`` exists for stochastic solvers without early stopping."""
        if self.solver == "lbfgs":
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. %s is not "
                "stochastic." % self.solver
            )
        if self.early_stopping:
            raise AttributeError("partial_fit does not support early_stopping=True")
        return True


_COMMON_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers.
    solver : str or Optimizer, default='adam'
        'lbfgs', a stochastic optimizer's name ('sgd', 'adam', 'nadam',
        'adamax', 'adamw', 'adagrad', 'rmsprop', 'ftrl') or an object from
        :mod:`skdeep.optimizers`.
    alpha : float, default=0.0001
        L2 penalty, scaled as in scikit-learn: ``0.5 * alpha * ||W||^2 / sum(w)``.
    batch_size : int or 'auto', default='auto'
        Minibatch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : str or Schedule, default='constant'
        scikit-learn's 'constant', 'invscaling' or 'adaptive' ('invscaling' and
        'adaptive' act with ``solver='sgd'`` only), or an object from
        :mod:`skdeep.schedules`, for every stochastic solver. The schedule's
        position continues across warm starts, ``partial_fit`` and pickling.
    learning_rate_init : float, default=0.001
        Initial learning rate (sgd, adam).
    power_t : float, default=0.5
        Exponent of 'invscaling'.
    max_iter : int, default=200
        Maximum number of epochs (stochastic solvers) or iterations (lbfgs).
    shuffle : bool, default=True
        Shuffle the samples every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, shuffling and the early-stopping split.
    tol : float, default=1e-4
        Tolerance of the stopping rules.
    verbose : bool, default=False
        Print progress.
    warm_start : bool, default=False
        Reuse the previous solution (``coefs_``, ``intercepts_``) as initialization.
    momentum : float, default=0.9
        Momentum of 'sgd'.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with 'sgd'.
    early_stopping : bool, default=False
        Stop when the score on a held-out ``validation_fraction`` of the training
        data stops improving, and keep the best weights.
    validation_fraction : float, default=0.1
        Fraction of training data held out for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates of the first and second moment estimates.
    epsilon : float, default=1e-8
        Adam's numerical-stability constant.
    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before stopping.
    max_fun : int, default=15000
        Maximum number of loss evaluations of 'lbfgs'.
    l1 : float, default=0.0
        L1 penalty on the weights, scaled like ``alpha``:
        ``l1 * ||W||_1 / sum(w)``. With ``solver='ftrl'`` it acts proximally
        and yields exact zeros.
    callbacks : list of Callback or None, default=None
        Epoch-level hooks (:mod:`skdeep.callbacks`); one returning True from
        ``on_epoch_end`` stops training.
"""

_ATTRIBUTES_DOC = """
    Attributes
    ----------
    loss_ : float
        Loss at the end of fitting.
    best_loss_ : float or None
        Minimum training loss (None with early stopping).
    loss_curve_ : list of float
        Training loss after each epoch (stochastic solvers).
    validation_scores_ : list of float or None
        Validation score after each epoch with early stopping.
    best_validation_score_ : float or None
        Best validation score with early stopping.
    t_ : int
        Number of training samples seen.
    coefs_ : list of ndarray
        ``coefs_[i]`` is the ``(fan_in, fan_out)`` weight matrix of layer ``i``.
    intercepts_ : list of ndarray
        ``intercepts_[i]`` is the bias vector of layer ``i + 1``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen during fit, when ``X`` has string column names.
    n_iter_ : int
        Number of epochs (iterations for lbfgs) run by the last call.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        Name of the output activation.
    history_ : list of dict
        One record per epoch (stochastic solvers): ``epoch``, ``loss``,
        ``validation_score``, ``learning_rate``, ``time``.
    zero_weight_fraction_ : float
        Fraction of the weights (``coefs_``) that are exactly zero.
"""


class MLPClassifier(ClassifierMixin, BaseMultilayerPerceptron):
    """Multilayer perceptron classifier, a drop-in for scikit-learn's.

    Trains with the same math as :class:`sklearn.neural_network.MLPClassifier`
    (same initialization, shuffling and updates for a given ``random_state``)
    on compiled Numba kernels. Beyond scikit-learn: ``class_weight``.
    """

    __doc__ += (
        _COMMON_DOC
        + """    class_weight : dict, list of dict, 'balanced' or None, default=None
        Weights of the classes, multiplied into ``sample_weight``; 'balanced'
        uses ``sum(w) / (n_classes * sum of w in the class)`` with the sample
        weights ``w``, so a weight of 2 equals a repeated row.
"""
        + _ATTRIBUTES_DOC
        + """    classes_ : ndarray or list of ndarray
        Class labels.
"""
    )

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "class_weight": [dict, list, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        l1=0.0,
        callbacks=None,
        class_weight=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.l1 = l1
        self.callbacks = callbacks
        self.class_weight = class_weight

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, eval_set=None):
        """Fit the model to ``X`` and labels ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels, or a label indicator matrix (multilabel).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights, multiplied by ``class_weight``.
        eval_set : tuple (X_val, y_val) or (X_val, y_val, sample_weight_val), default=None
            Validation data scored after every epoch (``validation_scores_``);
            with ``early_stopping=True`` it replaces the internal split.

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, sample_weight, incremental=False, eval_set=eval_set)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over ``X``, ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            All classes; required in the first call.

        Returns
        -------
        self : MLPClassifier
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        return self._output_to_prediction(self._forward(X))

    def predict_proba(self, X):
        """Class probabilities, ordered as ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        output = self._forward(X)
        if self.n_outputs_ == 1:
            return np.hstack([1 - output, output])
        return output

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)

    def _output_to_prediction(self, output):
        if self.n_outputs_ == 1:
            output = output.ravel()
        return self._label_binarizer.inverse_transform(output)

    def _score_function(self, y, y_pred, sample_weight=None):
        return accuracy_score(y, y_pred, sample_weight=sample_weight)

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
            dtype=(np.float64, np.float32), reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` "
                        f"has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        Y = self._label_binarizer.transform(y).astype(X.dtype)
        return X, Y, y

    def _sample_weight(self, sample_weight, X, y):
        sw = super()._sample_weight(sample_weight, X, y)
        if self.class_weight is None:
            return sw
        if y.ndim == 2:  # multilabel: one dict (or 'balanced') per output
            return sw * compute_sample_weight(self.class_weight, y).astype(X.dtype)
        # 'balanced' counts the classes with the sample weights, so weighting a row
        # by 2 and repeating it give the same model.
        with np.errstate(divide="ignore"):
            class_weight = compute_class_weight(
                self.class_weight, classes=self.classes_, y=y, sample_weight=sw
            )
        if not np.isfinite(class_weight).all():
            raise ValueError(
                "class_weight='balanced' needs a positive total sample weight in every "
                f"class; classes {self.classes_[~np.isfinite(class_weight)]} have none."
            )
        return sw * class_weight[np.searchsorted(self.classes_, y)].astype(X.dtype)

    def _check_solver(self):
        super()._check_solver()
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            raise AttributeError(
                "partial_fit does not support class_weight='balanced': one batch does "
                "not show the class frequencies. Pass a dict, e.g. from "
                "sklearn.utils.class_weight.compute_class_weight('balanced', "
                "classes=classes, y=y_sample)."
            )
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMultilayerPerceptron):
    """Multilayer perceptron regressor, a drop-in for scikit-learn's.

    Trains with the same math as :class:`sklearn.neural_network.MLPRegressor`
    on compiled Numba kernels; supports multi-output targets.
    """

    __doc__ += (
        _COMMON_DOC
        + """    loss : {'squared_error', 'poisson'}, default='squared_error'
        Half squared error with identity output, or half Poisson deviance with
        exponential output.
"""
        + _ATTRIBUTES_DOC
    )

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        l1=0.0,
        callbacks=None,
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.l1 = l1
        self.callbacks = callbacks

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, eval_set=None):
        """Fit the model to ``X`` and targets ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        eval_set : tuple (X_val, y_val) or (X_val, y_val, sample_weight_val), default=None
            Validation data scored after every epoch (``validation_scores_``);
            with ``early_stopping=True`` it replaces the internal split.

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight, incremental=False, eval_set=eval_set)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over ``X``, ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predict targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        return self._output_to_prediction(self._forward(X))

    def _output_to_prediction(self, output):
        return output.ravel() if output.shape[1] == 1 else output

    def _score_function(self, y, y_pred, sample_weight=None):
        return r2_score(y, y_pred, sample_weight=sample_weight)

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
            dtype=(np.float64, np.float32), reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(
                "Some value(s) of y are negative which is not allowed for Poisson regression."
            )
        Y = np.ascontiguousarray(y.reshape(len(y), -1), dtype=X.dtype)
        return X, Y, y
