"""Scenario files: load TOML, resolve ``extends``, validate every value, build ``Params``.

A scenario is data. ``scenarios/baseline.toml`` declares every parameter once, as an inline
table ``{ value, unit, source, ... }``; other scenarios ``extends`` a parent and may only
override keys that exist there. A ``[[timeline]]`` entry changes parameters on a date, so one
run can cross a policy change. Nothing here evaluates code from a file.

Every problem raises :class:`ScenarioError`, which names the file, the key, the value and what
is allowed (with a close-match suggestion for typos). The CLI turns it into exit code 2.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from model.common import MAX_REPLICATES as MAX_REPLICATES  # defined there, importable here
from model.common import ScenarioError as ScenarioError  # defined there, importable here
from model.common import check_keys, toml_date
from model.common import read_toml as read_toml
from model.common import suggest as suggest
from model.params import SCHEMA, Field, Params, Share

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
SOURCE_KINDS = (
    "official-statistics",
    "foi-release",
    "ngo-secondary",
    "legislation-guidance",
    "assumption",
)

# unit -> (python kind, lower bound, upper bound). Every parameter declares one of these.
UNITS: dict[str, tuple[str, float, float]] = {
    "probability": ("float", 0.0, 1.0),
    "share": ("share", 0.0, 1.0),
    "days": ("float", 0.0, math.inf),
    "years": ("float", 0.0, math.inf),
    "children/year": ("float", 0.0, math.inf),
    "decisions/year": ("float", 0.0, math.inf),
    "per year": ("float", 0.0, math.inf),
    "count": ("int", 0, math.inf),
    "children": ("int", 0, math.inf),
    "factor": ("float", 0.0, math.inf),
    "odds ratio": ("float", 0.0, math.inf),
    "gbp": ("float", 0.0, math.inf),
    "gbp/day": ("float", 0.0, math.inf),
    "gbp/case": ("float", 0.0, math.inf),
    "date": ("date", -math.inf, math.inf),
    "flag": ("bool", 0, 1),
    "choice": ("choice", -math.inf, math.inf),
}
ENTRY_KEYS = {
    "value",
    "unit",
    "source",
    "locator",
    "note",
    "range",
    "calibrate",
    "allowed",
    "null",
    "null_ruled_out_by",
}
META_KEYS = {"name", "description", "extends", "changes_assumptions"}
RUN_KEYS = {"start", "end", "seed", "replicates", "warmup_start"}
TIMELINE_KEYS = {"date", "name", "source", "set", "note", "enabled"}
MAX_EXTENDS = 50  # files in one extends chain (real chains have a few; deeper is a mistake)


# --------------------------------------------------------------------------- entries
@dataclass(frozen=True, slots=True)
class Entry:
    """One declared parameter with its provenance."""

    key: str  # dotted, e.g. "cg_decision.capacity_per_year"
    value: Any
    unit: str
    source: str
    locator: str = ""
    note: str = ""
    range: tuple[float, float] | None = None
    calibrate: bool = False
    allowed: tuple[str, ...] = ()
    declared_in: str = ""
    null: Any = None  # the value at which an assumed effect does nothing


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """Parameter changes that take effect on ``date`` (00:00, start of that day)."""

    date: dt.date
    name: str
    source: str
    changes: Mapping[str, Any]
    declared_in: str = ""


@dataclass(frozen=True)
class Scenario:
    """A fully resolved scenario: parameters, provenance, timeline and run settings."""

    name: str
    description: str
    path: Path
    chain: tuple[str, ...]  # files from baseline to this one
    entries: Mapping[str, Entry]
    timeline: tuple[TimelineEntry, ...]
    start: dt.date
    end: dt.date
    seed: int
    replicates: int
    sources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    warmup_start: dt.date | None = None
    effects: str = "default"  # "null": every assumed effect set to its null (with_effects)
    mechanisms: tuple[Mapping[str, Any], ...] = ()  # [[mechanism]] tables along the chain
    # parameters a policy scenario changes although they are not levers ([meta]
    # changes_assumptions along the chain): key -> {"role": ..., "declared_in": file}
    changes_assumptions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def is_policy(self) -> bool:
        """A policy scenario declares a ``[[mechanism]]`` in its file or in a file it extends
        (see :func:`check_roles`)."""
        return bool(self.mechanisms)

    @property
    def sim_start(self) -> dt.date:
        """Day 0 of the simulation: the warm-up start if earlier than ``start``.

        A warm-up fills the system (open cases, children in care, past cohorts who can be
        re-referred) so that outputs from ``start`` do not begin from an empty system.
        Summaries and targets cover ``start`` to ``end`` only.
        """
        if self.warmup_start is not None and self.warmup_start < self.start:
            return self.warmup_start
        return self.start

    def initial_params(self) -> Params:
        """Parameters in force on day 0 (timeline entries on or before it applied)."""
        flat = {k: e.value for k, e in self.entries.items()}
        for item in self.timeline:
            if item.date <= self.sim_start:
                flat.update(item.changes)
        return Params.from_flat(flat)

    def future_timeline(self) -> list[TimelineEntry]:
        """Timeline entries after day 0 and up to the end, in date order."""
        return [t for t in self.timeline if self.sim_start < t.date <= self.end]

    def with_run(
        self, *, start: dt.date | None = None, end: dt.date | None = None, seed: int | None = None
    ) -> Scenario:
        """Copy with run settings replaced (command-line options)."""
        new_start, new_end = start or self.start, end or self.end
        if new_end < new_start:
            raise ScenarioError(
                self.path,
                "run.end",
                f"end {new_end} must not be before start {new_start} (the end day is included)",
            )
        return replace(self, start=new_start, end=new_end, seed=self.seed if seed is None else seed)

    def with_values(self, changes: Mapping[str, Any], source: str = "override") -> Scenario:
        """Copy with declared parameter values replaced (validated); used by calibration and
        sweeps. A parameter that a timeline entry sets on or before day 0 cannot be changed
        this way (the timeline would overwrite it): use ``with_scaled`` for those."""
        entries = dict(self.entries)
        at_start = {k: t.name for t in self.timeline if t.date <= self.sim_start for k in t.changes}
        for key, value in changes.items():
            if key not in entries:
                raise ScenarioError(self.path, key, "unknown parameter" + suggest(key, entries))
            if key in at_start:
                raise ScenarioError(
                    self.path,
                    key,
                    f"is set by the timeline entry '{at_start[key]}' on or before the first "
                    "simulated day, so changing its declared value has no effect; scale the "
                    "whole series instead (Scenario.with_scaled, or `scale` in a sweep factor)",
                )
            base = entries[key]
            checked = check_value(
                self.path, key, value, base.unit, base.allowed, SCHEMA[key].categories
            )
            entries[key] = replace(base, value=checked, source=source, declared_in=str(self.path))
        return replace(self, entries=entries)

    def timeline_keys(self) -> set[str]:
        """Parameters that some timeline entry sets."""
        return {k for t in self.timeline for k in t.changes}

    def with_scaled(
        self,
        factors: Mapping[str, float],
        offsets: Mapping[str, float] | None = None,
        source: str = "override",
    ) -> Scenario:
        """Copy with a numeric parameter multiplied by a factor (then shifted by an offset)
        everywhere it is set: its declared value and every timeline value. This is how a sweep
        varies a series such as yearly referral volumes or decision capacity."""
        offsets = offsets or {}
        keys = set(factors) | set(offsets)
        entries = dict(self.entries)
        for key in sorted(keys):
            if key not in entries:
                raise ScenarioError(self.path, key, "unknown parameter" + suggest(key, entries))
            if SCHEMA[key].kind not in ("float", "int"):
                raise ScenarioError(
                    self.path,
                    key,
                    f"is a {SCHEMA[key].kind}; only numeric parameters can be scaled or offset",
                )

        def new(key: str, value: Any) -> Any:
            out = value * factors.get(key, 1.0) + offsets.get(key, 0.0)
            if SCHEMA[key].kind == "int":
                out = round(out)
            unit = entries[key].unit
            return check_value(self.path, f"{key} (scaled)", out, unit)

        for key in keys:
            base = entries[key]
            entries[key] = replace(base, value=new(key, base.value), source=source)
        timeline = tuple(
            replace(t, changes={k: (new(k, v) if k in keys else v) for k, v in t.changes.items()})
            for t in self.timeline
        )
        return replace(self, entries=entries, timeline=timeline)

    def effect_keys(self) -> list[str]:
        """Parameters that size an assumed effect (they declare a ``null``)."""
        return sorted(k for k, e in self.entries.items() if e.null is not None)

    def with_effects(self, mode: str) -> Scenario:
        """``"default"``: as declared. ``"null"``: every parameter with a ``null`` is set to it,
        in its declaration and in every timeline entry (a lever that sets an effect size sets
        the null instead): what a lever does if none of the assumed effects is true."""
        if mode not in ("default", "null"):
            raise ScenarioError(
                self.path, "effects", f"value {mode!r} is not allowed; allowed: ['default', 'null']"
            )
        if mode == "default":
            return self
        nulls = {k: e.null for k, e in self.entries.items() if e.null is not None}
        entries = {
            k: (replace(e, value=e.null, source="null") if k in nulls else e)
            for k, e in self.entries.items()
        }
        timeline = tuple(
            replace(t, changes={k: nulls.get(k, v) for k, v in t.changes.items()})
            for t in self.timeline
        )
        return replace(self, entries=entries, timeline=timeline, effects="null")

    def evidence(self) -> dict[str, Any]:
        """How many parameters rest on each kind of evidence, and which are assumptions."""
        kinds: dict[str, list[str]] = {}
        for key, entry in sorted(self.entries.items()):
            kinds.setdefault(source_kind(entry, self.sources), []).append(key)
        return {
            "counts": {k: len(v) for k, v in sorted(kinds.items())},
            "assumptions": kinds.get("assumption", []),
            "calibrated": kinds.get("calibrated", []),
        }

    def resolved(self) -> dict[str, Any]:
        """JSON-ready description of everything that defines this scenario."""
        return {
            "name": self.name,
            "description": self.description,
            "files": list(self.chain),
            "effects": self.effects,
            "mechanisms": [dict(m) for m in self.mechanisms],
            **(
                {"changes_assumptions": {k: dict(v) for k, v in self.changes_assumptions.items()}}
                if self.changes_assumptions
                else {}
            ),
            "run": {
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "warmup_start": self.sim_start.isoformat(),
                "seed": self.seed,
                "replicates": self.replicates,
            },
            "params": {
                k: {
                    "value": _jsonable(e.value),
                    "unit": e.unit,
                    "source": e.source,
                    **({"range": list(e.range)} if e.range else {}),
                    **({"null": _jsonable(e.null)} if e.null is not None else {}),
                    **({"calibrate": True} if e.calibrate else {}),
                }
                for k, e in sorted(self.entries.items())
            },
            "timeline": [
                {
                    "date": t.date.isoformat(),
                    "name": t.name,
                    "source": t.source,
                    "set": {k: _jsonable(v) for k, v in t.changes.items()},
                }
                for t in self.timeline
            ],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Share):
        return value.as_dict()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------- validation
def check_value(
    file: Path | str,
    key: str,
    value: Any,
    unit: str,
    allowed: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
) -> Any:
    """Validate ``value`` against ``unit``; return it in its runtime form (e.g. ``Share``)."""
    kind, lo, hi = UNITS[unit]
    if kind == "share":
        if not isinstance(value, Mapping | Share):
            raise ScenarioError(
                file,
                key,
                f"value {value!r} must be a table of shares, "
                "e.g. {{ female = 0.3, male = 0.7 }}",
            )
        mapping = value.as_dict() if isinstance(value, Share) else dict(value)
        if categories:
            expected = set(categories)
            if set(mapping) != expected:
                extra, missing = set(mapping) - expected, expected - set(mapping)
                hint = "".join(suggest(x, expected) for x in extra)
                raise ScenarioError(
                    file,
                    key,
                    f"categories must be exactly {sorted(expected)}; "
                    f"unknown {sorted(extra)}, missing {sorted(missing)}.{hint}",
                )
        for cat, share in mapping.items():
            if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
                raise ScenarioError(
                    file, f"{key}.{cat}", f"value {share!r} must be a number in [0, 1]"
                )
        total = sum(mapping.values())
        if abs(total - 1.0) > 1e-6:
            raise ScenarioError(file, key, f"shares sum to {total:.6f}; they must sum to 1")
        return Share.of(mapping)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ScenarioError(file, key, f"value {value!r} must be true or false")
        return value
    if kind == "date":
        return toml_date(file, key, value, example="2023-01-30")
    if kind == "choice":
        if value not in allowed:
            raise ScenarioError(
                file,
                key,
                f"value {value!r} is not allowed; allowed: "
                f"{list(allowed)}." + suggest(str(value), allowed),
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(file, key, f"value {value!r} must be a number ({unit})")
    if kind == "int" and (not float(value).is_integer()):
        raise ScenarioError(file, key, f"value {value!r} must be a whole number ({unit})")
    if not math.isfinite(value):
        raise ScenarioError(file, key, f"value {value!r} must be a finite number ({unit})")
    if not (lo <= value <= hi):
        raise ScenarioError(
            file,
            key,
            f"value {value!r} is outside the allowed range [{lo}, {hi}] for unit '{unit}'",
        )
    return int(value) if kind == "int" else float(value)


# the old private names, kept for code that imports them
_read_toml = read_toml
_check_keys = check_keys


def _walk_params(path: Path, tree: Any, prefix: str = "") -> Iterable[tuple[str, dict]]:
    if not isinstance(tree, dict):
        raise ScenarioError(
            path,
            f"params{'.' + prefix.rstrip('.') if prefix else ''}",
            f"value {tree!r} must be a table of parameters",
        )
    for name, node in tree.items():
        dotted = f"{prefix}{name}"
        if isinstance(node, dict) and "value" in node:
            if dotted.count(".") != 1:
                raise ScenarioError(
                    path,
                    f"params.{dotted}",
                    "parameters live one level down: [params.<group>] name = {...}",
                )
            yield dotted, node
        elif isinstance(node, dict):
            yield from _walk_params(path, node, dotted + ".")
        else:
            raise ScenarioError(
                path,
                f"params.{dotted}",
                f"value {node!r}: write "
                "{ value = ..., unit = ..., source = ... }, not a bare value",
            )


def load_sources(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Read ``scenarios/sources.toml``; every source must have a known ``kind``."""
    path = path or SCENARIO_DIR / "sources.toml"
    doc = read_toml(path)
    check_keys(path, "", doc, {"source"})
    sources = doc.get("source", {})
    for key, src in sources.items():
        if src.get("kind") not in SOURCE_KINDS:
            raise ScenarioError(
                path,
                f"source.{key}.kind",
                f"value {src.get('kind')!r} is not allowed; allowed: {list(SOURCE_KINDS)}",
            )
    return sources


