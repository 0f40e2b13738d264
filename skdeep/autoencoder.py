"""Stacked autoencoders trained greedily, layer by layer: unsupervised pretraining.

Each hidden layer is first trained as a shallow autoencoder on the codes of
the layer below (Bengio, Lamblin, Popovici & Larochelle, 2007, "Greedy
layer-wise training of deep networks"); the trained layers are then unrolled
into one deep autoencoder and fine-tuned end to end (Hinton & Salakhutdinov,
2006, "Reducing the dimensionality of data with neural networks"). Optional
masking noise makes each of them a denoising autoencoder (Vincent, Larochelle,
Bengio & Manzagol, 2008). Every stage is an :class:`skdeep.MLPRegressor`
fitted to reproduce its input.
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from skdeep import _engine, activations
from skdeep._mlp import BaseMultilayerPerceptron, MLPRegressor
from skdeep._transfer import PretrainedLayers

#: Parameters passed on to every stage, with MLPRegressor's constraints.
_STAGE_PARAMETERS = (
    "hidden_layer_sizes",
    "activation",
    "solver",
    "alpha",
    "batch_size",
    "learning_rate",
    "learning_rate_init",
    "max_iter",
    "tol",
    "n_iter_no_change",
    "kernel_initializer",
    "random_state",
    "verbose",
    "device",
)


def _forward(X, coefs, intercepts, options, activate_last):
    """Output of the layers ``f(X W + b)``, computed by the kernels.

    The last layer is linear unless ``activate_last``; ``options`` are the
    activation's ``(code, alpha, rrelu_lower, rrelu_upper)``.
    """
    units = [coefs[0].shape[0], *(W.shape[1] for W in coefs)]
    architecture = _engine.architecture(
        options, "hidden" if activate_last else "identity", dropout=np.zeros(len(coefs))
    )
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    network = _engine.network(units, dtype, architecture)
    params, stats = network.pack({"coefs_": coefs, "intercepts_": intercepts})
    return network.predict(params, stats, X)


class StackedAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Stacked autoencoder trained greedily layer by layer, for unsupervised pretraining.

    ``fit`` trains each hidden layer as a one-hidden-layer autoencoder (an
    :class:`MLPRegressor` fitted to reproduce its input) on the codes of the
    layer below, the layers beneath staying fixed (Bengio et al., 2007); with
    ``fine_tune=True`` it then unrolls the encoders and decoders into one deep
    autoencoder and trains it end to end (Hinton & Salakhutdinov, 2006).
    ``transform`` gives the codes of the top layer, ``inverse_transform`` the
    reconstruction. A fitted autoencoder is a ``pretrained`` source for
    :class:`MLPClassifier` and :class:`MLPRegressor`: they start from its
    encoder.

    The unrolled decoder applies ``activation`` after every layer but the last
    (linear). Each greedy decoder is trained linear, so before fine-tuning the
    stacked decoder matches the greedy ones exactly for 'identity' and, for
    the ReLU family, only clips negative reconstructions of non-negative codes.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers,), default=(100,)
        Widths of the encoder's layers, lowest first; the last is the code size.
    activation : str or Activation, default='relu'
        Hidden activation (as in :class:`MLPClassifier`; 'prelu' is not
        supported).
    solver : str or Optimizer, default='adam'
        Solver of every stage (as in :class:`MLPClassifier`).
    alpha : float, default=0.0001
        L2 penalty.
    batch_size : int or 'auto', default='auto'
        Minibatch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : str or Schedule, default='constant'
        Learning-rate schedule of every stage.
    learning_rate_init : float, default=0.001
        Initial learning rate.
    max_iter : int, default=200
        Maximum epochs (iterations for lbfgs) of each stage and of fine-tuning.
    tol : float, default=1e-4
        Tolerance of the stopping rule.
    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before a stage stops.
    kernel_initializer : str, VarianceScaling or None, default=None
        Weight initializer of every stage (as in :class:`MLPClassifier`).
    noise : float in [0, 1), default=0.0
        Fraction of each stage's inputs zeroed at random, a fresh mask every
        batch (input dropout, rescaled by ``1 / (1 - noise)``), while it learns
        to reproduce the clean input: denoising autoencoders (Vincent et al.,
        2008). Needs a stochastic solver; sparse input is densified.
    fine_tune : bool, default=True
        Train the unrolled autoencoder end to end after the greedy stages
        (nothing to do with a single hidden layer).
    random_state : int, RandomState instance or None, default=None
        Seeds every stage's initialization, shuffling and noise.
    verbose : bool, default=False
        Print each stage's progress.
    device : {'cpu', 'cuda', 'auto'}, default='cpu'
        Where every stage trains (as in :class:`MLPClassifier`; the CUDA
        backend needs dense ``X``). ``transform`` runs on the CPU.

    Attributes
    ----------
    coefs_, intercepts_ : list of ndarray
        Encoder weights ``(fan_in, fan_out)`` and biases, lowest layer first.
    decoder_coefs_, decoder_intercepts_ : list of ndarray
        Decoder weights and biases, from the code layer to the reconstruction.
    layer_losses_ : list of float
        Final training loss of each greedy stage (half mean squared error).
    fine_tune_loss_ : float or None
        Final training loss of fine-tuning, None when it did not run.
    n_iter_ : int
        Epochs (lbfgs: iterations) run over all stages.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen during fit, when ``X`` has string column names.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.pipeline import make_pipeline
    >>> from skdeep import MLPClassifier, StackedAutoencoder
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = StackedAutoencoder((64, 32), max_iter=20, random_state=0).fit(X / 16)
    >>> ae.transform(X / 16).shape
    (1797, 32)
    >>> clf = MLPClassifier((64, 32), pretrained=ae, n_frozen_layers=2, max_iter=50)
    >>> clf = clf.fit(X[:100] / 16, y[:100])
    """

    _parameter_constraints: dict = {
        **{name: BaseMultilayerPerceptron._parameter_constraints[name] for name in _STAGE_PARAMETERS},
        "noise": [Interval(Real, 0, 1, closed="left")],
        "fine_tune": ["boolean"],
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
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        kernel_initializer=None,
        noise=0.0,
        fine_tune=True,
        random_state=None,
        verbose=False,
        device="cpu",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.kernel_initializer = kernel_initializer
        self.noise = noise
        self.fine_tune = fine_tune
        self.random_state = random_state
        self.verbose = verbose
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder on ``X``, greedily, then end to end.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (unlabeled).
        y : None
            Ignored.

        Returns
        -------
        self : StackedAutoencoder
        """
        X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32))
        sizes = list(np.atleast_1d(self.hidden_layer_sizes))
        if not sizes or not all(isinstance(size, Integral) and size > 0 for size in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes}."
            )
        sizes = [int(size) for size in sizes]
        activation = activations.resolve(clone(self.activation, safe=False))
        if isinstance(activation, activations.PReLU):
            raise ValueError("StackedAutoencoder does not support activation='prelu'.")
        if self.noise > 0 and self.solver == "lbfgs":
            raise ValueError("noise makes the loss random; use a stochastic solver, not 'lbfgs'.")
        if self.noise > 0 and sp.issparse(X):
            X = X.toarray()
        self._activation = activation._options()
        random_state = check_random_state(self.random_state)
        self.n_iter_ = 0
        self.layer_losses_ = []
        encoder, decoder = [], []
        inputs = X
        for size in sizes:
            stage = self._train([size], inputs, random_state)
            self.layer_losses_.append(float(stage.loss_))
            W, b = stage.coefs_[0], stage.intercepts_[0]
            encoder.append((W, b))
            decoder.insert(0, (stage.coefs_[1], stage.intercepts_[1]))
            inputs = _forward(inputs, [W], [b], self._activation, activate_last=True)
        self.fine_tune_loss_ = None
        if self.fine_tune and len(sizes) > 1:
            layers = encoder + decoder
            pretrained = PretrainedLayers._from_arrays(
                [W for W, _ in layers], [b for _, b in layers], self.activation,
                X.shape[1], out_activation="identity",
            )
            model = self._train(sizes + sizes[-2::-1], X, random_state, pretrained)
            self.fine_tune_loss_ = float(model.loss_)
            layers = list(zip(model.coefs_, model.intercepts_))
            encoder, decoder = layers[: len(sizes)], layers[len(sizes) :]
        self.coefs_ = [np.array(W) for W, _ in encoder]
        self.intercepts_ = [np.array(b) for _, b in encoder]
        self.decoder_coefs_ = [np.array(W) for W, _ in decoder]
        self.decoder_intercepts_ = [np.array(b) for _, b in decoder]
        return self

    def _train(self, sizes, X, random_state, pretrained=None):
        """Fit an :class:`MLPRegressor` with hidden layers ``sizes`` to reproduce ``X``."""
        target = X.toarray() if sp.issparse(X) else X
        stage = MLPRegressor(
            hidden_layer_sizes=sizes,
            activation=clone(self.activation, safe=False),
            solver=clone(self.solver, safe=False),
            alpha=self.alpha,
            batch_size=self.batch_size,
            learning_rate=clone(self.learning_rate, safe=False),
            learning_rate_init=self.learning_rate_init,
            max_iter=self.max_iter,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            kernel_initializer=clone(self.kernel_initializer, safe=False),
            input_dropout=self.noise,
            random_state=random_state,
            verbose=self.verbose,
            pretrained=pretrained,
            device=self.device,
        )
        stage.fit(X, target[:, 0] if target.shape[1] == 1 else target)
        self.n_iter_ += stage.n_iter_
        return stage

    def transform(self, X):
        """Codes of the top layer.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        codes : ndarray of shape (n_samples, hidden_layer_sizes[-1])
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=False
        )
        return _forward(X, self.coefs_, self.intercepts_, self._activation, activate_last=True)

    def inverse_transform(self, X):
        """Reconstruction of the input from top-layer codes.

        Parameters
        ----------
        X : array-like of shape (n_samples, hidden_layer_sizes[-1])
            Codes, as from :meth:`transform`.

        Returns
        -------
        X_reconstructed : ndarray of shape (n_samples, `n_features_in_`)
        """
        check_is_fitted(self)
        X = check_array(X, dtype=(np.float64, np.float32))
        if X.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {X.shape[1]} features, but the codes of this autoencoder have "
                f"{self._n_features_out}."
            )
        return _forward(
            X, self.decoder_coefs_, self.decoder_intercepts_, self._activation, activate_last=False
        )

    @property
    def _n_features_out(self):
        return self.coefs_[-1].shape[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
