"""Run outputs: written into a temporary folder and moved into place only when complete,
so a failed or interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

PACKAGES = ("nrmsim", "mesa", "simpy", "numpy", "scipy", "pandas", "pyarrow", "SALib", "dask")


class OutputExistsError(FileExistsError):
    """The output folder already holds files and --force was not given."""


@contextmanager
def atomic_dir(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; on success it replaces ``out``.

    Raises:
        OutputExistsError: ``out`` exists, is not empty, and ``force`` is False.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: --out must be a folder, and this is a file")
    if out.exists() and any(out.iterdir()) and not force:
        raise OutputExistsError(
            f"{out}: output folder exists and is not empty; "
            "choose another --out or pass --force to replace it"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)
    try:
        yield tmp
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def git_state() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args],
                capture_output=True,
                text=True,
                check=False,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def manifest(
    resolved: dict[str, Any],
    seed: int,
    replicates: Sequence[int],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything needed to reproduce a run: versions, commit, seeds, the resolved scenario."""
    text = json.dumps(resolved, sort_keys=True)
    return {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "git": git_state(),
        "versions": versions(),
        "seeds": {
            "root_seed": seed,
            "replicates": list(replicates),
            "scheme": "numpy SeedSequence(root_seed, spawn_key=(replicate, stream[, entity]))",
        },
        "scenario_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "scenario": resolved,
        **(extra or {}),
    }


def write_table(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, float_format="%.10g")