def resolve_path(name_or_path: str | Path, base_dir: Path | None = None) -> Path:
    """A scenario is a name (``historical``) or a path to a TOML file.

    A name is looked up in ``base_dir`` (the folder of the file that extends it) and then in
    ``scenarios/``; a relative path is taken relative to ``base_dir`` when given.
    """
    text = str(name_or_path)
    candidate = Path(text)
    if candidate.suffix == ".toml" or "/" in text or (base_dir is None and candidate.exists()):
        if base_dir is not None and not candidate.is_absolute():
            candidate = base_dir / candidate
        return candidate
    folders = [f for f in (base_dir, SCENARIO_DIR) if f is not None]
    for folder in folders:
        path = folder / f"{text}.toml"
        if path.exists():
            return path
    names = sorted({p.stem for f in folders for p in f.glob("*.toml") if p.stem != "sources"})
    raise ScenarioError(
        folders[-1] / f"{text}.toml",
        "scenario",
        f"no scenario named '{text}'; available: {names}." + suggest(text, names),
    )


def load_scenario(name_or_path: str | Path, sources_path: Path | None = None) -> Scenario:
    """Load and validate a scenario and its ``extends`` chain."""
    path = resolve_path(name_or_path)
    sources = load_sources(sources_path)
    merged = _load_chain(path, sources, seen=())
    run = merged.run
    _check_run(path, run)
    ordered = tuple(sorted(merged.timeline, key=lambda t: t.date))  # stable: parent first
    return Scenario(
        merged.meta.get("name", path.stem),
        merged.meta.get("description", ""),
        path,
        merged.chain,
        dict(merged.entries),
        ordered,
        run["start"],
        run["end"],
        run["seed"],
        run["replicates"],
        dict(sources),
        run.get("warmup_start"),
        mechanisms=merged.mechanisms,
        changes_assumptions=merged.changes_assumptions,
    )


