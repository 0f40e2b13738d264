"""Validation data: the held-out set scored after every epoch, its loss and its checks.

The estimators hand their validation data — ``eval_set``/``X_val``, or the
``early_stopping`` split — to :class:`Validation`, which the engine calls
after every epoch for ``(score, loss)``.
"""

import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import xlogy
from sklearn.base import is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import train_test_split
from sklearn.utils import column_or_1d
from sklearn.utils.validation import _check_sample_weight, _num_features, validate_data


class EvalSetWarning(UserWarning):
    """The validation data look untransformed (or very unlike the training data)."""


#: A column is "far" when its validation median lies more than SHIFT training
#: interquartile ranges from the training median, or its validation
#: interquartile range is more than SCALE times larger or smaller.
SHIFT = 3.0
SCALE = 3.0
#: Fewest rows of each set for the comparison (a spread of fewer rows is too
#: noisy: the standard deviation of 2 normal rows is below a third of the true
#: one a quarter of the time).
MIN_ROWS = 20


def output_loss(output, Y, sample_weight, output_activation):
    """Weighted mean loss of an output layer, the data term of the training loss, in NumPy.

    ``sum_i w_i loss_i / sum_i w_i`` (scikit-learn's weighting), ``loss_i`` as
    the kernels compute it (``_output_loss_delta`` in
    :mod:`skdeep.kernels.cpu`, scikit-learn's ``neural_network._base``
    losses): half the squared error averaged over outputs (identity output),
    half the Poisson deviance ``y log(y/p) - y + p`` summed over outputs
    (exp), the binary cross-entropy summed over outputs (logistic) or the
    cross-entropy (softmax), probabilities clipped to ``[eps, 1 - eps]`` with
    ``eps`` the machine epsilon of the output's dtype (scikit-learn's
    ``log_loss``). Computed in float64.
    """
    eps = np.finfo(output.dtype).eps
    p = output.astype(np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if output_activation == "identity":
        rows = 0.5 * np.mean((Y - p) ** 2, axis=1)
    elif output_activation == "exp":
        rows = np.sum(xlogy(Y, Y / p) - Y + p, axis=1)
    else:
        p = np.clip(p, eps, 1.0 - eps)
        rows = -np.sum(xlogy(Y, p), axis=1)
        if output_activation == "logistic":
            rows -= np.sum(xlogy(1.0 - Y, 1.0 - p), axis=1)
    w = np.ones(len(rows)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    return float(np.dot(w, rows) / w.sum())


class Validation:
    """A held-out set evaluated after every epoch: ``validation(params) -> (score, loss)``.

    One inference-mode forward pass (no dropout, batch norm with its moving
    statistics) of the current weights gives the output; the loss is
    :func:`output_loss` of it. The score follows the estimator's ``scoring``:
    None gives scikit-learn's (accuracy / R², from the same output),
    ``'loss'`` the negative loss (as ``HistGradientBoosting*``'s
    ``scoring='loss'``), a scorer name or callable its value
    (:func:`sklearn.metrics.check_scoring`) on the estimator, whose fitted
    arrays hold the current weights. A non-finite output gives NaN for both.

    Parameters
    ----------
    estimator : BaseMultilayerPerceptron
    network : skdeep._backend.Network
    X, y : validated validation rows and their targets
    Y : ndarray of shape (n_samples, n_outputs)
        ``y`` encoded as the network's targets.
    sample_weight : ndarray or None
    """

    def __init__(self, estimator, network, X, y, Y, sample_weight):
        self.estimator, self.network = estimator, network
        self.X, self.y, self.Y, self.sample_weight = X, y, Y, sample_weight
        scoring = estimator.scoring
        self.scorer = None if scoring is None or scoring == "loss" else check_scoring(estimator, scoring)

    def __call__(self, params):
        est = self.estimator
        output = self.network.predict(params, est._stats, self.X)
        if output is None or not np.isfinite(output).all():
            return np.nan, np.nan
        loss = output_loss(output, self.Y, self.sample_weight, est.out_activation_)
        if est.scoring is None:
            score = est._score_function(self.y, est._output_to_prediction(output), sample_weight=self.sample_weight)
        elif est.scoring == "loss":
            score = -loss
        else:
            kwargs = {} if self.sample_weight is None else {"sample_weight": self.sample_weight}
            with warnings.catch_warnings():
                # the rows are the validated columns of a fit on a DataFrame
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                score = self.scorer(est, self.X, self.y, **kwargs)
        return float(score), loss


def eval_set_of(eval_set, X_val, y_val, sample_weight_val):
    """One ``eval_set`` tuple (or None) from ``eval_set`` or ``X_val``/``y_val``/``sample_weight_val``."""
    if X_val is None and y_val is None and sample_weight_val is None:
        return eval_set
    if eval_set is not None:
        raise ValueError("Pass the validation data as eval_set or as X_val, y_val, not both.")
    if X_val is None or y_val is None:
        raise ValueError("X_val and y_val must be given together.")
    return (X_val, y_val, sample_weight_val)


def from_eval_set(estimator, network, eval_set, X_train):
    """:class:`Validation` of a user-given ``(X_val, y_val[, sample_weight_val])``.

    Raises ``ValueError`` when ``X_val`` has another number of features than
    the training ``X`` (naming the Pipeline case) and warns
    (:class:`EvalSetWarning`) when its columns are far from the training
    ones (:func:`check_like_training`).
    """
    if not isinstance(eval_set, (tuple, list)) or len(eval_set) not in (2, 3):
        raise ValueError(
            "eval_set must be a tuple (X_val, y_val) or (X_val, y_val, sample_weight_val)."
        )
    try:
        n_features = _num_features(eval_set[0])
    except TypeError:  # not a matrix: validate_data says why
        n_features = estimator.n_features_in_
    if n_features != estimator.n_features_in_:
        raise ValueError(
            f"eval_set's X_val has {n_features} features, the training X has "
            f"{estimator.n_features_in_}. Inside a Pipeline, eval_set reaches the final "
            "step without the preceding steps' transform: pass X_val and y_val with "
            "metadata routing and Pipeline(..., transform_input=['X_val']) (docs/workflow.md)."
        )
    X_val = validate_data(
        estimator, eval_set[0], accept_sparse=["csr", "csc"], reset=False, dtype=X_train.dtype,
        order="C",
    )
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
    check_like_training(X_train, X_val)
    return Validation(estimator, network, X_val, y_val, _encode(estimator, y_val, X_val.dtype), sw_val)


def _encode(estimator, y, dtype):
    """``y`` as the network's targets (the loss's ``Y``), checked against the fitted ones."""
    n_outputs = estimator.n_outputs_
    if is_classifier(estimator):
        binarizer = estimator._label_binarizer
        if y.ndim == 1:
            unseen = np.setdiff1d(np.unique(y), estimator.classes_)
            if len(unseen):
                raise ValueError(
                    f"eval_set's y_val has classes not seen in training: {unseen.tolist()}."
                )
        Y = binarizer.transform(y)
    else:
        Y = y.reshape(len(y), -1)
        if estimator.loss == "poisson" and np.any(Y < 0):
            raise ValueError("eval_set's y_val has negative values, which Poisson regression does not allow.")
    if Y.shape[1] != n_outputs:
        raise ValueError(f"eval_set's y_val has {Y.shape[1]} outputs, the model {n_outputs}.")
    return np.asarray(Y, dtype=dtype)


def split(estimator, network, X, Y, y, sw, random_state):
    """Hold out ``validation_fraction`` of the data, drawn as scikit-learn draws it.

    Returns the training part ``(X, Y, sw)`` and the :class:`Validation` of
    the held-out part; its rows keep their training weights (sample weight
    times class weight), None when all are one.
    """
    # scikit-learn stratifies on the binarized labels (the same split as on y),
    # so its error names the classes 'False' and 'True'
    stratify = Y.astype(bool) if is_classifier(estimator) and Y.shape[1] == 1 else None
    X, X_val, Y, Y_val, sw, sw_val, _, y_val = train_test_split(
        X, Y, sw, y, random_state=random_state, test_size=estimator.validation_fraction,
        stratify=stratify,
    )
    if X_val.shape[0] < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' or the "
            "size of your dataset."
        )
    sw_val = None if np.all(sw_val == 1) else sw_val
    return X, Y, sw, Validation(estimator, network, X_val, y_val, Y_val, sw_val)


#: Rows (evenly spaced) the comparison reads of each set.
MAX_ROWS = 1000


def _column_statistics(X):
    """Median and interquartile range of each column (robust to heavy tails), of at most MAX_ROWS rows."""
    X = X[:: -(-X.shape[0] // MAX_ROWS)]
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    q1, median, q3 = np.percentile(X.astype(np.float64), [25, 50, 75], axis=0)
    return median, q3 - q1


def check_like_training(X_train, X_val):
    """Warn (:class:`EvalSetWarning`) when most columns of ``X_val`` are far from the training ones.

    What is detectable of an ``eval_set`` that missed a Pipeline's
    preprocessing: a column is far when its median lies more than
    :data:`SHIFT` training interquartile ranges (IQR) from the training
    median, or its IQR is more than :data:`SCALE` times the training one, or
    (when not zero) less than ``1 / SCALE`` of it. Medians and IQRs, not
    means and standard deviations, so that heavy tails do not raise it. The
    warning needs at least half of the columns whose IQR is positive in
    training to be far, and :data:`MIN_ROWS` rows in each set: a distribution
    shift in a few columns or a small validation set does not raise it.
    """
    if X_train.shape[0] < MIN_ROWS or X_val.shape[0] < MIN_ROWS:
        return
    mean, std = _column_statistics(X_train)
    mean_val, std_val = _column_statistics(X_val)
    varies = std > 0
    if not varies.any():
        return
    mean, std, mean_val, std_val = mean[varies], std[varies], mean_val[varies], std_val[varies]
    ratio = std_val / std
    far = (np.abs(mean_val - mean) > SHIFT * std) | (ratio > SCALE) | ((std_val > 0) & (ratio < 1 / SCALE))
    if 2 * far.sum() >= len(far):
        warnings.warn(
            f"eval_set's X_val looks untransformed: {far.sum()} of its {len(far)} varying "
            f"columns have a median more than {SHIFT:g} training interquartile ranges from the "
            f"training X's, or a spread over {SCALE:g} times larger or smaller. Inside a "
            "Pipeline, eval_set reaches the final step without the preceding steps' "
            "transform: pass X_val and y_val with metadata routing and "
            "Pipeline(..., transform_input=['X_val']) (docs/workflow.md).",
            EvalSetWarning,
            stacklevel=2,
        )
