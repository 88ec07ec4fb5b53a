"""Run a sweep: run ids, tasks of several runs (run by ``model.runner.execute``: in this
process, a local process pool or a Dask cluster), results streamed to a partitioned Parquet
dataset, ``manifest.json``, ``--resume``.

Layout of a sweep folder::

    manifest.json                          spec hash, resolved spec and scenarios, versions,
                                           git commit, seeds, design summary, sessions
    design.parquet                         one row per design point (raw sampled values)
    runs/scenario=<name>/part-A-B.parquet  one row per run: run_id, point, replicate, seed,
                                           factor values (as applied), outputs; one file
                                           per finished task, merged when the sweep is
                                           complete (run ids A to B)
    timing/part-A-B.parquet                seconds per run (kept apart: not reproducible)

Run ids are ``(point * n_scenarios + scenario_index) * replicates + replicate``. A run is a
pure function of (scenario, design point, replicate, root seed), so its row does not depend
on which task, worker, machine or session ran it. Each finished task writes its rows to a
temporary file that is renamed into place (``os.replace``), so a file under ``runs/`` is
always complete; files whose names start with ``.`` are never read. ``--resume`` reads the
run ids present and runs only the others; the spec hash and the design hash must match.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from model.common import InputError
from model.output import (
    SEED_SCHEME,
    OutputExistsError,
    out_lock,
    parquet_bytes,
    provenance,
    utc_now,
    write_atomic,
)
from model.scenario import Scenario, ScenarioError
from model.sweeps.design import Design, applied_values, apply_point, make_design
from model.sweeps.spec import Experiment, Factor, Output, load_experiment

ID_COLUMNS = ("run_id", "point", "replicate", "seed")
SWEEP_SEED_SCHEME = (
    f"every run: {SEED_SCHEME}; replicate r uses the same streams at every design point and "
    "in every scenario (common random numbers)"
)
MAX_CHUNK = 32

Evaluate = Callable[[Scenario, int, tuple[Output, ...]], tuple[dict[str, float], dict[str, float]]]


class SweepMismatchError(ScenarioError):
    """``--resume`` on a folder made by a different spec or design (exit code 2)."""


@dataclass(frozen=True)
class Task:
    """Runs sent to one worker in one go (consecutive run ids)."""

    items: tuple[tuple[int, int, int, int], ...]  # (run_id, point, scenario index, replicate)
    scenarios: Mapping[int, Scenario]  # only those the items use
    values: Mapping[int, Mapping[str, float]]  # design values by point
    factors: tuple[Factor, ...]
    ensemble_fit: str | None
    outputs: tuple[Output, ...]
    root_seed: int
    evaluate: Evaluate | None = None


@dataclass
class SweepResult:
    """A sweep session: its folder, runs in all, runs stored before it and run by it, its
    wall time in seconds, whether every run is now stored, its timing summary (``runs_per_s``
    and others) and the experiment's name."""

    out: Path
    total: int
    done_before: int
    ran: int
    wall_s: float
    complete: bool
    timing: dict[str, float] = field(default_factory=dict)
    name: str = ""


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by an interrupt (Ctrl-C); ``out`` keeps the finished runs, and
    ``sweep(..., resume=True)`` with the same ``out`` continues it."""

    def __init__(self, out: Path) -> None:
        super().__init__(str(out))
        self.out = out


def default_sweep_folder(name: str) -> Path:
    """Where a sweep goes unless told: ``experiments/out/<name>`` (relative to the working
    directory, as on the command line)."""
    return Path("experiments") / "out" / name


# --------------------------------------------------------------------------- one run
def simulate_outputs(
    scenario: Scenario, replicate: int, outputs: tuple[Output, ...]
) -> tuple[dict[str, float], dict[str, float]]:
    """Run the model once; return the requested outputs (group ``all``) and timings."""
    from model.runner import RunSpec, run_one

    metrics = tuple(sorted({o.metric for o in outputs}))
    return _outputs(
        run_one(RunSpec(scenario, replicate, group_bys=("all",), metrics=metrics)), outputs
    )


def run_task(task: Task) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Run every item of a task; rows by scenario name, and timings. Pure in its rows."""
    rows: dict[str, list[dict[str, Any]]] = {}
    timing = []
    for group in _shared_history(task):
        t0, c0 = time.perf_counter(), time.process_time()
        results = _evaluate(task, group)
        for (run_id, point, s_index, replicate), (outputs, spent) in zip(
            group, results, strict=True
        ):
            values = task.values[point]
            row: dict[str, Any] = {
                "run_id": run_id,
                "point": point,
                "replicate": replicate,
                "seed": task.root_seed,
            }
            row.update(values)
            row.update({o.column: float(outputs[o.column]) for o in task.outputs})
            rows.setdefault(task.scenarios[s_index].name, []).append(row)
            timing.append(
                {
                    "run_id": run_id,
                    **spent,
                    # a group's wall and CPU time shared equally by its runs
                    "total_s": (time.perf_counter() - t0) / len(group),
                    "cpu_s": (time.process_time() - c0) / len(group),
                }
            )
    order = {run_id: k for k, (run_id, *_rest) in enumerate(task.items)}
    timing.sort(key=lambda t: order[int(t["run_id"])])
    frames = {
        name: pd.DataFrame(sorted(r, key=lambda row: order[row["run_id"]]))
        for name, r in rows.items()
    }
    return frames, pd.DataFrame(timing)


