"""The documentation builds with warnings as errors, and its API reference is complete.

The build is Sphinx's fast mode: every page, the API reference and the
gallery's pages, without running the gallery's examples (tests/test_examples.py
runs them). Skipped when the ``docs`` extra is not installed.
"""

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import skdeep

DOCS = Path(__file__).parent.parent / "docs"
#: Public-named helpers: the estimators' parameter resolvers and command-line entry points.
INTERNAL = {"resolve", "main"}
#: Internal subpackages: the compiled kernels behind the engine (docs/engine.md).
INTERNAL_MODULES = {"kernels"}


def _documented():
    """The objects docs/api.rst lists in its autosummary tables."""
    objects, module = [], None
    for line in (DOCS / "api.rst").read_text().splitlines():
        if match := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = match[1]
        elif module and (match := re.fullmatch(r"   ([A-Za-z_][\w.]*)", line)):
            objects.append(getattr(importlib.import_module(module), match[1]))
    return objects


def _public_objects():
    """``(name, object)`` for every public class and function of every public module."""
    modules = [skdeep] + [
        importlib.import_module(f"skdeep.{info.name}")
        for info in pkgutil.iter_modules(skdeep.__path__)
        if not info.name.startswith("_") and info.name not in INTERNAL_MODULES
    ]
    found = {}
    for module in modules:
        names = getattr(module, "__all__", None) or [
            name for name, obj in vars(module).items()
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == module.__name__
        ]
        for name in names:
            obj = getattr(module, name)
            if not name.startswith("_") and name not in INTERNAL and (inspect.isclass(obj) or inspect.isfunction(obj)):
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_api_reference_lists_every_public_class_and_function():
    documented = {id(obj) for obj in _documented()}
    missing = sorted(name for name, obj in _public_objects().items() if id(obj) not in documented)
    assert not missing, f"add these to an autosummary table of docs/api.rst: {missing}"


def test_docs_build_without_warnings(tmp_path):
    for package in ("sphinx", "numpydoc", "sphinx_gallery", "pydata_sphinx_theme", "myst_parser"):
        pytest.importorskip(package, reason='the docs extra: pip install ".[docs]"')
    command = [
        sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
        "-D", "plot_gallery=0", "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    assert (tmp_path / "html" / "api.html").exists()
    assert (tmp_path / "html" / "generated" / "skdeep.MLPClassifier.html").exists()
    assert (tmp_path / "html" / "auto_examples" / "index.html").exists()