def _check_run(path: Path, run: Mapping[str, Any]) -> None:
    """The ``[run]`` table merged along the chain: start and end dates (end not before start),
    seed and replicates whole numbers (replicates at most ``MAX_REPLICATES``), and
    ``warmup_start`` a date if set."""
    for key in ("start", "end", "seed", "replicates"):
        if key not in run:
            raise ScenarioError(path, f"run.{key}", "missing; set it here or in a parent scenario")
    start, end = run["start"], run["end"]
    for key, value in (("run.start", start), ("run.end", end)):
        check_value(path, key, value, "date")
    if end < start:
        raise ScenarioError(
            path, "run.end", f"end {end} must not be before start {start} (the end day is included)"
        )
    for key in ("seed", "replicates"):
        v = run[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if key == "replicates" else 0):
            raise ScenarioError(
                path,
                f"run.{key}",
                f"value {v!r} must be a whole number >= {1 if key == 'replicates' else 0}",
            )
    if run["replicates"] > MAX_REPLICATES:
        raise ScenarioError(
            path,
            "run.replicates",
            f"value {run['replicates']:,} is too large; allowed: 1 to {MAX_REPLICATES:,}",
        )
    warmup = run.get("warmup_start")
    if warmup is not None:
        check_value(path, "run.warmup_start", warmup, "date")