Item = tuple[int, int, int, int]


def _shared_history(task: Task) -> list[list[Item]]:
    """The task's items in groups run together: one (point, replicate) with the default
    evaluation (its scenarios can branch from the first); otherwise one item a group."""
    if task.evaluate is not None:
        return [[item] for item in task.items]
    groups: dict[tuple[int, int], list[Item]] = {}
    for item in task.items:
        groups.setdefault((item[1], item[3]), []).append(item)
    return list(groups.values())


def _evaluate(task: Task, group: list[Item]) -> list[tuple[dict[str, float], dict[str, float]]]:
    scenarios = [
        apply_point(task.scenarios[s], task.values[p], task.factors, task.ensemble_fit)
        for _, p, s, _ in group
    ]
    if task.evaluate is not None:
        return [
            task.evaluate(sc, item[3], task.outputs)
            for sc, item in zip(scenarios, group, strict=True)
        ]
    from model.runner import RunSpec, run_group

    metrics = tuple(sorted({o.metric for o in task.outputs}))
    specs = [
        RunSpec(sc, item[3], group_bys=("all",), metrics=metrics)
        for sc, item in zip(scenarios, group, strict=True)
    ]
    return [_outputs(result, task.outputs) for result in run_group(specs)]


def _outputs(result: Any, outputs: tuple[Output, ...]) -> tuple[dict[str, float], dict[str, float]]:
    s = result.summary
    s = s[(s["group_by"] == "all") & (s["group"] == "all")]
    found = {
        (m, int(y)): float(v) for m, y, v in zip(s["metric"], s["year"], s["value"], strict=True)
    }
    values = {o.column: found.get((o.metric, o.year), math.nan) for o in outputs}
    timing = {k: float(result.timing[k]) for k in ("simulate_s", "analyse_s")}
    return values, timing


# --------------------------------------------------------------------------- plan
def run_ids(points: int, scenarios: int, replicates: int) -> Iterator[tuple[int, int, int, int]]:
    """(run_id, point, scenario index, replicate) for every run, in run-id order."""
    run_id = 0
    for p in range(points):
        for s in range(scenarios):
            for r in range(replicates):
                yield run_id, p, s, r
                run_id += 1


class Chunking:
    """Runs per task. Fixed when given; otherwise adaptive: one run per task until run times
    are known, then enough runs for a task to take about ``target_s`` seconds (at most
    ``MAX_CHUNK``), so slow runs report progress run by run and fast runs are batched to cut
    scheduling and pickling overhead. Results never depend on it (runs are pure)."""

    def __init__(self, fixed: int | None = None, target_s: float = 2.0) -> None:
        self.fixed, self.target_s = fixed, target_s
        self.size = fixed or 1
        self._seconds = 0.0
        self._runs = 0

    def observe(self, seconds: Sequence[float]) -> None:
        if self.fixed or not len(seconds):
            return
        self._seconds += float(sum(seconds))
        self._runs += len(seconds)
        mean = self._seconds / self._runs
        self.size = max(1, min(MAX_CHUNK, math.ceil(self.target_s / max(mean, 1e-6))))


