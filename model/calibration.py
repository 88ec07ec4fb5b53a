"""Calibration targets, the CI gate (``nrmsim check``) and the fit (``nrmsim calibrate``).

``calibration/targets.toml`` holds published figures as data. Each target has a ``role``:
``input-check`` (it echoes an input: referral counts and mixes, figures a parameter is
computed from) or ``outcome`` (the model produces it), and a ``view`` (``model.observe``) that
turns a run into the figure as published. ``evaluate`` runs a scenario for a fixed seed and
replicate count; ``nrmsim check`` passes only if every ``fit`` target of both roles is inside
its tolerance (``validate`` targets are reported, not gated) and never re-optimises.

``nrmsim calibrate`` fits the parameters marked ``calibrate = true`` with Optuna (TPE or
CMA-ES, for noisy simulators) under common random numbers (every candidate runs the same
seeds), writes the point estimate back into ``baseline.toml``, and saves an ensemble of
parameter sets consistent with every fit target (``calibration/fits/<fit-id>/``), a report
and a convergence plot.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import math
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import pandas as pd

from model.observe import VIEWS, ObservationModel, load_observation, observe
from model.results import REGISTRY
from model.scenario import (
    SCENARIO_DIR,
    Scenario,
    ScenarioError,
    load_scenario,
    load_sources,
    read_toml,
    suggest,
)

CALIBRATION_DIR = SCENARIO_DIR.parent / "calibration"
TARGETS_FILE = CALIBRATION_DIR / "targets.toml"
ROLES = ("input-check", "outcome")
TARGET_KEYS = {
    "id",
    "role",
    "metric",
    "group_by",
    "group",
    "kind",
    "view",
    "observation",
    "start",
    "end",
    "at",
    "cohort_start",
    "cohort_end",
    "denominator",
    "value",
    "unit",
    "population",
    "source",
    "locator",
    "tolerance",
    "tolerance_note",
    "use",
    "history",
    "mapping_note",
    "weight",
}
# Fixed by the gate: CI compares the calibrated historical run at this seed and replicate count.
CHECK_REPLICATES = 4
DISTANCE_CAP = 10.0  # a target this many tolerances away counts no worse in the fit objective
MARGIN = 0.75  # the fit aims to bring each fit target this far inside its tolerance ...
MARGIN_PENALTY = 10.0  # ... with this extra weight on the part of a distance beyond it


@dataclass(frozen=True)
class Target:
    """A published figure the model should reproduce, with its own uncertainty."""

    id: str
    role: str  # input-check | outcome
    metric: str
    group_by: str
    group: str
    kind: str  # flow | stock
    start: dt.date
    end: dt.date  # exclusive for flows; the stock date for stocks
    value: float
    tolerance_kind: str
    tolerance_value: float
    use: str  # fit | validate
    source: str
    view: str = "metric"
    observation: str = ""  # key of the observation model's child share, for all-ages counts
    cohort: tuple[dt.date, dt.date] | None = None
    locator: str = ""
    unit: str = ""
    population: str = "children"
    denominator: Mapping[str, str] | None = None
    weight: float = 1.0
    notes: Mapping[str, str] = field(default_factory=dict)
    file: str = ""

    @property
    def tolerance(self) -> float:
        """Allowed absolute distance between simulated mean and observed value."""
        if self.tolerance_kind == "relative":
            return abs(self.value) * self.tolerance_value
        return self.tolerance_value


def load_targets(path: Path | None = None, obs: ObservationModel | None = None) -> list[Target]:
    """Read and validate the targets file; errors name the file, target and key."""
    path = path or TARGETS_FILE
    doc = read_toml(path)
    sources = load_sources()
    groups = known_groups()
    obs = obs or load_observation()
    out: list[Target] = []
    seen: set[str] = set()
    items = doc.get("target", [])
    if not isinstance(items, list):
        raise ScenarioError(path, "target", "write targets as [[target]] tables")
    for i, t in enumerate(items):
        if not isinstance(t, dict):
            raise ScenarioError(path, f"target[{i}]", "must be a table")
        where = f"target[{i}]" + (f" ({t['id']})" if "id" in t else "")
        for key in t:
            if key not in TARGET_KEYS:
                raise ScenarioError(
                    path,
                    f"{where}.{key}",
                    f"unknown key; allowed: {sorted(TARGET_KEYS)}." + suggest(key, TARGET_KEYS),
                )
        required = (
            "id",
            "role",
            "metric",
            "group_by",
            "group",
            "kind",
            "value",
            "source",
            "tolerance",
            "use",
        )
        for key in required:
            if key not in t:
                raise ScenarioError(path, f"{where}.{key}", "missing")
        for key in ("id", "role", "metric", "group_by", "kind", "use", "source"):
            if not isinstance(t[key], str):
                raise ScenarioError(path, f"{where}.{key}", f"value {t[key]!r} must be a string")
        for key in ("value", "weight"):
            if key in t and (
                isinstance(t[key], bool)
                or not isinstance(t[key], int | float)
                or not math.isfinite(t[key])
            ):
                raise ScenarioError(path, f"{where}.{key}", f"value {t[key]!r} must be a number")
        if t.get("weight", 1.0) < 0:
            raise ScenarioError(path, f"{where}.weight", f"value {t['weight']!r} must be >= 0")
        if t["id"] in seen:
            raise ScenarioError(path, f"{where}.id", f"duplicate id '{t['id']}'")
        seen.add(t["id"])
        if t["role"] not in ROLES:
            raise ScenarioError(
                path,
                f"{where}.role",
                f"value {t['role']!r} not allowed; "
                f"allowed: {list(ROLES)}." + suggest(t["role"], ROLES),
            )
        for key in ("view", "observation", "locator", "unit", "population", "group"):
            ok = str | int if key == "group" else str  # a group may be written as a number
            if key in t and (isinstance(t[key], bool) or not isinstance(t[key], ok)):
                raise ScenarioError(path, f"{where}.{key}", f"value {t[key]!r} must be a string")
        view = t.get("view", "metric")
        if view not in VIEWS:
            raise ScenarioError(
                path,
                f"{where}.view",
                f"value {view!r} not allowed; allowed: "
                f"{sorted(VIEWS)}." + suggest(str(view), VIEWS),
            )
        observation = t.get("observation", "")
        if observation and observation not in obs.values["child_share"]:
            raise ScenarioError(
                path,
                f"{where}.observation",
                f"value {observation!r} is not a "
                f"child_share in {obs.path}; allowed: "
                f"{sorted(obs.values['child_share'])}",
            )
        _check_metric(path, where, t["metric"], t["group_by"])
        _check_group(path, where, t["group_by"], str(t["group"]), groups)
        if t["kind"] not in ("flow", "stock"):
            raise ScenarioError(
                path,
                f"{where}.kind",
                f"value {t['kind']!r} not allowed; allowed: ['flow', 'stock']",
            )
        if t["use"] not in ("fit", "validate"):
            raise ScenarioError(
                path,
                f"{where}.use",
                f"value {t['use']!r} not allowed; allowed: ['fit', 'validate']",
            )
        if t["source"] not in sources:
            raise ScenarioError(
                path,
                f"{where}.source",
                f"'{t['source']}' is not in "
                "scenarios/sources.toml." + suggest(t["source"], sources),
            )
        tol = t["tolerance"]
        if (
            not isinstance(tol, dict)
            or tol.get("kind") not in ("relative", "absolute")
            or isinstance(tol.get("value"), bool)
            or not isinstance(tol.get("value"), int | float)
            or not 0 < tol["value"] < math.inf  # also rejects nan
        ):
            raise ScenarioError(
                path,
                f"{where}.tolerance",
                f"value {tol!r} must be {{ kind = 'relative' | 'absolute', value = > 0 }}",
            )
        if t["kind"] == "flow":
            start_in, end_in = t.get("start"), t.get("end")
            if not _is_date(start_in) or not _is_date(end_in) or end_in <= start_in:
                raise ScenarioError(
                    path,
                    where,
                    f"a flow needs dates start < end (TOML dates like 2023-01-01, no time); "
                    f"got start {start_in!r}, end {end_in!r}",
                )
            start, end = start_in, end_in
        else:
            at = t.get("at")
            if not _is_date(at):
                raise ScenarioError(path, f"{where}.at", "a stock needs a date `at`")
            start = end = at
        cohort = None
        if view == "cohort_awaiting_share":
            c0, c1 = t.get("cohort_start"), t.get("cohort_end")
            if not _is_date(c0) or not _is_date(c1) or c1 <= c0:
                raise ScenarioError(
                    path, where, "a cohort view needs dates cohort_start < cohort_end"
                )
            cohort = (c0, c1)
            start = c0
        den = t.get("denominator")
        if den is not None and not isinstance(den, dict):
            raise ScenarioError(
                path,
                f"{where}.denominator",
                f"value {den!r} must be a table {{ metric = ..., group_by = ..., group = ... }}",
            )
        if den is not None:
            for key in den:
                if key not in ("metric", "group_by", "group"):
                    raise ScenarioError(
                        path,
                        f"{where}.denominator.{key}",
                        "unknown key; allowed: ['group', 'group_by', 'metric']."
                        + suggest(key, ("metric", "group_by", "group")),
                    )
            den = {
                "metric": den.get("metric", t["metric"]),
                "group_by": den.get("group_by", t["group_by"]),
                "group": den.get("group", t["group"]),
            }
            _check_metric(path, f"{where}.denominator", den["metric"], den["group_by"])
            _check_group(path, f"{where}.denominator", den["group_by"], str(den["group"]), groups)
        notes = {k: t[k] for k in ("tolerance_note", "mapping_note", "history") if k in t}
        out.append(
            Target(
                t["id"],
                t["role"],
                t["metric"],
                t["group_by"],
                str(t["group"]),
                t["kind"],
                start,
                end,
                float(t["value"]),
                tol["kind"],
                float(tol["value"]),
                t["use"],
                t["source"],
                view,
                observation,
                cohort,
                t.get("locator", ""),
                t.get("unit", ""),
                t.get("population", "children"),
                den,
                float(t.get("weight", 1.0)),
                notes,
                str(path),
            )
        )
    return out


def _is_date(value: Any) -> TypeGuard[dt.date]:
    """A TOML date (a date-time is not a date: it cannot be compared with one)."""
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


def known_groups() -> dict[str, set[str]]:
    """The categories each grouping can take (from the schema)."""
    from model.params import (
        AGE_BANDS,
        EXPLOITATION_TYPES,
        NATIONALITIES,
        NATIONS,
        PLACEMENT_TYPES,
        SEXES,
    )

    return {
        "all": {"all"},
        "sex": set(SEXES),
        "nationality_group": set(NATIONALITIES),
        "exploitation_type": set(EXPLOITATION_TYPES),
        "exploitation_any": set(EXPLOITATION_TYPES) - {"mixed"},
        "nation": set(NATIONS),
        "age_band": set(AGE_BANDS),
        "route": {"home_office", "devolved_pilot"},
        "placement_type": set(PLACEMENT_TYPES),
    }


def _check_group(
    path: Path, where: str, group_by: str, group: str, groups: Mapping[str, set[str]]
) -> None:
    if group not in groups[group_by]:
        raise ScenarioError(
            path,
            f"{where}.group",
            f"value {group!r} is not a {group_by} group; allowed: {sorted(groups[group_by])}."
            + suggest(group, groups[group_by]),
        )


def _check_metric(path: Path, where: str, metric: str, group_by: str) -> None:
    if not isinstance(metric, str) or metric not in REGISTRY:
        raise ScenarioError(
            path, f"{where}.metric", f"unknown metric '{metric}'." + suggest(str(metric), REGISTRY)
        )
    allowed = REGISTRY[metric].groupings
    if not isinstance(group_by, str) or group_by not in allowed:
        raise ScenarioError(
            path,
            f"{where}.group_by",
            f"value {group_by!r} not allowed for {metric}; allowed: {list(allowed)}",
        )


def check_periods(targets: Sequence[Target], scenario: Scenario) -> None:
    """Every target's period must lie inside the run (outputs cover start..end)."""
    last = scenario.end + dt.timedelta(days=1)
    for t in targets:
        if t.start < scenario.start or t.end > last:
            raise ScenarioError(
                t.file,
                f"target {t.id}",
                f"period {t.start}..{t.end} is outside "
                f"the run of '{scenario.name}' ({scenario.start} to "
                f"{scenario.end})",
            )