# --------------------------------------------------------------------------- the extends chain
@dataclass(frozen=True)
class MergedChain:
    """A scenario file merged with the files it ``extends``: what :func:`load_scenario` checks
    and builds a :class:`Scenario` from."""

    meta: Mapping[str, Any]  # this file's [meta] (name and description are not inherited)
    run: Mapping[str, Any]  # [run] along the chain, a file's keys over its parent's
    entries: Mapping[str, Entry]  # every parameter, as the last file that sets it left it
    timeline: tuple[TimelineEntry, ...]  # parent's entries first; not yet sorted by date
    chain: tuple[str, ...]  # files from the root (baseline) to this one
    mechanisms: tuple[Mapping[str, Any], ...]  # [[mechanism]] tables along the chain
    changes_assumptions: Mapping[str, Mapping[str, str]]  # along the chain (check_roles)


# nothing inherited: what a file that extends nothing starts from
_NO_PARENT = MergedChain(
    meta=MappingProxyType({}),
    run=MappingProxyType({}),
    entries=MappingProxyType({}),
    timeline=(),
    chain=(),
    mechanisms=(),
    changes_assumptions=MappingProxyType({}),
)


def _load_chain(path: Path, sources: Mapping[str, Any], seen: tuple[str, ...]) -> MergedChain:
    """Load ``path`` and, first, the files it extends (``seen``: the files that extend it).

    Errors come in this order: the chain (cycle, depth), this file's tables, its parent (the
    parent's own errors first), then this file's parameters, timeline, mechanisms and roles.
    """
    _check_extends_chain(path, seen)
    file = _read_scenario_file(path)
    parent_path = _parent_path(file)
    parent = (
        _NO_PARENT
        if parent_path is None
        else _load_chain(parent_path, sources, (*seen, str(path.resolve())))
    )
    entries, own_sets = _merge_params(file, parent.entries, sources)
    timeline, timeline_sets = _merge_timeline(file, parent.timeline, entries, sources)
    for key, where in timeline_sets.items():  # [params] first: where the file first sets it
        own_sets.setdefault(key, where)
    mechanisms = (*parent.mechanisms, *_load_mechanisms(path, file.mechanisms, entries))
    assumptions = check_roles(
        path,
        file.meta.get("changes_assumptions", []),
        own_sets,
        parent.entries,  # a change is judged by the value it replaces
        parent.changes_assumptions,
        mechanisms,
    )
    return MergedChain(
        meta=file.meta,
        run={**parent.run, **file.run},
        entries=entries,
        timeline=tuple(timeline),
        chain=(*parent.chain, str(path)),
        mechanisms=mechanisms,
        changes_assumptions=assumptions,
    )


