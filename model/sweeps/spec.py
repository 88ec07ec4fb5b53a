"""Experiment files (``experiments/*.toml``): parse with tomllib, validate, resolve factors.

An experiment file declares a sweep as data::

    [experiment]
    name = "morris_screening"
    scenario = "historical"            # or scenarios = [...] (and comparator = "..." for psa)
    method = "morris"                  # sobol | morris | grid | psa
    samples = 3                        # sobol: N (rows N*(D+2)); morris: trajectories
                                       # (rows r*(D+1)); psa: parameter sets; grid: levels
    replicates = 1                     # per design point; replicate r uses the same random
                                       # streams at every design point and in every scenario
    root_seed = 20261130
    start = 2023-01-01                 # optional run window (the warm-up still runs)
    end = 2024-12-31
    outputs = [{ metric = "median_days_referral_to_cg", year = 2024 }]
    # or: metrics = ["..."] and years = [2024]

    [[factor]]                         # optional; default: every uncertain numeric parameter
    param = "cg_decision.capacity_multiplier"   # with a plausible range (shares, choices and
    low = 0.5                                   # flags are skipped)
    high = 1.5                         # or scale = [0.8, 1.2] (multiplies the whole series)

Every problem raises :class:`model.scenario.ScenarioError` naming the file, the key, the
value, what is allowed and a close match; the CLI turns it into exit code 2 before anything
is written. Nothing in a file is evaluated as code.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model.common import check_keys, toml_date
from model.params import SCHEMA
from model.results import DIRECTIONS, REGISTRY
from model.scenario import UNITS, Entry, Scenario, ScenarioError, load_scenario, suggest

EXPERIMENT_DIR = Path(__file__).resolve().parent.parent.parent / "experiments"
METHODS = ("sobol", "morris", "grid", "psa")
DISTRIBUTIONS = ("uniform", "triangular")
TRANSFORMS = ("value", "scale", "offset")
TOP_KEYS = {"experiment", "factor"}
EXPERIMENT_KEYS = {
    "name",
    "description",
    "scenario",
    "scenarios",
    "comparator",
    "method",
    "samples",
    "replicates",
    "root_seed",
    "start",
    "end",
    "effects",
    "outputs",
    "metrics",
    "years",
    "second_order",
    "levels",
    "ensemble",
    "distribution",
    "exclude",
    "decision",
    "better",
}
FACTOR_KEYS = {"param", "low", "high", "scale", "offset", "distribution", "levels"}
OUTPUT_KEYS = {"metric", "year"}
SCHEMA_VERSION = 1  # bump when the meaning of a spec field changes (changes the spec hash)
MAX_DESIGN_POINTS = 1_000_000
MAX_RUNS = 10_000_000  # design points x scenarios x replicates (weeks of CPU at 0.1 s a run)


@dataclass(frozen=True)
class Output:
    """One sweep output: a metric for all children in one calendar year."""

    metric: str
    year: int

    @property
    def column(self) -> str:
        return f"{self.metric}_{self.year}"


@dataclass(frozen=True)
class Factor:
    """One varied input, resolved against the scenarios.

    ``transform`` says how a sampled number changes the scenario: ``value`` sets the declared
    value (``Scenario.with_values``); ``scale`` multiplies the declared value and every
    timeline value (``Scenario.with_scaled``); ``offset`` adds to all of them. A parameter
    that a timeline entry sets in any of the experiment's scenarios is always scaled (or
    offset, if its declared value is 0), so the same factor means the same thing in every
    scenario and a lever's own value moves with it.
    """

    param: str
    transform: str
    low: float
    high: float
    distribution: str = "uniform"
    mode: float | None = None  # triangular peak (the declared value, or 1 for a scale)
    kind: str = "float"  # float | int (int values are rounded when applied)
    levels: int | None = None  # grid only
    declared: float | None = None  # the declared value the range was read against

    @property
    def column(self) -> str:
        """Column name in the design and results (``scale:``/``offset:`` as in ensembles)."""
        return self.param if self.transform == "value" else f"{self.transform}:{self.param}"


@dataclass(frozen=True)
class Experiment:
    """A validated experiment: everything that defines the design and the runs."""

    path: Path
    name: str
    description: str
    method: str
    scenarios: tuple[Scenario, ...]  # comparator first for psa
    comparator: str | None
    samples: int
    replicates: int
    root_seed: int
    outputs: tuple[Output, ...]
    factors: tuple[Factor, ...]
    start: dt.date | None = None
    end: dt.date | None = None
    effects: str = "default"
    second_order: bool = False
    levels: int = 4
    ensemble: str = "none"  # psa: "auto" | "none" | a fit id (resolved in design)
    decision: Output | None = None
    better: Mapping[str, str] = field(default_factory=dict)
    text: str = ""

    @property
    def scenario_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.scenarios)

    def canonical(self) -> dict[str, Any]:
        """The JSON-ready spec after resolution: what the spec hash covers."""
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "method": self.method,
            "samples": self.samples,
            "replicates": self.replicates,
            "root_seed": self.root_seed,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "effects": self.effects,
            "second_order": self.second_order,
            "levels": self.levels,
            "ensemble": self.ensemble,
            "comparator": self.comparator,
            "outputs": [asdict(o) for o in self.outputs],
            "decision": asdict(self.decision) if self.decision else None,
            "better": dict(sorted(self.better.items())),
            "factors": [asdict(f) for f in self.factors],
            "scenarios": {s.name: scenario_sha256(s) for s in self.scenarios},
        }

    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.canonical(), sort_keys=True).encode()).hexdigest()


def scenario_sha256(scenario: Scenario) -> str:
    return hashlib.sha256(json.dumps(scenario.resolved(), sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- loading
def resolve_experiment_path(name_or_path: str | Path) -> Path:
    """An experiment is a path to a ``.toml`` file or a name in ``experiments/``."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix == ".toml" or "/" in text or path.exists():
        if not path.is_file():
            raise ScenarioError(path, "experiment", "file not found")
        return path
    candidate = EXPERIMENT_DIR / f"{text}.toml"
    if candidate.is_file():
        return candidate
    names = sorted(p.stem for p in EXPERIMENT_DIR.glob("*.toml"))
    raise ScenarioError(
        candidate,
        "experiment",
        f"no experiment named '{text}'; available: {names}." + suggest(text, names),
    )


