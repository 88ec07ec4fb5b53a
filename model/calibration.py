"""Calibration targets, the CI check and the fit.

``calibration/targets.toml`` holds published figures as data. ``evaluate`` runs a scenario
for a fixed seed and replicate count and computes each target's simulated value with the same
metric functions as ``summary.csv`` (``model.results``). ``nrmsim check`` gates on the
``fit`` targets; ``nrmsim calibrate`` fits the parameters marked ``calibrate = true`` with
``scipy.optimize.least_squares`` (bounded to their plausible ranges), using common random
numbers: every candidate is run with the same seeds and replicates.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.results import GROUP_BYS, METRICS, Analysis
from model.scenario import (
    SCENARIO_DIR,
    Scenario,
    ScenarioError,
    _read_toml,
    load_scenario,
    load_sources,
    suggest,
)

CALIBRATION_DIR = SCENARIO_DIR.parent / "calibration"
TARGETS_FILE = CALIBRATION_DIR / "targets.toml"
TARGET_KEYS = {
    "id",
    "metric",
    "group_by",
    "group",
    "kind",
    "start",
    "end",
    "at",
    "denominator",
    "value",
    "unit",
    "population",
    "source",
    "locator",
    "tolerance",
    "tolerance_note",
    "use",
    "mapping_note",
    "weight",
}
# Fixed by the gate: CI compares the calibrated historical run at this seed and replicate count.
CHECK_REPLICATES = 4


@dataclass(frozen=True)
class Target:
    """A published figure the model should reproduce, with its own uncertainty."""

    id: str
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


def load_targets(path: Path | None = None) -> list[Target]:
    """Read and validate the targets file; errors name the file, target and key."""
    path = path or TARGETS_FILE
    doc = _read_toml(path)
    sources = load_sources()
    groups = known_groups()
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
        for key in (
            "id",
            "metric",
            "group_by",
            "group",
            "kind",
            "value",
            "source",
            "tolerance",
            "use",
        ):
            if key not in t:
                raise ScenarioError(path, f"{where}.{key}", "missing")
        for key in ("id", "metric", "group_by", "kind", "use", "source"):
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
        if not isinstance(tol, dict):
            raise ScenarioError(
                path,
                f"{where}.tolerance",
                f"value {tol!r} must be a table {{ kind = 'relative' | 'absolute', value = > 0 }}",
            )
        if (
            tol.get("kind") not in ("relative", "absolute")
            or not isinstance(tol.get("value"), int | float)
            or tol["value"] <= 0
        ):
            raise ScenarioError(
                path,
                f"{where}.tolerance",
                f"value {tol!r} must be {{ kind = 'relative' | 'absolute', value = > 0 }}",
            )
        if t["kind"] == "flow":
            start, end = t.get("start"), t.get("end")
            if not isinstance(start, dt.date) or not isinstance(end, dt.date) or end <= start:
                raise ScenarioError(path, where, "a flow needs dates start < end")
        else:
            start = end = t.get("at")
            if not isinstance(end, dt.date):
                raise ScenarioError(path, f"{where}.at", "a stock needs a date `at`")
        den = t.get("denominator")
        if den is not None and not isinstance(den, dict):
            raise ScenarioError(
                path,
                f"{where}.denominator",
                f"value {den!r} must be a table {{ metric = ..., group_by = ..., group = ... }}",
            )
        if den is not None:
            den = {
                "metric": den.get("metric", t["metric"]),
                "group_by": den.get("group_by", t["group_by"]),
                "group": den.get("group", t["group"]),
            }
            _check_metric(path, f"{where}.denominator", den["metric"], den["group_by"])
            _check_group(path, f"{where}.denominator", den["group_by"], str(den["group"]), groups)
        notes = {k: t[k] for k in ("tolerance_note", "mapping_note") if k in t}
        out.append(
            Target(
                t["id"],
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


def known_groups() -> dict[str, set[str]]:
    """The categories each grouping can take (from the baseline's declared shares)."""
    from model.stages.care import PLACEMENT_TYPES
    from model.stages.identification import AGE_BANDS, SINGLE_TYPES

    p = load_scenario("baseline").initial_params().identification
    return {
        "all": {"all"},
        "sex": set(p.sex.keys),
        "nationality_group": set(p.nationality.keys),
        "exploitation_type": set(p.exploitation_male.keys),
        "exploitation_any": set(SINGLE_TYPES),
        "nation": set(p.nation.keys),
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
            f"value {group!r} is not a {group_by} group; "
            f"allowed: {sorted(groups[group_by])}." + suggest(group, groups[group_by]),
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
                f"the run of '{scenario.name}' ({scenario.start} to {scenario.end})",
            )


def _check_metric(path: Path, where: str, metric: str, group_by: str) -> None:
    if metric not in METRICS:
        raise ScenarioError(
            path, f"{where}.metric", f"unknown metric '{metric}'." + suggest(metric, METRICS)
        )
    allowed = (*GROUP_BYS, "placement_type")  # placement_type: placement metrics only
    if group_by not in allowed:
        raise ScenarioError(
            path, f"{where}.group_by", f"value {group_by!r} not allowed; allowed: {list(allowed)}"
        )


# --------------------------------------------------------------------------- evaluation
def target_period(target: Target, start: dt.date) -> tuple[float, float]:
    """[a, b) in days from ``start`` (the simulation's day 0). A flow's end date is exclusive;
    a stock is read at the end of its date `at` (as ``awaiting_cg_at_year_end`` is read at the
    end of 31 December)."""
    if target.kind == "flow":
        return float((target.start - start).days), float((target.end - start).days)
    b = float((target.end - start).days) + 1.0
    return b - 1.0, b


def simulated_values(
    analysis: Analysis, targets: Sequence[Target], start: dt.date
) -> dict[str, float]:
    """Each target's simulated value in one replicate (NaN if undefined, e.g. 0/0).

    Periods are computed in batches of non-overlapping periods, one pass per batch and grouping.
    """
    cache: dict[tuple[float, float, str], pd.Series] = {}
    wanted: dict[str, set[tuple[float, float]]] = {}
    for t in targets:
        period = target_period(t, start)
        wanted.setdefault(_base(t.metric, t.group_by), set()).add(period)
        if t.denominator:
            wanted.setdefault(_base(t.denominator["metric"], t.denominator["group_by"]), set()).add(
                period
            )
    for base, periods in wanted.items():
        # one metrics() pass per set of non-overlapping periods
        batches: list[list[tuple[float, float]]] = []
        for a, b in sorted(periods):
            for batch in batches:
                if batch[-1][1] <= a:
                    batch.append((a, b))
                    break
            else:
                batches.append([(a, b)])
        for batch in batches:
            table = analysis.metrics([(i, a, b) for i, (a, b) in enumerate(batch)], base)
            indexed = table.set_index(["period", "group_by", "group", "metric"])["value"]
            for i, (a, b) in enumerate(batch):
                cache[(a, b, base)] = (
                    indexed.xs(i, level="period")
                    if i in indexed.index.levels[0]
                    else pd.Series(dtype=float)
                )

    def value(metric: str, group_by: str, group: str, a: float, b: float) -> float:
        base = _base(metric, group_by)
        key = (a, b, base)
        if key not in cache:
            table = analysis.period_metrics(a, b, base)
            cache[key] = table.set_index(["group_by", "group", "metric"])["value"]
        try:
            return float(cache[key].loc[(group_by, group, metric)])
        except KeyError:
            return 0.0 if metric in _COUNT_METRICS else math.nan

    out = {}
    for t in targets:
        a, b = target_period(t, start)
        num = value(t.metric, t.group_by, t.group, a, b)
        if t.denominator:
            d = t.denominator
            den = value(d["metric"], d["group_by"], d["group"], a, b)
            out[t.id] = num / den if den else math.nan
        else:
            out[t.id] = num
    return out


def _base(metric: str, group_by: str) -> str:
    """The grouping whose table holds this metric (placements_by_type lives with 'all')."""
    return "all" if metric == "placements_by_type" else group_by


_COUNT_METRICS = {m for m in METRICS if not m.endswith(("_rate", "_cg", "_rg"))} | {
    "awaiting_cg_at_year_end",
    "awaiting_cg",
}


def evaluate(
    scenario: Scenario, targets: Sequence[Target], replicates: int, workers: int = 1
) -> pd.DataFrame:
    """Run ``replicates`` of the scenario and compare with every target.

    Returns one row per target: observed, simulated mean, 95% interval over replicates,
    Monte Carlo standard error, tolerance, standardised distance and pass/fail.
    """
    from concurrent.futures import ProcessPoolExecutor

    from model.runner import pool_context

    check_periods(targets, scenario)
    jobs = [(scenario, r, list(targets)) for r in range(replicates)]
    if workers > 1 and replicates > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context()) as pool:
            per_rep = list(pool.map(_replicate_values, jobs))
    else:
        per_rep = [_replicate_values(job) for job in jobs]
    sims = pd.DataFrame(per_rep)  # replicates x targets
    rows = []
    for t in targets:
        values = sims[t.id].to_numpy(float)
        mean = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
        se = (
            float(np.nanstd(values, ddof=1) / math.sqrt(np.isfinite(values).sum()))
            if np.isfinite(values).sum() > 1
            else math.nan
        )
        lo, hi = (
            np.nanpercentile(values, [2.5, 97.5])
            if np.isfinite(values).any()
            else (math.nan, math.nan)
        )
        distance = (mean - t.value) / t.tolerance if t.tolerance else math.nan
        rows.append(
            {
                "id": t.id,
                "use": t.use,
                "metric": t.metric,
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


def _replicate_values(job: tuple[Scenario, int, list[Target]]) -> dict[str, float]:
    from model.runner import analyse, simulate

    scenario, replicate, targets = job
    model = simulate(scenario, replicate)
    analysis, _, _ = analyse(model)
    return simulated_values(analysis, targets, scenario.sim_start)


# --------------------------------------------------------------------------- nrmsim check
def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 only if every `fit` target is inside its tolerance."""
    targets = load_targets(args.targets)
    scenario = load_scenario(args.scenario)
    table = evaluate(scenario, targets, CHECK_REPLICATES, workers=args.workers)
    fit = table[table["use"] == "fit"]
    ok = bool(fit["pass"].all())
    if args.json:
        print(
            json.dumps(
                {
                    "scenario": scenario.name,
                    "seed": scenario.seed,
                    "replicates": CHECK_REPLICATES,
                    "passed": ok,
                    "targets": table.replace({np.nan: None}).to_dict(orient="records"),
                },
                indent=2,
            )
        )
    else:
        print_check(table, scenario, ok)
    return 0 if ok else 1


def print_check(table: pd.DataFrame, scenario: Scenario, ok: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    for use in ("fit", "validate"):
        part = table[table["use"] == use]
        title = "fit targets (gate)" if use == "fit" else "validate targets (reported, not gated)"
        tab = Table(
            title=f"{scenario.name}, seed {scenario.seed}, {CHECK_REPLICATES} replicates: {title}"
        )
        for col in ("target", "observed", "simulated [95%]", "tolerance", "distance", "status"):
            tab.add_column(col, justify="left" if col == "target" else "right")
        for _, r in part.iterrows():
            status = (
                "[green]pass[/green]"
                if r["pass"]
                else ("[red]FAIL[/red]" if use == "fit" else "[yellow]outside[/yellow]")
            )
            tab.add_row(
                r["id"],
                _num(r["observed"]),
                f"{_num(r['simulated'])} [{_num(r['low95'])}, {_num(r['high95'])}]",
                f"±{_num(r['tolerance'])}",
                f"{r['distance']:+.2f}",
                status,
            )
        console.print(tab)
    n_fit = int((table["use"] == "fit").sum())
    n_pass = int(table.loc[table["use"] == "fit", "pass"].sum())
    n_val = int((table["use"] == "validate").sum())
    n_val_pass = int(table.loc[table["use"] == "validate", "pass"].sum())
    console.print(
        f"fit targets inside tolerance: {n_pass}/{n_fit}; validate targets inside: "
        f"{n_val_pass}/{n_val}. Check {'PASSED' if ok else 'FAILED'}."
    )


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


def cmd_calibrate(args: argparse.Namespace) -> int:
    from scipy.optimize import least_squares

    targets = [t for t in load_targets(args.targets) if t.use == "fit"]
    scenario = load_scenario(args.scenario)
    free = calibrated_parameters(scenario)
    keys = [k for k, *_ in free]
    x0 = np.array([v for _, v, _, _ in free])
    lo = np.array([a for *_, a, _ in free])
    hi = np.array([b for *_, b in free])
    scale = hi - lo
    trace: list[dict[str, Any]] = []

    def residuals(z: np.ndarray) -> np.ndarray:
        if len(trace) >= args.budget:  # least_squares does not count Jacobian evaluations
            raise _BudgetSpent
        x = lo + z * scale
        candidate = scenario.with_values(dict(zip(keys, x.tolist(), strict=True)), "candidate")
        table = evaluate(candidate, targets, args.reps, workers=args.workers)
        r = table["distance"].fillna(10.0).to_numpy() * np.array([t.weight for t in targets])
        trace.append(
            {
                "params": dict(zip(keys, x.tolist(), strict=True)),
                "cost": float(0.5 * np.sum(r**2)),
                "inside": int(table["pass"].sum()),
            }
        )
        print(
            f"evaluation {len(trace)}: cost {trace[-1]['cost']:.2f}, "
            f"{trace[-1]['inside']}/{len(targets)} fit targets inside",
            file=sys.stderr,
        )
        return r

    z0 = np.clip((x0 - lo) / scale, 0.0, 1.0)
    try:
        message = least_squares(
            residuals, z0, bounds=(0.0, 1.0), diff_step=0.05, x_scale=1.0, method="trf"
        ).message
    except _BudgetSpent:
        message = f"stopped after the budget of {args.budget} model evaluations"
    best = min(trace, key=lambda row: row["cost"])
    fit_id = args.fit_id or f"fit-{dt.date.today().isoformat()}"
    fitted = {k: round(float(v), 4) for k, v in best["params"].items()}
    final_scenario = scenario.with_values(fitted, f"calibration:{fit_id}")
    all_targets = load_targets(args.targets)
    table = evaluate(final_scenario, all_targets, CHECK_REPLICATES, workers=args.workers)
    report = write_report(fit_id, scenario, fitted, table, trace, message, args)
    print(f"report: {report}")
    if not args.dry_run:
        write_back(SCENARIO_DIR / "baseline.toml", fitted, fit_id)
        print(f"fitted values written to scenarios/baseline.toml with source calibration:{fit_id}")
    return 0


class _BudgetSpent(Exception):
    """The optimiser used every model evaluation it was given."""


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


def write_report(
    fit_id: str,
    scenario: Scenario,
    fitted: Mapping[str, float],
    table: pd.DataFrame,
    trace: list[dict[str, Any]],
    message: str,
    args: argparse.Namespace,
) -> Path:
    """calibration/reports/<fit-id>.md (+ .png plot) and calibration/fits/<fit-id>.json."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports = CALIBRATION_DIR / "reports"
    fits = CALIBRATION_DIR / "fits"
    reports.mkdir(parents=True, exist_ok=True)
    fits.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, max(6, 0.22 * len(table))))
    ratio = table["simulated"] / table["observed"]
    err_lo = (table["simulated"] - table["low95"]) / table["observed"]
    err_hi = (table["high95"] - table["simulated"]) / table["observed"]
    tol = table["tolerance"] / table["observed"].abs()
    y = np.arange(len(table))
    ax.barh(y, 2 * tol, left=1 - tol, color="#dddddd", label="tolerance")
    colours = np.where(table["use"] == "fit", "#1f77b4", "#ff7f0e")
    ax.errorbar(
        ratio, y, xerr=[err_lo.clip(lower=0), err_hi.clip(lower=0)], fmt="none", ecolor="#555555"
    )
    ax.scatter(ratio, y, c=colours, zorder=3, s=14)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(y, table["id"], fontsize=6)
    ax.set_xlabel("simulated / observed (blue: fit, orange: validate; grey: tolerance)")
    ax.set_xlim(0, 2.5)
    ax.invert_yaxis()
    fig.tight_layout()
    png = reports / f"{fit_id}.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    lines = [
        f"# Calibration report {fit_id}",
        "",
        f"Scenario `{scenario.name}`, seed {scenario.seed}; {args.reps} replicates per "
        f"candidate (common random numbers), {len(trace)} evaluations of "
        f"scipy.optimize.least_squares (trf, bounded to each parameter's plausible range); "
        f"optimiser message: {message}",
        "",
        f"Reproduce: `nrmsim calibrate --budget {args.budget} --reps {args.reps} "
        f"--fit-id {fit_id}`; "
        f"check: `nrmsim check`.",
        "",
        "## Fitted parameters",
        "",
        "| parameter | before | fitted | plausible range |",
        "|---|---|---|---|",
    ]
    for key, entry in sorted(scenario.entries.items()):
        if key in fitted:
            lines.append(f"| `{key}` | {entry.value} | {fitted[key]} | {list(entry.range or ())} |")
    lines += [
        "",
        f"## Targets ({CHECK_REPLICATES} replicates at the fitted values)",
        "",
        "| target | use | observed | simulated mean | 95% interval | tolerance | distance "
        "| status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r['id']} | {r['use']} | {_num(r['observed'])} | {_num(r['simulated'])} | "
            f"[{_num(r['low95'])}, {_num(r['high95'])}] | ±{_num(r['tolerance'])} | "
            f"{r['distance']:+.2f} | "
            f"{'pass' if r['pass'] else 'FAIL' if r['use'] == 'fit' else 'outside'} |"
        )
    lines += ["", f"![simulated vs observed]({png.name})", ""]
    md = reports / f"{fit_id}.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    (fits / f"{fit_id}.json").write_text(
        json.dumps(
            {
                "fit_id": fit_id,
                "scenario": scenario.name,
                "seed": scenario.seed,
                "replicates_per_candidate": args.reps,
                "budget": args.budget,
                "fitted": fitted,
                "trace": trace,
                "optimiser": "scipy.optimize.least_squares(method='trf')",
                "message": message,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return md