def make_tasks(
    exp: Experiment,
    design: Design,
    items: Sequence[tuple[int, int, int, int]],
    chunking: Chunking,
    evaluate: Evaluate | None = None,
) -> Iterator[Task]:
    """Tasks of consecutive run ids, made lazily so each takes the current chunk size."""
    i = 0
    while i < len(items):
        j = min(len(items), i + chunking.size)
        if not chunking.fixed and evaluate is None:
            # a point's runs stay together: its scenarios share their history (one
            # simulation to the policy date, ``model.branching``); results do not change
            while j < len(items) and items[j][1] == items[j - 1][1]:
                j += 1
        part = tuple(items[i:j])
        i += len(part)
        points = sorted({p for _, p, _, _ in part})
        used = sorted({s for _, _, s, _ in part})
        yield Task(
            items=part,
            scenarios={s: exp.scenarios[s] for s in used},
            values={p: applied_values(design, p) for p in points},
            factors=design.factors,
            ensemble_fit=design.ensemble_fit,
            outputs=exp.outputs,
            root_seed=exp.root_seed,
            evaluate=evaluate,
        )


# --------------------------------------------------------------------------- storage
def partition_dir(out: Path, scenario: str) -> Path:
    return out / "runs" / f"scenario={quote(scenario, safe='')}"


def store_task(out: Path, frames: Mapping[str, pd.DataFrame], timing: pd.DataFrame) -> None:
    """Write a finished task's rows: one file per scenario partition, then its timings."""
    for name, frame in frames.items():
        ids = frame["run_id"]
        path = partition_dir(out, name) / f"part-{ids.min():09d}-{ids.max():09d}.parquet"
        write_atomic(parquet_bytes(frame.sort_values("run_id")), path)
    if len(timing):
        ids = timing["run_id"]
        path = out / "timing" / f"part-{ids.min():09d}-{ids.max():09d}.parquet"
        write_atomic(parquet_bytes(timing), path)


def part_files(out: Path, folder: str = "runs") -> list[Path]:
    return sorted(p for p in (out / folder).rglob("part-*.parquet") if not p.name.startswith("."))


def completed_run_ids(out: Path) -> set[int]:
    import pyarrow.parquet as pq

    done: set[int] = set()
    for path in part_files(out):
        table = pq.read_table(path, columns=["run_id"], use_threads=False)
        ids = table.column("run_id").to_pylist()
        done.update(int(i) for i in ids)
    return done


def remove_temporaries(out: Path) -> int:
    """Delete temporary files left by an interrupted write (never read anyway)."""
    n = 0
    for path in [
        *out.glob(".*.tmp-*"),
        *out.glob("runs/**/.*.tmp-*"),
        *out.glob("timing/.*.tmp-*"),
    ]:
        if path.is_dir():  # e.g. left by an interrupted `nrmsim analyse` (.analysis.tmp-*)
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        n += 1
    return n


def load_results(out: Path | str, shape: str = "wide") -> pd.DataFrame:
    """Every stored run of a sweep, sorted by run id: ``shape="wide"`` (as stored) one row
    per run, a ``<metric>_<year>`` column per output; ``"long"`` the columns of a run's
    ``summary.csv`` (group ``all``) then the run's id, point, seed and factor values, a row
    per output (``model.tables.to_long``: an empty output is left out).

    Raises:
        ScenarioError: no results, or a run id stored twice.
        InputError: a shape other than ``long`` or ``wide``.
    """
    import pyarrow.dataset as ds

    from model.tables import SHAPES, to_long

    if shape not in SHAPES:
        raise InputError(f"shape {shape!r} is not allowed; allowed: {list(SHAPES)}")
    out = Path(out)
    if not part_files(out):
        raise ScenarioError(out, "runs", "no results: run `nrmsim sweep` into this folder first")
    table = ds.dataset(out / "runs", format="parquet", partitioning="hive").to_table()
    frame = table.to_pandas()
    frame["scenario"] = frame["scenario"].astype(str)
    frame = frame.sort_values("run_id", kind="stable").reset_index(drop=True)
    repeated = frame["run_id"].duplicated(keep=False)
    if repeated.any():
        # a compaction stopped between writing the merged file and deleting the parts leaves
        # identical copies; anything else means the folder was mixed up
        differ = frame[repeated].groupby("run_id").nunique(dropna=False).gt(1).any(axis=None)
        if differ:
            dup = frame.loc[repeated, "run_id"].head(5).tolist()
            raise ScenarioError(
                out,
                "runs",
                f"run ids stored twice with different values (e.g. {dup}); the folder was "
                "edited by hand or written by two sweeps at once",
            )
        frame = frame.drop_duplicates("run_id").reset_index(drop=True)
    first = ["run_id", "point", "scenario", "replicate", "seed"]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    return to_long(frame) if shape == "long" else frame


