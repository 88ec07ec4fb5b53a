"""What a committed probabilistic sensitivity analysis (PSA) says about the options a
comparison shows (issue 15 item 5).

A PSA sweep (``method = "psa"``, e.g. ``experiments/psa_levers.toml``) runs every option and
the status quo at each of many parameter sets under common random numbers. Its folder,
committed under ``experiments/results/<name>/`` (the compacted sweep: ``manifest.json``,
``design.parquet``, ``runs/``), answers two questions a comparison with a handful of
replicates cannot:

* the probability that each option is the best on each outcome, across parameter sets;
* which unknowns, if learnt, would most change that choice (EVPPI).

``nrmsim compare`` looks for a PSA whose comparator is its baseline and whose scenarios
include every option it compares (:func:`find_psa`), restricts it to those options, and writes
the answer to ``psa.json`` in its output folder (:func:`psa_summary`); the report shows it.
The report itself reads only the folder, so ``nrmsim report DIR`` stays a pure function of
the saved files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

PSA = "psa.json"


def results_dir() -> Path:
    """``experiments/results``, where analysed sweep results are committed."""
    from model.sweeps.spec import EXPERIMENT_DIR

    return EXPERIMENT_DIR / "results"


def find_psa(baseline: str, options: Sequence[str], where: Path | None = None) -> Path | None:
    """The committed PSA folder that covers a comparison, or None.

    A folder qualifies if its manifest is a complete ``psa`` sweep whose comparator is
    ``baseline`` and whose scenarios include every one of ``options``. Of several, the one
    with the most parameter sets (then the newest) is used.
    """
    if not options:
        return None
    found: list[tuple[int, str, Path]] = []
    root = where or results_dir()
    for manifest_path in sorted(root.glob("*/manifest.json")):
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            spec = manifest["spec"]
            scenarios = set(manifest["runs"]["scenarios"])
            points = int(manifest["design"]["points"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a sweep folder: ignored, not an error
        if (
            spec.get("method") == "psa"
            and spec.get("comparator") == baseline
            and manifest.get("status") == "complete"
            and set(options) <= scenarios
        ):
            found.append((points, str(manifest.get("created_utc", "")), manifest_path.parent))
    return max(found)[2] if found else None


def psa_summary(
    folder: Path, baseline: str, options: Sequence[str], top: int = 3
) -> dict[str, Any]:
    """Per ranked outcome of the PSA in ``folder``, restricted to ``baseline`` and
    ``options``: the probability each is strictly best across parameter sets (ties count for
    none) and the ``top`` unknowns by EVPPI above the estimator's noise floor (in the
    outcome's units). JSON-ready."""
    from model.sweeps import analysis as an
    from model.sweeps.execute import load_design, load_manifest, load_results

    manifest = load_manifest(folder)
    spec = manifest["spec"]
    better = dict(spec.get("better") or {})
    shown = [baseline, *options]
    results = load_results(folder)
    results = results[results["scenario"].isin(shown)]
    design = load_design(folder)
    factors = design[[c for c in design.columns if c != "set_id"]]
    outputs = [o for o in manifest["outputs"] if an.direction(o["metric"], better)]
    columns = [o["column"] for o in outputs]
    metrics = {o["column"]: o["metric"] for o in outputs}
    _, _, best = an.psa_probabilities(results, columns, metrics, baseline, better)
    rows = []
    for o in outputs:
        way = str(an.direction(o["metric"], better))
        part = best[best["output"] == o["column"]].set_index("option")["p_best"]
        inb = an.incremental_net_benefit(results, o["column"], baseline, way).dropna()
        voi = an.evppi_table(inb, factors, seed=int(spec["root_seed"]))
        above = voi[voi["above_noise"]].head(top)
        rows.append(
            {
                "metric": o["metric"],
                "year": int(o["year"]),
                "better": way,
                "p_best": {name: _number(part.get(name)) for name in shown},
                "evpi": _number(voi["evpi"].iloc[0]) if len(voi) else None,
                "unknowns": [
                    {"factor": str(r.factor), "evppi": _number(r.evppi)} for r in above.itertuples()
                ],
                "evppi_estimated": bool(len(inb) >= an.MIN_EVPPI_POINTS),
            }
        )
    return {
        "folder": folder.name,
        "experiment": spec.get("name"),
        "points": int(manifest["design"]["points"]),
        "replicates": int(spec.get("replicates", 1)),
        "ensemble": manifest["design"].get("ensemble_fit") or spec.get("ensemble"),
        "commit": (manifest.get("git") or {}).get("commit"),
        "options": shown,
        "outcomes": rows,
    }


def write_psa_summary(out: Path, baseline: str, options: Sequence[str]) -> bool:
    """Write ``out/psa.json`` if a committed PSA covers the comparison; True if written."""
    folder = find_psa(baseline, options)
    if folder is None:
        return False
    summary = psa_summary(folder, baseline, options)
    (out / PSA).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return True


def load_psa_summary(folder: Path) -> dict[str, Any] | None:
    """``folder/psa.json`` as written by :func:`write_psa_summary`, or None."""
    path = folder / PSA
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _number(x: Any) -> float | None:
    if x is None or pd.isna(x):
        return None
    value = float(x)
    return value if math.isfinite(value) else None