# --------------------------------------------------------------------------- one file
FILE_KEYS = {"meta", "run", "params", "timeline", "mechanism"}


@dataclass(frozen=True)
class ScenarioFile:
    """One scenario file as read: its tables, with ``[meta]`` and ``[run]`` keys checked.

    ``[params]``, ``[[timeline]]`` and ``[[mechanism]]`` are as written; they are checked
    against the parameters of the chain (:func:`_merge_params` and the steps after it)."""

    path: Path
    meta: Mapping[str, Any]
    run: Mapping[str, Any]
    params: Any
    timeline: Any
    mechanisms: Any

    @property
    def extends(self) -> str | None:
        """``[meta] extends`` as written (``None`` or ``""``: the file extends nothing)."""
        return self.meta.get("extends")


def _check_extends_chain(path: Path, seen: tuple[str, ...]) -> None:
    """``path`` is not already in the chain (``seen``: a cycle), and the chain is at most
    ``MAX_EXTENDS`` files deep."""
    if str(path.resolve()) in seen:
        raise ScenarioError(path, "meta.extends", "circular extends chain: " + " -> ".join(seen))
    if len(seen) >= MAX_EXTENDS:
        raise ScenarioError(
            seen[0],
            "meta.extends",
            f"the extends chain is more than {MAX_EXTENDS} files deep (reached {path}); "
            f"allowed: at most {MAX_EXTENDS}",
        )


def _read_scenario_file(path: Path) -> ScenarioFile:
    """Read one file: its top-level tables, the keys and types of ``[meta]``, ``[run]`` keys."""
    doc = read_toml(path)
    check_keys(path, "", doc, FILE_KEYS)
    meta = doc.get("meta", {})
    check_keys(path, "meta", meta, META_KEYS)
    for key in ("name", "description", "extends"):
        if key in meta and (not isinstance(meta[key], str) or (key == "name" and not meta[key])):
            raise ScenarioError(
                path,
                f"meta.{key}",
                f"value {meta[key]!r} must be a {'non-empty ' if key == 'name' else ''}string",
            )
    run = doc.get("run", {})
    check_keys(path, "run", run, RUN_KEYS)
    return ScenarioFile(
        path,
        meta,
        run,
        doc.get("params", {}),
        doc.get("timeline", []),
        doc.get("mechanism", []),
    )


def _parent_path(file: ScenarioFile) -> Path | None:
    """The file that ``[meta] extends`` names, which must exist; ``None`` if it names none."""
    parent_name = file.extends
    if not parent_name:
        return None
    try:
        parent_path = resolve_path(parent_name, base_dir=file.path.parent)
        if not parent_path.is_file():
            raise ScenarioError(parent_path, "-", "file not found")
    except ScenarioError as exc:
        raise ScenarioError(
            file.path, "meta.extends", f"value {parent_name!r}: {exc.problem}"
        ) from None
    return parent_path


# --------------------------------------------------------------------------- parameters
def _merge_params(
    file: ScenarioFile, inherited: Mapping[str, Entry], sources: Mapping[str, Any]
) -> tuple[dict[str, Entry], dict[str, str]]:
    """Apply the file's ``[params]`` to the parameters it inherits. Return the parameters and
    where the file sets each one (parameter -> ``params.<key>``). A file that extends nothing
    must set every parameter the engine declares."""
    path = file.path
    entries = dict(inherited)
    own_sets: dict[str, str] = {}  # parameter -> where this file sets it
    for dotted, node in _walk_params(path, file.params):
        where = f"params.{dotted}"
        check_keys(path, where, node, ENTRY_KEYS)
        spec = _param_spec(file, where, dotted, entries)
        base = entries.get(dotted)
        entries[dotted] = _param_entry(path, where, dotted, node, spec, base, sources)
        own_sets.setdefault(dotted, where)
    if not file.extends:
        missing = sorted(set(SCHEMA) - set(entries))
        if missing:
            raise ScenarioError(
                path,
                "params",
                f"no value for {missing}: every parameter the engine declares "
                "(model/params.py) needs a value, unit and source here",
            )
    return entries, own_sets


def _param_spec(file: ScenarioFile, where: str, dotted: str, entries: Mapping[str, Entry]) -> Field:
    """The engine's declaration of ``dotted``; a file that extends another may only override
    parameters that the chain already declares."""
    spec = SCHEMA.get(dotted)
    if spec is None:
        raise ScenarioError(
            file.path,
            where,
            "the engine declares no such parameter (model/params.py)." + suggest(dotted, SCHEMA),
        )
    if file.extends and dotted not in entries:
        raise ScenarioError(
            file.path,
            where,
            f"does not exist in {file.extends}; a scenario may "
            "only override declared parameters." + suggest(dotted, entries),
        )
    return spec


