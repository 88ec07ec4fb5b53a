"""Run outputs: written into a temporary folder and moved into place only when complete,
so a failed or interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

PACKAGES = ("nrmsim", "mesa", "simpy", "numpy", "scipy", "pandas", "pyarrow", "SALib", "dask")


class OutputExistsError(FileExistsError):
    """The output folder already holds files and --force was not given."""


def out_folder(out: Path | str | None, default_name: str, force: bool = False) -> tuple[Path, bool]:
    """The output folder and whether it may be replaced: ``out``, else ``out/<default_name>``
    under the working folder (always replaced).

    Raises:
        OutputExistsError: ``out`` is a file, or a non-empty folder and ``force`` is False.
    """
    folder = Path("out") / default_name if out is None else Path(out)
    force = force or out is None
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"{folder}: --out must be a folder, and this is a file")
    if folder.exists() and any(folder.iterdir()) and not force:
        raise OutputExistsError(
            f"{folder}: output folder exists and is not empty; "
            "choose another --out or pass --force to replace it"
        )
    return folder, force


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


def write_atomic(data: bytes, path: Path) -> None:
    """Write ``data`` (bytes) to ``path`` through a hidden temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """A table as parquet bytes (no index), for ``write_atomic``."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


@contextmanager
def out_lock(out: Path) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``out`` (created with O_EXCL, holding the pid) while a
    command writes ``out``, so that a second process given the same ``--out`` stops with a
    clear error instead of both writing it. A lock whose process is gone (killed with
    ``kill -9``) is taken over. The lock file is removed when the command ends.

    Raises:
        OutputExistsError: a live process holds the lock.
    """
    out = Path(out)
    lock = out.parent / f".{out.name}.lock"
    out.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid = _lock_owner(lock)
            if pid is None or _alive(pid):
                raise OutputExistsError(
                    f"{out}: another nrmsim process (pid {pid if pid else 'starting'}) is "
                    f"writing to this folder; wait for it to finish or choose another --out "
                    f"(lock file {lock})"
                ) from None
            lock.unlink(missing_ok=True)  # its process was killed: take it over
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        break
    else:
        raise OutputExistsError(f"{out}: could not take the lock {lock}; try again")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _lock_owner(lock: Path) -> int | None:
    """The pid in a lock file; None while its writer has not written it yet (or a pid of 0
    if the file is empty and older than 10 s: a writer killed before writing its pid)."""
    try:
        text = lock.read_text().strip()
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return 0
    if text.isdigit():
        return int(text)
    return 0 if age > 10 else None


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


SEED_SCHEME = "numpy SeedSequence(root_seed, spawn_key=(replicate, stream[, entity]))"


def utc_now() -> str:
    """The time now in UTC, to the second (ISO 8601): manifests' and sessions' stamps."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def provenance(
    seed: int,
    replicates: Iterable[int],
    command: Sequence[str] | None = None,
    scheme: str = SEED_SCHEME,
) -> dict[str, Any]:
    """The part every manifest shares (a run's or comparison's ``manifest.json``, a sweep's,
    a fit's ``fit.json``): when it was made (``created_utc``), by which command line
    (``command``: ``sys.argv`` when not given), at which commit (``git``), with which
    package versions (``versions``), and the seeds (root seed, replicates, how each stream is
    derived). Each writer adds its own keys."""
    return {
        "created_utc": utc_now(),
        "command": list(sys.argv if command is None else command),
        "git": git_state(),
        "versions": versions(),
        "seeds": {"root_seed": seed, "replicates": list(replicates), "scheme": scheme},
    }


def manifest(
    resolved: dict[str, Any],
    seed: int,
    replicates: Sequence[int],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything needed to reproduce a run: versions, commit, seeds, the resolved scenario."""
    text = json.dumps(resolved, sort_keys=True)
    return {
        **provenance(seed, replicates),
        "scenario_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "scenario": resolved,
        **(extra or {}),
    }


def write_table(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, float_format="%.10g")
