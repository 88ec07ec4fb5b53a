"""``nrmsim calibrate --extend-ensemble FIT_ID``: grow a saved fit's ensemble without
refitting, over as many sessions as it takes.

No optimiser trial runs and nothing is written back to ``baseline.toml``. Candidates are
proposed as ``nrmsim calibrate`` proposes them (``model.calibration.ensemble``) at the fit's
own scenario, seed, replicates and optimiser seed (``fit.json``), starting from the sets in
``ensemble.parquet``; accepted sets are appended with ``set_id`` continuing (existing sets keep
their ids and values). Every candidate is recorded in ``ensemble-progress.csv`` as soon as it
finishes (written atomically), so after a kill the same command continues where it stopped,
runs only the missing candidates, and ends with exactly the sets one uninterrupted run gives.
A lock (``model.output.out_lock``) keeps a second process from extending the same fit.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from model.calibration.ensemble import (
    EnsembleSearch,
    RunCandidate,
    read_progress,
    run_search,
    write_progress,
)
from model.calibration.targets import CALIBRATION_DIR
from model.scenario import Scenario, ScenarioError

PROGRESS_FILE = "ensemble-progress.csv"
FIT_KEYS = ("scenario", "seed", "replicates_per_candidate", "optimiser_seed", "parameters")


@dataclass(frozen=True)
class SavedFit:
    """A fit's folder: ``fit.json`` (``meta``), its parameters as (key, value, low, high)
    (``free``) and the saved ensemble (``set_id``, one column per parameter, provenance)."""

    fit_id: str
    folder: Path
    meta: Mapping[str, Any]
    free: list[tuple[str, float, float, float]]
    ensemble: pd.DataFrame

    @property
    def progress(self) -> Path:
        return self.folder / PROGRESS_FILE


def load_fit(fit_id: str, fits_dir: Path | None = None) -> SavedFit:
    """Read ``<fits_dir>/<fit_id>/`` (default ``calibration/fits``).

    Raises:
        ScenarioError: no such folder (names the fits there), or its fit.json or
            ensemble.parquet missing or lacking what the extension needs.
    """
    root = fits_dir or CALIBRATION_DIR / "fits"
    folder = root / fit_id
    if not fit_id or "/" in fit_id or fit_id.startswith(".") or not folder.is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise ScenarioError(
            folder, "--extend-ensemble", f"no fit folder '{fit_id}' in {root}; fits: {have}"
        )
    meta_path = folder / "fit.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(meta_path, "-", "file not found (nrmsim calibrate writes it)") from None
    except json.JSONDecodeError as exc:
        raise ScenarioError(meta_path, "-", f"not valid JSON ({exc})") from None
    missing = [k for k in FIT_KEYS if k not in meta]
    if missing:
        raise ScenarioError(meta_path, ", ".join(missing), f"missing; needed: {list(FIT_KEYS)}")
    free = [
        (p["key"], float(p["before"]), float(p["low"]), float(p["high"]))
        for p in meta["parameters"]
    ]
    path = folder / "ensemble.parquet"
    if not path.is_file():
        raise ScenarioError(path, "-", "file not found: the fit saved no ensemble to extend")
    ensemble = pd.read_parquet(path)
    absent = sorted({"set_id", *(k for k, *_ in free)} - set(ensemble.columns))
    if absent:
        raise ScenarioError(path, "columns", f"missing {absent}")
    if list(ensemble["set_id"]) != list(range(len(ensemble))):
        raise ScenarioError(path, "set_id", "must be 0, 1, 2, ... in order")
    return SavedFit(fit_id, folder, meta, free, ensemble)


def extend_ensemble(
    fit: SavedFit,
    run: RunCandidate,
    *,
    ensemble_size: int,
    ensemble_budget: int,
    report: Path | None = None,
    command: str = "",
) -> pd.DataFrame:
    """Grow ``fit``'s ensemble to ``ensemble_size`` sets, running at most ``ensemble_budget``
    candidates in all (those recorded in the progress file count); returns the ensemble.

    Resumes from ``fit.progress``: the recorded candidates are recomputed, not rerun. After
    every candidate the progress file is replaced atomically; after each accepted one,
    ``ensemble.parquet`` and ``fit.json`` (``ensemble_size``) too, and ``report`` (the fit's
    markdown report, if given) says how far the extension got (``command``: how to rerun it).
    The caller holds the lock (``extend_fit`` does).
    """
    stale = [*fit.folder.glob(".*.tmp-*")]  # left by a process killed mid-write
    if report is not None:
        stale += report.parent.glob(f".{report.name}.tmp-*")
    for path in stale:
        path.unlink(missing_ok=True)
    rows = read_progress(fit.progress)
    base = _starting_sets(fit, rows)
    search = EnsembleSearch(
        fit.free,
        base,
        int(fit.meta["optimiser_seed"]),
        fallback=_fallback(fit) if not base else None,
    )
    search.replay(rows, fit.progress)
    _check_saved_sets(fit, search)

    def save(s: EnsembleSearch) -> None:
        write_progress(fit.progress, s.history)
        if s.history[-1]["accepted"]:
            _save_ensemble(fit, s, report, command)

    run_search(
        search, run, ensemble_size=ensemble_size, ensemble_budget=ensemble_budget, after_each=save
    )
    if search.history:  # also repairs a kill between the progress file and the ensemble
        _save_ensemble(fit, search, report, command)
    return search.frame()


def _starting_sets(fit: SavedFit, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ensemble's sets that the progress file did not add: those before its first
    accepted candidate's set (every set if it accepted none)."""
    added = [int(r["set_id"]) for r in rows if int(r["set_id"]) >= 0]
    first = added[0] if added else len(fit.ensemble)
    if first > len(fit.ensemble):
        raise ScenarioError(
            fit.progress,
            "set_id",
            f"first added set is {first} but ensemble.parquet holds {len(fit.ensemble)} sets: "
            "the two files do not belong together",
        )
    base = fit.ensemble.iloc[:first].drop(columns="set_id")
    return base.to_dict(orient="records")


