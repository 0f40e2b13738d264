"""Callbacks: epoch-level hooks into training.

A callback is a small estimator-like object (``get_params``/``set_params``, so
it clones and grid-searches) passed in the estimator's ``callbacks`` list. The
engine calls, in Python and only at epoch boundaries:

- ``on_train_begin(estimator)`` when a ``fit``/``partial_fit`` call starts;
- ``on_epoch_end(estimator, record)`` after every epoch, with the epoch's
  history record (``epoch``, ``loss``, ``validation_score``,
  ``learning_rate``, ``time``); returning True stops training;
- ``on_train_end(estimator)`` when the call ends.

During training the fitted arrays (``coefs_``, ``intercepts_``, ``prelu_alpha_``,
``batch_norm_*_``) are views of the parameters being trained: read them to
inspect, write them in place to change.
"""

import csv

import numpy as np
from sklearn.base import BaseEstimator

from skdeep._engine import PARAMETER_PARTS, STATISTICS_PARTS


def _network_arrays(estimator):
    """Every array of the network: weights, biases, PReLU slopes, batch-norm parameters and statistics."""
    return [array for name in (*PARAMETER_PARTS, *STATISTICS_PARTS) for array in getattr(estimator, name)]


class Callback(BaseEstimator):
    """Base class: every hook does nothing."""

    def on_train_begin(self, estimator):
        """Called when a fit starts."""

    def on_epoch_end(self, estimator, record):
        """Called after every epoch; return True to stop training."""
        return False

    def on_train_end(self, estimator):
        """Called when a fit ends."""


class EarlyStopping(Callback):
    """Stop when a monitored value stops improving; optionally restore the best weights.

    Parameters
    ----------
    monitor : str, default='validation_score'
        Key of the history record: ``'validation_score'`` (higher is better;
        needs ``early_stopping=True`` or an ``eval_set``) or ``'loss'`` (lower
        is better), or any other key, where higher is better.
    patience : int, default=10
        Epochs without improvement before stopping.
    min_delta : float, default=0.0
        Smallest change that counts as an improvement.
    restore_best_weights : bool, default=True
        At the end of training, put back the weights of the best epoch.

    Attributes
    ----------
    best_ : float
        Best monitored value of the last fit.
    best_epoch_ : int
        Epoch at which it was reached.
    stopped_epoch_ : int or None
        Epoch at which this callback stopped training.
    """

    def __init__(self, monitor="validation_score", patience=10, min_delta=0.0, restore_best_weights=True):
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, estimator):
        self.best_ = None
        self.best_epoch_ = None
        self.stopped_epoch_ = None
        self._wait = 0
        self._best_weights = None

    def on_epoch_end(self, estimator, record):
        value = record.get(self.monitor)
        if value is None:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which the history does not "
                f"record; available: {sorted(k for k, v in record.items() if v is not None)}."
            )
        sign = -1.0 if self.monitor == "loss" else 1.0
        if self.best_ is None or sign * (value - self.best_) > self.min_delta:
            self.best_, self.best_epoch_, self._wait = value, record["epoch"], 0
            if self.restore_best_weights:
                self._best_weights = [a.copy() for a in _network_arrays(estimator)]
            return False
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch_ = record["epoch"]
            return True
        return False

    def on_train_end(self, estimator):
        if self._best_weights is not None:
            for current, best in zip(_network_arrays(estimator), self._best_weights):
                np.copyto(current, best)
        self._best_weights = None


class CSVLogger(Callback):
    """Write every epoch's history record as a row of a CSV file.

    Parameters
    ----------
    path : str or path-like
    append : bool, default=False
        Append to an existing file instead of overwriting it at each fit.
    """

    def __init__(self, path, append=False):
        self.path = path
        self.append = append

    def on_train_begin(self, estimator):
        self._file = open(self.path, "a" if self.append else "w", newline="")
        self._writer = None

    def on_epoch_end(self, estimator, record):
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=list(record))
            if self._file.tell() == 0:
                self._writer.writeheader()
        self._writer.writerow(record)
        self._file.flush()
        return False

    def on_train_end(self, estimator):
        self._file.close()
        del self._file, self._writer
