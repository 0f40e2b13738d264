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
    assert set(bar.postfix) == {"loss", "val"}
    assert np.isclose(float(bar.postfix["loss"]), model.loss_, rtol=1e-3)
    assert capsys.readouterr().out == ""


def test_silent_by_default(capsys):
    _fit()
    assert capsys.readouterr().out == ""
