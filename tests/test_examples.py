"""Every example runs and prints its results: the scripts in examples/ and the gallery's."""

import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent / "examples"
EXAMPLES = sorted(ROOT.glob("*.py")) + sorted((ROOT / "gallery").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_runs(path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(path)])
    if path.parent.name == "gallery":  # they plot: off-screen, and close what they opened
        plt = pytest.importorskip("matplotlib.pyplot")
        plt.switch_backend("Agg")
        monkeypatch.setattr(plt, "show", lambda *args, **kwargs: None)
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        if path.parent.name == "gallery":
            plt.close("all")
    assert capsys.readouterr().out.strip()
