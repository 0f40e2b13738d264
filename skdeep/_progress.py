"""Progress reporting: a tqdm bar on a terminal or in Jupyter, scikit-learn's lines elsewhere."""

import sys
import time
import warnings


def _in_notebook():
    """Whether this runs in a Jupyter kernel (where stderr is no terminal but a bar shows)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # pragma: no cover - a broken IPython install
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _interactive():
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty is not None and isatty()) or _in_notebook()


class Progress:
    """Reports each epoch's history record when ``verbose`` is set.

    On a terminal or in a Jupyter notebook, with tqdm installed (the
    ``progress`` extra), it shows a ``tqdm.auto`` bar (a widget in Jupyter
    when ipywidgets is installed, text otherwise) with the loss and the
    validation score. When training ends the bar is replaced by one summary
    line — epochs, time, last loss, best validation score (or best loss) and
    its epoch — and the warnings raised meanwhile (e.g. ``ConvergenceWarning``)
    are shown after that line instead of over the bar. Elsewhere (a log file,
    a pipe, no tqdm) it prints scikit-learn's ``Iteration N, loss = ...``
    lines.
    """

    def __init__(self, verbose, total):
        self.verbose = verbose
        self.bar = None
        self.summary = None
        self._start = time.perf_counter()
        self._epochs = 0
        self._first_epoch = None
        self._loss = None
        self._best = None
        self._caught = None
        if verbose and _interactive():
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, unit="epoch", leave=False)
            self._catcher = warnings.catch_warnings(record=True)
            self._caught = self._catcher.__enter__()

    def update(self, record):
        if not self.verbose:
            return
        score = record["validation_score"]
        self._track(record)
        if self.bar is not None:
            shown = {"loss": f"{record['loss']:.4g}"}
            if record.get("validation_loss") is not None:
                shown["val_loss"] = f"{record['validation_loss']:.4g}"
            if score is not None:
                shown["val"] = f"{score:.4g}"
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update()
            return
        print("Iteration %d, loss = %.8f" % (record["epoch"], record["loss"]))
        if score is not None:
            print("Validation score: %f" % score)

    def _track(self, record):
        self._epochs += 1
        if self._first_epoch is None:
            self._first_epoch = record["epoch"]
        self._loss = record["loss"]
        score = record["validation_score"]
        if score is not None:
            if self._best is None or score > self._best[1]:
                self._best = ("validation score", score, record["epoch"])
        elif self._best is None or (self._best[0] == "loss" and record["loss"] < self._best[1]):
            self._best = ("loss", record["loss"], record["epoch"])

    def _summary(self):
        seconds = time.perf_counter() - self._start
        if not self._epochs:
            return f"Training stopped before the first epoch ended ({seconds:.2f} s)."
        last = self._first_epoch + self._epochs - 1
        span = f"epoch {last}" if self._epochs == 1 else f"epochs {self._first_epoch}-{last}"
        line = f"Trained {self._epochs} epoch(s) ({span}) in {seconds:.2f} s: loss {self._loss:.4g}"
        name, value, epoch = self._best
        return line + f", best {name} {value:.4g} (epoch {epoch})."

    def close(self):
        if self.bar is None:
            return
        self.bar.close()
        self.bar = None
        self.summary = self._summary()
        print(self.summary, file=sys.stdout if _in_notebook() else sys.stderr, flush=True)
        self._catcher.__exit__(None, None, None)
        caught, self._caught = self._caught, None
        for message in caught:
            # Past the filters already: show it as it would have been shown.
            warnings._showwarnmsg(message)
