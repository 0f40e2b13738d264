"""Callbacks: epoch-level hooks into training.

A callback is a small estimator-like object (``get_params``/``set_params``, so
it clones and grid-searches) passed in the estimator's ``callbacks`` list. The
engine calls, in Python and only at epoch boundaries:

- ``on_train_begin(estimator)`` when a ``fit``/``partial_fit`` call starts;
- ``on_epoch_end(estimator, record)`` after every epoch, with the epoch's
  history record (``epoch``, ``loss``, ``validation_loss``,
  ``validation_score``, ``learning_rate``, ``time``); returning True stops
  training;
- ``on_train_end(estimator)`` when the call ends.

During training the fitted arrays (``coefs_``, ``intercepts_``, ``prelu_alpha_``,
``batch_norm_*_``) are views of the parameters being trained: read them to
inspect, write them in place to change.
"""

import csv
import math
import os

import numpy as np
from sklearn.base import BaseEstimator

from skdeep._engine import PARAMETER_PARTS, STATISTICS_PARTS


def _network_arrays(estimator):
    """Every array of the network: weights, biases, PReLU slopes, batch-norm parameters and statistics."""
    return [array for name in (*PARAMETER_PARTS, *STATISTICS_PARTS) for array in getattr(estimator, name)]


#: Keras' names of history keys, accepted by ``monitor``.
ALIASES = {"val_loss": "validation_loss"}


def _monitored(record, monitor, owner):
    """The value of ``monitor`` (or its Keras alias) in ``record``; ValueError if not recorded."""
    value = record.get(ALIASES.get(monitor, monitor))
    if value is None:
        raise ValueError(
            f"{owner} monitors {monitor!r}, which the history does not record; "
            f"available: {sorted(k for k, v in record.items() if v is not None)}. The "
            "validation values need early_stopping=True or an eval_set."
        )
    return value


def _lower_is_better(monitor, mode):
    if mode == "auto":
        return "loss" in monitor
    return mode == "min"


