"""Sphinx configuration of the skgradnorm documentation.

Build (offline, warnings are errors)::

    make docs
    # i.e. .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

Nothing here needs the network: no intersphinx, MathJax is bundled
(``sphinx-mathjax-offline``), the examples run on synthetic planted worlds, and the
CLIP encoder is documented from its docstrings only (no model is loaded).
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

# The examples and the package must never try to download anything.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Draw figures without a display.
os.environ.setdefault("MPLBACKEND", "Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the package, when not installed in editable mode

import skgradnorm  # noqa: E402

# -- Project ------------------------------------------------------------------------------

project = "skgradnorm"
author = "skgradnorm developers"
copyright = "skgradnorm developers, BSD-3-Clause"
release = skgradnorm.__version__
version = release

# -- General ------------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinx_design",  # cards on the home page
    # Ships MathJax inside the built site, so formulas render without network.
    "sphinx-mathjax-offline",
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    # sphinx-gallery's sources and the per-example outputs it writes are not pages.
    "examples/GALLERY_HEADER.rst",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.pickle",
    "auto_examples/*.codeobj.json",
]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = "literal"  # `x` renders as code, as in scikit-learn's docs
pygments_style = "sphinx"
nitpicky = False  # references into numpy/sklearn/torch cannot resolve without intersphinx

# -- autodoc / autosummary / numpydoc -----------------------------------------------------

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"  # the numpydoc "Parameters" sections give the types
autoclass_content = "class"

numpydoc_show_class_members = False  # the class template lists the methods instead
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- sphinx-gallery -----------------------------------------------------------------------


sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("skgradnorm",),
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "abort_on_example_error": True,  # a failing example fails the build
    "download_all_examples": False,
    "show_memory": False,
    # No sg_execution_times pages: they would load table styles from a CDN.
    "write_computation_times": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
}

# -- HTML ---------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skgradnorm {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": False,
    "header_links_before_dropdown": 6,
    "navbar_align": "left",
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {
    "index": [],
    "install": [],
    "reproducing": [],
}
html_context = {"default_mode": "light"}

# -- docstring fix-ups (autodoc-process-docstring) ------------------------------------------

# 1. scikit-learn's own docstrings, inherited by our estimators (get_metadata_routing,
#    set_output, ...), link to labels of scikit-learn's user guide, e.g.
#    :ref:`User Guide <metadata_routing>`. Those labels do not exist in this site and cannot
#    be reached without intersphinx (the build is offline), so each such role would be an
#    "undefined label" warning. In docstrings defined by scikit-learn only, such a role is
#    rendered as its plain text instead.
_REF_ROLE = re.compile(r":ref:`([^`<]*?)\s*(?:<[^`>]*>)?`")

# 2. numpydoc renders the type of a parameter or attribute as reST, where a trailing
#    underscore makes a hyperlink reference: "ndarray of shape (n_centers_, n_features)"
#    is then a docutils error "Unknown target name". Such names inside "of shape (...)"
#    are quoted as literals. This is a stop-gap for two docstrings of the package
#    (GradNormNounSelector.centers_ and SphericalKMeans.feature_names_in_); once they are
#    written as (`n_centers_`, n_features), it changes nothing.
_SHAPE = re.compile(r"of shape \(([^)]*)\)")
_TRAILING_UNDERSCORE_NAME = re.compile(r"(?<![`\w])([A-Za-z]\w*_)(?![`\w])")


def _quote_shape_names(match):
    return "of shape (" + _TRAILING_UNDERSCORE_NAME.sub(r"`\1`", match.group(1)) + ")"


def _fix_docstring(app, what, name, obj, options, lines):
    module = getattr(obj, "__module__", None) or ""
    from_sklearn = module.startswith("sklearn")
    for i, line in enumerate(lines):
        if from_sklearn and ":ref:" in line:
            line = _REF_ROLE.sub(lambda m: m.group(1).strip(), line)
        if "of shape (" in line:
            line = _SHAPE.sub(_quote_shape_names, line)
        lines[i] = line


def setup(app):
    app.connect("autodoc-process-docstring", _fix_docstring)


# -- warnings -----------------------------------------------------------------------------

# The examples use matplotlib's Agg backend, which cannot show windows; plt.show() is a
# no-op there and says so, which is expected under sphinx-gallery.
warnings.filterwarnings("ignore", message=".*FigureCanvasAgg is non-interactive.*")

# numpydoc renames each docstring's References citations to a hash of the object; the
# API page's autosummary tables and the generated pages then both define them, which
# Sphinx reports as duplicate citations. The references render correctly on each page.
suppress_warnings = ["ref.citation"]