# --------------------------------------------------------------------------- evaluation
def evaluate(
    scenario: Scenario,
    targets: Sequence[Target],
    replicates: int,
    workers: int = 1,
    obs: ObservationModel | None = None,
) -> pd.DataFrame:
    """Run ``replicates`` of the scenario and compare with every target.

    Returns one row per target: role, use, observed, simulated mean, 95% interval over
    replicates, Monte Carlo standard error, tolerance, standardised distance and pass/fail.
    """
    per_rep = replicate_values(scenario, targets, range(replicates), workers, obs)
    return compare_with_targets(per_rep, targets)


def replicate_values(
    scenario: Scenario,
    targets: Sequence[Target],
    replicates: Sequence[int],
    workers: int = 1,
    obs: ObservationModel | None = None,
) -> pd.DataFrame:
    """Simulated values of every target: one row per replicate, one column per target."""
    from concurrent.futures import ProcessPoolExecutor

    from model.runner import pool_context

    check_periods(targets, scenario)
    obs = obs or load_observation()
    jobs = [(scenario, r, list(targets), obs) for r in replicates]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context()) as pool:
            rows = list(pool.map(_replicate_values, jobs))
    else:
        rows = [_replicate_values(job) for job in jobs]
    return pd.DataFrame(rows)


def _replicate_values(job: tuple[Scenario, int, list[Target], ObservationModel]) -> dict:
    from model.runner import analyse, simulate

    scenario, replicate, targets, obs = job
    model = simulate(scenario, replicate)
    analysis, _, _ = analyse(model)
    return observe(analysis, targets, scenario.sim_start, obs)