def _check_mode(owner, mode):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner} mode must be 'auto', 'min' or 'max', got {mode!r}.")


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

    ``EarlyStopping(monitor="val_loss", restore_best_weights=True)`` is
    Keras' recipe: stop when the validation loss stops falling, keep the
    weights of its best epoch.

    Parameters
    ----------
    monitor : str, default='validation_score'
        Key of the history record: ``'validation_score'`` or
        ``'validation_loss'`` (alias ``'val_loss'``; both need
        ``early_stopping=True`` or an ``eval_set``), ``'loss'``, or any other
        recorded key.
    patience : int, default=10
        Epochs without improvement before stopping.
    min_delta : float, default=0.0
        Smallest change that counts as an improvement.
    restore_best_weights : bool, default=True
        At the end of training, put back the weights of the best epoch.
    mode : {'auto', 'min', 'max'}, default='auto'
        Whether lower or higher is better; 'auto' minimizes keys containing
        ``'loss'`` and maximizes the others. NaN never improves.

    Attributes
    ----------
    best_ : float
        Best monitored value of the last fit.
    best_epoch_ : int
        Epoch at which it was reached.
    stopped_epoch_ : int or None
        Epoch at which this callback stopped training.
    """

    def __init__(
        self, monitor="validation_score", patience=10, min_delta=0.0, restore_best_weights=True,
        mode="auto",
    ):
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best_weights = restore_best_weights
        self.mode = mode

    def on_train_begin(self, estimator):
        _check_mode("EarlyStopping", self.mode)
        self.best_ = None
        self.best_epoch_ = None
        self.stopped_epoch_ = None
        self._wait = 0
        self._best_weights = None

    def on_epoch_end(self, estimator, record):
        value = _monitored(record, self.monitor, "EarlyStopping")
        sign = -1.0 if _lower_is_better(self.monitor, self.mode) else 1.0
        if not math.isnan(value) and (self.best_ is None or sign * (value - self.best_) > self.min_delta):
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

    def __getstate__(self):
        # A model pickled mid-fit (a checkpoint) carries its callbacks: not the open file.
        state = dict(super().__getstate__())
        state.pop("_file", None)
        state.pop("_writer", None)
        return state


class ModelCheckpoint(Callback):
    """Save the whole estimator during training: the best model, or every N epochs.

    The saved file is the estimator as it is at the end of an epoch — weights,
    optimizer state (moments, step), schedule position and history — so
    ``joblib.load`` (or ``skops.io.load``) gives a model that predicts and
    that continues training where it was saved, with ``partial_fit`` (same
    optimizer state) or ``warm_start=True`` (fresh optimizer slots, as in
    scikit-learn).

    Parameters
    ----------
    path : str or path-like
        File to write. May hold ``str.format`` fields naming any key of the
        epoch's history record, e.g. ``"ckpt-{epoch:03d}-{loss:.4f}.joblib"``;
        without fields each save replaces the file (writes are atomic: a
        temporary file is renamed over it).
    monitor : str, default='validation_score'
        History key compared for ``save_best_only``: ``'validation_score'``
        or ``'validation_loss'`` (alias ``'val_loss'``; both need
        ``early_stopping=True`` or an ``eval_set``), ``'loss'``, or any other
        recorded key.
    mode : {'auto', 'min', 'max'}, default='auto'
        Whether lower or higher is better; 'auto' minimizes keys containing
        ``'loss'`` and maximizes the others (as :class:`EarlyStopping`).
    save_best_only : bool, default=False
        Save only when the monitored value improves on the best so far in
        this fit (NaN never improves).
    every_n_epochs : int, default=1
        Save (or, with ``save_best_only``, check) at epochs that are a
        multiple of this (epochs as numbered in ``history_``, counted across
        warm starts).
    backend : {'joblib', 'skops'}, default='joblib'
        ``joblib.dump`` (pickle: load only files you trust) or
        ``skops.io.dump`` (``pip install skops``; ``skops.io.load`` needs
        ``trusted=skops.io.get_untrusted_types(file=path)`` after you checked
        the listed types).
    compress : int, default=0
        joblib's compression level (0–9); ignored by skops.
    verbose : bool, default=False
        Print a line at each save.

    Attributes
    ----------
    best_ : float or None
        Best monitored value of the last fit (``save_best_only``).
    best_epoch_ : int or None
        Epoch of ``best_``.
    saved_ : list of str
        Paths written during the last fit, in order (a path appears once per
        save).
    last_path_ : str or None
        Last path written.
    """

    def __init__(
        self, path, monitor="validation_score", mode="auto", save_best_only=False,
        every_n_epochs=1, backend="joblib", compress=0, verbose=False,
    ):
        self.path = path
        self.monitor = monitor
        self.mode = mode
        self.save_best_only = save_best_only
        self.every_n_epochs = every_n_epochs
        self.backend = backend
        self.compress = compress
        self.verbose = verbose

    def on_train_begin(self, estimator):
        _check_mode("ModelCheckpoint", self.mode)
        if self.backend not in ("joblib", "skops"):
            raise ValueError(f"ModelCheckpoint backend must be 'joblib' or 'skops', got {self.backend!r}.")
        if not (isinstance(self.every_n_epochs, int) and self.every_n_epochs >= 1):
            raise ValueError(f"every_n_epochs must be a positive integer, got {self.every_n_epochs!r}.")
        if self.backend == "skops":
            _import_skops()
        self.best_ = None
        self.best_epoch_ = None
        self.saved_ = []
        self.last_path_ = None

    def on_epoch_end(self, estimator, record):
        if record["epoch"] % self.every_n_epochs:
            return False
        if self.save_best_only:
            value = _monitored(record, self.monitor, "ModelCheckpoint")
            if math.isnan(value):
                return False
            lower = _lower_is_better(self.monitor, self.mode)
            if self.best_ is not None and not (value < self.best_ if lower else value > self.best_):
                return False
            self.best_, self.best_epoch_ = value, record["epoch"]
        path = os.fspath(self.path).format(**record)
        self._save(estimator, path)
        self.saved_.append(path)
        self.last_path_ = path
        if self.verbose:
            print(f"Epoch {record['epoch']}: saved {path}")
        return False

    def _save(self, estimator, path):
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        temporary = f"{path}.tmp{os.getpid()}"
        try:
            if self.backend == "skops":
                _import_skops().dump(estimator, temporary)
            else:
                import joblib

                joblib.dump(estimator, temporary, compress=self.compress)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)


def _import_skops():
    try:
        import skops.io
    except ImportError as error:
        raise ImportError(
            "ModelCheckpoint(backend='skops') needs skops: pip install skops."
        ) from error
    return skops.io