def load_experiment(name_or_path: str | Path, size: int | None = None) -> Experiment:
    """Load, validate and resolve an experiment file; ``size`` overrides ``samples``."""
    path = resolve_experiment_path(name_or_path)
    text, doc, exp = _read(path)
    name = _string(path, "experiment.name", exp["name"])
    method = _choice(path, "experiment.method", exp["method"], METHODS)
    samples = _samples(path, exp, method, size)
    replicates = _whole(path, "experiment.replicates", exp.get("replicates", 1), 1)
    root_seed = _whole(path, "experiment.root_seed", exp["root_seed"], 0)
    effects = _choice(
        path, "experiment.effects", exp.get("effects", "default"), ("default", "null")
    )
    second_order = _bool(path, "experiment.second_order", exp.get("second_order", False))
    if second_order and method != "sobol":
        raise ScenarioError(path, "experiment.second_order", "applies to method 'sobol' only")
    levels = _whole(path, "experiment.levels", exp.get("levels", 4), 2)
    default_dist = _choice(
        path,
        "experiment.distribution",
        exp.get("distribution", "triangular" if method == "psa" else "uniform"),
        DISTRIBUTIONS,
    )
    start = _date(path, "experiment.start", exp.get("start"))
    end = _date(path, "experiment.end", exp.get("end"))
    if start and end and end < start:
        raise ScenarioError(path, "experiment.end", f"value {end} is before start {start}")
    scenarios, comparator = _scenarios(path, exp, method)
    try:
        scenarios = tuple(
            s.with_run(start=start, end=end, seed=root_seed).with_effects(effects)
            for s in scenarios
        )
    except ScenarioError as exc:
        raise ScenarioError(
            path, "experiment.start", f"the run window does not fit: {exc}"
        ) from None
    outputs = _outputs(path, exp, scenarios)
    ensemble, better, decision, outputs = _psa_keys(path, exp, method, scenarios, outputs)
    factors = _factors(path, doc.get("factor"), exp, scenarios, method, default_dist, samples)
    if method in ("sobol", "morris") and len(factors) < 2:
        raise ScenarioError(path, "factor", f"method '{method}' needs at least 2 factors")
    if method == "psa" and len(scenarios) < 2:
        raise ScenarioError(path, "experiment.scenarios", "psa compares at least two scenarios")
    _check_size(path, method, samples, factors, second_order, len(scenarios), replicates)
    return Experiment(
        path=path,
        name=name,
        description=str(exp.get("description", "")),
        method=method,
        scenarios=scenarios,
        comparator=comparator,
        samples=samples,
        replicates=replicates,
        root_seed=root_seed,
        outputs=outputs,
        factors=factors,
        start=start,
        end=end,
        effects=effects,
        second_order=second_order,
        levels=levels,
        ensemble=ensemble,
        decision=decision,
        better=better,
        text=text,
    )


