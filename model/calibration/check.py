"""The CI gate, ``nrmsim check``: run a scenario for a fixed seed and replicate count and
compare it with every target; it passes only if every ``fit`` target (input checks and
outcomes) is inside its tolerance. ``validate`` targets are reported, not gated. It never
re-optimises.

Replicates run through the package's one executor (``model.runner.run_many``); each worker
returns only the targets' values (``RunSpec.derive``), never the event log.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.calibration.targets import Target, check_periods, load_targets
from model.observe import ObservationModel, load_observation, observe
from model.scenario import Scenario, load_scenario

# Fixed by the gate: CI compares the calibrated historical run at this seed and replicate count.
CHECK_REPLICATES = 4


def evaluate(
    scenario: Scenario,
    targets: Sequence[Target],
    replicates: int,
    workers: int = 1,
    obs: ObservationModel | None = None,
) -> pd.DataFrame:
    """Run ``replicates`` of the scenario and compare with every target.

    Returns one row per target: role, use, observed, simulated mean, 95% interval over
    replicates, Monte Carlo standard error, tolerance, standardised distance (in tolerances)
    and pass/fail.
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
    """Simulated values of every target (each in its target's unit): one row per replicate,
    one column per target id, in the order of ``replicates``."""
    from model.runner import RunSpec, run_many

    check_periods(targets, scenario)
    derive = partial(target_values, targets=tuple(targets), obs=obs or load_observation())
    # the summary table is not needed: no metric computed for it (group "all" only)
    specs = [
        RunSpec(scenario, r, group_bys=("all",), metrics=(), derive=derive) for r in replicates
    ]
    results = run_many(specs, workers)
    return pd.DataFrame([row for r in results for row in _records(r.derived)])


def _records(derived: pd.DataFrame | None) -> list[dict]:
    if derived is None:  # run_one always derives when asked: a bug if it did not
        raise RuntimeError("a replicate returned no target values")
    return derived.to_dict(orient="records")


def target_values(
    events: pd.DataFrame,
    children: pd.DataFrame,
    scenario: Scenario,
    *,
    targets: Sequence[Target],
    obs: ObservationModel,
) -> pd.DataFrame:
    """``RunSpec.derive``: one row, the value of every target (its unit) in this replicate."""
    from model.calendar import Calendar
    from model.results import Analysis

    horizon = Calendar(scenario.sim_start).day(scenario.end) + 1.0  # as NRMModel.end_day
    analysis = Analysis(events, children, horizon)
    return pd.DataFrame([observe(analysis, targets, scenario.sim_start, obs)])


def compare_with_targets(sims: pd.DataFrame, targets: Sequence[Target]) -> pd.DataFrame:
    """One row per target: the simulated mean over the rows of ``sims`` (one per replicate),
    its 95% interval and Monte Carlo standard error, the tolerance, the distance
    (simulated - observed, in tolerances) and whether it is inside (|distance| <= 1)."""
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


@dataclass(frozen=True)
class CheckResult:
    """What ``run_check`` found: ``table`` (one row per target, as ``evaluate`` returns it),
    whether every fit target is inside its tolerance (``passed``), the scenario as run (its
    name and root seed), the replicate count and the wall time in seconds (``wall_s``:
    loading, running and comparing)."""

    table: pd.DataFrame
    passed: bool
    scenario: Scenario
    replicates: int
    wall_s: float

    def as_dict(self) -> dict[str, Any]:
        """The document ``nrmsim check --json`` prints (missing values as ``None``)."""
        return {
            "scenario": self.scenario.name,
            "seed": self.scenario.seed,
            "replicates": self.replicates,
            "passed": self.passed,
            "wall_s": round(self.wall_s, 1),
            "counts": gate_counts(self.table),
            "targets": self.table.replace({np.nan: None}).to_dict(orient="records"),
        }


def run_check(
    scenario: str | Path | Scenario = "historical",
    *,
    seed: int | None = None,
    workers: int = 1,
    targets: str | Path | None = None,
) -> CheckResult:
    """The gate (``nrmsim check``): run ``CHECK_REPLICATES`` replicates of the scenario and
    compare them with every target; it passes only if every ``fit`` target (input checks and
    outcomes) is inside its tolerance. Prints nothing.

    Args:
        scenario: a name in ``scenarios/``, a path to a ``.toml`` or a loaded scenario
            (default the calibrated ``historical`` run).
        seed: root seed; default the scenario's.
        workers: worker processes (the result does not depend on it).
        targets: targets file; default ``calibration/targets.toml``.

    Returns:
        The comparison, the verdict and the wall time in seconds (``CheckResult``).

    Raises:
        ScenarioError: a scenario or targets file that does not load, or a target period
            outside the scenario's run.
    """
    import time

    started = time.perf_counter()
    obs = load_observation()
    wanted = load_targets(Path(targets) if targets is not None else None, obs)
    run = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if seed is not None:
        run = run.with_run(seed=seed)
    table = evaluate(run, wanted, CHECK_REPLICATES, workers=workers, obs=obs)
    passed = bool(table.loc[table["use"] == "fit", "pass"].all())
    return CheckResult(table, passed, run, CHECK_REPLICATES, time.perf_counter() - started)


def gate_counts(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Targets and passes by use and role."""
    out: dict[str, dict[str, int]] = {}
    for (use, role), part in table.groupby(["use", "role"]):
        out[f"{use}/{role}"] = {"targets": len(part), "inside": int(part["pass"].sum())}
    return out


def print_check(table: pd.DataFrame, scenario: Scenario, ok: bool, wall: float) -> None:
    """The comparison as three tables (outcomes, input checks, validate) and a verdict;
    ``wall`` in seconds."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=170)
    sections = (
        ("fit", "outcome", "outcome targets (gate: what the model produces)"),
        ("fit", "input-check", "input checks (gate: figures that echo an input)"),
        ("validate", None, "validate targets (reported, not gated)"),
    )
    columns = ("target", "view", "observed", "simulated [95%]", "tolerance", "distance", "status")
    for use, role, title in sections:
        part = table[(table["use"] == use) & ((table["role"] == role) if role else True)]
        tab = Table(
            title=f"{scenario.name}, seed {scenario.seed}, {CHECK_REPLICATES} replicates: {title}"
        )
        for col in columns:
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