def _check_saved_sets(fit: SavedFit, search: EnsembleSearch) -> None:
    """The sets ``ensemble.parquet`` holds beyond the starting ones must be the recorded
    candidates' (a kill may leave it one set behind the progress file, never ahead)."""
    keys = [k for k, *_ in fit.free]
    saved = fit.ensemble.iloc[search.starting_sets :]
    if len(saved) > len(search.accepted) - search.starting_sets:
        raise ScenarioError(
            fit.folder / "ensemble.parquet",
            "set_id",
            f"holds {len(fit.ensemble)} sets, more than {PROGRESS_FILE} accounts for "
            f"({len(search.accepted)})",
        )
    for (_, row), want in zip(
        saved.iterrows(), search.accepted[search.starting_sets :], strict=False
    ):
        if any(abs(float(row[k]) - want[k]) > 1e-12 * max(1.0, abs(want[k])) for k in keys):
            raise ScenarioError(
                fit.folder / "ensemble.parquet",
                f"set {int(row['set_id'])}",
                f"differs from the candidate {PROGRESS_FILE} recorded for it",
            )


def _fallback(fit: SavedFit) -> dict[str, float]:
    """Where the random walk starts while the ensemble is empty: the best optimiser trial
    (trials.csv), else the fitted values."""
    trials = fit.folder / "trials.csv"
    keys = [k for k, *_ in fit.free]
    if trials.is_file():
        frame = pd.read_csv(trials)
        if len(frame) and set(keys) <= set(frame.columns) and "cost" in frame:
            best = frame.loc[frame["cost"].idxmin()]
            return {k: float(best[k]) for k in keys}
    return {k: float(fit.meta.get("fitted", {}).get(k, v)) for k, v, *_ in fit.free}


def _save_ensemble(
    fit: SavedFit, search: EnsembleSearch, report: Path | None, command: str
) -> None:
    """ensemble.parquet, fit.json's ensemble_size and the report's ensemble lines, each
    replaced atomically."""
    from model.calibration.report import update_report_ensemble
    from model.output import parquet_bytes, write_atomic

    frame = search.frame()
    write_atomic(parquet_bytes(frame), fit.folder / "ensemble.parquet")
    meta = dict(fit.meta)
    added = search.history
    meta["ensemble_size"] = len(frame)
    meta["ensemble_extension"] = {
        "command": command,
        "candidates": len(added),
        "accepted": sum(bool(r["accepted"]) for r in added),
        "progress": PROGRESS_FILE,
    }
    write_atomic((json.dumps(meta, indent=2) + "\n").encode(), fit.folder / "fit.json")
    if report is not None and report.is_file():
        note = (
            f"Extended by `{command}` (no refit; the fit's seed, replicates and optimiser "
            f"seed): {len(added)} candidates run, {meta['ensemble_extension']['accepted']} "
            f"accepted; each candidate is recorded in `{PROGRESS_FILE}` beside the ensemble."
        )
        text = update_report_ensemble(report, fit.fit_id, frame, note)
        write_atomic(text.encode(), report)