def compare_with_targets(sims: pd.DataFrame, targets: Sequence[Target]) -> pd.DataFrame:
    rows = []
    for t in targets:
        values = sims[t.id].to_numpy(float)
        finite = np.isfinite(values)
        mean = float(values[finite].mean()) if finite.any() else math.nan
        se = (
            float(values[finite].std(ddof=1) / math.sqrt(finite.sum()))
            if finite.sum() > 1
            else math.nan
        )
        lo, hi = (
            np.percentile(values[finite], [2.5, 97.5]) if finite.any() else (math.nan, math.nan)
        )
        distance = (mean - t.value) / t.tolerance if t.tolerance else math.nan
        rows.append(
            {
                "id": t.id,
                "role": t.role,
                "use": t.use,
                "metric": t.metric,
                "view": t.view,
                "group": f"{t.group_by}={t.group}",
                "period": f"{t.start}..{t.end}" if t.kind == "flow" else f"at {t.end}",
                "observed": t.value,
                "simulated": mean,
                "low95": float(lo),
                "high95": float(hi),
                "mc_se": se,
                "tolerance": t.tolerance,
                "distance": distance,
                "pass": bool(abs(distance) <= 1.0) if math.isfinite(distance) else False,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- nrmsim check
def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 only if every fit target (input checks and outcomes) is inside its tolerance."""
    import time

    started = time.perf_counter()
    obs = load_observation()
    targets = load_targets(args.targets, obs)
    scenario = load_scenario(args.scenario)
    if args.seed is not None:
        scenario = scenario.with_run(seed=args.seed)
    table = evaluate(scenario, targets, CHECK_REPLICATES, workers=args.workers, obs=obs)
    fit = table[table["use"] == "fit"]
    ok = bool(fit["pass"].all())
    wall = time.perf_counter() - started
    if args.json:
        print(
            json.dumps(
                {
                    "scenario": scenario.name,
                    "seed": scenario.seed,
                    "replicates": CHECK_REPLICATES,
                    "passed": ok,
                    "wall_s": round(wall, 1),
                    "counts": gate_counts(table),
                    "targets": table.replace({np.nan: None}).to_dict(orient="records"),
                },
                indent=2,
            )
        )
    else:
        print_check(table, scenario, ok, wall)
    return 0 if ok else 1


def gate_counts(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Targets and passes by use and role."""
    out: dict[str, dict[str, int]] = {}
    for (use, role), part in table.groupby(["use", "role"]):
        out[f"{use}/{role}"] = {"targets": len(part), "inside": int(part["pass"].sum())}
    return out


def print_check(table: pd.DataFrame, scenario: Scenario, ok: bool, wall: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=170)
    sections = (
        ("fit", "outcome", "outcome targets (gate: what the model produces)"),
        ("fit", "input-check", "input checks (gate: figures that echo an input)"),
        ("validate", None, "validate targets (reported, not gated)"),
    )
    for use, role, title in sections:
        part = table[(table["use"] == use) & ((table["role"] == role) if role else True)]
        tab = Table(
            title=f"{scenario.name}, seed {scenario.seed}, {CHECK_REPLICATES} replicates: {title}"
        )
        for col in (
            "target",
            "view",
            "observed",
            "simulated [95%]",
            "tolerance",
            "distance",
            "status",
        ):
            tab.add_column(col, justify="left" if col in ("target", "view") else "right")
        for _, r in part.iterrows():
            status = (
                "[green]pass[/green]"
                if r["pass"]
                else "[red]FAIL[/red]"
                if use == "fit"
                else "[yellow]outside[/yellow]"
            )
            tab.add_row(
                r["id"] + ("" if role else f" ({r['role']})"),
                r["view"],
                _num(r["observed"]),
                f"{_num(r['simulated'])} [{_num(r['low95'])}, {_num(r['high95'])}]",
                f"±{_num(r['tolerance'])}",
                f"{r['distance']:+.2f}",
                status,
            )
        console.print(tab)
    counts = gate_counts(table)
    parts = [f"{k}: {v['inside']}/{v['targets']} inside" for k, v in sorted(counts.items())]
    console.print("; ".join(parts) + f". Check {'PASSED' if ok else 'FAILED'} in {wall:.0f} s.")


def _num(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


# --------------------------------------------------------------------------- nrmsim calibrate
def calibrated_parameters(scenario: Scenario) -> list[tuple[str, float, float, float]]:
    """(key, value, low, high) for parameters marked ``calibrate = true``."""
    out = []
    for key, entry in sorted(scenario.entries.items()):
        if entry.calibrate:
            if entry.range is None:
                raise ScenarioError(entry.declared_in, key, "calibrate = true needs a range")
            out.append((key, float(entry.value), entry.range[0], entry.range[1]))
    return out


def objective(table: pd.DataFrame, targets: Sequence[Target]) -> float:
    """Sum over fit targets of the squared distance (in tolerances), plus ``MARGIN_PENALTY``
    times the squared part of the distance beyond ``MARGIN``; distances capped at
    ``DISTANCE_CAP`` and an undefined value counts as the cap.

    Plain least squares barely cares whether a target sits at 0.9 or 1.1 tolerances, but the
    gate does; the margin term pulls every target inside with room to spare, so the fit
    holds at seeds other than the fit's (the gate tests three)."""
    weights = {t.id: t.weight for t in targets}
    d = table["distance"].to_numpy(float)
    d = np.where(np.isfinite(d), np.minimum(np.abs(d), DISTANCE_CAP), DISTANCE_CAP)
    w = table["id"].map(weights).to_numpy(float)
    beyond = np.maximum(d - MARGIN, 0.0)
    return float(np.sum(w * (d**2 + MARGIN_PENALTY * beyond**2)))


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit, write back, save the ensemble and the report."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    obs = load_observation()
    all_targets = load_targets(args.targets, obs)
    targets = [t for t in all_targets if t.use == "fit"]
    scenario = load_scenario(args.scenario)
    free = calibrated_parameters(scenario)
    if args.only:
        free = [f for f in free if any(fnmatch.fnmatch(f[0], pattern) for pattern in args.only)]
        if not free:
            raise ScenarioError(
                Path(args.scenario), "--only", f"matches no calibrated parameter: {args.only}"
            )
    fit_id = args.fit_id or f"fit-{dt.date.today().isoformat()}"
    trials: list[dict[str, Any]] = []
    reps = list(range(args.reps))

    def run(values: Mapping[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
        candidate = scenario.with_values(dict(values), "candidate")
        sims = replicate_values(candidate, targets, reps, args.workers, obs)
        return sims, compare_with_targets(sims, targets)

    log_path = CALIBRATION_DIR / "fits" / fit_id / "trials-progress.csv"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.unlink(missing_ok=True)

    def evaluate_candidate(values: Mapping[str, float], label: str) -> float:
        sims, table = run(values)
        cost = objective(table, targets)
        fit_pass = int(table["pass"].sum())
        trials.append(
            {
                "trial": len(trials),
                "params": dict(values),
                "cost": cost,
                "inside": fit_pass,
                "all_inside": fit_pass == len(targets),
                "values": sims.mean().to_dict(),
            }
        )
        # progress written as it goes, with each fit target's distance, so an interrupted
        # fit still shows where it stood
        row = {"trial": len(trials) - 1, "stage": label, "cost": cost, "inside": fit_pass}
        row.update(values)
        row.update(dict(zip("d:" + table["id"], table["distance"], strict=True)))
        pd.DataFrame([row]).to_csv(log_path, mode="a", header=not log_path.exists(), index=False)
        best = min(t["cost"] for t in trials)
        print(
            f"trial {len(trials)}/{args.budget} [{label}]: cost {cost:.1f} (best {best:.1f}), "
            f"{fit_pass}/{len(targets)} fit targets inside",
            file=sys.stderr,
        )
        return cost

    current = {k: v for k, v, _, _ in free}
    bounds = {k: (lo, hi) for k, _, lo, hi in free}
    step = getattr(args, "step", None)
    search = {"method": args.method, "budget": args.budget, "optimiser_seed": args.optimiser_seed}
    if step is not None:  # refine: search near the current values only
        bounds = {
            k: (max(lo, v - step * (hi - lo)), min(hi, v + step * (hi - lo)))
            for k, v, lo, hi in free
        }
    if args.method == "blocks":
        blocks = parameter_blocks([k for k, *_ in free])
        per_block = max(4, args.budget // (args.rounds * len(blocks)))
        best_cost = evaluate_candidate(current, "start")
        for round_no in range(args.rounds):
            for name, keys in blocks.items():
                # later rounds refine: smaller first steps around the current best
                sampler = _sampler(
                    {k: current[k] for k in keys}, 1 / (6 * (round_no + 1)), **search
                )
                study = optuna.create_study(direction="minimize", sampler=sampler)
                study.enqueue_trial({k: current[k] for k in keys})

                def block_trial(
                    trial: optuna.Trial,
                    keys: list[str] = keys,
                    label: str = f"round {round_no + 1} {name}",
                ) -> float:
                    values = dict(current)
                    values.update({k: trial.suggest_float(k, *bounds[k]) for k in keys})
                    return evaluate_candidate(values, label)

                study.optimize(block_trial, n_trials=per_block)
                if study.best_value < best_cost:
                    best_cost = study.best_value
                    current.update(study.best_params)
    else:
        study = optuna.create_study(direction="minimize", sampler=_sampler(current, **search))
        study.enqueue_trial(current)  # start from the current values

        def trial_fn(trial: optuna.Trial) -> float:
            values = {k: trial.suggest_float(k, *bounds[k]) for k in current}
            return evaluate_candidate(values, args.method)

        study.optimize(trial_fn, n_trials=args.budget)
    best = min(trials, key=lambda t: t["cost"])
    fitted = {k: _round(v) for k, v in best["params"].items()}
    ensemble = build_ensemble(
        trials,
        free,
        targets,
        run,
        optimiser_seed=args.optimiser_seed,
        ensemble_size=args.ensemble_size,
        ensemble_budget=args.ensemble_budget,
        ensemble_from=getattr(args, "ensemble_from", None),
    )
    final = scenario.with_values(fitted, f"calibration:{fit_id}")
    table = evaluate(final, all_targets, CHECK_REPLICATES, workers=args.workers, obs=obs)
    report = write_report(
        fit_id,
        scenario,
        free,
        fitted,
        table,
        trials,
        ensemble,
        all_targets,
        reps=args.reps,
        budget=args.budget,
        method=args.method,
        optimiser_seed=args.optimiser_seed,
        rounds=args.rounds,
        ensemble_size=args.ensemble_size,
        ensemble_budget=args.ensemble_budget,
        only=args.only or (),
        step=step,
        ensemble_from=getattr(args, "ensemble_from", None),
    )
    print(f"report: {report}")
    if not args.dry_run:
        write_back(SCENARIO_DIR / "baseline.toml", fitted, fit_id)
        print(f"fitted values written to scenarios/baseline.toml with source calibration:{fit_id}")
    return 0


def _sampler(
    x0: Mapping[str, float],
    sigma0: float = 1 / 6,
    *,
    method: str,
    budget: int,
    optimiser_seed: int,
) -> Any:
    """The Optuna sampler for a (sub)problem: CMA-ES from ``x0`` with initial step ``sigma0``
    (a share of each parameter's range) needs two or more dimensions; TPE otherwise (and for
    ``--method tpe``)."""
    import optuna

    if method in ("cmaes", "blocks") and len(x0) >= 2:
        with warnings.catch_warnings():  # x0, sigma0 deprecated in Optuna 4.9, still honoured
            warnings.simplefilter("ignore", FutureWarning)
            return optuna.samplers.CmaEsSampler(seed=optimiser_seed, x0=dict(x0), sigma0=sigma0)
    startup = min(10, max(2, budget // 8))
    return optuna.samplers.TPESampler(
        seed=optimiser_seed, multivariate=True, n_startup_trials=startup
    )


# stages whose parameters pull on the same targets share a block: CG negatives feed
# reconsideration requests; the share with parental responsibility splits ICTG support
COUPLED_STAGES = {"reconsideration": "cg_decision", "identification": "guardianship"}


def parameter_blocks(keys: Sequence[str]) -> dict[str, list[str]]:
    """Free parameters grouped by pathway stage (the schema group, the key's prefix; coupled
    stages in ``COUPLED_STAGES`` together): each block acts mostly on its own targets, so
    block-coordinate search converges in far fewer model runs than one search over every
    parameter at once."""
    blocks: dict[str, list[str]] = {}
    for key in keys:
        stage = key.split(".", 1)[0]
        blocks.setdefault(COUPLED_STAGES.get(stage, stage), []).append(key)
    return blocks


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def build_ensemble(
    trials: list[dict[str, Any]],
    free: list[tuple[str, float, float, float]],
    targets: Sequence[Target],
    run: Any,
    *,
    optimiser_seed: int,
    ensemble_size: int,
    ensemble_budget: int,
    ensemble_from: Path | str | None = None,
) -> pd.DataFrame:
    """Parameter sets consistent with every fit target (the non-implausible region).

    First every optimiser trial with all fit targets inside; then, while fewer than
    ``--ensemble-size``, proposals run with the same seeds and kept if no fit target is
    implausible (``not_implausible``: inside its tolerance widened by the candidate's Monte
    Carlo standard error). Proposals alternate between a random walk from a random accepted
    set (Gaussian steps of ``step`` x each parameter's range, starting at 2% and adapted to
    keep 35-60% accepted) and, once ten sets are accepted, Latin-hypercube points in the box
    spanned by the accepted sets (widened by 2% of each range), so the ensemble explores the
    region rather than only the fitted point's neighbourhood. Stops after
    ``--ensemble-budget`` extra runs.
    """
    from scipy.stats import qmc

    keys = [k for k, *_ in free]
    lo_range = np.array([lo for *_, lo, _ in free])
    hi_range = np.array([hi for *_, hi in free])
    width = hi_range - lo_range
    accepted = [
        dict(t["params"], source="optimiser", trial=t["trial"]) for t in trials if t["all_inside"]
    ]
    if ensemble_from:
        earlier = pd.read_parquet(ensemble_from)
        missing = sorted(set(keys) - set(earlier.columns))
        if missing:
            raise ScenarioError(ensemble_from, "columns", f"missing parameters {missing}")
        for row in earlier.to_dict(orient="records"):
            if row.get("source") == "optimiser" and any(
                all(abs(row[k] - a[k]) < 1e-12 for k in keys) for a in accepted
            ):
                continue  # the same optimiser trial, already accepted above
            accepted.append(
                {**{k: float(row[k]) for k in keys}, "source": row.get("source", "earlier")}
                | {"trial": int(row.get("trial", -1))}
            )
    if not accepted:
        best = min(trials, key=lambda t: t["cost"])
        anchor = np.array([[best["params"][k] for k in keys]])
    else:
        anchor = np.array([[a[k] for k in keys] for a in accepted])
    rng = np.random.default_rng(optimiser_seed)
    lhs = qmc.LatinHypercube(d=len(keys), seed=optimiser_seed)
    step = 0.02
    spent = 0
    walked = walked_ok = 0
    while len(accepted) < ensemble_size and spent < ensemble_budget:
        if not accepted and spent >= 24:
            print(
                "ensemble: no parameter set near the best is consistent with every fit target "
                "after 24 runs; stopping (the ensemble is empty)",
                file=sys.stderr,
            )
            break
        # history-matching proposals only once the accepted sets span a region worth filling
        walk = len(accepted) < 10 or spent % 2 == 0
        if walk:
            origin = anchor[rng.integers(len(anchor))]
            point = np.clip(origin + rng.normal(0.0, step, len(keys)) * width, lo_range, hi_range)
            source = "random-walk"
        else:
            box_lo = np.maximum(anchor.min(axis=0) - 0.02 * width, lo_range)
            box_hi = np.minimum(anchor.max(axis=0) + 0.02 * width, hi_range)
            point = qmc.scale(lhs.random(1), box_lo, box_hi)[0]
            source = "history-matching"
        values = dict(zip(keys, point.tolist(), strict=True))
        _, table = run(values)
        spent += 1
        ok = not_implausible(table)
        if ok:
            accepted.append(dict(values, source=source, trial=-1))
            anchor = np.vstack([anchor, point])
        if walk:
            walked, walked_ok = walked + 1, walked_ok + ok
            if walked >= 4:  # adapt the step towards 35-60% accepted
                rate = walked_ok / walked
                step *= 1.3 if rate > 0.6 else 0.75 if rate < 0.35 else 1.0
                walked = walked_ok = 0
        print(
            f"ensemble: {len(accepted)} sets consistent with every fit target after "
            f"{spent} extra runs ({source}, step {step:.3f})",
            file=sys.stderr,
        )
    frame = pd.DataFrame(accepted)
    if frame.empty:
        frame = pd.DataFrame(columns=[*keys, "source", "trial"])
    frame.insert(0, "set_id", range(len(frame)))
    return frame


def not_implausible(table: pd.DataFrame) -> bool:
    """History matching's test for one candidate: every fit target's implausibility
    |simulated - observed| / sqrt(tolerance^2 + mc_se^2) is at most 1, so the candidate's few
    replicates are allowed their Monte Carlo error (the gate, ``nrmsim check``, allows none)."""
    tol = table["tolerance"].astype(float)
    se = table["mc_se"].astype(float).fillna(0.0)
    implausibility = (table["distance"].astype(float) * tol).abs() / np.sqrt(tol**2 + se**2)
    return bool((implausibility <= 1.0).all())


def write_back(path: Path, fitted: Mapping[str, float], fit_id: str) -> None:
    """Replace value and source of each fitted parameter in place, keeping the file's layout."""
    text = path.read_text(encoding="utf-8")
    section = ""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        m = re.match(r"\[params\.(\w+)\]", line)
        if m:
            section = m.group(1)
            continue
        name = line.split("=", 1)[0].strip()
        key = f"{section}.{name}"
        if key in fitted:
            line = re.sub(r"value = [^,]+,", f"value = {fitted[key]},", line, count=1)
            line = re.sub(r'source = "[^"]*"', f'source = "calibration:{fit_id}"', line, count=1)
            lines[i] = line
    path.write_text("".join(lines), encoding="utf-8")
    load_scenario("baseline")  # the written file must still validate


def informing_targets(
    trials: list[dict[str, Any]], keys: Sequence[str], targets: Sequence[Target]
) -> dict[str, list[tuple[str, float]]]:
    """For each parameter, the fit targets whose simulated value moves most with it across
    the optimiser's trials (|Spearman rho| >= 0.3, strongest first, at most five)."""
    from scipy.stats import spearmanr

    params = pd.DataFrame([t["params"] for t in trials])
    values = pd.DataFrame([t["values"] for t in trials])
    out: dict[str, list[tuple[str, float]]] = {}
    for key in keys:
        found = []
        for t in targets:
            if t.id not in values or values[t.id].nunique() < 3:
                continue
            rho = float(spearmanr(params[key], values[t.id]).statistic)
            if math.isfinite(rho) and abs(rho) >= 0.3:
                found.append((t.id, rho))
        out[key] = sorted(found, key=lambda x: -abs(x[1]))[:5]
    return out


def write_report(
    fit_id: str,
    scenario: Scenario,
    free: list[tuple[str, float, float, float]],
    fitted: Mapping[str, float],
    table: pd.DataFrame,
    trials: list[dict[str, Any]],
    ensemble: pd.DataFrame,
    targets: Sequence[Target],
    *,
    reps: int,
    budget: int,
    method: str,
    optimiser_seed: int,
    rounds: int,
    ensemble_size: int,
    ensemble_budget: int,
    only: Sequence[str] = (),
    step: float | None = None,
    ensemble_from: Path | str | None = None,
) -> Path:
    """calibration/reports/<fit-id>.md (+ plots) and calibration/fits/<fit-id>/ (fit.json,
    trials.csv, ensemble.parquet)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports = CALIBRATION_DIR / "reports"
    folder = CALIBRATION_DIR / "fits" / fit_id
    reports.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    keys = [k for k, *_ in free]
    # targets: simulated / observed with intervals and tolerance
    fig, ax = plt.subplots(figsize=(8, max(6, 0.2 * len(table))))
    ratio = table["simulated"] / table["observed"]
    err_lo = ((table["simulated"] - table["low95"]) / table["observed"]).clip(lower=0)
    err_hi = ((table["high95"] - table["simulated"]) / table["observed"]).clip(lower=0)
    tol = table["tolerance"] / table["observed"].abs()
    y = np.arange(len(table))
    ax.barh(y, 2 * tol, left=1 - tol, color="#dddddd", label="tolerance")
    colours = np.where(
        table["use"] != "fit", "#ff7f0e", np.where(table["role"] == "outcome", "#1f77b4", "#2ca02c")
    )
    ax.errorbar(ratio, y, xerr=[err_lo, err_hi], fmt="none", ecolor="#555555")
    ax.scatter(ratio, y, c=colours, zorder=3, s=14)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(y, table["id"], fontsize=5)
    ax.set_xlabel("simulated / observed (blue: outcome, green: input check, orange: validate)")
    ax.set_xlim(0, 2.5)
    ax.invert_yaxis()
    fig.tight_layout()
    png = reports / f"{fit_id}.png"
    fig.savefig(png, dpi=110, metadata={"Software": None})
    plt.close(fig)
    # convergence
    costs = [t["cost"] for t in trials]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(range(1, len(costs) + 1), costs, ".", color="#999999", label="trial")
    ax.plot(range(1, len(costs) + 1), np.minimum.accumulate(costs), color="#1f77b4", label="best")
    ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective (sum of squared distances)")
    ax.legend()
    fig.tight_layout()
    conv = reports / f"{fit_id}-convergence.png"
    fig.savefig(conv, dpi=110, metadata={"Software": None})
    plt.close(fig)
    extra = "".join(f" --only '{pattern}'" for pattern in only)
    if ensemble_from:
        extra += f" --ensemble-from {ensemble_from}"
    informs = informing_targets(trials, keys, [t for t in targets if t.use == "fit"])
    ens = ensemble[keys] if len(ensemble) else pd.DataFrame(columns=keys)
    lines = [
        f"# Calibration report {fit_id}",
        "",
        f"Scenario `{scenario.name}`, seed {scenario.seed}; {reps} replicates per candidate "
        f"(common random numbers); method {method} (Optuna), {len(trials)} trials, "
        f"optimiser seed {optimiser_seed}. Objective: sum over fit targets of the squared "
        f"distance in tolerances (capped at {DISTANCE_CAP:g}).",
        "",
        f"Reproduce: `nrmsim calibrate --method {method} --rounds {rounds} "
        f"--budget {budget} --reps "
        f"{reps} --ensemble-size {ensemble_size} --ensemble-budget "
        f"{ensemble_budget}{extra}"
        + (f" --step {step}" if step is not None else "")
        + f" --optimiser-seed {optimiser_seed} --fit-id {fit_id}`"
        " (from the values the fit started at: the `before` column below); check: "
        "`nrmsim check`.",
        "",
        "## Convergence",
        "",
        f"Best objective {min(costs):.1f} (first trial, the previous values: {costs[0]:.1f}); "
        f"trials with every fit target inside: {sum(t['all_inside'] for t in trials)}.",
        "",
        f"![convergence]({conv.name})",
        "",
        "## Fitted parameters",
        "",
        "| parameter | prior range | before | fitted | ensemble min | ensemble max | ensemble sd |"
        " informed by (Spearman rho across trials) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, before, lo, hi in free:
        col = ens[key] if key in ens else pd.Series(dtype=float)
        inform = ", ".join(f"{tid} ({rho:+.2f})" for tid, rho in informs.get(key, [])) or "-"
        lines.append(
            f"| `{key}` | [{lo:g}, {hi:g}] | {before:g} | {fitted[key]:g} | "
            f"{_g(col.min())} | {_g(col.max())} | {_g(col.std())} | {inform} |"
        )
    lines += [
        "",
        f"## Ensemble: {len(ensemble)} parameter sets consistent with every fit target",
        "",
        "Saved in `calibration/fits/{}/ensemble.parquet` (load with "
        "`model.ensemble.load_ensemble`). Sources: {}.".format(
            fit_id, dict(ensemble["source"].value_counts()) if len(ensemble) else {}
        ),
        "",
        f"## Targets ({CHECK_REPLICATES} replicates at the fitted values)",
        "",
        "| target | role | use | observed | simulated mean | 95% interval | tolerance | "
        "distance | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        status = "pass" if r["pass"] else "FAIL" if r["use"] == "fit" else "outside"
        lines.append(
            f"| {r['id']} | {r['role']} | {r['use']} | {_num(r['observed'])} | "
            f"{_num(r['simulated'])} | [{_num(r['low95'])}, {_num(r['high95'])}] | "
            f"±{_num(r['tolerance'])} | {r['distance']:+.2f} | {status} |"
        )
    lines += ["", f"![simulated vs observed]({png.name})", ""]
    md = reports / f"{fit_id}.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    ensemble.to_parquet(folder / "ensemble.parquet", index=False)
    pd.DataFrame(
        [
            {"trial": t["trial"], "cost": t["cost"], "inside": t["inside"], **t["params"]}
            for t in trials
        ]
    ).to_csv(folder / "trials.csv", index=False)
    (folder / "fit.json").write_text(
        json.dumps(
            {
                "fit_id": fit_id,
                "scenario": scenario.name,
                "seed": scenario.seed,
                "replicates_per_candidate": reps,
                "budget": budget,
                "method": method,
                "optimiser_seed": optimiser_seed,
                "fitted": fitted,
                "parameters": [
                    {"key": k, "before": b, "low": lo, "high": hi} for k, b, lo, hi in free
                ],
                "fit_targets": [t.id for t in targets if t.use == "fit"],
                "acceptance": "every fit target inside its tolerance (the fit's seed and reps)",
                "ensemble_size": len(ensemble),
                "best_cost": min(costs),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return md


def _g(x: float) -> str:
    return "-" if x is None or x != x else f"{x:.4g}"