def compact(out: Path) -> int:
    """Merge each partition's part files (and the timings) into one file; return the number
    of files removed. Crash-safe: the merged file is renamed into place before the parts it
    replaces are deleted, and identical duplicate rows left by an interruption between the
    two are ignored when reading and removed by the next compaction."""
    import pyarrow.parquet as pq

    folders = [p for p in (out / "runs").glob("scenario=*") if p.is_dir()] + [out / "timing"]
    removed = 0
    for folder in folders:
        files = sorted(p for p in folder.glob("part-*.parquet"))
        if len(files) <= 1:
            continue
        frame = pd.concat(
            [pq.ParquetFile(p).read(use_threads=False).to_pandas() for p in files],
            ignore_index=True,
        )
        frame = frame.drop_duplicates("run_id").sort_values("run_id", kind="stable")
        ids = frame["run_id"]
        target = folder / f"part-{ids.min():09d}-{ids.max():09d}.parquet"
        write_atomic(parquet_bytes(frame), target)
        for path in files:
            if path != target:
                path.unlink()
                removed += 1
    return removed


def load_timing(out: Path | str) -> pd.DataFrame:
    files = part_files(Path(out), "timing")
    if not files:
        return pd.DataFrame(columns=["run_id", "simulate_s", "analyse_s", "total_s"])
    return pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)


def load_manifest(out: Path | str) -> dict[str, Any]:
    path = Path(out) / "manifest.json"
    if not path.is_file():
        raise ScenarioError(path, "manifest", "not found: this folder holds no sweep")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def load_design(out: Path | str) -> pd.DataFrame:
    frame = pd.read_parquet(Path(out) / "design.parquet")
    return frame.set_index("point")


# --------------------------------------------------------------------------- manifest
def build_manifest(exp: Experiment, design: Design, argv: Sequence[str]) -> dict[str, Any]:
    """The sweep's ``manifest.json`` as first written: ``model.output.provenance`` (keys in
    their historical places) with the spec, scenarios, design, run ids and outputs."""
    n_runs = design.points * len(exp.scenarios) * exp.replicates
    common = provenance(exp.root_seed, range(exp.replicates), argv, SWEEP_SEED_SCHEME)
    return {
        "kind": "nrmsim sweep",
        "created_utc": common["created_utc"],
        "command": common["command"],
        "spec_file": str(exp.path),
        "spec_hash": exp.spec_hash(),
        "spec": exp.canonical(),
        "spec_text": exp.text,
        "description": exp.description,
        "git": common["git"],
        "versions": common["versions"],
        "seeds": {
            **common["seeds"],
            "design": "SALib seed=root_seed (sobol, morris); psa Monte Carlo: "
            "SeedSequence(root_seed, spawn_key=(2**30, crc32(column))) per factor",
        },
        "scenarios": {s.name: s.resolved() for s in exp.scenarios},
        "design": {
            "file": "design.parquet",
            "method": exp.method,
            "points": design.points,
            "columns": list(design.frame.columns),
            "sha256": design.sha256(),
            "problem": design.problem,
            "factors": [f.column for f in design.factors],
            "ensemble_fit": design.ensemble_fit,
            "ensemble_columns": list(design.ensemble_columns),
        },
        "runs": {
            "total": n_runs,
            "scenarios": list(exp.scenario_names),
            "replicates": exp.replicates,
            "id": "(point * n_scenarios + scenario_index) * replicates + replicate",
        },
        "outputs": [{"metric": o.metric, "year": o.year, "column": o.column} for o in exp.outputs],
        "status": "running",
        "sessions": [],
    }