def _read(path: Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The file's text, its TOML document and its ``[experiment]`` table, with the keys
    checked and the required ones present."""
    try:
        text = path.read_text(encoding="utf-8")
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(path, "-", f"not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(path, "-", f"not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise ScenarioError(path, "-", f"cannot read: {exc.strerror}") from None
    check_keys(path, "", doc, TOP_KEYS)
    exp = doc.get("experiment")
    if not isinstance(exp, dict):
        raise ScenarioError(
            path, "experiment", "missing: write the settings in an [experiment] table"
        )
    check_keys(path, "experiment", exp, EXPERIMENT_KEYS)
    for req in ("name", "method", "samples", "root_seed"):
        if req not in exp:
            raise ScenarioError(path, f"experiment.{req}", "missing")
    return text, doc, exp


def _samples(path: Path, exp: Mapping[str, Any], method: str, size: int | None) -> int:
    """``samples`` (or ``--size``, which overrides it); a power of 2 for Sobol."""
    samples = _whole(path, "experiment.samples", exp["samples"], 1)
    if size is not None:
        samples = _whole(path, "--size", size, 1)
    if method == "sobol" and samples & (samples - 1):
        lower = 1 << (samples.bit_length() - 1)
        raise ScenarioError(
            path,
            "experiment.samples" if size is None else "--size",
            f"value {samples} must be a power of 2 for Sobol sampling (e.g. {lower} or "
            f"{lower * 2})",
        )
    return samples


def _psa_keys(
    path: Path,
    exp: Mapping[str, Any],
    method: str,
    scenarios: Sequence[Scenario],
    outputs: tuple[Output, ...],
) -> tuple[str, dict[str, str], Output | None, tuple[Output, ...]]:
    """``ensemble`` (psa only; default "auto" for psa, else "none"), ``better``, and the
    ``decision`` output (psa only; it needs a direction), which joins ``outputs``."""
    ensemble = "none"
    if "ensemble" in exp:
        if method != "psa":
            raise ScenarioError(path, "experiment.ensemble", "applies to method 'psa' only")
        ensemble = _string(path, "experiment.ensemble", exp["ensemble"])
    elif method == "psa":
        ensemble = "auto"
    better = _better(path, exp.get("better", {}))
    decision = None
    if "decision" in exp:
        if method != "psa":
            raise ScenarioError(path, "experiment.decision", "applies to method 'psa' only")
        decision = _output(path, "experiment.decision", exp["decision"], scenarios)
        if REGISTRY[decision.metric].better is None and decision.metric not in better:
            raise ScenarioError(
                path, "experiment.decision", f"metric '{decision.metric}' has no direction "
                "(is more better or worse?); add better = { " + decision.metric + ' = "lower" }'
                ' or "higher"',
            )  # fmt: skip
        if decision not in outputs:
            outputs = (*outputs, decision)
    return ensemble, better, decision, outputs


def _check_size(
    path: Path,
    method: str,
    samples: int,
    factors: Sequence[Factor],
    second_order: bool,
    n_scenarios: int,
    replicates: int,
) -> None:
    """Refuse a design or a sweep too large to sample or store, before anything is written
    (a huge ``samples`` or ``replicates`` would otherwise exhaust memory in the sampler)."""
    n_factors = len(factors)
    per_sample = {
        "sobol": 2 * n_factors + 2 if second_order else n_factors + 2,
        "morris": n_factors + 1,
        "psa": 1,
    }
    if method in per_sample:  # the grid's size is checked with its factors
        points = samples * per_sample[method]
        if points > MAX_DESIGN_POINTS:
            raise ScenarioError(
                path,
                "experiment.samples",
                f"value {samples:,} gives {points:,} design points; at most "
                f"{MAX_DESIGN_POINTS:,} are allowed (--size sets a smaller sample)",
            )
    else:
        points = math.prod(f.levels or 1 for f in factors)  # at most MAX_DESIGN_POINTS
    runs = points * n_scenarios * replicates
    if runs > MAX_RUNS:
        raise ScenarioError(
            path,
            "experiment.replicates",
            f"value {replicates:,} gives {runs:,} runs; at most {MAX_RUNS:,} are allowed",
        )


# --------------------------------------------------------------------------- parts
def _scenarios(
    path: Path, exp: Mapping[str, Any], method: str
) -> tuple[tuple[Scenario, ...], str | None]:
    if ("scenario" in exp) == ("scenarios" in exp):
        raise ScenarioError(
            path,
            "experiment.scenario",
            "give exactly one of 'scenario' (one name) or 'scenarios' (a list of names)",
        )
    if "scenario" in exp:
        names = [_string(path, "experiment.scenario", exp["scenario"])]
    else:
        raw = exp["scenarios"]
        if not isinstance(raw, list) or not raw or not all(isinstance(n, str) for n in raw):
            raise ScenarioError(
                path,
                "experiment.scenarios",
                f"value {raw!r} must be a non-empty list of scenario names",
            )
        names = list(raw)
    if len(set(names)) != len(names):
        raise ScenarioError(path, "experiment.scenarios", f"value {names!r} repeats a scenario")
    comparator = None
    if method == "psa":
        if "comparator" not in exp:
            raise ScenarioError(
                path,
                "experiment.comparator",
                "missing: psa needs the "
                "scenario every lever is compared with (e.g. status_quo_2027)",
            )
        comparator = _string(path, "experiment.comparator", exp["comparator"])
        names = [comparator, *(n for n in names if n != comparator)]
    elif "comparator" in exp:
        raise ScenarioError(path, "experiment.comparator", "applies to method 'psa' only")
    if method in ("sobol", "morris") and len(names) != 1:
        raise ScenarioError(
            path,
            "experiment.scenarios",
            f"method '{method}' runs one scenario; give scenario = \"...\"",
        )
    base_dir = path.parent
    scenarios = []
    for n in names:
        key = "experiment.comparator" if n == comparator else "experiment.scenario"
        candidate = base_dir / n if n.endswith(".toml") and not Path(n).is_absolute() else None
        try:
            scenarios.append(load_scenario(candidate if candidate and candidate.is_file() else n))
        except ScenarioError as exc:
            raise ScenarioError(path, key, f"value {n!r}: {exc}") from None
    seen = [s.name for s in scenarios]
    if len(set(seen)) != len(seen):
        raise ScenarioError(path, "experiment.scenarios", f"scenario names {seen} repeat")
    return tuple(scenarios), (scenarios[0].name if comparator else None)


def _outputs(
    path: Path, exp: Mapping[str, Any], scenarios: Sequence[Scenario]
) -> tuple[Output, ...]:
    if "outputs" in exp and ("metrics" in exp or "years" in exp):
        raise ScenarioError(
            path, "experiment.outputs", "give either 'outputs' or 'metrics' with 'years', not both"
        )
    items: list[tuple[str, Any]] = []
    if "outputs" in exp:
        raw = exp["outputs"]
        if not isinstance(raw, list) or not raw:
            raise ScenarioError(
                path,
                "experiment.outputs",
                'must be a non-empty list of { metric = "...", year = YYYY } tables',
            )
        items = [(f"experiment.outputs[{i}]", o) for i, o in enumerate(raw)]
    elif "metrics" in exp:
        metrics, years = exp["metrics"], exp.get("years")
        if not isinstance(metrics, list) or not metrics:
            raise ScenarioError(path, "experiment.metrics", "must be a non-empty list of names")
        if not isinstance(years, list) or not years:
            raise ScenarioError(path, "experiment.years", "missing: a non-empty list of years")
        items = [
            (f"experiment.metrics[{i}]", {"metric": m, "year": y})
            for i, m in enumerate(metrics)
            for y in years
        ]
    else:
        raise ScenarioError(
            path,
            "experiment.outputs",
            "missing: list the outputs as "
            '[{ metric = "...", year = YYYY }] or metrics = [...] and years = [...]',
        )
    outs = tuple(_output(path, where, o, scenarios) for where, o in items)
    if len(set(outs)) != len(outs):
        raise ScenarioError(path, "experiment.outputs", "an output is listed twice")
    return outs


def _output(path: Path, where: str, raw: Any, scenarios: Sequence[Scenario]) -> Output:
    if not isinstance(raw, dict):
        raise ScenarioError(path, where, f'value {raw!r} must be {{ metric = "...", year = YYYY }}')
    check_keys(path, where, raw, OUTPUT_KEYS)
    metric = raw.get("metric")
    allowed = sorted(name for name, m in REGISTRY.items() if "all" in m.groupings)  # one number
    if metric not in allowed:
        raise ScenarioError(
            path,
            f"{where}.metric",
            f"value {metric!r} is not a metric a sweep can record; "
            f"allowed: {allowed}." + suggest(str(metric), allowed),
        )
    year = _whole(path, f"{where}.year", raw.get("year"), 1)
    for s in scenarios:
        if not s.start.year <= year <= s.end.year:
            raise ScenarioError(
                path,
                f"{where}.year",
                f"value {year} is outside the run of {s.name} "
                f"({s.start} to {s.end}); allowed: {s.start.year} to {s.end.year}",
            )
    return Output(str(metric), year)


def _better(path: Path, raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ScenarioError(path, "experiment.better", 'must be a table { metric = "lower" }')
    for metric, way in raw.items():
        if metric not in REGISTRY:
            raise ScenarioError(
                path,
                f"experiment.better.{metric}",
                f"unknown metric; allowed: {sorted(REGISTRY)}." + suggest(metric, REGISTRY),
            )
        _choice(path, f"experiment.better.{metric}", way, DIRECTIONS)
    return dict(raw)


def default_factor_keys(scenario: Scenario, exclude: Sequence[str] = ()) -> list[str]:
    """Every parameter with role 'uncertain', numeric, with a non-degenerate plausible range
    (read from ``model.params.SCHEMA`` at run time), minus ``exclude`` glob patterns."""
    keys = []
    for key, f in SCHEMA.items():
        entry = scenario.entries.get(key)
        if f.role != "uncertain" or f.kind not in ("float", "int") or entry is None:
            continue
        if entry.range is None or not entry.range[0] < entry.range[1]:
            continue
        if any(fnmatch.fnmatchcase(key, pat) for pat in exclude):
            continue
        keys.append(key)
    return keys


def _factors(
    path: Path,
    raw: Any,
    exp: Mapping[str, Any],
    scenarios: Sequence[Scenario],
    method: str,
    default_dist: str,
    samples: int,
) -> tuple[Factor, ...]:
    first = scenarios[0]
    timeline = set().union(*(s.timeline_keys() for s in scenarios))
    exclude = exp.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(p, str) for p in exclude):
        raise ScenarioError(
            path,
            "experiment.exclude",
            f'value {exclude!r} must be a list of parameter names or patterns such as "cost.*"',
        )
    for i, pat in enumerate(exclude):
        if not any(fnmatch.fnmatchcase(k, pat) for k in SCHEMA):
            raise ScenarioError(
                path,
                f"experiment.exclude[{i}]",
                f"value {pat!r} matches no parameter." + suggest(pat, SCHEMA),
            )
    if raw is None:
        if method == "grid":
            return ()
        items: list[tuple[str, dict[str, Any]]] = [
            ("factor (default: uncertain parameters)", {"param": k})
            for k in default_factor_keys(first, exclude)
        ]
    else:
        if exclude:
            raise ScenarioError(
                path,
                "experiment.exclude",
                "applies to the default factors only; remove it or the [[factor]] tables",
            )
        if not isinstance(raw, list):
            raise ScenarioError(path, "factor", "write factors as [[factor]] tables")
        items = [(f"factor[{i}]", f) for i, f in enumerate(raw)]
    out: list[Factor] = []
    for where, item in items:
        out.append(_factor(path, where, item, scenarios, timeline, method, default_dist, samples))
    params = [f.param for f in out]
    if len(set(params)) != len(params):
        dup = sorted({p for p in params if params.count(p) > 1})
        raise ScenarioError(path, "factor", f"parameters {dup} are varied twice")
    if method == "grid":
        points = math.prod(f.levels or 1 for f in out)
        if points > MAX_DESIGN_POINTS:
            raise ScenarioError(
                path,
                "factor",
                f"the grid has {points:,} points; at most {MAX_DESIGN_POINTS:,} are allowed",
            )
    return tuple(out)


def _factor(
    path: Path,
    where: str,
    item: Any,
    scenarios: Sequence[Scenario],
    timeline: set[str],
    method: str,
    default_dist: str,
    samples: int,
) -> Factor:
    """One ``[[factor]]`` table, checked against the schema and the first scenario."""
    key, kind = _factor_param(path, where, item)
    entry = scenarios[0].entries[key]
    declared = float(entry.value)
    given = [k for k in ("low", "scale", "offset") if k in item]
    if "high" in item and "low" not in item:
        given.append("high")
    if len(given) > 1 or ("low" in item) != ("high" in item):
        raise ScenarioError(
            path,
            where,
            "give 'low' and 'high', or 'scale = [lo, hi]', or "
            "'offset = [lo, hi]', or none (the declared plausible range)",
        )
    distribution = _choice(
        path, f"{where}.distribution", item.get("distribution", default_dist), DISTRIBUTIONS
    )
    if method == "morris" and distribution != "uniform":
        raise ScenarioError(
            path,
            f"{where}.distribution",
            "Morris sampling is on a uniform grid of levels; allowed: ['uniform']",
        )
    levels = None
    if method == "grid":
        levels = _whole(path, f"{where}.levels", item.get("levels", samples), 1)
    elif "levels" in item:
        raise ScenarioError(path, f"{where}.levels", "applies to method 'grid' only")
    lo, hi, mode, transform = _factor_range(path, where, item, entry, key in timeline)
    factor = Factor(
        key, transform, float(lo), float(hi), distribution, float(mode), kind, levels, declared
    )
    _check_bounds(path, where, factor, scenarios)
    return factor


def _factor_param(path: Path, where: str, item: Any) -> tuple[str, str]:
    """The factor's parameter key and kind: a table with known keys naming a numeric
    parameter of the schema."""
    if not isinstance(item, dict):
        raise ScenarioError(path, where, f"value {item!r} must be a table with 'param'")
    check_keys(path, where, item, FACTOR_KEYS)
    key = item.get("param")
    if not isinstance(key, str) or key not in SCHEMA:
        raise ScenarioError(
            path,
            f"{where}.param",
            f"value {key!r}: the engine declares no such "
            "parameter (model/params.py)." + suggest(str(key), SCHEMA),
        )
    spec = SCHEMA[key]
    if spec.kind not in ("float", "int"):
        raise ScenarioError(
            path,
            f"{where}.param",
            f"'{key}' is a {spec.kind}; a factor must be numeric (float or int)",
        )
    return key, spec.kind


def _factor_range(
    path: Path, where: str, item: Mapping[str, Any], entry: Entry, series: bool
) -> tuple[float, float, float, str]:
    """(low, high, mode, transform): from ``scale``/``offset``, ``low``/``high`` or the
    declared plausible range; a ``series`` (a parameter the timeline changes) is varied by a
    scale (or, declared 0, an offset) of the whole series."""
    key = item["param"]
    declared = float(entry.value)
    if "scale" in item or "offset" in item:
        transform = "scale" if "scale" in item else "offset"
        lo, hi = _pair(path, f"{where}.{transform}", item[transform])
        mode = 1.0 if transform == "scale" else 0.0
        if transform == "scale" and lo < 0:
            raise ScenarioError(
                path, f"{where}.scale", f"value {[lo, hi]!r}: a scale factor must not be negative"
            )
        return lo, hi, mode, transform
    if "low" in item:
        lo, hi = _pair(path, where, [item["low"], item["high"]], names=("low", "high"))
    else:
        if entry.range is None or not entry.range[0] < entry.range[1]:
            raise ScenarioError(
                path,
                where,
                f"'{key}' declares no plausible range ({entry.range}); give low and high",
            )
        lo, hi = entry.range
    mode = min(max(declared, lo), hi)
    if series:  # a series: vary it through a factor on the whole series
        if declared != 0:
            return lo / declared, hi / declared, 1.0, "scale"
        return lo - declared, hi - declared, 0.0, "offset"
    return lo, hi, mode, "value"


def _check_bounds(path: Path, where: str, f: Factor, scenarios: Sequence[Scenario]) -> None:
    """Every value a factor can produce must be allowed by the parameter's unit."""
    unit = SCHEMA[f.param].unit
    _, lo_ok, hi_ok = UNITS[unit]
    values = []
    for s in scenarios:
        series = [float(s.entries[f.param].value)] + [
            float(t.changes[f.param]) for t in s.timeline if f.param in t.changes
        ]
        for v in series:
            for x in (f.low, f.high):
                values.append(
                    x if f.transform == "value" else v * x if f.transform == "scale" else v + x
                )
    bad = [v for v in values if not (math.isfinite(v) and lo_ok <= v <= hi_ok)]
    if bad:
        how = {"value": "values", "scale": "scaled values", "offset": "offset values"}[f.transform]
        raise ScenarioError(
            path,
            where,
            f"'{f.param}' ({unit}) must stay finite and in [{lo_ok}, {hi_ok}]; the range "
            f"[{f.low:g}, {f.high:g}] gives {how} from {min(values):g} to {max(values):g}",
        )


# --------------------------------------------------------------------------- small checks
def _string(path: Path, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ScenarioError(path, where, f"value {value!r} must be a non-empty string")
    return value


def _choice(path: Path, where: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ScenarioError(
            path,
            where,
            f"value {value!r} is not allowed; allowed: "
            f"{list(allowed)}." + suggest(str(value), allowed),
        )
    return str(value)


def _whole(path: Path, where: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ScenarioError(path, where, f"value {value!r} must be a whole number >= {minimum}")
    return value


def _bool(path: Path, where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(path, where, f"value {value!r} must be true or false")
    return value


def _date(path: Path, where: str, value: Any) -> dt.date | None:
    return None if value is None else toml_date(path, where, value)


def _pair(
    path: Path, where: str, value: Any, names: tuple[str, str] = ("low", "high")
) -> tuple[float, float]:
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
        and all(math.isfinite(x) for x in value)
    )
    if not ok:
        raise ScenarioError(
            path, where, f"value {value!r} must be two finite numbers [{names[0]}, {names[1]}]"
        )
    lo, hi = float(value[0]), float(value[1])
    if not lo < hi:
        raise ScenarioError(path, where, f"{names[0]} {lo:g} must be below {names[1]} {hi:g}")
    return lo, hi
