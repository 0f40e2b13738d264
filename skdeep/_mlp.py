"""Multilayer perceptron estimators: scikit-learn's API, validation, no math."""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, get_scorer_names, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from skdeep import _device, _engine, _transfer, _validation, optimizers, schedules
from skdeep import activations, initializers
from skdeep.activations import Activation
from skdeep.initializers import VarianceScaling
from skdeep.optimizers import Optimizer, OptimizerState
from skdeep.schedules import Schedule


def _warn_overflow(output):
    """Warn, as NumPy's ``exp`` would, when a finite input gave a non-finite output."""
    if not np.isfinite(output).all():
        warnings.warn(
            "overflow: the model's output is not finite for some rows of X (its weights or these "
            "inputs are too large for the output activation).",
            RuntimeWarning,
            stacklevel=4,
        )


class SelfNormalizationWarning(UserWarning):
    """A SELU network is configured in a way that breaks self-normalization."""


class BaseMultilayerPerceptron(BaseEstimator):
    """Shared fitting and prediction logic of :class:`MLPClassifier` and :class:`MLPRegressor`."""

    def _store_parameters(self, parameters):
        """``__init__``'s only work: keep every argument as an attribute of the same name."""
        for name, value in parameters.items():
            if name != "self":
                setattr(self, name, value)

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(activations.ACTIVATIONS)), Activation],
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
        "scoring": [StrOptions({"loss", *get_scorer_names()}), callable, None],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "l1": [Interval(Real, 0, None, closed="left")],
        "callbacks": [list, None],
        "kernel_initializer": [StrOptions({"auto", *initializers.INITIALIZERS}), VarianceScaling, None],
        "batch_norm": [StrOptions({"before", "after"}), None],
        "batch_norm_input": ["boolean"],
        "batch_norm_momentum": [Interval(Real, 0, 1, closed="both")],
        "batch_norm_epsilon": [Interval(Real, 0, None, closed="neither")],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "input_dropout": [Interval(Real, 0, 1, closed="left")],
        "alpha_dropout": ["boolean"],
        "max_norm": [Interval(Real, 0, None, closed="neither"), None],
        "clipvalue": [Interval(Real, 0, None, closed="neither"), None],
        "clipnorm": [Interval(Real, 0, None, closed="neither"), None],
        "global_clipnorm": [Interval(Real, 0, None, closed="neither"), None],
        "diagnostics": ["boolean"],
        "device": [StrOptions(set(_device.DEVICES))],
        **_transfer.PARAMETER_CONSTRAINTS,
    }

    # -- fitting -----------------------------------------------------------

    def _fit(self, X, y, sample_weight, incremental, eval_set=None, classes=None):
        """Fit as one transaction: a call that raises leaves the estimator as it was.

        Training writes into new vectors (:meth:`_fit_new_state`); the lists and
        dicts it appends to are copied first, so restoring the previous
        attributes restores the previous model. A diverging fit is the exception:
        it keeps the last weights that gave finite losses, and raises.
        """
        saved = {
            name: (value.copy() if isinstance(value, (list, dict)) else value)
            for name, value in self.__dict__.items()
        }
        if isinstance(saved.get("_optimizer"), OptimizerState):
            saved["_optimizer"] = saved["_optimizer"].copy()
        try:
            if incremental:
                self._start_partial_fit(y, classes)
            return self._fit_new_state(X, y, sample_weight, incremental, eval_set)
        except _engine.Diverged:
            raise
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _fit_new_state(self, X, y, sample_weight, incremental, eval_set):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if not all(isinstance(size, Integral) and size > 0 for size in hidden_layer_sizes):
            raise ValueError(
                "hidden_layer_sizes must be positive integers, got %s." % hidden_layer_sizes
            )
        stochastic = self.solver != "lbfgs"
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        optimizer = optimizers.resolve(self) if stochastic else None
        schedule = schedules.resolve(self) if stochastic else None

        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y, y = self._validate_input(X, y, incremental, reset=first_pass)
        sw = self._sample_weight(sample_weight, X, y)
        units = [X.shape[1], *hidden_layer_sizes, Y.shape[1]]
        architecture = self._architecture_of(X, units, stochastic)
        random_state = check_random_state(self.random_state)
        if first_pass:
            self._architecture = architecture
            self._initialize(Y, units, X.dtype, random_state)
        else:
            if "_architecture" not in self.__dict__:  # fitted attributes set by hand (scikit-learn's tests do)
                self._architecture = architecture
                for name in _engine.PARAMETER_PARTS + _engine.STATISTICS_PARTS:
                    self.__dict__.setdefault(name, [])
            self._check_warm_start(units, architecture)

        network = self._network(units, X.dtype, _device.backend(self.device))
        if not first_pass:
            self._check_fitted_arrays(network)
        self._set_arrays(network, *network.pack(self.__dict__))
        if not stochastic:
            self.loss_, self.n_iter_ = _engine.fit_lbfgs(
                network, _engine.Parameters(self._params, self._stats),
                _engine.Data.from_matrix(X, X.dtype), _engine.Targets(Y, sw), alpha=self.alpha,
                l1=self.l1, max_iter=self.max_iter, max_fun=self.max_fun, tol=self.tol,
                verbose=self.verbose, first_trainable=_transfer.first_trainable(self),
            )
        else:
            state = self.__dict__.get("_optimizer")
            if not incremental or state is None or state.slots.shape[1] != network.n_params or state.code != optimizer.code:
                self._optimizer = OptimizerState(optimizer, network.n_params, X.dtype)
            self._fit_stochastic(network, X, Y, y, sw, random_state, incremental, schedule, eval_set)
        self.zero_weight_fraction_ = float(np.mean(self._params[: network.n_coefs] == 0))
        return self

    def _start_partial_fit(self, y, classes):
        """First-call set-up of ``partial_fit`` (the classifier's classes)."""

    def _architecture_of(self, X, units, stochastic):
        """The network's options (:func:`skdeep._engine.architecture`), after checking them."""
        activation = activations.resolve(self.activation)
        if np.ndim(self.dropout) and len(self.dropout) != len(units) - 2:
            raise ValueError(
                f"dropout has {len(self.dropout)} rates for {len(units) - 2} hidden layers."
            )
        dropout = np.zeros(len(units) - 1)
        dropout[0] = self.input_dropout
        dropout[1:] = self.dropout
        if not np.all((dropout >= 0) & (dropout < 1)):
            raise ValueError(f"dropout rates must be in [0, 1), got {list(dropout[1:])}.")
        if sp.issparse(X) and (self.batch_norm_input or self.input_dropout > 0):
            raise ValueError(
                "batch_norm_input and input_dropout do not support sparse X; densify X "
                "or scale it in a Pipeline."
            )
        architecture = _engine.architecture(
            activation._options(), self._output_activation(), batch_norm=self.batch_norm,
            batch_norm_input=self.batch_norm_input, batch_norm_momentum=self.batch_norm_momentum,
            batch_norm_epsilon=self.batch_norm_epsilon, dropout=dropout,
            alpha_dropout=self.alpha_dropout, max_norm=self.max_norm, clipvalue=self.clipvalue,
            clipnorm=self.clipnorm, global_clipnorm=self.global_clipnorm,
        )
        if not stochastic and _engine.is_random(architecture):
            raise ValueError(
                "dropout and RReLU make the loss random; use a stochastic solver, not 'lbfgs'."
            )
        if isinstance(activation, activations.SELU):
            self._check_self_normalization(X, dropout, activation)
        return architecture

    def _check_self_normalization(self, X, dropout, activation):
        """Warn about what breaks SELU's self-normalization (the chapter's conditions)."""
        problems = []
        initializer = initializers.resolve(self.kernel_initializer, activation.code)
        if initializer is None or initializer.get_params() != initializers.INITIALIZERS["lecun_normal"].get_params():
            problems.append("kernel_initializer is not LeCun normal (use 'lecun_normal' or 'auto')")
        if self.batch_norm or self.batch_norm_input:
            problems.append("batch norm")
        if self.alpha > 1e-4 or self.l1 > 0 or self.max_norm:
            problems.append("l1/l2 regularization or max-norm")
        if dropout.any() and not self.alpha_dropout:
            problems.append("ordinary dropout (use alpha_dropout=True)")
        if not sp.issparse(X) and X.shape[0] > 1:
            mean, std = X.mean(axis=0), X.std(axis=0)
            if np.any(np.abs(mean) > 1.0) or np.any(std > 3.0):
                problems.append("inputs that are not standardized (use StandardScaler)")
        if problems:
            warnings.warn(
                "activation='selu' self-normalizes only with standardized inputs, LeCun "
                "normal initialization and no batch norm, l1/l2, max-norm or ordinary "
                "dropout; this model has: " + "; ".join(problems) + ".",
                SelfNormalizationWarning,
            )

    def _fit_stochastic(self, network, X, Y, y, sw, random_state, incremental, schedule, eval_set):
        self._start_stochastic_state()
        validation = None
        if eval_set is not None:
            validation = _validation.from_eval_set(self, network, eval_set, X)
        elif self.early_stopping:
            X, Y, sw, validation = _validation.split(self, network, X, Y, y, sw, random_state)
        if validation is not None and self.validation_scores_ is None:
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
        history = _engine.fit_stochastic(
            network, _engine.Parameters(self._params, self._stats),
            _engine.Data.from_matrix(X, X.dtype), _engine.Targets(Y, sw), self._history(),
            optimizer=self._optimizer, schedule=schedule,
            learning_rate_init=self.learning_rate_init, alpha=self.alpha, l1=self.l1,
            batch_size=batch_size, max_iter=self.max_iter, shuffle=self.shuffle,
            random_state=random_state, tol=self.tol,
            n_iter_no_change=self.n_iter_no_change, incremental=incremental,
            validation=validation, early_stopping=self.early_stopping,
            callbacks=list(self.callbacks or []), verbose=self.verbose, model=self,
            publish=self._publish, diagnostics=self.diagnostics,
            first_trainable=_transfer.first_trainable(self),
        )
        self._publish(history)

    #: Fitted attributes mirroring the engine's History fields.
    _HISTORY = {
        "n_iter": "n_iter_", "t": "t_", "loss": "loss_", "loss_curve": "loss_curve_",
        "history": "history_", "best_loss": "best_loss_", "validation_scores": "validation_scores_",
        "best_validation_score": "best_validation_score_",
        "no_improvement_count": "_no_improvement_count", "position": "_schedule_state",
    }

    def _history(self):
        """The engine's :class:`~skdeep._engine.History`, continuing this model's."""
        return _engine.History(**{field: self.__dict__.get(name) for field, name in self._HISTORY.items()})

    def _publish(self, history):
        """Assign the fitted attributes of ``history`` (after every epoch and at the end)."""
        for field, name in self._HISTORY.items():
            setattr(self, name, getattr(history, field))

    def _initialize(self, Y, units, dtype, random_state):
        """Set the fitted attributes and draw the initial weights.

        Without ``kernel_initializer``, scikit-learn's draws: Glorot & Bengio
        (2010) uniform, ``U(-r, r)`` with ``r = sqrt(6 / (fan_in + fan_out))``
        (``sqrt(2 / ...)`` for logistic), biases alike. With one, its weights
        and zero biases (Keras). Batch norm starts at ``gamma = 1``,
        ``beta = 0``, moving mean 0 and variance 1; PReLU slopes at ``alpha_init``.
        """
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(units)
        self.out_activation_ = self._output_activation()
        activation = activations.resolve(self.activation)
        initializer = initializers.resolve(self.kernel_initializer, activation.code)
        factor = 2.0 if isinstance(activation, activations.Logistic) else 6.0
        coefs, intercepts = [], []
        for fan_in, fan_out in zip(units[:-1], units[1:]):
            if initializer is None:
                bound = np.sqrt(factor / (fan_in + fan_out))
                coefs.append(random_state.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype, copy=False))
                intercepts.append(random_state.uniform(-bound, bound, fan_out).astype(dtype, copy=False))
            else:
                coefs.append(initializer.draw(fan_in, fan_out, random_state).astype(dtype, copy=False))
                intercepts.append(np.zeros(fan_out, dtype=dtype))
        if self.batch_norm == "before":
            for bias in intercepts[:-1]:
                bias[:] = 0.0  # batch norm's beta replaces the bias
        self.coefs_, self.intercepts_ = coefs, intercepts
        hidden = units[1:-1]
        self.prelu_alpha_ = (
            [np.full(width, activation.alpha_init, dtype=dtype) for width in hidden]
            if isinstance(activation, activations.PReLU) else []
        )
        widths = ([units[0]] if self.batch_norm_input else []) + (list(hidden) if self.batch_norm else [])
        self.batch_norm_gamma_ = [np.ones(width, dtype=dtype) for width in widths]
        self.batch_norm_beta_ = [np.zeros(width, dtype=dtype) for width in widths]
        self.batch_norm_moving_mean_ = [np.zeros(width, dtype=dtype) for width in widths]
        self.batch_norm_moving_var_ = [np.ones(width, dtype=dtype) for width in widths]
        _transfer.reuse_layers(self)
        if self.solver != "lbfgs":
            for name in ("loss_curve_", "history_", "_schedule_state"):
                self.__dict__.pop(name, None)
            self._start_stochastic_state()

    def _start_stochastic_state(self):
        """Give a stochastic fit the history it continues, keeping what is there.

        Fills in what a first fit, or a warm start from 'lbfgs' or with
        ``early_stopping`` switched on or off, lacks.
        """
        if "loss_curve_" not in self.__dict__ or "_schedule_state" not in self.__dict__:
            self.loss_curve_ = []
            self.history_ = []
            self._schedule_state = {"step": 0, "epoch": 0, "n_seen": 0}
            self._no_improvement_count = 0
            self.validation_scores_ = self.best_validation_score_ = self.best_loss_ = None
        if self.early_stopping and self.best_validation_score_ is None:
            self.validation_scores_ = self.validation_scores_ or []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        elif not self.early_stopping and self.best_loss_ is None:
            self.best_loss_ = np.inf
            self.best_validation_score_ = None

    def _check_warm_start(self, units, architecture):
        expected = list(zip(units[:-1], units[1:]))
        found = [np.shape(c) for c in self.coefs_]
        biases = [np.shape(b) for b in self.intercepts_]
        if found != expected or biases != [(n,) for n in units[1:]]:
            raise ValueError(
                f"coefs_ and intercepts_ do not match the network: expected weight "
                f"shapes {expected}, got {found} and bias shapes {biases}. Fit with "
                "warm_start=False to start a new network."
            )
        kept = ("batch_norm", "batch_norm_input")
        if self._architecture["activation"][0] != architecture["activation"][0] or any(
            self._architecture[name] != architecture[name] for name in kept
        ):
            raise ValueError(
                "activation, batch_norm and batch_norm_input must stay as they were "
                "fitted to continue training (warm_start or partial_fit); fit with "
                "warm_start=False to start a new network."
            )
        self._architecture = architecture

    def _network(self, units, dtype, backend="cpu"):
        return _engine.network(units, dtype, self._architecture, backend)

    def _set_arrays(self, network, params, stats):
        """Store the vectors and expose the fitted arrays as views of them."""
        self._params, self._stats = params, stats
        parts = network.unpack(params, stats)
        self.__dict__.update(parts)
        self._views = {name: [(a, a.shape) for a in arrays] for name, arrays in parts.items()}

    def _check_fitted_arrays(self, network):
        """Raise ``ValueError`` unless the fitted arrays are those of ``network``.

        Every list must hold, for each layer the network has, a NumPy array of
        the right shape in one floating dtype (float32 or float64): replaced
        fitted arrays reach compiled code only when they agree.
        """
        dtype = None
        expected = {}
        for name, _, _, shape in network.parts():
            expected.setdefault(name, []).append(shape)
        for name in (*_engine.PARAMETER_PARTS, *_engine.STATISTICS_PARTS):
            arrays, shapes = getattr(self, name, None), expected.get(name, [])
            if not isinstance(arrays, (list, tuple)) or len(arrays) != len(shapes):
                found = f"{len(arrays)} arrays" if isinstance(arrays, (list, tuple)) else type(arrays).__name__
                raise ValueError(
                    f"{name} must be a list of {len(shapes)} arrays for this network, got {found}."
                )
            for index, (array, shape) in enumerate(zip(arrays, shapes)):
                if not isinstance(array, np.ndarray) or array.dtype not in (np.float32, np.float64):
                    kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
                    raise ValueError(
                        f"{name}[{index}] must be a float32 or float64 NumPy array, got {kind}."
                    )
                dtype = dtype or array.dtype
                if array.dtype != dtype:
                    raise ValueError(
                        f"{name}[{index}] is {array.dtype}, the other fitted arrays {dtype}; "
                        "all fitted arrays must share one dtype."
                    )
                if array.shape != tuple(shape):
                    raise ValueError(
                        f"{name}[{index}] has shape {array.shape}; the fitted network needs {tuple(shape)}."
                    )

    def _sample_weight(self, sample_weight, X, y):
        """Sample weights (ones when not given) in the dtype of ``X``."""
        if sample_weight is None:
            return np.ones(X.shape[0], dtype=X.dtype)
        return np.ascontiguousarray(_check_sample_weight(sample_weight, X, dtype=X.dtype))

    # -- prediction ---------------------------------------------------------

    def _vectors(self):
        """``(params, stats)`` the fitted arrays are views of, or ``None`` if any was replaced."""
        views = self.__dict__.get("_views")
        if views is None:
            return None
        for name, arrays in views.items():
            current = self.__dict__.get(name)
            if not isinstance(current, list) or len(current) != len(arrays):
                return None
            for array, (view, shape) in zip(current, arrays):
                if array is not view or array.shape != shape:
                    return None
        return self._params, self._stats

    def _prepare(self, X):
        """``(network, params, stats, X)`` for prediction: scikit-learn's input checks, with a fast path.

        Fitted arrays the user replaced are checked against the network before
        they are packed for the kernels.
        """
        if "coefs_" not in self.__dict__:
            check_is_fitted(self)
        vectors = self._vectors()
        if vectors is not None:
            dtype = vectors[0].dtype
        else:  # replaced arrays: the guard below names what disagrees
            dtype = np.asarray(self.coefs_[0]).dtype if len(self.coefs_) else np.dtype(np.float64)
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
                dtype, vectors = X.dtype, None
            if sp.issparse(X) and (self._architecture["batch_norm_input"] or self._architecture["dropout"][0] > 0):
                X = X.toarray()  # input batch norm and input dropout act on dense rows
        units = [self.n_features_in_, *(np.shape(b)[0] for b in self.intercepts_)]
        backend = _device.predict_backend(getattr(self, "device", "cpu"), X.shape[0])
        network = self._network(units, dtype if dtype in (np.float32, np.float64) else np.float64, backend)
        if vectors is None:
            self._check_fitted_arrays(network)
            vectors = network.pack(self.__dict__)
        return network, *vectors, X

    def _forward(self, X):
        """Output layer for ``X`` in inference mode."""
        network, params, stats, X = self._prepare(X)
        output = network.predict(params, stats, X)
        if output is None:
            validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
            raise ValueError("Input X contains NaN or infinity.")
        _warn_overflow(output)
        return output

    def _forward_mc(self, X, n_samples, random_state):
        """Mean and std of the output layer over ``n_samples`` MC-dropout passes."""
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        network, params, stats, X = self._prepare(X)
        if not network.dropout.any():
            raise ValueError(
                "MC dropout needs a model trained with dropout: fit with dropout > 0 "
                "or input_dropout > 0."
            )
        seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
        result = network.predict_mc(params, stats, X, n_samples, seed)
        if result is None:
            validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
            raise ValueError("Input X contains NaN or infinity.")
        _warn_overflow(result[0])
        return result

    # -- persistence -------------------------------------------------------

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: pickling never changes the live object
        state.pop("_params", None)
        state.pop("_stats", None)
        state.pop("_views", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "coefs_" in state:
            units = [self.n_features_in_, *(np.shape(b)[0] for b in self.intercepts_)]
            network = self._network(units, self.coefs_[0].dtype)
            self._check_fitted_arrays(network)
            self._set_arrays(network, *network.pack(self.__dict__))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = not (self.batch_norm_input or self.input_dropout > 0)
        return tags

    def _check_solver(self):
        """``partial_fit`` exists for stochastic solvers."""
        if self.solver == "lbfgs":
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. %s is not "
                "stochastic." % self.solver
            )
        return True