def extend_fit(
    fit_id: str,
    *,
    ensemble_size: int = 60,
    ensemble_budget: int = 200,
    targets: str | Path | None = None,
    workers: int = 1,
) -> SavedFit:
    """Grow the saved fit ``calibration/fits/<fit_id>/``'s ensemble without refitting
    (``nrmsim calibrate --extend-ensemble``): at the fit's own scenario, seed, replicates and
    optimiser seed (``fit.json``), holding the fit folder's lock, resumably (see
    ``extend_ensemble``). Says what it extends, and notes a baseline that no longer cites the
    fit, on stderr.

    Args:
        fit_id: the fit's folder name in ``calibration/fits/``.
        ensemble_size: the size to grow the ensemble to, counting the sets it holds.
        ensemble_budget: candidates (model evaluations) in all, counting those of earlier
            sessions.
        targets: targets file; default ``calibration/targets.toml``; its ``fit`` targets must
            be the fit's.
        workers: worker processes (the result does not depend on it).

    Returns:
        The fit as saved afterwards (``ensemble``: every set, old and new).

    Raises:
        ScenarioError: no such fit, its files incomplete, or fit targets not the fit's.
        model.output.OutputExistsError: another process is extending the same fit.
    """
    from model.calibration.fit import candidate_runner
    from model.calibration.targets import load_targets
    from model.observe import load_observation
    from model.output import out_lock
    from model.scenario import load_scenario

    fit = load_fit(fit_id)
    obs = load_observation()
    path = Path(targets) if targets is not None else None
    fit_targets = [t for t in load_targets(path, obs) if t.use == "fit"]
    _check_targets(fit, [t.id for t in fit_targets], path)
    scenario = load_scenario(fit.meta["scenario"]).with_run(seed=int(fit.meta["seed"]))
    _warn_if_not_cited(fit, scenario)
    reps = list(range(int(fit.meta["replicates_per_candidate"])))
    command = (
        f"nrmsim calibrate --extend-ensemble {fit.fit_id} --ensemble-size {ensemble_size} "
        f"--ensemble-budget {ensemble_budget}"
    )
    print(
        f"extending {fit.fit_id}: {len(fit.ensemble)} sets saved; scenario {scenario.name}, "
        f"seed {scenario.seed}, {len(reps)} replicates per candidate, optimiser seed "
        f"{fit.meta['optimiser_seed']}",
        file=sys.stderr,
    )
    with out_lock(fit.folder):
        fit = load_fit(fit.fit_id)  # again, under the lock: another process may have written
        extend_ensemble(
            fit,
            candidate_runner(scenario, fit_targets, reps, workers, obs),
            ensemble_size=ensemble_size,
            ensemble_budget=ensemble_budget,
            report=CALIBRATION_DIR / "reports" / f"{fit.fit_id}.md",
            command=command,
        )
        return load_fit(fit.fit_id)


def _check_targets(fit: SavedFit, ids: Sequence[str], targets_file: Path | None) -> None:
    """The fit targets must be the fit's: sets accepted against other targets do not mix."""
    recorded = fit.meta.get("fit_targets")
    if recorded is None or set(recorded) == set(ids):
        return
    raise ScenarioError(
        targets_file or CALIBRATION_DIR / "targets.toml",
        "fit targets",
        f"differ from those of {fit.fit_id} (fit.json): added {sorted(set(ids) - set(recorded))}"
        f", dropped {sorted(set(recorded) - set(ids))}; refit (nrmsim calibrate) instead of "
        "extending this fit's ensemble",
    )


def _warn_if_not_cited(fit: SavedFit, scenario: Scenario) -> None:
    """A note when the scenario's values of the fit's parameters do not cite this fit (the
    baseline was refit since: the other parameters may have moved too)."""
    source = f"calibration:{fit.fit_id}"
    other = sorted(
        k for k, *_ in fit.free if k in scenario.entries and scenario.entries[k].source != source
    )
    if other:
        print(
            f"note: the {scenario.name} scenario's values of {other} do not cite {source}; "
            "candidates run with its other parameters as they are now",
            file=sys.stderr,
        )