def _param_entry(
    path: Path,
    where: str,
    dotted: str,
    node: Mapping[str, Any],
    spec: Field,
    base: Entry | None,
    sources: Mapping[str, Any],
) -> Entry:
    """One ``[params]`` table checked into an :class:`Entry` (``base``: the entry it
    overrides, ``None`` for a declaration)."""
    unit = _param_unit(path, where, node, spec)
    source = _param_source(path, where, node, sources)
    rng = _param_range(path, where, node.get("range", base.range if base else None), source)
    allowed = _param_allowed(path, where, node, spec.choices)
    _check_param_text(path, where, node)
    value = check_value(path, where, node["value"], unit, allowed, spec.categories)
    # the plausible range must hold for a declaration and for any value sourced as an
    # assumption; a policy lever with its own source may go beyond it (the unit still holds)
    if (
        (base is None or source == "assumption")
        and rng is not None
        and isinstance(value, int | float)
        and not rng[0] <= value <= rng[1]
    ):
        raise ScenarioError(
            path, where, f"value {value!r} is outside its plausible range [{rng[0]}, {rng[1]}]"
        )
    null = _param_null(path, where, node, base, unit, allowed)
    if base is None:
        _check_null(path, where, spec.effect, null, rng, node.get("null_ruled_out_by"), sources)
    return Entry(
        dotted,
        value,
        unit,
        source,
        node.get("locator", ""),
        node.get("note", ""),
        rng,
        bool(node.get("calibrate", base.calibrate if base else False)),
        allowed,
        str(path),
        null,
    )


def _param_unit(path: Path, where: str, node: Mapping[str, Any], spec: Field) -> str:
    """The ``unit`` (default: the engine's), which must be the unit the engine declares."""
    unit = node.get("unit", spec.unit)
    if not isinstance(unit, str) or unit not in UNITS:
        raise ScenarioError(
            path,
            f"{where}.unit",
            f"unit {unit!r} is not allowed; allowed: {sorted(UNITS)}." + suggest(str(unit), UNITS),
        )
    if unit != spec.unit:
        raise ScenarioError(
            path,
            f"{where}.unit",
            f"unit {unit!r} differs from {spec.unit!r}, the unit the engine declares "
            "(model/params.py)",
        )
    return unit


def _param_source(
    path: Path, where: str, node: Mapping[str, Any], sources: Mapping[str, Any]
) -> str:
    """The ``source``, which every parameter table needs."""
    source = node.get("source")
    if source is None:
        raise ScenarioError(
            path,
            where,
            "missing 'source' (a key of scenarios/sources.toml, "
            "'assumption', or 'calibration:<fit-id>')",
        )
    _check_source(path, where, source, sources)
    return source


def _param_range(path: Path, where: str, rng: Any, source: str) -> tuple[float, float] | None:
    """The plausible ``range`` (own or inherited) as two floats; an assumption needs one."""
    if source == "assumption" and rng is None:
        raise ScenarioError(path, where, "an assumption needs a plausible 'range = [low, high]'")
    if rng is None:
        return None
    if (
        not isinstance(rng, list | tuple)
        or len(rng) != 2
        or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in rng
        )
        or rng[0] > rng[1]
    ):
        raise ScenarioError(path, f"{where}.range", f"value {rng!r} must be [low, high] numbers")
    return (float(rng[0]), float(rng[1]))


def _param_allowed(
    path: Path, where: str, node: Mapping[str, Any], allowed: tuple[str, ...]
) -> tuple[str, ...]:
    """The choices the engine knows (``allowed``); a file may repeat them, not change them."""
    if "allowed" in node and (
        not isinstance(node["allowed"], list)
        or not all(isinstance(a, str) for a in node["allowed"])
    ):
        raise ScenarioError(
            path,
            f"{where}.allowed",
            f"value {node['allowed']!r} must be a list of strings; allowed: {list(allowed)}",
        )
    if "allowed" in node and tuple(node["allowed"]) != allowed:
        unknown = [a for a in node["allowed"] if a not in allowed]
        raise ScenarioError(
            path,
            f"{where}.allowed",
            f"value {node['allowed']!r}: the engine knows exactly {list(allowed)} "
            f"(model/params.py){'; unknown: ' + str(unknown) if unknown else ''}. A policy "
            "the code does not implement cannot be declared in a scenario file",
        )
    return allowed


def _check_param_text(path: Path, where: str, node: Mapping[str, Any]) -> None:
    """``locator`` and ``note`` are strings, ``calibrate`` is true or false."""
    for text_key in ("locator", "note"):
        if text_key in node and not isinstance(node[text_key], str):
            raise ScenarioError(
                path, f"{where}.{text_key}", f"value {node[text_key]!r} must be a string"
            )
    if "calibrate" in node and not isinstance(node["calibrate"], bool):
        raise ScenarioError(
            path, f"{where}.calibrate", f"value {node['calibrate']!r} must be true or false"
        )


