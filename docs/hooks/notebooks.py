"""MkDocs hook: the tutorial notebooks in the site, executed at small size.

``mkdocs.yml`` mounts ``notebooks/`` at ``tutorials/`` (mkdocs-jupyter's ``notebook_dirs``) and
the plugin executes each notebook while the site builds, failing the build on an error. This
hook does the two things the plugin's options cannot:

* sets the notebooks' size before any kernel starts: ``NB_SCALE=0.1`` and ``NB_REPS=2`` unless
  already set (``NB_SCALE=1 NB_REPS=4 mkdocs build`` renders them at full size), so the
  whole build executes the notebooks in about a minute;
* keeps the site free of scripts from a CDN: nbconvert's page template loads MathJax from
  one (the notebooks use no maths), so that tag is removed, and any other external script
  fails the build;
* fills the ``Tutorials`` section of the navigation with every ``notebooks/*.ipynb`` in file
  name order, titled by the notebook's first heading, so a new notebook appears without a
  ``mkdocs.yml`` change (and a listed one that does not exist cannot break the build).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
MOUNT = "tutorials"  # the notebook_dirs mount in mkdocs.yml
SECTION = "Tutorials"
SMALL = {"NB_SCALE": "0.1", "NB_REPS": "2"}
# tqdm (imported by Mesa) warns in a kernel without ipywidgets, which the docs build does not
# install (the `notebooks` extra, jupyter, brings it); the warning says nothing about the model
QUIET = "ignore:IProgress not found"
MATHJAX = re.compile(r'<script src="https://[^"]*/mathjax/[^"]*">\s*</script>')
EXTERNAL = re.compile(r'<script[^>]*\ssrc="(?:https?:)?//[^"]*"')


def title(path: Path) -> str:
    """The notebook's first Markdown heading, else its file name."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return path.stem


def tutorials() -> list[dict[str, str]]:
    """One navigation entry per notebook, in file name order."""
    return [{title(p): f"{MOUNT}/{p.name}"} for p in sorted(NOTEBOOKS.glob("*.ipynb"))]


def on_config(config: Any) -> Any:
    for key, value in SMALL.items():
        os.environ.setdefault(key, value)
    # a non-interactive backend (MPLBACKEND=Agg, as the tests set) would leave the pages
    # without figures: the kernels use Jupyter's inline backend
    os.environ.pop("MPLBACKEND", None)
    warnings = os.environ.get("PYTHONWARNINGS", "")
    if QUIET not in warnings:  # on_config runs again on each rebuild of `mkdocs serve`
        os.environ["PYTHONWARNINGS"] = f"{warnings},{QUIET}" if warnings else QUIET
    for item in config["nav"]:
        if isinstance(item, dict) and SECTION in item:
            item[SECTION] = [*(item[SECTION] or []), *tutorials()]
    return config


def on_post_page(output: str, page: Any, config: Any) -> str:
    output = MATHJAX.sub("", output)
    external = EXTERNAL.findall(output)
    if external:
        raise PluginError(f"{page.file.src_path}: script from outside the site: {external}")
    return output