def write_manifest(out: Path, data: Mapping[str, Any]) -> None:
    write_atomic((json.dumps(data, indent=2, default=str) + "\n").encode(), out / "manifest.json")


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


def prepare_folder(
    exp: Experiment, design: Design, out: Path, resume: bool, argv: Sequence[str]
) -> dict[str, Any]:
    """Create the folder (new sweep) or check it holds the same sweep (``resume``)."""
    manifest_path = out / "manifest.json"
    if resume and not manifest_path.is_file() and out.is_dir() and not part_files(out):
        # stopped before its manifest was written: nothing ran, so start it afresh
        for leftover in out.iterdir():
            if leftover.is_file() and (
                leftover.name == "design.parquet" or ".tmp-" in leftover.name
            ):
                leftover.unlink()
        resume = False
    if resume:
        if not manifest_path.is_file():
            raise SweepMismatchError(
                out,
                "--resume",
                "no manifest.json here: nothing to resume (drop --resume to start this sweep)",
            )
        old = load_manifest(out)
        if old.get("spec_hash") != exp.spec_hash():
            changed = _differences(old.get("spec", {}), exp.canonical())
            raise SweepMismatchError(
                out,
                "--resume",
                f"spec hash {exp.spec_hash()[:12]} differs from the one "
                f"that made these results ({str(old.get('spec_hash'))[:12]}); changed: "
                f"{changed}. Results of different specs are never mixed: use another --out",
            )
        if old.get("design", {}).get("sha256") != design.sha256():
            raise SweepMismatchError(
                out,
                "--resume",
                "the design differs from the stored one (a different SALib "
                "version or calibration ensemble?); results are never mixed: use another --out",
            )
        remove_temporaries(out)
        return old
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: --out must be a folder, and this is a file")
    if out.exists() and any(out.iterdir()):
        hint = "pass --resume to continue it" if manifest_path.exists() else "choose another"
        raise OutputExistsError(f"{out}: folder exists and is not empty; {hint} (or another --out)")
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(parquet_bytes(design.frame.reset_index()), out / "design.parquet")
    manifest = build_manifest(exp, design, argv)
    write_manifest(out, manifest)
    return manifest


# --------------------------------------------------------------------------- run
def run_sweep(
    exp: Experiment,
    out: Path | str,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    quiet: bool = True,
    chunk_size: int | None = None,
    evaluate: Evaluate | None = None,
    argv: Sequence[str] = (),
    design: Design | None = None,
    compact_parts: bool = True,
) -> SweepResult:
    """Run (or resume) a sweep into ``out``; return counts and timings.

    Args:
        workers: local processes (1 = in this process); ignored with ``scheduler``.
        scheduler: address of a Dask scheduler (``tcp://host:8786``) to run the tasks on.
        chunk_size: runs per task (default: adaptive, see :class:`Chunking`).
        evaluate: replaces the simulation (tests): (scenario, replicate, outputs) ->
            (values by output column, timings).
        compact_parts: once every run is stored, merge the part files (one per task) into
            one file per scenario (see :func:`compact`).
    """

    out = Path(out)
    design = design or make_design(exp)
    with out_lock(out):
        return _run_sweep(
            exp, out, design, workers, scheduler, resume, quiet, chunk_size, evaluate, argv,
            compact_parts,
        )  # fmt: skip


