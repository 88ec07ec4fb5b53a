"""``nrmsim sweep`` and ``nrmsim analyse``: the commands, CSV tables and the HTML page.

``analyse DIR`` writes ``DIR/analysis/`` (replaced each time, atomically): CSV tables and
``report.html``, a page with embedded PNG plots rendered from a Jinja2 template (autoescaped;
no HTML is assembled from strings).
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.scenario import ScenarioError
from model.sweeps import analysis as an
from model.sweeps.execute import load_design, load_manifest, load_results, load_timing

TOP = 15  # factors shown per plot

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ name }}: {{ method }} sweep</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; } .note { color: #555; font-size: 0.92em; }
code { background: #f4f4f4; padding: 0 0.2em; }
</style></head><body>
<h1>{{ name }}</h1>
<p>{{ description }}</p>
<p class="note">Method <b>{{ method }}</b>; {{ runs }} runs ({{ points }} design points x
{{ scenarios|length }} scenario(s) x {{ replicates }} replicate(s)); root seed {{ seed }};
spec hash <code>{{ spec_hash[:12] }}</code>; commit <code>{{ commit }}</code>{% if dirty %}
(uncommitted changes){% endif %}. Scenarios: {{ scenarios|join(", ") }}.
{% if ensemble %}Calibration ensemble: {{ ensemble }}.{% endif %}</p>
{% for section in sections %}
<h2>{{ section.title }}</h2>
{% for p in section.paragraphs %}<p class="note">{{ p }}</p>{% endfor %}
{% for img in section.images %}<figure><img alt="{{ img.alt }}"
 src="data:image/png;base64,{{ img.data }}"><figcaption class="note">{{ img.alt }}
</figcaption></figure>{% endfor %}
{% for t in section.tables %}<h3>{{ t.title }}</h3>
<table><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endfor %}
{% endfor %}
<p class="note">Tables as CSV beside this page: {{ files|join(", ") }}.</p>
</body></html>
"""


# --------------------------------------------------------------------------- use case
@dataclass(frozen=True)
class SweepAnalysis:
    """What ``analyse_sweep`` wrote: the folder (``out``), the file names in it (the CSV
    tables and ``report.html``) and the wall time in seconds."""

    out: Path
    files: list[str]
    wall_s: float

    @property
    def report(self) -> Path:
        return self.out / "report.html"


def analyse_sweep(folder: str | Path, out: str | Path | None = None) -> SweepAnalysis:
    """Analyse a finished sweep (``nrmsim analyse``): Sobol or Morris indices, or PSA, EVPPI
    and PRIM, as CSV tables and ``report.html``, written into ``out`` (replaced atomically).

    Args:
        folder: a sweep folder (made by ``nrmsim sweep`` or ``model.sweeps.sweep``).
        out: the output folder; default ``<folder>/analysis``.

    Returns:
        The folder, its files and the wall time in seconds (``SweepAnalysis``).

    Raises:
        ScenarioError: ``folder`` holds no sweep, or not every run of it yet.
    """
    from model.output import atomic_dir

    folder = Path(folder)
    started = time.perf_counter()
    manifest = load_manifest(folder)
    target = Path(out) if out is not None else folder / "analysis"
    with atomic_dir(target, force=True) as tmp:
        files = analyse(folder, tmp, manifest)
    return SweepAnalysis(target, files, time.perf_counter() - started)


