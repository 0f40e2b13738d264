"""Sphinx configuration of the scikit-deep documentation.

Build (from the repository root)::

    pip install ".[docs]"
    python -m sphinx -b html docs docs/_build/html

Fast build, without running the gallery examples (what ``tests/test_docs.py`` does)::

    python -m sphinx -W -b html -D plot_gallery=0 docs docs/_build/html
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document this checkout, not an installed copy
os.environ.setdefault("MPLBACKEND", "Agg")

import skdeep  # noqa: E402

project = "scikit-deep"
author = "the scikit-deep developers"
copyright = "the scikit-deep developers, BSD-3-Clause"
version = release = skdeep.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints",
                    "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip",
                    "auto_examples/*.json", "auto_examples/*.md5", "auto_examples/*.pickle"]
templates_path = ["_templates"]

# -- API reference ---------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"
numpydoc_show_class_members = False  # the class template lists the methods
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False


def _skip_member(app, what, name, obj, skip, options):
    """Document skdeep's own members only, not those inherited from scikit-learn.

    ``get_params``, ``score``, ``set_output``, the metadata-routing setters... are
    scikit-learn's, documented there; their docstrings link to its user guide.
    """
    module = getattr(obj, "__module__", None) or ""
    if module.split(".")[0] == "sklearn" or (name.startswith("set_") and name.endswith("_request")):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)


# -- Markdown user guide (myst-parser) ----------------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3  # [text](page.md#a-heading) links resolve
# The pages also link to files outside docs/ (../examples/x.py, ../benchmarks/...):
# on GitHub those are files; here they are not documents, so they stay plain links.
suppress_warnings = ["myst.xref_missing"]

# -- Gallery -----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples" / "gallery"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 0,
    "doc_module": ("skdeep",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skdeep": None},
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "scikit-deep"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
