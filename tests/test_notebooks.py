"""The notebooks run top to bottom (at small size) without errors."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


# ``.ci/run`` sets this after the documentation build has executed every notebook (at small
# size, to each scenario's end; an error in a cell fails that build), so CI runs them once
RUN_BY_DOCS = os.environ.get("NRMSIM_NOTEBOOKS_RUN_BY_DOCS") == "1"


@pytest.mark.slow
@pytest.mark.skipif(RUN_BY_DOCS, reason="executed by this CI run's documentation build")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_without_errors(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NB_END", "2016-06-30")
    monkeypatch.setenv("NB_REPS", "2")
    monkeypatch.setenv("NB_SCALE", "0.1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(o.get("output_type") in ("execute_result", "display_data") for o in outputs)


def test_there_is_a_notebook() -> None:
    assert NOTEBOOKS, "notebooks/ should hold at least one notebook"
    assert os.path.exists(NOTEBOOKS[0])