_COMMON_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : str or Activation, default='relu'
        Activation of the hidden layers: scikit-learn's 'identity', 'logistic',
        'tanh', 'relu', or 'leaky_relu', 'rrelu', 'prelu', 'elu', 'selu',
        'gelu', 'swish', or an object from :mod:`skdeep.activations`.
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
    scoring : str, callable or None, default=None
        Validation score, for ``validation_scores_`` and early stopping: None
        is scikit-learn's (accuracy for classifiers, R² for regressors),
        ``'loss'`` the negative validation loss (the training loss's function
        on the validation data; so ``early_stopping=True, scoring='loss'``
        stops on the validation loss, as Keras' default), or any scikit-learn
        scorer name or callable (:func:`sklearn.metrics.check_scoring`).
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
    kernel_initializer : str, VarianceScaling or None, default=None
        None draws scikit-learn's initial weights; 'glorot_uniform',
        'glorot_normal', 'he_uniform', 'he_normal', 'lecun_uniform',
        'lecun_normal' or a :class:`skdeep.initializers.VarianceScaling` use
        Keras' definitions with zero biases; 'auto' picks by activation.
    batch_norm : {'before', 'after'} or None, default=None
        Batch normalization in every hidden layer, before the activation (the
        dense layer then has no bias) or after it.
    batch_norm_input : bool, default=False
        Batch-normalize the inputs (dense X only).
    batch_norm_momentum : float, default=0.99
        Keras' convention: ``moving = momentum * moving + (1 - momentum) * batch``.
    batch_norm_epsilon : float, default=1e-3
    dropout : float or array-like of shape (n_hidden_layers,), default=0.0
        Dropout rate after each hidden layer (inverted dropout).
    input_dropout : float, default=0.0
        Dropout rate on the inputs (dense X only).
    alpha_dropout : bool, default=False
        Use alpha dropout (keeps SELU's mean and variance) instead.
    max_norm : float or None, default=None
        After every step, rescale each unit's incoming weight vector to norm
        at most ``max_norm``.
    clipvalue, clipnorm, global_clipnorm : float or None, default=None
        Clip each gradient element, each parameter tensor's gradient norm, or
        the whole gradient's norm (Keras' semantics).
    diagnostics : bool, default=False
        Record each hidden layer's activation mean and std, gradient norm and
        dead-unit fraction (ReLU family) per epoch in ``history_``.
    device : {'cpu', 'cuda', 'auto'}, default='cpu'
        Where training runs: the compiled CPU kernels, an NVIDIA GPU (needs
        ``pip install ".[cuda]"``; an error without a usable GPU) or 'auto'
        (the GPU when usable, else the CPU). Prediction of large inputs runs on
        the GPU when it is usable, else on the CPU: the fitted model holds only
        NumPy arrays. See :doc:`/gpu`.
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
        Validation score (``scoring``) after each epoch with validation data
        (early stopping's split, ``eval_set``).
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
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
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
        ``validation_loss`` and ``validation_score`` (None without validation
        data), ``learning_rate`` (the mean over the epoch's minibatches),
        ``time``.
    zero_weight_fraction_ : float
        Fraction of the weights (``coefs_``) that are exactly zero.
    prelu_alpha_ : list of ndarray
        Learned PReLU slopes of each hidden layer (empty for other activations).
    batch_norm_gamma_, batch_norm_beta_ : list of ndarray
        Learned scale and shift of each batch-norm layer, the input one first.
    batch_norm_moving_mean_, batch_norm_moving_var_ : list of ndarray
        Moving statistics of each batch-norm layer, used at inference.
"""


def _check_sortable_labels(y):
    """Refuse labels that cannot be sorted into ``classes_`` (e.g. strings mixed with numbers)."""
    if y.dtype != object:
        return
    is_str = [isinstance(label, str) for label in y.ravel()]
    if any(is_str) and not all(is_str):
        raise ValueError("Mix of label input types (string and number)")
    try:
        np.unique(y)
    except TypeError as exc:
        kinds = sorted({type(label).__name__ for label in y.ravel()})
        raise ValueError(f"Class labels must be sortable; got labels of types {kinds}") from exc


def _class_indices(y, binarizer):
    """Positions of the labels ``y`` in ``binarizer.classes_``, or ``None`` where ``LabelBinarizer`` must decide.

    The fast path of ``LabelBinarizer.transform`` for one-dimensional numeric
    or string labels of a binary or multiclass target whose labels are all
    known; anything else (an unknown label, multilabel or object targets)
    gets scikit-learn's own checks and messages.
    """
    classes = binarizer.classes_
    kinds = {y.dtype.kind, classes.dtype.kind}
    if y.ndim != 1 or len(classes) < 2 or binarizer.y_type_ not in ("binary", "multiclass") or not (
        kinds <= set("biuf") or kinds in ({"U"}, {"S"})
    ):
        return None
    indices = np.searchsorted(classes, y)
    if not (indices < len(classes)).all() or not (classes[indices] == y).all():
        return None
    return indices


def _one_hot(indices, n_classes, dtype):
    """``LabelBinarizer``'s output for class positions ``indices``: one column when there are two classes."""
    if n_classes == 2:
        return (indices == 1).astype(dtype)[:, None]
    Y = np.zeros((len(indices), n_classes), dtype=dtype)
    Y[np.arange(len(indices)), indices] = 1
    return Y


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
        + _transfer.PARAMETERS_DOC
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
        scoring=None,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        kernel_initializer=None,
        batch_norm=None,
        batch_norm_input=False,
        batch_norm_momentum=0.99,
        batch_norm_epsilon=1e-3,
        dropout=0.0,
        input_dropout=0.0,
        alpha_dropout=False,
        max_norm=None,
        clipvalue=None,
        clipnorm=None,
        global_clipnorm=None,
        diagnostics=False,
        device="cpu",
        l1=0.0,
        callbacks=None,
        class_weight=None,
        pretrained=None,
        n_reused_layers=None,
        n_frozen_layers=0,
    ):
        self._store_parameters(locals())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, eval_set=None, *, X_val=None, y_val=None, sample_weight_val=None):
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
            Validation data evaluated after every epoch: its loss and score
            (``scoring``) go to ``history_``, the score to ``validation_scores_``;
            with ``early_stopping=True`` it replaces the internal split.
        X_val, y_val, sample_weight_val : default=None
            The validation data as keyword arguments instead of ``eval_set``
            (scikit-learn's ``HistGradientBoosting*`` names): metadata routing
            passes them through a Pipeline, ``transform_input=["X_val"]``
            applying the preceding steps (docs/workflow.md).

        Returns
        -------
        self : MLPClassifier
        """
        eval_set = _validation.eval_set_of(eval_set, X_val, y_val, sample_weight_val)
        return self._fit(X, y, sample_weight, incremental=False, eval_set=eval_set)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self, X, y, sample_weight=None, classes=None, eval_set=None, *, X_val=None, y_val=None,
        sample_weight_val=None,
    ):
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
        eval_set : tuple (X_val, y_val) or (X_val, y_val, sample_weight_val), default=None
            Validation data evaluated after the epoch, recorded in ``history_``
            and ``validation_scores_``.
        X_val, y_val, sample_weight_val : default=None
            The validation data as keyword arguments instead of ``eval_set``.

        Returns
        -------
        self : MLPClassifier
        """
        self._validate_params()
        eval_set = _validation.eval_set_of(eval_set, X_val, y_val, sample_weight_val)
        return self._fit(X, y, sample_weight, incremental=True, eval_set=eval_set, classes=classes)

    def _start_partial_fit(self, y, classes):
        for labels in (y, classes):
            if labels is not None and not sp.issparse(labels):
                _check_sortable_labels(np.asarray(labels))
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)

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

    def predict_proba_mc(self, X, n_samples=100, random_state=None):
        """MC-dropout class probabilities: their mean and standard deviation.

        Averages ``n_samples`` stochastic forward passes with dropout on and
        batch norm in inference mode (Gal & Ghahramani, 2016), all in compiled
        code. The model must have been trained with dropout.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        n_samples : int, default=100
            Number of stochastic passes.
        random_state : int, RandomState instance or None, default=None
            Seeds the dropout masks.

        Returns
        -------
        mean, std : ndarray of shape (n_samples, n_classes)
        """
        mean, std = self._forward_mc(X, n_samples, random_state)
        if self.n_outputs_ == 1:
            return np.hstack([1 - mean, mean]), np.hstack([std, std])
        return mean, std

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
            dtype=(np.float64, np.float32), order="C", reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        _check_sortable_labels(y)
        known = hasattr(self, "classes_") and (self.warm_start or incremental)
        if not known:
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        indices = _class_indices(y, self._label_binarizer)
        # every label found (and, for warm_start, every class) passes the checks below
        found = indices is not None and (
            not self.warm_start or np.bincount(indices, minlength=len(self.classes_)).all()
        )
        if known and not found:
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
        if indices is None:
            return X, self._label_binarizer.transform(y).astype(X.dtype), y
        return X, _one_hot(indices, len(self.classes_), X.dtype), y

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
        + _transfer.PARAMETERS_DOC
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
        scoring=None,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        kernel_initializer=None,
        batch_norm=None,
        batch_norm_input=False,
        batch_norm_momentum=0.99,
        batch_norm_epsilon=1e-3,
        dropout=0.0,
        input_dropout=0.0,
        alpha_dropout=False,
        max_norm=None,
        clipvalue=None,
        clipnorm=None,
        global_clipnorm=None,
        diagnostics=False,
        device="cpu",
        l1=0.0,
        callbacks=None,
        pretrained=None,
        n_reused_layers=None,
        n_frozen_layers=0,
    ):
        self._store_parameters(locals())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, eval_set=None, *, X_val=None, y_val=None, sample_weight_val=None):
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
            Validation data evaluated after every epoch: its loss and score
            (``scoring``) go to ``history_``, the score to ``validation_scores_``;
            with ``early_stopping=True`` it replaces the internal split.
        X_val, y_val, sample_weight_val : default=None
            The validation data as keyword arguments instead of ``eval_set``
            (scikit-learn's ``HistGradientBoosting*`` names): metadata routing
            passes them through a Pipeline, ``transform_input=["X_val"]``
            applying the preceding steps (docs/workflow.md).

        Returns
        -------
        self : MLPRegressor
        """
        eval_set = _validation.eval_set_of(eval_set, X_val, y_val, sample_weight_val)
        return self._fit(X, y, sample_weight, incremental=False, eval_set=eval_set)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, eval_set=None, *, X_val=None, y_val=None, sample_weight_val=None):
        """Update the model with one epoch over ``X``, ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
        eval_set : tuple (X_val, y_val) or (X_val, y_val, sample_weight_val), default=None
            Validation data evaluated after the epoch, recorded in ``history_``
            and ``validation_scores_``.
        X_val, y_val, sample_weight_val : default=None
            The validation data as keyword arguments instead of ``eval_set``.

        Returns
        -------
        self : MLPRegressor
        """
        self._validate_params()
        eval_set = _validation.eval_set_of(eval_set, X_val, y_val, sample_weight_val)
        return self._fit(X, y, sample_weight, incremental=True, eval_set=eval_set)

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

    def predict_mc(self, X, n_samples=100, random_state=None):
        """MC-dropout predictions: their mean and standard deviation.

        Averages ``n_samples`` stochastic forward passes with dropout on and
        batch norm in inference mode (Gal & Ghahramani, 2016), all in compiled
        code. The model must have been trained with dropout.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        n_samples : int, default=100
            Number of stochastic passes.
        random_state : int, RandomState instance or None, default=None
            Seeds the dropout masks.

        Returns
        -------
        mean, std : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        mean, std = self._forward_mc(X, n_samples, random_state)
        return self._output_to_prediction(mean), self._output_to_prediction(std)

    def _output_to_prediction(self, output):
        return output.ravel() if output.shape[1] == 1 else output

    def _score_function(self, y, y_pred, sample_weight=None):
        return r2_score(y, y_pred, sample_weight=sample_weight)

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
            dtype=(np.float64, np.float32), order="C", reset=reset,
        )
        if sp.issparse(y):
            y = y.toarray()
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(
                "Some value(s) of y are negative which is not allowed for Poisson regression."
            )
        Y = np.ascontiguousarray(y.reshape(len(y), -1), dtype=X.dtype)
        return X, Y, y
