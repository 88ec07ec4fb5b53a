"""The shape of the code: no function in ``model/`` is longer than ``MAX_LINES`` (issue 16)."""

from __future__ import annotations

import ast
from pathlib import Path

MODEL = Path(__file__).resolve().parent.parent / "model"
MAX_LINES = 80  # from the ``def`` line to the last, docstring included (decorators not)


def long_functions(root: Path = MODEL, limit: int = MAX_LINES) -> list[str]:
    """``file:line name (n lines)`` of every function or method under ``root`` longer than
    ``limit`` lines (nested functions counted within their parent and on their own)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > limit:
                    where = path.relative_to(root.parent).as_posix()
                    found.append(f"{where}:{node.lineno} {node.name} ({n} lines)")
    return found


def test_no_function_in_model_is_longer_than_80_lines() -> None:
    """Catches: a function that does several jobs (validate, run, write, report) and so gets
    changed in one place only: a fix made to one of its jobs that misses the copy of that job
    elsewhere, or a step added between two others that silently reorders what follows. Split
    it into named helpers, each with a docstring saying what it does."""
    assert long_functions() == []


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    """Guards the test above against passing vacuously (a walk that finds no file or no
    function): an 81-line function is reported, an 80-line one is not."""
    pkg = tmp_path / "model"
    pkg.mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(79))
    (pkg / "m.py").write_text(f"def ok():\n{body}\n\ndef long():\n{body}    return 1\n")
    assert long_functions(pkg) == ["model/m.py:83 long (81 lines)"]
