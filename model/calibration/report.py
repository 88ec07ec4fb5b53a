"""The fit's report and files: ``calibration/reports/<fit-id>.md`` (+ a targets plot and a
convergence plot) and ``calibration/fits/<fit-id>/`` (``fit.json``, ``trials.csv``,
``ensemble.parquet``)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.calibration.check import CHECK_REPLICATES, _num
from model.calibration.targets import CALIBRATION_DIR, Target
from model.output import provenance
from model.scenario import Scenario

ENSEMBLE_HEADING = "## Ensemble: {n} parameter sets consistent with every fit target"


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
    trials.csv, ensemble.parquet); returns the report's path."""
    reports = CALIBRATION_DIR / "reports"
    folder = CALIBRATION_DIR / "fits" / fit_id
    reports.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    png = reports / f"{fit_id}.png"
    conv = reports / f"{fit_id}-convergence.png"
    _plot_targets(table, png)
    _plot_convergence([t["cost"] for t in trials], conv)
    extra = "".join(f" --only '{pattern}'" for pattern in only)
    if ensemble_from:
        extra += f" --ensemble-from {ensemble_from}"
    command = (
        f"nrmsim calibrate --method {method} --rounds {rounds} --budget {budget} --reps {reps} "
        f"--ensemble-size {ensemble_size} --ensemble-budget {ensemble_budget}{extra}"
        + (f" --step {step}" if step is not None else "")
        + f" --optimiser-seed {optimiser_seed} --fit-id {fit_id}"
    )
    informs = informing_targets(
        trials, [k for k, *_ in free], [t for t in targets if t.use == "fit"]
    )
    lines = [
        *_header(fit_id, scenario, reps, method, len(trials), optimiser_seed, command),
        *_convergence_section(trials, conv.name),
        *_parameter_section(free, fitted, ensemble, informs),
        "",
        *ensemble_section(fit_id, ensemble),
        "",
        *_targets_section(table, png.name),
    ]
    md = reports / f"{fit_id}.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    _save_fit_files(
        folder,
        fit_id,
        scenario,
        free,
        fitted,
        trials,
        ensemble,
        targets,
        reps=reps,
        budget=budget,
        method=method,
        optimiser_seed=optimiser_seed,
    )
    return md


