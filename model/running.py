"""Run one scenario end to end: the library function behind ``nrmsim run``.

:func:`run_folder` runs the replicates of a scenario (with a progress bar unless
``quiet``) and writes one folder: ``summary.csv`` (every replicate, group and metric),
``manifest.json`` and, if asked, ``published_tables.csv`` (``tables``) and
``events.parquet`` and ``children.parquet`` (``events``). The folder appears complete or
not at all, under a lock (``model.output``), as ``model.comparison.run_comparison``'s
does. From a notebook::

    from model.running import run_folder
    result = run_folder("historical", reps=4, end="2024-03-31", workers=2)
    result.summary  # summary.csv's rows (long form; table_shape="wide" writes it wide)

``model.run_scenario`` runs replicates and returns them without writing anything.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.common import InputError, as_date, check_run_keywords, describe_call
from model.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    import pandas as pd

    from model.runner import RunResult

BACKENDS = ("processes", "dask")
# run_folder's keywords that the manifest's command names when they differ from these
CALL_DEFAULTS: dict[str, Any] = {
    "reps": None,
    "seed": None,
    "start": None,
    "end": None,
    "effects": "default",
    "workers": 1,
    "backend": "processes",
    "scheduler": None,
    "out": None,
    "force": False,
    "events": False,
    "tables": False,
    "table_shape": "long",
}


@dataclass(frozen=True, eq=False)
class RunFolderResult:
    """What :func:`run_folder` wrote.

    Attributes:
        out: the folder written.
        scenario: the scenario's name.
        replicates: replicates run.
        summary: every replicate's summary, long form (``summary.csv``, or
            ``model.tables.to_wide`` of it with ``table_shape="wide"``).
        manifest: ``manifest.json`` as written.
    """

    out: Path
    scenario: str
    replicates: int
    summary: pd.DataFrame
    manifest: dict[str, Any]


def run_folder(
    scenario: str | Path | Scenario,
    *,
    reps: int | None = None,
    seed: int | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    effects: str = "default",
    workers: int = 1,
    backend: str = "processes",
    scheduler: str | None = None,
    out: Path | str | None = None,
    force: bool = False,
    events: bool = False,
    tables: bool = False,
    table_shape: str = "long",
    quiet: bool = True,
    argv: Sequence[str] | None = None,
) -> RunFolderResult:
    """Run replicates of a scenario and write its folder.

    Args:
        scenario: a name in ``scenarios/``, a ``.toml`` path or a loaded scenario.
        reps: replicates; default the scenario's.
        seed: root seed; default the scenario's.
        start: the first day (a date or ``YYYY-MM-DD``); default the scenario's.
        end: the last day, included; default the scenario's.
        effects: ``"default"``, or ``"null"`` for every assumed effect size at its null.
        workers: worker processes (results do not depend on it).
        backend: ``"processes"`` (a local pool) or ``"dask"`` (Dask distributed).
        scheduler: a Dask scheduler's address; default a local cluster (``backend="dask"``).
        out: the folder to write; default ``out/<scenario>`` (replaced).
        force: replace ``out`` if it is a non-empty folder.
        events: also write ``events.parquet`` and ``children.parquet``.
        tables: also write ``published_tables.csv`` (quarterly tables shaped like the Home
            Office releases).
        table_shape: ``summary.csv`` ``"long"`` or ``"wide"`` (``model.tables.to_wide``).
        quiet: no progress bar on standard error.
        argv: the command line to record in the manifest (``nrmsim`` passes its own);
            default a description of this call.

    Raises:
        InputError: a count, date, effects mode, backend or shape the command would refuse.
        ScenarioError: the scenario cannot be loaded.
        OutputExistsError: ``out`` is a file, a non-empty folder without ``force``, or being
            written by another process.
    """
    import pandas as pd

    from model.output import atomic_dir, out_folder, out_lock
    from model.runner import RunSpec, run_with_progress

    check_run_keywords(reps=reps, seed=seed, workers=workers, effects=effects, shape=table_shape)
    if backend not in BACKENDS:
        raise InputError(f"backend {backend!r} is not allowed; allowed: {list(BACKENDS)}")
    start, end = as_date("start", start), as_date("end", end)
    given = {k: v for k, v in locals().items() if k in CALL_DEFAULTS}  # the keywords as given
    label = scenario.name if isinstance(scenario, Scenario) else str(scenario)
    command = list(argv) if argv is not None else _call(label, given)
    loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    sc = loaded.with_run(start=start, end=end, seed=seed).with_effects(effects)
    n = reps or sc.replicates
    folder, force = out_folder(out, sc.name, force)
    with out_lock(folder):
        derive = published_tables_of if tables else None
        specs = [RunSpec(sc, r, keep_events=events, derive=derive) for r in range(n)]
        started = time.perf_counter()
        results = run_with_progress(
            specs, label=sc.name, workers=workers, quiet=quiet, backend=backend,
            scheduler=scheduler,
        )  # fmt: skip
        wall = time.perf_counter() - started
        summary = pd.concat([r.summary for r in results], ignore_index=True)
        with atomic_dir(folder, force=force) as tmp:
            _write_tables(tmp, summary, results, events=events, tables=tables, shape=table_shape)
            timing = {"wall_s": round(wall, 3), "workers": workers, "backend": backend}
            meta = _manifest(sc, n, results, command, effects, timing, tmp)
            (tmp / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n")
    return RunFolderResult(folder, sc.name, n, summary, meta)


def published_tables_of(
    events: pd.DataFrame, children: pd.DataFrame, scenario: Scenario
) -> pd.DataFrame:
    """RunSpec.derive: the Home-Office-shaped quarterly tables of one replicate."""
    from model.observe import published_tables
    from model.results import Analysis

    horizon = float((scenario.end - scenario.sim_start).days) + 1.0
    analysis = Analysis(events, children, horizon)
    return published_tables(analysis, scenario.sim_start, scenario.start, scenario.end)


def _write_tables(
    tmp: Path,
    summary: pd.DataFrame,
    results: list[RunResult],
    *,
    events: bool,
    tables: bool,
    shape: str,
) -> None:
    """summary.csv (long, or ``model.tables.to_wide`` of it), and published_tables.csv
    (``tables``) and the event logs (``events``)."""
    import pandas as pd

    from model.output import write_table
    from model.tables import to_wide

    write_table(to_wide(summary) if shape == "wide" else summary, tmp / "summary.csv")
    if tables:
        derived = [
            r.derived.assign(replicate=r.replicate) for r in results if r.derived is not None
        ]
        write_table(pd.concat(derived, ignore_index=True), tmp / "published_tables.csv")
    if events:
        for name in ("events", "children"):
            frames = [getattr(r, name) for r in results]
            write_table(pd.concat(frames, ignore_index=True), tmp / f"{name}.parquet")


def _manifest(
    sc: Scenario,
    reps: int,
    results: list[RunResult],
    command: list[str],
    effects: str,
    timing: dict[str, Any],
    tmp: Path,
) -> dict[str, Any]:
    """manifest.json: ``model.output.manifest`` of the resolved scenario with the command,
    the files in ``tmp`` (and manifest.json), the evidence and the timings."""
    from model.output import manifest

    per_replicate = [{k: round(v, 3) for k, v in r.timing.items()} for r in results]
    return manifest(
        sc.resolved(),
        sc.seed,
        range(reps),
        {
            "command": command,
            "effects": effects,
            "outputs": [*sorted(p.name for p in tmp.iterdir()), "manifest.json"],
            "evidence": sc.evidence(),
            "timing": {**timing, "per_replicate": per_replicate},
        },
    )


def _call(label: str, given: dict[str, Any]) -> list[str]:
    """The manifest's ``command`` for a call from Python (``model.common.describe_call``)."""
    return describe_call(f"{__name__}.run_folder", [label], given, CALL_DEFAULTS)