def sweep(
    spec: str | Path,
    *,
    size: int | None = None,
    out: str | Path | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    chunk_size: int | None = None,
    quiet: bool = True,
    argv: Sequence[str] = (),
) -> SweepResult:
    """Load an experiment and run (or resume) it (``nrmsim sweep``).

    Args:
        spec: an experiment file, or a name in ``experiments/``.
        size: sample size, replacing the spec's ``samples`` (e.g. for a quick try).
        out: the sweep folder; default ``experiments/out/<name>`` (``default_sweep_folder``).
        workers: local processes (1 = in this process); ignored with ``scheduler``.
        scheduler: address of a Dask scheduler (``tcp://host:8786``) to run the tasks on.
        resume: continue the sweep in ``out``: run only the missing runs (same spec only).
        chunk_size: runs per task; default adaptive (tasks of about 2 s, at most 32 runs).
        quiet: no progress bar on stderr.
        argv: the command line to record in the manifest (none from Python).

    Returns:
        The session's counts and timings (``SweepResult``; ``out`` is the folder).

    Raises:
        ScenarioError: an experiment file that does not load, or ``out`` holding another
            sweep (or an unfinished one without ``resume``).
        SweepInterrupted: interrupted (a ``KeyboardInterrupt``); the finished runs are kept.
    """
    exp = load_experiment(spec, size=size)
    folder = Path(out) if out is not None else default_sweep_folder(exp.name)
    try:
        return run_sweep(
            exp, folder, workers=workers, scheduler=scheduler, resume=resume, quiet=quiet,
            chunk_size=chunk_size, argv=argv,
        )  # fmt: skip
    except KeyboardInterrupt as exc:
        raise SweepInterrupted(folder) from exc


def _run_sweep(
    exp: Experiment,
    out: Path,
    design: Design,
    workers: int,
    scheduler: str | None,
    resume: bool,
    quiet: bool,
    chunk_size: int | None,
    evaluate: Evaluate | None,
    argv: Sequence[str],
    compact_parts: bool,
) -> SweepResult:
    from model.runner import execute

    manifest = prepare_folder(exp, design, out, resume, argv)
    total = design.points * len(exp.scenarios) * exp.replicates
    done = completed_run_ids(out)
    missing = [
        it for it in run_ids(design.points, len(exp.scenarios), exp.replicates) if it[0] not in done
    ]
    chunking = Chunking(chunk_size)
    session = {
        "started_utc": utc_now(),
        "command": list(argv),
        "workers": workers,
        "scheduler": scheduler,
        "chunk_size": chunk_size or "adaptive",
        "done_before": len(done),
        "to_run": len(missing),
        "host": socket.gethostname(),
    }
    manifest["sessions"] = [*manifest.get("sessions", []), session]
    manifest["status"] = "running"
    write_manifest(out, manifest)
    bar = _progress_bar(total, len(done), exp.name, quiet)
    spent: list[float] = []  # seconds of each run this session
    started = time.perf_counter()
    tasks = make_tasks(exp, design, missing, chunking, evaluate)
    mode = "dask" if scheduler is not None else "processes" if workers > 1 else "serial"
    try:
        for _, (frames, timing) in execute(
            run_task, tasks, mode=mode, workers=workers, scheduler=scheduler
        ):
            store_task(out, frames, timing)
            seconds = timing["total_s"].tolist() if len(timing) else []
            spent.extend(seconds)
            chunking.observe(seconds)  # before the next task is made: it takes the new size
            bar.update(len(seconds))
    finally:
        bar.close()
        wall = time.perf_counter() - started
        complete = len(completed_run_ids(out)) == total
        if complete and compact_parts:
            compact(out)
        session.update(
            {
                "ran": len(spent),
                "wall_s": round(wall, 3),
                "ended_utc": utc_now(),
                "last_chunk_size": chunking.size,
            }
        )
        manifest["status"] = "complete" if complete else "incomplete"
        write_manifest(out, manifest)
    ran = len(spent)
    timing_s = {
        "wall_s": wall,
        "runs_per_s": ran / wall if wall > 0 else math.nan,
        "mean_run_s": float(np.mean(spent)) if spent else math.nan,
    }
    return SweepResult(out, total, len(done), ran, wall, complete, timing_s, name=exp.name)


def _progress_bar(total: int, done: int, label: str, quiet: bool) -> Any:
    """A tqdm bar of runs on standard error, starting at the runs already stored."""
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: worker processes are forked after this
    return tqdm(
        total=total,
        initial=done,
        desc=label,
        unit="run",
        disable=quiet,
        file=sys.stderr,
        smoothing=0.1,
    )
