"""Progress reporting: scikit-learn's lines off a terminal, a tqdm bar on one."""

import sys
import types

import numpy as np
from sklearn.datasets import load_iris

from skdeep import MLPClassifier


def _fit(**params):
    X, y = load_iris(return_X_y=True)
    return MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0, **params).fit(X, y)


def test_verbose_prints_sklearn_lines_when_not_a_terminal(capsys):
    _fit(verbose=True, early_stopping=True, n_iter_no_change=50)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Iteration 1, loss = ")
    assert out[1].startswith("Validation score: ")
    assert sum(line.startswith("Iteration") for line in out) == 3


def test_verbose_shows_a_tqdm_bar_on_a_terminal(monkeypatch, capsys):
    bars = []

    class FakeBar:
        def __init__(self, total, unit, leave):
            self.total, self.updates, self.postfix, self.closed = total, 0, None, False
            bars.append(self)

        def set_postfix(self, values, refresh):
            self.postfix = values

        def update(self):
            self.updates += 1

        def close(self):
            self.closed = True

    fake = types.ModuleType("tqdm.auto")
    fake.tqdm = FakeBar
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", fake)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    model = _fit(verbose=True, early_stopping=True, n_iter_no_change=50)
    (bar,) = bars
    assert bar.total == 3 and bar.updates == model.n_iter_ == 3 and bar.closed
    assert set(bar.postfix) == {"loss", "val_loss", "val"}
    assert np.isclose(float(bar.postfix["loss"]), model.loss_, rtol=1e-3)
    assert np.isclose(float(bar.postfix["val_loss"]), model.history_[-1]["validation_loss"], rtol=1e-3)
    assert capsys.readouterr().out == ""


def test_silent_by_default(capsys):
    _fit()
    assert capsys.readouterr().out == ""


def _fake_tqdm(monkeypatch, events):
    bars = []

    class FakeBar:
        def __init__(self, total, unit, leave):
            self.total, self.leave, self.updates, self.postfix = total, leave, 0, None
            bars.append(self)

        def set_postfix(self, values, refresh):
            self.postfix = values

        def update(self):
            self.updates += 1

        def close(self):
            events.append("bar closed")

    fake = types.ModuleType("tqdm.auto")
    fake.tqdm = FakeBar
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", fake)
    return bars


def test_bar_in_jupyter_where_stderr_is_no_terminal(monkeypatch, capsys):
    from skdeep import _progress

    bars = _fake_tqdm(monkeypatch, [])
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    monkeypatch.setattr(_progress, "_in_notebook", lambda: True)
    _fit(verbose=True)
    (bar,) = bars
    assert bar.updates == 3
    out = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("Iteration") for line in out)
    assert out[-1].startswith("Trained 3 epoch(s) (epochs 1-3) in ")  # notebooks: on stdout


def test_in_notebook_detection(monkeypatch):
    from skdeep import _progress

    class Shell:
        config = {"IPKernelApp": {}}

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: Shell()
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    assert _progress._in_notebook()
    ipython.get_ipython = lambda: None
    assert not _progress._in_notebook()


def test_summary_line_after_the_bar_and_warnings_after_it(monkeypatch, capsys):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    events = []
    _fake_tqdm(monkeypatch, events)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        monkeypatch.setattr(
            warnings, "showwarning",
            lambda message, category, *args, **kwargs: events.append(category),
        )
        _fit(verbose=True, early_stopping=True, n_iter_no_change=50)
    # the max_iter ConvergenceWarning was raised while the bar ran: shown after it closed
    assert events == ["bar closed", ConvergenceWarning]
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("Trained 3 epoch(s) (epochs 1-3) in ")
    assert ", best validation score " in err[-1] and err[-1].endswith("(epoch %s)." % err[-1].split("(epoch ")[-1][:-2])


def test_warnings_reach_pytest_warns_and_summary_reports_best_loss(monkeypatch, capsys):
    import pytest
    from sklearn.exceptions import ConvergenceWarning

    _fake_tqdm(monkeypatch, [])
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        model = _fit(verbose=True)
    best = min(model.loss_curve_)
    assert f"best loss {best:.4g} (epoch {model.loss_curve_.index(best) + 1})." in capsys.readouterr().err