def _param_null(
    path: Path,
    where: str,
    node: Mapping[str, Any],
    base: Entry | None,
    unit: str,
    allowed: tuple[str, ...],
) -> Any:
    """The ``null`` of an effect: declared once, with the parameter; inherited after that."""
    if "null" not in node:
        return base.null if base else None
    if base is not None:
        raise ScenarioError(
            path,
            f"{where}.null",
            "the null of an effect is declared once, in "
            f"{base.declared_in}; a scenario may not change it",
        )
    return check_value(path, f"{where}.null", node["null"], unit, allowed)


# --------------------------------------------------------------------------- timeline
def _merge_timeline(
    file: ScenarioFile,
    inherited: Iterable[TimelineEntry],
    entries: Mapping[str, Entry],
    sources: Mapping[str, Any],
) -> tuple[list[TimelineEntry], dict[str, str]]:
    """Apply the file's ``[[timeline]]`` entries to the inherited ones: an entry replaces any
    of the same name, and ``enabled = false`` only removes it. Return the timeline (in file
    order, not sorted) and where the file sets each parameter (``timeline[i].set.<key>``)."""
    path = file.path
    items = file.timeline
    if not isinstance(items, list):
        raise ScenarioError(path, "timeline", "write timeline entries as [[timeline]] tables")
    timeline = list(inherited)
    sets: dict[str, str] = {}  # parameter -> where this file's timeline first sets it
    for i, item in enumerate(items):
        where = f"timeline[{i}]"
        _check_timeline_item(path, where, item, sources)
        timeline = [t for t in timeline if t.name != item["name"]]  # same name replaces
        if item.get("enabled", True) is False:
            continue
        changes = _timeline_changes(path, where, item["set"], entries)
        for key in changes:
            sets.setdefault(key, f"{where}.set.{key}")
        timeline.append(
            TimelineEntry(item["date"], item["name"], item["source"], changes, str(path))
        )
    return timeline, sets


def _check_timeline_item(path: Path, where: str, item: Any, sources: Mapping[str, Any]) -> None:
    """A ``[[timeline]]`` table: its keys, a date, a known source, a name, ``enabled``."""
    check_keys(path, where, item, TIMELINE_KEYS)
    for req in ("date", "name", "source", "set"):
        if req not in item:
            raise ScenarioError(path, f"{where}.{req}", "missing")
    check_value(path, f"{where}.date", item["date"], "date")
    _check_source(path, f"{where}.source", item["source"], sources)
    if not isinstance(item["name"], str):
        raise ScenarioError(path, f"{where}.name", f"value {item['name']!r} must be a string")
    if not isinstance(item.get("enabled", True), bool):
        raise ScenarioError(
            path, f"{where}.enabled", f"value {item['enabled']!r} must be true or false"
        )


def _timeline_changes(
    path: Path, where: str, table: Any, entries: Mapping[str, Entry]
) -> dict[str, Any]:
    """The ``set`` table of a timeline entry: known parameters, each value valid for it."""
    if not isinstance(table, dict):
        raise ScenarioError(
            path,
            f"{where}.set",
            f'value {table!r} must be a table {{ "group.name" = value, ... }}',
        )
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key not in entries:
            raise ScenarioError(
                path, f"{where}.set.{key}", "unknown parameter" + suggest(key, entries)
            )
        e = entries[key]
        changes[key] = check_value(
            path, f"{where}.set.{key}", value, e.unit, e.allowed, SCHEMA[key].categories
        )
    return changes


# --------------------------------------------------------------------------- roles and mechanisms
def param_role(key: str, inherited: Mapping[str, Entry]) -> str:
    """The role that decides whether a policy scenario may change ``key``: ``fitted`` if the
    value it replaces comes from a calibration fit (``source = "calibration:<fit>"``), else
    the role declared in ``model/params.py`` (``lever``, ``uncertain`` or ``fixed``)."""
    entry = inherited.get(key)
    if entry is not None and entry.source.startswith("calibration:"):
        return "fitted"
    return SCHEMA[key].role


