"""Sphinx configuration of the pdeforge documentation (MyST Markdown, PyData theme, sphinx-gallery)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
os.environ.setdefault("MPLBACKEND", "Agg")

import pdeforge  # noqa: E402

project = "pdeforge"
author = "the pdeforge authors"
copyright = "the pdeforge authors, MIT license"
release = version = pdeforge.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "sg_execution_times.rst"]
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# Google-style docstrings, one style across the package
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # dataclass fields are documented once, in the "Attributes" section
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options: dict = {}  # api.rst names the members it shows
autosummary_generate = False

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples" / "gallery"),
    "gallery_dirs": "gallery",
    "filename_pattern": r"plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    # pictures of unchanged examples are reused between builds
    "run_stale_examples": False,
    "image_scrapers": ("matplotlib",),
    "capture_repr": (),  # the figure a last line returns is shown as a picture, not as its repr
}

html_theme = "pydata_sphinx_theme"
html_title = f"pdeforge {version}"
html_static_path = ["_static"]
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "secondary_sidebar_items": ["page-toc"],
    "show_toc_level": 2,
    "footer_start": ["copyright"],
}
html_context = {"default_mode": "light"}
# pages without sub-pages need no section navigation
html_sidebars = {page: [] for page in ("index", "api", "benchmarks", "architecture")}