def _plot_targets(table: pd.DataFrame, path: Path) -> None:
    """Simulated / observed per target, with its 95% interval and tolerance band."""
    plt = _pyplot()
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
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def _plot_convergence(costs: Sequence[float], path: Path) -> None:
    """Each trial's objective and the best so far (log scale)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(range(1, len(costs) + 1), costs, ".", color="#999999", label="trial")
    ax.plot(range(1, len(costs) + 1), np.minimum.accumulate(costs), color="#1f77b4", label="best")
    ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective (sum of squared distances)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _header(
    fit_id: str,
    scenario: Scenario,
    reps: int,
    method: str,
    n_trials: int,
    optimiser_seed: int,
    command: str,
) -> list[str]:
    from model.calibration.fit import DISTANCE_CAP

    return [
        f"# Calibration report {fit_id}",
        "",
        f"Scenario `{scenario.name}`, seed {scenario.seed}; {reps} replicates per candidate "
        f"(common random numbers); method {method} (Optuna), {n_trials} trials, "
        f"optimiser seed {optimiser_seed}. Objective: sum over fit targets of the squared "
        f"distance in tolerances (capped at {DISTANCE_CAP:g}).",
        "",
        f"Reproduce: `{command}` (from the values the fit started at: the `before` column "
        "below); check: `nrmsim check`.",
        "",
    ]


def _convergence_section(trials: Sequence[Mapping[str, Any]], image: str) -> list[str]:
    costs = [t["cost"] for t in trials]
    return [
        "## Convergence",
        "",
        f"Best objective {min(costs):.1f} (first trial, the previous values: {costs[0]:.1f}); "
        f"trials with every fit target inside: {sum(t['all_inside'] for t in trials)}.",
        "",
        f"![convergence]({image})",
        "",
    ]


def _parameter_section(
    free: Sequence[tuple[str, float, float, float]],
    fitted: Mapping[str, float],
    ensemble: pd.DataFrame,
    informs: Mapping[str, list[tuple[str, float]]],
) -> list[str]:
    lines = [
        "## Fitted parameters",
        "",
        "| parameter | prior range | before | fitted | ensemble min | ensemble max | ensemble sd |"
        " informed by (Spearman rho across trials) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, before, lo, hi in free:
        inform = ", ".join(f"{tid} ({rho:+.2f})" for tid, rho in informs.get(key, [])) or "-"
        cells = " | ".join(_ensemble_cells(ensemble, key))
        lines.append(
            f"| `{key}` | [{lo:g}, {hi:g}] | {before:g} | {fitted[key]:g} | {cells} | {inform} |"
        )
    return lines


def _ensemble_cells(ensemble: pd.DataFrame, key: str) -> list[str]:
    """Minimum, maximum and standard deviation of a parameter over the ensemble."""
    col = ensemble[key] if len(ensemble) and key in ensemble else pd.Series(dtype=float)
    return [_g(col.min()), _g(col.max()), _g(col.std())]


def ensemble_section(fit_id: str, ensemble: pd.DataFrame) -> list[str]:
    """The heading and the line that say how many sets the ensemble holds, where, and from
    which sources."""
    sources = (
        {str(k): int(v) for k, v in ensemble["source"].value_counts().items()}
        if len(ensemble)
        else {}
    )
    return [
        ENSEMBLE_HEADING.format(n=len(ensemble)),
        "",
        f"Saved in `calibration/fits/{fit_id}/ensemble.parquet` (load with "
        f"`model.ensemble.load_ensemble`). Sources: {sources}.",
    ]


def _targets_section(table: pd.DataFrame, image: str) -> list[str]:
    lines = [
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
    return [*lines, "", f"![simulated vs observed]({image})", ""]


def _save_fit_files(
    folder: Path,
    fit_id: str,
    scenario: Scenario,
    free: Sequence[tuple[str, float, float, float]],
    fitted: Mapping[str, float],
    trials: Sequence[Mapping[str, Any]],
    ensemble: pd.DataFrame,
    targets: Sequence[Target],
    *,
    reps: int,
    budget: int,
    method: str,
    optimiser_seed: int,
) -> None:
    """ensemble.parquet, trials.csv and fit.json (the fit's settings and results, then the
    common provenance of ``model.output.provenance``) in the fit's folder."""
    ensemble.to_parquet(folder / "ensemble.parquet", index=False)
    pd.DataFrame(
        [
            {"trial": t["trial"], "cost": t["cost"], "inside": t["inside"], **t["params"]}
            for t in trials
        ]
    ).to_csv(folder / "trials.csv", index=False)
    meta = {
        "fit_id": fit_id,
        "scenario": scenario.name,
        "seed": scenario.seed,
        "replicates_per_candidate": reps,
        "budget": budget,
        "method": method,
        "optimiser_seed": optimiser_seed,
        "fitted": dict(fitted),
        "parameters": [{"key": k, "before": b, "low": lo, "high": hi} for k, b, lo, hi in free],
        "fit_targets": [t.id for t in targets if t.use == "fit"],
        "acceptance": "every fit target inside its tolerance (the fit's seed and reps)",
        "ensemble_size": len(ensemble),
        "best_cost": min(t["cost"] for t in trials),
        **provenance(scenario.seed, range(reps)),  # after the fit's own keys, as added later
    }
    (folder / "fit.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def update_report_ensemble(md: Path, fit_id: str, ensemble: pd.DataFrame, note: str) -> str:
    """The text of report ``md`` with what it says of the ensemble brought up to date: the
    heading's count, the sources, each parameter's ensemble min, max and sd, and ``note``
    (one line, replaced on the next update) after the sources line."""
    lines = md.read_text(encoding="utf-8").split("\n")
    section = ensemble_section(fit_id, ensemble)
    out: list[str] = []
    skip_note = False
    for line in lines:
        if skip_note:
            skip_note = False
            if line.startswith(EXTENSION_NOTE_START):
                continue
        if re.fullmatch(ENSEMBLE_HEADING.format(n=r"\d+"), line):
            line = section[0]
        elif line.startswith(f"Saved in `calibration/fits/{fit_id}/ensemble.parquet`"):
            out += [section[2], note]
            skip_note = True
            continue
        elif (m := re.match(r"\| `([^`]+)` \|", line)) and m.group(1) in ensemble.columns:
            cells = line.split(" | ")
            if len(cells) == 8:  # parameter, range, before, fitted, min, max, sd, informed by
                cells[4:7] = _ensemble_cells(ensemble, m.group(1))
                line = " | ".join(cells)
        out.append(line)
    return "\n".join(out)


EXTENSION_NOTE_START = "Extended by `nrmsim calibrate --extend-ensemble"


def _g(x: float) -> str:
    return "-" if x is None or x != x else f"{x:.4g}"