def check_roles(
    path: Path,
    declared: Any,
    own_sets: Mapping[str, str],
    inherited: Mapping[str, Entry],
    parent_declared: Mapping[str, Mapping[str, str]],
    mechanisms: tuple[Mapping[str, Any], ...],
) -> dict[str, Mapping[str, str]]:
    """Roles enforced (issue 16 item 4). Return the chain's declared assumption changes.

    A *policy scenario* is a file that declares a ``[[mechanism]]`` or extends one that does
    (the ledger's "lever scenario"); ``baseline``, ``historical`` and the ``status_quo_*``
    projections declare none, so they may set any parameter. A policy file may change
    ``lever`` parameters and the timeline; every other parameter it sets (``uncertain``,
    ``fixed``, or a value fitted by calibration) must be listed in ``[meta]
    changes_assumptions``, so that the report can say the option rests on a changed assumption
    and not only on its levers. Each file declares what it sets itself; the resolved scenario
    carries the declarations of its whole chain.
    """
    where = "meta.changes_assumptions"
    if not isinstance(declared, list) or not all(isinstance(k, str) for k in declared):
        raise ScenarioError(
            path, where, f'value {declared!r} must be a list of parameter names ("group.name")'
        )
    out = dict(parent_declared)
    for key in declared:
        if key not in SCHEMA:
            raise ScenarioError(path, where, f"unknown parameter '{key}'." + suggest(key, SCHEMA))
        role = param_role(key, inherited)
        if role == "lever":
            raise ScenarioError(
                path,
                where,
                f"'{key}' is a lever (model/params.py): changing it needs no declaration, "
                "so remove it from the list",
            )
        if key not in own_sets:
            raise ScenarioError(
                path,
                where,
                f"'{key}' is declared but this file does not set it; a declared parameter "
                "must be set in this file ([params] or a [[timeline]] entry), so set it or "
                "remove it from the list",
            )
        out[key] = {"role": role, "declared_in": str(path)}
    if not mechanisms:
        return out
    undeclared = {
        key: (at, role)
        for key, at in own_sets.items()
        if (role := param_role(key, inherited)) != "lever" and key not in declared
    }
    if undeclared:
        first, (at, role) = next(iter(undeclared.items()))
        others = [f"'{k}' ({r})" for k, (_, r) in list(undeclared.items())[1:]]
        raise ScenarioError(
            path,
            at,
            f"'{first}' has role '{role}' (model/params.py"
            + ("; its value is fitted by calibration" if role == "fitted" else "")
            + ")"
            + (f", and so has {', '.join(others)}" if others else "")
            + "; a policy scenario (one with a [[mechanism]]) may change only lever "
            "parameters (role 'lever') and the timeline. If the option really changes this "
            "assumption, declare it in this file: [meta] changes_assumptions = "
            f"[{', '.join(repr(k).replace(chr(39), chr(34)) for k in sorted(undeclared))}] "
            "with a comment saying why; otherwise remove the change",
        )
    return out


MECHANISM_KEYS = {"name", "parameters", "note"}


def _load_mechanisms(
    path: Path, items: Any, entries: Mapping[str, Entry]
) -> tuple[Mapping[str, Any], ...]:
    """``[[mechanism]]`` tables: how a lever acts (name, the parameters that carry it, note)."""
    if not isinstance(items, list):
        raise ScenarioError(path, "mechanism", "write mechanisms as [[mechanism]] tables")
    out = []
    for i, item in enumerate(items):
        where = f"mechanism[{i}]"
        check_keys(path, where, item, MECHANISM_KEYS)
        if not isinstance(item.get("name"), str) or not item["name"]:
            raise ScenarioError(path, f"{where}.name", "missing; give the mechanism a name")
        keys = item.get("parameters", [])
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ScenarioError(
                path, f"{where}.parameters", f"value {keys!r} must be a list of parameter names"
            )
        for key in keys:
            if key not in entries:
                raise ScenarioError(
                    path,
                    f"{where}.parameters",
                    f"unknown parameter '{key}'." + suggest(key, entries),
                )
        out.append(
            {
                "name": item["name"],
                "parameters": list(keys),
                "note": str(item.get("note", "")),
                "declared_in": str(path),
            }
        )
    return tuple(out)


def _check_null(
    path: Path,
    where: str,
    effect: bool,
    null: Any,
    rng: tuple[float, float] | None,
    ruled_out_by: Any,
    sources: Mapping[str, Any],
) -> None:
    """An effect size declares its null; the plausible range contains it unless a source rules
    the null out (``null_ruled_out_by = "<source key>"``)."""
    if effect and null is None:
        raise ScenarioError(
            path,
            where,
            "sizes an assumed effect (model/params.py), so it needs "
            "'null = <value at which the mechanism does nothing>'",
        )
    if null is None or rng is None or not isinstance(null, int | float):
        return
    if not rng[0] <= null <= rng[1]:
        if ruled_out_by is None:
            raise ScenarioError(
                path,
                where,
                f"null {null!r} is outside the plausible range {list(rng)}; widen "
                "the range to contain it, or name the source that rules it out with "
                'null_ruled_out_by = "<source key>"',
            )
        _check_source(path, f"{where}.null_ruled_out_by", ruled_out_by, sources)


def _check_source(path: Path, where: str, source: Any, sources: Mapping[str, Any]) -> None:
    if not isinstance(source, str):
        raise ScenarioError(path, where, f"source {source!r} must be a string key")
    if source == "assumption" or source.startswith("calibration:"):
        return
    if source not in sources:
        raise ScenarioError(
            path,
            where,
            f"source '{source}' is not in scenarios/sources.toml." + suggest(source, sources),
        )


def source_kind(entry: Entry, sources: Mapping[str, Mapping[str, Any]]) -> str:
    """Evidence grade of a parameter: a ``SOURCE_KINDS`` value, 'calibrated', or 'null effect'
    (an assumed effect switched off by ``with_effects("null")``)."""
    if entry.source == "assumption":
        return "assumption"
    if entry.source == "null":
        return "null effect"
    if entry.source.startswith("calibration:"):
        return "calibrated"
    return str(sources[entry.source]["kind"])