# --------------------------------------------------------------------------- analysis
def analyse(folder: Path, out: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Write every table and the page for one sweep folder into ``out``; return file names."""
    spec = manifest["spec"]
    method = spec["method"]
    results = load_results(folder)
    design = load_design(folder)
    outputs = [o["column"] for o in manifest["outputs"]]
    metrics = {o["column"]: o["metric"] for o in manifest["outputs"]}
    problem = manifest["design"]["problem"]
    tables: dict[str, pd.DataFrame] = {}
    sections: list[dict[str, Any]] = []
    expected = manifest["runs"]["total"]
    if len(results) != expected:
        raise ScenarioError(
            folder,
            "runs",
            f"{len(results)} of {expected} runs stored; finish the sweep "
            "(nrmsim sweep SPEC --resume --out DIR) before analysing it",
        )
    noise = an.replicate_variance(results, outputs)
    tables["replicate_variance.csv"] = noise
    seed = int(spec["root_seed"])
    if method == "sobol":
        idx, skipped = an.sobol_indices(
            problem, results, outputs, len(design), second_order=spec["second_order"], seed=seed
        )
        tables["sobol_indices.csv"] = idx
        sections.append(_sobol_section(idx, skipped, noise))
    elif method == "morris":
        idx, skipped = an.morris_indices(
            problem, design, results, outputs, levels=int(spec["levels"]), seed=seed
        )
        tables["morris_indices.csv"] = idx
        sections.append(_morris_section(idx, skipped, noise))
    elif method == "psa":
        sections += _psa_sections(results, design, outputs, metrics, spec, tables)
    else:
        means = an.point_means(results, outputs).reset_index()
        means = means.merge(design.reset_index(), on="point", how="left")
        tables["grid_means.csv"] = means
        sections.append(
            {
                "title": "Grid: mean of replicates at each point",
                "paragraphs": [],
                "images": [],
                "tables": [_html_table("means", means, 60)],
            }
        )
    sections.append(
        {
            "title": "Replicate noise",
            "images": [],
            "paragraphs": [
                "noise_share = (mean between-replicate variance / replicates) / variance of "
                "the point means: the share of the spread across design points that is Monte "
                "Carlo noise."
            ],
            "tables": [_html_table("between-replicate variance", noise, 40)],
        }
    )
    timing = load_timing(folder)
    if len(timing):
        cols = [c for c in ("simulate_s", "analyse_s", "total_s", "cpu_s") if c in timing]
        t = timing[cols].describe().T.reset_index()
        tables["timing.csv"] = t
    for name, frame in tables.items():
        frame.to_csv(out / name, index=False, float_format="%.6g")
    files = sorted(tables)
    page = _render(manifest, sections, [*files, "report.html"])
    (out / "report.html").write_text(page, encoding="utf-8")
    return [*files, "report.html"]


def _render(manifest: Mapping[str, Any], sections: list[dict[str, Any]], files: list[str]) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    spec = manifest["spec"]
    return env.from_string(TEMPLATE).render(
        name=spec["name"],
        description=manifest.get("description", ""),
        method=spec["method"],
        runs=manifest["runs"]["total"],
        points=manifest["design"]["points"],
        scenarios=manifest["runs"]["scenarios"],
        replicates=spec["replicates"],
        seed=spec["root_seed"],
        spec_hash=manifest["spec_hash"],
        commit=str(manifest["git"].get("commit"))[:12],
        dirty=manifest["git"].get("dirty"),
        ensemble=manifest["design"].get("ensemble_fit"),
        sections=sections,
        files=files,
    )


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    if isinstance(v, float | np.floating):
        return f"{v:.4g}"
    return str(v)


def _html_table(title: str, frame: pd.DataFrame, limit: int = 30) -> dict[str, Any]:
    shown = frame.head(limit)
    rows = [[_fmt(v) for v in row] for row in shown.itertuples(index=False)]
    suffix = f" (first {limit} of {len(frame)} rows; all in the CSV)" if len(frame) > limit else ""
    return {"title": title + suffix, "columns": list(frame.columns), "rows": rows}


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _sobol_section(idx: pd.DataFrame, skipped: list[str], noise: pd.DataFrame) -> dict[str, Any]:
    plt = _plt()
    images, tables = [], []
    for output, part in idx.groupby("output", sort=False):
        top = part.sort_values("ST", ascending=False).head(TOP).iloc[::-1]
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(top) + 1.2))
        y = np.arange(len(top))
        ax.barh(y - 0.2, top["S1"], 0.4, xerr=top["S1_conf"], label="first order S1")
        ax.barh(y + 0.2, top["ST"], 0.4, xerr=top["ST_conf"], label="total ST")
        ax.set_yticks(y, top["factor"])
        ax.set_xlabel("Sobol index (95% bootstrap interval)")
        ax.set_title(str(output))
        ax.legend(loc="lower right")
        images.append({"alt": f"Sobol indices for {output}", "data": _png(fig)})
        tables.append(
            _html_table(
                f"{output}: top factors by total index",
                part.sort_values("ST", ascending=False),
                TOP,
            )
        )
    paragraphs = [
        "Indices computed by SALib on the mean of the replicates at each design point. "
        "ST - S1 is the share of variance from interactions."
    ]
    if skipped:
        paragraphs.append(
            f"Skipped (undefined at some design point, e.g. no decisions in the "
            f"year): {', '.join(skipped)}."
        )
    return {"title": "Sobol indices", "paragraphs": paragraphs, "images": images, "tables": tables}


def _morris_section(idx: pd.DataFrame, skipped: list[str], noise: pd.DataFrame) -> dict[str, Any]:
    plt = _plt()
    images, tables = [], []
    for output, part in idx.groupby("output", sort=False):
        ranked = part.sort_values("mu_star", ascending=False)
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 0.3 * min(TOP, len(part)) + 2))
        top = ranked.head(TOP).iloc[::-1]
        a1.barh(top["factor"], top["mu_star"], xerr=top["mu_star_conf"])
        a1.set_xlabel("mu* (output units per unit range; 95% interval)")
        a1.set_title(str(output))
        a2.scatter(part["mu_star"], part["sigma"], s=12)
        for _, r in ranked.head(5).iterrows():
            a2.annotate(str(r["factor"]).split(".")[-1], (r["mu_star"], r["sigma"]), fontsize=7)
        a2.set_xlabel("mu*")
        a2.set_ylabel("sigma (non-linearity or interactions)")
        images.append({"alt": f"Morris mu* and sigma for {output}", "data": _png(fig)})
        tables.append(_html_table(f"{output}: factors by mu*", ranked, TOP))
    paragraphs = [
        "Elementary effects computed by SALib on the mean of the replicates at each "
        "design point; mu* ranks influence, sigma flags non-linearity or interactions."
    ]
    if skipped:
        paragraphs.append(f"Skipped (undefined at some design point): {', '.join(skipped)}.")
    return {
        "title": "Morris screening",
        "paragraphs": paragraphs,
        "images": images,
        "tables": tables,
    }


def _psa_sections(
    results: pd.DataFrame,
    design: pd.DataFrame,
    outputs: Sequence[str],
    metrics: Mapping[str, str],
    spec: Mapping[str, Any],
    tables: dict[str, pd.DataFrame],
) -> list[dict[str, Any]]:
    """The PSA part of the sweep report: each lever's effects, the probabilities of being
    better, EVPPI of the decision outcome and PRIM boxes; fills ``tables`` with their CSVs."""
    comparator = str(spec["comparator"])
    better = dict(spec.get("better") or {})
    factor_cols = [c for c in design.columns if c != "set_id"]
    factors = design[factor_cols]
    effects = an.psa_effects(results, outputs, comparator)
    vs, pairs, best = an.psa_probabilities(results, outputs, metrics, comparator, better)
    tables.update(
        {
            "psa_effects.csv": effects,
            "psa_p_better_than_comparator.csv": vs,
            "psa_p_pairwise.csv": pairs,
            "psa_p_best.csv": best,
        }
    )
    ways = {o: an.direction(metrics[o], better) for o in outputs}
    ranked = [o for o in outputs if ways[o]]
    sections = [
        _psa_effects_section(results, outputs, ways, comparator, effects),
        _psa_pairwise_section(pairs, vs, best, ranked, ways, comparator),
    ]
    evppi = _psa_evppi_section(results, factors, spec, metrics, ranked, ways, better, tables)
    if evppi is not None:
        sections.append(evppi)
    prim = an.prim_table(results, ranked, metrics, comparator, factors, better)
    tables["psa_prim_boxes.csv"] = prim
    sections.append(
        {
            "title": "Scenario discovery: where a lever fails to help (PRIM)",
            "paragraphs": [
                "For each lever and outcome with a direction, a design point 'fails' when the "
                "lever is no better than the comparator there (replicate means). PRIM (EMA "
                "Workbench) peels the factor space to a box dense in failures; shown is the "
                "densest box on the peeling trajectory that still covers at least half of the "
                "failures, with the factor ranges it restricts (full range alongside).",
            ],
            "images": [],
            "tables": [_html_table("PRIM boxes", prim, 120)],
        }
    )
    return sections


def _psa_effects_section(
    results: pd.DataFrame,
    outputs: Sequence[str],
    ways: Mapping[str, str | None],
    comparator: str,
    effects: pd.DataFrame,
) -> dict[str, Any]:
    """Box plots of each lever's paired difference from the comparator over design points,
    per output, with the effects table."""
    plt = _plt()
    images = []
    for output in outputs:
        diff = an.point_differences(results, output, comparator)
        fig, ax = plt.subplots(figsize=(8, 0.4 * diff.shape[1] + 1.5))
        data = [diff[c].dropna().to_numpy() for c in diff.columns]
        ax.boxplot(data, orientation="horizontal", whis=(5, 95), showfliers=False)
        ax.set_yticks(np.arange(1, len(data) + 1), list(diff.columns))
        ax.axvline(0, color="k", lw=0.8)
        way = ways[output]
        ax.set_xlabel(
            f"lever minus {comparator} (boxes: quartiles; whiskers: 5-95%)"
            + (f"; {way} is better" if way else "; no direction")
        )
        ax.set_title(output)
        images.append(
            {"alt": f"Effect of each lever on {output} vs {comparator}", "data": _png(fig)}
        )
    return {
        "title": f"Effects of each lever vs {comparator}",
        "paragraphs": [
            "Paired differences (lever minus comparator) at the same design point and "
            "replicate (common random numbers: same parameter set, same random streams), "
            "averaged over replicates; the spread is parameter uncertainty.",
            "Direction used for 'better' (the metric registry in model/results.py, "
            "overridden by the spec's `better`): "
            + ", ".join(f"{o}: {w or 'none (not ranked)'}" for o, w in ways.items()),
        ],
        "images": images,
        "tables": [_html_table("effect distribution over design points", effects, 80)],
    }


def _psa_pairwise_section(
    pairs: pd.DataFrame,
    vs: pd.DataFrame,
    best: pd.DataFrame,
    ranked: Sequence[str],
    ways: Mapping[str, str | None],
    comparator: str,
) -> dict[str, Any]:
    """Heat maps of P(row option better than column option) for each ranked output, with
    the tables vs the comparator and of P(best)."""
    plt = _plt()
    heat = []
    for output in ranked:
        p = pairs[pairs["output"] == output].pivot(
            index="option", columns="versus", values="p_better"
        )
        order = [comparator, *(c for c in p.index if c != comparator)]
        p = p.reindex(index=order, columns=order)
        fig, ax = plt.subplots(figsize=(0.55 * len(order) + 3, 0.45 * len(order) + 1.5))
        im = ax.imshow(p.to_numpy(float), vmin=0, vmax=1, cmap="RdYlGn")
        ax.set_xticks(range(len(order)), order, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(order)), order, fontsize=7)
        for i in range(len(order)):
            for j in range(len(order)):
                v = p.iloc[i, j]
                if v == v:
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
        fig.colorbar(im, ax=ax, label="P(row better than column)")
        ax.set_title(f"{output} ({ways[output]} is better)")
        heat.append({"alt": f"Pairwise probability of being better on {output}", "data": _png(fig)})
    return {
        "title": "Probability that each lever beats the status quo and each other lever",
        "paragraphs": [
            "Share of design points (parameter sets) at which the option is "
            "strictly better; ties (no difference) count as not better."
        ],
        "images": heat,
        "tables": [_html_table("vs comparator", vs, 80), _html_table("P(best)", best, 80)],
    }


def _psa_evppi_section(
    results: pd.DataFrame,
    factors: pd.DataFrame,
    spec: Mapping[str, Any],
    metrics: Mapping[str, str],
    ranked: Sequence[str],
    ways: Mapping[str, str | None],
    better: Mapping[str, str],
    tables: dict[str, pd.DataFrame],
) -> dict[str, Any] | None:
    """EVPPI per uncertain parameter for the decision outcome (the spec's ``decision``, else
    the first ranked output); None when no output has a direction. Adds psa_evppi.csv."""
    plt = _plt()
    comparator = str(spec["comparator"])
    years = {f"{o['metric']}_{o['year']}": int(o["year"]) for o in spec["outputs"]}
    decision = spec.get("decision") or (
        {"metric": metrics[ranked[0]], "year": years[ranked[0]]} if ranked else None
    )
    if decision is None:
        return None
    column = f"{decision['metric']}_{decision['year']}"
    way = ways.get(column) or an.direction(decision["metric"], better) or "lower"
    inb = an.incremental_net_benefit(results, column, comparator, way).dropna()
    table = an.evppi_table(inb, factors, seed=int(spec["root_seed"]))
    tables["psa_evppi.csv"] = table
    top = table.head(TOP).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(top) + 1.2))
    ax.barh(top["factor"], top["evppi"])
    if len(table):
        ax.axvline(
            float(table["noise_floor"].iloc[0]),
            color="grey",
            ls="--",
            lw=1,
            label="noise floor",
        )
        ax.legend(loc="lower right")
    ax.set_xlabel(f"EVPPI ({decision['metric']} in {decision['year']}, per year)")
    images_e = [{"alt": "EVPPI per uncertain parameter", "data": _png(fig)}]
    evpi = float(table["evpi"].iloc[0]) if len(table) else float("nan")
    return {
        "title": "Expected value of partial perfect information",
        "paragraphs": [
            f"Decision outcome: {decision['metric']} in {decision['year']} ({way} is "
            f"better), for all children; EVPPI and EVPI are in its units (e.g. children "
            f"or days, per year of that outcome). Net benefit = "
            f"{'minus ' if way == 'lower' else ''}the outcome, relative to {comparator}; "
            f"the decision picks the option with the highest expected net benefit.",
            f"EVPI (all unknowns resolved) = {evpi:.4g}. Estimator: Strong and Oakley's "
            "single-parameter regression (cubic regression spline per option, knots by "
            "generalised cross-validation) on the replicate means at each design point.",
            f"EVPPI needs at least {an.MIN_EVPPI_POINTS} design points; with fewer it "
            "is left blank. "
            "Read: the parameter with the largest EVPPI is the unknown that, if "
            "researched, would most change which lever looks best on this outcome. "
            f"Noise floor (the largest EVPPI any parameter reaches when the design "
            f"points' outcomes are permuted, 95th percentile over "
            f"{an.NOISE_PERMUTATIONS} permutations: a threshold for all parameters at once): "
            f"{float(table['noise_floor'].iloc[0]) if len(table) else float('nan'):.4g}"
            "; values below it are not distinguishable from 0.",
        ],
        "images": images_e,
        "tables": [_html_table("EVPPI by parameter", table, TOP)],
    }


def summary_json(folder: Path) -> str:
    """The manifest's headline as JSON (for scripts)."""
    m = load_manifest(folder)
    return json.dumps({k: m[k] for k in ("spec_hash", "status", "runs")}, indent=2)
